/* Probe run inside a writable rootfs: makes a chain of N nested directories
 * ("d/d/d/..."), deeper than any descriptor limit, the way a hostile task
 * could leave one in its upper directory for the host to clean up. Prints
 * "made N" on success. Usage: deeptree N */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long depth = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (depth <= 0) {
        fprintf(stderr, "usage: deeptree N\n");
        return 2;
    }
    for (long i = 0; i < depth; i++) {
        if (mkdir("d", 0755) != 0 || chdir("d") != 0) {
            fprintf(stderr, "level %ld: %s\n", i, strerror(errno));
            return 1;
        }
    }
    printf("made %ld\n", depth);
    return 0;
}
