"""Convolutional building blocks shared by the tokenizer, the latent U-Nets and PARC.

Every block is fully convolutional, so a network built from them runs on any grid size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LEAKY_SLOPE", "PADDING_MODES", "ConvUnit", "conv_stack", "gaussian_sample"]

#: Accepted ``padding_mode`` values (those of ``torch.nn.Conv2d``).
PADDING_MODES = ("zeros", "replicate", "reflect", "circular")
#: Negative slope of the LeakyReLUs (the paper's reference code)
LEAKY_SLOPE = 0.2


def _check_padding(padding_mode: str) -> str:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    return padding_mode


class ConvUnit(nn.Module):
    """k x k conv + LeakyReLU + 1x1 conv + LeakyReLU, as in the paper's reference code.

    ``slope`` (a plain attribute, not in the state_dict) is the LeakyReLUs' negative slope: the
    compiled kernels read it from here (:class:`closure.models.vae.DecoderPlan`).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3,
                 padding_mode: str = "zeros", slope: float = LEAKY_SLOPE) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2,
                              padding_mode=_check_padding(padding_mode))
        self.mix = nn.Conv2d(c_out, c_out, 1)
        self.slope = float(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv(x), self.slope)
        return F.leaky_relu(self.mix(x), self.slope)


def conv_stack(c_in: int, c_out: int, reps: int, kernel_size: int = 3,
               padding_mode: str = "zeros") -> nn.Sequential:
    """``reps`` ConvUnits, the first mapping ``c_in`` to ``c_out`` channels."""
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    return nn.Sequential(*[ConvUnit(c_in if i == 0 else c_out, c_out, kernel_size, padding_mode)
                           for i in range(reps)])


def gaussian_sample(mean: torch.Tensor, logvar: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Reparameterized sample ``mean + exp(logvar / 2) * eps`` (differentiable in mean, logvar).

    ``generator`` makes sampling reproducible without touching the global RNG.
    """
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * logvar) * eps
