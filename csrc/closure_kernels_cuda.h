// Host entry points of closure_kernels.cu (host pointers in, host pointers out; the *_dev
// variants: device pointers and a cudaStream_t, asynchronous). 0 = success, otherwise a
// cudaError_t code whose text ck_cuda_error_string returns.
#pragma once
#include <cstdint>

extern "C" {
int ck_cuda_device_count();
const char* ck_cuda_error_string(int code);
int ck_cuda_sample_latent(const float* m, const float* v, uint64_t seed, const int64_t* id,
                          const int64_t* st, float* z, int64_t B, int64_t E);
int ck_cuda_hotspot_head(const float* x, const float* w, float bias, double lo, double hi,
                         double thr, int64_t B, int64_t C, int64_t H, int64_t W, int64_t* count,
                         double* sum);
int ck_cuda_sample_latent_dev(const float* m, const float* v, uint64_t seed, const int64_t* id,
                              const int64_t* st, float* z, int64_t B, int64_t E, void* stream);
int ck_cuda_hotspot_head_dev(const float* x, const float* w, float bias, double lo, double hi,
                             double thr, int64_t B, int64_t C, int64_t H, int64_t W,
                             int64_t* count, double* sum, void* stream);
int ck_cuda_table_lookup(const double* nd, int64_t nP, double dt_t, int64_t nT, const double* A,
                         const double* T, const double* U, const double* p, const double* a0,
                         const double* a1, const uint8_t* sh, double thr, int64_t N, double* rA,
                         double* rT, double* rU, double* rR);
}
