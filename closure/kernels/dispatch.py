"""Which compiled kernels run: the backend object, the extension modules, CUDA fall-back.

A :class:`Backend` is resolved once, where a :class:`closure.Closure` is loaded, and held by its
runner and table: the choice (``cuda`` | ``cpp`` | ``torch``, or ``auto``) is read from the
argument or ``$CLOSURE_KERNELS`` then, not at every call. Under ``auto`` a CUDA runtime failure
warns and moves that object (that closure) to the C++ kernels for good; other closures and
later loads try CUDA again. Kernel functions also take a plain name (or None): that resolves
afresh at each call, and a CUDA failure then falls back for that call only.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

__all__ = [
    "BACKENDS",
    "CUDA_TABLE_MIN_BATCH",
    "ENV_VAR",
    "Backend",
    "as_backend",
    "available_backends",
    "full_float32",
    "resolve_backend",
]

BACKENDS = ("cuda", "cpp", "torch")
ENV_VAR = "CLOSURE_KERNELS"
#: under ``auto`` with a GPU, table lookups of fewer cells run on the C++ kernel: the table
#: kernel on host arrays is bound by the copies (benchmarks/results/closure_gpu.json, H200 and
#: 16 cores: CUDA 1.1e7 vs C++ 2.0e7 cell-queries/s at 4096 cells, 2.4e7 vs 2.4e7 at 16384,
#: 4.0e7 vs 2.4e7 at 65536)
CUDA_TABLE_MIN_BATCH = 16384

_mods: dict[str, Any] = {}


def _module(name: str) -> Any | None:
    """The extension module ``closure._kernels_<name>``, or None where it is not built."""
    if name not in _mods:
        try:
            _mods[name] = importlib.import_module(f"closure._kernels_{name}")
        except ImportError:
            _mods[name] = None
    return _mods[name]


def _cuda_ok() -> bool:
    mod = _module("cuda")
    if mod is None:
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


class Backend:
    """A resolved kernel path with its own CUDA-failure state.

    ``choice``: ``"auto"`` | ``"cuda"`` | ``"cpp"`` | ``"torch"`` (case and blanks ignored), or
    None for ``$CLOSURE_KERNELS`` (default ``auto``). ``auto`` takes the fastest available
    (:func:`available_backends`); a named backend that is not available here raises
    ``ValueError``, as does an unknown name.
    """

    def __init__(self, choice: str | None = None) -> None:
        raw = choice if choice is not None else os.environ.get(ENV_VAR, "auto")
        where = "backend" if choice is not None else f"${ENV_VAR}"
        if not isinstance(raw, str):
            raise TypeError(f"backend must be a str or None, got {type(raw).__name__}")
        req = raw.strip().lower() or "auto"
        if req != "auto":
            if req not in BACKENDS:
                raise ValueError(f"{where} = {req!r} is not one of {['auto', *BACKENDS]}")
            if req not in available_backends():
                raise ValueError(f"{where} = {req!r} is not available here (available: "
                                 f"{available_backends()})")
        #: what was asked for: ``auto`` or a backend name
        self.requested = req
        #: whether a backend was named (argument or environment) rather than left to ``auto``:
        #: a named one never falls back
        self.explicit = req != "auto"
        #: the kernel path in use (after a CUDA failure under ``auto``: ``cpp`` or ``torch``)
        self.name = req if self.explicit else available_backends()[0]
        #: set when a CUDA kernel failed and this object moved to the host kernels
        self.cuda_failed = False

    def __repr__(self) -> str:
        return f"Backend(requested={self.requested!r}, name={self.name!r})"

    @property
    def auto_cuda(self) -> bool:
        """Whether ``auto`` picked CUDA while the C++ module is there too: then work on host data
        that the CPU does faster goes to C++."""
        return not self.explicit and self.name == "cuda" and _module("cpp") is not None

    def family_choice(self, family: str, model: str,
                      bench: Callable[[], Mapping[str, Callable[[], Any]]], *,
                      refresh: bool = False) -> dict[str, Any]:
        """Which implementation runs kernel family ``family`` (:data:`calibrate.FAMILIES`) of a
        model whose layer shapes hash to ``model``: a record whose ``choice`` is this backend's
        name, except under ``auto`` on the C++ backend, where it is the faster of ``cpp`` and
        ``torch`` on this machine (:func:`calibrate.resolve`: cached, else measured on the
        candidates ``bench()`` returns)."""
        if self.explicit or self.name != "cpp":
            return {"choice": self.name, "seconds": None,
                    "source": "explicit" if self.explicit else "auto"}
        from closure.kernels import calibrate

        mod = _module("cpp")
        isa = mod.isa_active()
        threads = f"{torch.get_num_threads()}/{mod.max_threads()}"
        return calibrate.resolve(calibrate.family_key(family, isa, threads, model), isa, bench,
                                 refresh=refresh)

    def cuda_failure(self, kernel: str, exc: BaseException, instead: str) -> None:
        """Record a CUDA failure of ``kernel``: re-raise under an explicit backend, else warn and
        use the host kernels from now on (this object only)."""
        if self.explicit:
            raise exc
        self.cuda_failed = True
        self.name = "cpp" if _module("cpp") is not None else "torch"
        warnings.warn(f"CUDA kernel {kernel} failed ({exc}); using {instead} from now on",
                      RuntimeWarning, stacklevel=4)


def as_backend(backend: Backend | str | None) -> Backend:
    """``backend`` itself, or a :class:`Backend` resolved now from a name (None: the
    environment)."""
    return backend if isinstance(backend, Backend) else Backend(backend)


def resolve_backend(backend: Backend | str | None = None) -> str:
    """The backend name to use: ``backend``, else ``$CLOSURE_KERNELS``, else the fastest
    available."""
    return as_backend(backend).name


def run(kernel: str, be: Backend, torch_fn: Callable[..., Any], args: tuple, *,
        name: str | None = None) -> Any:
    """Call ``kernel`` of backend ``name`` (default ``be.name``) with ``args``; the PyTorch
    reference ``torch_fn`` on ``torch``. Under ``auto`` a CUDA failure falls back to C++."""
    b = be.name if name is None else name
    if b == "torch":
        return torch_fn(*args)
    try:
        return getattr(_module(b), kernel)(*args)
    except RuntimeError as exc:
        if b != "cuda":
            raise
        be.cuda_failure(kernel, exc, "the C++ kernels")
        return run(kernel, be, torch_fn, args)


def gpu_kernel(kernel: str, be: Backend, launch: Callable[[], Any],
               reference: Callable[[], Any]) -> Any:
    """``launch()`` on the CUDA backend, else (or, under auto, after a CUDA failure) the
    PyTorch ``reference()`` on the same device."""
    if be.name == "cuda":
        try:
            return launch()
        except RuntimeError as exc:
            be.cuda_failure(kernel, exc, "PyTorch")
    return reference()


# ---------------------------------------------------------------------------------------------
# tensors on the GPU (backend cuda with the models on the device): device pointers, no copies

def on_gpu(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_cuda


def stream(t: torch.Tensor) -> int:
    return torch.cuda.current_stream(t.device).cuda_stream


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
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
