// gemm_s16_avx2.c: C[m, n] = sum_k A[m, k] * W[n, k] with u8 A, s8 W and s32 C, exact on any AVX2
// CPU. Codes are widened to int16 and multiplied by VPMADDWD, which sums each pair of products into
// an int32 lane (|255 * 128 * 2| fits, so nothing saturates, unlike VPMADDUBSW's int16 sums that
// oneDNN uses without VNNI). Integer sums are exact in any order, so the result equals
// mdq_gemm_u8s8s32_ref bit for bit (up to int32 wraparound, which the reference shares).
//
// Blocking: k pairs in blocks of KC, rows in blocks of MC widened once into an int32-pair buffer
// (L2); weights pre-packed in 16-column panels of 8-bit codes (gemm_s16.c), each panel block widened
// to int16 into an L1 buffer before its tiles run (1 % of the work: it is reused by MC/6 tiles);
// a 6 x 16 register tile.
#if defined(__x86_64__)
#include "int8_internal.h"
#include <immintrin.h>
#include <stdlib.h>

#define MDQ_T __attribute__((target("avx2")))
#define NR 16
#define MR 6
#define KC 256   // k pairs per block: a panel block is 16 KB of int16
#define MC 72    // rows per block (a multiple of MR): 72 KB of widened rows

// Rows [0, rows) of A at pairs [j0, j0 + pairs) as int32 (a[2j] | a[2j+1] << 16), row stride KC;
// rows up to the next multiple of MR are zero so the tile can always run six rows.
MDQ_T static void widen(const uint8_t *a, size_t lda, size_t k, size_t rows, size_t j0, size_t pairs, int32_t *dst) {
    size_t padded = (rows + MR - 1) / MR * MR;
    for (size_t r = 0; r < padded; r++) {
        int32_t *d = dst + r * KC;
        if (r >= rows) { memset(d, 0, pairs * sizeof(int32_t)); continue; }
        const uint8_t *src = a + r * lda + 2 * j0;
        size_t avail = k - 2 * j0;          // codes left in this row from the block's start
        size_t j = 0;
        for (; j + 8 <= pairs && 2 * j + 16 <= avail; j += 8) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)(src + 2 * j));
            _mm256_storeu_si256((__m256i *)(d + j), _mm256_cvtepu8_epi16(bytes));
        }
        for (; j < pairs; j++) {
            uint32_t lo = 2 * j < avail ? src[2 * j] : 0, hi = 2 * j + 1 < avail ? src[2 * j + 1] : 0;
            d[j] = (int32_t)(lo | hi << 16);
        }
    }
}

// The dequantization epilogue of a W8A8 layer, applied in place to each row of a tile as the last K
// block stores it, by the shared epilogue kernel (mdq_dequant_s32_rows_avx2, bit-identical to its
// _ref): y = (acc - z * wsum[col]) * scale[col] (+ bias[col]) (+ residual[row, col]). Pointers are at
// the tile's first column (and row).
typedef struct {
    int32_t zero_point;
    const int32_t *wsum;
    const float *scale, *bias, *residual;
    size_t ldr;
} epilogue;

MDQ_T static void finish_row(int32_t *row, size_t r, size_t nr, const epilogue *e) {
    mdq_dequant_s32_rows_avx2(row, (float *)row, 1, nr, e->zero_point, e->wsum, e->scale, e->bias,
                              e->residual ? e->residual + r * e->ldr : NULL);
}

// The 6 x 16 tile over `pairs` pairs: a (row stride KC), b (32 int16 per pair); adds to c when
// `accumulate`, stores the first `mr` rows and `nr` columns, as s32, or through `e` as float bits.
MDQ_T static void tile(size_t pairs, const int32_t *a, const int16_t *b, int32_t *c, size_t ldc, int accumulate,
                       size_t mr, size_t nr, const epilogue *e) {
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256i c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t j = 0; j < pairs; j++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + 32 * j));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 32 * j + 16));
        __m256i x;
        x = _mm256_set1_epi32(a[j]);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, b0)); c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, b1));
        x = _mm256_set1_epi32(a[KC + j]);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, b0)); c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, b1));
        x = _mm256_set1_epi32(a[2 * KC + j]);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, b0)); c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, b1));
        x = _mm256_set1_epi32(a[3 * KC + j]);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, b0)); c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, b1));
        x = _mm256_set1_epi32(a[4 * KC + j]);
        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(x, b0)); c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(x, b1));
        x = _mm256_set1_epi32(a[5 * KC + j]);
        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(x, b0)); c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(x, b1));
    }
    __m256i acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (nr == NR) {
        for (size_t r = 0; r < mr; r++) {
            int32_t *row = c + r * ldc;
            __m256i v0 = acc[r][0], v1 = acc[r][1];
            if (accumulate) {
                v0 = _mm256_add_epi32(v0, _mm256_loadu_si256((const __m256i *)row));
                v1 = _mm256_add_epi32(v1, _mm256_loadu_si256((const __m256i *)(row + 8)));
            }
            _mm256_storeu_si256((__m256i *)row, v0);
            _mm256_storeu_si256((__m256i *)(row + 8), v1);
            if (e) finish_row(row, r, NR, e);
        }
        return;
    }
    int32_t t[NR];
    for (size_t r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)t, acc[r][0]);
        _mm256_storeu_si256((__m256i *)(t + 8), acc[r][1]);
        int32_t *row = c + r * ldc;
        for (size_t q = 0; q < nr; q++) row[q] = accumulate ? (int32_t)((uint32_t)row[q] + (uint32_t)t[q]) : t[q];
        if (e) finish_row(row, r, nr, e);
    }
}

// A panel block of 32 * pairs 8-bit codes as int16.
MDQ_T static void widen_panel(const int8_t *src, size_t pairs, int16_t *dst) {
    for (size_t i = 0; i < 32 * pairs; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + i))));
}

// The GEMM, with `e` (nullable, columns from 0, rows from 0) applied as the last K block is stored.
// Returns 0, or -2 when the scratch buffers cannot be allocated.
MDQ_T static int gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed, int32_t *c, size_t ldc,
                      const epilogue *e) {
    if (m == 0 || n == 0) return 0;
    size_t pairs = (k + 1) / 2, panels = (n + NR - 1) / NR;
    if (pairs == 0) {   // k = 0: an empty sum
        for (size_t i = 0; i < m; i++) {
            memset(c + i * ldc, 0, n * sizeof(int32_t));
            if (e) finish_row(c + i * ldc, i, n, e);
        }
        return 0;
    }
    int32_t *rows = aligned_alloc(64, MC * KC * sizeof(int32_t));
    int16_t *panel = aligned_alloc(64, 32 * KC * sizeof(int16_t));
    if (!rows || !panel) { free(rows); free(panel); return -2; }
    for (size_t j0 = 0; j0 < pairs; j0 += KC) {
        size_t kc = pairs - j0 < KC ? pairs - j0 : KC;
        int last = j0 + kc == pairs;
        for (size_t m0 = 0; m0 < m; m0 += MC) {
            size_t mc = m - m0 < MC ? m - m0 : MC;
            widen(a + m0 * lda, lda, k, mc, j0, kc, rows);
            for (size_t p = 0; p < panels; p++) {
                widen_panel(packed + (p * pairs + j0) * 2 * NR, kc, panel);
                size_t nr = n - p * NR < NR ? n - p * NR : NR;
                for (size_t r = 0; r < mc; r += MR) {
                    epilogue at, *tile_e = NULL;
                    if (e && last) {
                        size_t row0 = m0 + r, col0 = p * NR;
                        at = (epilogue){e->zero_point, e->wsum + col0, e->scale + col0, e->bias ? e->bias + col0 : NULL,
                                        e->residual ? e->residual + row0 * e->ldr + col0 : NULL, e->ldr};
                        tile_e = &at;
                    }
                    tile(kc, rows + r * KC, panel, c + (m0 + r) * ldc + p * NR, ldc, j0 > 0, mc - r < MR ? mc - r : MR, nr, tile_e);
                }
            }
        }
    }
    free(rows);
    free(panel);
    return 0;
}

MDQ_T int mdq_gemm_u8s8s32_s16_avx2(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                                    int32_t *c, size_t ldc) {
    return gemm(m, n, k, a, lda, packed, c, ldc, NULL);
}

MDQ_T int mdq_gemm_u8s8_dequant_s16_avx2(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                                         float *y, size_t ldy, int32_t zero_point, const int32_t *wsum, const float *scale,
                                         const float *bias, const float *residual, size_t ldr) {
    epilogue e = {zero_point, wsum, scale, bias, residual, ldr};
    return gemm(m, n, k, a, lda, packed, (int32_t *)y, ldy, &e);
}
#endif
