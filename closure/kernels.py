"""Python side of the compiled closure kernels (csrc/): dispatch CUDA -> C++ -> pure PyTorch.

Three kernels, each with a pure-PyTorch reference here and compiled versions in
``csrc/closure_kernels.cpp`` (module ``closure._kernels_cpp``, OpenMP) and
``csrc/closure_kernels.cu`` (module ``closure._kernels_cuda``, built only when nvcc is found):

* :func:`sample_latent` -- reparameterized latent sample ``z = mean + exp(logvar / 2) * eps``
  with a counter-based normal ``eps`` = f(seed, cell id, step, element) (splitmix64 hash +
  Box-Muller in float64, formula in ``csrc/closure_kernels.h``): a cell's sample does not depend
  on the other cells of the batch, and a seed reproduces it on every backend.
* :func:`hotspot_head` -- the T decoder's final stage fused with de-normalization, the hotspot
  threshold and the per-cell reduction: 3x3 conv (C -> 1, zero padding) + bias in float32,
  ``T = v (hi - lo) + lo``, count and sum of ``T`` over ``T > threshold`` (float64 sums).
* :func:`table_lookup` -- table mode: bilinear interpolation in (Ps, t) and the MES-IG rate.
* :func:`decode_hotspots` -- T tokens to hotspot statistics; on the C++ backend the decoder
  body runs restructured on the kernels of ``csrc/decoder_body.cpp`` (up-sampling convs mixed
  at the coarse resolution, Winograd, fused last level + head), see its docstring.
* :func:`unet_forward` -- a latent U-Net of the dynamics; on the C++ backend one kernel per
  batch (``csrc/latent_unet.cpp``).

Backend choice: the ``backend`` argument, else the environment variable ``CLOSURE_KERNELS``
(``auto`` | ``cuda`` | ``cpp`` | ``torch``), else ``auto`` = CUDA if the module imports and sees
a GPU, then C++, then PyTorch. An explicitly requested backend that is not available raises
``ValueError``; under ``auto`` a CUDA runtime failure warns once and falls back to C++, and
work on host data that the CPU does faster stays on C++ (table lookups of fewer than
``CUDA_TABLE_MIN_BATCH`` cells, decodes with the decoder on the CPU).
The backends agree to a relative error <= 1e-5 in float32 (tests/test_closure_kernels.py); the
hotspot count can differ only by cells whose T lies within float32 round-off of the threshold.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
import weakref
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "BACKENDS",
    "advance_cells",
    "CUDA_TABLE_MIN_BATCH",
    "ENV_VAR",
    "available_backends",
    "decode_hotspots",
    "full_float32",
    "hotspot_head",
    "hotspot_head_torch",
    "parameter_stamp",
    "resolve_backend",
    "sample_latent",
    "sample_latent_torch",
    "table_lookup",
    "table_lookup_torch",
    "table_step",
    "table_step_reference",
    "unet_forward",
]

BACKENDS = ("cuda", "cpp", "torch")
ENV_VAR = "CLOSURE_KERNELS"
#: under ``auto`` with a GPU, table lookups of fewer cells run on the C++ kernel: the table
#: kernel on host arrays is bound by the copies (benchmarks/results/closure_gpu.json, H200 and
#: 16 cores: CUDA 1.1e7 vs C++ 2.0e7 cell-queries/s at 4096 cells, 2.4e7 vs 2.4e7 at 16384,
#: 4.0e7 vs 2.4e7 at 65536)
CUDA_TABLE_MIN_BATCH = 16384

_mods: dict[str, Any] = {}
_cuda_broken = False


def _module(name: str) -> Any | None:
    if name not in _mods:
        try:
            _mods[name] = importlib.import_module(f"closure._kernels_{name}")
        except ImportError:
            _mods[name] = None
    return _mods[name]


def _cuda_ok() -> bool:
    mod = _module("cuda")
    if mod is None or _cuda_broken:
        return False
    try:
        return mod.device_count() > 0
    except Exception:  # noqa: BLE001 - any driver problem means: no CUDA
        return False


def available_backends() -> list[str]:
    """Backends usable here, fastest first (``torch`` is always available)."""
    out = []
    if _cuda_ok():
        out.append("cuda")
    if _module("cpp") is not None:
        out.append("cpp")
    out.append("torch")
    return out


def resolve_backend(backend: str | None = None) -> str:
    """The backend to use: ``backend``, else ``$CLOSURE_KERNELS``, else the fastest available."""
    choice = backend if backend is not None else os.environ.get(ENV_VAR, "auto")
    if not isinstance(choice, str):
        raise TypeError(f"backend must be a str or None, got {type(choice).__name__}")
    choice = choice.strip().lower() or "auto"
    where = "backend" if backend is not None else f"${ENV_VAR}"
    if choice == "auto":
        return available_backends()[0]
    if choice not in BACKENDS:
        raise ValueError(f"{where} = {choice!r} is not one of {['auto', *BACKENDS]}")
    if choice not in available_backends():
        raise ValueError(f"{where} = {choice!r} is not available here (available: "
                         f"{available_backends()})")
    return choice


def _explicit(backend: str | None) -> bool:
    """Whether a backend was named (argument or environment) rather than left to ``auto``."""
    choice = backend if backend is not None else os.environ.get(ENV_VAR, "auto")
    return not (isinstance(choice, str) and choice.strip().lower() in ("", "auto"))


def _auto_cuda(backend: str | None) -> bool:
    """Whether ``backend`` leaves the choice to ``auto`` and that picks CUDA while the C++ module
    is there too: then work on host data that is cheaper on the CPU goes to C++."""
    return (not _explicit(backend) and resolve_backend(backend) == "cuda"
            and _module("cpp") is not None)


def _run(kernel: str, backend: str | None, torch_fn, args: tuple) -> Any:
    """Call ``kernel`` on the resolved backend; under auto, a CUDA failure falls back to C++."""
    global _cuda_broken
    b = resolve_backend(backend)
    if b == "torch":
        return torch_fn(*args)
    try:
        return getattr(_module(b), kernel)(*args)
    except RuntimeError as exc:
        if b != "cuda" or _explicit(backend):
            raise
        _cuda_broken = True
        warnings.warn(f"CUDA kernel {kernel} failed ({exc}); using the C++ kernels from now on",
                      RuntimeWarning, stacklevel=3)
        return _run(kernel, "cpp" if _module("cpp") is not None else "torch", torch_fn, args)


# ---------------------------------------------------------------------------------------------
# counter-based normal variates (same bits as csrc/closure_kernels.h)

_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _s64(x: int) -> int:
    """uint64 constant as the int64 with the same bits."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    z = (z ^ _srl(z, 30)) * _s64(_M1)
    z = (z ^ _srl(z, 27)) * _s64(_M2)
    return z ^ _srl(z, 31)


def normal_torch(seed: int, cell_ids: torch.Tensor, steps: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) float64 standard normals of cells ``cell_ids`` at ``steps`` (reference)."""
    s = torch.full_like(cell_ids, _s64(int(seed) ^ _GOLDEN))
    key = _mix(_mix(_mix(s) ^ cell_ids) ^ steps)[:, None]
    e = torch.arange(n, dtype=torch.int64, device=cell_ids.device)[None, :]
    h1 = _mix(key + (2 * e + 1) * _s64(_GOLDEN))
    h2 = _mix(key + (2 * e + 2) * _s64(_GOLDEN))
    two53 = 2.0 ** -53
    u1 = (_srl(h1, 11) + 1).double() * two53
    u2 = _srl(h2, 11).double() * two53
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * np.pi * u2)


def sample_latent_torch(mean: np.ndarray, logvar: np.ndarray, seed: int, cell_ids: np.ndarray,
                        steps: np.ndarray) -> np.ndarray:
    """Pure-PyTorch reference of :func:`sample_latent` ((B, E) float32 arrays)."""
    m = torch.as_tensor(np.ascontiguousarray(mean, np.float32))
    v = torch.as_tensor(np.ascontiguousarray(logvar, np.float32))
    ids = torch.as_tensor(np.ascontiguousarray(cell_ids, np.int64))
    st = torch.as_tensor(np.ascontiguousarray(steps, np.int64))
    eps = normal_torch(seed, ids, st, m.shape[1]).float()
    return (m + torch.exp(0.5 * v) * eps).numpy()


def sample_latent(mean: np.ndarray | torch.Tensor, logvar: np.ndarray | torch.Tensor, seed: int,
                  cell_ids: np.ndarray, steps: np.ndarray, *, backend: str | None = None,
                  ) -> np.ndarray | torch.Tensor:
    """Latent sample (B, E) float32 for cells ``cell_ids`` at ``steps``; ``seed`` in [0, 2^64).

    ``mean`` and ``logvar`` on the GPU (CUDA tensors) give a CUDA tensor, computed there (the
    CUDA kernel, or the PyTorch reference under backend ``torch``); numpy in, numpy out."""
    seed = int(seed)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if _on_gpu(mean):
        return _sample_latent_gpu(mean, logvar, seed, cell_ids, steps, backend)
    mean = np.ascontiguousarray(mean, np.float32).reshape(len(mean), -1)
    logvar = np.ascontiguousarray(logvar, np.float32).reshape(len(logvar), -1)
    ids = np.ascontiguousarray(cell_ids, np.int64)
    st = np.ascontiguousarray(steps, np.int64)
    return _run("sample_latent", backend, sample_latent_torch, (mean, logvar, seed, ids, st))


# ---------------------------------------------------------------------------------------------
# tensors on the GPU (backend cuda with the models on the device): device pointers, no copies

def _on_gpu(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_cuda


def _stream(t: torch.Tensor) -> int:
    return torch.cuda.current_stream(t.device).cuda_stream


@contextlib.contextmanager
def full_float32():
    """cuDNN convolutions in full float32 inside the block: PyTorch lets them use TF32 by default
    on Ampere and later (~1e-3 relative), far from the backends' 1e-5 agreement."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer PyTorch deprecates the flag in favour of another
        was = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32 = was


def _gpu_kernel(kernel: str, backend: str | None, launch, reference):
    """``launch()`` on the CUDA backend, else (or, under auto, after a CUDA failure) the
    PyTorch ``reference()`` on the same device."""
    global _cuda_broken
    b = resolve_backend(backend)
    if b == "cuda":
        try:
            return launch()
        except RuntimeError as exc:
            if _explicit(backend):
                raise
            _cuda_broken = True
            warnings.warn(f"CUDA kernel {kernel} failed ({exc}); using PyTorch from now on",
                          RuntimeWarning, stacklevel=3)
    return reference()


def _sample_latent_gpu(mean: torch.Tensor, logvar: torch.Tensor, seed: int, cell_ids: Any,
                       steps: Any, backend: str | None) -> torch.Tensor:
    dev = mean.device
    m = mean.detach().reshape(len(mean), -1).to(torch.float32).contiguous()
    v = logvar.detach().reshape(len(logvar), -1).to(dev, torch.float32).contiguous()
    if v.shape != m.shape:
        raise ValueError(f"mean and logvar must have the same shape, got {tuple(m.shape)} and "
                         f"{tuple(v.shape)}")
    ids = torch.as_tensor(np.ascontiguousarray(cell_ids, np.int64)).to(dev)
    st = torch.as_tensor(np.ascontiguousarray(steps, np.int64)).to(dev)
    if ids.shape != (len(m),) or st.shape != (len(m),):
        raise ValueError(f"cell_ids and steps must have shape ({len(m)},), got "
                         f"{tuple(ids.shape)} and {tuple(st.shape)}")
    B, E = m.shape

    def launch() -> torch.Tensor:
        out = torch.empty_like(m)
        _module("cuda").sample_latent_dev(m.data_ptr(), v.data_ptr(), seed, ids.data_ptr(),
                                          st.data_ptr(), out.data_ptr(), B, E, _stream(m))
        return out

    def reference() -> torch.Tensor:
        return m + torch.exp(0.5 * v) * normal_torch(seed, ids, st, E).float()

    if resolve_backend(backend) == "cpp":  # the C++ kernel works on host memory
        return torch.from_numpy(sample_latent(m.cpu().numpy(), v.cpu().numpy(), seed,
                                              ids.cpu().numpy(), st.cpu().numpy(),
                                              backend="cpp")).to(dev)
    return _gpu_kernel("sample_latent", backend, launch, reference)


def _hotspot_head_gpu(h: torch.Tensor, weight: torch.Tensor | np.ndarray, bias: float, lo: float,
                      hi: float, thr: float, backend: str | None,
                      ) -> tuple[np.ndarray, np.ndarray]:
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
                                         total.data_ptr(), _stream(x))
        return count.cpu().numpy(), total.cpu().numpy()

    def reference() -> tuple[np.ndarray, np.ndarray]:
        with full_float32():
            return hotspot_head_torch(x, w, bias, lo, hi, thr)

    return _gpu_kernel("hotspot_head", backend, launch, reference)


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
                 lo: float, hi: float, thr: float, *, backend: str | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Hotspot cell count (B,) and sum of hotspot T (B,) of the decoded T field.

    ``h`` (B, C, H, W) float32 is the input of the T decoder's output conv (``dec_out``),
    ``weight`` its (1, C, 3, 3) kernel, ``bias`` its bias; ``lo``/``hi`` the T normalization
    range (K) and ``thr`` the hotspot threshold (K). A CUDA tensor ``h`` is reduced on its GPU
    (backends ``cuda`` and ``torch``; ``cpp`` copies it to the host).
    """
    b = resolve_backend(backend)
    if _on_gpu(h) and b != "cpp":
        return _hotspot_head_gpu(h, weight, bias, lo, hi, thr, backend)
    if b == "torch":
        return hotspot_head_torch(h, weight, bias, lo, hi, thr)
    x = h.detach().cpu().numpy() if isinstance(h, torch.Tensor) else h
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else weight
    x = np.ascontiguousarray(x, np.float32)
    w = np.ascontiguousarray(w, np.float32).reshape(-1)
    return _run("hotspot_head", backend, hotspot_head_torch,
                (x, w, float(bias), float(lo), float(hi), float(thr)))


# ---------------------------------------------------------------------------------------------
# restructured decoder body (C++ backend)

#: LeakyReLU slope of :class:`closure.models.blocks.ConvUnit`
_SLOPE = 0.2
#: Winograd F(2x2, 3x3) weight transform G (float64; U = G g G^T)
_WINO_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]],
                       dtype=torch.float64)
#: the decoder body's 3x3 convs at one resolution run as Winograd units from this many input x
#: output channels on (the default decoder's 128 x 128 unit at 32x48)
_WINO_MIN_CHANNELS = 64 * 64

_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plain3x3(conv: torch.nn.Conv2d) -> bool:
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.bias is not None)


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), np.float32)


def parameter_stamp(module: torch.nn.Module) -> tuple:
    """Identity and version of ``module``'s parameters: what is derived from the weights
    (re-laid-out copies, a copy on the GPU) is rebuilt when it changes (inference tensors have
    no version counter: their storage identity stands in)."""
    return tuple((p.data_ptr(), -1 if p.is_inference() else p._version)
                 for p in module.parameters())


def _mix_weights(unit: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """A ConvUnit's 1x1 conv as the kernels take it: (C_in, C_out) weights and bias."""
    return _np(unit.mix.weight[:, :, 0, 0].t()), _np(unit.mix.bias)


def _direct_weights(conv: torch.nn.Conv2d) -> tuple[np.ndarray, np.ndarray]:
    """A 3x3 conv as the direct-convolution kernels take it: (9 C_in, C_out) weights as
    [c 9 + ky 3 + kx][c_out], and the bias."""
    return (_np(conv.weight.permute(1, 2, 3, 0).reshape(-1, conv.out_channels)),
            _np(conv.bias))


def _winograd_weights(w: torch.Tensor) -> np.ndarray:
    """Winograd F(2x2, 3x3) transform U = G g G^T of 3x3 kernels w (O, C, 3, 3), as (16, C, O)
    float32 (formed in float64)."""
    U = torch.einsum("ar,ocrs,bs->abco", _WINO_G, w.detach().cpu().double(), _WINO_G)
    return _np(U.reshape(16, w.shape[1], w.shape[0]))


def _prepare(vae: torch.nn.Module) -> dict[str, Any]:
    """Re-laid-out weights of ``vae``'s decoder for the C++ body, cached per module (rebuilt when
    a parameter changes)."""
    stamp = parameter_stamp(vae)
    hit = _prepared.get(vae)
    if hit is not None and hit["stamp"] == stamp:
        return hit
    units = []
    for i, block in enumerate(vae.dec):
        for k, unit in enumerate(block):
            conv = unit.conv
            u: dict[str, Any] = {"unit": unit, "kind": "torch"}
            if _plain3x3(conv):
                w = conv.weight.detach().float().cpu()
                co, ci = w.shape[:2]
                if i < 3 and k == 0:  # behind the up-sampling: per-tap mixes, tap-major rows
                    wm, bm = _mix_weights(unit)
                    u = {"unit": unit, "kind": "upconv", "bias": _np(conv.bias),
                         "w9T": _np(w.permute(1, 2, 3, 0).reshape(ci, 9 * co)),
                         "wm": wm, "bm": bm}
                elif ci * co >= _WINO_MIN_CHANNELS:
                    wm, bm = _mix_weights(unit)
                    u = {"unit": unit, "kind": "winograd", "bias": _np(conv.bias),
                         "u": _winograd_weights(w), "wm": wm, "bm": bm}
            units.append((i, k, u))
    last = None
    block, out = vae.dec[-1], vae.dec_out
    if (len(vae.dec) > 3 and len(block) == 1 and _plain3x3(block[0].conv) and _plain3x3(out)
            and out.out_channels == 1):
        unit = block[0]
        wm, bm = _mix_weights(unit)
        last = {"u": _winograd_weights(unit.conv.weight), "b3": _np(unit.conv.bias),
                "wm": wm, "bm": bm,
                "wh": _np(out.weight[0].permute(1, 2, 0)), "bh": float(out.bias.detach()[0])}
    dec_in = _direct_weights(vae.dec_in) if _plain3x3(vae.dec_in) else None
    hit = {"stamp": stamp, "units": units, "last": last, "dec_in": dec_in}
    _prepared[vae] = hit
    return hit


# ---------------------------------------------------------------------------------------------
# latent U-Nets (C++ backend)

_unets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unet_unit(unit: torch.nn.Module) -> tuple | None:
    conv, mix = unit.conv, unit.mix
    if not (_plain3x3(conv) and mix.kernel_size == (1, 1) and mix.bias is not None):
        return None
    return (*_direct_weights(conv), *_mix_weights(unit))


def _prepare_unet(net: torch.nn.Module) -> dict[str, Any] | None:
    """Re-laid-out weights of a :class:`closure.models.unet.UNet` for ``unet_forward`` (None when
    a layer is not one the kernel implements), cached per module, rebuilt when a parameter
    changes."""
    stamp = parameter_stamp(net)
    hit = _unets.get(net)
    if hit is not None and hit["stamp"] == stamp:
        return hit["w"]
    blocks = [[_unet_unit(u) for u in block] for block in (*net.down, *net.up)]
    out = net.out
    ok = (all(u is not None for b in blocks for u in b) and out.kernel_size == (1, 1)
          and out.bias is not None and out.groups == 1)
    w = None
    if ok:
        n_down = len(net.down)
        w = {"down": blocks[:n_down], "up": blocks[n_down:],
             "wo": _np(out.weight[:, :, 0, 0].t()), "bo": _np(out.bias)}
    _unets[net] = {"stamp": stamp, "w": w}
    return w


def unet_forward(net: torch.nn.Module, x: torch.Tensor, *, backend: str | None = None,
                 ) -> torch.Tensor:
    """``net(x)`` for a latent :class:`closure.models.unet.UNet` in eval mode, on a backend:
    ``cpp`` runs the whole network per sample in one C++ kernel (csrc/latent_unet.cpp: direct
    3x3 convs, pooling, up-sampling and skips on buffers held in cache) and returns a contiguous
    NCHW float32 tensor; other backends, training mode, autograd and layers the kernel does not
    implement (padding modes other than zeros) run the module."""
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in net.parameters()))
    if resolve_backend(backend) != "cpp" or net.training or needs_grad:
        return net(x)
    w = _prepare_unet(net)
    if w is None:
        return net(x)
    if x.ndim != 4 or x.shape[1] != net.c_in:
        raise ValueError(f"UNet expects (B, {net.c_in}, H, W), got {tuple(x.shape)}")
    xs = np.ascontiguousarray(x.detach().float().cpu().numpy())
    return torch.from_numpy(_module("cpp").unet_forward(xs, w["down"], w["up"], w["wo"],
                                                        w["bo"], _SLOPE))


def _conv_unit_cpp(x: torch.Tensor, u: dict[str, Any], upsampled: bool) -> torch.Tensor:
    """One ConvUnit (after the bilinear x2 up-sampling when ``upsampled``) on the C++ kernels."""
    mod = _module("cpp")
    unit = u["unit"]
    if u["kind"] == "upconv":
        return torch.from_numpy(mod.upconv3x3_unit(x.numpy(), u["w9T"], u["bias"], u["wm"],
                                                   u["bm"], _SLOPE))
    if upsampled:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    if u["kind"] == "winograd":
        return torch.from_numpy(mod.winograd_unit(np.ascontiguousarray(x.numpy()), u["u"],
                                                  u["bias"], u["wm"], u["bm"], _SLOPE))
    a = F.leaky_relu(unit.conv(x), _SLOPE)
    return F.leaky_relu(unit.mix(a), _SLOPE)


def _decode_cpp(vae: torch.nn.Module, z: torch.Tensor, lo: float, hi: float, thr: float,
                ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Hotspot (count, sum of T, grid) of ``vae.decode(z)`` with the restructured C++ body."""
    prep = _prepare(vae)
    mod = _module("cpp")
    z = z.float().cpu().contiguous()
    if prep["dec_in"] is not None:
        h = torch.from_numpy(mod.conv3x3_act(z.numpy(), *prep["dec_in"], _SLOPE))
    else:
        h = F.leaky_relu(vae.dec_in(z), _SLOPE)
    units, last = prep["units"], prep["last"]
    n_body = len(units) - (1 if last is not None else 0)
    # the last level behind an up-sampling ConvUnit: both and the head in one streaming kernel
    fuse = last is not None and n_body > 0 and units[n_body - 1][2]["kind"] == "upconv"
    for i, k, u in units[:n_body - 1 if fuse else n_body]:
        h = _conv_unit_cpp(h.contiguous(), u, upsampled=(i < 3 and k == 0))
    if fuse:
        u = units[n_body - 1][2]
        count, s = mod.upconv_last_hotspots(
            np.ascontiguousarray(h.numpy()), u["w9T"], u["bias"], u["wm"], u["bm"], last["u"],
            last["b3"], last["wm"], last["bm"], last["wh"], last["bh"], _SLOPE, lo, hi, thr)
        return count, s, (2 * h.shape[-2], 2 * h.shape[-1])
    if last is not None:
        count, s = mod.last_level_hotspots(np.ascontiguousarray(h.numpy()), last["u"],
                                           last["b3"], last["wm"], last["bm"], last["wh"],
                                           last["bh"], _SLOPE, lo, hi, thr)
        return count, s, tuple(h.shape[-2:])
    count, s = hotspot_head(h, vae.dec_out.weight.detach(), float(vae.dec_out.bias.detach()[0]),
                            lo, hi, thr, backend="cpp")
    return count, s, tuple(h.shape[-2:])


def decode_hotspots(vae: torch.nn.Module, z: torch.Tensor, lo: float, hi: float, thr: float, *,
                    backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hotspot area fraction and mean hotspot T (K) (float64 (B,)) of T-field tokens ``z``.

    ``vae`` is the T field's :class:`closure.models.vae.FieldVAE`. ``T_hs`` is ``thr`` where no
    cell is hot (the convention of :mod:`closure.metrics`). Per backend:

    * ``torch``: ``vae``'s own decoder, then the output conv, threshold and reduction
      (:func:`hotspot_head_torch`).
    * ``cpp``: the same function restructured (csrc/decoder_body.cpp): each 3x3 conv behind a
      bilinear x2 up-sampling mixes channels at the coarse resolution and the kernel up-samples
      and sums the nine taps (a quarter of the products); wide 3x3 convs at one resolution run
      as Winograd F(2x2, 3x3); the input conv is a direct conv; the last up-sampling
      ConvUnit, the last ConvUnit (Winograd), the output conv, the de-normalization, threshold
      and reduction are one kernel streaming down the image, with no full-resolution
      temporary. Agrees with ``torch`` to float32 round-off (relative ~1e-6).
    * ``cuda``: with ``vae`` on a GPU, its decoder in PyTorch there (cuDNN in full float32,
      :func:`full_float32`) and the fused head as the CUDA kernel on the device buffers; with
      ``vae`` on the CPU, the decoder on the CPU and the head on the GPU (under ``auto``, a
      decoder on the CPU takes the ``cpp`` path instead).

    ``z`` is moved to ``vae``'s device (the C++ backend works on the host).
    """
    out_conv = vae.dec_out
    fused = out_conv.padding_mode == "zeros" and out_conv.kernel_size == (3, 3)
    dev = out_conv.weight.device
    # a decoder on the CPU would run in PyTorch there and only its head on the GPU: the C++
    # decode is faster (closure_gpu.json "kernels": 35 vs 118 ms for 16 patches)
    b = "cpp" if dev.type == "cpu" and _auto_cuda(backend) else resolve_backend(backend)
    with torch.inference_mode(), full_float32():
        if b == "cpp" and fused:
            count, s, (H, W) = _decode_cpp(vae, z.cpu(), lo, hi, thr)
        else:
            # channels-last: PyTorch's CPU convolutions and bilinear up-sampling run it without
            # layout conversions (online_breakdown.json: "nchw_s" vs "decode_s")
            # channels-last on the GPU too (gpu_variants.json: decode 1.4x faster than NCHW)
            z = z.to(dev).contiguous(memory_format=torch.channels_last)
            hh = F.leaky_relu(vae.dec_in(z), _SLOPE)
            for i, block in enumerate(vae.dec):
                if i < 3:
                    hh = F.interpolate(hh, scale_factor=2, mode="bilinear", align_corners=False)
                hh = block(hh)
            H, W = hh.shape[-2:]
            if fused:
                count, s = hotspot_head(hh, out_conv.weight.detach(),
                                        float(out_conv.bias.detach()[0]), lo, hi, thr,
                                        backend=b)
            else:  # padding modes the fused kernel does not implement
                T = out_conv(hh)[:, 0] * np.float32(hi - lo) + np.float32(lo)
                hot = T > np.float32(thr)
                count = hot.flatten(1).sum(1).to(torch.int64).cpu().numpy()
                s = torch.where(hot, T.double(), 0.0).flatten(1).sum(1).cpu().numpy()
    count = np.asarray(count, np.int64)
    area = count / float(H * W)
    t_hs = np.where(count > 0, np.asarray(s) / np.maximum(count, 1), float(thr))
    return area, t_hs


# ---------------------------------------------------------------------------------------------
# table mode

def table_lookup_torch(nodes, dt_t, tab_a, tab_t, tab_u, ps, t0, t1, shocked, thr):
    """Pure-PyTorch reference of :func:`table_lookup` (float64 throughout)."""
    nd = torch.as_tensor(np.asarray(nodes, np.float64))
    A = torch.as_tensor(np.asarray(tab_a, np.float64))
    Tt = torch.as_tensor(np.asarray(tab_t, np.float64))
    U = torch.as_tensor(np.asarray(tab_u, np.float64))
    p = torch.as_tensor(np.asarray(ps, np.float64))
    a0 = torch.as_tensor(np.asarray(t0, np.float64))
    a1 = torch.as_tensor(np.asarray(t1, np.float64))
    sh = torch.as_tensor(np.asarray(shocked, np.uint8)).bool()
    nP, nT = A.shape
    i = (torch.searchsorted(nd, p, right=True) - 1).clamp(0, nP - 2)
    fp = ((p - nd[i]) / (nd[i + 1] - nd[i])).clamp(0.0, 1.0)

    def t_idx(t):
        s = t / float(dt_t)
        s = torch.where(s > 0, s, torch.zeros_like(s)).clamp(max=float(nT - 1))
        k = torch.floor(s).to(torch.int64).clamp(max=nT - 2)
        return k, s - k

    def bil(tab, k, f):
        r0a, r0b = tab[i, k], tab[i, k + 1]
        r1a, r1b = tab[i + 1, k], tab[i + 1, k + 1]
        a = r0a + f * (r0b - r0a)
        b = r1a + f * (r1b - r1a)
        return a + fp * (b - a)

    k0, f0 = t_idx(a0)
    k1, f1 = t_idx(a1)
    A0, A1 = bil(A, k0, f0), bil(A, k1, f1)
    d = A1 - A0
    rate = torch.where(d > 0, d / (a1 - a0), torch.zeros_like(d))
    z = torch.zeros_like(p)
    out = (torch.where(sh, A1, z), torch.where(sh, bil(Tt, k1, f1), torch.full_like(p, thr)),
           torch.where(sh, bil(U, k1, f1), z), torch.where(sh, rate, z))
    return tuple(o.numpy() for o in out)


def table_lookup(nodes: np.ndarray, dt_t: float, tab_a: np.ndarray, tab_t: np.ndarray,
                 tab_u: np.ndarray, ps: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                 shocked: np.ndarray, thr: float, *, backend: str | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Table-mode response of N cells: (A(t1), T_hs(t1), U(t1), rate) float64 (N,) each.

    Tables (nP, nT) on Ps ``nodes`` (increasing) x t = k ``dt_t``; bilinear in (Ps, t), Ps
    clamped to the nodes, t beyond the last node holds the last value. ``rate = max(0, A(t1) -
    A(t0)) / (t1 - t0)``. Cells with ``shocked == 0`` get (0, thr, 0, 0).
    """
    args = (np.ascontiguousarray(nodes, np.float64), float(dt_t),
            np.ascontiguousarray(tab_a, np.float64), np.ascontiguousarray(tab_t, np.float64),
            np.ascontiguousarray(tab_u, np.float64), np.ascontiguousarray(ps, np.float64),
            np.ascontiguousarray(t0, np.float64), np.ascontiguousarray(t1, np.float64),
            np.ascontiguousarray(shocked, np.uint8), float(thr))
    if len(args[5]) < CUDA_TABLE_MIN_BATCH and _auto_cuda(backend):
        backend = "cpp"  # host arrays: below this, the copies to and from the GPU cost more
    return _run("table_lookup", backend, table_lookup_torch, args)


def advance_cells(ps_old: np.ndarray, t_old: np.ndarray, steps_old: np.ndarray,
                  frac_old: np.ndarray, pressure: np.ndarray, dt: np.ndarray | float,
                  dt_meso: float, ps_window: float,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell clock of the closure over a call of length ``dt``: (Ps, t since shock, whole
    meso steps, fraction of the next). Ps is the running max of the pressure while the cell's age
    at the call's start is below ``ps_window``; meso steps accumulate ``dt / dt_meso`` exactly
    (whole steps plus a fraction in [0, 1)), so many small calls equal one large one."""
    ps = np.where(t_old < ps_window, np.maximum(ps_old, pressure), ps_old)
    x = frac_old + dt / dt_meso
    whole = np.floor(x)
    return ps, t_old + dt, steps_old + whole.astype(np.int64), x - whole


def table_step_reference(nodes, dt_t, tab_a, tab_t, tab_u, ps_old, t_old, steps_old, frac_old,
                         pressure, dt, dt_meso, ps_window, env_lo, env_hi, status_ok,
                         status_outside, *, backend: str | None = "torch"):
    """:func:`table_step` composed of :func:`advance_cells` and :func:`table_lookup` (on
    ``backend``; the default is the pure reference)."""
    ps, t1, steps, frac = advance_cells(ps_old, t_old, steps_old, frac_old, pressure, dt,
                                        dt_meso, ps_window)
    status = np.where((ps < env_lo) | (ps > env_hi), status_outside, status_ok).astype(np.int32)
    a, t_hs, u, rate = table_lookup(nodes, dt_t, tab_a, tab_t, tab_u, ps, t_old, t1,
                                    np.ones(ps.shape, np.uint8), 0.0, backend=backend)
    return ps, t1, steps, frac, status, a, t_hs, u, rate


def table_step(nodes: np.ndarray, dt_t: float, tab_a: np.ndarray, tab_t: np.ndarray,
               tab_u: np.ndarray, ps_old: np.ndarray, t_old: np.ndarray, steps_old: np.ndarray,
               frac_old: np.ndarray, pressure: np.ndarray, dt: np.ndarray | float,
               dt_meso: float, ps_window: float, env_lo: float, env_hi: float,
               status_ok: int, status_outside: int, *, backend: str | None = None,
               ) -> tuple[np.ndarray, ...]:
    """A table-mode call of N cells that all have state, fused on the C++ backend: the clock of
    :func:`advance_cells`, the status (``status_outside`` where Ps leaves [env_lo, env_hi], else
    ``status_ok``) and :func:`table_lookup` at (Ps, t_old, t_new). ``dt`` scalar or (N,).
    Returns (Ps, t, steps, frac, status, A, T_hs, U, rate), each (N,)."""
    d = np.asarray(dt, np.float64)
    args = (np.ascontiguousarray(nodes, np.float64), float(dt_t),
            np.ascontiguousarray(tab_a, np.float64), np.ascontiguousarray(tab_t, np.float64),
            np.ascontiguousarray(tab_u, np.float64), np.ascontiguousarray(ps_old, np.float64),
            np.ascontiguousarray(t_old, np.float64), np.ascontiguousarray(steps_old, np.int64),
            np.ascontiguousarray(frac_old, np.float64),
            np.ascontiguousarray(pressure, np.float64), d if d.ndim else d.reshape(1),
            float(dt_meso), float(ps_window), float(env_lo), float(env_hi), int(status_ok),
            int(status_outside))
    b = resolve_backend(backend)
    if b == "cuda" and len(args[9]) < CUDA_TABLE_MIN_BATCH and _auto_cuda(backend):
        b = "cpp"
    if b == "cpp":
        return _module("cpp").table_step(*args)
    # no fused kernel on the GPU: the clock on the host, the lookup on the backend
    return table_step_reference(*args, backend=backend)
