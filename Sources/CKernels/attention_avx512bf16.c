// attention_avx512bf16.c: bf16 multi-head attention with AVX512-BF16's VDPBF16PS, for CPUs that have
// bf16 dot products but no AMX tiles (Zen 4, Zen 5, Cooper Lake). Same algorithm and rounding points
// as attention_amx.c, on the same packed layouts (attention_blocks.h): one block of 16 query rows at a
// time, its scores, softmax and probabilities kept in L1/L2, so the score matrix never goes to memory.
// Each VDPBF16PS adds two exact bf16 products per fp32 lane (a word of Q or P broadcast against 16
// words of K^T or V); register blocks are 4 query rows x 64 columns (16 accumulators). The key loop is
// outermost within a block so a 64-key slice of K^T (or V) stays in L1 across the block's row groups.
#include "internal.h"
#include "attention_blocks.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

// VDPBF16PS, and a ceiling (MIXDQ_MAX_CPU_ISA, else ONEDNN_MAX_CPU_ISA) that names a bf16 ISA
// (oneDNN's AVX512_CORE_BF16, AVX512_CORE_AMX, AVX10_x...) or ALL: AVX512_CORE stands for a CPU without it.
int mdq_attention_bf16_avx512_available(void) {
    static const char *const names[] = {"BF16", "AMX", "AVX10", NULL};
    return mdq_cpu_has_avx512_bf16() && mdq__isa_ceiling_allows(names);
}

#define BF16_T __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

static inline BF16_T __m512 dot2(__m512 acc, uint32_t pair, const uint16_t *words) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)pair), (__m512bh)_mm512_loadu_si512(words));
}

// acc[4][NV] += Q-or-P rows (4 rows of `a`, `a_words` 32-bit words apart) x words of `b`: per step
// one word of each row against NV vectors of 16 words (b advances b_step words per step).
#define MDQ_ROW_GROUP_DOT(NV, acc, a, a_words, b, b_step, steps)                                   \
    do {                                                                                           \
        const uint16_t *a0 = (a);                                                                  \
        for (size_t st = 0; st < (steps); st++) {                                                  \
            const uint16_t *bw = (b) + st * (b_step) * 2;                                          \
            for (int i = 0; i < 4; i++) {                                                          \
                uint32_t w; /* the word of a bf16 pair, read without type punning */               \
                memcpy(&w, a0 + (i * (a_words) + st) * 2, sizeof w);                              \
                for (int t = 0; t < (NV); t++) acc[i][t] = dot2(acc[i][t], w, bw + t * 32);        \
            }                                                                                      \
        }                                                                                          \
    } while (0)

// Scores of rows [r, r + 4) against keys [j, j + 64): s[row][j..] = sum over dim pairs.
static inline BF16_T void score_group(const uint16_t *qb, size_t dp, const uint16_t *kt, size_t mp, size_t pairs,
                                      size_t r, size_t j, float *s) {
    __m512 acc[4][4];
    for (int i = 0; i < 4; i++) for (int t = 0; t < 4; t++) acc[i][t] = _mm512_setzero_ps();
    MDQ_ROW_GROUP_DOT(4, acc, qb + r * dp, dp / 2, kt + j * 2, mp, pairs);
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 4; t++) _mm512_storeu_ps(s + (r + i) * mp + j + 16 * t, acc[i][t]);
}

// Context of rows [r, r + 4) over key pairs [k0, k0 + steps), added to o ([16][64] fp32).
#define MDQ_CONTEXT_GROUP(NV)                                                                      \
    static inline BF16_T void context_group_##NV(const uint16_t *p, size_t mp, const uint16_t *vv,   \
                                                 size_t dq, size_t r, size_t k0, size_t steps,       \
                                                 float *o) {                                         \
        __m512 acc[4][NV];                                                                           \
        for (int i = 0; i < 4; i++)                                                                  \
            for (int t = 0; t < NV; t++) acc[i][t] = _mm512_loadu_ps(o + (r + i) * 64 + 16 * t);     \
        MDQ_ROW_GROUP_DOT(NV, acc, p + r * mp + k0 * 2, mp / 2, vv + k0 * dq * 2, dq, steps);        \
        for (int i = 0; i < 4; i++)                                                                  \
            for (int t = 0; t < NV; t++) _mm512_storeu_ps(o + (r + i) * 64 + 16 * t, acc[i][t]);     \
    }
MDQ_CONTEXT_GROUP(1)
MDQ_CONTEXT_GROUP(2)
MDQ_CONTEXT_GROUP(3)
MDQ_CONTEXT_GROUP(4)

BF16_T int mdq_attention_bf16_avx512(const uint16_t *qp, const uint16_t *ktp, const uint16_t *vvp, float *out,
                                     size_t n, size_t m, size_t heads, size_t d, float scale, size_t bh_begin,
                                     size_t bh_end) {
    if (d == 0 || d > 64 || n == 0 || m == 0 || heads == 0) return -1;
    const size_t c = heads * d;
    const size_t np = mdq__attn_query_rows(n), dp = mdq__attn_score_depth(d), dq = mdq__attn_context_cols(d),
                 mp = mdq__attn_key_count(m);
    const size_t pairs = (d + 1) / 2;       // dim pairs that hold data (the rest of dp is zero)
    const size_t key_pairs = (m + 1) / 2;   // key pairs that hold data (P and V are zero past m)
    enum { KEYS = 64, KEY_PAIRS = 64 };      // keys per score slice, key pairs per context slice
    mdq__attn_block block;
    void *mem = mdq__attn_block_alloc(mp, &block);
    if (!mem) return -2;
    float *s = block.scores, *o = block.context;
    uint16_t *p = block.probabilities;

    for (size_t bh = bh_begin; bh < bh_end; bh++) {
        const size_t bi = bh / heads, h = bh % heads;
        const uint16_t *kt = ktp + bh * dp * mp, *vv = vvp + bh * mp * dq;
        float *oh = out + bi * n * c + h * d;
        for (size_t r0 = 0; r0 < n; r0 += 16) {
            const size_t rows = n - r0 < 16 ? n - r0 : 16;
            const size_t groups = mdq__round_up(rows, 4);  // rows past n read Q's zero padding
            const uint16_t *qb = qp + (bh * np + r0) * dp;
            for (size_t j = 0; j < mp; j += KEYS)
                for (size_t r = 0; r < groups; r += 4) score_group(qb, dp, kt, mp, pairs, r, j, s);
            for (size_t r = 0; r < rows; r++) mdq__softmax_row_bf16_avx512(s + r * mp, p + r * mp, m, scale);
            memset(o, 0, 16 * 64 * sizeof(float));
            for (size_t k0 = 0; k0 < key_pairs; k0 += KEY_PAIRS) {
                const size_t steps = key_pairs - k0 < KEY_PAIRS ? key_pairs - k0 : KEY_PAIRS;
                for (size_t r = 0; r < groups; r += 4) {
                    switch (dq / 16) {
                    case 1: context_group_1(p, mp, vv, dq, r, k0, steps, o); break;
                    case 2: context_group_2(p, mp, vv, dq, r, k0, steps, o); break;
                    case 3: context_group_3(p, mp, vv, dq, r, k0, steps, o); break;
                    default: context_group_4(p, mp, vv, dq, r, k0, steps, o); break;
                    }
                }
            }
            for (size_t r = 0; r < rows; r++) memcpy(oh + (r0 + r) * c, o + r * 64, d * sizeof(float));
        }
    }
    free(mem);
    return 0;
}

#else
int mdq_attention_bf16_avx512_available(void) { return 0; }
int mdq_attention_bf16_avx512(const uint16_t *qp, const uint16_t *ktp, const uint16_t *vvp, float *out, size_t n,
                              size_t m, size_t heads, size_t d, float scale, size_t bh_begin, size_t bh_end) {
    (void)qp; (void)ktp; (void)vvp; (void)out; (void)n; (void)m; (void)heads; (void)d; (void)scale;
    (void)bh_begin; (void)bh_end;
    return -1;
}
#endif
