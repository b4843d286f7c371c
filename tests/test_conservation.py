"""Discrete properties of the scheme that a refactoring must not disturb: conservation in a
closed domain, Abgrall's uniform-flow condition at a material interface, second-order accuracy
on a smooth solution."""

from __future__ import annotations

import numpy as np
import pytest

from macro.eos import IdealGas, StiffenedGas
from macro.grid import GridSpec
from macro.models import EulerModel, FiveEquationModel
from macro.solver import Solver

HELIUM, AIR = IdealGas(1.648), IdealGas(1.4)


def _bubble(n: int, m: int, center: tuple[float, float], u0: float) -> dict[str, np.ndarray]:
    """Helium bubble in air with a pressure bump inside it, on [0, 1] x [0, m/n]."""
    x = (np.arange(n) + 0.5) / n
    y = (np.arange(m) + 0.5) / n
    X, Y = np.meshgrid(x, y)
    r2 = (X - center[0]) ** 2 + (Y - center[1]) ** 2
    inside = np.exp(-r2 / 0.02)  # smooth: every cell mixed a little
    a1 = np.clip(inside, 1e-6, 1.0 - 1e-6)
    return {"rho1": 0.18 + 0.0 * X, "rho2": 1.0 + 0.0 * X, "alpha1": a1,
            "u": u0 + 0.0 * X, "v": 0.0 * X, "p": 1.0 + 2.0 * inside}


def _run_five_eq(prim, n, m, bc, t_end=0.15, kapila=True):
    model = FiveEquationModel(HELIUM, AIR, kapila=kapila)
    grid = GridSpec(nx=n, ny=m, dx=1.0 / n, dy=1.0 / n)
    s = Solver(model, grid, model.conserved(prim), bc=bc, order=2)
    before = s.totals()
    s.advance(t_end)
    return model, s, before, s.totals()


def test_five_equation_closed_box_conserves_mass_momentum_energy():
    """Reflective walls all round: each phase's mass and the total energy to round-off; a
    configuration symmetric about the box centre keeps zero total momentum (the wall forces
    cancel pairwise). An x-periodic channel with reflective y walls and a moving, off-centre
    bubble: both masses, x-momentum and energy to round-off."""
    walls = dict.fromkeys(("x_low", "x_high", "y_low", "y_high"), "reflective")
    model, s, before, after = _run_five_eq(_bubble(32, 32, (0.5, 0.5), 0.0), 32, 32, walls)
    names = model.var_names
    assert s.step > 20
    for k in ("alpha1_rho1", "alpha2_rho2", "E"):
        i = names.index(k)
        assert abs(after[i] - before[i]) <= 1e-13 * abs(before[i]), (k, after[i] - before[i])
    scale = np.sqrt(before[names.index("E")] * before[names.index("alpha2_rho2")])
    f = s.fields()
    assert np.abs(f["u"]).max() > 0.05  # the bump has set the gas moving
    for k in ("rho_u", "rho_v"):
        assert abs(after[names.index(k)]) <= 1e-13 * scale, (k, after[names.index(k)])

    channel = dict(walls, x_low="periodic", x_high="periodic")
    _, s, before, after = _run_five_eq(_bubble(40, 24, (0.3, 0.25), 0.4), 40, 24, channel)
    for k in ("alpha1_rho1", "alpha2_rho2", "rho_u", "E"):
        i = names.index(k)
        assert abs(after[i] - before[i]) <= 1e-13 * abs(before[i]), (k, after[i] - before[i])


@pytest.mark.parametrize("kapila", [False, True])
def test_moving_interface_keeps_pressure_and_velocity_uniform(kapila):
    """Abgrall's condition: a material interface (air | water at 1 kbar, very different EOS)
    moving with uniform u and p leaves u and p uniform to round-off, in 1D and across a 2D
    slant."""
    water = StiffenedGas(4.4, 6e8)
    model = FiveEquationModel(AIR, water, kapila=kapila)
    u0, v0, p0 = 50.0, 20.0, 1e8
    for n, m in ((100, 1), (40, 30)):
        x = (np.arange(n) + 0.5) / n
        y = (np.arange(m) + 0.5) / n if m > 1 else np.zeros(1)
        X, Y = np.meshgrid(x, y)
        band = (np.abs(X + 0.5 * Y - 0.5) < 0.2) if m > 1 else (np.abs(X - 0.5) < 0.2)
        a1 = np.where(band, 1.0 - 1e-6, 1e-6)
        prim = {"rho1": np.full_like(X, 50.0), "rho2": np.full_like(X, 1000.0), "alpha1": a1,
                "u": np.full_like(X, u0), "v": np.full_like(X, v0 if m > 1 else 0.0),
                "p": np.full_like(X, p0)}
        grid = GridSpec(nx=n, ny=m, dx=1.0 / n, dy=1.0 / n if m > 1 else 1.0)
        periodic = dict.fromkeys(("x_low", "x_high") + (("y_low", "y_high") if m > 1 else ()),
                                 "periodic")
        s = Solver(model, grid, model.conserved(prim), bc=periodic)
        s.advance(0.1 / u0)  # the interfaces cross 10 % of the domain
        f = s.fields()
        assert s.step > 20 and 0.01 < f["alpha1"].mean() < 0.99
        assert np.abs(f["p"] / p0 - 1.0).max() < 1e-12, np.abs(f["p"] / p0 - 1.0).max()
        assert np.abs(f["u"] / u0 - 1.0).max() < 1e-12
        if m > 1:
            assert np.abs(f["v"] / v0 - 1.0).max() < 1e-12


def _density_wave_error(n: int, ny: int = 1) -> float:
    """L1 error of a smooth density wave advected once across a periodic domain (Euler, ideal
    gas, uniform u and p: the exact solution is the initial one shifted)."""
    model = EulerModel(AIR)
    L, u0, v0 = 1.0, 1.0, 0.5

    def rho_at(X, Y):
        return 1.0 + 0.2 * np.sin(2 * np.pi * (X + (Y if ny > 1 else 0.0)) / L)

    x = (np.arange(n) + 0.5) * L / n
    y = (np.arange(ny) + 0.5) * L / ny if ny > 1 else np.zeros(1)
    X, Y = np.meshgrid(x, y)
    v = v0 if ny > 1 else 0.0
    prim = {"rho": rho_at(X, Y), "u": np.full_like(X, u0), "v": np.full_like(X, v),
            "p": np.ones_like(X)}
    grid = GridSpec(nx=n, ny=ny, dx=L / n, dy=L / ny if ny > 1 else 1.0)
    sides = ("x_low", "x_high", "y_low", "y_high") if ny > 1 else ("x_low", "x_high")
    s = Solver(model, grid, model.conserved(prim), bc=dict.fromkeys(sides, "periodic"),
               cfl=0.5)
    t = 0.5
    s.advance(t)
    # cell averages of the exact solution (the sine's average over a cell, exactly)
    h = L / n
    k = 2 * np.pi / L
    shift = u0 * t + (v * t if ny > 1 else 0.0)
    phase = k * (X + (Y if ny > 1 else 0.0) - shift)
    avg = np.sinc(k * h / (2 * np.pi))
    if ny > 1:
        avg = avg * np.sinc(k * (L / ny) / (2 * np.pi))
    exact = 1.0 + 0.2 * np.sin(phase) * avg
    rho = s.fields()["rho"]
    return float(np.mean(np.abs(rho.reshape(exact.shape) - exact)))


def test_smooth_density_wave_is_second_order():
    """Halving the cell size divides the L1 error by about 4 (MC-limited MUSCL + SSP-RK2;
    the limiter clips at the extrema, so the observed order sits a little below 2: 1.94 in
    1D at 64 -> 128 cells, 1.78 in 2D at 32^2 -> 64^2; a first-order scheme gives ~1)."""
    e1, e2 = _density_wave_error(64), _density_wave_error(128)
    assert 1.85 < np.log2(e1 / e2) < 2.3, (e1, e2)
    e1, e2 = _density_wave_error(32, 32), _density_wave_error(64, 64)
    assert 1.7 < np.log2(e1 / e2) < 2.3, (e1, e2)
