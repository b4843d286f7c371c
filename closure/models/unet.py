"""U-Net for the latent dynamics (and PARC's feature extractor), valid on any grid size.

Layout follows the paper's ``latent_evolution_unet``: input dropout, ``depth`` max-pool levels
(2 in the paper), skip concatenations, bilinear up-sampling. Pooling uses ``ceil_mode`` and
up-sampling targets the skip's exact size, so odd token grids (3x5, 1x1) work: a meso domain is
an arbitrary grid of tokens. The output layer is a linear 1x1 conv (the reference ends in a
LeakyReLU, which would forbid negative increments in residual use).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from closure.models.blocks import conv_stack

__all__ = ["UNet"]


class UNet(nn.Module):
    """Fully convolutional U-Net ``c_in -> c_out`` with widths ``base * 2**level``.

    ``zero_init_output`` starts the network at exactly zero output, so a residual user
    (``x + unet(x)``) starts as the identity map; coupled networks trained on top of the
    decoupled ones then begin from the decoupled prediction.
    """

    def __init__(self, c_in: int, c_out: int, base: int = 16, depth: int = 2, reps: int = 2,
                 dropout: float = 0.1, padding_mode: str = "zeros",
                 zero_init_output: bool = False) -> None:
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.c_in, self.c_out = c_in, c_out
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        prev = c_in
        for w in widths:
            self.down.append(conv_stack(prev, w, reps, 3, padding_mode))
            prev = w
        self.up = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.up.append(conv_stack(prev + w_skip, w_skip, reps, 3, padding_mode))
            prev = w_skip
        self.out = nn.Conv2d(prev, c_out, 1)
        if zero_init_output:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.c_in:
            raise ValueError(f"UNet expects {self.c_in} input channels, got {x.shape[1]}")
        h = self.dropout(x)
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = block(h)
            skips.append(h)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        return self.out(h)
