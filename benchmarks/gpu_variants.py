"""GPU layout and cuDNN choices for the closure's online work (needs a GPU): the T decoder and
one meso step of the latent dynamics on the shipped model, NCHW vs channels-last, cuDNN's
algorithm search off vs on, all in full float32; times per patch and each variant's deviation
from the default (NCHW, no search).

    python benchmarks/gpu_variants.py [--json benchmarks/results/gpu_variants.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from closure import kernels
from closure.api import Closure
from closure.training.checkpoint import atomic_write_bytes


def _time(fn, repeats: int = 7) -> float:
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="benchmarks/results/gpu_variants.json")
    ap.add_argument("--batches", default="256,1024")
    a = ap.parse_args(argv)
    run = Closure.load(table=False, backend="cuda").runner
    model = copy.deepcopy(run.model).cuda().eval()
    vae = model.tokenizer.vaes["T"]
    n, h, w = model.dynamics.n_latent, run.grid[0] // 8, run.grid[1] // 8
    res: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                 "decode_us_per_patch": {}, "step_us_per_patch": {}, "max_rel_dev": {}}
    print(f"{'variant':>24s}{'batch':>7s}{'decode us':>11s}{'step us':>10s}{'dev':>10s}")
    for B in [int(s) for s in a.batches.split(",") if s]:
        g = torch.Generator(device="cuda").manual_seed(0)
        z = torch.randn(B, vae.dec_in.in_channels, h, w, device="cuda", generator=g)
        m = torch.randn(B, n, h, w, device="cuda", generator=g)
        v = torch.randn(B, n, h, w, device="cuda", generator=g) - 6.0
        ref = None
        for fmt in ("nchw", "channels_last"):
            mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            for search in (False, True):
                name = f"{fmt}{'+search' if search else ''}"
                torch.backends.cudnn.benchmark = search
                with torch.inference_mode(), kernels.full_float32():
                    zz, mm, vv = (t.contiguous(memory_format=mf) for t in (z, m, v))
                    dec = _time(lambda zz=zz: vae.decode(zz))
                    stp = _time(lambda mm=mm, vv=vv: model.dynamics.step(mm, vv, model.coupled))
                    out = torch.cat([vae.decode(zz).flatten(),
                                     model.dynamics.step(mm, vv, model.coupled)[0].flatten()])
                ref = out if ref is None else ref
                dev = float((out - ref).abs().max() / ref.abs().max())
                res["decode_us_per_patch"].setdefault(name, {})[B] = dec / B * 1e6
                res["step_us_per_patch"].setdefault(name, {})[B] = stp / B * 1e6
                res["max_rel_dev"].setdefault(name, {})[B] = dev
                print(f"{name:>24s}{B:7d}{dec / B * 1e6:11.1f}{stp / B * 1e6:10.1f}{dev:10.1e}")
    torch.backends.cudnn.benchmark = False
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(res, indent=2) + "\n").encode())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
