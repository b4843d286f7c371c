"""Data-set files: layout, determinism, resume, parallel workers, manifest and the CLI."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from closure.data import load_data_config
from closure.data.dataset import DONE, META_FIELDS, code_provenance, file_sha256
from closure.data.generate import generate

ROOT = Path(__file__).resolve().parents[1]
LOWRES = ROOT / "configs" / "data" / "micro_lowres.toml"
SHORT = ["time.n_frames=4", "time.frame_dt=2.5e-10"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    cfg = load_data_config("micro", LOWRES, [*SHORT])
    path = tmp_path_factory.mktemp("data") / "ref.h5"
    generate(cfg, 3, 7, path, workers=1, progress=False)
    return cfg, path


def read_all(path):
    with h5py.File(path, "r") as h5:
        out = {"fields": h5["fields"][...], "meta": h5["meta"][...],
               "pores": [p.decode() if isinstance(p, bytes) else p for p in h5["pores"][...]]}
        for k in h5["extras"]:
            out["extras/" + k] = h5["extras"][k][...]
        for k in h5["stats"]:
            out["stats/" + k] = h5["stats"][k][...]
    return out


def assert_same_samples(a, b):
    for k in a:
        if k == "meta":
            for name, _ in META_FIELDS:
                if name != "wall_s":
                    np.testing.assert_array_equal(a[k][name], b[k][name], err_msg=name)
        elif k == "pores":
            assert a[k] == b[k]
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_layout_attributes_and_loader(reference):
    cfg, path = reference
    with h5py.File(path, "r") as h5:
        f = h5["fields"]
        assert f.shape == (3, 5, 4, 32, 48) and f.dtype == np.float32
        for obj in (h5, f):
            ch = obj.attrs["channels"]  # an HDF5 array of strings, not a JSON string
            assert isinstance(ch, np.ndarray) and [c.decode() if isinstance(c, bytes) else c
                                                   for c in ch] == ["T", "P", "mu", "lam"]
            assert obj.attrs["dt"] == pytest.approx(2.5e-10)
            assert obj.attrs["dx"] == pytest.approx(1.25e-7)
            assert json.loads(obj.attrs["norm_ranges"]) == {
                "T": [300.0, 5000.0], "P": [-2.0e9, 50.0e9], "mu": [0.0, 1.0],
                "lam": [0.0, 1.0]}
        assert json.loads(h5.attrs["config"])["grid"]["nx"] == 48
        assert np.all(h5["status"][...] == DONE)
        np.testing.assert_allclose(h5["times"][...], np.arange(5) * 2.5e-10)
        meta = h5["meta"][...]
        lo, hi = cfg["loading"]["u_p"]
        assert np.all((meta["u_p"] >= lo) & (meta["u_p"] <= hi))
        assert np.all((meta["shock_pressure"] > 1.9e9) & (meta["shock_pressure"] < 20.1e9))
        assert np.all(meta["n_pores"] == 1)
        assert len(set(meta["sample_seed"].tolist())) == 3
        pores = [json.loads(p) for p in h5["pores"][...]]
        assert all(len(p) == 1 and p[0]["shape"] in ("circle", "ellipse", "fourier")
                   for p in pores)
        assert h5["extras"]["u"].shape == (3, 5, 32, 48)
        assert h5["stats"]["peak_T"].shape == (3, 5)
        x = f[...]
        assert np.all(np.isfinite(x))
        assert x[:, :, 2].min() >= 0.0 and x[:, :, 2].max() <= 1.0  # mu
        assert x[:, :, 3].min() >= -1e-9 and x[:, :, 3].max() <= 1.0 + 1e-9  # lam
        assert "lam" not in h5["extras"]  # a channel now, not an extra
        # F(t): burned mass fraction in [0, max lam], none at frame 0; per-sample final F
        F = h5["stats"]["burned_fraction"][...]
        assert np.all(F[:, 0] == 0.0) and np.all((F >= 0.0) & (F <= 1.0))
        assert np.all(F <= h5["stats"]["max_lam"][...] + 1e-12)
        np.testing.assert_array_equal(meta["final_burned_fraction"], F[:, -1])
        # the excess-hotspot threshold sits 300 K above each sample's bulk Hugoniot T
        assert h5.attrs["hotspot_excess"] == 300.0
        # frame 0 is the unshocked sample: T0, ambient pressure
        np.testing.assert_allclose(x[:, 0, 0], 0.0, atol=1e-5)
        np.testing.assert_allclose(x[:, 0, 1], 2e9 / 52e9, atol=1e-5)

    from closure.training.data import load_trajectories

    ts = load_trajectories(path)
    assert ts.fields.shape == (3, 5, 4, 32, 48) and ts.channels == ("T", "P", "mu", "lam")
    assert ts.config["grid"]["nx"] == 48  # the generator config travels to model cards
    two = load_trajectories(path, [2, 0])
    np.testing.assert_array_equal(two.fields[1], ts.fields[0])
    assert ts.dt == pytest.approx(2.5e-10) and ts.dx == pytest.approx(1.25e-7)


def test_manifest_matches_file(reference):
    _, path = reference
    man = json.loads(Path(str(path) + ".manifest.json").read_text())
    assert man["sha256"] == file_sha256(path)
    assert man["size_bytes"] == os.path.getsize(path)
    # the generator's provenance travels with the file: the kernels that wrote it
    now = code_provenance()
    kernels = [k for k in now if k.endswith("sha256")]
    assert kernels and all(man["generated_by"][k] == now[k] for k in kernels)
    assert man["resumed_by"] == []
    assert man["summary"]["n_done"] == 3
    for key in ("peak_T", "peak_hotspot_fraction", "hotspot_area_fraction_all_frames",
                "final_burned_fraction"):
        assert key in man["summary"]
    bins = man["summary"]["by_pressure"]
    assert sum(b["n"] for b in bins) == 3
    assert all(len(b["mean_F_t"]) == 5 and b["p_lo_GPa"] < b["p_hi_GPa"] for b in bins)
    with h5py.File(path, "r") as h5:
        for i, row in enumerate(man["samples"]):
            digest = hashlib.sha256(np.ascontiguousarray(h5["fields"][i]).tobytes()).hexdigest()
            assert row["fields_sha256"] == digest
            assert row["u_p"] == pytest.approx(h5["meta"]["u_p"][i])


def test_resume_after_interruption_gives_the_same_file(reference, tmp_path):
    cfg, ref = reference
    path = tmp_path / "resumed.h5"
    generate(cfg, 3, 7, path, progress=False, stop_after=1)
    with h5py.File(path, "r") as h5:
        assert h5["status"][...].tolist() == [DONE, 0, 0]
        assert np.all(np.isnan(h5["fields"][1]))  # unfinished samples are NaN, not zeros
    assert not Path(str(path) + ".manifest.json").exists()  # only complete files get one
    generate(cfg, 3, 7, path, progress=False)
    assert_same_samples(read_all(ref), read_all(path))
    man = json.loads(Path(str(path) + ".manifest.json").read_text())
    assert len(man["resumed_by"]) == 1  # the second run is on record
    key = "macro/multi.py sha256"
    assert man["resumed_by"][0][key] == man["generated_by"][key]


def test_resume_refuses_a_different_config(reference, tmp_path):
    cfg, _ = reference
    path = tmp_path / "x.h5"
    generate(cfg, 2, 7, path, progress=False, stop_after=1)
    other = load_data_config("micro", LOWRES, [*SHORT, "time.frame_dt=2e-10"])
    with pytest.raises(ValueError, match="frame_dt"):
        generate(other, 2, 7, path, progress=False)
    with pytest.raises(ValueError, match="seed"):
        generate(cfg, 2, 8, path, progress=False)


def test_parallel_workers_give_identical_arrays(reference, tmp_path):
    cfg, ref = reference
    path = tmp_path / "par.h5"
    generate(cfg, 3, 7, path, workers=2, progress=False)
    assert_same_samples(read_all(ref), read_all(path))


def test_cli_generate_and_show(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    out = tmp_path / "cli.h5"
    sets = sum((["--set", s] for s in [*SHORT, "time.n_frames=2"]), [])
    cmd = [sys.executable, "-m", "closure.data", "generate", "--scale", "micro", "--n", "2",
           "--seed", "1", "--out", str(out), "--config", str(LOWRES), "--workers", "1",
           "--no-progress", *sets]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "closure.data", "show", str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 done" in r.stdout and "peak_T" in r.stdout
    assert out.with_suffix(".png").stat().st_size > 10_000
    bad = subprocess.run([*cmd[:-len(sets)], "--set", "grid.nx=50"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert bad.returncode == 1 and "nx" in bad.stderr


def test_failed_sample_is_recorded_named_and_retried(reference, tmp_path, monkeypatch):
    """A sample that raises: the others are written, the file records the failure (status 2,
    message), the run ends with GenerationError naming the sample and no manifest; the same
    command again retries only that sample and gives the reference file."""
    import closure.data.generate as gen

    cfg, ref = reference
    real = gen.run_sample

    def flaky(cfg_, seed, index):
        if index == 1:
            raise RuntimeError("injected failure")
        return real(cfg_, seed, index)

    monkeypatch.setattr(gen, "run_sample", flaky)
    path = tmp_path / "failed.h5"
    with pytest.raises(gen.GenerationError, match=r"1 sample\(s\) of .* failed[\s\S]*sample 1: "
                                                  r"RuntimeError: injected failure"):
        generate(cfg, 3, 7, path, progress=False)
    with h5py.File(path, "r") as h5:
        assert h5["status"][...].tolist() == [DONE, 2, DONE]
        err = h5["errors"][1]
        assert "injected failure" in (err.decode() if isinstance(err, bytes) else str(err))
    assert not Path(str(path) + ".manifest.json").exists()
    monkeypatch.setattr(gen, "run_sample", real)
    generate(cfg, 3, 7, path, progress=False)
    assert_same_samples(read_all(ref), read_all(path))
    man = json.loads(Path(str(path) + ".manifest.json").read_text())
    assert len(man["resumed_by"]) == 1  # the second run is on record
    key = "macro/multi.py sha256"
    assert man["resumed_by"][0][key] == man["generated_by"][key]
