"""Closure worker ranks: the provider (the closure) lives on the last M ranks of a distributed
run and answers the solver ranks' batched queries.

Cell ``id`` belongs to worker ``id * M // N`` (contiguous id ranges), so a cell's closure state
always lives on the same worker. On a solver rank the coupling adapter's provider is a
:class:`WorkerProxy`: its ``query`` sends each worker the cells it owns and reassembles the
replies. Each request is answered on its own, so results do not depend on the rank count as
long as a cell's answer does not depend on the other cells in the batch (the closure's
contract). The provider object is built on the workers from an importable factory
(``"module:callable"``), so the hydro never imports the closure.

Messages are those of the closure wire protocol (:mod:`macro.parallel.wire`, typed arrays, no
pickles), the one a C or Fortran client speaks to ``closure serve`` workers: requests on
TAG_REQ, replies on TAG_REP, checkpoint state requests on TAG_CTL.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..problem import resolve_factory
from . import wire
from .comm import (
    DEFAULT_TIMEOUT,
    TAG_CTL,
    TAG_REP,
    TAG_REQ,
    ParallelRunError,
    any_source,
    any_tag,
    format_exc,
    poll,
    recv_msg,
    send_msg,
)

__all__ = ["WorkerProxy", "worker_of", "serve", "make_provider", "is_provider_config",
           "merge_results"]


def worker_of(ids: np.ndarray, ncells: int | None, nworkers: int) -> np.ndarray:
    """Worker index owning each cell id: contiguous id ranges of a grid of ``ncells`` cells,
    or ``id mod nworkers`` for ids of any range (``ncells`` None: clients of other codes)."""
    if ncells is None:
        return np.mod(ids.astype(np.int64), nworkers)
    return (ids.astype(np.int64) * nworkers) // ncells


class WorkerProxy:
    """Stands in for the provider on a solver rank: ``query`` is answered by the worker ranks.

    Same call signature as the closure's ``query`` (``mode``, ``deterministic``, ``seed``); the
    answer is a :class:`~macro.parallel.wire.WireResult` whose per-cell fields are in the order
    of ``cell_ids``.
    """

    def __init__(self, comm, workers: list[int], ncells: int | None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.comm, self.workers, self.ncells, self.timeout = comm, list(workers), ncells, timeout
        self.calls = 0

    def _reply(self, dest: int, what: str) -> tuple[int, int, dict]:
        buf, _ = recv_msg(self.comm, dest, TAG_REP, self.timeout, what)
        kind, call, arrays = wire.decode(buf)
        if kind == wire.ERROR:
            raise ParallelRunError(f"closure worker rank {dest} failed: "
                                   f"{wire.message_of(arrays)}")
        return kind, call, arrays

    def query(self, cell_ids, pressure, dt, *, mode: str = "table", deterministic: bool = True,
              seed: int | None = None, **kwargs) -> wire.WireResult:
        if kwargs:
            raise TypeError(f"query() options {sorted(kwargs)} do not travel to closure "
                            "workers (the protocol carries mode, deterministic and seed)")
        ids = np.asarray(cell_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"cell_ids must be a 1D integer array, got {ids.dtype} {ids.shape}")
        n = ids.size
        p = np.asarray(pressure)
        dt_arr = np.asarray(dt)
        per_cell_dt = dt_arr.ndim > 0
        if n and self.ncells is not None and (ids.min() < 0 or ids.max() >= self.ncells):
            k = int(np.argmax((ids < 0) | (ids >= self.ncells)))
            raise ValueError(f"cell_ids[{k}] = {ids[k]} is outside [0, {self.ncells})")
        self.calls += 1
        results = self._scatter(ids, lambda sel: wire.query_request(
            ids[sel], p[sel], dt_arr[sel] if per_cell_dt else dt, mode, deterministic, seed),
            wire.QUERY)
        return wire.WireResult(merge_results(results, n))

    def release(self, cell_ids) -> None:
        """Forget the cells' state on the workers that own them."""
        ids = np.asarray(cell_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"cell_ids must be a 1D integer array, got {ids.dtype} {ids.shape}")
        self.calls += 1
        self._scatter(ids, lambda sel: {"cell_ids": ids[sel].astype(np.int64)}, wire.RELEASE)

    def _scatter(self, ids: np.ndarray, arrays_of, kind: int) -> list:
        """Send each worker its cells' request, collect the replies: [(fields, positions)]."""
        from mpi4py import MPI

        n = ids.size
        w_of = worker_of(ids, self.ncells, len(self.workers)) if n else np.zeros(0, np.int64)
        order = np.argsort(w_of, kind="stable")
        bounds = np.searchsorted(w_of[order], np.arange(len(self.workers) + 1))
        parts, sends = [], []
        for w, dest in enumerate(self.workers):
            sel = order[bounds[w]:bounds[w + 1]]
            if sel.size == 0 and not (n == 0 and w == 0):
                continue
            buf = wire.encode(kind, self.calls, arrays_of(sel))
            sends.append((self.comm.Isend([buf, MPI.BYTE], dest=dest, tag=TAG_REQ), buf))
            parts.append((dest, sel))
        results = []
        for dest, sel in parts:
            _, call, arrays = self._reply(dest, f"waiting for closure worker rank {dest}")
            if call != self.calls:
                raise RuntimeError(f"worker rank {dest} answered call {call}, expected "
                                   f"{self.calls}")
            results.append((arrays, sel))
        for req, _buf in sends:  # answered, so received: completes at once
            poll(req.Test, self.timeout, "sending a request")
        return results

    def state_dicts(self) -> list:
        """Every worker's ``provider.state_dict()`` (collected by the caller on rank 0)."""
        for dest in self.workers:
            send_msg(self.comm, wire.encode(wire.STATE, 0), dest, TAG_CTL, self.timeout,
                     f"asking closure worker rank {dest} for its state")
        return [wire.parse_state(self._reply(dest, "waiting for the state of closure worker "
                                                   f"rank {dest}")[2])
                for dest in self.workers]

    def load_state_dicts(self, states: list) -> None:
        for dest, st in zip(self.workers, states, strict=True):
            send_msg(self.comm, wire.encode(wire.LOAD, 0, wire.state_arrays(st)), dest,
                     TAG_CTL, self.timeout, f"sending closure worker rank {dest} its state")
        for dest in self.workers:
            self._reply(dest, f"waiting for closure worker rank {dest} to load its state")

    def stop(self, message: str | None) -> None:
        """Tell every worker this solver rank is done (with its error message, if any)."""
        for dest in self.workers:
            send_msg(self.comm, wire.encode(wire.STOP, 0, wire.message_arrays(message)), dest,
                     TAG_REQ, self.timeout, f"stopping closure worker rank {dest}")


def merge_results(parts: list, n: int) -> dict[str, np.ndarray]:
    """One set of per-cell fields from per-worker ones ((fields, positions) pairs): every
    field put back in request order."""
    first = parts[0][0]
    if len(parts) == 1 and parts[0][1].size == n and np.array_equal(parts[0][1], np.arange(n)):
        return first
    merged = {}
    for name, v0 in first.items():
        out = np.empty((n, *v0.shape[1:]), dtype=v0.dtype)
        for fields, sel in parts:
            if name not in fields:
                raise ParallelRunError(f"closure workers answered with different fields "
                                       f"({sorted(first)} and {sorted(fields)})")
            out[sel] = fields[name]
        merged[name] = out
    return merged


def _answer(provider, kind: int, call: int, arrays: dict, src: int) -> bytearray:
    """The reply to one request (errors become ERROR replies naming the call and client)."""
    try:
        if kind == wire.QUERY:
            ids, p, dt, opts = wire.parse_query(arrays)
            res = provider.query(ids, p, dt, **opts)
            return wire.encode(wire.OK, call, wire.result_arrays(res, ids.size))
        if kind == wire.RELEASE:
            provider.release(arrays["cell_ids"])
            return wire.encode(wire.OK, call)
        if kind == wire.STATE:
            sd = getattr(provider, "state_dict", None)
            return wire.encode(wire.OK, call, wire.state_arrays(sd() if callable(sd) else None))
        if kind == wire.LOAD:
            state = wire.parse_state(arrays)
            load = getattr(provider, "load_state_dict", None)
            if state is None and callable(load):
                raise ValueError("the checkpoint holds no state for this stateful provider; "
                                 "the restart would not be identical")
            if state is not None:
                if not callable(load):
                    raise TypeError(f"{type(provider).__name__} has no load_state_dict() "
                                    "for the checkpoint's provider state")
                load(state)
            return wire.encode(wire.OK, call)
        raise wire.WireError(f"a worker does not answer {wire.KIND_NAMES[kind]!r} messages")
    except Exception as exc:  # the client raises it (on every solver rank)
        return wire.encode(wire.ERROR, call, wire.message_arrays(
            f"{format_exc(exc)} in {wire.KIND_NAMES.get(kind, kind)} call {call} from rank "
            f"{src}"))


def serve(comm, provider, nclients: int, timeout: float, clients: list[int] | None = None
          ) -> str | None:
    """Worker loop: answer requests until every client rank said stop. Returns the first stop
    message (None on a clean stop). Gives up after 3 x ``timeout`` without a request (the
    clients' own waits expire first). ``clients``: the ranks allowed to send (default: any)."""
    stopped = 0
    message = None
    allowed = None if clients is None else set(clients)
    while stopped < nclients:
        buf, src = recv_msg(comm, any_source(), any_tag(), 3.0 * timeout,
                            "waiting for requests from the solver ranks")
        if allowed is not None and src not in allowed:
            raise RuntimeError(f"closure worker got a message from rank {src}, which is not "
                               "a client")
        try:
            kind, call, arrays = wire.decode(buf)
        except wire.WireError as exc:
            send_msg(comm, wire.encode(wire.ERROR, 0, wire.message_arrays(
                f"bad message from rank {src}: {exc}")), src, TAG_REP, timeout,
                f"answering rank {src}")
            continue
        if kind == wire.STOP:
            stopped += 1
            if message is None:
                message = wire.message_of(arrays)
            continue
        send_msg(comm, _answer(provider, kind, call, arrays, src), src, TAG_REP, timeout,
                 f"answering rank {src}")
    return message


def is_provider_config(cfg: dict) -> bool:
    """True when the config's rate comes from a ``query`` provider ([reaction] type closure)."""
    return (cfg.get("reaction") or {}).get("type") == "closure"


def make_provider(cfg: dict, provider=None) -> Any:
    """The provider object on a holder rank: ``provider`` (an object with ``query``, or a
    zero-argument factory), else the config's ``[reaction] provider`` factory."""
    if provider is not None:
        obj = provider if hasattr(provider, "query") else provider()
    else:
        rcfg = cfg.get("reaction") or {}
        if "provider" not in rcfg:
            raise ValueError("[reaction] type = 'closure' needs provider = "
                             "'package.module:factory' (or pass provider= from Python)")
        args = rcfg.get("provider_args", {})
        if not isinstance(args, dict):
            raise ValueError(f"[reaction] provider_args={args!r} must be a table")
        obj = resolve_factory(rcfg["provider"])(**args)
    if not callable(getattr(obj, "query", None)):
        raise TypeError(f"provider {type(obj).__name__} has no query() method")
    return obj
