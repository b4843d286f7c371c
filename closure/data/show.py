"""``show``: a text summary of a data set and a PNG of sample frames (T in K, P in GPa, mu, lam)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ..normalization import channel_names, denormalize, parse_norm_ranges
from . import dataset

__all__ = ["show", "plot_frames", "format_summary"]


def format_summary(path: str | Path, h5: h5py.File, summ: dict) -> str:
    f = h5["fields"]
    cfg = json.loads(h5.attrs["config"])
    lines = [
        f"{path}: {h5.attrs['format']} v{h5.attrs['format_version']}, scale {h5.attrs['scale']}, "
        f"seed {h5.attrs['seed']}",
        f"  fields {tuple(f.shape)} {f.dtype} channels "
        f"{channel_names(h5.attrs['channels'])}, "
        f"dt {float(h5.attrs['dt']) * 1e9:.4g} ns, dx {float(h5.attrs['dx']) * 1e9:.4g} nm",
        f"  samples: {summ['n_done']} done, {summ['n_failed']} failed, "
        f"{summ['n_samples'] - summ['n_done'] - summ['n_failed']} pending",
        f"  physics: kapila={cfg['physics']['kapila']}, limiter={cfg['numerics']['limiter']}, "
        f"rate_scale={cfg['physics']['reaction']['rate_scale']}, "
        f"T channel alpha1 >= {cfg['physics']['hmx_cell_alpha']} (fill "
        f"{cfg['physics']['t_fill']})",
    ]

    def rng(name, scale=1.0, unit=""):
        d = summ.get(name) or {}
        if not d:
            return f"  {name}: -"
        return (f"  {name}: min {d['min'] * scale:.4g}, median {d['median'] * scale:.4g}, "
                f"max {d['max'] * scale:.4g}{unit}")

    lines += [rng("u_p", 1.0, " m/s"), rng("shock_pressure", 1e-9, " GPa"),
              rng("porosity"), rng("n_pores"), rng("r_eq_mean", 1e6, " um"),
              rng("peak_T", 1.0, " K"), rng("peak_hotspot_fraction"),
              rng("hotspot_T_frames_with_hotspot", 1.0, " K"), rng("max_lam"),
              rng("wall_s", 1.0, " s"),
              f"  samples with a hotspot (T > {float(h5.attrs['hotspot_threshold']):g} K): "
              f"{summ['samples_with_hotspot']} of {summ['n_done']}"]
    return "\n".join(lines)


def plot_frames(h5: h5py.File, png: str | Path, n_samples: int = 3, n_frames: int = 6,
                title: str | None = None) -> Path:
    """PNG: for a few done samples (spread over u_p), each channel at evenly spaced frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    status = h5["status"][...]
    done = np.nonzero(status == dataset.DONE)[0]
    if done.size == 0:
        raise ValueError("no finished sample to plot")
    meta = h5["meta"][...]
    order = done[np.argsort(meta["u_p"][done])]
    pick = order[np.unique(np.linspace(0, order.size - 1, min(n_samples, order.size)).round()
                           .astype(int))]
    n_t = h5["fields"].shape[1]
    ks = np.unique(np.linspace(0, n_t - 1, min(n_frames, n_t)).round().astype(int))
    ranges = parse_norm_ranges(h5.attrs["norm_ranges"])
    times = h5["times"][...]
    dx = float(h5.attrs["dx"])
    H, W = h5["fields"].shape[-2:]
    extent = (0, W * dx * 1e6, 0, H * dx * 1e6)
    channels = channel_names(h5.attrs["channels"])
    rows = len(pick) * len(channels)
    fig, axes = plt.subplots(rows, len(ks), figsize=(1.9 * len(ks) + 1.2, 1.35 * rows + 0.6),
                             squeeze=False, constrained_layout=True)
    styles = {"T": ("inferno", 300.0, 1500.0, "T (K)"), "P": ("viridis", 0.0, 30.0, "P (GPa)"),
              "mu": ("gray", 0.0, 1.0, "mu"), "lam": ("magma", 0.0, 1.0, "lambda")}
    for r, i in enumerate(pick):
        f = h5["fields"][i]
        for c, name in enumerate(channels):
            cmap, lo, hi, label = styles[name]
            ax_row = axes[r * len(channels) + c]
            im = None
            for col, k in enumerate(ks):
                x = denormalize(f[k, c].astype(float), name, ranges)
                if name == "P":
                    x = x / 1e9
                ax = ax_row[col]
                im = ax.imshow(x, origin="lower", cmap=cmap, vmin=lo, vmax=hi, extent=extent,
                               interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0 and c == 0:
                    ax.set_title(f"t = {times[k] * 1e9:.2f} ns", fontsize=8)
            ax_row[0].set_ylabel(f"#{i} {label}\nu_p {meta['u_p'][i]:.0f} m/s", fontsize=7)
            fig.colorbar(im, ax=list(ax_row), shrink=0.9, pad=0.01)
    fig.suptitle(title or f"{h5.attrs['scale']} samples (shock enters at left; "
                 f"{extent[1]:.1f} x {extent[3]:.1f} um)", fontsize=9)
    png = Path(png)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def show(path: str | Path, png: str | Path | None = None, n_samples: int = 3,
         n_frames: int = 6, echo: bool = True) -> tuple[dict, Path]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data set {path} does not exist")
    with h5py.File(path, "r") as h5:
        summ = dataset.summary(h5)
        if echo:
            print(format_summary(path, h5, summ))
        out = plot_frames(h5, png or path.with_suffix(".png"), n_samples, n_frames)
    return summ, out
