/* Shared helpers of the C benchmark programs (bench/micro.c, bench/dispatch.c).
 *
 * Every program prints its results as "key value" lines on stdout, which
 * bench/report.py turns into bench/results.md. Figures are medians over
 * repeated runs; nothing here asserts a time. */
#ifndef ZK_BENCH_H
#define ZK_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Keeps the compiler from dropping or hoisting work whose result is unused. */
#define SINK(x) __asm__ volatile("" : : "r"(x))
#define SINK_MEM(p) __asm__ volatile("" : : "r"(p) : "memory")
/* A baseline is a real out-of-line function, like a call into the library:
 * no inlining, no cloning, no interprocedural shortcuts. */
#if defined(__clang__)
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

static inline uint64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wall clock, for anything involving two threads. */
static inline uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* The calling thread's CPU time: single-threaded loops timed with it do not
 * count the time the thread was preempted by other work on a busy machine. */
static inline uint64_t cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static inline double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The q-quantile (0..1) of sorted values, nearest rank. */
static inline double quantile_sorted(const double *v, size_t n, double q) {
    size_t i = (size_t)(q * (double)n);
    return v[i < n ? i : n - 1];
}

static inline void put(const char *key, double value) {
    printf("%s %.6g\n", key, value);
    fflush(stdout);
}

/* "key v1,v2,...": every repetition, in run order, so that the report can
 * take medians and pair each repetition with its interleaved baseline. */
static inline void put_reps(const char *key, const double *v, size_t n) {
    printf("%s ", key);
    for (size_t i = 0; i < n; i++) printf("%s%.6g", i ? "," : "", v[i]);
    printf("\n");
    fflush(stdout);
}

/* BENCH_QUICK=1 (or --quick): tiny counts, only to prove everything runs. */
static inline int quick_mode(int argc, char **argv) {
    const char *q = getenv("BENCH_QUICK");
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick")) return 1;
    return q && *q && strcmp(q, "0") != 0;
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* Watch i's path: 3 to 8 levels, a unique numeric leaf, so no watched path is
 * an ancestor of another, e.g. /app/svc17/sh0/17, /app/svc31/sh1/g1/g3/999999
 * (24-25 bytes on average at 1M). */
static inline size_t gen_path(size_t i, char *buf) {
    uint32_t h = (uint32_t)i * 2654435761u;
    int depth = 3 + (int)((h >> 7) % 6), n = sprintf(buf, "/app/svc%u", (unsigned)(i % 32));
    if (depth >= 4) n += sprintf(buf + n, "/sh%u", (unsigned)((i >> 5) % 8));
    for (int k = 4; k < depth; k++) n += sprintf(buf + n, "/g%u", (unsigned)((h >> (k * 3)) % 8));
    n += sprintf(buf + n, "/%zu", i);
    return (size_t)n;
}

#endif
