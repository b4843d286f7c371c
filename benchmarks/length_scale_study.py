"""Effect of the collapse length scale: hotspot statistics vs resolution, inviscid and viscous.

One circular pore (radius 0.5 um) in a 4 x 3 um micro window, shock particle velocity u_p
(default 1.0 km/s, 9.8 GPa on the beta-HMX Hugoniot), 1.5 ns, at 8 / 16 / 32 cells per pore
radius (62.5 / 31.25 / 15.625 nm), in two variants of the default data physics:

* ``inviscid``: conduction and viscosity off (the previous solver's mechanics, with the new
  HMX EOS, products and chemistry);
* ``viscous``: the defaults (HMX viscosity 0.45 Pa s and heat conduction on).

Per run: peak hotspot temperature (T channel, HMX cells alpha1 >= 0.9), hotspot area
(T > 875 K, maximum over frames and at the end), residual pore gas, max lambda, steps, wall
time. Writes ``benchmarks/results/length_scale_study.json``.

    python benchmarks/length_scale_study.py [--up 1000] [--levels 8 16 32] [--variants ...]
    python benchmarks/length_scale_study.py --table [--at 7.5e-10]   # Markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "length_scale_study.json"
RADIUS = 0.5e-6
VARIANTS = {
    "inviscid": ["physics.transport.conduction=False", "physics.transport.viscosity=False"],
    "viscous": [],
}


def run_one(up: float, n: int, variant: str, t_end: float, frame_dt: float) -> dict:
    from closure.data import load_data_config, simulate
    from closure.normalization import HOTSPOT_THRESHOLD_K

    dx = RADIUS / n
    cfg = load_data_config("micro", overrides=[
        f"grid.nx={8 * n}", f"grid.ny={6 * n}", f"grid.dx={dx!r}",
        f"time.frame_dt={frame_dt!r}", f"time.n_frames={round(t_end / frame_dt)}",
        *VARIANTS[variant]])
    pore = {"shape": "circle", "x": 1.25e-6, "y": 1.5e-6, "r": RADIUS}
    t = time.perf_counter()
    res = simulate(cfg, float(up), [pore])
    wall = time.perf_counter() - t
    gas = res.stats["gas_volume"]
    return {"u_p": up, "variant": variant, "cells_per_radius": n, "dx": dx,
            "nx": cfg["grid"]["nx"], "ny": cfg["grid"]["ny"], "wall_s": round(wall, 1),
            "steps": res.meta["steps"], "threshold_K": HOTSPOT_THRESHOLD_K,
            "hugoniot_T": res.meta["hugoniot_T"], "shock_pressure": res.meta["shock_pressure"],
            "time": res.stats["time"].tolist(), "peak_T": res.stats["peak_T"].tolist(),
            "hotspot_area_um2": (res.stats["hotspot_area"] * 1e12).tolist(),
            "residual_gas": (gas / gas[0]).tolist(), "max_lam": res.stats["max_lam"].tolist(),
            "summary": {"peak_T": float(np.max(res.stats["peak_T"])),
                        "max_hotspot_area_um2": float(np.max(res.stats["hotspot_area"]) * 1e12),
                        "final_hotspot_area_um2": float(res.stats["hotspot_area"][-1] * 1e12),
                        "final_residual_gas": float(gas[-1] / gas[0]),
                        "max_lam": float(np.max(res.stats["max_lam"]))}}


def table(at: float) -> None:
    """Markdown table of the stored runs; ``at``: the time (s) of the snapshot columns."""
    runs = json.loads(OUT.read_text())["runs"]
    print(f"| u_p (m/s) | variant | cells/radius | steps | wall (s) | peak T, 0-1.5 ns (K) | "
          f"peak T at {at * 1e9:.3g} ns (K) | hotspot area at {at * 1e9:.3g} ns (um^2) | "
          "final hotspot area (um^2) | max lambda | residual gas (%) |")
    print("|---" * 11 + "|")
    for r in runs:
        k = int(np.argmin(np.abs(np.array(r["time"]) - at)))
        s = r["summary"]
        print(f"| {r['u_p']:.0f} | {r['variant']} | {r['cells_per_radius']} | {r['steps']} | "
              f"{r['wall_s']:.0f} | {s['peak_T']:.0f} | {r['peak_T'][k]:.0f} | "
              f"{r['hotspot_area_um2'][k]:.3f} | {s['final_hotspot_area_um2']:.3f} | "
              f"{s['max_lam']:.2g} | {100 * s['final_residual_gas']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--up", type=float, nargs="+", default=[1000.0])
    ap.add_argument("--levels", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--t-end", type=float, default=1.5e-9)
    ap.add_argument("--frame-dt", type=float, default=1.25e-10)
    ap.add_argument("--table", action="store_true", help="print the stored runs as Markdown")
    ap.add_argument("--at", type=float, default=7.5e-10, help="snapshot time of --table (s)")
    args = ap.parse_args()
    if args.table:
        table(args.at)
        return
    results = json.loads(OUT.read_text()) if OUT.exists() else {"runs": []}
    results["setup"] = {"pore_radius_m": RADIUS, "window_m": [4e-6, 3e-6],
                        "pore_centre_m": [1.25e-6, 1.5e-6], "t_end_s": args.t_end,
                        "frame_dt_s": args.frame_dt, "variants": VARIANTS,
                        "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default")}
    for up in args.up:
        for variant in args.variants:
            for n in args.levels:
                row = run_one(up, n, variant, args.t_end, args.frame_dt)
                results["runs"] = [r for r in results["runs"] if not (
                    r["u_p"] == up and r["cells_per_radius"] == n and r["variant"] == variant)]
                results["runs"].append(row)
                results["runs"].sort(key=lambda r: (r["u_p"], r["variant"],
                                                    r["cells_per_radius"]))
                OUT.parent.mkdir(parents=True, exist_ok=True)
                OUT.write_text(json.dumps(results, indent=1))
                s = row["summary"]
                print(f"u_p {up:.0f} {variant:8s} {n:2d} cells/r ({row['nx']}x{row['ny']}): "
                      f"{row['steps']} steps {row['wall_s']:.0f} s | peak T {s['peak_T']:.0f} K, "
                      f"hot area max {s['max_hotspot_area_um2']:.3f} final "
                      f"{s['final_hotspot_area_um2']:.3f} um^2, gas left "
                      f"{100 * s['final_residual_gas']:.1f}%, max lam {s['max_lam']:.3g}",
                      flush=True)


if __name__ == "__main__":
    main()
