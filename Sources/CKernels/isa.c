// isa.c: run-time CPU feature detection and the public dispatchers (AVX-512 > AVX2+FMA > scalar).
#define _GNU_SOURCE  // strcasestr
#include "internal.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int g_detected = -1;  // best ISA the CPU supports, computed once
static int g_active = -1;    // ISA the dispatchers use (== detected unless a test forced another)

static int detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return MDQ_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return MDQ_ISA_AVX2;
#endif
    return MDQ_ISA_SCALAR;
}

// An ISA ceiling from the environment, so one machine can run the suite as an older CPU would:
// MIXDQ_MAX_CPU_ISA, else oneDNN's own ONEDNN_MAX_CPU_ISA (then one variable limits both).
// Names follow oneDNN's: SSE41 (our scalar path), AVX2, AVX512*/AVX10* and ALL. -1: no ceiling.
const char *mdq__isa_ceiling_name(void) {
    const char *v = getenv("MIXDQ_MAX_CPU_ISA");
    if (!v || !*v) v = getenv("ONEDNN_MAX_CPU_ISA");
    if (!v || !*v) v = getenv("DNNL_MAX_CPU_ISA");
    return v && *v ? v : NULL;
}

int mdq__isa_ceiling_allows(const char *const *names) {
    const char *v = mdq__isa_ceiling_name();
    if (!v || strcasecmp(v, "ALL") == 0) return 1;
    for (; *names; names++)
        if (strcasestr(v, *names)) return 1;
    return 0;
}

static int env_ceiling(void) {
    const char *v = mdq__isa_ceiling_name();
    if (!v) return -1;
    if (strncasecmp(v, "AVX512", 6) == 0 || strncasecmp(v, "AVX10", 5) == 0 || strncasecmp(v, "AMX", 3) == 0 ||
        strcasecmp(v, "ALL") == 0)
        return MDQ_ISA_AVX512;
    if (strncasecmp(v, "AVX2", 4) == 0) return MDQ_ISA_AVX2;  // AVX2, AVX2_VNNI, AVX2_VNNI_2
    return MDQ_ISA_SCALAR;                                     // SSE41, AVX (no FMA/AVX2 kernels here)
}

static int detected(void) {
    int d = __atomic_load_n(&g_detected, __ATOMIC_RELAXED);
    if (d < 0) {
        d = detect();
        int ceiling = env_ceiling();
        if (ceiling >= 0 && ceiling < d) d = ceiling;
        __atomic_store_n(&g_detected, d, __ATOMIC_RELAXED);
    }
    return d;
}

int mdq__isa(void) {
    int a = __atomic_load_n(&g_active, __ATOMIC_RELAXED);
    if (a < 0) {
        a = detected();
        __atomic_store_n(&g_active, a, __ATOMIC_RELAXED);
    }
    return a;
}

mdq_isa mdq_isa_detected(void) { return (mdq_isa)detected(); }
mdq_isa mdq_isa_active(void) { return (mdq_isa)mdq__isa(); }

void mdq_isa_force(mdq_isa isa) {
    int want = (int)isa, d = detected();
    if (want < 0) want = 0;
    if (want > d) want = d;
    __atomic_store_n(&g_active, want, __ATOMIC_RELAXED);
}

int mdq_cpu_has_avx512_bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return detected() == MDQ_ISA_AVX512 && __builtin_cpu_supports("avx512bf16") ? 1 : 0;
#else
    return 0;
#endif
}

int mdq_cpu_has_avx512_vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return detected() == MDQ_ISA_AVX512 && __builtin_cpu_supports("avx512vnni") ? 1 : 0;
#else
    return 0;
#endif
}

// ---- dispatchers ----------------------------------------------------------------------------------
void mdq_silu(const float *x, float *y, size_t n) { DISPATCH(mdq_silu, (x, y, n)); }
void mdq_gelu_erf(const float *x, float *y, size_t n) { DISPATCH(mdq_gelu_erf, (x, y, n)); }
void mdq_quick_gelu(const float *x, float *y, size_t n) { DISPATCH(mdq_quick_gelu, (x, y, n)); }
void mdq_geglu(const float *proj, float *out, size_t rows, size_t inner) {
    DISPATCH(mdq_geglu, (proj, out, rows, inner));
}
// Only bf16 matmuls consume this, and they need AVX-512 (BF16); elsewhere the composition itself,
// a row at a time.
int mdq_geglu_bf16(const float *proj, uint16_t *out, size_t rows, size_t inner) {
#if defined(__x86_64__)
    if (mdq__isa() == MDQ_ISA_AVX512) { mdq_geglu_bf16_avx512(proj, out, rows, inner); return 0; }
#endif
    float *row = malloc((inner ? inner : 1) * sizeof(float));
    if (!row) return -2;
    for (size_t r = 0; r < rows; r++) {
        mdq_geglu(proj + r * 2 * inner, row, 1, inner);
        mdq_f32_to_bf16(row, out + r * inner, inner);
    }
    free(row);
    return 0;
}
void mdq_softmax_rows(float *x, size_t rows, size_t cols, float scale) {
    DISPATCH(mdq_softmax_rows, (x, rows, cols, scale));
}
void mdq_group_norm_nhwc(const float *x, float *y, size_t n, size_t hw, size_t c, size_t groups,
                         float eps, const float *gamma, const float *beta, int silu) {
    DISPATCH(mdq_group_norm_nhwc, (x, y, n, hw, c, groups, eps, gamma, beta, silu));
}
void mdq_layer_norm(const float *x, float *y, size_t rows, size_t c, float eps,
                    const float *gamma, const float *beta) {
    DISPATCH(mdq_layer_norm, (x, y, rows, c, eps, gamma, beta));
}
void mdq_add(const float *a, const float *b, float *y, size_t n) { DISPATCH(mdq_add, (a, b, y, n)); }
void mdq_add_bias_rows(float *y, const float *bias, size_t rows, size_t c) {
    DISPATCH(mdq_add_bias_rows, (y, bias, rows, c));
}
void mdq_scale(const float *x, float *y, size_t n, float s) { DISPATCH(mdq_scale, (x, y, n, s)); }
void mdq_f16_to_f32(const uint16_t *x, float *y, size_t n) { DISPATCH(mdq_f16_to_f32, (x, y, n)); }
void mdq_bf16_to_f32(const uint16_t *x, float *y, size_t n) { DISPATCH(mdq_bf16_to_f32, (x, y, n)); }
void mdq_f32_to_bf16(const float *x, uint16_t *y, size_t n) { DISPATCH(mdq_f32_to_bf16, (x, y, n)); }
void mdq_fake_quant_tensor(const float *x, float *y, size_t n, float delta, float zero_point,
                           float qmin, float qmax) {
    DISPATCH(mdq_fake_quant_tensor, (x, y, n, delta, zero_point, qmin, qmax));
}
void mdq_fake_quant_rows(const float *w, float *y, size_t rows, size_t cols, const float *delta,
                         float qmin, float qmax) {
    DISPATCH(mdq_fake_quant_rows, (w, y, rows, cols, delta, qmin, qmax));
}
void mdq_minmax(const float *x, size_t n, float *min_out, float *max_out) {
    DISPATCH(mdq_minmax, (x, n, min_out, max_out));
}
void mdq_absmax_rows(const float *x, size_t rows, size_t cols, float *absmax_out) {
    DISPATCH(mdq_absmax_rows, (x, rows, cols, absmax_out));
}
// Returns a value, so it cannot use DISPATCH.
size_t mdq_count_nonfinite(const float *x, size_t n) {
#if defined(__x86_64__)
    switch (mdq__isa()) {
    case MDQ_ISA_AVX512: return mdq_count_nonfinite_avx512(x, n);
    case MDQ_ISA_AVX2: return mdq_count_nonfinite_avx2(x, n);
    default: break;
    }
#endif
    return mdq_count_nonfinite_ref(x, n);
}
