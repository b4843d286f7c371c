// Small matrix products of the decoder body and the latent U-Nets; see small_gemm.h.
#include "small_gemm.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>

#include "isa.h"

#ifdef CK_X86
#include <immintrin.h>
#endif

namespace sg {
namespace {

// Columns [n0, N) row by row (C is read and written per k: the remainder of the portable
// path, and all of it where there are no vector extensions).
void gemm_rows(int64_t M, int64_t n0, int64_t N, int64_t K, const float* __restrict AT,
               int64_t lda, const float* __restrict B, const int64_t* __restrict boff,
               const float* __restrict bias, float slope, float* __restrict C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    const float b0 = bias ? bias[m] : 0.0f;
    for (int64_t n = n0; n < N; ++n) c[n] = b0;
    for (int64_t k = 0; k < K; ++k) {
      const float w = AT[k * lda + m];
      const float* b = B + boff[k];
#pragma omp simd
      for (int64_t n = n0; n < N; ++n) c[n] += w * b[n];
    }
    if (slope != 1.0f) {
#pragma omp simd
      for (int64_t n = n0; n < N; ++n) c[n] = std::max(c[n], slope * c[n]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// portable: 16-byte GCC vector extensions (NEON on aarch64, SSE2 on x86-64 without AVX2)

#if defined(__GNUC__) || defined(__clang__)
#define SG_VEXT 1
typedef float v4f __attribute__((vector_size(16)));
#if defined(__aarch64__)
// 16 accumulators, 4 rows of B and 4 scalars of A: 24 of the 32 NEON registers (6 x 4 spills)
constexpr int PMR = 4, PNV = 4;
#else
constexpr int PMR = 4, PNV = 2;  // 8 of 16 (no FMA: products need temporaries)
#endif

template <int MR, int NV>
void tile_vec(int64_t K, const float* __restrict AT, int64_t lda, const float* __restrict B,
              const int64_t* __restrict boff, const float* __restrict bias, float slope,
              float* __restrict C, int64_t ldc) {
  v4f acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const float b0 = bias ? bias[i] : 0.0f;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = v4f{b0, b0, b0, b0};
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + boff[k];
    v4f bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) std::memcpy(&bv[j], b + 4 * j, sizeof(v4f));
    const float* a = AT + k * lda;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const v4f w = v4f{a[i], a[i], a[i], a[i]};
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] += w * bv[j];
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      v4f v = acc[i][j];
      if (slope != 1.0f) {
        const v4f t = v * slope;
        v = v > t ? v : t;
      }
      std::memcpy(C + i * ldc + 4 * j, &v, sizeof(v4f));
    }
  }
}

// rows [m0, M) of one panel: R-row tiles for the rows below the last full block of MR
template <int R, int NV>
inline void rem_vec(int64_t rem, int64_t K, const float* AT, int64_t lda, const float* B,
                    const int64_t* boff, const float* bias, float slope, float* C, int64_t ldc) {
  if constexpr (R >= 1) {
    if (rem == R)
      tile_vec<R, NV>(K, AT, lda, B, boff, bias, slope, C, ldc);
    else
      rem_vec<R - 1, NV>(rem, K, AT, lda, B, boff, bias, slope, C, ldc);
  }
}

template <int NV>
void panel_vec(int64_t M, int64_t K, const float* AT, int64_t lda, const float* B,
               const int64_t* boff, const float* bias, float slope, float* C, int64_t ldc) {
  int64_t m0 = 0;
  for (; m0 + PMR <= M; m0 += PMR)
    tile_vec<PMR, NV>(K, AT + m0, lda, B, boff, bias ? bias + m0 : nullptr, slope,
                      C + m0 * ldc, ldc);
  rem_vec<PMR - 1, NV>(M - m0, K, AT + m0, lda, B, boff, bias ? bias + m0 : nullptr, slope,
                       C + m0 * ldc, ldc);
}

// the last panel's whole vectors (nv < PNV of them)
template <int NV>
inline void tail_vec(int64_t nv, int64_t M, int64_t K, const float* AT, int64_t lda,
                     const float* B, const int64_t* boff, const float* bias, float slope,
                     float* C, int64_t ldc) {
  if constexpr (NV >= 1) {
    if (nv == NV)
      panel_vec<NV>(M, K, AT, lda, B, boff, bias, slope, C, ldc);
    else
      tail_vec<NV - 1>(nv, M, K, AT, lda, B, boff, bias, slope, C, ldc);
  }
}

void gemm_portable(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                   const float* B, const int64_t* boff, const float* bias, float slope, float* C,
                   int64_t ldc) {
  constexpr int64_t NR = 4 * PNV;
  int64_t n0 = 0;
  for (; n0 + NR <= N; n0 += NR)
    panel_vec<PNV>(M, K, AT, lda, B + n0, boff, bias, slope, C + n0, ldc);
  const int64_t nv = (N - n0) / 4;
  tail_vec<PNV - 1>(nv, M, K, AT, lda, B + n0, boff, bias, slope, C + n0, ldc);
  n0 += 4 * nv;
  if (n0 < N) gemm_rows(M, n0, N, K, AT, lda, B, boff, bias, slope, C, ldc);
}
#else
void gemm_portable(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                   const float* B, const int64_t* boff, const float* bias, float slope, float* C,
                   int64_t ldc) {
  gemm_rows(M, 0, N, K, AT, lda, B, boff, bias, slope, C, ldc);
}
#endif

#ifdef CK_X86
// ---------------------------------------------------------------------------------------------
// AVX-512: MR rows x 16 NV columns of C starting at (m0, n0); nv <= 16 NV columns are valid
// (masked)

template <int MR, int NV>
CK_TARGET_AVX512 inline void tile_avx512(int64_t K, const float* __restrict AT, int64_t lda,
                                         const float* __restrict B,
                                         const int64_t* __restrict boff, int64_t nv,
                                         const float* __restrict bias, float slope,
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

template <int R, int NV>
CK_TARGET_AVX512 inline void rem_avx512(int64_t rem, int64_t K, const float* AT, int64_t lda,
                                        const float* B, const int64_t* boff, int64_t nv,
                                        const float* bias, float slope, float* C,
                                        int64_t ldc) {
  if constexpr (R >= 1) {
    if (rem == R)
      tile_avx512<R, NV>(K, AT, lda, B, boff, nv, bias, slope, C, ldc);
    else
      rem_avx512<R - 1, NV>(rem, K, AT, lda, B, boff, nv, bias, slope, C, ldc);
  }
}

template <int NV>
CK_TARGET_AVX512 void gemm_avx512(int64_t M, int64_t N, int64_t K, const float* AT,
                                  int64_t lda, const float* B, const int64_t* boff,
                                  const float* bias, float slope, float* C, int64_t ldc) {
  constexpr int MR = 8, NR = 16 * NV;
  // per column panel, B's rows (K x NR) stay in L1 while the row blocks of A stream past
  for (int64_t n0 = 0; n0 < N; n0 += NR) {
    const int64_t nv = std::min<int64_t>(NR, N - n0);
    const float* Bn = B + n0;
    int64_t m0 = 0;
    for (; m0 + MR <= M; m0 += MR)
      tile_avx512<MR, NV>(K, AT + m0, lda, Bn, boff, nv, bias ? bias + m0 : nullptr, slope,
                          C + m0 * ldc + n0, ldc);
    rem_avx512<MR - 1, NV>(M - m0, K, AT + m0, lda, Bn, boff, nv, bias ? bias + m0 : nullptr,
                           slope, C + m0 * ldc + n0, ldc);
  }
}

void gemm_avx512_any(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                     const float* B, const int64_t* boff, const float* bias, float slope,
                     float* C, int64_t ldc) {
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
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: 16 ymm registers hold MR x NV accumulators, NV loads of B and one broadcast of A
// per k; full panels load unmasked, the last one only the vectors it needs, the last of them
// masked

// rows per tile for NV vectors of 8 columns: 12 accumulators (8 for one vector)
template <int NV>
constexpr int avx2_rows() {
  return NV == 3 ? 4 : NV == 2 ? 6 : 8;
}

template <int MR, int NV, bool MASK>
CK_TARGET_AVX2 inline void tile_avx2(int64_t K, const float* __restrict AT, int64_t lda,
                                     const float* __restrict B,
                                     const int64_t* __restrict boff, int64_t nv,
                                     const float* __restrict bias, float slope,
                                     float* __restrict C, int64_t ldc) {
  // the mask of the last vector (lanes < nv - 8 (NV - 1)); unused unless MASK
  const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(nv - 8 * (NV - 1))),
                                        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const __m256 b0 = _mm256_set1_ps(bias ? bias[i] : 0.0f);
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = b0;
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + boff[k];
    __m256 bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j)
      bv[j] = (MASK && j == NV - 1) ? _mm256_maskload_ps(b + 8 * j, mk)
                                    : _mm256_loadu_ps(b + 8 * j);
    const float* a = AT + k * lda;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 w = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(w, bv[j], acc[i][j]);
    }
  }
  const __m256 s = _mm256_set1_ps(slope);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      __m256 v = acc[i][j];
      if (slope != 1.0f) v = _mm256_max_ps(v, _mm256_mul_ps(v, s));
      if (MASK && j == NV - 1)
        _mm256_maskstore_ps(C + i * ldc + 8 * j, mk, v);
      else
        _mm256_storeu_ps(C + i * ldc + 8 * j, v);
    }
  }
}

template <int R, int NV, bool MASK>
CK_TARGET_AVX2 inline void rem_avx2(int64_t rem, int64_t K, const float* AT, int64_t lda,
                                    const float* B, const int64_t* boff, int64_t nv,
                                    const float* bias, float slope, float* C, int64_t ldc) {
  if constexpr (R >= 1) {
    if (rem == R)
      tile_avx2<R, NV, MASK>(K, AT, lda, B, boff, nv, bias, slope, C, ldc);
    else
      rem_avx2<R - 1, NV, MASK>(rem, K, AT, lda, B, boff, nv, bias, slope, C, ldc);
  }
}

// all M rows of one panel of NV vectors (nv valid columns)
template <int NV, bool MASK>
CK_TARGET_AVX2 void panel_avx2(int64_t M, int64_t K, const float* AT, int64_t lda,
                               const float* B, const int64_t* boff, int64_t nv,
                               const float* bias, float slope, float* C, int64_t ldc) {
  constexpr int MR = avx2_rows<NV>();
  int64_t m0 = 0;
  for (; m0 + MR <= M; m0 += MR)
    tile_avx2<MR, NV, MASK>(K, AT + m0, lda, B, boff, nv, bias ? bias + m0 : nullptr, slope,
                            C + m0 * ldc, ldc);
  rem_avx2<MR - 1, NV, MASK>(M - m0, K, AT + m0, lda, B, boff, nv, bias ? bias + m0 : nullptr,
                             slope, C + m0 * ldc, ldc);
}

// full panels of 8 AVX2_NV columns, then the rest: 4 x 24 tiles (7 loads per 12 FMAs; their
// 4 rows divide the products' row counts, multiples of 4, where 6 x 16 tiles leave remainders;
// both ran at the same speed here within this shared box's noise)
constexpr int AVX2_NV = 3;

CK_TARGET_AVX2 void gemm_avx2(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                              const float* B, const int64_t* boff, const float* bias,
                              float slope, float* C, int64_t ldc) {
  constexpr int64_t NR = 8 * AVX2_NV;
  int64_t n0 = 0;
  for (; n0 + NR <= N; n0 += NR)
    panel_avx2<AVX2_NV, false>(M, K, AT, lda, B + n0, boff, NR, bias, slope, C + n0, ldc);
  const int64_t nv = N - n0;
  if (nv <= 0) return;
  const bool full = nv % 8 == 0;
  switch ((nv + 7) / 8) {
    case 3:
      if (full) panel_avx2<3, false>(M, K, AT, lda, B + n0, boff, nv, bias, slope, C + n0, ldc);
      else panel_avx2<3, true>(M, K, AT, lda, B + n0, boff, nv, bias, slope, C + n0, ldc);
      return;
    case 2:
      if (full) panel_avx2<2, false>(M, K, AT, lda, B + n0, boff, nv, bias, slope, C + n0, ldc);
      else panel_avx2<2, true>(M, K, AT, lda, B + n0, boff, nv, bias, slope, C + n0, ldc);
      return;
    default:
      if (full) panel_avx2<1, false>(M, K, AT, lda, B + n0, boff, nv, bias, slope, C + n0, ldc);
      else panel_avx2<1, true>(M, K, AT, lda, B + n0, boff, nv, bias, slope, C + n0, ldc);
      return;
  }
}
#endif

}  // namespace

void gemm_bias_act(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                   const float* B, const int64_t* boff, const float* bias, float slope, float* C,
                   int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  switch (ck::isa_active()) {
#ifdef CK_X86
    case ck::Isa::avx512:
      return gemm_avx512_any(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
    case ck::Isa::avx2:
      return gemm_avx2(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
#endif
    default:
      return gemm_portable(M, N, K, AT, lda, B, boff, bias, slope, C, ldc);
  }
}

}  // namespace sg
