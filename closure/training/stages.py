"""The training stages: vae, micro-dynamics, meso-finetune, decoder-refine, parc.

Each stage reads the resolved config, trains through :func:`closure.training.loop.fit` and
writes a model directory ``<run.out_dir>/<stage>/`` (``model.pt`` + ``model_card.json``) next to
its checkpoint and JSON-lines log. Later stages load earlier ones through their model cards, which
also checks that they were trained on the same data file.

- ``vae``: the three field VAEs on micro frames (optionally random crops).
- ``micro-dynamics``: decoupled nets, then coupled nets (decoupled frozen), each with a horizon
  curriculum, on VAE-encoded micro trajectories (the reference's "efficient" variant: the
  tokenizer is frozen and trajectories are encoded once).
- ``meso-finetune``: the micro model with k micro steps per meso step; only the coupled nets are
  trained, on the meso training split.
- ``decoder-refine``: the meso model's T decoder sharpened on micro frames with extra weight on
  cells near and above the hotspot threshold (encoders frozen, so the dynamics are unchanged);
  its output is the model to ship.
- ``parc``: the PARCv2 baseline on the same meso training split, same multi-step field loss.
Metrics (closure.metrics) of full rollouts go into the model cards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from closure.modelcard import load_model, save_model
from closure.models.dynamics import (
    DynamicsLossWeights,
    LatentClosureModel,
    LatentDynamics,
    dynamics_losses,
    meso_substeps,
)
from closure.models.parc import PARCv2
from closure.models.vae import (
    DOWNSAMPLE,
    PerceptualLoss,
    Tokenizer,
    VAELossWeights,
    load_feature_net,
    vae_losses,
)
from closure.normalization import normalize
from closure.training.config import STAGES, ConfigError
from closure.training.data import (
    TrajectorySet,
    crop_offsets,
    load_trajectories,
    split_indices,
    window_index,
)
from closure.training.evaluate import evaluate_model
from closure.training.loop import Phase, fit

__all__ = [
    "encode_trajectories",
    "run_decoder_refine",
    "run_meso_finetune",
    "run_micro_dynamics",
    "run_parc",
    "run_stages",
    "run_vae",
    "stage_dir",
]


def stage_dir(cfg: dict[str, Any], stage: str) -> Path:
    """Output directory (model dir + checkpoint + log) of ``stage``."""
    return Path(cfg["run"]["out_dir"]) / stage


def _device(cfg: dict[str, Any]) -> torch.device:
    dev = torch.device(cfg["run"]["device"])
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device is 'cuda' but no CUDA device is available")
    return dev


def _require(cfg: dict[str, Any], key: str, stage: str) -> str:
    path = cfg["data"][key]
    if not path:
        raise ConfigError(f"stage {stage!r} needs data.{key} (path of the {key} HDF5 data set)")
    return path


def _data_record(full: TrajectorySet, split: dict[str, list[int]], first_frame: int,
                 ) -> dict[str, Any]:
    rec = full.info()
    rec.pop("indices")
    rec["n_samples"] = full.n
    rec["split"] = split
    if first_frame:  # absent: every frame
        rec["first_frame"] = first_frame
    return rec


def _load(cfg: dict[str, Any], role: str, stage: str, first: int | None = None,
          ) -> tuple[TrajectorySet, int]:
    """A data set from frame ``first`` (default ``data.first_frame``) on.

    Frame 0 of the generated sets is the quiescent state before the shock enters through the
    boundary: it is the same in every sample, so the shock pressure cannot be predicted from
    it. Dynamics are trained and scored from frame 1 by default; the tokenizer sees every frame.
    """
    first = cfg["data"]["first_frame"] if first is None else first
    return load_trajectories(_require(cfg, role, stage)).from_frame(first), first


def _micro_split(cfg: dict[str, Any], stage: str, first: int | None = None,
                 ) -> tuple[TrajectorySet, TrajectorySet, dict[str, Any]]:
    full, first = _load(cfg, "micro", stage, first)
    frac = cfg["data"]["micro_val_fraction"]
    n_val = 0 if frac == 0 or full.n < 2 else max(1, round(frac * full.n))
    split = split_indices(full.n, n_val=n_val, seed=cfg["data"]["split_seed"])
    return (full.subset(split["train"]), full.subset(split["val"]),
            _data_record(full, split, first))


def _meso_split(cfg: dict[str, Any], stage: str,
                ) -> tuple[TrajectorySet, TrajectorySet, TrajectorySet, dict[str, Any]]:
    full, first = _load(cfg, "meso", stage)
    d = cfg["data"]
    split = split_indices(full.n, n_val=d["meso_n_val"], n_test=d["meso_n_test"],
                          n_train=d["meso_n_train"] or None, seed=d["split_seed"])
    return (full.subset(split["train"]), full.subset(split["val"]), full.subset(split["test"]),
            _data_record(full, split, first))


def _same_fields(fields: Sequence[str], data: TrajectorySet, stage: str) -> None:
    """A stage continuing a model needs data with the model's channels, in its order."""
    if tuple(fields) != tuple(data.channels):
        raise ValueError(f"{stage}: the model sees channels {list(fields)}, the data set "
                         f"{data.path} has {list(data.channels)}")


def _check_horizons(horizons: Sequence[int], n_t: int, key: str) -> None:
    if max(horizons) > n_t - 1:
        raise ConfigError(f"{key}: horizon {max(horizons)} needs {max(horizons) + 1} frames, "
                          f"but the data has n_t={n_t}")


def _prepare_dir(cfg: dict[str, Any], stage: str, resume: bool) -> tuple[Path, Path, Path]:
    d = stage_dir(cfg, stage)
    d.mkdir(parents=True, exist_ok=True)
    ckpt, log = d / "checkpoint.pt", d / "train_log.jsonl"
    if not resume:
        for p in (ckpt, log):
            p.unlink(missing_ok=True)
    return d, ckpt, log


def _adam(params: Any, sect: dict[str, Any]) -> torch.optim.Adam:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise RuntimeError("no trainable parameters in this phase")
    return torch.optim.Adam(params, lr=sect["lr"], betas=tuple(sect["betas"]))


def _eval_kw(cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    e = cfg["eval"]
    return dict(threshold=e["threshold_K"], t_start=e["t_start"], batch_size=e["batch_size"],
                sample=e["sample"], seed=cfg["run"]["seed"], device=device)


def _tokenizer_arch(sect: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {"fields": list(fields), "base_channels": sect["base_channels"],
            "latent_channels": sect["latent_channels"], "padding_mode": sect["padding_mode"],
            "logvar_init": sect["logvar_init"]}


@torch.no_grad()
def encode_trajectories(tokenizer: Tokenizer, fields: np.ndarray, batch_size: int = 16,
                        device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Latent means and logvars (N, n_t, n_latent, H/8, W/8) of every frame (tokenizer eval)."""
    was = tokenizer.training
    tokenizer.eval()
    N, T = fields.shape[:2]
    flat = fields.reshape(N * T, *fields.shape[2:])
    means, logvars = [], []
    for i in range(0, flat.shape[0], batch_size):
        m, v = tokenizer.encode(torch.from_numpy(np.ascontiguousarray(flat[i:i + batch_size]))
                                .to(device))
        means.append(m.cpu())
        logvars.append(v.cpu())
    tokenizer.train(was)
    m, v = torch.cat(means), torch.cat(logvars)
    return m.unflatten(0, (N, T)), v.unflatten(0, (N, T))


def hot_token_mask(T: np.ndarray, threshold_K: float, near: float) -> np.ndarray:
    """float32 (..., H/8, W/8): 1 where a token's 8x8 cells hold a normalized T (``T``,
    (..., H, W)) above ``near`` x the normalized hotspot threshold."""
    thr = near * normalize(threshold_K, "T")
    H, W = T.shape[-2:]
    blocks = T.reshape(*T.shape[:-2], H // DOWNSAMPLE, DOWNSAMPLE, W // DOWNSAMPLE, DOWNSAMPLE)
    return (blocks.max(axis=(-3, -1)) > thr).astype(np.float32)


def _windows(n: int, n_t: int, phase: Phase, batch_size: int, rng: np.random.Generator,
             grid: tuple[int, int], crop: Sequence[int], limit: int = 0,
             ) -> Iterator[tuple[np.ndarray, ...]]:
    """Shuffled (samples, start times, crop) batches of curriculum windows (``limit``: cap)."""
    idx = window_index(n, n_t, phase.horizon)
    idx = idx[rng.permutation(len(idx))]
    if limit:
        idx = idx[:limit]
    for i in range(0, len(idx), batch_size):
        b = idx[i:i + batch_size]
        yield b[:, 0], b[:, 1], crop_offsets(rng, grid, crop, DOWNSAMPLE)


# ----------------------------------------------------------------------------------- vae stage

def run_vae(cfg: dict[str, Any], resume: bool = True) -> Path:
    """Train the tokenizer (one VAE per field) on micro frames; return its model directory."""
    t_start = time.perf_counter()
    sect, dev = cfg["vae"], _device(cfg)
    train, val, rec = _micro_split(cfg, "vae", first=0)
    out, ckpt, log = _prepare_dir(cfg, "vae", resume)
    arch = {"tokenizer": _tokenizer_arch(sect, train.channels)}
    torch.manual_seed(cfg["run"]["seed"])
    tok = Tokenizer(**arch["tokenizer"]).to(dev)
    weights = VAELossWeights(**sect["loss"])
    perceptual = None
    if weights.perceptual > 0:
        if not sect["perceptual_net"]:
            raise ConfigError("vae.loss.perceptual > 0 needs vae.perceptual_net "
                              "('package.module:factory')")
        perceptual = PerceptualLoss(load_feature_net(sect["perceptual_net"])).to(dev)
    frames = train.fields.reshape(-1, *train.fields.shape[2:])
    grid = tuple(frames.shape[-2:])

    def batches(phase: Phase, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        perm = rng.permutation(len(frames))
        if sect["frames_per_epoch"]:
            perm = perm[:sect["frames_per_epoch"]]
        for i in range(0, len(perm), sect["batch_size"]):
            y0, x0, h, w = crop_offsets(rng, grid, sect["crop"], DOWNSAMPLE)
            b = np.sort(perm[i:i + sect["batch_size"]])
            yield torch.from_numpy(frames[b, :, y0:y0 + h, x0:x0 + w]).to(dev)

    def loss_fn(phase: Phase, x: torch.Tensor) -> dict[str, torch.Tensor]:
        tot: dict[str, torch.Tensor] = {}
        for i, f in enumerate(tok.fields):
            for k, v in vae_losses(tok.vaes[f], x[:, i:i + 1], weights, perceptual).items():
                tot[k] = tot.get(k, 0.0) + v
        return tot

    history = fit(model=tok, phases=[Phase("vae", 0, sect["epochs"])],
                  make_optimizer=lambda ph: _adam(tok.parameters(), sect),
                  prepare=lambda ph: tok.train(), batches=batches, loss_fn=loss_fn,
                  ckpt_path=ckpt, seed=cfg["run"]["seed"],
                  fingerprint={"vae": sect, "data": rec, "seed": cfg["run"]["seed"]},
                  resume=resume, checkpoint_every=cfg["run"]["checkpoint_every"],
                  progress=cfg["run"]["progress"], desc="vae", log_path=log,
                  grad_clip=sect["grad_clip"])
    metrics = {"train_wall_s": time.perf_counter() - t_start, "final_train_loss": history[-1]}
    for name, ds in (("micro_train", train), ("micro_val", val)):
        if ds.n:
            metrics[f"{name}_recon_rmse"] = _recon_rmse(tok, ds, dev)
    save_model(out, tok, kind="tokenizer", architecture=arch, config=cfg,
               data={"micro": rec}, metrics=metrics)
    return out


@torch.no_grad()
def _recon_rmse(tok: Tokenizer, ds: TrajectorySet, dev: torch.device) -> dict[str, float]:
    """Per-field RMSE of decode(encode mean) over every frame of ``ds``."""
    tok.eval()
    frames = ds.fields.reshape(-1, *ds.fields.shape[2:])
    se = np.zeros(len(tok.fields))
    for i in range(0, len(frames), 16):
        x = torch.from_numpy(frames[i:i + 16]).to(dev)
        m, _ = tok.encode(x)
        se += (tok.decode(m) - x).square().sum(dim=(0, 2, 3)).cpu().numpy()
    n = frames.shape[0] * frames.shape[2] * frames.shape[3]
    return {f: float(np.sqrt(se[i] / n)) for i, f in enumerate(tok.fields)}


# -------------------------------------------------------------------------- latent dynamics

def _latent_training(cfg: dict[str, Any], model: LatentClosureModel, sect: dict[str, Any],
                     train: TrajectorySet, phases: list[Phase], stage: str, resume: bool,
                     fingerprint: dict[str, Any]) -> list[dict[str, Any]]:
    """Shared micro/meso loop: rollouts from VAE-encoded frames against encoded trajectories.

    ``crop`` cuts whole windows (cheaper, but the nets see crop edges); ``decode_crop`` keeps
    the dynamics on the full token grid and decodes only a random crop for the multi-step loss
    (the decoder is local, so that costs little accuracy and most of the decoding time).
    """
    dev = _device(cfg)
    _, ckpt, log = _prepare_dir(cfg, stage, resume)
    means, logvars = encode_trajectories(model.tokenizer, train.fields, device=dev)
    weights = DynamicsLossWeights(**sect["loss"])
    dyn, fields = model.dynamics, train.fields
    n_f = len(model.fields)
    grid = tuple(fields.shape[-2:])
    i_T = model.fields.index("T")
    hot = torch.from_numpy(hot_token_mask(fields[:, :, i_T], cfg["eval"]["threshold_K"],
                                          weights.hotspot_near))

    def prepare(phase: Phase) -> None:
        model.train()
        model.tokenizer.eval()
        model.tokenizer.requires_grad_(False)
        if phase.name == "decoupled":
            dyn.set_trainable(decoupled=True, coupled=False)
            dyn.coupled_mean.eval()
            dyn.coupled_logvar.eval()
        else:  # coupled / finetune: decoupled nets frozen (no dropout in frozen nets)
            dyn.set_trainable(decoupled=False, coupled=True)
            dyn.decoupled_mean.eval()
            dyn.decoupled_logvar.eval()

    def batches(phase: Phase, rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
        steps = np.arange(phase.horizon + 1)
        for s, t, (y0, x0, h, w) in _windows(train.n, train.n_t, phase, sect["batch_size"],
                                             rng, grid, sect["crop"],
                                             sect["windows_per_epoch"]):
            dy, dx, dh, dw = crop_offsets(rng, (h, w), sect["decode_crop"], DOWNSAMPLE)
            tt = t[:, None] + steps[None, :]
            ly, lx, lh, lw = y0 // 8, x0 // 8, h // 8, w // 8
            m = means[torch.from_numpy(s[:, None]), torch.from_numpy(tt)]
            v = logvars[torch.from_numpy(s[:, None]), torch.from_numpy(tt)]
            x = fields[s[:, None], tt[:, 1:]][..., y0 + dy:y0 + dy + dh, x0 + dx:x0 + dx + dw]
            ht = hot[torch.from_numpy(s[:, None]), torch.from_numpy(tt[:, 1:])]
            yield (m[..., ly:ly + lh, lx:lx + lw].to(dev), v[..., ly:ly + lh, lx:lx + lw].to(dev),
                   torch.from_numpy(np.ascontiguousarray(x)).to(dev),
                   (dy // 8, dx // 8, dh // 8, dw // 8),
                   ht[:, :, None, ly:ly + lh, lx:lx + lw].to(dev))

    def loss_fn(phase: Phase, batch: tuple[Any, ...]) -> dict[str, torch.Tensor]:
        m, v, x, (cy, cx, ch, cw), ht = batch
        pm, pv = dyn.rollout(m[:, 0], v[:, 0], phase.horizon, model.substeps,
                             coupled=phase.name != "decoupled")
        win = (..., slice(cy, cy + ch), slice(cx, cx + cw))
        pf = model.decode_trajectory(pm[:, 1:][win], pv[:, 1:][win],
                                     sample=sect["sample_decode"])
        return dynamics_losses(pm, pv, m, v, pf, x, n_f, weights, hot_tokens=ht, t_field=i_T)

    return fit(model=model, phases=phases,
               make_optimizer=lambda ph: _adam(model.parameters(), sect), prepare=prepare,
               batches=batches, loss_fn=loss_fn, ckpt_path=ckpt, seed=cfg["run"]["seed"],
               fingerprint=fingerprint, resume=resume,
               checkpoint_every=cfg["run"]["checkpoint_every"],
               progress=cfg["run"]["progress"], desc=stage, log_path=log,
               grad_clip=sect["grad_clip"])


def run_micro_dynamics(cfg: dict[str, Any], resume: bool = True) -> Path:
    """Train decoupled then coupled latent nets on micro data; return the model directory."""
    t_start = time.perf_counter()
    sect, dev = cfg["micro_dynamics"], _device(cfg)
    vae_dir = sect["vae"] or str(stage_dir(cfg, "vae"))
    data_path = _require(cfg, "micro", "micro-dynamics")
    tok, tok_card = load_model(vae_dir, kind="tokenizer", data={"micro": data_path})
    train, val, rec = _micro_split(cfg, "micro-dynamics")
    _same_fields(tok.fields, train, "micro-dynamics")
    _check_horizons(sect["horizons"], train.n_t, "micro_dynamics.horizons")
    d = cfg["dynamics"]
    arch = {"tokenizer": tok_card["architecture"]["tokenizer"],
            "dynamics": {"fields": list(tok.fields), "latent_channels": tok.latent_channels,
                         "base_channels": d["base_channels"], "depth": d["depth"],
                         "reps": d["reps"], "dropout": d["dropout"], "residual": d["residual"],
                         "padding_mode": d["padding_mode"]},
            "substeps": 1, "coupled": "coupled" in sect["phases"]}
    torch.manual_seed(cfg["run"]["seed"])
    model = LatentClosureModel(tok, LatentDynamics(**arch["dynamics"]), 1,
                               arch["coupled"]).to(dev)
    phases = [Phase(p, h, sect["epochs_per_horizon"]) for p in sect["phases"]
              for h in sect["horizons"]]
    fp = {"micro_dynamics": sect, "dynamics": d, "data": rec, "seed": cfg["run"]["seed"],
          "vae_weights": tok_card["weights"]["sha256"]}
    history = _latent_training(cfg, model, sect, train, phases, "micro-dynamics", resume, fp)
    metrics: dict[str, Any] = {"train_wall_s": time.perf_counter() - t_start,
                               "final_train_loss": history[-1]}
    ev = ("micro_val", val) if val.n else ("micro_train", train)
    metrics[ev[0]] = evaluate_model(model, ev[1], **_eval_kw(cfg, dev))
    out = stage_dir(cfg, "micro-dynamics")
    save_model(out, model, kind="latent", architecture=arch, config=cfg,
               data={"micro": rec}, metrics=metrics)
    return out


def run_meso_finetune(cfg: dict[str, Any], resume: bool = True) -> Path:
    """Fine-tune the coupled nets of the micro model on meso data (k micro steps per step)."""
    t_start = time.perf_counter()
    sect, dev = cfg["meso_finetune"], _device(cfg)
    micro_dir = sect["micro_model"] or str(stage_dir(cfg, "micro-dynamics"))
    micro, micro_card = load_model(micro_dir, kind="latent")
    train, val, test, rec = _meso_split(cfg, "meso-finetune")
    _same_fields(micro.fields, train, "meso-finetune")
    _check_horizons(sect["horizons"], train.n_t, "meso_finetune.horizons")
    k = sect["substeps"] or meso_substeps(train.dt, micro_card["data"]["micro"]["dt"])
    model = LatentClosureModel.meso_from_micro(micro, k).to(dev)
    arch = dict(micro_card["architecture"], substeps=k, coupled=True)
    ekw = _eval_kw(cfg, dev)
    metrics: dict[str, Any] = {"substeps": k}
    if test.n:  # the micro model on meso data before fine-tuning (coupled nets at micro weights)
        metrics["meso_test_before_finetune"] = evaluate_model(model, test, **ekw)
    phases = [Phase("finetune", h, sect["epochs_per_horizon"]) for h in sect["horizons"]]
    fp = {"meso_finetune": sect, "data": rec, "seed": cfg["run"]["seed"],
          "micro_weights": micro_card["weights"]["sha256"]}
    history = _latent_training(cfg, model, sect, train, phases, "meso-finetune", resume, fp)
    metrics.update(train_wall_s=time.perf_counter() - t_start, final_train_loss=history[-1])
    for name, ds in (("meso_val", val), ("meso_test", test)):
        if ds.n:
            metrics[name] = evaluate_model(model, ds, **ekw)
    out = stage_dir(cfg, "meso-finetune")
    save_model(out, model, kind="latent", architecture=arch, config=cfg,
               data={"micro": micro_card["data"]["micro"], "meso": rec}, metrics=metrics)
    return out


# ---------------------------------------------------------------------------- decoder-refine

def run_decoder_refine(cfg: dict[str, Any], resume: bool = True) -> Path:
    """Refine the decoders of ``decoder_refine.fields`` of a trained latent model, weighting the
    reconstruction error of cells near and above the hotspot threshold.

    Hotspots cover ~1% of the micro cells; the tokenizer's plain sum-of-squares loss smooths
    them away (default run: peak reconstructed T 841 K against 1230 K, no cell above 875 K).
    The encoders stay frozen, so the latent trajectories, and with them the latent dynamics,
    are unchanged; only the map from tokens to fields is sharpened. Training data: latent means
    of micro training frames (the tokenizer's own data).
    """
    t_start = time.perf_counter()
    sect, dev = cfg["decoder_refine"], _device(cfg)
    src = sect["model"] or str(stage_dir(cfg, "meso-finetune"))
    model, card = load_model(src, kind="latent")
    model = model.to(dev)
    tok = model.tokenizer
    train, _, _ = _micro_split(cfg, "decoder-refine", first=0)
    _same_fields(model.fields, train, "decoder-refine")
    frames = train.fields.reshape(-1, *train.fields.shape[2:])
    pick = np.random.default_rng(cfg["run"]["seed"]).permutation(len(frames))
    if sect["frames"]:
        pick = pick[:sect["frames"]]
    x_all = torch.from_numpy(np.ascontiguousarray(frames[np.sort(pick)]))
    means, _ = encode_trajectories(tok, x_all.numpy()[:, None], device=dev)
    means = means[:, 0]
    L = tok.latent_channels
    fidx = {f: tok.fields.index(f) for f in sect["fields"]}
    thr = normalize(cfg["eval"]["threshold_K"], "T")
    out, ckpt, log = _prepare_dir(cfg, "decoder-refine", resume)

    def params() -> list[torch.nn.Parameter]:
        ps: list[torch.nn.Parameter] = []
        for f in fidx:
            v = tok.vaes[f]
            for m in (v.dec_in, v.dec, v.dec_out):
                ps.extend(m.parameters())
        return ps

    def prepare(phase: Phase) -> None:
        model.eval()
        model.requires_grad_(False)
        for p in params():
            p.requires_grad_(True)

    def batches(phase: Phase, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        perm = rng.permutation(len(x_all))
        for i in range(0, len(perm), sect["batch_size"]):
            yield torch.from_numpy(np.sort(perm[i:i + sect["batch_size"]]))

    def loss_fn(phase: Phase, b: torch.Tensor) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for f, i in fidx.items():
            x = x_all[b, i:i + 1].to(dev)
            rec = tok.vaes[f].decode(means[b, i * L:(i + 1) * L].to(dev))
            w = torch.ones_like(x)
            if f == "T":
                w = w + sect["hotspot_weight"] * (x > sect["near_threshold"] * thr).to(x.dtype)
            terms[f"recon_{f}"] = (w * (rec - x).square()).flatten(1).sum(1).mean()
        terms["total"] = sum(terms.values(), start=x_all.new_zeros(()))
        return terms

    fp = {"decoder_refine": sect, "source_weights": card["weights"]["sha256"],
          "seed": cfg["run"]["seed"]}
    history = fit(model=model, phases=[Phase("decoder", 0, sect["epochs"])],
                  make_optimizer=lambda ph: torch.optim.Adam(
                      params(), lr=sect["lr"], betas=tuple(sect["betas"])),
                  prepare=prepare, batches=batches, loss_fn=loss_fn, ckpt_path=ckpt,
                  seed=cfg["run"]["seed"], fingerprint=fp, resume=resume,
                  checkpoint_every=cfg["run"]["checkpoint_every"],
                  progress=cfg["run"]["progress"], desc="decoder-refine", log_path=log,
                  grad_clip=sect["grad_clip"])
    model.requires_grad_(False)
    metrics: dict[str, Any] = {"train_wall_s": time.perf_counter() - t_start,
                               "final_train_loss": history[-1], "source": str(src),
                               "source_metrics": card.get("metrics", {})}
    ekw = _eval_kw(cfg, dev)
    if card["data"].get("meso"):
        _, val, test, _ = _meso_split(cfg, "decoder-refine")
        for name, ds in (("meso_val", val), ("meso_test", test)):
            if ds.n:
                metrics[name] = evaluate_model(model, ds, **ekw)
    save_model(out, model, kind="latent", architecture=card["architecture"], config=cfg,
               data=card["data"], metrics=metrics)
    return out


# ------------------------------------------------------------------------------------ parc

def run_parc(cfg: dict[str, Any], resume: bool = True) -> Path:
    """Train the PARCv2 baseline on the meso training split only; return the model directory."""
    t_start = time.perf_counter()
    sect, dev = cfg["parc"], _device(cfg)
    train, val, test, rec = _meso_split(cfg, "parc")
    _check_horizons(sect["horizons"], train.n_t, "parc.horizons")
    out, ckpt, log = _prepare_dir(cfg, "parc", resume)
    keys = ("base_channels", "depth", "reps", "features", "integrator", "substeps",
            "correction", "padding_mode")
    arch = {"parc": {"channels": len(train.channels), **{k: sect[k] for k in keys}}}
    torch.manual_seed(cfg["run"]["seed"])
    model = PARCv2(**arch["parc"]).to(dev)
    fields, grid = train.fields, tuple(train.fields.shape[-2:])

    def batches(phase: Phase, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        steps = np.arange(phase.horizon + 1)
        for s, t, (y0, x0, h, w) in _windows(train.n, train.n_t, phase, sect["batch_size"],
                                             rng, grid, sect["crop"],
                                             sect["windows_per_epoch"]):
            x = fields[s[:, None], t[:, None] + steps[None, :]][..., y0:y0 + h, x0:x0 + w]
            yield torch.from_numpy(np.ascontiguousarray(x)).to(dev)

    def loss_fn(phase: Phase, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pred = model(x[:, 0], phase.horizon)
        # same multi-step field loss as the latent model: MSE per field and step, summed
        multi = (pred[:, 1:] - x[:, 1:]).square().mean(dim=(0, 3, 4)).sum()
        return {"multi_step": multi, "total": multi}

    phases = [Phase("parc", h, sect["epochs_per_horizon"]) for h in sect["horizons"]]
    history = fit(model=model, phases=phases,
                  make_optimizer=lambda ph: _adam(model.parameters(), sect),
                  prepare=lambda ph: model.train(), batches=batches, loss_fn=loss_fn,
                  ckpt_path=ckpt, seed=cfg["run"]["seed"],
                  fingerprint={"parc": sect, "data": rec, "seed": cfg["run"]["seed"]},
                  resume=resume, checkpoint_every=cfg["run"]["checkpoint_every"],
                  progress=cfg["run"]["progress"], desc="parc", log_path=log,
                  grad_clip=sect["grad_clip"])
    metrics: dict[str, Any] = {"train_wall_s": time.perf_counter() - t_start,
                               "final_train_loss": history[-1]}
    ekw = _eval_kw(cfg, dev)
    for name, ds in (("meso_val", val), ("meso_test", test)):
        if ds.n:
            metrics[name] = evaluate_model(model, ds, **ekw)
    save_model(out, model, kind="parc", architecture=arch, config=cfg, data={"meso": rec},
               metrics=metrics, channels=train.channels)
    return out


_RUNNERS = {"vae": run_vae, "micro-dynamics": run_micro_dynamics,
            "meso-finetune": run_meso_finetune, "decoder-refine": run_decoder_refine,
            "parc": run_parc}


def run_stages(cfg: dict[str, Any], stages: Sequence[str] | None = None,
               resume: bool = True) -> dict[str, Path]:
    """Run ``stages`` (default ``run.stages``) in pipeline order; return their model dirs."""
    wanted = list(stages or cfg["run"]["stages"])
    bad = [s for s in wanted if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage {bad[0]!r}; allowed: {list(STAGES)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg["run"]["threads"])
    try:
        return {s: _RUNNERS[s](cfg, resume) for s in STAGES if s in wanted}
    finally:  # a library call must not change the caller's thread count
        torch.set_num_threads(threads)

