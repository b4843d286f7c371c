"""Reading trajectory data sets (HDF5) and cutting them into training batches.

Layout (written by ``closure/data``): dataset ``fields`` of shape (N, n_t, C=3, H, W) float32,
normalized T, P, mu; attributes ``channels`` (["T", "P", "mu"]), ``dt`` (s), ``dx`` (m),
optional ``dy`` (m, default dx) and ``norm_ranges``. Every attribute is checked on load so that a
model never trains on data scaled or ordered differently from what its model card says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from closure.files import data_hash
from closure.models.vae import check_grid
from closure.normalization import CHANNELS, check_channels, check_norm_ranges

__all__ = [
    "TrajectorySet",
    "crop_offsets",
    "data_hash",
    "load_trajectories",
    "split_indices",
    "window_index",
]

@dataclass
class TrajectorySet:
    """Normalized trajectories (N, n_t, C, H, W) with their grid and time spacing."""

    fields: np.ndarray
    dt: float
    dx: float
    dy: float
    channels: tuple[str, ...] = CHANNELS
    path: str | None = None
    sha256: str | None = None
    indices: list[int] = field(default_factory=list)
    #: the HMX EOS table (``physics.hmx``) of the generator config stored in the file, if any:
    #: model cards record it so the closure builds its initial patches on the same Hugoniot
    hmx: dict | None = None
    #: the resolved generator config stored in the file (``config`` attribute), if any: the
    #: closure builds its patches, microstructures and envelope from the model's data config
    config: dict | None = None

    @property
    def n(self) -> int:
        return int(self.fields.shape[0])

    @property
    def n_t(self) -> int:
        return int(self.fields.shape[1])

    def subset(self, idx: Sequence[int]) -> TrajectorySet:
        """The samples at positions ``idx`` of this set (file indices are kept)."""
        idx = list(idx)
        return TrajectorySet(self.fields[idx], self.dt, self.dx, self.dy, self.channels,
                             self.path, self.sha256, [self.indices[i] for i in idx], self.hmx,
                             self.config)

    def from_frame(self, first: int) -> TrajectorySet:
        """The trajectories from frame ``first`` on (the time origin moves with them)."""
        if not 0 <= first <= self.n_t - 2:
            raise ValueError(f"first frame must be in [0, {self.n_t - 2}] (two frames must "
                             f"remain of {self.n_t}), got {first}")
        return TrajectorySet(self.fields[:, first:], self.dt, self.dx, self.dy, self.channels,
                             self.path, self.sha256, list(self.indices), self.hmx, self.config)

    def info(self) -> dict[str, Any]:
        """What a model card records about this data."""
        out = {"path": self.path, "sha256": self.sha256, "dt": self.dt, "dx": self.dx,
               "dy": self.dy, "n_t": self.n_t, "grid": list(self.fields.shape[-2:]),
               "channels": list(self.channels), "indices": list(self.indices)}
        if self.hmx is not None:
            out["hmx"] = dict(self.hmx)
        if self.config is not None:
            out["config"] = self.config
        return out


def _attr(h5: h5py.File, name: str, path: str) -> Any:
    if name not in h5.attrs:
        raise ValueError(f"{path}: attribute {name!r} is missing (have {sorted(h5.attrs)})")
    return h5.attrs[name]


def load_trajectories(path: str | Path, indices: Sequence[int] | None = None, *,
                      hash_data: bool = True) -> TrajectorySet:
    """Load (a subset of) a data set, validating its layout, attributes and values."""
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data set {path!r} does not exist")
    with h5py.File(path, "r") as h5:
        if "fields" not in h5:
            raise ValueError(f"{path}: no dataset 'fields' (have {sorted(h5.keys())})")
        ds = h5["fields"]
        names = check_channels(_attr(h5, "channels", path), where=path)
        if ds.ndim != 5 or ds.shape[2] != len(names):
            raise ValueError(f"{path}: 'fields' must have shape (N, n_t, {len(names)}, H, W) "
                             f"for channels {list(names)}, got {ds.shape}")
        check_grid(ds.shape[3], ds.shape[4], name=f"{path}: fields")
        if "norm_ranges" in h5.attrs:
            check_norm_ranges(h5.attrs["norm_ranges"], where=path, fields=names)
        dt = float(_attr(h5, "dt", path))
        dx = float(_attr(h5, "dx", path))
        hmx = config = None
        try:
            config = json.loads(h5.attrs["config"])
            hmx = config["physics"]["hmx"]
        except (KeyError, TypeError, ValueError):
            config = None
        dy = float(h5.attrs.get("dy", dx))
        for name, v in (("dt", dt), ("dx", dx), ("dy", dy)):
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{path}: attribute {name} must be finite and > 0, got {v}")
        n = ds.shape[0]
        if indices is None:
            idx = list(range(n))
        else:
            idx = [int(i) for i in indices]
            bad = [i for i in idx if not 0 <= i < n]
            if bad:
                raise IndexError(f"{path}: sample index {bad[0]} out of range [0, {n - 1}]")
        order = np.argsort(idx, kind="stable")
        uniq, inv = np.unique(np.asarray(idx)[order], return_inverse=True)
        data = ds[uniq.tolist()] if len(uniq) else np.zeros((0, *ds.shape[1:]), ds.dtype)
        fields = np.empty((len(idx), *ds.shape[1:]), np.float32)
        fields[order] = data[inv]
    bad = ~np.isfinite(fields)
    if bad.any():
        s, t, c = np.argwhere(bad)[0][:3]
        raise ValueError(f"{path}: non-finite value in sample {idx[s]}, time {t}, "
                         f"channel {names[c]}")
    return TrajectorySet(fields, dt, dx, dy, names, path,
                         data_hash(path) if hash_data else None, idx, hmx, config)


def split_indices(n: int, *, n_val: int, n_test: int = 0, n_train: int | None = None,
                  seed: int = 0) -> dict[str, list[int]]:
    """Seeded split of ``range(n)`` into train/val/test.

    Test and validation samples are drawn first and do not depend on ``n_train``; training sets
    for smaller ``n_train`` are prefixes of larger ones (nested), which the scarce-data
    experiment needs to compare sample counts fairly.
    """
    if n_val < 0 or n_test < 0 or n_val + n_test >= n:
        raise ValueError(f"split needs n_val + n_test < n (n={n}, n_val={n_val}, "
                         f"n_test={n_test}) and both >= 0")
    perm = np.random.default_rng(seed).permutation(n).tolist()
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    if n_train is not None:
        if not 1 <= n_train <= len(train):
            raise ValueError(f"n_train must be in [1, {len(train)}], got {n_train}")
        train = train[:n_train]
    return {"train": train, "val": val, "test": test}


def window_index(n_samples: int, n_t: int, horizon: int) -> np.ndarray:
    """All (sample, start) pairs of windows with ``horizon`` steps after the start frame."""
    if horizon < 1 or horizon > n_t - 1:
        raise ValueError(f"horizon must be in [1, {n_t - 1}] for {n_t} frames, got {horizon}")
    s, t = np.meshgrid(np.arange(n_samples), np.arange(n_t - horizon), indexing="ij")
    return np.stack([s.ravel(), t.ravel()], 1)


def crop_offsets(rng: np.random.Generator, size: tuple[int, int], crop: Sequence[int] | None,
                 multiple: int = 8) -> tuple[int, int, int, int]:
    """Random crop (y0, x0, h, w) of a grid ``size``, aligned to ``multiple`` (token patches).

    ``crop`` empty/None or at least the grid size means no crop.
    """
    H, W = size
    if not crop:
        return 0, 0, H, W
    h, w = int(crop[0]), int(crop[1])
    if h % multiple or w % multiple or h <= 0 or w <= 0:
        raise ValueError(f"crop {list(crop)} must be positive multiples of {multiple}")
    h, w = min(h, H), min(w, W)
    y0 = int(rng.integers(0, (H - h) // multiple + 1)) * multiple
    x0 = int(rng.integers(0, (W - w) // multiple + 1)) * multiple
    return y0, x0, h, w
