"""Weights re-laid-out for the C++ kernels, and the stamp that says when to lay them out again.

The compiled decoder and U-Net kernels take raw float32 buffers in their own layouts (below);
the copies are cached per module and rebuilt when :func:`parameter_stamp` changes.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["parameter_stamp"]

#: Winograd F(2x2, 3x3) weight transform G (float64; U = G g G^T)
_WINO_G = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]],
                       dtype=torch.float64)


def parameter_stamp(module: torch.nn.Module) -> tuple:
    """Identity and version of ``module``'s parameters: what is derived from the weights
    (re-laid-out copies, a copy on the GPU) is rebuilt when it changes (inference tensors have
    no version counter: their storage identity stands in)."""
    return tuple((p.data_ptr(), -1 if p.is_inference() else p._version)
                 for p in module.parameters())


def _plain3x3(conv: torch.nn.Conv2d) -> bool:
    """A 3x3 conv the kernels implement: stride 1, zero padding 1, no dilation or groups, bias."""
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.bias is not None)


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), np.float32)


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
