// C++/OpenMP forward pass of the latent dynamics' U-Nets (closure/models/unet.py) for the
// closure's online mode (module closure._kernels_cpp, function unet_forward).
//
// The U-Nets work on small token grids (16x24 for a 128x192 meso patch) with 4..96 channels,
// where PyTorch spends more on per-operator overhead, layout handling and threading than on
// arithmetic. Here one OpenMP task runs the whole network for one sample on per-thread buffers
// that stay in cache: every ConvUnit is a direct 3x3 conv (zero padding) as one product over the
// zero-padded input rows laid end to end (row k of the operand: input channel c shifted by
// (ky, kx); the two columns computed between consecutive rows are discarded), LeakyReLU, the
// 1x1 conv and LeakyReLU, on the micro-kernel of small_gemm.h; then 2x2 max pooling
// (ceil_mode), bilinear up-sampling to the skip's size (align_corners=False, PyTorch's source
// index rule) and the skip concatenation are passes between them. Reference: UNet.forward.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "py_args.h"
#include "small_gemm.h"

namespace py = pybind11;
using ck::f32a;
using ck::need;

namespace {

struct Unit {
  f32a w3T, b3, wm, bm;  // (9 C, O) as [c 9 + ky 3 + kx][o], (O,), (O, O) as [c_in][c_out], (O,)
  int64_t C, O;
};

std::vector<std::vector<Unit>> parse_blocks(const py::list& blocks, const char* what) {
  std::vector<std::vector<Unit>> out;
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::vector<Unit> units;
    for (const auto& item : blocks[i].cast<py::list>()) {
      auto t = item.cast<py::tuple>();
      need(t.size() == 4, std::string("unet_forward: each unit of ") + what +
                              " must be (w3T, b3, wm, bm)");
      Unit u{t[0].cast<f32a>(), t[1].cast<f32a>(), t[2].cast<f32a>(), t[3].cast<f32a>(), 0, 0};
      need(u.w3T.ndim() == 2 && u.w3T.shape(0) % 9 == 0 && u.w3T.shape(0) > 0,
           std::string("unet_forward: ") + what + " unit w3T must be (9 C, O)");
      u.C = u.w3T.shape(0) / 9;
      u.O = u.w3T.shape(1);
      need(u.b3.size() == u.O && u.wm.size() == u.O * u.O && u.bm.size() == u.O,
           std::string("unet_forward: ") + what + " unit needs b3 (O,), wm (O, O), bm (O,)");
      units.push_back(std::move(u));
    }
    need(!units.empty(), std::string("unet_forward: empty block in ") + what);
    out.push_back(std::move(units));
  }
  return out;
}

struct Scratch {
  std::vector<float> xp, a, t;
  std::vector<int64_t> off, offa;
};

// 3x3 conv (zero padding) + bias + act of one sample in (C, H, W) as one product over the
// zero-padded input rows: s.a gets (O, H, W + 2), the last two columns of each row discarded.
// w3T (9 C, O) as [c 9 + ky 3 + kx][o].
void conv3x3_padded(const float* w3T, const float* b3, int64_t C, int64_t O, const float* in,
                    int64_t H, int64_t W, float slope, Scratch& s) {
  const int64_t Wp = W + 2, Hp = H + 2, N = (H - 1) * Wp + W;
  float* xp = s.xp.data();
  for (int64_t c = 0; c < C; ++c) {
    float* plane = xp + c * Hp * Wp;
    std::fill(plane, plane + Wp, 0.0f);
    std::fill(plane + (H + 1) * Wp, plane + Hp * Wp, 0.0f);
    for (int64_t y = 0; y < H; ++y) {
      float* dst = plane + (y + 1) * Wp;
      dst[0] = dst[W + 1] = 0.0f;
      std::copy(in + (c * H + y) * W, in + (c * H + y + 1) * W, dst + 1);
    }
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) s.off[c * 9 + ky * 3 + kx] = c * Hp * Wp + ky * Wp + kx;
  }
  sg::gemm_bias_act(O, N, 9 * C, w3T, O, xp, s.off.data(), b3, slope, s.a.data(), H * Wp);
}

// Rows of (O, H, W + 2) planes without their last two columns, into (O, H, W).
void drop_pad_columns(const float* src, int64_t O, int64_t H, int64_t W, float* out) {
  const int64_t Wp = W + 2;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t y = 0; y < H; ++y)
      std::copy(src + (o * H + y) * Wp, src + (o * H + y) * Wp + W, out + (o * H + y) * W);
}

// One ConvUnit on one sample: in (C, H, W) -> out (O, H, W).
void unit_forward(const Unit& u, const float* in, int64_t H, int64_t W, float slope, float* out,
                  Scratch& s) {
  const int64_t O = u.O, Wp = W + 2, N = (H - 1) * Wp + W;
  conv3x3_padded(u.w3T.data(), u.b3.data(), u.C, O, in, H, W, slope, s);
  for (int64_t o = 0; o < O; ++o) s.offa[o] = o * H * Wp;
  sg::gemm_bias_act(O, N, O, u.wm.data(), O, s.a.data(), s.offa.data(), u.bm.data(), slope,
                    s.t.data(), H * Wp);
  drop_pad_columns(s.t.data(), O, H, W, out);
}

// 2x2 max pooling, stride 2, ceil_mode (windows cut at the border); NaN propagates.
inline float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }

void max_pool(const float* in, int64_t C, int64_t H, int64_t W, float* out) {
  const int64_t h = (H + 1) / 2, w = (W + 1) / 2, wf = W / 2;  // wf: full windows per row
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t i = 0; i < h; ++i) {
      const float* r0 = in + (c * H + 2 * i) * W;
      const float* r1 = 2 * i + 1 < H ? r0 + W : r0;
      float* o = out + (c * h + i) * w;
#pragma omp simd
      for (int64_t j = 0; j < wf; ++j)
        o[j] = max_nan(max_nan(r0[2 * j], r0[2 * j + 1]), max_nan(r1[2 * j], r1[2 * j + 1]));
      if (wf < w) o[wf] = max_nan(r0[2 * wf], r1[2 * wf]);
    }
  }
}

// Source indices and weights of bilinear resizing (align_corners=False, as PyTorch: scale =
// in / out in float, source clamped at 0, upper neighbour clamped at in - 1).
void resize_taps(int64_t in, int64_t out, int64_t* i0, int64_t* i1, float* l1) {
  const float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; ++d) {
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    const int64_t k = (int64_t)src;
    i0[d] = k;
    i1[d] = k + (k < in - 1 ? 1 : 0);
    l1[d] = src - (float)k;
  }
}

// Bilinear resizing of C planes h x w to H x W, separable: each input row is resized along x
// once (into rows, h x W), then output rows blend two of them.
struct Resize {
  std::vector<int64_t> y0, y1, x0, x1;
  std::vector<float> ly, lx, rows;
  void run(const float* in, int64_t C, int64_t h, int64_t w, int64_t H, int64_t W, float* out) {
    y0.resize(H), y1.resize(H), ly.resize(H), x0.resize(W), x1.resize(W), lx.resize(W);
    rows.resize((size_t)(h * W));
    resize_taps(h, H, y0.data(), y1.data(), ly.data());
    resize_taps(w, W, x0.data(), x1.data(), lx.data());
    for (int64_t c = 0; c < C; ++c) {
      const float* p = in + c * h * w;
      for (int64_t y = 0; y < h; ++y) {
        const float* r = p + y * w;
        float* t = rows.data() + y * W;
        for (int64_t X = 0; X < W; ++X) t[X] = (1.0f - lx[X]) * r[x0[X]] + lx[X] * r[x1[X]];
      }
      for (int64_t Y = 0; Y < H; ++Y) {
        const float* r0 = rows.data() + y0[Y] * W;
        const float* r1 = rows.data() + y1[Y] * W;
        const float b = ly[Y], a = 1.0f - b;
        float* o = out + (c * H + Y) * W;
#pragma omp simd
        for (int64_t X = 0; X < W; ++X) o[X] = a * r0[X] + b * r1[X];
      }
    }
  }
};

f32a unet_forward(f32a x, py::list down_blocks, py::list up_blocks, f32a wo, f32a bo,
                  float slope) {
  need(x.ndim() == 4, "unet_forward: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C0 = x.shape(1), H = x.shape(2), W = x.shape(3);
  const auto down = parse_blocks(down_blocks, "down");
  const auto up = parse_blocks(up_blocks, "up");
  need(!down.empty() && up.size() == down.size() - 1,
       "unet_forward: need depth + 1 down blocks and depth up blocks");
  // channel chain and level sizes
  const int64_t depth = (int64_t)up.size();
  std::vector<int64_t> Hl(depth + 1), Wl(depth + 1), Cl(depth + 1);
  Hl[0] = H, Wl[0] = W;
  for (int64_t i = 1; i <= depth; ++i) Hl[i] = (Hl[i - 1] + 1) / 2, Wl[i] = (Wl[i - 1] + 1) / 2;
  int64_t c = C0, max_plane = 0, max_c = C0;
  for (int64_t i = 0; i <= depth; ++i) {
    for (const auto& u : down[i]) {
      need(u.C == c, "unet_forward: down block " + std::to_string(i) + " expects " +
                         std::to_string(u.C) + " input channels, gets " + std::to_string(c));
      c = u.O;
      max_c = std::max({max_c, u.C, u.O});
    }
    Cl[i] = c;
  }
  for (int64_t j = 0; j < depth; ++j) {
    const int64_t l = depth - 1 - j;
    c += Cl[l];
    for (const auto& u : up[j]) {
      need(u.C == c, "unet_forward: up block " + std::to_string(j) + " expects " +
                         std::to_string(u.C) + " input channels, gets " + std::to_string(c));
      c = u.O;
      max_c = std::max({max_c, u.C, u.O});
    }
  }
  need(wo.ndim() == 2 && wo.shape(0) == c && bo.ndim() == 1 && bo.shape(0) == wo.shape(1),
       "unet_forward: wo must be (C_last, C_out) ([c_in][c_out]) and bo (C_out,)");
  const int64_t Cout = wo.shape(1);
  f32a y({B, Cout, H, W});
  if (B == 0 || H == 0 || W == 0) return y;
  max_plane = (H + 2) * (W + 2);
  const float* px = x.data();
  float* py = y.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      Scratch s;
      s.xp.resize((size_t)(max_c * max_plane));
      s.a.resize((size_t)(max_c * H * (W + 2)));
      s.t.resize(s.a.size());
      s.off.resize((size_t)(9 * max_c));
      s.offa.resize((size_t)max_c);
      std::vector<std::vector<float>> skip(depth + 1);
      for (int64_t i = 0; i <= depth; ++i) skip[i].resize((size_t)(Cl[i] * Hl[i] * Wl[i]));
      std::vector<float> p0((size_t)(max_c * H * W)), p1(p0.size()), cat(p0.size());
      std::vector<int64_t> offo((size_t)max_c);
      Resize resize;
#pragma omp for schedule(static)
      for (int64_t b = 0; b < B; ++b) {
        const float* h = px + b * C0 * H * W;
        for (int64_t i = 0; i <= depth; ++i) {
          if (i > 0) {
            max_pool(skip[i - 1].data(), Cl[i - 1], Hl[i - 1], Wl[i - 1], cat.data());
            h = cat.data();
          }
          for (size_t k = 0; k < down[i].size(); ++k) {
            const bool last = k + 1 == down[i].size();
            float* dst = last ? skip[i].data() : (h == p0.data() ? p1.data() : p0.data());
            unit_forward(down[i][k], h, Hl[i], Wl[i], slope, dst, s);
            h = dst;
          }
        }
        int64_t ch = Cl[depth];
        for (int64_t j = 0; j < depth; ++j) {
          const int64_t l = depth - 1 - j, plane = Hl[l] * Wl[l];
          resize.run(h, ch, Hl[l + 1], Wl[l + 1], Hl[l], Wl[l], cat.data());
          std::copy(skip[l].begin(), skip[l].end(), cat.begin() + ch * plane);
          h = cat.data();
          for (const auto& u : up[j]) {
            float* dst = h == p0.data() ? p1.data() : p0.data();
            unit_forward(u, h, Hl[l], Wl[l], slope, dst, s);
            h = dst;
            ch = u.O;
          }
        }
        for (int64_t k = 0; k < ch; ++k) offo[k] = k * H * W;
        sg::gemm_bias_act(Cout, H * W, ch, wo.data(), Cout, h, offo.data(), bo.data(), 1.0f,
                          py + b * Cout * H * W, H * W);
      }
    }
  }
  return y;
}

// 3x3 conv (zero padding) + bias + LeakyReLU of a batch x (B, C, H, W), one sample per task:
// the decoder's input conv. w3T (9 C, O) as [c 9 + ky 3 + kx][o], b3 (O,).
f32a conv3x3_act(f32a x, f32a w3T, f32a b3, float slope) {
  need(x.ndim() == 4, "conv3x3_act: x must be (B, C, H, W)");
  const int64_t B = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  need(w3T.ndim() == 2 && w3T.shape(0) == 9 * C,
       "conv3x3_act: w3T must be (9 C, O) ([c 9 + ky 3 + kx][c_out])");
  const int64_t O = w3T.shape(1);
  need(b3.ndim() == 1 && b3.shape(0) == O, "conv3x3_act: b3 must be (O,)");
  f32a y({B, O, H, W});
  if (B == 0 || H == 0 || W == 0 || O == 0) return y;
  const float* px = x.data();
  float* py = y.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel
    {
      Scratch s;
      s.xp.resize((size_t)(C * (H + 2) * (W + 2)));
      s.a.resize((size_t)(O * H * (W + 2)));
      s.off.resize((size_t)(9 * C));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < B; ++b) {
        conv3x3_padded(w3T.data(), b3.data(), C, O, px + b * C * H * W, H, W, slope, s);
        drop_pad_columns(s.a.data(), O, H, W, py + b * O * H * W);
      }
    }
  }
  return y;
}

}  // namespace

void register_latent_unet(py::module_& m) {
  m.def("unet_forward", &unet_forward, py::arg("x"), py::arg("down"), py::arg("up"),
        py::arg("wo"), py::arg("bo"), py::arg("slope"),
        "Forward pass of a latent U-Net (closure/models/unet.py) for a batch (B, C, H, W)");
  m.def("conv3x3_act", &conv3x3_act, py::arg("x"), py::arg("w3T"), py::arg("b3"),
        py::arg("slope"), "3x3 conv (zero padding) + bias + LeakyReLU of a batch (B, C, H, W)");
}
