// s8 × s8 -> s32 implicit-GEMM convolution on tensor cores (CUTLASS 2.x, Sm80 kernels), NHWC input,
// KRSC weights, NHWC s32 output, without padding: mixdq_cuda_quantize writes the input into a padded
// buffer whose border holds the zero-point code, the CPU's convention, so no position-dependent
// correction is needed. Accumulators pass through unchanged (exact integers).
#include "cutlass_run.h"

#include <cutlass/cutlass.h>
#include <cutlass/conv/conv2d_problem_size.h>
#include <cutlass/conv/device/implicit_gemm_convolution.h>
#include <cutlass/conv/kernel/default_conv2d_fprop.h>
#include <cutlass/epilogue/thread/linear_combination.h>

namespace mixdq {
namespace {

using Epilogue = cutlass::epilogue::thread::LinearCombination<
    int32_t, 4, int32_t, int32_t, cutlass::epilogue::thread::ScaleType::Nothing>;

// Tile 128×128×64, warps 64×64×64, mma 16×8×32, 3 stages (CUTLASS's s8 NHWC fprop test shape).
using Kernel = typename cutlass::conv::kernel::DefaultConv2dFprop<
    int8_t, cutlass::layout::TensorNHWC, int8_t, cutlass::layout::TensorNHWC, int32_t, cutlass::layout::TensorNHWC, int32_t,
    cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80, cutlass::gemm::GemmShape<128, 128, 64>,
    cutlass::gemm::GemmShape<64, 64, 64>, cutlass::gemm::GemmShape<16, 8, 32>, Epilogue,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<>, 3, cutlass::arch::OpMultiplyAddSaturate,
    cutlass::conv::IteratorAlgorithm::kOptimized, cutlass::conv::StrideSupport::kStrided, 16, 16>::Kernel;
using Conv = cutlass::conv::device::ImplicitGemmConvolution<Kernel>;

}  // namespace

int32_t cutlass_conv_s8s8s32(const int8_t *x, const int8_t *w, int32_t *acc, int batch, int in_h, int in_w, int channels,
                             int out, int ksize, int stride, cudaStream_t stream) {
    const int oh = (in_h - ksize) / stride + 1, ow = (in_w - ksize) / stride + 1;
    cutlass::conv::Conv2dProblemSize problem({batch, in_h, in_w, channels}, {out, ksize, ksize, channels}, {0, 0, 0, 0},
                                             {stride, stride}, {1, 1}, {batch, oh, ow, out},
                                             cutlass::conv::Mode::kCrossCorrelation, 1);
    cutlass::TensorRef<int8_t, cutlass::layout::TensorNHWC> tx(const_cast<int8_t *>(x),
                                                             cutlass::layout::TensorNHWC::packed({batch, in_h, in_w, channels}));
    cutlass::TensorRef<int8_t, cutlass::layout::TensorNHWC> tw(const_cast<int8_t *>(w),
                                                             cutlass::layout::TensorNHWC::packed({out, ksize, ksize, channels}));
    cutlass::TensorRef<int32_t, cutlass::layout::TensorNHWC> ty(acc, cutlass::layout::TensorNHWC::packed({batch, oh, ow, out}));
    typename Conv::Arguments args(problem, tx, tw, ty, ty, {});
    char what[128];
    snprintf(what, sizeof what, "CUTLASS int8 conv %dx%dx%dx%d -> %d, %dx%d stride %d", batch, in_h, in_w, channels, out, ksize,
             ksize, stride);
    return run_cutlass<Conv>(args, what, stream);
}

}  // namespace mixdq
