"""Meso-patch runner of the closure: initial tokens, meso steps, hotspot statistics of cells.

Shared by the online mode of :class:`closure.api.Closure` and the table builder
(:mod:`closure.table`), so both see exactly the same model response:

* a cell's meso patch starts from :func:`closure.initial.synthetic_frame1` at its shock pressure
  with microstructure ``bank[member]`` (``member = hash(cell id) mod n_micro``, a fixed bank of
  ``n_micro`` pore sets drawn with ``micro_seed``), encoded by the tokenizer (latent means and
  log-variances, 12 channels per token);
* one meso step = the latent model's ``substeps`` micro steps (coupled nets on), batched over
  cells; step k of the patch is at ``k * dt_meso`` after the shock (step 0 = synthetic frame 1);
* on the ``cuda`` kernel backend the encoder, the latent steps and the decodes run on the GPU
  (a copy of the model there, refreshed when the weights change; batches of ``gpu_chunk``
  cells, ``gpu_step_chunk`` for the latent steps; channels-last, cuDNN in full float32);
  tokens stay on the host between calls;
* under ``auto`` on the C++ backend each kernel family (the U-Nets, the decode) runs on C++ or
  PyTorch, whichever timed faster on this machine for this model (:meth:`MesoRunner.
  kernel_choice`, :mod:`closure.kernels.calibrate`: measured on the first online call, about a
  second, then cached per machine and model);
* statistics of a step: hotspot area fraction and mean hotspot T of the decoded T field
  (:func:`closure.kernels.decode_hotspots` on the chosen kernel backend); deterministic =
  decode the latent mean, otherwise a reparameterized sample with the counter-based RNG of
  (seed, cell id, counter), log-variance within the tokenizer's bounds
  ``[LOGVAR_MIN, LOGVAR_MAX]``. Non-finite statistics (a diverged model) raise
  ``FloatingPointError`` instead of reaching the hydrocode.

The trained horizon is ``horizon`` meso steps (frames 1..n_t-1 of the meso data: n_t - 2).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from closure import kernels
from closure.data.params import PREVIOUS_MESO
from closure.initial import (
    default_envelope,
    microstructure_bank,
    shifted_gas_fraction,
    synthetic_frame1,
)
from closure.models.dynamics import LatentClosureModel
from closure.models.vae import LOGVAR_MAX, LOGVAR_MIN
from closure.normalization import HOTSPOT_THRESHOLD_K, NORM_RANGES

__all__ = ["MesoRunner", "member_of"]

_NHWC = torch.channels_last



def member_of(cell_ids: np.ndarray, n_micro: int, micro_seed: int) -> np.ndarray:
    """Microstructure member of each cell: splitmix64(cell id ^ seed) mod ``n_micro``."""
    z = np.asarray(cell_ids, np.int64).view(np.uint64) ^ np.uint64(micro_seed)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_micro)).astype(np.int64)


class MesoRunner:
    """Runs a meso latent model (kind ``"latent"``) on batches of cell patches."""

    def __init__(self, model: LatentClosureModel, card: Mapping[str, Any] | None = None, *,
                 grid: tuple[int, int] | None = None, n_micro: int = 4, micro_seed: int = 0,
                 threshold: float = HOTSPOT_THRESHOLD_K, horizon: int | None = None,
                 dt_meso: float | None = None, chunk: int = 16, step_chunk: int = 128,
                 decode_chunk: int = 2, gpu_chunk: int = 256, gpu_step_chunk: int = 1024,
                 backend: kernels.Backend | str | None = None) -> None:
        card = dict(card or {})
        meso = card.get("data", {}).get("meso", {}) or {}
        self.model = model.eval()
        self.card = card
        # the meso data config of the model's training data: patches, microstructures and the
        # envelope follow it (cards written before the data recorded it: params.PREVIOUS_MESO)
        self.data_cfg = meso.get("config") or PREVIOUS_MESO
        g = self.data_cfg["grid"]
        self.grid = tuple(int(v) for v in (grid or meso.get("grid") or (g["ny"], g["nx"])))
        # the HMX Hugoniot of the patches: the one of the model's training data
        self.hmx = dict(meso.get("hmx") or self.data_cfg["physics"]["hmx"])
        self.dt_meso = float(dt_meso or meso.get("dt") or self.data_cfg["time"]["frame_dt"])
        # the patch starts at frame 1 of the data: the card's n_t counts frames from its
        # first_frame (absent: 0) on, so the trained trajectories reach n_t + first - 2 steps on
        n_t = meso.get("n_t")
        steps = int(n_t) + int(meso.get("first_frame", 0)) - 2 if n_t else 0
        self.horizon = int(horizon if horizon is not None
                           else (steps if steps >= 1
                                 else self.data_cfg["time"]["n_frames"] - 1))
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1 meso step, got {self.horizon}")
        self.n_micro = int(n_micro)
        self.micro_seed = int(micro_seed)
        self.threshold = float(threshold)
        # cells per batch of the encoder, the latent steps and the decodes: the U-Nets work on
        # 16x24 tokens and gain from wide batches, the PyTorch decoder's 128x192 activations
        # leave the cache beyond a few patches (benchmarks/results/online_breakdown.json
        # "batching", 2 threads, per 16 cells: PyTorch steps 0.138 s in batches of 16, 0.077 s
        # in 128; decodes 0.435 / 0.148 s (PyTorch / C++) in one batch of 16, 0.320 / 0.141 s
        # in batches of 2)
        self.chunk = int(chunk)
        self.step_chunk = int(step_chunk)
        self.decode_chunk = int(decode_chunk)
        # GPU (channels-last, benchmarks/results/gpu_variants.json, H200): a decode costs the
        # same per patch from 256 patches on (~3 GB of activations), a latent step 22 us per
        # patch in batches of 1024 and 41 us in 256
        self.gpu_chunk = int(gpu_chunk)
        self.gpu_step_chunk = int(gpu_step_chunk)
        if min(self.chunk, self.step_chunk, self.decode_chunk, self.gpu_chunk,
               self.gpu_step_chunk) < 1:
            raise ValueError(f"chunk, step_chunk, decode_chunk, gpu_chunk and gpu_step_chunk "
                             f"must be >= 1, got {chunk}, {step_chunk}, {decode_chunk}, "
                             f"{gpu_chunk}, {gpu_step_chunk}")
        #: kernel path, resolved once (``backend`` or ``$CLOSURE_KERNELS``; a CUDA failure under
        #: ``auto`` moves it to the host kernels)
        self.backend = kernels.as_backend(backend)
        self._gpu: tuple[tuple, LatentClosureModel] | None = None
        self._shape_hashes: dict[str, str] = {}
        self._bank: list[list[dict]] | None = None
        self.vae_T = model.tokenizer.vaes["T"]
        self.T_lo, self.T_hi = NORM_RANGES["T"]
        self.envelope = self._envelope()

    def with_backend(self, backend: kernels.Backend | str | None) -> MesoRunner:
        """A runner on another kernel path sharing this one's model, bank and settings (to
        compare backends on one model)."""
        other = copy.copy(self)
        other.backend = kernels.as_backend(backend)
        other._gpu = None
        return other

    @property
    def bank(self) -> list[list[dict]]:
        """The microstructure bank (pore sets of the ``n_micro`` members), drawn on first use:
        table mode never needs it, and drawing it imports the Numba geometry kernels."""
        if self._bank is None:
            self._bank = microstructure_bank(self.n_micro, self.micro_seed, self.grid,
                                             cfg=self.data_cfg)
        return self._bank

    def _envelope(self) -> tuple[float, float]:
        """Shock-pressure range of the meso training samples (``meta/shock_pressure`` of the
        card's meso data file, training split, when readable), else the generator's loading
        range (:func:`closure.initial.default_envelope`)."""
        meso = self.card.get("data", {}).get("meso", {}) or {}
        path = meso.get("path")
        idx = (meso.get("split") or {}).get("train") or meso.get("indices")
        if path and not Path(path).exists():  # relative to the repository root
            path = str(Path(__file__).resolve().parents[1] / path)
        if path and Path(path).exists():
            try:
                import h5py

                with h5py.File(path, "r") as h5:
                    ps = np.asarray(h5["meta"]["shock_pressure"], float)
                if idx:
                    ps = ps[np.asarray(idx, int)]
                if ps.size and np.all(np.isfinite(ps)):
                    return float(ps.min()), float(ps.max())
            except (OSError, KeyError, ValueError, IndexError):
                pass
        return default_envelope(self.hmx, self.data_cfg)

    def _gpu_model(self) -> LatentClosureModel:
        """The model's copy on the GPU, made again when the weights changed (optimizer steps,
        ``load_state_dict``) since the last call."""
        stamp = kernels.parameter_stamp(self.model)
        if self._gpu is None or self._gpu[0] != stamp:
            self._gpu = None  # free the old copy first
            self._gpu = (stamp, copy.deepcopy(self.model).to("cuda").eval())
        return self._gpu[1]

    # -- patches -------------------------------------------------------------------------------
    def initial_frames(self, ps: np.ndarray, members: np.ndarray) -> np.ndarray:
        """(N, C, H, W) float32 synthetic frame-1 patches at ``ps`` (Pa) with bank ``members``,
        channels of the model."""
        fields = tuple(self.model.fields)
        out = np.empty((len(ps), len(fields), *self.grid), np.float32)
        for n, (p, m) in enumerate(zip(ps, members, strict=True)):
            gas = shifted_gas_fraction(self.bank[int(m)], float(p), self.grid, hmx=self.hmx,
                                       cfg=self.data_cfg)
            out[n] = synthetic_frame1(float(p), [], self.grid, gas_fraction=gas, hmx=self.hmx,
                                      cfg=self.data_cfg, fields=fields)
        return out

    @torch.inference_mode()
    def encode(self, ps: np.ndarray, members: np.ndarray, *,
               out: tuple[torch.Tensor, torch.Tensor] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and log-variance (N, n_latent, h, w) of the initial patches, written
        chunk by chunk into ``out`` (allocated when None; a large batch's tokens exist once)."""
        gpu = self.backend.name == "cuda"
        model = self._gpu_model() if gpu else self.model
        chunk = self.gpu_chunk if gpu else self.chunk
        if out is None:
            shape = (len(ps), self.model.dynamics.n_latent, self.grid[0] // 8, self.grid[1] // 8)
            out = (torch.empty(shape, dtype=torch.float32), torch.empty(shape, dtype=torch.float32))
        for s in range(0, len(ps), chunk):
            x = torch.from_numpy(self.initial_frames(ps[s:s + chunk], members[s:s + chunk]))
            if gpu:
                with kernels.full_float32():
                    m, v = model.encode(x.to("cuda").contiguous(memory_format=_NHWC))
                m, v = m.contiguous().cpu(), v.contiguous().cpu()
            else:
                m, v = model.encode(x.contiguous(memory_format=torch.channels_last))
            out[0][s:s + chunk].copy_(m)
            out[1][s:s + chunk].copy_(v)
        return out

    @torch.inference_mode()
    def step(self, mean: torch.Tensor, logvar: torch.Tensor, *,
             out: tuple[torch.Tensor, torch.Tensor] | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance tokens by one meso step (``substeps`` micro steps, coupled). On the ``cpp``
        kernel backend each U-Net runs as one C++ kernel (:func:`closure.kernels.unet_forward`)
        unless ``auto`` found PyTorch faster for them here (:meth:`kernel_choice`), elsewhere
        as its PyTorch module. With ``out`` (which may be the input tensors: a chunk
        is written only after it was read) the result goes there chunk by chunk."""
        be = self.backend.name
        if out is None:
            out = (torch.empty(mean.shape, dtype=mean.dtype),
                   torch.empty(logvar.shape, dtype=logvar.dtype))
        if be == "cuda":
            return self._step_gpu(mean, logvar, out)
        apply = (functools.partial(kernels.unet_forward, backend=self.backend)
                 if be == "cpp" and self.kernel_choice("unet")["choice"] == "cpp" else None)
        # PyTorch: channels-last, so that the U-Nets' convolutions, pooling and up-sampling need
        # no layout conversions (online_breakdown.json: "nchw_s" vs "dynamics_s"); the C++
        # kernel takes NCHW
        fmt = torch.contiguous_format if apply is not None else torch.channels_last
        for s in range(0, len(mean), self.step_chunk):
            m = mean[s:s + self.step_chunk].contiguous(memory_format=fmt)
            v = logvar[s:s + self.step_chunk].contiguous(memory_format=fmt)
            for _ in range(self.model.substeps):
                m, v = self.model.dynamics.step(m, v, self.model.coupled, apply)
            out[0][s:s + self.step_chunk].copy_(m)
            out[1][s:s + self.step_chunk].copy_(v)
        return out

    def _step_gpu(self, mean: torch.Tensor, logvar: torch.Tensor,
                  out: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        model = self._gpu_model()
        out_m, out_v = out
        c = self.gpu_step_chunk
        with kernels.full_float32():
            for s in range(0, len(mean), c):
                m = mean[s:s + c].to("cuda").contiguous(memory_format=_NHWC)
                v = logvar[s:s + c].to("cuda").contiguous(memory_format=_NHWC)
                for _ in range(model.substeps):
                    m, v = model.dynamics.step(m, v, model.coupled)
                out_m[s:s + c].copy_(m.contiguous())  # to NCHW on the GPU, then one copy
                out_v[s:s + c].copy_(v.contiguous())
        return out_m, out_v

    @torch.inference_mode()
    def stats(self, mean: torch.Tensor, logvar: torch.Tensor, *, sample: bool = False,
              seed: int = 0, cell_ids: np.ndarray | None = None,
              counters: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Hotspot area fraction and mean hotspot T (K) of the tokens' decoded T field."""
        L = self.model.tokenizer.latent_channels
        iT = self.model.fields.index("T")
        zm = mean[:, iT * L:(iT + 1) * L]
        # the kernels get the backend object: a CUDA failure under ``auto`` moves it (this
        # runner and its closure) to the host kernels
        be = self.backend
        gpu = be.name == "cuda"
        vae = self._gpu_model().tokenizer.vaes["T"] if gpu else self.vae_T
        dec_be = (be if be.name != "cpp" or self.kernel_choice("decode")["choice"] == "cpp"
                  else "torch")
        # the tokenizer's own log-variance bounds: the dynamics may push logvar past them, and
        # exp(logvar / 2) must not overflow
        zv = logvar[:, iT * L:(iT + 1) * L] if sample else None
        if sample and not gpu:
            z = kernels.sample_latent(zm.reshape(len(zm), -1).numpy(),
                                      zv.clamp(LOGVAR_MIN, LOGVAR_MAX).reshape(len(zv), -1)
                                      .numpy(), seed, np.asarray(cell_ids, np.int64),
                                      np.asarray(counters, np.int64), backend=be)
            zm = torch.from_numpy(z).reshape(zm.shape)
        chunk = self.gpu_chunk if gpu else self.decode_chunk
        areas, temps = [], []
        for s in range(0, len(zm), chunk):
            z = zm[s:s + chunk]
            if sample and gpu:
                z = z.to("cuda")
                v = zv[s:s + chunk].to("cuda").clamp(LOGVAR_MIN, LOGVAR_MAX)
                z = kernels.sample_latent(z, v, seed, np.asarray(cell_ids, np.int64)[s:s + chunk],
                                          np.asarray(counters, np.int64)[s:s + chunk],
                                          backend=be).reshape(z.shape)
            a, t = kernels.decode_hotspots(vae, z, self.T_lo, self.T_hi, self.threshold,
                                           backend=dec_be)
            areas.append(a)
            temps.append(t)
        if not areas:
            return np.zeros(0), np.zeros(0)
        area, temp = np.concatenate(areas), np.concatenate(temps)
        bad = ~(np.isfinite(area) & np.isfinite(temp))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            who = f"cell {int(cell_ids[i])}" if cell_ids is not None else f"patch {i}"
            raise FloatingPointError(
                f"the latent model produced a non-finite hotspot temperature for {who} "
                f"(decoded T overflowed: the model diverged); no state was changed")
        return area, temp

    # -- kernel families under auto ---------------------------------------------------------
    def kernel_choice(self, family: str, *, refresh: bool = False) -> dict[str, Any]:
        """Which implementation runs kernel family ``family`` (``"unet"`` | ``"decode"``, see
        :mod:`closure.kernels.calibrate`) for this runner: its backend's name, except under
        ``auto`` on the C++ backend, where the faster of C++ and PyTorch on this machine for
        this model's shapes and batch sizes (measured once, cached per machine and model).
        Returns the record (``choice``, ``seconds``, ``source``); ``refresh`` measures again."""
        if family not in kernels.FAMILIES:
            raise ValueError(f"kernel family {family!r} is not one of {kernels.FAMILIES}")
        if family not in self._shape_hashes:
            H, W = self.grid
            self._shape_hashes[family] = kernels.calibrate.shape_hash(
                self.model.dynamics if family == "unet" else self.vae_T,
                extra=(family, H, W, self.step_chunk if family == "unet" else self.decode_chunk,
                       self.model.coupled))
        return self.backend.family_choice(family, self._shape_hashes[family],
                                          functools.partial(self._calibration, family),
                                          refresh=refresh)

    def kernel_choices(self, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """:meth:`kernel_choice` of every family."""
        return {f: self.kernel_choice(f, refresh=refresh) for f in kernels.FAMILIES}

    def _calibration(self, family: str) -> dict[str, Any]:
        """The work a calibration times, on the C++ kernels and on PyTorch, as the online path
        does it: one dynamics micro step of ``step_chunk`` cells, or one decode of
        ``decode_chunk`` patches (random tokens; the time does not depend on the values)."""
        H, W = self.grid[0] // 8, self.grid[1] // 8
        g = torch.Generator().manual_seed(0)
        if family == "decode":
            z = torch.randn(self.decode_chunk, self.model.tokenizer.latent_channels, H, W,
                            generator=g)

            def decode(b: str) -> None:
                kernels.decode_hotspots(self.vae_T, z, self.T_lo, self.T_hi, self.threshold,
                                        backend=b)

            return {b: functools.partial(decode, b) for b in ("cpp", "torch")}
        dyn = self.model.dynamics
        shape = (self.step_chunk, dyn.n_latent, H, W)
        m, v = torch.randn(shape, generator=g), torch.randn(shape, generator=g) - 6.0
        cpp = functools.partial(kernels.unet_forward, backend="cpp")

        @torch.inference_mode()
        def step(apply: Any, fmt: torch.memory_format) -> None:
            dyn.step(m.contiguous(memory_format=fmt), v.contiguous(memory_format=fmt),
                     self.model.coupled, apply)

        return {"cpp": functools.partial(step, cpp, torch.contiguous_format),
                "torch": functools.partial(step, None, torch.channels_last)}

    def fingerprint(self) -> dict[str, Any]:
        """What a table built with this runner depends on (checked when a table is loaded)."""
        return {"weights_sha256": self.card.get("weights", {}).get("sha256", ""),
                "grid": list(self.grid), "n_micro": self.n_micro, "micro_seed": self.micro_seed,
                "threshold": self.threshold, "horizon": self.horizon, "dt_meso": self.dt_meso,
                "substeps": int(self.model.substeps)}
