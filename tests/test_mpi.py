"""MPI runs against the serial run: decomposed hydro, closure worker ranks, restarts, errors.

Every MPI run is a subprocess (``mpiexec ... python -m macro run``) under a timeout, one Numba
thread per rank; the serial reference runs in-process first, which also compiles the kernels
into the shared Numba cache that the ranks then load. Equality is bitwise (every dataset of
the output file: all frames and /final).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from macro.parallel import Decomposition, WorkerProxy, merge_results, worker_of
from macro.simulation import Simulation

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
MPIEXEC = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
RUN_TIMEOUT = 150  # s per mpiexec run (MPIEXEC_TIMEOUT); the ranks' own deadline is shorter
RANK_TIMEOUT = 60

CLOSURE_1D = """
title = "mock-closure detonation, nondimensional ideal gas"
[model]
type = "euler"
eos = { type = "IdealGas", gamma = 1.2, cv = 5.0 }
products = { type = "IdealGas", gamma = 1.2, cv = 5.0 }
Q = 50.0
[reaction]
type = "closure"
provider = "mpi_support:MockProvider"
provider_args = { k = 0.5 %(extra)s }
growth = { G1 = 0.0, G2 = 0.0 }
gate_pressure = 3.0
[grid]
nx = 120
x_max = 24.0
[time]
t_end = 1.5
n_frames = 3
[boundary]
x_low = "reflective"
x_high = "transmissive"
[problem]
type = "regions"
background = { rho = 1.0, p = 1.0 }
[[problem.regions]]
shape = "box"
x = [0.0, 2.0]
state = { rho = 1.0, p = 80.0 }
[output]
plots = false
checkpoint_every = %(ckpt)d
"""

CLOSURE_2D = """
title = "mock-closure detonation in 2D, RK3"
[model]
type = "euler"
eos = { type = "IdealGas", gamma = 1.2, cv = 5.0 }
products = { type = "IdealGas", gamma = 1.2, cv = 5.0 }
Q = 50.0
[reaction]
type = "closure"
provider = "mpi_support:MockProvider"
provider_args = { k = 0.5 }
growth = { G1 = 0.0, G2 = 0.0 }
gate_pressure = 3.0
[grid]
nx = 48
ny = 20
x_max = 24.0
y_max = 10.0
[numerics]
order = 3
[time]
t_end = 1.2
n_frames = 2
[boundary]
x_low = "reflective"
x_high = "transmissive"
y_low = "periodic"
y_high = "periodic"
[problem]
type = "regions"
background = { rho = 1.0, p = 1.0 }
[[problem.regions]]
shape = "circle"
center = [4.0, 5.0]
radius = 2.5
state = { rho = 1.0, p = 80.0 }
[output]
plots = false
"""

ARRHENIUS_1D = """
title = "ideal-gas Arrhenius detonation"
[model]
type = "euler"
eos = { type = "IdealGas", gamma = 1.2, cv = 5.0 }
products = { type = "IdealGas", gamma = 1.2, cv = 5.0 }
Q = 50.0
[reaction]
type = "Arrhenius"
k = 60.0
Ta = 20.0
[grid]
nx = 150
x_max = 30.0
[time]
t_end = 2.0
n_frames = 2
[boundary]
x_low = "reflective"
x_high = "transmissive"
[problem]
type = "regions"
background = { rho = 1.0, p = 1.0 }
[[problem.regions]]
shape = "box"
x = [0.0, 2.0]
state = { rho = 1.0, p = 80.0 }
[output]
plots = false
"""

EULER_2D = """
title = "Lax-Liu quadrant problem 3, periodic"
[model]
type = "euler"
eos = { type = "IdealGas", gamma = 1.4 }
[grid]
nx = 40
ny = 36
[time]
t_end = 0.12
n_frames = 2
[boundary]
x_low = "periodic"
x_high = "periodic"
y_low = "periodic"
y_high = "periodic"
[problem]
type = "regions"
background = { rho = 1.5, p = 1.5 }
[[problem.regions]]
shape = "box"
x = [0.0, 0.5]
y = [0.5, 1.0]
state = { rho = 0.5323, u = 1.206, p = 0.3 }
[[problem.regions]]
shape = "box"
x = [0.0, 0.5]
y = [0.0, 0.5]
state = { rho = 0.138, u = 1.206, v = 1.206, p = 0.029 }
[[problem.regions]]
shape = "box"
x = [0.5, 1.0]
y = [0.0, 0.5]
state = { rho = 0.5323, v = 1.206, p = 0.3 }
[output]
plots = false
"""

SHOCK_BUBBLE_2D = """
title = "shock-bubble, five-equation model, 2 x 2 blocks"
[model]
type = "five_equation"
eos1 = { type = "IdealGas", gamma = 1.648 }
eos2 = { type = "IdealGas", gamma = 1.4 }
kapila = true
[grid]
nx = 48
ny = 32
x_max = 1.5
y_max = 1.0
[time]
t_end = 0.15
n_frames = 1
[boundary]
x_low = "inflow"
x_high = "transmissive"
y_low = "reflective"
y_high = "reflective"
inflow = { x_low = { rho1 = 1.3764, rho2 = 1.3764, alpha1 = 1e-6, u = 0.394, p = 1.5698 } }
[problem]
type = "regions"
background = { rho1 = 1.0, rho2 = 1.0, alpha1 = 1e-6, p = 1.0 }
[[problem.regions]]
shape = "circle"
center = [0.6, 0.5]
radius = 0.25
state = { rho1 = 0.1819, rho2 = 1.0, alpha1 = 0.999999, p = 1.0 }
[[problem.regions]]
shape = "box"
x = [0.0, 0.2]
state = { rho1 = 1.3764, rho2 = 1.3764, alpha1 = 1e-6, u = 0.394, p = 1.5698 }
[output]
plots = false
"""


CAVITATION_1D = """
title = "water pulled apart beyond its tension limit: the guard fails inside a step"
[model]
type = "euler"
eos = { type = "StiffenedGas", gamma = 4.4, p_inf = 6e8 }
[grid]
nx = 64
[time]
t_end = 1e-3
n_frames = 0
[problem]
type = "riemann"
x0 = 0.5
left = { rho = 1000.0, u = -1500.0, p = 1e5 }
right = { rho = 1000.0, u = 1500.0, p = 1e5 }
[output]
plots = false
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def closure_1d(extra: str = "", ckpt: int = 0) -> str:
    return CLOSURE_1D % {"extra": extra, "ckpt": ckpt}


def mpirun(tmp_path: Path, n: int, config: Path, output: Path, *args: str,
           rank_timeout: float = RANK_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MPIEXEC_TIMEOUT=str(RUN_TIMEOUT),
               MACRO_MPI_TIMEOUT=str(rank_timeout),
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), str(TESTS.parent),
                                                        env.get("PYTHONPATH")])))
    cmd = [MPIEXEC, "-n", str(n), sys.executable, "-m", "macro", "run", str(config),
           "--output", str(output), "--no-progress", "--no-plots", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT + 30)


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[...]
            elif "time" in obj.attrs:
                out[name + "@time"] = np.array([obj.attrs["time"], obj.attrs["step"]])
        f.visititems(visit)
    return out


def assert_same_output(a: Path, b: Path) -> None:
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    assert any(k.startswith("final/") for k in da) and len(da) > 10
    for k in da:
        assert da[k].shape == db[k].shape, k
        assert np.array_equal(da[k], db[k]), (
            f"{k}: max |diff| {np.max(np.abs(da[k].astype(float) - db[k].astype(float)))}")
    assert (a.with_suffix(".xmf")).is_file() and (b.with_suffix(".xmf")).is_file()


def serial(tmp_path: Path, config: Path, name: str) -> Path:
    out = tmp_path / f"{name}_serial.h5"
    Simulation.from_config(config).run(out, plots=False)
    return out


# ---------------------------------------------------------------------------------------------
# decomposition and proxy helpers (no MPI launch)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nx,ny,n,periodic", [(120, 1, 3, (False, False)),
                                               (48, 32, 4, (True, True)),
                                               (40, 36, 3, (True, False)),
                                               (37, 29, 6, (False, True))])
def test_decomposition_covers_grid_once(nx, ny, n, periodic):
    dec = Decomposition(nx, ny, n, periodic, width=4)
    py, px = dec.dims
    assert py * px == n and (ny > 1 or py == 1)
    count = np.zeros((ny, nx), int)
    for b in dec.blocks:
        count[b.j0:b.j1, b.i0:b.i1] += 1
        jj, ii = b.local_indices(ny, nx, ny > 1)
        # local interior = owned block plus the overlap on every internal side
        assert ii.size == b.i1 - b.i0 + b.xlo + b.xhi
        assert (ii[b.xlo:b.xlo + b.i1 - b.i0] == np.arange(b.i0, b.i1)).all()
        nb = dec.neighbours(b.rank)
        for side, w in (("x_low", b.xlo), ("x_high", b.xhi), ("y_low", b.ylo),
                        ("y_high", b.yhi)):
            assert (nb[side] >= 0) == (w > 0)
    assert (count == 1).all()
    if ny > 1 and n == 4:
        assert dec.dims == (2, 2)


def test_decomposition_rejects_blocks_thinner_than_the_overlap():
    with pytest.raises(ValueError, match="too small for 4 ranks along x"):
        Decomposition(12, 1, 4, (False, False), width=4)


def test_worker_mapping_and_result_merge():
    ids = np.array([7, 0, 5, 9, 2], dtype=np.int64)
    w = worker_of(ids, 10, 3)
    assert w.tolist() == [2, 0, 1, 2, 0]  # contiguous id ranges [0,4), [4,7), [7,10)
    assert (worker_of(np.arange(10), 10, 3) == np.repeat([0, 1, 2], [4, 3, 3])).all()
    from mpi_support import MockResponse

    def resp(vals):
        v = np.asarray(vals, float)
        return MockResponse(v, v + 1, v + 2, v + 3, np.zeros(v.size, np.int64))

    from macro.parallel import wire

    def fields(vals):  # a provider's answer as a worker sends it
        return wire.result_arrays(resp(vals), len(vals))

    merged = merge_results([(fields([10.0, 30.0]), np.array([1, 3])),
                             (fields([0.0, 20.0, 40.0]), np.array([0, 2, 4]))], 5)
    assert merged["reaction_rate"].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert merged["uncertainty"].tolist() == [3.0, 13.0, 23.0, 33.0, 43.0]
    assert merged["status"].dtype == np.int64 and merged["status"].tolist() == [0] * 5
    res = wire.WireResult(merged)
    assert res.hotspot_temperature.tolist() == [2.0, 12.0, 22.0, 32.0, 42.0] and len(res) == 5


def test_proxy_rejects_ids_outside_the_grid():
    proxy = WorkerProxy(comm=None, workers=[1], ncells=10)
    with pytest.raises(ValueError, match=r"cell_ids\[1\] = 10 is outside \[0, 10\)"):
        proxy.query(np.array([3, 10]), np.ones(2), 1e-9)


# ---------------------------------------------------------------------------------------------
# MPI runs against the serial run
# ---------------------------------------------------------------------------------------------


def test_one_rank_distributed_run_in_process_equals_serial(tmp_path):
    """run_distributed on a single rank (also warms the Numba cache for the launches below)."""
    from mpi4py import MPI

    from macro.parallel import run_distributed

    cfg = write(tmp_path, "c1d", closure_1d())
    ref = serial(tmp_path, cfg, "c1d")
    out = tmp_path / "c1d_self.h5"
    res = run_distributed(cfg, output=out, comm=MPI.COMM_SELF, plots=False, timeout=30)
    assert res.steps > 50 and res.fields["lam"].max() > 0.5  # it reacted
    assert_same_output(ref, out)


def test_1d_closure_through_workers_equals_serial(tmp_path):
    cfg = write(tmp_path, "c1d", closure_1d())
    ref = serial(tmp_path, cfg, "c1d")
    with h5py.File(ref) as f:
        lam = f["final/lam"][...]
    assert 0.05 < lam.mean() < 0.95 and lam.max() > 0.99  # a front half-way: a real check
    # 2 solver ranks via one worker, and M = 0 (3 solver ranks via one worker: the restart test)
    for n, m in ((3, 1), (2, 0)):
        out = tmp_path / f"c1d_{n}_{m}.h5"
        ok(mpirun(tmp_path, n, cfg, out, "--closure-workers", str(m)))
        assert_same_output(ref, out)


def test_real_closure_through_workers_equals_serial(tmp_path):
    """The closure itself (a tiny random-weight meso model, online mode) on two worker ranks,
    coupled into the HMX shock-to-detonation demo: bitwise the serial run."""
    from closure_testutil import make_model_dir

    model = make_model_dir(tmp_path / "tiny_closure")
    text = (ROOT / "examples" / "detonation_1d.toml").read_text()
    args = f'provider_args = {{ path = "{model}" }}'
    text = text.replace('mode = "table"', f'mode = "online"\n{args}')
    text = text.replace("nx = 400", "nx = 60").replace("x_max = 0.012", "x_max = 0.0018")
    text = text.replace("t_end = 1.3e-6", "t_end = 1.5e-7").replace("n_frames = 8", "n_frames = 1")
    cfg = write(tmp_path, "real", text)
    ref = serial(tmp_path, cfg, "real")
    with h5py.File(ref) as f:
        assert f["final/lam"][...].max() > 0.01  # ignition can only come from the closure
    out = tmp_path / "real_4_2.h5"
    ok(mpirun(tmp_path, 4, cfg, out, "--closure-workers", "2"))
    assert_same_output(ref, out)


def test_2d_closure_through_worker_equals_serial(tmp_path):
    cfg = write(tmp_path, "c2d", CLOSURE_2D)
    ref = serial(tmp_path, cfg, "c2d")
    for n in (3, 4):  # 2 and 3 solver ranks, one closure worker
        out = tmp_path / f"c2d_{n}.h5"
        ok(mpirun(tmp_path, n, cfg, out, "--closure-workers", "1"))
        assert_same_output(ref, out)


def test_1d_arrhenius_equals_serial_and_restarts_on_other_rank_counts(tmp_path):
    cfg = write(tmp_path, "arr", ARRHENIUS_1D.replace("plots = false",
                                                      "plots = false\ncheckpoint_every = 60"))
    ref = serial(tmp_path, cfg, "arr")
    ckpt = tmp_path / "arr_ckpt.h5"
    for n in (2, 3):
        out = tmp_path / f"arr_{n}.h5"
        ok(mpirun(tmp_path, n, cfg, out, *(("--checkpoint", str(ckpt)) if n == 3 else ())))
        assert_same_output(ref, out)
    # a stateless rate: the 3-rank checkpoint restarts on 2 ranks and serially, bit for bit
    with h5py.File(ckpt) as f:
        assert int(f.attrs["step"]) > 0 and f.attrs["solver_ranks"] == 3
    for name, n in (("re2", 2), ("re1", 1)):
        out = tmp_path / f"arr_{name}.h5"
        shutil.copy(ref, out)
        if n == 1:
            Simulation.from_config(cfg).run(out, restart=ckpt, plots=False)
        else:
            ok(mpirun(tmp_path, n, cfg, out, "--restart", str(ckpt)))
        assert_same_output(ref, out)


def test_2d_euler_and_five_equation_blocks_equal_serial(tmp_path):
    cfg = write(tmp_path, "quad", EULER_2D)
    ref = serial(tmp_path, cfg, "quad")
    for n in (2, 3):  # periodic axis cut in two (both neighbours the same rank) and in three
        out = tmp_path / f"quad_{n}.h5"
        ok(mpirun(tmp_path, n, cfg, out))
        assert_same_output(ref, out)
    cfg = write(tmp_path, "bubble", SHOCK_BUBBLE_2D)
    ref = serial(tmp_path, cfg, "bubble")
    from mpi4py import MPI

    from macro.parallel import run_distributed

    # one in-process step compiles the five-equation CFL pre-pass once for the four ranks
    run_distributed(cfg, comm=MPI.COMM_SELF, max_steps=1, timeout=30)
    out = tmp_path / "bubble_4.h5"
    ok(mpirun(tmp_path, 4, cfg, out))  # 2 x 2 blocks: corner overlap, inflow and walls
    assert_same_output(ref, out)


def test_restart_is_bit_identical_with_closure_state(tmp_path):
    cfg = write(tmp_path, "c1d", closure_1d(ckpt=100))
    ref = serial(tmp_path, cfg, "c1d")  # the serial run writes no checkpoint (no --checkpoint)
    full = tmp_path / "full.h5"
    ckpt = tmp_path / "ckpt.h5"
    ok(mpirun(tmp_path, 4, cfg, full, "--closure-workers", "1", "--checkpoint", str(ckpt)))
    assert_same_output(ref, full)
    with h5py.File(ckpt) as f:
        step = int(f.attrs["step"])
        ids = f["rate_state.provider.ids"][...]  # worker 0's provider state
        gate1 = f["rate_state_rank1.gate.ids"][...]  # solver rank 1's adapter (shock gate)
        assert f.attrs["solver_ranks"] == 3 and f.attrs["closure_workers"] == 1
    assert step == 100 * (datasets(full)["final@time"][1] // 100)  # the last multiple of 100
    assert ids.size > 5 and gate1.size > 0 and gate1.min() >= 40  # rank 1 owns cells 40..79
    restarted = tmp_path / "restarted.h5"
    shutil.copy(full, restarted)
    with h5py.File(restarted, "a") as f:  # drop what the restart must rewrite
        del f["final"]
    ok(mpirun(tmp_path, 4, cfg, restarted, "--closure-workers", "1", "--restart", str(ckpt)))
    assert_same_output(full, restarted)
    # the serial solver refuses a checkpoint whose rate state is split over ranks
    with pytest.raises(ValueError, match="rate state of 3 solver rank"):
        Simulation.from_config(cfg).run(tmp_path / "x.h5", restart=ckpt, plots=False)


def test_one_worker_checkpoint_restarts_serially_and_other_layouts_are_refused(tmp_path):
    cfg = write(tmp_path, "c1d", closure_1d(ckpt=40))
    full, ckpt = tmp_path / "full.h5", tmp_path / "ckpt.h5"
    ok(mpirun(tmp_path, 2, cfg, full, "--closure-workers", "1", "--checkpoint", str(ckpt)))
    # one solver rank + one worker: the serial layout, so the serial solver restarts from it
    out = tmp_path / "serial_restart.h5"
    shutil.copy(full, out)
    res = Simulation.from_config(cfg).run(out, restart=ckpt, plots=False)
    final = {k.split("/")[1]: v for k, v in datasets(full).items() if k.startswith("final/")}
    assert res.fields["lam"].max() > 0.5
    for k, v in final.items():
        assert np.array_equal(res.fields[k], v), k
    # another layout cannot take the per-cell closure state: refused on every rank
    proc = mpirun(tmp_path, 4, cfg, tmp_path / "b.h5", "--closure-workers", "2",
                  "--restart", str(ckpt))
    assert proc.returncode != 0
    for rank in range(4):  # two solver ranks and the two workers
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"[rank {rank}] error:")]
        assert lines, proc.stderr
        assert "holds the rate state of 1 solver rank(s) and 1 closure worker(s)" in lines[0]


def test_worker_error_reaches_every_rank(tmp_path):
    cfg = write(tmp_path, "fail", closure_1d(extra=", fail_on_call = 25"))
    t0 = time.monotonic()
    proc = mpirun(tmp_path, 3, cfg, tmp_path / "fail.h5", "--closure-workers", "1")
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    for rank in range(3):  # two solver ranks and the worker each name the worker's error
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"[rank {rank}] error:")]
        assert lines, proc.stderr
        # the worker counts the queries of both solver ranks: call 25 or the next one fails
        assert re.search(r"mock provider failure on call 2[56]\b", lines[0]), lines[0]
        assert "closure worker rank 2 failed" in lines[0]
    assert elapsed < RANK_TIMEOUT  # answered at once, not by a timeout


def test_hung_worker_times_out_instead_of_hanging(tmp_path):
    cfg = write(tmp_path, "hang", closure_1d(extra=", hang_on_call = 10"))
    t0 = time.monotonic()
    proc = mpirun(tmp_path, 3, cfg, tmp_path / "hang.h5", "--closure-workers", "1",
                  rank_timeout=4)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert "no answer within 4 s while waiting for closure worker rank 2" in proc.stderr, (
        f"rc={proc.returncode} after {elapsed:.1f} s\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    assert elapsed < 60  # the deadline (4 s) ended it, then MPI_Abort took down the job


def test_guard_failure_names_the_global_cell_on_every_rank(tmp_path):
    from macro import NonPhysicalStateError

    cfg = write(tmp_path, "cav", CAVITATION_1D)
    with pytest.raises(NonPhysicalStateError) as info:
        serial(tmp_path, cfg, "cav")
    err = info.value
    assert 22 <= err.cell[0] < 43  # owned by the middle one of three ranks
    expected = str(err).split("; last good")[0]
    serial_good = tmp_path / "cav_serial_last_good.h5"
    proc = mpirun(tmp_path, 3, cfg, tmp_path / "cav.h5")
    assert proc.returncode != 0
    for rank in range(3):
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"[rank {rank}] error:")]
        assert lines and expected in lines[0], (expected, proc.stderr)
    # the state before the failing step, gathered from the ranks, is the serial one
    with h5py.File(serial_good) as a, h5py.File(tmp_path / "cav_last_good.h5") as b:
        assert int(a.attrs["step"]) == int(b.attrs["step"]) == err.step
        assert np.array_equal(a["U"][...], b["U"][...])


# ---------------------------------------------------------------------------------------------
# checkpoints under MPI: every layout restarts bit for bit, well before the end of the run
# ---------------------------------------------------------------------------------------------


def _without_final(full: Path, out: Path) -> Path:
    """A copy of a finished run's output without what a restart must rewrite."""
    shutil.copy(full, out)
    with h5py.File(out, "a") as f:
        for group in ("final", "detonation"):
            if group in f:
                del f[group]
    return out


def _ckpt_step(path: Path) -> int:
    with h5py.File(path) as f:
        return int(f.attrs["step"])


@pytest.mark.slow
def test_two_worker_checkpoint_with_shock_tracker_restarts_bitwise(tmp_path):
    """2 solver ranks + 2 closure workers, shock tracking on: the checkpoint holds both
    workers' provider states, both ranks' adapter states and the tracker's history; the
    restart (same layout) rewrites /final and /detonation bit for bit."""
    # run on until the shock has crossed worker 1's cells (ids 60..119) well before the end
    tracked = closure_1d().replace("t_end = 1.5", "t_end = 4.0") + (
        "[detonation]\nfront_pressure = 10.0\nxt_frames = 50\n")
    ref = serial(tmp_path, write(tmp_path, "probe", tracked), "probe")
    steps = int(datasets(ref)["final@time"][1])
    every = int(0.6 * steps)  # the only checkpoint: 60 % of the way
    cfg = write(tmp_path, "c1d", tracked.replace("checkpoint_every = 0",
                                                 f"checkpoint_every = {every}"))
    full, ckpt = tmp_path / "full.h5", tmp_path / "ckpt.h5"
    ok(mpirun(tmp_path, 4, cfg, full, "--closure-workers", "2", "--checkpoint", str(ckpt)))
    assert_same_output(ref, full)
    with h5py.File(full) as f:
        assert f["detonation/t"].size > 10
    with h5py.File(ckpt) as f:
        assert f.attrs["solver_ranks"] == 2 and f.attrs["closure_workers"] == 2
        assert f["rate_state.provider.ids"].size > 0  # worker 0: cells 0..59
        assert f["closure_state_1.ids"].size > 0 and f["closure_state_1.ids"][...].min() >= 60
        assert f["rate_state_rank1.gate.ids"].size > 0
        assert 0 < f["extra_shock_tracker.t"].size < datasets(full)["detonation/t"].size
    assert _ckpt_step(ckpt) == every
    restarted = _without_final(full, tmp_path / "restarted.h5")
    ok(mpirun(tmp_path, 4, cfg, restarted, "--closure-workers", "2", "--restart", str(ckpt)))
    assert_same_output(full, restarted)


@pytest.mark.slow
def test_2d_checkpoints_restart_bitwise_under_mpi_and_serially(tmp_path):
    """A 2D checkpoint with closure state (3 solver ranks, 1 worker) restarts on its layout;
    a stateless 2D checkpoint of 2 ranks restarts serially."""
    cfg = write(tmp_path, "c2d", CLOSURE_2D.replace("plots = false",
                                                    "plots = false\ncheckpoint_every = 45"))
    full, ckpt = tmp_path / "c2d.h5", tmp_path / "c2d_ckpt.h5"
    ok(mpirun(tmp_path, 4, cfg, full, "--closure-workers", "1", "--checkpoint", str(ckpt)))
    steps = int(datasets(full)["final@time"][1])
    assert 0 < _ckpt_step(ckpt) <= 0.8 * steps
    restarted = _without_final(full, tmp_path / "c2d_re.h5")
    ok(mpirun(tmp_path, 4, cfg, restarted, "--closure-workers", "1", "--restart", str(ckpt)))
    assert_same_output(full, restarted)

    cfg = write(tmp_path, "quad", EULER_2D.replace("plots = false",
                                                   "plots = false\ncheckpoint_every = 12"))
    ref = serial(tmp_path, cfg, "quad")
    full, ckpt = tmp_path / "quad_2.h5", tmp_path / "quad_ckpt.h5"
    ok(mpirun(tmp_path, 2, cfg, full, "--checkpoint", str(ckpt)))
    assert_same_output(ref, full)
    assert 0 < _ckpt_step(ckpt) <= 0.8 * int(datasets(ref)["final@time"][1])
    out = _without_final(ref, tmp_path / "quad_re.h5")
    Simulation.from_config(cfg).run(out, restart=ckpt, plots=False)
    assert_same_output(ref, out)


@pytest.mark.slow
def test_serial_checkpoints_restart_under_mpi(tmp_path):
    """A serial checkpoint restarts on 3 solver ranks (stateless rate) and, with closure
    state, on 1 solver rank + 1 closure worker; both equal the uninterrupted serial run."""
    cfg = write(tmp_path, "arr", ARRHENIUS_1D.replace("plots = false",
                                                      "plots = false\ncheckpoint_every = 40"))
    ref, ckpt = tmp_path / "arr.h5", tmp_path / "arr_ckpt.h5"
    Simulation.from_config(cfg).run(ref, checkpoint=ckpt, plots=False)
    assert 0 < _ckpt_step(ckpt) <= 0.8 * int(datasets(ref)["final@time"][1])
    out = _without_final(ref, tmp_path / "arr_3.h5")
    ok(mpirun(tmp_path, 3, cfg, out, "--restart", str(ckpt)))
    assert_same_output(ref, out)

    cfg = write(tmp_path, "c1d", closure_1d(ckpt=70))
    ref, ckpt = tmp_path / "c1d.h5", tmp_path / "c1d_ckpt.h5"
    Simulation.from_config(cfg).run(ref, checkpoint=ckpt, plots=False)
    assert 0 < _ckpt_step(ckpt) <= 0.8 * int(datasets(ref)["final@time"][1])
    with h5py.File(ckpt) as f:
        assert "solver_ranks" not in f.attrs and f["rate_state.provider.ids"].size > 0
    out = _without_final(ref, tmp_path / "c1d_1_1.h5")
    ok(mpirun(tmp_path, 2, cfg, out, "--closure-workers", "1", "--restart", str(ckpt)))
    assert_same_output(ref, out)
