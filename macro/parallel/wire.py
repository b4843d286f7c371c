"""The closure wire protocol: typed messages between solver (client) ranks and closure workers.

One message is one MPI message of ``MPI_BYTE``: a 64-byte header, then named, typed arrays
(no pickles), so that a C, C++ or Fortran client can speak it (``docs/protocol.md`` is the
specification; this module is its reference implementation). All integers little-endian int64,
every block padded to 8 bytes::

    header  magic "PCLOSURE" (8 bytes), version, kind, call, n_arrays, 3 x reserved (0)
    array   name_len, dtype_len, ndim, nbytes, shape[ndim],
            name (UTF-8), dtype (NumPy array-protocol string, e.g. "<f8", "<i4", "|S5"),
            data (C order, nbytes)

``call`` is the client's call counter; a reply carries the request's. Request kinds and their
arrays (replies are ``OK`` with the arrays listed, or ``ERROR`` with ``message``):

============  ==========================================  =====================================
kind          request arrays                              OK reply arrays
============  ==========================================  =====================================
QUERY    1    ``cell_ids`` <i8[n], ``pressure`` <f8[n],    every per-cell field of the answer
              ``dt`` <f8[1 or n], ``mode`` |S,             (``status`` <i4[n], the others <f8[n])
              ``deterministic`` |b1[1], ``seed`` <i8[1]
              (absent: none)
RELEASE  2    ``cell_ids`` <i8[n]                         none
STATE    3    none                                        the provider state, flattened
LOAD     4    the provider state, flattened               none
STOP     5    ``message`` |u1[k] (absent: clean stop)      no reply
HELLO    6    ``role`` <i8[1] (0 client, 1 worker)         (collective handshake, MPMD only)
OK      64
ERROR   65    ``message`` |u1[k] (UTF-8)
============  ==========================================  =====================================

A flattened state is the provider's ``state_dict()`` as arrays named ``state.key.subkey`` plus
``__tree__`` |u1[k], the JSON tree of :func:`macro.io.flatten_state` (an empty state: no
arrays). Byte order is the machine's (little-endian on every platform the project supports);
a big-endian peer is refused by the magic check.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

__all__ = ["MAGIC", "VERSION", "QUERY", "RELEASE", "STATE", "LOAD", "STOP", "HELLO", "OK",
           "ERROR", "WireError", "encode", "decode", "query_request", "parse_query",
           "result_arrays", "WireResult", "state_arrays", "parse_state", "message_arrays"]

MAGIC = b"PCLOSURE"
VERSION = 1
QUERY, RELEASE, STATE, LOAD, STOP, HELLO = 1, 2, 3, 4, 5, 6
OK, ERROR = 64, 65
KIND_NAMES = {QUERY: "query", RELEASE: "release", STATE: "state", LOAD: "load", STOP: "stop",
              HELLO: "hello", OK: "ok", ERROR: "error"}
_HEADER = 64
_DTYPES = frozenset("biufS")  # bool, integers, floats, byte strings
_STATE_PREFIX = "state"
_TREE = "__tree__"


class WireError(ValueError):
    """A message that does not follow the protocol (names what is wrong and where)."""


def _pad(n: int) -> int:
    return (n + 7) & ~7


def encode(kind: int, call: int, arrays: dict[str, np.ndarray] | None = None) -> bytearray:
    """One message: the header and ``arrays`` in their insertion order."""
    arrays = arrays or {}
    parts = []
    size = _HEADER
    for name, a in arrays.items():
        a = np.asarray(a)
        a = a if a.flags.c_contiguous else a.copy()  # (ascontiguousarray makes 0-d 1-d)
        if a.dtype.kind not in _DTYPES or a.dtype.byteorder == ">":
            raise WireError(f"array {name!r} has dtype {a.dtype}; the protocol carries bool, "
                            "integer, float and byte-string arrays in native little-endian order")
        nm, dt = name.encode("utf-8"), a.dtype.str.encode("ascii")
        size += 8 * (4 + a.ndim) + _pad(len(nm)) + _pad(len(dt)) + _pad(a.nbytes)
        parts.append((nm, dt, a))
    buf = bytearray(size)
    buf[:8] = MAGIC
    np.frombuffer(buf, np.int64, 7, 8)[:] = (VERSION, kind, call, len(parts), 0, 0, 0)
    o = _HEADER
    for nm, dt, a in parts:
        meta = np.frombuffer(buf, np.int64, 4 + a.ndim, o)
        meta[:4] = (len(nm), len(dt), a.ndim, a.nbytes)
        meta[4:] = a.shape
        o += 8 * (4 + a.ndim)
        buf[o:o + len(nm)] = nm
        o += _pad(len(nm))
        buf[o:o + len(dt)] = dt
        o += _pad(len(dt))
        buf[o:o + a.nbytes] = a.tobytes()
        o += _pad(a.nbytes)
    return buf


def decode(buf) -> tuple[int, int, dict[str, np.ndarray]]:
    """``(kind, call, arrays)`` of a message (arrays are copies, writable)."""
    mv = memoryview(buf).cast("B")
    if len(mv) < _HEADER or bytes(mv[:8]) != MAGIC:
        raise WireError(f"not a closure protocol message ({len(mv)} bytes, magic "
                        f"{bytes(mv[:8])!r}, expected {MAGIC!r})")
    version, kind, call, narr = (int(x) for x in np.frombuffer(mv, np.int64, 4, 8))
    if version != VERSION:
        raise WireError(f"protocol version {version}, this side speaks {VERSION}")
    if kind not in KIND_NAMES:
        raise WireError(f"unknown message kind {kind}")
    arrays: dict[str, np.ndarray] = {}
    o = _HEADER
    try:
        for i in range(narr):
            nlen, dlen, ndim, nbytes = (int(x) for x in np.frombuffer(mv, np.int64, 4, o))
            if min(nlen, dlen, ndim, nbytes) < 0 or ndim > 32:
                raise WireError(f"array {i}: bad descriptor ({nlen}, {dlen}, {ndim}, {nbytes})")
            shape = tuple(int(x) for x in np.frombuffer(mv, np.int64, ndim, o + 32))
            o += 8 * (4 + ndim)
            name = bytes(mv[o:o + nlen]).decode("utf-8")
            o += _pad(nlen)
            dtype = np.dtype(bytes(mv[o:o + dlen]).decode("ascii"))
            o += _pad(dlen)
            if dtype.kind not in _DTYPES or int(np.prod(shape)) * dtype.itemsize != nbytes:
                raise WireError(f"array {name!r}: dtype {dtype} and shape {shape} do not make "
                                f"{nbytes} bytes")
            if o + nbytes > len(mv):
                raise WireError(f"array {name!r} runs past the end of the message")
            arrays[name] = np.frombuffer(mv, dtype, int(np.prod(shape)), o).reshape(shape).copy()
            o += _pad(nbytes)
    except (TypeError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"malformed message: {exc}") from None
    return kind, call, arrays


def query_request(ids: np.ndarray, p: np.ndarray, dt, mode: str, deterministic: bool,
                  seed: int | None) -> dict[str, np.ndarray]:
    out = {"cell_ids": np.asarray(ids, np.int64), "pressure": np.asarray(p, np.float64),
           "dt": np.atleast_1d(np.asarray(dt, np.float64)),
           "mode": np.array([str(mode).encode("utf-8")]),
           "deterministic": np.array([bool(deterministic)])}
    if seed is not None:
        out["seed"] = np.array([int(seed)], np.int64)
    return out


def parse_query(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, Any, dict]:
    """``(ids, p, dt, opts)`` for ``provider.query(ids, p, dt, **opts)``: a length-1 ``dt``
    array is a scalar dt (as the client passed it)."""
    try:
        ids, p, dt = a["cell_ids"], a["pressure"], a["dt"]
        opts = {"mode": a["mode"][0].decode("utf-8"),
                "deterministic": bool(a["deterministic"][0]),
                "seed": int(a["seed"][0]) if "seed" in a else None}
    except KeyError as exc:
        raise WireError(f"query request lacks array {exc.args[0]!r}") from None
    if ids.shape != p.shape or ids.ndim != 1 or dt.ndim != 1 or dt.size not in (1, ids.size):
        raise WireError(f"query request shapes cell_ids {ids.shape}, pressure {p.shape}, dt "
                        f"{dt.shape}: expected (n,), (n,), (1,) or (n,)")
    return ids, p, (float(dt[0]) if dt.size == 1 else dt), opts


def result_arrays(res: Any, n: int) -> dict[str, np.ndarray]:
    """The per-cell fields (length-``n`` arrays) of a provider's answer, by name."""
    names = ([f.name for f in dataclasses.fields(res)] if dataclasses.is_dataclass(res)
             else list(vars(res)))
    out = {}
    for name in names:
        v = getattr(res, name)
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n:
            out[name] = v
    return out


@dataclasses.dataclass
class WireResult:
    """A provider's answer as it arrives at a client: its per-cell fields as attributes."""

    fields: dict[str, np.ndarray]

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __len__(self) -> int:
        return len(next(iter(self.fields.values()))) if self.fields else 0


def state_arrays(state: dict | None) -> dict[str, np.ndarray]:
    """A provider state as protocol arrays (``None``: no arrays)."""
    from ..io import flatten_state

    if state is None:
        return {}
    arrays, tree = flatten_state(state, _STATE_PREFIX)
    return {**arrays, _TREE: np.frombuffer(json.dumps(tree).encode("utf-8"), np.uint8)}


def parse_state(a: dict[str, np.ndarray]) -> dict | None:
    """Inverse of :func:`state_arrays`."""
    from ..io import unflatten_state

    if _TREE not in a:
        if a:
            raise WireError(f"state arrays {sorted(a)[:3]} without their {_TREE!r}")
        return None
    tree = json.loads(a[_TREE].tobytes().decode("utf-8"))
    return unflatten_state({k: v for k, v in a.items() if k != _TREE}, tree, _STATE_PREFIX)


def message_arrays(text: str | None) -> dict[str, np.ndarray]:
    return {} if text is None else {"message": np.frombuffer(text.encode("utf-8"), np.uint8)}


def message_of(a: dict[str, np.ndarray]) -> str | None:
    m = a.get("message")
    return None if m is None else m.tobytes().decode("utf-8", errors="replace")
