// int8_ref.c: scalar references of the INT8 (W8A8) kernels: activation quantization to u8 codes,
// the s32 -> fp32 dequantization epilogue, the 7-bit split used on CPUs without VNNI, and the
// integer GEMM / convolution every oneDNN INT8 path is held to. Integer sums wrap modulo 2^32
// (computed in uint32, so the C is defined and equals what int32 SIMD lanes do).
#pragma STDC FP_CONTRACT OFF
#include "internal.h"
#include <math.h>

void mdq_quantize_u8_ref(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax) {
    for (size_t i = 0; i < n; i++) {
        // Same operations, in the same order, as fq1 in ref.c, so (q - z) * delta == fake quant.
        float v = nearbyintf(x[i] / delta);
        v = v + zero_point;
        v = (v > 0.0f) ? v : 0.0f;      // maxps(v, 0): NaN -> 0
        v = (v < qmax) ? v : qmax;      // minps(v, qmax)
        q[i] = (uint8_t)v;
    }
}

void mdq_dequant_s32_rows_ref(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                              const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual) {
    // acc and y may be the same buffer (in place): both are accessed through memcpy, which the
    // compiler must assume aliases, and each element is read before it is written.
    const unsigned char *in = (const unsigned char *)acc;
    unsigned char *out = (unsigned char *)y;
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < n; c++) {
            size_t at = (r * n + c) * 4;
            int32_t a;
            memcpy(&a, in + at, 4);
            int32_t centred = (int32_t)((uint32_t)a - (uint32_t)zero_point * (uint32_t)wsum[c]);
            float v = (float)centred * scale[c];
            if (bias) v = v + bias[c];
            if (residual) v = v + residual[r * n + c];  // after the bias, as forward-then-add would
            memcpy(out + at, &v, 4);
        }
    }
}

void mdq_split_u8_hi_lo_ref(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n) {
    for (size_t i = 0; i < n; i++) {
        hi[i] = (uint8_t)(q[i] >> 7);
        lo[i] = (uint8_t)(q[i] & 127);
    }
}

void mdq_combine_hi_lo_s32_ref(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] = (int32_t)(((uint32_t)hi[i] << 7) + (uint32_t)lo[i]);
}

void mdq_gemm_u8s8s32_ref(size_t m, size_t n, size_t k, const uint8_t *a, const int8_t *w, int32_t *c) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            uint32_t s = 0;
            for (size_t p = 0; p < k; p++) s += (uint32_t)((int32_t)a[i * k + p] * (int32_t)w[j * k + p]);
            c[i * n + j] = (int32_t)s;
        }
}

void mdq_conv_u8s8s32_ref(const uint8_t *x, size_t batch, size_t h, size_t w, size_t c, const int8_t *weight,
                          size_t o, size_t kernel, size_t stride, size_t padding, uint8_t pad_code, int32_t *y) {
    if (stride == 0 || h + 2 * padding < kernel || w + 2 * padding < kernel) return;
    size_t oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1;
    for (size_t b = 0; b < batch; b++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t oc = 0; oc < o; oc++) {
                    uint32_t s = 0;
                    for (size_t ky = 0; ky < kernel; ky++)
                        for (size_t kx = 0; kx < kernel; kx++) {
                            // Input coordinates shifted by the padding; outside the image the tap reads pad_code.
                            size_t iy = oy * stride + ky, ix = ox * stride + kx;
                            int inside = iy >= padding && iy < h + padding && ix >= padding && ix < w + padding;
                            const uint8_t *px = inside ? x + ((b * h + (iy - padding)) * w + (ix - padding)) * c : NULL;
                            for (size_t ic = 0; ic < c; ic++) {
                                int32_t a = px ? px[ic] : pad_code;
                                int32_t wv = weight[((oc * c + ic) * kernel + ky) * kernel + kx];
                                s += (uint32_t)(a * wv);
                            }
                        }
                    y[((b * oh + oy) * ow + ox) * o + oc] = (int32_t)s;
                }
}
