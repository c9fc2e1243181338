/* Probe: touches argv[1] MiB of memory, a page at a time, then prints "done". */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 512;
    for (long i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (!p) { puts("malloc failed"); return 3; }
        for (int j = 0; j < (1 << 20); j += 4096) p[j] = 1;
    }
    puts("done");
    return 0;
}
