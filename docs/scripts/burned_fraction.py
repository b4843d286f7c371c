"""Burned mass fraction F(t) of the default data sets by shock-pressure bin, and its spread.

Reads the committed manifests (``docs/datasets/{micro,meso}.h5.manifest.json``: per-bin mean
F(t) and per-sample end-of-horizon F, shock pressure, reaction progress), so it runs without the
data files. Writes ``docs/burned_fraction.png`` (mean F(t) per bin; end-of-horizon F against
shock pressure) and ``docs/burned_fraction.json``.

Spread at one shock pressure: the bins are wide (a factor ~1.6 in pressure), so the within-bin
standard deviation mixes microstructure with loading. Among ignited samples (max lambda > 0.5)
log10 F is regressed on log10 P by least squares; the residual standard deviation (in decades,
and as the factor 10^sd) is the sample-to-sample spread at a fixed pressure.

    python docs/scripts/burned_fraction.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "docs" / "datasets"
OUT = ROOT / "docs" / "burned_fraction"
IGNITED_LAM = 0.5


def spread_at_fixed_pressure(p: np.ndarray, f: np.ndarray) -> dict:
    """Least-squares fit log10 F = a + b log10(P/GPa); residual spread in decades."""
    x, y = np.log10(p / 1e9), np.log10(f)
    if x.size < 3:
        return {"n": int(x.size)}
    b, a = np.polyfit(x, y, 1)
    res = y - (a + b * x)
    sd = float(np.std(res, ddof=2))
    return {"n": int(x.size), "slope_log_F_per_log_P": float(b), "intercept": float(a),
            "residual_sd_decades": sd, "residual_factor": float(10.0**sd),
            "residual_max_abs_decades": float(np.max(np.abs(res)))}


def summarize(scale: str) -> dict | None:
    path = MANIFESTS / f"{scale}.h5.manifest.json"
    if not path.exists():
        return None
    m = json.loads(path.read_text())
    done = [s for s in m["samples"] if s.get("status") == 1]
    p = np.array([s["shock_pressure"] for s in done])
    f = np.array([s["final_burned_fraction"] for s in done])
    lam = np.array([s["max_lam"] for s in done])
    ign = lam > IGNITED_LAM
    bins = []
    for b in m["summary"]["by_pressure"]:
        fb = b["final_burned_fraction"]
        bins.append({"p_lo_GPa": b["p_lo_GPa"], "p_hi_GPa": b["p_hi_GPa"], "n": b["n"],
                     "ignited": b["ignited"], "F_end_mean": fb["mean"] if fb else None,
                     "F_end_std": b["final_burned_fraction_std"],
                     "F_end_min": fb["min"] if fb else None,
                     "F_end_max": fb["max"] if fb else None, "mean_F_t": b["mean_F_t"]})
    return {"manifest": str(path.relative_to(ROOT)), "sha256": m["sha256"],
            "n_done": len(done), "n_samples": m["summary"]["n_samples"],
            "frame_dt_s": m["dt"], "by_pressure": bins,
            "ignited_spread": spread_at_fixed_pressure(p[ign], f[ign]),
            "samples": [{"shock_pressure_GPa": float(pi / 1e9), "F_end": float(fi),
                         "ignited": bool(gi)} for pi, fi, gi in zip(p, f, ign, strict=True)]}


def plot(doc: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = [s for s in ("micro", "meso") if doc.get(s)]
    fig, axes = plt.subplots(len(scales), 2, figsize=(11, 3.8 * len(scales)), squeeze=False)
    for row, scale in zip(axes, scales, strict=True):
        d = doc[scale]
        cmap = plt.get_cmap("viridis")
        nb = len(d["by_pressure"])
        for k, b in enumerate(d["by_pressure"]):
            if not b["n"]:
                continue
            t = np.arange(len(b["mean_F_t"])) * d["frame_dt_s"] * 1e9
            row[0].semilogy(t, np.maximum(b["mean_F_t"], 1e-16), color=cmap(k / max(nb - 1, 1)),
                            label=f"{b['p_lo_GPa']:.1f}-{b['p_hi_GPa']:.1f} GPa "
                                  f"(n={b['n']}, ignited {b['ignited']})")
        row[0].set(xlabel="t (ns)", ylabel="mean burned mass fraction F",
                   title=f"{scale}: {d['n_done']} samples, mean F(t) per shock-pressure bin",
                   ylim=(1e-14, 1.0))
        row[0].legend(fontsize=7)
        s = d["samples"]
        p = np.array([x["shock_pressure_GPa"] for x in s])
        f = np.array([x["F_end"] for x in s])
        g = np.array([x["ignited"] for x in s])
        row[1].loglog(p[~g], np.maximum(f[~g], 1e-16), "o", mfc="none", color="0.5",
                      label="not ignited (max lambda <= 0.5)")
        row[1].loglog(p[g], f[g], "o", color="C3", label="ignited")
        sp = d["ignited_spread"]
        if "slope_log_F_per_log_P" in sp:
            xx = np.linspace(p[g].min(), p[g].max(), 50)
            row[1].loglog(xx, 10 ** (sp["intercept"] + sp["slope_log_F_per_log_P"] * np.log10(xx)),
                          "k-", lw=1, label=f"fit, residual x{sp['residual_factor']:.2f} (1 sd)")
        row[1].set(xlabel="shock pressure (GPa)", ylabel="F at end of horizon",
                   title=f"{scale}: end-of-horizon F per sample", ylim=(1e-14, 1.0))
        row[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=110)


def main() -> int:
    doc = {s: summarize(s) for s in ("micro", "meso")}
    OUT.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    plot(doc)
    for scale, d in doc.items():
        if not d:
            continue
        print(f"{scale}: {d['n_done']}/{d['n_samples']} samples")
        print(f"  {'bin (GPa)':>12s} {'n':>3s} {'ign':>3s} {'F_end mean':>10s} {'std':>9s} "
              f"{'F(T/4)':>9s} {'F(T/2)':>9s} {'F(3T/4)':>9s}")
        for b in d["by_pressure"]:
            mf = b["mean_F_t"]
            if not b["n"]:
                continue
            q = [mf[len(mf) * k // 4] for k in (1, 2, 3)]
            print(f"  {b['p_lo_GPa']:5.2f}-{b['p_hi_GPa']:5.2f} {b['n']:3d} {b['ignited']:3d} "
                  f"{b['F_end_mean']:10.3g} {b['F_end_std']:9.2g} "
                  + " ".join(f"{v:9.2g}" for v in q))
        sp = d["ignited_spread"]
        if "residual_sd_decades" in sp:
            print(f"  ignited: n {sp['n']}, F ~ P^{sp['slope_log_F_per_log_P']:.2f}, spread at "
                  f"fixed P {sp['residual_sd_decades']:.3f} decades (x{sp['residual_factor']:.2f})")
    print(f"wrote {OUT.with_suffix('.json').relative_to(ROOT)}, "
          f"{OUT.with_suffix('.png').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
