"""Shock-to-detonation diagnostics: lead-shock tracking, run distance, CJ check, plots.

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
from pathlib import Path

import numba as nb
import numpy as np

from . import euler

__all__ = [
    "ShockTracker",
    "RunDistance",
    "CJMeasurement",
    "run_distance",
    "wedge_run_distance",
    "measure_cj",
    "mixture_sound_speed",
    "plot_xt",
    "plot_shock_history",
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


def plot_xt(history: dict, x: np.ndarray, path: str | Path, *, title: str = "",
            run: RunDistance | None = None) -> Path:
    """x-t diagram of pressure (GPa) with the tracked lead shock and the run-distance point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, P = history["xt_t"], history["xt_p"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    if len(t) > 1:
        im = ax.pcolormesh(np.asarray(x) * 1e3, np.asarray(t) * 1e6, P / 1e9, shading="auto",
                           cmap="inferno")
        fig.colorbar(im, ax=ax, label="pressure (GPa)")
    if len(history["t"]):
        ax.plot(history["x"] * 1e3, history["t"] * 1e6, "c-", lw=0.8, label="lead shock")
    if run is not None and run.detonated:
        ax.plot([run.x_star * 1e3 + x[0] * 1e3 - 0.5 * (x[1] - x[0]) * 1e3], [run.t_star * 1e6],
                "w*", ms=12, label=f"x* = {run.x_star * 1e3:.2f} mm")
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("t (us)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_shock_history(history: dict, path: str | Path, *, D_cj: float, p_cj: float,
                       dx: float, title: str = "") -> Path:
    """Lead-shock speed and lead pressure against lead-shock position."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, x, pl = history["t"], history["x"], history["p_lead"]
    D = shock_speed(t, x, 10.0 * dx / D_cj)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    a1.plot(x * 1e3, D / 1e3, "-")
    a1.axhline(D_cj / 1e3, color="k", ls="--", lw=0.8, label="D_CJ (JWL)")
    a1.axhline(0.9 * D_cj / 1e3, color="0.5", ls=":", lw=0.8, label="0.9 D_CJ")
    a1.set_ylabel("lead shock speed (km/s)")
    a1.legend(fontsize=7)
    a2.plot(x * 1e3, pl / 1e9, "-")
    a2.axhline(p_cj / 1e9, color="k", ls="--", lw=0.8, label="p_CJ (JWL)")
    a2.set_ylabel("lead pressure (GPa)")
    a2.set_xlabel("lead shock position (mm)")
    a2.legend(fontsize=7)
    a1.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
