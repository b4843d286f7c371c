"""Resolution study: one circular pore (radius 0.5 um) at 8, 16 and 32 cells per radius.

Same physical micro domain (6 x 4 um), physics and frames as the default micro data set; only the
cell size changes (62.5, 31.25, 15.625 nm). Records per-frame peak HMX temperature, hotspot area
(T > 875 K) and mean hotspot temperature, writes docs/resolution_study.json and .png.

    python docs/scripts/resolution_study.py run [--up 1000 1400] [--levels 8 16 32]
    python docs/scripts/resolution_study.py plot
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "resolution_study.json"
RADIUS = 0.5e-6


def run(ups, levels, extra=()):
    from closure.data import load_data_config, simulate

    results = json.loads(OUT.read_text()) if OUT.exists() else {"runs": []}
    for up in ups:
        for n in levels:
            dx = RADIUS / n
            k = n // 8
            cfg = load_data_config("micro", overrides=[
                f"grid.nx={96 * k}", f"grid.ny={64 * k}", f"grid.dx={dx!r}", *extra])
            pore = {"shape": "circle", "x": 1.5e-6, "y": 2.0e-6, "r": RADIUS}
            t = time.perf_counter()
            res = simulate(cfg, float(up), [pore])
            wall = time.perf_counter() - t
            domain = cfg["grid"]["nx"] * cfg["grid"]["ny"] * dx * dx
            row = {"u_p": up, "cells_per_radius": n, "dx": dx, "nx": cfg["grid"]["nx"],
                   "ny": cfg["grid"]["ny"], "wall_s": wall, "steps": res.meta["steps"],
                   "kapila": cfg["physics"]["kapila"],
                   "time": res.stats["time"].tolist(),
                   "peak_T": res.stats["peak_T"].tolist(),
                   "hotspot_area_um2": (res.stats["hotspot_area"] * 1e12).tolist(),
                   "hotspot_fraction": (res.stats["hotspot_area"] / domain).tolist(),
                   "hotspot_T": res.stats["hotspot_T"].tolist(),
                   "gas_volume_um2": (res.stats["gas_volume"] * 1e12).tolist(),
                   "max_lam": res.stats["max_lam"].tolist()}
            results["runs"] = [r for r in results["runs"]
                               if not (r["u_p"] == up and r["cells_per_radius"] == n)] + [row]
            OUT.write_text(json.dumps(results, indent=1))
            print(f"u_p {up:.0f} m/s, {n} cells/radius ({row['nx']}x{row['ny']}): "
                  f"{res.meta['steps']} steps, {wall:.0f} s, peak T {max(row['peak_T']):.0f} K, "
                  f"max hotspot area {max(row['hotspot_area_um2']):.3f} um^2", flush=True)


def plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = json.loads(OUT.read_text())["runs"]
    ups = sorted({r["u_p"] for r in runs})
    fig, axes = plt.subplots(len(ups), 3, figsize=(11, 3.0 * len(ups)), squeeze=False,
                             constrained_layout=True)
    print("| u_p (m/s) | cells/radius | grid | steps | wall (s) | peak T (K) | peak T after "
          "collapse, t >= 1.5 ns (K) | max hotspot area (um^2) | final hotspot area (um^2) | "
          "final residual gas (% of pore) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row, up in zip(axes, ups, strict=True):
        for r in sorted((r for r in runs if r["u_p"] == up), key=lambda r: r["cells_per_radius"]):
            t = np.array(r["time"]) * 1e9
            lab = f"{r['cells_per_radius']} cells/r"
            row[0].plot(t, r["peak_T"], label=lab)
            row[1].plot(t, r["hotspot_area_um2"], label=lab)
            row[2].plot(t, np.array(r["gas_volume_um2"]) / r["gas_volume_um2"][0] * 100, label=lab)
            late = t >= 1.5
            print(f"| {up:.0f} | {r['cells_per_radius']} | {r['nx']}x{r['ny']} | {r['steps']} | "
                  f"{r['wall_s']:.0f} | {max(r['peak_T']):.0f} | "
                  f"{max(np.array(r['peak_T'])[late]):.0f} | {max(r['hotspot_area_um2']):.3f} | "
                  f"{r['hotspot_area_um2'][-1]:.3f} | "
                  f"{100 * r['gas_volume_um2'][-1] / r['gas_volume_um2'][0]:.1f} |")
        row[0].axhline(875, color="r", lw=0.7)
        row[0].set_ylabel(f"u_p {up:.0f} m/s\npeak HMX T (K)")
        row[1].set_ylabel("hotspot area, T > 875 K (um^2)")
        row[2].set_ylabel("gas volume (% of pore)")
        for ax in row:
            ax.set_xlabel("t (ns)")
            ax.legend(fontsize=7)
    fig.suptitle("Resolution study: pore radius 0.5 um, default micro setup", fontsize=10)
    out = OUT.with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("run", "plot"))
    ap.add_argument("--up", type=float, nargs="+", default=[1000.0, 1400.0])
    ap.add_argument("--levels", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--set", dest="extra", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.up, a.levels, a.extra)
    else:
        plot()
