"""Closure worker ranks: the provider (the closure) lives on the last M ranks of a distributed
run and answers the solver ranks' batched queries.

Cell ``id`` belongs to worker ``id * M // N`` (contiguous id ranges), so a cell's closure state
always lives on the same worker. On a solver rank the coupling adapter's provider is a
:class:`WorkerProxy`: its ``query`` sends each worker the cells it owns and reassembles the
replies. Each request is answered on its own, so results do not depend on the rank count as
long as a cell's answer does not depend on the other cells in the batch (the closure's
contract). The provider object is built on the workers from an importable factory
(``"module:callable"``), so the hydro never imports the closure.

Protocol (pickled tuples, world communicator): ``("query", call, ids, p, dt, opts)`` on
TAG_REQ answered by ``("ok", call, result)`` or ``("error", call, message)`` on TAG_REP;
``("state", None)`` / ``("load", state)`` on TAG_CTL for checkpoints; ``("stop", message)``
on TAG_REQ once per solver rank ends :func:`serve`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..problem import resolve_factory
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
    recv_obj,
)

__all__ = ["WorkerProxy", "worker_of", "serve", "make_provider", "is_provider_config",
           "merge_results"]


def worker_of(ids: np.ndarray, ncells: int, nworkers: int) -> np.ndarray:
    """Worker index owning each global cell id: contiguous id ranges (fixed for a grid)."""
    return (ids.astype(np.int64) * nworkers) // ncells


class WorkerProxy:
    """Stands in for the provider on a solver rank: ``query`` is answered by the worker ranks.

    Same call signature as the closure's ``query``; the result has the provider result's type
    with per-cell arrays reassembled in the order of ``cell_ids``.
    """

    def __init__(self, comm, workers: list[int], ncells: int, timeout: float = DEFAULT_TIMEOUT):
        self.comm, self.workers, self.ncells, self.timeout = comm, list(workers), ncells, timeout
        self.calls = 0

    def query(self, cell_ids, pressure, dt, *, mode: str = "table", deterministic: bool = True,
              seed: int | None = None, **kwargs) -> Any:
        ids = np.asarray(cell_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"cell_ids must be a 1D integer array, got {ids.dtype} {ids.shape}")
        n = ids.size
        p = np.asarray(pressure)
        dt_arr = np.asarray(dt)
        per_cell_dt = dt_arr.ndim > 0
        if n and (ids.min() < 0 or ids.max() >= self.ncells):
            k = int(np.argmax((ids < 0) | (ids >= self.ncells)))
            raise ValueError(f"cell_ids[{k}] = {ids[k]} is outside [0, {self.ncells})")
        w_of = worker_of(ids, self.ncells, len(self.workers)) if n else np.zeros(0, np.int64)
        order = np.argsort(w_of, kind="stable")
        bounds = np.searchsorted(w_of[order], np.arange(len(self.workers) + 1))
        opts = dict(kwargs, mode=mode, deterministic=deterministic, seed=seed)
        self.calls += 1
        parts, sends = [], []
        for w, dest in enumerate(self.workers):
            sel = order[bounds[w]:bounds[w + 1]]
            if sel.size == 0 and not (n == 0 and w == 0):
                continue
            dt_w = dt_arr[sel] if per_cell_dt else dt
            sends.append(self.comm.isend(("query", self.calls, ids[sel], p[sel], dt_w, opts),
                                         dest=dest, tag=TAG_REQ))
            parts.append((dest, sel))
        results = {}
        for dest, _ in parts:
            reply, _src = recv_obj(self.comm, dest, TAG_REP, self.timeout,
                                    f"waiting for closure worker rank {dest}")
            kind, call, payload = reply
            if kind == "error":
                raise ParallelRunError(f"closure worker rank {dest} failed: {payload}")
            if call != self.calls:
                raise RuntimeError(f"worker rank {dest} answered call {call}, expected "
                                   f"{self.calls}")
            results[dest] = payload
        for req in sends:  # answered, so received: completes at once
            poll(lambda req=req: req.test()[0], self.timeout, "sending a query")
        return merge_results([(results[d], sel) for d, sel in parts], n)

    def state_dicts(self) -> list:
        """Every worker's ``provider.state_dict()`` (collected by the caller on rank 0)."""
        out = []
        for dest in self.workers:
            self.comm.send(("state", None), dest=dest, tag=TAG_CTL)
        for dest in self.workers:
            reply, _ = recv_obj(self.comm, dest, TAG_REP, self.timeout,
                                 f"waiting for the state of closure worker rank {dest}")
            if reply[0] == "error":
                raise ParallelRunError(f"closure worker rank {dest} failed: {reply[2]}")
            out.append(reply[2])
        return out

    def load_state_dicts(self, states: list) -> None:
        for dest, st in zip(self.workers, states, strict=True):
            self.comm.send(("load", st), dest=dest, tag=TAG_CTL)
        for dest in self.workers:
            reply, _ = recv_obj(self.comm, dest, TAG_REP, self.timeout,
                                 f"waiting for closure worker rank {dest} to load its state")
            if reply[0] == "error":
                raise ParallelRunError(f"closure worker rank {dest} failed: {reply[2]}")


def merge_results(parts: list, n: int) -> Any:
    """One result object from per-worker results: per-cell arrays put back in request order."""
    first = parts[0][0]
    if len(parts) == 1 and parts[0][1].size == n and np.array_equal(parts[0][1], np.arange(n)):
        return first
    if dataclasses.is_dataclass(first):
        names = [f.name for f in dataclasses.fields(first)]
    else:
        names = list(vars(first))
    merged = {}
    for name in names:
        v0 = getattr(first, name)
        if isinstance(v0, np.ndarray) and v0.ndim >= 1 and v0.shape[0] == parts[0][1].size:
            out = np.empty((n, *v0.shape[1:]), dtype=v0.dtype)
            for res, sel in parts:
                out[sel] = getattr(res, name)
            merged[name] = out
    if dataclasses.is_dataclass(first):
        return dataclasses.replace(first, **merged)
    obj = object.__new__(type(first))
    obj.__dict__.update(vars(first))
    obj.__dict__.update(merged)
    return obj


def serve(comm, provider, nsolvers: int, timeout: float) -> str | None:
    """Worker loop: answer queries until every solver rank said stop. Returns the stop message
    (None on a clean stop). Gives up after 3 x ``timeout`` without a request (the solver ranks'
    own waits expire first)."""
    stopped = 0
    message = None
    while stopped < nsolvers:
        obj, src = recv_obj(comm, any_source(), any_tag(), 3.0 * timeout,
                             "waiting for requests from the solver ranks")
        kind = obj[0]
        if kind == "query":
            _, call, ids, p, dt, opts = obj
            try:
                res = provider.query(ids, p, dt, **opts)
                reply = ("ok", call, res)
            except Exception as exc:  # the solver rank raises it on every rank
                reply = ("error", call, f"{format_exc(exc)} in query call {call} from solver "
                                        f"rank {src}")
            comm.send(reply, dest=src, tag=TAG_REP)
        elif kind == "state":
            try:
                sd = getattr(provider, "state_dict", None)
                reply = ("ok", 0, sd() if callable(sd) else None)
            except Exception as exc:
                reply = ("error", 0, format_exc(exc))
            comm.send(reply, dest=src, tag=TAG_REP)
        elif kind == "load":
            try:
                load = getattr(provider, "load_state_dict", None)
                if obj[1] is None and callable(load):
                    raise ValueError("the checkpoint holds no state for this stateful provider; "
                                     "the restart would not be identical")
                if obj[1] is not None:
                    if not callable(load):
                        raise TypeError(f"{type(provider).__name__} has no load_state_dict() "
                                        "for the checkpoint's provider state")
                    load(obj[1])
                reply = ("ok", 0, None)
            except Exception as exc:
                reply = ("error", 0, format_exc(exc))
            comm.send(reply, dest=src, tag=TAG_REP)
        elif kind == "stop":
            stopped += 1
            if obj[1] is not None and message is None:
                message = obj[1]
        else:
            raise RuntimeError(f"worker got unknown request {kind!r} from rank {src}")
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
