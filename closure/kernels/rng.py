"""Counter-based latent sampling: ``z = mean + exp(logvar / 2) * eps`` with ``eps`` = f(seed,
cell id, step, element) (splitmix64 hash + Box-Muller in float64, the same bits as
``csrc/closure_kernels.h``), so a cell's sample does not depend on the other cells of the batch
and a seed reproduces it on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from closure.kernels.dispatch import Backend, _module, as_backend, gpu_kernel, on_gpu, run, stream

__all__ = ["normal_torch", "sample_latent", "sample_latent_torch"]

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
                  cell_ids: np.ndarray, steps: np.ndarray, *,
                  backend: Backend | str | None = None) -> np.ndarray | torch.Tensor:
    """Latent sample (B, E) float32 for cells ``cell_ids`` at ``steps``; ``seed`` in [0, 2^64).

    ``mean`` and ``logvar`` on the GPU (CUDA tensors) give a CUDA tensor, computed there (the
    CUDA kernel, or the PyTorch reference under backend ``torch``); numpy in, numpy out."""
    seed = int(seed)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    be = as_backend(backend)
    if on_gpu(mean):
        return _sample_latent_gpu(mean, logvar, seed, cell_ids, steps, be)
    mean = np.ascontiguousarray(mean, np.float32).reshape(len(mean), -1)
    logvar = np.ascontiguousarray(logvar, np.float32).reshape(len(logvar), -1)
    ids = np.ascontiguousarray(cell_ids, np.int64)
    st = np.ascontiguousarray(steps, np.int64)
    return run("sample_latent", be, sample_latent_torch, (mean, logvar, seed, ids, st))


def _sample_latent_gpu(mean: torch.Tensor, logvar: torch.Tensor, seed: int, cell_ids: Any,
                       steps: Any, be: Backend) -> torch.Tensor:
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
                                          st.data_ptr(), out.data_ptr(), B, E, stream(m))
        return out

    def reference() -> torch.Tensor:
        return m + torch.exp(0.5 * v) * normal_torch(seed, ids, st, E).float()

    if be.name == "cpp":  # the C++ kernel works on host memory
        return torch.from_numpy(sample_latent(m.cpu().numpy(), v.cpu().numpy(), seed,
                                              ids.cpu().numpy(), st.cpu().numpy(),
                                              backend=be)).to(dev)
    return gpu_kernel("sample_latent", be, launch, reference)
