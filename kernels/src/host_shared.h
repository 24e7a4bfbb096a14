// Host code shared by libmixdq_cuda.so and its CPU stand-in (tests/cpu_mock.cu): argument checks (so
// both refuse the same inputs with the same words) and the workspace layout (so both size and carve it
// alike). Included inside a namespace that already declares
// `int32_t fail(int32_t status, const char *fmt, ...)` (the file's message recorder).
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

inline size_t align_up(size_t v) { return (v + 255) / 256 * 256; }

// Workspace of a Linear: the s8 codes, then the s32 accumulators (256-byte aligned pieces).
inline size_t linear_workspace_bytes(int64_t rows, int64_t in_features, int64_t out_features) {
    if (rows < 0 || in_features < 0 || out_features < 0) return 0;
    return align_up((size_t)(rows * in_features)) + align_up((size_t)(rows * out_features) * 4);
}

inline int32_t *linear_accumulators(void *workspace, int64_t rows, int64_t in_features) {
    return (int32_t *)((char *)workspace + align_up((size_t)(rows * in_features)));
}

// Workspace of a convolution: padded s8 codes of all input channels, then accumulators for two parts
// at most (a split shortcut). 0 for a shape without output.
inline size_t conv2d_workspace_bytes(int64_t batch, int64_t height, int64_t width, int64_t in_channels, int64_t out_channels,
                                     int32_t ksize, int32_t stride, int32_t pad) {
    if (batch < 0 || height < 0 || width < 0 || in_channels < 0 || out_channels < 0 || ksize < 1 || stride < 1 || pad < 0)
        return 0;
    const int64_t ph = height + 2 * pad, pw = width + 2 * pad;
    if (ph < ksize || pw < ksize) return 0;
    const int64_t oh = (ph - ksize) / stride + 1, ow = (pw - ksize) / stride + 1;
    return align_up((size_t)(batch * ph * pw * in_channels)) + 2 * align_up((size_t)(batch * oh * ow * out_channels) * 4);
}

struct ConvWorkspace {
    int8_t *codes;
    int32_t *acc[2];
};

// `padded_codes` = batch·ph·pw·in_channels, `outputs` = batch·oh·ow·out_channels.
inline ConvWorkspace conv2d_workspace(void *workspace, int64_t padded_codes, int64_t outputs) {
    char *base = (char *)workspace;
    ConvWorkspace w;
    w.codes = (int8_t *)base;
    w.acc[0] = (int32_t *)(base + align_up((size_t)padded_codes));
    w.acc[1] = (int32_t *)((char *)w.acc[0] + align_up((size_t)outputs * 4));
    return w;
}

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

// The parts of a convolution (one, or two for a split shortcut) cover its input channels in order.
inline int32_t check_parts(const char *fn, const mixdq_cuda_qpart *parts, int32_t nparts, int64_t in_channels) {
    if (!parts || nparts < 1 || nparts > 2) return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: %d parts (1 or 2)", fn, nparts);
    int64_t covered = 0;
    for (int i = 0; i < nparts; i++) {
        if (int32_t s = check_part(fn, i, parts[i])) return s;
        if (parts[i].first_channel != covered || parts[i].channels < 1)
            return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: part %d covers channels %lld + %lld; parts must cover the input in order", fn,
                        i, (long long)parts[i].first_channel, (long long)parts[i].channels);
        covered += parts[i].channels;
    }
    if (covered != in_channels)
        return fail(MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "%s: parts cover %lld of %lld input channels", fn, (long long)covered,
                    (long long)in_channels);
    return MIXDQ_CUDA_OK;
}
