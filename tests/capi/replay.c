/* Test driver of the C API: replays a file of calls and records every answer.
 *
 *   replay MODEL_DIR|- OPS RESULTS      (- : closure_open(NULL), the shipped model)
 *
 * tests/test_capi.py writes OPS, runs this program and compares RESULTS with the Python API's
 * answers to the same calls. All numbers little-endian int64 / float64. Each op in OPS:
 *   1 query    n n_dt flags ids[max(n,0)] pressure[max(n,0)] dt[max(n_dt,0)]
 *   2 release  n flags ids[max(n,0)]
 *   3 save     len path[len], zero-padded to a multiple of 8 bytes;   4 load  (the same)
 *   5 reopen   (close the handle, open the model again)
 *   6 n_cells
 * flags: bits 0-5 request hotspot_area_fraction, hotspot_temperature, reaction_rate,
 * uncertainty, burned_fraction, status; bit 8/9/10 pass cell_ids/pressure/dt as NULL; bit 11
 * passes out = NULL; bit 12 passes the handle as NULL.
 * Each op writes to RESULTS: rc, the error code and message (len, bytes) when rc != 0, and for a
 * query each requested output (n values; pre-filled with a sentinel, so an output that a failing
 * call must not touch can be checked); n_cells writes the count.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porous_closure.h"

static unsigned char *ops;
static size_t nops, at;
static FILE *res;

static void die(const char *what) {
    fprintf(stderr, "replay: %s\n", what);
    exit(3);
}

static int64_t geti(void) {
    int64_t v;
    if (at + 8 > nops) die("ops file truncated");
    memcpy(&v, ops + at, 8);
    at += 8;
    return v;
}

static const void *getarr(int64_t n) { /* n 8-byte values, in place */
    const void *p = ops + at;
    if (n < 0) n = 0;
    if (at + 8 * (size_t)n > nops) die("ops file truncated");
    at += 8 * (size_t)n;
    return p;
}

static void put(const void *p, size_t n) {
    if (fwrite(p, 1, n, res) != n) die("cannot write results");
}

static void puti(int64_t v) { put(&v, 8); }

static void outcome(closure_t *c, int rc) {
    puti(rc);
    if (rc) {
        const char *m = closure_last_error(c);
        puti(closure_last_error_code(c));
        puti((int64_t)strlen(m));
        put(m, strlen(m));
    }
}

int main(int argc, char **argv) {
    if (argc != 4) die("usage: replay MODEL_DIR|- OPS RESULTS");
    const char *dir = strcmp(argv[1], "-") ? argv[1] : NULL;
    FILE *f = fopen(argv[2], "rb");
    if (!f) die("cannot open the ops file");
    fseek(f, 0, SEEK_END);
    nops = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    ops = malloc(nops + 8);
    if (!ops || fread(ops, 1, nops, f) != nops) die("cannot read the ops file");
    fclose(f);
    res = fopen(argv[3], "wb");
    if (!res) die("cannot open the results file");
    closure_t *c = closure_open(dir);
    if (!c) {
        fprintf(stderr, "replay: closure_open failed (%d): %s\n", closure_last_error_code(NULL),
                closure_last_error(NULL));
        return 2;
    }
    while (at < nops) {
        const int64_t op = geti();
        if (op == 1) {
            const int64_t n = geti(), n_dt = geti(), flags = geti();
            const int64_t *ids = getarr(n);
            const double *p = getarr(n);
            const double *dt = getarr(n_dt);
            const size_t m = n > 0 ? (size_t)n : 0;
            double *o[5] = {0};
            int32_t *st = NULL;
            closure_outputs out;
            memset(&out, 0, sizeof out);
            const int none = (flags & (1 << 11)) != 0; /* out = NULL: no outputs at all */
            for (int k = 0; k < 5; ++k)
                if ((flags & (1 << k)) && !none) {
                    o[k] = malloc(8 * m + 8);
                    for (size_t i = 0; i < m; ++i) { /* sentinel: a NaN with a payload */
                        const uint64_t bits = 0x7ff8dead0000beefULL;
                        memcpy(&o[k][i], &bits, 8);
                    }
                }
            if ((flags & (1 << 5)) && !none) {
                st = malloc(4 * m + 4);
                for (size_t i = 0; i < m; ++i) st[i] = -77;
            }
            out.hotspot_area_fraction = o[0];
            out.hotspot_temperature = o[1];
            out.reaction_rate = o[2];
            out.uncertainty = o[3];
            out.burned_fraction = o[4];
            out.status = st;
            closure_t *h = (flags & (1 << 12)) ? NULL : c;
            const int rc = closure_query(h, n, (flags & (1 << 8)) ? NULL : ids,
                                         (flags & (1 << 9)) ? NULL : p,
                                         (flags & (1 << 10)) ? NULL : dt, n_dt,
                                         (flags & (1 << 11)) ? NULL : &out);
            outcome(h, rc);
            for (int k = 0; k < 5; ++k)
                if (o[k]) {
                    put(o[k], 8 * m);
                    free(o[k]);
                }
            if (st) {
                put(st, 4 * m);
                free(st);
            }
        } else if (op == 2) {
            const int64_t n = geti(), flags = geti();
            const int64_t *ids = getarr(n);
            closure_t *h = (flags & (1 << 12)) ? NULL : c;
            outcome(h, closure_release(h, n, (flags & (1 << 8)) ? NULL : ids));
        } else if (op == 3 || op == 4) {
            const int64_t len = geti();
            if (len < 0 || at + (size_t)len > nops) die("ops file truncated");
            char *path = malloc((size_t)len + 1);
            memcpy(path, ops + at, (size_t)len);
            path[len] = 0;
            at += ((size_t)len + 7) & ~(size_t)7; /* padded: arrays stay 8-byte aligned */
            outcome(c, op == 3 ? closure_save_state(c, path) : closure_load_state(c, path));
            free(path);
        } else if (op == 5) {
            closure_close(c);
            c = closure_open(dir);
            if (!c) die(closure_last_error(NULL));
            puti(0);
        } else if (op == 6) {
            puti(closure_n_cells(c));
        } else {
            die("unknown op");
        }
    }
    closure_close(c);
    if (fclose(res) != 0) die("cannot write results");
    free(ops);
    return 0;
}
