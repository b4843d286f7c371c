"""MPMD closure workers (``mpiexec -n 2 client : -n 1 closure serve``): clients of another
program get the answers in-process Python gives, and a dead worker is an error on every client
within the deadline, never a hang."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")
TESTS = Path(__file__).resolve().parent
MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
RUN_TIMEOUT = 240


def _env(rank_timeout: float) -> dict:
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MACRO_MPI_TIMEOUT=str(rank_timeout),
               MPIEXEC_TIMEOUT=str(RUN_TIMEOUT),
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), str(TESTS.parent),
                                                        env.get("PYTHONPATH")])))
    return env


def _mpmd(tmp_path: Path, workers: list[str], seed: int, steps: int, mode: str,
          rank_timeout: float = 60, n_workers: int = 1) -> subprocess.CompletedProcess:
    cmd = [MPIEXEC, "-disable-auto-cleanup", "-n", "2", sys.executable,
           str(TESTS / "mpmd_client.py"), str(tmp_path), str(seed), str(steps), mode, ":",
           "-n", str(n_workers), sys.executable, *workers]
    return subprocess.run(cmd, cwd=tmp_path, env=_env(rank_timeout), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT + 30)


def _replay(provider, rec) -> None:
    """The client's call sequence on an in-process provider: every answer bit for bit."""
    k = 0
    while f"q{k}_ids" in rec:
        dt = rec[f"q{k}_dt"]
        res = provider.query(rec[f"q{k}_ids"], rec[f"q{k}_p"], float(dt[0]) if k % 2 == 0
                             else dt, mode=str(rec["mode"]),
                             deterministic=True)
        names = [n[len(f"q{k}_r_"):] for n in rec if n.startswith(f"q{k}_r_")]
        assert names, "no answer recorded"
        for name in names:
            got, want = rec[f"q{k}_r_{name}"], np.asarray(getattr(res, name))
            assert got.dtype == want.dtype and np.array_equal(got, want), (k, name)
        if f"q{k}_released" in rec:
            provider.release(rec[f"q{k}_released"])
        k += 1
    assert k >= 6


@pytest.mark.slow
def test_two_clients_one_closure_worker_equal_in_process_online(tmp_path):
    """2 client ranks + 1 ``closure serve`` worker (a tiny random-weight model, online mode,
    deterministic): each client's answers equal the in-process closure's, bit for bit."""
    util = pytest.importorskip("closure_testutil")
    import torch

    from closure import Closure

    torch.set_num_threads(1)
    model = util.make_model_dir(tmp_path / "tiny")
    seed = int(np.random.default_rng().integers(2**31))
    print(f"seed {seed}")
    proc = _mpmd(tmp_path, ["-m", "closure", "serve", "--model", str(model), "--device", "cpu",
                            "--no-table"], seed, 8, "online")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        rec = dict(np.load(tmp_path / f"client{rank}.npz"))
        _replay(Closure.load(model, table=False, backend="cpp"), rec)


def test_two_clients_mock_workers_equal_in_process(tmp_path):
    """The same with two workers around the test provider (cells spread by id mod 2)."""
    from mpmd_support import ReleasingMock

    seed = int(np.random.default_rng().integers(2**31))
    print(f"seed {seed}")
    proc = _mpmd(tmp_path, ["-m", "macro.parallel.mpmd", "--provider",
                            "mpmd_support:ReleasingMock"], seed, 8, "table", n_workers=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        rec = dict(np.load(tmp_path / f"client{rank}.npz"))
        _replay(ReleasingMock(), rec)


def test_frozen_worker_is_an_error_on_every_client_within_the_deadline(tmp_path):
    """A worker that stops answering (SIGSTOP: neither answers nor exits) makes every client
    raise within its deadline, naming the worker. (A worker killed outright is usually torn
    down with the whole job by MPICH's launcher, -disable-auto-cleanup or not, so the test
    freezes it instead; the clients' side is the same: no answer.)"""
    from mpmd_support import client_errors

    env = _env(4)
    cmd = [MPIEXEC, "-n", "2", sys.executable, str(TESTS / "mpmd_client.py"), str(tmp_path),
           "1", "40", "table", ":", "-n", "1", sys.executable, "-m", "macro.parallel.mpmd",
           "--provider", "mpmd_support:ReleasingMock", "--args", "freeze_on_call=5"]
    lines, elapsed = client_errors(cmd, tmp_path, env)
    for rank in (0, 1):
        line = [ln for ln in lines if ln.startswith(f"[client {rank}] error:")]
        assert line and re.search(r"no answer within 4 s while waiting for closure worker "
                                  r"rank 2", line[0]), lines
    assert elapsed < 60, elapsed  # the deadline, not the launcher's timeout
