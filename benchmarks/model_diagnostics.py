"""Where the default latent model loses the hotspots: tokenizer and micro-rollout diagnostics.

    python benchmarks/model_diagnostics.py [--run runs/default-small] [--data data/micro.h5]

Needs a training run directory (stages vae, micro-dynamics, decoder-refine) and the micro data
set. Reports, on micro validation samples:
- reconstruction of frames 8, 10, ..., 20 by the tokenizer before and after decoder-refine:
  cells above the hotspot threshold (true, reconstructed, both), peak T, T RMSE (K);
- the micro latent model rolled out from the config's ``data.first_frame`` with the refined
  decoders: hotspot and field RMSEs against the persistence forecast;
- the shipped latent model and PARC (``--parc``) on the held-out meso test samples, same frames;
- the wall time of every training stage (from the model cards).
Writes benchmarks/results/model_diagnostics.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from closure.files import atomic_write_bytes, portable_paths

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(ROOT / "runs" / "default-small"))
    ap.add_argument("--data", default=str(ROOT / "data" / "micro.h5"))
    ap.add_argument("--meso", default=str(ROOT / "data" / "meso.h5"))
    ap.add_argument("--parc", default=str(ROOT / "runs" / "default-small" / "parc"),
                    help="PARC model dir scored on the same meso test frames (if present)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" /
                                          "model_diagnostics.json"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import h5py
    import torch

    from closure.modelcard import load_model, read_card
    from closure.normalization import HOTSPOT_THRESHOLD_K, NORM_RANGES
    from closure.table import TABLE_FILE, Table
    from closure.training.data import load_trajectories, split_indices
    from closure.training.evaluate import evaluate_model, rollout
    from closure.training.stages import hot_token_mask

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    cfg = read_card(run / "decoder-refine")["config"]
    full = load_trajectories(args.data)
    first = cfg["data"].get("first_frame", 0)
    frac = cfg["data"]["micro_val_fraction"]
    split = split_indices(full.n, n_val=max(1, round(frac * full.n)),
                          seed=cfg["data"]["split_seed"])
    val = full.subset(split["val"])
    lo, hi = NORM_RANGES["T"]
    x = torch.from_numpy(np.ascontiguousarray(
        val.fields[:, 8::2].reshape(-1, *val.fields.shape[2:])))
    T = x[:, 0].numpy() * (hi - lo) + lo
    doc: dict = {"run": str(run), "micro_val_samples": split["val"], "frames": "8, 10, ..., 20",
                 "threshold_K": HOTSPOT_THRESHOLD_K, "reconstruction": {}}
    refined, _ = load_model(run / "decoder-refine", kind="latent")
    vae, _ = load_model(run / "vae", kind="tokenizer")
    for name, tok in (("vae", vae), ("decoder-refine", refined.tokenizer)):
        tok.eval()
        with torch.no_grad():
            mean, _ = tok.encode(x)
            rec = tok.decode(mean)[:, 0].numpy() * (hi - lo) + lo
        a, b = T > HOTSPOT_THRESHOLD_K, rec > HOTSPOT_THRESHOLD_K
        doc["reconstruction"][name] = {
            "hot_cells_true": int(a.sum()), "hot_cells_reconstructed": int(b.sum()),
            "hot_cells_both": int((a & b).sum()), "peak_T_true": float(T.max()),
            "peak_T_reconstructed": float(rec.max()),
            "T_rmse_K": float(np.sqrt(np.mean((rec - T) ** 2)))}
    # how hot tokens sit in the refined tokenizer's T latent space, and how much latent noise the
    # decoded hot cells survive (is the dynamics' job a precision problem?)
    vT = refined.tokenizer.vaes["T"]
    with torch.no_grad():
        zT, _ = vT.encode(x[:, :1])
        hot_tok = torch.from_numpy(hot_token_mask(x[:, 0].numpy(), HOTSPOT_THRESHOLD_K,
                                                   1.0)) > 0
        gen = torch.Generator().manual_seed(0)
        noisy = {str(rel): int((vT.decode(zT + rel * zT.std() * torch.randn(
                     zT.shape, generator=gen)) * (hi - lo) + lo > HOTSPOT_THRESHOLD_K).sum())
                 for rel in (0.0, 0.1, 0.3)}
    doc["T_latent_hot_tokens"] = {
        "hot_tokens": int(hot_tok.sum()), "tokens": int(hot_tok.numel()),
        "channel_mean_hot": [float(zT[:, c][hot_tok].mean()) for c in range(zT.shape[1])],
        "channel_mean_other": [float(zT[:, c][~hot_tok].mean()) for c in range(zT.shape[1])],
        "channel_std": [float(zT[:, c].std()) for c in range(zT.shape[1])],
        "decoded_hot_cells_with_latent_noise": noisy}
    micro, _ = load_model(run / "micro-dynamics", kind="latent")
    micro.tokenizer.load_state_dict(refined.tokenizer.state_dict())
    m = evaluate_model(micro, val.from_frame(first), batch_size=4)
    doc["micro_rollout_first_frame"] = first
    doc["micro_rollout_refined_decoder"] = {k: v for k, v in m.items()
                                            if isinstance(v, int | float)}
    pred = rollout(micro, val.from_frame(first).fields, batch_size=4)
    thr_n = (HOTSPOT_THRESHOLD_K - lo) / (hi - lo)
    doc["micro_rollout_hot_cells_per_frame"] = {
        "predicted": (pred[:, :, 0] > thr_n).sum(axis=(0, 2, 3)).tolist(),
        "true": (val.from_frame(first).fields[:, :, 0] > thr_n).sum(axis=(0, 2, 3)).tolist()}
    # held-out meso test samples, the same frames for every model (data.first_frame on)
    mcard = read_card(run / "decoder-refine")
    msplit = mcard["data"]["meso"]["split"]
    meso = load_trajectories(args.meso, msplit["test"]).from_frame(first)
    doc["meso_test"] = {"samples": msplit["test"], "first_frame": first}
    models = {"latent (shipped)": run / "decoder-refine", "parc": Path(args.parc)}
    for name, d in models.items():
        if (d / "model_card.json").exists():
            model, card = load_model(d)
            r = evaluate_model(model, meso, batch_size=2)
            doc["meso_test"][name] = {"model": str(d), **{k: v for k, v in r.items()
                                                           if isinstance(v, int | float)}}
    # the closure's table response (synthetic frame-1 patch, microstructure bank) against the
    # hotspot area fraction of every meso sample at its own shock pressure, frames 1..20
    tpath = run / "decoder-refine" / TABLE_FILE
    if tpath.exists():
        tab = Table.load(tpath)
        with h5py.File(args.meso, "r") as h5:
            ps = np.asarray(h5["meta"]["shock_pressure"], float)
            Tm = h5["fields"][:, 1:, 0] * (hi - lo) + lo
        a_true = (Tm > HOTSPOT_THRESHOLD_K).mean(axis=(2, 3))             # (N, 20)
        k = np.arange(a_true.shape[1])
        a_tab = np.stack([[np.interp(p, tab.nodes, tab.area[:, j]) for j in k] for p in ps])
        bands = [(0, 7e9), (7e9, 10e9), (10e9, 12e9), (12e9, 20e9)]
        doc["closure_table_vs_meso_data"] = {
            "table": str(tpath), "n_samples": int(len(ps)),
            "rmse_area_fraction": float(np.sqrt(np.mean((a_tab - a_true) ** 2))),
            "zero_forecast_rmse_area_fraction": float(np.sqrt(np.mean(a_true ** 2))),
            "by_shock_pressure_final_frame": [
                {"ps_GPa": [b0 / 1e9, b1 / 1e9], "n": int(m.sum()),
                 "mean_true_area_fraction": float(a_true[m, -1].mean()),
                 "mean_table_area_fraction": float(a_tab[m, -1].mean())}
                for b0, b1 in bands for m in [(ps >= b0) & (ps < b1)] if m.any()]}
    doc["stage_wall_s"] = {s: read_card(run / s)["metrics"].get("train_wall_s")
                           for s in ("vae", "micro-dynamics", "meso-finetune", "decoder-refine",
                                     "parc") if (run / s / "model_card.json").exists()}
    out = Path(args.json)
    atomic_write_bytes(out, (json.dumps(portable_paths(doc), indent=1) + "\n").encode())
    for name, r in doc["reconstruction"].items():
        print(f"{name:15s} hot cells true {r['hot_cells_true']}, reconstructed "
              f"{r['hot_cells_reconstructed']}, both {r['hot_cells_both']}; peak T "
              f"{r['peak_T_true']:.0f} -> {r['peak_T_reconstructed']:.0f} K; "
              f"T RMSE {r['T_rmse_K']:.1f} K")
    h = doc["T_latent_hot_tokens"]
    print(f"T latent, hot vs other tokens: channel means {np.round(h['channel_mean_hot'], 2)} vs "
          f"{np.round(h['channel_mean_other'], 2)} (std {np.round(h['channel_std'], 2)}); decoded "
          f"hot cells with latent noise 0 / 0.1 / 0.3 std: "
          f"{list(h['decoded_hot_cells_with_latent_noise'].values())}")
    print("micro rollout hot cells per frame:", doc["micro_rollout_hot_cells_per_frame"])
    r = doc["micro_rollout_refined_decoder"]
    print(f"micro rollout: RMSE A_hs {r['rmse_A_hs']:.4g} (persistence "
          f"{r['persistence_rmse_A_hs']:.4g}), T_hs {r['rmse_T_hs']:.4g} "
          f"({r['persistence_rmse_T_hs']:.4g}), field mean {r['rmse_field_mean']:.4g} "
          f"({r['persistence_rmse_field_mean']:.4g})")
    for name, r in doc["meso_test"].items():
        if isinstance(r, dict):
            print(f"meso test, {name}: RMSE A_hs {r['rmse_A_hs']:.4g} (persistence "
                  f"{r['persistence_rmse_A_hs']:.4g}), T_hs {r['rmse_T_hs']:.4g} "
                  f"({r['persistence_rmse_T_hs']:.4g}), dA_hs/dt {r['rmse_dA_hs_dt']:.4g}, "
                  f"field mean {r['rmse_field_mean']:.4g}")
    c = doc.get("closure_table_vs_meso_data")
    if c:
        print(f"closure table vs meso data: area-fraction RMSE {c['rmse_area_fraction']:.4f} "
              f"(zero forecast {c['zero_forecast_rmse_area_fraction']:.4f})")
        for b in c["by_shock_pressure_final_frame"]:
            print(f"  Ps {b['ps_GPa'][0]:.0f}-{b['ps_GPa'][1]:.0f} GPa (n={b['n']}): final area "
                  f"fraction data {b['mean_true_area_fraction']:.4f}, table "
                  f"{b['mean_table_area_fraction']:.4f}")
    print("stage wall s:", {k: round(v) for k, v in doc["stage_wall_s"].items() if v})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
