/* porous_closure.h: the closure's C API (table mode, no Python interpreter).
 *
 * The same answers as Python's closure.Closure.load(model_dir).query(..., mode="table"), to the
 * last bit, for the same call sequence: per-cell state keyed by int64 cell ids (created when a
 * cell's pressure first exceeds the trigger), shock pressure Ps taken over the first meso step,
 * time since the shock, releases, checkpoints. docs/capi.md describes the calls, the error
 * codes, thread safety and the file formats; build flags: python -m closure.capi --cflags --libs
 *
 *   closure_t *c = closure_open(NULL);              // the shipped default model
 *   closure_outputs out = {0};
 *   out.reaction_rate = rate; out.status = status;  // NULL outputs are skipped
 *   if (closure_query(c, n, ids, p, &dt, 1, &out) != CLOSURE_OK)
 *       fprintf(stderr, "%s\n", closure_last_error(c));
 *   closure_close(c);
 *
 * Units: pressure Pa (>= 0, finite), dt s (in (0, 1]), rates 1/s, temperatures K.
 * Arrays are plain C arrays of n elements; outputs must not overlap the inputs.
 */
#ifndef POROUS_CLOSURE_H
#define POROUS_CLOSURE_H

#include <stdint.h>

#if defined(_WIN32)
#define CLOSURE_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define CLOSURE_API __attribute__((visibility("default")))
#else
#define CLOSURE_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* version of this API (header and library agree: closure_api_version()) */
#define CLOSURE_API_VERSION 1

/* return codes: 0 success, non-zero failure (the call changed no state; the message is in
 * closure_last_error) */
#define CLOSURE_OK 0
#define CLOSURE_ERR_ARGUMENT 1    /* NULL handle or pointer, n < 0, n_dt neither 1 nor n */
#define CLOSURE_ERR_VALUE 2       /* NaN/Inf, a value out of range, a repeated cell id */
#define CLOSURE_ERR_UNSUPPORTED 3 /* an output this model does not provide (burned_fraction) */
#define CLOSURE_ERR_IO 4          /* a file could not be opened, read or written */
#define CLOSURE_ERR_FORMAT 5      /* a file is malformed, truncated, corrupt or of another version */
#define CLOSURE_ERR_MISMATCH 6    /* a file belongs to another model or is stale */
#define CLOSURE_ERR_NOMEM 7       /* out of memory */
#define CLOSURE_ERR_INTERNAL 8    /* a bug: please report it with the message */
/* MPMD workers only (closure_open_mpi, porous_closure_mpi.h) */
#define CLOSURE_ERR_WORKER 9      /* a worker answered ERROR: its message (that worker unchanged) */
#define CLOSURE_ERR_TIMEOUT 10    /* no answer within the deadline (names the rank); the handle is
                                     down: later calls fail alike, closure_close still frees it */
#define CLOSURE_ERR_PROTOCOL 11   /* handshake failed, or a reply broke the protocol (handle down) */

/* per-cell status (closure_outputs.status), as in Python */
#define CLOSURE_STATUS_OK 0               /* shocked, Ps inside the training envelope */
#define CLOSURE_STATUS_NOT_SHOCKED 1      /* no state: A = 0, T = threshold, rate 0, U 0 */
#define CLOSURE_STATUS_OUTSIDE_ENVELOPE 2 /* Ps clamped to the envelope edge's response */

typedef struct closure closure_t;

typedef struct {                /* any pointer may be NULL: that output is skipped */
    double *hotspot_area_fraction, *hotspot_temperature, *reaction_rate, *uncertainty;
    double *burned_fraction;     /* requesting it from a model that lacks it is an error naming it */
    int32_t *status;
} closure_outputs;

/* Open the model in directory model_dir (NULL: the shipped default, found beside the library):
 * reads model_dir/closure_table.bin (python -m closure table export MODEL_DIR) and checks that
 * it was exported for model_dir/model.pt (sha256) and, where it exists, from the current
 * model_dir/closure_table.h5. Returns NULL on error: closure_last_error(NULL) says why. */
CLOSURE_API closure_t *closure_open(const char *model_dir);

/* Response of n cells over a step: cell_ids unique; pressure (Pa) per cell; dt (s) one value
 * (n_dt = 1) or one per cell (n_dt = n); out may be NULL (only the state advances). */
CLOSURE_API int closure_query(closure_t *c, int64_t n, const int64_t *cell_ids,
                              const double *pressure, const double *dt, int64_t n_dt,
                              closure_outputs *out);

/* Free the state of cells cell_ids (ids without state are ignored; repeats allowed). */
CLOSURE_API int closure_release(closure_t *c, int64_t n, const int64_t *cell_ids);

/* All per-cell state to / from a file (docs/capi.md: format), written atomically (temporary
 * file in the same directory, fsync, rename); a load replaces all state, checked first. */
CLOSURE_API int closure_save_state(closure_t *c, const char *path);
CLOSURE_API int closure_load_state(closure_t *c, const char *path);

/* The message of the last failed call on c (c NULL: of the last failed call in this thread,
 * closure_open included); "" if none. Valid until the next failing call on c (this thread). */
CLOSURE_API const char *closure_last_error(const closure_t *c);

/* Free c and its state (NULL: nothing). */
CLOSURE_API void closure_close(closure_t *c);

/* -- extras ---------------------------------------------------------------------------------- */

/* The code of the last failed call on c (c NULL: in this thread, closure_open included); 0 if
 * none. */
CLOSURE_API int closure_last_error_code(const closure_t *c);

/* Number of cells with state (shocked, not released); -1 for a NULL handle or an MPMD handle
 * (the state lives on the workers). */
CLOSURE_API int64_t closure_n_cells(const closure_t *c);

/* CLOSURE_API_VERSION of the library. */
CLOSURE_API int closure_api_version(void);

/* For language bindings (the Fortran module): record message as c's last error (and this
 * thread's) and return code, so bindings report their own argument checks the same way. */
CLOSURE_API int closure_set_error(closure_t *c, int code, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* POROUS_CLOSURE_H */
