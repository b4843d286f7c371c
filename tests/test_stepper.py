"""The stepper both kernels share (:mod:`macro.stepper`) and the data-generation fast paths of the
five-equation kernel: the vectorised Hayes phase EOS is the per-state EOS, work shares do not
change a step, a periodic box conserves what it should with the data generation's EOS pair, and
the chemistry's once-per-cell EOS evaluation is the per-sub-step one."""

from __future__ import annotations

import numpy as np
import pytest

from closure.data.params import HMX, PRODUCTS, hmx_eos, products_eos
from macro import multi, reaction
from macro.eos import IdealGas, ReactiveEOS, StiffenedGas, pack_eos, xi_pi
from macro.grid import GridSpec
from macro.models import EulerModel, FiveEquationModel
from macro.reaction import Arrhenius
from macro.stepper import TS
from macro.transport import Transport

GAS = IdealGas(1.4, cv=718.0)
Q = 5.8e6


def _hmx(products: bool):
    h = hmx_eos(HMX)
    return ReactiveEOS(h, products_eos(PRODUCTS)) if products else h


@pytest.mark.parametrize("products", [False, True])
def test_vectorised_hayes_phase_eos_is_the_per_state_eos(products):
    """_phase_eos's Hayes/ideal-gas path (powers in a loop of their own, products redone where
    lambda > 0) gives exactly what phase1_xi_pi and xi_pi give per state: compression,
    expansion, reacting and unreacted states."""
    eos = pack_eos(_hmx(products), GAS)
    rng = np.random.default_rng(3)
    m = 300
    S = np.zeros(multi.NSR * TS)
    S[:m] = 1900.0 * rng.uniform(0.7, 1.6, m)  # r1: expansion and compression
    S[TS:TS + m] = rng.uniform(0.5, 50.0, m)  # r2
    lam = np.where(rng.random(m) < 0.5, 0.0, rng.random(m))
    S[6 * TS:6 * TS + m] = lam
    multi._phase_eos(S, 0, m, eos[0], eos[1])
    for f in range(m):
        want = (*multi.phase1_xi_pi(eos[0], S[f], lam[f]), *xi_pi(eos[1], S[TS + f]))
        got = tuple(S[multi.S_PT + k * TS + f] for k in range(8))
        assert got == want, f


@pytest.mark.parametrize("pair", ["hmx_products_air", "stiffened_air"])
def test_face_thermodynamics_of_cell_states_are_the_cells(pair):
    """The sweep builds a face state's energy and sound speed from its reconstructed (Hayes
    HMX with products) or exactly evaluated (constant-coefficient gas) phase data, never
    calling the EOS: given the cells' own states, it must return their total energy and
    frozen sound speed (the guard's, from the EOS), on random mixed, reacted and pure states."""
    rng = np.random.default_rng(11)
    m = 400
    if pair == "hmx_products_air":
        eos = pack_eos(_hmx(True), GAS)
        r1 = 1900.0 * rng.uniform(0.8, 1.5, m)
        lam = np.where(rng.random(m) < 0.5, 0.0, rng.random(m))
    else:
        eos = pack_eos(StiffenedGas(4.4, 6e8, cv=1800.0), GAS)
        r1 = 1000.0 * rng.uniform(0.95, 1.1, m)
        lam = np.zeros(m)
    a1 = np.where(rng.random(m) < 0.2, 1.0 - 1e-8, rng.uniform(1e-8, 1.0, m))
    p = 10.0 ** rng.uniform(5.0, 10.5, m)
    prim = [x.reshape(1, m) for x in (r1, rng.uniform(0.5, 50.0, m), a1,
                                      rng.uniform(-500, 500, m), rng.uniform(-500, 500, m), p,
                                      lam)]
    U = np.zeros((multi.NV, 1, m))
    multi.conserved_from_primitive(*prim, eos, Q, U)
    W = np.zeros((multi.NW, 1, m))
    status, *_ = multi.primitives(U, W, eos, Q, 1e-7, 1e-7, np.zeros((1, 3)))
    assert status == 0
    S = np.zeros(multi.NSR * TS)
    for k, w in enumerate(multi.RING_W[:multi.NR]):
        S[multi.S_WL + k * TS:multi.S_WL + k * TS + m] = W[w, 0]
        S[multi.S_WR + k * TS + 1:multi.S_WR + k * TS + m + 1] = W[w, 0]
    S[multi.S_WL + 3 * TS:multi.S_WL + 4 * TS] = 0.0  # one velocity normal, the other 0
    S[multi.S_WR + 3 * TS:multi.S_WR + 4 * TS] = 0.0
    mc = multi._consts(eos, Q, True)
    multi._thermo(S, m, mc)
    rho = U[multi.AR1, 0] + U[multi.AR2, 0]
    E = U[multi.EN, 0] - 0.5 * U[multi.MY, 0] ** 2 / rho
    for oE, oC in ((multi.S_EL, multi.S_CL), (multi.S_ER, multi.S_CR)):
        np.testing.assert_allclose(S[oE:oE + m], E, rtol=1e-12, atol=0.0)
        np.testing.assert_allclose(S[oC:oC + m], W[7, 0], rtol=1e-11, atol=0.0)


def _five_periodic(nx, ny, products=True, transport=None):
    model = FiveEquationModel(_hmx(products), GAS, Q=Q, kapila=True, transport=transport)
    X, Y = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
    pore = (X - 0.5) ** 2 + (Y - 0.5) ** 2 < 0.04
    a1 = np.where(pore, 1e-6, 1.0 - 1e-6)
    prim = {"rho1": 1900.0 * (1.0 + 0.05 * np.sin(2 * np.pi * X)), "rho2": np.full(X.shape, 1.2),
            "alpha1": a1, "u": 300.0 * np.sin(2 * np.pi * Y), "v": np.zeros(X.shape),
            "p": np.where(X < 0.3, 3e8, 1e5), "lam": np.where(Y < 0.5, 0.3, 0.0) * (~pore)}
    bc = {s: "periodic" for s in ("x_low", "x_high", "y_low", "y_high")}
    from macro.solver import Solver

    return Solver(model, GridSpec(nx=nx, ny=ny, dx=1e-7, dy=1e-7), model.conserved(prim), bc=bc,
                  cfl=0.5)


def test_five_equation_datagen_eos_conserves_in_a_periodic_box():
    """HMX (Hayes with JWL products, some of it reacted) around a pore of air, periodic: the
    shared stepper keeps each phase's mass, the HMX's reacted mass, momentum and energy to
    round-off while the shock crosses the pore."""
    s = _five_periodic(48, 32)
    before = s.totals()
    s.advance(1.0, max_steps=40)
    after = s.totals()
    for k, name in enumerate(s.model.var_names):
        if name == "alpha1":
            continue  # not conserved: (alpha1 + K) div u
        scale = np.abs(s.interior[k]).max() * s.grid.dx * s.grid.dy * s.interior[k].size
        assert abs(after[k] - before[k]) <= 1e-12 * scale, name


def _euler_periodic(nx, ny):
    model = EulerModel(IdealGas(1.4), products=IdealGas(1.3), Q=0.5)
    X, Y = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
    prim = {"rho": 1.0 + 0.2 * np.sin(2 * np.pi * X) * np.cos(2 * np.pi * Y),
            "u": 0.3 * np.ones(X.shape), "v": 0.1 * np.sin(2 * np.pi * X),
            "p": np.where(X < 0.5, 1.0, 0.2), "lam": np.where(Y < 0.5, 0.4, 0.0)}
    bc = {s: "periodic" for s in ("x_low", "x_high", "y_low", "y_high")}
    from macro.solver import Solver

    return Solver(model, GridSpec(nx=nx, ny=ny, dx=1.0 / nx, dy=1.0 / nx), model.conserved(prim),
                  bc=bc)


@pytest.mark.parametrize("build", [_euler_periodic, _five_periodic], ids=["euler", "five_eq"])
def test_work_shares_do_not_change_a_step(build):
    """One work share or three (run one after the other): the same step, bit for bit, for both
    kernels (rows split between shares; the first y-face row of each share is recomputed)."""
    a = build(40, 30)
    b = build(40, 30)
    g, bd = a.grid, a.boundaries
    for _ in range(5):
        outs = []
        for s, nt in ((a, 1), (b, 3)):
            S = np.empty((nt, s.model.scratch(1).shape[1]))
            mod = multi if isinstance(s.model, FiveEquationModel) else None
            if mod is None:
                from macro import euler

                r = euler.step(s.U, s._U0, s._W, s._dU, S, s.model.eos_array, s.model.Q,
                               s.model.reactive, 0, 0, 2, 0.5, 1.0, g.dx, g.dy, bd.codes,
                               bd.uwall, bd.inflow, s._rowstat)
            else:
                r = multi.step(s.U, s._U0, s._W, s._dU, S, s.model.eos_array, s.model.Q, True, 0,
                               0, 2, 0.5, 1.0, g.dx, g.dy, bd.codes, bd.uwall, bd.inflow,
                               s._rowstat)
            outs.append(r)
        assert outs[0] == outs[1]
        assert outs[0][0] == 0
        assert np.array_equal(a.U, b.U)


def _p_T(eos, r1, r2, a1, lam, rhoe):
    """Pressure and HMX-phase temperature with a full EOS evaluation (the former sub-step)."""
    xi, pi, _, _ = multi.mixture(eos, r1, r2, a1, lam, Q)
    p = (rhoe - pi) / xi
    return p, multi.phase1_temperature(eos[0], r1, lam, p)


def _react(eos, kind, rp, r1, r2, a1, p, lam, dt):
    """Conserved state of the primitives, and that state after react_multi over dt."""
    ny, nx = r1.shape
    U = np.empty((multi.NV, ny, nx))
    z = np.zeros((ny, nx))
    multi.conserved_from_primitive(r1, r2, a1, z, z, p, lam, eos, Q, U)
    got = U.copy()
    C = np.empty((multi.NC, ny, nx))
    multi.cell_eos(got, eos, C)
    reaction.react_multi(got, C, eos, Q, kind, rp, dt)
    return U, got


def test_chemistry_evaluates_the_eos_once_per_cell_with_the_same_result():
    """react_multi (EOS hoisted out of the sub-steps) against the sub-step loop written out with
    a full EOS evaluation per sub-step (pressure from the mixture, temperature from the reactant
    at the mixed phase energy): identical lambda, hot cells included."""
    eos = pack_eos(_hmx(True), GAS)
    rate = Arrhenius(k=5.58e12, Ta=17922.0, alpha_min=0.9)
    kind, rp = rate.pack()
    rng = np.random.default_rng(5)
    ny, nx = 6, 9
    r1 = 1900.0 * rng.uniform(1.0, 1.4, (ny, nx))
    r2 = rng.uniform(1.0, 20.0, (ny, nx))
    a1 = np.where(rng.random((ny, nx)) < 0.8, 1.0 - 1e-6, 0.5)
    lam = np.where(rng.random((ny, nx)) < 0.5, 0.0, rng.uniform(0.0, 0.9, (ny, nx)))
    p = rng.uniform(1e9, 3e10, (ny, nx))
    dt = 2e-11
    U, got = _react(eos, kind, rp, r1, r2, a1, p, lam, dt)
    for j in range(2, ny - 2):
        for i in range(2, nx - 2):
            if a1[j, i] < rp[3]:
                continue
            m1 = U[multi.AR1, j, i]
            rr1 = m1 / a1[j, i]
            rr2 = U[multi.AR2, j, i] / (1.0 - a1[j, i])
            rhoe = U[multi.EN, j, i]
            lm = U[multi.ARL, j, i] / m1
            t = 0.0

            while t < dt and lm < 1.0:
                _, T = _p_T(eos, rr1, rr2, a1[j, i], lm, rhoe)
                k0 = rp[0] * np.exp(-rp[1] / T) if T > 0.0 else 0.0
                if not (k0 * (dt - t) > 1e-17):  # exp(-k0 h) would round to 1
                    break
                dlam = min(0.05, 0.1 * T * T / rp[1] * eos[0, 1] / Q)
                h = min(dt - t, dlam / (k0 * (1.0 - lm)))
                lh = 1.0 - (1.0 - lm) * np.exp(-0.5 * k0 * h)
                _, Th = _p_T(eos, rr1, rr2, a1[j, i], lh, rhoe)
                kh = rp[0] * np.exp(-rp[1] / Th) if Th > 0.0 else 0.0
                lm = 1.0 - (1.0 - lm) * np.exp(-kh * h)
                t += h
            assert got[multi.ARL, j, i] == pytest.approx(m1 * lm, rel=1e-14, abs=0.0)
    assert np.any(got[multi.ARL] != U[multi.ARL])  # something reacted


def test_transport_conserves_with_the_datagen_eos():
    """Conduction and viscosity (row-buffer stresses) in the periodic HMX/air box: momentum and
    energy to round-off."""
    tr = Transport(kappa1=0.45, kappa2=0.0263, mu1=0.45, mu2=1.85e-5, alpha_min=0.9,
                   alpha_min2=0.999)
    s = _five_periodic(32, 24, transport=tr)
    before = s.totals()
    s.advance(1.0, max_steps=10)
    after = s.totals()
    assert s.transport_substeps > 1
    for name in ("rho_u", "rho_v", "E"):
        k = s.model.var_names.index(name)
        scale = np.abs(s.interior[k]).max() * s.grid.dx * s.grid.dy * s.interior[k].size
        assert abs(after[k] - before[k]) <= 1e-12 * scale, name


def test_sources_share_one_eos_pass_with_the_same_result():
    """Model.sources (conduction, viscosity and chemistry from one EOS pass over the cells)
    against the operators applied one after the other, each with its own EOS evaluation: the
    same bits, on a hot, partly burnt state after a few steps."""
    tr = Transport(kappa1=0.45, kappa2=0.0263, mu1=0.45, mu2=1.85e-5, alpha_min=0.9,
                   alpha_min2=0.999)
    s = _five_periodic(40, 24, transport=tr)
    s.advance(1.0, max_steps=5)
    m, g, b = s.model, s.grid, s.boundaries
    kind, rp = Arrhenius(k=5.58e12, Ta=17922.0, alpha_min=0.9).pack()
    U = s.U.copy()
    rng = np.random.default_rng(11)  # a hotter state: some cells react within the step
    U[multi.EN] += rng.uniform(0.0, 4e9, U[multi.EN].shape) * U[multi.AR1]
    W, D = np.empty_like(s._W), np.empty_like(s._dU)
    dt = 3e-11
    shared = U.copy()
    n = m.sources(shared, W, D, m.source_scratch(U.shape), dt, g.dx, g.dy, b.codes, b.uwall,
                  b.inflow, kind, rp)
    apart = U.copy()
    n2 = m.apply_transport(apart, W, D, dt, g.dx, g.dy, b.codes, b.uwall, b.inflow)
    m.react(apart, kind, rp, dt)
    assert n == n2 > 1
    assert np.array_equal(shared, apart)
    assert np.any(shared[multi.ARL] != U[multi.ARL])  # chemistry did something
    assert np.any(shared[multi.EN] != U[multi.EN])


def test_chemistry_leaves_lambda_bit_for_bit_where_the_rate_cannot_move_it():
    """A sub-step whose k h is below 1e-17 is skipped: lambda (0 or not) stays exactly as it
    was in cool cells, while hot cells of the same array react."""
    eos = pack_eos(_hmx(True), GAS)
    rate = Arrhenius(k=5.58e12, Ta=17922.0, alpha_min=0.9)
    kind, rp = rate.pack()
    rng = np.random.default_rng(np.random.SeedSequence().entropy)
    ny, nx = 12, 16
    r1 = 1900.0 * rng.uniform(1.0, 1.3, (ny, nx))
    r2 = rng.uniform(1.0, 20.0, (ny, nx))
    a1 = np.full((ny, nx), 1.0 - 1e-6)
    lam = np.where(rng.random((ny, nx)) < 0.25, 0.0, rng.uniform(0.01, 0.4, (ny, nx)))
    # the pressure of a drawn HMX-phase temperature, 300-1500 K (T is linear in p at fixed
    # phase density and lambda)
    T_want = 10.0 ** rng.uniform(np.log10(300.0), np.log10(1500.0), (ny, nx))
    p = np.empty((ny, nx))
    for j in range(ny):
        for i in range(nx):
            t0, t1 = (multi.phase1_temperature(eos[0], r1[j, i], lam[j, i], pp)
                      for pp in (0.0, 1e9))
            p[j, i] = (T_want[j, i] - t0) / (t1 - t0) * 1e9
    dt = 2e-11
    U, got = _react(eos, kind, rp, r1, r2, a1, p, lam, dt)
    kdt = np.zeros((ny, nx))
    for j in range(2, ny - 2):
        for i in range(2, nx - 2):
            m1 = U[multi.AR1, j, i]
            _, T = _p_T(eos, m1 / a1[j, i], U[multi.AR2, j, i] / (1.0 - a1[j, i]), a1[j, i],
                        U[multi.ARL, j, i] / m1, U[multi.EN, j, i])
            kdt[j, i] = rp[0] * np.exp(-rp[1] / T) * dt if T > rp[2] else 0.0
    inner = np.zeros((ny, nx), bool)
    inner[2:-2, 2:-2] = True
    cool = inner & (kdt <= 1e-17)
    hot = inner & (kdt > 1e-6)
    assert cool.any() and hot.any()
    # cells where a sub-step with exp(-k h) == 1 would still move lambda by rounding
    lam0 = U[multi.ARL] / U[multi.AR1]
    assert np.any(cool & (1.0 - (1.0 - lam0) != lam0))
    assert np.array_equal(got[multi.ARL][cool], U[multi.ARL][cool])
    assert np.all(got[multi.ARL][hot] > U[multi.ARL][hot])


def test_arrhenius_screen_temperature_is_a_tight_lower_bound():
    """Cells below the screen temperature cannot move lambda over dt (k exp(-Ta/T) dt <= 1e-17
    or T <= T_ig), and the bound is within 2e-6 of the exact one, on random rate constants."""
    rng = np.random.default_rng(np.random.SeedSequence().entropy)
    for _ in range(200):
        k = 10.0 ** rng.uniform(5, 20)
        Ta = rng.uniform(5e3, 4e4)
        dt = 10.0 ** rng.uniform(-13, -8)
        Tig = rng.choice([0.0, rng.uniform(300.0, 600.0)])
        kind, rp = Arrhenius(k=k, Ta=Ta, T_ignition=Tig).pack()
        T_min = reaction.arrhenius_screen_temperature(rp, dt)
        if k * dt <= 1e-17:
            assert T_min == np.inf
            continue
        assert k * np.exp(-Ta / T_min) * dt <= 1e-17 or T_min <= Tig
        T_up = T_min * (1.0 + 2e-6)
        assert k * np.exp(-Ta / T_up) * dt > 1e-17 and T_up > Tig
    assert reaction.arrhenius_screen_temperature(Arrhenius(k=1.0, Ta=1e4).pack()[1],
                                                 1e-18) == np.inf
