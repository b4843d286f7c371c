"""Closure throughput: cell-queries per second of ``Closure.query``, table and online modes,
compiled kernels (C++/OpenMP, CUDA when present) against the pure-PyTorch path, side by side.

    python benchmarks/bench_closure.py [--json benchmarks/results/closure.json] [--threads 2]

Model: the shipped default (closure/weights/default) when it exists, else a random-weight model
of the default architecture (base 16, 128x192 meso patch, k = 2); its table, or, when there is
none yet, a table of the default table's shape (17 Ps nodes x 20 meso steps, smooth synthetic
values): throughput does not depend on the weights' or the table's values.

* table mode: batch sizes 1, 4, ..., 65536; the cells are shocked by a first call, then the same
  ids are queried repeatedly (a hydrocode's steady state); median over repeats, one backend
  after the other (online mode and kernels: interleaved round-robin).
* online mode: every query advances each cell by one meso step (dt = dt_meso: one step of the
  latent model and one decode per cell, the worst case); batch sizes 1, 16, 256, 1024, 4096
  (three timed repeats). A PyTorch-path call at 4096 takes ~2 min on 2 cores, one at 65536
  26 min (closure_online_65536.json); beyond the runner's chunks of 128 cells the work per
  cell does not depend on the batch. ``--online-batches`` runs other sizes; ``--online-repeats
  1 --online-no-warmup`` times a single call per backend where three would take too long;
  ``--online-shared-start`` holds one closure's tokens at a time, for very large batches.
* kernels: the fused decoder head alone and the whole decode of T tokens, per backend.
* ``auto`` (online mode): the closure as loaded by default, which times each kernel family on
  C++ and PyTorch first (closure/kernels/calibrate.py, measured afresh here) and runs the faster;
  its choice is printed and recorded (``auto_dispatch``). ``--no-auto`` leaves it out.

Instruction sets: the record names the CPU model and the path of each side (``isa``: the C++
kernels' path, PyTorch's ATen capability and oneDNN's cap). ``--isa avx2`` caps both sides at
AVX2 (``CLOSURE_MAX_ISA=avx2`` for the C++ kernels; ``ONEDNN_MAX_CPU_ISA=AVX2``,
``ATEN_CPU_CAPABILITY=avx2`` and ``MKL_ENABLE_INSTRUCTIONS=AVX2`` for PyTorch, which reads them
when torch is imported: the benchmark re-runs itself in a subprocess with them set), so an
AVX2-only CPU is measured from an AVX-512 one.

Targets: table mode >= 1e7 cell-queries/s on 2 cores; compiled >= 2x pure PyTorch end to end at
batch >= 1024 with AVX-512, >= 1.5x with AVX2; ``auto`` never below PyTorch. Timings are
medians; the load average is recorded (shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin
import torch  # noqa: E402

from closure import kernels
from closure.api import DEFAULT_MODEL_DIR, Closure
from closure.kernels import calibrate
from closure.runner import MesoRunner
from closure.table import TABLE_FILE, Table
from closure.training.checkpoint import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
#: environment that caps both sides at an instruction set (read when torch is imported)
ISA_CAPS = {"avx2": {"CLOSURE_MAX_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                     "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}


def _isa_record(cap: str) -> dict:
    """The instruction sets each side runs with."""
    mod = kernels._module("cpp")
    return {"cap": cap,
            "cpp": mod.isa_active() if mod is not None else None,
            "cpp_supported": mod.isa_supported() if mod is not None else [],
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset (the CPU's best)"),
            "mkl_enable_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "unset")}


def _times(fns: dict, repeats: int, min_time: float = 0.0, warmup: bool = True,
           samples: dict | None = None) -> dict:
    """{name: (median, min)} seconds per call, the callables interleaved round-robin after one
    warm-up call each (unless ``warmup`` is False), so load changes on this shared machine hit
    every path alike. The median is the quoted figure; the min shows the undisturbed cost.
    ``samples`` (a dict) receives each callable's times, round by round."""
    for fn in fns.values() if warmup else ():
        fn()
    ts: dict = {k: [] for k in fns}
    t_start = time.perf_counter()
    n = 0
    while n < repeats or (time.perf_counter() - t_start < min_time and n < 200):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
        n += 1
    if samples is not None:
        samples.update(ts)
    return {k: (statistics.median(v), min(v)) for k, v in ts.items()}


def _ratio_medians(samples: dict) -> dict:
    """Median over the rounds of each path's speed-up over PyTorch in that round (the calls of
    one round ran side by side, under the same load)."""
    if "torch" not in samples:
        return {}
    return {f"{k}_over_torch": statistics.median(t / c for t, c in zip(samples["torch"], v,
                                                                       strict=True))
            for k, v in samples.items() if k != "torch"}


def _ratio(row: dict) -> float:
    """Fastest compiled path over the pure-PyTorch one (NaN when either is not measured);
    ``auto`` is reported on its own."""
    comp = [v for k, v in row.items() if k not in ("torch", "auto")]
    return max(comp) / row["torch"] if comp and "torch" in row else float("nan")


def _online_interleaved(res: dict, make, backends: list[str], ids: np.ndarray, p: np.ndarray,
                        repeats: int, warmup: bool, samples: dict | None = None) -> dict:
    """Online mode, one closure per backend: each one's first call creates its tokens (timed
    alone), then the timed calls run interleaved. Returns {backend: (median, min)} s per call."""
    calls = {}
    for b in backends:
        c = make(b)
        t0 = time.perf_counter()
        c.query(ids, p, 1e-11, mode="online")  # creates tokens (encode + 1 step)
        res["online_first_call_s"].setdefault(ids.size, {})[b] = time.perf_counter() - t0
        dtm = c.runner.dt_meso

        def call(c=c, dtm=dtm):
            c.query(ids, p, dtm, mode="online")

        calls[b] = call
    return _times(calls, repeats, warmup=warmup, samples=samples)


def _online_shared_start(res: dict, make, backends: list[str], ids: np.ndarray, p: np.ndarray,
                         repeats: int) -> dict:
    """Online mode for batches too large to hold one closure per backend at once: the first
    backend's first call creates the tokens, its state goes to a file, and each backend in turn
    loads that state and is timed alone (same start, one closure in memory at a time).
    Returns {backend: (median, min)} seconds per call."""
    n = ids.size
    c = make(backends[0])
    t0 = time.perf_counter()
    c.query(ids, p, 1e-11, mode="online")
    res["online_first_call_s"].setdefault(n, {})[backends[0]] = time.perf_counter() - t0
    dtm = c.runner.dt_meso
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "state.npz"
        np.savez(path, **c.state_dict())
        del c
        tt = {}
        for b in backends:
            c = make(b)
            with np.load(path, allow_pickle=False) as f:
                c.load_state_dict(dict(f))

            def call(c=c):
                c.query(ids, p, dtm, mode="online")

            tt[b] = _times({b: call}, repeats, warmup=False)[b]
            del c, call
    res.setdefault("online_shared_start", []).append(n)
    return tt


def _gpu_kernels(res: dict, vae: torch.nn.Module, H: int, W: int) -> None:
    """The kernels on tensors already on the GPU (the online path there): the CUDA kernels
    against the PyTorch reference run on the same GPU, per patch."""
    import copy

    def timed(fn):  # synchronized, so the GPU's work is in the time
        def run():
            fn()
            torch.cuda.synchronize()
        return run

    gvae = copy.deepcopy(vae).cuda()
    w, bias = gvae.dec_out.weight, float(gvae.dec_out.bias[0])
    res["kernels_gpu"] = {}
    print(f"\nkernels on GPU tensors ({torch.cuda.get_device_name(0)}): us per patch")
    print(f"{'kernel':>16s}{'batch':>8s}{'cuda':>12s}{'torch':>12s}{'ratio':>8s}")
    for B in (16, 256):
        z = torch.randn(B, 4, H // 8, W // 8, device="cuda")
        hh = torch.randn(B, vae.dec_out.in_channels, H, W, device="cuda")
        E = 12 * (H // 8) * (W // 8)
        m, v = torch.zeros(B, E, device="cuda"), torch.zeros(B, E, device="cuda")
        ids, st = np.arange(B), np.zeros(B, np.int64)
        for name, fn in (
            ("hotspot_head", lambda b, x=hh: kernels.hotspot_head(x, w, bias, 300.0, 5000.0,
                                                                  875.0, backend=b)),
            ("decode_hotspots", lambda b, z=z: kernels.decode_hotspots(gvae, z, 300.0, 5000.0,
                                                                       875.0, backend=b)),
            ("sample_latent", lambda b, a=(m, v, 1, ids, st): kernels.sample_latent(
                *a, backend=b)),
        ):
            tt = _times({b: timed(lambda b=b, fn=fn: fn(b)) for b in ("cuda", "torch")}, 10)
            row = {b: t[0] / B * 1e6 for b, t in tt.items()}
            res["kernels_gpu"].setdefault(name, {})[B] = {"us_per_patch": row}
            print(f"{name:>16s}{B:8d}{row['cuda']:12.2f}{row['torch']:12.2f}"
                  f"{row['torch'] / row['cuda']:8.2f}")


def _random_default_model(tmp: Path) -> Path:
    from closure.modelcard import save_model
    from closure.models import LatentClosureModel, LatentDynamics, Tokenizer

    torch.manual_seed(0)
    model = LatentClosureModel(Tokenizer(base_channels=16), LatentDynamics(base_channels=16), 2)
    arch = {"tokenizer": {"base_channels": 16, "latent_channels": 4},
            "dynamics": {"base_channels": 16}, "substeps": 2, "coupled": True}
    save_model(tmp, model, kind="latent", architecture=arch,
               data={"meso": {"dt": 2.5e-10, "n_t": 21, "grid": [128, 192]}})
    return tmp


def _synthetic_table(runner: MesoRunner, n_ps: int = 17) -> Table:
    lo, hi = runner.envelope
    nodes = np.linspace(lo, hi, n_ps)
    t = np.arange(runner.horizon + 1) / runner.horizon
    x = (nodes - lo) / (hi - lo)
    area = 0.2 * x[:, None] * (1 - np.exp(-3 * t))[None, :]
    return Table(nodes=nodes, dt=runner.dt_meso, area=area, temperature=900 + 500 * area,
                 uncertainty=0.1 * area, envelope=(lo, hi), threshold=runner.threshold,
                 meta={"fingerprint": runner.fingerprint(), "synthetic": True})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="benchmarks/results/closure.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=65536)
    ap.add_argument("--online-batches", default="1,16,256,1024,4096")
    ap.add_argument("--online-repeats", type=int, default=3,
                    help="timed online calls per backend and batch (median quoted)")
    ap.add_argument("--online-no-warmup", action="store_true",
                    help="no untimed online call before the timed ones (the first call, which "
                         "creates the cells' tokens, has already run the kernels once)")
    ap.add_argument("--backends", default="",
                    help="comma-separated subset of the available backends (default: all)")
    ap.add_argument("--online-shared-start", action="store_true",
                    help="one first call (first online backend), its state saved and loaded by "
                         "each backend, timed one after the other: one closure's tokens in "
                         "memory at a time (batch 65536: 2.4 GB per copy); no warm-up call")
    ap.add_argument("--online-backends", default="",
                    help="subset of --backends for online mode (default: the same, and auto)")
    ap.add_argument("--no-auto", action="store_true",
                    help="online mode without the auto-dispatched closure")
    ap.add_argument("--isa", choices=("native", *ISA_CAPS), default="native",
                    help="cap both sides at this instruction set (default: each its best)")
    a = ap.parse_args(argv)
    if a.online_repeats < 1:
        ap.error(f"--online-repeats must be >= 1, got {a.online_repeats}")
    caps = ISA_CAPS.get(a.isa, {})
    if any(os.environ.get(k) != v for k, v in caps.items()):
        # oneDNN and ATen read their caps once, when torch is imported: run in a fresh process
        print(f"re-running capped at {a.isa}: " + " ".join(f"{k}={v}" for k, v in caps.items()),
              flush=True)
        args = sys.argv[1:] if argv is None else argv
        return subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                              env={**os.environ, **caps}).returncode
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    torch.set_num_threads(a.threads)
    backends = kernels.available_backends()
    if a.backends:
        want = [b.strip() for b in a.backends.split(",") if b.strip()]
        bad = [b for b in want if b not in backends]
        if bad or not want:
            ap.error(f"--backends {a.backends!r}: {bad or 'none'} not among the available "
                     f"{backends}")
        backends = want
    online_backends = list(backends)
    if a.online_backends:
        online_backends = [b.strip() for b in a.online_backends.split(",") if b.strip()]
        if not online_backends or any(b not in backends for b in online_backends):
            ap.error(f"--online-backends {a.online_backends!r} must be a subset of {backends}")
    elif not a.no_auto and kernels.Backend("auto").name == "cpp" and "torch" in backends:
        online_backends.append("auto")  # auto chooses between C++ and PyTorch per family
    shipped = (DEFAULT_MODEL_DIR / "model_card.json").exists()
    has_table = shipped and (DEFAULT_MODEL_DIR / TABLE_FILE).exists()
    tmp = None
    if shipped:
        model_dir = DEFAULT_MODEL_DIR
        rel = (DEFAULT_MODEL_DIR.resolve().relative_to(ROOT)
               if DEFAULT_MODEL_DIR.resolve().is_relative_to(ROOT) else DEFAULT_MODEL_DIR.name)
        model_desc = f"shipped default {rel}" + (
            "" if has_table else " (no table yet: synthetic table of the default shape)")
    else:
        tmp = tempfile.TemporaryDirectory()
        model_dir = _random_default_model(Path(tmp.name))
        model_desc = "random-weight model of the default architecture (base 16, 128x192)"

    def make(backend: str) -> Closure:
        c = Closure.load(model_dir, backend=backend, table=has_table)
        if c.table is None:
            c.table = _synthetic_table(c.runner)
            c.envelope = c.table.envelope
        if backend == "auto":  # calibrate before any timed call (afresh once per run)
            recs = c.runner.kernel_choices(refresh="auto_dispatch" not in res)
            if "auto_dispatch" not in res:
                res["auto_dispatch"] = {f: {k: r.get(k) for k in ("choice", "seconds")}
                                        for f, r in recs.items()}
                print("auto dispatch: " + calibrate.describe(recs), flush=True)
        return c

    res: dict = {"model": model_desc, "backends": backends, "online_backends": online_backends,
                 "threads": a.threads,
                 "online_repeats": a.online_repeats, "online_warmup": not a.online_no_warmup,
                 "load_avg_start": os.getloadavg(), "machine": platform.processor() or
                 platform.machine(), "cpu_model": calibrate.cpu_model(),
                 "isa": _isa_record(a.isa), "cpu_count": os.cpu_count(),
                 "torch": torch.__version__,
                 "gpu": torch.cuda.get_device_name(0) if "cuda" in backends else None,
                 "table": {}, "table_best_of": {}, "online": {}, "online_best_of": {},
                 "online_first_call_s": {},
                 "kernels": {}}
    lo, hi = make("torch").envelope
    rng = np.random.default_rng(0)

    print(f"model: {model_desc}; backends {backends}; {a.threads} threads; load "
          f"{os.getloadavg()[0]:.2f}")
    isa = res["isa"]
    print(f"CPU: {res['cpu_model']}; C++ kernels: {isa['cpp']} path (of "
          f"{'/'.join(isa['cpp_supported'])}); PyTorch: ATen {isa['torch_cpu_capability']}, "
          f"oneDNN cap {isa['onednn_max_cpu_isa']}")
    # ---------------------------------------------------------------- table mode
    sizes = [n for n in (4 ** k for k in range(9)) if n <= a.max_batch]
    print("\ntable mode: cell-queries/s")
    print(f"{'batch':>8s}" + "".join(f"{b:>14s}" for b in backends) + f"{'ratio':>8s}")
    for n in sizes:
        ids = np.arange(n, dtype=np.int64) * 3 + 7
        p = rng.uniform(lo, hi, n)
        calls = {}
        for b in backends:
            c = make(b)
            c.query(ids, p, 1e-11)

            def call(c=c, ids=ids, p=p):
                c.query(ids, p, 1e-12)

            calls[b] = call
        # one backend after the other: the PyTorch path's OpenMP threads keep spinning after
        # each call and would slow a C++ call interleaved with them (measured: 2-4x)
        tt = {b: _times({b: fn}, 7, min_time=0.5)[b] for b, fn in calls.items()}
        row = {b: n / tt[b][0] for b in backends}
        best_of = {b: n / tt[b][1] for b in backends}
        res["table"][n] = row
        res["table_best_of"][n] = dict(best_of)
        print(f"{n:8d}" + "".join(f"{row[b]:14.3e}" for b in backends) +
              f"{_ratio(row):8.2f}")

    # ---------------------------------------------------------------- online mode
    print("\nonline mode (dt = dt_meso: one latent step + one decode per cell and query)")
    print(f"{'batch':>8s}" + "".join(f"{b:>14s}" for b in online_backends) + f"{'ratio':>8s}")
    for n in [int(s) for s in a.online_batches.split(",") if s]:
        ids = np.arange(n, dtype=np.int64)
        p = rng.uniform(lo, hi, n)
        samples: dict = {}
        if a.online_shared_start:
            tt = _online_shared_start(res, make, online_backends, ids, p, a.online_repeats)
        else:
            tt = _online_interleaved(res, make, online_backends, ids, p, a.online_repeats,
                                     warmup=not a.online_no_warmup, samples=samples)
        row = {b: n / tt[b][0] for b in online_backends}
        best_of = {b: n / tt[b][1] for b in online_backends}
        res["online"][n] = row
        res["online_best_of"][n] = dict(best_of)
        if samples:  # interleaved rounds: the speed-ups round by round
            res.setdefault("online_ratio_median", {})[n] = _ratio_medians(samples)
        print(f"{n:8d}" + "".join(f"{row[b]:14.3e}" for b in online_backends) +
              f"{_ratio(row):8.3f}" + "".join(
                  f"  {k} {v:.3f} (median of rounds)"
                  for k, v in res.get("online_ratio_median", {}).get(n, {}).items()))

    # ---------------------------------------------------------------- kernels alone
    c = make("torch")
    vae = c.runner.vae_T.requires_grad_(False)
    H, W = c.runner.grid
    B = 16
    z = torch.randn(B, 4, H // 8, W // 8)
    hh = torch.randn(B, vae.dec_out.in_channels, H, W)
    print(f"\nkernels, batch {B} patches of {H}x{W}: ms per call")
    print(f"{'kernel':>16s}" + "".join(f"{b:>12s}" for b in backends) + f"{'ratio':>8s}")
    for name, fn in (
        ("hotspot_head", lambda b: kernels.hotspot_head(hh, vae.dec_out.weight,
                                                        float(vae.dec_out.bias[0]), 300.0,
                                                        5000.0, 875.0, backend=b)),
        ("decode_hotspots", lambda b: kernels.decode_hotspots(vae, z, 300.0, 5000.0, 875.0,
                                                              backend=b)),
        ("sample_latent", lambda b: kernels.sample_latent(
            np.zeros((B, 12 * (H // 8) * (W // 8)), np.float32),
            np.zeros((B, 12 * (H // 8) * (W // 8)), np.float32), 1, np.arange(B),
            np.zeros(B, np.int64), backend=b)),
    ):
        samples = {}
        tt = _times({b: (lambda b=b, fn=fn: fn(b)) for b in backends}, 5, samples=samples)
        row = {b: v[0] * 1e3 for b, v in tt.items()}
        res["kernels"][name] = {"ms": row, "ms_best_of": {b: v[1] * 1e3 for b, v in tt.items()},
                                "ratio_median": _ratio_medians(samples),
                                "batch": B, "grid": [H, W]}
        inv = {b: 1.0 / v for b, v in row.items()}
        print(f"{name:>16s}" + "".join(f"{row[b]:12.2f}" for b in backends) +
              f"{_ratio(inv):8.2f}")
    if "cuda" in backends:
        _gpu_kernels(res, vae, H, W)
    res["load_avg_end"] = os.getloadavg()
    big = [n for n in res["table"] if n >= 1024]
    res["summary"] = {"table_min_queries_per_s_batch_ge_1024": {
        b: min(res["table"][n][b] for n in big) for b in backends} if big else None}
    if "torch" in backends and len(backends) > 1:  # ratios to the pure-PyTorch path
        t_rows = [res["table"][n] for n in big]
        res["summary"] |= {
            "table_min_queries_per_s_batch_ge_1024_compiled": min(
                max(v for k, v in r.items() if k != "torch") for r in t_rows) if t_rows
            else None,
            "table_compiled_over_torch_min_batch_ge_1024": min(
                _ratio(r) for r in t_rows) if t_rows else None,
            "online_compiled_over_torch": {n: _ratio(r) for n, r in res["online"].items()},
            "online_compiled_over_torch_best_of": {
                n: _ratio(r) for n, r in res["online_best_of"].items()},
        }
        if "auto" in online_backends:
            res["summary"]["online_auto_over_torch"] = {
                n: r["auto"] / r["torch"] for n, r in res["online"].items()}
        if res.get("online_ratio_median"):
            res["summary"]["online_over_torch_median_of_rounds"] = res["online_ratio_median"]
    print("\nsummary:", json.dumps(res["summary"]))
    if a.json:
        out = Path(a.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, (json.dumps(res, indent=2) + "\n").encode())
        print(f"wrote {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
