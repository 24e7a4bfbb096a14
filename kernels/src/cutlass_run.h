// The one way every CUTLASS operator here is run: can_implement, a workspace if the operator asks for
// one, initialize, run; every failure a status with a message naming the operator and its shape.
#pragma once
#include "internal.h"
#include "../include/mixdq_cuda.h"

#include <cutlass/cutlass.h>
#include <stdio.h>

namespace mixdq {

// `what` names the operator and its problem (e.g. "CUTLASS int8 GEMM m=4096 n=640 k=5120").
template <typename Operator>
int32_t run_cutlass(const typename Operator::Arguments &args, const char *what, cudaStream_t stream) {
    Operator op;
    cutlass::Status s = op.can_implement(args);
    if (s != cutlass::Status::kSuccess) return fail(MIXDQ_CUDA_ERR_UNSUPPORTED, "%s: %s", what, cutlassGetStatusString(s));
    // No split-K, so no workspace is expected; should a CUTLASS version want one, it gets one.
    void *workspace = nullptr;
    const size_t workspace_bytes = Operator::get_workspace_size(args);
    if (workspace_bytes) {
        if (int32_t st = cuda_status(cudaMalloc(&workspace, workspace_bytes), "CUTLASS workspace")) return st;
    }
    s = op.initialize(args, workspace, stream);
    if (s == cutlass::Status::kSuccess) s = op.run(stream);
    if (workspace) {
        cudaStreamSynchronize(stream);
        cudaFree(workspace);
    }
    if (s != cutlass::Status::kSuccess) {
        cudaError_t e = cudaGetLastError();
        return fail(MIXDQ_CUDA_ERR_CUDA, "%s: %s (%s)", what, cutlassGetStatusString(s), cudaGetErrorString(e));
    }
    char launch[192];
    snprintf(launch, sizeof launch, "%s launch", what);
    return cuda_status(cudaGetLastError(), launch);
}

}  // namespace mixdq
