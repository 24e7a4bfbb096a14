// Tests of libmixdq_cuda.so against the CPU references in reference.h: activation codes and s32
// accumulators bit for bit (random and odd shapes, padding and stride variants, zero points 0 and 255,
// 2...8-bit activations), layer outputs bit for bit in fp32 and within one rounding step (1 ulp) of the
// reference's rounding in fp16/bf16, split shortcuts, the BOS rows, error statuses, and every
// SDXL-Turbo layer geometry at 512×512, batch 1 and 2 (sampled outputs). Needs an sm_80+ GPU;
// exits 0 when every check passed, 1 otherwise, 77 when no GPU is there to test on.
#include "../include/mixdq_cuda.h"
#include "../bench/layers.h"
#include "reference.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <random>
#include <string>
#include <vector>

static int g_checks = 0, g_failures = 0;
static std::mt19937_64 g_rng(20241202);

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        g_checks++;                                                      \
        if (!(cond)) {                                                   \
            if (++g_failures <= 60) {                                    \
                printf("FAIL %s:%d: ", __FILE__, __LINE__);              \
                printf(__VA_ARGS__);                                     \
                printf("\n");                                            \
            }                                                            \
        }                                                                \
    } while (0)

// A failed API call ends the current test case (counted as a failure).
#define API(call)                                                                                       \
    do {                                                                                                \
        int32_t s_ = (call);                                                                            \
        if (s_ != MIXDQ_CUDA_OK) {                                                                      \
            g_failures++;                                                                               \
            printf("FAIL %s:%d: %s -> status %d: %s\n", __FILE__, __LINE__, #call, s_, mixdq_cuda_last_error()); \
            return;                                                                                     \
        }                                                                                               \
    } while (0)

// Device buffer through the library's own allocator.
struct Dev {
    void *p = nullptr;
    size_t bytes = 0;
    explicit Dev(size_t n) : bytes(n) {
        if (mixdq_cuda_malloc(&p, n ? n : 1) != MIXDQ_CUDA_OK) {
            printf("FATAL: %s\n", mixdq_cuda_last_error());
            exit(1);
        }
    }
    template <typename T> explicit Dev(const std::vector<T> &v) : Dev(v.size() * sizeof(T)) {
        if (mixdq_cuda_copy_to_device(p, v.data(), bytes, nullptr) != MIXDQ_CUDA_OK) {
            printf("FATAL: %s\n", mixdq_cuda_last_error());
            exit(1);
        }
    }
    ~Dev() { mixdq_cuda_free(p); }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
    template <typename T> std::vector<T> get(size_t n) const {
        std::vector<T> v(n);
        if (mixdq_cuda_copy_to_host(v.data(), p, n * sizeof(T), nullptr) != MIXDQ_CUDA_OK) {
            printf("FATAL: %s\n", mixdq_cuda_last_error());
            exit(1);
        }
        return v;
    }
};

// ---- element types on the host -------------------------------------------------------------------
static const char *dtype_name(int d) { return d == MIXDQ_CUDA_F16 ? "f16" : d == MIXDQ_CUDA_BF16 ? "bf16" : "f32"; }
static size_t dtype_size(int d) { return d == MIXDQ_CUDA_F32 ? 4 : 2; }

// The value the device reads: x rounded to dtype (RN) and widened back.
static float round_to(int d, float x) {
    if (d == MIXDQ_CUDA_F16) return __half2float(__float2half_rn(x));
    if (d == MIXDQ_CUDA_BF16) return __bfloat162float(__float2bfloat16_rn(x));
    return x;
}

static std::vector<uint8_t> encode(int d, const std::vector<float> &x) {
    std::vector<uint8_t> out(x.size() * dtype_size(d));
    for (size_t i = 0; i < x.size(); i++) {
        if (d == MIXDQ_CUDA_F16) {
            __half h = __float2half_rn(x[i]);
            memcpy(&out[i * 2], &h, 2);
        } else if (d == MIXDQ_CUDA_BF16) {
            __nv_bfloat16 h = __float2bfloat16_rn(x[i]);
            memcpy(&out[i * 2], &h, 2);
        } else {
            memcpy(&out[i * 4], &x[i], 4);
        }
    }
    return out;
}

static float decode(int d, const uint8_t *p) {
    if (d == MIXDQ_CUDA_F16) { __half h; memcpy(&h, p, 2); return __half2float(h); }
    if (d == MIXDQ_CUDA_BF16) { __nv_bfloat16 h; memcpy(&h, p, 2); return __bfloat162float(h); }
    float f; memcpy(&f, p, 4); return f;
}

// Distance in units in the last place of dtype between two values of dtype (0: equal bits).
static int64_t ulps(int d, float a, float b) {
    if (isnan(a) || isnan(b)) return (isnan(a) && isnan(b)) ? 0 : INT64_MAX;
    auto key = [&](float v) -> int64_t {
        int64_t bits;
        if (d == MIXDQ_CUDA_F32) { int32_t i; memcpy(&i, &v, 4); bits = i; return bits < 0 ? INT32_MIN - bits : bits; }
        uint16_t h;
        if (d == MIXDQ_CUDA_F16) { __half x = __float2half_rn(v); memcpy(&h, &x, 2); }
        else { __nv_bfloat16 x = __float2bfloat16_rn(v); memcpy(&h, &x, 2); }
        int64_t s = (int16_t)h;
        return s < 0 ? INT16_MIN - s : s;
    };
    int64_t k = key(a) - key(b);
    return k < 0 ? -k : k;
}

// ---- random data -----------------------------------------------------------------------------------
static std::vector<float> random_activations(size_t n, float delta, float zp, int bits, int dtype) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> pick(0, 19);
    const float qmax = (float)((1 << bits) - 1);
    std::vector<float> x(n);
    for (size_t i = 0; i < n; i++) {
        const int kind = pick(g_rng);
        float v;
        if (kind == 0) v = ((float)(int)(normal(g_rng) * qmax) + 0.5f) * delta;  // exact halfway: ties to even
        else if (kind == 1 || kind == 2) v = (kind == 1 ? 1e6f : -1e6f) * delta;  // clamps
        else v = normal(g_rng) * delta * qmax * 0.35f + (qmax * 0.5f - zp) * delta;
        x[i] = round_to(dtype, v);
    }
    return x;
}

static std::vector<int8_t> random_weights(size_t n, bool extremes = true) {
    std::uniform_int_distribution<int> u(-128, 127), pick(0, 15);
    std::vector<int8_t> w(n);
    for (auto &v : w) {
        int k = pick(g_rng);
        v = (int8_t)(extremes && k == 0 ? -128 : extremes && k == 1 ? 127 : u(g_rng));
    }
    return w;
}

static std::vector<float> random_floats(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = u(g_rng);
    return v;
}

// ---- cases ---------------------------------------------------------------------------------------------
static void test_quantize(int dtype, int bits, float zp, int pad, int signed_codes) {
    const int64_t b = 2, h = 5, w = 7, c = 19, ldx = 23;  // a channel slice of a wider tensor
    const float delta = 0.0173f;
    std::vector<float> x = random_activations((size_t)(b * h * w * ldx), delta, zp, bits, dtype);
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = -INFINITY;
    x[3] = -0.0f;
    Dev dx(encode(dtype, x));
    const int64_t n = b * (h + 2 * pad) * (w + 2 * pad) * c;
    Dev dq((size_t)n);
    API(mixdq_cuda_quantize(dtype, dx.p, b, h, w, c, ldx, pad, delta, zp, bits, signed_codes, dq.p, nullptr));
    std::vector<uint8_t> got = dq.get<uint8_t>((size_t)n);
    std::vector<uint8_t> want = ref_quantize_padded(x, b, h, w, c, ldx, pad, delta, zp, bits);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t expect = signed_codes ? (uint8_t)(int8_t)(want[i] - 128) : want[i];
        if (got[i] != expect && bad++ < 3)
            printf("  quantize %s bits %d z %g pad %d signed %d: code %lld = %d, want %d\n", dtype_name(dtype), bits, zp, pad,
                   signed_codes, (long long)i, got[i], expect);
    }
    CHECK(bad == 0, "quantize %s bits %d z %g pad %d signed %d: %d of %lld codes differ", dtype_name(dtype), bits, zp, pad,
          signed_codes, bad, (long long)n);
}

static void test_gemm(int64_t m, int64_t n, int64_t k) {
    std::vector<int8_t> a = random_weights((size_t)(m * k)), w = random_weights((size_t)(n * k));
    Dev da(a), dw(w), dacc((size_t)(m * n * 4));
    API(mixdq_cuda_gemm_s8s8s32((const int8_t *)da.p, (const int8_t *)dw.p, (int32_t *)dacc.p, m, n, k, nullptr));
    std::vector<int32_t> got = dacc.get<int32_t>((size_t)(m * n));
    int bad = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t s = 0;
            for (int64_t p = 0; p < k; p++) s += (int64_t)a[i * k + p] * w[j * k + p];
            if (got[i * n + j] != (int32_t)s) bad++;
        }
    CHECK(bad == 0, "gemm s8s8s32 %lldx%lldx%lld: %d of %lld accumulators differ", (long long)m, (long long)n, (long long)k, bad,
          (long long)(m * n));
}

// Quantize (padded, s8) + implicit-GEMM convolution: s32 accumulators against the u8 reference,
// acc_s = acc_u8 − 128·Σw (exact).
static void test_conv_acc(int64_t b, int64_t h, int64_t w, int64_t c, int64_t out, int k, int stride, int pad, float zp) {
    const int dtype = MIXDQ_CUDA_F16, bits = 8;
    const float delta = 0.021f;
    std::vector<float> x = random_activations((size_t)(b * h * w * c), delta, zp, bits, dtype);
    std::vector<int8_t> wt = random_weights((size_t)(out * k * k * c));
    const int64_t ph = h + 2 * pad, pw = w + 2 * pad, oh = (ph - k) / stride + 1, ow = (pw - k) / stride + 1;
    Dev dx(encode(dtype, x)), dw(wt), dq((size_t)(b * ph * pw * c)), dacc((size_t)(b * oh * ow * out * 4));
    API(mixdq_cuda_quantize(dtype, dx.p, b, h, w, c, c, pad, delta, zp, bits, 1, dq.p, nullptr));
    API(mixdq_cuda_conv_s8s8s32((const int8_t *)dq.p, (const int8_t *)dw.p, (int32_t *)dacc.p, b, ph, pw, c, out, k, stride,
                                nullptr));
    std::vector<int32_t> got = dacc.get<int32_t>((size_t)(b * oh * ow * out));
    std::vector<uint8_t> q = ref_quantize_padded(x, b, h, w, c, c, pad, delta, zp, bits);
    int bad = 0;
    for (int64_t n = 0; n < b; n++)
        for (int64_t y = 0; y < oh; y++)
            for (int64_t xx = 0; xx < ow; xx++)
                for (int64_t o = 0; o < out; o++) {
                    const int32_t want = (int32_t)((uint32_t)ref_acc_u8(q.data(), wt.data(), ph, pw, c, k, stride, n, y, xx, o) -
                                                   128u * (uint32_t)ref_wsum(wt.data(), (int64_t)k * k * c, o));
                    if (got[((n * oh + y) * ow + xx) * out + o] != want) bad++;
                }
    CHECK(bad == 0, "conv s32 %lldx%lldx%lldx%lld -> %lld, k %d s %d p %d z %g: %d accumulators differ", (long long)b, (long long)h,
          (long long)w, (long long)c, (long long)out, k, stride, pad, zp, bad);
}

struct Part {
    int64_t channels;
    float delta, zp;
    int bits;
    std::vector<int8_t> w;      // [out][k][k][channels]
    std::vector<int32_t> wsum;  // [out]
    std::vector<float> wscale;  // [out]
};

static Part make_part(int64_t channels, int64_t out, int k, float zp, int bits) {
    Part p;
    p.channels = channels;
    p.delta = 0.013f + 0.01f * (float)(g_rng() % 100) / 100.0f;
    p.zp = zp;
    p.bits = bits;
    p.w = random_weights((size_t)(out * k * k * channels));
    if (bits < 8)  // low-bit weights as MixDQ stores them (codes within ±2^(b−1))
        for (auto &v : p.w) v = (int8_t)(v / 16);
    p.wsum.resize((size_t)out);
    for (int64_t o = 0; o < out; o++) p.wsum[o] = ref_wsum(p.w.data(), (int64_t)k * k * channels, o);
    p.wscale = random_floats((size_t)out, 1e-3f, 1e-2f);
    return p;
}

// A W8A8 Conv2d (a Linear: h = rows, w = 1, k = 1) through the layer API, every output (or `samples`
// random ones) against the reference: fp32 bit for bit, fp16/bf16 within 1 ulp of the rounded reference.
static void test_layer(const char *label, int dtype, int64_t b, int64_t h, int64_t w, int64_t cin, int64_t out, int k, int stride,
                       int pad, int64_t split, float zp0, float zp1, int bits, bool bias_on, bool residual_on, bool linear,
                       int samples = 0) {
    std::vector<Part> parts;
    parts.push_back(make_part(split ? split : cin, out, k, zp0, bits));
    if (split) parts.push_back(make_part(cin - split, out, k, zp1, bits));
    std::vector<float> x((size_t)(b * h * w * cin));
    int64_t first = 0;
    for (auto &p : parts) {  // each part's channels with its own range
        std::vector<float> px = random_activations((size_t)(b * h * w * p.channels), p.delta, p.zp, p.bits, dtype);
        for (int64_t i = 0; i < b * h * w; i++)
            for (int64_t c = 0; c < p.channels; c++) x[(size_t)(i * cin + first + c)] = px[(size_t)(i * p.channels + c)];
        first += p.channels;
    }
    const int64_t ph = h + 2 * pad, pw = w + 2 * pad, oh = (ph - k) / stride + 1, ow = (pw - k) / stride + 1;
    const int64_t rows = b * oh * ow, ny = rows * out;
    std::vector<float> bias = random_floats((size_t)out, -1.0f, 1.0f);
    std::vector<float> residual = random_floats((size_t)ny, -2.0f, 2.0f);
    for (auto &r : residual) r = round_to(dtype, r);
    Dev dx(encode(dtype, x)), dbias(bias), dres(encode(dtype, residual)), dy((size_t)ny * dtype_size(dtype));
    std::vector<Dev *> owned;
    std::vector<mixdq_cuda_qpart> qp;
    first = 0;
    for (auto &p : parts) {
        Dev *dw = new Dev(p.w), *ds = new Dev(p.wsum), *dsc = new Dev(p.wscale);
        owned.insert(owned.end(), {dw, ds, dsc});
        qp.push_back({(const int8_t *)dw->p, (const int32_t *)ds->p, (const float *)dsc->p, p.channels, first, p.delta, p.zp, p.bits});
        first += p.channels;
    }
    int32_t status;
    if (linear) {
        Dev ws(mixdq_cuda_linear_workspace(h, cin, out));
        status = mixdq_cuda_w8a8_linear(dtype, dx.p, h, cin, out, qp.data(), bias_on ? (const float *)dbias.p : nullptr,
                                        residual_on ? dres.p : nullptr, dy.p, ws.p, ws.bytes, nullptr);
    } else {
        Dev ws(mixdq_cuda_conv2d_workspace(b, h, w, cin, out, k, stride, pad));
        status = mixdq_cuda_w8a8_conv2d(dtype, dx.p, b, h, w, cin, out, k, stride, pad, qp.data(), (int32_t)qp.size(),
                                        bias_on ? (const float *)dbias.p : nullptr, residual_on ? dres.p : nullptr, dy.p, ws.p,
                                        ws.bytes, nullptr);
    }
    for (Dev *d : owned) delete d;
    if (status != MIXDQ_CUDA_OK) {
        g_failures++;
        printf("FAIL %s (%s): status %d: %s\n", label, dtype_name(dtype), status, mixdq_cuda_last_error());
        return;
    }
    std::vector<uint8_t> got = dy.get<uint8_t>((size_t)ny * dtype_size(dtype));
    // Per part: its padded u8 codes (the reference slices the channels itself).
    std::vector<std::vector<uint8_t>> q;
    first = 0;
    for (auto &p : parts) {
        std::vector<float> px((size_t)(b * h * w * p.channels));
        for (int64_t i = 0; i < b * h * w; i++)
            for (int64_t c = 0; c < p.channels; c++) px[(size_t)(i * p.channels + c)] = x[(size_t)(i * cin + first + c)];
        q.push_back(ref_quantize_padded(px, b, h, w, p.channels, p.channels, pad, p.delta, p.zp, p.bits));
        first += p.channels;
    }
    int64_t bad = 0, inexact = 0, worst = 0, tested = 0;
    std::uniform_int_distribution<int64_t> pick(0, ny - 1);
    const int64_t count = samples ? samples : ny;
    for (int64_t s = 0; s < count; s++) {
        const int64_t i = samples ? pick(g_rng) : s;
        const int64_t o = i % out, r = i / out, xx = r % ow, y = (r / ow) % oh, n = r / (ow * oh);
        float v = 0.0f;
        for (size_t pi = 0; pi < parts.size(); pi++) {
            const Part &p = parts[pi];
            const int32_t acc = ref_acc_u8(q[pi].data(), p.w.data(), ph, pw, p.channels, k, stride, n, y, xx, o);
            float vi = ref_dequant(acc, (int32_t)p.zp, p.wsum[o], p.delta, p.wscale[o]);
            if (pi + 1 == parts.size() && bias_on) vi = ref_add(vi, bias[o]);
            v = pi == 0 ? vi : ref_add(v, vi);
        }
        if (residual_on) v = ref_add(v, residual[i]);
        const float want = round_to(dtype, v), have = decode(dtype, &got[(size_t)i * dtype_size(dtype)]);
        const int64_t d = ulps(dtype, have, want);
        tested++;
        if (d) inexact++;
        if (d > worst) worst = d;
        if (d > (dtype == MIXDQ_CUDA_F32 ? 0 : 1)) {
            if (bad++ < 3) printf("  %s %s: y[%lld] = %.9g, want %.9g\n", label, dtype_name(dtype), (long long)i, have, want);
        }
    }
    CHECK(bad == 0, "%s (%s, batch %lld): %lld of %lld outputs beyond tolerance (worst %lld ulp)", label, dtype_name(dtype),
          (long long)b, (long long)bad, (long long)tested, (long long)worst);
    if (inexact) printf("  note: %s (%s): %lld of %lld outputs 1 ulp off\n", label, dtype_name(dtype), (long long)inexact, (long long)tested);
}

static void test_bos(int dtype) {
    const int64_t b = 2, tokens = 77, out = 33;
    std::vector<float> y0 = random_floats((size_t)(b * tokens * out), -1, 1), rows = random_floats((size_t)(b * out), -5, 5);
    for (auto &v : y0) v = round_to(dtype, v);
    Dev dy(encode(dtype, y0)), dr(rows);
    API(mixdq_cuda_bos_rows(dtype, dy.p, b, tokens, out, (const float *)dr.p, nullptr));
    std::vector<uint8_t> got = dy.get<uint8_t>((size_t)(b * tokens * out) * dtype_size(dtype));
    int bad = 0;
    for (int64_t n = 0; n < b; n++)
        for (int64_t t = 0; t < tokens; t++)
            for (int64_t c = 0; c < out; c++) {
                const int64_t i = (n * tokens + t) * out + c;
                const float want = t == 0 ? round_to(dtype, rows[(size_t)(n * out + c)]) : y0[(size_t)i];
                if (ulps(dtype, decode(dtype, &got[(size_t)i * dtype_size(dtype)]), want) != 0) bad++;
            }
    CHECK(bad == 0, "bos rows %s: %d values differ", dtype_name(dtype), bad);
}

static void expect_error(int32_t status, int32_t want, const char *needle, const char *what) {
    const char *msg = mixdq_cuda_last_error();
    CHECK(status == want && strstr(msg, needle) != nullptr, "%s: status %d (want %d), message '%s' (want '%s' in it)", what, status,
          want, msg, needle);
}

static void test_errors() {
    Dev buf(1024);
    mixdq_cuda_qpart p = {(const int8_t *)buf.p, (const int32_t *)buf.p, (const float *)buf.p, 16, 0, 0.1f, 3.0f, 8};
    expect_error(mixdq_cuda_w8a8_linear(7, buf.p, 1, 16, 4, &p, nullptr, nullptr, buf.p, buf.p, 1024, nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "dtype", "unknown dtype");
    mixdq_cuda_qpart bad = p;
    bad.bits = 9;
    expect_error(mixdq_cuda_w8a8_linear(MIXDQ_CUDA_F16, buf.p, 1, 16, 4, &bad, nullptr, nullptr, buf.p, buf.p, 1024, nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "9-bit", "9-bit activations");
    bad = p;
    bad.zero_point = 256.0f;
    expect_error(mixdq_cuda_w8a8_linear(MIXDQ_CUDA_F16, buf.p, 1, 16, 4, &bad, nullptr, nullptr, buf.p, buf.p, 1024, nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "zero point", "zero point 256");
    bad = p;
    bad.delta = 0.0f;
    expect_error(mixdq_cuda_w8a8_linear(MIXDQ_CUDA_F16, buf.p, 1, 16, 4, &bad, nullptr, nullptr, buf.p, buf.p, 1024, nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "Δx", "zero Δx");
    expect_error(mixdq_cuda_w8a8_linear(MIXDQ_CUDA_F16, buf.p, 64, 16, 64, &p, nullptr, nullptr, buf.p, buf.p, 8, nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "workspace", "short workspace");
    mixdq_cuda_qpart two[2] = {p, p};
    two[1].first_channel = 8;
    expect_error(mixdq_cuda_w8a8_conv2d(MIXDQ_CUDA_F16, buf.p, 1, 2, 2, 32, 4, 1, 1, 0, two, 2, nullptr, nullptr, buf.p, buf.p, 1024,
                                        nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "cover", "parts that overlap");
    expect_error(mixdq_cuda_conv_s8s8s32((const int8_t *)buf.p, (const int8_t *)buf.p, (int32_t *)buf.p, 1, 2, 2, 16, 4, 3, 1, nullptr),
                 MIXDQ_CUDA_ERR_INVALID_ARGUMENT, "kernel 3", "kernel larger than the input");
    int32_t count = -1;
    CHECK(mixdq_cuda_device_count(&count) == MIXDQ_CUDA_OK && count > 0, "device count %d: %s", count, mixdq_cuda_last_error());
    void *huge = nullptr;
    expect_error(mixdq_cuda_malloc(&huge, (size_t)1 << 62), MIXDQ_CUDA_ERR_CUDA, "cudaMalloc", "an impossible allocation");
    CHECK(huge == nullptr, "failed malloc leaves NULL");
}

// Every SDXL-Turbo geometry at 512×512 through the layer API: `samples` outputs checked per layer.
// fused_linears: only the Linears, without residual (what the opt-in fused epilogue takes).
static void test_sdxl(int64_t batch, int dtype, bool fused_linears = false) {
    for (int i = 0; i < kSdxlLayerCount; i++) {
        const SdxlLayer &l = kSdxlLayers[i];
        if (fused_linears && l.conv) continue;
        char label[200];
        snprintf(label, sizeof label, "sdxl %s%s", fused_linears ? "(fused) " : "", l.example);
        const float zp = (i % 3 == 0) ? 0.0f : (i % 3 == 1) ? 255.0f : 117.0f;
        if (l.conv)
            test_layer(label, dtype, batch, l.height, l.height, l.in, l.out, l.ksize, l.stride, l.pad, l.split, zp, 255.0f - zp, 8,
                       true, i % 2 == 0, false, 600);
        else
            test_layer(label, dtype, 1, l.rows * batch, 1, l.in, l.out, 1, 1, 0, 0, zp, 0, 8, true, !fused_linears && i % 2 == 0, true,
                       600);
    }
}

int main(int argc, char **argv) {
    const bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int32_t devices = 0;
    if (mixdq_cuda_device_count(&devices) != MIXDQ_CUDA_OK || devices == 0) {
        printf("SKIP: no GPU to test on: %s\n", devices == 0 ? mixdq_cuda_last_error() : "0 devices");
        return 77;
    }
    char desc[256];
    if (mixdq_cuda_use_device(0, desc, sizeof desc) != MIXDQ_CUDA_OK) {
        printf("SKIP: %s\n", mixdq_cuda_last_error());
        return 77;
    }
    printf("device: %s\n", desc);

    const int dtypes[] = {MIXDQ_CUDA_F16, MIXDQ_CUDA_BF16, MIXDQ_CUDA_F32};
    for (int d : dtypes)
        for (int bits : {8, 4, 2})
            for (float zp : {0.0f, 1.0f, (float)((1 << bits) - 1)})
                for (int pad : {0, 1})
                    for (int sc : {0, 1}) test_quantize(d, bits, zp, pad, sc);

    // GEMM: CUTLASS shapes (k % 16, n % 4) and the plain kernel's (odd k or n), tile edges.
    const int64_t gemms[][3] = {{1, 1, 1},     {3, 5, 7},      {17, 33, 31},  {64, 64, 64},   {65, 68, 80},  {129, 260, 320},
                                {77, 640, 2048}, {1000, 4, 36}, {33, 8, 48},   {2, 1280, 2816}, {300, 13, 96}, {128, 129, 130},
                                {256, 1280, 1280}, {1, 320, 1280}};
    for (auto &g : gemms) test_gemm(g[0], g[1], g[2]);

    // Convolutions: 1×1 and 3×3, stride 1 and 2, padding 0 and 1, zero points 0 and 255, channel
    // counts on (c % 16 == 0) and off CUTLASS's path.
    for (float zp : {0.0f, 255.0f, 77.0f}) {
        test_conv_acc(1, 8, 8, 16, 32, 3, 1, 1, zp);
        test_conv_acc(2, 9, 7, 32, 20, 3, 2, 1, zp);
        test_conv_acc(2, 8, 8, 48, 16, 1, 1, 0, zp);
        test_conv_acc(1, 10, 10, 4, 24, 3, 1, 1, zp);  // conv_in-like: 4 channels
        test_conv_acc(1, 7, 5, 19, 7, 3, 2, 0, zp);    // odd everything
        test_conv_acc(1, 6, 6, 320, 12, 3, 1, 1, zp);
        test_conv_acc(1, 5, 5, 33, 4, 1, 2, 1, zp);    // 1×1 stride 2 with padding
    }

    for (int d : dtypes) {
        for (float zp : {0.0f, 255.0f}) {
            test_layer("linear 37x48->20", d, 1, 37, 1, 48, 20, 1, 1, 0, 0, zp, 0, 8, true, true, true);
            test_layer("linear 5x33->17 (plain kernel)", d, 1, 5, 1, 33, 17, 1, 1, 0, 0, zp, 0, 8, false, false, true);
            test_layer("conv 3x3 p1", d, 2, 9, 9, 32, 24, 3, 1, 1, 0, zp, 0, 8, true, true, false);
            test_layer("conv 3x3 s2 p1", d, 1, 11, 11, 16, 8, 3, 2, 1, 0, zp, 0, 8, true, false, false);
            test_layer("conv 3x3 c4 (conv_in-like)", d, 1, 8, 8, 4, 32, 3, 1, 1, 0, zp, 0, 8, true, false, false);
            test_layer("conv 3x3 ->4 (conv_out-like)", d, 1, 8, 8, 32, 4, 3, 1, 1, 0, zp, 0, 8, true, true, false);
            test_layer("conv 1x1 split 32+16", d, 2, 6, 6, 48, 20, 1, 1, 0, 32, zp, 255.0f - zp, 8, true, true, false);
            test_layer("conv 1x1 split 16+16, no bias", d, 1, 5, 5, 32, 8, 1, 1, 0, 16, zp, 3.0f, 8, false, false, false);
            test_layer("conv 3x3 split 16+19 (odd part)", d, 1, 6, 6, 35, 9, 3, 1, 1, 16, zp, 11.0f, 8, true, false, false);
        }
        test_layer("linear 4-bit activations", d, 1, 40, 1, 64, 32, 1, 1, 0, 0, 7.0f, 0, 4, true, false, true);
        test_layer("conv 2-bit activations", d, 1, 6, 6, 32, 16, 3, 1, 1, 0, 1.0f, 0, 2, true, false, false);
        test_bos(d);
    }
    test_errors();

    // The fused CUTLASS epilogue (opt-in, fp16 without residual): the same reference, the same tolerance.
    setenv("MIXDQ_CUDA_FUSED", "1", 1);
    for (float zp : {0.0f, 255.0f, 90.0f}) {
        test_layer("fused linear 37x48->24", MIXDQ_CUDA_F16, 1, 37, 1, 48, 24, 1, 1, 0, 0, zp, 0, 8, true, false, true);
        test_layer("fused linear 300x320->640, no bias", MIXDQ_CUDA_F16, 1, 300, 1, 320, 640, 1, 1, 0, 0, zp, 0, 8, false, false, true);
        test_layer("fused linear 129x64->136, 4-bit", MIXDQ_CUDA_F16, 1, 129, 1, 64, 136, 1, 1, 0, 0, (float)((int)zp % 16), 0, 4, true, false,
                   true);
        test_layer("fused requested, residual (separate epilogue)", MIXDQ_CUDA_F16, 1, 40, 1, 64, 32, 1, 1, 0, 0, zp, 0, 8, true, true,
                   true);
    }
    if (!quick)
        for (int64_t batch : {1, 2}) test_sdxl(batch, MIXDQ_CUDA_F16, true);
    unsetenv("MIXDQ_CUDA_FUSED");

    if (!quick)
        for (int64_t batch : {1, 2}) {
            test_sdxl(batch, MIXDQ_CUDA_F16);
            if (batch == 1) test_sdxl(batch, MIXDQ_CUDA_F32);
        }

    printf("%d checks, %d failed\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
