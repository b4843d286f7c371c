"""macro.vmath: the kernels' deterministic exp/log/pow against libm (via NumPy) on fresh random
inputs, special values, and the same bits from a vectorised loop as from scalar calls."""

import numba as nb
import numpy as np
import pytest

from macro.vmath import exp as vexp
from macro.vmath import log as vlog
from macro.vmath import pow_pos


@nb.njit(error_model="numpy")
def _exp_loop(x, out):
    for i in range(x.size):
        out[i] = vexp(x[i])


@nb.njit(error_model="numpy")
def _log_loop(x, out):
    for i in range(x.size):
        out[i] = vlog(x[i])


@nb.njit(error_model="numpy")
def _pow_loop(x, a, out):
    for i in range(x.size):
        out[i] = pow_pos(x[i], a)


@nb.njit(error_model="numpy")
def _exp_one(x):
    return vexp(x)


def _ulp(got, ref):
    return np.abs(got - ref) / np.spacing(np.abs(ref))


def _run(f, x, *a):
    out = np.empty_like(x)
    f(x, *a, out)
    return out


@pytest.fixture
def rng():
    seed = np.random.SeedSequence().entropy
    print("seed", seed)  # shown on failure
    return np.random.default_rng(seed)


def test_exp_within_2_ulp(rng):
    x = np.concatenate([rng.uniform(-708.0, 709.7, 20000), rng.normal(0.0, 1.0, 20000),
                        rng.uniform(-1e-10, 1e-10, 1000)])
    assert _ulp(_run(_exp_loop, x), np.exp(x)).max() <= 2.0


def test_log_within_2_ulp(rng):
    x = np.concatenate([np.exp(rng.uniform(-740.0, 709.0, 20000)), rng.uniform(0.5, 2.0, 20000),
                        1.0 + rng.uniform(-1e-9, 1e-9, 1000)])
    x = x[x != 1.0]
    assert _ulp(_run(_log_loop, x), np.log(x)).max() <= 2.0


def test_pow_pos_relative_error(rng):
    # the Hayes isotherm's use: (rho/rho0)^(N-1), compression up to 3x, N - 1 up to 12
    for a in (rng.uniform(1.0, 12.0), 0.5, -1.0 / 1.4):
        x = rng.uniform(1.0, 3.0, 20000)
        ref = x ** a
        err = _ulp(_run(_pow_loop, x, a), ref)
        assert err.max() <= 2.0 + 3.0 * np.abs(a * np.log(x)).max(), (a, err.max())


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 709.79, 1000.0, -708.4, -1000.0, 0.0])
    got = _run(_exp_loop, x)
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0.0
    assert got[3] == np.inf and got[4] == np.inf
    assert got[5] == 0.0 and got[6] == 0.0 and got[7] == 1.0
    x = np.array([np.nan, -1.0, 0.0, np.inf, 5e-324, 1e-310, 1.0])
    got = _run(_log_loop, x)
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == -np.inf and got[3] == np.inf
    assert _ulp(got[4:6], np.log(x[4:6])).max() <= 2.0  # subnormals
    assert got[6] == 0.0
    assert np.isnan(_run(_pow_loop, np.array([np.nan]), 2.5)[0])


def test_vectorised_loop_equals_scalar_calls(rng):
    """The same bits whichever way the compiler lays the loop out (a remainder loop runs the
    scalar code)."""
    x = rng.uniform(-50.0, 50.0, 1003)
    vec = _run(_exp_loop, x)
    one = np.array([_exp_one(v) for v in x])
    assert np.array_equal(vec, one)
