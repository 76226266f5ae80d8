/*
 * test_mixup.c -- the train stage's mixup (stages/train/mixup.h): the
 * Beta(a, a) sampler's mean and variance against the closed forms, each
 * mixed sample against lam x_i + (1 - lam) x_perm(i) with perm a
 * permutation, label mass kept per label, draws a pure function of
 * (seed, epoch, step).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/mixup.h"

static void test_beta_moments(void **state) {
    (void)state;
    const double as[] = {0.2, 0.4, 1.0, 2.0};
    for (size_t t = 0; t < sizeof as / sizeof *as; t++) {
        double a = as[t], s = 0, s2 = 0;
        const int n = 200000;
        lm_rng r;
        lm_rng_init(&r, 7, LM_RNG_MIXUP, t, 0);
        for (int i = 0; i < n; i++) {
            double v = lm_beta_sym(&r, a);
            assert_true(v >= 0 && v <= 1);
            s += v;
            s2 += v * v;
        }
        double mean = s / n, var = s2 / n - mean * mean, want = 1.0 / (4.0 * (2.0 * a + 1.0));
        /* sd of the mean ~ sqrt(var / n) < 0.0012: 5 sd */
        if (fabs(mean - 0.5) > 0.006) fail_msg("alpha %g: mean %.4f, want 0.5", a, mean);
        if (fabs(var - want) > 0.03 * want) fail_msg("alpha %g: variance %.5f, want %.5f", a, var, want);
    }
}

static void test_mixed_batch_is_a_convex_pair(void **state) {
    (void)state;
    enum { N = 9, CHW = 5, K = 2 };
    float x[N * CHW], y[N * K], ox[N * CHW], oy[N * K], ox2[N * CHW], oy2[N * K];
    uint32_t perm[N];
    for (int i = 0; i < N * CHW; i++) x[i] = (float)(i * 0.37 - 3.1);
    for (int i = 0; i < N * K; i++) y[i] = (float)((i * 7) % 3 == 0);
    double lam = lm_mixup_batch(x, y, N, CHW, K, 0.4, 42, 3, 11, ox, oy, perm);
    assert_true(lam >= 0 && lam <= 1);
    int seen[N] = {0};
    for (int i = 0; i < N; i++) seen[perm[i]]++;
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        moved += perm[i] != (uint32_t)i;
        for (int p = 0; p < CHW; p++) {
            float want = (float)lam * x[i * CHW + p] + (float)(1 - lam) * x[perm[i] * CHW + p];
            assert_true(fabsf(ox[i * CHW + p] - want) <= 1e-6f * (1 + fabsf(want)));
        }
        for (int c = 0; c < K; c++) assert_true(oy[i * K + c] >= 0 && oy[i * K + c] <= 1);
    }
    assert_true(moved > 0);
    /* a permutation keeps each label's mass */
    for (int c = 0; c < K; c++) {
        double a = 0, b = 0;
        for (int i = 0; i < N; i++) a += y[i * K + c], b += oy[i * K + c];
        assert_true(fabs(a - b) < 1e-5);
    }
    /* the same (seed, epoch, step): the same batch; another step: another lam */
    double lam2 = lm_mixup_batch(x, y, N, CHW, K, 0.4, 42, 3, 11, ox2, oy2, perm);
    assert_true(lam2 == lam);
    assert_memory_equal(ox, ox2, sizeof ox);
    assert_memory_equal(oy, oy2, sizeof oy);
    double lam3 = lm_mixup_batch(x, y, N, CHW, K, 0.4, 42, 3, 12, ox2, oy2, perm);
    assert_true(lam3 != lam);
}

static void test_single_sample_is_copied(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, 4}, y[2] = {1, 0}, ox[4], oy[2];
    uint32_t perm[1];
    assert_true(lm_mixup_batch(x, y, 1, 4, 2, 0.4, 1, 0, 0, ox, oy, perm) == 1.0);
    assert_memory_equal(ox, x, sizeof x);
    assert_memory_equal(oy, y, sizeof y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beta_moments),
        cmocka_unit_test(test_mixed_batch_is_a_convex_pair),
        cmocka_unit_test(test_single_sample_is_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
