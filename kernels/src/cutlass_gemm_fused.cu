// W8A8 GEMM with the dequantization epilogue fused into CUTLASS's (2.x epilogue visitor tree, Sm80
// tensor ops), fp16 output, no residual:
//     y[m, n] = half((float)(acc − z8·wsum[n]) · (Δx·Δw[n]) + bias[n])
// the same operations in the same order as the separate epilogue kernel (this file is compiled with
// --fmad=false so the multiply and the bias add are not contracted into an FMA). Opt-in
// (MIXDQ_CUDA_FUSED=1) until a GPU run has checked it against the unfused path; see mixdq_cuda.cu.
#include "cutlass_run.h"

#include <cutlass/cutlass.h>
#include <cutlass/gemm/device/gemm_universal.h>  // before the visitors, which assume what it brings in
#include <cutlass/epilogue/threadblock/fusion/visitors.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/kernel/default_gemm_universal_with_visitor.h>

namespace mixdq {
namespace {

using namespace cute;
using cutlass::epilogue::threadblock::Sm80EVT;
using ThreadblockShape = cutlass::gemm::GemmShape<128, 128, 64>;
using WarpShape = cutlass::gemm::GemmShape<64, 64, 64>;
using InstructionShape = cutlass::gemm::GemmShape<16, 8, 32>;
constexpr int kAlignmentC = 8;  // 8 halves: 128-bit stores
constexpr int kEpilogueStages = 1;
constexpr auto RN = cutlass::FloatRoundStyle::round_to_nearest;

using ThreadMap = cutlass::epilogue::threadblock::OutputTileThreadLayout<ThreadblockShape, WarpShape, cutlass::half_t,
                                                                          kAlignmentC, kEpilogueStages>;
using Accum = cutlass::epilogue::threadblock::VisitorAccFetch;
using RowI32 = cutlass::epilogue::threadblock::VisitorRowBroadcast<ThreadMap, int32_t, Stride<_0, _1, int32_t>>;
using RowF32 = cutlass::epilogue::threadblock::VisitorRowBroadcast<ThreadMap, float, Stride<_0, _1, int32_t>>;
using ScalarI32 = cutlass::epilogue::threadblock::VisitorScalarBroadcast<int32_t>;
using ScalarF32 = cutlass::epilogue::threadblock::VisitorScalarBroadcast<float>;
template <template <class> class Fn, class Out, class Compute>
using Op = cutlass::epilogue::threadblock::VisitorCompute<Fn, Out, Compute, RN>;

using Corr = Sm80EVT<Op<cutlass::multiplies, int32_t, int32_t>, ScalarI32, RowI32>;   // z8 · wsum[n]
using Centred = Sm80EVT<Op<cutlass::minus, int32_t, int32_t>, Accum, Corr>;           // acc − z8·wsum[n]
using Scale = Sm80EVT<Op<cutlass::multiplies, float, float>, ScalarF32, RowF32>;      // Δx · Δw[n]
using Dequant = Sm80EVT<Op<cutlass::multiplies, float, float>, Centred, Scale>;       // (float)centred · scale
using Biased = Sm80EVT<Op<cutlass::plus, cutlass::half_t, float>, Dequant, RowF32>;   // + bias[n] (0 when NULL), to half
using Store = cutlass::epilogue::threadblock::VisitorAuxStore<ThreadMap, cutlass::half_t, RN, Stride<int64_t, _1, int64_t>>;
using Tree = Sm80EVT<Store, Biased>;

using Kernel = typename cutlass::gemm::kernel::DefaultGemmWithVisitor<
    int8_t, cutlass::layout::RowMajor, cutlass::ComplexTransform::kNone, 16, int8_t, cutlass::layout::ColumnMajor,
    cutlass::ComplexTransform::kNone, 16, cutlass::half_t, cutlass::layout::RowMajor, kAlignmentC, int32_t, float,
    cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80, ThreadblockShape, WarpShape, InstructionShape, Tree,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<>, 4, cutlass::arch::OpMultiplyAddSaturate,
    kEpilogueStages>::GemmKernel;
using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

}  // namespace

int32_t cutlass_gemm_w8a8_f16(const int8_t *a, const int8_t *w, int m, int n, int k, const int32_t *wsum, int32_t z8, float delta,
                              const float *wscale, const float *bias, void *y, cudaStream_t stream) {
    const int32_t ldn = n;
    typename Tree::Arguments callbacks{
        {                                                     // Biased
            {                                                 // Dequant
                {                                             // Centred
                    {},                                       // Accum
                    {{{z8}}, {wsum, 0, {_0{}, _1{}, ldn}}, {}},  // Corr: z8, wsum[n], multiply
                    {}},                                      // minus
                {{{delta}}, {wscale, 0.0f, {_0{}, _1{}, ldn}}, {}},  // Scale
                {}},                                          // multiply
            {bias, 0.0f, {_0{}, _1{}, ldn}},                  // bias[n], 0 when NULL
            {}},                                              // plus
        {(cutlass::half_t *)y, {(int64_t)n, _1{}, (int64_t)m * n}}};  // Store
    typename Gemm::Arguments args(cutlass::gemm::GemmUniversalMode::kGemm, {m, n, k}, 1, callbacks, a, w, nullptr, nullptr,
                                  (int64_t)m * k, (int64_t)n * k, 0, 0, k, k, 0, 0);
    char what[96];
    snprintf(what, sizeof what, "CUTLASS fused W8A8 GEMM m=%d n=%d k=%d", m, n, k);
    return run_cutlass<Gemm>(args, what, stream);
}

}  // namespace mixdq
