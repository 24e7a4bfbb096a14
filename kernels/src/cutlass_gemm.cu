// s8 × s8 -> s32 GEMM on tensor cores (CUTLASS 2.x API, Sm80 kernels; they run on sm_90 as well).
// The epilogue passes the accumulators through unchanged (ScaleType::Nothing, int32 compute), so the
// result is the exact integer sum; MixDQ's dequantization runs in mixdq_cuda.cu.
#include "cutlass_run.h"

#include <cutlass/cutlass.h>
#include <cutlass/gemm/device/gemm.h>
#include <cutlass/epilogue/thread/linear_combination.h>

namespace mixdq {
namespace {

using Epilogue = cutlass::epilogue::thread::LinearCombination<
    int32_t, 4, int32_t, int32_t, cutlass::epilogue::thread::ScaleType::Nothing>;

// A row-major [m, k]; B column-major [k, n], which is W [n, k] row-major; C row-major [m, n].
// Tile 128×128×64, warps 64×64×64, mma 16×8×32, 4 stages: CUTLASS's usual sm_80 int8 choice.
using Gemm = cutlass::gemm::device::Gemm<
    int8_t, cutlass::layout::RowMajor, int8_t, cutlass::layout::ColumnMajor, int32_t, cutlass::layout::RowMajor, int32_t,
    cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80, cutlass::gemm::GemmShape<128, 128, 64>,
    cutlass::gemm::GemmShape<64, 64, 64>, cutlass::gemm::GemmShape<16, 8, 32>, Epilogue,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<>, 4, 16, 16, false,
    cutlass::arch::OpMultiplyAddSaturate>;

}  // namespace

int32_t cutlass_gemm_s8s8s32(const int8_t *a, const int8_t *w, int32_t *acc, int m, int n, int k, cudaStream_t stream) {
    typename Gemm::Arguments args({m, n, k}, {a, k}, {w, k}, {acc, n}, {acc, n}, {});
    char what[96];
    snprintf(what, sizeof what, "CUTLASS int8 GEMM m=%d n=%d k=%d", m, n, k);
    return run_cutlass<Gemm>(args, what, stream);
}

}  // namespace mixdq
