"""Table mode of the closure: the latent model's mean response over (Ps, t since shock).

This is the MES-IG surrogate (Sen et al., J. Appl. Phys. 124, 085110, 2018) made with the
latent meso model instead of Kriging: for shock pressure ``Ps`` and time ``t`` since the shock
it stores

* ``area``: ensemble mean hotspot area fraction of the cell's meso patch,
* ``temperature``: ensemble mean of the mean hotspot temperature (K; the threshold where a member
  has no hotspot, the convention of :mod:`closure.metrics`),
* ``uncertainty``: ``sqrt(var_members(A) + mean_members(mean_samples((A_s - A)^2)))``: the
  spread over ``n_micro`` microstructures plus ``n_samples`` reparameterized latent samples each,

where the ensemble is the runner's microstructure bank (:mod:`closure.runner`) and ``A`` of a
member is the deterministic (latent-mean) decode: the same computation as online mode with
``deterministic=True``, averaged over the bank.

Axes. ``t`` has one node per meso step, ``t_k = k dt_meso``, k = 0..horizon. Online mode is
evaluated at meso steps and linear in between, so the table is exact in ``t`` by construction
and only ``Ps`` is refined. ``Ps`` starts with ``n_initial`` (33) uniform nodes over the training
envelope; every interval is tested at its midpoint (a held-out point, never inserted unless it
fails):

    err = max_t max( |A_int - A| / max(A, area_floor), |T_int - T| / T )

with ``A``, ``T`` the ensemble-mean online response at the midpoint and ``A_int``, ``T_int`` the
linear interpolation between the interval's nodes. ``area_floor`` (default 0.01, i.e. 1% area
fraction) turns the criterion into an absolute one, ``tol * area_floor`` = 1e-4 by default
(2.5 meso cells of a 128x192 patch), where the area is near zero. Intervals with
``err > tol`` (default 0.01) are split (the midpoint becomes a node) until all pass or
``max_nodes`` (257) is reached; the achieved maximum held-out error is stored in the file, with
``n_check`` extra checks at random pressures.

File: ``closure_table.h5`` beside the weights, written atomically (temp file, fsync, rename).
Build: ``closure table build MODEL_DIR`` (or ``python -m closure.table build MODEL_DIR``; see
docs/closure.md for cost).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from closure import kernels
from closure.files import atomic_write
from closure.runner import MesoRunner

__all__ = ["TABLE_FILE", "Table", "TableError", "build_table", "evaluate_many", "evaluate_ps"]

TABLE_FILE = "closure_table.h5"
#: initial uniform Ps nodes and the node cap of a build: the shipped model's table needed 62 nodes
#: for 1% (its response is rough in Ps: at 0.146 GPa uniform spacing 11 of 64 midpoints still
#: failed), so start at 0.29 GPa spacing and let refinement add the rest
DEFAULT_N_INITIAL = 33
DEFAULT_MAX_NODES = 257
FORMAT = "porous-closure-table"
FORMAT_VERSION = 1


class TableError(ValueError):
    """A table file is missing, malformed or does not belong to the model."""


@dataclass
class Table:
    """Response table on Ps ``nodes`` (Pa, increasing) x ``t = k dt`` (s), k = 0..nT-1."""

    nodes: np.ndarray
    dt: float
    area: np.ndarray
    temperature: np.ndarray
    uncertainty: np.ndarray
    envelope: tuple[float, float]
    threshold: float
    meta: dict[str, Any] = field(default_factory=dict)
    #: kernel path of the lookups (a closure's table shares its runner's; None: resolved from
    #: ``$CLOSURE_KERNELS`` at each call)
    backend: kernels.Backend | None = field(default=None, compare=False, repr=False)

    @property
    def horizon_time(self) -> float:
        return self.dt * (self.area.shape[1] - 1)

    def rows_at(self, ps: float) -> tuple[np.ndarray, np.ndarray]:
        """(area, temperature) over the t nodes at shock pressure ``ps``: linear between the two
        nearest Ps nodes (the edge interval's line outside them), as the held-out checks use it."""
        i = int(np.clip(np.searchsorted(self.nodes, ps) - 1, 0, len(self.nodes) - 2))
        f = (ps - self.nodes[i]) / (self.nodes[i + 1] - self.nodes[i])
        return (self.area[i] + f * (self.area[i + 1] - self.area[i]),
                self.temperature[i] + f * (self.temperature[i + 1] - self.temperature[i]))

    def lookup(self, ps: np.ndarray, t0: np.ndarray, t1: np.ndarray, shocked: np.ndarray,
               ) -> tuple[np.ndarray, ...]:
        """(A(t1), T_hs(t1), U(t1), rate) of cells at (``ps``, ``t0`` -> ``t1``)
        (:func:`closure.kernels.table_lookup`)."""
        return kernels.table_lookup(self.nodes, self.dt, self.area, self.temperature,
                                    self.uncertainty, ps, t0, t1, shocked, self.threshold,
                                    backend=self.backend)

    def step(self, ps_old: np.ndarray, t_old: np.ndarray, steps_old: np.ndarray,
             frac_old: np.ndarray, pressure: np.ndarray, dt: np.ndarray | float, dt_meso: float,
             ps_window: float, status_ok: int, status_outside: int,
             ) -> tuple[np.ndarray, ...]:
        """A call of cells that all have state: their new clock, status and response
        (:func:`closure.kernels.table_step`, fused on the C++ backend)."""
        return kernels.table_step(self.nodes, self.dt, self.area, self.temperature,
                                  self.uncertainty, ps_old, t_old, steps_old, frac_old, pressure,
                                  dt, dt_meso, ps_window, *self.envelope, status_ok,
                                  status_outside, backend=self.backend)

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (:func:`closure.files.atomic_write`)."""
        path = Path(path)
        with atomic_write(path) as tmp:
            with h5py.File(tmp, "w") as h5:
                h5.attrs["format"] = FORMAT
                h5.attrs["format_version"] = FORMAT_VERSION
                h5.create_dataset("ps", data=self.nodes)
                h5.create_dataset("t", data=self.dt * np.arange(self.area.shape[1]))
                h5.create_dataset("area", data=self.area)
                h5.create_dataset("temperature", data=self.temperature)
                h5.create_dataset("uncertainty", data=self.uncertainty)
                h5.attrs["dt"] = self.dt
                h5.attrs["envelope"] = np.asarray(self.envelope, float)
                h5.attrs["threshold_K"] = self.threshold
                h5.attrs["meta"] = json.dumps(self.meta)
        return path

    @classmethod
    def load(cls, path: str | Path, fingerprint: Mapping[str, Any] | None = None, *,
             backend: kernels.Backend | None = None) -> Table:
        """Read a table; with ``fingerprint`` check it was built for that model and settings.
        ``backend``: the kernel path of its lookups."""
        path = Path(path)
        if not path.exists():
            raise TableError(f"{path}: no table file")
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != FORMAT:
                raise TableError(f"{path}: format {h5.attrs.get('format')!r} is not {FORMAT!r}")
            if int(h5.attrs.get("format_version", -1)) != FORMAT_VERSION:
                raise TableError(f"{path}: format_version {h5.attrs.get('format_version')} is "
                                 f"not supported (reads {FORMAT_VERSION})")
            tab = cls(nodes=h5["ps"][:], dt=float(h5.attrs["dt"]), area=h5["area"][:],
                      temperature=h5["temperature"][:], uncertainty=h5["uncertainty"][:],
                      envelope=tuple(float(v) for v in h5.attrs["envelope"]),
                      threshold=float(h5.attrs["threshold_K"]),
                      meta=json.loads(h5.attrs["meta"]), backend=backend)
        nP = tab.nodes.shape[0]
        if nP < 2 or np.any(np.diff(tab.nodes) <= 0) or tab.area.ndim != 2 or \
                tab.area.shape[0] != nP or tab.area.shape[1] < 2 or \
                tab.temperature.shape != tab.area.shape or tab.uncertainty.shape != tab.area.shape:
            raise TableError(f"{path}: malformed table (ps {tab.nodes.shape}, area "
                             f"{tab.area.shape})")
        for name in ("area", "temperature", "uncertainty"):
            if not np.all(np.isfinite(getattr(tab, name))):
                raise TableError(f"{path}: {name} has non-finite values")
        if fingerprint is not None:
            tab.check_fingerprint(fingerprint, path)
        return tab

    def check_fingerprint(self, fingerprint: Mapping[str, Any], path: str | Path) -> None:
        """Raise :class:`TableError` unless the table (file ``path``) was built for the model
        and settings of ``fingerprint`` (:meth:`closure.runner.MesoRunner.fingerprint`)."""
        got = self.meta.get("fingerprint", {})
        for k, v in fingerprint.items():
            if got.get(k) != v:
                raise TableError(f"{path}: built for {k} = {got.get(k)!r}, but the model has "
                                 f"{v!r}; rebuild it: python -m closure.table build "
                                 f"{Path(path).parent}")


def evaluate_many(runner: MesoRunner, ps: np.ndarray, *, n_samples: int = 0, seed: int = 0,
                  ) -> dict[str, np.ndarray]:
    """Online response of the whole microstructure bank at each shock pressure in ``ps``,
    batched (P pressures x M members run as one batch of cells).

    Returns per pressure, member and step: ``A`` and ``T`` (P, M, nT) of the deterministic
    decode, and with ``n_samples`` > 0 ``A_s`` (P, M, S, nT) of sampled decodes (counter =
    step * S + s, cell id = member index, so a member's noise is the same at every pressure).
    """
    ps = np.atleast_1d(np.asarray(ps, float))
    M, nT, S = runner.n_micro, runner.horizon + 1, n_samples
    P = ps.size
    members = np.tile(np.arange(M), P)
    mean, logvar = runner.encode(np.repeat(ps, M), members)
    A = np.empty((P * M, nT))
    T = np.empty((P * M, nT))
    A_s = np.empty((P * M, S, nT))
    for k in range(nT):
        if k > 0:
            mean, logvar = runner.step(mean, logvar)
        A[:, k], T[:, k] = runner.stats(mean, logvar)
        for s in range(S):
            A_s[:, s, k], _ = runner.stats(mean, logvar, sample=True, seed=seed,
                                           cell_ids=members,
                                           counters=np.full(P * M, k * S + s))
    out = {"A": A.reshape(P, M, nT), "T": T.reshape(P, M, nT)}
    if S:
        out["A_s"] = A_s.reshape(P, M, S, nT)
    return out


def evaluate_ps(runner: MesoRunner, ps: float, *, n_samples: int = 0, seed: int = 0,
                ) -> dict[str, np.ndarray]:
    """:func:`evaluate_many` at one pressure: ``A``, ``T`` (M, nT), ``A_s`` (M, S, nT)."""
    return {k: v[0] for k, v in evaluate_many(runner, [ps], n_samples=n_samples,
                                               seed=seed).items()}


def _node_response(r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A, T = r["A"], r["T"]
    var = A.var(axis=0)
    if "A_s" in r:
        var = var + ((r["A_s"] - A[:, None, :]) ** 2).mean(axis=(0, 1))
    return A.mean(0), T.mean(0), np.sqrt(var)


def heldout_error(a_int: np.ndarray, t_int: np.ndarray, a: np.ndarray, t: np.ndarray,
                  area_floor: float) -> float:
    """The refinement error measure (module docstring)."""
    ea = np.abs(a_int - a) / np.maximum(np.abs(a), area_floor)
    et = np.abs(t_int - t) / np.abs(t)
    return float(max(ea.max(), et.max()))


def build_table(runner: MesoRunner, *, n_initial: int = DEFAULT_N_INITIAL, tol: float = 0.01,
                area_floor: float = 0.01, max_nodes: int = DEFAULT_MAX_NODES, n_samples: int = 1,
                seed: int = 0, n_check: int = 1, progress: bool = True,
                time_budget: float = 0.0) -> Table:
    """Adaptive table over the runner's envelope (module docstring); returns the :class:`Table`.

    ``time_budget`` (s, 0 = none): no interval is split once the build has run this long (the
    table is then stored with ``converged = False`` if an interval failed).
    """
    if n_initial < 2 or max_nodes < n_initial:
        raise ValueError(f"need n_initial >= 2 and max_nodes >= n_initial, got {n_initial}, "
                         f"{max_nodes}")
    t_wall = time.perf_counter()
    lo, hi = runner.envelope
    full: dict[float, tuple] = {}
    det: dict[float, tuple] = {}
    n_eval = [0]

    def nodes_full(ps: list[float]) -> None:
        """Full responses (with samples) of the pressures not evaluated yet, in one batch."""
        todo = [p for p in ps if p not in full]
        if not todo:
            return
        r = evaluate_many(runner, np.asarray(todo), n_samples=n_samples, seed=seed)
        for i, p in enumerate(todo):
            full[p] = _node_response({k: v[i] for k, v in r.items()})
            if progress:
                print(f"  [{time.perf_counter() - t_wall:6.0f} s] node Ps = {p / 1e9:7.3f} GPa"
                      f"  max A = {full[p][0].max():.4f}", file=sys.stderr)
        n_eval[0] += len(todo)

    def node(p: float) -> tuple:
        nodes_full([p])
        return full[p]

    def online_many(ps: list[float]) -> None:
        todo = [p for p in ps if p not in full and p not in det]
        if not todo:
            return
        r = evaluate_many(runner, np.asarray(todo))
        for i, p in enumerate(todo):
            det[p] = (r["A"][i].mean(0), r["T"][i].mean(0))
        n_eval[0] += len(todo)

    def online(p: float) -> tuple:
        if p in full:
            return full[p][:2]
        online_many([p])
        return det[p]

    nodes = list(np.linspace(lo, hi, n_initial))
    nodes_full(nodes)
    done: set[tuple[float, float]] = set()
    errors: dict[tuple[float, float], float] = {}
    log = []
    while True:
        todo = [(a, b) for a, b in zip(nodes[:-1], nodes[1:], strict=True)
                if (a, b) not in done]
        if not todo:
            break
        split = []
        online_many([0.5 * (a + b) for a, b in todo])
        for a, b in todo:
            c = 0.5 * (a + b)
            A_c, T_c = online(c)
            (A_a, T_a, _), (A_b, T_b, _) = node(a), node(b)
            err = heldout_error(0.5 * (A_a + A_b), 0.5 * (T_a + T_b), A_c, T_c, area_floor)
            log.append({"ps": c, "error": err, "interval": [a, b]})
            if progress:
                print(f"  [{time.perf_counter() - t_wall:6.0f} s] held-out Ps = {c / 1e9:7.3f} GPa"
                      f"  error = {err:.4f}", file=sys.stderr)
            over = time_budget > 0 and time.perf_counter() - t_wall > time_budget
            if err > tol and len(nodes) + len(split) < max_nodes and not over:
                split.append(c)
            else:
                done.add((a, b))
                errors[(a, b)] = err
        if not split:
            break
        nodes_full(split)
        nodes = sorted(nodes + split)
    max_err = max(errors.values()) if errors else 0.0
    resp = [node(p) for p in nodes]
    tab = Table(nodes=np.asarray(nodes, float), dt=runner.dt_meso,
                area=np.stack([r[0] for r in resp]), temperature=np.stack([r[1] for r in resp]),
                uncertainty=np.stack([r[2] for r in resp]), envelope=(lo, hi),
                threshold=runner.threshold)
    # extra held-out check at random pressures (not midpoints)
    rng = np.random.default_rng(seed + 1)
    checks = []
    check_ps = [float(p) for p in rng.uniform(lo, hi, n_check)]
    online_many(check_ps)
    for p in check_ps:
        A_c, T_c = online(float(p))
        a_int, t_int = tab.rows_at(p)
        checks.append({"ps": float(p), "error": heldout_error(a_int, t_int, A_c, T_c,
                                                              area_floor)})
    tab.meta = {
        "fingerprint": runner.fingerprint(), "tol": tol, "area_floor": area_floor,
        "n_samples": n_samples, "seed": seed, "n_initial": n_initial, "max_nodes": max_nodes,
        "converged": bool(max_err <= tol), "max_heldout_error": max_err,
        "time_budget": time_budget,
        "random_checks": checks,
        "max_random_check_error": max((c["error"] for c in checks), default=0.0),
        "refinement_log": log, "n_evaluations": n_eval[0],
        "build_seconds": time.perf_counter() - t_wall, "torch_threads": torch.get_num_threads(),
    }
    return tab


if __name__ == "__main__":  # python -m closure.table: the ``closure table`` subcommand
    from closure.cli import run_module

    raise SystemExit(run_module("table", None, "python -m closure.table"))
