// attention_blocks.h: the packed bf16 layouts shared by the blocked attention kernels (AMX tiles in
// attention_amx.c, AVX512-BF16 in attention_avx512bf16.c) and their packing (attention_bf16_pack.c).
// Per (batch, head): queries [query_rows(n)][score_depth(d)] row-major; K^T as pairs of dims,
// [score_depth(d) / 2][key_count(m)] 32-bit words; V as pairs of keys, [key_count(m) / 2][context_cols(d)]
// words. A word holds two bf16 (the lower index in the low half): what AMX's TDPBF16PS and AVX512's
// VDPBF16PS multiply and add in one step. Padding is zero (the buffers are zeroed before packing).
#ifndef MIXDQ_ATTENTION_BLOCKS_H
#define MIXDQ_ATTENTION_BLOCKS_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline size_t mdq__round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }
static inline size_t mdq__attn_query_rows(size_t n) { return mdq__round_up(n, 16); }   // 16-row query blocks
static inline size_t mdq__attn_score_depth(size_t d) { return mdq__round_up(d, 32); }  // one or two 32-wide k-steps
static inline size_t mdq__attn_context_cols(size_t d) { return mdq__round_up(d, 16); } // one to four 16-wide columns
static inline size_t mdq__attn_key_count(size_t m) { return mdq__round_up(m, 64); }    // 64 keys per score pass

// One query block's scratch, zeroed: scores [16][mp] fp32, context [16][64] fp32, probabilities
// [16][mp] bf16 (columns >= m are never written, so they stay zero and meet V's zero rows).
// Returns the allocation to free, NULL when out of memory.
typedef struct { float *scores, *context; uint16_t *probabilities; } mdq__attn_block;
static inline void *mdq__attn_block_alloc(size_t mp, mdq__attn_block *b) {
    const size_t bytes = mdq__round_up(4 * (16 * mp + 16 * 64) + 2 * 16 * mp, 64);
    uint8_t *mem = aligned_alloc(64, bytes);
    if (!mem) return NULL;
    memset(mem, 0, bytes);
    b->scores = (float *)mem;
    b->context = b->scores + 16 * mp;
    b->probabilities = (uint16_t *)(b->context + 16 * 64);
    return mem;
}

#endif
