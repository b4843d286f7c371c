"""Hotspot metrics and normalization against hand-computed values."""

import json

import numpy as np
import pytest

from closure.metrics import (
    evaluate_rollout,
    field_rmse,
    hotspot_area,
    hotspot_stats,
    hotspot_temperature,
    rmse,
    time_rate,
)
from closure.normalization import (
    HOTSPOT_THRESHOLD_K,
    NORM_RANGES,
    check_channels,
    check_norm_ranges,
    denormalize,
    normalize,
    parse_norm_ranges,
)


def _fields(T_frames):
    """(1, n_t, 3, H, W) normalized fields whose T channel holds ``T_frames`` (K)."""
    T = np.asarray(T_frames, dtype=np.float64)
    f = np.zeros((1, T.shape[0], 3, *T.shape[1:]))
    f[0, :, 0] = normalize(T, "T")
    return f


def test_normalization_ranges_and_roundtrip():
    assert NORM_RANGES["T"] == (300.0, 5000.0)
    assert NORM_RANGES["P"] == (-2.0e9, 50.0e9)
    assert HOTSPOT_THRESHOLD_K == 875.0
    assert normalize(300.0, "T") == 0.0 and normalize(5000.0, "T") == 1.0
    assert normalize(-2.0e9, "P") == 0.0 and normalize(50.0e9, "P") == 1.0
    x = np.array([-3.0e9, 0.0, 60.0e9])   # out of range is kept, not clipped
    assert np.allclose(denormalize(normalize(x, "P"), "P"), x)
    assert normalize(-3.0e9, "P") < 0


def test_norm_range_checks():
    assert check_norm_ranges(json.dumps({k: list(v) for k, v in NORM_RANGES.items()}))
    assert parse_norm_ranges([[300, 5000], [-2e9, 50e9], [0, 1]])["P"] == (-2e9, 50e9)
    bad = {"T": [300, 4000], "P": [-2e9, 50e9], "mu": [0, 1]}
    with pytest.raises(ValueError, match=r"range of 'T' is \[300.0, 4000.0\]"):
        check_norm_ranges(bad, where="x.h5")
    with pytest.raises(ValueError, match="'mu' is missing"):
        check_norm_ranges({"T": [300, 5000], "P": [-2e9, 50e9]})
    check_channels('["T", "P", "mu"]')
    with pytest.raises(ValueError, match="channels are"):
        check_channels(["P", "T", "mu"])


def test_hotspot_area_and_temperature_by_hand():
    T = np.array([[300.0, 900.0], [1000.0, 875.0]])
    # 875 is not > 875: two hot cells, mean 950 K
    assert hotspot_area(T, cell_area=4.0) == pytest.approx(8.0)
    assert hotspot_temperature(T) == pytest.approx(950.0)
    # threshold 850 K takes the 875 K cell too
    assert hotspot_area(T, 4.0, threshold=850.0) == pytest.approx(12.0)
    assert hotspot_temperature(T, 850.0) == pytest.approx((900 + 1000 + 875) / 3)
    # no hotspot: T_hs is the threshold (continuity), area 0
    cold = np.full((2, 2), 500.0)
    assert hotspot_area(cold, 1.0) == 0.0
    assert hotspot_temperature(cold) == 875.0
    assert hotspot_temperature(cold, 850.0) == 850.0


def test_hotspot_stats_rates_by_hand():
    frames = [[[300.0, 300.0], [300.0, 300.0]],
              [[1000.0, 300.0], [300.0, 300.0]],
              [[1000.0, 1200.0], [300.0, 300.0]]]
    dx, dy, dt = 2.0e-6, 3.0e-6, 1.0e-9
    s = hotspot_stats(_fields(frames), dx, dt, dy=dy)
    a = dx * dy
    assert np.allclose(s["A_hs"], [[0.0, a, 2 * a]])
    assert np.allclose(s["T_hs"], [[875.0, 1000.0, 1100.0]])
    assert np.allclose(s["dA_hs_dt"], [[a / dt, a / dt]])
    assert np.allclose(s["dT_hs_dt"], [[125.0 / dt, 100.0 / dt]])
    assert np.allclose(time_rate(np.array([[1.0, 4.0]]), 0.5), [[6.0]])


def test_evaluate_rollout_by_hand():
    true = _fields([[[300.0, 300.0]] * 2, [[1000.0, 300.0]] * 2, [[1000.0, 300.0]] * 2])
    pred = _fields([[[300.0, 300.0]] * 2, [[1000.0, 1000.0]] * 2, [[1000.0, 300.0]] * 2])
    dx, dt = 1.0, 1.0
    m = evaluate_rollout(pred, true, dx, dt)
    # A_hs true [0, 2, 2], pred [0, 4, 2]; frames t >= 1: errors 2, 0 -> rmse sqrt(2)
    assert m["rmse_A_hs"] == pytest.approx(np.sqrt(2.0))
    assert m["rmse_T_hs"] == pytest.approx(0.0)
    # rates true [2, 0], pred [4, -2] -> errors 2, -2 -> rmse 2
    assert m["rmse_dA_hs_dt"] == pytest.approx(2.0)
    # field T: one frame (t=1) has 2 of 4 cells off by 700/4700
    d = 700.0 / 4700.0
    assert m["rmse_field_T"] == pytest.approx(np.sqrt(2 * d**2 / 8))
    assert m["rmse_field_P"] == 0.0
    assert m["mean_true_A_hs"] == pytest.approx(2.0)
    # t_start=0 counts the initial frame too
    assert evaluate_rollout(pred, true, dx, dt, t_start=0)["rmse_A_hs"] == pytest.approx(
        np.sqrt(4.0 / 3.0))


def test_rmse_helpers_and_errors():
    assert rmse([1.0, 3.0], [1.0, 1.0]) == pytest.approx(np.sqrt(2.0))
    f = field_rmse(np.ones((1, 1, 3, 2, 2)), np.zeros((1, 1, 3, 2, 2)))
    assert f == {"T": 1.0, "P": 1.0, "mu": 1.0, "mean": 1.0}
    with pytest.raises(ValueError, match="shape"):
        rmse(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="dt must be > 0"):
        time_rate(np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError, match=r"\(N, n_t, C, H, W\)"):
        hotspot_stats(np.zeros((2, 3, 4)), 1.0, 1.0)
