"""Synthetic frame 1 of a newly shocked closure cell (closure.initial) against known values."""

from __future__ import annotations

import numpy as np
import pytest

from closure.data.collapse import hugoniot_state
from closure.data.geometry import gas_fraction
from closure.data.params import HMX, PREVIOUS_HMX, PREVIOUS_MESO, defaults_for
from closure.initial import (
    DEFAULT_GRID,
    default_envelope,
    hugoniot_temperature,
    microstructure_bank,
    particle_velocity,
    shock_speed,
    synthetic_frame1,
)
from closure.normalization import NORM_RANGES, denormalize


def test_particle_velocity_inverts_hugoniot():
    for up in (300.0, 700.0, 1234.5, 1500.0):
        ps = hugoniot_state(HMX, up, 1e5)["p"]
        assert particle_velocity(ps) == pytest.approx(up, rel=1e-6)  # cubic table


def test_hugoniot_temperature_matches_data_docs():
    # docs/data.md table (beta-HMX Hayes EOS): 492 K at 9.8 GPa, 727 K at 18.0 GPa
    for up, T in ((1000.0, 492.0), (1500.0, 727.0)):
        ps = hugoniot_state(HMX, up, 1e5)["p"]
        assert hugoniot_temperature(ps) == pytest.approx(T, abs=2.0)


def test_envelope_is_loading_range():
    lo, hi = default_envelope()
    u_lo, u_hi = defaults_for("meso")["loading"]["u_p"]
    assert lo == pytest.approx(hugoniot_state(HMX, u_lo, 1e5)["p"])
    assert hi == pytest.approx(hugoniot_state(HMX, u_hi, 1e5)["p"])
    assert 1.9e9 < lo < 2.1e9 and 19.5e9 < hi < 20.5e9  # the documented 2-20 GPa
    # models trained on format-1 data keep their envelope: u_p 0.7-1.5 km/s, PBX 9404 fit
    lo, hi = default_envelope(cfg=PREVIOUS_MESO)
    assert lo == pytest.approx(hugoniot_state(PREVIOUS_HMX, 700.0, 1e5)["p"])
    assert hi == pytest.approx(hugoniot_state(PREVIOUS_HMX, 1500.0, 1e5)["p"])


def test_frame1_shock_state_and_front():
    ps = 10e9
    f = synthetic_frame1(ps, [], (16, 96))
    assert f.shape == (4, 16, 96) and f.dtype == np.float32
    assert np.all(f[3] == 0.0)  # lam: nothing has reacted
    legacy = synthetic_frame1(ps, [], (16, 96), fields=("T", "P", "mu"))
    assert np.array_equal(legacy, f[:3])
    T = denormalize(f[0].astype(float), "T")
    P = denormalize(f[1].astype(float), "P")
    assert P[:, 0] == pytest.approx(ps, rel=1e-5)
    assert T[:, 0] == pytest.approx(float(hugoniot_temperature(ps)), abs=0.05)
    assert P[:, -1] == pytest.approx(1e5, abs=NORM_RANGES["P"][1] * 1e-6)
    assert T[:, -1] == pytest.approx(300.0, abs=0.01)
    # front at (Us - u_p)(t1 - ramp/2)
    up = particle_velocity(ps)
    assert shock_speed(ps) == pytest.approx(hugoniot_state(HMX, float(up), 1e5)["Us"], rel=1e-6)
    t1 = defaults_for("meso")["time"]["frame_dt"]
    x_front = (shock_speed(ps) - up) * (t1 - 0.5e-10)
    half = np.flatnonzero(P[0] < 0.5 * ps)[0]
    assert abs(half - x_front / 62.5e-9) <= 1.0
    assert np.all(f[2] > 0.99)  # no pores


def test_default_bank_has_pbx9501_porosity():
    from conftest import TEST_SEED

    bank = microstructure_bank(6, seed=TEST_SEED % 1000, grid=DEFAULT_GRID)
    H, W = DEFAULT_GRID
    for pores in bank:
        gas = gas_fraction(pores, W, H, 62.5e-9).mean()
        assert 0.005 < gas < 0.0225  # target 1-2 % within half the smallest pore
        assert len(pores) >= 1


def test_frame1_pores_shift_and_bank_is_reproducible():
    cfg = PREVIOUS_MESO  # the shipped model's data config (8 x 12 um patches, 2.5-9.5 %)
    bank = microstructure_bank(3, seed=4, grid=(128, 192), cfg=cfg)
    assert bank == microstructure_bank(3, seed=4, grid=(128, 192), cfg=cfg)
    assert bank[0] != bank[1] and all(len(b) > 0 for b in bank)
    f = synthetic_frame1(8e9, bank[0], (128, 192), cfg=cfg, hmx=cfg["physics"]["hmx"])
    gas = 1.0 - f[2]
    assert 0.01 < gas.mean() < 0.12  # meso porosity range 2.5-9.5 %
    # pores moved toward x_low by u_p * t1
    gas0 = gas_fraction(bank[0], 192, 128, 62.5e-9)
    cx = (gas.sum(0) * np.arange(192)).sum() / gas.sum()
    cx0 = (gas0.sum(0) * np.arange(192)).sum() / gas0.sum()
    up = particle_velocity(8e9, cfg["physics"]["hmx"])
    assert cx0 - cx == pytest.approx(up * 2.5e-10 / 62.5e-9, abs=0.1)
