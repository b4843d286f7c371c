"""Hotspot metrics of the evaluation protocol of arXiv:2506.12996 (docs/model.md).

Per sample and time: hotspot area ``A_hs`` = (number of cells with T > threshold) * cell area,
mean hotspot temperature ``T_hs`` and their finite-difference rates; then RMSE over test samples
and time, and field RMSE. Inputs are normalized fields (N, n_t, C, H, W) as stored in the data
sets; T is de-normalized with :data:`closure.normalization.NORM_RANGES` so the threshold is in K.

``T_hs`` of a frame with no hotspot cell is set to the threshold: that keeps ``T_hs`` continuous
when a hotspot appears (its mean starts just above the threshold) instead of jumping from 0 K,
which would dominate the RMSE of T_hs and of its rate.
Rates are forward differences: ``rate[t] = (q[t+1] - q[t]) / dt``, shape (N, n_t - 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from closure.normalization import CHANNELS, HOTSPOT_THRESHOLD_K, LEGACY_CHANNELS, denormalize

__all__ = [
    "evaluate_rollout",
    "channel_order",
    "field_rmse",
    "hotspot_area",
    "hotspot_stats",
    "hotspot_temperature",
    "rmse",
    "time_rate",
]


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def hotspot_area(T_kelvin: Any, cell_area: float,
                 threshold: float = HOTSPOT_THRESHOLD_K) -> np.ndarray:
    """Hotspot area (m^2) over the last two axes (H, W) of a temperature field in K."""
    T = _np(T_kelvin)
    if cell_area <= 0:
        raise ValueError(f"cell_area must be > 0, got {cell_area}")
    return (T > threshold).sum(axis=(-2, -1)) * float(cell_area)


def hotspot_temperature(T_kelvin: Any, threshold: float = HOTSPOT_THRESHOLD_K) -> np.ndarray:
    """Mean temperature (K) of the cells above ``threshold``; ``threshold`` where there are none."""
    T = _np(T_kelvin)
    mask = T > threshold
    n = mask.sum(axis=(-2, -1))
    s = np.where(mask, T, 0.0).sum(axis=(-2, -1))
    return np.where(n > 0, s / np.maximum(n, 1), float(threshold))


def time_rate(q: Any, dt: float) -> np.ndarray:
    """Forward-difference rate along axis 1 (time): (q[:, 1:] - q[:, :-1]) / dt."""
    q = _np(q)
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    return (q[:, 1:] - q[:, :-1]) / float(dt)


def hotspot_stats(fields: Any, dx: float, dt: float, *, dy: float | None = None,
                  threshold: float = HOTSPOT_THRESHOLD_K,
                  channels: Sequence[str] | None = None,
                  norm_ranges: Mapping[str, Sequence[float]] | None = None,
                  ) -> dict[str, np.ndarray]:
    """A_hs, T_hs (N, n_t) and rates dA_hs/dt, dT_hs/dt (N, n_t - 1) of normalized fields.

    ``fields`` has shape (N, n_t, C, H, W).
    ``dx``/``dy`` (m) give the cell area; ``dt`` (s) the spacing of the stored frames.
    """
    x = _np(fields)
    if x.ndim != 5:
        raise ValueError(f"fields must have shape (N, n_t, C, H, W), got {x.shape}")
    channels = channel_order(x.shape[2], channels)
    if "T" not in channels:
        raise ValueError(f"channels {list(channels)} has no 'T'")
    T = denormalize(x[:, :, list(channels).index("T")], "T", norm_ranges)
    area = float(dx) * float(dx if dy is None else dy)
    a = hotspot_area(T, area, threshold)
    t = hotspot_temperature(T, threshold)
    return {"A_hs": a, "T_hs": t, "dA_hs_dt": time_rate(a, dt), "dT_hs_dt": time_rate(t, dt)}


def rmse(pred: Any, true: Any) -> float:
    """Root-mean-square error over all entries."""
    p, q = _np(pred), _np(true)
    if p.shape != q.shape:
        raise ValueError(f"pred shape {p.shape} != true shape {q.shape}")
    return float(np.sqrt(np.mean((p - q) ** 2)))


def channel_order(n: int, channels: Sequence[str] | None = None) -> list[str]:
    """Names of ``n`` channels: ``channels`` (checked against ``n``) or, when None, the
    data-set layout with ``n`` channels (CHANNELS or LEGACY_CHANNELS)."""
    if channels is None:
        layouts = {len(CHANNELS): CHANNELS, len(LEGACY_CHANNELS): LEGACY_CHANNELS}
        if n not in layouts:
            raise ValueError(f"{n} channels match no data-set layout ({list(CHANNELS)} or "
                             f"{list(LEGACY_CHANNELS)}); pass channels")
        return list(layouts[n])
    if len(channels) != n:
        raise ValueError(f"channels {list(channels)} name {len(channels)} channels, the "
                         f"fields have {n}")
    return list(channels)


def field_rmse(pred: Any, true: Any,
               channels: Sequence[str] | None = None) -> dict[str, float]:
    """Per-channel RMSE of normalized fields (N, n_t, C, H, W), plus their mean as ``"mean"``."""
    p, q = _np(pred), _np(true)
    if p.shape != q.shape:
        raise ValueError(f"pred shape {p.shape} != true shape {q.shape}")
    channels = channel_order(p.shape[2], channels)
    out = {c: float(np.sqrt(np.mean((p[:, :, i] - q[:, :, i]) ** 2)))
           for i, c in enumerate(channels)}
    out["mean"] = float(np.mean(list(out.values())))
    return out


def evaluate_rollout(pred: Any, true: Any, dx: float, dt: float, *, dy: float | None = None,
                     threshold: float = HOTSPOT_THRESHOLD_K, t_start: int = 1,
                     channels: Sequence[str] | None = None,
                     norm_ranges: Mapping[str, Sequence[float]] | None = None) -> dict[str, float]:
    """RMSE of A_hs, T_hs, their rates and the fields between predicted and true trajectories.

    Both are normalized (N, n_t, C, H, W) with frame 0 the given initial condition. A_hs/T_hs and
    field RMSE use frames ``t >= t_start`` (default 1: the initial frame is an input, not a
    prediction); rates use every interval ending at ``t >= t_start``. Also returns the true
    trajectories' mean A_hs and T_hs so a reader can judge the RMSE's size.
    """
    p, q = _np(pred), _np(true)
    if p.shape != q.shape:
        raise ValueError(f"pred shape {p.shape} != true shape {q.shape}")
    if not 0 <= t_start < p.shape[1]:
        raise ValueError(f"t_start must be in [0, {p.shape[1] - 1}], got {t_start}")
    kw = dict(dy=dy, threshold=threshold, channels=channels, norm_ranges=norm_ranges)
    sp, sq = hotspot_stats(p, dx, dt, **kw), hotspot_stats(q, dx, dt, **kw)
    r0 = max(t_start - 1, 0)
    out = {
        "rmse_A_hs": rmse(sp["A_hs"][:, t_start:], sq["A_hs"][:, t_start:]),
        "rmse_T_hs": rmse(sp["T_hs"][:, t_start:], sq["T_hs"][:, t_start:]),
        "rmse_dA_hs_dt": rmse(sp["dA_hs_dt"][:, r0:], sq["dA_hs_dt"][:, r0:]),
        "rmse_dT_hs_dt": rmse(sp["dT_hs_dt"][:, r0:], sq["dT_hs_dt"][:, r0:]),
        "mean_true_A_hs": float(sq["A_hs"][:, t_start:].mean()),
        "mean_true_T_hs": float(sq["T_hs"][:, t_start:].mean()),
        "threshold_K": float(threshold),
    }
    for c, v in field_rmse(p[:, t_start:], q[:, t_start:], channels).items():
        out[f"rmse_field_{c}"] = v
    return out
