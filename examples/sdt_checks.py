"""Measured numbers of docs/macro_sdt.md: CJ check and run-distance resolution study (Lee-Tarver).

    python examples/sdt_checks.py [--out docs/sdt/checks.json]

1. JWL CJ state of PBX 9501 (macro.materials.cj_state).
2. 8 GPa piston, 40 mm of PBX 9501, dx = 50 and 25 um: sonic-point pressure and front speed at the
   end (the detonation approaches CJ from below while the Lee-Tarver G2 tail completes), and
   the same measured at 20 mm.
3. Run distance at 8 GPa for dx = 50, 25, 12.5 um (speed and pressure criteria).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from macro.io import atomic_write_bytes
from macro.materials import cj_state
from macro.simulation import Simulation, load_config

HERE = Path(__file__).resolve().parent


def run(P, nx, length, t_end):
    cfg = load_config(HERE / "detonation_1d_ig.toml")
    cfg["grid"].update(nx=nx, x_max=length)
    cfg["time"].update(t_end=t_end, n_frames=0)
    cfg["boundary"]["piston_pressure"] = {"x_low": P}
    t0 = time.perf_counter()
    res = Simulation.from_config(cfg).run()
    return res, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("sdt_checks.json"))
    args = ap.parse_args(argv)
    cj = cj_state()
    out = {"cj": {"p": cj.p, "D": cj.D, "rho": cj.rho, "u": cj.u, "c": cj.c}, "cj_runs": [],
           "resolution": [], "load_average": os.getloadavg()}
    print(f"JWL CJ: p = {cj.p / 1e9:.3f} GPa, D = {cj.D:.1f} m/s, rho = {cj.rho:.1f}, "
          f"u = {cj.u:.1f} m/s")
    for length, t_end in ((0.020, 2.1e-6), (0.040, 4.3e-6)):
        for dx in (50e-6, 25e-6):
            res, wall = run(8e9, round(length / dx), length, t_end)
            m = res.measure_cj()
            row = {"length_mm": length * 1e3, "dx_um": dx * 1e6, "p_sonic": m.p, "D": m.D,
                   "lam_sonic": m.lam, "p_lead": m.p_lead, "p_ratio": m.p / cj.p,
                   "D_ratio": m.D / cj.D, "wall_s": wall}
            out["cj_runs"].append(row)
            print(f"L = {length * 1e3:.0f} mm dx = {dx * 1e6:.1f} um: p_sonic = {m.p / 1e9:.2f} GPa"
                  f" ({m.p / cj.p:.3f} p_CJ), D = {m.D:.0f} m/s ({m.D / cj.D:.3f} D_CJ), "
                  f"lambda = {m.lam:.3f}, lead (spike) {m.p_lead / 1e9:.1f} GPa")
    for dx in (50e-6, 25e-6, 12.5e-6):
        res, wall = run(8e9, round(0.008 / dx), 0.008, 1.0e-6)
        rs, rp = res.run_distance(), res.run_distance(criterion="pressure")
        out["resolution"].append({"dx_um": dx * 1e6, "x_star_speed_mm": rs.x_star * 1e3,
                                  "x_star_pressure_mm": rp.x_star * 1e3, "wall_s": wall})
        print(f"8 GPa dx = {dx * 1e6:5.1f} um: x* = {rs.x_star * 1e3:.3f} mm (speed), "
              f"{rp.x_star * 1e3:.3f} mm (pressure)")
    atomic_write_bytes(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
