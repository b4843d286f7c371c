"""Data-generation configs: defaults per scale, TOML overrides, validation.

A config is a nested dict (sections ``physics``, ``loading``, ``numerics``, ``grid``, ``time``,
``geometry``) resolved from :mod:`closure.data.params`, an optional TOML file and ``--set
section.key=value`` overrides. The resolved config is stored in every data set; the same config
and seed reproduce the same arrays bit for bit.
"""

from __future__ import annotations

import ast
import copy
import json
import tomllib
from pathlib import Path
from typing import Any

from .params import defaults_for

__all__ = ["load_data_config", "apply_overrides", "validate", "config_json"]


def _merge(base: dict, over: dict, path: str = "") -> None:
    for k, v in over.items():
        where = f"{path}{k}"
        if k not in base:
            raise ValueError(f"config key {where!r} is unknown (known here: {sorted(base)})")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise ValueError(f"config key {where!r} must be a table, got {v!r}")
            _merge(base[k], v, where + ".")
        else:
            base[k] = copy.deepcopy(v)


def load_data_config(scale: str, source: str | Path | dict | None = None,
                     overrides: list[str] | None = None) -> dict:
    """Defaults of ``scale`` updated by a TOML file (or dict) and ``key=value`` overrides."""
    cfg = defaults_for(scale)
    if source is not None:
        if isinstance(source, dict):
            over = copy.deepcopy(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"data config {path} does not exist")
            with path.open("rb") as fh:
                over = tomllib.load(fh)
        file_scale = over.pop("scale", scale)
        if file_scale != scale:
            raise ValueError(f"config {source} is for scale {file_scale!r}, not {scale!r}")
        over.pop("title", None)
        _merge(cfg, over)
    apply_overrides(cfg, overrides or [])
    validate(cfg)
    return cfg


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (value parsed as a Python literal, else a string)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, text = item.split("=", 1)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        parts = key.strip().split(".")
        node = cfg
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ValueError(f"override {item!r}: {p!r} is not a config section")
            node = node[p]
        if parts[-1] not in node:
            raise ValueError(f"override {item!r}: key {parts[-1]!r} is unknown "
                             f"(known: {sorted(node)})")
        node[parts[-1]] = value
    return cfg


def _range(cfg: dict, section: str, key: str, lo: float, hi: float) -> None:
    v = cfg[section][key]
    if not (isinstance(v, list | tuple) and len(v) == 2):
        raise ValueError(f"[{section}] {key} must be a pair [min, max], got {v!r}")
    a, b = float(v[0]), float(v[1])
    if not (lo <= a <= b <= hi):
        raise ValueError(f"[{section}] {key} = [{a}, {b}] must satisfy {lo} <= min <= max <= {hi}")


def _positive(cfg: dict, section: str, key: str) -> None:
    v = cfg[section][key]
    if not (isinstance(v, int | float) and v > 0):
        raise ValueError(f"[{section}] {key} = {v!r} must be a number > 0")


def validate(cfg: dict) -> None:
    """Raise ``ValueError`` naming the offending key and its allowed range."""
    g = cfg["grid"]
    for k in ("nx", "ny"):
        n = g[k]
        if not (isinstance(n, int) and n >= 8 and n % 8 == 0):
            raise ValueError(f"[grid] {k} = {n!r} must be a positive multiple of 8 (token size)")
    _positive(cfg, "grid", "dx")
    _positive(cfg, "time", "frame_dt")
    nf = cfg["time"]["n_frames"]
    if not (isinstance(nf, int) and nf >= 1):
        raise ValueError(f"[time] n_frames = {nf!r} must be an integer >= 1")
    _range(cfg, "loading", "u_p", 1.0, 5000.0)
    if cfg["loading"]["distribution"] not in ("uniform", "log_pressure"):
        raise ValueError(f"[loading] distribution = {cfg['loading']['distribution']!r} must be "
                         "'uniform' (in u_p) or 'log_pressure'")
    if not cfg["loading"]["ramp_time"] >= 0:
        raise ValueError(f"[loading] ramp_time = {cfg['loading']['ramp_time']!r} must be >= 0 s")
    ph = cfg["physics"]
    if not (0.0 < ph["alpha_floor"] < 0.01):
        raise ValueError(f"[physics] alpha_floor = {ph['alpha_floor']!r} must be in (0, 0.01)")
    if not (0.0 < ph["hmx_cell_alpha"] < 1.0):
        raise ValueError(f"[physics] hmx_cell_alpha = {ph['hmx_cell_alpha']!r} must be in (0, 1)")
    if ph["t_fill"] not in ("nearest", "ambient"):
        raise ValueError(f"[physics] t_fill = {ph['t_fill']!r} must be 'nearest' or 'ambient'")
    if ph["reaction"]["cells"] not in ("hmx", "all"):
        raise ValueError(f"[physics.reaction] cells = {ph['reaction']['cells']!r} must be 'hmx' "
                         "or 'all'")
    if not ph["reaction"]["rate_scale"] >= 0:
        raise ValueError("[physics.reaction] rate_scale must be >= 0 (0 switches chemistry off)")
    _validate_materials(ph)
    geo = cfg["geometry"]
    if geo["kind"] not in ("single", "many"):
        raise ValueError(f"[geometry] kind = {geo['kind']!r} must be 'single' or 'many'")
    allowed = {"circle", "ellipse", "fourier"}
    if not geo["shapes"] or set(geo["shapes"]) - allowed:
        raise ValueError(f"[geometry] shapes = {geo['shapes']!r} must be a non-empty subset of "
                         f"{sorted(allowed)}")
    _range(cfg, "geometry", "radius", 1e-9, 1.0)
    _range(cfg, "geometry", "aspect", 1.0, 10.0)
    if not (0.0 <= geo["fourier_amplitude"] < 0.5):
        raise ValueError(f"[geometry] fourier_amplitude = {geo['fourier_amplitude']!r} must be "
                         "in [0, 0.5)")
    if geo["kind"] == "single":
        _range(cfg, "geometry", "lead_gap", 0.0, 1.0)
    else:
        _range(cfg, "geometry", "porosity", 0.0, 0.5)
    Ly = g["ny"] * g["dx"]
    rmax, armax, rmin = geo["radius"][1], geo["aspect"][1], geo["min_radius"]
    extent = 2 * rmax * (1 + geo["fourier_amplitude"]) / (1 - geo["fourier_amplitude"])
    if "ellipse" in geo["shapes"]:
        extent = max(extent, 2 * max(rmax * armax ** 0.5, rmin * armax))
    if extent >= Ly:
        raise ValueError(f"[geometry] the largest pore (extent up to {extent:.3e} m from radius "
                         f"{rmax} m, aspect {armax}) does not fit the domain height {Ly} m")


def _number(section: str, key: str, v: Any, lo: float = 0.0, strict: bool = True) -> None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and (v > lo if strict
                                                                        else v >= lo)
    if not ok:
        raise ValueError(f"[{section}] {key} = {v!r} must be a number {'>' if strict else '>='} "
                         f"{lo}")


def _validate_materials(ph: dict) -> None:
    """HMX EOS, products and transport tables: names, switches and positive parameters."""
    h = ph["hmx"]
    if h["eos"] not in ("hayes", "us_up"):
        raise ValueError(f"[physics.hmx] eos = {h['eos']!r} must be 'hayes' or 'us_up'")
    keys = ("rho0", "K0", "gamma0", "cv", "T0") if h["eos"] == "hayes" else (
        "rho0", "c0", "s", "gamma0", "cv", "T0")
    for k in keys:
        _number("physics.hmx", k, h[k])
    if h["eos"] == "hayes":
        _number("physics.hmx", "N", h["N"], 1.0)
    pr = ph["products"]
    if not isinstance(pr["enabled"], bool):
        raise ValueError(f"[physics.products] enabled = {pr['enabled']!r} must be true or false")
    if pr["enabled"]:
        for k in ("A", "R1", "R2", "omega", "rho0", "cv"):
            _number("physics.products", k, pr[k])
        _number("physics.products", "B", pr["B"], float("-inf"))
    tr = ph["transport"]
    for k in ("conduction", "viscosity"):
        if not isinstance(tr[k], bool):
            raise ValueError(f"[physics.transport] {k} = {tr[k]!r} must be true or false")
    for k in ("kappa_hmx", "kappa_gas", "mu_hmx", "mu_gas"):
        _number("physics.transport", k, tr[k], 0.0, strict=False)
    if not (0.0 <= tr["gas_cell_alpha"] < 1.0):
        raise ValueError(f"[physics.transport] gas_cell_alpha = {tr['gas_cell_alpha']!r} must "
                         "be in [0, 1)")


def config_json(cfg: dict) -> str:
    """Canonical JSON of a resolved config (sorted keys): stored in files, compared on resume."""
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def from_json(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode()
    return json.loads(text)
