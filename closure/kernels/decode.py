"""T tokens to hotspot statistics: the fused decoder head and the restructured decoder body.

The C++ path re-implements :meth:`closure.models.vae.FieldVAE.decode` from the VAE's own
:meth:`~closure.models.vae.FieldVAE.decoder_plan` (layers, up-sampling, LeakyReLU slopes), so
a decoder of another depth, width or slope is followed, and a layer the kernels cannot express
is a clear ``ValueError`` rather than a silent mismatch.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from closure.kernels.dispatch import (
    Backend,
    _module,
    as_backend,
    full_float32,
    gpu_kernel,
    on_gpu,
    run,
    stream,
)
from closure.kernels.layout import (
    _direct_weights,
    _mix_weights,
    _np,
    _plain3x3,
    _winograd_weights,
    parameter_stamp,
)

__all__ = ["decode_hotspots", "hotspot_head", "hotspot_head_torch"]

#: the decoder body's 3x3 convs at one resolution run as Winograd units from this many input x
#: output channels on (the default decoder's 128 x 128 unit at 32x48)
_WINO_MIN_CHANNELS = 64 * 64

_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------------------------
# fused decoder head + threshold + per-cell reduction

def hotspot_head_torch(h: np.ndarray | torch.Tensor, weight: np.ndarray | torch.Tensor,
                       bias: float, lo: float, hi: float, thr: float,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Pure-PyTorch reference of :func:`hotspot_head`: (count int64 (B,), sum of T float64)."""
    with torch.inference_mode():
        x = torch.as_tensor(h, dtype=torch.float32)
        C = x.shape[1]
        w = torch.as_tensor(weight, dtype=torch.float32, device=x.device).reshape(1, C, 3, 3)
        bias_t = torch.tensor([float(bias)], dtype=torch.float32, device=x.device)
        v = F.conv2d(x, w, bias_t, padding=1)[:, 0]
        T = v * np.float32(hi - lo) + np.float32(lo)
        hot = T > np.float32(thr)
        count = hot.flatten(1).sum(1).to(torch.int64)
        s = torch.where(hot, T.double(), 0.0).flatten(1).sum(1)
        return count.cpu().numpy(), s.cpu().numpy()


def hotspot_head(h: np.ndarray | torch.Tensor, weight: np.ndarray | torch.Tensor, bias: float,
                 lo: float, hi: float, thr: float, *, backend: Backend | str | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Hotspot cell count (B,) and sum of hotspot T (B,) of the decoded T field.

    ``h`` (B, C, H, W) float32 is the input of the T decoder's output conv (``dec_out``),
    ``weight`` its (1, C, 3, 3) kernel, ``bias`` its bias; ``lo``/``hi`` the T normalization
    range (K) and ``thr`` the hotspot threshold (K). A CUDA tensor ``h`` is reduced on its GPU
    (backends ``cuda`` and ``torch``; ``cpp`` copies it to the host).
    """
    be = as_backend(backend)
    if on_gpu(h) and be.name != "cpp":
        return _hotspot_head_gpu(h, weight, bias, lo, hi, thr, be)
    if be.name == "torch":
        return hotspot_head_torch(h, weight, bias, lo, hi, thr)
    x = h.detach().cpu().numpy() if isinstance(h, torch.Tensor) else h
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else weight
    x = np.ascontiguousarray(x, np.float32)
    w = np.ascontiguousarray(w, np.float32).reshape(-1)
    return run("hotspot_head", be, hotspot_head_torch,
               (x, w, float(bias), float(lo), float(hi), float(thr)))


def _hotspot_head_gpu(h: torch.Tensor, weight: torch.Tensor | np.ndarray, bias: float, lo: float,
                      hi: float, thr: float, be: Backend) -> tuple[np.ndarray, np.ndarray]:
    dev = h.device
    x = h.detach().to(torch.float32).contiguous()  # NCHW, whatever layout the decoder left
    B, C, H, W = x.shape
    w = torch.as_tensor(weight).detach().to(dev, torch.float32).reshape(-1).contiguous()
    if w.numel() != C * 9:
        raise ValueError(f"weight must have C*3*3 = {C * 9} elements, got {w.numel()}")

    def launch() -> tuple[np.ndarray, np.ndarray]:
        count = torch.empty(B, dtype=torch.int64, device=dev)
        total = torch.empty(B, dtype=torch.float64, device=dev)
        _module("cuda").hotspot_head_dev(x.data_ptr(), w.data_ptr(), float(bias), float(lo),
                                         float(hi), float(thr), B, C, H, W, count.data_ptr(),
                                         total.data_ptr(), stream(x))
        return count.cpu().numpy(), total.cpu().numpy()

    def reference() -> tuple[np.ndarray, np.ndarray]:
        with full_float32():
            return hotspot_head_torch(x, w, bias, lo, hi, thr)

    return gpu_kernel("hotspot_head", be, launch, reference)


# ---------------------------------------------------------------------------------------------
# restructured decoder body (C++ backend)

def _check_plan(plan: Any) -> None:
    """A :class:`~closure.models.vae.DecoderPlan` the C++ decode can follow, else ValueError."""
    if not plan.blocks:
        raise ValueError("decoder plan has no blocks; the compiled decode needs at least one")
    slopes = [("input_slope", plan.input_slope)]
    for i, block in enumerate(plan.blocks):
        for k, unit in enumerate(block.units):
            if not all(hasattr(unit, a) for a in ("conv", "mix", "slope")):
                raise ValueError(f"decoder plan: block {i} unit {k} is a {type(unit).__name__}, "
                                 "not a ConvUnit (conv, LeakyReLU, 1x1 mix, LeakyReLU); the "
                                 "compiled decode cannot follow it (use backend 'torch')")
            slopes.append((f"block {i} unit {k} slope", unit.slope))
    for where, s in slopes:
        if not math.isfinite(float(s)):
            raise ValueError(f"decoder plan: {where} = {s!r} is not finite")


def _prepare(vae: torch.nn.Module) -> dict[str, Any]:
    """Re-laid-out weights of ``vae``'s decoder, walked from its decoder plan, for the C++ body;
    cached per module (rebuilt when a parameter changes). ``units`` lists (block, unit index,
    entry) with entry ``kind`` "upconv" (3x3 conv behind the block's up-sampling), "winograd"
    (wide 3x3 conv at one resolution) or "torch" (the module itself), ``upsampled`` and the
    unit's ``slope``; ``last`` is the fused last level + head, when the plan ends in one."""
    stamp = parameter_stamp(vae)
    hit = _prepared.get(vae)
    if hit is not None and hit["stamp"] == stamp:
        return hit
    plan = vae.decoder_plan()
    _check_plan(plan)
    units = []
    for i, block in enumerate(plan.blocks):
        for k, unit in enumerate(block.units):
            conv = unit.conv
            up = bool(block.upsample and k == 0)
            u: dict[str, Any] = {"unit": unit, "kind": "torch", "upsampled": up,
                                 "slope": float(unit.slope)}
            if _plain3x3(conv):
                w = conv.weight.detach().float().cpu()
                co, ci = w.shape[:2]
                if up:  # behind the up-sampling: per-tap mixes, tap-major rows
                    wm, bm = _mix_weights(unit)
                    u.update(kind="upconv", bias=_np(conv.bias),
                             w9T=_np(w.permute(1, 2, 3, 0).reshape(ci, 9 * co)), wm=wm, bm=bm)
                elif ci * co >= _WINO_MIN_CHANNELS:
                    wm, bm = _mix_weights(unit)
                    u.update(kind="winograd", bias=_np(conv.bias), u=_winograd_weights(w),
                             wm=wm, bm=bm)
            units.append((i, k, u))
    last = None
    block, out = plan.blocks[-1], plan.dec_out
    if (not block.upsample and len(block.units) == 1 and _plain3x3(block.units[0].conv)
            and _plain3x3(out) and out.out_channels == 1):
        unit = block.units[0]
        wm, bm = _mix_weights(unit)
        last = {"u": _winograd_weights(unit.conv.weight), "b3": _np(unit.conv.bias),
                "wm": wm, "bm": bm, "slope": float(unit.slope),
                "wh": _np(out.weight[0].permute(1, 2, 0)), "bh": float(out.bias.detach()[0])}
    dec_in = _direct_weights(plan.dec_in) if _plain3x3(plan.dec_in) else None
    hit = {"stamp": stamp, "units": units, "last": last, "dec_in": dec_in,
           "input_slope": float(plan.input_slope), "plan": plan}
    _prepared[vae] = hit
    return hit


def _conv_unit_cpp(x: torch.Tensor, u: dict[str, Any]) -> torch.Tensor:
    """One ConvUnit (after the bilinear x2 up-sampling when ``upsampled``) on the C++ kernels."""
    mod = _module("cpp")
    if u["kind"] == "upconv":
        return torch.from_numpy(mod.upconv3x3_unit(x.numpy(), u["w9T"], u["bias"], u["wm"],
                                                   u["bm"], u["slope"]))
    if u["upsampled"]:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    if u["kind"] == "winograd":
        return torch.from_numpy(mod.winograd_unit(np.ascontiguousarray(x.numpy()), u["u"],
                                                  u["bias"], u["wm"], u["bm"], u["slope"]))
    return u["unit"](x)


def _decode_cpp(vae: torch.nn.Module, z: torch.Tensor, lo: float, hi: float, thr: float,
                ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Hotspot (count, sum of T, grid) of ``vae.decode(z)`` with the restructured C++ body."""
    prep = _prepare(vae)
    plan = prep["plan"]
    mod = _module("cpp")
    z = z.float().cpu().contiguous()
    if prep["dec_in"] is not None:
        h = torch.from_numpy(mod.conv3x3_act(z.numpy(), *prep["dec_in"], prep["input_slope"]))
    else:
        h = F.leaky_relu(plan.dec_in(z), prep["input_slope"])
    units, last = prep["units"], prep["last"]
    n_body = len(units) - (1 if last is not None else 0)
    # the last level behind an up-sampling ConvUnit: both and the head in one streaming kernel
    # (which takes one slope for both)
    fuse = (last is not None and n_body > 0 and units[n_body - 1][2]["kind"] == "upconv"
            and units[n_body - 1][2]["slope"] == last["slope"])
    for _, _, u in units[:n_body - 1 if fuse else n_body]:
        h = _conv_unit_cpp(h.contiguous(), u)
    if fuse:
        u = units[n_body - 1][2]
        count, s = mod.upconv_last_hotspots(
            np.ascontiguousarray(h.numpy()), u["w9T"], u["bias"], u["wm"], u["bm"], last["u"],
            last["b3"], last["wm"], last["bm"], last["wh"], last["bh"], last["slope"], lo, hi,
            thr)
        return count, s, (2 * h.shape[-2], 2 * h.shape[-1])
    if last is not None:
        count, s = mod.last_level_hotspots(np.ascontiguousarray(h.numpy()), last["u"],
                                           last["b3"], last["wm"], last["bm"], last["wh"],
                                           last["bh"], last["slope"], lo, hi, thr)
        return count, s, tuple(h.shape[-2:])
    out = plan.dec_out
    count, s = hotspot_head(h, out.weight.detach(), float(out.bias.detach()[0]), lo, hi, thr,
                            backend="cpp")
    return count, s, tuple(h.shape[-2:])


def decode_hotspots(vae: torch.nn.Module, z: torch.Tensor, lo: float, hi: float, thr: float, *,
                    backend: Backend | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hotspot area fraction and mean hotspot T (K) (float64 (B,)) of T-field tokens ``z``.

    ``vae`` is the T field's :class:`closure.models.vae.FieldVAE`. ``T_hs`` is ``thr`` where no
    cell is hot (the convention of :mod:`closure.metrics`). Per backend:

    * ``torch``: ``vae``'s own decoder (:meth:`~closure.models.vae.FieldVAE.decode_features`),
      then the output conv, threshold and reduction (:func:`hotspot_head_torch`).
    * ``cpp``: the same function restructured (csrc/decoder_body.cpp), walked from the VAE's
      decoder plan: each 3x3 conv behind a bilinear x2 up-sampling mixes channels at the coarse
      resolution and the kernel up-samples and sums the nine taps (a quarter of the products);
      wide 3x3 convs at one resolution run as Winograd F(2x2, 3x3); the input conv is a direct
      conv; the last up-sampling ConvUnit, the last ConvUnit (Winograd), the output conv, the
      de-normalization, threshold and reduction are one kernel streaming down the image, with
      no full-resolution temporary. Agrees with ``torch`` to float32 round-off (relative ~1e-6).
    * ``cuda``: with ``vae`` on a GPU, its decoder in PyTorch there (cuDNN in full float32,
      :func:`full_float32`) and the fused head as the CUDA kernel on the device buffers; with
      ``vae`` on the CPU, the decoder on the CPU and the head on the GPU (under ``auto``, a
      decoder on the CPU takes the ``cpp`` path instead).

    ``z`` is moved to ``vae``'s device (the C++ backend works on the host).
    """
    be = as_backend(backend)
    out_conv = vae.dec_out
    fused = out_conv.padding_mode == "zeros" and out_conv.kernel_size == (3, 3)
    dev = out_conv.weight.device
    # a decoder on the CPU would run in PyTorch there and only its head on the GPU: the C++
    # decode is faster (closure_gpu.json "kernels": 35 vs 118 ms for 16 patches)
    b = "cpp" if dev.type == "cpu" and be.auto_cuda else be.name
    with torch.inference_mode(), full_float32():
        if b == "cpp" and fused:
            count, s, (H, W) = _decode_cpp(vae, z.cpu(), lo, hi, thr)
        else:
            # channels-last: PyTorch's CPU convolutions and bilinear up-sampling run it without
            # layout conversions (online_breakdown.json: "nchw_s" vs "decode_s")
            # channels-last on the GPU too (gpu_variants.json: decode 1.4x faster than NCHW)
            z = z.to(dev).contiguous(memory_format=torch.channels_last)
            hh = vae.decode_features(z)
            H, W = hh.shape[-2:]
            if fused:
                count, s = hotspot_head(hh, out_conv.weight.detach(),
                                        float(out_conv.bias.detach()[0]), lo, hi, thr,
                                        backend=be)
            else:  # padding modes the fused kernel does not implement
                T = out_conv(hh)[:, 0] * np.float32(hi - lo) + np.float32(lo)
                hot = T > np.float32(thr)
                count = hot.flatten(1).sum(1).to(torch.int64).cpu().numpy()
                s = torch.where(hot, T.double(), 0.0).flatten(1).sum(1).cpu().numpy()
    count = np.asarray(count, np.int64)
    area = count / float(H * W)
    t_hs = np.where(count > 0, np.asarray(s) / np.maximum(count, 1), float(thr))
    return area, t_hs
