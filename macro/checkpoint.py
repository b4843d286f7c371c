"""What a run's checkpoint holds, and how a run resumes from one (the HDF5 container with its
atomic write: :func:`macro.io.save_checkpoint`).

A checkpoint holds ``U`` (the whole grid, ghosts included), ``t``, ``step``, the config and
the model, the rate's ``state_dict()`` when the rate is stateful (a closure provider's
per-cell state: a restart without it would not be identical) under ``rate_state.*``, and the
``extra_state`` objects of the solver (the shock tracker) under ``extra_<name>.*``.

A decomposed run (:mod:`macro.parallel`) writes the same file with attributes
``solver_ranks`` and ``closure_workers``, solver rank 0's adapter state with worker 0's
provider state under ``provider`` as ``rate_state.*`` (exactly the serial layout for one
solver rank and at most one worker), the other ranks' adapter states as
``rate_state_rank{k}.*`` and the other workers' provider states as ``closure_state_{w}.*``.
Per-cell closure state cannot be re-split without knowing its structure, so a checkpoint
with a stateful rate restarts only on the layout that wrote it (a serial one also on one
solver rank with at most one worker); stateless runs restart on any layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import flatten_state, load_checkpoint, save_checkpoint, unflatten_state

__all__ = ["RATE_STATE", "Saved", "compose", "read", "restore", "save"]

RATE_STATE = "rate_state"  # array prefix of the rate's state_dict()


def compose(U: np.ndarray, t: float, step: int, config: dict, model: dict, *,
            rate_states: list | tuple = (), worker_states: list | tuple = (),
            extras: dict | None = None,
            layout: tuple[int, int] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and attributes of a checkpoint: ``rate_states`` per solver rank (one for a
    serial run), ``worker_states`` per closure worker (None for a stateless provider),
    ``extras`` name -> state dict, ``layout`` (solver ranks, closure workers) of a decomposed
    run (None: the serial layout)."""
    arrays: dict[str, np.ndarray] = {"U": U}
    attrs: dict[str, Any] = {"t": t, "step": step, "config": config, "model": model}
    if layout is not None:
        attrs["solver_ranks"], attrs["closure_workers"] = layout
    if rate_states:
        first = dict(rate_states[0])
        if worker_states and worker_states[0] is not None:
            first["provider"] = worker_states[0]
        a, attrs["rate_state_tree"] = flatten_state(first, RATE_STATE)
        arrays.update(a)
        rank_trees, worker_trees = [], []
        for k, st in enumerate(rate_states[1:], start=1):
            a, tree = flatten_state(st, f"rate_state_rank{k}")
            arrays.update(a)
            rank_trees.append(tree)
        for w, st in enumerate(worker_states[1:], start=1):
            a, tree = flatten_state(st if st is not None else {}, f"closure_state_{w}")
            arrays.update(a)
            worker_trees.append(tree if st is not None else None)
        if rank_trees:
            attrs["rate_state_rank_trees"] = rank_trees
        if worker_trees:
            attrs["closure_state_trees"] = worker_trees
    trees = {}
    for name, state in (extras or {}).items():
        a, trees[name] = flatten_state(state, f"extra_{name}")
        arrays.update(a)
    if trees:
        attrs["extra_state_trees"] = trees
    return arrays, attrs


def _rate_state_dict(rate) -> dict | None:
    sd = getattr(rate, "state_dict", None)
    return sd() if callable(sd) else None


def extra_states(solver) -> dict[str, dict]:
    """The state dicts of the solver's ``extra_state`` objects."""
    return {name: obj.state_dict() for name, obj in solver.extra_state.items()}


def save(path: str | Path, solver) -> None:
    """Atomic checkpoint of a serial solver (the whole state, ghosts included)."""
    rs = _rate_state_dict(solver.rate)
    save_checkpoint(path, *compose(solver.U, solver.t, solver.step, solver.config,
                                   solver.model.to_dict(),
                                   rate_states=[rs] if rs is not None else [],
                                   extras=extra_states(solver)))


def restore(path: str | Path, solver) -> None:
    """Restore a serial solver's U, t, step, rate state and extra state from ``path``."""
    arrays, attrs = load_checkpoint(path)
    U = arrays["U"]
    if U.shape != solver.U.shape:
        raise ValueError(f"checkpoint {path} holds U of shape {U.shape}, "
                         f"this solver has {solver.U.shape}")
    load = getattr(solver.rate, "load_state_dict", None)
    if "rate_state_tree" in attrs and not callable(load):
        raise ValueError(f"checkpoint {path} holds reaction-rate state but rate="
                         f"{solver.rate!r} has no load_state_dict()")
    if callable(load):
        # a decomposed run's checkpoint splits the per-cell rate state over its ranks
        split = (int(attrs.get("solver_ranks", 1)), int(attrs.get("closure_workers", 0)))
        if "rate_state_tree" in attrs and (split[0] > 1 or split[1] > 1):
            raise ValueError(f"checkpoint {path} holds the rate state of {split[0]} solver "
                             f"rank(s) and {split[1]} closure worker(s); restart it under "
                             "MPI with the same layout (macro.parallel)")
        if "rate_state_tree" not in attrs:
            raise ValueError(f"checkpoint {path} holds no reaction-rate state but the rate "
                             "model is stateful; the restart would not be identical")
        load(unflatten_state(arrays, attrs["rate_state_tree"], RATE_STATE))
    for name, tree in attrs.get("extra_state_trees", {}).items():
        if name in solver.extra_state:
            solver.extra_state[name].load_state_dict(
                unflatten_state(arrays, tree, f"extra_{name}"))
    solver.U[:] = U
    solver.t, solver.step = float(attrs["t"]), int(attrs["step"])


@dataclass
class Saved:
    """A checkpoint read back for a decomposed restart: the per-rank adapter states and the
    per-worker provider states split out of their layout."""

    U: np.ndarray
    t: float
    step: int
    solver_ranks: int
    closure_workers: int
    serial: bool  # written by a serial run (no layout attributes)
    rank_states: list = field(default_factory=list)
    worker_states: list = field(default_factory=list)
    extras: dict = field(default_factory=dict)


def read(path: str | Path) -> Saved:
    """Read any checkpoint (serial or decomposed layout) into a :class:`Saved`."""
    arrays, attrs = load_checkpoint(path)
    ranks: list = []
    if "rate_state_tree" in attrs:
        ranks.append(unflatten_state(arrays, attrs["rate_state_tree"], RATE_STATE))
        for k, tree in enumerate(attrs.get("rate_state_rank_trees", []), start=1):
            ranks.append(unflatten_state(arrays, tree, f"rate_state_rank{k}"))
    saved_m = int(attrs.get("closure_workers", 0))
    workers: list = []
    if saved_m and ranks:
        workers.append(ranks[0].pop("provider", None))
        for w, tree in enumerate(attrs.get("closure_state_trees", []), start=1):
            workers.append(None if tree is None else
                           unflatten_state(arrays, tree, f"closure_state_{w}"))
    extras = {name: unflatten_state(arrays, tree, f"extra_{name}")
              for name, tree in attrs.get("extra_state_trees", {}).items()}
    return Saved(U=arrays["U"], t=float(attrs["t"]), step=int(attrs["step"]),
                 solver_ranks=int(attrs.get("solver_ranks", 1)), closure_workers=saved_m,
                 serial="solver_ranks" not in attrs, rank_states=ranks,
                 worker_states=workers, extras=extras)
