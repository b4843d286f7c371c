"""Float32 accuracy of Winograd F(2x2, 3x3) and F(4x4, 3x3) against direct convolution.

    python benchmarks/winograd_accuracy.py [--json benchmarks/results/winograd_accuracy.json]

One 3x3 conv of the decoder's widest unit (128 -> 128 channels on 32x48, LeakyReLU'd Gaussian
input, He-scaled weights): max |error| / max |exact| and mean |error| / mean |exact| of each
float32 form against a float64 direct convolution. The C++ decoder uses F(2x2, 3x3); F(4x4, 3x3)
would save another 1.8x of that unit's products but its error comes close to the 1e-5 agreement
the kernel backends promise (docs/closure.md section 6).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

# Lavin & Gray (2016) transforms, interpolation points 0, +-1, +-2, inf (F(4x4, 3x3)) and 0, +-1,
# inf (F(2x2, 3x3))
F4 = (torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]),
      torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                    [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
      torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                    [0, 1, -1, 8, -8, 1]]), 4)
F2 = (torch.tensor([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
      torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
      torch.tensor([[1, 1, 1, 0], [0, 1, -1, -1]]), 2)


def winograd_conv(x: torch.Tensor, w: torch.Tensor, form) -> torch.Tensor:
    """3x3 conv (zero padding) of x (float64 in) as Winograd ``form``, arithmetic in float32
    (weights transformed in float64)."""
    BT, G, AT, m = (t.double() if isinstance(t, torch.Tensor) else t for t in form)
    B, C, H, W = x.shape
    a = BT.shape[0]
    th, tw = -(-H // m), -(-W // m)
    xp = torch.zeros(B, C, th * m + 2, tw * m + 2, dtype=torch.float64)
    xp[:, :, 1:H + 1, 1:W + 1] = x
    tiles = xp.float().unfold(2, a, m).unfold(3, a, m)
    V = torch.einsum("ij,bctujk,lk->ilbctu", BT.float(), tiles, BT.float())
    U = torch.einsum("ij,ocjk,lk->iloc", G, w.double(), G).float()
    M = torch.einsum("iloc,ilbctu->ilbotu", U, V)
    Y = torch.einsum("pi,ilbotu,ql->botpuq", AT.float(), M, AT.float())
    return Y.reshape(B, -1, th * m, tw * m)[:, :, :H, :W].double()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" /
                                          "winograd_accuracy.json"))
    args = ap.parse_args()
    from closure.training.checkpoint import atomic_write_bytes

    g = torch.Generator().manual_seed(0)
    x = F.leaky_relu(torch.randn(2, 128, 32, 48, generator=g, dtype=torch.float64), 0.2)
    w = torch.randn(128, 128, 3, 3, generator=g, dtype=torch.float64) * np.sqrt(2 / (128 * 9))
    exact = F.conv2d(x, w, padding=1)
    forms = {"direct_float32": F.conv2d(x.float(), w.float(), padding=1).double(),
             "winograd_F2x2_3x3": winograd_conv(x, w, F2),
             "winograd_F4x4_3x3": winograd_conv(x, w, F4)}
    out = {}
    print(f"{'form':>20s} {'max err / max':>14s} {'mean err / mean':>16s}")
    for name, y in forms.items():
        err = (y - exact).abs()
        out[name] = {"max_rel": float(err.max() / exact.abs().max()),
                     "mean_rel": float(err.mean() / exact.abs().mean())}
        print(f"{name:>20s} {out[name]['max_rel']:14.2e} {out[name]['mean_rel']:16.2e}")
    atomic_write_bytes(Path(args.json), (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
