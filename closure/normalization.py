"""The one place for field normalization ranges and the default hotspot threshold.

Models see fields scaled to about [0, 1]: ``x_norm = (x - lo) / (hi - lo)`` per channel. The
ranges follow the paper's reference code (T 300-5000 K, P -2 to 50 GPa, mu 0-1) and are stored in
every data set (``norm_ranges`` attribute) and every model card, so a model is never fed data
scaled with other ranges. Units are SI (K, Pa, dimensionless).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "CHANNELS",
    "LEGACY_CHANNELS",
    "HOT_AREA_M2",
    "HOTSPOT_EXCESS_K",
    "HOTSPOT_THRESHOLD_K",
    "NORM_RANGES",
    "channel_names",
    "check_channels",
    "check_norm_ranges",
    "denormalize",
    "normalize",
    "parse_norm_ranges",
]

#: Channel order of every data set: temperature, pressure, material indicator, reaction
#: progress. A model uses these or a subset in this order (its card names them).
CHANNELS: tuple[str, ...] = ("T", "P", "mu", "lam")

#: Channels of data sets written before ``lam`` became a channel; readers still take them.
LEGACY_CHANNELS: tuple[str, ...] = ("T", "P", "mu")

#: Physical range (lo, hi) mapped to [0, 1], SI units: K, Pa, dimensionless.
NORM_RANGES: dict[str, tuple[float, float]] = {
    "T": (300.0, 5000.0),
    "P": (-2.0e9, 50.0e9),
    "mu": (0.0, 1.0),
    "lam": (0.0, 1.0),
}

#: Default hotspot temperature threshold (K); 850 K is also used in the literature.
HOTSPOT_THRESHOLD_K: float = 875.0

#: Pore-hotspot statistic relative to the bulk: T above the sample's bulk Hugoniot temperature
#: by more than this (K). Bulk HMX reaches 793 K at 20 GPa on the beta-HMX Hugoniot, within
#: 100 K of the fixed threshold; the excess criterion separates pore hotspots from shocked
#: bulk at any shock strength.
HOTSPOT_EXCESS_K: float = 300.0

#: Area (m^2) of the hottest HMX whose mean temperature is the "hottest-area temperature"
#: statistic: a fixed physical area (16 cells of 62.5 nm), so unlike the single-cell peak its
#: definition does not shrink with the cell size.
HOT_AREA_M2: float = 0.0625e-12

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _range(field: str, ranges: Mapping[str, Sequence[float]] | None) -> tuple[float, float]:
    table = NORM_RANGES if ranges is None else ranges
    if field not in table:
        raise KeyError(f"field {field!r} has no normalization range; known: {sorted(table)}")
    lo, hi = (float(v) for v in table[field])
    return lo, hi


def normalize(x: ArrayT, field: str,
              ranges: Mapping[str, Sequence[float]] | None = None) -> ArrayT:
    """Map physical values of ``field`` to model scale (no clipping: outliers stay visible)."""
    lo, hi = _range(field, ranges)
    return (x - lo) / (hi - lo)


def denormalize(x: ArrayT, field: str,
                ranges: Mapping[str, Sequence[float]] | None = None) -> ArrayT:
    """Map model-scale values of ``field`` back to physical units."""
    lo, hi = _range(field, ranges)
    return x * (hi - lo) + lo


def parse_norm_ranges(value: Any) -> dict[str, tuple[float, float]]:
    """Read ranges from a JSON string, a mapping, or an (n, 2) array in ``CHANNELS`` order.

    Data sets store the ranges as an HDF5 attribute whose exact type depends on the writer; this
    accepts the usual spellings so the check in :func:`check_norm_ranges` compares numbers.
    """
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, Mapping):
        return {str(k): (float(v[0]), float(v[1])) for k, v in value.items()}
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"norm_ranges: expected a mapping or an (n, 2) array, got shape {arr.shape}")
    names = {len(CHANNELS): CHANNELS, len(LEGACY_CHANNELS): LEGACY_CHANNELS}.get(arr.shape[0])
    if names is None:
        raise ValueError(f"norm_ranges: array form needs {len(CHANNELS)} rows ({CHANNELS}) or "
                         f"{len(LEGACY_CHANNELS)} ({LEGACY_CHANNELS}), got {arr.shape[0]}")
    return {c: (float(a), float(b)) for c, (a, b) in zip(names, arr, strict=True)}


def check_norm_ranges(found: Any, expected: Mapping[str, Sequence[float]] | None = None,
                      *, where: str = "data", rel_tol: float = 1e-6,
                      fields: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """Raise ``ValueError`` naming the field if ``found`` differs from ``expected`` (default ours).

    A model trained on one scaling silently mispredicts on another; this makes that an error.
    ``fields`` limits the check to those channels (a legacy data set has no ``lam``). Returns
    the parsed ranges.
    """
    got = parse_norm_ranges(found)
    exp = {k: (float(v[0]), float(v[1])) for k, v in (expected or NORM_RANGES).items()
           if fields is None or k in fields}
    for field, (lo, hi) in exp.items():
        if field not in got:
            raise ValueError(f"{where}: normalization range for field {field!r} is missing "
                             f"(has {sorted(got)}); expected {field} in [{lo}, {hi}]")
        glo, ghi = got[field]
        if not (math.isclose(glo, lo, rel_tol=rel_tol, abs_tol=1e-12)
                and math.isclose(ghi, hi, rel_tol=rel_tol, abs_tol=1e-12)):
            raise ValueError(f"{where}: normalization range of {field!r} is [{glo}, {ghi}], "
                             f"expected [{lo}, {hi}] (closure.normalization.NORM_RANGES)")
    return got


def channel_names(found: Any) -> list[str]:
    """Channel names from a ``channels`` attribute: an HDF5 string array or a JSON string."""
    if isinstance(found, bytes | str):
        text = found.decode() if isinstance(found, bytes) else found
        return list(json.loads(text)) if text.strip().startswith("[") else [text]
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(found)]


def check_channels(found: Any, expected: Sequence[str] | None = None, *,
                   where: str = "data") -> tuple[str, ...]:
    """The channel names of ``found``; ``ValueError`` unless they are ``expected`` in order.

    Without ``expected`` the data-set layouts are accepted: :data:`CHANNELS` or, for files
    written before ``lam`` was a channel, :data:`LEGACY_CHANNELS`.
    """
    names = channel_names(found)
    allowed = [tuple(expected)] if expected is not None else [CHANNELS, LEGACY_CHANNELS]
    if tuple(names) not in allowed:
        want = " or ".join(str(list(a)) for a in allowed)
        raise ValueError(f"{where}: channels are {names}, expected {want} in this order")
    return tuple(names)
