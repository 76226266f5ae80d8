/* The cuda backend against the cpu backend and the double-precision
 * reference layers (make test-gpu; tests/gpu/device-check.sh runs it on a
 * lent GPU machine).  Without a cuda build or without a usable GPU every
 * case prints why and SKIPs -- never a pass.
 *
 * Two levels:
 *   kernels  each own kernel / cuDNN call of kernels/cuda/ on random data
 *            against nn_ref.h (double) or the host code it replaces
 *            (nn_optim_update, nn_sumsq, nn_aug_dihedral)
 *   engine   whole networks: a cuda engine and a cpu engine from the same
 *            weights and data -- train step (logits, loss, every gradient,
 *            running stats), eval and folded predict, 20 steps of AdamW,
 *            bf16 against fp32, deterministic mode twice, a GPU-trained
 *            state continued / predicted on the cpu, two engines at once,
 *            the out-of-memory error
 *
 * Tolerances (precision "fp32": no TF32, so cuDNN and cuBLAS round like
 * float code; the yardstick is double):
 *   layer outputs     |got - ref| <= 1e-4 max|ref| + 1e-5 |ref|   (float
 *                     rounding of sums of ~10^3 products is ~1e-6 relative;
 *                     a wrong index or formula is off by O(1))
 *   gradients         max |got - ref| <= 1e-3 max |ref| per tensor, the
 *                     rule of test_golden.c
 *   optimizer         |got - ref| <= 1e-6 |ref| + 1e-7 (the .cu file is
 *                     built with --fmad=false; expected bitwise, the margin
 *                     covers a libm pow/sqrt difference)
 *   20 training steps cpu vs cuda: |loss difference| <= 2e-3 (1 + |loss|)
 *                     at every step (both float; different summation orders
 *                     drift ~1e-5 per step on this small net)
 *   bf16 vs fp32      |loss difference| <= 5e-2 (1 + |loss|) over the 20
 *                     steps (bf16 has 8 bits of mantissa: ~4e-3 relative
 *                     per rounding)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_engine.h"
#include "nn_model.h"
#include "nn_optim.h"
#include "nn_ref.h"
#include "rng.h"

#ifdef LUMEN_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "cpu/cpu_augment.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_kernels.h"
#endif

/* ------------------------------------------------------------ gating -- */
static char why_not[512];
static int gpu_state = -1; /* -1 unknown, 0 none, 1 usable */

static int have_gpu(void) {
    if (gpu_state >= 0) return gpu_state;
#ifndef LUMEN_HAVE_CUDA
    snprintf(why_not, sizeof why_not,
             "cuda backend not built (no nvcc/cudnn.h under CUDA_HOME at build time)");
    gpu_state = 0;
#else
    int n = 0;
    cudaError_t st = cudaGetDeviceCount(&n);
    if (st != cudaSuccess) {
        snprintf(why_not, sizeof why_not, "no usable GPU: cudaGetDeviceCount: %s",
                 cudaGetErrorString(st));
        gpu_state = 0;
    } else if (n == 0) {
        snprintf(why_not, sizeof why_not, "no usable GPU: no CUDA device");
        gpu_state = 0;
    } else {
        gpu_state = 1;
    }
#endif
    return gpu_state;
}

#define NEED_GPU()                                         \
    do {                                                   \
        if (!have_gpu()) {                                 \
            print_message("SKIPPED: %s\n", why_not);       \
            skip();                                        \
        }                                                  \
    } while (0)

/* ------------------------------------------------------------ helpers -- */
static void fill(float *a, size_t n, uint64_t seed, double lo, double hi) {
    lm_xoshiro r;
    lm_xoshiro_seed(&r, seed);
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * lm_xoshiro_uniform(&r));
}

static double *widen(const float *a, size_t n) {
    double *d = malloc(sizeof(double) * (n ? n : 1));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

/* |got - ref| <= atol_rel * max|ref| + rtol |ref| elementwise */
static void close_rel(const char *what, const float *got, const double *ref, size_t n,
                      double atol_rel, double rtol) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]), allow = atol_rel * fmax(mx, 1e-30) + rtol * fabs(ref[i]);
        if (!(d == d)) d = INFINITY;
        if (d / allow > worst) worst = d / allow, at = i;
    }
    if (worst > 1)
        fail_msg("%s: element %zu: %.9g vs reference %.9g (%.3g of the tolerance)", what, at,
                 (double)got[at], ref[at], worst);
    print_message("%s: worst %.3g of the tolerance\n", what, worst);
}

static void close_ff(const char *what, const float *got, const float *ref, size_t n,
                     double atol_rel, double rtol) {
    double *r = widen(ref, n);
    close_rel(what, got, r, n, atol_rel, rtol);
    free(r);
}

#ifdef LUMEN_HAVE_CUDA
#define CK(call)                                                                      \
    do {                                                                              \
        cudaError_t st_ = (call);                                                     \
        if (st_ != cudaSuccess) fail_msg("%s: %s", #call, cudaGetErrorString(st_));   \
    } while (0)
#define KK(call)                                                                      \
    do {                                                                              \
        int st_ = (call);                                                             \
        if (st_) fail_msg("%s: %s", #call, cudaGetErrorString((cudaError_t)st_));     \
    } while (0)

static void *dput(const void *h, size_t bytes) {
    void *d = NULL;
    CK(cudaMalloc(&d, bytes ? bytes : 16));
    if (h) CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    else CK(cudaMemset(d, 0, bytes ? bytes : 16));
    return d;
}
static void dget(void *h, const void *d, size_t bytes) {
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
}
#define ST ((cudaStream_t)0)

/* ------------------------------------------------------------ kernels -- */
static void conv_case(int N, int IC, int H, int W, int OC, int k, int stride, int pad) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    size_t nx = (size_t)N * IC * H * W, nw = (size_t)OC * IC * k * k, ny = (size_t)N * OC * OH * OW;
    float *x = malloc(4 * nx), *w = malloc(4 * nw), *dy = malloc(4 * ny);
    float *y = malloc(4 * ny), *dx = malloc(4 * nx), *dw = malloc(4 * nw);
    fill(x, nx, 1, -1, 1);
    fill(w, nw, 2, -0.5, 0.5);
    fill(dy, ny, 3, -1, 1);
    cudnnHandle_t h;
    assert_int_equal(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
    nn_cuconv_shape sh = {N, IC, H, W, OC, OH, OW, k, stride, pad};
    nn_cuconv_opts o = {.dtype = NN_CUCONV_F32, .tf32 = 0, .deterministic = 1, .bwd_data = 1,
                        .bwd_filter = 1, .ws_limit = (size_t)1 << 30};
    nn_cuconv *c = NULL;
    size_t need = 0;
    lm_err e = {0};
    if (nn_cuconv_plan(h, &sh, &o, &c, &need, &e)) fail_msg("%s", e.msg);
    void *ws = dput(NULL, need);
    float *dxx = dput(x, 4 * nx), *dww = dput(w, 4 * nw), *ddy = dput(dy, 4 * ny);
    float *dyy = dput(NULL, 4 * ny), *ddx = dput(NULL, 4 * nx), *ddw = dput(NULL, 4 * nw);
    if (nn_cuconv_fwd(h, c, dxx, dww, dyy, 0.0f, ws, need, &e) ||
        nn_cuconv_bwd_data(h, c, ddy, dww, ddx, 0.0f, ws, need, &e) ||
        nn_cuconv_bwd_filter(h, c, dxx, ddy, ddw, ws, need, &e))
        fail_msg("%s", e.msg);
    dget(y, dyy, 4 * ny);
    dget(dx, ddx, 4 * nx);
    dget(dw, ddw, 4 * nw);
    double *X = widen(x, nx), *Wd = widen(w, nw), *DY = widen(dy, ny);
    double *Y = malloc(8 * ny), *DX = malloc(8 * nx), *DW = malloc(8 * nw);
    nn_ref_conv_forward(Y, X, Wd, NULL, N, IC, H, W, OC, k, stride, pad);
    nn_ref_conv_backward(DX, DW, NULL, DY, X, Wd, N, IC, H, W, OC, k, stride, pad);
    char what[96];
    snprintf(what, sizeof what, "conv %dx%d/%d %d->%d fwd", k, k, stride, IC, OC);
    close_rel(what, y, Y, ny, 1e-4, 1e-5);
    snprintf(what, sizeof what, "conv %dx%d/%d %d->%d bwd-data", k, k, stride, IC, OC);
    close_rel(what, dx, DX, nx, 1e-4, 1e-5);
    snprintf(what, sizeof what, "conv %dx%d/%d %d->%d bwd-filter", k, k, stride, IC, OC);
    close_rel(what, dw, DW, nw, 1e-4, 1e-5);
    print_message("  algorithms: %s\n", nn_cuconv_impl(c));
    nn_cuconv_free(c);
    cudnnDestroy(h);
    void *dev[] = {ws, dxx, dww, ddy, dyy, ddx, ddw};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) cudaFree(dev[i]);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
    free(X), free(Wd), free(DY), free(Y), free(DX), free(DW);
}

static void test_conv(void **st) {
    (void)st;
    NEED_GPU();
    conv_case(2, 3, 33, 31, 8, 7, 2, 3);   /* the stem */
    conv_case(2, 8, 17, 17, 8, 3, 1, 1);   /* a block conv */
    conv_case(2, 8, 17, 17, 16, 3, 2, 1);  /* a downsampling block conv */
    conv_case(2, 8, 17, 17, 16, 1, 2, 0);  /* the 1x1 shortcut */
}

static void bn_case(int relu) {
    int N = 3, C = 5, HW = 37;
    size_t n = (size_t)N * C * HW;
    float *x = malloc(4 * n), *dy = malloc(4 * n), *g = malloc(4 * C), *b = malloc(4 * C);
    float rm[5] = {0.1f, -0.2f, 0, 0.3f, 1}, rv[5] = {1, 0.5f, 2, 1, 0.25f};
    fill(x, n, 4, -2, 3);
    fill(dy, n, 5, -1, 1);
    fill(g, C, 6, 0.5, 1.5);
    fill(b, C, 7, -0.5, 0.5);
    float *dx_ = dput(x, 4 * n), *ddy = dput(dy, 4 * n), *dg = dput(g, 4 * C), *db = dput(b, 4 * C);
    float *drm = dput(rm, 4 * C), *drv = dput(rv, 4 * C), *dout = dput(NULL, 4 * n);
    float *dmean = dput(NULL, 4 * C), *dinv = dput(NULL, 4 * C), *ddx = dput(NULL, 4 * n);
    float *ddg = dput(NULL, 4 * C), *ddb = dput(NULL, 4 * C);
    double *scr = dput(NULL, 8 * nn_cu_partials((size_t)N * HW, C) * 2);
    KK(nn_cu_bn_train(ST, dout, dmean, dinv, drm, drv, dx_, dg, db, N, C, HW, 1e-5f, 0.1f, relu, scr));
    /* backward of the ReLU'd output: mask first, as the engine does */
    if (relu) KK(nn_cu_relu_mask(ST, ddy, dout, n));
    KK(nn_cu_bn_backward(ST, ddx, ddg, ddb, ddy, dx_, dmean, dinv, dg, N, C, HW, 0, scr));
    float *out = malloc(4 * n), *gx = malloc(4 * n), grm[5], grv[5], gg[5], gb[5];
    dget(out, dout, 4 * n);
    dget(gx, ddx, 4 * n);
    dget(grm, drm, 4 * C);
    dget(grv, drv, 4 * C);
    dget(gg, ddg, 4 * C);
    dget(gb, ddb, 4 * C);
    double *X = widen(x, n), *G = widen(g, C), *B = widen(b, C), *Y = malloc(8 * n);
    double mean[5], var[5], RM[5], RV[5];
    for (int c = 0; c < C; c++) RM[c] = rm[c], RV[c] = rv[c];
    nn_ref_bn_forward_train(Y, mean, var, X, G, B, N, C, HW, 1e-5);
    nn_ref_bn_update_running(RM, RV, mean, var, C, N * HW, 0.1);
    if (relu) nn_ref_relu_forward(Y, Y, n);
    close_rel(relu ? "bn+relu train fwd" : "bn train fwd", out, Y, n, 1e-5, 1e-5);
    close_rel("bn running_mean", grm, RM, C, 1e-5, 1e-5);
    close_rel("bn running_var", grv, RV, C, 1e-5, 1e-5);
    double *DY = widen(dy, n), *DX = malloc(8 * n), DG[5], DB[5];
    if (relu) nn_ref_relu_backward(DY, DY, Y, n);
    nn_ref_bn_backward(DX, DG, DB, DY, X, mean, var, G, N, C, HW, 1e-5);
    close_rel("bn bwd dx", gx, DX, n, 1e-4, 1e-5);
    close_rel("bn bwd dgamma", gg, DG, C, 1e-4, 1e-5);
    close_rel("bn bwd dbeta", gb, DB, C, 1e-4, 1e-5);
    /* eval with the running stats */
    KK(nn_cu_bn_eval(ST, dout, dx_, dg, db, drm, drv, N, C, HW, 1e-5f, relu));
    dget(out, dout, 4 * n);
    double RMf[5], RVf[5];
    for (int c = 0; c < C; c++) RMf[c] = grm[c], RVf[c] = grv[c];
    nn_ref_bn_forward_eval(Y, X, G, B, RMf, RVf, N, C, HW, 1e-5);
    if (relu) nn_ref_relu_forward(Y, Y, n);
    close_rel("bn eval", out, Y, n, 1e-5, 1e-5);
    void *dev[] = {dx_, ddy, dg, db, drm, drv, dout, dmean, dinv, ddx, ddg, ddb, scr};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) cudaFree(dev[i]);
    free(x), free(dy), free(g), free(b), free(out), free(gx);
    free(X), free(G), free(B), free(Y), free(DY), free(DX);
}

static void test_batchnorm(void **st) {
    (void)st;
    NEED_GPU();
    bn_case(0);
    bn_case(1);
}

static void test_maxpool_gap(void **st) {
    (void)st;
    NEED_GPU();
    int N = 2, C = 3, H = 13, W = 11, k = 3, s = 2, pad = 1;
    int OH = (H + 2 * pad - k) / s + 1, OW = (W + 2 * pad - k) / s + 1;
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * OH * OW;
    float *x = malloc(4 * nx), *dy = malloc(4 * ny), *y = malloc(4 * ny), *dx = malloc(4 * nx);
    fill(x, nx, 8, -1, 1);
    for (size_t i = 0; i < nx; i += 3) x[i] = 0.0f; /* ties, as after a ReLU */
    for (size_t i = 0; i < nx; i++) x[i] = roundf(x[i] * 4) / 4;
    fill(dy, ny, 9, -1, 1);
    float *dxx = dput(x, 4 * nx), *ddy = dput(dy, 4 * ny), *dyy = dput(NULL, 4 * ny);
    float *ddx = dput(NULL, 4 * nx);
    int32_t *am = dput(NULL, 4 * ny);
    KK(nn_cu_maxpool_fwd(ST, dyy, am, dxx, N, C, H, W, OH, OW, k, s, pad));
    KK(nn_cu_maxpool_bwd(ST, ddx, ddy, am, N, C, H, W, OH, OW, k, s, pad, 0));
    dget(y, dyy, 4 * ny);
    dget(dx, ddx, 4 * nx);
    double *X = widen(x, nx), *Y = malloc(8 * ny), *DY = widen(dy, ny), *DX = malloc(8 * nx);
    int32_t *AM = malloc(4 * ny);
    nn_ref_maxpool_forward(Y, AM, X, N, C, H, W, k, s, pad);
    nn_ref_maxpool_backward(DX, DY, AM, N, C, H, W, OH, OW);
    close_rel("maxpool fwd", y, Y, ny, 0, 0 + 1e-12);
    close_rel("maxpool bwd (first max wins)", dx, DX, nx, 1e-6, 1e-6);
    /* GAP */
    int HW = H * W;
    float *g = malloc(4 * N * C), *gd = malloc(4 * nx);
    float *dg = dput(NULL, 4 * N * C), *dgd = dput(NULL, 4 * nx);
    KK(nn_cu_gap_fwd(ST, dg, dxx, N, C, HW));
    KK(nn_cu_gap_bwd(ST, dgd, dg, N, C, HW, 0));
    dget(g, dg, 4 * N * C);
    dget(gd, dgd, 4 * nx);
    double G[6], *GD = malloc(8 * nx), GG[6];
    nn_ref_gap_forward(G, X, N, C, HW);
    close_rel("gap fwd", g, G, (size_t)N * C, 1e-6, 1e-6);
    for (int i = 0; i < N * C; i++) GG[i] = g[i];
    nn_ref_gap_backward(GD, GG, N, C, HW);
    close_rel("gap bwd", gd, GD, nx, 1e-6, 1e-6);
    /* the model's max and avg+max global pools (ties after the rounding
     * above: the first max takes the max term's gradient), accumulating */
    for (int t = 0; t < 2; t++) {
        float w = t ? 0.5f : 1.0f;
        KK(nn_cu_gpool_fwd(ST, dg, dxx, N, C, HW, w));
        cudaMemset(dgd, 0, 4 * nx);
        KK(nn_cu_gpool_bwd(ST, dgd, dg, dxx, N, C, HW, w, 1));
        dget(g, dg, 4 * N * C);
        dget(gd, dgd, 4 * nx);
        nn_ref_gpool_forward(G, X, N, C, HW, w);
        close_rel(t ? "gpool avgmax fwd" : "gpool max fwd", g, G, (size_t)N * C, 1e-6, 1e-6);
        for (int i = 0; i < N * C; i++) GG[i] = g[i];
        nn_ref_gpool_backward(GD, GG, X, N, C, HW, w);
        close_rel(t ? "gpool avgmax bwd" : "gpool max bwd", gd, GD, nx, 1e-6, 1e-6);
    }
    void *dev[] = {dxx, ddy, dyy, ddx, am, dg, dgd};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) cudaFree(dev[i]);
    free(x), free(dy), free(y), free(dx), free(X), free(Y), free(DY), free(DX), free(AM);
    free(g), free(gd), free(GD);
}

static void test_elementwise(void **st) {
    (void)st;
    NEED_GPU();
    size_t n = 1000;
    float a[1000], b[1000], m[1000], out[1000], ref[1000];
    fill(a, n, 10, -1, 1);
    fill(b, n, 11, -1, 1);
    for (size_t i = 0; i < n; i++) m[i] = i % 3 ? 2.0f : 0.0f; /* dropout mask, p = 1/2 */
    float *da = dput(a, 4 * n), *db = dput(b, 4 * n), *dm = dput(m, 4 * n), *dy = dput(NULL, 4 * n);
    KK(nn_cu_add(ST, dy, da, db, n, 1));
    dget(out, dy, 4 * n);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] + b[i] > 0 ? a[i] + b[i] : 0.0f;
    close_ff("residual add + relu", out, ref, n, 0, 1e-7);
    KK(nn_cu_mul(ST, dy, da, dm, n));
    dget(out, dy, 4 * n);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] * m[i];
    close_ff("dropout mask", out, ref, n, 0, 1e-7);
    KK(nn_cu_accum(ST, dy, db, n, 1));
    dget(out, dy, 4 * n);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] * m[i] + b[i];
    close_ff("gradient accumulate", out, ref, n, 0, 1e-7);
    KK(nn_cu_relu_mask(ST, dy, da, n));
    dget(out, dy, 4 * n);
    for (size_t i = 0; i < n; i++) ref[i] = a[i] > 0 ? a[i] * m[i] + b[i] : 0.0f;
    close_ff("relu backward mask", out, ref, n, 0, 1e-7);
    cudaFree(da), cudaFree(db), cudaFree(dm), cudaFree(dy);
}

static void test_loss(void **st) {
    (void)st;
    NEED_GPU();
    int N = 7, K = 3;
    size_t n = (size_t)N * K;
    float x[21], y[21], pw[3] = {0.5f, 2.0f, 7.0f}, dl[21];
    fill(x, n, 12, -6, 6);
    for (size_t i = 0; i < n; i++) y[i] = (float)(i % 2);
    y[4] = 0.3f; /* a soft target */
    float *dx = dput(x, 4 * n), *dyy = dput(y, 4 * n), *dpw = dput(pw, 12), *ddl = dput(NULL, 4 * n);
    double *dloss = dput(NULL, 8), *scr = dput(NULL, 8 * nn_cu_partials(n, 1));
    for (int v = 0; v < 3; v++) { /* plain; pos_weight + smoothing; + focal gamma 2 */
        float s = v ? 0.1f : 0.0f, g = v == 2 ? 2.0f : 0.0f;
        KK(nn_cu_bce(ST, dloss, ddl, dx, dyy, v ? dpw : NULL, s, g, N, K, scr));
        double loss;
        dget(&loss, dloss, 8);
        dget(dl, ddl, 4 * n);
        double *X = widen(x, n), DL[21];
        double ref = nn_ref_focal_forward(X, y, v ? pw : NULL, s, g, N, K);
        nn_ref_focal_backward(DL, X, y, v ? pw : NULL, s, g, N, K);
        if (fabs(loss - ref) > 1e-11 * fmax(1, fabs(ref)))
            fail_msg("bce loss (case %d) %.17g vs reference %.17g", v, loss, ref);
        close_rel(v == 2 ? "focal dlogits (gamma 2, pos_weight, smoothing 0.1)"
                  : v    ? "bce dlogits (pos_weight, smoothing 0.1)"
                         : "bce dlogits",
                  dl, DL, n, 1e-6, 1e-6);
        free(X);
    }
    cudaFree(dx), cudaFree(dyy), cudaFree(dpw), cudaFree(ddl), cudaFree(dloss), cudaFree(scr);
}

static void test_optimizers(void **st) {
    (void)st;
    NEED_GPU();
    size_t n = 5000;
    float *p = malloc(4 * n), *g = malloc(4 * n), *m1 = malloc(4 * n), *m2 = malloc(4 * n);
    float *hp = malloc(4 * n), *hm1 = malloc(4 * n), *hm2 = malloc(4 * n);
    nn_optim_cfg cfgs[4] = {
        {.kind = NN_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = 1, .weight_decay = 1e-4f},
        {.kind = NN_OPT_SGD, .lr = 0.05f, .momentum = 0.8f, .dampening = 0.1f},
        {.kind = NN_OPT_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-2f},
        {.kind = NN_OPT_ADAMW, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.05f},
    };
    const char *names[4] = {"sgd nesterov wd", "sgd dampening", "adam", "adamw"};
    for (int c = 0; c < 4; c++) {
        fill(p, n, 20, -1, 1);
        memset(m1, 0, 4 * n);
        memset(m2, 0, 4 * n);
        float *dp = dput(p, 4 * n), *dg = dput(NULL, 4 * n), *dm1 = dput(m1, 4 * n), *dm2 = dput(m2, 4 * n);
        for (int64_t t = 1; t <= 3; t++) {
            fill(g, n, 30 + (uint64_t)t, -1, 1);
            CK(cudaMemcpy(dg, g, 4 * n, cudaMemcpyHostToDevice));
            float scale = t == 2 ? 0.5f : 1.0f;
            nn_optim_update(&cfgs[c], p, g, m1, m2, n, t, scale);
            const nn_optim_cfg *o = &cfgs[c];
            if (o->kind == NN_OPT_SGD) {
                KK(nn_cu_sgd(ST, dp, dg, dm1, n, o->lr, o->weight_decay, o->momentum,
                             1.0f - o->dampening, t <= 1, o->nesterov, scale));
            } else {
                double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
                KK(nn_cu_adam(ST, dp, dg, dm1, dm2, n, o->beta1, o->beta2, o->eps,
                              (float)(o->lr / bc1), (float)(1.0 / sqrt(bc2)),
                              o->kind == NN_OPT_ADAM ? o->weight_decay : 0.0f,
                              o->kind == NN_OPT_ADAMW ? 1.0f - o->lr * o->weight_decay : 1.0f, scale));
            }
        }
        dget(hp, dp, 4 * n);
        dget(hm1, dm1, 4 * n);
        dget(hm2, dm2, 4 * n);
        size_t same = 0;
        for (size_t i = 0; i < n; i++) same += memcmp(&hp[i], &p[i], 4) == 0;
        print_message("%s: %zu of %zu params bitwise equal to nn_optim_update\n", names[c], same, n);
        close_ff(names[c], hp, p, n, 1e-7, 1e-6);
        close_ff("  moment 1", hm1, m1, n, 1e-7, 1e-6);
        if (cfgs[c].kind != NN_OPT_SGD) close_ff("  moment 2", hm2, m2, n, 1e-7, 1e-6);
        cudaFree(dp), cudaFree(dg), cudaFree(dm1), cudaFree(dm2);
    }
    /* the gradient norm's sum of squares */
    fill(g, n, 40, -3, 3);
    float *dg = dput(g, 4 * n);
    double *out = dput(NULL, 8), *scr = dput(NULL, 8 * nn_cu_partials(n, 1)), got;
    KK(nn_cu_sumsq(ST, out, dg, n, scr));
    dget(&got, out, 8);
    double ref = nn_sumsq(g, n);
    if (fabs(got - ref) > 1e-12 * ref) fail_msg("sumsq %.17g vs %.17g", got, ref);
    cudaFree(dg), cudaFree(out), cudaFree(scr);
    free(p), free(g), free(m1), free(m2), free(hp), free(hm1), free(hm2);
}

static void test_u8_normalize(void **st) {
    (void)st;
    NEED_GPU();
    int N = 8, C = 3, H = 9, W = 9;
    size_t n = (size_t)N * C * H * W;
    uint8_t *u8 = malloc(n), flags[8];
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 50);
    for (size_t i = 0; i < n; i++) u8[i] = (uint8_t)(lm_xoshiro_next(&r) & 255);
    for (int i = 0; i < N; i++) flags[i] = (uint8_t)i; /* every dihedral element */
    float mean[3] = {0.5f, 0.4f, 0.3f}, sd[3] = {0.2f, 0.25f, 0.3f};
    float *got = malloc(4 * n), *ref = malloc(4 * n);
    uint8_t *du = dput(u8, n), *df = dput(flags, N);
    float *dx = dput(NULL, 4 * n), *dm = dput(mean, 12), *ds = dput(sd, 12);
    KK(nn_cu_u8_normalize(ST, dx, du, df, dm, ds, N, C, H, W));
    dget(got, dx, 4 * n);
    size_t img = (size_t)C * H * W;
    for (int i = 0; i < N; i++)
        assert_int_equal(nn_aug_dihedral(u8 + i * img, C, H, W, i, mean, sd, ref + i * img), 0);
    close_ff("u8 normalize + dihedral vs nn_aug_dihedral", got, ref, n, 0, 1e-6);
    cudaFree(du), cudaFree(df), cudaFree(dx), cudaFree(dm), cudaFree(ds);
    free(u8), free(got), free(ref);
}
#endif /* LUMEN_HAVE_CUDA */

/* ------------------------------------------------------------ engine -- */
typedef struct net {
    nn_model *m;
    nn_engine_opts o;
    float *x, *y, *pw;
    int n, K;
} net;

static void net_open(net *t, float dropout, int batch) {
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    c.nstages = 2;
    c.blocks[0] = 1, c.blocks[1] = 2;
    c.widths[0] = 8, c.widths[1] = 16;
    c.stem_width = 8;
    c.in_channels = 1;
    c.num_classes = 3;
    c.dropout = dropout;
    lm_err e = {0};
    if (nn_model_create(&c, &t->m, &e)) fail_msg("%s", e.msg);
    t->n = batch;
    t->K = 3;
    t->o = (nn_engine_opts){.batch = batch, .channels = 1, .height = 40, .width = 36, .threads = 0,
                            .seed = 7, .precision = "fp32"};
    size_t nx = (size_t)batch * 40 * 36;
    t->x = malloc(4 * nx);
    t->y = malloc(4 * (size_t)batch * 3);
    t->pw = malloc(12);
    fill(t->x, nx, 60, -2, 2);
    for (int i = 0; i < batch * 3; i++) t->y[i] = (float)((i * 7 + i / 3) % 2);
    t->pw[0] = 1.5f, t->pw[1] = 0.7f, t->pw[2] = 3.0f;
}

static void net_close(net *t) {
    nn_model_free(t->m);
    free(t->x), free(t->y), free(t->pw);
}

static nn_engine *eng(net *t, const char *backend, const char *precision, int det) {
    nn_engine_opts o = t->o;
    if (precision) o.precision = precision;
    o.deterministic = det;
    nn_engine *en = NULL;
    lm_err e = {0};
    if (nn_engine_create(backend, t->m, &o, &en, &e)) fail_msg("%s: %s", backend, e.msg);
    return en;
}

/* max |a - b| <= 1e-3 max |b| per tensor (test_golden.c's gradient rule) */
static void grads_close(const nn_model *m, const float *a, const float *b) {
    double worst = 0;
    const char *wname = "";
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if (t->kind != NN_T_PARAM) continue;
        double mx = 0, md = 0;
        for (size_t j = 0; j < t->numel; j++) {
            mx = fmax(mx, fabs(b[t->offset + j]));
            double d = fabs((double)a[t->offset + j] - b[t->offset + j]);
            md = fmax(md, d == d ? d : INFINITY);
        }
        double r = md / (1e-3 * fmax(mx, 1e-30));
        if (r > worst) worst = r, wname = t->name;
    }
    if (worst > 1) fail_msg("gradient of %s: %.3g of the tolerance", wname, worst);
    print_message("gradients: worst %.3g of the tolerance (%s)\n", worst, wname);
}

static void test_engine_step(void **st) {
    (void)st;
    NEED_GPU();
    net t;
    net_open(&t, 0.3f, 6);
    nn_engine *c = eng(&t, "cpu", NULL, 0), *g = eng(&t, "cuda", NULL, 0);
    assert_string_equal(nn_engine_backend(g), "cuda");
    print_message("%s\n", nn_engine_note(g));
    lm_err e = {0};
    nn_loss_cfg lc = {.pos_weight = t.pw, .label_smoothing = 0.1f};
    size_t nk = (size_t)t.n * t.K, np = t.m->nparams, nb = t.m->nbuffers;
    float lc_, lg, *a = malloc(4 * nk), *b = malloc(4 * nk);
    /* the same dropout mask on both: same seed, same step */
    assert_int_equal(nn_engine_train_step(c, t.x, t.y, t.n, &lc, &lc_, a, &e), 0);
    assert_int_equal(nn_engine_train_step(g, t.x, t.y, t.n, &lc, &lg, b, &e), 0);
    close_ff("train logits (dropout mask from (seed, step))", b, a, nk, 1e-4, 1e-4);
    if (fabs(lc_ - lg) > 1e-5 * (1 + fabs(lc_))) fail_msg("loss cuda %.9g cpu %.9g", lg, lc_);
    float *ga = malloc(4 * np), *gb = malloc(4 * np), *ba = malloc(4 * nb), *bb = malloc(4 * nb);
    int64_t ca[64], cb[64];
    assert_int_equal(nn_engine_get_grads(c, ga, &e), 0);
    assert_int_equal(nn_engine_get_grads(g, gb, &e), 0);
    grads_close(t.m, gb, ga);
    assert_int_equal(nn_engine_get_state(c, NULL, ba, ca, &e), 0);
    assert_int_equal(nn_engine_get_state(g, NULL, bb, cb, &e), 0);
    close_ff("BN running stats after a step", bb, ba, nb, 1e-5, 1e-4);
    assert_memory_equal(ca, cb, sizeof(int64_t) * t.m->ncounters);
    double na, nb2;
    assert_int_equal(nn_engine_grad_norm(c, &na, &e), 0);
    assert_int_equal(nn_engine_grad_norm(g, &nb2, &e), 0);
    if (fabs(na - nb2) > 1e-3 * na) fail_msg("grad norm cuda %.9g cpu %.9g", nb2, na);
    /* eval, unfolded and folded */
    assert_int_equal(nn_engine_forward_eval(c, t.x, t.n, a, &e), 0);
    assert_int_equal(nn_engine_forward_eval(g, t.x, t.n, b, &e), 0);
    close_ff("eval logits", b, a, nk, 1e-4, 1e-4);
    assert_int_equal(nn_engine_predict(g, t.x, t.n, b, &e), 0);
    close_ff("predict (BN folded) logits", b, a, nk, 1e-4, 1e-4);
    /* a smaller batch gets its own plan */
    assert_int_equal(nn_engine_predict(c, t.x, 2, a, &e), 0);
    assert_int_equal(nn_engine_predict(g, t.x, 2, b, &e), 0);
    close_ff("predict, batch 2", b, a, 2 * (size_t)t.K, 1e-4, 1e-4);
    nn_engine_free(c);
    nn_engine_free(g);
    free(a), free(b), free(ga), free(gb), free(ba), free(bb);
    net_close(&t);
}

/* 20 steps of `opt` from the same weights and data on both; losses[] out */
static void run_steps(net *t, nn_engine *en, const nn_optim_cfg *opt, int steps, float *losses) {
    lm_err e = {0};
    nn_loss_cfg lc = {.pos_weight = t->pw};
    for (int s = 0; s < steps; s++) {
        /* the batch changes per step: a shifted window of the same data */
        float *x = malloc(4 * (size_t)t->n * 40 * 36);
        for (size_t i = 0; i < (size_t)t->n * 40 * 36; i++) x[i] = t->x[(i + (size_t)s * 97) % ((size_t)t->n * 40 * 36)];
        if (nn_engine_train_step(en, x, t->y, t->n, &lc, &losses[s], NULL, &e)) fail_msg("%s", e.msg);
        double norm;
        if (nn_engine_grad_norm(en, &norm, &e)) fail_msg("%s", e.msg);
        float scale = norm > 5 ? (float)(5 / norm) : 1.0f; /* clipping, as the trainer */
        if (nn_engine_optim_step(en, opt, scale, &e)) fail_msg("%s", e.msg);
        free(x);
    }
}

static const nn_optim_cfg ADAMW = {.kind = NN_OPT_ADAMW, .lr = 2e-3f, .beta1 = 0.9f,
                                   .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};

static void test_engine_20_steps(void **st) {
    (void)st;
    NEED_GPU();
    net t;
    net_open(&t, 0.2f, 8);
    nn_engine *c = eng(&t, "cpu", NULL, 0), *g = eng(&t, "cuda", NULL, 0);
    nn_engine *h = eng(&t, "cuda", "bf16", 0), *f = eng(&t, "cuda", "tf32", 0);
    float lc_[20], lg[20], lh[20], lf[20];
    run_steps(&t, c, &ADAMW, 20, lc_);
    run_steps(&t, g, &ADAMW, 20, lg);
    run_steps(&t, h, &ADAMW, 20, lh);
    run_steps(&t, f, &ADAMW, 20, lf);
    double worst = 0, wb = 0, wt = 0;
    for (int s = 0; s < 20; s++) {
        worst = fmax(worst, fabs(lg[s] - lc_[s]) / (2e-3 * (1 + fabs(lc_[s]))));
        wb = fmax(wb, fabs(lh[s] - lg[s]) / (5e-2 * (1 + fabs(lg[s]))));
        wt = fmax(wt, fabs(lf[s] - lg[s]) / (1e-2 * (1 + fabs(lg[s]))));
    }
    print_message("20 AdamW steps: loss cpu %.5f -> %.5f, cuda fp32 %.5f -> %.5f, tf32 %.5f, bf16 %.5f\n",
                  lc_[0], lc_[19], lg[0], lg[19], lf[19], lh[19]);
    print_message("worst: cuda/cpu %.3g, bf16/fp32 %.3g, tf32/fp32 %.3g of the tolerance\n", worst, wb, wt);
    assert_true(worst <= 1);
    assert_true(wb <= 1);
    assert_true(wt <= 1);
    assert_true(lg[19] < lg[0]); /* it learns */
    /* the optimizer state agrees too */
    size_t np = t.m->nparams;
    float *pa = malloc(4 * np), *pb = malloc(4 * np);
    lm_err e = {0};
    int64_t sa, sb;
    assert_int_equal(nn_engine_get_optim_state(c, pa, NULL, &sa, &e), 0);
    assert_int_equal(nn_engine_get_optim_state(g, pb, NULL, &sb, &e), 0);
    assert_int_equal(sa, sb);
    close_ff("AdamW exp_avg after 20 steps", pb, pa, np, 2e-2, 2e-2);
    free(pa), free(pb);
    nn_engine_free(c), nn_engine_free(g), nn_engine_free(h), nn_engine_free(f);
    net_close(&t);
}

static void test_deterministic(void **st) {
    (void)st;
    NEED_GPU();
    net t;
    net_open(&t, 0.3f, 8);
    float a[10], b[10];
    for (int k = 0; k < 2; k++) {
        nn_engine *g = eng(&t, "cuda", "tf32", 1);
        run_steps(&t, g, &ADAMW, 10, k ? b : a);
        nn_engine_free(g);
    }
    for (int s = 0; s < 10; s++)
        if (memcmp(&a[s], &b[s], sizeof(float)) != 0)
            fail_msg("deterministic mode: step %d loss %.9g then %.9g", s, a[s], b[s]);
    print_message("deterministic: 10 losses bitwise equal twice (last %.6f)\n", a[9]);
    net_close(&t);
}

/* A state trained on the GPU continues on the cpu (and the reverse), and
 * predicts there: the canonical state is the same. */
static void test_cross_backend_state(void **st) {
    (void)st;
    NEED_GPU();
    net t;
    net_open(&t, 0.0f, 8);
    size_t np = t.m->nparams, nb = t.m->nbuffers;
    float *p = malloc(4 * np), *m1 = malloc(4 * np), *m2 = malloc(4 * np), *b = malloc(4 * nb);
    int64_t cn[64], step;
    lm_err e = {0};
    float l[5], lc_[3], lg[3];
    for (int dir = 0; dir < 2; dir++) {
        nn_engine *src = eng(&t, dir ? "cpu" : "cuda", NULL, 0);
        run_steps(&t, src, &ADAMW, 5, l);
        assert_int_equal(nn_engine_get_state(src, p, b, cn, &e), 0);
        assert_int_equal(nn_engine_get_optim_state(src, m1, m2, &step, &e), 0);
        int64_t ts = nn_engine_train_steps(src);
        nn_engine *dst = eng(&t, dir ? "cuda" : "cpu", NULL, 0);
        assert_int_equal(nn_engine_set_state(dst, p, b, cn, &e), 0);
        assert_int_equal(nn_engine_set_optim_state(dst, m1, m2, step, &e), 0);
        nn_engine_set_train_steps(dst, ts);
        size_t nk = (size_t)t.n * t.K;
        float *a = malloc(4 * nk), *c = malloc(4 * nk);
        assert_int_equal(nn_engine_predict(src, t.x, t.n, a, &e), 0);
        assert_int_equal(nn_engine_predict(dst, t.x, t.n, c, &e), 0);
        close_ff(dir ? "cpu-trained state predicted on cuda" : "cuda-trained state predicted on cpu", c, a,
                 nk, 1e-4, 1e-4);
        run_steps(&t, src, &ADAMW, 3, lc_);
        run_steps(&t, dst, &ADAMW, 3, lg);
        for (int s = 0; s < 3; s++)
            if (fabs(lc_[s] - lg[s]) > 2e-3 * (1 + fabs(lc_[s])))
                fail_msg("continued step %d: %s %.6f, %s %.6f", s, dir ? "cpu" : "cuda", lc_[s],
                         dir ? "cuda" : "cpu", lg[s]);
        free(a), free(c);
        nn_engine_free(src), nn_engine_free(dst);
    }
    free(p), free(m1), free(m2), free(b);
    net_close(&t);
}

static void test_two_engines(void **st) {
    (void)st;
    NEED_GPU();
    net t;
    net_open(&t, 0.0f, 4);
    nn_engine *a = eng(&t, "cuda", NULL, 1), *b = eng(&t, "cuda", NULL, 1);
    float la[3], lb[3];
    /* interleaved: each keeps its own state */
    for (int s = 0; s < 3; s++) {
        run_steps(&t, a, &ADAMW, 1, &la[s]);
        run_steps(&t, b, &ADAMW, 1, &lb[s]);
    }
    for (int s = 0; s < 3; s++)
        if (memcmp(&la[s], &lb[s], 4)) fail_msg("two engines diverge at step %d: %.9g %.9g", s, la[s], lb[s]);
    nn_engine_free(a), nn_engine_free(b);
    net_close(&t);
}

static void test_out_of_memory(void **st) {
    (void)st;
    NEED_GPU();
    nn_model *m;
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    lm_err e = {0};
    assert_int_equal(nn_model_create(&c, &m, &e), 0);
    /* batch 65536 at 512x512: ~10 TB of activations */
    nn_engine_opts o = {.batch = 65536, .channels = 1, .height = 512, .width = 512, .seed = 1};
    nn_engine *en = NULL;
    int rc = nn_engine_create("cuda", m, &o, &en, &e);
    print_message("absurd batch: %s\n", e.msg);
    assert_int_equal(rc, LUMEN_ENOMEM);
    assert_non_null(strstr(e.msg, "out of GPU memory"));
    assert_non_null(strstr(e.msg, "MiB"));
    assert_null(en);
    /* and the GPU is still usable afterwards */
    net t;
    net_open(&t, 0.0f, 2);
    nn_engine *g = eng(&t, "cuda", NULL, 0);
    float l;
    run_steps(&t, g, &ADAMW, 1, &l);
    assert_true(isfinite(l));
    nn_engine_free(g);
    net_close(&t);
    nn_model_free(m);
}

#ifndef LUMEN_HAVE_CUDA
#define NOT_BUILT(name) \
    static void name(void **st) { (void)st; NEED_GPU(); }
NOT_BUILT(test_conv)
NOT_BUILT(test_batchnorm)
NOT_BUILT(test_maxpool_gap)
NOT_BUILT(test_elementwise)
NOT_BUILT(test_loss)
NOT_BUILT(test_optimizers)
NOT_BUILT(test_u8_normalize)
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),           cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_maxpool_gap),    cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_loss),           cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_u8_normalize),   cmocka_unit_test(test_engine_step),
        cmocka_unit_test(test_engine_20_steps), cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_cross_backend_state), cmocka_unit_test(test_two_engines),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
