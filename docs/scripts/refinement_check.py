"""Grid refinement on samples of a default data set: each sample rerun at its own resolution and
at twice it (cell size halved, same physical window, pores and loading), statistics compared.

The resolution study (``docs/scripts/resolution_study.py``) refines one circular pore at three
pressures; this check refines the data set's own samples (random pore shapes and sizes) over
the whole loading range. The rerun at the set's resolution must reproduce the stored sample bit
for bit (its ``fields_sha256`` in the manifest), which checks the committed manifest against
the current code as well.

    python docs/scripts/refinement_check.py [--scale micro] [--n 12 | --ends K] [--workers 2]
        [--out F]

Statistics, per sample: peak T and the mean T of the hottest 0.0625 um^2 (maximum over the
frames), hotspot area T > 875 K and T > T_Hugoniot + 300 K (maximum over the frames), the
hotspot heat (area integral of (T - T_Hugoniot)+ over the T channel at the end of the horizon)
and the burned mass fraction F at the end. Change = (fine - coarse) / fine; values under
the floors at both levels (areas in um^2, F) count as no change. Per frame as well (``series``:
peak T, hotspot area T > 875 K and F of both levels), to show how the change evolves over the
horizon. ``--ends K`` refines the K samples of lowest and the K of highest shock pressure (the
two ends of the loading range) instead of ``--n`` spread over it. Writes
``docs/refinement_<scale>.json``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
STATS = ("peak_T", "hot_area_T", "area_875_um2", "area_excess_um2", "heat_K_um2", "F_end")
FLOORS = {"area_875_um2": 1e-3, "area_excess_um2": 1e-3, "F_end": 1e-6, "heat_K_um2": 1e-3}


def _stats(res, cfg: dict) -> dict:
    from closure.data.collapse import NORM_RANGES

    dx = cfg["grid"]["dx"]
    um2 = dx * dx * 1e12
    lo, hi = NORM_RANGES["T"]
    T_end = res.fields[-1, 0].astype(np.float64) * (hi - lo) + lo
    TH = res.meta["hugoniot_T"]
    s = res.stats
    return {"peak_T": float(np.max(s["peak_T"])), "hot_area_T": float(np.max(s["hot_area_T"])),
            "area_875_um2": float(np.max(s["hotspot_area"])) * 1e12,
            "area_excess_um2": float(np.max(s["hotspot_area_excess"])) * 1e12,
            "heat_K_um2": float(np.clip(T_end - TH, 0.0, None).sum()) * um2,
            "F_end": float(s["burned_fraction"][-1])}


def _series(res) -> dict:
    s = res.stats
    return {"peak_T": [float(v) for v in s["peak_T"]],
            "area_875_um2": [float(v) * 1e12 for v in s["hotspot_area"]],
            "F": [float(v) for v in s["burned_fraction"]]}


def _run(args):
    import numba

    from closure.data.collapse import run_sample

    numba.set_num_threads(1)
    cfg, seed, index, factor = args
    fine = copy.deepcopy(cfg)
    g = fine["grid"]
    g["nx"], g["ny"], g["dx"] = g["nx"] * factor, g["ny"] * factor, g["dx"] / factor
    coarse = run_sample(cfg, seed, index)
    sha = hashlib.sha256(np.ascontiguousarray(coarse.fields).tobytes()).hexdigest()
    refined = run_sample(fine, seed, index)
    return (index, sha, coarse.meta["shock_pressure"], _stats(coarse, cfg), _stats(refined, fine),
            {"coarse": _series(coarse), "fine": _series(refined)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="micro", choices=("micro", "meso"))
    ap.add_argument("--n", type=int, default=12, help="samples, spread over the pressures")
    ap.add_argument("--ends", type=int, default=0,
                    help="instead of --n: the K lowest- and the K highest-pressure samples")
    ap.add_argument("--factor", type=int, default=2, help="refinement factor (default 2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    from closure.data.config import from_json
    from closure.data.dataset import DONE

    man = json.loads((ROOT / "docs" / "datasets" / f"{a.scale}.h5.manifest.json").read_text())
    cfg = from_json(json.dumps(man["config"]))
    done = sorted((s for s in man["samples"] if s["status"] == DONE),
                  key=lambda s: s["shock_pressure"])
    if a.ends > 0:
        if 2 * a.ends > len(done):
            raise SystemExit(f"--ends {a.ends}: the set has {len(done)} samples")
        picks = done[:a.ends] + done[-a.ends:]
    else:
        picks = [done[int(round(k))] for k in np.linspace(0, len(done) - 1, a.n)]
    jobs = [(cfg, man["seed"], s["index"], a.factor) for s in picks]
    with ProcessPoolExecutor(a.workers) as ex:
        results = sorted(ex.map(_run, jobs), key=lambda r: r[2])
    stored = {s["index"]: s for s in picks}
    rows = []
    print(f"{'P (GPa)':>8s} {'bits':>5s} " + " ".join(f"{k:>22s}" for k in STATS))
    for index, sha, p, c, f, ser in results:
        same = sha == stored[index]["fields_sha256"]
        change = {}
        for k in STATS:
            fl = FLOORS.get(k, 0.0)
            change[k] = 0.0 if (abs(c[k]) < fl and abs(f[k]) < fl) else (f[k] - c[k]) / f[k]
        rows.append({"index": index, "shock_pressure_GPa": p / 1e9, "reproduces_stored": same,
                     "coarse": c, "fine": f, "change": change, "series": ser})
        print(f"{p / 1e9:8.2f} {str(same):>5s} " + " ".join(
            f"{c[k]:8.3g}->{f[k]:8.3g} {100 * change[k]:+5.0f}%" for k in STATS))
    doc = {"scale": a.scale, "factor": a.factor, "dx": cfg["grid"]["dx"],
           "frame_dt": cfg["time"]["frame_dt"],
           "code": man.get("generated_by", {}).get("git_commit"),
           "floors": FLOORS, "samples": rows,
           "median_abs_change": {k: float(np.median([abs(r["change"][k]) for r in rows]))
                                 for k in STATS}}
    out = Path(a.out) if a.out else ROOT / "docs" / f"refinement_{a.scale}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print("median |change|:", {k: round(v, 3) for k, v in doc["median_abs_change"].items()})
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
