// pack_avx512.c: AVX-512 (F/BW/VL) unpackers of the packed low-bit weight codes; bit-exact with
// pack_ref.c (the same widen / spread / byte-shuffle steps as pack_avx2.c on 512-bit vectors; the
// tail through masked loads and stores, which touch no byte past the end).
#if defined(__x86_64__)
#include "pack_internal.h"
#include <immintrin.h>

#define MDQ_T __attribute__((target("avx512f,avx512bw,avx512vl,avx2")))

static inline MDQ_T __m512i sext4_table(void) {
    return _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1));
}
static inline MDQ_T __m512i sext2_table(void) {
    return _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, -2, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
}

// 32 packed bytes (as 16-bit lanes) -> 64 codes.
static inline MDQ_T __m512i unpack64_s4(__m256i bytes, __m512i table) {
    __m512i w = _mm512_cvtepu8_epi16(bytes);
    __m512i fields = _mm512_or_si512(_mm512_and_si512(w, _mm512_set1_epi16(0x0F)),
                                     _mm512_slli_epi16(_mm512_srli_epi16(w, 4), 8));
    return _mm512_shuffle_epi8(table, fields);
}

MDQ_T void mdq_unpack_s4_avx512(const uint8_t *packed, int8_t *codes, size_t n) {
    const __m512i table = sext4_table();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512(codes + i, unpack64_s4(_mm256_loadu_si256((const __m256i *)(packed + i / 2)), table));
    if (i < n) {
        size_t rem = n - i, bytes = (rem + 1) / 2;  // rem <= 63, bytes <= 32
        __mmask32 load = (__mmask32)(((uint64_t)1 << bytes) - 1);
        __mmask64 store = ((__mmask64)1 << rem) - 1;
        _mm512_mask_storeu_epi8(codes + i, store, unpack64_s4(_mm256_maskz_loadu_epi8(load, packed + i / 2), table));
    }
}

// 16 packed bytes (as 32-bit lanes) -> 64 codes.
static inline MDQ_T __m512i unpack64_s2(__m128i bytes, __m512i table) {
    __m512i d = _mm512_cvtepu8_epi32(bytes);
    __m512i spread = _mm512_or_si512(_mm512_or_si512(d, _mm512_slli_epi32(d, 6)),
                                     _mm512_or_si512(_mm512_slli_epi32(d, 12), _mm512_slli_epi32(d, 18)));
    return _mm512_shuffle_epi8(table, _mm512_and_si512(spread, _mm512_set1_epi32(0x03030303)));
}

MDQ_T void mdq_unpack_s2_avx512(const uint8_t *packed, int8_t *codes, size_t n) {
    const __m512i table = sext2_table();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512(codes + i, unpack64_s2(_mm_loadu_si128((const __m128i *)(packed + i / 4)), table));
    if (i < n) {
        size_t rem = n - i, bytes = (rem + 3) / 4;  // rem <= 63, bytes <= 16
        __mmask16 load = (__mmask16)((1u << bytes) - 1u);
        __mmask64 store = ((__mmask64)1 << rem) - 1;
        _mm512_mask_storeu_epi8(codes + i, store, unpack64_s2(_mm_maskz_loadu_epi8(load, packed + i / 4), table));
    }
}
#endif
