/* How fast this machine backs memory a process touches for the first time (BENCHMARKS.md,
 * issue 18, thirteenth session). Maps MB megabytes, optionally asks for transparent huge
 * pages, writes one byte a page (first touch), then memsets it all (already backed).
 *
 *   gcc -O2 scripts/first_touch.c -o /tmp/first_touch
 *   /tmp/first_touch 4096 1; /tmp/first_touch 4096 1; sleep 15; /tmp/first_touch 4096 1
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double since(struct timespec a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MB HUGE(0|1)\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)atol(argv[1]) << 20;
    int huge = atoi(argv[2]);
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    if (huge)
        madvise(p, n, MADV_HUGEPAGE);
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    double t = since(a);
    printf("first touch %zu MB huge=%d: %.3f s (%.2f GB/s)\n", n >> 20, huge, t, n / 1e9 / t);
    clock_gettime(CLOCK_MONOTONIC, &a);
    memset(p, 2, n);
    t = since(a);
    printf("memset again: %.3f s (%.2f GB/s)\n", t, n / 1e9 / t);
    return 0;
}
