// pack_internal.h: the SIMD variants of the packed low-bit weight-code unpackers (pack_*.c).
#ifndef MIXDQ_KERNELS_PACK_INTERNAL_H
#define MIXDQ_KERNELS_PACK_INTERNAL_H
#include "internal.h"

#define MDQ_DECLARE_PACK_VARIANT(sfx)                                          \
    void mdq_unpack_s4_##sfx(const uint8_t *packed, int8_t *codes, size_t n); \
    void mdq_unpack_s2_##sfx(const uint8_t *packed, int8_t *codes, size_t n);

MDQ_DECLARE_PACK_VARIANT(avx2)
MDQ_DECLARE_PACK_VARIANT(avx512)

#endif
