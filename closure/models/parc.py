"""PARCv2-style baseline (Nguyen et al., ICML 2024): differentiator + numerical integrator.

The *differentiator* maps the state (normalized T, P, mu) to its time derivative. A feature U-Net
reads the state; per field, heads turn the features into a velocity-like field u (2 components),
a diffusivity D >= 0 and a source term s, and the derivative is the advection-diffusion-reaction
form the PARCv2 paper builds in as inductive bias::

    d(phi)/dt = -(u . grad phi)_upwind + D * lap(phi) + s

with first-order upwind gradients (stable for the sharp shock and pore fronts of this problem)
and the 5-point Laplacian. The data carry no velocity, so u is learned (as in the brief).
The *integrator* advances one data step with an explicit Runge-Kutta scheme (Euler, Heun or
RK4) in ``substeps`` sub-steps; time is in units of the data dt and space in cells. An optional
data-driven correction U-Net (PARCv2's hybrid integrator) adds a learned correction to the
numerical update. Trained on meso data only, it predicts the same fields as the latent model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from closure.models.unet import UNet
from closure.normalization import CHANNELS

__all__ = ["PARCDifferentiator", "PARCIntegrator", "PARCv2", "laplacian", "upwind_advection"]

_PAD = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect",
        "circular": "circular"}


def _pad1(x: torch.Tensor, padding_mode: str) -> torch.Tensor:
    return F.pad(x, (1, 1, 1, 1), mode=_PAD[padding_mode])


def upwind_advection(phi: torch.Tensor, u: torch.Tensor, padding_mode: str = "replicate",
                     ) -> torch.Tensor:
    """First-order upwind ``u . grad(phi)`` in cell units; phi (B, C, H, W), u (B, 2C, H, W).

    ``u[:, 2i]`` is the x (W-axis) and ``u[:, 2i+1]`` the y (H-axis) component for channel i.
    """
    p = _pad1(phi, padding_mode)
    c = p[..., 1:-1, 1:-1]
    dxm, dxp = c - p[..., 1:-1, :-2], p[..., 1:-1, 2:] - c
    dym, dyp = c - p[..., :-2, 1:-1], p[..., 2:, 1:-1] - c
    ux, uy = u[:, 0::2], u[:, 1::2]
    return (torch.clamp(ux, min=0) * dxm + torch.clamp(ux, max=0) * dxp
            + torch.clamp(uy, min=0) * dym + torch.clamp(uy, max=0) * dyp)


def laplacian(phi: torch.Tensor, padding_mode: str = "replicate") -> torch.Tensor:
    """5-point Laplacian in cell units."""
    p = _pad1(phi, padding_mode)
    return (p[..., 1:-1, :-2] + p[..., 1:-1, 2:] + p[..., :-2, 1:-1] + p[..., 2:, 1:-1]
            - 4.0 * p[..., 1:-1, 1:-1])


class PARCDifferentiator(nn.Module):
    """State (B, C, H, W) -> time derivative (B, C, H, W) in advection-diffusion-reaction form."""

    def __init__(self, channels: int = len(CHANNELS), base_channels: int = 16, depth: int = 3,
                 reps: int = 2, features: int = 32, padding_mode: str = "replicate") -> None:
        super().__init__()
        self.channels = channels
        self.padding_mode = padding_mode
        self.features = UNet(channels, features, base=base_channels, depth=depth, reps=reps,
                             dropout=0.0, padding_mode=padding_mode)
        self.velocity = nn.Conv2d(features, 2 * channels, 1)
        self.diffusivity = nn.Conv2d(features, channels, 1)
        self.source = nn.Conv2d(features, channels, 1)
        for head in (self.velocity, self.diffusivity, self.source):  # start near d/dt = 0
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)
        nn.init.constant_(self.diffusivity.bias, -4.0)

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The advection, diffusion and source terms (for inspection and tests)."""
        f = F.leaky_relu(self.features(x), 0.2)
        u = self.velocity(f)
        D = F.softplus(self.diffusivity(f))
        return {"advection": upwind_advection(x, u, self.padding_mode),
                "diffusion": D * laplacian(x, self.padding_mode),
                "source": self.source(f), "velocity": u, "diffusivity": D}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.terms(x)
        return -t["advection"] + t["diffusion"] + t["source"]


_TABLEAUS = {"euler": ([], [1.0]), "heun": ([[1.0]], [0.5, 0.5]),
             "rk4": ([[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6])}


class PARCIntegrator(nn.Module):
    """Explicit Runge-Kutta over one data step (dt = 1) in ``substeps`` sub-steps, + correction."""

    def __init__(self, method: str = "heun", substeps: int = 2,
                 correction: nn.Module | None = None) -> None:
        super().__init__()
        if method not in _TABLEAUS:
            raise ValueError(f"integrator method must be one of {sorted(_TABLEAUS)}, "
                             f"got {method!r}")
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.method, self.substeps = method, substeps
        self.correction = correction

    def forward(self, f: nn.Module, x: torch.Tensor) -> torch.Tensor:
        a, b = _TABLEAUS[self.method]
        h = 1.0 / self.substeps
        y = x
        for _ in range(self.substeps):
            ks = [f(y)]
            for row in a:
                ks.append(f(y + h * sum(c * k for c, k in zip(row, ks, strict=False))))
            y = y + h * sum(c * k for c, k in zip(b, ks, strict=True))
        if self.correction is not None:
            y = y + self.correction(torch.cat([x, y - x], 1))
        return y


class PARCv2(nn.Module):
    """Differentiator + integrator; ``forward(x0, n)`` rolls out (B, n+1, C, H, W)."""

    def __init__(self, channels: int = len(CHANNELS), base_channels: int = 16, depth: int = 3,
                 reps: int = 2, features: int = 32, integrator: str = "heun", substeps: int = 2,
                 correction: bool = False, padding_mode: str = "replicate") -> None:
        super().__init__()
        self.channels = channels
        self.differentiator = PARCDifferentiator(channels, base_channels, depth, reps, features,
                                                 padding_mode)
        corr = None
        if correction:
            corr = UNet(2 * channels, channels, base=base_channels, depth=2, reps=1, dropout=0.0,
                        padding_mode=padding_mode, zero_init_output=True)
        self.integrator = PARCIntegrator(integrator, substeps, corr)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Advance the normalized fields (B, C, H, W) by one data step."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"PARC state must be (B, {self.channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return self.integrator(self.differentiator, x)

    def forward(self, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
        xs = [x0]
        for _ in range(n_steps):
            xs.append(self.step(xs[-1]))
        return torch.stack(xs, 1)
