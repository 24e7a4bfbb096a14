// simd_avx2.c: AVX2 + FMA + F16C variants. Defines the vector primitives the kernel template
// simd_impl.h is written in, then includes it with the `_avx2` suffix.
#if defined(__x86_64__)
#pragma STDC FP_CONTRACT OFF
#include "internal.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#define MDQ_T __attribute__((target("avx2,fma,f16c")))
#define SFX(name) name##_avx2
#define W 8    // floats per vector
#define DW 4   // doubles per vector (= W / 2)

typedef __m256 V;
typedef __m256i TM;  // tail mask (all-ones lanes are active)
typedef __m256 CM;   // comparison mask
typedef __m256d VD;

static const int32_t k_tail_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline MDQ_T V v_set1(float a) { return _mm256_set1_ps(a); }
static inline MDQ_T V v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline MDQ_T void v_store(float *p, V v) { _mm256_storeu_ps(p, v); }
static inline MDQ_T TM v_tail(size_t rem) { return _mm256_loadu_si256((const __m256i *)(k_tail_table + 8 - rem)); }
static inline MDQ_T V v_loadm(const float *p, TM m) { return _mm256_maskload_ps(p, m); }
static inline MDQ_T void v_storem(float *p, TM m, V v) { _mm256_maskstore_ps(p, m, v); }
static inline MDQ_T V v_fill(TM m, V v, V fill) { return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m)); }
static inline MDQ_T V v_add(V a, V b) { return _mm256_add_ps(a, b); }
static inline MDQ_T V v_sub(V a, V b) { return _mm256_sub_ps(a, b); }
static inline MDQ_T V v_mul(V a, V b) { return _mm256_mul_ps(a, b); }
static inline MDQ_T V v_div(V a, V b) { return _mm256_div_ps(a, b); }
static inline MDQ_T V v_fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
static inline MDQ_T V v_max(V a, V b) { return _mm256_max_ps(a, b); }  // (a > b) ? a : b
static inline MDQ_T V v_min(V a, V b) { return _mm256_min_ps(a, b); }  // (a < b) ? a : b
static inline MDQ_T V v_abs(V a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
static inline MDQ_T V v_round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline MDQ_T CM v_cmplt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline MDQ_T V v_sel(CM m, V if_false, V if_true) { return _mm256_blendv_ps(if_false, if_true, m); }
// p * 2^n for integral n in [-150, 128]: two exact power-of-two factors, so only the last product rounds.
static inline MDQ_T V v_scale2(V p, V n) {
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
static inline MDQ_T float v_hmax(V a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline MDQ_T float v_hmin(V a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline MDQ_T VD vd_zero(void) { return _mm256_setzero_pd(); }
static inline MDQ_T VD vd_set1(double a) { return _mm256_set1_pd(a); }
static inline MDQ_T VD vd_load(const double *p) { return _mm256_loadu_pd(p); }
static inline MDQ_T void vd_store(double *p, VD v) { _mm256_storeu_pd(p, v); }
static inline MDQ_T VD vd_add(VD a, VD b) { return _mm256_add_pd(a, b); }
static inline MDQ_T VD vd_sub(VD a, VD b) { return _mm256_sub_pd(a, b); }
static inline MDQ_T VD vd_mul(VD a, VD b) { return _mm256_mul_pd(a, b); }
static inline MDQ_T VD vd_cvt(const float *p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
static inline MDQ_T void vd_acc2(VD *lo, VD *hi, V v) {
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
static inline MDQ_T double vd_hsum(VD a) {
    double t[DW];
    _mm256_storeu_pd(t, a);
    return (t[0] + t[2]) + (t[1] + t[3]);
}

#include "simd_impl.h"

// ---- conversions (ISA-specific; tails through the exact scalar reference) -----------------------------
MDQ_T void mdq_f16_to_f32_avx2(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    if (i < n) mdq_f16_to_f32_ref(x + i, y + i, n - i);
}

MDQ_T void mdq_bf16_to_f32_avx2(const uint16_t *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    if (i < n) mdq_bf16_to_f32_ref(x + i, y + i, n - i);
}

MDQ_T void mdq_f32_to_bf16_avx2(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), rnd = _mm256_set1_epi32(0x7fff), qnan = _mm256_set1_epi32(0x7fc0);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256i u = _mm256_castps_si256(v);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, rnd), lsb), 16);
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        r = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(qnan), nan));
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8);
        _mm_storeu_si128((__m128i *)(y + i), _mm256_castsi256_si128(packed));
    }
    if (i < n) mdq_f32_to_bf16_ref(x + i, y + i, n - i);
}

// ---- input checks (integer compare on the exponent bits, as the reference) -------------------------------
MDQ_T size_t mdq_count_nonfinite_avx2(const float *x, size_t n) {
    const __m256i exponent = _mm256_set1_epi32(0x7f800000);
    size_t count = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i hit = _mm256_cmpeq_epi32(_mm256_and_si256(u, exponent), exponent);
        count += (size_t)__builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(hit)));
    }
    if (i < n) count += mdq_count_nonfinite_ref(x + i, n - i);
    return count;
}
#endif
