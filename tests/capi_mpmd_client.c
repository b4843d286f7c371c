/* A C client of MPMD closure workers, as another hydrocode would be one (built and run by
 * tests/test_capi_mpmd.py and benchmarks/bench_mpmd.py):
 *
 *   mpiexec -n K capi_mpmd_client MODE TIMEOUT DIR : -n M python -m closure serve ...
 *
 * Opens the closure with closure_open_mpi, then plays the calls listed in DIR/in<r>.bin (r: the
 * rank in the clients' communicator the library returns) and writes each call's code, message
 * and outputs to DIR/out<r>.bin (formats: tests/capi_mpmd_support.py). A call failing with a
 * worker, timeout or protocol code (>= 9) is printed as "[client r] error: code C: MESSAGE" and
 * ends the play (exit status 3, after closure_close and MPI_Finalize); other failures (bad
 * arguments) are recorded and the play goes on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "porous_closure_mpi.h"

enum { OP_END = 0, OP_QUERY = 1, OP_RELEASE = 2, OP_SAVE = 3, OP_LOAD = 4, OP_BENCH = 5 };

static FILE *in, *out;

static int64_t get(void) {
    int64_t v;
    if (fread(&v, 8, 1, in) != 1) { fprintf(stderr, "truncated ops file\n"); exit(2); }
    return v;
}
static void *get_array(int64_t n, size_t size) {
    void *p = malloc(n ? (size_t)n * size : 1);
    if (n && fread(p, size, (size_t)n, in) != (size_t)n) { fprintf(stderr, "truncated\n"); exit(2); }
    return p;
}
static char *get_text(void) {
    int64_t n = get(), padded = (n + 7) / 8 * 8;
    char *s = calloc((size_t)padded + 1, 1);
    if (padded && fread(s, 1, (size_t)padded, in) != (size_t)padded) exit(2);
    s[n] = 0;
    return s;
}
static void put(int64_t v) { fwrite(&v, 8, 1, out); }
static void put_bytes(const void *p, size_t n) {
    static const char zeros[8];
    fwrite(p, 1, n, out);
    fwrite(zeros, 1, (8 - n % 8) % 8, out);
}
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s MODE TIMEOUT DIR\n", argv[0]); return 2; }
    MPI_Init(&argc, &argv);
    MPI_Comm clients;
    closure_t *c = closure_open_mpi(MPI_COMM_WORLD, &clients, argv[1], atof(argv[2]));
    if (!c) {
        fprintf(stderr, "[client ?] error: open: code %d: %s\n", closure_last_error_code(NULL),
                closure_last_error(NULL));
        MPI_Finalize();
        return 3;
    }
    int rank, nclients;
    MPI_Comm_rank(clients, &rank);
    MPI_Allreduce(&(int){1}, &nclients, 1, MPI_INT, MPI_SUM, clients);  /* clients only */
    char path[4096];
    snprintf(path, sizeof path, "%s/in%d.bin", argv[3], rank);
    in = fopen(path, "rb");
    snprintf(path, sizeof path, "%s/out%d.bin", argv[3], rank);
    out = fopen(path, "wb");
    if (!in || !out) { fprintf(stderr, "cannot open %s\n", path); return 2; }
    put(nclients);
    int status = 0;
    for (int64_t op; (op = get()) != OP_END;) {
        int rc = 0;
        if (op == OP_QUERY || op == OP_BENCH) {
            int64_t n = get(), n_dt = get(), mask = get(), reps = op == OP_BENCH ? get() : 1;
            int64_t *ids = get_array(n, 8);
            double *p = get_array(n, 8), *dt = get_array(n_dt, 8), *o[5] = {0};
            int32_t *st = NULL;
            closure_outputs outs = {0};
            for (int f = 0; f < 5; ++f)
                if (mask & (1 << f)) o[f] = malloc(n ? (size_t)n * 8 : 1);
            if (mask & 32) st = malloc(n ? (size_t)n * 4 : 1);
            outs.hotspot_area_fraction = o[0]; outs.hotspot_temperature = o[1];
            outs.reaction_rate = o[2]; outs.uncertainty = o[3]; outs.burned_fraction = o[4];
            outs.status = st;
            double *times = malloc((size_t)reps * 8);
            for (int64_t k = 0; k < reps && rc == 0; ++k) {
                double t0 = now();
                rc = closure_query(c, n, ids, p, dt, n_dt, mask ? &outs : NULL);
                times[k] = now() - t0;
            }
            put(rc);
            put((int64_t)strlen(rc ? closure_last_error(c) : ""));
            put_bytes(rc ? closure_last_error(c) : "", strlen(rc ? closure_last_error(c) : ""));
            if (rc == 0 && op == OP_QUERY) {
                for (int f = 0; f < 5; ++f)
                    if (o[f]) put_bytes(o[f], (size_t)n * 8);
                if (st) put_bytes(st, (size_t)n * 4);
            }
            if (rc == 0 && op == OP_BENCH) put_bytes(times, (size_t)reps * 8);
            for (int f = 0; f < 5; ++f) free(o[f]);
            free(st); free(ids); free(p); free(dt); free(times);
        } else if (op == OP_RELEASE) {
            int64_t n = get();
            int64_t *ids = get_array(n, 8);
            rc = closure_release(c, n, ids);
            free(ids);
        } else if (op == OP_SAVE || op == OP_LOAD) {
            char *file = get_text();
            rc = op == OP_SAVE ? closure_save_state(c, file) : closure_load_state(c, file);
            free(file);
        } else {
            fprintf(stderr, "unknown op %lld\n", (long long)op);
            return 2;
        }
        if (op == OP_RELEASE || op == OP_SAVE || op == OP_LOAD) {
            const char *m = rc ? closure_last_error(c) : "";
            put(rc);
            put((int64_t)strlen(m));
            put_bytes(m, strlen(m));
        }
        if (rc >= CLOSURE_ERR_WORKER) {
            fprintf(stderr, "[client %d] error: code %d: %s\n", rank, rc, closure_last_error(c));
            fflush(stderr);
            status = 3;
            break;
        }
    }
    put(-1);  /* end of the record */
    fclose(out);
    fclose(in);
    closure_close(c);  /* STOP to every worker */
    MPI_Comm_free(&clients);
    MPI_Finalize();
    return status;
}
