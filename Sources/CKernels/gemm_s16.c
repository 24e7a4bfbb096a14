// gemm_s16.c: the exact u8 x s8 -> s32 GEMM on int16 pair products (VPMADDWD) for CPUs without
// VNNI: weight packing (portable, once per layer; the codes stay 8-bit at rest and are widened to
// int16 block by block inside the kernel) and the dispatcher. The AVX2 kernel is in
// gemm_s16_avx2.c; CPUs without AVX2 have no such kernel (mdq_gemm_s16_available() is 0).
#include "internal.h"

#define MDQ_S16_NR 16

size_t mdq_gemm_s16_packed_count(size_t n, size_t k) {
    size_t pairs = (k + 1) / 2, panels = (n + MDQ_S16_NR - 1) / MDQ_S16_NR;
    return panels * pairs * 2 * MDQ_S16_NR;
}

// Panel p (columns 16p..16p+15), pair j (k = 2j, 2j+1): 32 codes, column c's two at 2c, 2c+1.
// Columns past n and the odd k's missing partner are 0, so they add nothing.
void mdq_gemm_s16_pack_weights(const int8_t *w, size_t n, size_t k, int8_t *packed) {
    size_t pairs = (k + 1) / 2, panels = (n + MDQ_S16_NR - 1) / MDQ_S16_NR;
    for (size_t p = 0; p < panels; p++)
        for (size_t j = 0; j < pairs; j++) {
            int8_t *dst = packed + (p * pairs + j) * 2 * MDQ_S16_NR;
            for (size_t c = 0; c < MDQ_S16_NR; c++) {
                size_t col = p * MDQ_S16_NR + c;
                for (size_t t = 0; t < 2; t++) {
                    size_t kk = 2 * j + t;
                    dst[2 * c + t] = (col < n && kk < k) ? w[col * k + kk] : 0;
                }
            }
        }
}

int mdq_gemm_s16_available(void) {
#if defined(__x86_64__)
    return mdq__isa() >= MDQ_ISA_AVX2;
#else
    return 0;
#endif
}

int mdq_gemm_u8s8s32_s16_avx2(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                              int32_t *c, size_t ldc);

int mdq_gemm_u8s8s32_s16(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                         int32_t *c, size_t ldc) {
    if (!mdq_gemm_s16_available()) return -1;
#if defined(__x86_64__)
    return mdq_gemm_u8s8s32_s16_avx2(m, n, k, a, lda, packed, c, ldc);
#else
    return -1;
#endif
}

int mdq_gemm_u8s8_dequant_s16_avx2(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                                   float *y, size_t ldy, int32_t zero_point, const int32_t *wsum, const float *scale,
                                   const float *bias, const float *residual, size_t ldr);

int mdq_gemm_u8s8_dequant_s16(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                              float *y, size_t ldy, int32_t zero_point, const int32_t *wsum, const float *scale,
                              const float *bias, const float *residual, size_t ldr) {
    if (!mdq_gemm_s16_available()) return -1;
#if defined(__x86_64__)
    return mdq_gemm_u8s8_dequant_s16_avx2(m, n, k, a, lda, packed, y, ldy, zero_point, wsum, scale, bias, residual, ldr);
#else
    return -1;
#endif
}
