// pack_ref.c: scalar references of the packed low-bit weight codes (layout in mixdq_kernels.h) and
// the public entry points. Packing runs once per layer at load or export, so it has only the scalar
// version; unpacking runs per call and dispatches to the SIMD variants.
#include "pack_internal.h"

void mdq_pack_s4_ref(const int8_t *codes, uint8_t *packed, size_t n) {
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        packed[i / 2] = (uint8_t)(((uint8_t)codes[i] & 0x0Fu) | (((uint8_t)codes[i + 1] & 0x0Fu) << 4));
    if (i < n) packed[i / 2] = (uint8_t)((uint8_t)codes[i] & 0x0Fu);  // unused high nibble stays zero
}

void mdq_unpack_s4_ref(const uint8_t *packed, int8_t *codes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned field = ((unsigned)packed[i / 2] >> (4 * (i & 1))) & 0x0Fu;
        codes[i] = (int8_t)((int)(field ^ 8u) - 8);  // sign-extends the 4-bit two's complement field
    }
}

void mdq_pack_s2_ref(const int8_t *codes, uint8_t *packed, size_t n) {
    for (size_t b = 0; b * 4 < n; b++) {
        unsigned v = 0;
        for (size_t j = 0; j < 4 && b * 4 + j < n; j++) v |= ((unsigned)(uint8_t)codes[b * 4 + j] & 3u) << (2 * j);
        packed[b] = (uint8_t)v;
    }
}

void mdq_unpack_s2_ref(const uint8_t *packed, int8_t *codes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned field = ((unsigned)packed[i / 4] >> (2 * (i & 3))) & 3u;
        codes[i] = (int8_t)((int)(field ^ 2u) - 2);
    }
}

void mdq_pack_s4(const int8_t *codes, uint8_t *packed, size_t n) { mdq_pack_s4_ref(codes, packed, n); }
void mdq_pack_s2(const int8_t *codes, uint8_t *packed, size_t n) { mdq_pack_s2_ref(codes, packed, n); }
void mdq_unpack_s4(const uint8_t *packed, int8_t *codes, size_t n) { DISPATCH(mdq_unpack_s4, (packed, codes, n)); }
void mdq_unpack_s2(const uint8_t *packed, int8_t *codes, size_t n) { DISPATCH(mdq_unpack_s2, (packed, codes, n)); }
