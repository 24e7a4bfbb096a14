// CPU references of the integer math in include/mixdq_cuda.h, written from the formulas (u8 codes with
// zero point z, border code z, unshifted), not from the kernels: the GPU's shifted s8 arithmetic
// must land on the same integers.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <vector>

// q = min(max(rint(x / Δ) + z, 0), qmax): the CPU path's mdq_quantize_u8_ref, operation for operation.
static inline uint8_t ref_quantize(float x, float delta, float zp, float qmax) {
    volatile float v = nearbyintf(x / delta);  // volatile: no contraction or reassociation across steps
    v = v + zp;
    float w = v;
    w = (w > 0.0f) ? w : 0.0f;
    w = (w < qmax) ? w : qmax;
    return (uint8_t)w;
}

// u8 codes of x [b, h, w, c] (pixel stride ldx) padded by pad with the code z.
static inline std::vector<uint8_t> ref_quantize_padded(const std::vector<float> &x, int64_t b, int64_t h, int64_t w, int64_t c,
                                                       int64_t ldx, int pad, float delta, float zp, int bits) {
    const int64_t ph = h + 2 * pad, pw = w + 2 * pad;
    const float qmax = (float)((1 << bits) - 1);
    std::vector<uint8_t> q((size_t)(b * ph * pw * c));
    for (int64_t n = 0; n < b; n++)
        for (int64_t y = 0; y < ph; y++)
            for (int64_t xx = 0; xx < pw; xx++)
                for (int64_t ch = 0; ch < c; ch++) {
                    const int64_t sy = y - pad, sx = xx - pad;
                    const bool in = sy >= 0 && sy < h && sx >= 0 && sx < w;
                    q[(size_t)(((n * ph + y) * pw + xx) * c + ch)] =
                        in ? ref_quantize(x[(size_t)(((n * h + sy) * w + sx) * ldx + ch)], delta, zp, qmax) : (uint8_t)zp;
                }
    return q;
}

// acc of the u8 product at one output (b, oy, ox, o) of a convolution over padded codes q
// [b, ph, pw, c] with weights [out][k][k][c]; a GEMM is ph = rows, pw = 1, k = 1.
static inline int32_t ref_acc_u8(const uint8_t *q, const int8_t *w, int64_t ph, int64_t pw, int64_t c, int k, int stride,
                                 int64_t b, int64_t oy, int64_t ox, int64_t o) {
    int64_t s = 0;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            const uint8_t *qp = q + ((b * ph + oy * stride + ky) * pw + ox * stride + kx) * c;
            const int8_t *wp = w + ((o * k + ky) * k + kx) * c;
            for (int64_t ch = 0; ch < c; ch++) s += (int64_t)qp[ch] * wp[ch];
        }
    return (int32_t)s;
}

static inline int32_t ref_wsum(const int8_t *w, int64_t row_length, int64_t o) {
    int32_t s = 0;
    for (int64_t j = 0; j < row_length; j++) s += w[o * row_length + j];
    return s;
}

// The CPU epilogue (mdq_dequant_s32_rows_ref), u8 domain: (float)(acc − z·wsum)·(Δx·Δw) in fp32.
static inline float ref_dequant(int32_t acc_u8, int32_t z, int32_t wsum, float delta, float wscale) {
    const int32_t centred = (int32_t)((uint32_t)acc_u8 - (uint32_t)z * (uint32_t)wsum);
    volatile float scale = delta * wscale;
    volatile float v = (float)centred * scale;
    return v;
}

static inline float ref_add(float a, float b) {
    volatile float v = a + b;
    return v;
}
