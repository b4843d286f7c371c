"""Shock-to-detonation diagnostics: lead-shock tracking, run distance, CJ check, and the
analysis behind a tracked run's :class:`~macro.simulation.Result` (its plots:
:mod:`macro.plotting`).

Definitions (SI inside; mm, us and GPa only in plots and printed tables):

* **Lead shock position** ``x_s(t)``: on each row of cells, the last cell (largest x) whose
  pressure exceeds ``front_pressure`` (default: half the input pressure, or 1 GPa when that is
  unknown), refined by linear interpolation of ``p = front_pressure`` to the next cell. In 2D the
  leading row's position is used (a planar front gives the same value on every row).
* **Lead shock speed** ``D_s(t)``: slope of a least-squares line through the trajectory points
  of the last ``speed_window_cells * dx / D_CJ`` seconds (at least 3 points).
* **Run distance** ``x*`` (the default criterion, ``criterion="speed"``): the lead-shock
  distance from the driven face at the first time ``D_s >= 0.9 D_CJ`` while the lead pressure
  is at least ``0.5 p_CJ`` (a front that outruns 0.9 D_CJ at lower pressure is reaction running
  ahead inside the smeared shock, not a detonation). The alternative
  ``criterion="pressure"`` uses the first time the lead pressure (maximum within
  ``lead_window_cells`` behind the front) reaches ``0.9 p_CJ``. Both are reported; the speed
  criterion is the one the Pop plots use (a captured, under-resolved von Neumann spike can
  exceed 0.9 p_CJ before the front is a detonation, the front speed cannot).
* **Wedge-test run distance** (``criterion="wedge"``, the experiments' definition and the
  one the Pop plots use): the lead-shock trajectory before the transition (points earlier than
  the speed criterion's time minus the speed window) is fitted with a quadratic
  ``x = c0 + c1 t + c2 t^2``, the steady detonation after it (points at least
  ``settle_cells`` beyond the speed criterion's position) with a line ``x = xd + D t``; x* and
  t* are where the two meet (the root nearest the speed criterion's time; where the curves do
  not cross, their closest approach). This is how wedge and gauge experiments read x* from a
  streak record: the intersection of the back-extrapolated detonation line with the
  lead-shock trajectory.
* **Measured CJ pressure**: the pressure at the sonic point behind the lead shock, i.e. the first
  cell, walking back from the front, where ``D_s - u <= c`` (frozen sound speed of the mixture),
  interpolated linearly. That is where the reaction zone ends for a CJ detonation; behind it
  the Taylor wave lowers the pressure towards the piston's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from . import euler

if TYPE_CHECKING:
    from .materials import CJState

__all__ = [
    "ShockTracker",
    "RunDistance",
    "CJMeasurement",
    "run_distance",
    "wedge_run_distance",
    "measure_cj",
    "mixture_sound_speed",
    "tracker_from_config",
    "cj_reference",
    "run_attrs",
    "run_summary",
]


@nb.njit(cache=True)
def _mix_c(eos, Q, rho, p, lam, out):
    for k in range(rho.size):
        xi, pi, dxi, dpi = euler.mix_xi_pi(eos, rho[k], lam[k], Q, True)
        e = (xi * p[k] + pi) / rho[k]
        c2 = (e + p[k] / rho[k] - dpi - p[k] * dxi) / xi
        out[k] = np.sqrt(c2) if c2 > 0.0 else np.nan


def mixture_sound_speed(model, rho, p, lam) -> np.ndarray:
    """Frozen sound speed (m/s) of the reactive mixture at fixed lambda (NaN where c^2 <= 0)."""
    rho, p, lam = (np.ascontiguousarray(np.asarray(a, float)).ravel() for a in (rho, p, lam))
    out = np.empty(rho.size)
    _mix_c(model.eos_array, model.Q, rho, p, lam, out)
    return out


def _front_row(p: np.ndarray, x: np.ndarray, pf: float) -> tuple[float, int]:
    """Interpolated position where p falls below pf, searching from the high-x end."""
    above = np.nonzero(p > pf)[0]
    if above.size == 0:
        return np.nan, -1
    i = int(above[-1])
    if i == p.size - 1:
        return float(x[i]), i
    w = (p[i] - pf) / (p[i] - p[i + 1])
    return float(x[i] + w * (x[i + 1] - x[i])), i


@dataclass
class ShockTracker:
    """Solver callback recording the lead shock and an x-t pressure record.

    ``tracker(solver)`` after every step; ``xt_interval`` (s) sets how often a pressure row
    (row-averaged in 2D) is kept for the x-t diagram (0: every step).
    """

    fields_read = ("p",)  # what a decomposed run gathers for it every step

    front_pressure: float
    lead_window_cells: int = 20
    xt_interval: float = 0.0
    t: list = field(default_factory=list)
    x: list = field(default_factory=list)
    p_lead: list = field(default_factory=list)
    xt_t: list = field(default_factory=list)
    xt_p: list = field(default_factory=list)

    def __post_init__(self):
        if not (np.isfinite(self.front_pressure) and self.front_pressure > 0):
            raise ValueError(f"front_pressure={self.front_pressure!r} must be finite and > 0 Pa")
        if self.lead_window_cells < 1:
            raise ValueError(f"lead_window_cells={self.lead_window_cells!r} must be >= 1")

    def __call__(self, solver) -> None:
        p = solver.fields()["p"]
        xc, _ = solver.grid.cell_centers()
        rows = p[None, :] if p.ndim == 1 else p
        best, best_i, best_row = -np.inf, -1, 0
        for j, row in enumerate(rows):
            xs, i = _front_row(row, xc, self.front_pressure)
            if i >= 0 and xs > best:
                best, best_i, best_row = xs, i, j
        if 0 <= best_i < rows.shape[1] - 1:  # a front at the last cell has left the domain
            lo = max(0, best_i - self.lead_window_cells)
            self.t.append(solver.t)
            self.x.append(best)
            self.p_lead.append(float(rows[best_row, lo:best_i + 2].max()))
        if not self.xt_t or solver.t - self.xt_t[-1] >= self.xt_interval:
            self.xt_t.append(solver.t)
            self.xt_p.append(rows.mean(axis=0).astype(np.float32))

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.arrays()

    def load_state_dict(self, state) -> None:
        self.t = [float(v) for v in state["t"]]
        self.x = [float(v) for v in state["x"]]
        self.p_lead = [float(v) for v in state["p_lead"]]
        self.xt_t = [float(v) for v in state["xt_t"]]
        self.xt_p = [np.asarray(r, np.float32) for r in state["xt_p"]] if len(state["xt_t"]) \
            else []

    def arrays(self) -> dict[str, np.ndarray]:
        """History as arrays: t, x (lead shock), p_lead, and the x-t record xt_t, xt_p."""
        return {"t": np.asarray(self.t), "x": np.asarray(self.x),
                "p_lead": np.asarray(self.p_lead), "xt_t": np.asarray(self.xt_t),
                "xt_p": (np.asarray(self.xt_p) if self.xt_p else np.zeros((0, 0)))}


def shock_speed(t: np.ndarray, x: np.ndarray, window: float) -> np.ndarray:
    """Backward least-squares slope of x(t) over ``window`` seconds (NaN with < 3 points)."""
    t, x = np.asarray(t, float), np.asarray(x, float)
    out = np.full(t.size, np.nan)
    lo = 0
    for k in range(t.size):
        while t[k] - t[lo] > window:
            lo += 1
        if k - lo >= 2:
            tt, xx = t[lo:k + 1], x[lo:k + 1]
            tm = tt.mean()
            d = tt - tm
            den = np.dot(d, d)
            if den > 0:
                out[k] = np.dot(d, xx - xx.mean()) / den
    return out


@dataclass(frozen=True)
class RunDistance:
    """Run distance to detonation ``x_star`` (m, from the driven face) at time ``t_star`` (s),
    by ``criterion``; ``detonated`` False (x_star, t_star NaN) when it was not reached."""

    x_star: float
    t_star: float
    detonated: bool
    criterion: str
    threshold: float


#: Run-distance criteria (first time the lead shock's speed or pressure reaches its threshold).
CRITERIA = ("speed", "pressure", "wedge")


def run_distance(t, x, p_lead, *, D_cj: float, p_cj: float, dx: float, x_face: float = 0.0,
                 criterion: str = "speed", fraction: float = 0.9,
                 speed_window_cells: float = 10.0,
                 min_pressure_fraction: float = 0.5) -> RunDistance:
    """Run distance from a lead-shock history (see the module docstring for the criteria);
    ``min_pressure_fraction`` of p_CJ is the lead pressure the speed criterion also needs."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is not one of {list(CRITERIA)}")
    if not (0.0 < fraction <= 1.5):
        raise ValueError(f"fraction={fraction!r} must be in (0, 1.5]")
    for name, v in (("D_cj", D_cj), ("p_cj", p_cj), ("dx", dx)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name}={v!r} must be finite and > 0")
    t, x, p_lead = (np.asarray(a, float) for a in (t, x, p_lead))
    if criterion == "wedge":
        return wedge_run_distance(t, x, p_lead, D_cj=D_cj, p_cj=p_cj, dx=dx, x_face=x_face,
                                  fraction=fraction, speed_window_cells=speed_window_cells,
                                  min_pressure_fraction=min_pressure_fraction)
    if criterion == "speed":
        sig = shock_speed(t, x, speed_window_cells * dx / D_cj)
        sig = np.where(p_lead >= min_pressure_fraction * p_cj, sig, np.nan)
        thr = fraction * D_cj
    else:
        sig, thr = p_lead, fraction * p_cj
    hit = np.nonzero(sig >= thr)[0]
    if hit.size == 0:
        return RunDistance(np.nan, np.nan, False, criterion, thr)
    k = int(hit[0])
    return RunDistance(float(x[k] - x_face), float(t[k]), True, criterion, thr)


def wedge_run_distance(t, x, p_lead, *, D_cj: float, p_cj: float, dx: float,
                       x_face: float = 0.0, fraction: float = 0.9,
                       speed_window_cells: float = 10.0, min_pressure_fraction: float = 0.5,
                       settle_cells: float = 20.0, min_line_cells: float = 20.0) -> RunDistance:
    """Run distance by the wedge-test construction (module docstring): intersection of a
    quadratic fit of the pre-transition lead-shock trajectory with the line fitted to the
    steady detonation after it. Not detonated (NaN) when the speed criterion is never met or
    fewer than ``min_line_cells`` cells of detonation run follow the settling distance."""
    t, x, p_lead = (np.asarray(a, float) for a in (t, x, p_lead))
    sp = run_distance(t, x, p_lead, D_cj=D_cj, p_cj=p_cj, dx=dx, x_face=0.0,
                      criterion="speed", fraction=fraction,
                      speed_window_cells=speed_window_cells,
                      min_pressure_fraction=min_pressure_fraction)
    thr = fraction * D_cj
    if not sp.detonated:
        return RunDistance(np.nan, np.nan, False, "wedge", thr)
    t90, x90 = sp.t_star, sp.x_star
    det = x >= x90 + settle_cells * dx
    if det.sum() < 3 or x[det].max() - x[det].min() < min_line_cells * dx:
        return RunDistance(np.nan, np.nan, False, "wedge", thr)
    D, xd = np.polyfit(t[det], x[det], 1)
    pre = t <= t90 - speed_window_cells * dx / D_cj
    if pre.sum() < 4:
        pre = t < t90
    if pre.sum() < 3:
        return RunDistance(np.nan, np.nan, False, "wedge", thr)
    c2, c1, c0 = np.polyfit(t[pre], x[pre], 2)
    # quadratic - line = c2 t^2 + (c1 - D) t + (c0 - xd)
    roots = np.roots([c2, c1 - D, c0 - xd]) if c2 != 0.0 else np.array([(xd - c0) / (c1 - D)])
    roots = roots[np.isreal(roots)].real
    roots = roots[(roots >= t[0]) & (roots <= t[-1])]
    if roots.size:
        ts = float(roots[np.argmin(np.abs(roots - t90))])
    else:  # no crossing: the closest approach of the two curves
        ts = float(np.clip((D - c1) / (2.0 * c2), t[0], t[-1])) if c2 > 0 else t90
    xs = float(xd + D * ts)
    return RunDistance(xs - x_face, ts, True, "wedge", thr)


@dataclass(frozen=True)
class CJMeasurement:
    """Sonic-point state behind the lead shock: pressure, the front speed used, position,
    lambda there; ``p_lead`` is the maximum pressure near the front (captured spike)."""

    p: float
    D: float
    x: float
    lam: float
    p_lead: float


def measure_cj(model, x, fields: dict, x_shock: float, D: float) -> CJMeasurement:
    """Pressure at the sonic point ``D - u = c`` behind the lead shock at ``x_shock`` (1D).

    Walks back from the front; the first cell with ``D - u - c >= 0`` and its neighbour ahead
    bracket the sonic point, where p and lambda are interpolated linearly.
    """
    rho, u, p, lam = (np.asarray(fields[k], float) for k in ("rho", "u", "p", "lam"))
    if rho.ndim != 1:
        raise ValueError("measure_cj takes 1D fields (take a row of a 2D run)")
    x = np.asarray(x, float)
    c = mixture_sound_speed(model, rho, p, lam)
    s = D - u - c
    i_front = int(np.searchsorted(x, x_shock)) - 1
    i_front = min(max(i_front, 1), x.size - 1)
    for i in range(i_front, 0, -1):
        if s[i] >= 0.0 and s[i + 1] < 0.0:
            w = s[i] / (s[i] - s[i + 1])
            pp = p[i] + w * (p[i + 1] - p[i])
            ll = lam[i] + w * (lam[i + 1] - lam[i])
            lo = max(0, i_front - 40)
            return CJMeasurement(float(pp), float(D), float(x[i] + w * (x[i + 1] - x[i])),
                                 float(ll), float(p[lo:i_front + 2].max()))
    raise ValueError(f"no sonic point behind the shock at x={x_shock!r} for D={D!r}: "
                     "the front is not a (CJ or weak) detonation")


# ---------------------------------------------------------------------------------------------
# a run's detonation: the tracker its config asks for, and the analysis of its Result
# ---------------------------------------------------------------------------------------------


def tracker_from_config(cfg: dict) -> ShockTracker | None:
    """The lead-shock tracker of a config's [detonation] section (None without one, or with
    ``track = false``). The front pressure defaults to half the x_low piston pressure, else
    1 GPa; the x-t record keeps ``xt_frames`` rows over the run."""
    from .config import DETONATION_KEYS

    dcfg = cfg.get("detonation")
    if dcfg is None:
        return None
    unknown = set(dcfg) - DETONATION_KEYS
    if unknown:
        raise ValueError(f"[detonation] has unknown keys {sorted(unknown)}; allowed: "
                         f"{sorted(DETONATION_KEYS)}")
    if not dcfg.get("track", True):
        return None
    pf = dcfg.get("front_pressure")
    if pf is None:
        pin = cfg.get("boundary", {}).get("piston_pressure", {}).get("x_low")
        pf = 0.5 * pin if pin else 1.0e9
    nxt = int(dcfg.get("xt_frames", 400))
    return ShockTracker(float(pf), int(dcfg.get("lead_window_cells", 20)),
                        float(cfg["time"]["t_end"]) / max(nxt, 1))


def cj_reference(cfg: dict, model) -> CJState:
    """JWL CJ state of a reactive euler model for the unreacted background state of the
    config's problem (ValueError for a model without a products EOS)."""
    from .materials import cj_state

    if model is None or getattr(model, "products", None) is None:
        raise ValueError("CJ reference needs a reactive euler model with a products EOS")
    bg = cfg.get("problem", {}).get("background", {})
    rho0 = float(bg.get("rho", getattr(model.eos, "rho0", np.nan)))
    p0 = float(bg.get("p", 1.0e5))
    return cj_state(model.eos, model.products, model.Q, rho0=rho0, p0=p0)


def _history(result) -> dict:
    if result.history is None:
        raise ValueError("this run did not track the lead shock: add a [detonation] "
                         "section (track = true) to the config")
    return result.history


def result_run_distance(result, criterion: str | None = None,
                        fraction: float | None = None) -> RunDistance:
    """:func:`run_distance` of a finished run (a :class:`macro.simulation.Result`), measured
    from its driven face x_min; criterion and fraction default to its [detonation] config."""
    h = _history(result)
    dcfg = result.config.get("detonation", {})
    cj = cj_reference(result.config, result.model)
    dx = float(result.x[1] - result.x[0])
    return run_distance(h["t"], h["x"], h["p_lead"], D_cj=cj.D, p_cj=cj.p, dx=dx,
                        x_face=float(result.x[0] - 0.5 * dx),
                        criterion=criterion or dcfg.get("criterion", "speed"),
                        fraction=fraction or dcfg.get("fraction", 0.9))


def result_shock_speed(result, window_cells: float = 10.0) -> np.ndarray:
    """Lead-shock speed (m/s) of a finished run at each tracked step."""
    h = _history(result)
    dx = float(result.x[1] - result.x[0])
    return shock_speed(h["t"], h["x"],
                       window_cells * dx / cj_reference(result.config, result.model).D)


def result_measure_cj(result, late_fraction: float = 0.3) -> CJMeasurement:
    """Sonic-point (CJ) pressure behind the final lead shock of a finished run (the middle row
    of a 2D one); the front speed is the least-squares slope of the last ``late_fraction`` of
    the trajectory."""
    h = _history(result)
    n = len(h["t"])
    if n < 3:
        raise ValueError("too few lead-shock samples to measure a front speed")
    if h["t"][-1] < result.t:
        raise ValueError(f"the lead shock left the domain at t={h['t'][-1]:.4g} s, before "
                         f"the end of the run (t={result.t:.4g} s): shorten [time] t_end or "
                         "lengthen the grid to measure the CJ state")
    k0 = min(int((1.0 - late_fraction) * n), n - 3)
    D = float(np.polyfit(h["t"][k0:], h["x"][k0:], 1)[0])
    f = result.fields
    if f["p"].ndim == 2:
        f = {k: v[v.shape[0] // 2] for k, v in f.items()}
    return measure_cj(result.model, result.x, f, float(h["x"][-1]), D)


def run_attrs(result) -> dict:
    """Attributes of the output's /detonation group: JWL CJ reference and the run distance by
    the speed and the pressure criteria (empty for a model without a CJ reference)."""
    attrs = {}
    try:
        cj = cj_reference(result.config, result.model)
    except ValueError:
        return attrs
    attrs.update(D_CJ=cj.D, p_CJ=cj.p)
    for crit in ("speed", "pressure"):
        rd = result_run_distance(result, criterion=crit)
        attrs[f"x_star_{crit}"] = rd.x_star
        attrs[f"t_star_{crit}"] = rd.t_star
    return attrs


def run_summary(result) -> str:
    """One line on the detonation of a tracked run (JWL CJ reference, run distance, closure
    status counts), "" otherwise (printed by the CLI)."""
    if result.history is None:
        return ""
    try:
        cj = cj_reference(result.config, result.model)
    except ValueError:
        return ""
    rd = result_run_distance(result)
    where = (f"run distance x* = {rd.x_star * 1e3:.3f} mm at t* = {rd.t_star * 1e6:.3f} us"
             f" (lead shock >= {result.config.get('detonation', {}).get('fraction', 0.9)}"
             " D_CJ)" if rd.detonated else "no detonation (lead shock never reached the "
             "run-distance criterion)")
    line = f"JWL CJ {cj.p / 1e9:.2f} GPa, {cj.D:.0f} m/s; {where}"
    counts = getattr(result.rate, "status_counts", None)
    if counts is not None and counts.sum():
        shocked = counts[0] + counts[2] + counts[3]
        line += (f"; closure cell-steps: {shocked} shocked, {counts[2]} of them outside "
                 f"its envelope (fallback), {counts[3]} other status")
    return line


def __getattr__(name: str):
    """The x-t and shock-history plots moved to :mod:`macro.plotting` (imported on demand:
    importing this module does not load matplotlib)."""
    if name in ("plot_xt", "plot_shock_history"):
        from . import plotting

        return getattr(plotting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
