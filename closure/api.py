"""The closure API for hydrocodes: per-cell hotspot response and MES-IG ignition rate.

    c = closure.Closure.load()                 # shipped default (closure/weights/default/)
    r = c.query(cell_ids, pressure, dt)        # every time step, many cells per call
    r.hotspot_area_fraction, r.hotspot_temperature, r.reaction_rate, r.uncertainty, r.status
    closure.query(...)                         # the same on a lazily loaded default Closure

Per-cell state. A cell's state is created in the first call where its ``pressure`` exceeds
``p_trigger`` (default 1 GPa; tension and elastic precursors stay below it): its time since the
shock ``t`` starts at 0 at the beginning of that call. The shock pressure ``Ps`` is the maximum
pressure the cell reports in the calls that start while ``t < ps_window`` (default one meso step,
0.25 ns), so a shock smeared over a few hydro steps is taken at its top, not at the trigger;
after that ``Ps`` is frozen. Each cell keeps: ``Ps``, ``t``, whole meso steps taken and the
fractional meso-step accumulator (``t = (steps + frac) dt_meso`` up to round-off), an RNG counter
(sampled decodes done), and, once queried online, its latent tokens (mean and log-variance) with
the hotspot statistics of the two meso steps around ``t``. ``release(ids)`` frees cells;
``state_dict()`` / ``load_state_dict()`` give and take plain numpy arrays for checkpoints.

Response. The cell's meso patch starts at the synthetic frame 1 of :mod:`closure.initial`
(microstructure from a fixed bank, chosen by the cell id) and evolves with the latent meso model
one meso step (0.25 ns) at a time (:mod:`closure.runner`); between steps the area fraction
``A(t)`` and hotspot temperature are linear in ``t``. ``mode="online"`` runs the model on the
cell's own tokens; ``mode="table"`` (default) interpolates the precomputed ensemble-mean response
over (Ps, t) of :mod:`closure.table`. Reaction rate (MES-IG ignition part)::

    reaction_rate = max(0, A(t + dt) - A(t)) / dt        [1/s]

the positive part of the growth of the predicted hotspot area fraction over the call; the macro
coupling adds its growth terms on top. Beyond the trained horizon (``horizon`` meso steps after
frame 1, 19 x 0.25 ns = 4.75 ns for the default) the last area fraction is held: rate 0.

Status: 0 ok; 1 not shocked yet (no state: A = 0, T = threshold, rate 0, uncertainty 0);
2 ``Ps`` outside the shock-pressure envelope of the meso training data (``envelope``, stored in
the table file): the fallback is the response at the nearest envelope edge (Ps clamped to
[Ps_min, Ps_max], in both modes), flagged by this status; the caller decides whether to trust it.

Uncertainty: table mode and online mode both report the table's ensemble + latent-sampling spread
at (Ps, t) (0 when no table is loaded). ``deterministic=False`` (online mode) decodes a
reparameterized latent sample instead of the latent mean, with the counter-based RNG of
:mod:`closure.kernels` keyed by (seed, cell id, RNG counter): reproducible for a seed and
independent of the batch composition. Table mode always returns the ensemble mean.

Bad input raises ``TypeError`` (wrong dtype/type) or ``ValueError`` (shape, NaN/Inf, negative
pressure, dt <= 0 or > 1 s, duplicate ids, unknown mode) naming the argument, the first bad index
and its value; everything is validated before any work and state is committed only at the end, so a
failing call changes no stored state. A latent model that diverges (non-finite decoded
temperature) raises ``FloatingPointError`` naming the cell, also without changing state; no NaN
or Inf is ever returned. Pressure must be >= 0: a hydrocode in tension passes
``max(p, 0)`` (tension never triggers the closure).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from closure import kernels
from closure.modelcard import load_model
from closure.runner import MesoRunner, member_of
from closure.table import TABLE_FILE, Table, TableError
from macro.cellstore import CellStore, check_ids

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MODES",
    "STATUS_NOT_SHOCKED",
    "STATUS_OK",
    "STATUS_OUTSIDE_ENVELOPE",
    "Closure",
    "QueryResult",
    "default_closure",
    "query",
]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "weights" / "default"
MODES = ("table", "online")
STATUS_OK, STATUS_NOT_SHOCKED, STATUS_OUTSIDE_ENVELOPE = 0, 1, 2
STATE_FORMAT = "porous-closure-state"
STATE_VERSION = 1
_INT64_MAX = np.iinfo(np.int64).max
#: Largest accepted step (s): macro steps are ns to us; far larger values are input errors and
#: would overflow the meso-step counter.
MAX_DT = 1.0


@dataclass(frozen=True)
class QueryResult:
    """Per-cell answer of :meth:`Closure.query` (float64 arrays and int32 ``status``, length N)."""

    hotspot_area_fraction: np.ndarray
    hotspot_temperature: np.ndarray
    reaction_rate: np.ndarray
    uncertainty: np.ndarray
    status: np.ndarray

    def __len__(self) -> int:
        return len(self.status)


# ---------------------------------------------------------------------------------------------
# validation

def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _ids(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (int64), got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {a.shape}")
    if a.dtype.kind == "u" and a.size and a.max() > _INT64_MAX:
        i = _first_bad(a > _INT64_MAX)
        raise ValueError(f"{name}[{i}] = {a[i]} does not fit int64")
    return a.astype(np.int64, copy=False)


def _real(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real float array (float64), got dtype {a.dtype}")
    return a.astype(np.float64, copy=False)


def _check_finite(a: np.ndarray, name: str, lower: float, strict: bool, unit: str) -> None:
    if a.size:  # the common case in two reductions; NaN fails both comparisons
        lo, hi = a.min(), a.max()
        if hi < np.inf and (lo > lower if strict else lo >= lower):
            return
    rng = f"finite and {'>' if strict else '>='} {lower:g} {unit}".rstrip()
    ok = np.isfinite(a)
    if not ok.all():
        i = _first_bad(~ok)
        where = f"{name}[{i}]" if a.ndim else name
        raise ValueError(f"{where} = {float(a.flat[i])!r} is not finite; {name} must be {rng}")
    bad = (a <= lower) if strict else (a < lower)
    if bad.any():
        i = _first_bad(bad)
        where = f"{name}[{i}]" if a.ndim else name
        raise ValueError(f"{where} = {float(a.flat[i])!r} is out of range; {name} must be {rng}")


class Closure:
    """Latent meso-scale closure with per-cell state (module docstring).

    ``runner``: the meso model runner; ``table``: the (Ps, t) response table or None (then only
    online mode works); ``p_trigger`` (Pa): shock trigger; ``ps_window`` (s, at most one meso
    step): Ps is the max pressure over calls starting in ``[0, ps_window)`` after the trigger;
    ``seed``: default seed of sampled decodes; ``backend``: kernel path (a name, see
    :mod:`closure.kernels`, or a :class:`closure.kernels.Backend`; None: the runner's), resolved
    here once and shared by the runner and the table (copies of them when it differs).
    """

    def __init__(self, runner: MesoRunner, table: Table | None = None, *,
                 p_trigger: float = 1.0e9, ps_window: float | None = None, seed: int = 0,
                 backend: kernels.Backend | str | None = None) -> None:
        if not (np.isfinite(p_trigger) and p_trigger > 0):
            raise ValueError(f"p_trigger must be finite and > 0 Pa, got {p_trigger!r}")
        ps_window = runner.dt_meso if ps_window is None else float(ps_window)
        if not 0.0 <= ps_window <= runner.dt_meso:
            raise ValueError(f"ps_window must be in [0, dt_meso = {runner.dt_meso:g}] s, got "
                             f"{ps_window!r}")
        if backend is not None and backend is not runner.backend:
            runner = runner.with_backend(backend)
        #: the kernel path of this closure (its runner's and its table's)
        self.backend: kernels.Backend = runner.backend
        self.runner = runner
        self.table = table
        self.p_trigger = float(p_trigger)
        self.ps_window = ps_window
        self.seed = self._seed(seed)
        self.envelope = tuple(table.envelope) if table is not None else runner.envelope
        self._lock = threading.RLock()
        self._reset()

    @property
    def table(self) -> Table | None:
        """The (Ps, t) response table (None: online mode only). A table set here runs its
        lookups on this closure's backend (a copy sharing the arrays when its own differs)."""
        return self._table

    @table.setter
    def table(self, table: Table | None) -> None:
        if table is not None and table.backend is not self.backend:
            table = dataclasses.replace(table, backend=self.backend)
        self._table = table

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, *, table: bool = True,
             n_micro: int | None = None, micro_seed: int | None = None,
             grid: tuple[int, int] | None = None,
             backend: kernels.Backend | str | None = None, **kwargs: Any) -> Closure:
        """Load the meso model in ``path`` (None: the shipped ``closure/weights/default``) and,
        if ``table`` and the file exists, its ``closure_table.h5``, checked against the model
        (weights hash, grid, microstructure bank, threshold, horizon). ``n_micro`` /
        ``micro_seed`` (microstructure bank of online mode) default to the table's, else 4 / 0.
        ``backend`` (kernel path: a name or None for ``$CLOSURE_KERNELS`` / auto) is resolved
        here, once. Other keywords go to :class:`Closure`."""
        be = kernels.as_backend(backend)  # a bad name fails before the model is read
        path = DEFAULT_MODEL_DIR if path is None else Path(path)
        if not (path / "model_card.json").exists():
            hint = (" (the shipped default weights are not installed)"
                    if path == DEFAULT_MODEL_DIR else "")
            raise FileNotFoundError(f"{path}: no model_card.json; not a model directory{hint}")
        model, card = load_model(path, kind="latent")
        tab = None
        if table and (path / TABLE_FILE).exists():
            tab = Table.load(path / TABLE_FILE)
            fp = tab.meta.get("fingerprint", {})
            n_micro = fp.get("n_micro", 4) if n_micro is None else n_micro
            micro_seed = fp.get("micro_seed", 0) if micro_seed is None else micro_seed
            if grid is None and fp.get("grid"):
                grid = tuple(fp["grid"])
        runner = MesoRunner(model, card, n_micro=4 if n_micro is None else n_micro,
                            micro_seed=0 if micro_seed is None else micro_seed, grid=grid,
                            backend=be)
        if tab is not None:
            tab.check_fingerprint(runner.fingerprint(), path / TABLE_FILE)
            tab.backend = be
        return cls(runner, tab, **kwargs)

    @staticmethod
    def _seed(seed: Any) -> int:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        if not 0 <= int(seed) < 1 << 64:
            raise ValueError(f"seed = {seed} is out of range; seed must be in [0, 2**64)")
        return int(seed)

    def _reset(self) -> None:
        # per-cell clock of every shocked cell, and the online tokens of the cells queried
        # online (field order = state_dict order)
        self._cells = CellStore({"ps": np.float64, "t": np.float64, "steps": np.int64,
                                 "frac": np.float64, "rng": np.int64})
        shape = self._token_shape()
        self._tok = CellStore({"mean": (np.float32, shape), "logvar": (np.float32, shape),
                               "step": np.int64, "ps": np.float64, "a_lo": np.float64,
                               "a_hi": np.float64, "t_lo": np.float64, "t_hi": np.float64})

    def _token_shape(self) -> tuple[int, int, int]:
        H, W = self.runner.grid
        return self.runner.model.dynamics.n_latent, H // 8, W // 8

    @property
    def n_cells(self) -> int:
        """Number of cells with state (shocked, not released)."""
        return len(self._cells)

    @property
    def cell_ids(self) -> np.ndarray:
        """Sorted ids of the cells with state (a copy)."""
        return self._cells.ids.copy()

    # -- query ----------------------------------------------------------------------------------
    def query(self, cell_ids: Any, pressure: Any, dt: Any, *, mode: str = "table",
              deterministic: bool = True, seed: int | None = None) -> QueryResult:
        """Hotspot response of N cells over a step ``dt`` (module docstring for the model).

        ``cell_ids`` int64 (N,) unique; ``pressure`` float64 (N,) current cell pressure (Pa,
        finite, >= 0); ``dt`` (s, in (0, 1]) scalar or (N,); ``mode`` "table" | "online";
        ``deterministic``: decode latent means (True) or samples (False, online mode);
        ``seed``: seed of sampled decodes (None: the Closure's ``seed``).
        """
        ids = _ids(cell_ids, "cell_ids")
        p = _real(pressure, "pressure")
        if p.ndim != 1 or p.shape[0] != ids.shape[0]:
            raise ValueError(f"pressure must have shape ({ids.shape[0]},) like cell_ids, got "
                             f"{p.shape}")
        d = _real(dt, "dt")
        if d.ndim > 1 or (d.ndim == 1 and d.shape[0] != ids.shape[0]):
            raise ValueError(f"dt must be a scalar or have shape ({ids.shape[0]},), got {d.shape}")
        _check_finite(p, "pressure", 0.0, False, "Pa")
        _check_finite(d, "dt", 0.0, True, "s")
        if (d > MAX_DT).any():
            i = _first_bad(np.atleast_1d(d > MAX_DT))
            where = f"dt[{i}]" if d.ndim else "dt"
            raise ValueError(f"{where} = {float(d.flat[i])!r} is out of range; dt must be in "
                             f"(0, {MAX_DT:g}] s")
        if not isinstance(mode, str):
            raise TypeError(f"mode must be a str, got {type(mode).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode = {mode!r} is unknown; mode must be one of {list(MODES)}")
        if not isinstance(deterministic, bool | np.bool_):
            raise TypeError(f"deterministic must be a bool, got {type(deterministic).__name__}")
        seed = self.seed if seed is None else self._seed(seed)
        check_ids(ids, "cell_ids")  # unique
        if mode == "table" and self.table is None:
            raise TableError("mode='table' needs the response table, which is not loaded; build "
                             "it with: python -m closure.table build MODEL_DIR (or use "
                             "mode='online')")
        with self._lock:
            return self._query(ids, p, d, mode, bool(deterministic), seed)

    def _lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Positions of ``ids`` in the state arrays, whether each is there, and whether ``ids``
        are exactly the stored ids in their (sorted) order, so the arrays serve as they are."""
        if self._cells.matches(ids):
            n = len(self._cells)
            return np.arange(n), np.ones(n, bool), True
        return (*self._cells.lookup(ids), False)

    def _query(self, ids: np.ndarray, p: np.ndarray, dt: np.ndarray, mode: str,
               deterministic: bool, seed: int) -> QueryResult:
        N = ids.size
        pos, found, fast = self._lookup(ids)
        if fast and mode == "table":
            return self._table_steady(p, dt)
        dt = np.broadcast_to(dt, ids.shape)
        new = ~found & (p > self.p_trigger)
        tracked = found | new
        dtm = self.runner.dt_meso
        cells = self._cells
        if fast:
            ps_old, t_old, st_old, fr_old, rng_old = (cells[k] for k in cells.names)
        else:
            have = len(cells) > 0
            ps_old = np.where(found, cells["ps"][pos], p) if have else p.copy()
            t_old = np.where(found, cells["t"][pos], 0.0) if have else np.zeros(N)
            st_old = np.where(found, cells["steps"][pos], 0) if have else np.zeros(N, np.int64)
            fr_old = np.where(found, cells["frac"][pos], 0.0) if have else np.zeros(N)
            rng_old = np.where(found, cells["rng"][pos], 0) if have else np.zeros(N, np.int64)
        ps_new, t_new, st_new, fr_new = kernels.advance_cells(ps_old, t_old, st_old, fr_old, p,
                                                              dt, dtm, self.ps_window)
        lo, hi = self.envelope
        outside = (ps_new < lo) | (ps_new > hi)
        status = np.where(tracked, np.where(outside, STATUS_OUTSIDE_ENVELOPE, STATUS_OK),
                          STATUS_NOT_SHOCKED).astype(np.int32)
        rng_new = rng_old
        tok_update = None
        if mode == "table":
            A, T, U, R = self.table.lookup(ps_new, t_old, t_new, tracked.view(np.uint8))
        else:
            A, T, U, R, rng_new, tok_update = self._online(
                ids, tracked, ps_new, t_old, t_new, dt, st_old, fr_old, st_new, fr_new, rng_old,
                deterministic, seed)
        # commit (nothing above touched the stored state)
        if fast:
            cells.assign(ps=ps_new, t=t_new, steps=st_new, frac=fr_new, rng=rng_new)
        else:
            upd = found
            if upd.any():
                cells.update(pos[upd], ps=ps_new[upd], t=t_new[upd], steps=st_new[upd],
                             frac=fr_new[upd], rng=rng_new[upd])
            if new.any():
                cells.insert(ids[new], ps=ps_new[new], t=t_new[new], steps=st_new[new],
                             frac=fr_new[new], rng=rng_new[new])
        if tok_update is not None:
            self._commit_tokens(*tok_update)
        return QueryResult(np.asarray(A, np.float64), np.asarray(T, np.float64),
                           np.asarray(R, np.float64), np.asarray(U, np.float64), status)

    def _table_steady(self, p: np.ndarray, dt: np.ndarray) -> QueryResult:
        """Table mode on exactly the stored cells (a hydrocode's steady state): one fused
        kernel call for the clock, status and lookup, then the new state arrays are kept."""
        cells = self._cells
        ps, t, steps, frac, status, A, T, U, R = self.table.step(
            cells["ps"], cells["t"], cells["steps"], cells["frac"], p, dt, self.runner.dt_meso,
            self.ps_window, STATUS_OK, STATUS_OUTSIDE_ENVELOPE)
        cells.assign(ps=ps, t=t, steps=steps, frac=frac)
        return QueryResult(A, T, R, U, status)

    # -- online mode ----------------------------------------------------------------------------
    def _online(self, ids, tracked, ps_new, t_old, t_new, dt, st_old, fr_old, st_new, fr_new,
                rng_old, deterministic, seed):
        N = ids.size
        run = self.runner
        lo, hi = self.envelope
        thr = run.threshold
        A = np.zeros(N)
        T = np.full(N, thr)
        R = np.zeros(N)
        rng_new = np.array(rng_old, copy=True)
        q = np.flatnonzero(tracked)
        if q.size == 0:
            return A, T, np.zeros(N), R, rng_new, None
        qid = ids[q]
        ps_eff = np.clip(ps_new[q], lo, hi)
        tok = self._tok
        tp, has = tok.lookup(qid)
        n, h, w = self._token_shape()
        mean = np.zeros((q.size, n, h, w), np.float32)
        logvar = np.zeros((q.size, n, h, w), np.float32)
        step = np.zeros(q.size, np.int64)
        tps = np.zeros(q.size)
        a_lo, a_hi, T_lo, T_hi = (np.zeros(q.size) for _ in range(4))
        if has.all():  # straight into the call's arrays: no third copy of a large batch
            src = tp
            np.take(tok["mean"], src, axis=0, out=mean)
            np.take(tok["logvar"], src, axis=0, out=logvar)
        elif has.any():
            src = tp[has]
            mean[has], logvar[has] = tok["mean"][src], tok["logvar"][src]
        if has.any():
            step[has], tps[has] = tok["step"][src], tok["ps"][src]
            a_lo[has], a_hi[has] = tok["a_lo"][src], tok["a_hi"][src]
            T_lo[has], T_hi[has] = tok["t_lo"][src], tok["t_hi"][src]
        counters = rng_new[q]
        sample = not deterministic

        def stats(sel: np.ndarray, m: torch.Tensor, v: torch.Tensor):
            a, t = run.stats(m, v, sample=sample, seed=seed, cell_ids=qid[sel],
                             counters=counters[sel])
            if sample:
                counters[sel] += 1
            return a, t

        # (re)initialize: no tokens yet, or Ps still rising inside the window
        init = ~has | ((t_old[q] < self.ps_window) & (ps_eff != tps))
        if init.any():
            sel = np.flatnonzero(init)
            members = member_of(qid[sel], run.n_micro, run.micro_seed)
            if sel.size == q.size:  # all new: encode and step in the call's own arrays
                m0, v0 = torch.from_numpy(mean), torch.from_numpy(logvar)
            else:
                m0, v0 = (torch.empty(sel.size, n, h, w, dtype=torch.float32) for _ in range(2))
            run.encode(ps_eff[sel], members, out=(m0, v0))
            a0, t0 = stats(sel, m0, v0)
            run.step(m0, v0, out=(m0, v0))
            a1, t1 = stats(sel, m0, v0)
            if sel.size != q.size:
                mean[sel], logvar[sel] = m0.numpy(), v0.numpy()
            step[sel], tps[sel] = 1, ps_eff[sel]
            a_lo[sel], a_hi[sel], T_lo[sel], T_hi[sel] = a0, a1, t0, t1

        def advance(tau: np.ndarray) -> None:
            target = np.minimum(np.floor(tau).astype(np.int64) + 1, run.horizon)
            while True:
                sel = np.flatnonzero(step < target)
                if sel.size == 0:
                    return
                if sel.size == q.size:  # every cell steps: in place, no gather and scatter
                    m, v = torch.from_numpy(mean), torch.from_numpy(logvar)
                    run.step(m, v, out=(m, v))
                    a, t = stats(sel, m, v)
                else:
                    m, v = run.step(torch.from_numpy(mean[sel]), torch.from_numpy(logvar[sel]))
                    a, t = stats(sel, m, v)
                    mean[sel], logvar[sel] = m.numpy(), v.numpy()
                a_lo[sel], T_lo[sel] = a_hi[sel], T_hi[sel]
                a_hi[sel], T_hi[sel] = a, t
                step[sel] += 1

        def interp(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            f = np.clip(tau - (step - 1), 0.0, 1.0)
            return a_lo + f * (a_hi - a_lo), T_lo + f * (T_hi - T_lo)

        tau0 = st_old[q] + fr_old[q]
        tau1 = st_new[q] + fr_new[q]
        advance(tau0)
        A0, _ = interp(tau0)
        advance(tau1)
        A1, T1 = interp(tau1)
        A[q], T[q] = A1, T1
        R[q] = np.maximum(A1 - A0, 0.0) / dt[q]
        rng_new[q] = counters
        if self.table is not None:
            _, _, U, _ = self.table.lookup(ps_new, t_old, t_new, tracked.view(np.uint8))
        else:
            U = np.zeros(N)
        update = (tp if has.all() else None, qid, mean, logvar, step, tps, a_lo, a_hi, T_lo,
                  T_hi)
        return A, T, U, R, rng_new, update

    def _commit_tokens(self, at, qid, mean, logvar, step, tps, a_lo, a_hi, T_lo, T_hi) -> None:
        """Store the call's tokens: in place at positions ``at`` when every cell of the call
        already had tokens (a hydrocode's steady state: no copy of the whole store), else
        merged into a new sorted store."""
        tok = self._tok
        new = {"mean": mean, "logvar": logvar, "step": step, "ps": tps, "a_lo": a_lo,
               "a_hi": a_hi, "t_lo": T_lo, "t_hi": T_hi}
        if at is not None:
            tok.update(at, **new)
        elif np.isin(tok.ids, qid).all():  # only this call's cells: its arrays become the store
            tok.reset(qid, **new)
        else:
            tok.insert(qid, replace=True, **new)

    # -- state ----------------------------------------------------------------------------------
    def release(self, ids: Any) -> int:
        """Free the state of cells ``ids`` (ids without state are ignored); returns how many."""
        rel = _ids(ids, "ids")
        with self._lock:
            self._tok.release(rel)
            return self._cells.release(rel)

    def state_dict(self) -> dict[str, np.ndarray]:
        """All per-cell state as numpy arrays (copies), for checkpoints and MPI transfer."""
        with self._lock:
            sd = {"format": np.array(STATE_FORMAT), "version": np.array(STATE_VERSION),
                  "weights_sha256": np.array(self.runner.fingerprint()["weights_sha256"]),
                  "dt_meso": np.array(self.runner.dt_meso)}
            sd.update(self._cells.state_dict())
            sd.update({f"tok_{k}": v for k, v in self._tok.state_dict().items()})
            return {k: np.array(v, copy=True) for k, v in sd.items()}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Replace all per-cell state by ``sd`` (from :meth:`state_dict`), validated first."""
        need = ["format", "version", "weights_sha256", "dt_meso", "ids", *self._cells.names,
                "tok_ids", *(f"tok_{k}" for k in self._tok.names)]
        missing = [k for k in need if k not in sd]
        if missing:
            raise ValueError(f"state_dict is missing keys {missing}")
        if str(np.asarray(sd["format"])) != STATE_FORMAT or \
                int(np.asarray(sd["version"])) != STATE_VERSION:
            raise ValueError(f"state_dict format {sd['format']!r} v{sd['version']!r} is not "
                             f"{STATE_FORMAT!r} v{STATE_VERSION}")
        sha = self.runner.fingerprint()["weights_sha256"]
        if str(np.asarray(sd["weights_sha256"])) != sha:
            raise ValueError("state_dict was saved with a different model (weights_sha256 "
                             f"{str(np.asarray(sd['weights_sha256']))[:12]}... != {sha[:12]}...)")
        if not np.isclose(float(np.asarray(sd["dt_meso"])), self.runner.dt_meso, rtol=1e-12):
            raise ValueError(f"state_dict dt_meso {sd['dt_meso']} != model {self.runner.dt_meso}")
        # shapes, dtypes and sorted ids by the stores; what the values mean here
        cells = self._cells.validated(sd)
        tok = self._tok.validated(sd, prefix="tok_")
        for k in ("ps", "t"):
            _check_finite(cells[k], f"state_dict[{k!r}]", 0.0, False, "")
        if len(cells) and ((cells["frac"] < 0).any() or (cells["frac"] >= 1).any() or
                           (cells["steps"] < 0).any() or (cells["rng"] < 0).any()):
            raise ValueError("state_dict: frac must be in [0, 1), steps and rng >= 0")
        for k in tok.names:
            if not np.all(np.isfinite(tok[k])):
                raise ValueError(f"state_dict['tok_{k}'] has non-finite values")
        if not np.isin(tok.ids, cells.ids).all():
            raise ValueError("state_dict['tok_ids'] must be strictly increasing cell ids with "
                             "state")
        with self._lock:
            self._cells, self._tok = cells, tok


# ---------------------------------------------------------------------------------------------
_default: Closure | None = None
_default_lock = threading.Lock()


def default_closure() -> Closure:
    """The lazily loaded default :class:`Closure` (``Closure.load()``) used by :func:`query`."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Closure.load()
        return _default


def query(cell_ids: Any, pressure: Any, dt: Any, *, mode: str = "table",
          deterministic: bool = True, seed: int | None = None) -> QueryResult:
    """:meth:`Closure.query` on the default closure (loaded on first use)."""
    return default_closure().query(cell_ids, pressure, dt, mode=mode,
                                   deterministic=deterministic, seed=seed)
