/* Probe: the attack of a hostile image's /bin/sh, first thing after exec —
 * open pid 1's environ, mem and exe (runc CVE-2019-5736's shape) while pid 1
 * may still be a copy of the worker. Prints one line per file:
 *   environ: refused 13      (errno)
 *   environ: opened 812 bytes [marker seen]
 * argv[1], when given, is a marker to look for in pid 1's environment; run as
 * an image's /bin/sh (argv[1] is "-c") it looks for the worker's GIT_TOKEN. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char environ_bytes[1 << 16];

int main(int argc, char **argv) {
    /* All three opens before any output: the race is with pid 1's own setup. */
    int fds[3];
    int errs[3];
    static const char *const names[3] = { "environ", "mem", "exe" };
    static const char *const paths[3] = { "/proc/1/environ", "/proc/1/mem", "/proc/1/exe" };
    for (int i = 0; i < 3; i++) {
        fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
        errs[i] = errno;
    }
    const char *marker = argc > 1 ? argv[1] : NULL;
    if (marker && strcmp(marker, "-c") == 0)
        marker = "GIT_TOKEN=";
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0) {
            printf("%s: refused %d\n", names[i], errs[i]);
            continue;
        }
        if (i == 0) {
            ssize_t total = 0, n;
            while (total < (ssize_t)sizeof environ_bytes &&
                   (n = read(fds[i], environ_bytes + total, sizeof environ_bytes - (size_t)total)) > 0)
                total += n;
            int seen = marker && memmem(environ_bytes, (size_t)total, marker, strlen(marker)) != NULL;
            printf("%s: opened %zd bytes%s\n", names[i], total, seen ? " marker seen" : "");
        } else {
            printf("%s: opened\n", names[i]);
        }
    }
    return 0;
}
