"""Resolution study of the pore-collapse data: one pore at 8, 16 and 32 cells per radius.

One circular pore (radius 0.5 um, the smallest pore of the default data sets) in a 3 x 2 um
window (periodic in y: a column of pores 2 um apart), its leading edge 0.5 um behind the shock
entry, default data physics (beta-HMX Hayes EOS, JWL products, Henson chemistry, conduction,
viscosity), shock pressures at both ends of the default loading (2 and 20 GPa) and one between,
over the micro horizon (10 ns, frames every 0.25 ns). Only the cell size changes (62.5, 31.25,
15.625 nm; the default data sets use 62.5 nm, 8 cells on the smallest pore radius).
``--variant inviscid`` repeats it with viscosity and conduction off, to show what the collapse
length scale does.

Per frame: peak HMX temperature (T channel), hotspot area T > 875 K, excess-hotspot area
T > T_bulk + 300 K (closure.normalization), burned HMX mass as a volume at rho0 (burned mass
fraction F times the window's HMX mass; the window-independent form of F), residual pore gas.
Writes docs/resolution_study.json after every run (resumable: finished runs are skipped) and
docs/resolution_study.png; ``table`` prints the end-of-horizon convergence table.

    python docs/scripts/resolution_study.py run [--pressures 2 20] [--levels 8 16 32]
    python docs/scripts/resolution_study.py run --variant inviscid --levels 8 16
    python docs/scripts/resolution_study.py plot
    python docs/scripts/resolution_study.py table
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
WINDOW = (6, 4)          # window in pore radii (x, y)
T_END, FRAME_DT = 10.0e-9, 2.5e-10
#: physics variants: "default" is the data physics; "inviscid" switches viscosity and heat
#: conduction off (no collapse length scale) to show what the length scale does
VARIANTS = {"default": [],
            "inviscid": ["physics.transport.viscosity=False", "physics.transport.conduction=False"]}
#: areas and burned volumes below this (um^2, a quarter of a default cell) count as none
AREA_FLOOR_UM2 = 1.0e-3
#: statistics compared between resolutions: key -> (label, unit)
STATS = {
    "peak_T": ("peak HMX T", "K"),
    "hot_area_T": ("mean T of the hottest 0.0625 um^2", "K"),
    "hotspot_area_um2": ("hotspot area T > 875 K", "um^2"),
    "excess_area_um2": ("hotspot area T > T_bulk + 300 K", "um^2"),
    "burned_um2": ("burned HMX (volume at rho0)", "um^2"),
    "pure_peak_T": ("peak T of nearly pure HMX (alpha1 >= 0.999)", "K"),
    "excess_heat": ("hotspot heat: area integral of (T - T_Hugoniot)+", "K um^2"),
}
#: volume fraction of the cells of ``pure_peak_T``: away from the pore's smeared residue
PURE_ALPHA = 0.999


def _u_p(p_gpa: float) -> float:
    from closure.data.params import AMBIENT, HMX, hugoniot_u_p

    return hugoniot_u_p(HMX, p_gpa * 1e9, AMBIENT["p"], 1.0, 4000.0)


def run_one(p_gpa: float, n: int, variant: str = "default") -> dict:
    from closure.data import load_data_config, simulate
    from closure.normalization import CHANNELS, denormalize

    dx = RADIUS / n
    cfg = load_data_config("micro", overrides=[
        f"grid.nx={WINDOW[0] * n}", f"grid.ny={WINDOW[1] * n}", f"grid.dx={dx!r}",
        f"time.frame_dt={FRAME_DT!r}", f"time.n_frames={round(T_END / FRAME_DT)}",
        f"geometry.radius=[{RADIUS!r}, {RADIUS!r}]", "geometry.aspect=[1.0, 1.0]",
        "geometry.shapes=['circle']", *VARIANTS[variant]])
    up = _u_p(p_gpa)
    pore = {"shape": "circle", "x": 2 * RADIUS, "y": 0.5 * WINDOW[1] * RADIUS, "r": RADIUS}
    t = time.perf_counter()
    res = simulate(cfg, up, [pore])
    wall = time.perf_counter() - t
    s = res.stats
    T = denormalize(res.fields[:, CHANNELS.index("T")], "T")
    a1 = res.fields[:, CHANNELS.index("mu")]
    in_T = a1 >= cfg["physics"]["hmx_cell_alpha"]  # the T channel's HMX cells
    excess = np.where(in_T, np.maximum(T - res.meta["hugoniot_T"], 0.0), 0.0)
    rho0 = cfg["physics"]["hmx"]["rho0"]
    gas = s["gas_volume"]
    return {"p_GPa": p_gpa, "variant": variant, "u_p": up, "cells_per_radius": n, "dx": dx,
            "nx": cfg["grid"]["nx"], "ny": cfg["grid"]["ny"], "wall_s": round(wall, 1),
            "steps": res.meta["steps"], "hugoniot_T": res.meta["hugoniot_T"],
            "time": s["time"].tolist(), "peak_T": s["peak_T"].tolist(),
            "hot_area_T": s["hot_area_T"].tolist(),
            "hotspot_area_um2": (s["hotspot_area"] * 1e12).tolist(),
            "excess_area_um2": (s["hotspot_area_excess"] * 1e12).tolist(),
            "burned_fraction": s["burned_fraction"].tolist(),
            "burned_um2": (s["burned_fraction"] * s["mass_hmx"] / rho0 * 1e12).tolist(),
            "residual_gas": (gas / gas[0]).tolist(), "max_lam": s["max_lam"].tolist(),
            "pure_peak_T": np.where(a1 >= PURE_ALPHA, T, -np.inf).max(axis=(1, 2)).tolist(),
            "excess_heat": (excess.sum(axis=(1, 2)) * dx * dx * 1e12).tolist()}


def _load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {"runs": []}


def _variant(r: dict) -> str:
    return r.get("variant", "default")


def run(pressures, levels, variant: str = "default") -> None:
    from closure.files import atomic_write_bytes

    doc = _load()
    doc["setup"] = {"pore_radius_m": RADIUS, "window_radii": list(WINDOW), "t_end_s": T_END,
                    "frame_dt_s": FRAME_DT, "physics": "default micro data config"}
    for n in levels:
        for p in pressures:
            same = [r for r in doc["runs"] if r["p_GPa"] == p and r["cells_per_radius"] == n
                    and _variant(r) == variant]
            if same and all(k in same[0] for k in STATS):
                continue
            row = run_one(p, n, variant)  # new, or an older run without every statistic
            doc["runs"] = [r for r in doc["runs"] if not any(r is q for q in same)] + [row]
            atomic_write_bytes(OUT, (json.dumps(doc, indent=1) + "\n").encode())
            print(f"{p:g} GPa (u_p {row['u_p']:.0f} m/s), {variant}, {n} cells/radius: "
                  f"{row['steps']} "
                  f"steps, {row['wall_s']:.0f} s; end: " + ", ".join(
                      f"{k} {row[k][-1]:.4g}" for k in STATS), flush=True)


def convergence(doc: dict, variant: str = "default", at: float | None = None) -> list[dict]:
    """Values at time ``at`` (default: the end of the horizon) per pressure and level, and the
    change on each 2x refinement relative to the finer value (areas and burned volumes below
    AREA_FLOOR_UM2 at both levels: no change)."""
    out = []
    runs_v = [r for r in doc["runs"] if _variant(r) == variant]
    for p in sorted({r["p_GPa"] for r in runs_v}):
        runs = sorted((r for r in runs_v if r["p_GPa"] == p), key=lambda r: r["cells_per_radius"])
        for k in STATS:
            vals = {r["cells_per_radius"]: r[k][_frame(r, at)] for r in runs if k in r}
            row = {"p_GPa": p, "statistic": k, "values": vals, "change": {}}
            levels = sorted(vals)
            floor = 0.0 if k.endswith("_T") else AREA_FLOOR_UM2
            for a, b in zip(levels[:-1], levels[1:], strict=True):
                big = max(abs(vals[a]), abs(vals[b])) > floor
                row["change"][f"{a}->{b}"] = (vals[b] - vals[a]) / abs(vals[b]) if big else 0.0
            out.append(row)
    return out


def _frame(r: dict, at: float | None) -> int:
    if at is None:
        return -1
    return int(np.argmin(np.abs(np.asarray(r["time"]) - at)))


def table(variant: str = "default", at: float | None = None) -> None:
    doc = _load()
    rows = convergence(doc, variant, at)
    levels = sorted({r["cells_per_radius"] for r in doc["runs"] if _variant(r) == variant})
    when = f"{at * 1e9:g} ns" if at is not None else "10 ns"
    print(f"{variant} physics")
    print(f"| p (GPa) | statistic at {when} | " + " | ".join(f"{n} cells/r" for n in levels)
          + " | change 8->16 | change 16->32 |")
    print("|---|---|" + "---|" * (len(levels) + 2))
    for r in rows:
        label, unit = STATS[r["statistic"]]
        vals = " | ".join(f"{r['values'][n]:.4g}" if n in r["values"] else "-" for n in levels)
        ch = " | ".join(f"{100 * r['change'][k]:+.1f}%" if k in r["change"] else "-"
                        for k in ("8->16", "16->32"))
        print(f"| {r['p_GPa']:g} | {label} ({unit}) | {vals} | {ch} |")


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = _load()
    ps = sorted({r["p_GPa"] for r in doc["runs"]})
    fig, axes = plt.subplots(len(ps), len(STATS), figsize=(3.2 * len(STATS), 2.6 * len(ps)),
                             squeeze=False, constrained_layout=True)
    for row, p in zip(axes, ps, strict=True):
        for r in sorted((r for r in doc["runs"] if r["p_GPa"] == p),
                        key=lambda r: (_variant(r), r["cells_per_radius"])):
            t = np.array(r["time"]) * 1e9
            inviscid = _variant(r) == "inviscid"
            for ax, k in zip(row, STATS, strict=True):
                if k not in r:
                    continue
                ax.plot(t, r[k], ls="--" if inviscid else "-", lw=0.8 if inviscid else 1.2,
                        label=f"{r['cells_per_radius']} cells/r" + (" inviscid" if inviscid
                                                                    else ""))
        for ax, (k, (label, unit)) in zip(row, STATS.items(), strict=True):
            ax.set_title(f"{p:g} GPa: {label}", fontsize=8)
            ax.set_ylabel(unit, fontsize=8)
            ax.set_xlabel("t (ns)", fontsize=8)
            if k == "peak_T":
                ax.axhline(875.0, color="r", lw=0.6)
            ax.legend(fontsize=6)
    fig.suptitle("Resolution study: pore radius 0.5 um in a 3 x 2 um window, default data physics",
                 fontsize=9)
    png = OUT.with_suffix(".png")
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=("run", "plot", "table"))
    ap.add_argument("--pressures", type=float, nargs="+", default=[2.0, 20.0, 8.0],
                    help="shock pressures (GPa)")
    ap.add_argument("--levels", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--variant", choices=list(VARIANTS), default="default")
    ap.add_argument("--at", type=float, default=None, help="table at this time (s)")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a.pressures, a.levels, a.variant)
    elif a.cmd == "plot":
        plot()
    else:
        table(a.variant, a.at)
