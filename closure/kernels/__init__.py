"""Python side of the compiled closure kernels (csrc/): dispatch CUDA -> C++ -> pure PyTorch.

Each kernel has a pure-PyTorch reference here and compiled versions in
``csrc/closure_kernels.cpp`` (module ``closure._kernels_cpp``, OpenMP) and
``csrc/closure_kernels.cu`` (module ``closure._kernels_cuda``, built only when nvcc is found).
By family:

* :mod:`~closure.kernels.rng` -- :func:`sample_latent`: reparameterized latent sample
  ``z = mean + exp(logvar / 2) * eps`` with a counter-based normal ``eps`` = f(seed, cell id,
  step, element): a cell's sample does not depend on the other cells of the batch, and a seed
  reproduces it on every backend.
* :mod:`~closure.kernels.decode` -- :func:`hotspot_head`: the T decoder's final 3x3 conv fused
  with de-normalization, the hotspot threshold and the per-cell reduction (float64 sums);
  :func:`decode_hotspots`: T tokens to hotspot statistics, on the C++ backend with the decoder
  body restructured (``csrc/decoder_body.cpp``) from the VAE's decoder plan.
* :mod:`~closure.kernels.unet` -- :func:`unet_forward`: a latent U-Net of the dynamics, on the
  C++ backend one kernel per batch (``csrc/latent_unet.cpp``).
* :mod:`~closure.kernels.lookup` -- :func:`table_lookup`: table mode, bilinear in (Ps, t) and
  the MES-IG rate; :func:`table_step`: the per-cell clock and the lookup fused.
* :mod:`~closure.kernels.dispatch` -- the :class:`Backend` object, the extension modules and the
  CUDA fall-back; :mod:`~closure.kernels.layout` -- weights re-laid-out for the C++ kernels;
  :mod:`~closure.kernels.calibrate` -- under ``auto``, per kernel family (:data:`FAMILIES`: the
  latent U-Nets, the decode) the faster of C++ and PyTorch on this machine, measured once per
  machine and model and cached.

Backend choice: a :class:`Backend` resolved once where a closure is loaded (its runner and
table hold it), from the ``backend`` argument, else the environment variable
``CLOSURE_KERNELS`` (``auto`` | ``cuda`` | ``cpp`` | ``torch``), else ``auto`` = CUDA if the
module imports and sees a GPU, then C++, then PyTorch. An explicitly requested backend that is
not available raises ``ValueError``; under ``auto`` a CUDA runtime failure warns once and moves
that backend object to C++, and work on host data that the CPU does faster stays on C++ (table
lookups of fewer than ``CUDA_TABLE_MIN_BATCH`` cells, decodes with the decoder on the CPU).
When ``auto`` lands on C++, a closure's runner runs each kernel family on C++ or PyTorch,
whichever timed faster here (:meth:`closure.runner.MesoRunner.kernel_choice`). The C++ kernels
run the widest instruction-set path the CPU supports (AVX-512, AVX2+FMA or portable; the
module's ``set_isa``, ``$CLOSURE_MAX_ISA``).
The kernel functions also take a backend name (or None), resolved at each call.
The backends agree to a relative error <= 1e-5 in float32 (tests/test_closure_kernels.py); the
hotspot count can differ only by cells whose T lies within float32 round-off of the threshold.
"""

# names with a redundant alias (``_x as _x``): private helpers re-exported for the tests and
# benchmarks that reach them as ``closure.kernels.<name>``
from closure.kernels import calibrate
from closure.kernels.calibrate import FAMILIES
from closure.kernels.decode import _decode_cpp as _decode_cpp
from closure.kernels.decode import _prepare as _prepare
from closure.kernels.decode import decode_hotspots, hotspot_head, hotspot_head_torch
from closure.kernels.dispatch import (
    BACKENDS,
    CUDA_TABLE_MIN_BATCH,
    ENV_VAR,
    Backend,
    as_backend,
    available_backends,
    full_float32,
    resolve_backend,
)
from closure.kernels.dispatch import _mods as _mods
from closure.kernels.dispatch import _module as _module
from closure.kernels.layout import _direct_weights as _direct_weights
from closure.kernels.layout import _mix_weights as _mix_weights
from closure.kernels.layout import _np as _np
from closure.kernels.layout import _plain3x3 as _plain3x3
from closure.kernels.layout import _winograd_weights as _winograd_weights
from closure.kernels.layout import parameter_stamp
from closure.kernels.lookup import (
    advance_cells,
    table_lookup,
    table_lookup_torch,
    table_step,
    table_step_reference,
)
from closure.kernels.rng import normal_torch, sample_latent, sample_latent_torch
from closure.kernels.unet import _prepare_unet as _prepare_unet
from closure.kernels.unet import unet_forward

__all__ = [
    "BACKENDS",
    "CUDA_TABLE_MIN_BATCH",
    "ENV_VAR",
    "FAMILIES",
    "Backend",
    "advance_cells",
    "as_backend",
    "available_backends",
    "calibrate",
    "decode_hotspots",
    "full_float32",
    "hotspot_head",
    "hotspot_head_torch",
    "normal_torch",
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
