// pack_avx2.c: AVX2 unpackers of the packed low-bit weight codes; bit-exact with pack_ref.c.
// Each packed byte is widened to a 16-bit (4-bit codes) or 32-bit (2-bit codes) lane, its fields
// moved one per byte, and a byte shuffle sign-extends them; the last partial vector goes through
// the reference.
#if defined(__x86_64__)
#include "pack_internal.h"
#include <immintrin.h>

#define MDQ_T __attribute__((target("avx2")))

// Field value -> s8 code (two's complement), per byte: index 0..15 for 4-bit fields, 0..3 for 2-bit.
static inline MDQ_T __m256i sext4_table(void) {
    return _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,
                            0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
}
static inline MDQ_T __m256i sext2_table(void) {
    return _mm256_setr_epi8(0, 1, -2, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                            0, 1, -2, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

// 16 packed bytes -> 32 codes: 16-bit lane b becomes bytes (b & 15, b >> 4), i.e. codes 2j, 2j+1.
static inline MDQ_T __m256i unpack32_s4(const uint8_t *p, __m256i table) {
    __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    __m256i fields = _mm256_or_si256(_mm256_and_si256(w, _mm256_set1_epi16(0x0F)),
                                     _mm256_slli_epi16(_mm256_srli_epi16(w, 4), 8));
    return _mm256_shuffle_epi8(table, fields);
}

MDQ_T void mdq_unpack_s4_avx2(const uint8_t *packed, int8_t *codes, size_t n) {
    const __m256i table = sext4_table();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        _mm256_storeu_si256((__m256i *)(codes + i), unpack32_s4(packed + i / 2, table));
        _mm256_storeu_si256((__m256i *)(codes + i + 32), unpack32_s4(packed + i / 2 + 16, table));
    }
    for (; i + 32 <= n; i += 32) _mm256_storeu_si256((__m256i *)(codes + i), unpack32_s4(packed + i / 2, table));
    if (i < n) mdq_unpack_s4_ref(packed + i / 2, codes + i, n - i);
}

// 8 packed bytes -> 32 codes: 32-bit lane b becomes bytes (b & 3, b >> 2 & 3, b >> 4 & 3, b >> 6).
static inline MDQ_T __m256i unpack32_s2(const uint8_t *p, __m256i table) {
    __m256i d = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    __m256i spread = _mm256_or_si256(_mm256_or_si256(d, _mm256_slli_epi32(d, 6)),
                                     _mm256_or_si256(_mm256_slli_epi32(d, 12), _mm256_slli_epi32(d, 18)));
    return _mm256_shuffle_epi8(table, _mm256_and_si256(spread, _mm256_set1_epi32(0x03030303)));
}

MDQ_T void mdq_unpack_s2_avx2(const uint8_t *packed, int8_t *codes, size_t n) {
    const __m256i table = sext2_table();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        _mm256_storeu_si256((__m256i *)(codes + i), unpack32_s2(packed + i / 4, table));
        _mm256_storeu_si256((__m256i *)(codes + i + 32), unpack32_s2(packed + i / 4 + 8, table));
    }
    for (; i + 32 <= n; i += 32) _mm256_storeu_si256((__m256i *)(codes + i), unpack32_s2(packed + i / 4, table));
    if (i < n) mdq_unpack_s2_ref(packed + i / 4, codes + i, n - i);
}
#endif
