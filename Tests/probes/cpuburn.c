/* Probe: burns CPU on N threads (argv[1]) for S seconds (argv[2]) of wall time. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static double seconds;
static void *burn(void *arg) {
    (void)arg;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 100000; i++) x += i;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    seconds = argc > 2 ? atof(argv[2]) : 2;
    pthread_t t[64];
    for (int i = 0; i < n && i < 64; i++) pthread_create(&t[i], NULL, burn, NULL);
    for (int i = 0; i < n && i < 64; i++) pthread_join(t[i], NULL);
    return 0;
}
