/* Probe: prints every open descriptor number except the one used to list them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) { perror("opendir"); return 1; }
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd != self) printf("%d\n", fd);
    }
    closedir(d);
    return 0;
}
