"""Synthetic trajectories in the data-set layout, for tests and smoke runs of the training code.

A planar shock runs down the grid (rows); each pore it passes collapses and leaves a hot spot
that grows and drifts with the shocked material. The fields are analytic, so they cost nothing
and exercise every part of the pipeline (hot spots cross the 875 K threshold, areas and mean
temperatures change in time) without the real data generator. Not physics: do not train the
shipped model on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from closure.normalization import CHANNELS, NORM_RANGES, normalize

__all__ = ["synthetic_fields", "write_synthetic_h5"]


def synthetic_fields(n_samples: int, n_t: int, height: int, width: int, *, n_pores: int = 1,
                     time_stride: float = 1.0, seed: int = 0) -> np.ndarray:
    """Normalized fields (n_samples, n_t, 4, height, width) float32 (T, P, mu, lam); frame t is
    at time t*stride. ``lam`` grows where the hotspot is hot, as a burning one would.

    Time is in units of one micro step, so a meso set with ``time_stride=2`` has dynamics
    consistent with k = 2 micro steps per meso step.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((n_samples, n_t, len(CHANNELS), height, width), np.float32)
    for s in range(n_samples):
        v = rng.uniform(0.08, 0.14) * height              # shock speed, cells per micro step
        up = v / 3.0                                      # particle speed
        p_s = rng.uniform(10e9, 30e9)                     # shock pressure (Pa)
        t_bulk = rng.uniform(450.0, 700.0)                # shocked bulk temperature (K)
        pores = []
        for _ in range(n_pores):
            r0 = rng.uniform(0.06, 0.12) * min(height, width)
            cy = rng.uniform(0.3, 0.7) * height
            cx = rng.uniform(0.2, 0.8) * width
            pores.append((cy, cx, r0, rng.uniform(1500.0, 2600.0)))
        y0 = 0.1 * height
        for t in range(n_t):
            tau = t * time_stride
            ys = y0 + v * tau
            front = 0.5 * (1.0 + np.tanh((ys - y) / 1.5))
            T = 300.0 + (t_bulk - 300.0) * front
            P = 0.0 + p_s * front
            mu = np.ones_like(x)
            for cy, cx, r0, t_hot in pores:
                t_hit = (cy - r0 - y0) / v
                age = max(tau - t_hit, 0.0)
                r = r0 * max(0.0, 1.0 - age / 2.5)
                cyd = cy + up * age
                dist = np.hypot(y - cyd, x - cx)
                mu -= 0.5 * (1.0 - np.tanh((dist - r) / 1.0)) * (r > 0)
                if age > 0:
                    amp = t_hot * (1.0 - np.exp(-age / 1.5))
                    sig = 0.5 * r0 + 0.6 * age
                    T = T + amp * np.exp(-0.5 * (dist / sig) ** 2)
                    P = P + 0.2 * p_s * np.exp(-0.5 * (dist / sig) ** 2) * np.exp(-age / 2.0)
            out[s, t, 0] = normalize(T, "T")
            out[s, t, 1] = normalize(P, "P")
            out[s, t, 2] = np.clip(mu, 0.0, 1.0)
            out[s, t, 3] = normalize(1.0 - np.exp(-np.maximum(T - 1000.0, 0.0) / 1500.0), "lam")
    return out


def write_synthetic_h5(path: str | Path, n_samples: int = 4, n_t: int = 6, height: int = 32,
                       width: int = 32, *, n_pores: int = 1, dt: float = 1.72e-10,
                       dx: float = 2.0e-8, time_stride: float = 1.0, seed: int = 0) -> Path:
    """Write a synthetic data set with the layout of ``closure/data`` and return its path.

    Layout: dataset ``fields`` (N, n_t, 4, H, W) float32 (normalized T, P, mu, lam); attrs
    ``channels``, ``dt`` (s, = micro dt * time_stride), ``dx`` (m), ``norm_ranges`` (JSON).
    """
    path = Path(path)
    f = synthetic_fields(n_samples, n_t, height, width, n_pores=n_pores,
                         time_stride=time_stride, seed=seed)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("fields", data=f)
        h5.attrs["channels"] = np.array(list(CHANNELS), dtype=h5py.string_dtype())
        h5.attrs["dt"] = float(dt * time_stride)
        h5.attrs["dx"] = float(dx)
        h5.attrs["norm_ranges"] = json.dumps({k: list(v) for k, v in NORM_RANGES.items()})
        h5.attrs["source"] = "closure.training.synthetic (analytic test data, not physics)"
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m closure.training.synthetic OUT_DIR``: write micro.h5 and meso.h5 (tiny)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m closure.training.synthetic",
                                 description="Write tiny synthetic micro/meso data sets.")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_synthetic_h5(out / "micro.h5", 12, 8, 32, 48, seed=a.seed)
    write_synthetic_h5(out / "meso.h5", 10, 6, 64, 96, n_pores=4, time_stride=2,
                       seed=a.seed + 1)
    print(f"wrote {out / 'micro.h5'} and {out / 'meso.h5'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
