/* Unit tests for stages/common/metrics.c against hand-computed values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "metrics.h"

/* cmocka 1.1.5 (Debian 12) has no floating-point assertions. */
#define assert_near(a, b, tol)                                                  \
    do {                                                                        \
        double a_ = (a), b_ = (b);                                              \
        if (!(fabs(a_ - b_) <= (tol)))                                          \
            fail_msg("%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol)); \
    } while (0)

static void test_counts_and_f1_at_half(void **state) {
    (void)state;
    const float p[] = {0.9f, 0.8f, 0.3f, 0.1f};
    const float y[] = {1, 0, 1, 0};
    lm_metrics m;
    assert_int_equal(lm_metrics_compute(p, y, 4, 1, NULL, &m, NULL), 0);
    assert_int_equal(m.cls[0].tp, 1);
    assert_int_equal(m.cls[0].fp, 1);
    assert_int_equal(m.cls[0].fn, 1);
    assert_int_equal(m.cls[0].tn, 1);
    assert_int_equal(m.cls[0].support, 2);
    assert_near(m.cls[0].precision, 0.5, 1e-12);
    assert_near(m.cls[0].recall, 0.5, 1e-12);
    assert_near(m.cls[0].f1, 0.5, 1e-12);
    /* AP: cut 1 -> R .5 P 1; cut 3 -> R 1 P 2/3: .5 + .5 * 2/3 */
    assert_near(m.cls[0].ap, 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
}

static void test_macro_vs_micro(void **state) {
    (void)state;
    /* class 0: perfect on 3 positives; class 1: one positive, missed, one fp */
    const float p[] = {0.9f, 0.1f, 0.8f, 0.7f, 0.7f, 0.2f, 0.2f, 0.4f};
    const float y[] = {1, 0, 1, 0, 1, 0, 0, 1};
    lm_metrics m;
    assert_int_equal(lm_metrics_compute(p, y, 4, 2, NULL, &m, NULL), 0);
    assert_near(m.cls[0].f1, 1.0, 1e-12);
    assert_int_equal(m.cls[1].tp, 0);
    assert_int_equal(m.cls[1].fp, 1);
    assert_int_equal(m.cls[1].fn, 1);
    assert_near(m.cls[1].f1, 0.0, 1e-12);
    assert_near(m.f1_mean, 0.5, 1e-12);
    /* micro: tp 3, fp 1, fn 1 -> 6 / 8 */
    assert_near(m.f1_micro, 0.75, 1e-12);
    /* exact match: samples 0 and 3 all right (1,0) and (0,0) */
    assert_near(m.exact_match, 0.5, 1e-12);
}

static void test_thresholds_move_the_counts(void **state) {
    (void)state;
    const float p[] = {0.9f, 0.8f, 0.3f, 0.1f};
    const float y[] = {1, 0, 1, 0};
    const float t[] = {0.25f};
    lm_metrics m;
    assert_int_equal(lm_metrics_compute(p, y, 4, 1, t, &m, NULL), 0);
    assert_int_equal(m.cls[0].tp, 2);
    assert_int_equal(m.cls[0].fp, 1);
    assert_near(m.cls[0].f1, 0.8, 1e-12);
    assert_true(m.cls[0].threshold == 0.25f);
}

static void test_tuning_finds_best_cut_between_scores(void **state) {
    (void)state;
    /* cuts: top1 F1 2/3, top2 .5, top3 .8, top4 2/3 -> cut after 0.3 */
    const float p[] = {0.9f, 0.8f, 0.3f, 0.1f};
    const float y[] = {1, 0, 1, 0};
    float t[1];
    assert_int_equal(lm_metrics_tune_thresholds(p, y, 4, 1, t, NULL), 0);
    assert_true(t[0] > 0.1f && t[0] <= 0.3f);
    assert_near(t[0], 0.2f, 1e-6);
    lm_metrics m;
    assert_int_equal(lm_metrics_compute(p, y, 4, 1, t, &m, NULL), 0);
    assert_near(m.cls[0].f1, 0.8, 1e-12);
}

static void test_tuning_ties_and_no_positives(void **state) {
    (void)state;
    /* class 0: all scores tied -> the only cut predicts all (F1 of 1 pos in 3)
     * class 1: no positives -> 0.5 */
    const float p[] = {0.4f, 0.9f, 0.4f, 0.1f, 0.4f, 0.2f};
    const float y[] = {1, 0, 0, 0, 0, 0};
    float t[2];
    assert_int_equal(lm_metrics_tune_thresholds(p, y, 3, 2, t, NULL), 0);
    assert_true(t[0] <= 0.4f);
    assert_near(t[1], 0.5f, 0);
    lm_metrics m;
    assert_int_equal(lm_metrics_compute(p, y, 3, 2, t, &m, NULL), 0);
    assert_int_equal(m.cls[0].tp, 1);
    assert_int_equal(m.cls[0].fp, 2);
    assert_true(isnan(m.cls[1].ap));
    assert_near(m.ap_mean, m.cls[0].ap, 1e-12);
}

static void test_tuned_threshold_never_worse_than_half(void **state) {
    (void)state;
    enum { N = 200 };
    float p[N], y[N];
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        y[i] = (s >> 28) < 3; /* ~19% positives */
        s = s * 1664525u + 1013904223u;
        float noise = (float)(s >> 8) / 16777216.0f;
        p[i] = 0.3f * y[i] + 0.7f * noise;
    }
    float t[1];
    lm_metrics at_half, tuned;
    assert_int_equal(lm_metrics_tune_thresholds(p, y, N, 1, t, NULL), 0);
    assert_int_equal(lm_metrics_compute(p, y, N, 1, NULL, &at_half, NULL), 0);
    assert_int_equal(lm_metrics_compute(p, y, N, 1, t, &tuned, NULL), 0);
    assert_true(tuned.cls[0].f1 >= at_half.cls[0].f1);
    /* and no threshold on a grid beats it */
    for (int g = 1; g < 100; g++) {
        float tg = g / 100.0f;
        lm_metrics m;
        lm_metrics_compute(p, y, N, 1, &tg, &m, NULL);
        assert_true(m.cls[0].f1 <= tuned.cls[0].f1 + 1e-12);
    }
}

static void test_bad_arguments(void **state) {
    (void)state;
    lm_err e = {0};
    lm_metrics m;
    assert_int_equal(lm_metrics_compute(NULL, NULL, 0, 0, NULL, &m, &e), LUMEN_EINVAL);
    assert_non_null(e.msg[0] ? e.msg : NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_f1_at_half),
        cmocka_unit_test(test_macro_vs_micro),
        cmocka_unit_test(test_thresholds_move_the_counts),
        cmocka_unit_test(test_tuning_finds_best_cut_between_scores),
        cmocka_unit_test(test_tuning_ties_and_no_positives),
        cmocka_unit_test(test_tuned_threshold_never_worse_than_half),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
