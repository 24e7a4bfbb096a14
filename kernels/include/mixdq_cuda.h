/* mixdq_cuda.h: the plain C API of libmixdq_cuda.so (CUDA INT8 kernels for MixDQ's W8A8 layers).
 *
 * Conventions (the CPU path's, Sources/CKernels/include/mixdq_kernels.h):
 *  - Activations: per-tensor Δx and zero point z (0 ... 2^bits − 1), u8 codes
 *        q = clamp(rint(x / Δx) + z, 0, 2^bits − 1)     (fp32 true division, round half even, NaN -> 0)
 *    computed from the fp16/bf16 input widened to fp32.
 *  - Weights: s8 codes per output channel n, symmetric, scale Δw[n]; wsum[n] = Σ_k w[n, k].
 *  - Tensor cores multiply s8 × s8, so the kernels store activation codes shifted, s = q − 128, and
 *    compute acc_s = Σ s·w. The CPU's centred sum is then
 *        Σ q·w − z·wsum[n] = acc_s + 128·wsum[n] − z·wsum[n] = acc_s − (z − 128)·wsum[n]
 *    (exact in int32, wrapping as the CPU's), so the epilogue is
 *        y[m, n] = (float)(acc_s − (z − 128)·wsum[n]) · (Δx·Δw[n]) (+ bias[n]) (+ residual[m, n])
 *    in fp32 without FMA (the CPU's operations in its order), rounded once to fp16/bf16.
 *  - Convolutions: NHWC input, weights [out][ky][kx][in] (KRSC), NHWC output. Padding reads the code
 *    z (the real 0) in the border, as the CPU does, so the zero-point correction is per output
 *    channel only, wsum[n] summing all ky·kx·in taps. (The kernels write the quantized input into a
 *    padded buffer whose border holds z − 128.)
 *  - Split shortcut (an up-block conv_shortcut over concat(h, skip)): two input channel ranges,
 *    each with its own Δx, z, weight columns and Δw; y = y0 + y1 where y0 has no bias and
 *    y1 = (acc1 − (z1 − 128)·wsum1)·(Δx1·Δw1) + bias, the CPU's order.
 *  - BOS rows: row b·tokens of the output (token 0 of sample b) is replaced by rows[b] (fp32).
 *
 * Every function returns MIXDQ_CUDA_OK (0) or a status below; mixdq_cuda_last_error() then holds a
 * message (per thread) naming the function, the argument or the CUDA error. Nothing aborts.
 * All pointers other than the host buffers of the memcpy functions are device pointers. `stream` is a
 * cudaStream_t (NULL: the default stream); calls are asynchronous on it unless said otherwise.
 */
#ifndef MIXDQ_CUDA_H
#define MIXDQ_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MIXDQ_CUDA_API_VERSION 1

#define MIXDQ_CUDA_OK 0
#define MIXDQ_CUDA_ERR_INVALID_ARGUMENT 1
#define MIXDQ_CUDA_ERR_UNSUPPORTED 2
#define MIXDQ_CUDA_ERR_CUDA 3
#define MIXDQ_CUDA_ERR_NO_DEVICE 4

/* Element types of activations, residuals and outputs. F32 gives the CPU int8 backend's numbers bit
 * for bit (same codes, same fp32 epilogue; what the Swift CUDABackend passes); F16/BF16 round the
 * fp32 epilogue once at the store. */
#define MIXDQ_CUDA_F16 0
#define MIXDQ_CUDA_BF16 1
#define MIXDQ_CUDA_F32 2

#if defined(__GNUC__)
#define MIXDQ_CUDA_API __attribute__((visibility("default")))
#else
#define MIXDQ_CUDA_API
#endif

/* ---- library, device, memory ---------------------------------------------------------------- */
MIXDQ_CUDA_API int32_t mixdq_cuda_api_version(void);
/* The message of this thread's last failed call ("" if none). Valid until the thread's next call. */
MIXDQ_CUDA_API const char *mixdq_cuda_last_error(void);
/* cudaGetDeviceCount; on failure the message carries the CUDA error name and text
 * (cudaErrorNoDevice, cudaErrorInsufficientDriver, ...). */
MIXDQ_CUDA_API int32_t mixdq_cuda_device_count(int32_t *count);
/* Selects the device and checks it can run the kernels (compute capability 8.0 or newer);
 * writes "name, sm_XY, N MiB" into description (NUL-terminated, truncated to capacity). */
MIXDQ_CUDA_API int32_t mixdq_cuda_use_device(int32_t device, char *description, size_t capacity);
MIXDQ_CUDA_API int32_t mixdq_cuda_malloc(void **pointer, size_t bytes);
MIXDQ_CUDA_API int32_t mixdq_cuda_free(void *pointer);
/* Synchronous copies (they wait for `stream` first). */
MIXDQ_CUDA_API int32_t mixdq_cuda_copy_to_device(void *device_dst, const void *host_src, size_t bytes, void *stream);
MIXDQ_CUDA_API int32_t mixdq_cuda_copy_to_host(void *host_dst, const void *device_src, size_t bytes, void *stream);
MIXDQ_CUDA_API int32_t mixdq_cuda_synchronize(void *stream);

/* ---- element-wise ---------------------------------------------------------------------------- */
/* fp32 -> fp16/bf16 (round to nearest even) and back. */
MIXDQ_CUDA_API int32_t mixdq_cuda_from_f32(int32_t dtype, const float *src, void *dst, size_t count, void *stream);
MIXDQ_CUDA_API int32_t mixdq_cuda_to_f32(int32_t dtype, const void *src, float *dst, size_t count, void *stream);

/* Activation quantization of an NHWC tensor x [batch, height, width, channels] whose pixels are
 * x_pixel_stride elements apart (a channel slice of a wider tensor: pass x + first channel and the
 * full width). Writes codes [batch, height + 2·pad, width + 2·pad, channels] with the border set to z.
 * signed_codes = 0: u8 codes q; 1: s8 codes q − 128 (what the product kernels read).
 * A Linear's input [rows, channels] is batch = rows, height = width = 1, pad = 0. */
MIXDQ_CUDA_API int32_t mixdq_cuda_quantize(int32_t dtype, const void *x, int64_t batch, int64_t height, int64_t width,
                                           int64_t channels, int64_t x_pixel_stride, int32_t pad, float delta,
                                           float zero_point, int32_t bits, int32_t signed_codes, void *codes, void *stream);

/* ---- integer products (exact s32; for tests and custom epilogues) -------------------------- */
/* acc[m, n] = Σ_k a[m, k]·w[n, k]; a [m, k] s8, w [n, k] s8 (a Linear's [out, in]), acc [m, n] s32.
 * Tensor cores (CUTLASS, sm_80 kernels) when k % 16 == 0 and n % 4 == 0, else a plain kernel. */
MIXDQ_CUDA_API int32_t mixdq_cuda_gemm_s8s8s32(const int8_t *a, const int8_t *w, int32_t *acc, int64_t m, int64_t n,
                                               int64_t k, void *stream);
/* Implicit-GEMM convolution without padding of an already padded s8 NHWC input
 * [batch, in_height, in_width, channels] (in_height = height + 2·pad): weights [out][ksize][ksize][channels],
 * acc [batch, out_height, out_width, out] s32 with out_height = (in_height − ksize) / stride + 1.
 * Tensor cores when channels % 16 == 0 and out % 4 == 0, else a plain kernel. */
MIXDQ_CUDA_API int32_t mixdq_cuda_conv_s8s8s32(const int8_t *x, const int8_t *w, int32_t *acc, int64_t batch,
                                               int64_t in_height, int64_t in_width, int64_t channels, int64_t out,
                                               int32_t ksize, int32_t stride, void *stream);

/* ---- W8A8 layers: quantize, integer product, epilogue ---------------------------------------- */
/* One quantized input part: its weight codes and parameters (device pointers for the arrays). */
typedef struct mixdq_cuda_qpart {
    const int8_t *weight;  /* [out][ksize][ksize][channels] s8 (a Linear: [out][in]) */
    const int32_t *wsum;   /* [out] sum of the weight codes of each output channel */
    const float *wscale;   /* [out] Δw */
    int64_t channels;      /* input channels of this part */
    int64_t first_channel; /* where the part starts in the input's channels */
    float delta;           /* Δx */
    float zero_point;      /* z, an integer in 0 ... 2^bits − 1 */
    int32_t bits;          /* activation bits, 2 ... 8 */
} mixdq_cuda_qpart;

/* Device workspace a layer call needs (bytes); pass at least this much. */
MIXDQ_CUDA_API size_t mixdq_cuda_linear_workspace(int64_t rows, int64_t in_features, int64_t out_features);
MIXDQ_CUDA_API size_t mixdq_cuda_conv2d_workspace(int64_t batch, int64_t height, int64_t width, int64_t in_channels,
                                                  int64_t out_channels, int32_t ksize, int32_t stride, int32_t pad);

/* y [rows, out] = W8A8 Linear of x [rows, in] (dtype), optional bias [out] (fp32) and residual
 * [rows, out] (dtype, added last; may be NULL). With the environment variable MIXDQ_CUDA_FUSED=1,
 * fp16 output, no residual, in % 16 == 0 and out % 8 == 0, the epilogue runs inside the CUTLASS GEMM
 * (same operations; opt-in until checked on a GPU), else as a kernel after it. */
MIXDQ_CUDA_API int32_t mixdq_cuda_w8a8_linear(int32_t dtype, const void *x, int64_t rows, int64_t in_features,
                                              int64_t out_features, const mixdq_cuda_qpart *part, const float *bias,
                                              const void *residual, void *y, void *workspace, size_t workspace_bytes,
                                              void *stream);

/* y [batch, oh, ow, out] = W8A8 Conv2d of x [batch, height, width, in_channels] (dtype, NHWC) over
 * nparts (1, or 2 for a split shortcut) input parts that cover the input channels in order. */
MIXDQ_CUDA_API int32_t mixdq_cuda_w8a8_conv2d(int32_t dtype, const void *x, int64_t batch, int64_t height, int64_t width,
                                              int64_t in_channels, int64_t out_channels, int32_t ksize, int32_t stride,
                                              int32_t pad, const mixdq_cuda_qpart *parts, int32_t nparts, const float *bias,
                                              const void *residual, void *y, void *workspace, size_t workspace_bytes,
                                              void *stream);

/* BOS-aware K/V: y [batch, tokens, out] (dtype) gets rows [batch, out] (fp32) at token 0 of each sample. */
MIXDQ_CUDA_API int32_t mixdq_cuda_bos_rows(int32_t dtype, void *y, int64_t batch, int64_t tokens, int64_t out,
                                           const float *rows, void *stream);

#ifdef __cplusplus
}
#endif
#endif
