"""Per-family auto dispatch (closure/kernels/calibrate.py): the choice logic on stubbed timings,
the per-machine cache, and the runner taking the chosen implementation per family."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from closure import kernels
from closure.kernels import calibrate

needs_cpp = pytest.mark.skipif(kernels._module("cpp") is None,
                               reason="closure._kernels_cpp not built")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory and an empty in-process memo."""
    monkeypatch.setenv(calibrate.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(calibrate.DISPATCH_ENV, raising=False)
    monkeypatch.setattr(calibrate, "_memo", {})
    return tmp_path / calibrate.CACHE_NAME


class FakeClock:
    """A timer that each candidate advances by its stubbed duration."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def work(self, seconds):
        def fn():
            self.t += seconds.pop(0) if isinstance(seconds, list) else seconds
        return fn


def test_choose_takes_the_fastest_and_prefers_cpp_on_ties():
    assert calibrate.choose({"cpp": 2.0, "torch": 1.0}) == "torch"
    assert calibrate.choose({"cpp": 1.0, "torch": 2.0}) == "cpp"
    assert calibrate.choose({"torch": 1.0, "cpp": 1.0}) == "cpp"


def test_measure_is_the_minimum_after_an_untimed_warm_up():
    clock = FakeClock()
    # first call of each (warm-up: slow first-call set-up) is not timed; then a disturbed one
    fns = {"cpp": clock.work([50.0, 1.0, 3.0, 1.2]), "torch": clock.work([80.0, 2.0, 2.1, 9.0])}
    assert calibrate.measure(fns, repeats=3, timer=clock) == {"cpp": 1.0, "torch": 2.0}


def test_resolve_measures_once_then_uses_the_cache(cache, monkeypatch):
    timings = [{"cpp": 2.0, "torch": 1.0}]
    monkeypatch.setattr(calibrate, "measure", lambda fns: timings.pop(0))  # fails when empty

    def bench():
        return {"cpp": lambda: None, "torch": lambda: None}

    rec = calibrate.resolve("k1", "avx2", bench)
    assert rec["choice"] == "torch" and rec["source"] == "measured"
    assert rec["seconds"] == {"cpp": 2.0, "torch": 1.0}
    # the same process: the memo; a new process: the file
    assert calibrate.resolve("k1", "avx2", bench)["choice"] == "torch"
    calibrate._memo.clear()
    rec = calibrate.resolve("k1", "avx2", bench)
    assert rec["source"] == "cached" and rec["choice"] == "torch"
    assert json.loads(cache.read_text())["entries"]["k1"]["choice"] == "torch"
    # measured again on request
    timings.append({"cpp": 1.0, "torch": 3.0})
    rec = calibrate.resolve("k1", "avx2", bench, refresh=True)
    assert rec["choice"] == "cpp" and rec["source"] == "measured"
    # another key (another ISA, model, thread count...) is measured on its own
    timings.append({"cpp": 1.0, "torch": 0.5})
    assert calibrate.resolve("k2", "avx2", bench)["choice"] == "torch"
    entries = json.loads(cache.read_text())["entries"]
    assert {k: v["choice"] for k, v in entries.items()} == {"k1": "cpp", "k2": "torch"}


def test_unreadable_cache_is_measured_again_and_replaced(cache, monkeypatch):
    cache.write_text("{ not json")
    monkeypatch.setattr(calibrate, "measure", lambda fns: {"cpp": 1.0, "torch": 2.0})
    rec = calibrate.resolve("k", "portable", lambda: {"cpp": None, "torch": None})
    assert rec["choice"] == "cpp" and rec["source"] == "measured"
    assert json.loads(cache.read_text())["format"] == calibrate._FORMAT


def test_rules_mode_measures_nothing(cache, monkeypatch):
    monkeypatch.setenv(calibrate.DISPATCH_ENV, "rules")

    def bench():
        raise AssertionError("rules mode must not measure")

    assert calibrate.resolve("k", "avx512", bench)["choice"] == "cpp"
    assert calibrate.resolve("k", "avx2", bench)["choice"] == "cpp"
    assert calibrate.resolve("k", "portable", bench)["choice"] == "torch"
    assert not cache.exists()


def test_key_names_machine_isa_threads_and_model():
    k = calibrate.family_key("decode", "avx2", "2/2", "abc")
    assert k.startswith("decode|") and "isa=avx2" in k and "threads=2/2" in k
    assert calibrate.cpu_model() in k and "model=abc" in k and torch.__version__ in k
    assert k != calibrate.family_key("decode", "avx512", "2/2", "abc")


def test_shape_hash_follows_shapes_not_values():
    a, b = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3)
    assert calibrate.shape_hash(a) == calibrate.shape_hash(b)
    assert calibrate.shape_hash(a) != calibrate.shape_hash(torch.nn.Conv2d(3, 5, 3))
    assert calibrate.shape_hash(a, extra=1) != calibrate.shape_hash(a, extra=2)


def test_named_backends_are_never_calibrated(cache):
    def bench():
        raise AssertionError("a named backend must not measure")

    for name in kernels.available_backends():
        rec = kernels.Backend(name).family_choice("unet", "m", bench)
        assert rec["choice"] == name and rec["source"] == "explicit"


@needs_cpp
@pytest.mark.parametrize("faster", ["cpp", "torch"])
def test_runner_runs_each_family_on_the_faster_path(faster, cache, tmp_path, monkeypatch):
    """With stubbed timings, the auto runner runs the U-Nets and the decode on the path that
    timed faster, and the results agree with the explicit backends."""
    from closure_testutil import make_model_dir

    from closure.api import Closure

    if kernels.Backend().name != "cpp":
        pytest.skip(f"auto is {kernels.Backend().name} here, not cpp")
    seen = {"unet": [], "decode": []}
    slow = "torch" if faster == "cpp" else "cpp"
    monkeypatch.setattr(calibrate, "measure",
                        lambda fns: (seen.setdefault("bench", list(fns)),
                                     {faster: 1.0, slow: 2.0})[1])
    unet, decode = kernels.unet_forward, kernels.decode_hotspots

    def unet_spy(*a, **kw):
        seen["unet"].append("cpp")
        return unet(*a, **kw)

    def decode_spy(*a, backend=None, **kw):
        seen["decode"].append(kernels.as_backend(backend).name)
        return decode(*a, backend=backend, **kw)

    monkeypatch.setattr(kernels, "unet_forward", unet_spy)
    monkeypatch.setattr(kernels, "decode_hotspots", decode_spy)
    d = make_model_dir(tmp_path / "m", n_t=5)
    c = Closure.load(d, table=False)
    assert {f: r["choice"] for f, r in c.runner.kernel_choices().items()} == {
        "unet": faster, "decode": faster}
    assert seen["bench"] == ["cpp", "torch"]
    ids, p = np.arange(3), np.full(3, 9e9)
    c.query(ids, p, 1e-11, mode="online")
    r = c.query(ids, p, c.runner.dt_meso, mode="online")
    assert (len(seen["unet"]) > 0) == (faster == "cpp")
    assert set(seen["decode"]) == {faster}
    ref = Closure.load(d, table=False, backend=faster)
    ref.query(ids, p, 1e-11, mode="online")
    r2 = ref.query(ids, p, ref.runner.dt_meso, mode="online")
    np.testing.assert_allclose(r.hotspot_area_fraction, r2.hotspot_area_fraction, atol=1e-6)


@needs_cpp
def test_choice_follows_the_isa_path(cache, tmp_path, monkeypatch):
    """A calibration holds for one instruction-set path: switching paths measures again."""
    from closure_testutil import make_model_dir

    from closure import _kernels_cpp as cpp
    from closure.api import Closure

    if kernels.Backend().name != "cpp" or len(cpp.isa_supported()) < 2:
        pytest.skip("needs auto = cpp and two instruction-set paths")
    n = []
    monkeypatch.setattr(calibrate, "measure",
                        lambda fns: (n.append(1), {"cpp": 1.0, "torch": 2.0})[1])
    runner = Closure.load(make_model_dir(tmp_path / "m", n_t=5), table=False).runner
    was = cpp.isa_active()
    try:
        for isa in cpp.isa_supported():
            cpp.set_isa(isa)
            runner.kernel_choice("decode")
            runner.kernel_choice("decode")
    finally:
        cpp.set_isa(was)
    assert len(n) == len(cpp.isa_supported())
    with pytest.raises(ValueError, match="not one of"):
        runner.kernel_choice("encoder")


@needs_cpp
def test_calibration_times_the_real_work_on_both_paths(cache, tmp_path):
    """Unstubbed: the candidates run (both paths, the model's shapes) and the record holds
    their times."""
    from closure_testutil import make_model_dir

    from closure.api import Closure

    if kernels.Backend().name != "cpp":
        pytest.skip("auto is not cpp here")
    runner = Closure.load(make_model_dir(tmp_path / "m", n_t=5), table=False).runner
    recs = runner.kernel_choices()
    for rec in recs.values():
        assert rec["source"] == "measured" and rec["choice"] in ("cpp", "torch")
        assert set(rec["seconds"]) == {"cpp", "torch"} and min(rec["seconds"].values()) > 0
    calibrate._memo.clear()
    assert all(r["source"] == "cached" for r in runner.kernel_choices().values())
