"""The call lists tests/capi_mpmd_client.c plays and the records it writes (int64 little-endian
stream, every block padded to 8 bytes).

Calls (``in<r>.bin``), ended by 0: ``1 QUERY n n_dt mask ids[n] p[n] dt[n_dt]`` (mask bits:
outputs 1 area, 2 temperature, 4 rate, 8 uncertainty, 16 burned fraction, 32 status; 0 passes
``out = NULL``), ``2 RELEASE n ids[n]``, ``3 SAVE`` / ``4 LOAD`` ``len path``, ``5 BENCH n n_dt
mask reps ids p dt`` (the same query ``reps`` times, each timed).

Record (``out<r>.bin``): the number of clients, then per call ``rc len message`` and for a
successful QUERY the outputs asked for (float64[n] each, then int32[n] status), for a BENCH the
seconds of each repetition; -1 at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUTPUTS = ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate", "uncertainty",
           "burned_fraction")
ALL = 1 | 2 | 4 | 8 | 32


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 8)


class Calls:
    """A client's call list, and what the record of each call holds."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.ops: list[tuple] = []

    def _i(self, *v: int) -> None:
        self.parts.append(np.array(v, "<i8").tobytes())

    def query(self, ids, p, dt, mask: int = ALL, n_dt: int | None = None) -> None:
        ids, p = np.asarray(ids, "<i8"), np.asarray(p, "<f8")
        dt = np.atleast_1d(np.asarray(dt, "<f8"))
        self._i(1, ids.size, dt.size if n_dt is None else n_dt, mask)
        self.parts += [ids.tobytes(), p.tobytes(), dt.tobytes()]
        self.ops.append(("query", ids, p, dt, mask))

    def bench(self, ids, p, dt: float, reps: int, mask: int = ALL) -> None:
        ids, p = np.asarray(ids, "<i8"), np.asarray(p, "<f8")
        self._i(5, ids.size, 1, mask, reps)
        self.parts += [ids.tobytes(), p.tobytes(), np.array([dt], "<f8").tobytes()]
        self.ops.append(("bench", ids, reps))

    def release(self, ids) -> None:
        ids = np.asarray(ids, "<i8")
        self._i(2, ids.size)
        self.parts.append(ids.tobytes())
        self.ops.append(("release", ids))

    def save(self, path) -> None:
        self._path(3, path)
        self.ops.append(("save", str(path)))

    def load(self, path) -> None:
        self._path(4, path)
        self.ops.append(("load", str(path)))

    def _path(self, op: int, path) -> None:
        b = str(path).encode()
        self._i(op, len(b))
        self.parts.append(_pad(b))

    def write(self, path: Path) -> None:
        Path(path).write_bytes(b"".join(self.parts) + np.array([0], "<i8").tobytes())


def read_record(path: Path, calls: Calls) -> tuple[int, list[dict]]:
    """``(number of clients, [{rc, message, outputs...} per call played])``."""
    data = Path(path).read_bytes()
    at = 0

    def i64() -> int:
        nonlocal at
        v = int(np.frombuffer(data, "<i8", 1, at)[0])
        at += 8
        return v

    def arr(dtype: str, n: int) -> np.ndarray:
        nonlocal at
        a = np.frombuffer(data, dtype, n, at).copy()
        at += -(-a.nbytes // 8) * 8
        return a

    nclients = i64()
    out = []
    for op in calls.ops:
        rc = i64()
        if rc == -1:
            break
        n = i64()
        msg = arr("u1", n).tobytes().decode()
        rec = {"op": op[0], "rc": rc, "message": msg}
        if rc == 0 and op[0] == "query":
            size, mask = op[1].size, op[4]
            for bit, name in enumerate(OUTPUTS):
                if mask & (1 << bit):
                    rec[name] = arr("<f8", size)
            if mask & 32:
                rec["status"] = arr("<i4", size)
        if rc == 0 and op[0] == "bench":
            rec["seconds"] = arr("<f8", op[2])
        out.append(rec)
    return nclients, out
