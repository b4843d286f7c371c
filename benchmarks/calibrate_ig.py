"""Calibrate the PBX 9501 ignition-and-growth set on the experimental Pop plot.

    python benchmarks/calibrate_ig.py [--fit-pressures 3,8,20] [--dx 1e-5] [--maxiter 80]
                                      [--out benchmarks/results/ig_calibration.json]

Free parameters: ``log10 I``, ``log10 G1`` and ``y`` of :data:`macro.materials.PBX9501_LEE_TARVER`
(the other exponents are fixed, see that module). Objective: the sum over the fit pressures of
``(log10 x*_sim - log10 x*_exp)^2`` (x* by the wedge construction, the experimental line of
``macro.materials.POP_PBX9501``), minimised with scipy's Nelder-Mead. Runs that do not detonate
inside their domain score as if x* were twice the domain. Every evaluation is cached in the
output file (written atomically after each), so an interrupted calibration resumes where it
stopped. The validation pressures are never used here: see benchmarks/pop_ig.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from macro.io import atomic_write_bytes
from macro.materials import PBX9501_LEE_TARVER, pop_plot_run_distance
from macro.pop import parse_pressures, run_pressure

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "sdt_pbx9501_ig.toml"
FREE = ("log10_I", "log10_G1", "y")


def params_of(v) -> dict:
    return {"I": float(10.0 ** v[0]), "G1": float(10.0 ** v[1]), "y": float(v[2])}


def _run(args):
    cfg, P, dx = args
    p = run_pressure(cfg, P, dx=dx)
    return {"pressure_GPa": P / 1e9, "x_star_mm": p.x_star * 1e3 if p.detonated else None,
            "detonated": p.detonated, "length_mm": p.length * 1e3, "wall_s": p.wall_s}


def evaluate(v, pressures, dx, pool, base_cfg) -> dict:
    cfg = json.loads(json.dumps(base_cfg))
    cfg["reaction"].update(params_of(v))
    runs = list(pool.map(_run, [(cfg, P, dx) for P in pressures]))
    res = []
    for r in runs:
        xe = float(pop_plot_run_distance(r["pressure_GPa"]))
        xs = r["x_star_mm"] if r["detonated"] else 2.0 * r["length_mm"]
        res.append(np.log10(xs) - np.log10(xe))
    return {"v": [float(a) for a in v], "params": params_of(v), "runs": runs,
            "residuals_log10": [float(a) for a in res],
            "objective": float(np.sum(np.square(res)))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-pressures", default="3,8,20", help="GPa, comma separated")
    ap.add_argument("--dx", type=float, default=None, help="cell size (m); default: config")
    ap.add_argument("--maxiter", type=int, default=80)
    ap.add_argument("--x0", default=None, help="start: log10_I,log10_G1,y")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ig_calibration.json")
    args = ap.parse_args(argv)

    from macro.simulation import load_config

    pressures = parse_pressures(args.fit_pressures)
    base = load_config(CONFIG)
    cache: dict[str, dict] = {}
    if args.out.is_file():
        old = json.loads(args.out.read_text())
        if old.get("fit_pressures_GPa") == [p / 1e9 for p in pressures] and \
                old.get("dx") == args.dx:
            cache = {json.dumps(e["v"]): e for e in old.get("evaluations", [])}
    x0 = (np.array([float(a) for a in args.x0.split(",")]) if args.x0 else
          np.array([np.log10(PBX9501_LEE_TARVER["I"]), np.log10(PBX9501_LEE_TARVER["G1"]),
                    PBX9501_LEE_TARVER["y"]]))
    evals: list[dict] = list(cache.values())
    t0 = time.perf_counter()

    def save(extra=None):
        best = min(evals, key=lambda e: e["objective"]) if evals else None
        doc = {"what": "Lee-Tarver I, G1, y for PBX 9501 fitted on log10 x* (wedge) at the "
                       "fit pressures against the experimental Pop line",
               "free": list(FREE), "fixed": {k: v for k, v in PBX9501_LEE_TARVER.items()
                                             if k not in ("I", "G1", "y")},
               "fit_pressures_GPa": [p / 1e9 for p in pressures], "dx": args.dx,
               "config": str(CONFIG.relative_to(ROOT)), "best": best,
               "n_evaluations": len(evals), "python": platform.python_version(),
               "evaluations": evals, **(extra or {})}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.out, (json.dumps(doc, indent=1) + "\n").encode())

    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        def f(v):
            key = json.dumps([float(a) for a in v])
            if key not in cache:
                e = evaluate(v, pressures, args.dx, pool, base)
                cache[key] = e
                evals.append(e)
                save()
                xs = ", ".join(f"{r['pressure_GPa']:g}:{r['x_star_mm'] or float('nan'):.3g}"
                               for r in e["runs"])
                print(f"[{len(evals):3d}] I={e['params']['I']:.4g} G1={e['params']['G1']:.4g} "
                      f"y={e['params']['y']:.4f} obj={e['objective']:.5f}  x*(mm) {xs}",
                      flush=True)
            return cache[key]["objective"]

        res = minimize(f, x0, method="Nelder-Mead",
                       options={"maxiter": args.maxiter, "xatol": 1e-3, "fatol": 1e-5,
                                "initial_simplex": np.array([x0, x0 + [0.5, 0, 0],
                                                             x0 + [0, 0.5, 0],
                                                             x0 + [0, 0, 0.5]])})
    save({"optimizer": {"method": "Nelder-Mead", "success": bool(res.success),
                        "message": str(res.message), "nit": int(res.nit)},
          "wall_s": time.perf_counter() - t0})
    best = min(evals, key=lambda e: e["objective"])
    print("best:", best["params"], "residuals (log10):", best["residuals_log10"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
