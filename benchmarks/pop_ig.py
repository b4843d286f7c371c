"""Pop plot of the calibrated PBX 9501 ignition-and-growth baseline against experiment.

    python benchmarks/pop_ig.py [--workers 2] [--out benchmarks/results/pop_ig]

Runs examples/sdt_pbx9501_ig.toml at the nine pressures 3-20 GPa and at three between them
(3.5, 7, 17 GPa), prints x* (wedge construction) against the experimental line, marks which
pressures the calibration used, fits the Pop line, and repeats 3, 8 and 20 GPa with the cell
size halved (convergence). Writes ``<out>.json`` and ``<out>.png``.
Targets: x* within 20% of the line at >= 8 of the 9 pressures, fitted slope within 0.05 of the
experimental one, x* changing < 5% when dx is halved.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from macro.materials import PBX9501_LEE_TARVER, POP_PBX9501
from macro.pop import (
    fit_pop,
    plot_pop,
    pop_document,
    pop_sweep,
    pressure_config,
    run_pressure,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "sdt_pbx9501_ig.toml"
NINE = [3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0]
BETWEEN = [3.5, 7.0, 17.0]
CONVERGENCE = [3.0, 8.0, 20.0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pop_ig")
    args = ap.parse_args(argv)

    calib_file = ROOT / "benchmarks/results/ig_calibration.json"
    fit_p = json.loads(calib_file.read_text())["fit_pressures_GPa"] if calib_file.is_file() \
        else []
    t0 = time.perf_counter()
    nine = pop_sweep(CONFIG, [p * 1e9 for p in NINE], workers=args.workers, progress=True)
    between = pop_sweep(CONFIG, [p * 1e9 for p in BETWEEN], workers=args.workers)
    conv = []
    for P in CONVERGENCE:
        dx = pressure_config(CONFIG, P * 1e9)["pop"]["dx"]
        a = next(p for p in nine if p.pressure == P * 1e9)
        b = run_pressure(CONFIG, P * 1e9, dx=0.5 * dx)
        conv.append({"pressure_GPa": P, "dx_um": dx * 1e6, "x_star_mm": a.x_star * 1e3,
                     "dx_half_um": 0.5 * dx * 1e6, "x_star_half_mm": b.x_star * 1e3,
                     "change": abs(b.x_star - a.x_star) / b.x_star,
                     "x_star_speed_mm": a.x_star_speed * 1e3,
                     "x_star_speed_half_mm": b.x_star_speed * 1e3})
    wall = time.perf_counter() - t0

    print(f"{'P (GPa)':>8} {'role':>11} {'x* (mm)':>8} {'t* (us)':>8} {'exp (mm)':>9} "
          f"{'ratio':>6} {'speed x*':>9} {'dx (um)':>8}")
    for role, pts in (("nine", nine), ("between", between)):
        for p in pts:
            r = "calibration" if p.pressure / 1e9 in fit_p else (
                "validation" if role == "nine" else "between")
            ratio = p.x_star / p.exp_x_star
            print(f"{p.pressure / 1e9:8.3g} {r:>11} {p.x_star * 1e3:8.4g} {p.t_star * 1e6:8.4g} "
                  f"{p.exp_x_star * 1e3:9.4g} {ratio:6.3f} {p.x_star_speed * 1e3:9.4g} "
                  f"{p.dx * 1e6:8.3g}")
    fit = fit_pop(nine)
    within = [bool(p.detonated and abs(p.x_star / p.exp_x_star - 1) <= 0.20) for p in nine]
    print(f"fit over the nine: log10(P/GPa) = {fit['a']:.3f} - {fit['b']:.3f} log10(x*/mm) "
          f"(experiment {POP_PBX9501['a']} - {POP_PBX9501['b']}); within 20%: "
          f"{sum(within)}/9")
    for c in conv:
        print(f"convergence {c['pressure_GPa']:g} GPa: dx {c['dx_um']:.3g} -> "
              f"{c['dx_half_um']:.3g} um: x* {c['x_star_mm']:.4g} -> {c['x_star_half_mm']:.4g} mm"
              f" ({100 * c['change']:.1f}%)")
    doc = pop_document(nine, {
        "between_points": pop_document(between)["points"],
        "calibration_pressures_GPa": fit_p,
        "within_20_percent": int(sum(within)),
        "slope_error": abs(fit["b"] - POP_PBX9501["b"]),
        "convergence": conv,
        "lee_tarver": PBX9501_LEE_TARVER,
        "config": str(CONFIG.relative_to(ROOT)),
        "wall_s": wall, "python": platform.python_version()})
    write_json(doc, args.out.with_suffix(".json"))
    plot_pop([("calibrated I&G (nine)", nine), ("calibrated I&G (between)", between)],
             args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png ({wall:.0f} s)")
    return 0 if np.isfinite(fit["b"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
