"""Synthetic closure initial frame vs frame 1 of the meso data set (per-channel RMSE).

``python benchmarks/closure_frame1.py [data/meso.h5] [--json OUT]``: for every sample, builds
:func:`closure.initial.synthetic_frame1` at the sample's shock pressure (a) with the sample's own
pores (measures the shock-state construction) and (b) with a random pore set of the closure's
microstructure bank (what a closure cell actually gets), and prints the RMSE per normalized
channel (T, P, mu) against the sample's frame 1, plus the RMSE of the y-averaged profiles.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

from closure.initial import microstructure_bank, synthetic_frame1
from closure.normalization import CHANNELS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default="data/meso.h5")
    ap.add_argument("--json", default="benchmarks/results/closure_frame1.json")
    a = ap.parse_args(argv)
    if not Path(a.data).exists():
        print(f"{a.data} not found", file=sys.stderr)
        return 1
    with h5py.File(a.data, "r") as h5:
        f1 = h5["fields"][:, 1]
        meta = h5["meta"][:]
        pores = [json.loads(p) for p in h5["pores"][:]]
    n, _, H, W = f1.shape
    bank = microstructure_bank(n, seed=12345, grid=(H, W))
    own, rand, prof = [], [], []
    for s in range(n):
        ps = float(meta["shock_pressure"][s])
        syn = synthetic_frame1(ps, pores[s], (H, W))
        syn_r = synthetic_frame1(ps, bank[s], (H, W))
        own.append(np.sqrt(((syn - f1[s]) ** 2).mean(axis=(1, 2))))
        rand.append(np.sqrt(((syn_r - f1[s]) ** 2).mean(axis=(1, 2))))
        prof.append(np.sqrt(((syn.mean(1) - f1[s].mean(1)) ** 2).mean(axis=1)))
    res = {"n_samples": n, "grid": [H, W], "channels": list(CHANNELS), "units": "normalized",
           "rmse_own_pores": dict(zip(CHANNELS, np.mean(own, 0).tolist(), strict=True)),
           "rmse_random_pores": dict(zip(CHANNELS, np.mean(rand, 0).tolist(), strict=True)),
           "rmse_y_mean_profile": dict(zip(CHANNELS, np.mean(prof, 0).tolist(), strict=True))}
    print(f"{'':22s}" + "".join(f"{c:>10s}" for c in CHANNELS))
    for k in ("rmse_own_pores", "rmse_random_pores", "rmse_y_mean_profile"):
        print(f"{k:22s}" + "".join(f"{res[k][c]:10.4f}" for c in CHANNELS))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
