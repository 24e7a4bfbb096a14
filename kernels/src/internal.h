// Internal interfaces between the kernel files of libmixdq_cuda.so (hidden symbols).
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace mixdq {

// Records a message for mixdq_cuda_last_error() and returns status.
int32_t fail(int32_t status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// MIXDQ_CUDA_OK, or MIXDQ_CUDA_ERR_CUDA with "<what>: <cudaError name> (<text>)".
int32_t cuda_status(cudaError_t e, const char *what);

// Tensor-core int8 GEMM through CUTLASS: acc[m, n] = Σ_k a[m, k]·w[n, k] (s8 × s8 -> exact s32).
// Needs k % 16 == 0 and n % 4 == 0 (checked by the caller); returns a status.
int32_t cutlass_gemm_s8s8s32(const int8_t *a, const int8_t *w, int32_t *acc, int m, int n, int k, cudaStream_t stream);

// The same GEMM with the W8A8 dequantization epilogue fused into CUTLASS's (epilogue visitor tree),
// fp16 output, no residual: y = half((float)(acc − z8·wsum[n])·(Δx·Δw[n]) + bias[n]). Needs k % 16 == 0,
// n % 8 == 0 and 16-byte aligned operands (checked by the caller). Opt-in: MIXDQ_CUDA_FUSED=1.
int32_t cutlass_gemm_w8a8_f16(const int8_t *a, const int8_t *w, int m, int n, int k, const int32_t *wsum, int32_t z8, float delta,
                              const float *wscale, const float *bias, void *y, cudaStream_t stream);

// Tensor-core int8 implicit-GEMM convolution (NHWC, KRSC, no padding: the input is padded already).
// Needs channels % 16 == 0 and out % 4 == 0 (checked by the caller); returns a status.
int32_t cutlass_conv_s8s8s32(const int8_t *x, const int8_t *w, int32_t *acc, int batch, int in_h, int in_w, int channels,
                             int out, int ksize, int stride, cudaStream_t stream);

}  // namespace mixdq
