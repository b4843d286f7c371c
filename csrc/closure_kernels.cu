// CUDA versions of the closure kernels (same math as closure_kernels.cpp; see closure_kernels.h
// for the counter-based RNG). The plain entry points take host pointers, copy to the device,
// launch and copy back; the *_dev ones take device pointers and a stream (PyTorch's tensors on
// the GPU, no copies, asynchronous). All return a cudaError_t code (0 = success) so the
// bindings in bind_cuda.cpp can raise, and closure/kernels.py can fall back to the C++ path.
#include <cuda_runtime.h>

#include <cstdint>

#include "closure_kernels.h"
#include "closure_kernels_cuda.h"

namespace {

__global__ void k_sample(const float* m, const float* v, uint64_t seed, const int64_t* id,
                         const int64_t* st, float* z, int64_t B, int64_t E) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B * E) return;
  const int64_t b = i / E, e = i % E;
  const uint64_t key = ck::cell_key(seed, (uint64_t)id[b], (uint64_t)st[b]);
  const float eps = (float)ck::normal_from_key(key, (uint64_t)e);
  z[i] = m[i] + expf(0.5f * v[i]) * eps;
}

// One block per (sample, slice of its pixels): each thread sums its pixels' hot T, the block
// reduces in shared memory and adds once to the sample's totals (a per-pixel atomic on one
// address per sample serializes whole hot regions).
constexpr int kHeadThreads = 256;

__global__ void k_head(const float* x, const float* w, float bias, float scale, float off,
                       float thr, int64_t C, int64_t H, int64_t W, int64_t blocks_per_sample,
                       unsigned long long* cnt, double* sum) {
  const int64_t b = blockIdx.x / blocks_per_sample;
  const int64_t HW = H * W, per = (HW + blocks_per_sample - 1) / blocks_per_sample;
  const int64_t r0 = (blockIdx.x % blocks_per_sample) * per;
  const int64_t r1 = r0 + per < HW ? r0 + per : HW;
  unsigned long long n = 0;
  double s = 0.0;
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
    const int64_t y = r / W, xx = r % W;
    float acc = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      const float* plane = x + (b * C + c) * HW;
      for (int ky = 0; ky < 3; ++ky) {
        const int64_t yy = y + ky - 1;
        if (yy < 0 || yy >= H) continue;
        for (int kx = 0; kx < 3; ++kx) {
          const int64_t xk = xx + kx - 1;
          if (xk < 0 || xk >= W) continue;
          acc += w[c * 9 + ky * 3 + kx] * plane[yy * W + xk];
        }
      }
    }
    const float T = (acc + bias) * scale + off;
    if (T > thr) {
      ++n;
      s += (double)T;
    }
  }
  __shared__ unsigned long long sn[kHeadThreads];
  __shared__ double ss[kHeadThreads];
  sn[threadIdx.x] = n;
  ss[threadIdx.x] = s;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if ((int)threadIdx.x < k) {
      sn[threadIdx.x] += sn[threadIdx.x + k];
      ss[threadIdx.x] += ss[threadIdx.x + k];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0 && sn[0] > 0) {
    atomicAdd(cnt + b, sn[0]);
    atomicAdd(sum + b, ss[0]);
  }
}

__device__ void lerp_index(const double* nd, int64_t nP, double ps, int64_t& i, double& f) {
  if (ps <= nd[0]) { i = 0; f = 0.0; return; }
  if (ps >= nd[nP - 1]) { i = nP - 2; f = 1.0; return; }
  int64_t lo = 0, hi = nP - 1;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (nd[mid] <= ps) lo = mid; else hi = mid;
  }
  i = lo;
  f = (ps - nd[lo]) / (nd[lo + 1] - nd[lo]);
}

__device__ void t_index(double t, double dt_t, int64_t nT, int64_t& k, double& f) {
  const double s = t / dt_t;
  if (!(s > 0.0)) { k = 0; f = 0.0; return; }
  if (s >= (double)(nT - 1)) { k = nT - 2; f = 1.0; return; }
  k = (int64_t)s;
  if (k > nT - 2) k = nT - 2;
  f = s - (double)k;
}

__device__ double bilin(const double* tab, int64_t nT, int64_t i, double fp, int64_t k, double ft) {
  const double* r0 = tab + i * nT;
  const double* r1 = r0 + nT;
  const double a = r0[k] + ft * (r0[k + 1] - r0[k]);
  const double b = r1[k] + ft * (r1[k + 1] - r1[k]);
  return a + fp * (b - a);
}

__global__ void k_table(const double* nd, int64_t nP, double dt_t, int64_t nT, const double* A,
                        const double* T, const double* U, const double* p, const double* a0,
                        const double* a1, const uint8_t* sh, double thr, int64_t N, double* rA,
                        double* rT, double* rU, double* rR) {
  const int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  if (!sh[n]) { rA[n] = 0.0; rT[n] = thr; rU[n] = 0.0; rR[n] = 0.0; return; }
  int64_t i, k0, k1;
  double fp, f0, f1;
  lerp_index(nd, nP, p[n], i, fp);
  t_index(a0[n], dt_t, nT, k0, f0);
  t_index(a1[n], dt_t, nT, k1, f1);
  const double A0 = bilin(A, nT, i, fp, k0, f0), A1 = bilin(A, nT, i, fp, k1, f1);
  rA[n] = A1;
  rT[n] = bilin(T, nT, i, fp, k1, f1);
  rU[n] = bilin(U, nT, i, fp, k1, f1);
  const double d = A1 - A0;
  rR[n] = d > 0.0 ? d / (a1[n] - a0[n]) : 0.0;
}

// Device buffers freed on scope exit.
struct Buf {
  void* p = nullptr;
  ~Buf() { if (p) cudaFree(p); }
};

#define CK_TRY(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) return (int)e_; } while (0)

template <typename T>
int upload(Buf& b, const T* h, int64_t n) {
  CK_TRY(cudaMalloc(&b.p, sizeof(T) * (n > 0 ? n : 1)));
  if (n > 0) CK_TRY(cudaMemcpy(b.p, h, sizeof(T) * n, cudaMemcpyHostToDevice));
  return 0;
}

inline unsigned blocks(int64_t n, int t) { return (unsigned)((n + t - 1) / t); }

}  // namespace

extern "C" int ck_cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

extern "C" const char* ck_cuda_error_string(int code) {
  return cudaGetErrorString((cudaError_t)code);
}

extern "C" int ck_cuda_sample_latent_dev(const float* m, const float* v, uint64_t seed,
                                         const int64_t* id, const int64_t* st, float* z,
                                         int64_t B, int64_t E, void* stream) {
  if (B * E == 0) return 0;
  k_sample<<<blocks(B * E, 256), 256, 0, (cudaStream_t)stream>>>(m, v, seed, id, st, z, B, E);
  return (int)cudaGetLastError();
}

extern "C" int ck_cuda_hotspot_head_dev(const float* x, const float* w, float bias, double lo,
                                        double hi, double thr, int64_t B, int64_t C, int64_t H,
                                        int64_t W, int64_t* count, double* sum, void* stream) {
  if (B == 0) return 0;
  const cudaStream_t s = (cudaStream_t)stream;
  CK_TRY(cudaMemsetAsync(count, 0, sizeof(int64_t) * B, s));
  CK_TRY(cudaMemsetAsync(sum, 0, sizeof(double) * B, s));
  if (H * W == 0) return 0;
  // ~8 pixels per thread: enough blocks to fill the GPU at small batches, few atomics
  const int64_t bps = (H * W + 8 * kHeadThreads - 1) / (8 * kHeadThreads);
  k_head<<<(unsigned)(B * bps), kHeadThreads, 0, s>>>(x, w, bias, (float)(hi - lo), (float)lo,
                                                     (float)thr, C, H, W, bps,
                                                     (unsigned long long*)count, sum);
  return (int)cudaGetLastError();
}

extern "C" int ck_cuda_sample_latent(const float* m, const float* v, uint64_t seed,
                                     const int64_t* id, const int64_t* st, float* z, int64_t B,
                                     int64_t E) {
  if (B * E == 0) return 0;
  Buf dm, dv, di, ds, dz;
  int r;
  if ((r = upload(dm, m, B * E)) || (r = upload(dv, v, B * E)) || (r = upload(di, id, B)) ||
      (r = upload(ds, st, B)))
    return r;
  CK_TRY(cudaMalloc(&dz.p, sizeof(float) * B * E));
  if ((r = ck_cuda_sample_latent_dev((const float*)dm.p, (const float*)dv.p, seed,
                                     (const int64_t*)di.p, (const int64_t*)ds.p, (float*)dz.p,
                                     B, E, nullptr)))
    return r;
  CK_TRY(cudaMemcpy(z, dz.p, sizeof(float) * B * E, cudaMemcpyDeviceToHost));
  return 0;
}

extern "C" int ck_cuda_hotspot_head(const float* x, const float* w, float bias, double lo,
                                    double hi, double thr, int64_t B, int64_t C, int64_t H,
                                    int64_t W, int64_t* count, double* sum) {
  if (B == 0) return 0;
  Buf dx, dw, dc, dsum;
  int r;
  if ((r = upload(dx, x, B * C * H * W)) || (r = upload(dw, w, C * 9))) return r;
  CK_TRY(cudaMalloc(&dc.p, sizeof(int64_t) * B));
  CK_TRY(cudaMalloc(&dsum.p, sizeof(double) * B));
  if ((r = ck_cuda_hotspot_head_dev((const float*)dx.p, (const float*)dw.p, bias, lo, hi, thr,
                                    B, C, H, W, (int64_t*)dc.p, (double*)dsum.p, nullptr)))
    return r;
  CK_TRY(cudaMemcpy(count, dc.p, sizeof(int64_t) * B, cudaMemcpyDeviceToHost));
  CK_TRY(cudaMemcpy(sum, dsum.p, sizeof(double) * B, cudaMemcpyDeviceToHost));
  return 0;
}

extern "C" int ck_cuda_table_lookup(const double* nd, int64_t nP, double dt_t, int64_t nT,
                                    const double* A, const double* T, const double* U,
                                    const double* p, const double* a0, const double* a1,
                                    const uint8_t* sh, double thr, int64_t N, double* rA,
                                    double* rT, double* rU, double* rR) {
  if (N == 0) return 0;
  Buf dn, dA, dT, dU, dp, d0, d1, dsh, oA, oT, oU, oR;
  int r;
  if ((r = upload(dn, nd, nP)) || (r = upload(dA, A, nP * nT)) || (r = upload(dT, T, nP * nT)) ||
      (r = upload(dU, U, nP * nT)) || (r = upload(dp, p, N)) || (r = upload(d0, a0, N)) ||
      (r = upload(d1, a1, N)) || (r = upload(dsh, sh, N)))
    return r;
  for (Buf* b : {&oA, &oT, &oU, &oR}) CK_TRY(cudaMalloc(&b->p, sizeof(double) * N));
  k_table<<<blocks(N, 256), 256>>>((const double*)dn.p, nP, dt_t, nT, (const double*)dA.p,
                                   (const double*)dT.p, (const double*)dU.p, (const double*)dp.p,
                                   (const double*)d0.p, (const double*)d1.p,
                                   (const uint8_t*)dsh.p, thr, N, (double*)oA.p, (double*)oT.p,
                                   (double*)oU.p, (double*)oR.p);
  CK_TRY(cudaGetLastError());
  CK_TRY(cudaMemcpy(rA, oA.p, sizeof(double) * N, cudaMemcpyDeviceToHost));
  CK_TRY(cudaMemcpy(rT, oT.p, sizeof(double) * N, cudaMemcpyDeviceToHost));
  CK_TRY(cudaMemcpy(rU, oU.p, sizeof(double) * N, cudaMemcpyDeviceToHost));
  CK_TRY(cudaMemcpy(rR, oR.p, sizeof(double) * N, cudaMemcpyDeviceToHost));
  return 0;
}
