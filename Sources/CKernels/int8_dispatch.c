// int8_dispatch.c: public dispatchers of the INT8 kernels (AVX-512 > AVX2 > scalar, as isa.c).
#include "int8_internal.h"

void mdq_quantize_u8(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax) {
    DISPATCH(mdq_quantize_u8, (x, q, n, delta, zero_point, qmax));
}
void mdq_dequant_s32_rows(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                          const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual) {
    DISPATCH(mdq_dequant_s32_rows, (acc, y, rows, n, zero_point, wsum, scale, bias, residual));
}
void mdq_split_u8_hi_lo(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n) {
    DISPATCH(mdq_split_u8_hi_lo, (q, hi, lo, n));
}
void mdq_combine_hi_lo_s32(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n) {
    DISPATCH(mdq_combine_hi_lo_s32, (hi, lo, acc, n));
}
