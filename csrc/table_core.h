// Table mode of the closure, per cell: the (Ps, t) bilinear lookup, the MES-IG rate and the
// per-cell clock. Shared, as source, by the Python module (closure_kernels.cpp: table_lookup,
// table_step) and the C API library (capi/porous_closure.cpp), which are built with the same
// compiler flags, so both give the same answers to the last bit. Plain C++ (no pybind11).
//
// Every expression here is written exactly once: any change changes both users alike.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ck {

// Bilinear interpolation of one table at (ps, t); ps inside [nodes[0], nodes[nP-1]] after clamp,
// t clamped to [0, (nT - 1) dt_t] (beyond the horizon the last value is held).
static inline void lerp_index(const double* nodes, int64_t nP, double ps, int64_t& i, double& f) {
  if (ps <= nodes[0]) { i = 0; f = 0.0; return; }
  if (ps >= nodes[nP - 1]) { i = nP - 2; f = 1.0; return; }
  // the largest lo with nodes[lo] <= ps (< nodes[nP-1], so lo <= nP-2), halving with a select
  // instead of a branch: neighbouring cells' pressures are unrelated, so a bisection's branches
  // mispredict about half the time; the index (and so every result) is the bisection's
  const double* b = nodes;
  int64_t len = nP - 1;  // the answer is in b[0, len)
  while (len > 1) {
    const int64_t half = len / 2;
    b = b[half] <= ps ? b + half : b;
    len -= half;
  }
  const int64_t lo = b - nodes;
  i = lo;
  f = (ps - nodes[lo]) / (nodes[lo + 1] - nodes[lo]);
}

static inline double bilin(const double* tab, int64_t nT, int64_t i, double fp, int64_t k,
                           double ft) {
  const double* r0 = tab + i * nT;
  const double* r1 = r0 + nT;
  const double a = r0[k] + ft * (r0[k + 1] - r0[k]);
  const double b = r1[k] + ft * (r1[k + 1] - r1[k]);
  return a + fp * (b - a);
}

static inline void t_index(double t, double dt_t, int64_t nT, int64_t& k, double& f) {
  double s = t / dt_t;
  if (!(s > 0.0)) { k = 0; f = 0.0; return; }
  if (s >= (double)(nT - 1)) { k = nT - 2; f = 1.0; return; }
  k = (int64_t)s;
  if (k > nT - 2) k = nT - 2;
  f = s - (double)k;
}

// One shocked cell's (A(t1), T_hs(t1), U(t1), rate over [t0, t1]) at Ps interval i, weight fp
// (lerp_index of its Ps: a caller may keep them while the cell's Ps is frozen).
static inline void lookup_at(int64_t i, double fp, double dt_t, int64_t nT, const double* A,
                             const double* T, const double* U, double t0, double t1, double& rA,
                             double& rT, double& rU, double& rR) {
  int64_t k0, k1;
  double f0, f1;
  t_index(t0, dt_t, nT, k0, f0);
  t_index(t1, dt_t, nT, k1, f1);
  const double A0 = bilin(A, nT, i, fp, k0, f0);
  const double A1 = bilin(A, nT, i, fp, k1, f1);
  rA = A1;
  rT = bilin(T, nT, i, fp, k1, f1);
  rU = bilin(U, nT, i, fp, k1, f1);
  const double d = A1 - A0;
  rR = d > 0.0 ? d / (t1 - t0) : 0.0;
}

// One shocked cell's (A(t1), T_hs(t1), U(t1), rate over [t0, t1]).
static inline void lookup_cell(const double* nd, int64_t nP, double dt_t, int64_t nT,
                               const double* A, const double* T, const double* U, double ps,
                               double t0, double t1, double& rA, double& rT, double& rU,
                               double& rR) {
  int64_t i;
  double fp;
  lerp_index(nd, nP, ps, i, fp);
  lookup_at(i, fp, dt_t, nT, A, T, U, t0, t1, rA, rT, rU, rR);
}

// The per-cell clock over a call of length dn (closure.kernels.advance_cells): Ps the running
// max of the pressure while the cell's age at the call's start is below ps_window; whole meso
// steps plus the fraction of the next, so many small calls equal one large one.
static inline void advance_cell(double ps0, double t0, int64_t st0, double fr0, double p,
                                double dn, double dt_meso, double ps_window, double& ps,
                                double& t1, int64_t& st1, double& fr1) {
  ps = t0 < ps_window ? std::max(ps0, p) : ps0;
  t1 = t0 + dn;
  const double x = fr0 + dn / dt_meso;
  const double whole = std::floor(x);
  st1 = st0 + (int64_t)whole;
  fr1 = x - whole;
}

}  // namespace ck
