"""A trained model is a directory: ``model.pt`` (state_dict) + ``model_card.json``.

The card records what is needed to rebuild and to trust the model: architecture, the resolved
training config, normalization ranges and channel order, the data each role was trained on
(path, sha256, dt, dx, sample indices), metrics, and library versions. :func:`load_model`
rebuilds the network from the card and checks, with an error that names the mismatch:
card format, model kind, normalization ranges and channels, the weights' sha256, optional data
hashes, and state_dict keys and shapes. A different torch version only warns.
"""

from __future__ import annotations

import io
import json
import math
import platform
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from closure.files import atomic_write_bytes, data_hash, portable_paths, sha256_of
from closure.models.dynamics import LatentClosureModel, LatentDynamics
from closure.models.parc import PARCv2
from closure.models.vae import Tokenizer
from closure.normalization import CHANNELS, HOTSPOT_THRESHOLD_K, NORM_RANGES

__all__ = [
    "CARD_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "WEIGHTS_FILE",
    "ModelCardError",
    "build_model",
    "check_card",
    "library_versions",
    "load_model",
    "read_card",
    "save_model",
]

FORMAT = "porous-closure-model"
FORMAT_VERSION = 1
CARD_FILE = "model_card.json"
WEIGHTS_FILE = "model.pt"
KINDS = ("tokenizer", "latent", "parc")


class ModelCardError(ValueError):
    """A model directory does not match what the caller or the card itself expects."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for pkg in ("numpy", "h5py", "porous-closure"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def build_model(kind: str, architecture: Mapping[str, Any]) -> nn.Module:
    """Instantiate an untrained network of ``kind`` from a card's ``architecture``."""
    try:
        if kind == "tokenizer":
            return Tokenizer(**architecture["tokenizer"])
        if kind == "latent":
            return LatentClosureModel(Tokenizer(**architecture["tokenizer"]),
                                      LatentDynamics(**architecture["dynamics"]),
                                      int(architecture["substeps"]),
                                      bool(architecture.get("coupled", True)))
        if kind == "parc":
            return PARCv2(**architecture["parc"])
    except (KeyError, TypeError) as exc:
        raise ModelCardError(f"architecture of a {kind!r} model is invalid: {exc!r}") from exc
    raise ModelCardError(f"unknown model kind {kind!r}; known: {list(KINDS)}")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item") and callable(x.item):
        return _jsonable(x.item())
    return x


def save_model(directory: str | Path, model: nn.Module, *, kind: str,
               architecture: Mapping[str, Any], config: Mapping[str, Any] | None = None,
               data: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
               extra: Mapping[str, Any] | None = None,
               channels: Sequence[str] | None = None) -> dict[str, Any]:
    """Write ``model``'s state_dict and its card into ``directory`` (atomically); return the card.

    ``data`` maps a role (``"micro"``, ``"meso"``) to :meth:`TrajectorySet.info` dicts;
    ``channels``: the fields the model sees, in order (default: ``model.fields``).
    """
    channels = list(channels if channels is not None else model.fields)
    unknown = [c for c in channels if c not in NORM_RANGES]
    if unknown:
        raise ModelCardError(f"channels {unknown} have no normalization range; known: "
                             f"{sorted(NORM_RANGES)}")
    if kind not in KINDS:
        raise ModelCardError(f"unknown model kind {kind!r}; known: {list(KINDS)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    weights = buf.getvalue()
    atomic_write_bytes(directory / WEIGHTS_FILE, weights)
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": dict(architecture),
        "normalization": {"channels": channels,
                          "ranges": {k: list(NORM_RANGES[k]) for k in channels},
                          "hotspot_threshold_K": HOTSPOT_THRESHOLD_K},
        "data": dict(data or {}),
        "metrics": dict(metrics or {}),
        "config": dict(config or {}),
        "versions": library_versions(),
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_of(weights),
                    "n_parameters": sum(p.numel() for p in model.parameters())},
    }
    card.update(extra or {})
    card = portable_paths(_jsonable(card))
    atomic_write_bytes(directory / CARD_FILE,
                       (json.dumps(card, indent=2, allow_nan=False) + "\n").encode())
    return card


def read_card(directory: str | Path) -> dict[str, Any]:
    """Parse ``model_card.json`` of a model directory (format checked)."""
    path = Path(directory) / CARD_FILE
    if not path.exists():
        raise ModelCardError(f"{directory}: no {CARD_FILE}; not a model directory")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelCardError(f"{path}: invalid JSON: {exc}") from exc
    if card.get("format") != FORMAT:
        raise ModelCardError(f"{path}: format is {card.get('format')!r}, expected {FORMAT!r}")
    if card.get("format_version") != FORMAT_VERSION:
        raise ModelCardError(f"{path}: format_version {card.get('format_version')!r} is not "
                             f"supported (this code reads version {FORMAT_VERSION})")
    return card


def check_card(card: Mapping[str, Any], *, where: str = "model", kind: str | None = None,
               data: Mapping[str, str | Path] | None = None,
               norm_ranges: Mapping[str, Any] | None = None,
               channels: Any = None) -> None:
    """Raise :class:`ModelCardError` if the card disagrees with what the caller expects."""
    if kind is not None and card.get("kind") != kind:
        raise ModelCardError(f"{where}: model kind is {card.get('kind')!r}, expected {kind!r}")
    norm = card.get("normalization", {})
    have_ch = list(norm.get("channels", []))
    if channels is not None and have_ch != list(channels):
        raise ModelCardError(f"{where}: channels {have_ch} != expected {list(channels)}")
    order = [c for c in CHANNELS if c in have_ch]
    if not have_ch or have_ch != order:
        raise ModelCardError(f"{where}: channels {have_ch} must be a non-empty subset of "
                             f"{list(CHANNELS)} in this order")
    table = norm_ranges or NORM_RANGES
    exp = {k: [float(a), float(b)] for k, (a, b) in table.items() if k in have_ch}
    got = {k: [float(a), float(b)] for k, (a, b) in norm.get("ranges", {}).items()}
    for field, rng in exp.items():
        if got.get(field) is None or any(not math.isclose(a, b, rel_tol=1e-9)
                                         for a, b in zip(got[field], rng, strict=True)):
            raise ModelCardError(f"{where}: normalization range of {field!r} is "
                                 f"{got.get(field)}, expected {rng}; the model was trained on "
                                 "differently scaled data")
    for role, path in (data or {}).items():
        rec = card.get("data", {}).get(role)
        if rec is None:
            raise ModelCardError(f"{where}: card has no data record for role {role!r} "
                                 f"(has {sorted(card.get('data', {}))})")
        h = data_hash(path)
        if rec.get("sha256") != h:
            raise ModelCardError(f"{where}: {role} data {str(path)!r} has sha256 {h[:16]}..., "
                                 f"but the model was trained on {str(rec.get('sha256'))[:16]}... "
                                 f"({rec.get('path')})")


def load_model(directory: str | Path, *, kind: str | None = None,
               data: Mapping[str, str | Path] | None = None,
               norm_ranges: Mapping[str, Any] | None = None,
               map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild, check and load the model in ``directory``; return (model in eval mode, card).

    ``kind``: expected model kind; ``data``: role -> data file whose hash must match the card;
    ``norm_ranges``: expected ranges (default :data:`closure.normalization.NORM_RANGES`).
    """
    directory = Path(directory)
    card = read_card(directory)
    check_card(card, where=str(directory), kind=kind, data=data, norm_ranges=norm_ranges)
    wpath = directory / card.get("weights", {}).get("file", WEIGHTS_FILE)
    if not wpath.exists():
        raise ModelCardError(f"{directory}: weights file {wpath.name} is missing")
    raw = wpath.read_bytes()
    want = card.get("weights", {}).get("sha256")
    if sha256_of(raw) != want:
        raise ModelCardError(f"{directory}: {wpath.name} does not match the sha256 in "
                             f"{CARD_FILE}; weights were replaced or corrupted")
    model = build_model(card["kind"], card["architecture"])
    state = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    ref = model.state_dict()
    missing = sorted(set(ref) - set(state))
    unexpected = sorted(set(state) - set(ref))
    shapes = [k for k in set(ref) & set(state) if ref[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise ModelCardError(
            f"{directory}: weights do not fit the architecture in the card: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, shape mismatch "
            f"{[(k, tuple(state[k].shape), tuple(ref[k].shape)) for k in sorted(shapes)[:3]]}")
    model.load_state_dict(state)
    saved = card.get("versions", {}).get("torch")
    if saved and saved.split("+")[0] != torch.__version__.split("+")[0]:
        warnings.warn(f"{directory}: model saved with torch {saved}, running "
                      f"{torch.__version__}", stacklevel=2)
    return model.eval(), card
