// C++/OpenMP kernels for the body of the tokenizer's decoder on CPU (module closure._kernels_cpp).
//
// The decoder body is ConvUnits (3x3 conv + LeakyReLU + 1x1 conv + LeakyReLU) behind bilinear x2
// up-sampling. Two restructurings cut its arithmetic; their matrix products stay with BLAS
// (torch.matmul on the Python side), these kernels do everything around them:
//
//  upconv3x3_unit     ConvUnit behind a bilinear x2 up-sampling. Channel mixing commutes with
//                     up-sampling, so the nine taps' mixes y_t = W_t x are formed at the coarse
//                     resolution (a quarter of the products) and this kernel up-samples, shifts
//                     and sums them, a = act(b + sum_t S_t U y_t), with U the bilinear x2
//                     up-sampling (align_corners=False, edge-clamped) and S_t the tap's shift
//                     with zero fill (separable: an x pass, then a y pass), then applies the 1x1
//                     conv, out = act(bm + Wm a), while the rows are in cache.
//  winograd_input /   3x3 conv (zero padding) as Winograd F(2x2, 3x3): input tiles V = B^T d B,
//  winograd_output_   16 products M = U V (BLAS), output a = act(b + A^T M A), 2.25x fewer
//  unit               products than direct convolution; then, like upconv3x3_unit, the 1x1
//                     conv out = act(bm + Wm a) while the rows are in cache.
//
// act is LeakyReLU with the given slope (1 = identity). References: closure/kernels.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "closure_kernels.h"

namespace py = pybind11;
using f32a = py::array_t<float, py::array::c_style | py::array::forcecast>;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CK_CLONES
#endif

namespace {

constexpr float Q1 = 0.25f, Q3 = 0.75f;

void need(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);
}

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

// x pass of one coarse row: taps dx = -1, 0, +1 read rows rm, r0, rp (length w); fine columns
// 2j go to E[j], 2j+1 to O[j].
CK_CLONES void x_pass(const float* __restrict rm, const float* __restrict r0,
                      const float* __restrict rp, int64_t w, float* __restrict E,
                      float* __restrict O) {
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
      (p == 0 ? E : O)[j] = s;
    }
  };
  border(0);
  if (w > 1) border(w - 1);
  for (int64_t j = 1; j < w - 1; ++j) {
    E[j] = Q3 * (rm[j - 1] + r0[j] + rp[j]) + Q1 * (rm[j] + r0[j - 1] + rp[j + 1]);
    O[j] = Q1 * (rm[j - 1] + rp[j]) + Q3 * (rm[j] + r0[j] + rp[j + 1]) + Q1 * r0[j + 1];
  }
}

// y pass + bias + activation of one fine row I of one channel: g[d] holds, for tap row
// dy = d - 1, the x-passed coarse rows r0.. of length n = 2w ([E | O]); out keeps that layout.
CK_CLONES void y_pass_row(const float* const* g, int64_t h, int64_t r0, int64_t n, int64_t I,
                          float bias, float slope, float* __restrict out) {
  std::fill(out, out + n, bias);
  for (int d = 0; d < 3; ++d) {
    int64_t idx[2];
    float wt[2];
    const int m = up_terms(h, I + d - 1, idx, wt);
    for (int t = 0; t < m; ++t) {
      const float* src = g[d] + (idx[t] - r0) * n;
      const float c = wt[t];
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) out[k] += c * src[k];
    }
  }
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) out[k] = act(out[k], slope);
}

// 1x1 conv of a row tile: t[o][k] = act(bm[o] + sum_c wmT[c][o] a[c][k]), C x n, register
// blocked 8 output channels x 16 pixels.
CK_CLONES void mix_rows(const float* __restrict a, int64_t C, int64_t n,
                        const float* __restrict wmT, const float* __restrict bm, float slope,
                        float* __restrict t) {
  constexpr int OB = 8, KB = 16;
  int64_t o0 = 0;
  for (; o0 + OB <= C; o0 += OB) {
    int64_t k0 = 0;
    for (; k0 + KB <= n; k0 += KB) {
      float acc[OB][KB];
      for (int i = 0; i < OB; ++i)
        for (int k = 0; k < KB; ++k) acc[i][k] = bm[o0 + i];
      for (int64_t c = 0; c < C; ++c) {
        const float* av = a + c * n + k0;
        const float* wv = wmT + c * C + o0;
        for (int i = 0; i < OB; ++i) {
          const float wgt = wv[i];
#pragma omp simd
          for (int k = 0; k < KB; ++k) acc[i][k] += wgt * av[k];
        }
      }
      for (int i = 0; i < OB; ++i)
        for (int k = 0; k < KB; ++k) t[(o0 + i) * n + k0 + k] = act(acc[i][k], slope);
    }
    for (; k0 < n; ++k0) {
      for (int i = 0; i < OB; ++i) {
        float sm = bm[o0 + i];
        for (int64_t c = 0; c < C; ++c) sm += wmT[c * C + o0 + i] * a[c * n + k0];
        t[(o0 + i) * n + k0] = act(sm, slope);
      }
    }
  }
  for (; o0 < C; ++o0) {
    for (int64_t k = 0; k < n; ++k) {
      float sm = bm[o0];
      for (int64_t c = 0; c < C; ++c) sm += wmT[c * C + o0] * a[c * n + k];
      t[o0 * n + k] = act(sm, slope);
    }
  }
}

// Coarse rows per work item of upconv3x3_unit: its x passes (with a halo row on each side) for
// all channels stay in L2 (3 taps x 6 rows x C x 2w floats: 442 kB for each level of the default
// decoder).
constexpr int64_t COARSE_BLOCK = 4;

f32a upconv3x3_unit(f32a y, f32a bias, f32a wm, f32a bm, float slope) {
  need(y.ndim() == 5 && y.shape(1) == 9,
       "upconv3x3_unit: y must be (B, 9, C, h, w) (tap-major channel mixes)");
  const int64_t B = y.shape(0), C = y.shape(2), h = y.shape(3), w = y.shape(4);
  need(bias.ndim() == 1 && bias.shape(0) == C, "upconv3x3_unit: bias must be (C,)");
  const auto [pw, pbm] = mix_weights(wm, bm, C, "upconv3x3_unit");
  const bool mix = pw != nullptr;
  const int64_t H = 2 * h, W = 2 * w, plane = h * w, n = W;
  const int64_t nblk = (h + COARSE_BLOCK - 1) / COARSE_BLOCK;
  f32a out({B, C, H, W});
  const float* py = y.data();
  const float* pb = bias.data();
  float* po = out.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      std::vector<float> gbuf((size_t)(C * 3 * (COARSE_BLOCK + 2) * n));
      std::vector<float> a((size_t)(C * n)), t((size_t)(C * n));
#pragma omp for schedule(static)
      for (int64_t task = 0; task < B * nblk; ++task) {
        const int64_t b = task / nblk, i0 = (task % nblk) * COARSE_BLOCK;
        const int64_t i1 = std::min(h, i0 + COARSE_BLOCK);
        const int64_t r0 = std::max<int64_t>(0, i0 - 1), r1 = std::min(h - 1, i1);
        const int64_t nr = r1 - r0 + 1;
        for (int64_t c = 0; c < C; ++c) {
          for (int d = 0; d < 3; ++d) {
            float* gd = gbuf.data() + (c * 3 + d) * nr * n;
            const float* base = py + ((b * 9 + 3 * d) * C + c) * plane;
            for (int64_t i = r0; i <= r1; ++i) {
              const float* r = base + i * w;
              float* dst = gd + (i - r0) * n;
              x_pass(r, r + C * plane, r + 2 * C * plane, w, dst, dst + w);
            }
          }
        }
        for (int64_t I = 2 * i0; I < 2 * i1; ++I) {
          for (int64_t c = 0; c < C; ++c) {
            const float* gc = gbuf.data() + c * 3 * nr * n;
            const float* g[3] = {gc, gc + nr * n, gc + 2 * nr * n};
            y_pass_row(g, h, r0, n, I, pb[c], slope, a.data() + c * n);
          }
          const float* src = a.data();
          if (mix) {
            mix_rows(a.data(), C, n, pw, pbm, slope, t.data());
            src = t.data();
          }
          for (int64_t c = 0; c < C; ++c) {  // [E | O] -> interleaved fine columns
            float* orow = po + ((b * C + c) * H + I) * W;
            const float* s = src + c * n;
            for (int64_t j = 0; j < w; ++j) {
              orow[2 * j] = s[j];
              orow[2 * j + 1] = s[w + j];
            }
          }
        }
      }
    }
  }
  return out;
}

// Winograd F(2x2, 3x3) input tiles of channel plane x (H x W, zero padded by 1): tile (ty, tx)
// covers input rows 2ty-1..2ty+2 and columns 2tx-1..2tx+2; element e of all tiles of a tile row
// is contiguous (stride vs between elements). Row-wise so that every loop runs over tx with unit
// stride: the padded input row is split into even (pe) and odd (po) columns first.
CK_CLONES void wino_in_plane(const float* __restrict x, int64_t H, int64_t W, int64_t th,
                             int64_t tw, float* __restrict V, int64_t vs, float* __restrict buf) {
  float* pe = buf;            // padded row, even columns: pe[k] = x[2k - 1]
  float* po = pe + tw + 1;    // odd columns:              po[k] = x[2k]
  float* rt = po + tw + 1;    // 4 rows x 4 column-transformed elements x tw
  for (int64_t ty = 0; ty < th; ++ty) {
    for (int r = 0; r < 4; ++r) {
      const int64_t yy = 2 * ty - 1 + r;
      float* t0 = rt + (4 * r) * tw;
      float* t1 = t0 + tw;
      float* t2 = t1 + tw;
      float* t3 = t2 + tw;
      if (yy < 0 || yy >= H) {
        std::fill(t0, t0 + 4 * tw, 0.0f);
        continue;
      }
      const float* row = x + yy * W;
      for (int64_t k = 0; k <= tw; ++k) {
        const int64_t ce = 2 * k - 1, co = 2 * k;
        pe[k] = (ce >= 0 && ce < W) ? row[ce] : 0.0f;
        po[k] = co < W ? row[co] : 0.0f;
      }
#pragma omp simd
      for (int64_t k = 0; k < tw; ++k) {
        t0[k] = pe[k] - pe[k + 1];
        t1[k] = po[k] + pe[k + 1];
        t2[k] = pe[k + 1] - po[k];
        t3[k] = po[k] - po[k + 1];
      }
    }
    float* v = V + ty * tw;
    for (int b = 0; b < 4; ++b) {
      const float* d0 = rt + (0 + b) * tw;
      const float* d1 = rt + (4 + b) * tw;
      const float* d2 = rt + (8 + b) * tw;
      const float* d3 = rt + (12 + b) * tw;
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

f32a winograd_input(f32a x) {
  need(x.ndim() == 4, "winograd_input: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, nt = th * tw, N = B * nt;
  f32a V({(int64_t)16, C, N});
  const float* px = x.data();
  float* pv = V.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      std::vector<float> buf((size_t)(18 * tw + 2));
#pragma omp for schedule(static)
      for (int64_t bc = 0; bc < B * C; ++bc) {
        const int64_t b = bc / C, c = bc % C;
        wino_in_plane(px + bc * H * W, H, W, th, tw, pv + c * N + b * nt, C * N, buf.data());
      }
    }
  }
  return V;
}

// Output transform of tile row ty of one channel: rows 2ty and 2ty+1 (when inside) as
// act(bias + A^T M A), each stored as [even columns (tw) | odd columns (tw)] at dst, dst + 2 tw.
CK_CLONES void wino_out_row(const float* __restrict M, int64_t ms, int64_t tw, float bias,
                            float slope, float* __restrict dst) {
  for (int r = 0; r < 2; ++r) {
    // row r of A^T M: r = 0 -> m0 + m1 + m2, r = 1 -> m1 - m2 - m3 (rows of the 4x4 tile)
    const float sg = r == 0 ? 1.0f : -1.0f;  // sign of the last two rows
    const float* a0 = M + (r == 0 ? 0 : 4) * ms;
    const float* a1 = M + (r == 0 ? 4 : 8) * ms;
    const float* a2 = M + (r == 0 ? 8 : 12) * ms;
    float* o0 = dst + r * 2 * tw;
    float* o1 = o0 + tw;
#pragma omp simd
    for (int64_t k = 0; k < tw; ++k) {
      const float t0 = a0[k] + sg * (a1[k] + a2[k]);
      const float t1 = a0[ms + k] + sg * (a1[ms + k] + a2[ms + k]);
      const float t2 = a0[2 * ms + k] + sg * (a1[2 * ms + k] + a2[2 * ms + k]);
      const float t3 = a0[3 * ms + k] + sg * (a1[3 * ms + k] + a2[3 * ms + k]);
      o0[k] = act(bias + (t0 + t1 + t2), slope);
      o1[k] = act(bias + (t1 - t2 - t3), slope);
    }
  }
}

// Winograd output transform + bias + act, then (when wm is not empty) the ConvUnit's 1x1 conv
// out = act(bm + Wm a) on the tile row's two fine rows while they are in cache.
f32a winograd_output_unit(f32a M, f32a bias, f32a wm, f32a bm, int64_t B, int64_t H, int64_t W,
                          float slope) {
  need(M.ndim() == 3 && M.shape(0) == 16, "winograd_output_unit: M must be (16, C, N)");
  const int64_t C = M.shape(1), N = M.shape(2);
  const int64_t th = (H + 1) / 2, tw = (W + 1) / 2, nt = th * tw;
  need(B >= 0 && H > 0 && W > 0 && N == B * nt,
       "winograd_output_unit: M's tile count does not match (B, H, W)");
  need(bias.ndim() == 1 && bias.shape(0) == C, "winograd_output_unit: bias must be (C,)");
  const auto [pw, pbm] = mix_weights(wm, bm, C, "winograd_output_unit");
  const bool mix = pw != nullptr;
  f32a y({B, C, H, W});
  const float* pm = M.data();
  const float* pb = bias.data();
  float* py = y.mutable_data();
  const int64_t n = 4 * tw;  // two fine rows, each [even | odd]
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      std::vector<float> a((size_t)(C * n)), t((size_t)(C * n));
#pragma omp for schedule(static)
      for (int64_t task = 0; task < B * th; ++task) {
        const int64_t b = task / th, ty = task % th;
        for (int64_t c = 0; c < C; ++c)
          wino_out_row(pm + c * N + b * nt + ty * tw, C * N, tw, pb[c], slope,
                       a.data() + c * n);
        const float* src = a.data();
        if (mix) {
          mix_rows(a.data(), C, n, pw, pbm, slope, t.data());
          src = t.data();
        }
        for (int64_t c = 0; c < C; ++c) {
          for (int r = 0; r < 2; ++r) {
            const int64_t yy = 2 * ty + r;
            if (yy >= H) continue;
            float* yr = py + ((b * C + c) * H + yy) * W;
            const float* e = src + c * n + r * 2 * tw;
            for (int64_t k = 0; k < tw; ++k) {
              yr[2 * k] = e[k];
              if (2 * k + 1 < W) yr[2 * k + 1] = e[tw + k];
            }
          }
        }
      }
    }
  }
  return y;
}

// Last decoder level fused with the output head: per pixel a = act(Wm act(W3 * x + b3) + bm)
// (3x3 conv C -> CO, zero padding, then 1x1 conv CO -> CO), the head v = Wh * a + bh (3x3 conv
// CO -> 1, zero padding), T = v (hi - lo) + lo, and the per-sample count and sum of T over
// T > thr. Rows are processed in blocks (one halo row of a on each side recomputed), so no
// full-resolution activation is written. Weights: w3 (C, 3, 3, CO), wm (CO_in, CO_out),
// wh (3, 3, CO).
constexpr int64_t ROW_BLOCK = 16;

template <int CO, int PX>
inline void conv_pixels(const float* __restrict xp, int64_t C, int64_t R, int64_t Wp, int64_t r,
                        int64_t J, const float* __restrict w3, const float* __restrict b3,
                        const float* __restrict wm, const float* __restrict bm, float slope,
                        float* __restrict out) {
  float acc[PX][CO];
  for (int p = 0; p < PX; ++p)
    for (int o = 0; o < CO; ++o) acc[p][o] = b3[o];
  for (int64_t c = 0; c < C; ++c) {
    for (int ky = 0; ky < 3; ++ky) {
      const float* xr = xp + (c * R + r + ky) * Wp + J;
      const float* wr = w3 + (c * 9 + ky * 3) * CO;
      for (int kx = 0; kx < 3; ++kx) {
        const float* wv = wr + kx * CO;
        for (int p = 0; p < PX; ++p) {
          const float v = xr[p + kx];
#pragma omp simd
          for (int o = 0; o < CO; ++o) acc[p][o] += v * wv[o];
        }
      }
    }
  }
  for (int p = 0; p < PX; ++p) {
    float m[CO];
    for (int o = 0; o < CO; ++o) m[o] = bm[o];
    for (int c = 0; c < CO; ++c) {
      const float a = act(acc[p][c], slope);
      const float* wv = wm + c * CO;
#pragma omp simd
      for (int o = 0; o < CO; ++o) m[o] += a * wv[o];
    }
    for (int o = 0; o < CO; ++o) out[p * CO + o] = act(m[o], slope);
  }
}

template <int CO>
CK_CLONES void last_level_block(const float* __restrict x, int64_t C, int64_t H, int64_t W,
                                int64_t I0, int64_t I1, const float* __restrict w3,
                                const float* __restrict b3, const float* __restrict wm,
                                const float* __restrict bm, const float* __restrict wh, float bh,
                                float slope, float scale, float off, float thr,
                                float* __restrict xp, float* __restrict ab, int64_t* count,
                                double* sum) {
  const int64_t R = I1 - I0 + 4, Wp = W + 2;
  // zero-padded input rows I0-2 .. I1+1
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t r = 0; r < R; ++r) {
      float* dst = xp + (c * R + r) * Wp;
      const int64_t yy = I0 - 2 + r;
      dst[0] = dst[W + 1] = 0.0f;
      if (yy < 0 || yy >= H)
        std::fill(dst + 1, dst + 1 + W, 0.0f);
      else
        std::copy(x + (c * H + yy) * W, x + (c * H + yy + 1) * W, dst + 1);
    }
  }
  // activations a of rows I0-1 .. I1 (zero outside the image: the head's padding), (W+2) x CO
  const int64_t RA = I1 - I0 + 2;
  for (int64_t ra = 0; ra < RA; ++ra) {
    float* arow = ab + ra * Wp * CO;
    std::fill(arow, arow + CO, 0.0f);
    std::fill(arow + (W + 1) * CO, arow + (W + 2) * CO, 0.0f);
    const int64_t yy = I0 - 1 + ra;
    if (yy < 0 || yy >= H) {
      std::fill(arow, arow + Wp * CO, 0.0f);
      continue;
    }
    int64_t J = 0;
    for (; J + 8 <= W; J += 8)
      conv_pixels<CO, 8>(xp, C, R, Wp, ra, J, w3, b3, wm, bm, slope, arow + (J + 1) * CO);
    for (; J < W; ++J)
      conv_pixels<CO, 1>(xp, C, R, Wp, ra, J, w3, b3, wm, bm, slope, arow + (J + 1) * CO);
  }
  int64_t n = 0;
  double s = 0.0;
  for (int64_t I = I0; I < I1; ++I) {
    const int64_t ra = I - I0;  // a row I-1
    for (int64_t J = 0; J < W; ++J) {
      float acc[CO];
      for (int o = 0; o < CO; ++o) acc[o] = 0.0f;
      for (int ky = 0; ky < 3; ++ky) {
        const float* arow = ab + ((ra + ky) * Wp + J) * CO;
        for (int kx = 0; kx < 3; ++kx) {
          const float* wv = wh + (ky * 3 + kx) * CO;
          const float* av = arow + kx * CO;
#pragma omp simd
          for (int o = 0; o < CO; ++o) acc[o] += wv[o] * av[o];
        }
      }
      float v = 0.0f;
      for (int o = 0; o < CO; ++o) v += acc[o];
      const float T = (v + bh) * scale + off;
      if (T > thr) {
        ++n;
        s += (double)T;
      }
    }
  }
  *count = n;
  *sum = s;
}

template <int CO>
void last_level_run(const float* x, int64_t B, int64_t C, int64_t H, int64_t W,
                    const float* w3, const float* b3, const float* wm, const float* bm,
                    const float* wh, float bh, float slope, float scale, float off, float thr,
                    int64_t* count, double* sum) {
  const int64_t nblk = (H + ROW_BLOCK - 1) / ROW_BLOCK;
  std::vector<int64_t> bc((size_t)(B * nblk));
  std::vector<double> bs((size_t)(B * nblk));
#pragma omp parallel
  {
    std::vector<float> xp((size_t)(C * (ROW_BLOCK + 4) * (W + 2)));
    std::vector<float> ab((size_t)((ROW_BLOCK + 2) * (W + 2) * CO));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B * nblk; ++t) {
      const int64_t b = t / nblk, I0 = (t % nblk) * ROW_BLOCK;
      const int64_t I1 = std::min(H, I0 + ROW_BLOCK);
      last_level_block<CO>(x + b * C * H * W, C, H, W, I0, I1, w3, b3, wm, bm, wh, bh, slope,
                           scale, off, thr, xp.data(), ab.data(), &bc[(size_t)t],
                           &bs[(size_t)t]);
    }
  }
  ck::sum_blocks(bc.data(), bs.data(), B, nblk, count, sum);
}

py::tuple last_level_hotspots(f32a x, f32a w3, f32a b3, f32a wm, f32a bm, f32a wh, float bh,
                              float slope, double lo, double hi, double thr) {
  need(x.ndim() == 4, "last_level_hotspots: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  need(b3.ndim() == 1, "last_level_hotspots: b3 must be (CO,)");
  const int64_t CO = b3.shape(0);
  need(CO == 8 || CO == 16 || CO == 32,
       "last_level_hotspots: CO must be 8, 16 or 32, got " + std::to_string(CO));
  need(w3.size() == C * 9 * CO, "last_level_hotspots: w3 must be (C, 3, 3, CO)");
  need(wm.size() == CO * CO && bm.size() == CO, "last_level_hotspots: wm (CO, CO), bm (CO,)");
  need(wh.size() == 9 * CO, "last_level_hotspots: wh must be (3, 3, CO)");
  py::array_t<int64_t> count({B});
  py::array_t<double> sum({B});
  const float scale = (float)(hi - lo), off = (float)lo, fthr = (float)thr;
  {
    py::gil_scoped_release nogil;
    auto run = [&](auto tag) {
      constexpr int K = decltype(tag)::value;
      last_level_run<K>(x.data(), B, C, H, W, w3.data(), b3.data(), wm.data(), bm.data(),
                        wh.data(), bh, slope, scale, off, fthr, count.mutable_data(),
                        sum.mutable_data());
    };
    if (CO == 8)
      run(std::integral_constant<int, 8>{});
    else if (CO == 16)
      run(std::integral_constant<int, 16>{});
    else
      run(std::integral_constant<int, 32>{});
  }
  return py::make_tuple(count, sum);
}

}  // namespace

void register_decoder_body(py::module_& m) {
  m.def("upconv3x3_unit", &upconv3x3_unit, py::arg("y"), py::arg("bias"), py::arg("wm"),
        py::arg("bm"), py::arg("slope"));
  m.def("winograd_input", &winograd_input, py::arg("x"));
  m.def("last_level_hotspots", &last_level_hotspots, py::arg("x"), py::arg("w3"), py::arg("b3"),
        py::arg("wm"), py::arg("bm"), py::arg("wh"), py::arg("bh"), py::arg("slope"),
        py::arg("lo"), py::arg("hi"), py::arg("thr"));
  m.def("winograd_output_unit", &winograd_output_unit, py::arg("M"), py::arg("bias"),
        py::arg("wm"), py::arg("bm"), py::arg("B"), py::arg("H"), py::arg("W"),
        py::arg("slope"));
}
