/* Winograd F(2x2,3x3) / F(4x4,3x3) inference convolution
 * (kernels/cpu/cpu_winograd.c) against the double-precision reference conv
 * (kernels/nn_ref.c) on nChw8c data: odd map sizes, channel counts that are
 * not multiples of 8 (padding channels) or 16, batch 1 and several, every
 * flag combination (bias, ReLU, residual accumulation), partial tile blocks,
 * and the real ResNet shapes (75x75x64, 38x38x128, 19x19x256, 10x10x512).
 *
 * Error measure: max |fast - ref| / max |ref| over the layer's outputs.
 * Tolerances (measured worst on these cases, with margin): F(2x2) 2e-6
 * (oneDNN's direct conv is ~1e-6 here), F(4x4) 2e-5.  Also: the result is
 * bitwise the same for 1 and 2 threads and any block size, padding output
 * channels are written as 0, the output outside the layer is untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_winograd.h"
#include "nn_ref.h"
#include "rng.h"

#define TOL_F2 2e-6
#define TOL_F4 2e-5

static float *blk8(const double *v, int N, int C, int HW) {
    int nb = (C + 7) / 8;
    float *o = calloc((size_t)N * nb * 8 * HW + 16, sizeof(float));
    assert_non_null(o);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < HW; q++)
                o[(((size_t)n * nb + c / 8) * HW + q) * 8 + c % 8] =
                    (float)v[((size_t)n * C + c) * HW + q];
    return o;
}

typedef struct wcase {
    int N, IC, H, W, OC;
} wcase;

typedef struct wdata {
    wcase c;
    double *x, *w, *b, *y0;   /* NCHW / OIHW, double */
    double *ref[4];           /* per flags: act(conv + b [+ y0]) */
    float *wf;                /* weights as float (what the engine folds) */
} wdata;

static void wdata_make(wdata *d, wcase c, uint64_t seed) {
    lm_xoshiro r;
    lm_xoshiro_seed(&r, seed);
    memset(d, 0, sizeof *d);
    d->c = c;
    size_t nx = (size_t)c.N * c.IC * c.H * c.W, no = (size_t)c.N * c.OC * c.H * c.W;
    size_t nw = (size_t)c.OC * c.IC * 9;
    d->x = malloc(sizeof(double) * nx);
    d->w = malloc(sizeof(double) * nw);
    d->b = malloc(sizeof(double) * c.OC);
    d->y0 = malloc(sizeof(double) * no);
    d->wf = malloc(sizeof(float) * nw);
    assert_true(d->x && d->w && d->b && d->y0 && d->wf);
    /* He-scaled weights, inputs of both signs, float-representable values */
    double ws = sqrt(2.0 / (9.0 * c.IC));
    for (size_t i = 0; i < nx; i++) d->x[i] = (float)lm_xoshiro_normal(&r);
    for (size_t i = 0; i < nw; i++) {
        d->wf[i] = (float)(ws * lm_xoshiro_normal(&r));
        d->w[i] = d->wf[i];
    }
    for (int i = 0; i < c.OC; i++) d->b[i] = (float)(0.5 * lm_xoshiro_normal(&r));
    for (size_t i = 0; i < no; i++) d->y0[i] = (float)lm_xoshiro_normal(&r);
    double *conv = malloc(sizeof(double) * no);
    assert_non_null(conv);
    nn_ref_conv_forward(conv, d->x, d->w, d->b, c.N, c.IC, c.H, c.W, c.OC, 3, 1, 1);
    for (int f = 0; f < 4; f++) {
        d->ref[f] = malloc(sizeof(double) * no);
        assert_non_null(d->ref[f]);
        for (size_t i = 0; i < no; i++) {
            double v = conv[i] + ((f & NN_WINO_ACCUM) ? d->y0[i] : 0.0);
            d->ref[f][i] = (f & NN_WINO_RELU) && v < 0 ? 0.0 : v;
        }
    }
    free(conv);
}

static void wdata_free(wdata *d) {
    free(d->x);
    free(d->w);
    free(d->b);
    free(d->y0);
    free(d->wf);
    for (int f = 0; f < 4; f++) free(d->ref[f]);
}

/* Runs the Winograd layer; returns the output (nChw8c, caller frees). */
static float *wino_run(const wdata *d, int m, int flags, int tb, int threads) {
    wcase c = d->c;
    int HW = c.H * c.W, ocb = (c.OC + 7) / 8;
    float *x = blk8(d->x, c.N, c.IC, HW);
    float *U = aligned_alloc(32, (nn_wino_weights_floats(m, c.IC, c.OC) * sizeof(float) + 31) / 32 * 32);
    size_t per = nn_wino_scratch_floats(m, c.IC, c.OC, tb);
    float *scratch = aligned_alloc(32, (per * threads * sizeof(float) + 31) / 32 * 32);
    float *bias = calloc((size_t)ocb * 8, sizeof(float));
    assert_true(x && U && scratch && bias);
    /* stale scratch must not matter */
    for (size_t i = 0; i < per * threads; i++) scratch[i] = NAN;
    for (int i = 0; i < c.OC; i++) bias[i] = (float)d->b[i];
    nn_wino_weights(U, d->wf, m, c.IC, c.OC, 0);
    /* y: the residual operand, padding channels 0; a sentinel after the end */
    float *y = blk8(d->y0, c.N, c.OC, HW);
    size_t ny = (size_t)c.N * ocb * 8 * HW;
    for (int i = 0; i < 16; i++) y[ny + i] = 12345.0f;
    nn_wino_conv(y, x, U, bias, c.N, c.IC, c.H, c.W, c.OC, m, tb, flags, scratch, threads);
    for (int i = 0; i < 16; i++) assert_true(y[ny + i] == 12345.0f);
    free(x);
    free(U);
    free(scratch);
    free(bias);
    return y;
}

/* max |fast - ref| / max |ref|; padding channels must be 0 */
static double wino_err(const wdata *d, const float *y, int flags) {
    wcase c = d->c;
    int HW = c.H * c.W, ocb = (c.OC + 7) / 8;
    double mx = 0, worst = 0;
    for (int n = 0; n < c.N; n++)
        for (int oc = 0; oc < ocb * 8; oc++)
            for (int q = 0; q < HW; q++) {
                float v = y[(((size_t)n * ocb + oc / 8) * HW + q) * 8 + oc % 8];
                if (oc >= c.OC) {
                    if (v != 0.0f) fail_msg("padding channel %d = %g, not 0", oc, v);
                    continue;
                }
                double rf = d->ref[flags][((size_t)n * c.OC + oc) * HW + q];
                mx = fmax(mx, fabs(rf));
                worst = fmax(worst, fabs(v - rf));
            }
    return worst / (mx > 0 ? mx : 1.0);
}

static void check_case(wcase c, int m, int flags, int tb, int threads, double *worst) {
    wdata d;
    wdata_make(&d, c, (uint64_t)(c.N * 7919 + c.IC * 131 + c.H * 17 + c.W * 3 + c.OC));
    float *y = wino_run(&d, m, flags, tb, threads);
    double e = wino_err(&d, y, flags);
    double tol = m == 4 ? TOL_F4 : TOL_F2;
    if (!(e <= tol))
        fail_msg("F(%dx%d) N%d IC%d %dx%d OC%d flags %d tb %d: error %.3g > %.3g", m, m, c.N,
                 c.IC, c.H, c.W, c.OC, flags, tb, e, tol);
    if (e > *worst) *worst = e;
    free(y);
    wdata_free(&d);
}

/* odd shapes, channel padding, every flag, small and partial blocks */
static void test_winograd_small_shapes(void **state) {
    (void)state;
    static const wcase cs[] = {
        {1, 8, 1, 1, 8},    {1, 3, 2, 3, 5},   {2, 8, 4, 4, 16},  {1, 12, 5, 7, 20},
        {3, 16, 9, 9, 8},   {2, 20, 13, 11, 24}, {1, 1, 6, 6, 1}, {2, 24, 8, 10, 40},
        {1, 64, 7, 5, 64},  {4, 9, 3, 17, 33},
    };
    double worst[2] = {0, 0};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        for (int mi = 0; mi < 2; mi++)
            for (int f = 0; f < 4; f++) {
                int m = mi ? 4 : 2;
                int tb = (f & 1) ? 6 : nn_wino_block(m, cs[i].IC, cs[i].OC, cs[i].N, cs[i].H,
                                                     cs[i].W, 2);
                check_case(cs[i], m, f, tb, 2, &worst[mi]);
            }
    print_message("winograd small shapes: worst error F(2x2) %.3g, F(4x4) %.3g\n", worst[0],
                  worst[1]);
}

/* the network's shapes (batch 1; batch 2 for the smallest map) */
static void test_winograd_resnet_shapes(void **state) {
    (void)state;
    static const wcase cs[] = {
        {1, 64, 75, 75, 64}, {1, 128, 38, 38, 128}, {1, 256, 19, 19, 256}, {2, 512, 10, 10, 512}};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        wdata d;
        wdata_make(&d, cs[i], 1000 + i);
        for (int m = 2; m <= 4; m += 2) {
            int f = NN_WINO_RELU | (i % 2 ? NN_WINO_ACCUM : 0);
            int tb = nn_wino_block(m, cs[i].IC, cs[i].OC, cs[i].N, cs[i].H, cs[i].W, 2);
            float *y = wino_run(&d, m, f, tb, 2);
            double e = wino_err(&d, y, f), tol = m == 4 ? TOL_F4 : TOL_F2;
            print_message("winograd F(%dx%d) %dx%dx%d: error %.3g\n", m, m, cs[i].H, cs[i].W,
                          cs[i].IC, e);
            if (!(e <= tol)) fail_msg("F(%d) %dx%dx%d: error %.3g > %.3g", m, cs[i].H, cs[i].W,
                                      cs[i].IC, e, tol);
            free(y);
        }
        wdata_free(&d);
    }
}

/* bitwise the same for 1 and 2 threads and any block size */
static void test_winograd_deterministic(void **state) {
    (void)state;
    wcase c = {3, 20, 11, 13, 24};
    wdata d;
    wdata_make(&d, c, 77);
    size_t ny = (size_t)c.N * 3 * 8 * c.H * c.W;
    for (int m = 2; m <= 4; m += 2) {
        float *a = wino_run(&d, m, NN_WINO_RELU | NN_WINO_ACCUM, 6, 1);
        float *b = wino_run(&d, m, NN_WINO_RELU | NN_WINO_ACCUM, 18, 2);
        float *e = wino_run(&d, m, NN_WINO_RELU | NN_WINO_ACCUM, 96, 2);
        assert_memory_equal(a, b, ny * sizeof(float));
        assert_memory_equal(a, e, ny * sizeof(float));
        free(a);
        free(b);
        free(e);
    }
    wdata_free(&d);
}

/* the backward-data convolution (transposed, rotated weights) against the
 * reference's input gradient */
static void test_winograd_backward_data(void **state) {
    (void)state;
    static const wcase cs[] = {{2, 12, 7, 9, 20}, {1, 8, 5, 5, 8}, {3, 20, 11, 6, 12},
                               {1, 64, 19, 19, 64}};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        wcase c = cs[i];
        lm_xoshiro r;
        lm_xoshiro_seed(&r, 500 + i);
        int HW = c.H * c.W, icb = (c.IC + 7) / 8;
        size_t nx = (size_t)c.N * c.IC * HW, no = (size_t)c.N * c.OC * HW, nw = (size_t)c.OC * c.IC * 9;
        double *x = calloc(nx, sizeof(double)), *dx = malloc(sizeof(double) * nx);
        double *w = malloc(sizeof(double) * nw), *dy = malloc(sizeof(double) * no);
        float *wf = malloc(sizeof(float) * nw);
        assert_true(x && dx && w && dy && wf);
        for (size_t k = 0; k < nw; k++) w[k] = wf[k] = (float)(0.2 * lm_xoshiro_normal(&r));
        for (size_t k = 0; k < no; k++) dy[k] = (float)lm_xoshiro_normal(&r);
        nn_ref_conv_backward(dx, NULL, NULL, dy, x, w, c.N, c.IC, c.H, c.W, c.OC, 3, 1, 1);
        double mx = 0;
        for (size_t k = 0; k < nx; k++) mx = fmax(mx, fabs(dx[k]));
        float *dyb = blk8(dy, c.N, c.OC, HW);
        for (int m = 2; m <= 4; m += 2) {
            int tb = nn_wino_block(m, c.OC, c.IC, c.N, c.H, c.W, 2);
            float *U = malloc(sizeof(float) * nn_wino_weights_floats(m, c.OC, c.IC));
            float *sc = malloc(sizeof(float) * nn_wino_scratch_floats(m, c.OC, c.IC, tb) * 2);
            float *zero = calloc((size_t)icb * 8, sizeof(float));
            float *dxb = malloc(sizeof(float) * (size_t)c.N * icb * 8 * HW);
            assert_true(U && sc && zero && dxb);
            nn_wino_weights(U, wf, m, c.OC, c.IC, 1);
            nn_wino_conv(dxb, dyb, U, zero, c.N, c.OC, c.H, c.W, c.IC, m, tb, 0, sc, 2);
            double worst = 0;
            for (int n = 0; n < c.N; n++)
                for (int ic = 0; ic < icb * 8; ic++)
                    for (int q = 0; q < HW; q++) {
                        float v = dxb[(((size_t)n * icb + ic / 8) * HW + q) * 8 + ic % 8];
                        if (ic >= c.IC) {
                            assert_true(v == 0.0f);
                            continue;
                        }
                        worst = fmax(worst, fabs(v - dx[((size_t)n * c.IC + ic) * HW + q]));
                    }
            if (!(worst <= (m == 4 ? TOL_F4 : TOL_F2) * mx))
                fail_msg("backward data F(%d) N%d IC%d %dx%d OC%d: error %.3g of %.3g", m, c.N,
                         c.IC, c.H, c.W, c.OC, worst, mx);
            free(U);
            free(sc);
            free(zero);
            free(dxb);
        }
        free(x);
        free(dx);
        free(w);
        free(dy);
        free(wf);
        free(dyb);
    }
}

/* block sizes: multiples of 6 in 6..96, and the blocks split over the
 * threads so that the busiest thread gets at most 1.35x its share of rows
 * (the last block's padding to 6 rows included) once there are >= 48 tiles
 * per thread */
static void test_winograd_block(void **state) {
    (void)state;
    static const int sh[][2] = {{64, 75}, {128, 38}, {256, 19}, {512, 10}, {12, 37}, {20, 9}};
    for (int thr = 1; thr <= 4; thr++)
        for (int m = 2; m <= 4; m += 2)
            for (size_t s = 0; s < sizeof sh / sizeof *sh; s++)
                for (int N = 1; N <= 64; N++) {
                    int C = sh[s][0], H = sh[s][1];
                    int tb = nn_wino_block(m, C, C, N, H, H, thr);
                    assert_true(tb >= 6 && tb <= 96 && tb % 6 == 0);
                    long T = (long)N * ((H + m - 1) / m) * ((H + m - 1) / m);
                    long nb = (T + tb - 1) / tb, per = (nb + thr - 1) / thr;
                    if (T >= 48L * thr && per * tb > 1.35 * T / thr)
                        fail_msg("m %d C %d H %d N %d threads %d: tb %d gives %ld rows to one "
                                 "thread of %ld tiles", m, C, H, N, thr, tb, per * tb, T);
                }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_winograd_small_shapes),
        cmocka_unit_test(test_winograd_resnet_shapes),
        cmocka_unit_test(test_winograd_deterministic),
        cmocka_unit_test(test_winograd_backward_data),
        cmocka_unit_test(test_winograd_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
