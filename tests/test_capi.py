"""The C API (closure/include/porous_closure.h, libporous_closure.so) against the Python API.

C programs are compiled here, in temporary directories, with the flags ``python -m closure.capi
--cflags --libs`` prints. ``tests/capi/replay.c`` replays a file of calls through the C API;
the same calls go through ``closure.Closure.query(..., mode="table")`` and every answer, error
message and state file must be equal to the last bit. Random call sequences print their seed;
``CAPI_SEED=<seed> pytest tests/test_capi.py -k random`` replays one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from closure_testutil import make_model_dir

from closure import capi
from closure.api import DEFAULT_MODEL_DIR, Closure, QueryResult
from closure.files import sha256_of
from closure.table import TABLE_FILE, build_table

ROOT = Path(__file__).resolve().parents[1]
REPLAY = ROOT / "tests" / "capi" / "replay.c"
FIELDS = ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate", "uncertainty",
          "burned_fraction", "status")
ALL_OUT = 0b101111  # every output but burned_fraction
SENTINEL = struct.unpack("<d", struct.pack("<Q", 0x7FF8DEAD0000BEEF))[0]
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) on PATH")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def flags(*what: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "closure.capi", *what], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    return shlex.split(out)


def compile_c(src: Path, exe: Path, extra: list[str] | None = None) -> Path:
    cmd = [CC, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2", str(src),
           *flags("--cflags"), "-o", str(exe), *flags("--libs"), *(extra or [])]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{shlex.join(cmd)}\n{r.stderr}"
    return exe


@pytest.fixture(scope="session")
def library() -> Path:
    lib = capi.library_path()
    assert lib.exists(), f"{lib} is not built: pip install -e . (or python setup.py build_ext " \
                         "--inplace)"
    return lib


@pytest.fixture(scope="session")
def replay(tmp_path_factory, library) -> Path:
    if CC is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH")
    return compile_c(REPLAY, tmp_path_factory.mktemp("replay") / "replay")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, one_thread) -> Path:
    """A tiny random model with its table and the table's export."""
    d = make_model_dir(tmp_path_factory.mktemp("capi_model"), n_t=6)
    c = Closure.load(d, table=False, n_micro=2)
    build_table(c.runner, n_initial=5, tol=0.02, area_floor=0.05, max_nodes=9, n_samples=1,
                n_check=1, progress=False).save(d / TABLE_FILE)
    capi.export_table(d)
    return d


# ---------------------------------------------------------------------------------------------
# a call sequence, replayed by the C driver and by the Python API

@dataclass
class Ops:
    """Calls for tests/capi/replay.c (format in its header) and their Python counterparts."""

    buf: bytearray = field(default_factory=bytearray)
    calls: list[tuple] = field(default_factory=list)

    def _i(self, *v: int) -> None:
        self.buf += struct.pack(f"<{len(v)}q", *v)

    def query(self, ids, p, dt, flags: int = ALL_OUT, n: int | None = None,
              n_dt: int | None = None) -> None:
        ids = np.asarray(ids, np.int64)
        p = np.asarray(p, np.float64)
        dt_a = np.atleast_1d(np.asarray(dt, np.float64))
        n = ids.size if n is None else n
        n_dt = dt_a.size if n_dt is None else n_dt
        self._i(1, n, n_dt, flags)
        m = max(n, 0)
        self.buf += ids[:m].tobytes() + p[:m].tobytes() + dt_a[:max(n_dt, 0)].tobytes()
        if n_dt == 1:  # C: one dt value is the scalar (Python says "dt", not "dt[0]")
            dt = float(dt_a[0])
        self.calls.append(("query", ids, p, dt, flags, n))

    def release(self, ids, flags: int = 0, n: int | None = None) -> None:
        ids = np.asarray(ids, np.int64)
        n = ids.size if n is None else n
        self._i(2, n, flags)
        self.buf += ids[:max(n, 0)].tobytes()
        self.calls.append(("release", ids, flags))

    def _path(self, op: int, path: Path | str) -> None:
        b = str(path).encode()
        self._i(op, len(b))
        self.buf += b.ljust((len(b) + 7) // 8 * 8, b"\0")

    def save(self, c_path: Path | str, py_path: Path | str | None = None) -> None:
        self._path(3, c_path)
        self.calls.append(("save", Path(c_path), py_path))

    def load(self, c_path: Path | str, py_path: Path | str | None = None) -> None:
        self._path(4, c_path)
        self.calls.append(("load", Path(c_path), py_path))

    def reopen(self) -> None:
        self._i(5)
        self.calls.append(("reopen",))

    def n_cells(self) -> None:
        self._i(6)
        self.calls.append(("n_cells",))


@dataclass
class Answer:
    rc: int
    code: int = 0
    msg: str = ""
    out: dict[str, np.ndarray] = field(default_factory=dict)
    value: int | None = None


def run_c(exe: Path, model: Path | None, ops: Ops, tmp: Path) -> list[Answer]:
    (tmp / "ops.bin").write_bytes(bytes(ops.buf))
    r = subprocess.run([str(exe), "-" if model is None else str(model), str(tmp / "ops.bin"),
                        str(tmp / "res.bin")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    data = (tmp / "res.bin").read_bytes()
    at = 0

    def take(fmt: str, count: int = 1):
        nonlocal at
        size = np.dtype(fmt).itemsize * count
        v = np.frombuffer(data, fmt, count, at).copy()
        at += size
        return v

    answers = []
    for call in ops.calls:
        if call[0] == "n_cells":
            answers.append(Answer(0, value=int(take("<i8")[0])))
            continue
        a = Answer(int(take("<i8")[0]))
        if a.rc:
            a.code = int(take("<i8")[0])
            ln = int(take("<i8")[0])
            a.msg = data[at:at + ln].decode()
            at += ln
        if call[0] == "query" and not call[4] & (1 << 11):  # outputs unless out = NULL
            m = max(call[5], 0)
            for k, name in enumerate(FIELDS):
                if call[4] & (1 << k):
                    a.out[name] = take("<i4" if name == "status" else "<f8", m)
        answers.append(a)
    assert at == len(data)
    return answers


def run_py(model: Path | None, ops: Ops) -> list[Any]:
    """The same calls on the Python API: a QueryResult, an exception, or None per call."""
    c = Closure.load(model)
    out: list[Any] = []
    for call in ops.calls:
        kind = call[0]
        if kind == "query":
            _, ids, p, dt, _, _ = call
            try:
                out.append(c.query(ids, p, dt, mode="table"))
            except (ValueError, TypeError) as exc:
                out.append(exc)
        elif kind == "release":
            c.release(call[1])
            out.append(None)
        elif kind == "save":
            if call[2] is not None:
                capi.save_state(c, call[2])
            out.append(None)
        elif kind == "load":
            if call[2] is not None:
                capi.load_state(c, call[2])
            out.append(None)
        elif kind == "reopen":  # a fresh closure of the same model (state empty)
            c = Closure(c.runner, c.table)
            out.append(None)
        else:
            out.append(c.n_cells)
    return out


def assert_same(ops: Ops, got: list[Answer], want: list[Any], what: str = "") -> None:
    for i, (call, a, w) in enumerate(zip(ops.calls, got, want, strict=True)):
        where = f"{what} call {i} ({call[0]})"
        if call[0] == "n_cells":
            assert a.value == w, where
        elif isinstance(w, Exception):
            assert a.rc != 0, f"{where}: Python raised {w!r}, C returned 0"
            if a.code == 2:  # bad values: Python's words exactly (C's own for its arguments)
                assert a.msg == str(w), where
        else:
            assert a.rc == 0, f"{where}: {a.msg}"
            if isinstance(w, QueryResult):
                for name, arr in a.out.items():
                    ref = getattr(w, name)
                    assert arr.dtype.itemsize == ref.dtype.itemsize
                    assert arr.tobytes() == ref.tobytes(), f"{where}: {name} differs"
        if call[0] == "save" and call[2] is not None:
            assert call[1].read_bytes() == Path(call[2]).read_bytes(), f"{where}: state files"


# ---------------------------------------------------------------------------------------------
# random call sequences: C equals Python to the last bit

def random_ops(seed: int, tmp: Path, envelope: tuple[float, float], nodes: np.ndarray,
               n_ops: int = 60) -> Ops:
    rng = np.random.default_rng(seed)
    lo, hi = envelope
    pool = np.unique(np.concatenate([rng.integers(-2**62, 2**62, 24), np.arange(-3, 13)]))
    special = np.concatenate([[0.0, -0.0, 0.5e9, 1e9, np.nextafter(1e9, 2e9), lo, hi, 0.999 * lo,
                               1.3 * hi, 60e9], nodes])
    ops = Ops()
    stored: set[int] = set()

    def pressures(n: int) -> np.ndarray:
        p = rng.uniform(0.0, 1.2 * hi, n)
        pick = rng.random(n) < 0.3
        p[pick] = rng.choice(special, int(pick.sum()))
        return p

    def dts(n: int):
        if rng.random() < 0.5:
            return float(rng.choice([rng.uniform(1e-13, 4e-10), 2.5e-10, 1e-15, 1.0, 1e-11]))
        d = rng.uniform(1e-13, 4e-10, n)
        d[rng.random(n) < 0.1] = 2.5e-10
        return d

    n_save = 0
    snapshots: dict[int, set[int]] = {}
    for _ in range(n_ops):
        op = rng.choice(["query", "query", "query", "steady", "shuffled", "release", "save",
                         "reopen", "n_cells"])
        out = int(rng.choice([ALL_OUT, ALL_OUT, 0b000101, 0b100000, 0]))
        if op in ("steady", "shuffled") and stored:
            ids = np.array(sorted(stored), np.int64)
            if op == "shuffled":
                ids = rng.permutation(ids)
            for _ in range(int(rng.integers(1, 4))):  # repeated: the C side's cached paths
                p = pressures(ids.size)
                ops.query(ids, p, dts(ids.size), out | (rng.random() < 0.1) << 11)
                stored |= {int(i) for i, q in zip(ids, p, strict=True) if q > 1e9}
        elif op == "release":
            ids = rng.choice(pool, int(rng.integers(0, 8)))  # repeats and unknown ids too
            ops.release(ids)
            stored -= {int(i) for i in ids}
        elif op in ("save", "reopen"):
            c_file, py_file = tmp / f"c{n_save}.state", tmp / f"py{n_save}.state"
            snapshots[n_save] = set(stored)
            n_save += 1
            ops.save(c_file, py_file)
            if op == "reopen":
                ops.reopen()
                ops.load(c_file, py_file)
            elif snapshots and rng.random() < 0.5:  # back to an earlier checkpoint
                k = int(rng.integers(0, n_save))
                ops.load(tmp / f"c{k}.state", tmp / f"py{k}.state")
                stored = set(snapshots[k])
        elif op == "n_cells":
            ops.n_cells()
        else:
            n = int(rng.integers(0, 20))
            ids = rng.choice(pool, n, replace=False)
            if rng.random() < 0.3:
                ids = np.sort(ids)
            p = pressures(n)
            ops.query(ids, p, dts(n), out)
            stored |= {int(i) for i, q in zip(ids, p, strict=True) if q > 1e9}
    final_c, final_py = tmp / "final_c.state", tmp / "final_py.state"
    ops.save(final_c, final_py)
    ops.n_cells()
    return ops


def _seeds(default: list[int]) -> list[int]:
    env = os.environ.get("CAPI_SEED")
    return [int(env)] if env else default


def _fresh_seeds(k: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence().generate_state(k, np.uint32)]


@needs_cc
@pytest.mark.parametrize("seed", _seeds([0, 1, 2, *_fresh_seeds(2)]))
def test_random_sequences_equal_python_bit_for_bit_shipped_model(replay, tmp_path, seed):
    print(f"CAPI_SEED={seed}")  # replay: CAPI_SEED=<seed> pytest tests/test_capi.py -k random
    c = Closure.load()
    ops = random_ops(int(seed), tmp_path, c.envelope, c.table.nodes)
    got = run_c(replay, None, ops, tmp_path)
    want = run_py(None, ops)
    assert_same(ops, got, want, f"seed {seed}")
    assert got[-1].value > 0  # the sequence did keep cells


@needs_cc
@pytest.mark.parametrize("seed", _seeds([10, *_fresh_seeds(1)]))
def test_random_sequences_equal_python_bit_for_bit_tiny_model(replay, tiny_dir, tmp_path, seed):
    print(f"CAPI_SEED={seed}")
    c = Closure.load(tiny_dir)
    ops = random_ops(int(seed), tmp_path, c.envelope, c.table.nodes)
    assert_same(ops, run_c(replay, tiny_dir, ops, tmp_path), run_py(tiny_dir, ops),
                f"seed {seed}")


@needs_cc
def test_large_batches_and_python_state_into_c(replay, tmp_path):
    """Batches past the library's OpenMP threshold, every path (new cells, steady state in
    order and shuffled, subsets); then state written by Python is read by C and back."""
    rng = np.random.default_rng(5)
    n = 320_000  # the cells that stay shocked are still more than 2**18
    ids = rng.permutation(np.arange(n, dtype=np.int64) * 5 - 1000)
    ops = Ops()
    p = rng.uniform(0, 16e9, n)
    ops.query(ids, p, 1e-11)                                  # new cells, shuffled
    s = np.sort(ids[p > 1e9])
    ops.query(s, rng.uniform(0, 16e9, s.size), rng.uniform(1e-12, 3e-10, s.size))  # steady
    ops.query(ids, rng.uniform(0, 16e9, n), 2e-11)            # mixed, shuffled
    ops.query(ids, rng.uniform(0, 16e9, n), 3e-11)            # again: cached positions
    ops.save(tmp_path / "c.state", tmp_path / "py.state")
    py = Closure.load()
    for call in ops.calls[:4]:
        py.query(call[1], call[2], call[3])
    capi.save_state(py, tmp_path / "from_py.state")
    ops.load(tmp_path / "from_py.state")
    ops.query(ids[:1000], rng.uniform(0, 16e9, 1000), 1e-11)
    got = run_c(replay, None, ops, tmp_path)
    assert_same(ops, got, run_py(None, ops))


# ---------------------------------------------------------------------------------------------
# bad input: every bad input of the Python API's tests, rejected by C with the state unchanged

def _c_case(override: dict) -> tuple[dict, str] | tuple[None, str]:
    """A Python bad-input case as a C call, or None and why C cannot express it."""
    kw = dict(ids=[4, 7, 8], p=[9e9, 9e9, 9e9], dt=1e-10)
    for k, v in override.items():
        if k in ("mode", "deterministic", "seed"):
            return None, f"{k}: the C API has table mode only (no mode, sampling or seed)"
        if k == "cell_ids":
            a = np.asarray(v)
            if a.dtype.kind not in "iu" or a.ndim != 1:
                return None, "cell_ids: const int64_t * (typed, 1-D)"
            kw["ids"] = v
        elif k == "pressure":
            a = np.asarray(v)
            if a.dtype.kind not in "fiu":
                return None, "pressure: const double * (typed)"
            if a.size != 3:
                return None, "pressure: one n for cell_ids and pressure"
            kw["p"] = v
        elif k == "dt":
            kw["dt"] = v
    return kw, ""


def test_python_bad_inputs_are_all_mapped():
    from test_closure_api import BAD

    mapped = [_c_case(o)[0] is not None for o, _, _ in BAD]
    assert sum(mapped) >= 8  # pressure NaN/Inf/negative, dt <= 0, > 1, NaN, shape, duplicates
    for o, _, _ in BAD:
        kw, why = _c_case(o)
        assert kw is not None or why, o


@needs_cc
@pytest.mark.parametrize("model", ["shipped", "tiny"])
def test_every_python_bad_input_rejected_by_c_state_unchanged(replay, tiny_dir, tmp_path, model):
    from test_closure_api import BAD

    mdir = None if model == "shipped" else tiny_dir
    ops = Ops()
    ops.query([4, 7, 9], [3e9, 8e9, 0.0], 1e-10)
    ops.save(tmp_path / "before.state", tmp_path / "before_py.state")
    cases = []
    for override, _, match in BAD:
        kw, _ = _c_case(override)
        if kw is None:
            continue
        ops.query(kw["ids"], kw["p"], kw["dt"], ALL_OUT)
        ops.save(tmp_path / f"after{len(cases)}.state")
        cases.append((override, match, len(ops.calls) - 2))
    ops.query([4, 7, 9], [3e9, 8e9, 0.0], 1e-10)  # carries on as if nothing happened
    got = run_c(replay, mdir, ops, tmp_path)
    want = run_py(mdir, ops)
    before = (tmp_path / "before.state").read_bytes()
    for k, (override, match, i) in enumerate(cases):
        a, w = got[i], want[i]
        assert isinstance(w, ValueError), (override, w)
        assert a.rc != 0, override
        assert re.search(match, a.msg) or "n_dt" in a.msg, (override, a.msg)
        if "dt" in override and np.size(override["dt"]) == 2:  # the shape: C's own words
            assert a.code == 1 and "n_dt = 2" in a.msg and "n = 3" in a.msg, a.msg
        else:  # the same words as Python: argument, first bad index, value, allowed range
            assert a.code == 2 and a.msg == str(w), (a.msg, str(w))
        assert all(np.isnan(v).all() if v.dtype.kind == "f" else (v == -77).all()
                   for v in a.out.values()), "a failing call wrote outputs"
        assert (tmp_path / f"after{k}.state").read_bytes() == before, override
    assert_same(ops, got, want)


@needs_cc
def test_random_bad_values_have_pythons_messages(replay, tmp_path):
    rng = np.random.default_rng(11)
    ops = Ops()
    for _ in range(40):
        n = int(rng.integers(1, 9))
        ids = rng.choice(50, n, replace=False)
        p = rng.uniform(0, 2e10, n)
        dt: Any = rng.uniform(1e-12, 1e-9, n) if rng.random() < 0.5 else 1e-10
        bad = rng.choice(["p_nan", "p_neg", "p_inf", "dt_neg", "dt_big", "dt_zero", "dup"])
        i = int(rng.integers(0, n))
        val = {"p_nan": np.nan, "p_neg": -rng.uniform(1e-300, 1e12), "p_inf": -np.inf,
               "dt_neg": -rng.uniform(1e-20, 1e3), "dt_big": rng.uniform(1.0000001, 1e300),
               "dt_zero": -0.0}.get(str(bad))
        if bad.startswith("p_"):
            p[i] = val
        elif bad == "dup":
            if n < 2:
                continue
            ids[i] = ids[(i + 1) % n]
        elif isinstance(dt, np.ndarray):
            dt[i] = val
        else:
            dt = float(val)
        ops.query(ids, p, dt)
    got, want = run_c(replay, None, ops, tmp_path), run_py(None, ops)
    assert all(isinstance(w, ValueError) for w in want)
    assert_same(ops, got, want)


@needs_cc
def test_repeat_in_ids_caught_after_the_same_ids_passed(replay, tmp_path):
    """The library skips the duplicate check for ids equal to the last ones found unique: a
    changed array must be checked again."""
    ids = np.array([50, 3, 90, 1, 7], np.int64)
    p = np.array([6e9, 9e9, 12e9, 0.0, 2e9])
    ops = Ops()
    for _ in range(3):
        ops.query(ids, p, 1e-10)
    bad = ids.copy()
    bad[4] = 90
    ops.query(bad, p, 1e-10)
    ops.query(ids, p, 1e-10)
    got, want = run_c(replay, None, ops, tmp_path), run_py(None, ops)
    assert got[3].code == 2 and "cell_ids[4] = 90 repeats cell_ids[2]" in got[3].msg
    assert_same(ops, got, want)


@needs_cc
def test_c_only_bad_inputs(replay, tiny_dir, tmp_path):
    """Arguments only C can get wrong: NULL pointers and handle, n < 0, n_dt, burned_fraction;
    bad paths and bad state files. Each: a code, a message naming it, no state change."""
    ops = Ops()
    ops.query([1, 2, 3], [5e9, 9e9, 12e9], 1e-10)
    ops.save(tmp_path / "ref.state")
    expect: list[tuple[int, int, str]] = []  # (call index, code, message pattern)

    def bad(code: int, pattern: str) -> None:
        expect.append((len(ops.calls) - 1, code, pattern))
        ops.save(tmp_path / f"s{len(expect)}.state")

    ids, p = [1, 2, 3], [5e9, 9e9, 12e9]
    ops.query(ids, p, 1e-10, n=-1)
    bad(1, r"^n = -1 is out of range; n must be >= 0$")
    for bit, name in ((8, "cell_ids"), (9, "pressure"), (10, "dt")):
        ops.query(ids, p, 1e-10, ALL_OUT | 1 << bit)
        bad(1, rf"^{name} is NULL, but n(_dt)? = [13] values are needed$")
    ops.query(ids, p, [1e-10, 1e-10], n_dt=2)
    bad(1, r"dt must be a scalar \(n_dt = 1\) or have n = 3 values \(n_dt = n\), got n_dt = 2")
    ops.query(ids, p, [], n_dt=0)
    bad(1, r"got n_dt = 0")
    ops.query(ids, p, 1e-10, ALL_OUT | 1 << 4)
    bad(3, r"^out->burned_fraction: this model has no burned_fraction output")
    ops.query(ids, p, 1e-10, ALL_OUT | 1 << 12)
    bad(1, r"^c is NULL")
    ops.release(ids, n=-2)
    bad(1, r"^n = -2 is out of range")
    ops.release(ids, 1 << 8)
    bad(1, r"^cell_ids is NULL, but n = 3")
    ops.release(ids, 1 << 12)
    bad(1, r"^c is NULL")
    ops.save(tmp_path / "no" / "such" / "dir" / "x.state")
    bad(4, r"cannot create a temporary file in .*no/such/dir")
    ops.load(tmp_path / "missing.state")
    bad(4, r"state file .*missing.state: No such file")
    (tmp_path / "garbage.state").write_bytes(b"not a state file" * 10)
    ops.load(tmp_path / "garbage.state")
    bad(5, r"garbage.state: not a closure state file")
    ref_state = _state_file(tiny_dir, tmp_path)
    (tmp_path / "truncated.state").write_bytes(ref_state[:-40])
    ops.load(tmp_path / "truncated.state")
    bad(5, r"truncated.state: checksum mismatch")
    (tmp_path / "other_model.state").write_bytes(_state_file(None, tmp_path))
    ops.load(tmp_path / "other_model.state")
    bad(6, r"other_model.state: saved with a different model \(weights_sha256 677049a2705b\.\.\.")
    st = capi.read_state(tmp_path / "tiny.state")
    for field_, value, pattern in (("ps", np.nan, r"ps\[1\] = nan is out of range"),
                                   ("frac", 1.0, r"frac\[1\] = 1.0 is out of range"),
                                   ("ids", 1, r"ids must be strictly increasing: ids\[1\] = 1")):
        s = dict(st)
        s[field_] = s[field_].copy()
        s[field_][1] = value
        name = f"bad_{field_}.state"
        (tmp_path / name).write_bytes(_raw_state(s))
        ops.load(tmp_path / name)
        bad(5, rf"{name}: {pattern}")
    ops.query(ids, p, 1e-10)  # state as before all of it
    got = run_c(replay, tiny_dir, ops, tmp_path)
    ref = (tmp_path / "ref.state").read_bytes()
    for k, (i, code, pattern) in enumerate(expect, start=1):
        a = got[i]
        assert a.rc == code and a.code == code, (pattern, a)
        assert re.search(pattern, a.msg), (pattern, a.msg)
        assert (tmp_path / f"s{k}.state").read_bytes() == ref, pattern
        assert all(np.isnan(v).all() if v.dtype.kind == "f" else (v == -77).all()
                   for v in a.out.values())
    assert not list(tmp_path.glob(".*.tmp")), "a temporary state file was left behind"
    py = Closure.load(tiny_dir)
    py.query(ids, p, 1e-10)
    last = py.query(ids, p, 1e-10)
    assert got[-1].out["reaction_rate"].tobytes() == last.reaction_rate.tobytes()


def _state_file(model: Path | None, tmp: Path) -> bytes:
    c = Closure.load(model)
    c.query(np.array([3, 5, 9]), np.array([6e9, 9e9, 12e9]), 1e-10)
    name = "tiny.state" if model is not None else "shipped.state"
    capi.save_state(c, tmp / name)
    return (tmp / name).read_bytes()


def _raw_state(st: dict) -> bytes:
    """A state file with any values (no checks), checksum correct."""
    sd = {"tok_ids": np.zeros(0, np.int64), **st}
    return capi.state_bytes(sd)


@needs_cc
def test_open_errors(replay, tiny_dir, tmp_path):
    def open_fails(d: Path, *pattern: str) -> None:
        (tmp_path / "empty.ops").write_bytes(b"")
        r = subprocess.run([str(replay), str(d), str(tmp_path / "empty.ops"),
                            str(tmp_path / "res")], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        for pat in pattern:
            assert re.search(pat, r.stderr), (pat, r.stderr)

    open_fails(tmp_path / "nowhere", r"closure_open failed \(4\)", "nowhere' is not a directory")
    d = tmp_path / "m"
    shutil.copytree(tiny_dir, d)
    (d / capi.TABLE_EXPORT).unlink()
    open_fails(d, r"\(4\)", "no exported table", "python -m closure table export")
    other = make_model_dir(tmp_path / "other", seed=1, n_t=6)  # other weights, same table
    shutil.copy(tiny_dir / capi.TABLE_EXPORT, other)
    open_fails(other, r"\(6\)", "exported for weights sha256", "export it again")
    shutil.copy(tiny_dir / capi.TABLE_EXPORT, d)
    with open(d / TABLE_FILE, "ab") as fh:  # the HDF5 table changed after the export
        fh.write(b"\0")
    open_fails(d, r"\(6\)", "is stale", "changed since the export")
    shutil.copy(tiny_dir / TABLE_FILE, d)
    raw = bytearray((d / capi.TABLE_EXPORT).read_bytes())
    raw[300] ^= 1
    (d / capi.TABLE_EXPORT).write_bytes(bytes(raw))
    open_fails(d, r"\(5\)", "checksum mismatch")


# ---------------------------------------------------------------------------------------------
# the table export, the state file from Python, flags, packaging

def test_shipped_export_is_current_and_reproducible(tmp_path):
    d = DEFAULT_MODEL_DIR
    got = capi.read_table_export(d / capi.TABLE_EXPORT)
    assert got["source_sha256"] == sha256_of(d / TABLE_FILE)
    assert got["weights_sha256"] == sha256_of(d / "model.pt")
    out = capi.export_table(None, tmp_path / "again.bin")
    assert out.read_bytes() == (d / capi.TABLE_EXPORT).read_bytes()
    assert (d / capi.TABLE_EXPORT).stat().st_size < 100_000  # small enough to ship


def test_state_file_round_trip_in_python(tiny_dir, tmp_path):
    c = Closure.load(tiny_dir)
    c.query(np.array([9, -4, 2**40]), np.array([6e9, 9e9, 12e9]), 1.3e-10)
    capi.save_state(c, tmp_path / "s.state")
    c2 = Closure.load(tiny_dir)
    capi.load_state(c2, tmp_path / "s.state")
    a, b = c.state_dict(), c2.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    c.query(np.array([9]), np.array([6e9]), 1e-10, mode="online")
    with pytest.raises(ValueError, match="online tokens for 1 cells"):
        capi.save_state(c, tmp_path / "t.state")


def test_table_export_cli(tiny_dir, tmp_path, capsys):
    from closure.cli import main

    assert main(["table", "export", str(tiny_dir), "--out", str(tmp_path / "t.bin")]) == 0
    assert (tmp_path / "t.bin").read_bytes() == (tiny_dir / capi.TABLE_EXPORT).read_bytes()
    assert "wrote" in capsys.readouterr().out


def test_flags_and_pkg_config(library):
    assert flags("--cflags") == [f"-I{capi.include_dir()}"]
    lib = str(capi.lib_dir())
    assert flags("--libs") == [f"-L{lib}", f"-Wl,-rpath,{lib}", "-lporous_closure"]
    assert flags("--cflags", "--libs") == flags("--cflags") + flags("--libs")
    assert Path(flags("--fortran-module")[0]).exists()
    assert (capi.include_dir() / "porous_closure.h").exists()
    pc = (capi.pkgconfig_dir() / "closure.pc").read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"Version: {version}" in pc
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = cfg["tool"]["setuptools"]["package-data"]["closure"]
    assert "include/*" in data and "lib/pkgconfig/*.pc" in data
    if shutil.which("pkg-config"):
        env = dict(os.environ, PKG_CONFIG_PATH=str(capi.pkgconfig_dir()))
        r = subprocess.run(["pkg-config", "--cflags", "--libs", "closure"], env=env,
                           capture_output=True, text=True, check=True)
        got = [Path(a[2:]).resolve() for a in shlex.split(r.stdout) if a.startswith(("-I", "-L"))]
        assert got == [capi.include_dir().resolve(), capi.lib_dir().resolve()]


def test_library_needs_no_python_or_torch(library):
    if not shutil.which("readelf"):
        pytest.skip("readelf (binutils) not installed")
    out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True,
                         check=True).stdout
    needed = re.findall(r"NEEDED.*\[(.*)\]", out)
    assert needed and not [n for n in needed if "python" in n or "torch" in n], needed
    syms = subprocess.run(["readelf", "--dyn-syms", "-W", str(library)], capture_output=True,
                          text=True, check=True).stdout
    exported = set(re.findall(r"\bGLOBAL\s+DEFAULT\s+\d+\s+(closure_\w+)", syms))
    assert {"closure_open", "closure_query", "closure_release", "closure_save_state",
            "closure_load_state", "closure_last_error", "closure_close"} <= exported


# ---------------------------------------------------------------------------------------------
# README example and Fortran

def readme_c_example() -> str:
    text = (ROOT / "README.md").read_text()
    sec = text.split("## Calling the closure from C or Fortran", 1)[1]
    return re.search(r"```c\n(.*?)```", sec, re.S).group(1)


@needs_cc
def test_readme_c_example_compiles_and_runs(library, tmp_path):
    src = readme_c_example()
    assert 15 <= len(src.strip().splitlines()) <= 30
    (tmp_path / "example.c").write_text(src)
    exe = compile_c(tmp_path / "example.c", tmp_path / "example")
    r = subprocess.run([str(exe)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "status" in r.stdout


GFORTRAN = shutil.which(os.environ.get("FC", "gfortran")) or shutil.which("gfortran")


@pytest.fixture(scope="module")
def fortran_example(tmp_path_factory, library) -> Path:
    if GFORTRAN is None:
        pytest.skip("gfortran not installed (.ci/run installs it: apt-get install gfortran)")
    d = tmp_path_factory.mktemp("fortran")
    common = [GFORTRAN, "-std=f2008", "-Wall", "-Werror", "-O2", "-J", str(d)]
    cmds = [[*common, "-c", *flags("--fortran-module"), "-o", str(d / "porous_closure.o")],
            [*common, str(ROOT / "examples" / "fortran" / "closure_tracers.f90"),
             str(d / "porous_closure.o"), *flags("--libs"), "-o", str(d / "closure_tracers")]]
    for cmd in cmds:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
        assert r.returncode == 0, f"{shlex.join(cmd)}\n{r.stderr}"
    return d / "closure_tracers"


def read_record(path: Path) -> tuple[np.ndarray, ...]:
    raw = path.read_bytes()
    n, steps = struct.unpack_from("<qq", raw)
    rec = np.dtype([("dt", "<f8"), ("p", "<f8", n), ("a", "<f8", n), ("t", "<f8", n),
                    ("r", "<f8", n), ("u", "<f8", n), ("s", "<i4", n)])
    return n, np.frombuffer(raw, rec, steps, 16)


def test_fortran_example_equals_python(fortran_example, tmp_path):
    r = subprocess.run([str(fortran_example), "--record", str(tmp_path / "rec.bin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "tracers shocked" in r.stdout
    n, rec = read_record(tmp_path / "rec.bin")
    ids = np.arange(1001, 1001 + n, dtype=np.int64)
    c = Closure.load()
    for k, row in enumerate(rec):
        q = c.query(ids, row["p"], float(row["dt"]), mode="table")
        for name, f in (("a", "hotspot_area_fraction"), ("t", "hotspot_temperature"),
                        ("r", "reaction_rate"), ("u", "uncertainty"), ("s", "status")):
            assert row[name].tobytes() == getattr(q, f).tobytes(), (k, f)
    assert set(np.unique(rec["s"])) == {0, 1, 2}  # ambient, shocked, below the envelope
    assert rec["r"].max() > 0
    # checkpoint half way, restart from the file: the same answers
    r = subprocess.run([str(fortran_example), "--record", str(tmp_path / "rec2.bin"),
                        "--checkpoint", str(tmp_path / "ck.state")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rec2.bin").read_bytes() == (tmp_path / "rec.bin").read_bytes()


def test_fortran_example_reads_histories_and_reports_errors(fortran_example, tmp_path):
    hist = tmp_path / "hist.txt"
    hist.write_text("3 2\n1e-10 0 6e9 9e9\n2e-10 0 7e9 -1\n")
    r = subprocess.run([str(fortran_example), "--histories", str(hist)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert "pressure[2] = -1.0 is out of range; pressure must be finite and >= 0 Pa" in r.stderr
