#!/usr/bin/env bash
# Cross-compiles the C++ kernels (closure._kernels_cpp) for Linux aarch64, to check that the
# package builds there (no x86 intrinsic or target attribute outside the CK_X86 guards of
# csrc/isa.h) and that the portable micro-kernel is vectorized for NEON; runs the stand-alone
# micro-kernel check (benchmarks/gemm_check.cpp) under qemu-aarch64 when that is installed.
#
#   apt-get install g++-aarch64-linux-gnu [qemu-user]
#   bash benchmarks/cross_check_aarch64.sh            # from the repository root, venv active
#
# Exit status 0: all checks passed; 77: no cross compiler (skipped); anything else: a failure.
# The Python headers are the host's: an aarch64 Linux Python has the same LP64 pyconfig.h
# sizes, so -c compiles the real sources (the objects are not linked into a loadable module).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
if ! command -v "$CXX" >/dev/null; then
  echo "skipped: $CXX not found (apt-get install g++-aarch64-linux-gnu)"
  exit 77
fi
PY=${PYTHON:-python}
PYINC=$($PY -c "import sysconfig; print(sysconfig.get_paths()['include'])")
PBINC=$($PY -c "import pybind11; print(pybind11.get_include())")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
FLAGS=(-std=c++17 -O3 -fopenmp -fPIC -fvisibility=hidden -Wall -Werror -Icsrc -I"$PYINC"
       -I"$PBINC")
for src in csrc/closure_kernels.cpp csrc/decoder_body.cpp csrc/small_gemm.cpp \
           csrc/latent_unet.cpp csrc/isa.cpp; do
  "$CXX" "${FLAGS[@]}" -c "$src" -o "$OUT/$(basename "$src" .cpp).o"
  echo "compiled $src"
done
"$CXX" -shared -fopenmp "$OUT"/*.o -o "$OUT/_kernels_cpp.so"
echo "linked $OUT/_kernels_cpp.so: $(file -b "$OUT/_kernels_cpp.so" | cut -d, -f1-2)"
# the portable tiles must use NEON fused multiply-adds on 4 lanes
n=$(aarch64-linux-gnu-objdump -d "$OUT/small_gemm.o" | grep -c 'fmla\s*v[0-9]*\.4s' || true)
echo "small_gemm.o: $n NEON fmla (4 x float32) instructions"
[ "$n" -gt 100 ] || { echo "FAILED: the portable micro-kernel is not vectorized"; exit 1; }
if command -v qemu-aarch64 >/dev/null; then
  "$CXX" -std=c++17 -O3 -fopenmp-simd -static -Icsrc benchmarks/gemm_check.cpp \
    csrc/small_gemm.cpp csrc/isa.cpp -o "$OUT/gemm_check"
  qemu-aarch64 "$OUT/gemm_check"
else
  echo "qemu-aarch64 not found: micro-kernel not run (apt-get install qemu-user)"
fi
echo "aarch64 cross check passed"
