// attention_amx.c: bf16 multi-head attention on Intel AMX tiles, one block of 16 query rows at a
// time. A block's scores, softmax and probabilities stay in L1/L2: the score matrix never goes to
// memory, which is what bounds the two-matmul path (a 1024-token layer writes and reads ~170 MB of
// scores per call). Rounding points are those of the oneDNN bf16 path (q, k, v and P rounded to
// bf16 with round to nearest even, products accumulated in fp32, the scale applied to the fp32
// scores); the softmax is mdq__softmax_row_bf16_avx512, whose float sums are exact enough for
// probabilities that are then rounded to bf16.
#include "internal.h"
#include "attention_blocks.h"
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_T __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

// The LDTILECFG operand (Intel SDM vol. 1, 3.2): palette, start row, 14 reserved bytes, then the
// bytes per row and the rows of each of the 16 possible tiles.
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} mdq_tile_config;

// A ceiling (MIXDQ_MAX_CPU_ISA, else ONEDNN_MAX_CPU_ISA) allows AMX only when it names it (oneDNN's
// AVX512_CORE_AMX, AVX10_x_512_AMX...) or is ALL: AVX512_CORE_BF16 stands for a CPU without tiles.
static int amx_allowed_by_ceiling(void) {
    static const char *const names[] = {"AMX", NULL};
    return mdq__isa_ceiling_allows(names);
}

static int g_amx = -1;

int mdq_cpu_has_amx_bf16(void) {
    int known = __atomic_load_n(&g_amx, __ATOMIC_RELAXED);
    if (known >= 0) return known;
    int ok = 0;
    unsigned a, b, c, d;
    if (mdq_isa_detected() == MDQ_ISA_AVX512 && mdq_cpu_has_avx512_bf16() && amx_allowed_by_ceiling() &&
        __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) && (d & (1u << 22))) {
        // Linux hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA);
        // the grant is per process, so asking again after oneDNN did is harmless.
        ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    }
    __atomic_store_n(&g_amx, ok, __ATOMIC_RELAXED);
    return ok;
}

AMX_T int mdq_attention_bf16_amx(const uint16_t *qp, const uint16_t *ktp, const uint16_t *vvp, float *out,
                                 size_t n, size_t m, size_t heads, size_t d, float scale, size_t bh_begin,
                                 size_t bh_end) {
    if (d == 0 || d > 64 || n == 0 || m == 0 || heads == 0) return -1;
    const size_t c = heads * d;
    const size_t np = mdq__attn_query_rows(n), dp = mdq__attn_score_depth(d), dq = mdq__attn_context_cols(d), mp = mdq__attn_key_count(m);
    mdq__attn_block block;
    void *mem = mdq__attn_block_alloc(mp, &block);
    if (!mem) return -2;
    float *s = block.scores, *o = block.context;
    uint16_t *p = block.probabilities;

    mdq_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);

    for (size_t bh = bh_begin; bh < bh_end; bh++) {
        const size_t bi = bh / heads, h = bh % heads;
        const uint16_t *kt = ktp + bh * dp * mp, *vv = vvp + bh * mp * dq;
        float *oh = out + bi * n * c + h * d;
        for (size_t r0 = 0; r0 < n; r0 += 16) {
            const size_t rows = n - r0 < 16 ? n - r0 : 16;
            const uint16_t *qb = qp + (bh * np + r0) * dp;
            // S = Q K^T, 64 keys per pass into tiles 4..7.
            _tile_loadd(0, qb, (int)(dp * 2));
            if (dp > 32) _tile_loadd(1, qb + 32, (int)(dp * 2));
            const int kt_stride = (int)(mp * 4);
            for (size_t j = 0; j < mp; j += 64) {
                _tile_zero(4); _tile_zero(5); _tile_zero(6); _tile_zero(7);
                const uint16_t *b0 = kt + j * 2;
                _tile_loadd(2, b0, kt_stride);      _tile_dpbf16ps(4, 0, 2);
                _tile_loadd(3, b0 + 32, kt_stride); _tile_dpbf16ps(5, 0, 3);
                _tile_loadd(2, b0 + 64, kt_stride); _tile_dpbf16ps(6, 0, 2);
                _tile_loadd(3, b0 + 96, kt_stride); _tile_dpbf16ps(7, 0, 3);
                if (dp > 32) {
                    const uint16_t *b1 = kt + 16 * mp * 2 + j * 2;
                    _tile_loadd(2, b1, kt_stride);      _tile_dpbf16ps(4, 1, 2);
                    _tile_loadd(3, b1 + 32, kt_stride); _tile_dpbf16ps(5, 1, 3);
                    _tile_loadd(2, b1 + 64, kt_stride); _tile_dpbf16ps(6, 1, 2);
                    _tile_loadd(3, b1 + 96, kt_stride); _tile_dpbf16ps(7, 1, 3);
                }
                _tile_stored(4, s + j, kt_stride);
                _tile_stored(5, s + j + 16, kt_stride);
                _tile_stored(6, s + j + 32, kt_stride);
                _tile_stored(7, s + j + 48, kt_stride);
            }
            for (size_t r = 0; r < rows; r++) mdq__softmax_row_bf16_avx512(s + r * mp, p + r * mp, m, scale);
            // O = P V, 32 keys per step, d columns in tiles 4..7.
            _tile_zero(4); _tile_zero(5); _tile_zero(6); _tile_zero(7);
            const int v_stride = (int)(dq * 4);
            for (size_t kk = 0; kk < mp; kk += 32) {
                _tile_loadd(0, p + kk, (int)(mp * 2));
                const uint16_t *vb = vv + (kk / 2) * dq * 2;
                _tile_loadd(1, vb, v_stride); _tile_dpbf16ps(4, 0, 1);
                if (dq > 16) { _tile_loadd(2, vb + 32, v_stride); _tile_dpbf16ps(5, 0, 2); }
                if (dq > 32) { _tile_loadd(3, vb + 64, v_stride); _tile_dpbf16ps(6, 0, 3); }
                if (dq > 48) { _tile_loadd(1, vb + 96, v_stride); _tile_dpbf16ps(7, 0, 1); }
            }
            _tile_stored(4, o, 256);
            if (dq > 16) _tile_stored(5, o + 16, 256);
            if (dq > 32) _tile_stored(6, o + 32, 256);
            if (dq > 48) _tile_stored(7, o + 48, 256);
            for (size_t r = 0; r < rows; r++) memcpy(oh + (r0 + r) * c, o + r * 64, d * sizeof(float));
        }
    }
    _tile_release();
    free(mem);
    return 0;
}

#else
int mdq_cpu_has_amx_bf16(void) { return 0; }
int mdq_attention_bf16_amx(const uint16_t *qp, const uint16_t *ktp, const uint16_t *vvp, float *out, size_t n,
                           size_t m, size_t heads, size_t d, float scale, size_t bh_begin, size_t bh_end) {
    (void)qp; (void)ktp; (void)vvp; (void)out; (void)n; (void)m; (void)heads; (void)d; (void)scale;
    (void)bh_begin; (void)bh_end;
    return -1;
}
#endif
