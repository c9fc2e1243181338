/* Probe: keeps stdout AND stderr full for argv[3] seconds (default 10) of wall
 * time, then exits 0. argv[1] is how each writer fills its stream: "write",
 * "vmsplice" (user pages handed to the pipe, no copy), "splicefile" (page cache
 * of this binary spliced in, no copy), "splicepipe" (a private pipe spliced
 * across) or "mixed" (all four, one per writer in turn). argv[2] writers are
 * forked processes, even ones on stdout, odd ones on stderr. Only a
 * supervisor that checks its deadline whatever its pipes do stops this at
 * the timeout rather than after argv[3] seconds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

enum mode { WRITE, VMSPLICE, SPLICEFILE, SPLICEPIPE, MODES };

static double seconds = 10;
static struct timespec start;

static int time_left(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds;
}

static void flood(enum mode mode, int fd, const char *self) {
    /* Page-aligned so vmsplice moves whole pages. */
    char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) _exit(2);
    memset(buf, 'x', CHUNK);
    int file = mode == SPLICEFILE ? open(self, O_RDONLY) : -1;
    int inner[2] = { -1, -1 };
    if (mode == SPLICEPIPE && pipe(inner) != 0) _exit(2);
    if (mode == SPLICEFILE && file < 0) _exit(2);
    while (time_left()) {
        switch (mode) {
        case WRITE:
            (void)!write(fd, buf, CHUNK);
            break;
        case VMSPLICE: {
            struct iovec iov = { buf, CHUNK };
            (void)vmsplice(fd, &iov, 1, 0);
            break;
        }
        case SPLICEFILE: {
            loff_t off = 0;
            if (splice(file, &off, fd, NULL, CHUNK, 0) <= 0) _exit(2);
            break;
        }
        case SPLICEPIPE: {
            ssize_t n = write(inner[1], buf, 64 * 1024);
            while (n > 0) {
                ssize_t m = splice(inner[0], NULL, fd, NULL, (size_t)n, 0);
                if (m <= 0) _exit(2);
                n -= m;
            }
            break;
        }
        default:
            _exit(2);
        }
    }
    _exit(0);
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "mixed";
    int writers = argc > 2 ? atoi(argv[2]) : 8;
    if (argc > 3) seconds = atof(argv[3]);
    int mixed = strcmp(name, "mixed") == 0;
    enum mode mode = strcmp(name, "write") == 0 ? WRITE
        : strcmp(name, "vmsplice") == 0 ? VMSPLICE
        : strcmp(name, "splicefile") == 0 ? SPLICEFILE
        : strcmp(name, "splicepipe") == 0 ? SPLICEPIPE
        : MODES;
    if (!mixed && mode == MODES) return 2;
    if (writers < 1 || writers > 256) return 2;
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < writers; i++) {
        pid_t pid = fork();
        if (pid < 0) return 3;
        if (pid == 0) flood(mixed ? (enum mode)((i / 2) % MODES) : mode, 1 + i % 2, argv[0]);
    }
    int status, failed = 0;
    while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed ? 4 : 0;
}
