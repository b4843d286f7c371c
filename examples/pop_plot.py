"""Pop-plot sweep: run distance to detonation versus input (piston) pressure.

    python examples/pop_plot.py [--config examples/sdt_pop.toml] [--pressures 4 5 6 8 10 12 15]
                                [--closure closure:Closure.load [--closure-path DIR]]
                                [--out docs/pop_plot]

Each pressure is one run of the 1D piston-driven problem; the run distance is the lead-shock
distance from the piston face when the lead shock first reaches 0.9 D_CJ (macro.detonation).
Writes ``<out>.png`` (against the PBX 9501 line) and ``<out>.json`` (the points, wall times and
the CJ reference). ``--closure`` adds a sweep with the closure coupled through its provider.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from macro.detonation import plot_pop, pop_plot, save_points
from macro.materials import cj_state, pop_plot_run_distance
from macro.simulation import load_config, resolve_factory

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=HERE / "sdt_pop.toml")
    ap.add_argument("--pressures", type=float, nargs="+",
                    default=[4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0], help="GPa")
    ap.add_argument("--closure", default=None,
                    help="provider factory 'module:attr' for a closure-coupled sweep")
    ap.add_argument("--closure-path", default=None,
                    help="model directory passed to the factory as path= (default: shipped)")
    ap.add_argument("--mode", default="table")
    ap.add_argument("--out", type=Path, default=Path("pop_plot"))
    args = ap.parse_args(argv)

    pressures = [p * 1e9 for p in args.pressures]
    cj = cj_state()
    t0 = time.perf_counter()
    lt = pop_plot(args.config, pressures, progress=True)
    sweeps = {"lee_tarver": lt}
    extra = []
    if args.closure:
        provider_factory = resolve_factory(args.closure)
        cfg = load_config(args.config)
        cfg["reaction"] = {"type": "closure", "mode": args.mode, "growth": "HMX"}
        pts = []
        for P in pressures:  # a fresh provider per run: its per-cell state belongs to one run
            kw = {"path": args.closure_path} if args.closure_path else {}
            pts += pop_plot(cfg, [P], rate=provider_factory(**kw))
        sweeps["closure"] = pts
        extra.append((f"closure ({args.mode}) + LT growth", pts))
    wall = time.perf_counter() - t0

    print(f"JWL CJ: p = {cj.p / 1e9:.2f} GPa, D = {cj.D:.0f} m/s")
    print(f"{'sweep':>11} {'P (GPa)':>8} {'x* (mm)':>8} {'x*_p (mm)':>9} {'t* (us)':>8} "
          f"{'PBX9501 x* (mm)':>15} {'wall (s)':>8}")
    for name, pts in sweeps.items():
        for p in pts:
            ref = float(pop_plot_run_distance(p.pressure / 1e9))
            print(f"{name:>11} {p.pressure / 1e9:8.2f} {p.x_star * 1e3:8.3f} "
                  f"{p.x_star_pressure * 1e3:9.3f} {p.t_star * 1e6:8.3f} {ref:15.3f} "
                  f"{p.wall_s:8.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = plot_pop(lt, args.out.with_suffix(".png"), label="Lee-Tarver (LX-14 params)",
                   extra=extra)
    cfg = load_config(args.config)
    extra_doc = {"config": cfg, "cj": {"p": cj.p, "D": cj.D},
                 "criterion": "first time the lead shock speed >= 0.9 D_CJ",
                 "wall_s": wall, "python": platform.python_version()}
    if "closure" in sweeps:
        extra_doc["closure_points"] = [p.__dict__ for p in sweeps["closure"]]
    save_points(lt, args.out.with_suffix(".json"), extra_doc)
    det = [p for p in lt if p.detonated]
    if len(det) >= 2:
        b, a = np.polyfit(np.log10([p.x_star * 1e3 for p in det]),
                          np.log10([p.pressure / 1e9 for p in det]), 1)
        print(f"Lee-Tarver fit: log10(P/GPa) = {a:.3f} - {-b:.3f} log10(x*/mm) "
              f"(PBX 9501: 1.10 - 0.51)")
    print(f"wrote {png} and {args.out.with_suffix('.json')} ({wall:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
