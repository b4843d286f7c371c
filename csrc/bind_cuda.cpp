// pybind11 bindings of the CUDA kernels (module closure._kernels_cuda); the device code is in
// closure_kernels.cu, compiled by nvcc in setup.py and linked here with the static CUDA runtime.
// Same signatures as closure._kernels_cpp, plus *_dev variants on device pointers (PyTorch CUDA
// tensors' data_ptr()) launched on a given stream; a CUDA error raises RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "closure_kernels_cuda.h"
#include "py_args.h"

namespace py = pybind11;
using ck::f32a;
using ck::f64a;
using ck::i64a;
using ck::need;
using ck::u8a;

static void check(int code, const char* what) {
  if (code != 0)
    throw std::runtime_error(std::string(what) + ": CUDA error " + std::to_string(code) + " (" +
                             ck_cuda_error_string(code) + ")");
}

static f32a sample_latent(f32a mean, f32a logvar, uint64_t seed, i64a cell_ids, i64a steps) {
  need(mean.ndim() == 2 && logvar.ndim() == 2 && logvar.shape(0) == mean.shape(0) &&
           logvar.shape(1) == mean.shape(1), "sample_latent: mean/logvar must be (B, E)");
  const int64_t B = mean.shape(0), E = mean.shape(1);
  need(cell_ids.size() == B && steps.size() == B, "sample_latent: cell_ids/steps must be (B,)");
  f32a out({B, E});
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = ck_cuda_sample_latent(mean.data(), logvar.data(), seed, cell_ids.data(), steps.data(),
                               out.mutable_data(), B, E);
  }
  check(rc, "sample_latent");
  return out;
}

static py::tuple hotspot_head(f32a h, f32a weight, float bias, double lo, double hi, double thr) {
  need(h.ndim() == 4, "hotspot_head: h must be (B, C, H, W)");
  const int64_t B = h.shape(0), C = h.shape(1), H = h.shape(2), W = h.shape(3);
  need(weight.size() == C * 9, "hotspot_head: weight must have C*3*3 elements");
  i64a count({B});
  f64a sum({B});
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = ck_cuda_hotspot_head(h.data(), weight.data(), bias, lo, hi, thr, B, C, H, W,
                              count.mutable_data(), sum.mutable_data());
  }
  check(rc, "hotspot_head");
  return py::make_tuple(count, sum);
}

static py::tuple table_lookup(f64a nodes, double dt_t, f64a tabA, f64a tabT, f64a tabU, f64a ps,
                              f64a t0, f64a t1, u8a shocked, double thr) {
  need(nodes.ndim() == 1 && nodes.shape(0) >= 2, "table_lookup: need >= 2 Ps nodes");
  const int64_t nP = nodes.shape(0);
  need(tabA.ndim() == 2 && tabA.shape(0) == nP && tabA.shape(1) >= 2,
       "table_lookup: tables must be (nP, nT >= 2)");
  const int64_t nT = tabA.shape(1), N = ps.size();
  need(tabT.size() == nP * nT && tabU.size() == nP * nT, "table_lookup: table shapes differ");
  need(t0.size() == N && t1.size() == N && shocked.size() == N,
       "table_lookup: ps, t0, t1, shocked must have the same length");
  f64a oA({N}), oT({N}), oU({N}), oR({N});
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = ck_cuda_table_lookup(nodes.data(), nP, dt_t, nT, tabA.data(), tabT.data(), tabU.data(),
                              ps.data(), t0.data(), t1.data(), shocked.data(), thr, N,
                              oA.mutable_data(), oT.mutable_data(), oU.mutable_data(),
                              oR.mutable_data());
  }
  check(rc, "table_lookup");
  return py::make_tuple(oA, oT, oU, oR);
}

static void* ptr(uintptr_t p) { return reinterpret_cast<void*>(p); }

static void sample_latent_dev(uintptr_t mean, uintptr_t logvar, uint64_t seed, uintptr_t cell_ids,
                              uintptr_t steps, uintptr_t out, int64_t B, int64_t E,
                              uintptr_t stream) {
  need(B >= 0 && E >= 0, "sample_latent_dev: B and E must be >= 0");
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = ck_cuda_sample_latent_dev((const float*)ptr(mean), (const float*)ptr(logvar), seed,
                                   (const int64_t*)ptr(cell_ids), (const int64_t*)ptr(steps),
                                   (float*)ptr(out), B, E, ptr(stream));
  }
  check(rc, "sample_latent_dev");
}

static void hotspot_head_dev(uintptr_t h, uintptr_t weight, float bias, double lo, double hi,
                             double thr, int64_t B, int64_t C, int64_t H, int64_t W,
                             uintptr_t count, uintptr_t sum, uintptr_t stream) {
  need(B >= 0 && C >= 1 && H >= 0 && W >= 0, "hotspot_head_dev: bad shape");
  int rc;
  {
    py::gil_scoped_release nogil;
    rc = ck_cuda_hotspot_head_dev((const float*)ptr(h), (const float*)ptr(weight), bias, lo, hi,
                                  thr, B, C, H, W, (int64_t*)ptr(count), (double*)ptr(sum),
                                  ptr(stream));
  }
  check(rc, "hotspot_head_dev");
}

PYBIND11_MODULE(_kernels_cuda, m) {
  m.doc() = "CUDA closure kernels (see csrc/closure_kernels.cu)";
  m.def("device_count", &ck_cuda_device_count);
  m.def("sample_latent", &sample_latent, py::arg("mean"), py::arg("logvar"), py::arg("seed"),
        py::arg("cell_ids"), py::arg("steps"));
  m.def("hotspot_head", &hotspot_head, py::arg("h"), py::arg("weight"), py::arg("bias"),
        py::arg("lo"), py::arg("hi"), py::arg("thr"));
  m.def("table_lookup", &table_lookup, py::arg("nodes"), py::arg("dt_t"), py::arg("tab_a"),
        py::arg("tab_t"), py::arg("tab_u"), py::arg("ps"), py::arg("t0"), py::arg("t1"),
        py::arg("shocked"), py::arg("thr"));
  m.def("sample_latent_dev", &sample_latent_dev, py::arg("mean"), py::arg("logvar"),
        py::arg("seed"), py::arg("cell_ids"), py::arg("steps"), py::arg("out"), py::arg("B"),
        py::arg("E"), py::arg("stream"));
  m.def("hotspot_head_dev", &hotspot_head_dev, py::arg("h"), py::arg("weight"), py::arg("bias"),
        py::arg("lo"), py::arg("hi"), py::arg("thr"), py::arg("B"), py::arg("C"), py::arg("H"),
        py::arg("W"), py::arg("count"), py::arg("sum"), py::arg("stream"));
}
