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
//  upconv_last_hotspots  upconv3x3_unit and last_level_hotspots streamed row by row in one
//                     kernel: the up-sampled level's full-resolution activation is never
//                     written.
//
// act is LeakyReLU with the given slope (1 = identity). References: closure/kernels.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "closure_kernels.h"
#include "isa.h"
#include "py_args.h"
#include "small_gemm.h"

namespace py = pybind11;
using ck::f32a;
using ck::need;


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

CK_INLINE inline float act(float v, float slope) { return v > 0.0f ? v : v * slope; }

// body(j0, len) over [a, b) in blocks of VEC elements, the last block moved back to overlap the
// one before (the bodies compute pure functions of their inputs: the overlap is written twice
// with the same values), or once when the range is shorter. The passes' rows (24..192
// elements) are rarely multiples of the vector width; a fixed trip count leaves no scalar
// remainder. Bodies are lambdas marked always_inline, so they take the caller's ISA path (isa.h).
constexpr int64_t VEC = 16;

template <class Body>
inline __attribute__((always_inline)) void in_blocks(int64_t a, int64_t b, Body&& body) {
  if (b - a < VEC) {
    if (b > a) body(a, b - a);
    return;
  }
  for (int64_t j = a; j < b; j += VEC) body(std::min(j, b - VEC), VEC);
}

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
CK_INLINE inline void x_pass_body(const float* __restrict rm, const float* __restrict r0,
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
  in_blocks(1, w - 1, [&](int64_t j0, int64_t len) CK_INLINE {
#pragma omp simd
    for (int64_t j = j0; j < j0 + len; ++j) {
      out[2 * j] = Q3 * (rm[j - 1] + r0[j] + rp[j]) + Q1 * (rm[j] + r0[j - 1] + rp[j + 1]);
      out[2 * j + 1] =
          Q1 * (rm[j - 1] + rp[j]) + Q3 * (rm[j] + r0[j] + rp[j + 1]) + Q1 * r0[j + 1];
    }
  });
}
CK_ISA_DISPATCH(x_pass, (const float* __restrict rm, const float* __restrict r0,
                        const float* __restrict rp, int64_t w, float* __restrict out),
                (rm, r0, rp, w, out))

// y pass + bias + activation of one fine row I of one channel: rows[rel] holds the x-passed
// coarse row i - 1 + rel (length n = 2w) of tap row dy = -1, tap row d - 1 at + d dstride
// (null outside the image, never read). Away from the border the six terms (three tap rows x
// two coarse rows) carry weights 3/4 and 1/4 three times each: one pass over the row.
CK_INLINE inline void y_pass_row_body(const float* const* rows, int64_t h, int64_t i, int64_t n,
                                      int64_t I, int64_t dstride, float bias, float slope,
                                      float* __restrict out) {
  const float* q3[3];
  const float* q1[3];
  int n3 = 0, n1 = 0;
  bool split = true;
  for (int d = 0; d < 3 && split; ++d) {
    int64_t idx[2];
    float wt[2];
    const int m = up_terms(h, I + d - 1, idx, wt);
    split = m == 2;
    for (int t = 0; t < m && split; ++t) {
      const float* src = rows[idx[t] - (i - 1)] + d * dstride;
      if (wt[t] == Q3) q3[n3++] = src;
      else q1[n1++] = src;
    }
  }
  if (split && n3 == 3 && n1 == 3) {
    const float *a0 = q3[0], *a1 = q3[1], *a2 = q3[2], *b0 = q1[0], *b1 = q1[1], *b2 = q1[2];
    in_blocks(0, n, [&](int64_t k0, int64_t len) CK_INLINE {
#pragma omp simd
      for (int64_t k = k0; k < k0 + len; ++k)
        out[k] = act(bias + Q3 * (a0[k] + a1[k] + a2[k]) + Q1 * (b0[k] + b1[k] + b2[k]), slope);
    });
    return;
  }
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
CK_ISA_DISPATCH(y_pass_row, (const float* const* rows, int64_t h, int64_t i, int64_t n, int64_t I,
                            int64_t dstride, float bias, float slope, float* __restrict out),
                (rows, h, i, n, I, dstride, bias, slope, out))

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

// ConvUnit behind the bilinear x2 up-sampling, one sample at a time, fine rows in pairs: for
// coarse row i, the nine taps' channel mixes of coarse rows (W9 x_i, one small product for a
// group of g rows, g w >= 48 columns) and their x passes go into a ring of g + 2 coarse rows
// (each row is mixed once), then the y passes, bias, act and the 1x1 conv give fine rows 2i
// and 2i + 1 while the rows are in cache. Per-thread state; rows() calls of one sample take
// consecutive i from the i0 given to start().
// x (C, h, w) per sample; w9T (C, 9 O) as [c][t O + o] with tap t = 3 dy + dx.
class UpconvRows {
 public:
  UpconvRows(int64_t C, int64_t h, int64_t w, const float* w9T, int64_t O, const float* bias,
             const float* wm, const float* bm, float slope)
      : C_(C), h_(h), w_(w), O_(O), n_(2 * w), w9T_(w9T), bias_(bias), wm_(wm), bm_(bm),
        slope_(slope), g_(std::clamp<int64_t>((48 + w - 1) / std::max<int64_t>(w, 1), 1,
                                              std::max<int64_t>(h, 1))),
        nslot_(g_ + 2), slot_(3 * O * n_), ring_((size_t)(nslot_ * slot_)),
        ybuf_((size_t)(9 * O * g_ * w)), a_((size_t)(wm ? O * 2 * n_ : 0)), offx_((size_t)C),
        offa_((size_t)O) {
    strided(offa_.data(), O, 0, 2 * n_);
  }

  void start(const float* x, int64_t i0) {
    x_ = x;
    next_ = std::max<int64_t>(0, i0 - 1);
  }

  // Fine rows 2i and 2i + 1 (2 w columns each): channel o, row p at dst + o ld + p 2w.
  void rows(int64_t i, float* dst, int64_t ld) {
    const int64_t h = h_, w = w_, O = O_, n = n_;
    while (next_ <= std::min(h - 1, i + 1)) {
      const int64_t nr = std::min(g_, h - next_), N = nr * w;
      strided(offx_.data(), C_, next_ * w, h * w);
      sg::gemm_bias_act(9 * O, N, C_, w9T_, 9 * O, x_, offx_.data(), nullptr, 1.0f,
                        ybuf_.data(), N);
      for (int64_t r = 0; r < nr; ++r) {
        float* G = ring_.data() + ((next_ + r) % nslot_) * slot_;
        for (int d = 0; d < 3; ++d) {
          for (int64_t c = 0; c < O; ++c) {
            const float* y0 = ybuf_.data() + (3 * d * O + c) * N + r * w;
            x_pass(y0, y0 + O * N, y0 + 2 * O * N, w, G + (d * O + c) * n);
          }
        }
      }
      next_ += nr;
    }
    for (int p = 0; p < 2; ++p) {
      for (int64_t c = 0; c < O; ++c) {
        const float* rws[3];
        for (int rel = 0; rel < 3; ++rel) {
          const int64_t row = i - 1 + rel;
          rws[rel] = (row >= 0 && row < h) ? ring_.data() + (row % nslot_) * slot_ + c * n
                                           : nullptr;
        }
        float* out = wm_ ? a_.data() + c * 2 * n + p * n : dst + c * ld + p * n;
        y_pass_row(rws, h, i, n, 2 * i + p, O * n, bias_[c], slope_, out);
      }
    }
    if (wm_)
      sg::gemm_bias_act(O, 2 * n, O, wm_, O, a_.data(), offa_.data(), bm_, slope_, dst, ld);
  }

 private:
  int64_t C_, h_, w_, O_, n_;
  const float *w9T_, *bias_, *wm_, *bm_;
  float slope_;
  int64_t g_, nslot_, slot_;
  std::vector<float> ring_, ybuf_, a_;
  std::vector<int64_t> offx_, offa_;
  const float* x_ = nullptr;
  int64_t next_ = 0;  // first coarse row not yet mixed
};

int64_t upconv_out_channels(const f32a& x, const f32a& w9T, const f32a& bias, const char* who) {
  need(x.ndim() == 4, std::string(who) + ": x must be (B, C, h, w)");
  need(w9T.ndim() == 2 && w9T.shape(0) == x.shape(1) && w9T.shape(1) % 9 == 0 &&
           w9T.shape(1) > 0,
       std::string(who) + ": w9T must be (C, 9 O) ([c_in][tap * O + c_out])");
  const int64_t O = w9T.shape(1) / 9;
  need(bias.ndim() == 1 && bias.shape(0) == O, std::string(who) + ": bias must be (O,)");
  return O;
}

// ConvUnit behind the bilinear x2 up-sampling (UpconvRows), per sample and block of coarse
// rows: a block's first and last coarse rows are the only ones mixed twice.
f32a upconv3x3_unit(f32a x, f32a w9T, f32a bias, f32a wm, f32a bm, float slope) {
  const int64_t O = upconv_out_channels(x, w9T, bias, "upconv3x3_unit");
  const int64_t B = x.shape(0), C = x.shape(1), h = x.shape(2), w = x.shape(3);
  const auto [pw, pbm] = mix_weights(wm, bm, O, "upconv3x3_unit");
  const int64_t H = 2 * h, W = 2 * w;
  f32a out({B, O, H, W});
  if (B == 0 || h == 0 || w == 0) return out;
  const int64_t nblk = blocks_per_sample(B, h), rows_per = (h + nblk - 1) / nblk;
  const float* px = x.data();
  const float* pw9 = w9T.data();
  const float* pb = bias.data();
  float* po = out.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      UpconvRows up(C, h, w, pw9, O, pb, pw, pbm, slope);
#pragma omp for schedule(static)
      for (int64_t task = 0; task < B * nblk; ++task) {
        const int64_t b = task / nblk, i0 = (task % nblk) * rows_per;
        const int64_t i1 = std::min(h, i0 + rows_per);
        up.start(px + b * C * h * w, i0);
        for (int64_t i = i0; i < i1; ++i) up.rows(i, po + (b * O * H + 2 * i) * W, H * W);
      }
    }
  }
  return out;
}

// Column transform of one input row for all tile columns: t_j[k] for the tile covering columns
// 2k-1 .. 2k+2 (zero outside 0..W-1): t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3.
CK_INLINE inline void wino_in_cols_body(const float* __restrict row, int64_t W, int64_t tw,
                                        float* __restrict t0, float* __restrict t1,
                                        float* __restrict t2, float* __restrict t3) {
  auto at = [&](int64_t i) { return (i >= 0 && i < W) ? row[i] : 0.0f; };
  auto edge = [&](int64_t k) {
    const float d0 = at(2 * k - 1), d1 = at(2 * k), d2 = at(2 * k + 1), d3 = at(2 * k + 2);
    t0[k] = d0 - d2, t1[k] = d1 + d2, t2[k] = d2 - d1, t3[k] = d1 - d3;
  };
  const int64_t k1 = std::max<int64_t>(1, std::min(tw, (W - 1) / 2));  // interior: 2k+2 < W+1
  edge(0);
  in_blocks(1, k1, [&](int64_t j0, int64_t len) CK_INLINE {
#pragma omp simd
    for (int64_t k = j0; k < j0 + len; ++k) {
      const float d0 = row[2 * k - 1], d1 = row[2 * k], d2 = row[2 * k + 1];
      const float d3 = row[2 * k + 2];
      t0[k] = d0 - d2;
      t1[k] = d1 + d2;
      t2[k] = d2 - d1;
      t3[k] = d1 - d3;
    }
  });
  for (int64_t k = k1; k < tw; ++k) edge(k);
}
CK_ISA_DISPATCH(wino_in_cols, (const float* __restrict row, int64_t W, int64_t tw,
                              float* __restrict t0, float* __restrict t1, float* __restrict t2,
                              float* __restrict t3),
                (row, W, tw, t0, t1, t2, t3))

// Column-transformed input rows: a ring of 4 per channel, input row yy at slot yy & 3 of
// 4 tw floats (the 4 parts of wino_in_cols at + j tw); a row outside the image is zeros.
inline float* wino_slot(float* ring, int64_t tw, int64_t yy) { return ring + (yy & 3) * 4 * tw; }

inline void wino_load_row(const float* row, int64_t W, int64_t tw, float* t) {
  if (row == nullptr)
    std::fill(t, t + 4 * tw, 0.0f);
  else
    wino_in_cols(row, W, tw, t, t + tw, t + 2 * tw, t + 3 * tw);
}

// Row transform of tile row ty from the ring (rows 2ty-1 .. 2ty+2 loaded): element e of the
// tiles at v + e vs + tx.
CK_INLINE inline void wino_combine_body(float* ring, int64_t tw, int64_t ty, float* __restrict v,
                                        int64_t vs) {
  for (int b = 0; b < 4; ++b) {
    const float* d0 = wino_slot(ring, tw, 2 * ty - 1) + b * tw;
    const float* d1 = wino_slot(ring, tw, 2 * ty) + b * tw;
    const float* d2 = wino_slot(ring, tw, 2 * ty + 1) + b * tw;
    const float* d3 = wino_slot(ring, tw, 2 * ty + 2) + b * tw;
    float* v0 = v + (0 + b) * vs;
    float* v1 = v + (4 + b) * vs;
    float* v2 = v + (8 + b) * vs;
    float* v3 = v + (12 + b) * vs;
    in_blocks(0, tw, [&](int64_t k0, int64_t len) CK_INLINE {
#pragma omp simd
      for (int64_t k = k0; k < k0 + len; ++k) {
        v0[k] = d0[k] - d2[k];
        v1[k] = d1[k] + d2[k];
        v2[k] = d2[k] - d1[k];
        v3[k] = d1[k] - d3[k];
      }
    });
  }
}
CK_ISA_DISPATCH(wino_combine, (float* ring, int64_t tw, int64_t ty, float* __restrict v,
                              int64_t vs),
                (ring, tw, ty, v, vs))

// Winograd F(2x2, 3x3) input tiles of tile rows [ty0, ty1) of channel plane x (H x W, zero
// padded by 1): tile (ty, tx) covers input rows 2ty-1..2ty+2 and columns 2tx-1..2tx+2; element
// e of the tiles is at V + e vs + (ty - ty0) tw + tx. Each input row's column transform is
// formed once (consecutive tile rows share two rows) into the channel's ring; warm: the ring
// already holds rows 2 ty0 - 1 and 2 ty0 (the previous call ended at tile row ty0).
void wino_in_rows(const float* x, int64_t H, int64_t W, int64_t ty0, int64_t ty1, int64_t tw,
                  float* V, int64_t vs, float* ring, bool warm) {
  auto load = [&](int64_t yy) {
    wino_load_row(yy >= 0 && yy < H ? x + yy * W : nullptr, W, tw, wino_slot(ring, tw, yy));
  };
  if (!warm) {
    load(2 * ty0 - 1);
    load(2 * ty0);
  }
  for (int64_t ty = ty0; ty < ty1; ++ty) {
    load(2 * ty + 1);
    load(2 * ty + 2);
    wino_combine(ring, tw, ty, V + (ty - ty0) * tw, vs);
  }
}

// Output transform of one tile row (tw tiles) of one channel: output rows r = 0, 1 of the tiles
// as act(bias + A^T M A) into row0 and row1 (null: not wanted), W columns each; element e of the
// tiles at M + e ms.
CK_INLINE inline void wino_out_row_body(const float* __restrict M, int64_t ms, int64_t tw,
                                        int64_t W, float bias, float slope, float* __restrict row0,
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
    auto col = [&](int64_t k, int j) CK_INLINE {
      return a0[j * ms + k] + sg * (a1[j * ms + k] + a2[j * ms + k]);
    };
    in_blocks(0, full, [&](int64_t k0, int64_t len) CK_INLINE {
#pragma omp simd
      for (int64_t k = k0; k < k0 + len; ++k) {
        const float t0 = col(k, 0), t1 = col(k, 1), t2 = col(k, 2), t3 = col(k, 3);
        out[2 * k] = act(bias + (t0 + t1 + t2), slope);
        out[2 * k + 1] = act(bias + (t1 - t2 - t3), slope);
      }
    });
    if (full < tw) out[2 * full] = act(bias + (col(full, 0) + col(full, 1) + col(full, 2)), slope);
  }
}
CK_ISA_DISPATCH(wino_out_row, (const float* __restrict M, int64_t ms, int64_t tw, int64_t W,
                              float bias, float slope, float* __restrict row0,
                              float* __restrict row1),
                (M, ms, tw, W, bias, slope, row0, row1))

// Per-thread buffers of wino_unit_rows for up to `rows` tile rows per group.
struct WinoBuffers {
  std::vector<float> V, M, a, in;
  std::vector<int64_t> offv, offa;
  WinoBuffers(int64_t C, int64_t O, int64_t rows, int64_t tw, int64_t W)
      : V((size_t)(16 * C * rows * tw)), M((size_t)(16 * O * rows * tw)),
        a((size_t)(O * 2 * rows * W)), in((size_t)(16 * C * tw)), offv((size_t)C),
        offa((size_t)O) {}
};

// Tile rows per Winograd group: at least 48 tiles per product (the micro-kernel's panel).
inline int64_t wino_group_rows(int64_t th, int64_t tw) {
  return std::clamp<int64_t>((48 + tw - 1) / tw, 1, std::max<int64_t>(th, 1));
}

// The 16 products M_e = U_e V_e of the input tiles in wb.V (N = (ty1 - ty0) tw tiles per
// element), output transform + bias + act, then the 1x1 conv when wm is not null. Output rows
// 2 ty0 .. min(H, 2 ty1) - 1 of channel o go to dst + o ld + (row - 2 ty0) W.
// U (16, C, O) = G g G^T as [e][c_in][c_out].
void wino_products(WinoBuffers& wb, int64_t C, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                   const float* U, int64_t O, const float* bias, const float* wm,
                   const float* bm, float slope, float* dst, int64_t ld) {
  const int64_t tw = (W + 1) / 2, N = (ty1 - ty0) * tw;
  const int64_t nrows = std::min(H, 2 * ty1) - 2 * ty0;
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

// ConvUnit (3x3 conv, zero padding, + 1x1 conv when wm is not null) of tile rows [ty0, ty1) of
// one sample x (C, H, W) with the 3x3 conv as Winograd F(2x2, 3x3): input tiles, then
// wino_products. warm: the previous call on wb was for the same x and ended at tile row ty0
// (its column-transformed rows are reused).
void wino_unit_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t ty0, int64_t ty1,
                    const float* U, int64_t O, const float* bias, const float* wm,
                    const float* bm, float slope, WinoBuffers& wb, float* dst, int64_t ld,
                    bool warm) {
  const int64_t tw = (W + 1) / 2, N = (ty1 - ty0) * tw;
  for (int64_t c = 0; c < C; ++c)
    wino_in_rows(x + c * H * W, H, W, ty0, ty1, tw, wb.V.data() + c * N, C * N,
                 wb.in.data() + c * 16 * tw, warm);
  wino_products(wb, C, H, W, ty0, ty1, U, O, bias, wm, bm, slope, dst, ld);
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
      int64_t prev = -2;  // this thread's previous task
#pragma omp for schedule(static)
      for (int64_t task = 0; task < B * ngrp; ++task) {
        const int64_t b = task / ngrp, ty0 = (task % ngrp) * gr;
        const int64_t ty1 = std::min(th, ty0 + gr);
        const bool warm = task == prev + 1 && ty0 > 0;
        wino_unit_rows(px + b * C * H * W, C, H, W, ty0, ty1, pu, O, pb, pw, pbm, slope, wb,
                       py + (b * O * H + 2 * ty0) * W, H * W, warm);
        prev = task;
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

// Head, threshold and reduction of output row I; rows[ky] holds a's row I - 1 + ky, channel o
// at + o lda (zero rows outside the image). Interior columns in blocks of HEAD_COLS whose sums
// stay in registers over the 9 CO taps; the two border columns (zero padding) apart.
// (GCC/Clang vector extension: zmm registers on the AVX-512 path, pairs of ymm on AVX2, quads of
// xmm or NEON registers on the portable one)
typedef float VF __attribute__((vector_size(64)));
constexpr int VF_LANES = 16, HEAD_VECS = 4;
constexpr int64_t HEAD_COLS = VF_LANES * HEAD_VECS;

CK_INLINE inline void head_row_body(const LastLevel& L, const float* const* rows, int64_t lda,
                                    float* __restrict v, int64_t* count, double* sum) {
  const int64_t W = L.W, CO = L.CO;
  // interior blocks; the last one is moved left to end at column W - 2 (overlapping columns
  // get the same sums again)
  const bool blocked = W - 2 >= HEAD_COLS;
  for (int64_t b0 = 1; blocked && b0 < W - 1; b0 += HEAD_COLS) {
    const int64_t J0 = std::min(b0, W - 1 - HEAD_COLS);
    VF acc[HEAD_VECS] = {};
    for (int64_t o = 0; o < CO; ++o) {
      for (int ky = 0; ky < 3; ++ky) {
        const float* s = rows[ky] + o * lda + J0;
        const float* wk = L.wh + ky * 3 * CO + o;
        const float cl = wk[0], cc = wk[CO], cr = wk[2 * CO];
        for (int q = 0; q < HEAD_VECS; ++q) {
          VF l, m, r;  // unaligned loads of columns J - 1, J, J + 1
          std::memcpy(&l, s + q * VF_LANES - 1, sizeof l);
          std::memcpy(&m, s + q * VF_LANES, sizeof m);
          std::memcpy(&r, s + q * VF_LANES + 1, sizeof r);
          acc[q] += cl * l + cc * m + cr * r;
        }
      }
    }
    std::memcpy(v + J0, acc, sizeof acc);
  }
  const int64_t J1 = blocked ? 1 : W - 1;  // interior columns [1, J1) left to the plain loop
  std::fill(v + 1, v + std::max<int64_t>(J1, 1), 0.0f);
  v[0] = 0.0f;
  v[W - 1] = 0.0f;
  for (int64_t o = 0; o < CO; ++o) {
    for (int ky = 0; ky < 3; ++ky) {
      const float* s = rows[ky] + o * lda;
      const float* wk = L.wh + ky * 3 * CO + o;
      const float cl = wk[0], cc = wk[CO], cr = wk[2 * CO];
#pragma omp simd
      for (int64_t J = 1; J < J1; ++J) v[J] += cl * s[J - 1] + cc * s[J] + cr * s[J + 1];
      // border columns: the conv's zero padding drops the outside neighbour
      v[0] += cc * s[0] + (W > 1 ? cr * s[1] : 0.0f);
      if (W > 1) v[W - 1] += cl * s[W - 2] + cc * s[W - 1];
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
CK_ISA_DISPATCH(head_row, (const LastLevel& L, const float* const* rows, int64_t lda,
                          float* __restrict v, int64_t* count, double* sum),
                (L, rows, lda, v, count, sum))

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
                   ab + (2 * t0 - (I0 - 2)) * W, RB * W, t0 > ta);
  }
  *count = 0;
  *sum = 0.0;
  for (int64_t I = I0; I < I1; ++I) {
    const float* r = ab + (I - 1 - (I0 - 2)) * W;
    const float* rows[3] = {r, r + W, r + 2 * W};
    head_row(L, rows, RB * W, v, count, sum);
  }
}

// Checks the last level's weights for C input channels; returns its output channels CO.
int64_t last_level_out_channels(const f32a& U, const f32a& b3, const f32a& wm, const f32a& bm,
                                const f32a& wh, int64_t C, const char* who) {
  const std::string w(who);
  need(b3.ndim() == 1 && b3.shape(0) > 0, w + ": b3 must be (CO,)");
  const int64_t CO = b3.shape(0);
  need(U.ndim() == 3 && U.shape(0) == 16 && U.shape(1) == C && U.shape(2) == CO,
       w + ": U must be (16, C, CO) ([element][c_in][c_out])");
  need(wm.size() == CO * CO && bm.size() == CO, w + ": wm (CO, CO), bm (CO,)");
  need(wh.size() == 9 * CO, w + ": wh must be (3, 3, CO)");
  return CO;
}

py::tuple last_level_hotspots(f32a x, f32a U, f32a b3, f32a wm, f32a bm, f32a wh, float bh,
                              float slope, double lo, double hi, double thr) {
  need(x.ndim() == 4, "last_level_hotspots: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const int64_t CO = last_level_out_channels(U, b3, wm, bm, wh, C, "last_level_hotspots");
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

// The last two decoder levels and the head in one pass: the ConvUnit behind the last bilinear
// x2 up-sampling (UpconvRows: C -> CM channels), the last ConvUnit (Winograd, CM -> CO), the
// output conv, de-normalization, threshold and per-sample reduction, as last_level_hotspots
// computes them from the up-sampled level's output. Each task (a sample and a block of output
// rows) streams down the image: a pair of up-sampled rows goes straight into the Winograd
// input ring, each tile row as soon as its four input rows are there, each head row as soon as
// its three rows of a are there; only rings of rows are held, and the full-resolution
// activation of the up-sampled level is never written.
// x (B, C, h, w); w9T (C, 9 CM), bias (CM,), wm1 (CM, CM), bm1 (CM,) as for upconv3x3_unit;
// U (16, CM, CO), b3, wm, bm, wh, bh as for last_level_hotspots.
py::tuple upconv_last_hotspots(f32a x, f32a w9T, f32a bias, f32a wm1, f32a bm1, f32a U, f32a b3,
                               f32a wm, f32a bm, f32a wh, float bh, float slope, double lo,
                               double hi, double thr) {
  const int64_t CM = upconv_out_channels(x, w9T, bias, "upconv_last_hotspots");
  const int64_t B = x.shape(0), C = x.shape(1), h = x.shape(2), w = x.shape(3);
  const auto [pw1, pbm1] = mix_weights(wm1, bm1, CM, "upconv_last_hotspots");
  const int64_t CO = last_level_out_channels(U, b3, wm, bm, wh, CM, "upconv_last_hotspots");
  py::array_t<int64_t> count({B});
  py::array_t<double> sum({B});
  int64_t* pc = count.mutable_data();
  double* ps = sum.mutable_data();
  const int64_t H = 2 * h, W = 2 * w, th = h, tw = w;
  if (B == 0) return py::make_tuple(count, sum);
  if (h == 0 || w == 0) {
    std::fill(pc, pc + B, 0);
    std::fill(ps, ps + B, 0.0);
    return py::make_tuple(count, sum);
  }
  const LastLevel L{CM, H, W, CO, U.data(), b3.data(), wm.data(), bm.data(), wh.data(), bh,
                    slope, (float)(hi - lo), (float)lo, (float)thr};
  // output row blocks per sample so that the tasks divide evenly among the threads; even
  // starts keep the blocks on tile rows
  const int64_t nblk = blocks_per_sample(B, th);
  const int64_t rows_per = 2 * ((th + nblk - 1) / nblk);
  const float* px = x.data();
  const float* pw9 = w9T.data();
  const float* pb = bias.data();
  {
    py::gil_scoped_release nogil;
    std::vector<int64_t> bc((size_t)(B * nblk));
    std::vector<double> bs((size_t)(B * nblk));
#pragma omp parallel
    {
      UpconvRows up(C, h, w, pw9, CM, pb, pw1, pbm1, slope);
      WinoBuffers wb(CM, CO, 1, tw, W);
      // up-sampled row pair, ring of 4 rows of a ([o][slot][W]) and its zero stand-in for rows
      // outside the image (same channel stride), head row
      const int64_t la = 4 * W;
      std::vector<float> pair((size_t)(CM * 2 * W)), ar((size_t)(CO * la));
      std::vector<float> zero((size_t)(CO * la), 0.0f), v((size_t)W);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < B * nblk; ++t) {
        const int64_t b = t / nblk, I0 = (t % nblk) * rows_per;
        const int64_t I1 = std::min(H, I0 + rows_per);
        int64_t n_hot = 0;
        double s_hot = 0.0;
        if (I0 < I1) {
          // tile rows holding a's rows I0-1 .. I1, their input rows 2 ta - 1 .. 2 tb, and the
          // coarse row pairs holding those
          const int64_t ta = std::max<int64_t>(0, (I0 - 1) / 2), tb = std::min(th, I1 / 2 + 1);
          const int64_t ia = std::max<int64_t>(0, ta - 1), ib = std::min(h - 1, tb);
          int64_t next_head = I0, a_done = -1;  // next head row, last row of a formed
          auto a_row = [&](int64_t r) {
            return (r < 0 || r >= H) ? zero.data() : ar.data() + (r & 3) * W;
          };
          auto heads = [&]() {  // the head rows whose rows of a are all there
            while (next_head < I1 && (next_head + 1 <= a_done || next_head + 1 >= H)) {
              const float* rows[3] = {a_row(next_head - 1), a_row(next_head),
                                      a_row(next_head + 1)};
              head_row(L, rows, la, v.data(), &n_hot, &s_hot);
              ++next_head;
            }
          };
          auto feed = [&](int64_t r, const float* row, int64_t ld) {  // input row r of the
            for (int64_t c = 0; c < CM; ++c)                          // Winograd level
              wino_load_row(row ? row + c * ld : nullptr, W, tw,
                            wino_slot(wb.in.data() + c * 16 * tw, tw, r));
            const int64_t ty = r / 2 - 1;
            if (r % 2 == 0 && ty >= ta && ty < tb) {
              for (int64_t c = 0; c < CM; ++c)
                wino_combine(wb.in.data() + c * 16 * tw, tw, ty, wb.V.data() + c * tw, CM * tw);
              wino_products(wb, CM, H, W, ty, ty + 1, L.U, CO, L.b3, L.wm, L.bm, slope,
                            ar.data() + ((2 * ty) & 3) * W, la);
              a_done = std::min(H - 1, 2 * ty + 1);
              heads();
            }
          };
          if (ta == 0) feed(-1, nullptr, 0);
          up.start(px + b * C * h * w, ia);
          for (int64_t i = ia; i <= ib; ++i) {
            up.rows(i, pair.data(), 2 * W);
            for (int p = 0; p < 2; ++p) {
              const int64_t r = 2 * i + p;
              if (r >= 2 * ta - 1 && r <= 2 * tb) feed(r, pair.data() + p * W, 2 * W);
            }
          }
          for (int64_t r = 2 * ib + 2; r <= 2 * tb; ++r) feed(r, nullptr, 0);
        }
        bc[(size_t)t] = n_hot;
        bs[(size_t)t] = s_hot;
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
  m.def("upconv_last_hotspots", &upconv_last_hotspots, py::arg("x"), py::arg("w9T"),
        py::arg("bias"), py::arg("wm1"), py::arg("bm1"), py::arg("U"), py::arg("b3"),
        py::arg("wm"), py::arg("bm"), py::arg("wh"), py::arg("bh"), py::arg("slope"),
        py::arg("lo"), py::arg("hi"), py::arg("thr"));
}
