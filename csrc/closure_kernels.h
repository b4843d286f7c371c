// Batched token-decoding kernels of the closure: shared definitions of the C++ (OpenMP) and CUDA
// implementations. Plain pointers and sizes only (no pybind11, no libtorch), so the same header
// serves the host code, nvcc and the Python bindings.
//
// Counter-based RNG: the normal variate of latent element e of a cell with id `cell`, at meso
// step `step`, under user seed `seed`, is a pure function of (seed, cell, step, e):
//   k1  = mix(seed ^ 0x9E3779B97F4A7C15), k2 = mix(k1 ^ cell), key = mix(k2 ^ step)
//   h(j) = mix(key + (j + 1) * 0x9E3779B97F4A7C15)             (splitmix64 finalizer `mix`)
//   u1 = ((h(2e) >> 11) + 1) * 2^-53 in (0, 1],  u2 = (h(2e+1) >> 11) * 2^-53 in [0, 1)
//   eps = sqrt(-2 ln u1) cos(2 pi u2)                          (Box-Muller, double precision)
// so a cell's sample never depends on which other cells share the batch.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define CK_HD __host__ __device__ __forceinline__
#else
#define CK_HD inline
#endif

namespace ck {

constexpr uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL;

CK_HD uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

CK_HD uint64_t cell_key(uint64_t seed, uint64_t cell, uint64_t step) {
  return mix(mix(mix(seed ^ GOLDEN) ^ cell) ^ step);
}

CK_HD double normal_from_key(uint64_t key, uint64_t e) {
  const double two53 = 1.0 / 9007199254740992.0;  // 2^-53
  uint64_t h1 = mix(key + (2 * e + 1) * GOLDEN);
  uint64_t h2 = mix(key + (2 * e + 2) * GOLDEN);
  double u1 = (double)((h1 >> 11) + 1) * two53;
  double u2 = (double)(h2 >> 11) * two53;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Per-sample totals of per-block hotspot partials (count, sum of T), blocks [b * nblk, (b+1) *
// nblk) belonging to sample b, summed in a fixed order so results do not depend on threads.
inline void sum_blocks(const int64_t* bc, const double* bs, int64_t B, int64_t nblk,
                       int64_t* count, double* sum) {
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    double s = 0.0;
    for (int64_t k = 0; k < nblk; ++k) {
      n += bc[b * nblk + k];
      s += bs[b * nblk + k];
    }
    count[b] = n;
    sum[b] = s;
  }
}

}  // namespace ck
