// A CPU stand-in for libmixdq_cuda.so (host code only, no CUDA runtime): the same C API computed
// the way the GPU library computes it (s8 codes q − 128 in a padded buffer whose border is z − 128,
// s8×s8 products, the (z − 128)·wsum correction, the fp32 epilogue), with the same argument checks.
// Linked into build/mixdq_cuda_test_cpu_mock so that CI, which has no GPU, runs the test program
// (its references, its cases, the API contract and the shifted-code algebra) before a GPU does.
// It does not test the CUDA kernels: only a GPU run of build/mixdq_cuda_test does.
#include "../include/mixdq_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {

thread_local char g_error[1024];

int32_t fail(int32_t status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return status;
}

bool valid_dtype(int32_t d) { return d == MIXDQ_CUDA_F16 || d == MIXDQ_CUDA_BF16 || d == MIXDQ_CUDA_F32; }
size_t dtype_size(int32_t d) { return d == MIXDQ_CUDA_F32 ? 4 : 2; }

float load(int32_t d, const void *p, int64_t i) {
    if (d == MIXDQ_CUDA_F16) return __half2float(((const __half *)p)[i]);
    if (d == MIXDQ_CUDA_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}

void store(int32_t d, void *p, int64_t i, float v) {
    if (d == MIXDQ_CUDA_F16) ((__half *)p)[i] = __float2half_rn(v);
    else if (d == MIXDQ_CUDA_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}

#include "../src/host_shared.h"

void quantize(int32_t dtype, const void *x, int64_t b, int64_t h, int64_t w, int64_t c, int64_t ldx, int pad, float delta, float zp,
              int bits, int shift, uint8_t *codes) {
    const int64_t ph = h + 2 * pad, pw = w + 2 * pad;
    const float qmax = (float)((1 << bits) - 1);
    for (int64_t i = 0; i < b * ph * pw * c; i++) {
        int64_t ch = i % c, p = i / c;
        int64_t xx = p % pw - pad;
        p /= pw;
        int64_t yy = p % ph - pad, n = p / ph;
        volatile float v;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) {
            v = zp;
        } else {
            v = rintf(load(dtype, x, ((n * h + yy) * w + xx) * ldx + ch) / delta);
            v = v + zp;
            float u = v;
            u = (u > 0.0f) ? u : 0.0f;
            v = (u < qmax) ? u : qmax;
        }
        codes[i] = (uint8_t)((int)v - shift);
    }
}

void product(const int8_t *x, const int8_t *w, int32_t *acc, int64_t b, int64_t in_h, int64_t in_w, int64_t c, int64_t out, int k,
             int stride) {
    const int64_t oh = (in_h - k) / stride + 1, ow = (in_w - k) / stride + 1;
    for (int64_t n = 0; n < b; n++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xx = 0; xx < ow; xx++)
                for (int64_t o = 0; o < out; o++) {
                    int32_t s = 0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int8_t *xp = x + ((n * in_h + y * stride + ky) * in_w + xx * stride + kx) * c;
                            const int8_t *wp = w + ((o * k + ky) * k + kx) * c;
                            for (int64_t ch = 0; ch < c; ch++) s += (int32_t)xp[ch] * wp[ch];
                        }
                    acc[((n * oh + y) * ow + xx) * out + o] = s;
                }
}

struct Part {
    const int32_t *acc, *wsum;
    const float *wscale;
    int32_t z8;
    float delta;
};

void epilogue(int32_t dtype, Part p0, Part p1, int two, const float *bias, const void *residual, void *y, int64_t rows, int64_t n) {
    for (int64_t i = 0; i < rows * n; i++) {
        const int64_t c = i % n;
        int32_t centred = (int32_t)((uint32_t)p0.acc[i] - (uint32_t)p0.z8 * (uint32_t)p0.wsum[c]);
        volatile float s0 = p0.delta * p0.wscale[c];
        volatile float v = (float)centred * s0;
        if (two) {
            int32_t c1 = (int32_t)((uint32_t)p1.acc[i] - (uint32_t)p1.z8 * (uint32_t)p1.wsum[c]);
            volatile float s1 = p1.delta * p1.wscale[c];
            volatile float v1 = (float)c1 * s1;
            if (bias) v1 = v1 + bias[c];
            v = v + v1;
        } else if (bias) {
            v = v + bias[c];
        }
        if (residual) v = v + load(dtype, residual, i);
        store(dtype, y, i, v);
    }
}


}  // namespace

extern "C" {

int32_t mixdq_cuda_api_version(void) { return MIXDQ_CUDA_API_VERSION; }
const char *mixdq_cuda_last_error(void) { return g_error; }
int32_t mixdq_cuda_device_count(int32_t *count) {
    if (!count) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_device_count: count is NULL");
    *count = 1;
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_use_device(int32_t device, char *description, size_t capacity) {
    if (device != 0) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "cudaGetDeviceProperties: no device %d", device);
    if (description && capacity) snprintf(description, capacity, "CPU mock of libmixdq_cuda (tests the test, not the kernels)");
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_malloc(void **pointer, size_t bytes) {
    if (!pointer) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_malloc: pointer is NULL");
    *pointer = bytes > ((size_t)1 << 40) ? nullptr : aligned_alloc(256, align_up(bytes ? bytes : 1));
    if (!*pointer) return fail(MIXDQ_CUDA_ERR_CUDA, "cudaMalloc(%zu bytes): cudaErrorMemoryAllocation (mock)", bytes);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_free(void *pointer) {
    free(pointer);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_copy_to_device(void *dst, const void *src, size_t bytes, void *) {
    if (bytes && (!dst || !src)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_copy_to_device: NULL pointer");
    if (bytes) memcpy(dst, src, bytes);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_copy_to_host(void *dst, const void *src, size_t bytes, void *) {
    if (bytes && (!dst || !src)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_copy_to_host: NULL pointer");
    if (bytes) memcpy(dst, src, bytes);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_synchronize(void *) { return MIXDQ_CUDA_OK; }
int32_t mixdq_cuda_from_f32(int32_t dtype, const float *src, void *dst, size_t count, void *) {
    if (!valid_dtype(dtype)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_from_f32: unknown dtype %d", dtype);
    for (size_t i = 0; i < count; i++) store(dtype, dst, (int64_t)i, src[i]);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_to_f32(int32_t dtype, const void *src, float *dst, size_t count, void *) {
    if (!valid_dtype(dtype)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_to_f32: unknown dtype %d", dtype);
    for (size_t i = 0; i < count; i++) dst[i] = load(dtype, src, (int64_t)i);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_quantize(int32_t dtype, const void *x, int64_t batch, int64_t height, int64_t width, int64_t channels,
                            int64_t x_pixel_stride, int32_t pad, float delta, float zero_point, int32_t bits, int32_t signed_codes,
                            void *codes, void *) {
    const char *fn = "mixdq_cuda_quantize";
    if (!valid_dtype(dtype)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", fn, dtype);
    if (batch < 0 || height < 0 || width < 0 || channels < 1 || pad < 0 || x_pixel_stride < channels)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: bad shape", fn);
    mixdq_cuda_qpart p = {(const int8_t *)1, (const int32_t *)1, (const float *)1, channels, 0, delta, zero_point, bits};
    if (int32_t s = check_part(fn, 0, p)) return s;
    quantize(dtype, x, batch, height, width, channels, x_pixel_stride, pad, delta, zero_point, bits, signed_codes ? 128 : 0,
             (uint8_t *)codes);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_gemm_s8s8s32(const int8_t *a, const int8_t *w, int32_t *acc, int64_t m, int64_t n, int64_t k, void *) {
    if (m < 0 || n < 1 || k < 1) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_gemm_s8s8s32: m=%lld", (long long)m);
    product(a, w, acc, 1, m, 1, k, n, 1, 1);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_conv_s8s8s32(const int8_t *x, const int8_t *w, int32_t *acc, int64_t batch, int64_t in_height, int64_t in_width,
                                int64_t channels, int64_t out, int32_t ksize, int32_t stride, void *) {
    if (batch < 0 || channels < 1 || out < 1 || ksize < 1 || stride < 1 || in_height < ksize || in_width < ksize)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_conv_s8s8s32: input %lldx%lldx%lldx%lld, out %lld, kernel %d, stride %d",
                    (long long)batch, (long long)in_height, (long long)in_width, (long long)channels, (long long)out, ksize, stride);
    product(x, w, acc, batch, in_height, in_width, channels, out, ksize, stride);
    return MIXDQ_CUDA_OK;
}
size_t mixdq_cuda_linear_workspace(int64_t rows, int64_t in_features, int64_t out_features) {
    return linear_workspace_bytes(rows, in_features, out_features);
}

size_t mixdq_cuda_conv2d_workspace(int64_t batch, int64_t height, int64_t width, int64_t in_channels, int64_t out_channels,
                                   int32_t ksize, int32_t stride, int32_t pad) {
    return conv2d_workspace_bytes(batch, height, width, in_channels, out_channels, ksize, stride, pad);
}

int32_t mixdq_cuda_w8a8_linear(int32_t dtype, const void *x, int64_t rows, int64_t in_features, int64_t out_features,
                               const mixdq_cuda_qpart *part, const float *bias, const void *residual, void *y, void *workspace,
                               size_t workspace_bytes, void *) {
    const char *fn = "mixdq_cuda_w8a8_linear";
    if (!valid_dtype(dtype)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", fn, dtype);
    if (rows < 0 || in_features < 1 || out_features < 1 || !part) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: bad shape", fn);
    if (int32_t s = check_part(fn, 0, *part)) return s;
    if (part->channels != in_features || part->first_channel != 0)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: the part does not cover the layer", fn);
    const size_t need = mixdq_cuda_linear_workspace(rows, in_features, out_features);
    if (!workspace || workspace_bytes < need)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: workspace of %zu bytes, %zu needed", fn, workspace_bytes, need);
    int8_t *codes = (int8_t *)workspace;
    int32_t *acc = linear_accumulators(workspace, rows, in_features);
    quantize(dtype, x, rows, 1, 1, in_features, in_features, 0, part->delta, part->zero_point, part->bits, 128, (uint8_t *)codes);
    product(codes, part->weight, acc, 1, rows, 1, in_features, out_features, 1, 1);
    Part p0 = {acc, part->wsum, part->wscale, (int32_t)part->zero_point - 128, part->delta};
    epilogue(dtype, p0, p0, 0, bias, residual, y, rows, out_features);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_w8a8_conv2d(int32_t dtype, const void *x, int64_t batch, int64_t height, int64_t width, int64_t in_channels,
                               int64_t out_channels, int32_t ksize, int32_t stride, int32_t pad, const mixdq_cuda_qpart *parts,
                               int32_t nparts, const float *bias, const void *residual, void *y, void *workspace,
                               size_t workspace_bytes, void *) {
    const char *fn = "mixdq_cuda_w8a8_conv2d";
    if (!valid_dtype(dtype)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: unknown dtype %d", fn, dtype);
    const size_t need = mixdq_cuda_conv2d_workspace(batch, height, width, in_channels, out_channels, ksize, stride, pad);
    if (batch < 0 || height < 1 || width < 1 || in_channels < 1 || out_channels < 1 || need == 0)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: bad shape", fn);
    if (int32_t s = check_parts(fn, parts, nparts, in_channels)) return s;
    if (!workspace || workspace_bytes < need)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: workspace of %zu bytes, %zu needed", fn, workspace_bytes, need);
    const int64_t ph = height + 2 * pad, pw = width + 2 * pad;
    const int64_t oh = (ph - ksize) / stride + 1, ow = (pw - ksize) / stride + 1, rows = batch * oh * ow;
    const ConvWorkspace carved = conv2d_workspace(workspace, batch * ph * pw * in_channels, rows * out_channels);
    int8_t *codes = carved.codes;
    int32_t *const *acc = carved.acc;
    Part ep[2];
    for (int i = 0; i < nparts; i++) {
        const mixdq_cuda_qpart &p = parts[i];
        int8_t *pc = codes + batch * ph * pw * p.first_channel;
        const void *px = (const char *)x + p.first_channel * dtype_size(dtype);
        quantize(dtype, px, batch, height, width, p.channels, in_channels, pad, p.delta, p.zero_point, p.bits, 128, (uint8_t *)pc);
        product(pc, p.weight, acc[i], batch, ph, pw, p.channels, out_channels, ksize, stride);
        ep[i] = {acc[i], p.wsum, p.wscale, (int32_t)p.zero_point - 128, p.delta};
    }
    epilogue(dtype, ep[0], nparts == 2 ? ep[1] : ep[0], nparts == 2, bias, residual, y, rows, out_channels);
    return MIXDQ_CUDA_OK;
}
int32_t mixdq_cuda_bos_rows(int32_t dtype, void *y, int64_t batch, int64_t tokens, int64_t out, const float *rows, void *) {
    if (!valid_dtype(dtype)) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_bos_rows: unknown dtype %d", dtype);
    if (batch < 0 || tokens < 1 || out < 1) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "mixdq_cuda_bos_rows: bad shape");
    for (int64_t b = 0; b < batch; b++)
        for (int64_t c = 0; c < out; c++) store(dtype, y, b * tokens * out + c, rows[b * out + c]);
    return MIXDQ_CUDA_OK;
}

}  // extern "C"
