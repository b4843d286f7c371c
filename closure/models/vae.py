"""Tokenizer: one VAE per field mapping a normalized field to a probabilistic latent field.

Each latent pixel (a *token*) is a Gaussian code (mean, log-variance; 4 channels each) of an 8x8
patch. Encoder and decoder mirror the paper's VGG-style reference: widths base, 2b, 4b, 8b with
1, 1, 2, 2 conv units and three 2x max-pools (x8); the decoder up-samples bilinearly. Fully
convolutional, so the tokens of a micro domain and of a larger meso domain are the same code.

Losses (per-sample sums, averaged over the batch so the learning rate does not depend on the
batch size): reconstruction SSE, KL to N(0, 1), edge-boosting (absolute error weighted by the
target's normalized gradient magnitude, which sharpens shock fronts and pore edges) and an
optional perceptual term. The paper's perceptual term uses ImageNet weights, which cannot be
downloaded here: :class:`PerceptualLoss` takes any frozen feature network and is off by default.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from closure.models.blocks import LEAKY_SLOPE, ConvUnit, conv_stack, gaussian_sample
from closure.normalization import CHANNELS

__all__ = [
    "DOWNSAMPLE",
    "DecoderBlock",
    "DecoderPlan",
    "FieldVAE",
    "PerceptualLoss",
    "Tokenizer",
    "VAELossWeights",
    "check_grid",
    "edge_boost_loss",
    "edge_weight",
    "kl_loss",
    "load_feature_net",
    "vae_losses",
]

#: Spatial down-sampling of the tokenizer: one token per 8x8 patch.
DOWNSAMPLE = 8


def check_grid(h: int, w: int, *, name: str = "fields") -> None:
    """Raise ``ValueError`` unless both grid sides are positive multiples of :data:`DOWNSAMPLE`."""
    for side, n in (("H", h), ("W", w)):
        if n < DOWNSAMPLE or n % DOWNSAMPLE:
            raise ValueError(f"{name}: grid side {side}={n} must be a positive multiple of "
                             f"{DOWNSAMPLE} (the tokenizer's patch size)")


LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


@dataclass(frozen=True)
class DecoderBlock:
    """One decoder level: bilinear x2 up-sampling (``align_corners=False``) first if
    ``upsample``, then the ``units`` in order (each conv, LeakyReLU(unit.slope), 1x1 mix,
    LeakyReLU(unit.slope))."""

    upsample: bool
    units: tuple[ConvUnit, ...]


@dataclass(frozen=True)
class DecoderPlan:
    """What :meth:`FieldVAE.decode` computes, layer by layer, with the modules holding the weights:
    ``LeakyReLU(input_slope)(dec_in(z))``, the ``blocks`` in order, then ``dec_out`` (no
    activation). The decoder runs from this plan, and so do the compiled kernels that
    re-implement it (:mod:`closure.kernels.decode`): a change of layout or slope reaches both."""

    dec_in: nn.Conv2d
    input_slope: float
    blocks: tuple[DecoderBlock, ...]
    dec_out: nn.Conv2d


class FieldVAE(nn.Module):
    """VAE of a single normalized field (B, 1, H, W) <-> latent (B, L, H/8, W/8).

    The log-variance head starts at ``logvar_init`` for every input (zero weights): with the
    default initialization (logvar ~ 0, noise std ~ 1 against means ~ 0.1) the decoder learns
    to ignore the latent and the posterior collapses; measured on synthetic pressure fronts,
    reconstruction RMSE stalled at 0.18 versus 0.03 with ``logvar_init = -6``.
    """

    def __init__(self, base_channels: int = 16, latent_channels: int = 4,
                 padding_mode: str = "zeros", logvar_init: float = -6.0) -> None:
        super().__init__()
        b, pm = base_channels, padding_mode
        self.latent_channels = latent_channels
        self.enc = nn.ModuleList([conv_stack(1, b, 1, 3, pm), conv_stack(b, 2 * b, 1, 3, pm),
                                  conv_stack(2 * b, 4 * b, 2, 3, pm),
                                  conv_stack(4 * b, 8 * b, 2, 3, pm)])
        self.to_mean = nn.Conv2d(8 * b, latent_channels, 3, padding=1, padding_mode=pm)
        self.to_logvar = nn.Conv2d(8 * b, latent_channels, 3, padding=1, padding_mode=pm)
        # He initialization for the leaky-ReLU stacks: with PyTorch's default conv init the
        # signal shrinks ~3x per layer through the ~20 layers, the decoder output is its bias,
        # and on the pore-collapse data the VAE stayed at the mean (reconstruction RMSE = field
        # std after 300 steps; 0.40 std after 150 steps with this init)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=LEAKY_SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.to_logvar.weight)
        nn.init.constant_(self.to_logvar.bias, logvar_init)
        self.dec_in = nn.Conv2d(latent_channels, 8 * b, 3, padding=1, padding_mode=pm)
        self.dec = nn.ModuleList([conv_stack(8 * b, 8 * b, 2, 3, pm),
                                  conv_stack(8 * b, 4 * b, 1, 3, pm),
                                  conv_stack(4 * b, 2 * b, 1, 3, pm),
                                  conv_stack(2 * b, b, 1, 3, pm)])
        self.dec_out = nn.Conv2d(b, 1, 3, padding=1, padding_mode=pm)
        #: LeakyReLU slope after ``dec_in`` (a plain attribute, not in the state_dict)
        self.input_slope = LEAKY_SLOPE
        #: the first ``n_upsample`` decoder blocks up-sample x2: 2**n_upsample = DOWNSAMPLE
        self.n_upsample = DOWNSAMPLE.bit_length() - 1

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance of ``x`` (B, 1, H, W)."""
        check_grid(x.shape[-2], x.shape[-1])
        h = x
        for i, block in enumerate(self.enc):
            if i > 0:
                h = F.max_pool2d(h, 2)
            h = block(h)
        # bounded as in latent-diffusion VAEs: exp(logvar) in the KL term overflows float32
        # (measured: an inf loss in epoch 12 of the default VAE run) once logvar passes ~88
        return self.to_mean(h), self.to_logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)

    def decoder_plan(self) -> DecoderPlan:
        """The decoder's layers, activations and up-sampling (:class:`DecoderPlan`)."""
        blocks = tuple(DecoderBlock(i < self.n_upsample, tuple(block))
                       for i, block in enumerate(self.dec))
        return DecoderPlan(self.dec_in, float(self.input_slope), blocks, self.dec_out)

    def decode_features(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder up to ``dec_out``'s input (B, C, 8h, 8w): the features that the fused
        hotspot kernels take instead of the decoded field."""
        plan = self.decoder_plan()
        h = F.leaky_relu(plan.dec_in(z), plan.input_slope)
        for block in plan.blocks:
            if block.upsample:
                h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            for unit in block.units:
                h = unit(h)
        return h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Field (B, 1, 8h, 8w) of a latent sample or mean ``z`` (B, L, h, w)."""
        return self.decoder_plan().dec_out(self.decode_features(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction from a sample, mean, logvar, sample)."""
        mean, logvar = self.encode(x)
        z = gaussian_sample(mean, logvar, generator)
        return self.decode(z), mean, logvar, z


class Tokenizer(nn.Module):
    """One :class:`FieldVAE` per field; latents of all fields concatenated field-major.

    Channels ``[i*L, (i+1)*L)`` of the latent mean/logvar belong to field ``fields[i]``.
    """

    def __init__(self, fields: Sequence[str] = CHANNELS, base_channels: int = 16,
                 latent_channels: int = 4, padding_mode: str = "zeros",
                 logvar_init: float = -6.0) -> None:
        super().__init__()
        self.fields = tuple(fields)
        self.latent_channels = latent_channels
        self.vaes = nn.ModuleDict({
            f: FieldVAE(base_channels, latent_channels, padding_mode, logvar_init)
            for f in self.fields})

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != len(self.fields):
            raise ValueError(f"fields must have shape (B, {len(self.fields)}, H, W) for "
                             f"{self.fields}, got {tuple(x.shape)}")
        check_grid(x.shape[-2], x.shape[-1])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and logvar (B, n_fields*L, H/8, W/8) of normalized fields (B, C, H, W)."""
        self._check(x)
        out = [self.vaes[f].encode(x[:, i:i + 1]) for i, f in enumerate(self.fields)]
        return torch.cat([m for m, _ in out], 1), torch.cat([v for _, v in out], 1)

    def decode(self, mean: torch.Tensor, logvar: torch.Tensor | None = None, *,
               sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Fields (B, C, 8h, 8w): decoded latent means, or reparameterized samples if ``sample``."""
        z = mean
        if sample:
            if logvar is None:
                raise ValueError("decode(sample=True) needs logvar")
            z = gaussian_sample(mean, logvar, generator)
        L = self.latent_channels
        return torch.cat([self.vaes[f].decode(z[:, i * L:(i + 1) * L])
                          for i, f in enumerate(self.fields)], 1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction from a sample, mean, logvar) of all fields."""
        mean, logvar = self.encode(x)
        return self.decode(mean, logvar, sample=True, generator=generator), mean, logvar


@dataclass
class VAELossWeights:
    """Weights of the tokenizer loss terms (perceptual is off unless a feature net is given)."""

    recon: float = 1.0
    kl: float = 1.0e-3
    edge: float = 1.0
    perceptual: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed per sample, averaged over the batch."""
    kl = -0.5 * (1.0 + logvar - mean.square() - logvar.exp())
    return kl.flatten(1).sum(1).mean()


def edge_weight(x: torch.Tensor) -> torch.Tensor:
    """Per-sample min-max normalized gradient magnitude of ``x`` (B, C, H, W), in [0, 1].

    Forward differences, zero on the last row/column (as ``tf.image.image_gradients``).
    """
    dy = torch.zeros_like(x)
    dx = torch.zeros_like(x)
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    g = torch.sqrt(dy.square() + dx.square())
    flat = g.flatten(1)
    lo = flat.min(1).values.view(-1, *([1] * (x.ndim - 1)))
    hi = flat.max(1).values.view(-1, *([1] * (x.ndim - 1)))
    return (g - lo) / (hi - lo + 1e-5)


def edge_boost_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient-weighted absolute error, summed per sample and averaged over the batch."""
    w = edge_weight(target).detach()
    return (w * (pred - target).abs()).flatten(1).sum(1).mean()


class PerceptualLoss(nn.Module):
    """Squared feature distance under a frozen, user-supplied feature network.

    ``feature_net`` maps (B, 1, H, W) to one tensor or a sequence of feature tensors; its weights
    are frozen here. No default network ships (ImageNet weights are not downloadable here).
    """

    def __init__(self, feature_net: nn.Module) -> None:
        super().__init__()
        self.net = feature_net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> PerceptualLoss:  # the feature net stays in eval mode
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp, ft = self.net(pred), self.net(target)
        if isinstance(fp, torch.Tensor):
            fp, ft = [fp], [ft]
        return sum(((a - b).square().flatten(1).sum(1).mean() for a, b in zip(fp, ft, strict=True)),
                   start=pred.new_zeros(()))


def load_feature_net(spec: str) -> nn.Module:
    """Build a feature network from ``"package.module:factory"`` (called with no arguments)."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"feature net spec must look like 'package.module:factory', got {spec!r}")
    factory: Callable[[], nn.Module] = getattr(importlib.import_module(mod_name), attr)
    net = factory()
    if not isinstance(net, nn.Module):
        raise TypeError(f"{spec!r} returned {type(net).__name__}, expected torch.nn.Module")
    return net


def vae_losses(vae: FieldVAE, x: torch.Tensor, weights: VAELossWeights,
               perceptual: PerceptualLoss | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """All tokenizer loss terms of one field batch ``x`` (B, 1, H, W), plus their weighted total."""
    recon, mean, logvar, _ = vae(x, generator)
    terms = {
        "recon": (recon - x).square().flatten(1).sum(1).mean(),
        "kl": kl_loss(mean, logvar),
        "edge": edge_boost_loss(recon, x),
    }
    if weights.perceptual > 0:
        if perceptual is None:
            raise ValueError("VAE loss weight 'perceptual' > 0 needs a feature network "
                             "(config key vae.perceptual_net = 'package.module:factory')")
        terms["perceptual"] = perceptual(recon, x)
    total = sum((getattr(weights, k) * v for k, v in terms.items()), start=x.new_zeros(()))
    terms["total"] = total
    return terms
