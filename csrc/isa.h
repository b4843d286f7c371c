// Instruction-set paths of the C++ kernels and the run-time switch between them.
//
// One build runs on any CPU of its architecture: the hot functions are compiled once per path
// (x86-64: AVX-512, AVX2+FMA and the baseline; elsewhere, e.g. aarch64, only the portable path,
// which the compiler vectorizes for the target's own SIMD unit, NEON there) and a switch picks
// one at run time. The switch starts at the best path the CPU supports, capped by
// $CLOSURE_MAX_ISA, and can be moved by set_isa (tests run every path; benchmarks measure an
// AVX2-only machine from an AVX-512 one). Every x86 intrinsic and target attribute sits behind
// CK_X86, so other architectures and compilers without them build the portable path only.
#pragma once
#include <cstdint>

// GCC 7+ and Clang take per-function target attributes for all of these ISAs; with another
// compiler (or -DCK_NO_X86, which the tests use to build that case here) the x86 paths are
// left out and only the portable one is built
#if !defined(CK_NO_X86) && defined(__x86_64__) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 7))
#define CK_X86 1
// avx512f alone implies neither FMA on ymm/xmm nor the VL/BW forms the compiler uses for
// vector remainders; the run-time check requires all of them
#define CK_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
#define CK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CK_INLINE __attribute__((always_inline))
#else
#define CK_INLINE
#endif

namespace ck {

// Ordered by width: a path may run where the CPU supports it and every narrower one.
enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
// false when `name` is not one of "avx512", "avx2", "portable"
bool isa_from_name(const char* name, Isa* out);
bool isa_supported(Isa isa);
// the widest path the CPU supports
Isa isa_best();
// the path in use (relaxed atomic load: cheap enough to test per row of work)
Isa isa_active();
// switch to `isa`; returns false (and changes nothing) where the CPU does not support it
bool set_isa(Isa isa);

}  // namespace ck

// Defines `static void name PARAMS`, which runs the always-inline `name##_body ARGS` compiled
// for the active path: the body is inlined into one wrapper per path, each with its target
// attribute, and the switch is read on every call.
#ifdef CK_X86
#define CK_ISA_DISPATCH(name, PARAMS, ARGS)                          \
  CK_TARGET_AVX512 static void name##_avx512 PARAMS { name##_body ARGS; } \
  CK_TARGET_AVX2 static void name##_avx2 PARAMS { name##_body ARGS; }     \
  static void name##_portable PARAMS { name##_body ARGS; }                \
  static void name PARAMS {                                               \
    switch (ck::isa_active()) {                                           \
      case ck::Isa::avx512: name##_avx512 ARGS; return;                   \
      case ck::Isa::avx2: name##_avx2 ARGS; return;                       \
      default: name##_portable ARGS; return;                              \
    }                                                                     \
  }
#else
#define CK_ISA_DISPATCH(name, PARAMS, ARGS) \
  static void name PARAMS { name##_body ARGS; }
#endif
