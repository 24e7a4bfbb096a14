// Function types of libmixdq_cuda.so (kernels/include/mixdq_cuda.h), for a loader that dlopen()s it:
// nothing here links against CUDA, so the package builds and runs on machines without it.
// Keep in step with kernels/include/mixdq_cuda.h (CUDABackendTests compares the two and, when the
// library is built, dlsym()s every name listed in mixdq_cuda_symbol_name).
#ifndef CMIXDQCUDA_SHIM_H
#define CMIXDQCUDA_SHIM_H

#include <stddef.h>
#include <stdint.h>

#define MIXDQ_CUDA_SHIM_API_VERSION 1
// Element types (dtype arguments), as in mixdq_cuda.h.
#define MIXDQ_CUDA_F16 0
#define MIXDQ_CUDA_BF16 1
#define MIXDQ_CUDA_F32 2

// Same layout as mixdq_cuda_qpart in kernels/include/mixdq_cuda.h.
typedef struct mixdq_cuda_qpart {
    const int8_t *weight;
    const int32_t *wsum;
    const float *wscale;
    int64_t channels;
    int64_t first_channel;
    float delta;
    float zero_point;
    int32_t bits;
} mixdq_cuda_qpart;

typedef int32_t (*mixdq_cuda_api_version_fn)(void);
typedef const char *(*mixdq_cuda_last_error_fn)(void);
typedef int32_t (*mixdq_cuda_device_count_fn)(int32_t *count);
typedef int32_t (*mixdq_cuda_use_device_fn)(int32_t device, char *description, size_t capacity);
typedef int32_t (*mixdq_cuda_malloc_fn)(void **pointer, size_t bytes);
typedef int32_t (*mixdq_cuda_free_fn)(void *pointer);
typedef int32_t (*mixdq_cuda_copy_to_device_fn)(void *device_dst, const void *host_src, size_t bytes, void *stream);
typedef int32_t (*mixdq_cuda_copy_to_host_fn)(void *host_dst, const void *device_src, size_t bytes, void *stream);
typedef int32_t (*mixdq_cuda_synchronize_fn)(void *stream);
typedef int32_t (*mixdq_cuda_from_f32_fn)(int32_t dtype, const float *src, void *dst, size_t count, void *stream);
typedef int32_t (*mixdq_cuda_to_f32_fn)(int32_t dtype, const void *src, float *dst, size_t count, void *stream);
typedef int32_t (*mixdq_cuda_quantize_fn)(int32_t dtype, const void *x, int64_t batch, int64_t height, int64_t width,
                                          int64_t channels, int64_t x_pixel_stride, int32_t pad, float delta,
                                          float zero_point, int32_t bits, int32_t signed_codes, void *codes, void *stream);
typedef int32_t (*mixdq_cuda_gemm_s8s8s32_fn)(const int8_t *a, const int8_t *w, int32_t *acc, int64_t m, int64_t n,
                                              int64_t k, void *stream);
typedef int32_t (*mixdq_cuda_conv_s8s8s32_fn)(const int8_t *x, const int8_t *w, int32_t *acc, int64_t batch,
                                              int64_t in_height, int64_t in_width, int64_t channels, int64_t out,
                                              int32_t ksize, int32_t stride, void *stream);
typedef size_t (*mixdq_cuda_linear_workspace_fn)(int64_t rows, int64_t in_features, int64_t out_features);
typedef size_t (*mixdq_cuda_conv2d_workspace_fn)(int64_t batch, int64_t height, int64_t width, int64_t in_channels,
                                                 int64_t out_channels, int32_t ksize, int32_t stride, int32_t pad);
typedef int32_t (*mixdq_cuda_w8a8_linear_fn)(int32_t dtype, const void *x, int64_t rows, int64_t in_features,
                                             int64_t out_features, const mixdq_cuda_qpart *part, const float *bias,
                                             const void *residual, void *y, void *workspace, size_t workspace_bytes,
                                             void *stream);
typedef int32_t (*mixdq_cuda_w8a8_conv2d_fn)(int32_t dtype, const void *x, int64_t batch, int64_t height, int64_t width,
                                             int64_t in_channels, int64_t out_channels, int32_t ksize, int32_t stride,
                                             int32_t pad, const mixdq_cuda_qpart *parts, int32_t nparts, const float *bias,
                                             const void *residual, void *y, void *workspace, size_t workspace_bytes,
                                             void *stream);
typedef int32_t (*mixdq_cuda_bos_rows_fn)(int32_t dtype, void *y, int64_t batch, int64_t tokens, int64_t out,
                                          const float *rows, void *stream);

// Every exported function, in header order; NULL past the end.
static inline const char *mixdq_cuda_symbol_name(int i) {
    static const char *const names[] = {
        "mixdq_cuda_api_version", "mixdq_cuda_last_error", "mixdq_cuda_device_count", "mixdq_cuda_use_device",
        "mixdq_cuda_malloc", "mixdq_cuda_free", "mixdq_cuda_copy_to_device", "mixdq_cuda_copy_to_host",
        "mixdq_cuda_synchronize", "mixdq_cuda_from_f32", "mixdq_cuda_to_f32", "mixdq_cuda_quantize",
        "mixdq_cuda_gemm_s8s8s32", "mixdq_cuda_conv_s8s8s32", "mixdq_cuda_linear_workspace",
        "mixdq_cuda_conv2d_workspace", "mixdq_cuda_w8a8_linear", "mixdq_cuda_w8a8_conv2d", "mixdq_cuda_bos_rows",
    };
    return (i >= 0 && i < (int)(sizeof(names) / sizeof(names[0]))) ? names[i] : NULL;
}

#endif
