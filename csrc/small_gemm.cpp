// Small matrix products of the decoder body; see small_gemm.h.
#include "small_gemm.h"

#include <algorithm>
#include <atomic>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define SG_X86 1
#endif

namespace sg {
namespace {

#ifdef SG_X86
bool cpu_has_avx512() { return __builtin_cpu_supports("avx512f"); }
#else
bool cpu_has_avx512() { return false; }
#endif

std::atomic<bool> g_avx512{cpu_has_avx512()};

void gemm_portable(int64_t M, int64_t N, int64_t K, const float* __restrict AT, int64_t lda,
                   const float* __restrict B, const int64_t* __restrict boff,
                   const float* __restrict bias, float slope, float* __restrict C,
                   int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    const float b0 = bias ? bias[m] : 0.0f;
    for (int64_t n = 0; n < N; ++n) c[n] = b0;
    for (int64_t k = 0; k < K; ++k) {
      const float w = AT[k * lda + m];
      const float* b = B + boff[k];
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) c[n] += w * b[n];
    }
    if (slope != 1.0f) {
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) c[n] = std::max(c[n], slope * c[n]);
    }
  }
}

#ifdef SG_X86
// MR rows x 16 NV columns of C starting at (m0, n0); nv <= 16 NV columns are valid (masked).
template <int MR, int NV>
__attribute__((target("avx512f"))) inline void tile_avx512(
    int64_t K, const float* __restrict AT, int64_t lda, const float* __restrict B,
    const int64_t* __restrict boff, int64_t nv, const float* __restrict bias, float slope,
    float* __restrict C, int64_t ldc) {
  __mmask16 mk[NV];
  #pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    const int64_t rem = nv - 16 * j;
    mk[j] = rem >= 16 ? (__mmask16)0xFFFF : rem > 0 ? (__mmask16)((1u << rem) - 1u) : 0;
  }
  __m512 acc[MR][NV];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const __m512 b0 = _mm512_set1_ps(bias ? bias[i] : 0.0f);
    #pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = b0;
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + boff[k];
    __m512 bv[NV];
    #pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = _mm512_maskz_loadu_ps(mk[j], b + 16 * j);
    const float* a = AT + k * lda;
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 w = _mm512_set1_ps(a[i]);
      #pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(w, bv[j], acc[i][j]);
    }
  }
  const __m512 s = _mm512_set1_ps(slope);
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    #pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      __m512 v = acc[i][j];
      if (slope != 1.0f) v = _mm512_max_ps(v, _mm512_mul_ps(v, s));
      _mm512_mask_storeu_ps(C + i * ldc + 16 * j, mk[j], v);
    }
  }
}

template <int NV>
__attribute__((target("avx512f"))) void gemm_avx512(int64_t M, int64_t N, int64_t K,
                                                     const float* AT, int64_t lda,
                                                     const float* B, const int64_t* boff,
                                                     const float* bias, float slope, float* C,
                                                     int64_t ldc) {
  constexpr int MR = 8, NR = 16 * NV;
  // per column panel, B's rows (K x NR) stay in L1 while the row blocks of A stream past
  for (int64_t n0 = 0; n0 < N; n0 += NR) {
    const int64_t nv = std::min<int64_t>(NR, N - n0);
    const float* Bn = B + n0;
    int64_t m0 = 0;
    for (; m0 + MR <= M; m0 += MR)
      tile_avx512<MR, NV>(K, AT + m0, lda, Bn, boff, nv, bias ? bias + m0 : nullptr, slope,
                          C + m0 * ldc + n0, ldc);
    for (; m0 < M; ++m0)
      tile_avx512<1, NV>(K, AT + m0, lda, Bn, boff, nv, bias ? bias + m0 : nullptr, slope,
                         C + m0 * ldc + n0, ldc);
  }
}
#endif

}  // namespace

bool avx512_active() { return g_avx512.load(std::memory_order_relaxed); }

void set_avx512(bool on) { g_avx512.store(on && cpu_has_avx512(), std::memory_order_relaxed); }

void gemm_bias_act(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                   const float* B, const int64_t* boff, const float* bias, float slope, float* C,
                   int64_t ldc) {
  if (M <= 0 || N <= 0) return;
#ifdef SG_X86
  if (avx512_active()) {
    // panel width 16 NV with the fewest masked lanes, the widest on ties
    int best = 3;
    int64_t best_lanes = (N + 47) / 48 * 48;
    for (int nv : {2, 1}) {
      const int64_t lanes = (N + 16 * nv - 1) / (16 * nv) * 16 * nv;
      if (lanes < best_lanes) best = nv, best_lanes = lanes;
    }
    if (best == 3)
      gemm_avx512<3>(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
    else if (best == 2)
      gemm_avx512<2>(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
    else
      gemm_avx512<1>(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
    return;
  }
#endif
  gemm_portable(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
}

}  // namespace sg
