// Register-blocked single-threaded matrix products of the decoder body (csrc/decoder_body.cpp)
// and the latent U-Nets (csrc/latent_unet.cpp).
//
// The products are small (K = 16..1728 rows, a few hundred columns) and run inside fused
// kernels on rows held in cache, one OpenMP thread each, so they cannot go to BLAS. A micro-
// kernel per instruction-set path (isa.h) keeps a block of C in registers over the whole K loop:
//   avx512    8 rows x 48 columns (24 of the 32 zmm), masked edges
//   avx2      4 x 24 (12 of the 16 ymm); the last panel 6 x 16 or 8 x 8, its last vector
//             masked
//   portable  GCC vector extensions of 16 bytes: 4 x 16 on aarch64 (NEON), 4 x 8 on x86-64
//             without AVX2 (SSE2); columns past the last full vector in a plain loop
#pragma once
#include <cstdint>

namespace sg {

// C[m * ldc + n] = act(bias[m] + sum_k AT[k * lda + m] * B[boff[k] + n]) for m < M, n < N.
// Row k of B starts at B + boff[k] (strided rows, or the shifted input rows of a direct
// convolution). act(v) = max(v, slope v) is LeakyReLU for slope in [0, 1] (1: identity).
// bias may be null (zero). Runs the micro-kernel of the active path (ck::isa_active()).
void gemm_bias_act(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                   const float* B, const int64_t* boff, const float* bias, float slope, float* C,
                   int64_t ldc);

}  // namespace sg
