/* Layer tests.
 *  - every reference layer (kernels/nn_ref.c, double) against central finite
 *    differences: f(x) = sum_i r_i out_i(x) for a fixed random r; the analytic
 *    gradient (backward with dout = r) must match (f(x+h) - f(x-h)) / 2h with
 *    h = 1e-5: |analytic - numeric| <= 1e-6 * max(1, |analytic|) per element
 *  - the cpu backend's own kernels (float) against the reference: rel 1e-5
 *  - BN running statistics, the loss and the optimizers against values from
 *    PyTorch 2.x (torch.nn.functional.binary_cross_entropy_with_logits,
 *    torch.optim.SGD / Adam / AdamW), 1e-6 (double) / 1e-6 rel (float)
 * The oneDNN layers are compared with the reference through whole networks in
 * test_engine.c (every op kind, strides 1/2, 1x1/3x3/7x7 kernels, odd sizes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_kernels.h"
#include "nn_engine_impl.h"
#include "nn_optim.h"
#include "nn_ref.h"
#include "rng.h"

#define H_FD 1e-5
#define TOL_FD 1e-6

static double *rnd(lm_xoshiro *r, size_t n, double scale) {
    double *v = malloc(sizeof(double) * n);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = scale * lm_xoshiro_normal(r);
    return v;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* forward of a layer as f(out, x) with everything else bound */
typedef void (*fwd_fn)(void *ctx, double *out, const double *x);

/* Checks grad[] (analytic d/dx of sum r*out) against central differences. */
static void check_fd(const char *what, fwd_fn f, void *ctx, double *x, size_t nx, size_t nout,
                     const double *r, const double *grad) {
    double *o = malloc(sizeof(double) * nout);
    double worst = 0;
    for (size_t i = 0; i < nx; i++) {
        double keep = x[i];
        x[i] = keep + H_FD;
        f(ctx, o, x);
        double fp = dot(o, r, nout);
        x[i] = keep - H_FD;
        f(ctx, o, x);
        double fm = dot(o, r, nout);
        x[i] = keep;
        double num = (fp - fm) / (2 * H_FD);
        double e = fabs(num - grad[i]) / fmax(1.0, fabs(grad[i]));
        if (e > worst) worst = e;
    }
    free(o);
    if (worst > TOL_FD) fail_msg("%s: finite-difference error %.3g > %g", what, worst, TOL_FD);
}

/* ---- conv ---- */
typedef struct conv_ctx {
    int N, IC, H, W, OC, k, s, p;
    double *x, *w, *b;
    int wrt; /* 0 x, 1 w, 2 b */
} conv_ctx;

static void conv_f(void *c_, double *out, const double *v) {
    conv_ctx *c = c_;
    nn_ref_conv_forward(out, c->wrt == 0 ? v : c->x, c->wrt == 1 ? v : c->w,
                        c->wrt == 2 ? v : c->b, c->N, c->IC, c->H, c->W, c->OC, c->k, c->s, c->p);
}

static void conv_case(int N, int IC, int H, int W, int OC, int k, int s, int p) {
    lm_xoshiro r;
    lm_xoshiro_seed(&r, (uint64_t)(N * 1000 + IC * 100 + k * 10 + s + p));
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    size_t nx = (size_t)N * IC * H * W, nw = (size_t)OC * IC * k * k, no = (size_t)N * OC * OH * OW;
    conv_ctx c = {N, IC, H, W, OC, k, s, p, rnd(&r, nx, 1), rnd(&r, nw, 0.5), rnd(&r, OC, 1), 0};
    double *dout = rnd(&r, no, 1), *dx = malloc(sizeof(double) * nx),
           *dw = malloc(sizeof(double) * nw), *db = malloc(sizeof(double) * OC);
    /* backward overwrites: garbage in the outputs must not leak through */
    for (size_t i = 0; i < nx; i++) dx[i] = 1e9;
    for (size_t i = 0; i < nw; i++) dw[i] = -1e9;
    nn_ref_conv_backward(dx, dw, db, dout, c.x, c.w, N, IC, H, W, OC, k, s, p);
    char what[96];
    snprintf(what, sizeof what, "conv k%d s%d p%d %dx%d dx", k, s, p, H, W);
    c.wrt = 0;
    check_fd(what, conv_f, &c, c.x, nx, no, dout, dx);
    what[strlen(what) - 1] = 'w';
    c.wrt = 1;
    check_fd(what, conv_f, &c, c.w, nw, no, dout, dw);
    c.wrt = 2;
    check_fd("conv bias", conv_f, &c, c.b, OC, no, dout, db);

    /* the cpu backend's own stem backward-weights: blocked (b 8) and nhwc */
    if (OC % 8 == 0) {
        for (int pass = 0; pass < 2; pass++) {
            int b = pass ? OC : 8;
            float *xf = malloc(sizeof(float) * nx), *dyf = malloc(sizeof(float) * no);
            float *dwf = malloc(sizeof(float) * nw);
            float *pad = malloc(sizeof(float) * nn_cpu_conv_bwdw_scratch(N, IC, H, W, k, p));
            for (size_t i = 0; i < nx; i++) xf[i] = (float)c.x[i];
            /* dout NCHW -> channel-blocked with block b */
            int nbk = (OC + b - 1) / b;
            for (int n = 0; n < N; n++)
                for (int oc = 0; oc < OC; oc++)
                    for (int q = 0; q < OH * OW; q++)
                        dyf[(((size_t)n * nbk + oc / b) * OH * OW + q) * b + oc % b] =
                            (float)dout[((size_t)n * OC + oc) * OH * OW + q];
            nn_cpu_conv_bwdw(dwf, xf, 0, dyf, pad, N, IC, H, W, OC, OH, OW, k, s, p, b);
            double mx = 0, worst = 0;
            for (size_t i = 0; i < nw; i++) mx = fmax(mx, fabs(dw[i]));
            for (size_t i = 0; i < nw; i++) worst = fmax(worst, fabs(dwf[i] - dw[i]));
            if (worst > 1e-5 * mx) fail_msg("own conv bwdw (b %d): error %.3g of %.3g", b, worst, mx);
            free(xf);
            free(dyf);
            free(dwf);
            free(pad);
        }
    }
    /* the cpu backend's nChw8c backward-weights (padding channels when C % 8) */
    {
        int nbi = (IC + 7) / 8, nbo = (OC + 7) / 8;
        float *xb = calloc((size_t)N * nbi * 8 * H * W, sizeof(float));
        float *dyb = calloc((size_t)N * nbo * 8 * OH * OW, sizeof(float));
        float *dwf = malloc(sizeof(float) * nw);
        for (int n = 0; n < N; n++) {
            for (int ic = 0; ic < IC; ic++)
                for (int q = 0; q < H * W; q++)
                    xb[(((size_t)n * nbi + ic / 8) * H * W + q) * 8 + ic % 8] =
                        (float)c.x[((size_t)n * IC + ic) * H * W + q];
            for (int oc = 0; oc < OC; oc++)
                for (int q = 0; q < OH * OW; q++)
                    dyb[(((size_t)n * nbo + oc / 8) * OH * OW + q) * 8 + oc % 8] =
                        (float)dout[((size_t)n * OC + oc) * OH * OW + q];
        }
        nn_cpu_conv_bwdw_blk8(dwf, xb, dyb, N, IC, H, W, OC, OH, OW, k, s, p);
        double mx = 0, worst = 0;
        for (size_t i = 0; i < nw; i++) mx = fmax(mx, fabs(dw[i]));
        for (size_t i = 0; i < nw; i++) worst = fmax(worst, fabs(dwf[i] - dw[i]));
        if (worst > 1e-5 * mx) fail_msg("blk8 conv bwdw: error %.3g of %.3g", worst, mx);
        free(xb);
        free(dyb);
        free(dwf);
    }
    free(c.x);
    free(c.w);
    free(c.b);
    free(dout);
    free(dx);
    free(dw);
    free(db);
}

static void test_conv_fd(void **state) {
    (void)state;
    conv_case(2, 3, 7, 6, 4, 3, 1, 1);    /* 3x3, same padding, odd sizes */
    conv_case(2, 2, 9, 8, 3, 3, 2, 1);    /* 3x3 stride 2 */
    conv_case(1, 3, 11, 13, 8, 7, 2, 3);  /* stem-like 7x7/2 pad 3 */
    conv_case(2, 4, 7, 7, 5, 1, 2, 0);    /* 1x1 stride 2 (downsample) */
    conv_case(2, 1, 5, 5, 16, 3, 1, 1);   /* 1 input channel, OC 16 (own bwdw) */
    conv_case(1, 12, 5, 4, 12, 3, 1, 1);  /* channel blocks incl. a partial one */
    conv_case(1, 9, 2, 2, 10, 3, 1, 1);   /* 2x2 map: every tap partly outside */
}

/* The nChw8c backward-weights on a map too big for its register-resident
 * variant (the row-streaming one runs), against the reference. */
static void test_blk8_bwdw_large_map(void **state) {
    (void)state;
    int N = 2, C = 12, H = 48, W = 50;
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 99);
    size_t n = (size_t)N * C * H * W, nw = (size_t)C * C * 9;
    double *x = rnd(&r, n, 1), *dy = rnd(&r, n, 1), *w = rnd(&r, nw, 1);
    double *dw = malloc(sizeof(double) * nw);
    nn_ref_conv_backward(NULL, dw, NULL, dy, x, w, N, C, H, W, C, 3, 1, 1);
    float *xb = calloc((size_t)N * 16 * H * W, sizeof(float)), *db = calloc((size_t)N * 16 * H * W, sizeof(float));
    float *dwf = malloc(sizeof(float) * nw);
    for (int b = 0; b < N; b++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < H * W; q++) {
                size_t at = (((size_t)b * 2 + c / 8) * H * W + q) * 8 + c % 8;
                xb[at] = (float)x[((size_t)b * C + c) * H * W + q];
                db[at] = (float)dy[((size_t)b * C + c) * H * W + q];
            }
    nn_cpu_conv_bwdw_blk8(dwf, xb, db, N, C, H, W, C, H, W, 3, 1, 1);
    double mx = 0, worst = 0;
    for (size_t i = 0; i < nw; i++) mx = fmax(mx, fabs(dw[i]));
    for (size_t i = 0; i < nw; i++) worst = fmax(worst, fabs(dwf[i] - dw[i]));
    if (worst > 1e-5 * mx) fail_msg("blk8 bwdw, large map: error %.3g of %.3g", worst, mx);
    free(x);
    free(dy);
    free(w);
    free(dw);
    free(xb);
    free(db);
    free(dwf);
}

/* ---- batch norm (training) ---- */
typedef struct bn_ctx {
    int N, C, HW;
    double *x, *g, *b;
    int wrt;
} bn_ctx;

static void bn_f(void *c_, double *out, const double *v) {
    bn_ctx *c = c_;
    double mean[16], var[16];
    nn_ref_bn_forward_train(out, mean, var, c->wrt == 0 ? v : c->x, c->wrt == 1 ? v : c->g,
                            c->wrt == 2 ? v : c->b, c->N, c->C, c->HW, 1e-5);
}

static void test_bn_fd_and_running(void **state) {
    (void)state;
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 11);
    int N = 3, C = 4, HW = 5;
    size_t n = (size_t)N * C * HW;
    bn_ctx c = {N, C, HW, rnd(&r, n, 2), rnd(&r, C, 1), rnd(&r, C, 1), 0};
    double *dout = rnd(&r, n, 1), *dx = malloc(sizeof(double) * n), dg[4], db[4], mean[4], var[4];
    double *out = malloc(sizeof(double) * n);
    nn_ref_bn_forward_train(out, mean, var, c.x, c.g, c.b, N, C, HW, 1e-5);
    nn_ref_bn_backward(dx, dg, db, dout, c.x, mean, var, c.g, N, C, HW, 1e-5);
    check_fd("bn dx", bn_f, &c, c.x, n, n, dout, dx);
    c.wrt = 1;
    check_fd("bn dgamma", bn_f, &c, c.g, C, n, dout, dg);
    c.wrt = 2;
    check_fd("bn dbeta", bn_f, &c, c.b, C, n, dout, db);
    /* running stats: momentum 0.1, unbiased variance (hand formula) */
    double rm[4] = {0, 0, 0, 0}, rv[4] = {1, 1, 1, 1};
    nn_ref_bn_update_running(rm, rv, mean, var, C, N * HW, 0.1);
    for (int k = 0; k < C; k++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) s += c.x[((size_t)i * C + k) * HW + j];
        double m = s / (N * HW);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double d = c.x[((size_t)i * C + k) * HW + j] - m;
                s2 += d * d;
            }
        assert_true(fabs(rm[k] - 0.1 * m) < 1e-12);
        assert_true(fabs(rv[k] - (0.9 + 0.1 * s2 / (N * HW - 1))) < 1e-12);
        /* the float kernel of the cpu backend does the same */
        float frm = 0, frv = 1, fm = (float)mean[k], fv = (float)var[k];
        nn_cpu_bn_running(&frm, &frv, &fm, &fv, 1, N * HW, 0.1f);
        assert_true(fabs(frm - rm[k]) < 1e-6 && fabs(frv - rv[k]) < 1e-6);
    }
    /* eval uses the running stats */
    nn_ref_bn_forward_eval(out, c.x, c.g, c.b, rm, rv, N, C, HW, 1e-5);
    assert_true(fabs(out[7] - (c.g[1] * (c.x[7] - rm[1]) / sqrt(rv[1] + 1e-5) + c.b[1])) < 1e-12);
    free(c.x);
    free(c.g);
    free(c.b);
    free(dout);
    free(dx);
    free(out);
}

/* ---- max pool, GAP, linear, relu, dropout, add ---- */
typedef struct pool_ctx { int N, C, H, W, k, s, p; } pool_ctx;

static void pool_f(void *c_, double *out, const double *x) {
    pool_ctx *c = c_;
    int32_t am[4096];
    nn_ref_maxpool_forward(out, am, x, c->N, c->C, c->H, c->W, c->k, c->s, c->p);
}

static void test_pool_fd_and_ties(void **state) {
    (void)state;
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 5);
    pool_ctx c = {2, 3, 9, 7, 3, 2, 1};
    int OH = (9 + 2 - 3) / 2 + 1, OW = (7 + 2 - 3) / 2 + 1;
    size_t nx = 2 * 3 * 9 * 7, no = (size_t)2 * 3 * OH * OW;
    double *x = rnd(&r, nx, 1), *dout = rnd(&r, no, 1), *dx = malloc(sizeof(double) * nx);
    double *out = malloc(sizeof(double) * no);
    int32_t am[4096];
    nn_ref_maxpool_forward(out, am, x, 2, 3, 9, 7, 3, 2, 1);
    nn_ref_maxpool_backward(dx, dout, am, 2, 3, 9, 7, OH, OW);
    check_fd("maxpool", pool_f, &c, x, nx, no, dout, dx);
    /* ties: the first maximum in window order wins (PyTorch) */
    double t[9] = {1, 5, 5, 0, 5, 2, 5, 1, 0};
    nn_ref_maxpool_forward(out, am, t, 1, 1, 3, 3, 3, 1, 0);
    assert_int_equal(am[0], 1);
    /* padding never wins, even against negatives */
    double neg[4] = {-3, -2, -4, -5};
    nn_ref_maxpool_forward(out, am, neg, 1, 1, 2, 2, 3, 2, 1);
    assert_true(out[0] == -2);
    free(x);
    free(dout);
    free(dx);
    free(out);
}

/* The cpu backend's own max pool vs the reference: blocked (b 8, C 12 with
 * padding channels) and nhwc (b = C = 16); odd sizes, 3x3/2 pad 1 and 2x2/2. */
static void pool_layout_case(int N, int C, int H, int W, int k, int st, int p, int b) {
    lm_xoshiro r;
    lm_xoshiro_seed(&r, (uint64_t)(C * 100 + b));
    int OH = (H + 2 * p - k) / st + 1, OW = (W + 2 * p - k) / st + 1, nb = (C + b - 1) / b;
    size_t nx = (size_t)N * C * H * W, no = (size_t)N * C * OH * OW;
    double *x = rnd(&r, nx, 1), *dout = rnd(&r, no, 1), *out = malloc(sizeof(double) * no);
    double *dx = malloc(sizeof(double) * nx);
    for (size_t i = 0; i < nx; i += 7) x[i] = x[i + 1 < nx ? i + 1 : i]; /* some ties */
    int32_t *am = malloc(sizeof(int32_t) * no);
    nn_ref_maxpool_forward(out, am, x, N, C, H, W, k, st, p);
    nn_ref_maxpool_backward(dx, dout, am, N, C, H, W, OH, OW);
    size_t px = (size_t)N * nb * b * H * W, po = (size_t)N * nb * b * OH * OW;
    float *lx = calloc(px, sizeof(float)), *lo = malloc(sizeof(float) * po);
    float *ldo = calloc(po, sizeof(float)), *ldx = malloc(sizeof(float) * px);
    uint8_t *ws = malloc(po);
#define LX(n, c, q, HW) ((((size_t)(n) * nb + (c) / b) * (HW) + (q)) * b + (c) % b)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            for (int q = 0; q < H * W; q++) lx[LX(n, c, q, H * W)] = (float)x[((size_t)n * C + c) * H * W + q];
            for (int q = 0; q < OH * OW; q++)
                ldo[LX(n, c, q, OH * OW)] = (float)dout[((size_t)n * C + c) * OH * OW + q];
        }
    nn_cpu_maxpool_forward(lo, ws, lx, N, C, H, W, OH, OW, k, st, p, b);
    memset(ldx, 0x7f, sizeof(float) * px);
    nn_cpu_maxpool_backward(ldx, ldo, ws, N, C, H, W, OH, OW, k, st, p, b);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            for (int q = 0; q < OH * OW; q++)
                assert_true(lo[LX(n, c, q, OH * OW)] == (float)out[((size_t)n * C + c) * OH * OW + q]);
            for (int q = 0; q < H * W; q++)
                assert_true(fabs(ldx[LX(n, c, q, H * W)] - dx[((size_t)n * C + c) * H * W + q]) < 1e-5);
        }
#undef LX
    free(x);
    free(dout);
    free(out);
    free(dx);
    free(am);
    free(lx);
    free(lo);
    free(ldo);
    free(ldx);
    free(ws);
}

static void test_own_maxpool_matches_reference(void **state) {
    (void)state;
    pool_layout_case(2, 12, 9, 11, 3, 2, 1, 8);
    pool_layout_case(2, 16, 10, 7, 3, 2, 1, 16);
    pool_layout_case(1, 8, 6, 6, 2, 2, 0, 8);
}

typedef struct lin_ctx { int N, C, K; double *x, *w, *b; int wrt; } lin_ctx;

static void lin_f(void *c_, double *out, const double *v) {
    lin_ctx *c = c_;
    nn_ref_linear_forward(out, c->wrt == 0 ? v : c->x, c->wrt == 1 ? v : c->w,
                          c->wrt == 2 ? v : c->b, c->N, c->C, c->K);
}

typedef struct gap_ctx { int N, C, HW; } gap_ctx;

static void gap_f(void *c_, double *out, const double *x) {
    gap_ctx *c = c_;
    nn_ref_gap_forward(out, x, c->N, c->C, c->HW);
}

static void relu_f(void *c_, double *out, const double *x) {
    nn_ref_relu_forward(out, x, *(size_t *)c_);
}

static void test_linear_gap_relu_fd(void **state) {
    (void)state;
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 9);
    int N = 3, C = 5, K = 2;
    lin_ctx c = {N, C, K, rnd(&r, (size_t)N * C, 1), rnd(&r, (size_t)K * C, 1), rnd(&r, K, 1), 0};
    double *dout = rnd(&r, (size_t)N * K, 1), dx[15], dw[10], db[2];
    nn_ref_linear_backward(dx, dw, db, dout, c.x, c.w, N, C, K);
    check_fd("linear dx", lin_f, &c, c.x, (size_t)N * C, (size_t)N * K, dout, dx);
    c.wrt = 1;
    check_fd("linear dw", lin_f, &c, c.w, (size_t)K * C, (size_t)N * K, dout, dw);
    c.wrt = 2;
    check_fd("linear db", lin_f, &c, c.b, K, (size_t)N * K, dout, db);
    /* float kernel of the cpu backend */
    float xf[15], wf[10], bf[2], yf[6], dyf[6], dxf[15], dwf[10], dbf[2];
    double y[6];
    for (int i = 0; i < 15; i++) xf[i] = (float)c.x[i];
    for (int i = 0; i < 10; i++) wf[i] = (float)c.w[i];
    for (int i = 0; i < 6; i++) dyf[i] = (float)dout[i];
    bf[0] = (float)c.b[0];
    bf[1] = (float)c.b[1];
    nn_cpu_linear_forward(yf, xf, wf, bf, N, C, K);
    nn_ref_linear_forward(y, c.x, c.w, c.b, N, C, K);
    for (int i = 0; i < 6; i++) assert_true(fabs(yf[i] - y[i]) < 1e-5 * (1 + fabs(y[i])));
    nn_cpu_linear_backward(dxf, dwf, dbf, dyf, xf, wf, N, C, K);
    for (int i = 0; i < 15; i++) assert_true(fabs(dxf[i] - dx[i]) < 1e-5 * (1 + fabs(dx[i])));
    for (int i = 0; i < 10; i++) assert_true(fabs(dwf[i] - dw[i]) < 1e-5 * (1 + fabs(dw[i])));
    for (int i = 0; i < 2; i++) assert_true(fabs(dbf[i] - db[i]) < 1e-5 * (1 + fabs(db[i])));

    /* GAP, and the cpu kernel on blocked (8) and nhwc layouts with C = 12
     * (padding channels in the blocked case) */
    gap_ctx gc = {2, 12, 6};
    double *gx = rnd(&r, 144, 1), *gdo = rnd(&r, 24, 1), gdx[144], gout[24];
    nn_ref_gap_backward(gdx, gdo, 2, 12, 6);
    check_fd("gap", gap_f, &gc, gx, 144, 24, gdo, gdx);
    nn_ref_gap_forward(gout, gx, 2, 12, 6);
    for (int pass = 0; pass < 2; pass++) {
        int b = pass ? 12 : 8, nb = (12 + b - 1) / b;
        float lay[2 * 16 * 6], lo[24], ldo[24], ldx[2 * 16 * 6];
        memset(lay, 0, sizeof lay);
        for (int n = 0; n < 2; n++)
            for (int ch = 0; ch < 12; ch++)
                for (int p = 0; p < 6; p++)
                    lay[((n * nb + ch / b) * 6 + p) * b + ch % b] = (float)gx[(n * 12 + ch) * 6 + p];
        nn_cpu_gap_forward(lo, lay, 2, 12, 6, b);
        for (int i = 0; i < 24; i++) {
            assert_true(fabs(lo[i] - gout[i]) < 1e-6);
            ldo[i] = (float)gdo[i];
        }
        memset(ldx, 0x7f, sizeof ldx);
        nn_cpu_gap_backward(ldx, ldo, 2, 12, 6, b);
        for (int n = 0; n < 2; n++)
            for (int ch = 0; ch < nb * b; ch++)
                for (int p = 0; p < 6; p++) {
                    float v = ldx[((n * nb + ch / b) * 6 + p) * b + ch % b];
                    double want = ch < 12 ? gdx[(n * 12 + ch) * 6 + p] : 0.0;
                    assert_true(fabs(v - want) < 1e-6);
                }
    }

    /* ReLU away from the kink */
    size_t n = 10;
    double rx[10], rdo[10], rdx[10], ry[10];
    for (size_t i = 0; i < n; i++) {
        rx[i] = (i % 2 ? 1 : -1) * (0.1 + 0.3 * (double)i);
        rdo[i] = lm_xoshiro_normal(&r);
    }
    nn_ref_relu_forward(ry, rx, n);
    nn_ref_relu_backward(rdx, rdo, ry, n);
    check_fd("relu", relu_f, &n, rx, n, n, rdo, rdx);
    free(c.x);
    free(c.w);
    free(c.b);
    free(dout);
    free(gx);
    free(gdo);
}

/* ---- the model's global pool: (1 - w) mean + w max ("max" w = 1, "avgmax"
 * w = 0.5), first max wins ---- */
typedef struct gpool_ctx { int N, C, HW; double w; } gpool_ctx;

static void gpool_f(void *c_, double *out, const double *x) {
    gpool_ctx *c = c_;
    nn_ref_gpool_forward(out, x, c->N, c->C, c->HW, c->w);
}

static void test_global_pool_fd_and_kernels(void **state) {
    (void)state;
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 21);
    enum { N = 2, C = 12, HW = 6 };
    double *x = rnd(&r, N * C * HW, 1), *dout = rnd(&r, N * C, 1);
    /* plane 1 ties: its max 2.5 at positions 1 and 4; plane 2 all equal */
    for (int p = 0; p < HW; p++) x[HW + p] = -1.0 + 0.1 * p, x[2 * HW + p] = 0.0;
    x[HW + 1] = x[HW + 4] = 2.5;
    const double ws[] = {0.0, 1.0, 0.5};
    for (int t = 0; t < 3; t++) {
        double w = ws[t], out[N * C], gap[N * C], dx[N * C * HW];
        nn_ref_gpool_forward(out, x, N, C, HW, w);
        nn_ref_gap_forward(gap, x, N, C, HW);
        /* the formula, written out */
        for (int q = 0; q < N * C; q++) {
            double s = 0, m = -INFINITY;
            for (int p = 0; p < HW; p++) s += x[q * HW + p], m = fmax(m, x[q * HW + p]);
            double want = w == 0.0 ? gap[q] : (1 - w) * s / HW + w * m;
            if (w == 0.0) assert_true(out[q] == gap[q]); /* pmax 0 is the average, bitwise */
            assert_true(fabs(out[q] - want) < 1e-12);
        }
        nn_ref_gpool_backward(dx, dout, x, N, C, HW, w);
        /* ties: the max term's gradient goes to the first maximum only */
        double avg_part = (1 - w) * dout[1] / HW;
        assert_true(fabs(dx[HW + 1] - (avg_part + w * dout[1])) < 1e-12);
        assert_true(fabs(dx[HW + 4] - avg_part) < 1e-12);
        assert_true(fabs(dx[2 * HW] - ((1 - w) * dout[2] / HW + w * dout[2])) < 1e-12);
        assert_true(fabs(dx[2 * HW + 3] - (1 - w) * dout[2] / HW) < 1e-12);
        /* finite differences away from the ties (planes 3..) */
        gpool_ctx gc = {1, N * C - 3, HW, w};
        check_fd(w == 1.0 ? "gpool max" : w == 0.5 ? "gpool avgmax" : "gpool avg", gpool_f, &gc,
                 x + 3 * HW, (size_t)(N * C - 3) * HW, (size_t)N * C - 3, dout + 3, dx + 3 * HW);
        /* the cpu kernels on blocked (8, with padding channels) and nhwc
         * layouts, ties included */
        for (int pass = 0; pass < 2; pass++) {
            int b = pass ? C : 8, nb = (C + b - 1) / b;
            float lay[N * 16 * HW], lo[N * C], ldo[N * C], ldx[N * 16 * HW];
            memset(lay, 0, sizeof lay);
            for (int n = 0; n < N; n++)
                for (int ch = 0; ch < C; ch++)
                    for (int p = 0; p < HW; p++)
                        lay[((n * nb + ch / b) * HW + p) * b + ch % b] =
                            (float)x[(n * C + ch) * HW + p];
            for (int i = 0; i < N * C; i++) ldo[i] = (float)dout[i];
            nn_cpu_gpool_forward(lo, lay, N, C, HW, b, (float)w);
            for (int i = 0; i < N * C; i++) assert_true(fabs(lo[i] - out[i]) < 1e-6);
            memset(ldx, 0x7f, sizeof ldx);
            nn_cpu_gpool_backward(ldx, ldo, lay, N, C, HW, b, (float)w);
            for (int n = 0; n < N; n++)
                for (int ch = 0; ch < nb * b; ch++)
                    for (int p = 0; p < HW; p++) {
                        float v = ldx[((n * nb + ch / b) * HW + p) * b + ch % b];
                        double want = ch < C ? dx[(n * C + ch) * HW + p] : 0.0;
                        if (!(fabs(v - want) < 1e-6))
                            fail_msg("gpool w %g layout %d: dx[%d,%d,%d] = %g, want %g", w, b, n,
                                     ch, p, (double)v, want);
                    }
        }
    }
    free(x);
    free(dout);
}

static void test_dropout_add_combine(void **state) {
    (void)state;
    float mask[6] = {0, 2, 2, 0, 2, 2}; /* p = 0.5, inverted scaling */
    double x[6] = {1, 2, 3, 4, 5, 6}, y[6], dy[6] = {1, 1, 1, 1, 1, 1}, dx[6];
    nn_ref_dropout_forward(y, x, mask, 6);
    nn_ref_dropout_backward(dx, dy, mask, 6);
    assert_true(y[0] == 0 && y[1] == 4 && y[5] == 12);
    assert_true(dx[0] == 0 && dx[1] == 2);
    double a[3] = {1, -2, 3}, b[3] = {0.5, 1, -4}, s[3], da[3], db[3];
    nn_ref_add_forward(s, a, b, 3);
    assert_true(s[0] == 1.5 && s[1] == -1 && s[2] == -1);
    nn_ref_add_backward(da, db, dy, 3);
    assert_true(da[2] == 1 && db[2] == 1);
    /* cpu: fused add + relu and the gradient assembly */
    float fa[3] = {1, -2, 3}, fb[3] = {0.5f, 1, -4}, fo[3], c0[3] = {1, 2, 3}, c1[3] = {10, 20, 30}, d[3];
    nn_cpu_add_relu(fo, fa, fb, 3);
    assert_true(fo[0] == 1.5f && fo[1] == 0 && fo[2] == 0);
    nn_cpu_grad_combine(d, c0, c1, fo, 3);
    assert_true(d[0] == 11 && d[1] == 0 && d[2] == 0);
    nn_cpu_grad_combine(d, c0, c1, NULL, 3);
    assert_true(d[2] == 33);
}

/* ---- loss: BCEWithLogitsLoss(pos_weight), label smoothing ---- */
static void test_loss_against_pytorch(void **state) {
    (void)state;
    /* torch.nn.functional.binary_cross_entropy_with_logits(x, y*(1-s)+s/2,
     * pos_weight=[2,3]) with s = 0.1 and its gradient, from PyTorch 2.x */
    double x[4] = {0.5, -1.0, 2.0, 0.3};
    float y[4] = {1, 0, 0, 1}, pw[2] = {2, 3};
    double want = 1.2749856489937759;
    double wantg[4] = {-0.17155107603909592, 0.03645889087674864, 0.20620923296919413,
                       -0.2960291753115472};
    double l = nn_ref_bce_forward(x, y, pw, 0.1, 2, 2), g[4];
    assert_true(fabs(l - want) < 1e-12);
    nn_ref_bce_backward(g, x, y, pw, 0.1, 2, 2);
    for (int i = 0; i < 4; i++) assert_true(fabs(g[i] - wantg[i]) < 1e-12);
    /* the float path the engines use */
    float xf[4] = {0.5f, -1.0f, 2.0f, 0.3f}, gf[4];
    nn_loss_cfg lc = {.pos_weight = pw, .label_smoothing = 0.1f};
    double lf = nn_engine_loss(xf, y, 2, 2, &lc, gf);
    assert_true(fabs(lf - want) < 1e-6);
    for (int i = 0; i < 4; i++) assert_true(fabs(gf[i] - wantg[i]) < 1e-6);
    /* no pos_weight, no smoothing: -[y log s(x) + (1-y) log(1-s(x))], stable for big |x| */
    double big[2] = {40.0, -40.0};
    float yb[2] = {0, 1};
    assert_true(fabs(nn_ref_bce_forward(big, yb, NULL, 0, 1, 2) - 40.0) < 1e-9);
}

/* ---- loss: focal BCE (Lin et al. 2017) ---- */
static void test_focal_loss(void **state) {
    (void)state;
    double x[6] = {0.5, -1.0, 2.0, 0.3, -3.0, 4.0};
    float y[6] = {1, 0, 0, 1, 1, 0.25f}, pw[2] = {2, 3};
    /* hard targets, no smoothing: the paper's -a (1-p)^g log p / -(p^g) log(1-p),
     * written out naively */
    double g = 2.0, naive = 0;
    for (int i = 0; i < 4; i++) {
        double p = 1 / (1 + exp(-x[i])), a = pw[i % 2];
        naive += y[i] ? -a * pow(1 - p, g) * log(p) : -pow(p, g) * log(1 - p);
    }
    assert_true(fabs(nn_ref_focal_forward(x, y, pw, 0, g, 2, 2) - naive / 4) < 1e-12);
    /* gamma 0 is the BCE, bit for bit */
    double gb[6], gf[6];
    assert_true(nn_ref_focal_forward(x, y, pw, 0.1, 0, 3, 2) == nn_ref_bce_forward(x, y, pw, 0.1, 3, 2));
    nn_ref_bce_backward(gb, x, y, pw, 0.1, 3, 2);
    nn_ref_focal_backward(gf, x, y, pw, 0.1, 0, 3, 2);
    assert_memory_equal(gb, gf, sizeof gb);
    /* the focal terms are smaller than the BCE's (each factor is <= 1) */
    assert_true(nn_ref_focal_forward(x, y, pw, 0.1, 2, 3, 2) < nn_ref_bce_forward(x, y, pw, 0.1, 3, 2));
    /* the gradient against central differences: soft targets, smoothing,
     * pos_weight, two exponents */
    const double gammas[2] = {2.0, 0.5};
    for (int c = 0; c < 2; c++) {
        double d[6];
        nn_ref_focal_backward(d, x, y, pw, 0.1, gammas[c], 3, 2);
        for (int i = 0; i < 6; i++) {
            double xp[6], xm[6], h = 1e-5;
            memcpy(xp, x, sizeof x), memcpy(xm, x, sizeof x);
            xp[i] += h, xm[i] -= h;
            double fd = (nn_ref_focal_forward(xp, y, pw, 0.1, gammas[c], 3, 2) -
                         nn_ref_focal_forward(xm, y, pw, 0.1, gammas[c], 3, 2)) / (2 * h);
            if (fabs(fd - d[i]) > 1e-8 * fmax(1, fabs(fd)))
                fail_msg("focal gamma %g: d/dx[%d] = %.12g, finite difference %.12g", gammas[c], i, d[i], fd);
        }
    }
    /* stable for big |x| */
    double big[2] = {40.0, -40.0};
    float yb[2] = {0, 1};
    double lb = nn_ref_focal_forward(big, yb, NULL, 0, 2, 1, 2);
    assert_true(isfinite(lb) && fabs(lb - 40.0) < 1e-9);
    /* the float path the engines use */
    float xf[6], gfl[6];
    for (int i = 0; i < 6; i++) xf[i] = (float)x[i];
    nn_loss_cfg lc = {.pos_weight = pw, .label_smoothing = 0.1f, .focal_gamma = 2.0f};
    double want = nn_ref_focal_forward(x, y, pw, 0.1, 2, 3, 2);
    nn_ref_focal_backward(gf, x, y, pw, 0.1, 2, 3, 2);
    assert_true(fabs(nn_engine_loss(xf, y, 3, 2, &lc, gfl) - want) < 1e-6);
    for (int i = 0; i < 6; i++) assert_true(fabs(gfl[i] - gf[i]) < 1e-6);
}

/* ---- optimizers: two steps against torch.optim ---- */
static void two_steps(const nn_optim_cfg *c, const double want[3]) {
    float p[3] = {1.0f, -0.5f, 0.25f}, m1[3] = {0}, m2[3] = {0};
    float g1[3] = {0.5f, -0.25f, 0.125f}, g2[3] = {-0.3f, 0.2f, 0.05f};
    lm_err e = {0};
    assert_int_equal(nn_optim_validate(c, &e), 0);
    nn_optim_update(c, p, g1, m1, m2, 3, 1, 1.0f);
    /* grad_scale: the second gradient arrives doubled and is scaled back */
    float g2x[3] = {2 * g2[0], 2 * g2[1], 2 * g2[2]};
    nn_optim_update(c, p, g2x, m1, m2, 3, 2, 0.5f);
    for (int i = 0; i < 3; i++)
        if (fabs(p[i] - want[i]) > 1e-6 * fmax(1, fabs(want[i])))
            fail_msg("optimizer kind %d: p[%d] = %.9g, torch %.9g", c->kind, i, p[i], want[i]);
}

static void test_optimizers_against_pytorch(void **state) {
    (void)state;
    /* values: torch.optim.* on p = [1, -0.5, 0.25], grads [.5,-.25,.125] then
     * [-.3,.2,.05], float64 */
    nn_optim_cfg c = {.kind = NN_OPT_SGD, .lr = 0.1f};
    two_steps(&c, (double[]){0.98, -0.495, 0.2325});
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    two_steps(&c, (double[]){0.932151, -0.4710755, 0.22053775});
    c.nesterov = 1;
    two_steps(&c, (double[]){0.91707411, -0.468037055, 0.2055185275});
    c.nesterov = 0;
    c.weight_decay = 0;
    c.dampening = 0.5f;
    two_steps(&c, (double[]){0.92, -0.4625, 0.22375});
    nn_optim_cfg a = {.kind = NN_OPT_ADAM, .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f,
                      .eps = 1e-8f, .weight_decay = 0.1f};
    two_steps(&a, (double[]){0.9860115861622782, -0.48736235384953347, 0.23069790184036226});
    a.kind = NN_OPT_ADAMW;
    two_steps(&a, (double[]){0.9860960198939775, -0.48842924995226317, 0.23052449969755315});
    /* bad configs name the field */
    lm_err e = {0};
    a.beta2 = 1.0f;
    assert_int_equal(nn_optim_validate(&a, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "optimizer.beta2"));
    lm_err_clear(&e);
    c.nesterov = 1;
    assert_int_equal(nn_optim_validate(&c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "optimizer.nesterov"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_fd),
        cmocka_unit_test(test_blk8_bwdw_large_map),
        cmocka_unit_test(test_bn_fd_and_running),
        cmocka_unit_test(test_pool_fd_and_ties),
        cmocka_unit_test(test_own_maxpool_matches_reference),
        cmocka_unit_test(test_linear_gap_relu_fd),
        cmocka_unit_test(test_global_pool_fd_and_kernels),
        cmocka_unit_test(test_dropout_add_combine),
        cmocka_unit_test(test_loss_against_pytorch),
        cmocka_unit_test(test_focal_loss),
        cmocka_unit_test(test_optimizers_against_pytorch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
