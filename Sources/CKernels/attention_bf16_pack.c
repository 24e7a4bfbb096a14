// attention_bf16_pack.c: q, k and v (fp32, [B, tokens, heads * d]) rounded to bf16 into the packed
// layouts of attention_blocks.h, which both blocked attention kernels (AMX tiles, AVX512-BF16) read.
#include "internal.h"
#include "attention_blocks.h"

size_t mdq_attention_bf16_packed_count(int layout, size_t batch, size_t tokens, size_t heads, size_t d) {
    switch (layout) {
    case MDQ_ATTENTION_QUERIES: return batch * heads * mdq__attn_query_rows(tokens) * mdq__attn_score_depth(d);
    case MDQ_ATTENTION_KEYS: return batch * heads * mdq__attn_score_depth(d) * mdq__attn_key_count(tokens);
    case MDQ_ATTENTION_VALUES: return batch * heads * mdq__attn_key_count(tokens) * mdq__attn_context_cols(d);
    default: return 0;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define PACK_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

// K^T in pairs of dims, 16 tokens at a time (groups aligned to 16 tokens): each (head, pair) gets 16
// consecutive words, one cache line, per group. Written token by token, every word of a token lands on
// its own line 4*mp bytes from the last, which made K's packing cost a third of the attention itself.
static PACK_T void pack_keys(const float *x, size_t tokens, size_t heads, size_t d, size_t row_begin, size_t row_end,
                             uint16_t *dst) {
    enum { GROUP = 16 };
    const size_t c = heads * d, dp = mdq__attn_score_depth(d), mp = mdq__attn_key_count(tokens);
    uint16_t rows[GROUP][64];
    for (size_t r = row_begin; r < row_end;) {
        const size_t bi = r / tokens, t = r % tokens;
        size_t g = GROUP - t % GROUP;
        if (g > row_end - r) g = row_end - r;
        if (g > tokens - t) g = tokens - t;
        for (size_t h = 0; h < heads; h++) {
            for (size_t j = 0; j < g; j++) mdq_f32_to_bf16_avx512(x + (r + j) * c + h * d, rows[j], d);
            uint32_t *kt = (uint32_t *)(dst + (bi * heads + h) * dp * mp) + t;
            for (size_t i = 0; i + 1 < d; i += 2)
                for (size_t j = 0; j < g; j++) kt[(i >> 1) * mp + j] = rows[j][i] | (uint32_t)rows[j][i + 1] << 16;
            if (d & 1)
                for (size_t j = 0; j < g; j++) kt[(d >> 1) * mp + j] = rows[j][d - 1];
        }
        r += g;
    }
}

// Converts token rows [row_begin, row_end) of the flattened [batch * tokens] rows, every head, one
// contiguous row of heads * d floats at a time (the access a prefetcher follows); keys go through
// pack_keys. Pairs of keys (V) are written as one 32-bit word; a V row whose partner lies outside
// the range writes its own halves only (the partner's call writes the others).
PACK_T void mdq_attention_bf16_pack(const float *x, size_t tokens, size_t heads, size_t d, int layout,
                                   size_t row_begin, size_t row_end, uint16_t *dst) {
    if (d == 0 || d > 64) return;
    if (layout == MDQ_ATTENTION_KEYS) { pack_keys(x, tokens, heads, d, row_begin, row_end, dst); return; }
    const size_t c = heads * d, dp = mdq__attn_score_depth(d), dq = mdq__attn_context_cols(d), mp = mdq__attn_key_count(tokens);
    enum { CAP = 4096 };
    uint16_t row[2][CAP];
    const size_t per = CAP / d;  // heads converted per call
    for (size_t r = row_begin; r < row_end;) {
        const size_t bi = r / tokens, t = r % tokens;
        const int paired = layout == MDQ_ATTENTION_VALUES && (t & 1) == 0 && t + 1 < tokens && r + 1 < row_end;
        for (size_t h0 = 0; h0 < heads; h0 += per) {
            const size_t hn = heads - h0 < per ? heads - h0 : per;
            mdq_f32_to_bf16_avx512(x + r * c + h0 * d, row[0], hn * d);
            if (paired) mdq_f32_to_bf16_avx512(x + (r + 1) * c + h0 * d, row[1], hn * d);
            for (size_t hh = 0; hh < hn; hh++) {
                const size_t bh = bi * heads + h0 + hh;
                const uint16_t *a = row[0] + hh * d, *b = row[1] + hh * d;
                if (layout == MDQ_ATTENTION_QUERIES) {  // [np][dp]
                    memcpy(dst + (bh * mdq__attn_query_rows(tokens) + t) * dp, a, d * 2);
                } else if (paired) {  // V in pairs of keys: [mp/2][dq] words
                    uint32_t *vv = (uint32_t *)(dst + bh * mp * dq) + (t >> 1) * dq;
                    for (size_t i = 0; i < d; i++) vv[i] = a[i] | (uint32_t)b[i] << 16;
                } else {
                    uint16_t *vv = dst + bh * mp * dq + (t >> 1) * dq * 2 + (t & 1);
                    for (size_t i = 0; i < d; i++) vv[i * 2] = a[i];
                }
            }
        }
        r += paired ? 2 : 1;
    }
}

#else
void mdq_attention_bf16_pack(const float *x, size_t tokens, size_t heads, size_t d, int layout, size_t row_begin,
                             size_t row_end, uint16_t *dst) {
    (void)x; (void)tokens; (void)heads; (void)d; (void)layout; (void)row_begin; (void)row_end; (void)dst;
}
#endif
