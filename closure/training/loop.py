"""One training loop for every stage: phases x epochs, seeded, checkpointed, resumable.

A stage describes its work as a list of :class:`Phase` (name, curriculum horizon, epochs) and
callbacks; the loop owns ordering, seeding, optimizers, progress bars, logging and checkpoints.
Every epoch's randomness (batch order, crops, dropout, latent sampling) is derived from
``(seed, global epoch index)`` alone, so a run resumed from a checkpoint continues exactly as
the uninterrupted run would (bit-identical on the same machine and library versions).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from closure.training.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["CheckpointMismatchError", "Phase", "fit", "flatten_phases"]


@dataclass(frozen=True)
class Phase:
    """A block of epochs sharing one optimizer setup: ``name`` (trainable set) and horizon."""

    name: str
    horizon: int
    epochs: int


class CheckpointMismatchError(RuntimeError):
    """The checkpoint on disk belongs to a run with a different config."""


def flatten_phases(phases: Sequence[Phase]) -> list[tuple[Phase, int]]:
    """(phase, epoch within phase) for every global epoch, in order."""
    return [(p, e) for p in phases for e in range(p.epochs)]


def _epoch_seed(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch)])


def fit(*, model: nn.Module, phases: Sequence[Phase],
        make_optimizer: Callable[[Phase], torch.optim.Optimizer],
        prepare: Callable[[Phase], None],
        batches: Callable[[Phase, np.random.Generator], Iterable[Any]],
        loss_fn: Callable[[Phase, Any], dict[str, torch.Tensor]],
        ckpt_path: str | Path, seed: int, fingerprint: Any, resume: bool = True,
        checkpoint_every: int = 1, progress: bool = True, desc: str = "train",
        log_path: str | Path | None = None, grad_clip: float = 0.0) -> list[dict[str, Any]]:
    """Train ``model`` through ``phases``; return per-epoch history (mean of each loss term).

    ``prepare(phase)`` sets train/eval modes and ``requires_grad`` for the phase;
    ``make_optimizer(phase)`` is called when the phase name changes (a new trainable set);
    ``batches(phase, rng)`` yields the epoch's batches; ``loss_fn`` returns a dict with
    ``"total"``. ``fingerprint`` (JSON-able: the stage's resolved config) must match the
    checkpoint's on resume, else :class:`CheckpointMismatchError`. ``grad_clip > 0`` caps the
    global gradient norm (a rare large batch gradient otherwise throws Adam far off).
    """
    ckpt_path = Path(ckpt_path)
    plan = flatten_phases(phases)
    fp = json.dumps(fingerprint, sort_keys=True, default=str)
    start, history, opt_state, opt_phase = 0, [], None, None
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        if ck.get("fingerprint") != fp:
            raise CheckpointMismatchError(
                f"{ckpt_path} was written by a run with a different config; delete it or "
                "restart the stage (python -m closure.train CONFIG --restart)")
        model.load_state_dict(ck["model"])
        start, history = int(ck["next_epoch"]), list(ck["history"])
        opt_state, opt_phase = ck.get("optimizer"), ck.get("optimizer_phase")
    optimizer: torch.optim.Optimizer | None = None
    current: str | None = None
    bar = tqdm(total=len(plan), initial=start, desc=desc, disable=not progress, leave=True)
    for gi in range(start, len(plan)):
        phase, ep = plan[gi]
        prepare(phase)
        if phase.name != current or optimizer is None:
            optimizer = make_optimizer(phase)
            if opt_state is not None and opt_phase == phase.name:
                optimizer.load_state_dict(opt_state)
            opt_state, current = None, phase.name
        rng = _epoch_seed(seed, gi)
        torch.manual_seed(int(rng.integers(0, 2**62)))
        sums: dict[str, float] = {}
        n_batches = 0
        t0 = time.perf_counter()
        for batch in batches(phase, rng):
            terms = loss_fn(phase, batch)
            loss = terms["total"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: non-finite loss {loss.item()} in epoch {gi} "
                                         f"(phase {phase.name}, horizon {phase.horizon})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            n_batches += 1
        if n_batches == 0:
            raise ValueError(f"{desc}: phase {phase.name} (horizon {phase.horizon}) has no "
                             "training batches; check the data split and horizons")
        rec = {"epoch": gi, **asdict(phase), "epoch_in_phase": ep,
               "wall_s": time.perf_counter() - t0,
               **{k: v / n_batches for k, v in sums.items()}}
        history.append(rec)
        if log_path is not None:
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        bar.update(1)
        bar.set_postfix(phase=phase.name, h=phase.horizon, loss=f"{rec['total']:.4g}")
        last = gi == len(plan) - 1
        if last or (gi + 1) % checkpoint_every == 0:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "optimizer_phase": phase.name, "next_epoch": gi + 1, "history": history,
                "fingerprint": fp, "done": last})
    bar.close()
    if history and not math.isfinite(history[-1]["total"]):  # pragma: no cover - guarded above
        raise FloatingPointError(f"{desc}: training diverged")
    return history
