"""MPI communication for a distributed run: errors that every rank raises together, the
exception hook that aborts the job on any other error, and waits with a deadline."""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ParallelRunError", "CollectiveValueError", "CommTimeout", "install_excepthook",
           "env_timeout", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 600.0  # s: longest wait for a peer before the run is aborted
ABORT_GRACE_S = 1.0  # s a failing rank leaves the launcher to forward stderr before MPI_Abort
TAG_REQ, TAG_REP, TAG_CTL = 11, 12, 13
TAG_HALO = 100  # + 2 * axis + direction
TAG_SCATTER = 200


class ParallelRunError(RuntimeError):
    """An error every rank of a distributed run raises together (the message names its origin)."""

    collective = True


class CollectiveValueError(ValueError):
    """A bad argument every rank sees alike (so every rank raises it, no abort needed)."""

    collective = True


class CommTimeout(RuntimeError):
    """A peer did not answer within the deadline (it hung or died)."""


def install_excepthook() -> None:
    """An uncaught exception prints (with the rank) and aborts the whole job.

    Errors that every rank raises together (``collective`` attribute) exit normally with status 1,
    so each rank gets to print its message before the job ends. Before aborting, a rank waits
    ``ABORT_GRACE_S``: MPI_Abort tears the launcher down at once, and stderr still in its pipes
    (this rank's message, or a peer's) would be lost, which happened with MPICH's hydra.
    """
    from mpi4py import MPI

    if getattr(sys.excepthook, "_macro_parallel", False):
        return
    rank = MPI.COMM_WORLD.Get_rank()

    def hook(exctype, value, tb):
        text = "".join(traceback.format_exception(exctype, value, tb))
        sys.stderr.write(f"[rank {rank}] uncaught {exctype.__name__}: {value}\n{text}")
        sys.stderr.flush()  # one write per rank: the ranks' lines do not interleave
        if not getattr(value, "collective", False) and MPI.COMM_WORLD.Get_size() > 1:
            time.sleep(ABORT_GRACE_S)
            MPI.COMM_WORLD.Abort(1)

    hook._macro_parallel = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def env_timeout(default: float = DEFAULT_TIMEOUT) -> float:
    """The deadline for waits on other ranks: MACRO_MPI_TIMEOUT (seconds) if set."""
    v = os.environ.get("MACRO_MPI_TIMEOUT")
    if v is None:
        return default
    try:
        t = float(v)
    except ValueError:
        t = float("nan")
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"MACRO_MPI_TIMEOUT={v!r} must be a positive number of seconds")
    return t


def format_exc(exc: BaseException) -> str:
    """``Type: message (at file:line)``: an exception as one line for another rank."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def poll(test: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``test()`` until it returns something truthy; CommTimeout after ``timeout`` s.

    Yields the core between tests at first (latency), then backs off to sleeps of up to
    0.5 ms so that ranks waiting on a slow peer leave the cores to the ranks that compute.
    """
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        r = test()
        if r:
            return r
        n += 1
        if n < 2000:
            os.sched_yield()
            continue
        time.sleep(min(5e-4, 1e-6 * (n - 2000)))
        if time.monotonic() > deadline:
            raise CommTimeout(f"no answer within {timeout:g} s while {what}")


def wait_all(reqs: list, timeout: float, what: str) -> None:
    """Complete non-blocking requests, polling with a deadline."""
    from mpi4py import MPI

    if reqs:
        poll(lambda: MPI.Request.Testall(reqs), timeout, what)


def recv_obj(comm, source: int, tag: int, timeout: float, what: str) -> tuple[Any, int]:
    """Receive a pickled object, polling with a deadline; returns (obj, source)."""
    from mpi4py import MPI

    msg = poll(lambda: comm.improbe(source=source, tag=tag), timeout, what)
    st = MPI.Status()
    obj = msg.recv(status=st)
    return obj, st.Get_source()


def send_msg(comm, buf: bytearray, dest: int, tag: int, timeout: float, what: str) -> None:
    """Send one protocol message (``MPI_BYTE``), completing it with a deadline."""
    from mpi4py import MPI

    req = comm.Isend([buf, MPI.BYTE], dest=dest, tag=tag)
    poll(req.Test, timeout, what)


def recv_msg(comm, source: int, tag: int, timeout: float, what: str) -> tuple[bytearray, int]:
    """Receive one protocol message of any size, polling with a deadline; (bytes, source)."""
    from mpi4py import MPI

    st = MPI.Status()
    msg = poll(lambda: comm.improbe(source=source, tag=tag, status=st), timeout, what)
    buf = bytearray(st.Get_count(MPI.BYTE))
    msg.Recv([buf, MPI.BYTE])
    return buf, st.Get_source()


def any_source() -> int:
    from mpi4py import MPI

    return MPI.ANY_SOURCE


def any_tag() -> int:
    from mpi4py import MPI

    return MPI.ANY_TAG


def allreduce_max(comm, values: np.ndarray, timeout: float, what: str) -> np.ndarray:
    """Element-wise MAX over the ranks of ``comm``, polling with a deadline."""
    from mpi4py import MPI

    out = np.empty_like(values)
    req = comm.Iallreduce(values, out, op=MPI.MAX)
    poll(req.Test, timeout, what)
    return out
