// simd_avx512.c: AVX-512 (F/BW/VL/DQ) variants. Defines the vector primitives the kernel template
// simd_impl.h is written in, then includes it with the `_avx512` suffix.
#if defined(__x86_64__)
#pragma STDC FP_CONTRACT OFF
#include "internal.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#define MDQ_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define SFX(name) name##_avx512
#define W 16   // floats per vector
#define DW 8   // doubles per vector (= W / 2)

typedef __m512 V;
typedef __mmask16 TM;  // tail mask
typedef __mmask16 CM;  // comparison mask
typedef __m512d VD;

static inline MDQ_T V v_set1(float a) { return _mm512_set1_ps(a); }
static inline MDQ_T V v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline MDQ_T void v_store(float *p, V v) { _mm512_storeu_ps(p, v); }
static inline MDQ_T TM v_tail(size_t rem) { return (TM)((1u << rem) - 1u); }
static inline MDQ_T V v_loadm(const float *p, TM m) { return _mm512_maskz_loadu_ps(m, p); }
static inline MDQ_T void v_storem(float *p, TM m, V v) { _mm512_mask_storeu_ps(p, m, v); }
static inline MDQ_T V v_fill(TM m, V v, V fill) { return _mm512_mask_blend_ps(m, fill, v); }
static inline MDQ_T V v_add(V a, V b) { return _mm512_add_ps(a, b); }
static inline MDQ_T V v_sub(V a, V b) { return _mm512_sub_ps(a, b); }
static inline MDQ_T V v_mul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline MDQ_T V v_div(V a, V b) { return _mm512_div_ps(a, b); }
static inline MDQ_T V v_fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
static inline MDQ_T V v_max(V a, V b) { return _mm512_max_ps(a, b); }  // (a > b) ? a : b
static inline MDQ_T V v_min(V a, V b) { return _mm512_min_ps(a, b); }  // (a < b) ? a : b
static inline MDQ_T V v_abs(V a) { return _mm512_abs_ps(a); }
static inline MDQ_T V v_round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline MDQ_T CM v_cmplt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline MDQ_T V v_sel(CM m, V if_false, V if_true) { return _mm512_mask_blend_ps(m, if_false, if_true); }
// p * 2^n for integral n in [-150, 128]; one rounding, subnormal results exact as the AVX2 path.
static inline MDQ_T V v_scale2(V p, V n) { return _mm512_scalef_ps(p, n); }
static inline MDQ_T float v_hmax(V a) { return _mm512_reduce_max_ps(a); }
static inline MDQ_T float v_hmin(V a) { return _mm512_reduce_min_ps(a); }

static inline MDQ_T VD vd_zero(void) { return _mm512_setzero_pd(); }
static inline MDQ_T VD vd_set1(double a) { return _mm512_set1_pd(a); }
static inline MDQ_T VD vd_load(const double *p) { return _mm512_loadu_pd(p); }
static inline MDQ_T void vd_store(double *p, VD v) { _mm512_storeu_pd(p, v); }
static inline MDQ_T VD vd_add(VD a, VD b) { return _mm512_add_pd(a, b); }
static inline MDQ_T VD vd_sub(VD a, VD b) { return _mm512_sub_pd(a, b); }
static inline MDQ_T VD vd_mul(VD a, VD b) { return _mm512_mul_pd(a, b); }
static inline MDQ_T VD vd_cvt(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
static inline MDQ_T void vd_acc2(VD *lo, VD *hi, V v) {
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}
static inline MDQ_T double vd_hsum(VD a) {
    double t[DW];
    _mm512_storeu_pd(t, a);
    return mdq__sum8(t);
}

#include "simd_impl.h"

// ---- conversions (ISA-specific) --------------------------------------------------------------------
MDQ_T void mdq_f16_to_f32_avx512(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    if (i < n) {
        __mmask16 m = v_tail(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    }
}

MDQ_T void mdq_bf16_to_f32_avx512(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    if (i < n) {
        __mmask16 m = v_tail(n - i);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
}

static inline MDQ_T __m512i bf16_round(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_epi32(nan, r, _mm512_set1_epi32(0x7fc0));
}

// Softmax of one row of (x * scale) rounded to bf16 into y, for attention whose probabilities are
// bf16: float sums in four accumulators and exp(fma(x, scale, -max)), without the two-sum and
// double sums of mdq_softmax_rows (their ~1e-7 are far below bf16's 2^-8). x is left holding the
// unnormalised exponentials.
MDQ_T void mdq__softmax_row_bf16_avx512(float *x, uint16_t *y, size_t cols, float scale) {
    if (cols == 0) return;
    const V vs = v_set1(scale), ninf = v_set1(-INFINITY), zero = v_set1(0.0f);
    size_t i;
    V m0 = ninf, m1 = ninf;
    for (i = 0; i + 32 <= cols; i += 32) {
        m0 = v_max(m0, v_mul(v_load(x + i), vs));
        m1 = v_max(m1, v_mul(v_load(x + i + 16), vs));
    }
    for (; i < cols; i += 16) {
        TM tm = cols - i >= 16 ? (TM)0xffff : v_tail(cols - i);
        m0 = v_max(m0, v_fill(tm, v_mul(v_loadm(x + i, tm), vs), ninf));
    }
    const V nm = v_set1(-v_hmax(v_max(m0, m1)));
    V s0 = zero, s1 = zero;
    for (i = 0; i + 32 <= cols; i += 32) {
        V e0 = v_exp(v_fma(v_load(x + i), vs, nm)), e1 = v_exp(v_fma(v_load(x + i + 16), vs, nm));
        v_store(x + i, e0); v_store(x + i + 16, e1);
        s0 = v_add(s0, e0); s1 = v_add(s1, e1);
    }
    for (; i < cols; i += 16) {
        TM tm = cols - i >= 16 ? (TM)0xffff : v_tail(cols - i);
        V e = v_fill(tm, v_exp(v_fma(v_loadm(x + i, tm), vs, nm)), zero);
        v_storem(x + i, tm, e);
        s0 = v_add(s0, e);
    }
    const V inv = v_set1(1.0f / _mm512_reduce_add_ps(v_add(s0, s1)));
    for (i = 0; i + 16 <= cols; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(bf16_round(v_mul(v_load(x + i), inv))));
    if (i < cols) {
        TM tm = v_tail(cols - i);
        _mm512_mask_cvtepi32_storeu_epi16(y + i, tm, bf16_round(v_mul(v_loadm(x + i, tm), inv)));
    }
}

// GEGLU rounded to bf16: bit for bit mdq_geglu_avx512 then mdq_f32_to_bf16_avx512, without the fp32 rows.
MDQ_T void mdq_geglu_bf16_avx512(const float *proj, uint16_t *out, size_t rows, size_t inner) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = proj + r * 2 * inner, *g = a + inner;
        uint16_t *o = out + r * inner;
        size_t i = 0;
        for (; i + 16 <= inner; i += 16)
            _mm256_storeu_si256((__m256i *)(o + i), _mm512_cvtepi32_epi16(bf16_round(v_mul(v_load(a + i), v_gelu(v_load(g + i))))));
        if (i < inner) {
            __mmask16 m = v_tail(inner - i);
            _mm512_mask_cvtepi32_storeu_epi16(o + i, m, bf16_round(v_mul(v_loadm(a + i, m), v_gelu(v_loadm(g + i, m)))));
        }
    }
}

MDQ_T void mdq_f32_to_bf16_avx512(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(bf16_round(_mm512_loadu_ps(x + i))));
    if (i < n) {
        __mmask16 m = v_tail(n - i);
        _mm512_mask_cvtepi32_storeu_epi16(y + i, m, bf16_round(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

// ---- input checks (integer compare on the exponent bits, as the reference) -------------------------------
MDQ_T size_t mdq_count_nonfinite_avx512(const float *x, size_t n) {
    const __m512i exponent = _mm512_set1_epi32(0x7f800000);
    size_t count = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512((const void *)(x + i));
        count += (size_t)__builtin_popcount((unsigned)_mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exponent), exponent));
    }
    if (i < n) {  // masked-off lanes load 0, which is finite
        __m512i u = _mm512_maskz_loadu_epi32(v_tail(n - i), x + i);
        count += (size_t)__builtin_popcount((unsigned)_mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exponent), exponent));
    }
    return count;
}
#endif
