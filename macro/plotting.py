"""Every PNG the package writes (matplotlib, headless): a run's final state, its detonation
(x-t diagram, lead-shock history) and the Pop plot of a sweep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .exact import exact_riemann  # noqa: E402

if TYPE_CHECKING:
    from .detonation import RunDistance
    from .pop import PopPoint

_LABELS = {"rho": "density (kg/m$^3$)", "u": "velocity (m/s)", "p": "pressure (Pa)",
           "T": "temperature (K)", "lam": "reaction progress", "alpha1": "volume fraction 1"}


def _exact_overlay(result, cfg):
    """Exact solution for single-material two-state Riemann problems, else None."""
    pcfg = cfg.get("problem", {})
    if pcfg.get("type") != "riemann" or cfg["model"]["type"] != "euler" or "reaction" in cfg:
        return None
    from .eos import eos_from_dict

    eos = eos_from_dict(cfg["model"]["eos"])
    if type(eos).__name__ not in ("IdealGas", "StiffenedGas"):
        return None
    st = lambda s: (s["rho"], s.get("u", 0.0), s["p"])  # noqa: E731
    x = np.linspace(result.x[0], result.x[-1], 2000)
    return exact_riemann(st(pcfg["left"]), st(pcfg["right"]), x, result.t,
                         x0=pcfg.get("x0", 0.5), eos=eos)


def plot_result(result, cfg: dict, stem: Path) -> list[Path]:
    """Write ``<stem>.png`` (1D profiles or 2D maps of the final state); return the paths."""
    stem = Path(stem)
    title = cfg.get("title", stem.name)
    f = result.fields
    names = [n for n in ("rho", "u", "p", "T", "lam", "alpha1") if n in f]
    if "lam" in names and not cfg.get("reaction"):
        names.remove("lam")
    if "T" in names and cfg["model"]["type"] == "euler" and not cfg.get("reaction"):
        names.remove("T")
    path = stem.with_suffix(".png")
    if f["rho"].ndim == 1:
        exact = _exact_overlay(result, cfg)
        fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.2 * len(names)), sharex=True)
        for ax, n in zip(np.atleast_1d(axes), names, strict=True):
            ax.plot(result.x, f[n], ".", ms=3, label="numerical")
            if exact is not None and n in ("rho", "u", "p"):
                ax.plot(exact.x, getattr(exact, n), "k-", lw=1, label="exact")
                ax.legend(loc="best", fontsize=8)
            ax.set_ylabel(_LABELS.get(n, n))
        np.atleast_1d(axes)[-1].set_xlabel("x (m)")
    else:
        names = [n for n in names if n in ("rho", "p", "T", "alpha1")][:3]
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2))
        extent = (result.x[0], result.x[-1], result.y[0], result.y[-1])
        for ax, n in zip(np.atleast_1d(axes), names, strict=True):
            im = ax.imshow(f[n], origin="lower", extent=extent, cmap="viridis", aspect="equal")
            ax.set_title(_LABELS.get(n, n), fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{title}  (t = {result.t:.4g} s, {result.steps} steps)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot_detonation(result, stem: Path) -> list[Path]:
    """``<stem>_xt.png`` and ``<stem>_shock.png`` of a tracked run with a CJ reference (none
    without one); returns the paths."""
    from .detonation import cj_reference, result_run_distance

    try:
        cj = cj_reference(result.config, result.model)
    except ValueError:
        return []
    stem = Path(stem)
    title = result.config.get("title", stem.name)
    rd = result_run_distance(result)
    dx = float(result.x[1] - result.x[0])
    out = [plot_xt(result.history, result.x, stem.with_name(stem.name + "_xt.png"),
                   title=title, run=rd)]
    if len(result.history["t"]) > 3:
        out.append(plot_shock_history(result.history, stem.with_name(stem.name + "_shock.png"),
                                      D_cj=cj.D, p_cj=cj.p, dx=dx, title=title))
    return out


def plot_xt(history: dict, x: np.ndarray, path: str | Path, *, title: str = "",
            run: RunDistance | None = None) -> Path:
    """x-t diagram of pressure (GPa) with the tracked lead shock and the run-distance point."""
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
    from .detonation import shock_speed

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


def plot_pop(series: Sequence[tuple[str, Sequence[PopPoint]]], path: str | Path) -> Path:
    """Log-log Pop plot of one or more sweeps against the experimental line."""
    from .pop import POP_PBX9501, pop_plot_run_distance

    allp = [p for _, pts in series for p in pts]
    pg = np.array([p.pressure for p in allp]) / 1e9
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    P = np.geomspace(max(pg.min() * 0.8, 0.5), pg.max() * 1.25, 50)
    ax.loglog(pop_plot_run_distance(P), P, "k-", lw=1.2,
              label=f"PBX 9501 experiment: log P = {POP_PBX9501['a']} - "
                    f"{POP_PBX9501['b']} log x*")
    for (label, pts), mk in zip(series, "os^vD", strict=False):
        det = [p for p in pts if p.detonated]
        if det:
            ax.loglog([p.x_star * 1e3 for p in det], [p.pressure / 1e9 for p in det], mk,
                      mfc="none", label=label)
        for p in pts:
            if not p.detonated:
                ax.axhline(p.pressure / 1e9, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("run distance to detonation x* (mm)")
    ax.set_ylabel("input pressure P (GPa)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
