// Register-blocked single-threaded matrix products of the decoder body (csrc/decoder_body.cpp).
//
// The decoder's products are small (K = 16..288 rows, a few hundred columns) and run inside
// fused kernels on rows held in cache, one OpenMP thread each, so they cannot go to BLAS. An
// AVX-512 micro-kernel (8 rows x 48 columns of accumulators in registers) runs them at the
// core's FMA rate; a portable loop does the same arithmetic elsewhere (and when switched on for
// tests with set_avx512(false)).
#pragma once
#include <cstdint>

namespace sg {

// C[m * ldc + n] = act(bias[m] + sum_k AT[k * lda + m] * B[boff[k] + n]) for m < M, n < N.
// Row k of B starts at B + boff[k] (strided rows, or the shifted input rows of a direct
// convolution). act(v) = max(v, slope v) is LeakyReLU for slope in [0, 1] (1: identity).
// bias may be null (zero).
void gemm_bias_act(int64_t M, int64_t N, int64_t K, const float* AT, int64_t lda,
                   const float* B, const int64_t* boff, const float* bias, float slope, float* C,
                   int64_t ldc);

// Whether the AVX-512 micro-kernel is used (the CPU has it and it was not switched off).
bool avx512_active();
// Switch the AVX-512 micro-kernel off (false) or back on where the CPU has it (true).
void set_avx512(bool on);

}  // namespace sg
