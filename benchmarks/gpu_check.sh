#!/usr/bin/env bash
# The closure's GPU check, for a machine with an NVIDIA GPU, nvcc and a CUDA build of PyTorch:
# builds the extensions in place (the CUDA one with nvcc), runs the kernel and closure API tests
# (there the CUDA paths run, and `auto` resolves to cuda), then the closure benchmark with the
# CUDA backend (table mode beside C++, online mode, kernels on GPU tensors).
#     OUT=some/dir bash benchmarks/gpu_check.sh      (logs and closure_gpu.json in $OUT)
set -u
out=${OUT:-gpu_check}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/nbcache}
{
    nvidia-smi -L
    nvcc --version | tail -2
    $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
    echo "cores $(nproc)"; lscpu | grep 'Model name'
} 2>&1 | tee "$out/env.txt"
$py setup.py build_ext --inplace -j 2 >"$out/build.log" 2>&1 || tail -30 "$out/build.log"
grep -iE "warning: closure|error" "$out/build.log" | head
$py -c "from closure import kernels as K; print('backends', K.available_backends())"
timeout "${TEST_TIMEOUT:-300}" $py -m pytest -q -p no:cacheprovider -rfEs \
    tests/test_closure_kernels.py tests/test_closure_api.py 2>&1 | tee "$out/tests.log" | tail -30
timeout "${BENCH_TIMEOUT:-300}" $py benchmarks/bench_closure.py --json "$out/closure_gpu.json" \
    --backends cuda,cpp --online-backends cuda --threads "$(nproc)" 2>&1 | tee "$out/bench.log"
