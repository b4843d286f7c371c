"""Closure workers for other programs (MPMD): ``mpiexec -n K app : -n M python -m closure serve``.

Both programs share ``MPI_COMM_WORLD``. At start every rank takes part in one collective
handshake (what a C, C++ or Fortran client does as well, see ``docs/protocol.md``):

1. ``MPI_Allgather`` of two int64 per rank, ``(role, protocol version)``: role 0 client,
   1 worker;
2. ``MPI_Comm_split(MPI_COMM_WORLD, role, rank)``: the clients' communicator (the one the
   application uses in place of ``MPI_COMM_WORLD``) and the workers'.

Then clients send requests of the wire protocol (:mod:`macro.parallel.wire`) on TAG_REQ = 11 to
the worker owning each cell (``id mod M``, the M workers in rank order) and read replies on
TAG_REP = 12; each client ends with a STOP to every worker, and the workers exit once every
client has stopped. A client that hears nothing within its deadline raises (a dead or hung
worker never hangs a client); a worker that hears nothing for 3 deadlines exits with an error.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..problem import resolve_factory
from . import wire
from .comm import CollectiveValueError, env_timeout, install_excepthook
from .workers import WorkerProxy, serve

__all__ = ["CLIENT", "WORKER", "handshake", "connect", "serve_workers"]

CLIENT, WORKER = 0, 1


def handshake(world, role: int) -> tuple[list[int], list[int], object]:
    """The collective start of an MPMD run: ``(client ranks, worker ranks, my role's
    communicator)``. Every rank raises alike if the ranks disagree on the protocol version or
    either side is missing."""
    mine = np.array([role, wire.VERSION], np.int64)
    table = np.empty((world.Get_size(), 2), np.int64)
    world.Allgather(mine, table)
    roles, versions = table[:, 0], table[:, 1]
    bad = np.flatnonzero(versions != wire.VERSION)
    if bad.size:
        raise CollectiveValueError(f"rank {bad[0]} speaks closure protocol version "
                                   f"{versions[bad[0]]}, rank {world.Get_rank()} speaks "
                                   f"{wire.VERSION}")
    clients = np.flatnonzero(roles == CLIENT).tolist()
    workers = np.flatnonzero(roles == WORKER).tolist()
    if not clients or not workers or len(clients) + len(workers) != roles.size:
        raise CollectiveValueError(f"an MPMD closure run needs client ranks (role 0) and worker "
                                   f"ranks (role 1); the roles were {roles.tolist()}")
    return clients, workers, world.Split(role, world.Get_rank())


def connect(world=None, timeout: float | None = None) -> tuple[WorkerProxy, object]:
    """On a client rank: the handshake, then ``(closure, client communicator)``; the closure
    has ``query``, ``release`` and ``stop`` (call it once, at the end)."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD if world is None else world
    _, workers, sub = handshake(world, CLIENT)
    return WorkerProxy(world, workers, None, env_timeout() if timeout is None else timeout), sub


def serve_workers(provider, world=None, timeout: float | None = None) -> None:
    """On a worker rank: the handshake, then answer the clients until each has stopped.
    Raises (naming it) if a client stopped with an error message."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD if world is None else world
    clients, _, _ = handshake(world, WORKER)
    message = serve(world, provider, len(clients), env_timeout() if timeout is None else timeout,
                    clients=clients)
    if message is not None:
        raise RuntimeError(f"a client stopped with an error: {message}")


def main(argv: list[str] | None = None) -> int:
    """``python -m macro.parallel.mpmd --provider module:factory``: workers around any
    provider factory (``closure serve`` is the one for the closure)."""
    ap = argparse.ArgumentParser(prog="python -m macro.parallel.mpmd", description=main.__doc__)
    ap.add_argument("--provider", required=True, help="importable 'module:factory'")
    ap.add_argument("--args", default="", help="factory keywords, k=v,k=v (numbers)")
    a = ap.parse_args(argv)
    kwargs = {}
    for item in filter(None, a.args.split(",")):
        k, _, v = item.partition("=")
        kwargs[k.strip()] = float(v) if "." in v or "e" in v.lower() else int(v)
    install_excepthook()
    serve_workers(resolve_factory(a.provider)(**kwargs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
