"""Pore geometry generators and data-config validation (no hydro runs)."""

import math

import numpy as np
import pytest

from closure.data import geometry as G
from closure.data import load_data_config
from closure.data.collapse import hugoniot_state, sample_geometry, sample_seed


def rasterized_area(pores, nx=96, ny=64, dx=62.5e-9):
    return G.gas_fraction(pores, nx, ny, dx).sum() * dx * dx


@pytest.mark.parametrize("pore", [
    {"shape": "circle", "x": 2e-6, "y": 2e-6, "r": 0.6e-6},
    {"shape": "ellipse", "x": 2e-6, "y": 2e-6, "a": 0.9e-6, "b": 0.5e-6, "phi": 0.7},
    {"shape": "fourier", "x": 2e-6, "y": 2e-6, "r0": 0.65e-6, "ak": [0.1, -0.05],
     "bk": [0.02, 0.04], "k0": 2},
])
def test_rasterized_area_matches_outline(pore):
    assert rasterized_area([pore]) == pytest.approx(G.pore_area(pore), rel=0.01)


def test_periodic_wrap_in_y_keeps_area():
    centre = {"shape": "circle", "x": 2e-6, "y": 2e-6, "r": 0.6e-6}
    edge = dict(centre, y=0.1e-6)  # straddles y = 0
    f = G.gas_fraction([edge], 96, 64, 62.5e-9)
    assert f[0].sum() > 0 and f[-1].sum() > 0
    assert rasterized_area([edge]) == pytest.approx(rasterized_area([centre]), rel=1e-3)


def test_overlapping_pores_are_rejected():
    p = {"shape": "circle", "x": 2e-6, "y": 2e-6, "r": 0.6e-6}
    with pytest.raises(ValueError, match="overlap"):
        G.gas_fraction([p, dict(p, x=2.3e-6)], 96, 64, 62.5e-9)


def test_micro_pores_resolved_and_inside_domain():
    cfg = load_data_config("micro")
    g, geo = cfg["grid"], cfg["geometry"]
    shapes = set()
    for i in range(200):
        rng = np.random.default_rng(sample_seed(5, i))
        u_p, pores, _ = sample_geometry(cfg, rng)
        assert cfg["loading"]["u_p"][0] <= u_p <= cfg["loading"]["u_p"][1]
        (p,) = pores
        shapes.add(p["shape"])
        # at least 8 cells per pore radius at the default cell size
        assert G.min_radius(p) / g["dx"] >= 8.0 - 1e-9
        assert geo["radius"][0] - 1e-12 <= G.equivalent_radius(p) <= 1.25 * geo["radius"][1]
        left, right = G.x_extent(p)
        assert geo["lead_gap"][0] - 1e-12 <= p["x"] - left <= geo["lead_gap"][1] + 1e-12
        assert p["x"] + right < g["nx"] * g["dx"]
        assert 2 * G.bounding_radius(p) < g["ny"] * g["dx"]
    assert shapes == {"circle", "ellipse", "fourier"}


def test_meso_pores_porosity_and_no_overlap():
    cfg = load_data_config("meso")
    g, geo = cfg["grid"], cfg["geometry"]
    Lx, Ly = g["nx"] * g["dx"], g["ny"] * g["dx"]
    counts = []
    for i in range(30):
        rng = np.random.default_rng(sample_seed(9, i))
        _, pores, target = sample_geometry(cfg, rng)
        frac = G.gas_fraction(pores, g["nx"], g["ny"], g["dx"])  # raises on overlap
        lo, hi = geo["porosity"]
        assert lo - 0.005 <= frac.mean() <= hi + 0.005
        assert abs(frac.mean() - target) < 0.005  # half the smallest pore's area fraction
        counts.append(len(pores))
        for a in range(len(pores)):
            pa = pores[a]
            assert G.min_radius(pa) / g["dx"] >= 8.0 - 1e-9
            left, right = G.x_extent(pa)
            assert pa["x"] - left >= geo["margin"] - 1e-12
            assert pa["x"] + right <= Lx - geo["margin"] + 1e-12
            for b in range(a):
                pb = pores[b]
                dy = abs(pa["y"] - pb["y"]) % Ly
                d = math.hypot(pa["x"] - pb["x"], min(dy, Ly - dy))
                assert d >= G.bounding_radius(pa) + G.bounding_radius(pb) + geo["gap"] - 1e-12
    assert min(counts) >= 1 and max(counts) >= 4 and np.mean(counts) >= 2.5


def test_geometry_is_deterministic_by_seed():
    cfg = load_data_config("meso")
    a = sample_geometry(cfg, np.random.default_rng(sample_seed(3, 7)))
    b = sample_geometry(cfg, np.random.default_rng(sample_seed(3, 7)))
    c = sample_geometry(cfg, np.random.default_rng(sample_seed(3, 8)))
    assert a[:2] == b[:2]
    assert a[:2] != c[:2]
    assert sample_seed(3, 7) != sample_seed(7, 3)


def test_hugoniot_state_jump_conditions():
    hmx = load_data_config("micro")["physics"]["hmx"]
    hs = hugoniot_state(hmx, 1000.0, 1e5)
    assert hs["Us"] == pytest.approx(5176.9, rel=1e-4)  # beta-HMX Hayes EOS (docs/data.md)
    # mass: rho0 Us = rho (Us - up); momentum: p - p0 = rho0 Us up
    assert hmx["rho0"] * hs["Us"] == pytest.approx(hs["rho"] * (hs["Us"] - 1000.0))
    assert hs["p"] - 1e5 == pytest.approx(hmx["rho0"] * hs["Us"] * 1000.0)


@pytest.mark.parametrize("override,match", [
    ("grid.nx=100", "multiple of 8"),
    ("grid.dx=-1.0", "dx"),
    ("loading.u_p=[1500.0, 700.0]", "u_p"),
    ("geometry.shapes=['square']", "shapes"),
    ("physics.hmx_cell_alpha=1.5", "hmx_cell_alpha"),
    ("physics.t_fill='zero'", "t_fill"),
    ("grid.nz=8", "unknown"),
    ("nosuch.key=1", "section"),
    ("geometry.radius=[0.5e-6, 3e-6]", "does not fit"),
])
def test_config_errors_name_the_key(override, match):
    with pytest.raises(ValueError, match=match):
        load_data_config("micro", overrides=[override])


def test_config_files_resolve(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs" / "data"
    micro = load_data_config("micro", root / "micro.toml")
    meso = load_data_config("meso", root / "meso.toml")
    # same cell size at both scales; meso frame interval = 2 x micro; sizes multiples of 8
    assert micro["grid"]["dx"] == meso["grid"]["dx"]
    assert meso["time"]["frame_dt"] == pytest.approx(2 * micro["time"]["frame_dt"])
    assert (micro["grid"]["ny"], micro["grid"]["nx"]) == (64, 96)
    assert (meso["grid"]["ny"], meso["grid"]["nx"]) == (256, 384)
    assert micro["time"]["n_frames"] >= 20 and meso["time"]["n_frames"] >= 20
    # horizons: micro >= 10 ns, meso >= 20 ns; the files are the defaults of params.py
    assert micro["time"]["n_frames"] * micro["time"]["frame_dt"] >= 10e-9 - 1e-15
    assert meso["time"]["n_frames"] * meso["time"]["frame_dt"] >= 20e-9 - 1e-15
    assert micro == load_data_config("micro") and meso == load_data_config("meso")
    with pytest.raises(ValueError, match="scale"):
        load_data_config("meso", root / "micro.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nnx = 50\n")
    with pytest.raises(ValueError, match="nx"):
        load_data_config("micro", bad)


def _gas_fraction_reference(pores, nx, ny, dx, sub=8):
    """Every sample's angle and outline radius, in numpy (the rasterization's first form)."""
    Ly = ny * dx
    frac = np.zeros((ny, nx))
    offs = (np.arange(sub) + 0.5) / sub * dx
    for pore in pores:
        R = G.bounding_radius(pore)
        xc, yc = pore["x"], pore["y"]
        i0 = max(int(math.floor((xc - R) / dx)) - 1, 0)
        i1 = min(int(math.ceil((xc + R) / dx)) + 1, nx)
        if i1 <= i0:
            continue
        rows = np.arange(int(math.floor((yc - R) / dx)) - 1, int(math.ceil((yc + R) / dx)) + 1)
        if rows.size > ny:
            rows = np.arange(ny)
        cols = np.arange(i0, i1)
        ys = (rows[:, None] * dx + offs[None, :])[:, :, None, None]
        xs = (cols[:, None] * dx + offs[None, :])[None, None, :, :]
        ddx = xs - xc
        ddy = np.mod(ys - yc + 0.5 * Ly, Ly) - 0.5 * Ly
        inside = np.hypot(ddx, ddy) < G.outline_radius(pore, np.arctan2(ddy, ddx))
        frac[np.mod(rows, ny)[:, None], cols[None, :]] += inside.mean(axis=(1, 3))
    return np.minimum(frac, 1.0)


@pytest.mark.parametrize("kind", ["micro", "meso"])
def test_gas_fraction_matches_the_per_sample_reference(kind):
    """The compiled rasterization against every sample's outline test in numpy, on the data
    sets' own random pores (all three shapes), shifted across x and the periodic y edge."""
    cfg = load_data_config(kind)
    g = cfg["grid"]
    rng = np.random.default_rng()
    shapes = set()
    for i in range(12 if kind == "micro" else 3):
        _, pores, _ = sample_geometry(cfg, np.random.default_rng(sample_seed(int(rng.integers(
            0, 2**31)), i)))
        sx = rng.uniform(-0.3, 0.3) * g["nx"] * g["dx"]  # some pores leave the domain in x
        sy = rng.uniform(0.0, 1.0) * g["ny"] * g["dx"]
        moved = [dict(p, x=p["x"] + sx, y=(p["y"] + sy) % (g["ny"] * g["dx"])) for p in pores]
        shapes |= {p["shape"] for p in pores}
        got = G.gas_fraction(moved, g["nx"], g["ny"], g["dx"])
        np.testing.assert_array_equal(got, _gas_fraction_reference(moved, g["nx"], g["ny"],
                                                                   g["dx"]))
    # a pore taller than the domain wraps onto itself
    tall = {"shape": "ellipse", "x": 1e-6, "y": 0.2e-6, "a": 3e-6, "b": 0.4e-6, "phi": 1.5}
    np.testing.assert_array_equal(G.gas_fraction([tall], 64, 16, 62.5e-9),
                                  _gas_fraction_reference([tall], 64, 16, 62.5e-9))
    if kind == "micro":
        assert shapes == {"circle", "ellipse", "fourier"}


def test_loading_draws_log_uniform_pressure():
    """``log_pressure``: the shock pressure is log-uniform between the Hugoniot pressures of
    the u_p range's ends (Kolmogorov-Smirnov against the uniform law of log p); ``uniform``
    draws u_p uniformly; both from the same single draw per sample."""
    from conftest import seeded_rng
    from scipy.stats import kstest

    from closure.data.collapse import draw_u_p
    from closure.data.params import hugoniot_state

    cfg = load_data_config("micro")
    hmx = cfg["physics"]["hmx"]
    lo, hi = cfg["loading"]["u_p"]
    p_lo, p_hi = (hugoniot_state(hmx, u, 1e5)["p"] for u in (lo, hi))
    rng = seeded_rng("log_pressure")
    ups = np.array([draw_u_p(cfg, rng) for _ in range(400)])
    ps = np.array([hugoniot_state(hmx, u, 1e5)["p"] for u in ups])
    x = np.log(ps / p_lo) / np.log(p_hi / p_lo)
    assert kstest(x, "uniform").pvalue > 1e-3
    assert np.all((ups >= lo) & (ups <= hi))
    uni = load_data_config("micro", overrides=["loading.distribution='uniform'"])
    assert kstest((np.array([draw_u_p(uni, rng) for _ in range(400)]) - lo) / (hi - lo),
                  "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="distribution"):
        load_data_config("micro", overrides=["loading.distribution='linear'"])
