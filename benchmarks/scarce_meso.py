"""Scarce-data experiment: latent meso model (micro-pretrained) versus PARC trained on meso only.

For every n_meso in ``--n`` and every seed the latent meso model is fine-tuned from the shared
micro-pretrained model and the PARCv2 baseline is trained from scratch, both on the first n_meso
samples of the (nested, seeded) meso training split, and both are scored on the same held-out
meso test samples with the same metrics (closure.metrics: RMSE of hotspot area A_hs and mean
hotspot temperature T_hs, their rates, field RMSE).

    python benchmarks/scarce_meso.py --config configs/train/default_small.toml \\
        --micro-run runs/default-small --n 2 4 8 all --seeds 0

The micro stages (vae, micro-dynamics) must exist in ``--micro-run`` (python -m closure.train
CONFIG --stage vae --stage micro-dynamics). Finished (n, seed) runs are reused, so an interrupted
experiment resumes. Writes benchmarks/results/scarce_meso.json (atomically, after every run) and
a PNG plot; prints a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from closure.files import atomic_write_bytes, portable_paths

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("rmse_A_hs", "rmse_T_hs", "rmse_dA_hs_dt", "rmse_dT_hs_dt", "rmse_field_T",
           "rmse_field_P", "rmse_field_mu", "rmse_field_mean")
MODELS = {"latent": "meso-finetune", "parc": "parc"}


def atomic_json(path: Path, doc: dict) -> None:
    atomic_write_bytes(path, (json.dumps(portable_paths(doc), indent=1) + "\n").encode())


def refined_metrics(cfg: dict, latent_dir: Path, refined_dir: Path) -> dict:
    """Test metrics of the fine-tuned latent model with the decoder-refine stage's decoders.

    decoder-refine trains only decoders, on micro frames encoded by the tokenizer, which
    meso-finetune keeps frozen: its result is the same for every n_meso (checked here: the
    encoders must be bitwise those of the refined model), so it is trained once (default run)
    and its decoders are swapped in.
    """
    import torch

    from closure.modelcard import load_model
    from closure.training.data import load_trajectories, split_indices
    from closure.training.evaluate import evaluate_model

    model, _ = load_model(latent_dir, kind="latent")
    refined, _ = load_model(refined_dir, kind="latent")
    mine, theirs = model.tokenizer.state_dict(), refined.tokenizer.state_dict()
    enc = [k for k in mine if ".dec" not in k]
    if any(not torch.equal(mine[k], theirs[k]) for k in enc):
        raise SystemExit(f"{latent_dir} and {refined_dir} have different encoders; "
                         "decoder-refine must be run for this model")
    model.tokenizer.load_state_dict(theirs)
    d = cfg["data"]
    full = load_trajectories(d["meso"]).from_frame(d["first_frame"])
    test = split_indices(full.n, n_val=d["meso_n_val"], n_test=d["meso_n_test"],
                         seed=d["split_seed"])["test"]
    e = cfg["eval"]
    return evaluate_model(model, full.subset(test), threshold=e["threshold_K"],
                          t_start=e["t_start"], batch_size=e["batch_size"], sample=e["sample"],
                          seed=cfg["run"]["seed"])


def run_one(base: dict, micro_run: Path, out_root: Path, n: int, seed: int,
            models: tuple[str, ...] = tuple(MODELS)) -> dict:
    """Train (or reuse) both models for one (n_meso, seed); return their test metrics."""
    from closure.modelcard import read_card
    from closure.training.stages import run_meso_finetune, run_parc

    cfg = copy.deepcopy(base)
    cfg["data"]["meso_n_train"] = n
    cfg["run"]["seed"] = seed
    cfg["run"]["out_dir"] = str(out_root / f"n{n}_s{seed}")
    cfg["meso_finetune"]["micro_model"] = str(micro_run / "micro-dynamics")
    out = {}
    for model, stage in MODELS.items():
        if model not in models:
            continue
        d = Path(cfg["run"]["out_dir"]) / stage
        card = None
        if (d / "model_card.json").exists():
            card = read_card(d)
        if card is None or "meso_test" not in card.get("metrics", {}):
            t0 = time.perf_counter()
            (run_meso_finetune if model == "latent" else run_parc)(cfg, resume=True)
            print(f"  n={n} seed={seed} {model}: {time.perf_counter() - t0:.0f} s")
            card = read_card(d)
        m = card["metrics"]
        out[model] = {k: m["meso_test"][k] for k in METRICS}
        out[model]["train_wall_s"] = m.get("train_wall_s")
        out[model]["n_train"] = len(card["data"]["meso"]["split"]["train"])
        out[model]["test_indices"] = card["data"]["meso"]["split"]["test"]
        if model == "latent" and "meso_test_before_finetune" in m:
            out["latent_before_finetune"] = {k: m["meso_test_before_finetune"][k]
                                             for k in METRICS}
        refined_dir = micro_run / "decoder-refine"
        if model == "latent" and (refined_dir / "model_card.json").exists():
            cache = d / "refined_test_metrics.json"
            if cache.exists():
                rm = json.loads(cache.read_text())
            else:
                rm = refined_metrics(cfg, d, refined_dir)
                atomic_json(cache, rm)
            out["latent_unrefined_decoder"] = dict(out["latent"])
            out["latent"] = {**{k: rm[k] for k in METRICS},
                             **{k: out["latent"][k] for k in ("train_wall_s", "n_train",
                                                              "test_indices")},
                             "decoder": str(refined_dir)}
    return out


def summarize(runs: list[dict]) -> dict:
    """Median and spread over seeds, per model and n_meso."""
    table: dict = {}
    for model in ("latent", "parc", "latent_before_finetune", "latent_unrefined_decoder"):
        for n in sorted({r["n_meso"] for r in runs}):
            rows = [r["result"][model] for r in runs if r["n_meso"] == n and model in r["result"]]
            if not rows:
                continue
            table.setdefault(model, {})[str(n)] = {
                k: {"median": float(np.median([x[k] for x in rows])),
                    "min": float(np.min([x[k] for x in rows])),
                    "max": float(np.max([x[k] for x in rows])), "n_seeds": len(rows)}
                for k in METRICS}
    return table


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("rmse_A_hs", "rmse_T_hs", "rmse_dA_hs_dt", "rmse_field_mean")
    units = ("m^2", "K", "m^2/s", "normalized")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4))
    for ax, k, u in zip(axes, keys, units, strict=True):
        for model, style in (("latent", "o-"), ("parc", "s--"),
                             ("latent_before_finetune", "x:")):
            if model not in summary:
                continue
            ns = sorted(summary[model], key=int)
            med = [summary[model][n][k]["median"] for n in ns]
            lo = [summary[model][n][k]["min"] for n in ns]
            hi = [summary[model][n][k]["max"] for n in ns]
            x = [int(n) for n in ns]
            ax.plot(x, med, style, label=model)
            ax.fill_between(x, lo, hi, alpha=0.15)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("meso training samples")
        ax.set_title(f"{k} ({u})", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "train" / "default_small.toml"))
    ap.add_argument("--micro-run", default=str(ROOT / "runs" / "default-small"),
                    help="run directory holding the vae and micro-dynamics stages")
    ap.add_argument("--n", nargs="+", default=["2", "4", "8", "all"],
                    help="meso training sample counts ('all' = the whole training split)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                    help="train only these (e.g. parc first: it needs no micro model)")
    ap.add_argument("--out-dir", default=str(ROOT / "runs" / "scarce"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "scarce_meso.json"))
    args = ap.parse_args()

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from closure.training.config import load_config
    from closure.training.data import load_trajectories, split_indices

    torch.set_num_threads(args.threads)
    base = load_config(args.config)
    base["run"]["threads"] = args.threads
    d = base["data"]
    n_meso = load_trajectories(d["meso"]).n
    n_all = len(split_indices(n_meso, n_val=d["meso_n_val"], n_test=d["meso_n_test"],
                              seed=d["split_seed"])["train"])
    counts = sorted({n_all if s == "all" else int(s) for s in args.n})
    bad = [n for n in counts if not 1 <= n <= n_all]
    if bad:
        raise SystemExit(f"--n {bad[0]} must be in [1, {n_all}] (the meso training split)")
    out_json, micro_run = Path(args.json), Path(args.micro_run)
    runs: list[dict] = []
    t_all = time.perf_counter()
    for seed in args.seeds:
        for n in counts:
            res = run_one(base, micro_run, Path(args.out_dir), n, seed, tuple(args.models))
            runs.append({"n_meso": n, "seed": seed, "result": res})
            summary = summarize(runs)
            atomic_json(out_json, {
                "description": __doc__.splitlines()[0], "config": args.config,
                "micro_run": str(micro_run), "meso_data": d["meso"], "n_all": n_all,
                "test_indices": next(iter(res.values()))["test_indices"], "seeds": args.seeds,
                "counts": counts, "runs": runs, "summary": summary,
                "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                         "torch_threads": args.threads, "loadavg": os.getloadavg()},
                "wall_s": time.perf_counter() - t_all})
    summary = summarize(runs)
    plot(summary, out_json.with_suffix(".png"))
    print(f"\n{'model':<24}{'n':>4}  " + "  ".join(f"{k[5:]:>12}" for k in METRICS))
    for model in summary:
        for n, row in sorted(summary[model].items(), key=lambda kv: int(kv[0])):
            print(f"{model:<24}{n:>4}  "
                  + "  ".join(f"{row[k]['median']:12.4g}" for k in METRICS))
    print(f"\nwrote {out_json} and {out_json.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
