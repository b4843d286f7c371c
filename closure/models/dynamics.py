"""Latent dynamics: the paper's decoupled + coupled U-Nets, and the micro/meso closure model.

One latent step (micro dt): per field, a *decoupled* U-Net advances the latent mean (input: that
field's mean) and another the latent log-variance (input: that field's mean and log-variance);
then a *coupled* pair acts on all fields' channels together (mean net: all decoupled means;
log-variance net: all decoupled means and log-variances). With ``residual=True`` every net
predicts an increment (``z + f(z)``), and the coupled nets start as the identity (zero-initialized
output layer), so adding the coupling cannot make a trained decoupled model worse at step 0 of
its training. The paper's nets predict the next state directly (``residual=False``).

The meso model is the same module run on a larger token grid with ``substeps = k`` micro steps per
meso step, k = floor(meso dt / micro dt); its tokenizer and decoupled nets are frozen and only
the coupled nets are fine-tuned (they learn how neighbouring building blocks interact).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from closure.models.unet import UNet
from closure.models.vae import Tokenizer
from closure.normalization import CHANNELS

__all__ = [
    "DynamicsLossWeights",
    "LatentClosureModel",
    "LatentDynamics",
    "dynamics_losses",
    "meso_substeps",
    "state_norm",
]

#: evaluates a latent U-Net on an input: ``apply(net, x) -> net(x)``
NetRunner = Callable[[UNet, torch.Tensor], torch.Tensor]


def _call(net: UNet, x: torch.Tensor) -> torch.Tensor:
    return net(x)


class LatentDynamics(nn.Module):
    """Decoupled (per-field) and coupled (all-field) latent U-Nets; one call = one micro step."""

    def __init__(self, fields: Sequence[str] = CHANNELS, latent_channels: int = 4,
                 base_channels: int = 16, depth: int = 2, reps: int = 2, dropout: float = 0.1,
                 residual: bool = True, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.fields = tuple(fields)
        self.latent_channels = L = latent_channels
        self.residual = residual
        n = len(self.fields) * L
        kw = dict(base=base_channels, depth=depth, reps=reps, dropout=dropout,
                  padding_mode=padding_mode)
        self.decoupled_mean = nn.ModuleDict({f: UNet(L, L, **kw) for f in self.fields})
        self.decoupled_logvar = nn.ModuleDict({f: UNet(2 * L, L, **kw) for f in self.fields})
        self.coupled_mean = UNet(n, n, zero_init_output=residual, **kw)
        self.coupled_logvar = UNet(2 * n, n, zero_init_output=residual, **kw)

    @property
    def n_latent(self) -> int:
        return len(self.fields) * self.latent_channels

    def _check(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        if mean.shape != logvar.shape or mean.ndim != 4 or mean.shape[1] != self.n_latent:
            raise ValueError(f"latent mean/logvar must both be (B, {self.n_latent}, h, w), got "
                             f"{tuple(mean.shape)} and {tuple(logvar.shape)}")

    def decoupled_step(self, mean: torch.Tensor, logvar: torch.Tensor,
                       apply: NetRunner | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance each field's latent independently by one micro step."""
        run = apply or _call
        L, means, logvars = self.latent_channels, [], []
        for i, f in enumerate(self.fields):
            m, v = mean[:, i * L:(i + 1) * L], logvar[:, i * L:(i + 1) * L]
            dm = run(self.decoupled_mean[f], m)
            dv = run(self.decoupled_logvar[f], torch.cat([m, v], 1))
            means.append(m + dm if self.residual else dm)
            logvars.append(v + dv if self.residual else dv)
        return torch.cat(means, 1), torch.cat(logvars, 1)

    def coupled_step(self, mean: torch.Tensor, logvar: torch.Tensor,
                     apply: NetRunner | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Couple all fields' latents (applied after :meth:`decoupled_step`)."""
        run = apply or _call
        dm = run(self.coupled_mean, mean)
        dv = run(self.coupled_logvar, torch.cat([mean, logvar], 1))
        if self.residual:
            return mean + dm, logvar + dv
        return dm, dv

    def step(self, mean: torch.Tensor, logvar: torch.Tensor, coupled: bool = True,
             apply: NetRunner | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One micro step: decoupled nets, then (if ``coupled``) the coupled pair. ``apply(net,
        x)``, when given, evaluates the U-Nets in place of ``net(x)`` (the closure's compiled
        kernels, :func:`closure.kernels.unet_forward`)."""
        self._check(mean, logvar)
        mean, logvar = self.decoupled_step(mean, logvar, apply)
        if coupled:
            mean, logvar = self.coupled_step(mean, logvar, apply)
        return mean, logvar

    def rollout(self, mean: torch.Tensor, logvar: torch.Tensor, n_steps: int,
                substeps: int = 1, coupled: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent trajectories (B, n_steps + 1, n_latent, h, w); each step is ``substeps`` calls."""
        if n_steps < 0 or substeps < 1:
            raise ValueError(f"need n_steps >= 0 and substeps >= 1, got {n_steps}, {substeps}")
        means, logvars = [mean], [logvar]
        for _ in range(n_steps):
            for _ in range(substeps):
                mean, logvar = self.step(mean, logvar, coupled)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(means, 1), torch.stack(logvars, 1)

    def set_trainable(self, *, decoupled: bool, coupled: bool) -> None:
        """Freeze or unfreeze the decoupled and coupled nets (training phases, meso fine-tune)."""
        for mod in (self.decoupled_mean, self.decoupled_logvar):
            mod.requires_grad_(decoupled)
        for mod in (self.coupled_mean, self.coupled_logvar):
            mod.requires_grad_(coupled)


def meso_substeps(meso_dt: float, micro_dt: float) -> int:
    """k = floor(meso dt / micro dt) micro latent steps per meso step (2 in the paper)."""
    if micro_dt <= 0 or meso_dt <= 0:
        raise ValueError(f"dt must be > 0, got meso_dt={meso_dt}, micro_dt={micro_dt}")
    k = math.floor(meso_dt / micro_dt * (1 + 1e-9))
    if k < 1:
        raise ValueError(f"meso dt {meso_dt} is shorter than micro dt {micro_dt}: k would be 0")
    return k


class LatentClosureModel(nn.Module):
    """Tokenizer + latent dynamics: predicts field trajectories from an initial frame.

    ``substeps`` = 1 for the micro model and k for the meso model. Encoding and decoding are
    fully convolutional, so the same weights run on any grid whose sides are multiples of 8.
    """

    def __init__(self, tokenizer: Tokenizer, dynamics: LatentDynamics, substeps: int = 1,
                 coupled: bool = True) -> None:
        super().__init__()
        if tuple(tokenizer.fields) != tuple(dynamics.fields):
            raise ValueError(f"tokenizer fields {tokenizer.fields} != dynamics fields "
                             f"{dynamics.fields}")
        if tokenizer.latent_channels != dynamics.latent_channels:
            raise ValueError("tokenizer and dynamics latent_channels differ: "
                             f"{tokenizer.latent_channels} vs {dynamics.latent_channels}")
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.tokenizer = tokenizer
        self.dynamics = dynamics
        self.substeps = int(substeps)
        self.coupled = bool(coupled)

    @property
    def fields(self) -> tuple[str, ...]:
        return self.tokenizer.fields

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokenizer.encode(x)

    def decode(self, mean: torch.Tensor, logvar: torch.Tensor, *, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        return self.tokenizer.decode(mean, logvar, sample=sample, generator=generator)

    def decode_trajectory(self, means: torch.Tensor, logvars: torch.Tensor, *,
                          sample: bool = False, generator: torch.Generator | None = None,
                          ) -> torch.Tensor:
        """Decode latent trajectories (B, T, n_latent, h, w) to fields (B, T, C, 8h, 8w)."""
        B, T = means.shape[:2]
        x = self.decode(means.flatten(0, 1), logvars.flatten(0, 1), sample=sample,
                        generator=generator)
        return x.unflatten(0, (B, T))

    def forward(self, x0: torch.Tensor, n_steps: int, *, sample: bool = False,
                coupled: bool | None = None, generator: torch.Generator | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predicted fields (B, n_steps+1, C, H, W) and latent means/logvars from frame ``x0``.

        ``coupled`` (default: the model's ``coupled`` flag) applies the coupled nets each step.
        """
        coupled = self.coupled if coupled is None else coupled
        mean, logvar = self.encode(x0)
        means, logvars = self.dynamics.rollout(mean, logvar, n_steps, self.substeps, coupled)
        return self.decode_trajectory(means, logvars, sample=sample, generator=generator), \
            means, logvars

    def freeze_for_meso(self) -> None:
        """Freeze tokenizer and decoupled nets; only the coupled nets stay trainable."""
        self.tokenizer.requires_grad_(False)
        self.dynamics.set_trainable(decoupled=False, coupled=True)

    @classmethod
    def meso_from_micro(cls, micro: LatentClosureModel, substeps: int) -> LatentClosureModel:
        """Copy of ``micro`` with ``substeps`` = k, frozen except the coupled nets."""
        meso = cls(copy.deepcopy(micro.tokenizer), copy.deepcopy(micro.dynamics), substeps,
                   coupled=True)
        meso.freeze_for_meso()
        return meso


@dataclass
class DynamicsLossWeights:
    """Weights of latent-mean consistency, latent-logvar consistency and multi-step field loss.

    ``hotspot_tokens`` > 0 (not in the paper) multiplies the T latent-mean consistency error of
    every *hot token* by ``1 + hotspot_tokens``; a token is hot when one of its 8x8 cells in the
    target frame exceeds ``hotspot_near`` x the hotspot threshold (normalized T). Hot tokens are
    ~5% of the micro tokens and the T normalization range (300-5000 K) makes hotspots a small
    part of any plain squared error: without the weight the default model's dynamics never
    created a hot token (every hotspot metric equal to persistence).
    """

    mean: float = 1.0
    logvar: float = 1.0
    multi_step: float = 1.0
    hotspot_tokens: float = 0.0
    hotspot_near: float = 0.8

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def state_norm(z: torch.Tensor) -> torch.Tensor:
    """Per-sample latent size: pixel average of the channel L2 norm, shape (B, 1, 1, 1)."""
    return z.norm(dim=1).mean(dim=(-2, -1)).view(-1, 1, 1, 1)


def dynamics_losses(pred_means: torch.Tensor, pred_logvars: torch.Tensor,
                    enc_means: torch.Tensor, enc_logvars: torch.Tensor,
                    pred_fields: torch.Tensor, true_fields: torch.Tensor,
                    n_fields: int, weights: DynamicsLossWeights,
                    eps: float = 1e-6, hot_tokens: torch.Tensor | None = None,
                    t_field: int = 0) -> dict[str, torch.Tensor]:
    """The paper's three losses over predicted steps 1..h.

    ``pred_*``/``enc_*``: (B, h+1, n_fields*L, h_lat, w_lat), the rollout and the VAE-encoded
    ground-truth trajectory (index 0, the input, is skipped); ``*_fields``: (B, h, C, H, W), the
    decoded (sampled) prediction and the truth at steps 1..h. Consistency terms are MSEs of
    latents divided by the per-sample :func:`state_norm` of the encoded target, per field and
    step, summed; the multi-step term is the field MSE per field and step, summed. Sums over
    steps make longer curriculum horizons weigh more, as in the reference code.
    ``hot_tokens`` (B, h, 1, h_lat, w_lat), 1 on hot tokens of steps 1..h, weights field
    ``t_field``'s mean consistency by ``1 + weights.hotspot_tokens`` there.
    """
    h = pred_means.shape[1] - 1
    if pred_fields.shape[1] != h or true_fields.shape != pred_fields.shape:
        raise ValueError(f"fields must be (B, {h}, C, H, W) for horizon {h}, got "
                         f"{tuple(pred_fields.shape)} and {tuple(true_fields.shape)}")
    L = pred_means.shape[2] // n_fields
    zero = pred_means.new_zeros(())
    c_mean, c_var, multi = zero, zero, zero
    for t in range(1, h + 1):
        for f in range(n_fields):
            s = slice(f * L, (f + 1) * L)
            tm, tv = enc_means[:, t, s], enc_logvars[:, t, s]
            nm, nv = state_norm(tm) + eps, state_norm(tv) + eps
            if hot_tokens is not None and f == t_field and weights.hotspot_tokens:
                w = 1.0 + weights.hotspot_tokens * hot_tokens[:, t - 1]
                c_mean = c_mean + (w * (pred_means[:, t, s] / nm - tm / nm).square()).mean()
            else:
                c_mean = c_mean + F.mse_loss(pred_means[:, t, s] / nm, tm / nm)
            c_var = c_var + F.mse_loss(pred_logvars[:, t, s] / nv, tv / nv)
            multi = multi + F.mse_loss(pred_fields[:, t - 1, f], true_fields[:, t - 1, f])
    total = weights.mean * c_mean + weights.logvar * c_var + weights.multi_step * multi
    return {"consistency_mean": c_mean, "consistency_logvar": c_var, "multi_step": multi,
            "total": total}
