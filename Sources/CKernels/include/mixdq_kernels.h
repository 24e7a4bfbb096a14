// mixdq_kernels.h: the elementwise and reduction kernels Swift cannot vectorise.
// Every public kernel `mdq_X` dispatches at run time (AVX-512 > AVX2+FMA > scalar) and has a
// scalar reference `mdq_X_ref` that the tests compare each variant against.
// All tensors are contiguous float32 unless stated; `y` may alias `x` unless stated.
#ifndef MIXDQ_KERNELS_H
#define MIXDQ_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- ISA selection -------------------------------------------------------------------------
typedef enum { MDQ_ISA_SCALAR = 0, MDQ_ISA_AVX2 = 1, MDQ_ISA_AVX512 = 2 } mdq_isa;
mdq_isa mdq_isa_detected(void);          // best ISA this CPU supports, capped by MIXDQ_MAX_CPU_ISA
                                         // (else ONEDNN_MAX_CPU_ISA): SSE41 = scalar, AVX2, AVX512*
mdq_isa mdq_isa_active(void);            // ISA the dispatchers use now
void mdq_isa_force(mdq_isa isa);         // tests: pin a variant (clamped to what the CPU has)
int mdq_cpu_has_avx512_bf16(void);       // oneDNN bf16 runs natively only with this
int mdq_cpu_has_avx512_vnni(void);
int mdq_cpu_has_amx_bf16(void);          // AMX tiles with bf16 granted to this process, and allowed
                                         // by the ceiling (its name must contain AMX, or be ALL)

// ---- activations -----------------------------------------------------------------------------
void mdq_silu(const float *x, float *y, size_t n);          // x * sigmoid(x)
void mdq_gelu_erf(const float *x, float *y, size_t n);      // 0.5 * x * erfc(-x / sqrt(2)) (exact GELU)
void mdq_quick_gelu(const float *x, float *y, size_t n);    // x * sigmoid(1.702 x)
// GEGLU: proj is [rows, 2*inner]; out[r, i] = proj[r, i] * gelu_erf(proj[r, inner + i]). out must not alias proj.
void mdq_geglu(const float *proj, float *out, size_t rows, size_t inner);
// GEGLU rounded to bf16 (round to nearest even), bit for bit mdq_geglu then mdq_f32_to_bf16: a bf16
// matmul's input written straight from the projection. Returns 0, or -2 when out of memory.
int mdq_geglu_bf16(const float *proj, uint16_t *out, size_t rows, size_t inner);

// ---- attention -------------------------------------------------------------------------------
// bf16 multi-head attention in blocks of 16 query rows, in two steps. First q [B, n, heads*d], k and
// v [B, m, heads*d] (fp32) are rounded to bf16 into zeroed buffers of mdq_attention_bf16_packed_count
// elements, in the layouts the kernels read (needs AVX-512): per (batch, head) the queries as
// [n rounded up to 16][d rounded up to 32], K^T and V in pairs of dims and of keys. Then for the
// flattened (batch, head) indices [bh_begin, bh_end), out [B, n, heads*d] (fp32) =
// bf16(softmax(scale * q k^T)) v, fp32 accumulation and float softmax sums, one 16-row query block
// at a time (the scores never leave the cache), on AMX tiles (mdq_attention_bf16_amx, needs
// mdq_cpu_has_amx_bf16()) or AVX512-BF16 dot products (mdq_attention_bf16_avx512, needs
// mdq_attention_bf16_avx512_available()). d <= 64. Returns 0, or < 0 (bad shape: -1, no memory: -2) without
// writing out.
typedef enum { MDQ_ATTENTION_QUERIES = 0, MDQ_ATTENTION_KEYS = 1, MDQ_ATTENTION_VALUES = 2 } mdq_attention_layout;
size_t mdq_attention_bf16_packed_count(int layout, size_t batch, size_t tokens, size_t heads, size_t d);
void mdq_attention_bf16_pack(const float *x, size_t tokens, size_t heads, size_t d, int layout, size_t row_begin,
                             size_t row_end, uint16_t *dst);
int mdq_attention_bf16_amx(const uint16_t *qp, const uint16_t *ktp, const uint16_t *vvp, float *out, size_t n,
                           size_t m, size_t heads, size_t d, float scale, size_t bh_begin, size_t bh_end);
int mdq_attention_bf16_avx512_available(void);  // VDPBF16PS here, and allowed by the ISA ceiling
int mdq_attention_bf16_avx512(const uint16_t *qp, const uint16_t *ktp, const uint16_t *vvp, float *out, size_t n,
                              size_t m, size_t heads, size_t d, float scale, size_t bh_begin, size_t bh_end);

// ---- normalisation and softmax -----------------------------------------------------------------
// Row-wise softmax of (x * scale), in place, max-subtracted.
void mdq_softmax_rows(float *x, size_t rows, size_t cols, float scale);
// GroupNorm on NHWC: x is [n, hw, c]; groups split c into contiguous blocks; biased variance over
// (c/groups)*hw; statistics accumulated in double. gamma/beta per channel. silu != 0 fuses SiLU.
void mdq_group_norm_nhwc(const float *x, float *y, size_t n, size_t hw, size_t c, size_t groups,
                         float eps, const float *gamma, const float *beta, int silu);
// LayerNorm over the last axis: x is [rows, c].
void mdq_layer_norm(const float *x, float *y, size_t rows, size_t c, float eps,
                    const float *gamma, const float *beta);

// ---- arithmetic --------------------------------------------------------------------------------
void mdq_add(const float *a, const float *b, float *y, size_t n);                 // y = a + b
void mdq_add_bias_rows(float *y, const float *bias, size_t rows, size_t c);     // y[r, :] += bias
void mdq_scale(const float *x, float *y, size_t n, float s);                     // y = x * s

// ---- dtype conversion ----------------------------------------------------------------------------
void mdq_f16_to_f32(const uint16_t *x, float *y, size_t n);      // IEEE half -> float (exact)
void mdq_bf16_to_f32(const uint16_t *x, float *y, size_t n);     // exact
void mdq_f32_to_bf16(const float *x, uint16_t *y, size_t n);     // round to nearest even, NaN kept NaN

// ---- quantization (MixDQ fake quant; formulas in mixdq-method.md section 3.3) -------------------
// All rounding is round-half-to-even of (x / delta) computed with a true division (as torch does).
// q = clamp(round(x / delta) + zero_point, qmin, qmax); y = (q - zero_point) * delta
void mdq_fake_quant_tensor(const float *x, float *y, size_t n, float delta, float zero_point,
                           float qmin, float qmax);
// Per-row (output channel) symmetric: w is [rows, cols], delta[rows], zero point 0.
void mdq_fake_quant_rows(const float *w, float *y, size_t rows, size_t cols, const float *delta,
                         float qmin, float qmax);
// Min and max over n elements (n >= 1). NaN-free input assumed.
void mdq_minmax(const float *x, size_t n, float *min_out, float *max_out);
// Per-row max |x| over a [rows, cols] matrix.
void mdq_absmax_rows(const float *x, size_t rows, size_t cols, float *absmax_out);

// ---- input checks --------------------------------------------------------------------------------
// Number of NaN and +-Inf elements (exponent bits all ones; decided on the bits, so -ffast-math
// cannot fold it away). Weights are checked with it as they load.
size_t mdq_count_nonfinite(const float *x, size_t n);

// ---- process runtime -----------------------------------------------------------------------------
// Fixed mmap threshold for large blocks (so freed tensors return to the OS) and trim threshold.
void mdq_tune_allocator(int mmap_threshold_bytes, int trim_threshold_bytes);
// "gperftools X.Y" when tcmalloc serves this process's malloc, else NULL (glibc malloc).
const char *mdq_allocator_version(void);
// Returns the allocator's free pages to the system (tcmalloc: ReleaseFreeMemory; glibc: malloc_trim).
void mdq_release_free_memory(void);
// 1 when libgomp (oneDNN's OpenMP runtime) is loaded in this process, so mdq_parallel_for can use it.
int mdq_openmp_available(void);
// Runs body(context, p) for p in [0, parts) on the OpenMP team (at most `parts` threads, the calling
// thread among them), each part exactly once; returns when all have run. -1 (nothing run) without
// libgomp.
int mdq_parallel_for(long parts, void (*body)(void *context, long part), void *context);

// ---- scalar references (same contracts) ------------------------------------------------------
void mdq_silu_ref(const float *x, float *y, size_t n);
void mdq_gelu_erf_ref(const float *x, float *y, size_t n);
void mdq_quick_gelu_ref(const float *x, float *y, size_t n);
void mdq_geglu_ref(const float *proj, float *out, size_t rows, size_t inner);
void mdq_softmax_rows_ref(float *x, size_t rows, size_t cols, float scale);
void mdq_group_norm_nhwc_ref(const float *x, float *y, size_t n, size_t hw, size_t c, size_t groups,
                             float eps, const float *gamma, const float *beta, int silu);
void mdq_layer_norm_ref(const float *x, float *y, size_t rows, size_t c, float eps,
                        const float *gamma, const float *beta);
void mdq_add_ref(const float *a, const float *b, float *y, size_t n);
void mdq_add_bias_rows_ref(float *y, const float *bias, size_t rows, size_t c);
void mdq_scale_ref(const float *x, float *y, size_t n, float s);
void mdq_f16_to_f32_ref(const uint16_t *x, float *y, size_t n);
void mdq_bf16_to_f32_ref(const uint16_t *x, float *y, size_t n);
void mdq_f32_to_bf16_ref(const float *x, uint16_t *y, size_t n);
void mdq_fake_quant_tensor_ref(const float *x, float *y, size_t n, float delta, float zero_point,
                               float qmin, float qmax);
void mdq_fake_quant_rows_ref(const float *w, float *y, size_t rows, size_t cols, const float *delta,
                             float qmin, float qmax);
void mdq_minmax_ref(const float *x, size_t n, float *min_out, float *max_out);
void mdq_absmax_rows_ref(const float *x, size_t rows, size_t cols, float *absmax_out);
size_t mdq_count_nonfinite_ref(const float *x, size_t n);

// ---- INT8 (W8A8) building blocks (int8_*.c; formulas in mixdq-method.md sections 3.3, 7.2, 7.3) --------
// u8 activation codes: q = clamp(round_half_even(x / delta) + zero_point, 0, qmax) with qmax = 2^bits - 1
// (255 for 8-bit activations, 15 for MixDQ's 4-bit ones), true division and
// the operations of mdq_fake_quant_tensor, so (q - zero_point) * delta equals its output; NaN -> 0.
void mdq_quantize_u8(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax);
// Dequantization epilogue over acc [rows, n] (s32): y[r, c] = (float)(acc[r, c] - zero_point * wsum[c])
// * scale[c] (+ bias[c] when bias is not NULL) (+ residual[r, c] when residual is not NULL: the
// residual add fused, in the order forward-then-add gives). The subtraction wraps in int32; one float
// multiply, float adds, no FMA, so every variant equals the reference bit for bit. y may be acc itself (in
// place: the s32 products written into the float output's storage), but must not partly overlap it.
void mdq_dequant_s32_rows(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                          const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual);
// 7-bit split for CPUs without VNNI (u8 x s8 through VPMADDUBSW saturates int16 pair sums):
// hi = q >> 7 (0 or 1), lo = q & 127, so q = 128 * hi + lo and neither half can saturate.
void mdq_split_u8_hi_lo(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n);
// acc = 128 * hi + lo (wrapping int32): recombines the two halves' integer products. acc may alias lo.
void mdq_combine_hi_lo_s32(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n);

// Scalar references (the yardsticks of the SIMD variants and of the oneDNN INT8 primitives).
void mdq_quantize_u8_ref(const float *x, uint8_t *q, size_t n, float delta, float zero_point, float qmax);
void mdq_dequant_s32_rows_ref(const int32_t *acc, float *y, size_t rows, size_t n, int32_t zero_point,
                              const int32_t *wsum, const float *scale, const float *bias,
                          const float *residual);
void mdq_split_u8_hi_lo_ref(const uint8_t *q, uint8_t *hi, uint8_t *lo, size_t n);
void mdq_combine_hi_lo_s32_ref(const int32_t *hi, const int32_t *lo, int32_t *acc, size_t n);
// c[i, j] = sum_p a[i, p] * w[j, p]: a is [m, k] u8, w is [n, k] s8 (a Linear's [out, in]), c [m, n] s32.
void mdq_gemm_u8s8s32_ref(size_t m, size_t n, size_t k, const uint8_t *a, const int8_t *w, int32_t *c);

// Exact u8 x s8 -> s32 GEMM on int16 pair products (VPMADDWD): the way to exact W8A8 on CPUs without
// VNNI (oneDNN's u8 x s8 there saturates). c[i * ldc + j] = sum_p a[i * lda + p] * w[j * k + p], equal
// to mdq_gemm_u8s8s32_ref. Weights are packed once (mdq_gemm_s16_pack_weights, 8-bit codes in
// 16-column panels, mdq_gemm_s16_packed_count bytes). mdq_gemm_u8s8s32_s16 returns 0 on success, -1
// where the CPU (or the ISA limit) has no AVX2, -2 when its scratch cannot be allocated.
size_t mdq_gemm_s16_packed_count(size_t n, size_t k);
void mdq_gemm_s16_pack_weights(const int8_t *w, size_t n, size_t k, int8_t *packed);
int mdq_gemm_s16_available(void);
int mdq_gemm_u8s8s32_s16(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                         int32_t *c, size_t ldc);
// The same products with the W8A8 dequantization fused into the last K block's stores:
// y[i, j] = float(c - zero_point * wsum[j]) * scale[j] (+ bias[j]) (+ residual[i * ldr + j]), the
// operations of mdq_dequant_s32_rows_ref in its order (bit-identical to the GEMM then that epilogue).
// y doubles as the s32 scratch of the partial sums, so residual (or NULL) must not overlap it.
int mdq_gemm_u8s8_dequant_s16(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *packed,
                              float *y, size_t ldy, int32_t zero_point, const int32_t *wsum, const float *scale,
                              const float *bias, const float *residual, size_t ldr);
// Direct convolution, integer only: x is NHWC u8 [batch, h, w, c], weight OIHW s8 [o, c, kernel, kernel],
// y NHWC s32 [batch, oh, ow, o] with oh = (h + 2 padding - kernel) / stride + 1 (same for ow). Taps
// outside the image read pad_code (the activation zero point: real value 0). Nothing is written when
// stride is 0 or the kernel does not fit.
void mdq_conv_u8s8s32_ref(const uint8_t *x, size_t batch, size_t h, size_t w, size_t c, const int8_t *weight,
                          size_t o, size_t kernel, size_t stride, size_t padding, uint8_t pad_code, int32_t *y);

// ---- packed low-bit weight codes (pack_*.c) ------------------------------------------------------
// Layout at rest, in memory and on disk: the codes in order, each a two's complement field of `bits`
// bits, packed little end first.
//   4-bit: code i sits in byte i/2, the low nibble for even i, the high nibble for odd i.
//   2-bit: code i sits in byte i/4, at bits 2*(i%4) and 2*(i%4)+1.
// A final partial byte has its unused bits zero, so n codes take ceil(n * bits / 8) bytes.
// Example: 4-bit codes [-8, 7, 0, -1, 3] are bytes [0x78, 0xF0, 0x03].
// Packing assumes every code is in range ([-8, 7] for 4 bits, [-2, 1] for 2 bits; callers validate;
// bits beyond the field are dropped). Unpacking sign-extends each field to an s8 code. packed and
// codes must not overlap; neither needs any alignment.
void mdq_pack_s4(const int8_t *codes, uint8_t *packed, size_t n);
void mdq_unpack_s4(const uint8_t *packed, int8_t *codes, size_t n);
void mdq_pack_s2(const int8_t *codes, uint8_t *packed, size_t n);
void mdq_unpack_s2(const uint8_t *packed, int8_t *codes, size_t n);
void mdq_pack_s4_ref(const int8_t *codes, uint8_t *packed, size_t n);
void mdq_unpack_s4_ref(const uint8_t *packed, int8_t *codes, size_t n);
void mdq_pack_s2_ref(const int8_t *codes, uint8_t *packed, size_t n);
void mdq_unpack_s2_ref(const uint8_t *packed, int8_t *codes, size_t n);

#ifdef __cplusplus
}
#endif
#endif
