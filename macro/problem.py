"""Problem builders: a validated config becomes a model, a grid, initial data, a rate and a
:class:`~macro.solver.Solver` (the config layout: :mod:`macro.simulation`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .boundary import SIDES
from .config import CLOSURE_KEYS
from .domain import Domain
from .eos import eos_from_dict
from .grid import GridSpec
from .models import EulerModel, FiveEquationModel
from .reaction import rate_from_dict
from .solver import Solver

__all__ = ["build_grid", "build_model", "build_rate", "build_solver", "initial_primitives",
           "resolve_factory", "resolve_piston_pressure"]

SUBSAMPLES = 8  # per axis, for area fractions of cut cells


def resolve_factory(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:attr.attr"`` and return the named object."""
    import importlib

    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"[reaction] provider={spec!r} must look like 'package.module:factory' "
                         "(e.g. 'closure:Closure.load')")
    mod_name, attr_path = spec.split(":")
    if not mod_name or not attr_path:
        raise ValueError(f"[reaction] provider={spec!r} must look like 'package.module:factory'")
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"[reaction] provider={spec!r}: cannot import module {mod_name!r} "
                         f"({exc})") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"[reaction] provider={spec!r}: {mod_name!r} has no attribute "
                             f"path {attr_path!r} (missing {part!r})") from None
    if not callable(obj):
        raise ValueError(f"[reaction] provider={spec!r} is not callable")
    return obj


def build_rate(cfg: dict, rate=None) -> Any:
    """The run's reaction rate: ``rate`` if given (a provider with ``query`` is wrapped in a
    :class:`macro.coupling.QueryRate`), else built from [reaction]."""
    rcfg = cfg.get("reaction")
    is_closure = rcfg is not None and rcfg.get("type") == "closure"
    provider = None
    if rate is not None:
        if not (hasattr(rate, "query") and not hasattr(rate, "rate") and not hasattr(rate, "pack")):
            return rate
        provider = rate
    if provider is None and not is_closure:
        if rcfg is None:
            return None
        return _builtin_rate(rcfg)
    from .coupling import QueryRate

    opts = dict(rcfg) if is_closure else {}
    unknown = set(opts) - CLOSURE_KEYS
    if unknown:
        raise ValueError(f"[reaction] of type 'closure' has unknown keys {sorted(unknown)}; "
                         f"allowed: {sorted(CLOSURE_KEYS)}")
    if provider is None:
        if "provider" not in opts:
            raise ValueError("[reaction] type = 'closure' needs provider = "
                             "'package.module:factory' (or pass rate=<provider> from Python)")
        args = opts.get("provider_args", {})
        if not isinstance(args, dict):
            raise ValueError(f"[reaction] provider_args={args!r} must be a table")
        provider = resolve_factory(opts["provider"])(**args)
        if not callable(getattr(provider, "query", None)):
            raise ValueError(f"[reaction] provider={opts['provider']!r} returned "
                             f"{type(provider).__name__} without a query() method")
    kw = {k: opts[k] for k in CLOSURE_KEYS - {"type", "provider", "provider_args"}
          if k in opts}
    return QueryRate(provider, **kw)


def _builtin_rate(rcfg: dict):
    from dataclasses import fields

    from .reaction import Arrhenius, LeeTarver

    d = {k: v for k, v in rcfg.items() if k != "material"}
    cls = {"Arrhenius": Arrhenius, "LeeTarver": LeeTarver}.get(d.get("type"))
    if cls is not None:
        allowed = {f.name for f in fields(cls)}
        unknown = set(d) - allowed - {"type"}
        if unknown:
            raise ValueError(f"[reaction] of type {d['type']!r} has unknown keys "
                             f"{sorted(unknown)}; allowed: {sorted(allowed | {'material'})}")
    elif d.get("type") is not None:
        raise ValueError(f"[reaction] type={d.get('type')!r} is not one of "
                         "['Arrhenius', 'LeeTarver', 'closure']")
    return rate_from_dict(d)


def resolve_piston_pressure(cfg: dict, model) -> None:
    """Turn [boundary] piston_pressure (Pa per side) into piston_velocity (kept in the config)."""
    b = cfg.get("boundary", {})
    pp = b.get("piston_pressure")
    if not pp:
        return
    if not isinstance(pp, dict):
        raise ValueError(f"[boundary] piston_pressure={pp!r} must be a table of side = Pa")
    from .eos import MieGruneisen
    from .materials import piston_velocity_for

    eos = getattr(model, "eos", None)
    if not isinstance(eos, MieGruneisen):
        raise ValueError("[boundary] piston_pressure needs an euler model whose unreacted eos is "
                         f"MieGruneisen (got {type(eos).__name__}); give piston_velocity instead")
    pv = b.setdefault("piston_velocity", {})
    for side, P in pp.items():
        if side not in ("x_low", "x_high", "y_low", "y_high"):
            raise ValueError(f"[boundary] piston_pressure side {side!r} is not one of "
                             "['x_low', 'x_high', 'y_low', 'y_high']")
        if not (isinstance(P, int | float) and np.isfinite(P) and P > 0):
            raise ValueError(f"[boundary] piston_pressure.{side}={P!r} must be a number > 0 (Pa)")
        if b.get(side) != "piston":
            raise ValueError(f"[boundary] piston_pressure.{side} needs {side} = 'piston'")
        sign = 1.0 if side.endswith("low") else -1.0
        v = sign * piston_velocity_for(float(P), eos)
        if side in pv and not np.isclose(pv[side], v, rtol=1e-9):
            raise ValueError(f"[boundary] gives both piston_pressure.{side} and "
                             f"piston_velocity.{side}; give one")
        pv[side] = v


def build_model(mcfg: dict) -> EulerModel | FiveEquationModel:
    kind = mcfg["type"]
    if kind == "euler":
        products = mcfg.get("products")
        return EulerModel(eos_from_dict(mcfg["eos"]),
                          eos_from_dict(products) if products else None, mcfg.get("Q", 0.0))
    if kind == "five_equation":
        return FiveEquationModel(eos_from_dict(mcfg["eos1"]), eos_from_dict(mcfg["eos2"]),
                                 mcfg.get("Q", 0.0), mcfg.get("kapila", False))
    raise ValueError(f"model type={kind!r} is not one of ['euler', 'five_equation']")


def build_grid(gcfg: dict) -> GridSpec:
    nx, ny = int(gcfg["nx"]), int(gcfg.get("ny", 1))
    x0, x1 = float(gcfg.get("x_min", 0.0)), float(gcfg.get("x_max", 1.0))
    y0, y1 = float(gcfg.get("y_min", 0.0)), float(gcfg.get("y_max", 1.0))
    if nx < 4 or ny < 1 or (ny > 1 and ny < 4):
        raise ValueError(f"grid nx={nx}, ny={ny}: need nx >= 4 and ny == 1 or ny >= 4")
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"grid extent x=[{x0}, {x1}], y=[{y0}, {y1}] must be increasing")
    return GridSpec(nx=nx, ny=ny, dx=(x1 - x0) / nx, dy=(y1 - y0) / ny, x0=x0, y0=y0)


def _region_fraction(region: dict, grid: GridSpec) -> np.ndarray:
    """Area fraction of every cell covered by a region, shape (ny, nx)."""
    s = SUBSAMPLES
    offs = (np.arange(s) + 0.5) / s
    xs = grid.x0 + (np.arange(grid.nx)[:, None] + offs[None, :]).ravel() * grid.dx
    if grid.ny == 1:
        ys = np.array([grid.y0 + 0.5 * grid.dy])
        sy = 1
    else:
        ys = grid.y0 + (np.arange(grid.ny)[:, None] + offs[None, :]).ravel() * grid.dy
        sy = s
    X, Y = np.meshgrid(xs, ys)
    shape = region.get("shape", "box")
    if shape == "box":
        xa, xb = region.get("x", [-np.inf, np.inf])
        ya, yb = region.get("y", [-np.inf, np.inf])
        inside = (X >= xa) & (X < xb) & (Y >= ya) & (Y < yb)
    elif shape == "circle":
        cx, cy = region["center"]
        inside = (X - cx) ** 2 + (Y - cy) ** 2 < region["radius"] ** 2
    else:
        raise ValueError(f"region shape={shape!r} is not one of ['box', 'circle']")
    frac = inside.reshape(grid.ny, sy, grid.nx, s).mean(axis=(1, 3))
    return frac


def initial_primitives(cfg: dict, model, grid: GridSpec) -> dict[str, np.ndarray]:
    pcfg = cfg.get("problem", {})
    kind = pcfg.get("type", "regions")
    if kind == "riemann":
        x0 = float(pcfg.get("x0", 0.5 * (grid.x0 + grid.x0 + grid.nx * grid.dx)))
        background = pcfg["right"]
        regions = [{"shape": "box", "x": [-np.inf, x0], "state": pcfg["left"]}]
    elif kind == "regions":
        background = pcfg.get("background")
        if background is None:
            raise ValueError("config [problem] of type 'regions' needs a background state")
        regions = pcfg.get("regions", [])
    else:
        raise ValueError(f"problem type={kind!r} is not one of ['riemann', 'regions']")
    names = model.primitive_names
    for st in (background, *(r["state"] for r in regions)):
        unknown = set(st) - set(names)
        if unknown:
            raise ValueError(f"state keys {sorted(unknown)} are not fields of this model "
                             f"({list(names)})")
    prim = {n: np.full((grid.ny, grid.nx), float(background.get(n, 0.0))) for n in names}
    for region in regions:
        frac = _region_fraction(region, grid)
        for n in names:
            v = float(region["state"].get(n, 0.0))
            prim[n] = (1.0 - frac) * prim[n] + frac * v
    return prim


def build_solver(cfg: dict, rate=None, last_good_path: str | Path | None = None,
                 domain: Domain | None = None) -> Solver:
    """The solver of a config: on the whole grid, or on the part of it that ``domain`` (a
    decomposed run's :class:`macro.parallel.DistributedDomain`) gives this process."""
    model = build_model(cfg["model"])
    grid = build_grid(cfg["grid"])
    prim = initial_primitives(cfg, model, grid)
    resolve_piston_pressure(cfg, model)
    rate = build_rate(cfg, rate)
    b = cfg.get("boundary", {})
    sides = {k: v for k, v in b.items() if k in SIDES}
    domain = domain if domain is not None else Domain()
    grid, prim, sides, piston, inflow = domain.localize(
        model, grid, prim, sides, b.get("piston_velocity") or {}, b.get("inflow") or {})
    num = cfg["numerics"]
    return Solver(model, grid, model.conserved(prim), bc=sides, piston_velocity=piston,
                  inflow=inflow, cfl=num["cfl"], order=num["order"], limiter=num["limiter"],
                  riemann=num["riemann"], rate=rate, config=cfg,
                  last_good_path=last_good_path, domain=domain)
