// int8_avx512.c: AVX-512 (F/BW) variants of the INT8 kernels; bit-exact with int8_ref.c (same
// operations per element; tails through masks).
#if defined(__x86_64__)
#pragma STDC FP_CONTRACT OFF
#include "int8_internal.h"
#include <immintrin.h>

#define MDQ_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

static inline MDQ_T __m512i quantize16(__m512 x, __m512 d, __m512 z, __m512 top) {
    __m512 v = _mm512_roundscale_ps(_mm512_div_ps(x, d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_add_ps(v, z);
    v = _mm512_max_ps(v, _mm512_setzero_ps());  // NaN -> 0, as the reference
    v = _mm512_min_ps(v, top);
    return _mm512_cvtps_epi32(v);
}

MDQ_T void mdq_quantize_u8_avx512(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax) {
    const __m512 d = _mm512_set1_ps(delta), z = _mm512_set1_ps(zero_point), top = _mm512_set1_ps(qmax);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(quantize16(_mm512_loadu_ps(x + i), d, z, top)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, m, quantize16(_mm512_maskz_loadu_ps(m, x + i), d, z, top));
    }
}

static inline MDQ_T __m512 dequant16(__m512i acc, __m512i wsum, __m512i zp, __m512 scale) {
    __m512i centred = _mm512_sub_epi32(acc, _mm512_mullo_epi32(zp, wsum));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(centred), scale);
}

MDQ_T void mdq_dequant_s32_rows_avx512(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                                       const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual) {
    const __m512i zp = _mm512_set1_epi32(zero_point);
    for (size_t r = 0; r < rows; r++) {
        const int32_t *a = acc + r * n;
        float *yr = y + r * n;
        size_t c = 0;
        for (; c + 16 <= n; c += 16) {
            __m512 v = dequant16(_mm512_loadu_si512(a + c), _mm512_loadu_si512(wsum + c), zp, _mm512_loadu_ps(scale + c));
            if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + c));
            if (residual) v = _mm512_add_ps(v, _mm512_loadu_ps(residual + r * n + c));
            _mm512_storeu_ps(yr + c, v);
        }
        if (c < n) {
            __mmask16 m = (__mmask16)((1u << (n - c)) - 1u);
            __m512 v = dequant16(_mm512_maskz_loadu_epi32(m, a + c), _mm512_maskz_loadu_epi32(m, wsum + c), zp,
                                 _mm512_maskz_loadu_ps(m, scale + c));
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + r * n + c));
            _mm512_mask_storeu_ps(yr + c, m, v);
        }
    }
}

MDQ_T void mdq_split_u8_hi_lo_avx512(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n) {
    const __m512i low7 = _mm512_set1_epi8(127), one = _mm512_set1_epi8(1);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i v = _mm512_loadu_si512(q + i);
        _mm512_storeu_si512(hi + i, _mm512_and_si512(_mm512_srli_epi16(v, 7), one));
        _mm512_storeu_si512(lo + i, _mm512_and_si512(v, low7));
    }
    if (i < n) {
        __mmask64 m = (n - i == 64) ? ~(__mmask64)0 : (((__mmask64)1 << (n - i)) - 1);
        __m512i v = _mm512_maskz_loadu_epi8(m, q + i);
        _mm512_mask_storeu_epi8(hi + i, m, _mm512_and_si512(_mm512_srli_epi16(v, 7), one));
        _mm512_mask_storeu_epi8(lo + i, m, _mm512_and_si512(v, low7));
    }
}

MDQ_T void mdq_combine_hi_lo_s32_avx512(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_si512(acc + i, _mm512_add_epi32(_mm512_slli_epi32(_mm512_loadu_si512(hi + i), 7),
                                                      _mm512_loadu_si512(lo + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_epi32(acc + i, m, _mm512_add_epi32(_mm512_slli_epi32(_mm512_maskz_loadu_epi32(m, hi + i), 7),
                                                             _mm512_maskz_loadu_epi32(m, lo + i)));
    }
}
#endif
