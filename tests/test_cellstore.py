"""Invariants of the per-cell store (macro/cellstore.py), against a dict model, with hypothesis."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macro.cellstore import CellStore

FIELDS = {"x": np.float64, "n": np.int64, "flag": np.bool_, "tok": (np.float32, (2, 3))}

id_lists = st.lists(st.integers(-2**63, 2**63 - 1), max_size=12, unique=True)
ops = st.lists(st.one_of(
    st.tuples(st.just("insert"), id_lists),
    st.tuples(st.just("replace"), id_lists),
    st.tuples(st.just("release"), st.lists(st.integers(-2**63, 2**63 - 1), max_size=8)),
    st.tuples(st.just("reset"), id_lists),
), max_size=12)


def _values(ids: list[int], salt: int) -> dict[str, np.ndarray]:
    a = np.asarray(ids, np.int64)
    h = (a % 1000003).astype(np.float64) + salt
    return {"x": h * 0.5, "n": a ^ salt, "flag": (a + salt) % 2 == 0,
            "tok": np.broadcast_to(h[:, None, None], (a.size, 2, 3)).astype(np.float32)}


def _check(store: CellStore, model: dict[int, dict]) -> None:
    ids = store.ids
    assert ids.dtype == np.int64
    assert np.all(ids[1:] > ids[:-1]), "ids sorted and unique"
    assert sorted(model) == ids.tolist()
    for k in store.names:
        assert store[k].shape[0] == ids.size
    q = np.asarray(list(model), np.int64)
    pos, found = store.lookup(q)
    assert found.all()
    assert np.array_equal(ids[pos], q)
    for k in store.names:
        for j, i in enumerate(q.tolist()):
            assert np.array_equal(store[k][pos[j]], model[i][k])


@settings(max_examples=150, deadline=None)
@given(ops)
def test_store_follows_a_dict_model(sequence):
    store, model = CellStore(FIELDS), {}
    for salt, (op, ids) in enumerate(sequence):
        vals = _values(ids, salt)
        rows = [{k: v[j] for k, v in vals.items()} for j in range(len(ids))]
        if op == "insert":
            clash = [i for i in ids if i in model]
            if clash:
                with pytest.raises(ValueError, match="already stored"):
                    store.insert(ids, **vals)
            else:
                store.insert(ids, **vals)
                model.update(zip(ids, rows, strict=True))
        elif op == "replace":
            store.insert(ids, replace=True, **vals)
            model.update(zip(ids, rows, strict=True))
        elif op == "reset":
            store.reset(ids, **vals)
            model = dict(zip(ids, rows, strict=True))
        else:
            gone = store.release(ids)
            assert gone == len(set(ids) & set(model))
            for i in ids:
                model.pop(i, None)
        _check(store, model)
    # absent ids are not found, and their positions are valid indexes all the same
    absent = np.array([i for i in (-5, 0, 7, 2**62) if i not in model], np.int64)
    pos, found = store.lookup(absent)
    assert not found.any() and np.all((pos >= 0) & (pos < max(len(store), 1)))
    # state round trip, into a fresh store, bitwise
    sd = store.state_dict()
    assert list(sd) == ["ids", *FIELDS]
    back = CellStore(FIELDS)
    back.load_state_dict(sd)
    for k, v in back.state_dict().items():
        assert v.dtype == sd[k].dtype and v.tobytes() == sd[k].tobytes()
    sd["ids"][:] = 0 if sd["ids"].size else sd["ids"]  # a copy: the store is not changed
    _check(store, model)


@given(st.lists(st.integers(-100, 100), min_size=2, max_size=10))
def test_lookup_matches_only_the_stored_order(ids):
    ids = sorted(set(ids))
    store = CellStore({"x": np.float64})
    store.insert(ids, x=np.zeros(len(ids)))
    a = np.asarray(ids, np.int64)
    assert store.matches(a)
    assert not store.matches(a[::-1]) or a.size < 2
    assert not store.matches(a[:-1])


@pytest.mark.parametrize(("call", "match"), [
    (lambda s: s.insert([1.0, 2.0], x=[0.0, 0.0]), r"ids must be an integer array"),
    (lambda s: s.insert([[1, 2]], x=[[0.0, 0.0]]), r"ids must be 1-D"),
    (lambda s: s.insert([4, 7, 4], x=[0.0, 0.0, 0.0]), r"ids\[2\] = 4 repeats ids\[0\]"),
    (lambda s: s.insert([3], x=[0.0]), r"ids\[0\] = 3 is already stored"),
    (lambda s: s.insert([9], y=[0.0]), r"values: .*missing \['x'\], unknown \['y'\]"),
    (lambda s: s.insert([9, 10], x=[0.0]), r"x must have shape \(2,\)"),
    (lambda s: s.insert(np.array([2**63], np.uint64), x=[0.0]), r"ids\[0\] = .* int64"),
    (lambda s: s.release(["a"]), r"ids must be an integer array"),
    (lambda s: s.lookup([0.5]), r"ids must be an integer array"),
    (lambda s: s.assign(x=np.zeros(5)), r"x must be float64 of shape \(2,\)"),
    (lambda s: s.update(np.array([0]), z=1.0), r"unknown field 'z'"),
])
def test_bad_input_raises_value_error_naming_the_argument_and_changes_nothing(call, match):
    store = CellStore({"x": np.float64})
    store.insert([3, 5], x=[1.0, 2.0])
    before = store.state_dict()
    with pytest.raises(ValueError, match=match):
        call(store)
    after = store.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_releasing_unknown_ids_is_not_an_error():
    store = CellStore({"x": np.float64})
    store.insert([3, 5], x=[1.0, 2.0])
    assert store.release([4, 6, 5, 5]) == 1
    assert store.ids.tolist() == [3]


@pytest.mark.parametrize(("bad", "match"), [
    ({"ids": np.array([2, 1]), "x": np.zeros(2)}, r"sd\['ids'\] must be strictly increasing"),
    ({"ids": np.array([1.0]), "x": np.zeros(1)}, r"sd\['ids'\] must be an integer array"),
    ({"ids": np.array([1, 2]), "x": np.zeros(3)}, r"sd\['x'\] must be float64 of shape \(2,\)"),
    ({"ids": np.array([1]), "x": np.array(["a"])}, r"sd\['x'\]"),
    ({"ids": np.array([1])}, r"sd is missing key 'x'"),
])
def test_bad_state_dict_raises_and_changes_nothing(bad, match):
    store = CellStore({"x": np.float64})
    store.insert([3], x=[1.0])
    with pytest.raises(ValueError, match=match):
        store.load_state_dict(bad, where="sd")
    assert store.ids.tolist() == [3] and store["x"].tolist() == [1.0]


def test_prefixed_state_and_reset_keeps_sorted_arrays_without_copy():
    store = CellStore({"x": np.float64})
    x = np.array([1.0, 2.0, 3.0])
    store.reset(np.array([1, 4, 9]), x=x)
    assert store["x"] is x  # handed over, as documented
    store.reset(np.array([9, 1]), x=np.array([5.0, 6.0]))
    assert store.ids.tolist() == [1, 9] and store["x"].tolist() == [6.0, 5.0]
    other = CellStore({"x": np.float64})
    other.load_state_dict({f"tok_{k}": v for k, v in store.state_dict().items()}, prefix="tok_")
    assert other.ids.tolist() == [1, 9] and other["x"].tolist() == [6.0, 5.0]


def test_importing_the_store_does_not_import_the_solver():
    """``macro/__init__`` imports its names lazily: the store comes without Numba."""
    code = ("import sys, macro.cellstore; "
            "bad = [m for m in sys.modules if m == 'numba' or m.startswith('numba.') or "
            "m.startswith('macro.') and m != 'macro.cellstore']; print(bad); "
            "import macro; assert macro.shock_tube and macro.Simulation and macro.eos.IdealGas")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
