"""Latent U-Nets of the dynamics on the C++ backend: one kernel per batch
(``csrc/latent_unet.cpp``: direct 3x3 convs, pooling, up-sampling and skips on buffers held in
cache)."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from closure.kernels.dispatch import Backend, _module, as_backend
from closure.kernels.layout import _direct_weights, _mix_weights, _np, _plain3x3, parameter_stamp

__all__ = ["unet_forward"]

_unets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unet_unit(unit: torch.nn.Module) -> tuple | None:
    conv, mix = unit.conv, unit.mix
    if not (_plain3x3(conv) and mix.kernel_size == (1, 1) and mix.bias is not None):
        return None
    return (*_direct_weights(conv), *_mix_weights(unit))


def _prepare_unet(net: torch.nn.Module) -> dict[str, Any] | None:
    """Re-laid-out weights of a :class:`closure.models.unet.UNet` for ``unet_forward`` (None when
    a layer is not one the kernel implements, or the units' LeakyReLU slopes differ: the kernel
    takes one), cached per module, rebuilt when a parameter changes."""
    stamp = parameter_stamp(net)
    hit = _unets.get(net)
    if hit is not None and hit["stamp"] == stamp:
        return hit["w"]
    units = [u for block in (*net.down, *net.up) for u in block]
    blocks = [[_unet_unit(u) for u in block] for block in (*net.down, *net.up)]
    slopes = {float(getattr(u, "slope", float("nan"))) for u in units}
    out = net.out
    ok = (all(u is not None for b in blocks for u in b) and len(slopes) == 1
          and out.kernel_size == (1, 1) and out.bias is not None and out.groups == 1)
    w = None
    if ok:
        n_down = len(net.down)
        w = {"down": blocks[:n_down], "up": blocks[n_down:],
             "wo": _np(out.weight[:, :, 0, 0].t()), "bo": _np(out.bias), "slope": slopes.pop()}
    _unets[net] = {"stamp": stamp, "w": w}
    return w


def unet_forward(net: torch.nn.Module, x: torch.Tensor, *,
                 backend: Backend | str | None = None) -> torch.Tensor:
    """``net(x)`` for a latent :class:`closure.models.unet.UNet` in eval mode, on a backend:
    ``cpp`` runs the whole network per sample in one C++ kernel and returns a contiguous NCHW
    float32 tensor; other backends, training mode, autograd and layers the kernel does not
    implement (padding modes other than zeros) run the module."""
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in net.parameters()))
    if as_backend(backend).name != "cpp" or net.training or needs_grad:
        return net(x)
    w = _prepare_unet(net)
    if w is None:
        return net(x)
    if x.ndim != 4 or x.shape[1] != net.c_in:
        raise ValueError(f"UNet expects (B, {net.c_in}, H, W), got {tuple(x.shape)}")
    xs = np.ascontiguousarray(x.detach().float().cpu().numpy())
    return torch.from_numpy(_module("cpp").unet_forward(xs, w["down"], w["up"], w["wo"],
                                                        w["bo"], w["slope"]))
