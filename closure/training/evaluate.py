"""Full-trajectory rollouts and the hotspot metrics of a trained model on a data set."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from closure.metrics import evaluate_rollout
from closure.models.dynamics import LatentClosureModel
from closure.models.parc import PARCv2
from closure.normalization import HOTSPOT_THRESHOLD_K
from closure.training.data import TrajectorySet

__all__ = ["evaluate_model", "rollout"]


@torch.no_grad()
def rollout(model: nn.Module, fields: np.ndarray, *, n_steps: int | None = None,
            batch_size: int = 2, sample: bool = False, seed: int = 0,
            device: str | torch.device = "cpu") -> np.ndarray:
    """Predict (N, n_steps+1, C, H, W) from each trajectory's first frame (eval mode).

    Works for :class:`LatentClosureModel` (``sample``: decode one latent sample instead of the
    latent mean) and :class:`PARCv2`. The model's train/eval mode is restored afterwards.
    """
    n_steps = fields.shape[1] - 1 if n_steps is None else n_steps
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    try:
        for i in range(0, fields.shape[0], batch_size):
            x0 = torch.from_numpy(np.ascontiguousarray(fields[i:i + batch_size, 0])).to(device)
            if isinstance(model, LatentClosureModel):
                pred = model(x0, n_steps, sample=sample, generator=gen)[0]
            elif isinstance(model, PARCv2):
                pred = model(x0, n_steps)
            else:
                raise TypeError(f"cannot roll out a {type(model).__name__}")
            out.append(pred.cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out, 0)


def evaluate_model(model: nn.Module, data: TrajectorySet, *,
                   threshold: float = HOTSPOT_THRESHOLD_K, t_start: int = 1,
                   batch_size: int = 2, sample: bool = False, seed: int = 0,
                   device: str | torch.device = "cpu") -> dict[str, Any]:
    """Hotspot and field RMSEs of full rollouts over ``data`` (dt and cell size from the data)."""
    pred = rollout(model, data.fields, batch_size=batch_size, sample=sample, seed=seed,
                   device=device)
    kw = dict(dy=data.dy, threshold=threshold, t_start=t_start, channels=data.channels)
    out: dict[str, Any] = evaluate_rollout(pred, data.fields, data.dx, data.dt, **kw)
    # reference: persistence (every frame = the initial frame), the trivial forecast to beat
    still = np.repeat(data.fields[:, :1], data.n_t, axis=1)
    base = evaluate_rollout(still, data.fields, data.dx, data.dt, **kw)
    for k in ("rmse_A_hs", "rmse_T_hs", "rmse_dA_hs_dt", "rmse_field_mean"):
        out[f"persistence_{k}"] = base[k]
    out["n_samples"] = data.n
    out["n_t"] = data.n_t
    return out
