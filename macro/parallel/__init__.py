"""MPI distribution of a run: solver ranks on a Cartesian grid of blocks, closure worker ranks.

``mpiexec -n K python -m macro run CONFIG.toml --closure-workers M`` (or
:func:`run_distributed` from Python): world ranks ``0 .. K-M-1`` solve the hydro, ranks
``K-M .. K-1`` hold the rate provider (the closure) and answer the solver ranks' batched queries.

A solver rank runs the serial run loop (:meth:`macro.simulation.Simulation.run`,
:meth:`macro.solver.Solver.advance`) on its block; MPI enters only through the solver's
:class:`DistributedDomain` (overlap exchange, global time step, gathers and scatters for
output and checkpoints, errors raised on every rank together). Results equal the serial run
bit for bit. Modules: :mod:`.comm` (errors, the exception hook, waits with deadlines),
:mod:`.decomposition` (blocks), :mod:`.domain` (the distributed domain), :mod:`.workers`
(closure workers and their protocol), :mod:`.run` (the launcher). docs/mpi.md has the
details and the measured costs.
"""

from .comm import (
    DEFAULT_TIMEOUT,
    CommTimeout,
    ParallelRunError,
    env_timeout,
    install_excepthook,
)
from .decomposition import Block, Decomposition
from .domain import DistributedDomain, GatheredView
from .run import run_distributed
from .workers import (
    WorkerProxy,
    is_provider_config,
    make_provider,
    merge_results,
    serve,
    worker_of,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Block",
    "CommTimeout",
    "Decomposition",
    "DistributedDomain",
    "GatheredView",
    "ParallelRunError",
    "WorkerProxy",
    "env_timeout",
    "install_excepthook",
    "is_provider_config",
    "make_provider",
    "merge_results",
    "run_distributed",
    "serve",
    "worker_of",
]
