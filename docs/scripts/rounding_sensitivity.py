"""How much the pore-collapse statistics move when the kernels' arithmetic changes at the
rounding level: samples of a stored data set rerun with the current kernels, per-frame
statistics compared with the stored ones.

Hotspots form where a pore collapses, a strongly nonlinear event; a change of the last bits
(another power or exp routine, divisions replaced by reciprocals) moves every later state
slightly, and this measures by how much each statistic the closure uses moves. It is a floor
under the data's uncertainty that no model can beat, and it says whether a data set generated
by an earlier version of the kernels can stand for the current code.

    python docs/scripts/rounding_sensitivity.py [--scale micro] [--n 12] [--workers 2] [--out F]

Picks ``n`` finished samples spread evenly over the stored shock pressures, reruns them
(``closure.data.collapse.run_sample``, the set's own config and seed) and writes
``docs/rounding_sensitivity_<scale>.json`` (or ``--out``; the same comparison measures a change
of the scheme against the set's): per sample and statistic the end-of-horizon values
(stored, rerun), their relative difference, and the largest relative difference over the frames
after the first quarter (relative to the sample's largest stored value of that statistic, so
that frames near zero do not blow it up).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
STATS = ("peak_T", "hotspot_area", "hotspot_T", "burned_fraction", "max_lam")


def _rerun(args):
    import numba

    from closure.data.collapse import run_sample

    cfg, seed, index = args
    numba.set_num_threads(1)
    res = run_sample(cfg, seed, index)
    return index, {k: np.asarray(res.stats[k], float) for k in STATS}


def _compare(stored: np.ndarray, rerun: np.ndarray) -> dict:
    scale = float(np.max(np.abs(stored)))
    q = len(stored) // 4
    end_rel = (float(abs(rerun[-1] - stored[-1]) / abs(stored[-1])) if stored[-1] != 0.0
               else (0.0 if rerun[-1] == 0.0 else None))
    return {"stored_end": float(stored[-1]), "rerun_end": float(rerun[-1]),
            "end_rel_diff": end_rel,
            "max_rel_diff_after_quarter": (float(np.max(np.abs(rerun[q:] - stored[q:])) / scale)
                                           if scale > 0.0 else 0.0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="micro", choices=("micro", "meso"))
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default=None, help="data file (default data/<scale>.h5)")
    ap.add_argument("--out", default=None,
                    help="JSON written (default docs/rounding_sensitivity_<scale>.json)")
    args = ap.parse_args()
    path = Path(args.data or ROOT / "data" / f"{args.scale}.h5")
    with h5py.File(path, "r") as h5:
        cfg = json.loads(h5.attrs["config"])
        seed = int(h5.attrs["seed"])
        done = np.flatnonzero(h5["status"][:] == 1)
        p = h5["meta"]["shock_pressure"][done]
        order = done[np.argsort(p)]
        pick = sorted(set(order[np.linspace(0, len(order) - 1, args.n).round().astype(int)]))
        stored = {int(i): {k: h5["stats"][k][i].astype(float) for k in STATS} for i in pick}
        pressure = {int(i): float(h5["meta"]["shock_pressure"][i]) for i in pick}
        generated_by = h5.attrs.get("generated_by", "")
    with ProcessPoolExecutor(args.workers) as ex:
        reruns = dict(ex.map(_rerun, [(cfg, seed, int(i)) for i in pick]))
    from closure.data.dataset import code_provenance

    samples = []
    for i in pick:
        i = int(i)
        samples.append({"index": i, "shock_pressure_GPa": pressure[i] / 1e9,
                        **{k: _compare(stored[i][k], reruns[i][k]) for k in STATS}})
    agg = {}
    for k in STATS:
        e = [s[k]["end_rel_diff"] for s in samples if s[k]["end_rel_diff"] is not None]
        m = [s[k]["max_rel_diff_after_quarter"] for s in samples]
        agg[k] = {"end_rel_diff_median": float(np.median(e)) if e else None,
                  "end_rel_diff_max": float(np.max(e)) if e else None,
                  "max_rel_diff_after_quarter_median": float(np.median(m)),
                  "max_rel_diff_after_quarter_max": float(np.max(m))}
    doc = {"data": f"data/{path.name}", "scale": args.scale, "n": len(samples),
           "stored_generated_by": (json.loads(generated_by) if generated_by else None),
           "rerun_code": code_provenance(), "summary": agg, "samples": samples}
    out = Path(args.out or ROOT / "docs" / f"rounding_sensitivity_{args.scale}.json").resolve()
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{args.scale}: {len(samples)} samples rerun, relative differences (median / max)")
    print(f"  {'statistic':16s} {'end of horizon':>22s} {'any frame after T/4':>24s}")
    for k, a in agg.items():
        e = (f"{a['end_rel_diff_median']:.2e} / {a['end_rel_diff_max']:.2e}"
             if a["end_rel_diff_median"] is not None else "all zero")
        print(f"  {k:16s} {e:>22s} {a['max_rel_diff_after_quarter_median']:.2e} / "
              f"{a['max_rel_diff_after_quarter_max']:.2e}")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
