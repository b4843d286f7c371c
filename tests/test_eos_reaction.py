"""Equations of state and reaction rates against known answers."""

import numpy as np
import pytest

from macro.eos import JWL, IdealGas, MieGruneisen, StiffenedGas, eos_from_dict
from macro.io import GridSpec
from macro.models import EulerModel, FiveEquationModel
from macro.reaction import Arrhenius, LeeTarver, builtin_rate
from macro.solver import Solver

MADER = dict(rho0=1900.0, c0=2423.0, s=1.883, gamma0=0.65, cv=1670.0)
EOS_SAMPLES = [
    (IdealGas(1.4), 1.2, 2e5),
    (StiffenedGas(4.4, 6e8), 1100.0, 3e8),
    (MieGruneisen(**MADER), 2500.0, 1.5e10),
    (MieGruneisen(**MADER), 1800.0, -1e9),  # tension
    (JWL(1891.0, 858.08e9, 7.5465e9, 4.306, 0.8, 0.3), 2400.0, 3e10),
    (JWL(1891.0, 858.08e9, 7.5465e9, 4.306, 0.8, 0.3), 300.0, 1e8),
]


@pytest.mark.parametrize("eos,rho,p", EOS_SAMPLES)
def test_sound_speed_is_isentropic_derivative(eos, rho, p):
    """c^2 = dp/drho along de = p/rho^2 drho, by central differences on the EOS itself."""
    e = eos.energy(rho, p)
    assert eos.pressure(rho, e) == pytest.approx(p, rel=1e-12, abs=1e-3)
    h = 1e-5 * rho
    dp = eos.pressure(rho + h, e + p / rho**2 * h) - eos.pressure(rho - h, e - p / rho**2 * h)
    assert eos.sound_speed(rho, p) ** 2 == pytest.approx(dp / (2 * h), rel=1e-6)


def test_ideal_and_stiffened_closed_forms():
    g = IdealGas(1.4, cv=717.5)
    assert g.sound_speed(1.2, 1e5) == pytest.approx(np.sqrt(1.4e5 / 1.2))
    assert g.temperature(1.2, g.energy(1.2, 1e5)) == pytest.approx(1e5 / (1.2 * 287.0))
    w = StiffenedGas(4.4, 6e8)
    assert w.sound_speed(1000.0, 1e9) == pytest.approx(np.sqrt(4.4 * 1.6e9 / 1000.0))
    assert w.energy(1000.0, 1e9) == pytest.approx((1e9 + 4.4 * 6e8) / (3.4 * 1000.0))


@pytest.mark.parametrize("up,T_expected", [(1000.0, 451.0), (1500.0, 655.0), (2000.0, 977.0)])
def test_mie_gruneisen_hugoniot_temperature(up, T_expected):
    """Mader's HMX Us-up fit, Gamma0 0.65, cv 1670: T_H = 451/655/977 K at u_p 1.0/1.5/2.0 km/s."""
    mg = MieGruneisen(**MADER)
    us = MADER["c0"] + MADER["s"] * up
    eta = up / us
    rho = MADER["rho0"] / (1 - eta)
    p = MADER["rho0"] * us * up
    e = p * eta / (2 * MADER["rho0"])
    assert mg.pressure(rho, e) == pytest.approx(p, rel=1e-12)
    assert mg.temperature(rho, e) == pytest.approx(T_expected, abs=1.5)
    assert mg.temperature(MADER["rho0"], 0.0) == pytest.approx(300.0)


def test_mie_gruneisen_piston_shock_on_hugoniot():
    """A piston at u_p drives a shock in MG HMX with Us = c0 + s u_p and p = rho0 Us u_p."""
    mg = MieGruneisen(**MADER)
    model = EulerModel(mg)
    n, L, up = 400, 4e-3, 1000.0
    grid = GridSpec(nx=n, ny=1, dx=L / n, dy=1.0)
    U = model.conserved({"rho": np.full((1, n), MADER["rho0"]), "p": np.full((1, n), 1e5)})
    s = Solver(model, grid, U, bc={"x_low": "piston"}, piston_velocity={"x_low": up})
    t = 0.5e-6
    s.advance(t)
    f = s.fields()
    us = MADER["c0"] + MADER["s"] * up
    x = (np.arange(n) + 0.5) * grid.dx
    behind = (x > 0.3 * us * t) & (x < 0.8 * us * t)
    assert np.median(f["p"][behind]) == pytest.approx(MADER["rho0"] * us * up, rel=0.02)
    assert np.median(f["u"][behind]) == pytest.approx(up, rel=0.01)
    assert np.median(f["T"][behind]) == pytest.approx(451.0, rel=0.03)
    front = x[np.nonzero(f["p"] > 0.5 * MADER["rho0"] * us * up)[0].max()]
    assert front == pytest.approx(us * t, rel=0.02)


def test_eos_rejects_bad_parameters():
    with pytest.raises(ValueError, match="gamma"):
        IdealGas(1.0)
    with pytest.raises(ValueError, match="p_inf"):
        StiffenedGas(4.4, -1.0)
    with pytest.raises(ValueError, match="eta"):
        MieGruneisen(**MADER, eta_max=0.6)
    with pytest.raises(ValueError, match="type"):
        eos_from_dict({"type": "Tillotson"})


def test_arrhenius_constant_volume_explosion_conserves_energy():
    """A hot cell at rest burns completely at constant volume; p rises by (gamma-1) rho Q."""
    g, Q = 1.2, 50.0
    eos = IdealGas(g, cv=1 / (g - 1))
    model = EulerModel(eos, eos, Q)
    grid = GridSpec(nx=8, ny=1, dx=1.0, dy=1.0)
    U = model.conserved({"rho": np.ones((1, 8)), "p": np.full((1, 8), 10.0)})
    s = Solver(model, grid, U, bc={"x_low": "reflective", "x_high": "reflective"},
               rate=Arrhenius(k=100.0, Ta=20.0))
    E0 = s.totals()
    s.advance(5.0)
    f = s.fields()
    assert np.allclose(f["lam"], 1.0, atol=1e-9)
    assert np.allclose(f["p"], 10.0 + (g - 1) * Q, rtol=1e-9)
    assert np.allclose(s.totals()[:4], E0[:4], rtol=1e-13)  # mass, momentum, energy


def test_arrhenius_rate_formula_and_ignition_cutoff():
    kind, rp = Arrhenius(k=5.58e12, Ta=17922.0, T_ignition=400.0).pack()
    r = builtin_rate(kind, rp, 1e9, 1900.0, 1500.0, 0.25)
    assert r == pytest.approx(5.58e12 * 0.75 * np.exp(-17922.0 / 1500.0), rel=1e-12)
    assert builtin_rate(kind, rp, 1e9, 1900.0, 350.0, 0.0) == 0.0


def test_lee_tarver_rate_by_hand():
    lt = LeeTarver()
    kind, rp = lt.pack()
    rho = lt.rho0 * 1.3
    p = 20e9  # 0.2 Mbar
    # ignition only (F = 0): I (1-F)^b (rho/rho0 - 1 - a)^x, per microsecond
    expect = lt.I * 0.3**lt.x * 1e6
    assert builtin_rate(kind, rp, p, rho, 500.0, 0.0) == pytest.approx(expect, rel=1e-12)
    F = 0.5  # growth 1 only
    expect = lt.G1 * (1 - F) ** lt.c * F**lt.d * 0.2**lt.y * 1e6
    assert builtin_rate(kind, rp, p, rho, 500.0, F) == pytest.approx(expect, rel=1e-12)
    F = 0.9  # growth 2 only
    expect = lt.G2 * (1 - F) ** lt.e * F**lt.g * 0.2**lt.z * 1e6
    assert builtin_rate(kind, rp, p, rho, 500.0, F) == pytest.approx(expect, rel=1e-12)


def test_lee_tarver_burns_compressed_explosive_to_completion():
    """Unreacted MG explosive, compressed 30% at rest, ignites and burns into JWL products."""
    mg = MieGruneisen(rho0=1849.0, c0=2423.0, s=1.883, gamma0=1.1, cv=1500.0)
    products = JWL(1849.0, 858.08e9, 7.5465e9, 4.306, 0.8, 0.3)
    model = EulerModel(mg, products, Q=11.0e9 / 1849.0)
    grid = GridSpec(nx=4, ny=1, dx=1e-3, dy=1.0)
    rho = np.full((1, 4), 1849.0 * 1.3)
    U = model.conserved({"rho": rho, "p": np.full((1, 4), 2e10)})
    s = Solver(model, grid, U, bc={"x_low": "reflective", "x_high": "reflective"},
               rate=LeeTarver())
    s.advance(2e-6)
    f = s.fields()
    assert np.all(f["lam"] == 1.0)
    assert np.all(f["p"] > 2e10)


class ConstantRate:
    def __init__(self, r):
        self.r, self.calls = r, []

    def rate(self, *, cell_ids, pressure, density, temperature, lam, dt):
        self.calls.append((cell_ids.copy(), dt))
        assert pressure.shape == density.shape == temperature.shape == lam.shape == cell_ids.shape
        return np.full(cell_ids.shape, self.r)


def test_python_rate_object_plugs_in():
    eos = IdealGas(1.4)
    model = EulerModel(eos, eos, Q=1e5)
    grid = GridSpec(nx=6, ny=4, dx=1.0, dy=1.0)
    U = model.conserved({"rho": np.ones((4, 6)), "p": np.full((4, 6), 1e5)})
    rate = ConstantRate(0.1)
    s = Solver(model, grid, U, rate=rate)
    s.advance(2.0)
    f = s.fields()
    assert np.allclose(f["lam"], 0.2, rtol=1e-12)
    ids, _ = rate.calls[0]
    assert np.array_equal(ids, np.arange(24))
    assert sum(dt for _, dt in rate.calls) == pytest.approx(2.0)


def test_python_rate_object_bad_output_raises():
    eos = IdealGas(1.4)
    model = EulerModel(eos, eos, Q=1e5)
    grid = GridSpec(nx=6, ny=1, dx=1.0, dy=1.0)
    U = model.conserved({"rho": np.ones((1, 6)), "p": np.full((1, 6), 1e5)})
    s = Solver(model, grid, U, rate=ConstantRate(np.nan))
    with pytest.raises(ValueError, match=r"rate\[0\]"):
        s.advance(1.0)
    with pytest.raises(ValueError, match="reactive"):
        Solver(EulerModel(eos), grid, U, rate=ConstantRate(1.0))


def test_five_equation_reactive_material_one_releases_heat():
    """Henson HMX chemistry in material 1: a 1500 K cell ignites within ns, a 620 K one doesn't."""
    hmx = MieGruneisen(rho0=1900.0, c0=2423.0, s=1.883, gamma0=1.1, cv=1500.0)
    air = IdealGas(1.4)
    model = FiveEquationModel(hmx, air, Q=5.5e6, kapila=True)
    n = 16
    grid = GridSpec(nx=n, ny=1, dx=1e-6, dy=1.0)
    # at rho0 the MG temperature is T0 + p/(Gamma0 rho0 cv): 1e9 Pa -> 619 K, 3.762e9 Pa -> 1500 K
    p = np.where(np.arange(n) < n // 2, 1e9, 3.762e9)[None, :]
    prim = {"rho1": np.full((1, n), 1900.0), "rho2": np.full((1, n), 1.2),
            "alpha1": np.full((1, n), 1 - 1e-6), "p": p}
    s = Solver(model, grid, model.conserved(prim),
               bc={"x_low": "reflective", "x_high": "reflective"},
               rate=Arrhenius(k=5.58e12, Ta=17922.0))
    T = s.fields()["T"]
    assert T[0] == pytest.approx(619.0, abs=2) and T[-1] == pytest.approx(1500.0, abs=2)
    m0 = s.totals()
    s.advance(2e-9)
    f = s.fields()
    assert f["lam"][-1] > 0.99  # hot side burnt
    assert f["T"][-1] > 4000.0  # ~Q/cv of heating
    assert f["lam"][0] < 1e-3  # cold side has not reacted (its front may be shocked)
    tot = s.totals()
    assert np.allclose(tot[[0, 1, 4]], m0[[0, 1, 4]], rtol=1e-12)  # masses, energy
