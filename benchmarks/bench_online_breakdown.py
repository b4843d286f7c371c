"""Where one online-mode meso step of the closure spends its time (issue 5's 2x target).

    python benchmarks/bench_online_breakdown.py [--batch 128] [--threads 1] [--repeats 5]

For the shipped model (closure/weights/default) and a batch of random tokens, per kernel backend:
the latent dynamics (``substeps`` micro steps of the eight U-Nets; ``torch``: the modules,
``cpp``: csrc/latent_unet.cpp) and the decode of the T tokens to hotspot statistics (``torch``:
the decoder module as trained; ``cpp``: the restructured body of csrc/decoder_body.cpp), both as
the runner batches them.
Also the multiply-adds per patch of the two decoder forms, the end-to-end bound they imply (the
ratio the compiled path would reach if its body ran at the PyTorch body's FLOP rate), and the
runner's batch sizes against the ones they replaced, the same PyTorch work in NCHW memory format
(as the runner did it before channels-last), the decodes' multiply-add rates and the rate of a
1024^3 sgemm on the same threads.
Writes benchmarks/results/online_breakdown.json (medians, timings interleaved round-robin).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def interleaved_medians(fns: dict, repeats: int) -> dict[str, float]:
    for fn in fns.values():
        fn()  # warm-up
    ts: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}


def decoder_macs(vae, grid: tuple[int, int]) -> dict[str, int]:
    """Multiply-adds per patch of the T decoder: as written, and as restructured on the C++ path
    (taps mixed at the coarse resolution behind up-sampling, Winograd F(2x2, 3x3) for the wide
    3x3 convs at one resolution; up-sampling, tile transforms and the head are not counted)."""
    from closure import kernels

    prep = kernels._prepare(vae)
    H, W = grid[0] // 8, grid[1] // 8
    eager = restructured = vae.dec_in.in_channels * vae.dec_in.out_channels * 9 * H * W
    for _, _, u in prep["units"]:
        if u["upsampled"]:
            H, W = 2 * H, 2 * W
        conv, mix = u["unit"].conv, u["unit"].mix
        full = conv.in_channels * conv.out_channels * 9 * H * W
        mixing = mix.in_channels * mix.out_channels * H * W
        eager += full + mixing
        if u["kind"] == "upconv":
            restructured += full // 4 + mixing
        elif u["kind"] == "winograd":
            restructured += full * 4 // 9 + mixing
        else:
            restructured += full + mixing
    head = vae.dec_out.in_channels * 9 * H * W
    return {"eager": eager + head, "restructured": restructured + head}


def sgemm_seconds(torch, n: int = 1024):
    """A callable timing nothing but an n^3 float32 matrix product: the machine's BLAS rate."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    return lambda: torch.mm(a, b)


def nchw_reference(run, mean, logvar):
    """The online step's PyTorch work in NCHW memory format, as the runner did it before it
    switched to channels-last: (latent steps, PyTorch decode + hotspot statistics) callables."""
    import torch
    import torch.nn.functional as F

    from closure import kernels

    def dynamics():
        with torch.inference_mode():
            for s in range(0, len(mean), run.step_chunk):
                m, v = mean[s:s + run.step_chunk], logvar[s:s + run.step_chunk]
                for _ in range(run.model.substeps):
                    m, v = run.model.dynamics.step(m, v, run.model.coupled)

    L = run.model.tokenizer.latent_channels
    iT = run.model.fields.index("T")
    vae = run.vae_T
    plan = vae.decoder_plan()

    def decode():
        with torch.inference_mode():
            z = mean[:, iT * L:(iT + 1) * L]
            for s in range(0, len(z), run.decode_chunk):
                h = F.leaky_relu(plan.dec_in(z[s:s + run.decode_chunk]), plan.input_slope)
                for block in plan.blocks:
                    if block.upsample:
                        h = F.interpolate(h, scale_factor=2, mode="bilinear",
                                          align_corners=False)
                    for unit in block.units:
                        h = unit(h)
                kernels.hotspot_head_torch(h, vae.dec_out.weight, float(vae.dec_out.bias[0]),
                                           run.T_lo, run.T_hi, run.threshold)

    return dynamics, decode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" /
                                          "online_breakdown.json"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from closure import kernels
    from closure.api import Closure
    from closure.training.checkpoint import atomic_write_bytes

    torch.set_num_threads(args.threads)
    run = Closure.load(table=False).runner
    n, h, w = run.model.dynamics.n_latent, run.grid[0] // 8, run.grid[1] // 8
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(args.batch, n, h, w, generator=g)
    logvar = torch.randn(args.batch, n, h, w, generator=g) - 6.0
    backends = [b for b in ("cpp", "torch") if b in kernels.available_backends()]
    out = {"batch": args.batch, "threads": args.threads, "grid": list(run.grid),
           "step_chunk": run.step_chunk, "decode_chunk": run.decode_chunk,
           "loadavg_start": os.getloadavg()}
    nchw_dynamics, nchw_decode = nchw_reference(run, mean, logvar)
    fns = {"dynamics_nchw": nchw_dynamics, "decode_torch_nchw": nchw_decode,
           "sgemm": sgemm_seconds(torch)}
    runs = {b: run.with_backend(b) for b in backends}  # one model, one runner per backend
    for b, r in runs.items():
        fns[f"dynamics_{b}"] = lambda r=r: r.step(mean, logvar)
        fns[f"decode_{b}"] = lambda r=r: r.stats(mean, logvar)
    t = interleaved_medians(fns, args.repeats)
    out["dynamics_s"] = {b: t[f"dynamics_{b}"] for b in backends}
    out["decode_s"] = {b: t[f"decode_{b}"] for b in backends}
    # the same work in NCHW memory format (the runner before channels-last)
    out["nchw_s"] = {"dynamics": t["dynamics_nchw"], "decode_torch": t["decode_torch_nchw"]}
    out["sgemm_1024_gmac_per_s"] = 1024 ** 3 / t["sgemm"] / 1e9
    # the runner's batching against the alternatives it replaced (per 16 cells): latent steps in
    # batches of 16 vs step_chunk, decodes in one batch of 16 vs decode_chunk
    per16 = 16.0 / args.batch
    sweep: dict = {"dynamics_per_16_cells_s": {}, "decode_per_16_patches_s": {}}
    chosen = run.step_chunk, run.decode_chunk
    for sc in sorted({16, chosen[0]}):
        runs["torch"].step_chunk = sc
        sweep["dynamics_per_16_cells_s"][sc] = per16 * interleaved_medians(
            {"d": lambda: runs["torch"].step(mean, logvar)}, args.repeats)["d"]
    runs["torch"].step_chunk = chosen[0]
    for dc in sorted({16, chosen[1]}):
        for r in runs.values():
            r.decode_chunk = dc
        t_dc = interleaved_medians({b: lambda r=r: r.stats(mean, logvar)
                                    for b, r in runs.items()}, args.repeats)
        sweep["decode_per_16_patches_s"][dc] = {b: per16 * v for b, v in t_dc.items()}
    for r in runs.values():
        r.decode_chunk = chosen[1]
    out["batching"] = sweep
    macs = decoder_macs(run.vae_T, run.grid)
    out["decoder_macs_per_patch"] = macs
    out["loadavg_end"] = os.getloadavg()
    dyn, dec_t = out["dynamics_s"]["torch"], out["decode_s"]["torch"]
    dyn_c = out["dynamics_s"].get("cpp", dyn)
    if "cpp" in backends:
        out["dynamics_cpp_over_torch"] = dyn / dyn_c
        out["decode_cpp_over_torch"] = dec_t / out["decode_s"]["cpp"]
        out["compiled_over_torch_end_to_end"] = (dyn + dec_t) / (dyn_c + out["decode_s"]["cpp"])
    # the decoders alone: PyTorch dynamics on both sides, the decode at PyTorch's FLOP rate
    out["bound_at_equal_flop_rate"] = (dyn + dec_t) / (
        dyn + dec_t * macs["restructured"] / macs["eager"])
    n_patch = args.batch
    out["decode_gmac_per_s"] = {"torch": macs["eager"] * n_patch / dec_t / 1e9}
    if "cpp" in backends:
        out["decode_gmac_per_s"]["cpp"] = (macs["restructured"] * n_patch
                                           / out["decode_s"]["cpp"] / 1e9)
    # the restructured decode's rate at which one online step would be 2x the PyTorch one
    budget = (dyn + dec_t) / 2.0 - dyn_c
    out["cpp_decode_gmac_per_s_for_2x"] = (macs["restructured"] * n_patch / budget / 1e9
                                           if budget > 0 else float("inf"))
    path = Path(args.json)
    atomic_write_bytes(path, (json.dumps(out, indent=1) + "\n").encode())
    print(f"batch {args.batch}, {args.threads} thread(s), load {out['loadavg_start'][0]:.1f}")
    for b in backends:
        print(f"  dynamics (one meso step), {b:5s} {out['dynamics_s'][b]:.4f} s")
    for b in backends:
        print(f"  decode + hotspots, {b:5s}   {out['decode_s'][b]:.4f} s")
    print(f"  decoder multiply-adds per patch: {macs['eager'] / 1e6:.0f} M as written, "
          f"{macs['restructured'] / 1e6:.0f} M restructured")
    if "cpp" in backends:
        print(f"  compiled / PyTorch: dynamics {out['dynamics_cpp_over_torch']:.2f}x, decode "
              f"{out['decode_cpp_over_torch']:.2f}x, one online "
              f"step end to end {out['compiled_over_torch_end_to_end']:.2f}x (bound at equal "
              f"FLOP rate {out['bound_at_equal_flop_rate']:.2f}x)")
    rates = ", ".join(f"{b} {v:.0f}" for b, v in out["decode_gmac_per_s"].items())
    print(f"  decode GMAC/s: {rates}; 1024^3 sgemm {out['sgemm_1024_gmac_per_s']:.0f}; C++ "
          f"decode needed for 2x end to end {out['cpp_decode_gmac_per_s_for_2x']:.0f}")
    print(f"  NCHW memory format: dynamics {out['nchw_s']['dynamics']:.4f} s, PyTorch decode "
          f"{out['nchw_s']['decode_torch']:.4f} s")
    for sc, v in sweep["dynamics_per_16_cells_s"].items():
        print(f"  batching: latent steps in batches of {sc:4d}: {v:.4f} s per 16 cells")
    for dc, v in sweep["decode_per_16_patches_s"].items():
        print(f"  batching: decodes in batches of {dc:4d}: " + ", ".join(
            f"{b} {x:.4f} s" for b, x in v.items()) + " per 16 patches")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
