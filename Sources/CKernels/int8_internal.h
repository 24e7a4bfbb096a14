// int8_internal.h: the SIMD variants of the INT8 (W8A8) kernels, dispatched in int8_dispatch.c.
#ifndef MIXDQ_KERNELS_INT8_INTERNAL_H
#define MIXDQ_KERNELS_INT8_INTERNAL_H
#include "internal.h"

#define MDQ_DECLARE_INT8_VARIANT(sfx)                                                                   \
    void mdq_quantize_u8_##sfx(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax);   \
    void mdq_dequant_s32_rows_##sfx(const int32_t *acc, float *y, size_t rows, size_t n,               \
                                    int32_t zero_point, const int32_t *wsum, const float *scale,       \
                                    const float *bias, const float *residual);                         \
    void mdq_split_u8_hi_lo_##sfx(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n);               \
    void mdq_combine_hi_lo_s32_##sfx(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n);

MDQ_DECLARE_INT8_VARIANT(avx2)
MDQ_DECLARE_INT8_VARIANT(avx512)

#endif
