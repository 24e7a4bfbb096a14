// simd_impl.h: the SIMD kernels, written once over the vector primitives that the including file
// defines (simd_avx512.c, simd_avx2.c): V (W floats), TM/CM masks, VD (DW = W/2 doubles), MDQ_T
// (the target attribute) and SFX (the name suffix). Not a public header; included only there.
//
// Numerics (see ref.c for the yardstick):
//   exp:   Cody-Waite reduction by ln 2, Cephes degree-6 polynomial, scaling by 2^n that stays exact into
//          the subnormal range; max relative error ~1.2e-7 over the normal range.
//   erfc:  erfc(z) = t * exp(-z^2 + P(t)), t = 1 / (1 + z/2) (Numerical Recipes' erfcc, 1.2e-7 relative),
//          with -z^2 = -x^2/2 carried exactly (FMA split of x*x) and the sum with P(t) done as an exact
//          two-sum, whose error terms enter as exp(s) * (1 + err). GELU max relative error ~5.2e-7.
//   sigmoid forms: x * e / (1 + e) with e = exp(-|a|), so nothing overflows and tiny outputs keep
//          their relative accuracy.
#pragma STDC FP_CONTRACT OFF

static inline MDQ_T V v_exp(V x) {
    x = v_max(v_set1(-104.0f), x);  // maxps(a, b) returns b when either is NaN: NaN propagates
    x = v_min(v_set1(89.0f), x);
    V n = v_round(v_mul(x, v_set1(1.44269504088896341f)));
    V r = v_fma(n, v_set1(-0.693359375f), x);
    r = v_fma(n, v_set1(2.12194440e-4f), r);
    V p = v_set1(1.9875691500e-4f);
    p = v_fma(p, r, v_set1(1.3981999507e-3f));
    p = v_fma(p, r, v_set1(8.3334519073e-3f));
    p = v_fma(p, r, v_set1(4.1665795894e-2f));
    p = v_fma(p, r, v_set1(1.6666665459e-1f));
    p = v_fma(p, r, v_set1(5.0000001201e-1f));
    p = v_fma(p, v_mul(r, r), v_add(r, v_set1(1.0f)));
    return v_scale2(p, n);
}

// x * sigmoid(a), evaluated without overflow: e = exp(-|a|); a >= 0: x / (1 + e); a < 0: x * e / (1 + e).
static inline MDQ_T V v_x_sigmoid(V x, V a) {
    V e = v_exp(v_sub(v_set1(0.0f), v_abs(a)));
    V num = v_sel(v_cmplt(a, v_set1(0.0f)), x, v_mul(x, e));
    return v_div(num, v_add(v_set1(1.0f), e));
}

static inline MDQ_T V v_silu(V x) { return v_x_sigmoid(x, x); }

static inline MDQ_T V v_gelu(V x) {
    const V half = v_set1(0.5f), one = v_set1(1.0f);
    V ax = v_min(v_set1(20.0f), v_abs(x));  // erfc(20/sqrt 2) underflows anyway
    V z = v_mul(ax, v_set1(0.70710678118654752440f));
    V sq = v_mul(ax, ax);
    V lo = v_mul(v_fma(ax, ax, v_sub(v_set1(0.0f), sq)), half);  // x^2/2 = hi + lo exactly
    V hi = v_mul(sq, half);
    V t = v_div(one, v_fma(half, z, one));
    V P = v_set1(0.17087277f);
    P = v_fma(P, t, v_set1(-0.82215223f));
    P = v_fma(P, t, v_set1(1.48851587f));
    P = v_fma(P, t, v_set1(-1.13520398f));
    P = v_fma(P, t, v_set1(0.27886807f));
    P = v_fma(P, t, v_set1(-0.18628806f));
    P = v_fma(P, t, v_set1(0.09678418f));
    P = v_fma(P, t, v_set1(0.37409196f));
    P = v_fma(P, t, v_set1(1.00002368f));
    P = v_fma(P, t, v_set1(-1.26551223f));
    // s + err = P - hi exactly (two-sum)
    V a = v_sub(v_set1(0.0f), hi);
    V s = v_add(a, P);
    V bb = v_sub(s, a);
    V err = v_add(v_sub(a, v_sub(s, bb)), v_sub(P, bb));
    V c = v_exp(s);
    c = v_fma(c, v_sub(err, lo), c);
    c = v_mul(c, t);  // erfc(|x| / sqrt 2)
    V w = v_sel(v_cmplt(x, v_set1(0.0f)), v_sub(v_set1(2.0f), c), c);  // erfc(-x / sqrt 2)
    return v_mul(v_mul(half, x), w);
}

// ---- elementwise driver ---------------------------------------------------------------------------
#define MDQ_MAP(n, LOAD_EXPR_I, LOADM_EXPR_I, STORE_I, STOREM_I)                                          \
    do {                                                                                              \
        size_t i = 0;                                                                                 \
        for (; i + W <= (n); i += W) { V v = LOAD_EXPR_I; STORE_I; }                                  \
        if (i < (n)) { TM tm = v_tail((n) - i); V v = LOADM_EXPR_I; STOREM_I; (void)tm; }               \
    } while (0)

MDQ_T void SFX(mdq_silu)(const float *x, float *y, size_t n) {
    MDQ_MAP(n, v_silu(v_load(x + i)), v_silu(v_loadm(x + i, tm)), v_store(y + i, v), v_storem(y + i, tm, v));
}

MDQ_T void SFX(mdq_gelu_erf)(const float *x, float *y, size_t n) {
    MDQ_MAP(n, v_gelu(v_load(x + i)), v_gelu(v_loadm(x + i, tm)), v_store(y + i, v), v_storem(y + i, tm, v));
}

static inline MDQ_T V v_quick_gelu(V x) { return v_x_sigmoid(x, v_mul(v_set1(1.702f), x)); }

MDQ_T void SFX(mdq_quick_gelu)(const float *x, float *y, size_t n) {
    MDQ_MAP(n, v_quick_gelu(v_load(x + i)), v_quick_gelu(v_loadm(x + i, tm)), v_store(y + i, v),
            v_storem(y + i, tm, v));
}

MDQ_T void SFX(mdq_geglu)(const float *proj, float *out, size_t rows, size_t inner) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = proj + r * 2 * inner, *g = a + inner;
        float *o = out + r * inner;
        MDQ_MAP(inner, v_mul(v_load(a + i), v_gelu(v_load(g + i))),
                v_mul(v_loadm(a + i, tm), v_gelu(v_loadm(g + i, tm))), v_store(o + i, v), v_storem(o + i, tm, v));
    }
}

MDQ_T void SFX(mdq_add)(const float *a, const float *b, float *y, size_t n) {
    MDQ_MAP(n, v_add(v_load(a + i), v_load(b + i)), v_add(v_loadm(a + i, tm), v_loadm(b + i, tm)),
            v_store(y + i, v), v_storem(y + i, tm, v));
}

MDQ_T void SFX(mdq_add_bias_rows)(float *y, const float *bias, size_t rows, size_t c) {
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * c;
        MDQ_MAP(c, v_add(v_load(yr + i), v_load(bias + i)), v_add(v_loadm(yr + i, tm), v_loadm(bias + i, tm)),
                v_store(yr + i, v), v_storem(yr + i, tm, v));
    }
}

MDQ_T void SFX(mdq_scale)(const float *x, float *y, size_t n, float s) {
    const V vs = v_set1(s);
    MDQ_MAP(n, v_mul(v_load(x + i), vs), v_mul(v_loadm(x + i, tm), vs), v_store(y + i, v), v_storem(y + i, tm, v));
}

// ---- softmax --------------------------------------------------------------------------------------
MDQ_T void SFX(mdq_softmax_rows)(float *x, size_t rows, size_t cols, float scale) {
    if (cols == 0) return;
    const V vs = v_set1(scale), ninf = v_set1(-INFINITY), zero = v_set1(0.0f), low = v_set1(-103.0f);
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * cols;
        size_t i;
        V vm = ninf;
        for (i = 0; i + W <= cols; i += W) vm = v_max(vm, v_mul(v_load(p + i), vs));
        if (i < cols) {
            TM tm = v_tail(cols - i);
            vm = v_max(vm, v_fill(tm, v_mul(v_loadm(p + i, tm), vs), ninf));
        }
        const V nm = v_set1(-v_hmax(vm));
        VD s0 = vd_zero(), s1 = vd_zero();
        // e = exp(v - m) with v - m split exactly into hi + lo (two-sum), e = exp(hi) * (1 + lo)
#define MDQ_SOFTMAX_EXP(vin, eout)                                              \
        {                                                                       \
            V v_ = v_mul(vin, vs);                                              \
            V s_ = v_add(v_, nm);                                               \
            V bb_ = v_sub(s_, v_);                                              \
            V err_ = v_add(v_sub(v_, v_sub(s_, bb_)), v_sub(nm, bb_));          \
            err_ = v_sel(v_cmplt(s_, low), err_, zero); /* -inf inputs: no NaN */ \
            V e_ = v_exp(s_);                                                   \
            eout = v_fma(e_, err_, e_);                                         \
        }
        for (i = 0; i + W <= cols; i += W) {
            V e;
            MDQ_SOFTMAX_EXP(v_load(p + i), e);
            v_store(p + i, e);
            vd_acc2(&s0, &s1, e);
        }
        if (i < cols) {
            TM tm = v_tail(cols - i);
            V e;
            MDQ_SOFTMAX_EXP(v_loadm(p + i, tm), e);
            e = v_fill(tm, e, zero);
            v_storem(p + i, tm, e);
            vd_acc2(&s0, &s1, e);
        }
#undef MDQ_SOFTMAX_EXP
        double sum = vd_hsum(vd_add(s0, s1));
        const V inv = v_set1((float)(1.0 / sum));
        MDQ_MAP(cols, v_mul(v_load(p + i), inv), v_mul(v_loadm(p + i, tm), inv), v_store(p + i, v),
                v_storem(p + i, tm, v));
    }
}

// ---- normalisation ----------------------------------------------------------------------------------
MDQ_T void SFX(mdq_group_norm_nhwc)(const float *x, float *y, size_t n, size_t hw, size_t c, size_t groups,
                                    float eps, const float *gamma, const float *beta, int silu) {
    if (n == 0 || hw == 0 || c == 0 || groups == 0) return;
    double *acc = malloc(sizeof(double) * 2 * c);
    float *ab = malloc(sizeof(float) * 2 * c);
    if (!acc || !ab) abort();
    double *mean_ch = acc + c;
    float *ca = ab, *cb = ab + c;
    for (size_t bi = 0; bi < n; bi++) {
        const float *xb = x + bi * hw * c;
        float *yb = y + bi * hw * c;
        // pass 1: per-channel sums over rows, in row order (as the reference)
        for (size_t ch = 0; ch < c; ch++) acc[ch] = 0;
        size_t p = 0;
        for (; p + 4 <= hw; p += 4) {
            const float *r0 = xb + p * c;
            size_t ch = 0;
            for (; ch + DW <= c; ch += DW) {
                VD s = vd_load(acc + ch);
                s = vd_add(s, vd_cvt(r0 + ch));
                s = vd_add(s, vd_cvt(r0 + c + ch));
                s = vd_add(s, vd_cvt(r0 + 2 * c + ch));
                s = vd_add(s, vd_cvt(r0 + 3 * c + ch));
                vd_store(acc + ch, s);
            }
            for (; ch < c; ch++) {
                double s = acc[ch];
                s += (double)r0[ch];
                s += (double)r0[c + ch];
                s += (double)r0[2 * c + ch];
                s += (double)r0[3 * c + ch];
                acc[ch] = s;
            }
        }
        for (; p < hw; p++) {
            const float *r0 = xb + p * c;
            size_t ch = 0;
            for (; ch + DW <= c; ch += DW) vd_store(acc + ch, vd_add(vd_load(acc + ch), vd_cvt(r0 + ch)));
            for (; ch < c; ch++) acc[ch] += (double)r0[ch];
        }
        mdq__gn_means(acc, mean_ch, c, groups, hw);
        // pass 2: per-channel centred sums of squares
        for (size_t ch = 0; ch < c; ch++) acc[ch] = 0;
        for (p = 0; p < hw; p++) {
            const float *r0 = xb + p * c;
            size_t ch = 0;
            for (; ch + DW <= c; ch += DW) {
                VD d = vd_sub(vd_cvt(r0 + ch), vd_load(mean_ch + ch));
                vd_store(acc + ch, vd_add(vd_load(acc + ch), vd_mul(d, d)));
            }
            for (; ch < c; ch++) {
                double d = (double)r0[ch] - mean_ch[ch];
                double d2 = d * d;
                acc[ch] += d2;
            }
        }
        mdq__gn_coeffs(acc, mean_ch, c, groups, hw, eps, gamma, beta, ca, cb);
        // pass 3: y = fma(x, a, b) (+ SiLU)
        for (p = 0; p < hw; p++) {
            const float *r0 = xb + p * c;
            float *o = yb + p * c;
            size_t ch = 0;
            if (silu) {
                for (; ch + W <= c; ch += W)
                    v_store(o + ch, v_silu(v_fma(v_load(r0 + ch), v_load(ca + ch), v_load(cb + ch))));
                if (ch < c) {
                    TM tm = v_tail(c - ch);
                    v_storem(o + ch, tm, v_silu(v_fma(v_loadm(r0 + ch, tm), v_loadm(ca + ch, tm), v_loadm(cb + ch, tm))));
                }
            } else {
                for (; ch + W <= c; ch += W)
                    v_store(o + ch, v_fma(v_load(r0 + ch), v_load(ca + ch), v_load(cb + ch)));
                if (ch < c) {
                    TM tm = v_tail(c - ch);
                    v_storem(o + ch, tm, v_fma(v_loadm(r0 + ch, tm), v_loadm(ca + ch, tm), v_loadm(cb + ch, tm)));
                }
            }
        }
    }
    free(acc);
    free(ab);
}

MDQ_T void SFX(mdq_layer_norm)(const float *x, float *y, size_t rows, size_t c, float eps,
                               const float *gamma, const float *beta) {
    if (c == 0) return;
    const size_t c8 = c & ~(size_t)7;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        double part[8];
        // pass 1: part[i & 7] += x[i]
        VD acc[8 / DW];
        for (int j = 0; j < 8 / DW; j++) acc[j] = vd_zero();
        for (size_t i = 0; i < c8; i += 8)
            for (int j = 0; j < 8 / DW; j++) acc[j] = vd_add(acc[j], vd_cvt(xr + i + j * DW));
        for (int j = 0; j < 8 / DW; j++) vd_store(part + j * DW, acc[j]);
        for (size_t i = c8; i < c; i++) part[i & 7] += (double)xr[i];
        double mean = mdq__sum8(part) / (double)c;
        // pass 2: centred squares
        const VD vmean = vd_set1(mean);
        for (int j = 0; j < 8 / DW; j++) acc[j] = vd_zero();
        for (size_t i = 0; i < c8; i += 8)
            for (int j = 0; j < 8 / DW; j++) {
                VD d = vd_sub(vd_cvt(xr + i + j * DW), vmean);
                acc[j] = vd_add(acc[j], vd_mul(d, d));
            }
        for (int j = 0; j < 8 / DW; j++) vd_store(part + j * DW, acc[j]);
        for (size_t i = c8; i < c; i++) {
            double d = (double)xr[i] - mean;
            double d2 = d * d;
            part[i & 7] += d2;
        }
        double var = mdq__sum8(part) / (double)c;
        double rstd = 1.0 / sqrt(var + (double)eps);
        const V rs = v_set1((float)rstd), bs = v_set1((float)(-mean * rstd));
        const V one = v_set1(1.0f), zero = v_set1(0.0f);
        size_t i = 0;
        for (; i + W <= c; i += W) {
            V t = v_fma(v_load(xr + i), rs, bs);
            V gm = gamma ? v_load(gamma + i) : one, bt = beta ? v_load(beta + i) : zero;
            v_store(yr + i, v_fma(t, gm, bt));
        }
        if (i < c) {
            TM tm = v_tail(c - i);
            V t = v_fma(v_loadm(xr + i, tm), rs, bs);
            V gm = gamma ? v_loadm(gamma + i, tm) : one, bt = beta ? v_loadm(beta + i, tm) : zero;
            v_storem(yr + i, tm, v_fma(t, gm, bt));
        }
    }
}

// ---- quantization -----------------------------------------------------------------------------------
static inline MDQ_T V v_fake_quant(V x, V d, V zp, V qmin, V qmax) {
    V q = v_round(v_div(x, d));
    q = v_add(q, zp);
    q = v_max(q, qmin);
    q = v_min(q, qmax);
    return v_mul(v_sub(q, zp), d);
}

MDQ_T void SFX(mdq_fake_quant_tensor)(const float *x, float *y, size_t n, float delta, float zero_point,
                                      float qmin, float qmax) {
    const V d = v_set1(delta), zp = v_set1(zero_point), lo = v_set1(qmin), hi = v_set1(qmax);
    MDQ_MAP(n, v_fake_quant(v_load(x + i), d, zp, lo, hi), v_fake_quant(v_loadm(x + i, tm), d, zp, lo, hi),
            v_store(y + i, v), v_storem(y + i, tm, v));
}

MDQ_T void SFX(mdq_fake_quant_rows)(const float *w, float *y, size_t rows, size_t cols, const float *delta,
                                    float qmin, float qmax) {
    const V zp = v_set1(0.0f), lo = v_set1(qmin), hi = v_set1(qmax);
    for (size_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        float *yr = y + r * cols;
        const V d = v_set1(delta[r]);
        MDQ_MAP(cols, v_fake_quant(v_load(wr + i), d, zp, lo, hi), v_fake_quant(v_loadm(wr + i, tm), d, zp, lo, hi),
                v_store(yr + i, v), v_storem(yr + i, tm, v));
    }
}

MDQ_T void SFX(mdq_minmax)(const float *x, size_t n, float *min_out, float *max_out) {
    if (n == 0) { *min_out = 0; *max_out = 0; return; }
    V vmin = v_set1(INFINITY), vmax = v_set1(-INFINITY);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        V v = v_load(x + i);
        vmin = v_min(vmin, v);
        vmax = v_max(vmax, v);
    }
    if (i < n) {
        TM tm = v_tail(n - i);
        V v = v_loadm(x + i, tm);
        vmin = v_min(vmin, v_fill(tm, v, v_set1(INFINITY)));
        vmax = v_max(vmax, v_fill(tm, v, v_set1(-INFINITY)));
    }
    *min_out = v_hmin(vmin);
    *max_out = v_hmax(vmax);
}

MDQ_T void SFX(mdq_absmax_rows)(const float *x, size_t rows, size_t cols, float *absmax_out) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        V m = v_set1(0.0f);
        size_t i = 0;
        for (; i + W <= cols; i += W) m = v_max(m, v_abs(v_load(xr + i)));
        if (i < cols) m = v_max(m, v_abs(v_loadm(xr + i, v_tail(cols - i))));  // masked lanes load 0
        absmax_out[r] = v_hmax(m);
    }
}
