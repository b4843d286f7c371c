"""Where one online-mode meso step of the closure spends its time (issue 5's 2x target).

    python benchmarks/bench_online_breakdown.py [--batch 16] [--threads 1] [--repeats 5]

For the shipped model (closure/weights/default) and a batch of random tokens: the latent dynamics
(``substeps`` micro steps of the eight U-Nets), each level of the T decoder's body (bilinear
up-sampling + ConvUnit stack, 1/8 to full resolution), and the fused hotspot head on the C++ and
PyTorch backends. The compiled path replaces only the head, so the end-to-end ratio and its
Amdahl bound (head and last decoder level free) follow from these medians. Also the achieved
GFLOP/s of each decoder level. Writes benchmarks/results/online_breakdown.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" /
                                          "online_breakdown.json"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    import torch.nn.functional as F

    from closure import kernels
    from closure.api import Closure

    torch.set_num_threads(args.threads)
    run = Closure.load(table=False).runner
    n, h, w = run.model.dynamics.n_latent, run.grid[0] // 8, run.grid[1] // 8
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(args.batch, n, h, w, generator=g)
    logvar = torch.randn(args.batch, n, h, w, generator=g) - 6.0
    vae, L = run.vae_T, run.model.tokenizer.latent_channels
    z = mean[:, :L]
    out = {"batch": args.batch, "threads": args.threads, "grid": list(run.grid),
           "loadavg": os.getloadavg()}
    out["dynamics_s"] = median_s(lambda: run.step(mean, logvar), args.repeats)
    levels, flops, grids = [], [], []
    with torch.inference_mode():
        hh = F.leaky_relu(vae.dec_in(z), 0.2)
        for i, block in enumerate(vae.dec):
            x_in = F.interpolate(hh, scale_factor=2, mode="bilinear",
                                 align_corners=False) if i < 3 else hh

            def level(block=block, x_in=x_in, i=i):
                with torch.inference_mode():
                    return block(x_in)

            levels.append(median_s(level, args.repeats))
            macs = 0
            for unit in block:
                for conv in (unit.conv, unit.mix):
                    k = conv.kernel_size[0] * conv.kernel_size[1]
                    macs += conv.in_channels * conv.out_channels * k
            grids.append(list(x_in.shape[-2:]))
            flops.append(2 * macs * x_in.shape[0] * x_in.shape[2] * x_in.shape[3])
            hh = block(x_in)
    out["decoder_levels_s"] = levels
    out["decoder_levels_grid"] = grids
    out["decoder_levels_gflops"] = [f / t / 1e9 for f, t in zip(flops, levels, strict=True)]
    wgt, bias = vae.dec_out.weight.detach(), float(vae.dec_out.bias.detach()[0])
    lo, hi, thr = run.T_lo, run.T_hi, run.threshold
    out["head_s"] = {b: median_s(lambda b=b: kernels.hotspot_head(hh, wgt, bias, lo, hi, thr,
                                                                     backend=b), args.repeats)
                     for b in ("cpp", "torch") if b in kernels.available_backends()}
    body = sum(levels)
    t_torch = out["dynamics_s"] + body + out["head_s"]["torch"]
    if "cpp" in out["head_s"]:
        out["compiled_over_torch_end_to_end"] = t_torch / (out["dynamics_s"] + body
                                                           + out["head_s"]["cpp"])
    out["amdahl_bound_head_and_last_level_free"] = t_torch / (out["dynamics_s"] + body - levels[-1])
    path = Path(args.json)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, path)
    print(f"batch {args.batch}, {args.threads} thread(s), load {out['loadavg'][0]:.1f}")
    print(f"  dynamics (one meso step)  {out['dynamics_s']:.4f} s")
    for i, (t, gf, gr) in enumerate(zip(levels, out["decoder_levels_gflops"], grids,
                                        strict=True)):
        print(f"  decoder level {i} ({gr[0]}x{gr[1]})  {t:.4f} s  {gf:.1f} GFLOP/s")
    for b, t in out["head_s"].items():
        print(f"  hotspot head, {b:5s}      {t:.4f} s")
    if "compiled_over_torch_end_to_end" in out:
        print(f"  compiled / PyTorch end to end: {out['compiled_over_torch_end_to_end']:.3f}x; "
              f"bound with head and last level free: "
              f"{out['amdahl_bound_head_and_last_level_free']:.3f}x")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
