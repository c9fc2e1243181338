/*
 * Interleaved start-latency timer for bench/sandbox-start.sh.
 *
 *   interleave ROUNDS WARMUP SEED SPEC OUT
 *
 * SPEC: one runtime per line, "NAME<TAB>ARGV0<TAB>ARGV1...". Every round runs
 * each runtime once, in an order shuffled per round (seeded, reproducible), so
 * every runtime follows every other one equally often: the work one run leaves
 * to the kernel (cgroup, namespace and mount teardown) lands on all of them
 * alike instead of always on the same neighbour. "{id}" in an argument becomes
 * a fresh word per run (container ids).
 *
 * Each run is spawned directly (posix_spawn, no shell) with stdin and stdout
 * on /dev/null and stderr on a file; the time is spawn-to-reap on
 * CLOCK_MONOTONIC. OUT gets one line per measured run:
 *   round  name  microseconds  exit_status  max_rss_kib  previous_runtime
 * A run that does not exit 0 stops the benchmark (exit 1) with its stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { MAX_RUNTIMES = 16, MAX_ARGS = 64 };

struct runtime {
    char *name;
    char *argv[MAX_ARGS + 1];
    int argc;
};

static struct runtime runtimes[MAX_RUNTIMES];
static int runtime_count;
static char err_path[] = "/tmp/dgrid-interleave-stderr.XXXXXX";

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void load_spec(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = 0;
        if (!line[0]) continue;
        if (runtime_count == MAX_RUNTIMES) { fprintf(stderr, "too many runtimes\n"); exit(2); }
        struct runtime *r = &runtimes[runtime_count++];
        char *save = NULL;
        char *copy = strdup(line);
        r->name = strtok_r(copy, "\t", &save);
        char *word;
        while ((word = strtok_r(NULL, "\t", &save))) {
            if (r->argc == MAX_ARGS) { fprintf(stderr, "%s: too many arguments\n", r->name); exit(2); }
            r->argv[r->argc++] = word;
        }
        if (!r->name || r->argc == 0) { fprintf(stderr, "bad spec line: %s\n", line); exit(2); }
    }
    free(line);
    fclose(f);
    if (runtime_count == 0) { fprintf(stderr, "%s: no runtimes\n", path); exit(2); }
}

/* Runs runtime `r` once; returns the microseconds from spawn to reap. */
static uint64_t run_once(const struct runtime *r, unsigned long serial, int *status, long *maxrss) {
    char ids[MAX_ARGS][64];
    char *argv[MAX_ARGS + 1];
    for (int i = 0; i < r->argc; i++) {
        if (strcmp(r->argv[i], "{id}") == 0) {
            snprintf(ids[i], sizeof ids[i], "dgrid-bench-%d-%lu", (int)getpid(), serial);
            argv[i] = ids[i];
        } else {
            argv[i] = r->argv[i];
        }
    }
    argv[r->argc] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_TRUNC, 0);

    pid_t pid;
    struct rusage ru;
    uint64_t start = now_us();
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    if (rc != 0) { fprintf(stderr, "%s: spawn %s: %s\n", r->name, argv[0], strerror(rc)); exit(1); }
    while (wait4(pid, status, 0, &ru) < 0) {
        if (errno != EINTR) { perror("wait4"); exit(1); }
    }
    uint64_t took = now_us() - start;
    posix_spawn_file_actions_destroy(&fa);
    *maxrss = ru.ru_maxrss;
    return took;
}

static void fail_run(const struct runtime *r, int status) {
    fprintf(stderr, "%s exited with status 0x%x; its stderr:\n", r->name, status);
    FILE *f = fopen(err_path, "r");
    if (f) {
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf, f);
        fwrite(buf, 1, n, stderr);
        fclose(f);
    }
    unlink(err_path);
    exit(1);
}

/* xorshift64*: a reproducible shuffle without libc's rand state. */
static uint64_t rng;
static uint64_t next_random(void) {
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s ROUNDS WARMUP SEED SPEC OUT\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[1]), warmup = atoi(argv[2]);
    rng = strtoull(argv[3], NULL, 10) | 1;
    load_spec(argv[4]);
    FILE *out = fopen(argv[5], "w");
    if (!out) { perror(argv[5]); return 2; }
    int fd = mkstemp(err_path);
    if (fd < 0) { perror("mkstemp"); return 2; }
    close(fd);

    int order[MAX_RUNTIMES];
    const char *previous = "-";
    unsigned long serial = 0;
    for (int round = -warmup; round < rounds; round++) {
        for (int i = 0; i < runtime_count; i++) order[i] = i;
        for (int i = runtime_count - 1; i > 0; i--) {
            int j = (int)(next_random() % (uint64_t)(i + 1));
            int t = order[i]; order[i] = order[j]; order[j] = t;
        }
        for (int i = 0; i < runtime_count; i++) {
            const struct runtime *r = &runtimes[order[i]];
            int status;
            long maxrss;
            uint64_t us = run_once(r, serial++, &status, &maxrss);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_run(r, status);
            if (round >= 0)
                fprintf(out, "%d\t%s\t%llu\t%d\t%ld\t%s\n", round, r->name, (unsigned long long)us,
                        WEXITSTATUS(status), maxrss, previous);
            previous = r->name;
        }
    }
    unlink(err_path);
    return fclose(out) == 0 ? 0 : 1;
}
