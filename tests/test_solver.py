"""2D problems, detonation speed, boundaries, restart and the guard."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from macro import NonPhysicalStateError
from macro.eos import IdealGas, StiffenedGas
from macro.io import GridSpec
from macro.models import EulerModel
from macro.simulation import Simulation, load_config
from macro.solver import Solver

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def quadrant_config(n, bc="periodic", t_end=0.1):
    cfg = load_config(EXAMPLES / "quadrant.toml")
    cfg["grid"].update(nx=n, ny=n)
    cfg["time"].update(t_end=t_end, n_frames=0)
    cfg["boundary"] = {s: bc for s in ("x_low", "x_high", "y_low", "y_high")}
    return cfg


def test_quadrant_symmetry_and_conservation():
    sim = Simulation.from_config(quadrant_config(64))
    before = sim.solver.totals()
    res = sim.run()
    after = sim.solver.totals()
    scale = np.abs(before).max()
    assert np.all(np.abs(after - before) < 1e-13 * scale), after - before
    f = res.fields
    # configuration 3 is symmetric about the diagonal x = y (with u <-> v)
    assert np.max(np.abs(f["rho"] - f["rho"].T)) < 1e-12
    assert np.max(np.abs(f["p"] - f["p"].T)) < 1e-12
    assert np.max(np.abs(f["u"] - f["v"].T)) < 1e-12
    assert res.steps > 20 and np.all(f["rho"] > 0)


def test_quadrant_transmissive_runs_positive():
    res = Simulation.from_config(quadrant_config(48, "transmissive", 0.3)).run()
    assert np.all(res.fields["rho"] > 0) and np.all(res.fields["p"] > 0)
    assert res.fields["rho"].max() < 2.0


def test_shock_bubble_runs():
    cfg = load_config(EXAMPLES / "shock_bubble.toml")
    cfg["grid"].update(nx=96, ny=48)
    cfg["time"]["n_frames"] = 0
    res = Simulation.from_config(cfg).run()
    f = res.fields
    assert res.t == pytest.approx(cfg["time"]["t_end"])
    for k in ("rho", "p", "u", "v", "alpha1"):
        assert np.all(np.isfinite(f[k]))
    assert np.all((f["alpha1"] > 0) & (f["alpha1"] < 1))
    # the shock has passed the bubble: the helium is compressed and set in motion
    helium = f["alpha1"] > 0.5
    assert helium.any() and np.mean(f["u"][helium]) > 0.05
    # up-down mirror symmetry of the symmetric setup
    assert np.max(np.abs(f["rho"] - f["rho"][::-1])) < 1e-10


def detonation_config(nx=1200, length=240.0):
    return {
        "model": {"type": "euler", "eos": {"type": "IdealGas", "gamma": 1.2, "cv": 5.0},
                  "products": {"type": "IdealGas", "gamma": 1.2, "cv": 5.0}, "Q": 50.0},
        "reaction": {"type": "Arrhenius", "k": 60.0, "Ta": 20.0},
        "grid": {"nx": nx, "x_max": length},
        "time": {"t_end": 1.0, "n_frames": 0},
        "boundary": {"x_low": "reflective", "x_high": "transmissive"},
        "problem": {"type": "regions", "background": {"rho": 1.0, "p": 1.0},
                    "regions": [{"shape": "box", "x": [0.0, 2.0],
                                 "state": {"rho": 1.0, "p": 80.0}}]},
    }


def test_ideal_gas_detonation_cj_speed():
    """gamma 1.2, Q 50, rho0 = p0 = 1: D_CJ = sqrt(c0^2 + K) + sqrt(K), K = (g^2-1) Q / 2."""
    g, Q = 1.2, 50.0
    K = (g * g - 1.0) * Q / 2.0
    d_cj = np.sqrt(g + K) + np.sqrt(K)
    assert d_cj == pytest.approx(6.8095, abs=1e-4)
    cfg = detonation_config()
    sim = Simulation.from_config(cfg)
    s = sim.solver
    x = (np.arange(cfg["grid"]["nx"]) + 0.5) * s.grid.dx
    times, fronts = [], []
    for t in np.arange(16.0, 33.0, 2.0):
        s.advance(t)
        p = s.fields()["p"]
        fronts.append(x[np.nonzero(p > 2.0)[0].max()])
        times.append(t)
    speed = np.polyfit(times, fronts, 1)[0]
    assert speed == pytest.approx(d_cj, rel=0.01)
    lam = s.fields()["lam"]
    assert lam[x < fronts[-1] - 20].min() > 0.99  # burnt behind the front
    assert lam[x > fronts[-1] + 1].max() < 1e-3  # fresh ahead of it


def test_piston_driven_shock_matches_shock_relations():
    """A piston at u_p drives a shock with the Rankine-Hugoniot state of an ideal gas."""
    g, up = 1.4, 0.5
    model = EulerModel(IdealGas(g))
    n = 400
    grid = GridSpec(nx=n, ny=1, dx=1.0 / n, dy=1.0)
    U = model.conserved({"rho": np.ones((1, n)), "p": np.ones((1, n))})
    s = Solver(model, grid, U, bc={"x_low": "piston"}, piston_velocity={"x_low": up})
    s.advance(0.5)
    f = s.fields()
    c0 = np.sqrt(g)
    # shock Mach number from the piston speed: up/c0 = 2/(g+1) (M - 1/M)
    a = (g + 1) / 4 * up / c0
    M = a + np.sqrt(a * a + 1)
    rho2 = (g + 1) * M**2 / ((g - 1) * M**2 + 2)
    p2 = 1 + 2 * g / (g + 1) * (M**2 - 1)
    x = (np.arange(n) + 0.5) / n
    # the shock sits at x = Us t - well, relative to the wall's frame the gas starts at x = 0
    behind = (x > 0.1) & (x < M * c0 * 0.5 * 0.8)
    assert np.median(f["u"][behind]) == pytest.approx(up, rel=2e-3)
    assert np.median(f["p"][behind]) == pytest.approx(p2, rel=3e-3)
    assert np.median(f["rho"][behind]) == pytest.approx(rho2, rel=1e-2)
    front = x[np.nonzero(f["p"] > 0.5 * (1 + p2))[0].max()]
    assert front == pytest.approx(M * c0 * 0.5, abs=3.0 / n)


def test_inflow_boundary_holds_its_state():
    model = EulerModel(IdealGas(1.4))
    n = 100
    grid = GridSpec(nx=n, ny=1, dx=1.0 / n, dy=1.0)
    U = model.conserved({"rho": np.ones((1, n)), "p": np.ones((1, n))})
    s = Solver(model, grid, U, bc={"x_low": "inflow"},
               inflow={"x_low": {"rho": 2.0, "u": 3.0, "p": 5.0}})
    s.advance(3.0)  # supersonic inflow: shock and contact leave, the inflow state fills in
    f = s.fields()
    assert np.allclose(f["rho"], 2.0) and np.allclose(f["u"], 3.0) and np.allclose(f["p"], 5.0)
    s.set_inflow("x_low", {"rho": 1.5, "u": 4.0, "p": 4.0})  # faster: every wave leaves
    s.advance(8.0)
    f = s.fields()
    assert np.allclose(f["rho"], 1.5) and np.allclose(f["u"], 4.0) and np.allclose(f["p"], 4.0)
    with pytest.raises(ValueError, match="x_up"):
        s.set_inflow("x_up", {"rho": 1.0, "p": 1.0})
    with pytest.raises(ValueError, match="not 'inflow'"):
        s.set_inflow("x_high", {"rho": 1.0, "p": 1.0})
    with pytest.raises(ValueError, match="field .p."):
        s.set_inflow("x_low", {"rho": 1.0, "p": float("nan")})


def test_restart_is_bit_identical(tmp_path):
    cfg = detonation_config(nx=200, length=40.0)
    cfg["time"].update(t_end=4.0, n_frames=4)
    cfg["output"] = {"checkpoint_every": 100, "plots": False}
    full = Simulation.from_config(cfg).run(tmp_path / "full.h5")
    ckpt = tmp_path / "full_checkpoint.h5"
    assert ckpt.exists()
    with h5py.File(ckpt) as fh:
        assert 0 < fh.attrs["step"] < full.steps
    resumed = Simulation.from_config(cfg).run(tmp_path / "resumed.h5", restart=ckpt)
    assert resumed.steps == full.steps and resumed.t == full.t
    for k in full.fields:
        assert np.array_equal(full.fields[k], resumed.fields[k]), k


def test_guard_reports_variable_cell_step_time(tmp_path):
    model = EulerModel(IdealGas(1.4))
    n = 50
    grid = GridSpec(nx=n, ny=1, dx=1.0 / n, dy=1.0)
    U = model.conserved({"rho": np.ones((1, n)), "p": np.ones((1, n))})
    dump = tmp_path / "last_good.h5"
    s = Solver(model, grid, U, last_good_path=dump)
    s.advance(0.01)
    s.interior[0, 0, 17] = -1.0  # deliberately broken density
    with pytest.raises(NonPhysicalStateError) as info:
        s.advance(0.02)
    err = info.value
    assert err.variable == "density" and err.cell == (17,)
    assert err.step == s.step and err.time == pytest.approx(0.01)
    assert "density" in str(err) and "(17,)" in str(err) and dump.exists()
    # NaN energy in 2D names the pressure and (i, j)
    grid2 = GridSpec(nx=8, ny=8, dx=0.125, dy=0.125)
    U2 = model.conserved({"rho": np.ones((8, 8)), "p": np.ones((8, 8))})
    s2 = Solver(model, grid2, U2, last_good_path=tmp_path / "lg2.h5")
    s2.interior[3, 5, 2] = np.nan
    with pytest.raises(NonPhysicalStateError) as info:
        s2.advance(0.1)
    assert info.value.variable == "pressure" and info.value.cell == (2, 5)


def test_guard_during_a_step_keeps_last_good_state(tmp_path):
    """Water pulled apart beyond its tension limit (p + p_inf < 0) fails inside a step."""
    model = EulerModel(StiffenedGas(4.4, 6e8))
    n = 64
    grid = GridSpec(nx=n, ny=1, dx=1.0 / n, dy=1.0)
    u = np.where(np.arange(n) < n // 2, -1500.0, 1500.0)[None, :]
    U = model.conserved({"rho": np.full((1, n), 1000.0), "u": u, "p": np.full((1, n), 1e5)})
    dump = tmp_path / "lg.h5"
    s = Solver(model, grid, U, last_good_path=dump)
    with pytest.raises(NonPhysicalStateError) as info:
        s.advance(1e-3)
    err = info.value
    assert err.variable in ("sound speed", "density")
    assert abs(err.cell[0] - n // 2) <= 3
    with h5py.File(dump) as fh:
        assert int(fh.attrs["step"]) == err.step
        good = fh["U"][...]
    assert np.array_equal(good, err.last_good_state)
    # the dumped state is valid: a fresh solver accepts it
    s2 = Solver(model, grid, good[:, :, 2:-2])
    s2.check_state()


def test_cli_writes_hdf5_xdmf_png(tmp_path):
    out = tmp_path / "sod.h5"
    proc = subprocess.run([sys.executable, "-m", "macro", "run", str(EXAMPLES / "sod.toml"),
                           "--output", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as fh:
        rho = fh["final/rho"][...]
        assert rho.shape == (400,) and "config" in fh.attrs
    assert out.with_suffix(".xmf").exists() and out.with_suffix(".png").exists()
    bad = subprocess.run([sys.executable, "-m", "macro", "run", str(tmp_path / "nope.toml")],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "nope.toml" in bad.stderr
