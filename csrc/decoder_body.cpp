// C++/OpenMP kernels for the body of the tokenizer's decoder on CPU (module closure._kernels_cpp).
//
// The decoder body is ConvUnits (3x3 conv + LeakyReLU + 1x1 conv + LeakyReLU) behind bilinear x2
// up-sampling. Two restructurings cut its arithmetic, and each ConvUnit is one fused kernel:
// every OpenMP task takes a sample and a band of rows, and its matrix products (the register-
// blocked micro-kernel of small_gemm.h) run on rows held in cache, so no intermediate leaves
// the core between the unit's input and output.
//
//  upconv3x3_unit     ConvUnit behind a bilinear x2 up-sampling. Channel mixing commutes with
//                     up-sampling, so the nine taps' mixes y_t = W_t x are formed at the coarse
//                     resolution (a quarter of the products), then up-sampled, shifted and
//                     summed, a = act(b + sum_t S_t U y_t), with U the bilinear x2 up-sampling
//                     (align_corners=False, edge-clamped) and S_t the tap's shift with zero fill
//                     (separable: an x pass, then a y pass); then the 1x1 conv,
//                     out = act(bm + Wm a).
//  winograd_unit      ConvUnit whose 3x3 conv (zero padding) runs as Winograd F(2x2, 3x3): input
//                     tiles V = B^T d B, 16 products M = U V, output a = act(b + A^T M A), 2.25x
//                     fewer products than direct convolution; then the 1x1 conv.
//  last_level_hotspots  the last ConvUnit, the output conv, de-normalization, threshold and
//                     per-sample reduction (see below).
//
// act is LeakyReLU with the given slope (1 = identity). References: closure/kernels.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "closure_kernels.h"
#include "py_args.h"
#include "small_gemm.h"

namespace py = pybind11;
using ck::f32a;
using ck::need;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CK_CLONES
#endif

namespace {

constexpr float Q1 = 0.25f, Q3 = 0.75f;

// The optional 1x1 conv of a fused ConvUnit: wm (C, C) as [c_in][c_out] and bm (C,), or both
// empty (no 1x1 conv). Returns the two pointers, null when empty.
std::pair<const float*, const float*> mix_weights(const f32a& wm, const f32a& bm, int64_t C,
                                                  const char* who) {
  if (wm.size() == 0 && bm.size() == 0) return {nullptr, nullptr};
  need(wm.size() == C * C && bm.size() == C,
       std::string(who) + ": wm must be (C, C) ([c_in][c_out]) and bm (C,), or both empty");
  return {wm.data(), bm.data()};
}

inline float act(float v, float slope) { return v > 0.0f ? v : v * slope; }

// Bilinear x2 up-sampling (align_corners=False, source index clamped at 0 and n-1) of the
// length-n sequence at fine index q, as (up to two) coarse indices and weights; q outside
// [0, 2n) is the conv's zero padding (no terms).
inline int up_terms(int64_t n, int64_t q, int64_t* idx, float* wt) {
  if (q < 0 || q >= 2 * n) return 0;
  const int64_t k = q >> 1;
  if (q & 1) {
    if (k + 1 < n) {
      idx[0] = k, wt[0] = Q3, idx[1] = k + 1, wt[1] = Q1;
      return 2;
    }
  } else if (k >= 1) {
    idx[0] = k - 1, wt[0] = Q1, idx[1] = k, wt[1] = Q3;
    return 2;
  }
  idx[0] = k, wt[0] = 1.0f;
  return 1;
}

// x pass of one coarse row: taps dx = -1, 0, +1 read rows rm, r0, rp (length w); fine column q
// (0 <= q < 2w) goes to out[q].
CK_CLONES void x_pass(const float* __restrict rm, const float* __restrict r0,
                      const float* __restrict rp, int64_t w, float* __restrict out) {
  const float* rows[3] = {rm, r0, rp};
  auto border = [&](int64_t j) {
    for (int p = 0; p < 2; ++p) {
      float s = 0.0f;
      for (int d = 0; d < 3; ++d) {
        int64_t idx[2];
        float wt[2];
        const int m = up_terms(w, 2 * j + p + d - 1, idx, wt);
        for (int t = 0; t < m; ++t) s += wt[t] * rows[d][idx[t]];
      }
      out[2 * j + p] = s;
    }
  };
  border(0);
  if (w > 1) border(w - 1);
#pragma omp simd
  for (int64_t j = 1; j < w - 1; ++j) {
    out[2 * j] = Q3 * (rm[j - 1] + r0[j] + rp[j]) + Q1 * (rm[j] + r0[j - 1] + rp[j + 1]);
    out[2 * j + 1] =
        Q1 * (rm[j - 1] + rp[j]) + Q3 * (rm[j] + r0[j] + rp[j + 1]) + Q1 * r0[j + 1];
  }
}

// y pass + bias + activation of one fine row I of one channel: rows[rel] holds the x-passed
// coarse row i - 1 + rel (length n = 2w) of tap row dy = -1, tap row d - 1 at + d dstride
// (null outside the image, never read).
CK_CLONES void y_pass_row(const float* const* rows, int64_t h, int64_t i, int64_t n, int64_t I,
                          int64_t dstride, float bias, float slope, float* __restrict out) {
  std::fill(out, out + n, bias);
  for (int d = 0; d < 3; ++d) {
    int64_t idx[2];
    float wt[2];
    const int m = up_terms(h, I + d - 1, idx, wt);
    for (int t = 0; t < m; ++t) {
      const float* src = rows[idx[t] - (i - 1)] + d * dstride;
      const float c = wt[t];
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) out[k] += c * src[k];
    }
  }
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) out[k] = act(out[k], slope);
}

// Row blocks per sample so that the tasks (samples x blocks) divide evenly among the threads:
// a block's first and last coarse rows are the only ones computed twice.
int64_t blocks_per_sample(int64_t B, int64_t rows) {
#ifdef _OPENMP
  const int64_t T = std::max(1, omp_get_max_threads());
#else
  const int64_t T = 1;
#endif
  return std::max<int64_t>(1, std::min(rows, T / std::gcd(std::max<int64_t>(B, 1), T)));
}

// Strided rows of an operand as the row offsets gemm_bias_act takes.
inline void strided(int64_t* off, int64_t n, int64_t first, int64_t stride) {
  for (int64_t k = 0; k < n; ++k) off[k] = first + k * stride;
}

// ConvUnit behind the bilinear x2 up-sampling, per sample and block of coarse rows i: the nine
// taps' channel mixes of coarse rows (W9 x_i, one small product for a group of g rows, g w >=
// 48 columns), their x passes into a ring of g + 2 coarse rows (each row is mixed once), then
// per fine-row pair the y passes, bias, act and the 1x1 conv while the rows are in cache.
// x (B, C, h, w); w9T (C, 9 O) as [c][t O + o] with tap t = 3 dy + dx.
f32a upconv3x3_unit(f32a x, f32a w9T, f32a bias, f32a wm, f32a bm, float slope) {
  need(x.ndim() == 4, "upconv3x3_unit: x must be (B, C, h, w)");
  const int64_t B = x.shape(0), C = x.shape(1), h = x.shape(2), w = x.shape(3);
  need(w9T.ndim() == 2 && w9T.shape(0) == C && w9T.shape(1) % 9 == 0 && w9T.shape(1) > 0,
       "upconv3x3_unit: w9T must be (C, 9 O) ([c_in][tap * O + c_out])");
  const int64_t O = w9T.shape(1) / 9;
  need(bias.ndim() == 1 && bias.shape(0) == O, "upconv3x3_unit: bias must be (O,)");
  const auto [pw, pbm] = mix_weights(wm, bm, O, "upconv3x3_unit");
  const bool mix = pw != nullptr;
  const int64_t H = 2 * h, W = 2 * w, plane = h * w, n = W;
  f32a out({B, O, H, W});
  if (B == 0 || h == 0 || w == 0) return out;
  const int64_t g = std::clamp<int64_t>((48 + w - 1) / w, 1, h), nslot = g + 2;
  const int64_t slot = 3 * O * n;  // x-passed rows of one coarse row: [dy][c][E | O]
  const int64_t nblk = blocks_per_sample(B, h), rows_per = (h + nblk - 1) / nblk;
  const float* px = x.data();
  const float* pw9 = w9T.data();
  const float* pb = bias.data();
  float* po = out.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      std::vector<float> ring((size_t)(nslot * slot)), ybuf((size_t)(9 * O * g * w));
      std::vector<float> a((size_t)(mix ? O * 2 * n : 0));
      std::vector<int64_t> offx((size_t)C), offa((size_t)O);
      strided(offa.data(), O, 0, 2 * n);
#pragma omp for schedule(static)
      for (int64_t task = 0; task < B * nblk; ++task) {
        const int64_t b = task / nblk, i0 = (task % nblk) * rows_per;
        const int64_t i1 = std::min(h, i0 + rows_per);
        int64_t next = std::max<int64_t>(0, i0 - 1);  // first coarse row not yet mixed
        for (int64_t i = i0; i < i1; ++i) {
          while (next <= std::min(h - 1, i + 1)) {
            const int64_t nr = std::min(g, h - next), N = nr * w;
            strided(offx.data(), C, (b * C) * plane + next * w, plane);
            sg::gemm_bias_act(9 * O, N, C, pw9, 9 * O, px, offx.data(), nullptr, 1.0f,
                              ybuf.data(), N);
            for (int64_t r = 0; r < nr; ++r) {
              float* G = ring.data() + ((next + r) % nslot) * slot;
              for (int d = 0; d < 3; ++d) {
                for (int64_t c = 0; c < O; ++c) {
                  const float* y0 = ybuf.data() + (3 * d * O + c) * N + r * w;
                  x_pass(y0, y0 + O * N, y0 + 2 * O * N, w, G + (d * O + c) * n);
                }
              }
            }
            next += nr;
          }
          // fine rows 2i, 2i+1 (contiguous in each output plane), through the 1x1 conv if any
          float* orows = po + (b * O * H + 2 * i) * W;
          for (int p = 0; p < 2; ++p) {
            for (int64_t c = 0; c < O; ++c) {
              const float* rows[3];
              for (int rel = 0; rel < 3; ++rel) {
                const int64_t row = i - 1 + rel;
                rows[rel] = (row >= 0 && row < h) ? ring.data() + (row % nslot) * slot + c * n
                                                  : nullptr;
              }
              float* dst = mix ? a.data() + c * 2 * n + p * n : orows + c * H * W + p * W;
              y_pass_row(rows, h, i, n, 2 * i + p, O * n, pb[c], slope, dst);
            }
          }
          if (mix)
            sg::gemm_bias_act(O, 2 * n, O, pw, O, a.data(), offa.data(), pbm, slope, orows,
                              H * W);
        }
      }
    }
  }
  return out;
}

// Column transform of one input row for all tile columns: t_j[k] for the tile covering columns
// 2k-1 .. 2k+2 (zero outside 0..W-1): t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3.
CK_CLONES void wino_in_cols(const float* __restrict row, int64_t W, int64_t tw,
                            float* __restrict t0, float* __restrict t1, float* __restrict t2,
                            float* __restrict t3) {
  auto at = [&](int64_t i) { return (i >= 0 && i < W) ? row[i] : 0.0f; };
  auto edge = [&](int64_t k) {
    const float d0 = at(2 * k - 1), d1 = at(2 * k), d2 = at(2 * k + 1), d3 = at(2 * k + 2);
    t0[k] = d0 - d2, t1[k] = d1 + d2, t2[k] = d2 - d1, t3[k] = d1 - d3;
  };
  const int64_t k1 = std::max<int64_t>(1, std::min(tw, (W - 1) / 2));  // interior: 2k+2 < W+1
  edge(0);
#pragma omp simd
  for (int64_t k = 1; k < k1; ++k) {
    const float d0 = row[2 * k - 1], d1 = row[2 * k], d2 = row[2 * k + 1], d3 = row[2 * k + 2];
    t0[k] = d0 - d2;
    t1[k] = d1 + d2;
    t2[k] = d2 - d1;
    t3[k] = d1 - d3;
  }
  for (int64_t k = k1; k < tw; ++k) edge(k);
}

// Winograd F(2x2, 3x3) input tiles of tile rows [ty0, ty1) of channel plane x (H x W, zero
// padded by 1): tile (ty, tx) covers input rows 2ty-1..2ty+2 and columns 2tx-1..2tx+2; element
// e of the tiles is at V + e vs + (ty - ty0) tw + tx. Each input row's column transform is
// formed once (consecutive tile rows share two rows); buf holds 16 tw floats.
CK_CLONES void wino_in_rows(const float* __restrict x, int64_t H, int64_t W, int64_t ty0,
                            int64_t ty1, int64_t tw, float* __restrict V, int64_t vs,
                            float* __restrict buf) {
  // ring of 4 column-transformed rows: input row yy at slot yy & 3, its 4 parts at + j tw
  auto slot = [&](int64_t yy) { return buf + (yy & 3) * 4 * tw; };
  auto load = [&](int64_t yy) {
    float* t = slot(yy);
    if (yy < 0 || yy >= H)
      std::fill(t, t + 4 * tw, 0.0f);
    else
      wino_in_cols(x + yy * W, W, tw, t, t + tw, t + 2 * tw, t + 3 * tw);
  };
  load(2 * ty0 - 1);
  load(2 * ty0);
  for (int64_t ty = ty0; ty < ty1; ++ty) {
    load(2 * ty + 1);
    load(2 * ty + 2);
    float* v = V + (ty - ty0) * tw;
    for (int b = 0; b < 4; ++b) {
      const float* d0 = slot(2 * ty - 1) + b * tw;
      const float* d1 = slot(2 * ty) + b * tw;
      const float* d2 = slot(2 * ty + 1) + b * tw;
      const float* d3 = slot(2 * ty + 2) + b * tw;
      float* v0 = v + (0 + b) * vs;
      float* v1 = v + (4 + b) * vs;
      float* v2 = v + (8 + b) * vs;
      float* v3 = v + (12 + b) * vs;
#pragma omp simd
      for (int64_t k = 0; k < tw; ++k) {
        v0[k] = d0[k] - d2[k];
        v1[k] = d1[k] + d2[k];
        v2[k] = d2[k] - d1[k];
        v3[k] = d1[k] - d3[k];
      }
    }
  }
}

// Output transform of one tile row (tw tiles) of one channel: output rows r = 0, 1 of the tiles
// as act(bias + A^T M A) into row0 and row1 (null: not wanted), W columns each; element e of the
// tiles at M + e ms.
CK_CLONES void wino_out_row(const float* __restrict M, int64_t ms, int64_t tw, int64_t W,
                            float bias, float slope, float* __restrict row0,
                            float* __restrict row1) {
  const int64_t full = W / 2;  // tiles with both output columns inside
  for (int r = 0; r < 2; ++r) {
    float* out = r == 0 ? row0 : row1;
    if (out == nullptr) continue;
    // row r of A^T M: r = 0 -> m0 + m1 + m2, r = 1 -> m1 - m2 - m3 (rows of the 4x4 tile)
    const float sg = r == 0 ? 1.0f : -1.0f;  // sign of the last two rows
    const float* a0 = M + (r == 0 ? 0 : 4) * ms;
    const float* a1 = M + (r == 0 ? 4 : 8) * ms;
    const float* a2 = M + (r == 0 ? 8 : 12) * ms;
    auto col = [&](int64_t k, int j) {
      return a0[j * ms + k] + sg * (a1[j * ms + k] + a2[j * ms + k]);
    };
#pragma omp simd
    for (int64_t k = 0; k < full; ++k) {
      const float t0 = col(k, 0), t1 = col(k, 1), t2 = col(k, 2), t3 = col(k, 3);
      out[2 * k] = act(bias + (t0 + t1 + t2), slope);
      out[2 * k + 1] = act(bias + (t1 - t2 - t3), slope);
    }
    if (full < tw) out[2 * full] = act(bias + (col(full, 0) + col(full, 1) + col(full, 2)), slope);
  }
}

// Per-thread buffers of wino_unit_rows for up to `rows` tile rows per group.
struct WinoBuffers {
  std::vector<float> V, M, a, in;
  std::vector<int64_t> offv, offa;
  WinoBuffers(int64_t C, int64_t O, int64_t rows, int64_t tw, int64_t W)
      : V((size_t)(16 * C * rows * tw)), M((size_t)(16 * O * rows * tw)),
        a((size_t)(O * 2 * rows * W)), in((size_t)(16 * tw)), offv((size_t)C),
        offa((size_t)O) {}
};

// Tile rows per Winograd group: at least 48 tiles per product (the micro-kernel's panel).
inline int64_t wino_group_rows(int64_t th, int64_t tw) {
  return std::clamp<int64_t>((48 + tw - 1) / tw, 1, std::max<int64_t>(th, 1));
}

// ConvUnit (3x3 conv, zero padding, + 1x1 conv when wm is not null) of tile rows [ty0, ty1) of
// one sample x (C, H, W) with the 3x3 conv as Winograd F(2x2, 3x3): input tiles, the 16
// products M_e = U_e V_e, output transform + bias + act, 1x1 conv. Output rows 2 ty0 ..
// min(H, 2 ty1) - 1 of channel o go to dst + o ld + (row - 2 ty0) W.
// U (16, C, O) = G g G^T as [e][c_in][c_out].
void wino_unit_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                    const float* U, int64_t O, const float* bias, const float* wm,
                    const float* bm, float slope, WinoBuffers& wb, float* dst, int64_t ld) {
  const int64_t tw = (W + 1) / 2, N = (ty1 - ty0) * tw;
  const int64_t nrows = std::min(H, 2 * ty1) - 2 * ty0;
  for (int64_t c = 0; c < C; ++c)
    wino_in_rows(x + c * H * W, H, W, ty0, ty1, tw, wb.V.data() + c * N, C * N, wb.in.data());
  for (int e = 0; e < 16; ++e) {
    strided(wb.offv.data(), C, e * C * N, N);
    sg::gemm_bias_act(O, N, C, U + e * C * O, O, wb.V.data(), wb.offv.data(), nullptr, 1.0f,
                      wb.M.data() + e * O * N, N);
  }
  // without the 1x1 conv the transform writes the output itself
  float* out = wm != nullptr ? wb.a.data() : dst;
  const int64_t lo = wm != nullptr ? nrows * W : ld;
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      float* r0 = out + o * lo + (2 * (ty - ty0)) * W;
      wino_out_row(wb.M.data() + o * N + (ty - ty0) * tw, O * N, tw, W, bias[o], slope, r0,
                   2 * ty + 1 < H ? r0 + W : nullptr);
    }
  }
  if (wm == nullptr) return;
  strided(wb.offa.data(), O, 0, lo);
  sg::gemm_bias_act(O, nrows * W, O, wm, O, wb.a.data(), wb.offa.data(), bm, slope, dst, ld);
}

// ConvUnit with the 3x3 conv as Winograd F(2x2, 3x3) (wino_unit_rows), per sample and group of
// tile rows, everything on buffers held in cache. x (B, C, H, W); U (16, C, O).
f32a winograd_unit(f32a x, f32a U, f32a bias, f32a wm, f32a bm, float slope) {
  need(x.ndim() == 4, "winograd_unit: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  need(U.ndim() == 3 && U.shape(0) == 16 && U.shape(1) == C,
       "winograd_unit: U must be (16, C, O) ([element][c_in][c_out])");
  const int64_t O = U.shape(2);
  need(bias.ndim() == 1 && bias.shape(0) == O, "winograd_unit: bias must be (O,)");
  const auto [pw, pbm] = mix_weights(wm, bm, O, "winograd_unit");
  f32a y({B, O, H, W});
  if (B == 0 || H == 0 || W == 0 || O == 0) return y;
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, gr = wino_group_rows(th, tw);
  const int64_t ngrp = (th + gr - 1) / gr;
  const float* px = x.data();
  const float* pu = U.data();
  const float* pb = bias.data();
  float* py = y.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      WinoBuffers wb(C, O, gr, tw, W);
#pragma omp for schedule(static)
      for (int64_t task = 0; task < B * ngrp; ++task) {
        const int64_t b = task / ngrp, ty0 = (task % ngrp) * gr;
        const int64_t ty1 = std::min(th, ty0 + gr);
        wino_unit_rows(px + b * C * H * W, C, H, W, ty0, ty1, pu, O, pb, pw, pbm, slope, wb,
                       py + (b * O * H + 2 * ty0) * W, H * W);
      }
    }
  }
  return y;
}

// Last decoder level fused with the output head: per pixel a = act(Wm act(W3 * x + b3) + bm)
// (3x3 conv C -> CO, zero padding, as Winograd F(2x2, 3x3), then 1x1 conv CO -> CO), the head
// v = Wh * a + bh (3x3 conv CO -> 1, zero padding), T = v (hi - lo) + lo, and the per-sample
// count and sum of T over T > thr. Rows are processed in blocks (the tile rows holding the halo
// row of a on each side recomputed), so no full-resolution activation is written.
// Weights: U (16, C, CO) = G w3 G^T as [e][c_in][c_out], wm (CO_in, CO_out), wh (3, 3, CO).
constexpr int64_t ROW_BLOCK = 32;  // even: blocks start on a tile row

struct LastLevel {
  int64_t C, H, W, CO;
  const float *U, *b3, *wm, *bm, *wh;
  float bh, slope, scale, off, thr;
};

// Head, threshold and reduction of output row I; a holds rows I-1, I, I+1 at a + (ky W), channel
// o at + o lda (zero rows outside the image).
CK_CLONES void head_row(const LastLevel& L, const float* __restrict a, int64_t lda,
                        float* __restrict v, int64_t* count, double* sum) {
  const int64_t W = L.W;
  std::fill(v, v + W, 0.0f);
  for (int64_t o = 0; o < L.CO; ++o) {
    for (int ky = 0; ky < 3; ++ky) {
      const float* s = a + o * lda + ky * W;
      const float* wk = L.wh + ky * 3 * L.CO + o;
      const float cl = wk[0], cc = wk[L.CO], cr = wk[2 * L.CO];
      // columns J-1, J, J+1 with zero padding at both ends
#pragma omp simd
      for (int64_t J = 0; J < W; ++J) v[J] += cc * s[J];
#pragma omp simd
      for (int64_t J = 1; J < W; ++J) v[J] += cl * s[J - 1];
#pragma omp simd
      for (int64_t J = 0; J < W - 1; ++J) v[J] += cr * s[J + 1];
    }
  }
  int64_t n = 0;
  double s = 0.0;
  for (int64_t J = 0; J < W; ++J) {
    const float T = (v[J] + L.bh) * L.scale + L.off;
    if (T > L.thr) {
      ++n;
      s += (double)T;
    }
  }
  *count += n;
  *sum += s;
}

// Rows [I0, I1) of one sample x (C, H, W); ab holds a's rows I0-2 .. I1+1 as [o][row][W] (zero
// rows outside the image), RB = I1 - I0 + 4 rows per channel.
void last_level_block(const LastLevel& L, const float* __restrict x, int64_t I0, int64_t I1,
                      WinoBuffers& wb, float* __restrict ab, float* __restrict v,
                      int64_t* count, double* sum) {
  const int64_t H = L.H, W = L.W, CO = L.CO, RB = I1 - I0 + 4;
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, gr = wino_group_rows(th, tw);
  for (int64_t o = 0; o < CO; ++o) {
    for (int64_t yy = I0 - 2; yy < I1 + 2; ++yy) {
      if (yy < 0 || yy >= H) {
        float* row = ab + (o * RB + yy - (I0 - 2)) * W;
        std::fill(row, row + W, 0.0f);
      }
    }
  }
  // tile rows holding rows I0-1 .. I1: rows 2 ta >= I0-2 .. 2 tb - 1 <= I1+1
  const int64_t ta = std::max<int64_t>(0, (I0 - 1) / 2), tb = std::min(th, I1 / 2 + 1);
  for (int64_t t0 = ta; t0 < tb; t0 += gr) {
    const int64_t t1 = std::min(tb, t0 + gr);
    wino_unit_rows(x, L.C, H, W, t0, t1, L.U, CO, L.b3, L.wm, L.bm, L.slope, wb,
                   ab + (2 * t0 - (I0 - 2)) * W, RB * W);
  }
  *count = 0;
  *sum = 0.0;
  for (int64_t I = I0; I < I1; ++I)
    head_row(L, ab + (I - 1 - (I0 - 2)) * W, RB * W, v, count, sum);
}

py::tuple last_level_hotspots(f32a x, f32a U, f32a b3, f32a wm, f32a bm, f32a wh, float bh,
                              float slope, double lo, double hi, double thr) {
  need(x.ndim() == 4, "last_level_hotspots: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  need(b3.ndim() == 1 && b3.shape(0) > 0, "last_level_hotspots: b3 must be (CO,)");
  const int64_t CO = b3.shape(0);
  need(U.ndim() == 3 && U.shape(0) == 16 && U.shape(1) == C && U.shape(2) == CO,
       "last_level_hotspots: U must be (16, C, CO) ([element][c_in][c_out])");
  need(wm.size() == CO * CO && bm.size() == CO, "last_level_hotspots: wm (CO, CO), bm (CO,)");
  need(wh.size() == 9 * CO, "last_level_hotspots: wh must be (3, 3, CO)");
  py::array_t<int64_t> count({B});
  py::array_t<double> sum({B});
  const LastLevel L{C, H, W, CO, U.data(), b3.data(), wm.data(), bm.data(), wh.data(), bh,
                    slope, (float)(hi - lo), (float)lo, (float)thr};
  const float* px = x.data();
  int64_t* pc = count.mutable_data();
  double* ps = sum.mutable_data();
  if (B == 0) return py::make_tuple(count, sum);
  {
    py::gil_scoped_release nogil;
    const int64_t nblk = (H + ROW_BLOCK - 1) / ROW_BLOCK;
    const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, gr = wino_group_rows(th, tw);
    std::vector<int64_t> bc((size_t)(B * nblk));
    std::vector<double> bs((size_t)(B * nblk));
#pragma omp parallel
    {
      WinoBuffers wb(C, CO, gr, tw, W);
      std::vector<float> ab((size_t)(CO * (ROW_BLOCK + 4) * W)), v((size_t)W);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < B * nblk; ++t) {
        const int64_t b = t / nblk, I0 = (t % nblk) * ROW_BLOCK;
        const int64_t I1 = std::min(H, I0 + ROW_BLOCK);
        last_level_block(L, px + b * C * H * W, I0, I1, wb, ab.data(), v.data(),
                         &bc[(size_t)t], &bs[(size_t)t]);
      }
    }
    ck::sum_blocks(bc.data(), bs.data(), B, nblk, pc, ps);
  }
  return py::make_tuple(count, sum);
}

}  // namespace

void register_decoder_body(py::module_& m) {
  m.def("upconv3x3_unit", &upconv3x3_unit, py::arg("x"), py::arg("w9T"), py::arg("bias"),
        py::arg("wm"), py::arg("bm"), py::arg("slope"));
  m.def("winograd_unit", &winograd_unit, py::arg("x"), py::arg("U"), py::arg("bias"),
        py::arg("wm"), py::arg("bm"), py::arg("slope"));
  m.def("last_level_hotspots", &last_level_hotspots, py::arg("x"), py::arg("U"), py::arg("b3"),
        py::arg("wm"), py::arg("bm"), py::arg("wh"), py::arg("bh"), py::arg("slope"),
        py::arg("lo"), py::arg("hi"), py::arg("thr"));
  m.def("avx512_active", &sg::avx512_active,
        "Whether the decoder body's products use the AVX-512 micro-kernel");
  m.def("set_avx512", &sg::set_avx512, py::arg("on"),
        "Switch the AVX-512 micro-kernel off (False) or back on where the CPU has it (True)");
}
