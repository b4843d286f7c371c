"""Build script: package metadata lives in pyproject.toml; this file adds the compiled kernels.

* ``closure._kernels_cpp`` (csrc/*.cpp but bind_cuda.cpp): pybind11 + OpenMP, raw buffers, no
  libtorch. Always built, with the compiler's default target: on x86-64 the micro-kernel and
  the hot loops are compiled a second and third time for AVX2+FMA and AVX-512 (GCC target
  attributes, csrc/isa.h) and a run-time switch picks the path (best supported, capped by
  ``$CLOSURE_MAX_ISA``), so one build runs on any x86-64; elsewhere (aarch64) the portable path
  is vectorized for the target (``benchmarks/cross_check_aarch64.sh`` checks that build).
* ``closure/lib/libporous_closure.so`` (csrc/capi/): the C API (closure/include/porous_closure.h,
  docs/capi.md), plain C++ + OpenMP, no Python or libtorch. Compiled with the flags of
  ``closure._kernels_cpp``: the table-mode kernels are the same source (csrc/table_core.h), so
  the C API answers to the last bit as the Python table mode does. Copied into the source tree
  for in-place and editable builds, like the extensions.
* ``closure/lib/libporous_closure_mpi.so`` (csrc/capi/porous_closure_mpi.cpp): the same C API
  plus ``closure_open_mpi`` (MPMD closure workers, closure/include/porous_closure_mpi.h), built
  only when an MPI C++ compiler wrapper is found (``$MPICXX``, else ``mpicxx``/``mpic++`` on
  ``PATH`` or beside the Python running the build: the ``mpich`` wheel of the test extras), so
  neither the base library nor the build needs MPI. Its MPI flags go to
  ``closure/lib/porous_closure_mpi.flags`` for ``python -m closure.capi --mpi``.
* ``closure._kernels_cuda`` (csrc/closure_kernels.cu + csrc/bind_cuda.cpp): built only when
  ``nvcc`` is found (``$CUDA_HOME/bin`` or ``PATH``) and ``CLOSURE_NO_CUDA`` is unset; the .cu
  file is compiled to PTX for compute_75 (quick; the driver JIT-compiles it for the GPU at hand)
  and linked with the static CUDA runtime. Without nvcc, or if that build fails, a warning is
  printed and the install goes on: closure.kernels then uses the C++ or PyTorch path.

The hydro core is pure Python + Numba and needs no build step.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
CSRC = "csrc"
CUDA_ARCH = os.environ.get("CLOSURE_CUDA_ARCH", "compute_75")
#: compile flags of the C++ kernels, shared by the module and the C API library
KERNEL_FLAGS = ["-O3", "-fopenmp"]
CAPI_SOURCES = [f"{CSRC}/capi/porous_closure.cpp"]
CAPI_DEPENDS = [f"{CSRC}/capi/sha256.h", f"{CSRC}/table_core.h", "closure/include/porous_closure.h"]
CAPI_LIB = "libporous_closure.so"
CAPI_MPI_LIB = "libporous_closure_mpi.so"
CAPI_MPI_FLAGS = "porous_closure_mpi.flags"


def find_mpicxx() -> str | None:
    if os.environ.get("MPICXX"):
        return os.environ["MPICXX"]
    for name in ("mpicxx", "mpic++"):
        for cand in (shutil.which(name), Path(sys.executable).parent / name):
            if cand and Path(cand).exists():
                return str(cand)
    return None


def mpi_flags(mpicxx: str) -> tuple[list[str], list[str]] | None:
    """(compile flags, link flags) of an MPI wrapper: MPICH's -show, Open MPI's --showme."""
    for opt in ("-show", "--showme"):
        try:
            out = subprocess.run([mpicxx, opt], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip():
            words = shlex.split(out.stdout)[1:]  # drop the compiler itself
            cflags = [w for w in words if w.startswith(("-I", "-D", "-pthread"))]
            libs = [w for w in words if w.startswith(("-L", "-l", "-Wl", "-pthread"))]
            return cflags, libs
    return None


def find_nvcc() -> str | None:
    if os.environ.get("CLOSURE_NO_CUDA"):
        return None
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if root and (Path(root) / "bin" / "nvcc").exists():
            return str(Path(root) / "bin" / "nvcc")
    return shutil.which("nvcc")


def cuda_lib_dir(nvcc: str) -> str | None:
    """Directory with libcudart_static.a (nvcc may be a wrapper script outside the toolkit)."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             str(Path(os.path.realpath(nvcc)).parent.parent)]
    try:  # ask nvcc where its toolkit lives (works through wrapper scripts)
        out = subprocess.run([nvcc, "--dryrun", "--version"], capture_output=True, text=True,
                             timeout=30).stderr
        for line in out.splitlines():
            if "TOP=" in line:
                roots.append(line.split("TOP=", 1)[1].strip().strip('"'))
    except (OSError, subprocess.SubprocessError):
        pass
    roots += ["/usr/local/cuda"]
    for root in filter(None, roots):
        for d in ("lib64", "lib", "targets/x86_64-linux/lib"):
            if (Path(root) / d / "libcudart_static.a").exists():
                return str(Path(root) / d)
    return None


class BuildExt(build_ext):
    """Compiles the .cu object with nvcc before linking the CUDA extension; never lets the
    optional CUDA extension fail the install; builds the C API library after the extensions."""

    def run(self):
        super().run()
        self.build_capi()
        self.build_capi_mpi()

    def build_capi(self):
        """closure/lib/libporous_closure.so with the compiler and the compile flags of
        closure._kernels_cpp (Pybind11Extension's own: -std=c++17, hidden visibility, ...)."""
        flags = Pybind11Extension("closure._flags", [], cxx_std=17,
                                  extra_compile_args=list(KERNEL_FLAGS)).extra_compile_args
        out = Path(self.build_lib) / "closure" / "lib" / CAPI_LIB
        out.parent.mkdir(parents=True, exist_ok=True)
        objs = self.compiler.compile(CAPI_SOURCES, output_dir=self.build_temp,
                                     include_dirs=[CSRC, "closure/include"],
                                     extra_postargs=list(flags), depends=CAPI_DEPENDS)
        self.compiler.link_shared_object(objs, str(out), target_lang="c++",
                                         extra_postargs=["-fopenmp", f"-Wl,-soname,{CAPI_LIB}"])
        self._to_source(out)

    def _to_source(self, out: Path) -> None:
        """In-place and editable builds: copy a built file into closure/lib/ atomically."""
        if self.inplace or getattr(self, "editable_mode", False):
            dst = HERE / "closure" / "lib" / out.name
            tmp = dst.with_name(f".{out.name}.tmp")
            shutil.copyfile(out, tmp)
            os.replace(tmp, dst)  # a running program keeps the old file

    def build_capi_mpi(self):
        """closure/lib/libporous_closure_mpi.so, when an MPI compiler wrapper is found (else a
        notice: the MPMD C client is optional)."""
        mpicxx = find_mpicxx()
        flags = mpi_flags(mpicxx) if mpicxx else None
        if flags is None:
            print("NOTE: no MPI C++ compiler wrapper (mpicxx) found: "
                  f"closure/lib/{CAPI_MPI_LIB} (closure_open_mpi) is not built", file=sys.stderr)
            return
        cflags, libs = flags
        base = Pybind11Extension("closure._flags", [], cxx_std=17,
                                 extra_compile_args=list(KERNEL_FLAGS)).extra_compile_args
        out = Path(self.build_lib) / "closure" / "lib" / CAPI_MPI_LIB
        out.parent.mkdir(parents=True, exist_ok=True)
        objs = self.compiler.compile(
            [f"{CSRC}/capi/porous_closure_mpi.cpp"], output_dir=self.build_temp,
            include_dirs=[CSRC, "closure/include"], extra_postargs=[*base, *cflags],
            depends=[*CAPI_SOURCES, *CAPI_DEPENDS, "closure/include/porous_closure_mpi.h"])
        self.compiler.link_shared_object(
            objs, str(out), target_lang="c++",
            extra_postargs=["-fopenmp", *libs, f"-Wl,-soname,{CAPI_MPI_LIB}"])
        record = out.with_name(CAPI_MPI_FLAGS)
        record.write_text(f"{shlex.join(cflags)}\n{shlex.join(libs)}\n")
        self._to_source(out)
        self._to_source(record)

    def build_extension(self, ext):
        if ext.name != "closure._kernels_cuda":
            return super().build_extension(ext)
        try:
            nvcc = ext.nvcc  # type: ignore[attr-defined]
            obj = Path(self.build_temp) / "closure_kernels_cu.o"
            obj.parent.mkdir(parents=True, exist_ok=True)
            cmd = [nvcc, "-c", str(HERE / CSRC / "closure_kernels.cu"), "-o", str(obj),
                   "-O2", "-Xcompiler", "-fPIC", "-std=c++17", f"-I{HERE / CSRC}",
                   "-gencode", f"arch={CUDA_ARCH},code={CUDA_ARCH}"]
            subprocess.run(cmd, check=True)
            ext.extra_objects = [str(obj)]
            super().build_extension(ext)
            self._cuda_built = True
        except Exception as exc:  # optional extension: warn and go on
            warnings.warn(f"closure._kernels_cuda not built ({exc}); the CUDA path is off",
                          stacklevel=1)
            print(f"WARNING: closure._kernels_cuda not built: {exc}", file=sys.stderr)

    def copy_extensions_to_source(self):
        # in-place (editable) builds: skip the optional extension if it was not built
        if not getattr(self, "_cuda_built", False):
            self.extensions = [e for e in self.extensions if e.name != "closure._kernels_cuda"]
        super().copy_extensions_to_source()


ext_modules = [
    Pybind11Extension(
        "closure._kernels_cpp", [f"{CSRC}/closure_kernels.cpp", f"{CSRC}/decoder_body.cpp",
                                 f"{CSRC}/small_gemm.cpp", f"{CSRC}/latent_unet.cpp",
                                 f"{CSRC}/isa.cpp"],
        include_dirs=[CSRC], cxx_std=17, extra_compile_args=list(KERNEL_FLAGS),
        extra_link_args=["-fopenmp"], depends=sorted(str(h) for h in Path(CSRC).glob("*.h"))),
]

_nvcc = find_nvcc()
_cudalib = cuda_lib_dir(_nvcc) if _nvcc else None
if _nvcc and _cudalib:
    cuda_ext = Pybind11Extension(
        "closure._kernels_cuda", [f"{CSRC}/bind_cuda.cpp"], include_dirs=[CSRC], cxx_std=17,
        extra_compile_args=["-O2"], library_dirs=[_cudalib],
        libraries=["cudart_static", "dl", "rt", "pthread"])
    cuda_ext.nvcc = _nvcc
    ext_modules.append(cuda_ext)
else:
    warnings.warn("nvcc (or its libcudart_static.a) not found: closure._kernels_cuda (CUDA "
                  "kernels) is not built; closure.kernels uses the C++/OpenMP or PyTorch path",
                  stacklevel=1)
    print("WARNING: nvcc not found; skipping the CUDA extension closure._kernels_cuda",
          file=sys.stderr)

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
