"""Physics terms of the pore-collapse solver against known answers.

beta-HMX Hayes EOS and its Hugoniot, JWL products mixing, heat conduction (Gaussian diffusion,
second-order convergence), viscosity (Stokes' first problem), Arrhenius chemistry (adiabatic
induction time against a high-accuracy ODE and Frank-Kamenetskii), conservation with every
term on in a periodic box, and determinism of a full sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq
from scipy.special import erf

from closure.data.params import HMX, PRODUCTS, REACTION, hmx_eos, hugoniot_state, products_eos
from macro.eos import IdealGas, ReactiveEOS
from macro.io import GridSpec
from macro.models import FiveEquationModel
from macro.reaction import Arrhenius
from macro.solver import Solver
from macro.transport import Transport

FLOOR = 1e-6
GAS = IdealGas(1.4, cv=717.5)
HAYES = hmx_eos(HMX)
RHO0, K0, N, G0, CV, T0 = (HMX[k] for k in ("rho0", "K0", "N", "gamma0", "cv", "T0"))


# --------------------------------------------------------------------------------------------
# EOS
# --------------------------------------------------------------------------------------------


def _hayes_hugoniot_independent(u_p: float) -> tuple[float, float, float]:
    """(Us, p, T) of the Hayes Hugoniot from (rho0, 0 Pa, T0), written out from the Hayes form
    (p = p_T + Gamma0 rho0 cv (T - T0), e = e_T + cv (T - T0)) without macro.eos."""
    V0 = 1.0 / RHO0

    def state(V):
        x = V0 / V
        pT = K0 / N * (x**N - 1)
        eT = T0 * G0 * CV * (1 / x - 1) - K0 * V0 / N * ((x ** (N - 1) - 1) / (1 - N) - (1 / x - 1))
        a = G0 / V0 * CV
        dT = (pT / 2 * (V0 - V) - eT) / (CV - a * (V0 - V) / 2)
        return pT + a * dT, T0 + dT

    V = brentq(lambda V: state(V)[0] * (V0 - V) - u_p**2, 0.4 * V0, V0 * (1 - 1e-12),
               xtol=1e-16)
    p, T = state(V)
    return V0 * np.sqrt(p / (V0 - V)), p, T


@pytest.mark.parametrize("u_p", [300.0, 1000.0, 1600.0])
def test_hayes_hugoniot_matches_independent_form(u_p):
    """macro.eos.Hayes + EOS.hugoniot reproduce the Hayes Hugoniot written out by hand."""
    us, p, T = _hayes_hugoniot_independent(u_p)
    hs = hugoniot_state(HMX, u_p, 0.0)
    assert hs["Us"] == pytest.approx(us, rel=1e-9)
    assert hs["p"] == pytest.approx(p, rel=1e-9)
    assert hs["T"] == pytest.approx(T, rel=1e-9)


@pytest.mark.parametrize("u_p", [0.0, 300.0, 1000.0, 2000.0])
def test_numba_free_hugoniot_matches_macro_eos(u_p):
    """closure.data.params' closed-form Hugoniot (table queries import no Numba) is the one of
    macro.eos.Hayes (Rankine-Hugoniot on the xi/Pi form) from 1 bar."""
    a = hugoniot_state(HMX, u_p, 1e5)
    b = HAYES.hugoniot(u_p, RHO0, 1e5)
    for k in ("Us", "rho", "p", "e", "T"):
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-6)


def test_previous_us_up_hugoniot_matches_macro():
    """The previous EOS (params.PREVIOUS_HMX, still used for the shipped closure's patches):
    the Numba-free Hugoniot temperature equals macro.eos.MieGruneisen's."""
    from closure.data.params import PREVIOUS_HMX

    mg = hmx_eos(PREVIOUS_HMX)
    for up in (700.0, 1500.0):
        a = hugoniot_state(PREVIOUS_HMX, up, 1e5)
        assert a["T"] == pytest.approx(mg.hugoniot_temperature(1 - RHO0 / a["rho"])[0], rel=1e-6)
    assert hugoniot_state(PREVIOUS_HMX, 1500.0, 1e5)["T"] == pytest.approx(745.0, abs=1.0)


def test_hayes_loading_range_numbers():
    """The numbers docs/data.md and params quote: 2.0 / 9.8 / 18.0 GPa and 334 / 492 / 727 K at
    u_p 0.3 / 1.0 / 1.5 km/s; 20 GPa reached at ~1.6 km/s; bulk T below 875 K at the top of the
    default loading range."""
    for up, p, T in ((300.0, 2.0e9, 334.0), (1000.0, 9.84e9, 492.0), (1500.0, 17.99e9, 727.0)):
        hs = hugoniot_state(HMX, up, 1e5)
        assert hs["p"] == pytest.approx(p, rel=5e-3)
        assert hs["T"] == pytest.approx(T, abs=1.0)
    assert hugoniot_state(HMX, 1600.0, 1e5)["p"] == pytest.approx(19.9e9, rel=0.01)


@pytest.mark.parametrize("rho,p", [(1905.0, 1e5), (2500.0, 2e10), (1800.0, -5e8),
                                   (1200.0, 1e6)])
def test_hayes_sound_speed_and_temperature(rho, p):
    """c^2 is the isentropic derivative (away from the C1 seam at rho0); T = T0 + (e - e_T)/cv
    is consistent with p."""
    e = HAYES.energy(rho, p)
    h = 1e-5 * rho
    dp = (HAYES.pressure(rho + h, e + p / rho**2 * h)
          - HAYES.pressure(rho - h, e - p / rho**2 * h))
    assert HAYES.sound_speed(rho, p) ** 2 == pytest.approx(dp / (2 * h), rel=1e-5)
    # p = p_T(rho) + Gamma0 rho0 cv (T - T0): raising T by 1 K at fixed rho adds G0 rho0 cv
    T = HAYES.temperature(rho, e)
    assert HAYES.pressure(rho, e + CV) - p == pytest.approx(G0 * RHO0 * CV, rel=1e-9)
    assert HAYES.temperature(rho, e + CV) == pytest.approx(T + 1.0, abs=1e-9)
    assert HAYES.temperature(RHO0, 0.0) == pytest.approx(T0)


def test_products_mixing_rule():
    """A reacted HMX phase has the JWL pressure at its energy + Q (common density, energies
    mixed by lambda); half reacted lies on the lambda-weighted energy at that pressure."""
    from macro.multi import mixture

    jwl = products_eos(PRODUCTS)
    eos = FiveEquationModel(ReactiveEOS(HAYES, jwl), GAS, Q=REACTION["Q"]).eos_array
    Q = REACTION["Q"]
    r1, a1 = 2000.0, 1.0 - FLOOR
    rho_e = 1.0e6 * r1  # e = 1 MJ/kg (common frame)
    for lam in (1.0, 0.5):
        xi, pi, _, _ = mixture(eos, r1, 1.0, a1, lam, Q)
        # the floor gas holds a negligible share; solve the pure phase exactly instead
        p = (rho_e - pi) / xi
        e_r = HAYES.energy(r1, p)
        e_p = jwl.energy(r1, p) - Q
        assert (1 - lam) * e_r + lam * e_p == pytest.approx(1.0e6, rel=1e-4)
    # constant-volume explosion from ambient: the JWL pressure at (rho0, Q)
    xi, pi, _, _ = mixture(eos, RHO0, 1.0, a1, 1.0, Q)
    assert (0.0 - pi) / xi == pytest.approx(jwl.pressure(RHO0, Q), rel=1e-4)
    assert jwl.pressure(RHO0, Q) > 10e9  # a burning hotspot pushes its surroundings


# --------------------------------------------------------------------------------------------
# conduction and viscosity: transport kernel alone on a uniform-density HMX line
# --------------------------------------------------------------------------------------------


def _hmx_line(nx: int, L: float, T: np.ndarray, v: np.ndarray, transport: Transport) -> Solver:
    model = FiveEquationModel(HAYES, GAS, transport=transport)
    shape = (1, nx)
    # at rho0 the Hayes pressure is Gamma0 rho0 cv (T - T0)
    prim = {"rho1": np.full(shape, RHO0), "rho2": np.full(shape, 1.161),
            "alpha1": np.full(shape, 1 - FLOOR), "u": np.zeros(shape), "v": v[None, :],
            "p": (G0 * RHO0 * CV * (T - T0))[None, :], "lam": np.zeros(shape)}
    return Solver(model, GridSpec(nx=nx, ny=1, dx=L / nx, dy=L / nx), model.conserved(prim),
                  bc={"x_low": "periodic", "x_high": "periodic"})


def _transport_only(s: Solver, t_end: float, n: int) -> None:
    b, g = s.boundaries, s.grid
    for _ in range(n):
        s.model.apply_transport(s.U, s._W, s._dU, t_end / n, g.dx, g.dy, b.codes, b.uwall,
                                b.inflow)


def _gaussian_error(nx: int) -> float:
    kappa = 0.45
    L, sig, A, t = 4e-6, 0.25e-6, 500.0, 2e-9
    alpha = kappa / (RHO0 * CV)
    x = (np.arange(nx) + 0.5) * L / nx - L / 2
    T_init = T0 + 100.0 + A * np.exp(-(x / sig) ** 2)
    s = _hmx_line(nx, L, T_init, np.zeros(nx), Transport(kappa1=kappa))
    _transport_only(s, t, 10)
    w2 = sig**2 + 4 * alpha * t
    exact = T0 + 100.0 + A * sig / np.sqrt(w2) * np.exp(-x**2 / w2)
    return float(np.max(np.abs(s.fields()["T"] - exact)) / A)


def test_conduction_gaussian_second_order():
    """A Gaussian hot line in HMX spreads as the heat equation's solution, kappa 0.45 W/(m K);
    the error falls ~4x per refinement (second order) and the heat is conserved."""
    e1, e2, e3 = (_gaussian_error(n) for n in (32, 64, 128))
    assert e3 < 2e-3
    assert e1 / e2 > 3.0 and e2 / e3 > 3.0


def test_conduction_substeps_and_gas_insulates():
    """Explicit limit: air at 1 bar needs sub-steps at 15 nm cells; a gas gap blocks the flux."""
    nx, L = 40, 40 * 15.6e-9
    x = (np.arange(nx) + 0.5) * L / nx
    model = FiveEquationModel(HAYES, GAS, transport=Transport(kappa1=0.45, kappa2=0.0263))
    a1 = np.where((x > 0.3 * L) & (x < 0.7 * L), FLOOR, 1 - FLOOR)[None, :]
    T = np.where(x < 0.3 * L, 900.0, 300.0)
    prim = {"rho1": np.full((1, nx), RHO0), "rho2": np.full((1, nx), 1.161), "alpha1": a1,
            "u": 0.0, "v": 0.0, "p": (G0 * RHO0 * CV * (T - T0))[None, :] + 1e5, "lam": 0.0}
    # pressure equilibrium is not needed here: the hydro is not stepped
    s = Solver(model, GridSpec(nx=nx, ny=1, dx=L / nx, dy=L / nx), model.conserved(prim),
               bc={"x_low": "reflective", "x_high": "reflective"})
    b, g = s.boundaries, s.grid
    n = model.apply_transport(s.U, s._W, s._dU, 5e-12, g.dx, g.dy, b.codes, b.uwall, b.inflow)
    assert n >= 2  # 1 bar air: dx^2/D ~ 8 ps at 15.6 nm, times the safety factor 0.1
    for _ in range(200):
        model.apply_transport(s.U, s._W, s._dU, 5e-12, g.dx, g.dy, b.codes, b.uwall, b.inflow)
    T_after = s.fields()["T"]
    right = x > 0.75 * L
    assert np.all(np.abs(T_after[right] - 300.0) < 1.0)  # 1 ns: no heat crossed the gap
    left = x < 0.25 * L
    assert np.all(T_after[left] > 899.0)  # and the hot HMX kept it (insulated, reflective)


def _stokes_error(nx: int, solver_too: bool = False) -> float:
    mu, V, L, t = 0.45, 1.0, 4e-6, 2e-10
    nu = mu / RHO0
    x = (np.arange(nx) + 0.5) * L / nx - L / 2
    v0 = np.where(np.abs(x) < L / 4, V, -V)  # two periodic shear layers at +-L/4
    s = _hmx_line(nx, L, np.full(nx, T0), v0, Transport(mu1=mu))
    if solver_too:
        s.advance(t)
    else:
        _transport_only(s, t, 10)
    d = 2 * np.sqrt(nu * t)
    exact = V * (sum(erf((x + L / 4 + k * L) / d) - erf((x - L / 4 + k * L) / d)
                     for k in range(-3, 4)) - 1.0)  # periodic images included
    return float(np.max(np.abs(s.fields()["v"] - exact)) / V)


def test_viscosity_stokes_first_problem():
    """A tangential velocity step in HMX (mu 0.45 Pa s) diffuses as V erf(x / 2 sqrt(nu t));
    converges at second order, and the full solver (hydro + viscosity) gives the same profile."""
    e1, e2, e3 = (_stokes_error(n) for n in (64, 128, 256))
    assert e3 < 5e-4
    assert e1 / e2 > 3.0 and e2 / e3 > 3.0
    assert _stokes_error(128, solver_too=True) < 1.2 * e2 + 1e-3


# --------------------------------------------------------------------------------------------
# chemistry: adiabatic induction at constant volume
# --------------------------------------------------------------------------------------------


def _hot_cell(T_init: float, products: bool, dx: float) -> Solver:
    eos1 = ReactiveEOS(HAYES, products_eos(PRODUCTS)) if products else HAYES
    model = FiveEquationModel(eos1, GAS, Q=REACTION["Q"])
    shape = (1, 4)
    prim = {"rho1": np.full(shape, RHO0), "rho2": np.full(shape, 1.161),
            "alpha1": np.full(shape, 1 - FLOOR), "u": 0.0, "v": 0.0,
            "p": np.full(shape, G0 * RHO0 * CV * (T_init - T0)), "lam": 0.0}
    rate = Arrhenius(k=REACTION["k"], Ta=REACTION["Ta"], alpha_min=0.9)
    return Solver(model, GridSpec(nx=4, ny=1, dx=dx, dy=dx), model.conserved(prim),
                  bc={"x_low": "periodic", "x_high": "periodic"}, rate=rate)


def _ode_lambda(s: Solver, times: np.ndarray) -> np.ndarray:
    """lambda(t) of the same cell by a high-accuracy ODE solve, T(lambda) from the model's EOS
    at the cell's constant density and energy."""
    U = s.interior[:, :, :1].copy()
    m1 = U[0, 0, 0]
    k, Ta = REACTION["k"], REACTION["Ta"]

    def rhs(_, y):
        U[6, 0, 0] = m1 * y[0]
        T = s.model.diagnostics(U)[4, 0, 0]
        return [k * (1.0 - y[0]) * np.exp(-Ta / T)]

    sol = solve_ivp(rhs, (0.0, times[-1]), [0.0], t_eval=times, rtol=1e-10, atol=1e-12,
                    method="LSODA")
    return sol.y[0]


class _Lam:
    def __init__(self):
        self.lam = []

    def write_frame(self, t, step, f):
        self.lam.append(float(f["lam"][0]))


@pytest.mark.parametrize("products", [False, True])
def test_adiabatic_induction_time(products):
    """A 1500 K HMX cell burns as the ODE of its kinetics says (lambda at each time within
    0.01, induction time within 1%), also when one hydro step (~3 ns at 10 um cells) spans
    the whole induction (~1 ns): the rate is sub-stepped with the temperature feedback.
    Without products the induction time is Frank-Kamenetskii's cv T0^2 / (Q Ta k e^-Ta/T0)
    with its asymptotic corrections in T0/Ta."""
    T_init = 1500.0
    s = _hot_cell(T_init, products, dx=1e-5)
    times = np.linspace(0.05e-9, 2.5e-9, 50)
    sink = _Lam()
    s.advance(float(times[-1]), frame_times=times.tolist(), writer=sink)
    lam = np.array(sink.lam)
    ref = _ode_lambda(s, times)
    assert np.max(np.abs(lam - ref)) < 0.01

    def t_half(y):
        i = int(np.argmax(y > 0.5))
        return np.interp(0.5, y[i - 1:i + 1], times[i - 1:i + 1])

    th = t_half(ref)
    assert t_half(lam) == pytest.approx(th, rel=0.01)
    # one hydro step across the induction: lambda at 1.2 t_half in a single step
    one = _hot_cell(T_init, products, dx=1e-5)
    one.advance(1.2 * th)
    assert one.step == 1
    assert one.fields()["lam"][0] == pytest.approx(_ode_lambda(one, np.array([1.2 * th]))[0],
                                                   abs=0.01)
    if not products:
        k, Ta, Q = REACTION["k"], REACTION["Ta"], REACTION["Q"]
        t_fk = CV * T_init**2 / (Q * Ta * k * np.exp(-Ta / T_init))
        # leading order plus the first asymptotic corrections of the exact thermal-runaway
        # integral, 1 + 2/beta + 6/beta^2 with beta = Ta/T0 (measured: 1.165 ns = 1.29 t_fk)
        beta = Ta / T_init
        assert t_half(lam) == pytest.approx(t_fk * (1 + 2 / beta + 6 / beta**2), rel=0.10)


def test_row_substep_matches_cell_by_cell_reference():
    """The chemistry's first sub-step runs for a whole row at once (vectorised exp), the rest
    per cell: lambda after one step equals that of the per-cell sub-stepping (libm exp) to
    rounding, on fresh random cells: too cool to react, interface cells (alpha1 < alpha_min),
    burnt, partly burnt, and hot cells that need many sub-steps within the step."""
    from macro import multi, reaction

    rng = np.random.default_rng(20261207)
    eos1 = ReactiveEOS(HAYES, products_eos(PRODUCTS))
    model = FiveEquationModel(eos1, GAS, Q=REACTION["Q"])
    shape = (6, 40)
    T = rng.uniform(300.0, 2600.0, shape)
    a1 = np.where(rng.random(shape) < 0.15, 0.5, 1 - FLOOR)
    lam = rng.choice([0.0, 0.0, 0.2, 0.97, 1.0], size=shape)
    prim = {"rho1": RHO0 * rng.uniform(1.0, 1.3, shape), "rho2": np.full(shape, 1.161),
            "alpha1": a1, "u": rng.normal(0.0, 50.0, shape), "v": 0.0,
            "p": G0 * RHO0 * CV * (T - T0), "lam": lam}
    rate = Arrhenius(k=REACTION["k"], Ta=REACTION["Ta"], alpha_min=0.9)
    s = Solver(model, GridSpec(nx=shape[1], ny=shape[0], dx=1e-7, dy=1e-7),
               model.conserved(prim), rate=rate)
    dt = 2e-10
    b = s.boundaries
    from macro.models import fill_ghosts
    fill_ghosts(s.U, b.codes, b.uwall, b.inflow, model._nrho, multi.MX, multi.MY, multi.EN)
    C = model.source_scratch(s.U.shape)
    multi.cell_eos(s.U, model.eos_array, C)
    U = s.U.copy()
    rp, Q = s._rate_params, model.Q
    reaction.react_multi(U, C, model.eos_array, Q, reaction.ARRHENIUS, rp, dt)
    moved = 0
    for j in range(2, shape[0] + 2):
        for i in range(2, shape[1] + 2):
            m1, m2 = s.U[multi.AR1, j, i], s.U[multi.AR2, j, i]
            al = s.U[multi.ALPHA, j, i]
            lam0 = s.U[multi.ARL, j, i] / m1
            ref = lam0
            if al >= rp[3] and lam0 < 1.0:
                rhoe = s.U[multi.EN, j, i] - 0.5 * s.U[multi.MX, j, i] ** 2 / (m1 + m2)
                c = reaction._multi_cell_eos(C, model.eos_array, j, i)
                t = 0.0
                while t < dt and ref < 1.0:
                    _, Tc = reaction._multi_p_T(c, Q, m1 / al, al, ref, rhoe)
                    ref, h = reaction._arrhenius_multi(c, Q, rp, m1 / al, al, rhoe, ref, Tc,
                                                       dt - t)
                    t += h
            got = U[multi.ARL, j, i] / m1
            assert got == pytest.approx(ref, rel=1e-11, abs=1e-13), (j, i, lam0)
            if ref == lam0:  # an unmoved cell keeps its conserved lambda exactly
                assert U[multi.ARL, j, i] == s.U[multi.ARL, j, i]
            moved += ref > lam0 + 1e-3
    assert moved >= 10  # the draw has burning cells
    assert np.array_equal(np.delete(U, multi.ARL, axis=0), np.delete(s.U, multi.ARL, axis=0))


def test_reaction_only_in_hmx_cells():
    """alpha_min: a hot interface cell (alpha1 = 0.5) does not react, an HMX cell does."""
    s = _hot_cell(1500.0, True, dx=1e-5)
    s.interior[5, 0, 1] = 0.5  # alpha1 of cell 1 (its partial densities now mean another cell)
    s.interior[0, 0, 1] *= 0.5 / (1 - FLOOR)
    s.interior[6, 0, 1] = 0.0
    s.model.react(s.U, s._rate_kind, s._rate_params, 1e-9)
    lam = s.fields()["lam"]
    assert lam[1] == 0.0 and lam[0] > 0.1


# --------------------------------------------------------------------------------------------
# conservation with every term on, and determinism
# --------------------------------------------------------------------------------------------


def test_conservation_periodic_box_all_terms():
    """Periodic 2D box: a gas bubble, a hot reacting spot and a shear flow, with conduction,
    viscosity, products and chemistry on: both masses, momentum and total energy are conserved
    to round-off (the heat of reaction is internal: energy is measured with Q)."""
    n, L = 24, 1.5e-6
    dx = L / n
    c = (np.arange(n) + 0.5) * dx
    X, Y = np.meshgrid(c, c)
    bubble = (X - 0.5 * L) ** 2 + (Y - 0.35 * L) ** 2 < (0.15 * L) ** 2
    hot = np.exp(-((X - 0.5 * L) ** 2 + (Y - 0.75 * L) ** 2) / (0.1 * L) ** 2)
    T = 400.0 + 1400.0 * hot
    model = FiveEquationModel(ReactiveEOS(HAYES, products_eos(PRODUCTS)), GAS, Q=REACTION["Q"],
                              kapila=True, transport=Transport(0.45, 0.0263, 0.45, 1.85e-5))
    p = G0 * RHO0 * CV * (T - T0)
    prim = {"rho1": np.full((n, n), RHO0), "rho2": np.full((n, n), 1.161) * (1 + p / 1e5),
            "alpha1": np.where(bubble, FLOOR, 1 - FLOOR), "u": 50.0 * np.sin(2 * np.pi * Y / L),
            "v": 0.0, "p": p + 1e5, "lam": 0.0}
    s = Solver(model, GridSpec(nx=n, ny=n, dx=dx, dy=dx), model.conserved(prim),
               bc={s_: "periodic" for s_ in ("x_low", "x_high", "y_low", "y_high")},
               cfl=0.5, limiter="minmod", rate=Arrhenius(k=5.58e12, Ta=17922.0, alpha_min=0.9))
    before = s.totals()
    s.advance(0.3e-9, max_steps=60)
    after = s.totals()
    assert s.fields()["lam"].max() > 1e-3  # the hot spot reacted
    assert s.transport_substeps >= 2  # viscosity sub-cycled
    for k in (0, 1, 4):  # alpha1 rho1, alpha2 rho2, E
        assert after[k] == pytest.approx(before[k], rel=1e-12)
    scale = before[0] * 50.0
    assert abs(after[2] - before[2]) < 1e-12 * scale and abs(after[3] - before[3]) < 1e-12 * scale


def test_same_seed_same_arrays_all_terms():
    """A low-resolution micro sample with every term on is bit-for-bit reproducible."""
    from closure.data import load_data_config
    from closure.data.collapse import run_sample

    cfg = load_data_config("micro", overrides=[
        "grid.nx=48", "grid.ny=32", "grid.dx=1.25e-7", "time.n_frames=4",
        "time.frame_dt=2.5e-10"])
    a = run_sample(cfg, 5, 1)
    b = run_sample(cfg, 5, 1)
    assert np.array_equal(a.fields, b.fields)
    for k in a.extras:
        assert np.array_equal(a.extras[k], b.extras[k])
