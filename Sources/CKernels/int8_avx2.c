// int8_avx2.c: AVX2 variants of the INT8 kernels; bit-exact with int8_ref.c (same operations per
// element; the last partial vector goes through the scalar reference, which performs them too).
#if defined(__x86_64__)
#pragma STDC FP_CONTRACT OFF
#include "int8_internal.h"
#include <immintrin.h>

void mdq_quantize_u8_ref(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax);
void mdq_dequant_s32_rows_ref(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                              const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual);

#define MDQ_T __attribute__((target("avx2,fma,f16c")))

MDQ_T void mdq_quantize_u8_avx2(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax) {
    const __m256 d = _mm256_set1_ps(delta), z = _mm256_set1_ps(zero_point);
    const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(qmax);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_add_ps(v, z);
        v = _mm256_max_ps(v, lo);  // NaN -> 0, as the reference
        v = _mm256_min_ps(v, hi);
        __m256i iv = _mm256_cvtps_epi32(v);
        __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(iv), _mm256_extracti128_si256(iv, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(w16, w16));
    }
    if (i < n) mdq_quantize_u8_ref(x + i, q + i, n - i, delta, zero_point, qmax);
}

MDQ_T void mdq_dequant_s32_rows_avx2(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                                     const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual) {
    const __m256i zp = _mm256_set1_epi32(zero_point);
    for (size_t r = 0; r < rows; r++) {
        const int32_t *a = acc + r * n;
        float *yr = y + r * n;
        size_t c = 0;
        for (; c + 8 <= n; c += 8) {
            __m256i centred = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(a + c)),
                                               _mm256_mullo_epi32(zp, _mm256_loadu_si256((const __m256i *)(wsum + c))));
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(centred), _mm256_loadu_ps(scale + c));
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
            if (residual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual + r * n + c));
            _mm256_storeu_ps(yr + c, v);
        }
        if (c < n) mdq_dequant_s32_rows_ref(a + c, yr + c, 1, n - c, zero_point, wsum + c, scale + c, bias ? bias + c : NULL,
                                            residual ? residual + r * n + c : NULL);
    }
}

MDQ_T void mdq_split_u8_hi_lo_avx2(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n) {
    const __m256i low7 = _mm256_set1_epi8(127), one = _mm256_set1_epi8(1);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(q + i));
        _mm256_storeu_si256((__m256i *)(hi + i), _mm256_and_si256(_mm256_srli_epi16(v, 7), one));
        _mm256_storeu_si256((__m256i *)(lo + i), _mm256_and_si256(v, low7));
    }
    for (; i < n; i++) {
        hi[i] = (uint8_t)(q[i] >> 7);
        lo[i] = (uint8_t)(q[i] & 127);
    }
}

MDQ_T void mdq_combine_hi_lo_s32_avx2(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_si256((__m256i *)(acc + i),
                            _mm256_add_epi32(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(hi + i)), 7),
                                             _mm256_loadu_si256((const __m256i *)(lo + i))));
    for (; i < n; i++) acc[i] = (int32_t)(((uint32_t)hi[i] << 7) + (uint32_t)lo[i]);
}
#endif
