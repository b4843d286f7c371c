"""closure.query / Closure: behaviour, per-cell state, bad input, table vs online, fuzzing.

Uses a tiny random model (tests/closure_testutil.py) on a 32x48 patch with a 4-step horizon, so
nothing here needs the data sets or the shipped weights (except the one test of the default).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from closure_testutil import make_model_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import closure
from closure import api
from closure.api import Closure
from closure.table import TABLE_FILE, Table, TableError, build_table

ROOT = Path(__file__).resolve().parents[1]
DTM = 2.5e-10
TOL, FLOOR = 0.02, 0.05


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convs: one torch thread is fastest and keeps the shared 2-core box usable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, one_thread) -> Path:
    d = make_model_dir(tmp_path_factory.mktemp("closure_model"), n_t=6)
    c = Closure.load(d, table=False, n_micro=2)
    tab = build_table(c.runner, n_initial=5, tol=TOL, area_floor=FLOOR, max_nodes=17,
                      n_samples=1, n_check=1, progress=False)
    tab.save(d / TABLE_FILE)
    return d


@pytest.fixture()
def clo(model_dir) -> Closure:
    return Closure.load(model_dir)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_table_build_converged(model_dir):
    tab = Table.load(model_dir / TABLE_FILE)
    m = tab.meta
    assert m["converged"], m["refinement_log"]
    assert m["max_heldout_error"] <= TOL
    assert tab.area.shape == (len(tab.nodes), 5) and np.all(np.diff(tab.nodes) > 0)
    assert 0 < tab.area.max() <= 1 and np.all(tab.temperature >= tab.threshold)
    assert np.all(tab.uncertainty >= 0) and tab.uncertainty.max() > 0
    assert tab.envelope == (tab.nodes[0], tab.nodes[-1])
    assert not list(model_dir.glob("*.tmp"))  # atomic write left no temp file


def test_basic_query(clo):
    ids = np.arange(20, dtype=np.int64)
    p = np.linspace(0.0, 14e9, 20)
    r = clo.query(ids, p, 1e-10)
    assert len(r) == 20
    for f in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate", "uncertainty"):
        a = getattr(r, f)
        assert a.dtype == np.float64 and a.shape == (20,) and np.all(np.isfinite(a))
    assert r.status.dtype == np.int32
    cold = p <= clo.p_trigger
    assert np.all(r.status[cold] == api.STATUS_NOT_SHOCKED)
    assert np.all(r.hotspot_area_fraction[cold] == 0) and np.all(r.reaction_rate[cold] == 0)
    assert np.all(r.hotspot_temperature[cold] == clo.runner.threshold)
    assert clo.n_cells == int((~cold).sum())
    lo, hi = clo.envelope
    hot = ~cold
    assert np.all(r.status[hot & (p >= lo) & (p <= hi)] == api.STATUS_OK)
    assert np.all(r.status[hot & (p < lo)] == api.STATUS_OUTSIDE_ENVELOPE)
    assert np.all((r.hotspot_area_fraction >= 0) & (r.hotspot_area_fraction <= 1))
    assert np.all(r.reaction_rate >= 0)


def test_ps_from_rise_and_window(clo):
    ids = np.array([5])
    clo.query(ids, [2e9], 0.5e-10)           # triggers (> 1 GPa)
    clo.query(ids, [9e9], 0.5e-10)           # still inside the 0.25 ns window: Ps rises
    clo.query(ids, [7e9], 1.0e-10)           # lower: max is kept
    assert clo.state_dict()["ps"][0] == 9e9
    clo.query(ids, [12e9], 1.0e-10)          # t = 2.0e-10 < window: still rises
    clo.query(ids, [13e9], 1.0e-10)          # t = 3.0e-10 >= window: frozen
    sd = clo.state_dict()
    assert sd["ps"][0] == 12e9
    np.testing.assert_allclose(sd["t"][0], 4.0e-10, rtol=1e-12)
    np.testing.assert_allclose((sd["steps"][0] + sd["frac"][0]) * DTM, 4.0e-10, rtol=1e-12)


def test_rate_is_positive_growth_of_area(clo, model_dir):
    tab = Table.load(model_dir / TABLE_FILE)
    ids = np.arange(8)
    p = np.linspace(*clo.envelope, 8)
    dt = 0.6e-10
    prev = np.zeros(8)
    seen_growth = seen_fall = False
    for k in range(25):
        r = clo.query(ids, p, dt)
        expect = np.maximum(r.hotspot_area_fraction - prev, 0.0) / dt
        if k > 0:
            np.testing.assert_allclose(r.reaction_rate, expect, rtol=1e-9, atol=1e-6)
        else:  # first call: A(0) of the table at Ps
            a0 = np.array([np.interp(pp, tab.nodes, tab.area[:, 0]) for pp in p])
            np.testing.assert_allclose(r.reaction_rate, np.maximum(
                r.hotspot_area_fraction - a0, 0) / dt, rtol=1e-9, atol=1e-6)
        seen_growth |= bool((r.hotspot_area_fraction > prev + 1e-12).any() and k > 0)
        fell = r.hotspot_area_fraction < prev - 1e-12
        if k > 0 and fell.any():  # a shrinking hot area releases nothing: rate exactly 0
            seen_fall = True
            assert np.all(r.reaction_rate[fell] == 0.0)
        prev = r.hotspot_area_fraction
    assert seen_growth
    # the table's A(t) falls somewhere along these Ps (hotspots quench), so the zero-rate branch
    # above ran
    rows = np.array([[np.interp(pp, tab.nodes, tab.area[:, j]) for j in range(tab.area.shape[1])]
                     for pp in p])
    assert seen_fall == bool((np.diff(rows, axis=1) < -1e-12).any())
    # beyond the horizon (4 steps = 1 ns; now at 1.5 ns): area held, rate 0
    r = clo.query(ids, p, dt)
    np.testing.assert_array_equal(r.hotspot_area_fraction, prev)
    assert np.all(r.reaction_rate == 0)


def test_outside_envelope_uses_edge_and_flags_status(clo):
    lo, hi = clo.envelope
    r = clo.query(np.array([1, 2, 3, 4]), np.array([hi, hi * 1.5, lo, lo * 0.5]), 1e-10)
    np.testing.assert_array_equal(r.status, [0, 2, 0, 2])
    for f in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate"):
        a = getattr(r, f)
        assert a[0] == a[1] and a[2] == a[3]


def test_fractional_accumulation_many_small_steps_equal_one(clo, model_dir):
    c2 = Closure.load(model_dir)
    ids = np.array([10, 11])
    p = np.array([6e9, 11e9])
    for _ in range(10):
        r1 = clo.query(ids, p, 0.7e-10 / 10)
    r2 = c2.query(ids, p, 0.7e-10)
    np.testing.assert_allclose(r1.hotspot_area_fraction, r2.hotspot_area_fraction, rtol=1e-9)
    s = clo.state_dict()
    np.testing.assert_allclose(s["t"], 0.7e-10, rtol=1e-12)
    assert np.all(s["steps"] == 0)
    np.testing.assert_allclose(s["frac"], 0.28, rtol=1e-9)


BAD = [
    (dict(pressure=[1e9, np.nan, 1e9]), ValueError, r"pressure\[1\] = nan"),
    (dict(pressure=[1e9, 1e9, np.inf]), ValueError, r"pressure\[2\] = inf"),
    (dict(pressure=[1e9, -5.0, 1e9]), ValueError, r"pressure\[1\] = -5.0.*>= 0"),
    (dict(pressure=[1e9, 1e9]), ValueError, r"pressure must have shape \(3,\)"),
    (dict(pressure=["a", "b", "c"]), TypeError, r"pressure must be a real float"),
    (dict(dt=-1e-9), ValueError, r"dt = -1e-09.*> 0"),
    (dict(dt=0.0), ValueError, r"dt = 0.0"),
    (dict(dt=[1e-9, 1e-9, 10.0]), ValueError, r"dt\[2\] = 10.0.*\(0, 1\] s"),
    (dict(dt=[1e-9, np.nan, 1e-9]), ValueError, r"dt\[1\] = nan"),
    (dict(dt=[1e-9, 1e-9]), ValueError, r"dt must be a scalar or have shape \(3,\)"),
    (dict(cell_ids=[1.0, 2.0, 3.0]), TypeError, r"cell_ids must be an integer array"),
    (dict(cell_ids=[[1, 2, 3]]), ValueError, r"cell_ids must be 1-D"),
    (dict(cell_ids=[4, 7, 4]), ValueError, r"cell_ids\[2\] = 4 repeats cell_ids\[0\]"),
    (dict(mode="fast"), ValueError, r"mode = 'fast' is unknown"),
    (dict(mode=1), TypeError, r"mode must be a str"),
    (dict(deterministic="yes"), TypeError, r"deterministic must be a bool"),
    (dict(seed=-1), ValueError, r"seed = -1"),
    (dict(seed=1.5), TypeError, r"seed must be an int"),
]


@pytest.mark.parametrize(("override", "exc", "match"), BAD)
def test_bad_input_raises_and_changes_nothing(clo, override, exc, match):
    clo.query(np.array([4, 7, 9]), np.array([3e9, 8e9, 0.0]), 1e-10, mode="online")
    before = clo.state_dict()
    kw = dict(cell_ids=np.array([4, 7, 8]), pressure=np.array([9e9, 9e9, 9e9]), dt=1e-10)
    kw.update(override)
    extra = {k: kw.pop(k) for k in ("mode", "deterministic", "seed") if k in kw}
    with pytest.raises(exc, match=match):
        clo.query(kw["cell_ids"], kw["pressure"], kw["dt"], **extra)
    assert same_state(before, clo.state_dict())


def test_state_round_trip_and_release(clo, model_dir, tmp_path):
    ids = np.array([3, 1, 2, 40])
    p = np.array([6e9, 9e9, 0.5e9, 13e9])
    for mode in ("online", "table", "online"):
        clo.query(ids, p, 0.9e-10, mode=mode, deterministic=False, seed=3)
    sd = clo.state_dict()
    np.savez(tmp_path / "state.npz", **sd)
    c2 = Closure.load(model_dir)
    c2.load_state_dict(dict(np.load(tmp_path / "state.npz")))
    assert same_state(sd, c2.state_dict())
    for mode in ("online", "table"):
        a = clo.query(ids, p, 1.3e-10, mode=mode, deterministic=False, seed=3)
        b = c2.query(ids, p, 1.3e-10, mode=mode, deterministic=False, seed=3)
        for f in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate", "status"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert clo.release(np.array([1, 3, 999])) == 2
    assert set(clo.cell_ids) == {40}
    r = clo.query(np.array([1]), np.array([0.0]), 1e-10)
    assert r.status[0] == api.STATUS_NOT_SHOCKED
    bad = dict(sd)
    bad["ps"] = sd["ps"][:-1]
    before = c2.state_dict()
    with pytest.raises(ValueError, match="ps"):
        c2.load_state_dict(bad)
    assert same_state(before, c2.state_dict())


@pytest.mark.parametrize("mode", ["table", "online"])
def test_per_cell_independence(model_dir, mode):
    ids = np.array([2, 17, 33, 1000])
    p = np.array([6e9, 8e9, 12e9, 14e9])
    together = Closure.load(model_dir)
    # the same batch size with other neighbours (ids and pressures) for the last two cells
    swapped = Closure.load(model_dir)
    ids_b, p_b = np.array([2, 17, 55, 4]), np.array([6e9, 8e9, 3e9, 16e9])
    alone = [Closure.load(model_dir) for _ in ids]
    fields = ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate", "uncertainty",
              "status")
    for dt in (0.5e-10, 2.2e-10, 1.1e-10):
        kw = dict(mode=mode, deterministic=mode == "table", seed=5)
        r = together.query(ids, p, dt, **kw)
        rb = swapped.query(ids_b, p_b, dt, **kw)
        for f in fields:  # the neighbours' values do not enter a cell's answer at all
            np.testing.assert_array_equal(getattr(rb, f)[:2], getattr(r, f)[:2], err_msg=f)
        for i, c in enumerate(alone):
            s = c.query(ids[i:i + 1], p[i:i + 1], dt, **kw)
            # alone vs in a batch of four: PyTorch's CPU convolutions may block a batch of one
            # differently, so float32 sums round differently (relative ~1e-6 after the steps)
            for f in fields:
                np.testing.assert_allclose(getattr(s, f)[0], getattr(r, f)[i], rtol=1e-5,
                                           atol=1e-9, err_msg=f)


@pytest.mark.parametrize("mode", ["table", "online"])
def test_answers_follow_the_ids_in_any_order(model_dir, mode):
    # regression: a later call with the stored cells in another order served the state arrays
    # in storage order (every cell got another cell's Ps, age and status)
    ids = np.array([2, 17, 55, 4, 40])
    p = np.array([6e9, 8e9, 3e9, 16e9, 10e9])
    ref, shuffled = Closure.load(model_dir), Closure.load(model_dir)
    rng = np.random.default_rng(3)
    for dt in (0.5e-10, 2.2e-10, 1.1e-10, 3e-10):
        kw = dict(mode=mode, deterministic=True)
        r = ref.query(ids, p, dt, **kw)
        perm = rng.permutation(ids.size)
        s = shuffled.query(ids[perm], p[perm], dt, **kw)
        # online: a cell's place in the batches moves, and PyTorch's CPU kernels may round a
        # float32 sum differently at another place (relative ~1e-7 seen); table mode is exact
        tol = 0.0 if mode == "table" else 1e-5
        for f in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate",
                  "uncertainty", "status"):
            np.testing.assert_allclose(getattr(s, f), getattr(r, f)[perm], rtol=tol, atol=0,
                                       err_msg=f)


def test_sampling_reproducible_and_seeded(model_dir):
    ids = np.arange(6)
    p = np.full(6, 10e9)
    out = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        c = Closure.load(model_dir)
        out[name] = [c.query(ids, p, 2.5e-10, mode="online", deterministic=False,
                             seed=seed).hotspot_area_fraction for _ in range(3)]
    np.testing.assert_array_equal(np.array(out["a"]), np.array(out["b"]))
    assert not np.array_equal(np.array(out["a"]), np.array(out["c"]))


def test_table_agrees_with_online_on_heldout_points(model_dir):
    """Online cells (one microstructure each) averaged over the bank vs the interpolated table,
    at the held-out midpoints of the refinement, on the meso-step grid."""
    tab = Table.load(model_dir / TABLE_FILE)
    checked = 0
    for rec in tab.meta["refinement_log"]:
        ps = rec["ps"]
        if any(np.isclose(ps, tab.nodes, rtol=1e-12)):
            continue  # became a node
        c = Closure.load(model_dir)
        c_tab = Closure.load(model_dir)  # each query advances a cell: one closure per mode
        from closure.runner import member_of

        ids = np.arange(64)
        mem = member_of(ids, c.runner.n_micro, c.runner.micro_seed)
        ids = np.array([ids[mem == m][0] for m in range(c.runner.n_micro)])
        A_on, A_tab = [], []
        for _ in range(4):
            r_on = c.query(ids, np.full(ids.size, ps), DTM, mode="online")
            r_tab = c_tab.query(ids, np.full(ids.size, ps), DTM, mode="table")
            A_on.append(r_on.hotspot_area_fraction.mean())
            A_tab.append(r_tab.hotspot_area_fraction[0])
        A_on, A_tab = np.array(A_on), np.array(A_tab)
        err = np.abs(A_tab - A_on) / np.maximum(A_on, FLOOR)
        assert err.max() <= TOL + 1e-9, (ps, A_on, A_tab)
        checked += 1
    assert checked >= 1


def test_table_mode_without_table_and_fingerprint(model_dir, tmp_path):
    c = Closure.load(model_dir, table=False)
    with pytest.raises(TableError, match="python -m closure.table build"):
        c.query(np.array([1]), np.array([5e9]), 1e-10)
    r = c.query(np.array([1]), np.array([5e9]), 1e-10, mode="online")
    assert r.status[0] == 0 and r.uncertainty[0] == 0.0
    other = make_model_dir(tmp_path / "other", seed=1, n_t=6)
    (other / TABLE_FILE).write_bytes((model_dir / TABLE_FILE).read_bytes())
    with pytest.raises(TableError, match="weights_sha256"):
        Closure.load(other)


def test_module_level_query_uses_lazy_default(model_dir, monkeypatch):
    monkeypatch.setattr(api, "DEFAULT_MODEL_DIR", model_dir)
    monkeypatch.setattr(api, "_default", None)
    r = closure.query(np.array([1, 2]), np.array([0.0, 7e9]), 1e-10)
    np.testing.assert_array_equal(r.status, [1, 0])
    assert api.default_closure() is api._default and api._default.n_cells == 1
    assert closure.Closure is Closure


def test_package_data_includes_weights():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "weights/**/*" in cfg["tool"]["setuptools"]["package-data"]["closure"]


def test_shipped_default_loads():
    d = api.DEFAULT_MODEL_DIR
    if not (d / "model_card.json").exists():
        pytest.skip("shipped weights closure/weights/default are not installed yet")
    c = Closure.load()
    card = json.loads((d / "model_card.json").read_text())
    assert card["kind"] == "latent" and c.runner.grid == (128, 192)
    assert c.table is not None, "closure/weights/default/closure_table.h5 is missing"
    assert c.table.meta["max_heldout_error"] < 0.2
    r = c.query(np.arange(4), np.array([0.0, 6e9, 10e9, 14e9]), 1e-10)
    np.testing.assert_array_equal(r.status, [1, 0, 0, 0])
    assert np.all(np.isfinite(r.hotspot_area_fraction))
    # the shipped model predicts hotspots: the area fraction grows with Ps at the horizon
    t_end = c.table.horizon_time
    a = [c.table.lookup(np.array([p]), np.array([t_end]), np.array([t_end]),
                        np.ones(1, np.uint8))[0][0] for p in (6e9, 10e9, 14e9)]
    assert 0.0 < a[0] < a[1] < a[2] < 1.0


def test_shipped_table_meets_the_one_percent_tolerance():
    """The shipped table's build converged, and it holds at pressures it never saw (neither nodes
    nor the build's midpoints): interpolation within 1% of the online model there too."""
    from closure.table import evaluate_many, heldout_error

    if not (api.DEFAULT_MODEL_DIR / "model_card.json").exists():
        pytest.skip("shipped weights closure/weights/default are not installed yet")
    c = Closure.load()
    tab = c.table
    assert tab.meta["converged"] and tab.meta["max_heldout_error"] <= tab.meta["tol"] == 0.01
    lo, hi = c.envelope
    ps = np.random.default_rng(2026).uniform(lo, hi, 3)
    online = evaluate_many(c.runner, ps)
    for i, p in enumerate(ps):
        a_int, t_int = tab.rows_at(p)
        err = heldout_error(a_int, t_int, online["A"][i].mean(0), online["T"][i].mean(0),
                            tab.meta["area_floor"])
        assert err <= 0.01, (p, err)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_only_documented_errors(clo, data):
    n = data.draw(st.integers(0, 6))
    ids = data.draw(st.lists(st.integers(-5, 30), min_size=n, max_size=n))
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    pres = data.draw(st.lists(st.one_of(floats, st.floats(0, 3e10)), min_size=n, max_size=n))
    if data.draw(st.booleans()):
        pres = pres[:max(n - 1, 0)]
    dt = data.draw(st.one_of(floats, st.floats(1e-13, 1e-9),
                             st.lists(st.floats(1e-13, 1e-9), min_size=n, max_size=n)))
    mode = data.draw(st.sampled_from(["table", "table", "online", "bogus"]))
    det = data.draw(st.booleans())
    before = clo.state_dict()
    try:
        r = clo.query(np.array(ids, dtype=np.int64), np.array(pres, dtype=np.float64), dt,
                      mode=mode, deterministic=det)
    except (ValueError, TypeError) as exc:
        # the message names the argument (and, for values, the index and value)
        msg = str(exc)
        assert re.match(r"(cell_ids|pressure|dt|mode|deterministic|seed)\b", msg) or \
            re.search(r"\b(cell_ids|pressure|dt|mode)(\[\d+\])?\b", msg), msg
        assert same_state(before, clo.state_dict())
        return
    for f in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate", "uncertainty"):
        a = getattr(r, f)
        assert a.shape == (n,) and np.all(np.isfinite(a))
    assert np.all(np.isin(r.status, [0, 1, 2]))
    for k, v in clo.state_dict().items():
        if v.dtype.kind in "fi":
            assert np.all(np.isfinite(v)), k


@pytest.fixture(scope="module")
def bookkeeping_closures(model_dir) -> tuple[Closure, Closure, Closure]:
    return Closure.load(model_dir), Closure.load(model_dir), Closure.load(model_dir)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_state_bookkeeping_against_cells_queried_one_by_one(bookkeeping_closures, data):
    """Random sequences of batched queries (ids in any order, subsets, new and known cells),
    releases and checkpoint/restore on one Closure answer exactly (table mode: float64, no
    batch coupling) what a second Closure gives when each cell is queried on its own."""
    main, spare, ref = bookkeeping_closures
    everyone = np.arange(10, dtype=np.int64)
    for c in bookkeeping_closures:
        c.release(everyone)
    ids_st = st.lists(st.integers(0, 9), min_size=1, max_size=10, unique=True)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["query", "query", "steady", "release", "checkpoint"]))
        if op == "release":
            ids = np.array(data.draw(ids_st), np.int64)
            assert main.release(ids) == ref.release(ids)
        elif op == "checkpoint":  # restore into another Closure and carry on with that one
            spare.load_state_dict(main.state_dict())
            main, spare = spare, main
        else:
            ids = np.array(data.draw(ids_st), np.int64)
            stored = main.state_dict()["ids"]
            if op == "steady" and stored.size:  # a hydrocode's steady state: the stored cells
                ids = stored[np.array(data.draw(st.permutations(range(stored.size))))]
            n = ids.size
            p = np.array(data.draw(st.lists(st.floats(0.0, 2.5e10), min_size=n, max_size=n)))
            dt = data.draw(st.one_of(
                st.floats(1e-12, 1e-9),
                st.lists(st.floats(1e-12, 1e-9), min_size=n, max_size=n).map(np.array)))
            r = main.query(ids, p, dt, mode="table")
            for i in range(n):
                d_i = dt[i:i + 1] if isinstance(dt, np.ndarray) else dt
                s = ref.query(ids[i:i + 1], p[i:i + 1], d_i, mode="table")
                for f in ("hotspot_area_fraction", "hotspot_temperature", "reaction_rate",
                          "uncertainty", "status"):
                    assert getattr(s, f)[0] == getattr(r, f)[i], (f, int(ids[i]))
        assert same_state(main.state_dict(), ref.state_dict())


def test_table_cli_build_and_show(tmp_path, capsys):
    from closure.cli import main

    d = make_model_dir(tmp_path / "m", n_t=4)
    assert main(["table", "build", str(d), "--n-initial", "3", "--max-nodes", "3", "--n-micro",
                 "2", "--n-samples", "1", "--threads", "1"]) == 0
    tab = Table.load(d / TABLE_FILE)
    assert len(tab.nodes) == 3 and tab.area.shape == (3, 3)
    assert tab.meta["fingerprint"]["n_micro"] == 2
    c = Closure.load(d)  # bank size taken from the table
    assert c.runner.n_micro == 2 and c.table is not None
    assert main(["table", "show", str(d / TABLE_FILE)]) == 0
    assert "3 Ps nodes" in capsys.readouterr().out


def test_diverged_model_raises_floating_point_error_without_state_change(tmp_path):
    d = make_model_dir(tmp_path / "m", n_t=4)
    c = Closure.load(d, table=False)
    c.query(np.array([1]), np.array([8e9]), 1e-10, mode="online")
    before = c.state_dict()
    with torch.no_grad():  # decoded T overflows float32 from here on
        c.runner.vae_T.dec_out.bias.fill_(1e38)
    with pytest.raises(FloatingPointError, match="cell 2"):
        c.query(np.array([1, 2]), np.array([8e9, 9e9]), 1e-10, mode="online")
    assert same_state(before, c.state_dict())


@pytest.mark.skipif("cuda" not in closure.kernels.available_backends(),
                    reason="no GPU (or closure._kernels_cuda not built)")
def test_online_on_the_gpu_agrees_with_the_cpp_path(model_dir):
    ids = np.arange(40, dtype=np.int64) * 7
    p = np.linspace(3e9, 18e9, 40)
    n = None
    for det in (True, False):  # sampled: the counter-based RNG gives the same draws on both
        gpu, cpu = Closure.load(model_dir, backend="cuda"), Closure.load(model_dir, backend="cpp")
        n = int(np.prod(gpu.runner.grid))
        for dt in (0.7e-10, 2.5e-10, 1.3e-10, 4e-10):
            kw = dict(mode="online", deterministic=det, seed=3)
            a, b = gpu.query(ids, p, dt, **kw), cpu.query(ids, p, dt, **kw)
            np.testing.assert_array_equal(a.status, b.status)
            # hotspot pixels within float32 round-off of the threshold may flip
            np.testing.assert_allclose(a.hotspot_area_fraction, b.hotspot_area_fraction,
                                       rtol=0, atol=3.0 / n)
            np.testing.assert_allclose(a.reaction_rate, b.reaction_rate, rtol=0,
                                       atol=6.0 / n / dt)
            np.testing.assert_allclose(a.hotspot_temperature, b.hotspot_temperature, rtol=1e-4)
            np.testing.assert_allclose(a.uncertainty, b.uncertainty, rtol=1e-12, atol=1e-15)
        assert gpu.n_cells == cpu.n_cells == ids.size


@pytest.mark.parametrize("backend", ["cpp", "torch"])
def test_runner_writes_into_given_arrays_in_place(model_dir, backend):
    # large online batches encode and step in the call's own token arrays (no second copy);
    # the result must equal the allocating path, also when ``out`` is the input itself
    run = Closure.load(model_dir, table=False, backend=backend).runner
    run.chunk = run.step_chunk = 3  # several chunks, the last one short
    ps = np.array([4e9, 7e9, 9e9, 12e9, 15e9, 6e9, 11e9])
    members = np.arange(ps.size) % run.n_micro
    m0, v0 = run.encode(ps, members)
    om, ov = torch.full_like(m0, np.nan), torch.full_like(v0, np.nan)
    got = run.encode(ps, members, out=(om, ov))
    assert got[0] is om and got[1] is ov
    assert torch.equal(om, m0) and torch.equal(ov, v0)
    m1, v1 = run.step(m0, v0)
    run.step(om, ov, out=(om, ov))
    assert torch.equal(om, m1) and torch.equal(ov, v1)


def test_one_backend_object_per_closure_resolved_at_load(model_dir, monkeypatch):
    """The backend is resolved once at load and shared by the runner and the table; a table set
    later runs on it too; a bad name fails at load, not at the first query."""
    c = Closure.load(model_dir, backend="torch")
    assert c.backend.name == "torch" and c.runner.backend is c.backend
    assert c.table.backend is c.backend
    monkeypatch.setenv(closure.kernels.ENV_VAR, "bogus")  # read at load only
    c.query(np.array([3]), np.array([8e9]), 1e-10)
    tab = Table.load(model_dir / TABLE_FILE)
    c.table = tab
    assert c.table.backend is c.backend and tab.backend is None  # a copy: the caller's is kept
    assert c.table.area is tab.area
    with pytest.raises(ValueError, match=r"\$CLOSURE_KERNELS = 'bogus'"):
        Closure.load(model_dir)
    with pytest.raises(ValueError, match="backend = 'fortran'"):
        Closure.load(model_dir, backend="fortran")
