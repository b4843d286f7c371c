"""Closure coupling: any object with a ``query`` method becomes the solver's reaction rate.

A *provider* is any object with

    query(cell_ids, pressure, dt, *, mode=..., deterministic=..., seed=...) -> response

whose response carries float64 arrays ``reaction_rate`` (1/s), ``hotspot_area_fraction``,
``hotspot_temperature`` (K), ``uncertainty`` and an int array ``status`` (0 ok, 1 not shocked
yet, 2 outside the provider's envelope, fallback used), one entry per queried cell. The learned
closure (``closure.Closure``) is one; an MPI proxy forwarding the batch to worker ranks is
another. This module never imports the closure.

:class:`QueryRate` turns a provider into a :class:`macro.reaction.RateModel` with the MES-IG
split of the rate into ignition and growth (Sen et al., J. Appl. Phys. 124, 085110, 2018)::

    dlam/dt = s_ig * R_c                                     [lam < ignition_max]
            + G1 (1-lam)^c lam^d p^y                          [lam < FG1max]
            + G2 (1-lam)^e lam^g p^z                          [lam > FG2min]

``R_c`` is the provider's ``reaction_rate``: for the closure, the positive growth rate of the
predicted hotspot area fraction of the cell's meso patch since its shock (the meso hotspots
are the ignition sites). The growth terms are Lee-Tarver's (p in Mbar, rates per microsecond,
converted to SI here); ``s_ig`` (``ignition_scale``, default 1) is a calibration factor.

Over one hydro step the provider's rate is held constant and the growth terms are integrated
with explicit sub-steps at the cell's post-step pressure (each sub-step moves lambda by at most
0.02, like the built-in Lee-Tarver kernel). The returned rate is ``(lam_new - lam)/dt``.

Pressures below zero (HMX in tension behind rarefactions) are passed to the provider as 0 Pa:
the closure's envelope is compressive shocks and a cell in tension is "not shocked".

Shock gate (``shock_gate=True``, default): a captured shock takes a few hydro steps (each
longer than a meso step) to rise through a cell, and a provider that reads the shock pressure
at its trigger would take the foot of the shock for Ps, and start the hotspots' clock (and the
heat release) inside the smeared shock, where burning runs ahead of the front. So each cell is
shown 0 Pa until its shock has arrived: from the first call with ``p > gate_pressure`` (0.5 GPa)
until the first call where p no longer rises by more than ``rise_tol`` (1%) since the previous
call; from then on the provider sees the cell's pressure. The gate's per-cell state is part of
:meth:`QueryRate.state_dict`.

The provider's per-cell state is keyed by the ids the solver passes (``Solver.cell_ids``: C
order of the interior cells, global ids in decomposed runs). :meth:`QueryRate.state_dict`
returns the provider's ``state_dict()`` (when it has one) plus this adapter's own counters, so
solver checkpoints restart bit-identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .cellstore import CellStore
from .reaction import MBAR, MICROSECOND, LeeTarver

__all__ = ["QueryRate", "GROWTH_KEYS"]

GROWTH_KEYS = ("G1", "c", "d", "y", "G2", "e", "g", "z", "FG1max", "FG2min")
_RESPONSE_FIELDS = ("reaction_rate", "hotspot_area_fraction", "hotspot_temperature",
                    "uncertainty")
MAX_SUBSTEPS = 200


def _growth_params(growth) -> dict[str, float]:
    if growth is None:
        from .materials import PBX9501_LEE_TARVER

        growth = PBX9501_LEE_TARVER
    if isinstance(growth, LeeTarver):
        growth = {k: getattr(growth, k) for k in GROWTH_KEYS}
    if not isinstance(growth, Mapping):
        raise TypeError(f"growth={growth!r} must be a LeeTarver, a mapping of "
                        f"{list(GROWTH_KEYS)} or None (PBX 9501 defaults)")
    unknown = set(growth) - set(GROWTH_KEYS) - set(LeeTarver.__dataclass_fields__)
    if unknown:
        raise ValueError(f"growth has unknown keys {sorted(unknown)}; allowed: {list(GROWTH_KEYS)}")
    base = {k: getattr(LeeTarver(), k) for k in GROWTH_KEYS}
    out = {k: float(growth.get(k, base[k])) for k in GROWTH_KEYS}
    for k, v in out.items():
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"growth[{k!r}]={v!r} must be finite and >= 0")
    return out


class QueryRate:
    """Adapter: provider ``query`` -> solver rate (see the module docstring for the formula).

    ``mode`` and ``deterministic`` are passed to every query; with ``deterministic=False`` the
    k-th call gets ``seed + k`` so a run is reproducible from its config and seed.
    ``growth``: Lee-Tarver growth parameters (a :class:`LeeTarver`, a mapping, or None for the
    PBX 9501 set of :mod:`macro.materials`). ``ignition_max`` stops the ignition term above that
    lambda (default 1: the hotspot area fraction bounds it by itself).
    """

    def __init__(self, provider, *, mode: str = "table", deterministic: bool = True,
                 seed: int = 0, growth=None, ignition_scale: float = 1.0,
                 ignition_max: float = 1.0, shock_gate: bool = True,
                 gate_pressure: float = 0.5e9, rise_tol: float = 0.01):
        if not callable(getattr(provider, "query", None)):
            raise TypeError(f"provider={provider!r} has no callable query() method")
        if not isinstance(mode, str):
            raise TypeError(f"mode={mode!r} must be a string such as 'table' or 'online'")
        if not (np.isfinite(ignition_scale) and ignition_scale >= 0):
            raise ValueError(f"ignition_scale={ignition_scale!r} must be finite and >= 0")
        if not (0.0 <= ignition_max <= 1.0):
            raise ValueError(f"ignition_max={ignition_max!r} must be in [0, 1]")
        self.provider = provider
        self.mode = mode
        self.deterministic = bool(deterministic)
        self.seed = int(seed)
        self.growth = _growth_params(growth)
        self.ignition_scale = float(ignition_scale)
        self.ignition_max = float(ignition_max)
        if not (np.isfinite(gate_pressure) and gate_pressure > 0):
            raise ValueError(f"gate_pressure={gate_pressure!r} must be finite and > 0 (Pa)")
        if not (np.isfinite(rise_tol) and rise_tol >= 0):
            raise ValueError(f"rise_tol={rise_tol!r} must be finite and >= 0")
        self.shock_gate = bool(shock_gate)
        self.gate_pressure = float(gate_pressure)
        self.rise_tol = float(rise_tol)
        self.calls = 0
        self.last_response = None
        # cell-steps per provider status: 0 ok, 1 not shocked, 2 outside envelope, 3 other
        self.status_counts = np.zeros(4, np.int64)
        # shock gate per cell: pressure at the previous call, handed over yet
        self._gate_cells = CellStore({"prev": np.float64, "open": np.bool_})

    # -- RateModel -----------------------------------------------------------------------
    def rate(self, *, cell_ids: np.ndarray, pressure: np.ndarray, density: np.ndarray,
             temperature: np.ndarray, lam: np.ndarray, dt: float) -> np.ndarray:
        p = np.asarray(pressure, dtype=np.float64)
        lam = np.asarray(lam, dtype=np.float64)
        n = p.size
        ids = np.asarray(cell_ids, dtype=np.int64)
        seed = None if self.deterministic else self.seed + self.calls
        p_q = self._gate(ids, np.maximum(p, 0.0)) if self.shock_gate else np.maximum(p, 0.0)
        resp = self.provider.query(ids, p_q, float(dt), mode=self.mode,
                                   deterministic=self.deterministic, seed=seed)
        self.calls += 1
        r_c = self._check_response(resp, n)
        self.last_response = resp
        st = np.asarray(resp.status).astype(np.int64, copy=False).ravel()
        self.status_counts += np.bincount(np.clip(st, 0, 3), minlength=4)[:4]
        r_ig = np.where(lam < self.ignition_max, self.ignition_scale * r_c, 0.0)
        new = self._integrate(lam, p, r_ig, float(dt))
        return (new - lam) / dt

    def _gate(self, ids: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Pressure shown to the provider: 0 until the cell's shock has fully arrived.

        A captured shock rises over a few hydro steps; a provider that takes the shock
        pressure at its trigger would see the foot of the shock. A cell enters the gate when
        its pressure first exceeds ``gate_pressure`` and is handed over (its true pressure
        passed from then on) at the first call where the pressure no longer rises by more than
        ``rise_tol`` (relative) since the previous call."""
        gate = self._gate_cells
        pos, known = gate.lookup(ids)
        k = pos[known]
        opened = gate["open"].copy()
        prev = gate["prev"].copy()
        pk = p[known]
        now_open = opened[k] | (pk <= prev[k] * (1.0 + self.rise_tol))
        opened[k] = now_open
        prev[k] = pk
        out = np.zeros_like(p)
        out[np.nonzero(known)[0][now_open]] = pk[now_open]
        new = ~known & (p > self.gate_pressure)
        gate.assign(prev=prev, open=opened)
        if new.any():
            gate.insert(ids[new], prev=p[new], open=np.zeros(int(new.sum()), bool))
        return out

    def _check_response(self, resp, n: int) -> np.ndarray:
        name = type(self.provider).__name__
        for f in (*_RESPONSE_FIELDS, "status"):
            if not hasattr(resp, f):
                raise TypeError(f"{name}.query() returned {type(resp).__name__} without "
                                f"field {f!r}")
        r = np.asarray(resp.reaction_rate, dtype=np.float64)
        if r.shape != (n,):
            raise ValueError(f"{name}.query() returned reaction_rate of shape {r.shape}, "
                             f"expected ({n},)")
        bad = ~np.isfinite(r) | (r < 0.0)
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(f"{name}.query() returned reaction_rate[{k}] = {float(r[k])!r}; "
                             "must be finite and >= 0 (1/s)")
        return r

    def _growth_rate(self, lam: np.ndarray, pm: np.ndarray) -> np.ndarray:
        g = self.growth
        one = np.clip(1.0 - lam, 0.0, 1.0)
        pos = pm > 0.0
        ppos = np.where(pos, pm, 0.0)
        r = np.where(pos & (lam > 0.0) & (lam < g["FG1max"]),
                     g["G1"] * one ** g["c"] * np.maximum(lam, 0.0) ** g["d"] * ppos ** g["y"],
                     0.0)
        r += np.where(pos & (lam > g["FG2min"]),
                      g["G2"] * one ** g["e"] * np.maximum(lam, 0.0) ** g["g"] * ppos ** g["z"],
                      0.0)
        return r / MICROSECOND

    def _integrate(self, lam, p, r_ig, dt):
        """Explicit sub-steps of ignition (constant) + growth over dt; lambda <= 1."""
        pm = p / MBAR
        cur = lam.copy()
        t = np.zeros_like(lam)
        active = cur < 1.0
        for _ in range(MAX_SUBSTEPS):
            if not active.any():
                break
            r = r_ig + self._growth_rate(cur, pm)
            with np.errstate(divide="ignore"):
                h = np.where(r > 0.0, np.minimum(dt - t, 0.02 / np.where(r > 0, r, 1.0)),
                             dt - t)
            h = np.where(active, h, 0.0)
            cur = np.where(active, np.minimum(cur + r * h, 1.0), cur)
            t += h
            active = (t < dt) & (cur < 1.0)
        else:
            # finish the remaining interval with the last rate (only reached for extreme rates)
            r = r_ig + self._growth_rate(cur, pm)
            cur = np.where(active, np.minimum(cur + r * (dt - t), 1.0), cur)
        return cur

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Adapter counters plus the provider's ``state_dict()`` (when it has one)."""
        out: dict[str, Any] = {"calls": np.int64(self.calls),
                               "status_counts": self.status_counts.copy(),
                               "gate": self._gate_cells.state_dict()}
        sd = getattr(self.provider, "state_dict", None)
        if callable(sd):
            out["provider"] = sd()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "calls" not in state:
            raise ValueError("QueryRate state has no 'calls' entry")
        has = callable(getattr(self.provider, "load_state_dict", None))
        if "provider" in state:
            if not has:
                raise TypeError(f"checkpoint holds provider state but "
                                f"{type(self.provider).__name__} has no load_state_dict()")
            self.provider.load_state_dict(state["provider"])
        elif has:
            raise ValueError("checkpoint holds no provider state but the provider is stateful "
                             "(has load_state_dict); the restart would not be identical")
        self.calls = int(np.asarray(state["calls"]))
        self.status_counts = np.asarray(state.get("status_counts", np.zeros(4)),
                                        np.int64).copy()
        gate = state.get("gate", {"ids": np.zeros(0, np.int64), "prev": np.zeros(0),
                                  "open": np.zeros(0, bool)})
        self._gate_cells.load_state_dict(gate, where="QueryRate gate state")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "closure", "provider_class": type(self.provider).__name__,
                "mode": self.mode, "deterministic": self.deterministic, "seed": self.seed,
                "growth": dict(self.growth), "ignition_scale": self.ignition_scale,
                "ignition_max": self.ignition_max, "shock_gate": self.shock_gate,
                "gate_pressure": self.gate_pressure, "rise_tol": self.rise_tol}
