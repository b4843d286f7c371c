// C++/OpenMP kernels of the closure (pybind11 module closure._kernels_cpp), raw buffers only.
//
//  sample_latent  reparameterized latent sample z = mean + exp(logvar / 2) * eps with the
//                 counter-based normal of closure_kernels.h (per cell id and meso step)
//  hotspot_head   the tokenizer's final decoder stage for the T field, fused: 3x3 conv
//                 (C -> 1, zero padding) + bias, de-normalization T = v (hi - lo) + lo, hotspot
//                 threshold T > thr, and the per-cell reduction to (hotspot cell count, sum of T
//                 over hotspot cells); no full-resolution temporary is written
//  table_lookup   the closure's table mode: bilinear interpolation of (area fraction, hotspot T,
//                 uncertainty) in (Ps, t since shock) and the MES-IG rate
//                 max(0, A(t1) - A(t0)) / (t1 - t0)
//  table_step     a table-mode call of cells that all have state: state update + table_lookup
//                 (their per-cell code is table_core.h, shared with the C API library)
// and the decoder-body kernels of decoder_body.cpp (up-sampling 3x3 conv, Winograd 3x3 conv).
// The pure-PyTorch reference of each is in closure/kernels.py; tests compare them on random input.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "closure_kernels.h"
#include "table_core.h"
#include "isa.h"
#include "py_args.h"
#include "small_gemm.h"

namespace py = pybind11;

void register_decoder_body(py::module_& m);  // decoder_body.cpp
void register_latent_unet(py::module_& m);   // latent_unet.cpp
using ck::f32a;
using ck::f64a;
using ck::i64a;
using ck::need;
using ck::u8a;

static f32a sample_latent(f32a mean, f32a logvar, uint64_t seed, i64a cell_ids, i64a steps) {
  need(mean.ndim() == 2, "sample_latent: mean must be (B, E)");
  need(logvar.ndim() == 2 && logvar.shape(0) == mean.shape(0) && logvar.shape(1) == mean.shape(1),
       "sample_latent: logvar must have the shape of mean");
  const int64_t B = mean.shape(0), E = mean.shape(1);
  need(cell_ids.ndim() == 1 && cell_ids.shape(0) == B, "sample_latent: cell_ids must be (B,)");
  need(steps.ndim() == 1 && steps.shape(0) == B, "sample_latent: steps must be (B,)");
  f32a out({B, E});
  const float* m = mean.data();
  const float* v = logvar.data();
  const int64_t* id = cell_ids.data();
  const int64_t* st = steps.data();
  float* z = out.mutable_data();
  std::vector<uint64_t> keys((size_t)B);  // one key per cell, not per element
  for (int64_t b = 0; b < B; ++b) keys[(size_t)b] = ck::cell_key(seed, (uint64_t)id[b],
                                                                  (uint64_t)st[b]);
  {
    py::gil_scoped_release nogil;
#pragma omp parallel for schedule(static) collapse(2)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t e = 0; e < E; ++e) {
        const uint64_t key = keys[(size_t)b];
        const float eps = (float)ck::normal_from_key(key, (uint64_t)e);
        const int64_t i = b * E + e;
        z[i] = m[i] + std::exp(0.5f * v[i]) * eps;
      }
    }
  }
  return out;
}

static py::tuple hotspot_head(f32a h, f32a weight, float bias, double lo, double hi, double thr) {
  need(h.ndim() == 4, "hotspot_head: h must be (B, C, H, W)");
  const int64_t B = h.shape(0), C = h.shape(1), H = h.shape(2), W = h.shape(3);
  need(weight.size() == C * 9, "hotspot_head: weight must have C*3*3 elements");
  i64a count({B});
  f64a sumT({B});
  const float* x = h.data();
  const float* w = weight.data();
  const float scale = (float)(hi - lo), off = (float)lo;
  const float fthr = (float)thr;
  std::vector<int64_t> rc((size_t)(B * H), 0);
  std::vector<double> rs((size_t)(B * H), 0.0);
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      std::vector<float> acc((size_t)W);
#pragma omp for schedule(static) collapse(2)
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t y = 0; y < H; ++y) {
          for (int64_t i = 0; i < W; ++i) acc[i] = 0.0f;
          for (int64_t c = 0; c < C; ++c) {
            const float* plane = x + (b * C + c) * H * W;
            for (int ky = 0; ky < 3; ++ky) {
              const int64_t yy = y + ky - 1;
              if (yy < 0 || yy >= H) continue;
              const float* row = plane + yy * W;
              const float w0 = w[c * 9 + ky * 3], w1 = w[c * 9 + ky * 3 + 1],
                          w2 = w[c * 9 + ky * 3 + 2];
              if (W == 1) {
                acc[0] += w1 * row[0];
                continue;
              }
              acc[0] += w1 * row[0] + w2 * row[1];
#pragma omp simd
              for (int64_t i = 1; i < W - 1; ++i)
                acc[i] += w0 * row[i - 1] + w1 * row[i] + w2 * row[i + 1];
              acc[W - 1] += w0 * row[W - 2] + w1 * row[W - 1];
            }
          }
          int64_t n = 0;
          double s = 0.0;
          for (int64_t i = 0; i < W; ++i) {
            const float T = (acc[i] + bias) * scale + off;
            if (T > fthr) {
              ++n;
              s += (double)T;
            }
          }
          rc[(size_t)(b * H + y)] = n;
          rs[(size_t)(b * H + y)] = s;
        }
      }
    }
  }
  ck::sum_blocks(rc.data(), rs.data(), B, H, count.mutable_data(), sumT.mutable_data());
  return py::make_tuple(count, sumT);
}

static void need_table(f64a& nodes, f64a& tabA, f64a& tabT, f64a& tabU, double dt_t,
                       const char* who) {
  need(nodes.ndim() == 1 && nodes.shape(0) >= 2, std::string(who) + ": need >= 2 Ps nodes");
  need(tabA.ndim() == 2 && tabA.shape(0) == nodes.shape(0) && tabA.shape(1) >= 2,
       std::string(who) + ": tables must be (nP, nT >= 2)");
  need(tabT.size() == tabA.size() && tabU.size() == tabA.size(),
       std::string(who) + ": table shapes differ");
  need(dt_t > 0.0, std::string(who) + ": dt_t must be > 0");
}

static py::tuple table_lookup(f64a nodes, double dt_t, f64a tabA, f64a tabT, f64a tabU, f64a ps,
                              f64a t0, f64a t1, u8a shocked, double thr) {
  need_table(nodes, tabA, tabT, tabU, dt_t, "table_lookup");
  const int64_t nP = nodes.shape(0), nT = tabA.shape(1), N = ps.size();
  need(t0.size() == N && t1.size() == N && shocked.size() == N,
       "table_lookup: ps, t0, t1, shocked must have the same length");
  f64a oA({N}), oT({N}), oU({N}), oR({N});
  const double *nd = nodes.data(), *A = tabA.data(), *T = tabT.data(), *U = tabU.data();
  const double *p = ps.data(), *a0 = t0.data(), *a1 = t1.data();
  const uint8_t* sh = shocked.data();
  double *rA = oA.mutable_data(), *rT = oT.mutable_data(), *rU = oU.mutable_data(),
         *rR = oR.mutable_data();
  {
    py::gil_scoped_release nogil;
  // ~20 ns per cell on one core: threads pay off only for very large batches; waking a second
  // thread on a busy machine costs milliseconds (measured), more than 65536 cells take serially.
#pragma omp parallel for schedule(static) if (N > (1 << 18))
    for (int64_t n = 0; n < N; ++n) {
      if (!sh[n]) {
        rA[n] = 0.0; rT[n] = thr; rU[n] = 0.0; rR[n] = 0.0;
        continue;
      }
      ck::lookup_cell(nd, nP, dt_t, nT, A, T, U, p[n], a0[n], a1[n], rA[n], rT[n], rU[n],
                      rR[n]);
    }
  }
  return py::make_tuple(oA, oT, oU, oR);
}

// A table-mode call of cells that all have state (a hydrocode's steady state) in one pass: the
// per-cell state update of closure.kernels.table_step_reference (Ps the running max inside the
// window, age, whole meso steps plus the fraction, status) and the lookup. In Python these are
// ~20 array operations whose fixed costs dominate a call of ~1000 cells.
static py::tuple table_step(f64a nodes, double dt_t, f64a tabA, f64a tabT, f64a tabU,
                            f64a ps_old, f64a t_old, i64a steps_old, f64a frac_old, f64a pressure,
                            f64a dt, double dt_meso, double ps_window, double env_lo,
                            double env_hi, int32_t status_ok, int32_t status_outside) {
  need_table(nodes, tabA, tabT, tabU, dt_t, "table_step");
  const int64_t nP = nodes.shape(0), nT = tabA.shape(1), N = pressure.size();
  need(ps_old.size() == N && t_old.size() == N && steps_old.size() == N &&
           frac_old.size() == N,
       "table_step: state arrays and pressure must have the same length");
  need(dt.size() == N || dt.size() == 1, "table_step: dt must have length 1 or N");
  need(dt_meso > 0.0, "table_step: dt_meso must be > 0");
  const bool dt_scalar = dt.size() == 1 && N != 1;
  f64a oPs({N}), oT1({N}), oFr({N}), oA({N}), oTh({N}), oU({N}), oR({N});
  i64a oSt({N});
  py::array_t<int32_t> oS({N});
  const double *nd = nodes.data(), *A = tabA.data(), *T = tabT.data(), *U = tabU.data();
  const double *ps0 = ps_old.data(), *t0 = t_old.data(), *fr0 = frac_old.data(),
               *p = pressure.data(), *d = dt.data();
  const int64_t* st0 = steps_old.data();
  double *rPs = oPs.mutable_data(), *rT1 = oT1.mutable_data(), *rFr = oFr.mutable_data(),
         *rA = oA.mutable_data(), *rTh = oTh.mutable_data(), *rU = oU.mutable_data(),
         *rR = oR.mutable_data();
  int64_t* rSt = oSt.mutable_data();
  int32_t* rS = oS.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel for schedule(static) if (N > (1 << 18))
    for (int64_t n = 0; n < N; ++n) {
      const double dn = dt_scalar ? d[0] : d[n];
      double ps, t1;
      ck::advance_cell(ps0[n], t0[n], st0[n], fr0[n], p[n], dn, dt_meso, ps_window, ps, t1,
                       rSt[n], rFr[n]);
      rPs[n] = ps;
      rT1[n] = t1;
      rS[n] = (ps < env_lo || ps > env_hi) ? status_outside : status_ok;
      ck::lookup_cell(nd, nP, dt_t, nT, A, T, U, ps, t0[n], t1, rA[n], rTh[n], rU[n], rR[n]);
    }
  }
  return py::make_tuple(oPs, oT1, oSt, oFr, oS, oA, oTh, oU, oR);
}

static int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// ---------------------------------------------------------------------------------------------
// instruction-set paths (isa.h)

static std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

static std::vector<std::string> isa_supported_names() {
  std::vector<std::string> out;
  for (ck::Isa isa : {ck::Isa::avx512, ck::Isa::avx2, ck::Isa::portable})
    if (ck::isa_supported(isa)) out.emplace_back(ck::isa_name(isa));
  return out;
}

// the path at import: the best the CPU supports, capped by $CLOSURE_MAX_ISA
static ck::Isa g_default_isa = ck::Isa::portable;

static void set_isa_py(const std::string& name) {
  ck::Isa isa;
  const std::string n = lower(name);
  if (n == "auto")
    isa = g_default_isa;
  else if (!ck::isa_from_name(n.c_str(), &isa))
    throw std::invalid_argument("set_isa: " + name + " is not one of auto, avx512, avx2, portable");
  if (!ck::set_isa(isa)) {
    std::string have;
    for (const auto& s : isa_supported_names()) have += (have.empty() ? "" : ", ") + s;
    throw std::invalid_argument("set_isa: this CPU does not support " + n + " (it supports " +
                                have + ")");
  }
}

// the names before the AVX2 path: on = the best path, off = the best below AVX-512
static bool avx512_active() { return ck::isa_active() == ck::Isa::avx512; }
static void set_avx512(bool on) {
  if (on)
    ck::set_isa(ck::isa_best());
  else if (avx512_active())
    ck::set_isa(ck::isa_supported(ck::Isa::avx2) ? ck::Isa::avx2 : ck::Isa::portable);
}

// Test hook of the micro-kernel on the active path: C (M, ldc), pre-filled with NaN, gets
// act(bias + AT^T B) in its first N columns (small_gemm.h); the rest must stay NaN.
static f32a gemm_bias_act_py(f32a at, f32a b, i64a boff, f32a bias, float slope, int64_t M,
                             int64_t N, int64_t ldc) {
  need(at.ndim() == 2 && boff.ndim() == 1 && boff.shape(0) == at.shape(0),
       "gemm_bias_act: at must be (K, lda) and boff (K,)");
  const int64_t K = at.shape(0), lda = at.shape(1);
  need(M >= 0 && N >= 0 && M <= lda && N <= ldc, "gemm_bias_act: need M <= lda and N <= ldc");
  need(bias.size() == 0 || bias.size() == M, "gemm_bias_act: bias must be empty or (M,)");
  const int64_t* off = boff.data();
  for (int64_t k = 0; k < K; ++k)
    need(off[k] >= 0 && off[k] + N <= (int64_t)b.size(),
         "gemm_bias_act: row " + std::to_string(k) + " of B runs past its end");
  f32a c({M, ldc});
  float* pc = c.mutable_data();
  std::fill(pc, pc + M * ldc, std::numeric_limits<float>::quiet_NaN());
  sg::gemm_bias_act(M, N, K, at.data(), lda, b.data(), off, bias.size() ? bias.data() : nullptr,
                    slope, pc, ldc);
  return c;
}

PYBIND11_MODULE(_kernels_cpp, m) {
  m.doc() = "C++/OpenMP closure kernels (see csrc/closure_kernels.cpp)";
  g_default_isa = ck::isa_best();
  if (const char* cap = std::getenv("CLOSURE_MAX_ISA"); cap != nullptr && *cap != '\0') {
    ck::Isa isa;
    if (ck::isa_from_name(lower(cap).c_str(), &isa)) {
      if ((int)isa < (int)g_default_isa) g_default_isa = isa;
    } else if (PyErr_WarnEx(PyExc_RuntimeWarning,
                            ("$CLOSURE_MAX_ISA=" + std::string(cap) +
                             " is not one of avx512, avx2, portable: ignored").c_str(),
                            1) != 0) {
      throw py::error_already_set();
    }
  }
  ck::set_isa(g_default_isa);
  m.def("isa_supported", &isa_supported_names,
        "Instruction-set paths of the kernels this CPU supports, widest first");
  m.def("isa_active", [] { return std::string(ck::isa_name(ck::isa_active())); },
        "The path the kernels use now: 'avx512', 'avx2' or 'portable'");
  m.def("isa_default", [] { return std::string(ck::isa_name(g_default_isa)); },
        "The path at import: the best one supported, capped by $CLOSURE_MAX_ISA");
  m.def("set_isa", &set_isa_py, py::arg("name"),
        "Use path 'avx512', 'avx2', 'portable' or 'auto' (the default path); ValueError where "
        "the CPU lacks it. Process-wide; not to be changed while kernels run");
  m.def("avx512_active", &avx512_active, "Whether the kernels use the AVX-512 path");
  m.def("set_avx512", &set_avx512, py::arg("on"),
        "True: the best path; False: the best path below AVX-512 (set_isa is the general form)");
  m.def("gemm_bias_act", &gemm_bias_act_py, py::arg("at"), py::arg("b"), py::arg("boff"),
        py::arg("bias"), py::arg("slope"), py::arg("M"), py::arg("N"), py::arg("ldc"),
        "Test hook: the micro-kernel on the active path (csrc/small_gemm.h)");
  m.def("sample_latent", &sample_latent, py::arg("mean"), py::arg("logvar"), py::arg("seed"),
        py::arg("cell_ids"), py::arg("steps"));
  m.def("hotspot_head", &hotspot_head, py::arg("h"), py::arg("weight"), py::arg("bias"),
        py::arg("lo"), py::arg("hi"), py::arg("thr"));
  m.def("table_lookup", &table_lookup, py::arg("nodes"), py::arg("dt_t"), py::arg("tab_a"),
        py::arg("tab_t"), py::arg("tab_u"), py::arg("ps"), py::arg("t0"), py::arg("t1"),
        py::arg("shocked"), py::arg("thr"));
  m.def("table_step", &table_step, py::arg("nodes"), py::arg("dt_t"), py::arg("tab_a"),
        py::arg("tab_t"), py::arg("tab_u"), py::arg("ps_old"), py::arg("t_old"),
        py::arg("steps_old"), py::arg("frac_old"), py::arg("pressure"), py::arg("dt"),
        py::arg("dt_meso"), py::arg("ps_window"), py::arg("env_lo"), py::arg("env_hi"),
        py::arg("status_ok"), py::arg("status_outside"));
  m.def("max_threads", &max_threads);
  register_decoder_body(m);
  register_latent_unet(m);
  m.attr("openmp") = py::bool_(
#ifdef _OPENMP
      true
#else
      false
#endif
  );
}
