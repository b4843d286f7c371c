"""The C API's MPMD mode: ``mpiexec -n 2 <C client> : -n 1 python -m closure serve``.

The C clients (tests/capi_mpmd_client.c, built against the printed ``--mpi`` flags) play seeded
random call sequences through ``closure_open_mpi``: their answers equal the in-process Python
closure's for the same per-client call sequence, bit for bit (table mode with the shipped model,
deterministic online mode with a tiny model); releases, save and load go through the workers;
bad arguments are refused locally with the local library's messages and change nothing; a
frozen or raising worker is a non-zero code and a message on both clients within the deadline.
Seeds are printed; ``CAPI_MPMD_SEED=<seed>`` replays one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")
from capi_mpmd_support import ALL, Calls, read_record  # noqa: E402

from closure import capi  # noqa: E402
from closure.files import atomic_write_bytes  # noqa: E402

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec") or str(BIN / "mpiexec")
MPICC = os.environ.get("MPICC") or shutil.which("mpicc") or (
    str(BIN / "mpicc") if (BIN / "mpicc").exists() else None)
CC = MPICC or shutil.which("cc")
RUN_TIMEOUT = 240
pytestmark = pytest.mark.skipif(MPICC is None, reason="no MPI C compiler (mpicc: pip install "
                                                      "mpich) to build the MPMD C client")

# the local library's messages (closure_query's front end) for the bad calls below
BAD = [  # (pressure edit, dt, n_dt, mask, code, message pattern)
    ("nan", 2.5e-10, None, ALL, 2, r"pressure\[1\] = nan is not finite; pressure must be "
                                   r"finite and >= 0 Pa"),
    ("neg", 2.5e-10, None, ALL, 2, r"pressure\[0\] = -1\.0 is out of range"),
    (None, 2.0, None, ALL, 2, r"dt = 2\.0 is out of range; dt must be in \(0, 1\] s"),
    (None, 2.5e-10, "n+1", ALL, 1, r"dt must be a scalar \(n_dt = 1\) or have n = \d+ values"),
    ("dup", 2.5e-10, None, ALL, 2, r"cell_ids must be unique: cell_ids\[1\] = \d+ repeats "
                                   r"cell_ids\[0\]"),
    (None, 2.5e-10, None, ALL | 16, 3, r"out->burned_fraction: this model has no "
                                       r"burned_fraction output"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Path:
    if not capi.mpi_library_path().exists():
        pytest.fail(f"{capi.mpi_library_path()} is not built although {MPICC} exists: rebuild "
                    "(pip install -e . or python setup.py build_ext --inplace)")
    exe = tmp_path_factory.mktemp("capi_mpmd") / "capi_mpmd_client"
    flags = capi.cflags(mpi=True).split() + capi.libs(mpi=True).split()
    subprocess.run([CC, "-O2", "-Wall", "-Werror", str(TESTS / "capi_mpmd_client.c"), *flags,
                    "-o", str(exe)], check=True)
    return exe


def _env(rank_timeout: float) -> dict:
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MACRO_MPI_TIMEOUT=str(rank_timeout),
               MPIEXEC_TIMEOUT=str(RUN_TIMEOUT),
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), str(TESTS.parent),
                                                        env.get("PYTHONPATH")])))
    return env


def _cmd(exe: Path, mode: str, timeout: float, d: Path, workers: list[str], n_workers: int = 1
         ) -> list[str]:
    return [MPIEXEC, "-n", "2", str(exe), mode, str(timeout), str(d), ":", "-n",
            str(n_workers), sys.executable, *workers]


def _seed() -> int:
    seed = int(os.environ.get("CAPI_MPMD_SEED") or np.random.default_rng().integers(2**31))
    print(f"CAPI_MPMD_SEED={seed}")
    return seed


def _layout_file(path: Path, workers: int) -> Path:
    """An MPMD state file of another layout (``workers`` workers, no parts): refused by its
    header before anything is sent."""
    head = b"PCMPMDS\0" + struct.pack("<IIqq", 1, 64, workers, 1)
    data = head.ljust(64, b"\0")
    path.write_bytes(data + hashlib.sha256(data).digest())
    return path


def _sequences(seed: int, d: Path, steps: int, n_workers: int) -> list[Calls]:
    """Per client: cells ``rank * 10**6 + k``, random subsets in random order, scalar and
    per-cell dt, outputs subsets and ``out = NULL``, releases, a save, a load back to it (the
    same calls on both clients: they are collective), bad calls, refused files."""
    calls = [Calls(), Calls()]
    bad_at = {3: 0, 5: 1, 7: 2, 9: 3, 11: 4, 13: 5}
    state, local = d / "mpmd.state", d / "local.state"
    other = _layout_file(d / "other.state", n_workers + 1)
    atomic_write_bytes(local, capi.state_bytes(_empty_state()))
    for rank, c in enumerate(calls):
        rng = np.random.default_rng([seed, rank])
        cells = rank * 10**6 + rng.choice(10**5, 24, replace=False).astype(np.int64)
        for k in range(steps):
            sel = rng.permutation(cells.size)[: rng.integers(1, cells.size + 1)]
            ids = cells[sel]
            p = rng.uniform(0.5e9, 20e9, ids.size) * (rng.random(ids.size) < 0.85)
            dt = 2e-10 * (1 + rng.random(ids.size)) if k % 3 == 1 else 2.5e-10 * (1 + k % 2)
            mask = [ALL, 4 | 32, 0, 1 | 8][k % 4] if k % 5 == 4 else ALL
            c.query(ids, p, dt, mask)
            if k in bad_at:
                edit, bdt, n_dt, bmask, _, _ = BAD[bad_at[k]]
                bids = cells[rng.permutation(cells.size)[:5]]
                bp = rng.uniform(0.5e9, 20e9, 5)
                if edit == "nan":
                    bp[1] = np.nan
                elif edit == "neg":
                    bp[0] = -1.0
                elif edit == "dup":
                    bids[1] = bids[0]
                c.query(bids, bp, bdt if n_dt is None else np.full(6, bdt), bmask)
            if k % 4 == 3:
                c.release(np.concatenate([cells[rng.choice(cells.size, 3)], [7]]))
            if k == steps // 3:
                c.save(state)
            if k == steps // 3 + 3:
                c.load(other)
                c.load(local)
            if k == 2 * steps // 3:
                c.load(state)
        c.write(d / f"in{rank}.bin")
    return calls


def _empty_state() -> dict:
    from closure import Closure

    return Closure.load().state_dict()


def _replay(make, calls: Calls, recs: list[dict], mode: str, n_workers: int) -> int:
    """The client's calls on an in-process closure (``make()``): every answer bit for bit,
    bad calls refused with their codes; returns the number of queries compared."""
    c = make()
    saved = None
    compared = 0
    assert len(recs) == len(calls.ops)
    bad = iter(BAD)
    for op, rec in zip(calls.ops, recs, strict=True):
        if op[0] == "query":
            _, ids, p, dt, mask = op
            if len(np.unique(ids)) != ids.size or not np.all(np.isfinite(p) & (p >= 0)) or \
                    (dt.size != 1 and dt.size != ids.size) or dt.max() > 1 or mask & 16:
                _, _, _, _, code, pattern = next(bad)
                assert rec["rc"] == code and re.search(pattern, rec["message"]), rec
                continue
            assert rec["rc"] == 0, rec
            res = c.query(ids, p, float(dt[0]) if dt.size == 1 else dt, mode=mode,
                          deterministic=True)
            for name in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate",
                         "uncertainty", "status"):
                if name in rec:
                    want = np.asarray(getattr(res, name))
                    if name == "status" and want.dtype == np.int64:  # the mock's
                        want = want.astype(np.int32)
                    got = rec[name]
                    assert got.dtype == want.dtype and np.array_equal(got, want), \
                        (compared, name, got, want)
            compared += 1
        elif op[0] == "release":
            assert rec["rc"] == 0, rec
            c.release(op[1])
        elif op[0] == "save":
            assert rec["rc"] == 0, rec
            saved = c.state_dict()
        elif op[0] == "load" and op[1].endswith("other.state"):
            assert rec["rc"] == 6 and (f"saved by a run with {n_workers + 1} closure workers, "
                                       f"this run has {n_workers}") in rec["message"], rec
        elif op[0] == "load" and op[1].endswith("local.state"):
            assert rec["rc"] == 5 and "state file of an in-process handle" in rec["message"], rec
        else:
            assert rec["rc"] == 0, rec
            c.load_state_dict(saved)
    assert next(bad, None) is None
    return compared


def _run_and_replay(client, tmp_path, mode, workers, make, steps=18, n_workers=1):
    seed = _seed()
    calls = _sequences(seed, tmp_path, steps, n_workers)
    proc = subprocess.run(_cmd(client, mode, 60, tmp_path, workers, n_workers), cwd=tmp_path,
                          env=_env(60), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT + 30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "mpmd.state").exists()
    for rank in (0, 1):
        nclients, recs = read_record(tmp_path / f"out{rank}.bin", calls[rank])
        assert nclients == 2  # the communicator closure_open_mpi returned holds the clients
        assert _replay(make, calls[rank], recs, mode, n_workers) >= steps


def test_two_c_clients_one_worker_table_mode_equal_in_process(client, tmp_path):
    """Table mode, the shipped model: each C client's answers are Closure.load().query(...,
    mode="table")'s for its call sequence, bit for bit, through releases, a save and a load
    via the worker; bad calls and foreign state files are refused with the state unchanged."""
    from closure import Closure

    _run_and_replay(client, tmp_path, "table", ["-m", "closure", "serve", "--device", "cpu"],
                    lambda: Closure.load(backend="cpp"))


@pytest.mark.slow
def test_two_c_clients_one_worker_online_mode_equal_in_process(client, tmp_path):
    """Deterministic online mode with a tiny model (worker --device cpu, the C++ backend in
    process too): the same equality, online tokens saved and loaded through the worker."""
    util = pytest.importorskip("closure_testutil")
    import torch

    from closure import Closure

    torch.set_num_threads(1)
    model = util.make_model_dir(tmp_path / "tiny")
    _run_and_replay(client, tmp_path, "online",
                    ["-m", "closure", "serve", "--model", str(model), "--device", "cpu",
                     "--no-table"],
                    lambda: Closure.load(model, table=False, backend="cpp"), steps=14)


def test_two_c_clients_two_mock_workers_equal_in_process(client, tmp_path):
    """Two workers around the test provider: each call's cells split by id mod 2 and put back
    in the caller's order, releases to their owners, a state file of two parts."""
    from mpmd_support import ReleasingMock

    _run_and_replay(client, tmp_path, "table",
                    ["-m", "macro.parallel.mpmd", "--provider", "mpmd_support:ReleasingMock"],
                    ReleasingMock, n_workers=2)


def _errors(client, tmp_path, provider_args: str, timeout: float) -> tuple[list[str], float]:
    """Both clients' ``[client r] error`` lines against a mock worker, and the seconds until
    both were printed."""
    calls = [Calls(), Calls()]
    for rank, c in enumerate(calls):
        ids = rank * 100 + np.arange(8)
        for _ in range(40):
            c.query(ids, np.full(8, 3.0), 0.1)
        c.write(tmp_path / f"in{rank}.bin")
    cmd = _cmd(client, "table", timeout, tmp_path,
               ["-m", "macro.parallel.mpmd", "--provider", "mpmd_support:ReleasingMock",
                "--args", provider_args])
    from mpmd_support import client_errors

    return client_errors(cmd, tmp_path, _env(timeout))


def test_frozen_worker_is_a_timeout_on_both_c_clients(client, tmp_path):
    """A worker that stops answering (SIGSTOP on its 5th query: neither answers nor exits):
    both C clients get CLOSURE_ERR_TIMEOUT naming the worker's rank within the deadline."""
    lines, elapsed = _errors(client, tmp_path, "freeze_on_call=5", 4)
    for rank in (0, 1):
        line = [ln for ln in lines if ln.startswith(f"[client {rank}] error:")]
        assert line and re.search(r"code 10: no answer within 4 s while waiting for closure "
                                  r"worker rank 2", line[0]), lines
    assert elapsed < 60, elapsed


def test_raising_worker_is_an_error_with_its_message_on_both_c_clients(client, tmp_path):
    """A worker whose provider raises (from its 4th query on): both C clients get
    CLOSURE_ERR_WORKER with the worker's message, and the job ends (STOP from both)."""
    lines, elapsed = _errors(client, tmp_path, "fail_on_call=4", 30)
    for rank in (0, 1):
        line = [ln for ln in lines if ln.startswith(f"[client {rank}] error:")]
        assert line and re.search(r"code 9: closure worker rank 2 failed: RuntimeError: mock "
                                  r"provider failure on call \d+", line[0]), lines
    assert elapsed < 60, elapsed


GFORTRAN = shutil.which(os.environ.get("FC", "gfortran")) or shutil.which("gfortran")


def test_fortran_clients_through_closure_open_mpi_equal_in_process(tmp_path):
    """The Fortran module porous_closure_mpi (closure_open_mpi with Fortran communicator
    handles): 2 Fortran clients + 1 worker, table mode, answers equal Python's bit for bit."""
    if GFORTRAN is None:
        pytest.skip("gfortran not installed (.ci/run installs it: apt-get install gfortran)")
    from closure import Closure

    common = [GFORTRAN, "-std=f2008", "-Wall", "-Werror", "-O2", "-J", str(tmp_path)]
    for cmd in ([*common, "-c", str(capi.fortran_module())],
                [*common, "-c", str(capi.fortran_module(mpi=True))],
                [*common, str(TESTS / "capi_mpmd_client.f90"), "porous_closure.o",
                 "porous_closure_mpi.o", *capi.libs(mpi=True).split(), "-o", "fclient"]):
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    proc = subprocess.run([MPIEXEC, "-n", "2", str(tmp_path / "fclient"), str(tmp_path), ":",
                           "-n", "1", sys.executable, "-m", "closure", "serve", "--device",
                           "cpu"], cwd=tmp_path, env=_env(60), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT + 30)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rec = np.dtype([("r", "<f8", 5), ("a", "<f8", 5), ("t", "<f8", 5), ("u", "<f8", 5),
                    ("s", "<i4", 5)])
    for rank in (0, 1):
        got = np.fromfile(tmp_path / f"fortran{rank}.bin", rec)
        assert got.size == 6
        c = Closure.load(backend="cpp")
        ids = 1000 * rank + np.arange(1, 6)
        for step in range(1, 7):
            p = np.array([0.5e9, 2e9, 5e9, 9e9, 14e9]) * (1.0 + 0.1 * step)
            res = c.query(ids, p, 2.5e-10, mode="table")
            g = got[step - 1]
            for key, name in (("r", "reaction_rate"), ("a", "hotspot_area_fraction"),
                              ("t", "hotspot_temperature"), ("u", "uncertainty"),
                              ("s", "status")):
                assert np.array_equal(g[key], getattr(res, name)), (rank, step, name)
        assert np.any(got["r"] > 0)


def test_readme_mpmd_example_compiles_and_runs(tmp_path):
    """The README's MPMD C example, as written: 2 clients + 1 worker, online mode with the
    shipped model on the CPU."""
    text = (TESTS.parent / "README.md").read_text()
    sec = text.split("## Calling the closure from C or Fortran", 1)[1]
    src = re.findall(r"```c\n(.*?)```", sec, re.S)[1]
    assert "closure_open_mpi" in src and len(src.strip().splitlines()) <= 30
    (tmp_path / "app.c").write_text(src)
    subprocess.run([CC, "-Wall", "-Werror", "app.c", *capi.cflags(mpi=True).split(),
                    *capi.libs(mpi=True).split(), "-o", "app"], check=True, cwd=tmp_path)
    proc = subprocess.run([MPIEXEC, "-n", "2", "./app", ":", "-n", "1", sys.executable, "-m",
                           "closure", "serve", "--device", "cpu"], cwd=tmp_path, env=_env(60),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT + 30)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(re.findall(r"client (\d): rate", proc.stdout)) == ["0", "1"], proc.stdout


@pytest.mark.parametrize("case", ["no workers", "bad mode", "worker refuses the mode"])
def test_open_errors_on_every_client_and_the_job_ends(client, tmp_path, case):
    """closure_open_mpi fails alike on both clients, with a code and a message, and the job
    ends (the workers get each client's STOP): no worker ranks (CLOSURE_ERR_PROTOCOL), a bad
    mode (CLOSURE_ERR_ARGUMENT, after the handshake), workers whose model cannot answer the
    mode (table mode without a table: the worker's message, CLOSURE_ERR_WORKER)."""
    serve = [":", "-n", "1", sys.executable, "-m", "closure", "serve", "--device", "cpu"]
    cmd, pattern = {
        "no workers": ([], r"code 11: an MPMD closure run needs client ranks \(role 0\) and "
                           r"worker ranks \(role 1\); the roles were \[0, 0\]"),
        "bad mode": (serve, r"code 1: mode = 'fast' is not one of 'table', 'online'"),
        "worker refuses the mode": ([*serve, "--no-table"],
                                    r"code 9: closure worker rank 2 failed: TableError: "
                                    r"mode='table' needs the response table"),
    }[case]
    mode = "fast" if case == "bad mode" else "table"
    proc = subprocess.run([MPIEXEC, "-n", "2", str(client), mode, "30", str(tmp_path), *cmd],
                          cwd=tmp_path, env=_env(30), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT + 30)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[client ?] error: open:")]
    assert len(lines) == 2 and all(re.search(pattern, ln) for ln in lines), proc.stderr[-3000:]
