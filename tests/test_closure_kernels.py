"""Compiled closure kernels (csrc/) against their pure-PyTorch references, on fresh random input.

Agreement: relative error <= 1e-5 (float32 paths) / 1e-12 (float64 table path). The hotspot
count may differ only by cells whose reference T is within 1e-5 max|T| of the threshold (the conv
sums run in a different order); that set is computed and the difference bounded by it.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from closure import kernels as K

ROOT = Path(__file__).resolve().parents[1]
COMPILED = [b for b in K.available_backends() if b != "torch"]
needs_cpp = pytest.mark.skipif("cpp" not in K.available_backends(),
                               reason="closure._kernels_cpp not built")
F = torch.nn.functional


def _rng() -> np.random.Generator:
    """Fresh inputs every session, replayable: TEST_SEED (in the report header) and the test
    id seed it; torch's generator is seeded from it too."""
    from conftest import seeded_rng

    rng = seeded_rng(os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0])
    torch.manual_seed(int(rng.integers(2**62)))
    return rng


def test_cpp_module_is_built():
    assert "cpp" in K.available_backends(), "closure._kernels_cpp did not build/import"


@pytest.mark.parametrize("backend", COMPILED)
def test_sample_latent_matches_torch(backend):
    rng = _rng()
    B, E = int(rng.integers(1, 9)), int(rng.integers(1, 700))
    mean = rng.normal(size=(B, E)).astype(np.float32)
    logvar = rng.uniform(-8, 2, size=(B, E)).astype(np.float32)
    ids = rng.integers(-2**62, 2**62, B)
    steps = rng.integers(0, 1000, B)
    seed = int(rng.integers(0, 2**63)) * 2 + 1
    a = K.sample_latent(mean, logvar, seed, ids, steps, backend=backend)
    b = K.sample_latent(mean, logvar, seed, ids, steps, backend="torch")
    assert a.dtype == np.float32 and a.shape == (B, E)
    assert np.all(np.isfinite(a))
    assert np.max(np.abs(a - b)) <= 1e-5 * max(1.0, np.max(np.abs(b)))


def test_counter_rng_is_batch_independent_and_normal():
    rng = _rng()
    ids = rng.integers(0, 10**9, 6)
    steps = rng.integers(0, 50, 6)
    mean = np.zeros((6, 4000), np.float32)
    logvar = np.zeros((6, 4000), np.float32)
    full = K.sample_latent(mean, logvar, 7, ids, steps)
    for i in range(6):  # one cell alone gives the same sample as in the batch
        one = K.sample_latent(mean[i:i + 1], logvar[i:i + 1], 7, ids[i:i + 1], steps[i:i + 1])
        np.testing.assert_array_equal(one[0], full[i])
    other = K.sample_latent(mean, logvar, 8, ids, steps)
    assert not np.allclose(other, full)
    x = full.ravel().astype(np.float64)
    assert abs(x.mean()) < 0.03 and abs(x.std() - 1.0) < 0.03
    # sample = mean + exp(logvar / 2) * eps
    m2 = np.full_like(mean, 2.0)
    v2 = np.full_like(mean, np.log(9.0))
    np.testing.assert_allclose(K.sample_latent(m2, v2, 7, ids, steps), 2.0 + 3.0 * full,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", COMPILED)
def test_hotspot_head_matches_torch(backend):
    rng = _rng()
    B, C = int(rng.integers(1, 5)), int(rng.integers(1, 9))
    H, W = int(rng.integers(1, 40)), int(rng.integers(1, 50))
    h = rng.normal(size=(B, C, H, W)).astype(np.float32)
    w = (rng.normal(size=(1, C, 3, 3)) * 0.1).astype(np.float32)
    bias, lo, hi, thr = float(rng.uniform(0, 0.2)), 300.0, 5000.0, 875.0
    c1, s1 = K.hotspot_head(h, w, bias, lo, hi, thr, backend=backend)
    c2, s2 = K.hotspot_head(h, w, bias, lo, hi, thr, backend="torch")
    # reference T and the cells within round-off of the threshold
    x = torch.from_numpy(h)
    T = (torch.nn.functional.conv2d(x, torch.from_numpy(w), torch.tensor([bias]), padding=1)
         * (hi - lo) + lo)[:, 0].numpy()
    near = (np.abs(T - thr) <= 1e-5 * np.abs(T).max()).reshape(B, -1).sum(1)
    assert np.all(np.abs(c1 - c2) <= near)
    assert np.all(c2 == (T > thr).reshape(B, -1).sum(1))
    ok = c1 == c2
    np.testing.assert_allclose(s1[ok], s2[ok], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("backend", COMPILED)
def test_table_lookup_matches_torch(backend):
    rng = _rng()
    nP, nT, N = int(rng.integers(2, 9)), int(rng.integers(2, 25)), int(rng.integers(1, 5000))
    nodes = np.sort(rng.uniform(1e9, 20e9, nP))
    nodes[1:] = np.maximum(nodes[1:], nodes[:-1] + 1e6)
    tabs = [rng.random((nP, nT)) for _ in range(3)]
    dt_t = 2.5e-10
    ps = rng.uniform(0.0, 25e9, N)
    t0 = rng.uniform(0.0, dt_t * (nT + 2), N)
    t1 = t0 + rng.uniform(1e-13, 1e-9, N)
    sh = rng.integers(0, 2, N).astype(np.uint8)
    a = K.table_lookup(nodes, dt_t, *tabs, ps, t0, t1, sh, 875.0, backend=backend)
    b = K.table_lookup(nodes, dt_t, *tabs, ps, t0, t1, sh, 875.0, backend="torch")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9)


def _random_table_step_args(rng: np.random.Generator, scalar_dt: bool) -> tuple:
    nP, nT, N = int(rng.integers(2, 9)), int(rng.integers(2, 25)), int(rng.integers(1, 5000))
    nodes = np.sort(rng.uniform(1e9, 20e9, nP))
    nodes[1:] = np.maximum(nodes[1:], nodes[:-1] + 1e6)
    tabs = [rng.random((nP, nT)) for _ in range(3)]
    dt_t = dt_meso = 2.5e-10
    window = 0.4 * dt_meso
    t_old = rng.uniform(0.0, dt_t * (nT + 2), N)
    t_old[: N // 3] = rng.uniform(0.0, 2 * window, N // 3)  # inside and just past the window
    steps = np.floor(t_old / dt_meso).astype(np.int64)
    frac = t_old / dt_meso - steps
    dt = float(rng.uniform(1e-13, 1e-9)) if scalar_dt else rng.uniform(1e-13, 1e-9, N)
    return (nodes, dt_t, *tabs, rng.uniform(0.0, 25e9, N), t_old, steps, frac,
            rng.uniform(0.0, 25e9, N), dt, dt_meso, window, 3e9, 18e9, 0, 2)


@needs_cpp
@pytest.mark.parametrize("scalar_dt", [False, True])
def test_table_step_matches_reference(scalar_dt):
    rng = _rng()
    args = _random_table_step_args(rng, scalar_dt)
    got = K.table_step(*args, backend="cpp")
    ref = K.table_step_reference(*args)
    names = ("ps", "t", "steps", "frac", "status", "A", "T_hs", "U", "rate")
    for name, x, y in zip(names, got, ref, strict=True):
        assert x.shape == y.shape == (len(args[9]),), name
        if name in ("steps", "status"):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9, err_msg=name)
    ps_old, t_old, pressure = args[5], args[6], args[9]
    inside = t_old < args[12]
    assert np.array_equal(got[0][inside], np.maximum(ps_old, pressure)[inside])  # Ps rises ...
    assert np.array_equal(got[0][~inside], ps_old[~inside])  # ... only inside the window
    assert set(np.unique(got[4])) <= {0, 2} and (got[4] == 2).any() and (got[4] == 0).any()
    assert np.all((got[3] >= 0) & (got[3] < 1))


def test_table_lookup_known_values():
    nodes = np.array([1.0, 3.0])
    A = np.array([[0.0, 1.0, 1.0], [0.0, 3.0, 5.0]])
    T = A + 900.0
    U = A * 0.1
    ps = np.array([2.0, 1.0, 3.0, 2.0, 2.0])
    t0 = np.array([0.0, 0.5, 0.0, 2.0, 5.0])
    t1 = np.array([1.0, 1.5, 2.0, 3.0, 6.0])
    sh = np.array([1, 1, 1, 1, 0], np.uint8)
    for be in K.available_backends():
        a, t, u, r = K.table_lookup(nodes, 1.0, A, T, U, ps, t0, t1, sh, 875.0, backend=be)
        np.testing.assert_allclose(a, [2.0, 1.0, 5.0, 3.0, 0.0])
        np.testing.assert_allclose(r, [2.0, 0.5, 2.5, 0.0, 0.0])  # hold beyond the horizon
        np.testing.assert_allclose(t, [902.0, 901.0, 905.0, 903.0, 875.0])
        np.testing.assert_allclose(u, [0.2, 0.1, 0.5, 0.3, 0.0])


def _roundoff_band(vae, z) -> tuple[np.ndarray, float]:
    """Decoded T (float32) and the band around it that float32 round-off may cross: the larger
    of 1e-5 max|T| and twice the deviation from a float64 decode (the random, scaled-up weights
    of _straddling_vae can make T a small difference of large activations)."""
    with torch.no_grad():
        T = (vae.decode(z)[:, 0] * 4700.0 + 300.0).numpy()
        T64 = (copy.deepcopy(vae).double().decode(z.double())[:, 0] * 4700.0 + 300.0).numpy()
    return T, max(1e-5 * float(np.abs(T).max()), 2.0 * float(np.abs(T - T64).max()))


def test_decode_hotspots_paths_agree():
    vae = _straddling_vae(4)
    z = torch.randn(3, 4, 4, 6)
    T, band = _roundoff_band(vae, z)
    thr = float(np.quantile(T, 0.7))  # a threshold inside the decoded field: ~30 % hot cells
    ref = kernels_ref(vae, z, thr)
    # a cell whose T lies within round-off of the threshold may fall on either side, and the
    # mean hotspot T of a sample with few hot cells moves with it: compare T_hs where the
    # hot-cell counts agree
    near = (np.abs(T - thr) <= band).reshape(len(T), -1).sum(1)
    n = T.shape[1] * T.shape[2]
    for be in K.available_backends():
        a, t = K.decode_hotspots(vae, z, 300.0, 5000.0, thr, backend=be)
        assert np.all(np.abs(a - ref[0]) * n <= near + 0.5), be
        same = np.abs(a - ref[0]) * n < 0.5
        np.testing.assert_allclose(t[same], ref[1][same], rtol=1e-5, atol=band, err_msg=be)
    assert 0 < ref[0].mean() < 1


def kernels_ref(vae, z, thr):
    """Plain decode + de-normalize + threshold, as closure.metrics does it."""
    from closure.metrics import hotspot_temperature

    with torch.no_grad():
        T = (vae.decode(z)[:, 0] * 4700.0 + 300.0).numpy()
    return (T > thr).mean(axis=(1, 2)), hotspot_temperature(T, thr)


def test_backend_selection(monkeypatch):
    monkeypatch.setenv(K.ENV_VAR, "torch")
    assert K.resolve_backend() == "torch"
    assert K.resolve_backend("cpp") == "cpp"
    monkeypatch.setenv(K.ENV_VAR, "bogus")
    with pytest.raises(ValueError, match="CLOSURE_KERNELS"):
        K.resolve_backend()
    monkeypatch.delenv(K.ENV_VAR)
    with pytest.raises(ValueError, match="backend"):
        K.resolve_backend("fortran")
    if "cuda" not in K.available_backends():
        with pytest.raises(ValueError, match="not available"):
            K.resolve_backend("cuda")
    assert K.resolve_backend() == K.available_backends()[0]


def test_cuda_module_falls_back_without_gpu():
    try:
        import closure._kernels_cuda as cu
    except ImportError:
        pytest.skip("closure._kernels_cuda not built (no nvcc at install time)")
    if cu.device_count() > 0:
        pytest.skip("a GPU is present: covered by the backend comparison tests")
    with pytest.raises(RuntimeError, match="CUDA error"):
        cu.sample_latent(np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32), 1,
                         np.zeros(1, np.int64), np.zeros(1, np.int64))
    assert "cuda" not in K.available_backends()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cu_file_compiles(tmp_path):
    cmd = ["nvcc", "-c", str(ROOT / "csrc" / "closure_kernels.cu"), "-o",
           str(tmp_path / "k.o"), "-O2", "-Xcompiler", "-fPIC", "-std=c++17",
           f"-I{ROOT / 'csrc'}", "-gencode", "arch=compute_75,code=compute_75"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "k.o").stat().st_size > 0


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
def test_micro_kernel_builds_and_runs_without_x86_paths(tmp_path):
    """A compiler without the x86 target attributes (here: -DCK_NO_X86) builds the portable
    path alone, and it computes correctly (benchmarks/gemm_check.cpp)."""
    exe = tmp_path / "gemm_check"
    src = [str(ROOT / p) for p in ("benchmarks/gemm_check.cpp", "csrc/small_gemm.cpp",
                                   "csrc/isa.cpp")]
    res = subprocess.run(["g++", "-std=c++17", "-O2", "-fopenmp-simd", "-Wall", "-Werror",
                          "-DCK_NO_X86", f"-I{ROOT / 'csrc'}", *src, "-o", str(exe)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout
    assert res.stdout.splitlines()[0].startswith("portable") and "avx" not in res.stdout


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None,
                    reason="no aarch64 cross compiler (apt-get install g++-aarch64-linux-gnu)")
def test_cpp_kernels_cross_compile_for_aarch64():
    """The C++ module builds for Linux aarch64 with -Werror (x86 code only behind its guards),
    its portable micro-kernel uses NEON FMAs, and (with qemu-aarch64) computes correctly."""
    import sys

    env = {**os.environ, "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "cross_check_aarch64.sh")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "aarch64 cross check passed" in res.stdout
    if shutil.which("qemu-aarch64"):
        assert "portable max rel. error" in res.stdout


# ---------------------------------------------------------------------------------------------
# restructured decoder body (csrc/decoder_body.cpp)



def _rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


ISAS = ("avx512", "avx2", "portable")


def _cpu_isas() -> list[str]:
    mod = K._module("cpp")
    return mod.isa_supported() if mod is not None else []


@pytest.fixture(params=ISAS, ids=[f"isa-{i}" for i in ISAS])
def gemm_isa(request):
    """Run a test on each instruction-set path of the C++ kernels (the micro-kernel and the
    fused kernels' vector passes, csrc/isa.h): AVX-512, AVX2+FMA and portable, each where the
    CPU supports it (the test id names the path)."""
    from closure import _kernels_cpp as cpp

    if request.param not in cpp.isa_supported():
        pytest.skip(f"the CPU does not support the {request.param} path "
                    f"(it supports {cpp.isa_supported()})")
    was = cpp.isa_active()
    cpp.set_isa(request.param)
    assert cpp.isa_active() == request.param
    yield request.param
    cpp.set_isa(was)


@needs_cpp
def test_isa_switch_names_paths_and_refuses_unsupported_ones():
    from closure import _kernels_cpp as cpp

    sup = cpp.isa_supported()
    assert sup[-1] == "portable" and set(sup) <= set(ISAS)
    assert sup == [i for i in ISAS if i in sup]  # widest first
    was = cpp.isa_active()
    try:
        assert cpp.isa_default() in sup
        for isa in sup:
            cpp.set_isa(isa)
            assert cpp.isa_active() == isa and cpp.avx512_active() == (isa == "avx512")
        cpp.set_isa("auto")
        assert cpp.isa_active() == cpp.isa_default()
        with pytest.raises(ValueError, match="not one of"):
            cpp.set_isa("sse9")
        for isa in set(ISAS) - set(sup):
            with pytest.raises(ValueError, match="does not support"):
                cpp.set_isa(isa)
        # the names from before the AVX2 path: off = the best path below AVX-512
        cpp.set_avx512(False)
        assert cpp.isa_active() == next(i for i in sup if i != "avx512")
        cpp.set_avx512(True)
        assert cpp.isa_active() == sup[0]
    finally:
        cpp.set_isa(was)


@needs_cpp
@pytest.mark.parametrize("cap", ["portable", "AVX2", "bogus"])
def test_max_isa_environment_variable_caps_the_path(cap):
    import sys

    code = ("import warnings; warnings.simplefilter('always')\n"
            "from closure import _kernels_cpp as c; print(c.isa_active(), c.isa_default())")
    env = {**os.environ, "CLOSURE_MAX_ISA": cap}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    active, default = r.stdout.split()
    assert active == default
    sup = _cpu_isas()
    if cap == "bogus":
        assert active == sup[0] and "CLOSURE_MAX_ISA" in r.stderr
    else:
        # a cap above the CPU's best path leaves the best
        assert active == (cap.lower() if cap.lower() in sup else sup[0])


def _gemm_reference(at, b, boff, bias, slope, M, N):
    ref = np.zeros((M, N)) + (bias[:, None] if bias.size else 0.0)
    for k in range(at.shape[0]):
        ref += at[k, :M, None].astype(np.float64) * b[boff[k]:boff[k] + N][None, :]
    return np.maximum(ref, slope * ref)


@needs_cpp
def test_micro_kernel_matches_numpy(gemm_isa):
    """The register-blocked product of the active path (csrc/small_gemm.cpp) on fresh random
    shapes: row counts off the tile height, column counts off the panel and vector widths
    (masked edges), K = 0, no bias, LeakyReLU or identity, shifted rows of B (direct
    convolutions); the columns of C past N stay untouched."""
    from closure import _kernels_cpp as cpp

    rng = _rng()
    shapes = [(int(rng.integers(1, 40)), int(rng.integers(1, 120)), int(rng.integers(0, 50)))
              for _ in range(40)]
    shapes += [(M, N, 7) for M in (1, 4, 5, 6, 7, 8, 9, 12, 13)
               for N in (1, 7, 8, 9, 15, 16, 17, 24, 47, 48, 49)]
    for M, N, nk in shapes:
        lda, ldc = M + int(rng.integers(0, 3)), N + int(rng.integers(0, 5))
        at = rng.normal(size=(nk, lda)).astype(np.float32)
        b = rng.normal(size=(nk + 2) * (N + 3)).astype(np.float32)
        boff = rng.integers(0, b.size - N + 1, nk)
        bias = (rng.normal(size=M).astype(np.float32) if rng.random() < 0.7
                else np.zeros(0, np.float32))
        slope = float(rng.choice([1.0, 0.2, 0.0]))
        c = cpp.gemm_bias_act(at, b, boff, bias, slope, M, N, ldc)
        ref = _gemm_reference(at, b, boff, bias, slope, M, N)
        assert np.all(np.isnan(c[:, N:])), (M, N, nk)
        scale = max(np.abs(ref).max(), 1.0)
        assert np.max(np.abs(c[:, :N] - ref)) <= 1e-5 * scale, (gemm_isa, M, N, nk)


@needs_cpp
@pytest.mark.parametrize("shape", ["random", "one-row", "one-column", "single", "wide"])
@pytest.mark.parametrize("with_mix", [True, False])
def test_upconv_unit_matches_upsample_then_conv_unit(shape, with_mix, gemm_isa):
    from closure import _kernels_cpp as cpp
    from closure.models.blocks import ConvUnit

    rng = _rng()
    torch.manual_seed(int(rng.integers(0, 2**31)))
    B, C, O = int(rng.integers(1, 4)), int(rng.integers(1, 20)), int(rng.integers(1, 20))
    h, w = int(rng.integers(1, 12)), int(rng.integers(1, 14))
    if shape == "wide":  # full 8-row blocks and 48-column panels of the micro-kernel
        C, O, h, w = 16, 24, int(rng.integers(5, 11)), 24 * int(rng.integers(1, 3))
    h, w = {"one-row": (1, w), "one-column": (h, 1), "single": (1, 1)}.get(shape, (h, w))
    unit = ConvUnit(C, O).eval()
    x = torch.from_numpy(rng.normal(size=(B, C, h, w)).astype(np.float32))
    with torch.no_grad():
        up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        ref = unit(up) if with_mix else F.leaky_relu(unit.conv(up), 0.2)
        w9T = K._np(unit.conv.weight.permute(1, 2, 3, 0).reshape(C, 9 * O))
        wm, bm = ((K._np(unit.mix.weight[:, :, 0, 0].t()), K._np(unit.mix.bias)) if with_mix
                  else (np.zeros(0, np.float32), np.zeros(0, np.float32)))
        out = cpp.upconv3x3_unit(x.numpy(), w9T, K._np(unit.conv.bias), wm, bm, 0.2)
    assert out.shape == (B, O, 2 * h, 2 * w)
    assert _rel_err(out, ref) <= 1e-5


@needs_cpp
def test_winograd_unit_matches_conv_unit(gemm_isa):
    from closure import _kernels_cpp as cpp

    rng = _rng()
    cases = [(int(rng.integers(1, 20)), int(rng.integers(1, 20)), None), (1, 1, None),
             (2, 3, None), (5, 1, None), (7, 50, None),  # 25 tiles per row: one per group
             (6, 8 * int(rng.integers(1, 5)), 16)]  # the last: full 8-row blocks
    for H, W, width in cases:
        B, C, O = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        O = width or O
        x = torch.from_numpy(rng.normal(size=(B, C, H, W)).astype(np.float32))
        wt = torch.from_numpy(rng.normal(size=(O, C, 3, 3)).astype(np.float32))
        bias = torch.from_numpy(rng.normal(size=O).astype(np.float32))
        U = K._winograd_weights(wt)
        empty = np.zeros(0, np.float32)
        out = cpp.winograd_unit(x.numpy(), U, bias.numpy(), empty, empty, 0.2)
        ref = F.leaky_relu(F.conv2d(x, wt, bias, padding=1), 0.2)
        assert _rel_err(out, ref) <= 1e-5, (B, C, O, H, W)
        wm = torch.from_numpy(rng.normal(size=(O, O)).astype(np.float32))
        bm = torch.from_numpy(rng.normal(size=O).astype(np.float32))
        out = cpp.winograd_unit(x.numpy(), U, bias.numpy(), wm.t().contiguous().numpy(),
                                bm.numpy(), 0.2)
        ref = F.leaky_relu(F.conv2d(ref, wm[:, :, None, None], bm), 0.2)
        assert _rel_err(out, ref) <= 1e-5, (B, C, O, H, W)


@needs_cpp
@pytest.mark.parametrize("co", [3, 8, 16, 32])
@pytest.mark.parametrize("wide", [False, True])
def test_fused_last_level_matches_torch(co, wide, gemm_isa):
    from closure import _kernels_cpp as cpp
    from closure.models.blocks import ConvUnit

    rng = _rng()
    torch.manual_seed(int(rng.integers(0, 2**31)))
    B, C = int(rng.integers(1, 4)), int(rng.integers(1, 40))
    H, W = int(rng.integers(1, 40)), int(rng.integers(1, 45))
    if wide:  # the head's 64-column register blocks, with and without a remainder
        H, W = int(rng.integers(1, 9)), int(rng.choice([66, int(rng.integers(67, 200))]))
    unit, head = ConvUnit(C, co).eval(), torch.nn.Conv2d(co, 1, 3, padding=1).eval()
    x = torch.from_numpy(rng.normal(size=(B, C, H, W)).astype(np.float32))
    lo, hi, thr = 300.0, 5000.0, 875.0
    with torch.no_grad():
        a = unit(x)
        T = (head(a)[:, 0] * np.float32(hi - lo) + np.float32(lo)).numpy()
        thr = float(np.quantile(T, 0.7))  # a threshold inside the field: ~30 % hot cells
        c1, s1 = cpp.last_level_hotspots(
            x.numpy(), K._winograd_weights(unit.conv.weight), K._np(unit.conv.bias),
            K._np(unit.mix.weight[:, :, 0, 0].t()), K._np(unit.mix.bias),
            K._np(head.weight[0].permute(1, 2, 0)), float(head.bias[0]), 0.2, lo, hi, thr)
    c2, s2 = K.hotspot_head_torch(a, head.weight.detach(), float(head.bias.detach()[0]), lo,
                                  hi, thr)
    near = (np.abs(T - thr) <= 1e-5 * np.abs(T).max()).reshape(B, -1).sum(1)
    assert c2.sum() > 0
    assert np.all(np.abs(c1 - c2) <= near)
    ok = c1 == c2
    # hot T of both signs can cancel in the sum, and T = a (hi - lo) + lo cancels too where
    # a ~ -lo / (hi - lo): round-off relative to the sum of |a (hi - lo)| + lo over hot cells
    # (a sum of 1.66 K from terms of ~300 K differed by 4e-5 K on fresh inputs)
    scale = np.where(T > thr, np.abs(T - lo) + lo, 0.0).reshape(B, -1).sum(1)
    assert np.all(np.abs(s1 - s2)[ok] <= 1e-5 * scale[ok])


@needs_cpp
def test_conv3x3_act_matches_torch(gemm_isa):
    from closure import _kernels_cpp as cpp

    rng = _rng()
    for H, W in [(int(rng.integers(1, 20)), int(rng.integers(1, 30))), (1, 1), (16, 24)]:
        B, C, O = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 140))
        conv = torch.nn.Conv2d(C, O, 3, padding=1)
        x = torch.from_numpy(rng.normal(size=(B, C, H, W)).astype(np.float32))
        with torch.no_grad():
            ref = F.leaky_relu(conv(x), 0.2)
            out = cpp.conv3x3_act(x.numpy(), *K._direct_weights(conv), 0.2)
        assert out.shape == (B, O, H, W)
        assert _rel_err(out, ref) <= 1e-5, (B, C, O, H, W)


@needs_cpp
@pytest.mark.parametrize("case", ["random", "one-row", "single", "decoder", "batch-1"])
def test_upconv_last_level_matches_torch(case, gemm_isa):
    """The two last decoder levels and the head in one streaming pass: against the modules,
    blocks of output rows per sample (batch 1 on two threads) included."""
    from closure import _kernels_cpp as cpp
    from closure.models.blocks import ConvUnit

    rng = _rng()
    torch.manual_seed(int(rng.integers(0, 2**31)))
    B, C, CM, CO = int(rng.integers(1, 4)), int(rng.integers(1, 20)), 16, 8
    h, w = int(rng.integers(1, 14)), int(rng.integers(1, 40))
    if case == "decoder":  # the default decoder's last two levels (on a quarter-height grid)
        B, C, CM, CO, h, w = 2, 64, 32, 16, 16, 96
    h, w = {"one-row": (1, w), "single": (1, 1), "batch-1": (int(rng.integers(5, 12)), w)}.get(
        case, (h, w))
    B = 1 if case == "batch-1" else B
    unit1, unit2 = ConvUnit(C, CM).eval(), ConvUnit(CM, CO).eval()
    head = torch.nn.Conv2d(CO, 1, 3, padding=1).eval()
    x = torch.from_numpy(rng.normal(size=(B, C, h, w)).astype(np.float32))
    lo, hi = 300.0, 5000.0
    with torch.no_grad():
        a = unit2(unit1(F.interpolate(x, scale_factor=2, mode="bilinear",
                                      align_corners=False)))
        T = (head(a)[:, 0] * np.float32(hi - lo) + np.float32(lo)).numpy()
        thr = float(np.quantile(T, 0.7))
        c1, s1 = cpp.upconv_last_hotspots(
            x.numpy(), K._np(unit1.conv.weight.permute(1, 2, 3, 0).reshape(C, 9 * CM)),
            K._np(unit1.conv.bias), *K._mix_weights(unit1),
            K._winograd_weights(unit2.conv.weight), K._np(unit2.conv.bias),
            *K._mix_weights(unit2), K._np(head.weight[0].permute(1, 2, 0)),
            float(head.bias[0]), 0.2, lo, hi, thr)
    c2, s2 = K.hotspot_head_torch(a, head.weight.detach(), float(head.bias.detach()[0]), lo,
                                  hi, thr)
    near = (np.abs(T - thr) <= 1e-5 * np.abs(T).max()).reshape(B, -1).sum(1)
    assert c1.shape == c2.shape == (B,) and c2.sum() > 0
    assert np.all(np.abs(c1 - c2) <= near)
    ok = c1 == c2
    # hot T of both signs can cancel in the sum, and T = a (hi - lo) + lo cancels too where
    # a ~ -lo / (hi - lo): round-off relative to the sum of |a (hi - lo)| + lo over hot cells
    # (a sum of 1.66 K from terms of ~300 K differed by 4e-5 K on fresh inputs)
    scale = np.where(T > thr, np.abs(T - lo) + lo, 0.0).reshape(B, -1).sum(1)
    assert np.all(np.abs(s1 - s2)[ok] <= 1e-5 * scale[ok])


def _straddling_vae(base: int):
    """FieldVAE with random weights scaled up (the random init shrinks the signal), so that
    the decoded T field has structure to threshold."""
    from closure.models.vae import FieldVAE

    torch.manual_seed(int(_rng().integers(0, 2**31)))
    vae = FieldVAE(base).eval()
    with torch.no_grad():
        for mod in vae.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.mul_(2.5 if base < 16 else 1.5)
        vae.dec_out.bias.fill_(0.125)
    return vae


def _assert_cpp_decode_matches(vae, z, quantile: float) -> None:
    """C++ decode against ``vae.decode`` at a threshold inside the decoded field."""
    T, band = _roundoff_band(vae, z)
    thr = float(np.quantile(T, quantile))
    a1, t1 = K.decode_hotspots(vae, z, 300.0, 5000.0, thr, backend="cpp")
    a2, t2 = K.decode_hotspots(vae, z, 300.0, 5000.0, thr, backend="torch")
    B, n = T.shape[0], T.shape[1] * T.shape[2]
    near = (np.abs(T - thr) <= band).reshape(B, -1).sum(1)
    assert np.all(np.abs(a1 - a2) * n <= near + 0.5)
    assert np.all(np.abs(a2 - (T > thr).mean(axis=(1, 2))) * n <= near + 0.5)
    ok = np.abs(a1 - a2) * n < 0.5  # round-off relative to the field's scale, as for the count
    np.testing.assert_allclose(t1[ok], t2[ok], rtol=1e-5, atol=band)
    assert 0 < a2.mean() < 1


@needs_cpp
@pytest.mark.parametrize("base", [8, 16])
def test_restructured_decode_matches_the_decoder(base, gemm_isa):
    """The C++ body (up-sampling convs, Winograd, fused last level) against ``vae.decode``."""
    vae = _straddling_vae(base)
    prep = K._prepare(vae)
    kinds = [u["kind"] for _, _, u in prep["units"]]
    assert kinds.count("upconv") == 3 and "winograd" in kinds and prep["last"] is not None
    z = torch.randn(3, 4, int(_rng().integers(1, 5)), 5)
    _assert_cpp_decode_matches(vae, z, 0.8)


@needs_cpp
def test_restructured_decode_of_a_decoder_built_in_inference_mode():
    """Parameters created under torch.inference_mode() have no version counter: the weight
    cache must still work (and agree with the decoder)."""
    with torch.inference_mode():
        vae = _straddling_vae(8)
        z = torch.randn(2, 4, 2, 3)
        _assert_cpp_decode_matches(vae, z, 0.5)


@needs_cpp
def test_restructured_decode_follows_weight_updates():
    """Re-laid-out weights are cached per module and rebuilt when a parameter changes."""
    vae = _straddling_vae(8)
    z = torch.randn(2, 4, 2, 3)
    _assert_cpp_decode_matches(vae, z, 0.5)
    before = K._prepare(vae)
    with torch.no_grad():
        vae.dec_out.bias.add_(0.1)
        vae.dec[1][0].conv.weight.neg_()
        vae.dec[0][1].conv.weight.mul_(0.5)
    after = K._prepare(vae)
    assert after is not before and after["last"]["bh"] == float(vae.dec_out.bias.detach()[0])
    _assert_cpp_decode_matches(vae, z, 0.5)


@needs_cpp
@pytest.mark.parametrize("depth,reps,grid", [(2, 2, (16, 24)), (2, 1, (5, 7)), (1, 2, (3, 5)),
                                             (0, 1, (4, 6)), (2, 2, (1, 1)), (2, 2, (9, 2))])
def test_unet_forward_matches_the_module(depth, reps, grid, gemm_isa):
    """The C++ U-Net (csrc/latent_unet.cpp) against UNet.forward: pooling with ceil_mode on odd
    grids, up-sampling to the skip's size, skips, random (non-zero) output layer."""
    from closure.models.unet import UNet

    rng = _rng()
    torch.manual_seed(int(rng.integers(0, 2**31)))
    c_in, c_out, base = int(rng.integers(1, 13)), int(rng.integers(1, 9)), int(rng.integers(3, 17))
    net = UNet(c_in, c_out, base=base, depth=depth, reps=reps).eval()
    x = torch.from_numpy(rng.normal(size=(int(rng.integers(1, 6)), c_in, *grid))
                         .astype(np.float32))
    with torch.no_grad():
        ref = net(x)
        out = K.unet_forward(net, x, backend="cpp")
    assert out.shape == ref.shape and out.is_contiguous()
    assert _rel_err(out, ref) <= 1e-5


@needs_cpp
def test_unet_forward_propagates_nan_like_the_module():
    from closure.models.unet import UNet

    torch.manual_seed(int(_rng().integers(0, 2**31)))
    net = UNet(4, 4, base=8).eval()
    x = torch.randn(2, 4, 8, 12)
    x[1, 2, 5, 7] = float("nan")
    with torch.no_grad():
        ref, out = net(x), K.unet_forward(net, x, backend="cpp")
    assert torch.isnan(ref[1]).any() and not torch.isnan(ref[0]).any()
    assert torch.equal(torch.isnan(out), torch.isnan(ref))
    assert _rel_err(out[0], ref[0]) <= 1e-5


@needs_cpp
def test_unet_forward_falls_back_to_the_module():
    """Padding modes the kernel does not implement, training mode and autograd run the module."""
    from closure.models.unet import UNet

    x = torch.randn(2, 3, 6, 8)
    net = UNet(3, 2, base=4, padding_mode="replicate").eval()
    with torch.no_grad():
        assert torch.equal(K.unet_forward(net, x, backend="cpp"), net(x))
    net = UNet(3, 2, base=4, dropout=0.0)
    net.train()
    with torch.no_grad():
        assert torch.equal(K.unet_forward(net, x, backend="cpp"), net(x))
    net.eval()
    xg = x.clone().requires_grad_(True)
    y = K.unet_forward(net, xg, backend="cpp")
    assert y.requires_grad
    y.sum().backward()
    assert xg.grad is not None
    net.zero_grad()  # trainable weights, input without gradient (fine-tuning in eval mode)
    K.unet_forward(net, x, backend="cpp").sum().backward()
    assert net.out.weight.grad is not None


@needs_cpp
def test_runner_step_agrees_across_backends(gemm_isa):
    """One meso step of the shipped model's latent dynamics: C++ U-Nets against PyTorch."""
    from closure.api import Closure

    run = Closure.load(table=False).runner
    n, h, w = run.model.dynamics.n_latent, run.grid[0] // 8, run.grid[1] // 8
    g = torch.Generator().manual_seed(int(_rng().integers(0, 2**31)))
    mean = torch.randn(3, n, h, w, generator=g)
    logvar = torch.randn(3, n, h, w, generator=g) - 6.0
    m1, v1 = run.with_backend("torch").step(mean, logvar)
    m2, v2 = run.with_backend("cpp").step(mean, logvar)
    assert _rel_err(m2, m1) <= 1e-5 and _rel_err(v2, v1) <= 1e-5


# ---------------------------------------------------------------------------------------------
# tensors on the GPU (run where a GPU is present; skipped elsewhere)

needs_gpu = pytest.mark.skipif("cuda" not in K.available_backends(),
                               reason="no GPU (or closure._kernels_cuda not built)")


@needs_gpu
@pytest.mark.parametrize("backend", ["cuda", "torch"])
def test_kernels_on_gpu_tensors_match_the_host_reference(backend):
    rng = _rng()
    B, E = int(rng.integers(1, 40)), int(rng.integers(1, 5000))
    mean = rng.normal(size=(B, E)).astype(np.float32)
    logvar = rng.uniform(-8, 2, size=(B, E)).astype(np.float32)
    ids, steps = rng.integers(-2**62, 2**62, B), rng.integers(0, 1000, B)
    seed = int(rng.integers(0, 2**63))
    z = K.sample_latent(torch.from_numpy(mean).cuda(), torch.from_numpy(logvar).cuda(), seed,
                        ids, steps, backend=backend)
    assert z.is_cuda and z.dtype == torch.float32 and z.shape == (B, E)
    ref = K.sample_latent(mean, logvar, seed, ids, steps, backend="torch")
    assert np.max(np.abs(z.cpu().numpy() - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))
    # the head, up to full patches: several thread blocks per sample, one block-level sum each
    B, C = int(rng.integers(1, 7)), int(rng.integers(1, 40))
    H, W = int(rng.integers(1, 130)), int(rng.integers(1, 200))
    h = rng.normal(size=(B, C, H, W)).astype(np.float32)
    w = (rng.normal(size=(1, C, 3, 3)) * 0.1).astype(np.float32)
    bias, lo, hi, thr = float(rng.uniform(0, 0.2)), 300.0, 5000.0, 875.0
    c1, s1 = K.hotspot_head(torch.from_numpy(h).cuda(), torch.from_numpy(w).cuda(), bias, lo,
                            hi, thr, backend=backend)
    c2, s2 = K.hotspot_head(h, w, bias, lo, hi, thr, backend="torch")
    T = (F.conv2d(torch.from_numpy(h).double(), torch.from_numpy(w).double(),
                  torch.tensor([bias], dtype=torch.float64), padding=1) * (hi - lo) + lo)
    T = T[:, 0].numpy()
    near = (np.abs(T - thr) <= 1e-5 * np.abs(T).max()).reshape(B, -1).sum(1)
    assert c1.dtype == np.int64 and s1.dtype == np.float64
    assert np.all(np.abs(c1 - c2) <= near)
    ok = c1 == c2
    np.testing.assert_allclose(s1[ok], s2[ok], rtol=1e-5, atol=1e-3)


@needs_gpu
def test_decode_on_the_gpu_matches_the_host_and_keeps_full_float32():
    vae = _straddling_vae(16)
    z = torch.randn(5, 4, 4, 6)
    T, band = _roundoff_band(vae, z)
    thr = float(np.quantile(T, 0.7))
    ref = kernels_ref(vae, z, thr)
    gpu_vae = copy.deepcopy(vae).cuda()
    tf32 = torch.backends.cudnn.allow_tf32
    a, t = K.decode_hotspots(gpu_vae, z.cuda(), 300.0, 5000.0, thr, backend="cuda")
    assert torch.backends.cudnn.allow_tf32 == tf32  # the user's setting is restored
    near = (np.abs(T - thr) <= band).reshape(len(T), -1).sum(1)
    n = T.shape[1] * T.shape[2]
    assert np.all(np.abs(a - ref[0]) * n <= near + 0.5)
    same = np.abs(a - ref[0]) * n < 0.5
    np.testing.assert_allclose(t[same], ref[1][same], rtol=1e-5, atol=band)


@needs_gpu
def test_runner_on_the_gpu_agrees_with_the_host():
    """Encode, meso step and hotspot statistics of the shipped model on the GPU (model copy
    there) against the PyTorch path on the host; the copy follows weight updates."""
    from closure.api import Closure

    run = Closure.load(table=False).runner
    host, gpu = run.with_backend("torch"), run.with_backend("cuda")
    rng = _rng()
    ps = rng.uniform(*run.envelope, 3)
    members = np.arange(3) % run.n_micro
    m0h, v0h = host.encode(ps, members)
    m0g, v0g = gpu.encode(ps, members)
    assert not m0g.is_cuda
    assert _rel_err(m0g, m0h) <= 1e-5 and _rel_err(v0g, v0h) <= 1e-5
    m1h, v1h = host.step(m0h, v0h)
    m1g, v1g = gpu.step(m0h, v0h)
    assert _rel_err(m1g, m1h) <= 1e-5 and _rel_err(v1g, v1h) <= 1e-5
    n = run.grid[0] * run.grid[1]
    for sample in (False, True):
        kw = dict(sample=sample, seed=11, cell_ids=np.array([3, 9, 27]),
                  counters=np.array([0, 5, 2]))
        ah, th = host.stats(m1h, v1h, **kw)
        ag, tg = gpu.stats(m1h, v1h, **kw)
        # pixels within float32 round-off of the threshold may flip
        assert np.all(np.abs(ag - ah) * n <= 3), (sample, ag, ah)
        np.testing.assert_allclose(tg, th, rtol=1e-4, err_msg=str(sample))
    with torch.no_grad():
        for p in run.model.dynamics.parameters():
            p.mul_(0.9)
    m2h, _ = host.step(m0h, v0h)
    m2g, _ = gpu.step(m0h, v0h)
    assert _rel_err(m2h, m1h) > 1e-3  # the update matters ...
    assert _rel_err(m2g, m2h) <= 1e-5  # ... and the GPU copy follows it


@needs_cpp
def test_auto_keeps_host_work_on_cpp_where_the_gpu_loses(monkeypatch):
    """With a GPU, ``auto`` sends small table lookups and decodes with a CPU decoder to C++;
    an explicit ``cuda`` and large lookups go to the GPU. A stand-in CUDA module records
    the calls (no GPU needed)."""
    calls = []

    class FakeCuda:
        def device_count(self):
            return 1

        def table_lookup(self, *args):
            calls.append("table_lookup")
            return K._module("cpp").table_lookup(*args)

        def hotspot_head(self, *args):
            calls.append("hotspot_head")
            return K._module("cpp").hotspot_head(*args)

    monkeypatch.setitem(K._mods, "cuda", FakeCuda())
    monkeypatch.delenv(K.ENV_VAR, raising=False)
    assert K.resolve_backend() == "cuda"
    nodes, tab = np.array([1e9, 2e9]), np.ones((2, 3))

    def lookup(n, backend=None):
        z = np.zeros(n)
        return K.table_lookup(nodes, 1e-10, tab, tab, tab, z + 1.5e9, z, z + 1e-10,
                              np.ones(n, np.uint8), 875.0, backend=backend)

    lookup(K.CUDA_TABLE_MIN_BATCH - 1)
    assert calls == []
    for n in (K.CUDA_TABLE_MIN_BATCH - 1, K.CUDA_TABLE_MIN_BATCH):  # fused C++, then GPU lookup
        z = np.zeros(n)
        K.table_step(nodes, 1e-10, tab, tab, tab, z + 1.5e9, z, z.astype(np.int64), z,
                     z + 1.6e9, 1e-10, 1e-10, 1e-11, 1e9, 2e9, 0, 2)
        assert calls == ([] if n < K.CUDA_TABLE_MIN_BATCH else ["table_lookup"])
    calls.clear()
    lookup(K.CUDA_TABLE_MIN_BATCH)
    assert calls == ["table_lookup"]
    lookup(8, backend="cuda")
    assert calls == ["table_lookup"] * 2
    monkeypatch.setenv(K.ENV_VAR, "cuda")  # explicit through the environment, too
    lookup(8)
    assert calls == ["table_lookup"] * 3
    monkeypatch.delenv(K.ENV_VAR)
    vae = _straddling_vae(8)
    z = torch.randn(2, 4, 4, 6)
    ref = K.decode_hotspots(vae, z, 300.0, 5000.0, 875.0, backend="cpp")
    got = K.decode_hotspots(vae, z, 300.0, 5000.0, 875.0)
    assert calls == ["table_lookup"] * 3  # the C++ decode, not the head on the "GPU"
    np.testing.assert_array_equal(got[0], ref[0])
    K.decode_hotspots(vae, z, 300.0, 5000.0, 875.0, backend="cuda")
    assert calls[-1] == "hotspot_head"


@needs_cpp
def test_cuda_failure_moves_only_its_own_backend_object_to_cpp(monkeypatch):
    """Under ``auto`` a CUDA failure switches the Backend object that hit it (one closure) to
    C++ for good; other objects, and objects made later, still use CUDA; an explicit ``cuda``
    raises. A stand-in CUDA module fails on demand (no GPU needed)."""
    fail = [True]

    class FlakyCuda:
        def device_count(self):
            return 1

        def table_lookup(self, *args):
            if fail[0]:
                raise RuntimeError("an illegal memory access was encountered")
            return K._module("cpp").table_lookup(*args)

    monkeypatch.setitem(K._mods, "cuda", FlakyCuda())
    monkeypatch.delenv(K.ENV_VAR, raising=False)
    a, b = K.Backend(), K.Backend("auto")
    assert a.name == b.name == "cuda" and not a.explicit
    n = K.CUDA_TABLE_MIN_BATCH  # large enough for the GPU under auto
    nodes, tab, z = np.array([1e9, 2e9]), np.ones((2, 3)), np.zeros(n)
    args = (nodes, 1e-10, tab, tab, tab, z + 1.5e9, z, z + 1e-10, np.ones(n, np.uint8), 875.0)
    ref = K.table_lookup(*args, backend="cpp")
    with pytest.warns(RuntimeWarning, match="CUDA kernel table_lookup failed"):
        got = K.table_lookup(*args, backend=a)
    assert all(np.array_equal(x, y) for x, y in zip(got, ref, strict=True))
    assert a.name == "cpp" and a.cuda_failed
    assert b.name == "cuda" and not b.cuda_failed and K.Backend().name == "cuda"
    assert K.available_backends()[0] == "cuda"  # no process-wide state
    with pytest.raises(RuntimeError, match="illegal memory access"):
        K.table_lookup(*args, backend=K.Backend("cuda"))
    fail[0] = False
    K.table_lookup(*args, backend=b)
    assert b.name == "cuda"


def test_backend_is_resolved_once_from_the_environment(monkeypatch):
    monkeypatch.setenv(K.ENV_VAR, "torch")
    be = K.Backend()
    assert (be.requested, be.name, be.explicit) == ("torch", "torch", True)
    monkeypatch.setenv(K.ENV_VAR, "bogus")  # read at construction only
    assert be.name == "torch" and K.as_backend(be) is be
    with pytest.raises(ValueError, match=r"\$CLOSURE_KERNELS = 'bogus'"):
        K.Backend()
    with pytest.raises(TypeError, match="backend must be a str"):
        K.Backend(3)


def _scaled_stack(c_in: int, c_out: int, reps: int) -> torch.nn.Sequential:
    from closure.models.blocks import conv_stack

    block = conv_stack(c_in, c_out, reps)
    with torch.no_grad():
        for mod in block.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.mul_(2.5)
    return block.eval()


@needs_cpp
@pytest.mark.parametrize("variant", ["deeper", "deeper_wide_last", "slope", "mixed_slopes"])
def test_compiled_decode_follows_the_vae_decoder_plan(variant):
    """The C++ decode is walked from the VAE's decoder plan: a decoder of another depth (more
    units in a level, an extra full-resolution level) or other LeakyReLU slopes is followed,
    on each of its paths (fused upconv + last level, last level alone, separate head)."""
    vae = _straddling_vae(8)
    b = 8
    z = torch.randn(2, 4, 2, 3)
    before = vae.decode(z)
    if variant.startswith("deeper"):
        vae.dec[0] = _scaled_stack(8 * b, 8 * b, 3)
        vae.dec.append(_scaled_stack(b, b, 2 if variant == "deeper_wide_last" else 1))
    else:
        for block in vae.dec:
            for unit in block:
                unit.slope = 0.05
        vae.input_slope = 0.05
        if variant == "mixed_slopes":
            vae.dec[-1][0].slope = 0.3
    plan = vae.decoder_plan()
    depth = 5 if variant.startswith("deeper") else 4
    assert [blk.upsample for blk in plan.blocks] == [True] * 3 + [False] * (depth - 3)
    prep = K._prepare(vae)
    assert [u["upsampled"] for _, _, u in prep["units"]] == [
        blk.upsample and k == 0 for blk in plan.blocks for k in range(len(blk.units))]
    assert [u["slope"] for _, _, u in prep["units"]] == [
        unit.slope for blk in plan.blocks for unit in blk.units]
    assert prep["input_slope"] == plan.input_slope
    assert (prep["last"] is None) == (variant == "deeper_wide_last")
    assert not torch.equal(vae.decode(z), before)  # the change reaches the module's decode ...
    _assert_cpp_decode_matches(vae, z, 0.8)  # ... and the compiled one


@needs_cpp
def test_compiled_decode_names_a_layer_it_cannot_follow():
    vae = _straddling_vae(8)
    vae.dec[1] = torch.nn.Sequential(torch.nn.Conv2d(64, 32, 3, padding=1))
    z = torch.randn(1, 4, 2, 3)
    with pytest.raises(ValueError, match="block 1 unit 0 is a Conv2d, not a ConvUnit"):
        K.decode_hotspots(vae, z, 300.0, 5000.0, 875.0, backend="cpp")
    a, _ = K.decode_hotspots(vae, z, 300.0, 5000.0, 875.0, backend="torch")  # the module runs
    assert a.shape == (1,)

