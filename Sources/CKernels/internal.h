// internal.h: private declarations shared by the CKernels translation units.
// Layout: isa.c (CPU detection + dispatchers), ref.c (scalar references = the SCALAR variant),
// simd_avx512.c / simd_avx2.c (thin ISA wrappers that #include simd_impl.h, the kernel template).
#ifndef MIXDQ_KERNELS_INTERNAL_H
#define MIXDQ_KERNELS_INTERNAL_H
#include "mixdq_kernels.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Active ISA for the dispatchers (initialised lazily on first use).
int mdq__isa(void);
// The ISA ceiling's name: MIXDQ_MAX_CPU_ISA, else ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA); NULL if none.
const char *mdq__isa_ceiling_name(void);
// Whether the ceiling allows an extension: no ceiling, ALL, or a ceiling whose name contains one of
// `names` (NULL-terminated; case-insensitive), as oneDNN names ISAs (AVX512_CORE_AMX, AVX10_1_512...).
int mdq__isa_ceiling_allows(const char *const *names);

// Body of a public dispatcher `mdq_X`: calls `mdq_X_avx512`, `mdq_X_avx2` or `mdq_X_ref` by the active ISA.
#if defined(__x86_64__) || defined(__i386__)
#define DISPATCH(name, args)                                  \
    do {                                                      \
        switch (mdq__isa()) {                                 \
        case MDQ_ISA_AVX512: name##_avx512 args; return;      \
        case MDQ_ISA_AVX2: name##_avx2 args; return;          \
        default: name##_ref args; return;                     \
        }                                                     \
    } while (0)
#else
#define DISPATCH(name, args) name##_ref args
#endif

// Bit casts.
static inline uint32_t mdq__f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float mdq__u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// ---- shared normalisation helpers (scalar; every variant uses them so statistics agree bit for bit) ----
// LayerNorm statistics are accumulated in eight interleaved double partial sums: partial[i & 7] += ...
// (the AVX-512 variant keeps them in one zmm, AVX2 in two ymm), combined in this fixed order.
static inline double mdq__sum8(const double p[8]) {
    return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}
// GroupNorm: per-channel double sums (sum of x, then sum of (x - mean)^2) over hw rows in row order.
// Combines channel sums into group means; writes per-channel mean (double) into mean_ch.
void mdq__gn_means(const double *chsum, double *mean_ch, size_t c, size_t groups, size_t hw);
// Combines per-channel centred squares into per-channel affine coefficients y = fma(x, a, b).
void mdq__gn_coeffs(const double *chsq, const double *mean_ch, size_t c, size_t groups, size_t hw,
                    float eps, const float *gamma, const float *beta, float *a, float *b);
// Scalar SiLU used by the reference (double evaluation, rounded once).
float mdq__silu1_ref(float x);

#define MDQ_DECLARE_VARIANT(sfx)                                                                        \
    void mdq_silu_##sfx(const float *x, float *y, size_t n);                                           \
    void mdq_gelu_erf_##sfx(const float *x, float *y, size_t n);                                       \
    void mdq_quick_gelu_##sfx(const float *x, float *y, size_t n);                                     \
    void mdq_geglu_##sfx(const float *proj, float *out, size_t rows, size_t inner);                    \
    void mdq_softmax_rows_##sfx(float *x, size_t rows, size_t cols, float scale);                      \
    void mdq_group_norm_nhwc_##sfx(const float *x, float *y, size_t n, size_t hw, size_t c,            \
                                   size_t groups, float eps, const float *gamma, const float *beta,    \
                                   int silu);                                                          \
    void mdq_layer_norm_##sfx(const float *x, float *y, size_t rows, size_t c, float eps,              \
                              const float *gamma, const float *beta);                                  \
    void mdq_add_##sfx(const float *a, const float *b, float *y, size_t n);                            \
    void mdq_add_bias_rows_##sfx(float *y, const float *bias, size_t rows, size_t c);                  \
    void mdq_scale_##sfx(const float *x, float *y, size_t n, float s);                                 \
    void mdq_f16_to_f32_##sfx(const uint16_t *x, float *y, size_t n);                                  \
    void mdq_bf16_to_f32_##sfx(const uint16_t *x, float *y, size_t n);                                 \
    void mdq_f32_to_bf16_##sfx(const float *x, uint16_t *y, size_t n);                                 \
    void mdq_fake_quant_tensor_##sfx(const float *x, float *y, size_t n, float delta,                  \
                                     float zero_point, float qmin, float qmax);                        \
    void mdq_fake_quant_rows_##sfx(const float *w, float *y, size_t rows, size_t cols,                 \
                                   const float *delta, float qmin, float qmax);                        \
    void mdq_minmax_##sfx(const float *x, size_t n, float *min_out, float *max_out);                   \
    void mdq_absmax_rows_##sfx(const float *x, size_t rows, size_t cols, float *absmax_out);           \
    size_t mdq_count_nonfinite_##sfx(const float *x, size_t n);

MDQ_DECLARE_VARIANT(avx2)
MDQ_DECLARE_VARIANT(avx512)

// attention_amx.c's last softmax pass, fused with the bf16 rounding of the probabilities.
void mdq__softmax_row_bf16_avx512(float *x, uint16_t *y, size_t cols, float scale);
void mdq_geglu_bf16_avx512(const float *proj, uint16_t *out, size_t rows, size_t inner);

#endif
