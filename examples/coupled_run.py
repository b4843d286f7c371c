"""Coupled shock-to-detonation run from Python (the API the CLI is a thin layer over).

    python examples/coupled_run.py [--lee-tarver] [--pressure 8] [--output detonation_1d.h5]

Builds the closure provider (``closure.Closure.load()``: the shipped default weights and
tables), hands it to the simulation as its rate, runs with a progress bar, and prints the
run distance, the lead-shock history and the measured CJ state against the JWL reference.
``--lee-tarver`` runs the same problem with Lee-Tarver ignition (no closure needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import macro

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lee-tarver", action="store_true", help="Lee-Tarver instead of the closure")
    ap.add_argument("--pressure", type=float, default=8.0, help="piston pressure (GPa)")
    ap.add_argument("--output", type=Path, default=Path("detonation_1d.h5"))
    args = ap.parse_args(argv)

    overrides = {"boundary__piston_pressure": {"x_low": args.pressure * 1e9}}
    if args.lee_tarver:
        sim = macro.Simulation.from_config(HERE / "detonation_1d_ig.toml", **overrides)
    else:
        import closure  # the provider: any object with a query() method would do

        provider = closure.Closure.load()
        sim = macro.Simulation.from_config(HERE / "detonation_1d.toml", rate=provider,
                                           **overrides)
    result = sim.run(args.output, progress=True)

    cj = result.cj_reference()
    rd = result.run_distance()
    print(f"t = {result.t * 1e6:.3f} us after {result.steps} steps ({result.wall_s:.1f} s)")
    print(f"JWL CJ: p = {cj.p / 1e9:.2f} GPa, D = {cj.D:.0f} m/s")
    if rd.detonated:
        print(f"run distance x* = {rd.x_star * 1e3:.3f} mm at t* = {rd.t_star * 1e6:.3f} us "
              f"(lead shock speed >= 0.9 D_CJ)")
        try:
            m = result.measure_cj()
            print(f"sonic point: p = {m.p / 1e9:.2f} GPa ({m.p / cj.p:.3f} p_CJ), front "
                  f"speed {m.D:.0f} m/s, lambda {m.lam:.3f}")
        except ValueError as exc:
            print(f"CJ state not measured: {exc}")
    else:
        print("no detonation within the domain and time")
    print(f"final fields: {sorted(result.fields)}; max p = {result.p.max() / 1e9:.2f} GPa, "
          f"max lambda = {result.lam.max():.3f}")
    for p in result.plots:
        print(f"plot {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
