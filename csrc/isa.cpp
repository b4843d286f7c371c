// The run-time instruction-set switch of the C++ kernels; see isa.h.
#include "isa.h"

#include <atomic>
#include <cstring>
#include <initializer_list>

namespace ck {
namespace {

#ifdef CK_X86
bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma");
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
}
#else
bool cpu_has(Isa isa) { return isa == Isa::portable; }
#endif

Isa best() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (cpu_has(isa)) return isa;
  return Isa::portable;
}

std::atomic<int> g_isa{static_cast<int>(best())};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "portable";
  }
}

bool isa_from_name(const char* name, Isa* out) {
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::portable}) {
    if (std::strcmp(name, isa_name(isa)) == 0) {
      *out = isa;
      return true;
    }
  }
  return false;
}

bool isa_supported(Isa isa) { return cpu_has(isa); }

Isa isa_best() { return best(); }

Isa isa_active() { return static_cast<Isa>(g_isa.load(std::memory_order_relaxed)); }

bool set_isa(Isa isa) {
  if (!cpu_has(isa)) return false;
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace ck
