"""Run configs of ``python -m macro run CONFIG.toml``: loading, defaults, presets, validation.

A typo in a config must stop the run before anything is built or compiled, with a message that
names the section, the key, the value and what is allowed; a misspelt key silently falling back
to its default would run the wrong problem. :data:`SCHEMA` is the whole config layout (see
:mod:`macro.simulation` for what the sections mean); :func:`load_config` reads a TOML file (or
takes a dict), checks it against the schema, fills :data:`DEFAULTS` and expands ``material``
presets. Errors are :class:`ConfigError` (a ``ValueError``).

Types: an integer is accepted where a number is expected, a bool never is (``true`` is no
number). Allowed names (EOS and rate types, limiters, Riemann solvers, boundary kinds, state
fields, material presets) are asked from the modules that implement them, so they stay in step.
"""

from __future__ import annotations

import copy
import difflib
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from .boundary import BC_CODES, SIDES
from .detonation import CRITERIA
from .eos import EOS_TYPES, eos_from_dict
from .limiters import LIMITERS
from .models import EulerModel, FiveEquationModel
from .reaction import RATE_TYPES, LeeTarver, rate_from_dict
from .riemann import RIEMANN_SOLVERS

__all__ = ["SCHEMA", "DEFAULTS", "CLOSURE_KEYS", "DETONATION_KEYS", "ConfigError", "load_config",
           "validate_config", "material_presets"]


class ConfigError(ValueError):
    """A run config that does not fit :data:`SCHEMA` (or a TOML file that does not parse)."""


# ---------------------------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------------------------

KeyPath = tuple[str | int, ...]


def _where(path: KeyPath) -> str:
    """``("problem", "regions", 2, "state")`` -> ``[problem.regions][2].state``."""
    if not path:
        return ""
    names, rest = [], ""
    for k, part in enumerate(path):
        if isinstance(part, int):
            for p in path[k:]:
                rest += f"[{p}]" if isinstance(p, int) else f".{p}"
            break
        names.append(part)
    return f"[{'.'.join(names)}]{rest}"


def _subject(path: KeyPath) -> str:
    """What a value message is about: ``[numerics] cfl`` (or ``[problem.regions][2]``)."""
    if isinstance(path[-1], int):
        return _where(path)
    parent = _where(path[:-1])
    return f"{parent} {path[-1]}" if parent else str(path[-1])


def _show(value: Any) -> str:
    """A value as the message shows it (TOML spelling for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _bad_value(path: KeyPath, value: Any, what: str) -> ConfigError:
    return ConfigError(f"{_subject(path)}={_show(value)} must be {what}")


def _resolve(x):
    """Choices may be a callable, asked when a config is checked (material presets)."""
    return x() if callable(x) else x


# ---------------------------------------------------------------------------------------------
# value specs
# ---------------------------------------------------------------------------------------------


NO_DEFAULT = object()  # a Spec's default when load_config fills nothing


@dataclass(frozen=True, kw_only=True)
class Spec:
    """One config entry: its type and range, whether it must be given, its default (filled by
    :func:`load_config`; most builders have their own defaults for absent keys)."""

    required: bool = False
    default: Any = NO_DEFAULT

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this spec's type (picks the branch of a :class:`OneOf`)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        """Raise :class:`ConfigError` unless ``value`` fits (``cfg``: the whole config)."""
        if not self.accepts(value):
            raise _bad_value(path, value, self.describe())


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (``integer``: an int), optionally bounded (gt/ge/lt/le) or one of a set."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False
    one_of: tuple[int, ...] = ()
    finite: bool = True

    def accepts(self, value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, int if self.integer else
                                                          int | float)

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        plain = kind if self.integer or not self.finite else "a finite number"
        if self.one_of:
            return f"{kind} in {{{', '.join(map(str, self.one_of))}}}"
        lo, hi = (self.gt if self.gt is not None else self.ge,
                  self.lt if self.lt is not None else self.le)
        if lo is not None and hi is not None:
            return (f"{kind} in {'(' if self.gt is not None else '['}{_fmt(lo)}, {_fmt(hi)}"
                    f"{')' if self.lt is not None else ']'}")
        for bound, op in ((self.gt, ">"), (self.ge, ">="), (self.lt, "<"), (self.le, "<=")):
            if bound is not None:
                return f"{kind} {op} {_fmt(bound)}"
        return plain

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        ok = (not self.finite or math.isfinite(value)) and (
            (value in self.one_of) if self.one_of else
            ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
             and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le)))
        if not ok:
            raise _bad_value(path, value, self.describe())


@dataclass(frozen=True)
class Bool(Spec):
    """``true`` or ``false``."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Str(Spec):
    """A string, optionally one of ``choices`` (a collection, or a callable returning one)."""

    choices: Iterable[str] | Callable[[], Iterable[str]] | None = None
    ignore_case: bool = False
    what: str = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def describe(self) -> str:
        if self.choices is None:
            return self.what
        return f"one of {sorted(_resolve(self.choices))}"

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        if self.choices is None:
            return
        options = sorted(_resolve(self.choices))
        allowed = {o.lower() for o in options} if self.ignore_case else set(options)
        if (value.lower() if self.ignore_case else value) not in allowed:
            raise ConfigError(f"{_subject(path)}={value!r} is not one of {options}"
                              f"{_suggest(value, options)}")


@dataclass(frozen=True)
class Vec(Spec):
    """A list of ``n`` numbers, e.g. a centre ``[x, y]`` or an interval ``[a, b]`` (with
    ``increasing``; ``finite=False`` admits ``inf`` for an unbounded side)."""

    n: int = 2
    increasing: bool = False
    finite: bool = True

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def describe(self) -> str:
        what = f"a list of {self.n} {'finite ' if self.finite else ''}numbers"
        return what + (" [a, b] with a < b" if self.increasing else "")

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        number = Num(finite=self.finite)
        ok = (len(value) == self.n and all(number.accepts(v) for v in value)
              and all(math.isfinite(v) if self.finite else not math.isnan(v) for v in value)
              and (not self.increasing or all(a < b for a, b in pairwise(value))))
        if not ok:
            raise _bad_value(path, value, self.describe())


@dataclass(frozen=True)
class Table(Spec):
    """A table with the given ``keys`` (``None``: any keys, e.g. a factory's arguments);
    ``checks`` are cross-key rules ``check(table, path, cfg)`` run after the keys pass."""

    keys: Mapping[str, Spec] | Callable[[], Mapping[str, Spec]] | None = None
    checks: tuple[Callable[[dict, KeyPath, dict], None], ...] = ()

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def describe(self) -> str:
        return "a table"

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        if self.keys is not None:
            _check_keys(value, _resolve(self.keys), path, cfg)
        for rule in self.checks:
            rule(value, path, cfg)


@dataclass(frozen=True)
class Tagged(Spec):
    """A table whose allowed keys depend on its ``tag`` key (``type`` of an EOS, a reaction or a
    problem; ``shape`` of a region): ``variants`` maps each tag value to its other keys."""

    variants: Mapping[str, Mapping[str, Spec]] | Callable[[], Mapping[str, Mapping[str, Spec]]]
    tag: str = "type"
    default_tag: str | None = None
    checks: tuple[Callable[[dict, KeyPath, dict], None], ...] = ()

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def describe(self) -> str:
        return "a table"

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        variants = _resolve(self.variants)
        kind = value.get(self.tag, self.default_tag)
        if kind is None:
            every = {self.tag}.union(*variants.values())
            _check_keys(value, dict.fromkeys(every, Spec()), path, cfg, only_names=True)
            raise ConfigError(f"{_where(path)} needs {self.tag!r} (one of {sorted(variants)})")
        Str(choices=variants).check(kind, (*path, self.tag), cfg)
        _check_keys(value, {self.tag: Str(), **variants[kind]}, path, cfg,
                    variant=f"{self.tag} = {kind!r}")
        for rule in self.checks:
            rule(value, path, cfg)


@dataclass(frozen=True)
class OneOf(Spec):
    """One of several specs, picked by the value's type (e.g. a preset name or a table)."""

    options: tuple[Spec, ...] = ()

    def accepts(self, value: Any) -> bool:
        return any(o.accepts(value) for o in self.options)

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        next(o for o in self.options if o.accepts(value)).check(value, path, cfg)


@dataclass(frozen=True)
class ListOf(Spec):
    """A list (TOML array of tables such as ``[[problem.regions]]``) of ``item``."""

    item: Spec

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def describe(self) -> str:
        return f"a list of {self.item.describe()}s"

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        for i, v in enumerate(value):
            self.item.check(v, (*path, i), cfg)


#: Ranges of state fields that have one (any other field of the model: a finite number).
STATE_RANGES = {"rho": Num(gt=0), "rho1": Num(gt=0), "rho2": Num(gt=0),
                "alpha1": Num(ge=0, le=1), "lam": Num(ge=0, le=1)}


@dataclass(frozen=True)
class State(Spec):
    """A flow state: the model's primitive fields (``primitive_names`` of its class), SI units."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def describe(self) -> str:
        return "a table of the model's primitive fields"

    def check(self, value: Any, path: KeyPath, cfg: dict) -> None:
        super().check(value, path, cfg)
        names = _primitive_names(cfg)
        _check_keys(value, {n: STATE_RANGES.get(n, Num()) for n in names}, path, cfg)


#: Model classes by [model] type (their ``primitive_names`` are the state fields).
MODEL_TYPES = {"euler": EulerModel, "five_equation": FiveEquationModel}


def _primitive_names(cfg: dict) -> tuple[str, ...]:
    return MODEL_TYPES[cfg["model"]["type"]].primitive_names  # [model] is checked first


def _check_keys(table: dict, keys: Mapping[str, Spec], path: KeyPath, cfg: dict,
                only_names: bool = False, variant: str = "") -> None:
    """Unknown keys (with a suggestion), missing required keys, then each value (``variant``,
    e.g. "type = 'closure'", says which keys of a tagged table apply)."""
    for k in table:
        if k not in keys:
            where = f"{_where(path)} " if path else ""
            what = "section" if not path and isinstance(table[k], dict) else "key"
            hint = _suggest(str(k), keys)
            if not path and not hint:
                homes = [s for s, spec in SCHEMA.items() if k in _keys_of(spec)]
                hint = f" (it belongs under [{homes[0]}])" if homes else ""
            raise ConfigError(f"{where}unknown {what} {k!r}{hint}; allowed"
                              f"{f' for {variant}' if variant else ''}: {sorted(keys)}")
    if only_names:
        return
    for k, spec in keys.items():
        if k in table:
            spec.check(table[k], (*path, k), cfg)
        elif spec.required:
            what = f"[{k}] section" if not path else repr(k)
            where = f"{_where(path)} needs" if path else "config needs a"
            raise ConfigError(f"{where} {what} ({spec.describe()})")


def _keys_of(spec: Spec) -> set[str]:
    """Every key a section may hold (all variants of a tagged one)."""
    if isinstance(spec, Table) and isinstance(spec.keys, Mapping):
        return set(spec.keys)
    if isinstance(spec, Tagged):
        return {spec.tag}.union(*_resolve(spec.variants).values())
    return set()


# ---------------------------------------------------------------------------------------------
# material presets
# ---------------------------------------------------------------------------------------------


def material_presets() -> dict[str, dict]:
    """Presets for ``material = "..."``: unreacted ``eos``, ``products``, ``Q`` and the
    Lee-Tarver parameters (``lee_tarver``), from :mod:`macro.materials`."""
    from . import materials

    return {"PBX9501": {"eos": {"type": "MieGruneisen", **materials.PBX9501_MG},
                        "products": {"type": "JWL", **materials.PBX9501_JWL},
                        "Q": materials.PBX9501_Q,
                        "lee_tarver": dict(materials.PBX9501_LEE_TARVER)}}


def _material(name, where: str) -> dict:
    presets = material_presets()
    if name not in presets:
        raise ConfigError(f"{where} material={name!r} is not one of {sorted(presets)}")
    return presets[name]


def _apply_presets(cfg: dict) -> None:
    """Expand ``material = "..."`` entries in [model] and [reaction] (explicit keys win)."""
    m = cfg["model"]
    if "material" in m:
        mat = _material(m["material"], "[model]")
        for k in ("eos", "products", "Q"):
            m.setdefault(k, copy.deepcopy(mat[k]))
    r = cfg.get("reaction")
    if r is not None and "material" in r:
        mat = _material(r["material"], "[reaction]")
        if r.get("type") == "LeeTarver":
            for k, v in mat["lee_tarver"].items():
                r.setdefault(k, v)
        else:
            raise ConfigError(f"[reaction] material is only used with type = 'LeeTarver', "
                              f"got type={r.get('type')!r}")
    if r is not None and r.get("type") == "closure" and isinstance(r.get("growth"), str):
        r["growth"] = copy.deepcopy(_material(r["growth"], "[reaction] growth")["lee_tarver"])


# ---------------------------------------------------------------------------------------------
# the schema
# ---------------------------------------------------------------------------------------------


def _param_keys(cls, spec: Spec | None = None) -> dict[str, Spec]:
    """Keys of a parameter dataclass (EOS, rate): every init field, a number (``spec``),
    required when it has no default."""
    spec = spec or Num()
    return {f.name: replace(spec, required=f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls) if f.init}


def _builds(factory: Callable[[dict], Any]) -> Callable[[dict, KeyPath, dict], None]:
    """A check that builds the object (its constructor holds the ranges: EOS, rate) and turns
    its ValueError into a ConfigError at this table's path."""
    def rule(table: dict, path: KeyPath, cfg: dict) -> None:
        try:
            factory({k: v for k, v in table.items() if k != "material"})
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{_where(path)} {exc}") from None
    return rule


_EOS_VARIANTS = {name: _param_keys(cls) for name, cls in EOS_TYPES.items()}


def _eos(required: bool = False) -> Tagged:
    """An EOS table: ``type`` (an :data:`macro.eos.EOS_TYPES` name) and that class's fields."""
    return Tagged(_EOS_VARIANTS, checks=(_builds(eos_from_dict),), required=required)


def _preset_names() -> list[str]:
    return sorted(material_presets())


def _model_rules(m: dict, path: KeyPath, cfg: dict) -> None:
    if m["type"] == "euler" and "eos" not in m and "material" not in m:
        raise ConfigError(f"{_where(path)} needs 'eos' (a table with type = one of "
                          f"{sorted(EOS_TYPES)}) or material = one of {_preset_names()}")


#: [reaction] type = "closure" (see macro.coupling.QueryRate and problem.build_rate).
CLOSURE = {
    "provider": Str(what="a string 'package.module:factory'"),
    "provider_args": Table(),                  # the factory's keyword arguments, any keys
    "mode": Str(),                             # the provider knows its modes ("table", ...)
    "deterministic": Bool(),
    "seed": Num(integer=True, ge=0),
    "growth": OneOf(options=(Str(choices=_preset_names),            # a preset's growth terms
                             Table(keys=_param_keys(LeeTarver, Num(ge=0))))),
    "ignition_scale": Num(ge=0),
    "ignition_max": Num(ge=0, le=1),
    "shock_gate": Bool(),
    "gate_pressure": Num(gt=0),
    "rise_tol": Num(ge=0),
}


#: [reaction] tables by type: the built-in rates' fields (LeeTarver also takes a preset), closure.
_REACTION_VARIANTS = {**{name: _param_keys(cls) for name, cls in RATE_TYPES.items()},
                      "closure": CLOSURE}
_REACTION_VARIANTS["LeeTarver"]["material"] = Str(choices=_preset_names)


def _built_in_rate_rules(r: dict, path: KeyPath, cfg: dict) -> None:
    if r["type"] in RATE_TYPES:
        _builds(rate_from_dict)(r, path, cfg)


def _grid_rules(g: dict, path: KeyPath, cfg: dict) -> None:
    ny = g.get("ny", 1)
    if not (ny == 1 or ny >= 4):
        raise _bad_value((*path, "ny"), ny, "1 (a 1D run) or an integer >= 4")
    for a in ("x", "y"):
        lo, hi = g.get(f"{a}_min", 0.0), g.get(f"{a}_max", 1.0)
        if not hi > lo:
            raise _bad_value((*path, f"{a}_max"), hi, f"> {a}_min = {lo!r}")


def _boundary_rules(b: dict, path: KeyPath, cfg: dict) -> None:
    kind = {s: str(b.get(s, "transmissive")).lower() for s in SIDES}
    for table, needs in (("piston_velocity", "piston"), ("piston_pressure", "piston"),
                         ("inflow", "inflow")):
        for side in b.get(table, {}):
            if kind[side] != needs:
                raise ConfigError(f"{_where(path)} {table}.{side} needs {side} = {needs!r} "
                                  f"(got {side} = {kind[side]!r})")
    for side in SIDES:
        if kind[side] == "piston" and not any(side in b.get(t, {}) for t in
                                              ("piston_velocity", "piston_pressure")):
            raise ConfigError(f"{_where(path)} {side} = 'piston' needs piston_velocity = "
                              f"{{{side} = ...}} (m/s) or piston_pressure = {{{side} = ...}} (Pa)")
        if kind[side] == "inflow" and side not in b.get("inflow", {}):
            raise ConfigError(f"{_where(path)} {side} = 'inflow' needs inflow = "
                              f"{{{side} = {{...}}}} (a state)")
    for a, b_ in (("x_low", "x_high"), ("y_low", "y_high")):
        if (kind[a] == "periodic") != (kind[b_] == "periodic"):
            raise ConfigError(f"{_where(path)} periodic boundary must be set on both {a} and "
                              f"{b_} (got {a} = {kind[a]!r}, {b_} = {kind[b_]!r})")


_REGION = Tagged({"box": {"x": Vec(increasing=True, finite=False),
                          "y": Vec(increasing=True, finite=False),
                          "state": State(required=True)},
                  "circle": {"center": Vec(required=True), "radius": Num(gt=0, required=True),
                             "state": State(required=True)}},
                 tag="shape", default_tag="box")

#: The run config: section -> its keys. Adding a section (e.g. ``"pop": Table(keys={...})``) or
#: a key (one ``"name": Num(...)`` entry in its section) is a one-line change here; ``default=``
#: makes load_config fill the key, ``required=True`` makes it mandatory.
SCHEMA: dict[str, Spec] = {
    "title": Str(),
    "model": Tagged({"euler": {"material": Str(choices=_preset_names), "eos": _eos(),
                               "products": _eos(), "Q": Num()},
                     "five_equation": {"eos1": _eos(required=True), "eos2": _eos(required=True),
                                       "Q": Num(), "kapila": Bool()}},
                    checks=(_model_rules,), required=True),
    "reaction": Tagged(_REACTION_VARIANTS, checks=(_built_in_rate_rules,)),
    "grid": Table(keys={"nx": Num(integer=True, ge=4, required=True), "ny": Num(integer=True),
                        "x_min": Num(), "x_max": Num(), "y_min": Num(), "y_max": Num()},
                  checks=(_grid_rules,), required=True),
    "numerics": Table(keys={
        "cfl": Num(gt=0, le=1, default=0.8),
        "order": Num(integer=True, one_of=(2, 3), default=2),  # SSP-RK2 / SSP-RK3
        "limiter": Str(choices=LIMITERS, ignore_case=True, default="mc"),
        "riemann": Str(choices=RIEMANN_SOLVERS, ignore_case=True, default="hllc")}),
    "time": Table(keys={"t_end": Num(gt=0, required=True),
                        "n_frames": Num(integer=True, ge=0, default=10)}, required=True),
    "boundary": Table(keys={
        **{side: Str(choices=BC_CODES, ignore_case=True) for side in SIDES},
        "piston_velocity": Table(keys={side: Num() for side in SIDES}),      # m/s along +x/+y
        "piston_pressure": Table(keys={side: Num(gt=0) for side in SIDES}),  # Pa
        "inflow": Table(keys={side: State() for side in SIDES})},
        checks=(_boundary_rules,)),
    "problem": Tagged({"riemann": {"left": State(required=True), "right": State(required=True),
                                   "x0": Num()},
                       "regions": {"background": State(required=True),
                                   "regions": ListOf(item=_REGION)}},
                      default_tag="regions", required=True),
    "output": Table(keys={"plots": Bool(default=True),
                          "checkpoint_every": Num(integer=True, ge=0, default=0)}),
    "detonation": Table(keys={"track": Bool(), "front_pressure": Num(gt=0),
                              "lead_window_cells": Num(integer=True, ge=1),
                              "criterion": Str(choices=CRITERIA), "fraction": Num(gt=0, le=1.5),
                              "xt_frames": Num(integer=True, ge=1)}),
    # Pop-plot sweeps (macro.pop): largest cell size (m), cells over the experimental x*,
    # domain over the experimental x*, shortest domain (m), end time over the shock transit
    "pop": Table(keys={"dx": Num(gt=0), "cells_per_run": Num(gt=0), "length_factor": Num(gt=1),
                       "min_length": Num(gt=0), "time_factor": Num(gt=0)}),
}

#: Keys load_config fills when absent (from the schema's ``default=`` entries).
DEFAULTS: dict[str, dict[str, Any]] = {
    name: {k: s.default for k, s in spec.keys.items() if s.default is not NO_DEFAULT}
    for name, spec in SCHEMA.items() if isinstance(spec, Table) and isinstance(spec.keys, dict)
    and any(s.default is not NO_DEFAULT for s in spec.keys.values())}

CLOSURE_KEYS = frozenset({"type", *CLOSURE})
DETONATION_KEYS = frozenset(SCHEMA["detonation"].keys)


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def validate_config(cfg: Mapping) -> None:
    """Check a config (as read from TOML, before defaults) against :data:`SCHEMA`; raise
    :class:`ConfigError` at the first problem. Sections are checked in schema order, [model]
    first, because the allowed state fields depend on the model."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"a config is a table of sections, got {type(cfg).__name__}")
    _check_keys(dict(cfg), SCHEMA, (), dict(cfg))


def _read(source: str | Path | Mapping) -> dict:
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    with path.open("rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(source: str | Path | Mapping) -> dict:
    """Read a TOML file (or copy a dict), validate it, fill defaults and expand presets: the
    resolved config (itself a valid config: loading it again gives the same dict)."""
    cfg = _read(source)
    validate_config(cfg)
    for section, values in DEFAULTS.items():
        cfg.setdefault(section, {})
        for k, v in values.items():
            cfg[section].setdefault(k, v)
    _apply_presets(cfg)
    return cfg
