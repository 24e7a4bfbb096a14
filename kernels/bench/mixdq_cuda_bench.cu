// Every quantized layer geometry of SDXL-Turbo at 512×512 (bench/layers.h), batch 1 and 2: the W8A8
// layer of libmixdq_cuda.so (fp16 in, quantize + s32 product + epilogue, fp16 out), its integer
// product alone, and cuBLAS FP16 (cublasGemmEx, fp16 in/out, fp32 compute, tensor-op default algo).
// Convolutions compare against cuBLAS on the im2col GEMM shape (M = B·OH·OW, K = C·k·k, N = out): the
// GEMM only, no im2col, so FP16 is favoured there; PyTorch's cuDNN convolutions are in
// bench/torch_fp16.py. cuBLAS is dlopen()ed ($MIXDQ_CUBLAS, else libcublas.so.13/.12), so this
// builds without its headers; without it only the INT8 columns are filled.
//
//   mixdq_cuda_bench [table.md]      writes the per-layer table and the count- and FLOP-weighted totals
#include "../include/mixdq_cuda.h"
#include "layers.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <vector>

// The few cuBLAS declarations used (cublas_api.h values).
typedef void *cublasHandle_t;
typedef int (*cublasCreate_fn)(cublasHandle_t *);
typedef int (*cublasGemmEx_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void *alpha, const void *A,
                               int Atype, int lda, const void *B, int Btype, int ldb, const void *beta, void *C, int Ctype,
                               int ldc, int computeType, int algo);
static const int kOpN = 0, kOpT = 1, kR16F = 2 /* CUDA_R_16F */, kCompute32F = 68 /* CUBLAS_COMPUTE_32F */,
                 kGemmDefault = -1 /* CUBLAS_GEMM_DEFAULT */;

static cublasHandle_t g_cublas = nullptr;
static cublasGemmEx_fn g_gemm_ex = nullptr;

static void load_cublas() {
    const char *env = getenv("MIXDQ_CUBLAS");
    const char *names[] = {env, "libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    std::string why;
    for (const char *n : names) {
        if (!n || !*n) continue;
        void *h = dlopen(n, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            why += std::string(" ") + dlerror() + ";";
            continue;
        }
        auto create = (cublasCreate_fn)dlsym(h, "cublasCreate_v2");
        g_gemm_ex = (cublasGemmEx_fn)dlsym(h, "cublasGemmEx");
        if (create && g_gemm_ex && create(&g_cublas) == 0) {
            printf("cuBLAS: %s\n", n);
            return;
        }
        why += std::string(" ") + n + ": cublasCreate failed;";
        g_gemm_ex = nullptr;
    }
    printf("cuBLAS not available (FP16 columns empty):%s\n", why.c_str());
}

#define CUDA_OR_DIE(call)                                                                        \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) {                                                                 \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)
#define MIXDQ_OR_DIE(call)                                                                                  \
    do {                                                                                                    \
        int32_t s_ = (call);                                                                                \
        if (s_) {                                                                                           \
            fprintf(stderr, "%s:%d: %s: status %d: %s\n", __FILE__, __LINE__, #call, s_, mixdq_cuda_last_error()); \
            exit(1);                                                                                        \
        }                                                                                                   \
    } while (0)

// Median of 5 timings of `iters` back-to-back calls, in microseconds per call (device synchronised).
template <typename F> static double time_us(F f) {
    f();
    CUDA_OR_DIE(cudaDeviceSynchronize());
    auto t0 = std::chrono::steady_clock::now();
    f();
    CUDA_OR_DIE(cudaDeviceSynchronize());
    double once = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    int iters = (int)fmin(200.0, fmax(3.0, 20000.0 / fmax(once, 1.0)));  // ~20 ms per timing
    std::vector<double> t;
    for (int r = 0; r < 5; r++) {
        auto a = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; i++) f();
        CUDA_OR_DIE(cudaDeviceSynchronize());
        t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count() / iters);
    }
    std::sort(t.begin(), t.end());
    return t[2];
}

static void *dev_alloc(size_t bytes) {
    void *p = nullptr;
    CUDA_OR_DIE(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_OR_DIE(cudaMemset(p, 0, bytes ? bytes : 1));
    return p;
}

// Fills fp16 activations with a spread of values (contents do not change the timings much, but
// realistic codes avoid all-zero fast paths).
__global__ void fill_half(__half *x, size_t n, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __float2half(scale * sinf(0.37f * (float)(i % 9973)));
}
__global__ void fill_s8(int8_t *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = (int8_t)((i * 2654435761u) >> 24);
}

int main(int argc, char **argv) {
    char desc[256];
    int32_t count = 0;
    if (mixdq_cuda_device_count(&count) || count == 0 || mixdq_cuda_use_device(0, desc, sizeof desc)) {
        printf("SKIP: no usable GPU: %s\n", mixdq_cuda_last_error());
        return 77;
    }
    printf("device: %s\n", desc);
    load_cublas();
    FILE *md = argc > 1 ? fopen(argv[1], "w") : nullptr;
    if (argc > 1 && !md) { fprintf(stderr, "cannot write %s\n", argv[1]); return 1; }
    auto out = [&](const char *fmt, auto... a) {
        printf(fmt, a...);
        if (md) fprintf(md, fmt, a...);
    };
    out("# W8A8 (libmixdq_cuda) vs cuBLAS FP16, SDXL-Turbo 512x512, %s\n\n", desc);
    out("INT8 layer = quantize fp16 input + s8 product + dequant epilogue to fp16. INT8 product = the s32 product alone.\n");
    out("INT8 fused = the same Linear with the epilogue fused into CUTLASS's (opt-in MIXDQ_CUDA_FUSED=1; fp16 out, no residual).\n");
    out("FP16 = cublasGemmEx fp16 in/out, fp32 compute, on the GEMM shape (convs: im2col shape, GEMM only).\n\n");

    for (int64_t batch : {1, 2}) {
        out("## batch %lld\n\n", (long long)batch);
        out("| layer (example) | sites | M x K x N | GFLOP | INT8 layer us | INT8 fused us | INT8 product us | FP16 cuBLAS us | FP16/INT8 layer |\n");
        out("|---|---|---|---|---|---|---|---|---|\n");
        double tot_int8 = 0, tot_fused = 0, tot_prod = 0, tot_fp16 = 0, tot_flop = 0;
        for (int i = 0; i < kSdxlLayerCount; i++) {
            const SdxlLayer &l = kSdxlLayers[i];
            const int64_t h = l.height, ph = h + 2 * l.pad;
            const int64_t oh = l.conv ? (ph - l.ksize) / l.stride + 1 : 1;
            const int64_t M = l.conv ? batch * oh * oh : batch * l.rows, K = l.in * l.ksize * l.ksize, N = l.out;
            const double flop = 2.0 * (double)M * (double)K * (double)N;
            const int64_t xin = l.conv ? batch * h * h * l.in : M * l.in;
            __half *x = (__half *)dev_alloc((size_t)xin * 2);
            fill_half<<<256, 256>>>(x, (size_t)xin, 3.0f);
            __half *y = (__half *)dev_alloc((size_t)(M * N) * 2);
            float *bias = (float *)dev_alloc((size_t)N * 4);
            std::vector<void *> frees = {x, y, bias};
            mixdq_cuda_qpart parts[2];
            const int nparts = l.split ? 2 : 1;
            for (int p = 0; p < nparts; p++) {
                const int64_t ch = l.split ? (p == 0 ? l.split : l.in - l.split) : l.in;
                int8_t *w = (int8_t *)dev_alloc((size_t)(N * l.ksize * l.ksize * ch));
                fill_s8<<<256, 256>>>(w, (size_t)(N * l.ksize * l.ksize * ch));
                int32_t *ws = (int32_t *)dev_alloc((size_t)N * 4);
                float *sc = (float *)dev_alloc((size_t)N * 4);
                frees.insert(frees.end(), {w, ws, sc});
                parts[p] = {w, ws, sc, ch, p == 0 ? 0 : l.split, 0.02f, 128.0f, 8};
            }
            const size_t wsb = l.conv ? mixdq_cuda_conv2d_workspace(batch, h, h, l.in, N, l.ksize, l.stride, l.pad)
                                      : mixdq_cuda_linear_workspace(M, l.in, N);
            void *work = dev_alloc(wsb);
            frees.push_back(work);
            double t_layer = time_us([&] {
                if (l.conv)
                    MIXDQ_OR_DIE(mixdq_cuda_w8a8_conv2d(MIXDQ_CUDA_F16, x, batch, h, h, l.in, N, l.ksize, l.stride, l.pad, parts,
                                                        nparts, bias, nullptr, y, work, wsb, nullptr));
                else
                    MIXDQ_OR_DIE(mixdq_cuda_w8a8_linear(MIXDQ_CUDA_F16, x, M, l.in, N, parts, bias, nullptr, y, work, wsb, nullptr));
            });
            // The opt-in fused epilogue (Linears: fp16 out, no residual), where it applies.
            double t_fused = NAN;
            if (!l.conv && l.in % 16 == 0 && N % 8 == 0) {
                setenv("MIXDQ_CUDA_FUSED", "1", 1);
                t_fused = time_us([&] {
                    MIXDQ_OR_DIE(mixdq_cuda_w8a8_linear(MIXDQ_CUDA_F16, x, M, l.in, N, parts, bias, nullptr, y, work, wsb, nullptr));
                });
                unsetenv("MIXDQ_CUDA_FUSED");
            }
            // The product alone, on s8 codes already in place (one part: the whole K).
            int8_t *codes = (int8_t *)dev_alloc((size_t)(l.conv ? batch * ph * ph * l.in : M * K));
            int32_t *acc = (int32_t *)dev_alloc((size_t)(M * N) * 4);
            int8_t *wall = (int8_t *)dev_alloc((size_t)(N * K));
            frees.insert(frees.end(), {codes, acc, wall});
            double t_prod = time_us([&] {
                if (l.conv)
                    MIXDQ_OR_DIE(mixdq_cuda_conv_s8s8s32(codes, wall, acc, batch, ph, ph, l.in, N, l.ksize, l.stride, nullptr));
                else
                    MIXDQ_OR_DIE(mixdq_cuda_gemm_s8s8s32(codes, wall, acc, M, N, K, nullptr));
            });
            double t_fp16 = NAN;
            if (g_gemm_ex) {
                __half *a = (__half *)dev_alloc((size_t)(M * K) * 2), *b = (__half *)dev_alloc((size_t)(N * K) * 2);
                frees.insert(frees.end(), {a, b});
                const float one = 1.0f, zero = 0.0f;
                // Row-major Y[M,N] = A[M,K]·B[N,K]^T is column-major Y^T = B·A^T.
                t_fp16 = time_us([&] {
                    int s = g_gemm_ex(g_cublas, kOpT, kOpN, (int)N, (int)M, (int)K, &one, b, kR16F, (int)K, a, kR16F, (int)K, &zero, y,
                                      kR16F, (int)N, kCompute32F, kGemmDefault);
                    if (s) { fprintf(stderr, "cublasGemmEx status %d\n", s); exit(1); }
                });
            }
            for (void *p : frees) cudaFree(p);
            out("| %s | %d | %lldx%lldx%lld | %.3f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", l.example, l.count, (long long)M,
                (long long)K, (long long)N, flop * 1e-9, t_layer, t_fused, t_prod, t_fp16, t_fp16 / t_layer);
            tot_int8 += l.count * t_layer;
            tot_fused += l.count * (t_fused == t_fused ? t_fused : t_layer);  // unfused where the fused path does not apply
            tot_prod += l.count * t_prod;
            tot_fp16 += l.count * t_fp16;
            tot_flop += l.count * flop;
        }
        out("\nAll 794 sites (each geometry times its site count), batch %lld: %.0f GFLOP; INT8 layers %.2f ms (%.0f TOPS), "
            "with the fused Linears %.2f ms, INT8 products %.2f ms, FP16 cuBLAS %.2f ms (%.0f TFLOPS); FP16 / INT8 layers = %.2f "
            "(FLOP-weighted).\n\n",
            (long long)batch, tot_flop * 1e-9, tot_int8 * 1e-3, tot_flop / tot_int8 * 1e-6, tot_fused * 1e-3, tot_prod * 1e-3,
            tot_fp16 * 1e-3, tot_flop / tot_fp16 * 1e-6, tot_fp16 / tot_int8);
    }
    if (md) fclose(md);
    return 0;
}
