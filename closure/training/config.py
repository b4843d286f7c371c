"""Training configuration: TOML file merged over defaults, with strict key and type checks.

Every run is reproducible from its resolved config plus seed; the resolved config is stored in
every checkpoint and model card. Unknown keys are errors (a typo must not silently fall back to
a default). Stage names: ``vae``, ``micro-dynamics``, ``meso-finetune``, ``parc``.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from closure.normalization import CHANNELS, HOTSPOT_THRESHOLD_K

__all__ = ["DEFAULTS", "STAGES", "ConfigError", "load_config", "resolve_config"]

STAGES = ("vae", "micro-dynamics", "meso-finetune", "decoder-refine", "parc")

#: Defaults: the small CPU model (base 16, trainable on 2 cores; docs/model.md).
#: ``""`` means "not set".
DEFAULTS: dict[str, Any] = {
    "run": {
        "name": "closure",
        "out_dir": "runs/closure",
        "seed": 0,
        "threads": 2,
        "device": "cpu",
        "stages": list(STAGES),
        "checkpoint_every": 1,          # epochs
        "progress": True,
    },
    "data": {
        "micro": "",                    # HDF5 of micro (single-pore) trajectories
        "meso": "",                     # HDF5 of meso (many-pore) trajectories
        "micro_val_fraction": 0.1,
        "meso_n_val": 2,
        "meso_n_test": 6,
        "meso_n_train": 0,              # 0: all remaining samples; else the first n (nested)
        "split_seed": 0,
        "first_frame": 1,               # dynamics/PARC data start here (frame 0: pre-shock)
    },
    "vae": {
        "base_channels": 16,
        "latent_channels": 4,
        "padding_mode": "zeros",
        "logvar_init": -6.0,            # initial latent log-variance (avoids posterior collapse)
        "epochs": 10,
        "batch_size": 16,
        "lr": 1.0e-3,
        "betas": [0.9, 0.999],
        "grad_clip": 100.0,  # max global gradient norm; 0 = off
        "crop": [],                     # [h, w] random crops (multiples of 8); [] = full frames
        "frames_per_epoch": 0,          # random subset of frames per epoch; 0 = all
        "perceptual_net": "",           # "package.module:factory"; needs loss.perceptual > 0
        "loss": {"recon": 1.0, "kl": 1.0e-3, "edge": 1.0, "perceptual": 0.0},
    },
    "dynamics": {
        "base_channels": 16,
        "depth": 2,
        "reps": 2,
        "dropout": 0.1,
        "residual": True,
        "padding_mode": "zeros",
    },
    "micro_dynamics": {
        "vae": "",                      # tokenizer model dir; "" = <out_dir>/vae
        "phases": ["decoupled", "coupled"],
        "horizons": [1, 2, 3, 4, 5],
        "epochs_per_horizon": 2,
        "windows_per_epoch": 0,         # random subset of (sample, start) windows; 0 = all
        "batch_size": 8,
        "lr": 1.0e-3,
        "betas": [0.5, 0.99],
        "grad_clip": 100.0,  # max global gradient norm; 0 = off
        "crop": [],                     # [h, w] crop whole windows (cells, multiples of 8)
        "decode_crop": [],              # [h, w] decode only this crop for the multi-step loss
        "sample_decode": True,          # multi-step loss on decoded *sampled* latents
        "loss": {"mean": 1.0, "logvar": 1.0, "multi_step": 1.0, "hotspot_tokens": 0.0,
                 "hotspot_near": 0.8},
    },
    "meso_finetune": {
        "micro_model": "",              # micro latent model dir; "" = <out_dir>/micro-dynamics
        "substeps": 0,                  # micro steps per meso step; 0 = floor(meso dt/micro dt)
        "horizons": [1, 2, 3],
        "epochs_per_horizon": 5,
        "windows_per_epoch": 0,
        "batch_size": 2,
        "lr": 5.0e-4,
        "betas": [0.5, 0.99],
        "grad_clip": 100.0,  # max global gradient norm; 0 = off
        "crop": [],                     # [h, w] crop whole windows (cells, multiples of 8)
        "decode_crop": [],              # [h, w] decode only this crop for the multi-step loss
        "sample_decode": True,
        "loss": {"mean": 1.0, "logvar": 1.0, "multi_step": 1.0, "hotspot_tokens": 0.0,
                 "hotspot_near": 0.8},
    },
    "decoder_refine": {
        "model": "",                    # latent model dir; "" = <out_dir>/meso-finetune
        "fields": ["T"],                # decoders refined (encoders frozen: latents unchanged)
        "frames": 2000,                 # micro training frames used (0 = all)
        "epochs": 3,
        "batch_size": 16,
        "lr": 3.0e-4,
        "betas": [0.9, 0.999],
        "grad_clip": 100.0,
        "hotspot_weight": 20.0,         # extra SSE weight on T cells near/above the threshold
        "near_threshold": 0.8,          # ... i.e. normalized T > near_threshold * threshold
    },
    "parc": {
        "base_channels": 16,
        "depth": 3,
        "reps": 2,
        "features": 32,
        "integrator": "heun",
        "substeps": 2,
        "correction": False,
        "padding_mode": "replicate",
        "horizons": [1, 2, 3],
        "epochs_per_horizon": 5,
        "windows_per_epoch": 0,
        "batch_size": 2,
        "lr": 1.0e-3,
        "betas": [0.9, 0.999],
        "grad_clip": 100.0,  # max global gradient norm; 0 = off
        "crop": [],
    },
    "eval": {
        "threshold_K": HOTSPOT_THRESHOLD_K,
        "t_start": 1,
        "sample": False,                # decode latent means (False) or one sample (True)
        "batch_size": 2,
    },
}


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type or an invalid value."""


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, val in over.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise ConfigError(f"unknown config key {path!r}; allowed: {sorted(base)}")
        ref = base[key]
        if isinstance(ref, dict):
            if not isinstance(val, Mapping):
                raise ConfigError(f"config key {path!r} must be a table")
            out[key] = _merge(ref, val, path)
        elif isinstance(ref, bool):
            if not isinstance(val, bool):
                raise ConfigError(f"config key {path!r} must be true/false, got {val!r}")
            out[key] = val
        elif isinstance(ref, float):
            if isinstance(val, bool) or not isinstance(val, int | float):
                raise ConfigError(f"config key {path!r} must be a number, got {val!r}")
            out[key] = float(val)
        elif isinstance(ref, int):
            if isinstance(val, bool) or not isinstance(val, int):
                raise ConfigError(f"config key {path!r} must be an integer, got {val!r}")
            out[key] = val
        elif isinstance(ref, str):
            if not isinstance(val, str):
                raise ConfigError(f"config key {path!r} must be a string, got {val!r}")
            out[key] = val
        elif isinstance(ref, list):
            if not isinstance(val, list):
                raise ConfigError(f"config key {path!r} must be a list, got {val!r}")
            out[key] = list(val)
        else:  # pragma: no cover - defaults only hold the types above
            out[key] = val
    return out


def _positive(cfg: dict[str, Any], sect: str, *keys: str) -> None:
    for k in keys:
        if cfg[sect][k] <= 0:
            raise ConfigError(f"config key '{sect}.{k}' must be > 0, got {cfg[sect][k]}")


def resolve_config(user: Mapping[str, Any], base_dir: str | Path | None = None) -> dict[str, Any]:
    """Merge ``user`` over :data:`DEFAULTS`, validate, and make relative paths absolute.

    Relative data/output paths are resolved against ``base_dir`` (default: the current
    directory; the CLI is meant to run from the repository root).
    """
    cfg = _merge(DEFAULTS, user, "")
    bad = [s for s in cfg["run"]["stages"] if s not in STAGES]
    if bad:
        raise ConfigError(f"run.stages: unknown stage {bad[0]!r}; allowed: {list(STAGES)}")
    for s in ("micro_dynamics",):
        ph = cfg[s]["phases"]
        if not ph or any(p not in ("decoupled", "coupled") for p in ph):
            raise ConfigError(f"{s}.phases must be a non-empty list of 'decoupled'/'coupled', "
                              f"got {ph}")
    ff = cfg["data"]["first_frame"]
    if not isinstance(ff, int) or isinstance(ff, bool) or ff < 0:
        raise ConfigError(f"data.first_frame must be an integer >= 0, got {ff!r}")
    for s in ("micro_dynamics", "meso_finetune", "parc"):
        hz = cfg[s]["horizons"]
        if not hz or any(not isinstance(h, int) or h < 1 for h in hz):
            raise ConfigError(f"{s}.horizons must be a non-empty list of integers >= 1, got {hz}")
        _positive(cfg, s, "epochs_per_horizon", "batch_size", "lr")
        if len(cfg[s]["betas"]) != 2:
            raise ConfigError(f"{s}.betas must have 2 entries, got {cfg[s]['betas']}")
    _positive(cfg, "vae", "epochs", "batch_size", "lr", "base_channels", "latent_channels")
    _positive(cfg, "decoder_refine", "epochs", "batch_size", "lr")
    bad = [f for f in cfg["decoder_refine"]["fields"] if f not in CHANNELS]
    if bad or not cfg["decoder_refine"]["fields"]:
        raise ConfigError(f"decoder_refine.fields must be a non-empty subset of {list(CHANNELS)}, "
                          f"got {cfg['decoder_refine']['fields']}")
    _positive(cfg, "dynamics", "base_channels", "reps")
    _positive(cfg, "run", "threads", "checkpoint_every")
    for s, key in (("vae", "crop"), ("micro_dynamics", "crop"), ("meso_finetune", "crop"),
                   ("parc", "crop"), ("micro_dynamics", "decode_crop"),
                   ("meso_finetune", "decode_crop")):
        c = cfg[s][key]
        if c and (len(c) != 2 or any(not isinstance(v, int) or v <= 0 or v % 8 for v in c)):
            raise ConfigError(f"{s}.{key} must be [] or [h, w], positive multiples of 8; "
                              f"got {c}")
    for s, key in (("vae", "frames_per_epoch"), ("micro_dynamics", "windows_per_epoch"),
                   ("meso_finetune", "windows_per_epoch"), ("parc", "windows_per_epoch")):
        if cfg[s][key] < 0:
            raise ConfigError(f"{s}.{key} must be >= 0 (0 = all), got {cfg[s][key]}")
    if not 0.0 <= cfg["data"]["micro_val_fraction"] < 1.0:
        raise ConfigError("data.micro_val_fraction must be in [0, 1), got "
                          f"{cfg['data']['micro_val_fraction']}")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    for sect, key in (("run", "out_dir"), ("data", "micro"), ("data", "meso"),
                      ("micro_dynamics", "vae"), ("meso_finetune", "micro_model"),
                      ("decoder_refine", "model")):
        v = cfg[sect][key]
        if v and not Path(v).is_absolute():
            cfg[sect][key] = str((base / v).resolve())
    return cfg


def load_config(path: str | Path, base_dir: str | Path | None = None) -> dict[str, Any]:
    """Read a TOML config and resolve it (relative paths: against ``base_dir``, default cwd)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    with open(path, "rb") as fh:
        try:
            user = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return resolve_config(user, base_dir)
