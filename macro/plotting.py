"""PNG plots of a finished run (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .exact import exact_riemann  # noqa: E402

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
