"""Per-shock-pressure-bin tables of the default data sets (docs/data.md section 8.1).

Reads the committed manifests (``docs/datasets/{micro,meso}.h5.manifest.json``), so it runs
without the data files, and prints one markdown table per set: peak T = maximum of the T
channel over the frames, hot-area T = mean T of the hottest 0.0625 um^2, A875 = area T > 875 K
and A_ex = area T > T_Hugoniot + 300 K (both as % of the window at their peak), ignited = max
lambda > 0.5, F = burned mass fraction at the end of the horizon (mean +/- standard deviation).

    python docs/scripts/data_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = ("| P (GPa) | samples | peak T median (range) (K) | hot-area T median (K) | A875 median "
          "/ max (%) | A_ex median / max (%) | ignited | F(end) |\n"
          "|---|---|---|---|---|---|---|---|")


def table(manifest: dict) -> str:
    rows = [HEADER]
    for b in manifest["summary"]["by_pressure"]:
        pt, ha = b["peak_T"], b["peak_hot_area_T"]
        a875, aex = b["peak_hotspot_fraction"], b["peak_hotspot_excess_fraction"]
        f = b["final_burned_fraction"]
        rows.append(
            f"| {b['p_lo_GPa']:.1f}-{b['p_hi_GPa']:.1f} | {b['n']} | {pt['median']:.0f} "
            f"({pt['min']:.0f}-{pt['max']:.0f}) | {ha['median']:.0f} | "
            f"{100 * a875['median']:.2f} / {100 * a875['max']:.2f} | "
            f"{100 * aex['median']:.2f} / {100 * aex['max']:.2f} | {b['ignited']} | "
            f"{f['mean']:.2g} +/- {b['final_burned_fraction_std']:.2g} |")
    return "\n".join(rows)


def main() -> None:
    for scale in ("micro", "meso"):
        m = json.loads((ROOT / "docs" / "datasets" / f"{scale}.h5.manifest.json").read_text())
        s = m["summary"]
        print(f"{scale}: {s['n_done']} done, {s['n_failed']} failed, "
              f"{s['samples_with_hotspot']} with T > 875 K; sha256 {m['sha256'][:16]}; "
              f"{m['size_bytes'] / 1e6:.0f} MB; shape {m['shape']}; code "
              f"{m.get('generated_by', m['code']).get('git_commit', '?')}")
        print(table(m))
        print()


if __name__ == "__main__":
    main()
