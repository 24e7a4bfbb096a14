// ref.c: scalar reference kernels. They are the SCALAR variant of every dispatcher and the yardstick
// the tests hold the SIMD variants to. Transcendentals are evaluated in double and rounded once;
// everything the SIMD variants compute exactly (arithmetic, quantization, conversion, normalisation
// statistics and affine) is written here in the same operation order, so those results agree bit for bit.
#pragma STDC FP_CONTRACT OFF
#include "internal.h"
#include <math.h>
#include <stdlib.h>

// ---- activations --------------------------------------------------------------------------------
float mdq__silu1_ref(float x) {
    double xd = x;
    return (float)(xd / (1.0 + exp(-xd)));
}

static inline float gelu1_ref(float x) {
    double xd = x;
    return (float)(0.5 * xd * erfc(-xd * 0.70710678118654752440));
}

void mdq_silu_ref(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = mdq__silu1_ref(x[i]);
}

void mdq_gelu_erf_ref(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = gelu1_ref(x[i]);
}

void mdq_quick_gelu_ref(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float a = 1.702f * x[i];  // float product, as torch computes `1.702 * x` on a float32 tensor
        double xd = x[i];
        y[i] = (float)(xd / (1.0 + exp(-(double)a)));
    }
}

void mdq_geglu_ref(const float *proj, float *out, size_t rows, size_t inner) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = proj + r * 2 * inner, *g = a + inner;
        float *o = out + r * inner;
        for (size_t i = 0; i < inner; i++) {
            float gi = gelu1_ref(g[i]);
            o[i] = a[i] * gi;
        }
    }
}

// ---- softmax ------------------------------------------------------------------------------------
void mdq_softmax_rows_ref(float *x, size_t rows, size_t cols, float scale) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * cols;
        if (cols == 0) continue;
        float m = -INFINITY;
        for (size_t i = 0; i < cols; i++) {
            float v = p[i] * scale;
            if (v > m) m = v;
        }
        double s = 0;
        for (size_t i = 0; i < cols; i++) {
            float v = p[i] * scale;
            s += exp((double)v - (double)m);
        }
        for (size_t i = 0; i < cols; i++) {
            float v = p[i] * scale;
            p[i] = (float)(exp((double)v - (double)m) / s);
        }
    }
}

// ---- normalisation ------------------------------------------------------------------------------
void mdq__gn_means(const double *chsum, double *mean_ch, size_t c, size_t groups, size_t hw) {
    size_t cpg = c / groups;
    double count = (double)cpg * (double)hw;
    for (size_t g = 0; g < groups; g++) {
        double s = 0;
        for (size_t k = 0; k < cpg; k++) s += chsum[g * cpg + k];
        double mean = s / count;
        for (size_t k = 0; k < cpg; k++) mean_ch[g * cpg + k] = mean;
    }
}

void mdq__gn_coeffs(const double *chsq, const double *mean_ch, size_t c, size_t groups, size_t hw,
                    float eps, const float *gamma, const float *beta, float *a, float *b) {
    size_t cpg = c / groups;
    double count = (double)cpg * (double)hw;
    for (size_t g = 0; g < groups; g++) {
        double s = 0;
        for (size_t k = 0; k < cpg; k++) s += chsq[g * cpg + k];
        double var = s / count;
        double rstd = 1.0 / sqrt(var + (double)eps);
        for (size_t k = 0; k < cpg; k++) {
            size_t ch = g * cpg + k;
            double gm = gamma ? (double)gamma[ch] : 1.0;
            double bt = beta ? (double)beta[ch] : 0.0;
            double ad = rstd * gm;
            a[ch] = (float)ad;
            b[ch] = (float)(bt - mean_ch[ch] * ad);
        }
    }
}

void mdq_group_norm_nhwc_ref(const float *x, float *y, size_t n, size_t hw, size_t c, size_t groups,
                             float eps, const float *gamma, const float *beta, int silu) {
    if (n == 0 || hw == 0 || c == 0 || groups == 0) return;
    double *acc = malloc(sizeof(double) * 2 * c);
    float *ab = malloc(sizeof(float) * 2 * c);
    if (!acc || !ab) abort();
    double *mean_ch = acc + c;
    float *a = ab, *b = ab + c;
    for (size_t bi = 0; bi < n; bi++) {
        const float *xb = x + bi * hw * c;
        float *yb = y + bi * hw * c;
        for (size_t ch = 0; ch < c; ch++) acc[ch] = 0;
        for (size_t p = 0; p < hw; p++)
            for (size_t ch = 0; ch < c; ch++) acc[ch] += (double)xb[p * c + ch];
        mdq__gn_means(acc, mean_ch, c, groups, hw);
        for (size_t ch = 0; ch < c; ch++) acc[ch] = 0;
        for (size_t p = 0; p < hw; p++)
            for (size_t ch = 0; ch < c; ch++) {
                double d = (double)xb[p * c + ch] - mean_ch[ch];
                double d2 = d * d;
                acc[ch] += d2;
            }
        mdq__gn_coeffs(acc, mean_ch, c, groups, hw, eps, gamma, beta, a, b);
        for (size_t p = 0; p < hw; p++)
            for (size_t ch = 0; ch < c; ch++) {
                float v = fmaf(xb[p * c + ch], a[ch], b[ch]);
                yb[p * c + ch] = silu ? mdq__silu1_ref(v) : v;
            }
    }
    free(acc);
    free(ab);
}

void mdq_layer_norm_ref(const float *x, float *y, size_t rows, size_t c, float eps,
                        const float *gamma, const float *beta) {
    if (c == 0) return;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = 0; i < c; i++) part[i & 7] += (double)xr[i];
        double mean = mdq__sum8(part) / (double)c;
        for (int k = 0; k < 8; k++) part[k] = 0;
        for (size_t i = 0; i < c; i++) {
            double d = (double)xr[i] - mean;
            double d2 = d * d;
            part[i & 7] += d2;
        }
        double var = mdq__sum8(part) / (double)c;
        double rstd = 1.0 / sqrt(var + (double)eps);
        float rs = (float)rstd, bs = (float)(-mean * rstd);
        for (size_t i = 0; i < c; i++) {
            float t = fmaf(xr[i], rs, bs);
            float gm = gamma ? gamma[i] : 1.0f, bt = beta ? beta[i] : 0.0f;
            yr[i] = fmaf(t, gm, bt);
        }
    }
}

// ---- arithmetic -----------------------------------------------------------------------------------
void mdq_add_ref(const float *a, const float *b, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void mdq_add_bias_rows_ref(float *y, const float *bias, size_t rows, size_t c) {
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < c; i++) y[r * c + i] += bias[i];
}

void mdq_scale_ref(const float *x, float *y, size_t n, float s) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * s;
}

// ---- conversion -----------------------------------------------------------------------------------
void mdq_f16_to_f32_ref(const uint16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = x[i];
        uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
        uint32_t u;
        if (exp == 0x1f) {
            // inf; NaN keeps its payload and comes out quiet (as VCVTPH2PS and torch's conversion do)
            u = sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0u);
        } else if (exp != 0) {
            u = sign | ((exp + 112) << 23) | (man << 13);
        } else if (man == 0) {
            u = sign;
        } else {  // subnormal half: normalise
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            man &= 0x3ff;
            u = sign | ((uint32_t)(112 - e) << 23) | (man << 13);
        }
        y[i] = mdq__u2f(u);
    }
}

void mdq_bf16_to_f32_ref(const uint16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = mdq__u2f((uint32_t)x[i] << 16);
}

void mdq_f32_to_bf16_ref(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = mdq__f2u(x[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) {
            y[i] = 0x7fc0;  // canonical quiet NaN, as c10::BFloat16 does
        } else {
            y[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
}

// ---- quantization ---------------------------------------------------------------------------------
static inline float fq1(float x, float delta, float zp, float qmin, float qmax) {
    float q = x / delta;
    q = nearbyintf(q);
    q = q + zp;
    q = (q > qmin) ? q : qmin;  // same operand semantics as maxps(q, qmin)
    q = (q < qmax) ? q : qmax;  // and minps(q, qmax)
    float d = q - zp;
    return d * delta;
}

void mdq_fake_quant_tensor_ref(const float *x, float *y, size_t n, float delta, float zero_point,
                               float qmin, float qmax) {
    for (size_t i = 0; i < n; i++) y[i] = fq1(x[i], delta, zero_point, qmin, qmax);
}

void mdq_fake_quant_rows_ref(const float *w, float *y, size_t rows, size_t cols, const float *delta,
                             float qmin, float qmax) {
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < cols; i++)
            y[r * cols + i] = fq1(w[r * cols + i], delta[r], 0.0f, qmin, qmax);
}

void mdq_minmax_ref(const float *x, size_t n, float *min_out, float *max_out) {
    if (n == 0) { *min_out = 0; *max_out = 0; return; }
    float mn = x[0], mx = x[0];
    for (size_t i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    *min_out = mn;
    *max_out = mx;
}

void mdq_absmax_rows_ref(const float *x, size_t rows, size_t cols, float *absmax_out) {
    for (size_t r = 0; r < rows; r++) {
        float m = 0;
        for (size_t i = 0; i < cols; i++) {
            float a = fabsf(x[r * cols + i]);
            if (a > m) m = a;
        }
        absmax_out[r] = m;
    }
}

size_t mdq_count_nonfinite_ref(const float *x, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += (mdq__f2u(x[i]) & 0x7f800000u) == 0x7f800000u;
    return count;
}
