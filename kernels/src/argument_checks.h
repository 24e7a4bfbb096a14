// Argument checks shared by libmixdq_cuda.so and its CPU stand-in (tests/cpu_mock.cu), so both refuse
// the same inputs with the same words. Included inside a namespace that already declares
// `int32_t fail(int32_t status, const char *fmt, ...)` (the file's message recorder).
#pragma once
#include <math.h>

// One quantized part: weights, sums and scales present, 2...8-bit activations, Δx positive and finite,
// the zero point an integer code.
inline int32_t check_part(const char *fn, int index, const mixdq_cuda_qpart &p) {
    if (!p.weight || !p.wsum || !p.wscale)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: part %d has a NULL weight, wsum or wscale", fn, index);
    if (p.bits < 2 || p.bits > 8)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: part %d: %d-bit activations (2 ... 8 supported)", fn, index, p.bits);
    const float qmax = (float)((1 << p.bits) - 1);
    if (!(p.delta > 0.0f) || p.delta != p.delta || p.delta > 3.0e38f)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: part %d: Δx %g is not a positive finite number", fn, index, (double)p.delta);
    if (!(p.zero_point >= 0.0f && p.zero_point <= qmax) || p.zero_point != rintf(p.zero_point))
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: part %d: zero point %g is not an integer in 0 ... %g", fn, index,
                    (double)p.zero_point, (double)qmax);
    return MIXDQ_CUDA_OK;
}
