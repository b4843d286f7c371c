/* Throughput of the C API in table mode, timed in-process in C (benchmarks/bench_capi.py
 * compiles and runs it; no Python in the timed path).
 *
 *   capi_bench MODEL_DIR|- MIN_SECONDS ROUNDS ORDER BATCH...
 *
 * For each batch n: a fresh handle, n cells at pressures spread over 5-14 GPa, ids 7 + 3 i in
 * ascending order (ORDER = sorted: the stored order, the library's steady-state path) or one
 * fixed shuffle (ORDER = shuffled: a hydrocode's own order), a first call that creates the cells
 * (not timed), then ROUNDS timed blocks of k calls with dt = 1e-16 s (the cells stay inside
 * the table's horizon however many calls are timed; k so that a block lasts
 * about MIN_SECONDS / ROUNDS, at least one call). Prints one line per batch:
 *   n k t_1 ... t_ROUNDS        (seconds per call of each block)
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "porous_closure.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t lcg = 88172645463325252ULL;
static uint64_t next(void) { /* xorshift64: reproducible, no libc rand state */
    lcg ^= lcg << 13;
    lcg ^= lcg >> 7;
    lcg ^= lcg << 17;
    return lcg;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: capi_bench MODEL_DIR|- MIN_SECONDS ROUNDS sorted|shuffled N...\n");
        return 2;
    }
    const char *dir = strcmp(argv[1], "-") ? argv[1] : NULL;
    const double min_s = atof(argv[2]);
    const int rounds = atoi(argv[3]);
    const int shuffled = strcmp(argv[4], "shuffled") == 0;
    for (int a = 5; a < argc; ++a) {
        const int64_t n = atoll(argv[a]);
        closure_t *c = closure_open(dir);
        if (!c) {
            fprintf(stderr, "closure_open: %s\n", closure_last_error(NULL));
            return 1;
        }
        int64_t *ids = malloc(8 * (size_t)n);
        double *p = malloc(8 * (size_t)n), *A = malloc(8 * (size_t)n), *T = malloc(8 * (size_t)n),
               *R = malloc(8 * (size_t)n), *U = malloc(8 * (size_t)n);
        int32_t *S = malloc(4 * (size_t)n);
        for (int64_t i = 0; i < n; ++i) {
            ids[i] = 7 + 3 * i;
            p[i] = 5e9 + 9e9 * (double)(next() >> 11) / 9007199254740992.0;
        }
        if (shuffled)
            for (int64_t i = n - 1; i > 0; --i) {
                const int64_t j = (int64_t)(next() % (uint64_t)(i + 1)), t = ids[i];
                ids[i] = ids[j];
                ids[j] = t;
            }
        closure_outputs out = {A, T, R, U, NULL, S};
        double dt = 3e-10; /* past the 0.25 ns Ps window: Ps frozen, as in most of a run */
        if (closure_query(c, n, ids, p, &dt, 1, &out)) { /* creates the cells */
            fprintf(stderr, "closure_query: %s\n", closure_last_error(c));
            return 1;
        }
        dt = 1e-16;
        /* calibrate k: calls per block */
        int64_t k = 1;
        for (;;) {
            const double t0 = now();
            for (int64_t j = 0; j < k; ++j) closure_query(c, n, ids, p, &dt, 1, &out);
            const double el = now() - t0;
            if (el >= min_s / rounds || k >= (1 << 24)) break;
            k *= el > 0 ? (int64_t)(1.2 * (min_s / rounds) / el) + 1 : 10;
        }
        printf("%lld %lld", (long long)n, (long long)k);
        for (int r = 0; r < rounds; ++r) {
            const double t0 = now();
            for (int64_t j = 0; j < k; ++j) closure_query(c, n, ids, p, &dt, 1, &out);
            printf(" %.6e", (now() - t0) / (double)k);
        }
        printf("\n");
        fflush(stdout);
        free(ids); free(p); free(A); free(T); free(R); free(U); free(S);
        closure_close(c);
    }
    return 0;
}
