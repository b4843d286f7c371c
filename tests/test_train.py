"""Data loading, configs, checkpoints/resume, model cards and a tiny end-to-end run."""

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from closure.modelcard import CARD_FILE, ModelCardError, load_model, read_card, save_model
from closure.models import LatentClosureModel, PARCv2, Tokenizer
from closure.normalization import NORM_RANGES
from closure.train import main
from closure.training.checkpoint import atomic_write_bytes
from closure.training.config import ConfigError, load_config, resolve_config
from closure.training.data import (
    crop_offsets,
    data_hash,
    load_trajectories,
    split_indices,
    window_index,
)
from closure.training.loop import CheckpointMismatchError, Phase, fit
from closure.training.stages import hot_token_mask, run_stages
from closure.training.synthetic import write_synthetic_h5

torch.set_num_threads(1)  # tiny models: one thread is fastest and immune to a busy second core

TINY = """
[run]
out_dir = "{out}"
seed = 0
threads = 1
progress = false
[data]
micro = "{micro}"
meso = "{meso}"
micro_val_fraction = 0.2
meso_n_val = 1
meso_n_test = 2
[vae]
base_channels = 4
epochs = 2
batch_size = 8
crop = [16, 16]
frames_per_epoch = 24
[dynamics]
base_channels = 4
reps = 1
[micro_dynamics]
horizons = [1, 2]
epochs_per_horizon = 1
batch_size = 4
decode_crop = [16, 24]
windows_per_epoch = 16
[micro_dynamics.loss]
hotspot_tokens = 5.0
[meso_finetune]
horizons = [1, 2]
epochs_per_horizon = 1
crop = [32, 32]
[meso_finetune.loss]
hotspot_tokens = 5.0
[decoder_refine]
frames = 24
epochs = 3
batch_size = 8
lr = 1.0e-3
[parc]
base_channels = 4
features = 8
depth = 2
horizons = [1, 2]
epochs_per_horizon = 1
"""


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    micro = write_synthetic_h5(d / "micro.h5", 6, 6, 32, 32, seed=0)
    meso = write_synthetic_h5(d / "meso.h5", 6, 5, 48, 64, n_pores=3, time_stride=2, seed=1)
    return micro, meso


@pytest.fixture(scope="module")
def trained(datasets, tmp_path_factory):
    """Run all four stages once through the CLI (a few seconds)."""
    out = tmp_path_factory.mktemp("run")
    cfg = out / "tiny.toml"
    cfg.write_text(TINY.format(out=out / "out", micro=datasets[0], meso=datasets[1]))
    assert main([str(cfg)]) == 0
    return out / "out", cfg


# ------------------------------------------------------------------------------------ data

def test_loader_reads_layout_and_subsets(datasets):
    micro, _ = datasets
    full = load_trajectories(micro)
    assert full.fields.shape == (6, 6, 4, 32, 32) and full.fields.dtype == np.float32
    assert full.dt == pytest.approx(1.72e-10) and full.dx == full.dy == pytest.approx(2e-8)
    sub = load_trajectories(micro, [4, 1, 4])
    assert sub.indices == [4, 1, 4]
    assert np.array_equal(sub.fields[0], full.fields[4])
    assert np.array_equal(sub.fields[1], full.fields[1])
    assert full.sha256 == data_hash(micro) and len(full.sha256) == 64
    with pytest.raises(IndexError, match="sample index 9 out of range"):
        load_trajectories(micro, [9])


def _bad_file(path, **changes):
    fields = changes.pop("fields", np.zeros((2, 3, 3, 16, 16), np.float32))
    with h5py.File(path, "w") as h5:
        h5.create_dataset("fields", data=fields)
        attrs = {"channels": '["T", "P", "mu"]', "dt": 1e-10, "dx": 1e-8,
                 "norm_ranges": json.dumps({"T": [300, 5000], "P": [-2e9, 50e9], "mu": [0, 1]})}
        attrs.update(changes)
        for k, v in attrs.items():
            if v is not None:
                h5.attrs[k] = v
    return path


@pytest.mark.parametrize("changes, match", [
    ({"channels": '["P", "T", "mu"]'}, "channels are"),
    ({"norm_ranges": json.dumps({"T": [300, 4000], "P": [-2e9, 50e9], "mu": [0, 1]})},
     "range of 'T'"),
    ({"dt": None}, "attribute 'dt' is missing"),
    ({"dx": -1.0}, "dx must be finite and > 0"),
    ({"fields": np.zeros((2, 3, 3, 12, 16), np.float32)}, "H=12 must be a positive multiple"),
    ({"fields": np.zeros((2, 3, 2, 16, 16), np.float32)}, "must have shape"),
])
def test_loader_rejects_bad_files(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        load_trajectories(_bad_file(tmp_path / "bad.h5", **changes))


def test_loader_rejects_nan(tmp_path):
    f = np.zeros((2, 3, 3, 16, 16), np.float32)
    f[1, 2, 1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="sample 1, time 2, channel P"):
        load_trajectories(_bad_file(tmp_path / "nan.h5", fields=f))


def test_split_windows_and_crops():
    a = split_indices(26, n_val=2, n_test=6, seed=0)
    b = split_indices(26, n_val=2, n_test=6, n_train=4, seed=0)
    assert len(a["train"]) == 18 and a["test"] == b["test"] and a["val"] == b["val"]
    assert b["train"] == a["train"][:4]                   # nested training sets
    assert not set(a["train"]) & set(a["test"])
    with pytest.raises(ValueError, match="n_train must be in"):
        split_indices(26, n_val=2, n_test=6, n_train=19)
    w = window_index(2, 5, 3)
    assert w.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    with pytest.raises(ValueError, match="horizon"):
        window_index(2, 5, 5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        y0, x0, h, w_ = crop_offsets(rng, (48, 64), [16, 32])
        assert y0 % 8 == 0 and x0 % 8 == 0 and y0 + h <= 48 and x0 + w_ <= 64
    assert crop_offsets(rng, (48, 64), []) == (0, 0, 48, 64)


def test_hot_token_mask_by_hand():
    lo, hi = NORM_RANGES["T"]
    T = np.full((2, 16, 24), (400.0 - lo) / (hi - lo), np.float32)
    T[0, 9, 17] = (1000.0 - lo) / (hi - lo)          # token (1, 2) of sample 0: hot
    # 0.8 x the normalized 875 K threshold is 300 + 0.8 * 575 = 760 K
    T[1, 0, 0] = (770.0 - lo) / (hi - lo)
    T[1, 15, 0] = (750.0 - lo) / (hi - lo)
    m = hot_token_mask(T, 875.0, 0.8)
    assert m.shape == (2, 2, 3) and m.dtype == np.float32
    assert np.argwhere(m).tolist() == [[0, 1, 2], [1, 0, 0]]
    assert hot_token_mask(T, 875.0, 1.0).sum() == 1


def test_first_frame_drops_leading_frames(datasets):
    full = load_trajectories(datasets[0])
    later = full.from_frame(1)
    assert later.n_t == full.n_t - 1 and np.array_equal(later.fields, full.fields[:, 1:])
    with pytest.raises(ValueError, match="first frame must be in"):
        full.from_frame(full.n_t - 1)
    with pytest.raises(ConfigError, match="data.first_frame"):
        resolve_config({"data": {"first_frame": -1}})


# ---------------------------------------------------------------------------------- config

def test_config_errors():
    assert resolve_config({})["micro_dynamics"]["betas"] == [0.5, 0.99]
    with pytest.raises(ConfigError, match="unknown config key 'vae.epoch'"):
        resolve_config({"vae": {"epoch": 3}})
    with pytest.raises(ConfigError, match="'vae.lr' must be a number"):
        resolve_config({"vae": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="unknown stage 'meso'"):
        resolve_config({"run": {"stages": ["meso"]}})
    with pytest.raises(ConfigError, match="parc.crop"):
        resolve_config({"parc": {"crop": [12, 16]}})


def test_shipped_configs_resolve():
    """Every shipped config resolves: its own values kept, every other key filled in, paths
    made absolute against the working directory."""
    import tomllib

    paths = sorted(Path(__file__).parents[1].glob("configs/train/*.toml"))
    assert len(paths) >= 3
    for path in paths:
        cfg = load_config(path)
        user = tomllib.loads(path.read_text())
        assert set(user) <= set(cfg), path.name

        def kept(u, c, where):  # user values survive resolution, nested tables too
            for k, v in u.items():
                if isinstance(v, dict):
                    kept(v, c[k], f"{where}.{k}")
                elif k not in ("micro", "meso", "out_dir"):  # paths: resolved below
                    assert c[k] == v, where + "." + k

        kept(user, cfg, path.name)
        for k in ("micro", "meso"):
            assert Path(cfg["data"][k]).is_absolute() and cfg["data"][k].endswith(
                Path(user["data"][k]).name), (path.name, k)
        assert cfg["data"]["meso_n_test"] >= 1 and 0 < cfg["data"]["micro_val_fraction"] < 1


# ------------------------------------------------------------------------ checkpoint/resume

def test_atomic_write(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["a.bin"]


def _toy_fit(ckpt, fail_at=None, resume=True):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    x = torch.linspace(-1, 1, 24).reshape(8, 3)
    seen = []

    def batches(phase, rng):
        seen.append(phase)
        if fail_at is not None and len(seen) > fail_at:
            raise KeyboardInterrupt
        perm = rng.permutation(8)
        for i in range(0, 8, 4):
            yield x[perm[i:i + 4]]

    def loss_fn(phase, xb):
        out = model(xb).squeeze(1)
        return {"total": (out - xb.sum(1) * phase.horizon).square().mean()}

    phases = [Phase("a", 1, 2), Phase("b", 2, 2)]
    hist = fit(model=model, phases=phases,
               make_optimizer=lambda ph: torch.optim.Adam(model.parameters(), 1e-2),
               prepare=lambda ph: model.train(), batches=batches, loss_fn=loss_fn,
               ckpt_path=ckpt, seed=5, fingerprint={"k": 1}, resume=resume, progress=False)
    return model, hist


def test_resume_is_bit_identical(tmp_path):
    ref, ref_hist = _toy_fit(tmp_path / "ref.pt")
    with pytest.raises(KeyboardInterrupt):
        _toy_fit(tmp_path / "ck.pt", fail_at=3)     # dies in the 4th epoch (2nd of phase b)
    model, hist = _toy_fit(tmp_path / "ck.pt")
    for a, b in zip(ref.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [h["total"] for h in hist] == [h["total"] for h in ref_hist]


def test_checkpoint_of_other_config_is_refused(tmp_path):
    _toy_fit(tmp_path / "ck.pt")
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    with pytest.raises(CheckpointMismatchError, match="different config"):
        fit(model=model, phases=[Phase("a", 1, 1)],
            make_optimizer=lambda ph: torch.optim.Adam(model.parameters()),
            prepare=lambda ph: None, batches=lambda ph, rng: [], loss_fn=None,
            ckpt_path=tmp_path / "ck.pt", seed=5, fingerprint={"k": 2}, progress=False)


# ------------------------------------------------------------------- end to end + model card

def test_end_to_end_train_and_evaluate(trained, datasets):
    out, _ = trained
    for stage, kind in (("vae", "tokenizer"), ("micro-dynamics", "latent"),
                        ("meso-finetune", "latent"), ("decoder-refine", "latent"),
                        ("parc", "parc")):
        model, card = load_model(out / stage, kind=kind)
        assert card["normalization"]["hotspot_threshold_K"] == 875.0
        assert card["versions"]["torch"] == torch.__version__
        assert (out / stage / "checkpoint.pt").exists()
        assert len((out / stage / "train_log.jsonl").read_text().splitlines()) >= 2
    meso, card = load_model(out / "meso-finetune", kind="latent",
                            data={"micro": datasets[0], "meso": datasets[1]})
    assert isinstance(meso, LatentClosureModel) and meso.substeps == 2   # meso dt = 2 micro dt
    m = card["metrics"]
    for key in ("meso_test", "meso_test_before_finetune", "meso_val"):
        for name in ("rmse_A_hs", "rmse_T_hs", "rmse_dA_hs_dt", "rmse_dT_hs_dt",
                     "rmse_field_mean"):
            assert np.isfinite(m[key][name])
    assert m["meso_test"]["n_samples"] == 2
    assert len(card["data"]["meso"]["split"]["train"]) == 3
    parc, pcard = load_model(out / "parc", kind="parc")
    assert isinstance(parc, PARCv2)
    assert pcard["data"]["meso"]["split"] == card["data"]["meso"]["split"]  # same test samples
    micro_card = read_card(out / "micro-dynamics")
    assert np.isfinite(micro_card["metrics"]["micro_val"]["rmse_T_hs"])
    # the meso model runs on grids other than its training grid
    with torch.no_grad():
        y, _, _ = meso(torch.rand(1, 4, 24, 40), 2)
    assert y.shape == (1, 3, 4, 24, 40)
    assert meso.fields == ("T", "P", "mu", "lam")  # the data's channels


def test_decoder_refine_changes_only_the_refined_decoders(trained):
    """Encoders, dynamics and the other fields' decoders stay bitwise; the T decoder learns."""
    out, _ = trained
    before, _ = load_model(out / "meso-finetune", kind="latent")
    after, card = load_model(out / "decoder-refine", kind="latent")
    sb, sa = before.state_dict(), after.state_dict()
    assert sb.keys() == sa.keys()
    changed = {k for k in sb if not torch.equal(sb[k], sa[k])}
    assert changed and all(k.startswith("tokenizer.vaes.T.dec") for k in changed)
    assert any(k.startswith("tokenizer.vaes.T.dec_out") for k in changed)
    losses = [json.loads(line)["total"]
              for line in (out / "decoder-refine" / "train_log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    assert np.isfinite(card["metrics"]["meso_test"]["rmse_A_hs"])
    assert card["metrics"]["source_metrics"] == read_card(out / "meso-finetune")["metrics"]


def test_seeded_stage_training_is_deterministic(trained, tmp_path):
    _, cfg_path = trained

    def weights(seed, name):
        cfg = load_config(cfg_path)
        cfg["run"].update(out_dir=str(tmp_path / name), seed=seed)
        d = run_stages(cfg, ["vae"])["vae"]
        return load_model(d)[0].state_dict()

    a, b, c = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_rerun_resumes_finished_stage(trained):
    out, cfg = trained
    before = (out / "vae" / "model.pt").read_bytes()
    assert main([str(cfg), "--stage", "vae"]) == 0
    assert (out / "vae" / "model.pt").read_bytes() == before


def test_model_card_mismatch_raises(trained, datasets, tmp_path):
    out, _ = trained
    src = out / "micro-dynamics"

    def copy(name):
        d = tmp_path / name
        d.mkdir()
        for f in src.iterdir():
            if f.name in ("model.pt", CARD_FILE):
                (d / f.name).write_bytes(f.read_bytes())
        return d, json.loads((d / CARD_FILE).read_text())

    with pytest.raises(ModelCardError, match="model kind is 'latent', expected 'parc'"):
        load_model(src, kind="parc")
    with pytest.raises(ModelCardError, match="micro data .* has sha256"):
        load_model(src, data={"micro": datasets[1]})
    with pytest.raises(ModelCardError, match="no data record for role 'meso'"):
        load_model(src, data={"meso": datasets[1]})
    with pytest.raises(ModelCardError, match=r"normalization range of 'P'"):
        load_model(src, norm_ranges={"T": (300.0, 5000.0), "P": (0.0, 50.0e9),
                                     "mu": (0.0, 1.0)})
    d, card = copy("ranges")
    card["normalization"]["ranges"]["T"] = [300.0, 3000.0]
    (d / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match=r"normalization range of 'T' is \[300.0, 3000.0\]"):
        load_model(d)
    d, card = copy("arch")
    card["architecture"]["dynamics"]["base_channels"] = 8
    (d / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="weights do not fit the architecture"):
        load_model(d)
    d, _ = copy("weights")
    save_model(tmp_path / "other", Tokenizer(base_channels=4), kind="tokenizer",
               architecture={"tokenizer": {"base_channels": 4}})
    (d / "model.pt").write_bytes((tmp_path / "other" / "model.pt").read_bytes())
    with pytest.raises(ModelCardError, match="does not match the sha256"):
        load_model(d)
    d, card = copy("version")
    card["format_version"] = 99
    (d / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="format_version 99 is not supported"):
        load_model(d)
    with pytest.raises(ModelCardError, match="not a model directory"):
        load_model(tmp_path)


def test_cli_reports_config_errors(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[vae]\nepochz = 1\n")
    assert main([str(cfg)]) == 2
    assert "unknown config key 'vae.epochz'" in capsys.readouterr().err
    cfg.write_text('[run]\nstages = ["vae"]\nout_dir = "%s"\n' % (tmp_path / "o"))
    assert main([str(cfg)]) == 2
    assert "needs data.micro" in capsys.readouterr().err
