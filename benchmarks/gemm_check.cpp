// Stand-alone check of the micro-kernel (csrc/small_gemm.cpp) on every instruction-set path the
// CPU supports, against a double-precision loop, without Python: for a cross-compiled build run
// under an emulator (benchmarks/cross_check_aarch64.sh). Exit status 1 on a mismatch.
//   g++ -std=c++17 -O2 -Icsrc benchmarks/gemm_check.cpp csrc/small_gemm.cpp csrc/isa.cpp
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "isa.h"
#include "small_gemm.h"

int main() {
  std::mt19937_64 gen(12345);
  std::normal_distribution<float> nd;
  auto pick = [&](int lo, int hi) { return (int64_t)(lo + gen() % (uint64_t)(hi - lo + 1)); };
  int bad = 0;
  for (ck::Isa isa : {ck::Isa::avx512, ck::Isa::avx2, ck::Isa::portable}) {
    if (!ck::set_isa(isa)) continue;
    double worst = 0.0;
    for (int t = 0; t < 400; ++t) {
      const int64_t M = pick(1, 40), N = pick(1, 130), K = pick(0, 60);
      const int64_t lda = M + pick(0, 2), ldc = N + pick(0, 4);
      std::vector<float> at((size_t)(K * lda)), b((size_t)((K + 2) * (N + 3))), bias((size_t)M);
      for (auto& v : at) v = nd(gen);
      for (auto& v : b) v = nd(gen);
      for (auto& v : bias) v = nd(gen);
      std::vector<int64_t> boff((size_t)K);
      for (auto& o : boff) o = pick(0, (int)(b.size() - N));
      const float slope = t % 3 == 0 ? 1.0f : t % 3 == 1 ? 0.2f : 0.0f;
      const bool with_bias = t % 4 != 0;
      std::vector<float> c((size_t)(M * ldc), -7.0f);
      sg::gemm_bias_act(M, N, K, at.data(), lda, b.data(), boff.data(),
                        with_bias ? bias.data() : nullptr, slope, c.data(), ldc);
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < ldc; ++n) {
          const float got = c[(size_t)(m * ldc + n)];
          if (n >= N) {  // past N: untouched
            if (got != -7.0f) ++bad;
            continue;
          }
          double r = with_bias ? bias[(size_t)m] : 0.0;
          for (int64_t k = 0; k < K; ++k)
            r += (double)at[(size_t)(k * lda + m)] * b[(size_t)(boff[(size_t)k] + n)];
          r = std::max(r, (double)slope * r);
          const double err = std::fabs(got - r) / std::max(1.0, std::fabs(r));
          worst = std::max(worst, err);
          if (!(err <= 1e-5)) ++bad;
        }
      }
    }
    std::printf("%-8s max rel. error %.2e\n", ck::isa_name(isa), worst);
  }
  std::printf(bad ? "FAILED: %d wrong elements\n" : "ok\n", bad);
  return bad ? 1 : 0;
}
