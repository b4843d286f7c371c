"""Per-cell state keyed by int64 cell ids: sorted unique ids and a struct of arrays.

Hydrocode couplings keep state for the cells that a provider has seen (the closure's per-cell
clock and latent tokens, the shock gate of :mod:`macro.coupling`). Each keeps it the same way:
ids sorted (a batch is found with one binary search, ``np.searchsorted``), one array per field,
entry ``i`` of every array belonging to ``ids[i]``. This module is that one implementation. It
uses only numpy, so the closure's serving path imports it without the solver or any Numba
kernel (``macro/__init__`` imports its own names lazily).

Cells keep their order by id whatever the order of the calls that created them, so a store's
contents depend only on which cells it holds and their values: checkpoints restart bitwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["CellStore", "check_ids"]

_RESERVED = ("ids", "replace")
_INT64_MAX = np.iinfo(np.int64).max


def check_ids(ids: Any, name: str = "ids", *, unique: bool = True) -> np.ndarray:
    """``ids`` as a 1-D int64 array; ValueError naming ``name`` unless they are integers that fit
    int64 (and, with ``unique``, distinct)."""
    a = np.asarray(ids)
    if a.size == 0 and a.ndim == 1 and not isinstance(ids, np.ndarray):
        a = a.astype(np.int64)  # an empty list has no integer dtype of its own
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array (int64), got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {a.shape}")
    if a.dtype.kind == "u" and a.size and a.max() > _INT64_MAX:
        i = int(np.flatnonzero(a > _INT64_MAX)[0])
        raise ValueError(f"{name}[{i}] = {a[i]} does not fit int64")
    a = a.astype(np.int64, copy=False)
    if unique and a.size > 1 and not bool((a[1:] > a[:-1]).all()):
        s = np.sort(a, kind="stable")
        dup = np.flatnonzero(s[1:] == s[:-1])
        if dup.size:
            idx = np.flatnonzero(a == s[dup[0]])
            raise ValueError(f"{name} must be unique: {name}[{idx[1]}] = {a[idx[1]]} repeats "
                             f"{name}[{idx[0]}]")
    return a


class CellStore:
    """Sorted unique int64 ``ids`` with one array per field, row ``i`` of each for ``ids[i]``.

    ``fields`` maps a name to a dtype, or to ``(dtype, shape)`` for per-cell arrays of that
    shape (a field's array is then ``(n, *shape)``). Arrays handed in by :meth:`assign` and
    :meth:`reset` are kept without a copy (the caller hands them over); those returned by
    :attr:`ids` and ``store[name]`` are the store's own (read them; write through
    :meth:`update`). Bad arguments raise ``ValueError`` naming the argument.
    """

    def __init__(self, fields: Mapping[str, DTypeLike | tuple[DTypeLike, tuple[int, ...]]],
                 ) -> None:
        spec: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        for name, f in fields.items():
            if not name.isidentifier() or name in _RESERVED:
                raise ValueError(f"fields: {name!r} is not a usable field name")
            dtype, shape = f if isinstance(f, tuple) else (f, ())
            spec[name] = (np.dtype(dtype), tuple(int(s) for s in shape))
        self._spec = spec
        self._ids = np.zeros(0, np.int64)
        self._f = {k: np.zeros((0, *shape), dtype) for k, (dtype, shape) in spec.items()}

    # -- reading --------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Field names, in the order of :meth:`state_dict`."""
        return tuple(self._spec)

    @property
    def ids(self) -> np.ndarray:
        """The stored ids, strictly increasing (the store's own array: do not modify)."""
        return self._ids

    def __len__(self) -> int:
        return int(self._ids.size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._f[name]

    def matches(self, ids: np.ndarray) -> bool:
        """Whether ``ids`` are exactly the stored ids in their order (then ``store[name]`` are
        the batch's arrays as they are: a hydrocode's steady state)."""
        return ids.size == self._ids.size and bool(np.array_equal(ids, self._ids))

    def lookup(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``ids`` in the store and whether each is there. Positions of absent ids
        are valid indexes all the same (0 in an empty store), so ``np.where(found, a[pos], x)``
        needs no masking."""
        ids = check_ids(ids, unique=False)
        n = self._ids.size
        if n == 0:
            return np.zeros(ids.size, np.int64), np.zeros(ids.size, bool)
        pos = np.minimum(np.searchsorted(self._ids, ids), n - 1)
        return pos, self._ids[pos] == ids

    # -- writing --------------------------------------------------------------------------------
    def _values(self, n: int, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = sorted(set(values) - set(self._spec))
        missing = [k for k in self._spec if k not in values]
        if unknown or missing:
            raise ValueError(f"values: fields are {list(self._spec)}; missing {missing}, "
                             f"unknown {unknown}")
        out = {}
        for k, (dtype, shape) in self._spec.items():
            a = np.asarray(values[k], dtype)
            if a.shape != (n, *shape):
                raise ValueError(f"{k} must have shape {(n, *shape)}, got {a.shape}")
            out[k] = a
        return out

    def update(self, pos: np.ndarray, **values: Any) -> None:
        """Write ``values`` (some fields) in place at positions ``pos`` (from :meth:`lookup`)."""
        for k, v in values.items():
            if k not in self._spec:
                raise ValueError(f"values: unknown field {k!r}; fields are {list(self._spec)}")
            self._f[k][pos] = v

    def assign(self, **arrays: np.ndarray) -> None:
        """Replace whole field arrays (one row per stored id), without a copy."""
        n = self._ids.size
        for k, a in arrays.items():
            if k not in self._spec:
                raise ValueError(f"arrays: unknown field {k!r}; fields are {list(self._spec)}")
            dtype, shape = self._spec[k]
            if a.shape != (n, *shape) or a.dtype != dtype:
                raise ValueError(f"{k} must be {dtype} of shape {(n, *shape)}, got {a.dtype} "
                                 f"{a.shape}")
        self._f.update(arrays)

    def insert(self, ids: Any, *, replace: bool = False, **values: Any) -> None:
        """Add cells ``ids`` with a value per field (arrays with one row per id). An id already
        stored is an error, unless ``replace``: then its row is overwritten."""
        ids = check_ids(ids)
        vals = self._values(ids.size, values)
        keep = None
        if self._ids.size:
            _, there = self.lookup(ids)
            if there.any():
                if not replace:
                    i = int(np.flatnonzero(there)[0])
                    raise ValueError(f"ids[{i}] = {ids[i]} is already stored")
                keep = ~np.isin(self._ids, ids)
        old_ids = self._ids if keep is None else self._ids[keep]
        allid = np.concatenate([old_ids, ids])
        order = np.argsort(allid, kind="stable")
        self._ids = allid[order]
        self._f = {k: np.concatenate([self._f[k] if keep is None else self._f[k][keep],
                                      vals[k]])[order] for k in self._spec}

    def reset(self, ids: Any, **values: Any) -> None:
        """Replace the whole contents by cells ``ids`` (any order; unique) and their values. When
        ``ids`` are already increasing the arrays are kept as they are (no copy)."""
        ids = check_ids(ids)
        vals = self._values(ids.size, values)
        order = np.argsort(ids, kind="stable")
        if bool(np.all(order == np.arange(order.size))):
            self._ids, self._f = ids, vals
        else:
            self._ids, self._f = ids[order], {k: v[order] for k, v in vals.items()}

    def release(self, ids: Any) -> int:
        """Remove cells ``ids`` (ids not stored are ignored); returns how many were removed."""
        ids = check_ids(ids, unique=False)
        gone = np.isin(self._ids, ids)
        if gone.any():
            keep = ~gone
            self._ids = self._ids[keep]
            self._f = {k: v[keep] for k, v in self._f.items()}
        return int(gone.sum())

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"ids": ..., field: ...}`` (copies), fields in declaration order."""
        return {"ids": self._ids.copy(), **{k: v.copy() for k, v in self._f.items()}}

    def validated(self, sd: Mapping[str, Any], *, where: str = "state_dict",
                  prefix: str = "") -> CellStore:
        """A new store with this one's fields holding ``sd`` (keys ``prefix + "ids"`` and
        ``prefix + field``), after checks that name the bad entry ``where[key]``: ids integer,
        1-D and strictly increasing, every field present with one row per id and a dtype that
        converts (float from float or int, int from int, bool from bool or int). This store is
        not changed, so a caller can check several stores before replacing any."""
        key = prefix + "ids"
        if key not in sd:
            raise ValueError(f"{where} is missing key {key!r}")
        ids = check_ids(sd[key], f"{where}[{key!r}]", unique=False)
        if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):
            raise ValueError(f"{where}[{key!r}] must be strictly increasing")
        new = CellStore({k: (dt, shape) for k, (dt, shape) in self._spec.items()})
        fields = {}
        for k, (dtype, shape) in self._spec.items():
            name = f"{where}[{prefix + k!r}]"
            if prefix + k not in sd:
                raise ValueError(f"{where} is missing key {prefix + k!r}")
            a = np.asarray(sd[prefix + k])
            kinds = {"f": "fiu", "i": "iu", "u": "iu", "b": "biu"}.get(dtype.kind, dtype.kind)
            if a.shape != (ids.size, *shape) or a.dtype.kind not in kinds:
                raise ValueError(f"{name} must be {dtype} of shape {(ids.size, *shape)}, got "
                                 f"{a.dtype} {a.shape}")
            fields[k] = a.astype(dtype)
        new._ids, new._f = ids.copy(), fields
        return new

    def load_state_dict(self, sd: Mapping[str, Any], *, where: str = "state_dict",
                        prefix: str = "") -> None:
        """Replace the contents by ``sd`` (from :meth:`state_dict`), checked first
        (:meth:`validated`): a bad ``sd`` changes nothing."""
        new = self.validated(sd, where=where, prefix=prefix)
        self._ids, self._f = new._ids, new._f
