/* porous_closure_mpi.h: the closure's C API with MPMD closure workers (docs/capi.md, section
 * "MPMD workers"; the wire protocol: docs/protocol.md).
 *
 *   mpiexec -n K ./app : -n M python -m closure serve [--model DIR] [--device cpu|cuda]
 *
 *   MPI_Comm clients;
 *   closure_t *c = closure_open_mpi(MPI_COMM_WORLD, &clients, "table", 0.0);
 *   ... use clients where the app used MPI_COMM_WORLD; closure_query etc. as in process ...
 *   closure_close(c);   // STOP to every worker
 *
 * Link libporous_closure_mpi (it holds the whole C API: link it instead of libporous_closure):
 *   mpicc app.c $(python -m closure.capi --mpi --cflags --libs)
 * Only this header needs mpi.h; porous_closure.h stays MPI-free.
 */
#ifndef POROUS_CLOSURE_MPI_H
#define POROUS_CLOSURE_MPI_H

#include <mpi.h>

#include "porous_closure.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collective over world (normally MPI_COMM_WORLD; MPI initialized): the protocol's handshake
 * with the worker ranks (MPI_Allgather of {role 0, protocol version}, then
 * MPI_Comm_split(world, 0, rank)), then one empty query to every worker (are they alive, does
 * the model answer this mode, which outputs it has). *clients_out (may be NULL) receives the
 * client ranks' communicator: the application uses it instead of world (free it with
 * MPI_Comm_free after closure_close). mode: "table" or "online" (deterministic); NULL: "table".
 * timeout_s: how long a call waits for a worker (> 0; 0: $MACRO_MPI_TIMEOUT, else 600 s).
 * Returns NULL on error: closure_last_error(NULL) says why. */
CLOSURE_API closure_t *closure_open_mpi(MPI_Comm world, MPI_Comm *clients_out, const char *mode,
                                        double timeout_s);

/* The same for Fortran callers: world is a Fortran handle (MPI_Comm_c2f/f2c); *clients_out
 * receives one. */
CLOSURE_API closure_t *closure_open_mpi_f(MPI_Fint world, MPI_Fint *clients_out,
                                          const char *mode, double timeout_s);

#ifdef __cplusplus
}
#endif

#endif /* POROUS_CLOSURE_MPI_H */
