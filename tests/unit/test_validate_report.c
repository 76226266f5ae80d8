/*
 * test_validate_report.c -- the validation report (valreport.c) and the
 * cross-fitted tuned-threshold estimate (crossfit.c): a hand-computed case
 * (counts, P/R/F1, AP, macro/micro, JSON, table, metric keys), the three
 * threshold modes, the fold assignment (stratified, balanced, seeded), and
 * the cross-fitted F1 on a noisy synthetic case (below the in-sample tuned
 * F1, deterministic for a seed, equal to an independent pooling).
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

#include <cjson/cJSON.h>

#include "crossfit.h"
#include "metrics.h"
#include "rng.h"
#include "valreport.h"

#define N 6
#define K 3
static const char *const LABELS[K] = {"crack", "inactive", "odd label"};
/* class 3 has no positive: AP undefined, F1 0 */
static const float P[N * K] = {
    0.9f,  0.2f, 0.1f, /* y 1 0 0 */
    0.6f,  0.8f, 0.7f, /* y 0 1 0 */
    0.4f,  0.7f, 0.1f, /* y 1 1 0 */
    0.1f,  0.4f, 0.1f, /* y 0 0 0 */
    0.55f, 0.3f, 0.1f, /* y 1 0 0 */
    0.2f,  0.6f, 0.1f, /* y 0 0 0 */
};
static const float Y[N * K] = {1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x) fail_msg("JSON has no '%s'", k);
    return x;
}

static void check_class(const cJSON *c, const char *label, int tp, int fp, int fn, int tn,
                        double f1) {
    assert_string_equal(get(c, "label")->valuestring, label);
    assert_true(get(c, "tp")->valuedouble == tp);
    assert_true(get(c, "fp")->valuedouble == fp);
    assert_true(get(c, "fn")->valuedouble == fn);
    assert_true(get(c, "tn")->valuedouble == tn);
    assert_true(get(c, "support")->valuedouble == tp + fn);
    assert_float_equal(get(c, "f1")->valuedouble, f1, 1e-12);
}

static void test_hand_case(void **s) {
    (void)s;
    lm_vreport r;
    lm_err e = {0};
    assert_int_equal(lm_vreport_compute(P, Y, N, K, LM_THR_FIXED, NULL, 0.35f, 1, &r, &e), 0);
    /* at 0.5, by hand: crack predicted {0,1,4} vs positives {0,2,4} */
    const lm_class_metrics *c = &r.at_default.cls[0];
    assert_true(c->tp == 2 && c->fp == 1 && c->fn == 1 && c->tn == 2);
    assert_float_equal(c->precision, 2.0 / 3, 1e-12);
    assert_float_equal(c->recall, 2.0 / 3, 1e-12);
    assert_float_equal(c->f1, 2.0 / 3, 1e-12);
    /* AP: ranks + - + + - - -> 1/3*1 + 1/3*2/3 + 1/3*3/4 */
    assert_float_equal(c->ap, 29.0 / 36, 1e-12);
    c = &r.at_default.cls[1]; /* predicted {1,2,5} vs {1,2} */
    assert_true(c->tp == 2 && c->fp == 1 && c->fn == 0 && c->tn == 3);
    assert_float_equal(c->f1, 0.8, 1e-12);
    assert_float_equal(c->ap, 1.0, 1e-12);
    c = &r.at_default.cls[2];
    assert_true(c->tp == 0 && c->fp == 1 && c->fn == 0 && c->tn == 5);
    assert_true(isnan(c->ap));
    assert_float_equal(r.at_default.f1_mean, (2.0 / 3 + 0.8 + 0) / 3, 1e-12);
    assert_float_equal(r.at_default.f1_micro, 8.0 / 12, 1e-12); /* tp 4 fp 3 fn 1 */
    assert_float_equal(r.at_default.ap_mean, (29.0 / 36 + 1) / 2, 1e-12);
    /* at 0.35: crack {0,1,2,4}, inactive {1,2,3,5}, odd {1} */
    assert_float_equal(r.at_chosen.cls[0].f1, 6.0 / 7, 1e-12);
    assert_float_equal(r.at_chosen.cls[1].f1, 4.0 / 6, 1e-12);
    for (int j = 0; j < K; j++) assert_true(r.thresholds[j] == 0.35f);

    cJSON *doc = lm_vreport_json(&r, LABELS, NULL);
    assert_non_null(doc);
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    doc = cJSON_Parse(text); /* what a reader of report.json sees */
    assert_non_null(doc);
    assert_true(get(doc, "n")->valuedouble == N);
    assert_string_equal(get(get(doc, "thresholds"), "mode")->valuestring, "fixed");
    const cJSON *d = get(get(doc, "default"), "classes"), *ch = get(get(doc, "chosen"), "classes");
    check_class(cJSON_GetArrayItem(d, 0), "crack", 2, 1, 1, 2, 2.0 / 3);
    check_class(cJSON_GetArrayItem(d, 1), "inactive", 2, 1, 0, 3, 0.8);
    check_class(cJSON_GetArrayItem(d, 2), "odd label", 0, 1, 0, 5, 0);
    assert_true(cJSON_IsNull(get(cJSON_GetArrayItem(d, 2), "ap")));
    assert_float_equal(get(cJSON_GetArrayItem(d, 0), "ap")->valuedouble, 29.0 / 36, 1e-12);
    assert_float_equal(get(cJSON_GetArrayItem(d, 0), "threshold")->valuedouble, 0.5, 0);
    check_class(cJSON_GetArrayItem(ch, 0), "crack", 3, 1, 0, 2, 6.0 / 7);
    check_class(cJSON_GetArrayItem(ch, 1), "inactive", 2, 2, 0, 2, 4.0 / 6);
    /* thresholds are printed so they read back as the same float */
    assert_true((float)get(cJSON_GetArrayItem(ch, 0), "threshold")->valuedouble == 0.35f);
    assert_float_equal(get(get(doc, "default"), "f1_micro")->valuedouble, 8.0 / 12, 1e-12);
    const cJSON *cv = get(doc, "tuned_cv");
    assert_true(get(cv, "folds")->valuedouble == 2);
    assert_int_equal(cJSON_GetArraySize(get(cJSON_GetArrayItem(get(cv, "classes"), 0), "thresholds")), 2);
    assert_true(cJSON_IsNumber(get(get(doc, "tuned"), "f1_mean")));
    cJSON_Delete(doc);
    free(text);

    char *table = lm_vreport_text(&r, LABELS);
    assert_non_null(table);
    assert_non_null(strstr(table, "odd label"));
    assert_non_null(strstr(table, "mean (macro)"));
    assert_non_null(strstr(table, "at the fixed thresholds"));
    assert_non_null(strstr(table, "cross-fitted"));
    char want[64];
    snprintf(want, sizeof want, "%.4f", (2.0 / 3 + 0.8) / 3);
    assert_non_null(strstr(table, want)); /* the macro F1 at 0.5 */
    free(table);
}

typedef struct keys {
    int n;
    char key[256][96];
    double v[256];
    int main[256];
} keys;

static void collect(void *user, const char *key, double value, int main) {
    keys *k = user;
    assert_true(k->n < 256);
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->key[i], key)) fail_msg("metric %s emitted twice", key);
    snprintf(k->key[k->n], sizeof k->key[0], "%s", key);
    k->v[k->n] = value;
    k->main[k->n++] = main;
}

static int find(const keys *k, const char *key) {
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->key[i], key)) return i;
    return -1;
}

static double val(const keys *k, const char *key) {
    int i = find(k, key);
    if (i < 0) fail_msg("metric %s not emitted", key);
    return k->v[i];
}

static void test_metric_keys(void **s) {
    (void)s;
    lm_vreport r;
    lm_err e = {0};
    assert_int_equal(lm_vreport_compute(P, Y, N, K, LM_THR_FIXED, NULL, 0.35f, 1, &r, &e), 0);
    keys *k = calloc(1, sizeof *k);
    lm_vreport_metrics(&r, LABELS, "val/", collect, k);
    assert_float_equal(val(k, "val/f1_mean"), r.at_default.f1_mean, 1e-12);
    assert_float_equal(val(k, "val/f1_micro"), 8.0 / 12, 1e-12);
    assert_float_equal(val(k, "val/f1_crack"), 2.0 / 3, 1e-12);
    assert_float_equal(val(k, "val/precision_inactive"), 2.0 / 3, 1e-12);
    assert_float_equal(val(k, "val/recall_inactive"), 1.0, 1e-12);
    assert_float_equal(val(k, "val/ap_crack"), 29.0 / 36, 1e-12);
    assert_true(val(k, "val/support_crack") == 3);
    assert_true(val(k, "val/tp_crack") == 2 && val(k, "val/tn_crack") == 2);
    assert_true(val(k, "val/fp_odd_label") == 1); /* label made key-safe */
    assert_int_equal(find(k, "val/ap_odd_label"), -1); /* NAN is not emitted */
    assert_float_equal(val(k, "val/f1_crack_fixed"), 6.0 / 7, 1e-12);
    assert_true(val(k, "val/tp_crack_fixed") == 3);
    assert_float_equal(val(k, "val/threshold_crack"), 0.35, 1e-7);
    assert_float_equal(val(k, "val/f1_mean_fixed"), r.at_chosen.f1_mean, 1e-12);
    assert_float_equal(val(k, "val/f1_mean_tuned"), r.tuned.f1_mean, 1e-12);
    assert_float_equal(val(k, "val/f1_mean_tuned_cv"), r.cv.pooled.f1_mean, 1e-12);
    assert_true(val(k, "val/n") == N);
    static const char *const mains[] = {"val/f1_mean", "val/f1_micro", "val/ap_mean",
                                        "val/f1_mean_fixed", "val/f1_micro_fixed",
                                        "val/f1_mean_tuned", "val/f1_mean_tuned_cv"};
    int nmain = 0;
    for (int i = 0; i < k->n; i++) nmain += k->main[i];
    assert_int_equal(nmain, 7);
    for (size_t i = 0; i < sizeof mains / sizeof *mains; i++) assert_true(k->main[find(k, mains[i])]);
    /* mode tune: the chosen metrics are the tuned ones, no duplicate keys */
    lm_vreport t;
    assert_int_equal(lm_vreport_compute(P, Y, N, K, LM_THR_TUNE, NULL, 0, 1, &t, &e), 0);
    memset(k, 0, sizeof *k);
    lm_vreport_metrics(&t, LABELS, "val/", collect, k);
    assert_float_equal(val(k, "val/f1_mean_tuned"), t.tuned.f1_mean, 1e-12);
    assert_int_equal(find(k, "val/f1_mean_fixed"), -1);
    free(k);
}

static void test_threshold_modes(void **s) {
    (void)s;
    lm_err e = {0};
    float tuned[K];
    assert_int_equal(lm_metrics_tune_thresholds(P, Y, N, K, tuned, &e), 0);
    lm_vreport r;
    assert_int_equal(lm_vreport_compute(P, Y, N, K, LM_THR_TUNE, NULL, 0, 0, &r, &e), 0);
    for (int j = 0; j < K; j++) {
        assert_true(r.thresholds[j] == tuned[j]);
        assert_true(r.at_chosen.cls[j].tp == r.tuned.cls[j].tp);
    }
    assert_float_equal(r.at_chosen.f1_mean, r.tuned.f1_mean, 0);
    /* tuned in-sample is at least as good as 0.5, per class */
    for (int j = 0; j < K; j++) assert_true(r.tuned.cls[j].f1 >= r.at_default.cls[j].f1);
    const float stored[K] = {0.05f, 0.95f, 0.5f};
    assert_int_equal(lm_vreport_compute(P, Y, N, K, LM_THR_STORED, stored, 0, 0, &r, &e), 0);
    assert_true(r.thresholds[0] == 0.05f && r.thresholds[1] == 0.95f);
    assert_true(r.at_chosen.cls[0].tp == 3 && r.at_chosen.cls[0].fp == 3); /* all positive */
    assert_true(r.at_chosen.cls[1].tp == 0 && r.at_chosen.cls[1].fp == 0);
    /* bad arguments */
    lm_err e2 = {0};
    assert_int_equal(lm_vreport_compute(P, Y, N, K, LM_THR_STORED, NULL, 0, 0, &r, &e2), LUMEN_EINVAL);
    assert_int_equal(lm_vreport_compute(P, Y, N, 0, LM_THR_TUNE, NULL, 0, 0, &r, &e2), LUMEN_EINVAL);
    assert_int_equal(lm_vreport_mode_parse("stored"), LM_THR_STORED);
    assert_int_equal(lm_vreport_mode_parse("best"), -1);
}

/* n samples of k labels with positive rate ~0.3 and probabilities that
 * only weakly follow them. */
static void noisy_case(int64_t n, int k, uint64_t seed, float *p, float *y) {
    lm_rng r;
    lm_rng_init(&r, seed, 1234, 0, 0);
    for (int64_t i = 0; i < n * k; i++) {
        y[i] = lm_rng_uniform(&r) < 0.3 ? 1.0f : 0.0f;
        double g = 0;
        for (int q = 0; q < 4; q++) g += lm_rng_uniform(&r) - 0.5; /* ~N(0, 1/3) */
        double z = 0.8 * (2 * y[i] - 1) + 4.0 * g;
        p[i] = (float)(1 / (1 + exp(-z)));
    }
}

static void test_folds_stratified_and_seeded(void **s) {
    (void)s;
    enum { NN = 101, KK = 2 };
    float p[NN * KK], y[NN * KK];
    noisy_case(NN, KK, 7, p, y);
    uint8_t f1[NN], f2[NN], f3[NN];
    lm_err e = {0};
    assert_int_equal(lm_crossfit_folds(y, NN, KK, 2, 42, f1, &e), 0);
    assert_int_equal(lm_crossfit_folds(y, NN, KK, 2, 42, f2, &e), 0);
    assert_int_equal(lm_crossfit_folds(y, NN, KK, 2, 43, f3, &e), 0);
    assert_memory_equal(f1, f2, NN);
    assert_memory_not_equal(f1, f3, NN);
    int size[2] = {0}, combo[4][2] = {{0}};
    for (int i = 0; i < NN; i++) {
        assert_true(f1[i] < 2);
        size[f1[i]]++;
        combo[(y[i * KK] >= 0.5f) | (y[i * KK + 1] >= 0.5f) << 1][f1[i]]++;
    }
    assert_true(abs(size[0] - size[1]) <= 1);
    for (int c = 0; c < 4; c++) assert_true(abs(combo[c][0] - combo[c][1]) <= 1);
    /* three folds: sizes 34 34 33 */
    uint8_t g[NN];
    assert_int_equal(lm_crossfit_folds(y, NN, KK, 3, 1, g, &e), 0);
    int s3[3] = {0};
    for (int i = 0; i < NN; i++) s3[g[i]]++;
    assert_true(s3[0] == 34 && s3[1] == 34 && s3[2] == 33);
    lm_err e2 = {0};
    assert_int_equal(lm_crossfit_folds(y, NN, KK, 1, 1, g, &e2), LUMEN_EINVAL);
    assert_non_null(strstr(e2.msg, "folds"));
}

static void test_crossfit_honest_and_deterministic(void **s) {
    (void)s;
    enum { NN = 400, KK = 2 };
    float *p = malloc(NN * KK * sizeof *p), *y = malloc(NN * KK * sizeof *y);
    lm_err e = {0};
    for (uint64_t seed = 1; seed <= 5; seed++) {
        noisy_case(NN, KK, 100 + seed, p, y);
        lm_vreport r, r2;
        assert_int_equal(lm_vreport_compute(p, y, NN, KK, LM_THR_TUNE, NULL, 0, seed, &r, &e), 0);
        assert_int_equal(lm_vreport_compute(p, y, NN, KK, LM_THR_TUNE, NULL, 0, seed, &r2, &e), 0);
        /* optimistic in-sample vs honest cross-fitted */
        assert_true(r.cv.pooled.f1_mean <= r.tuned.f1_mean);
        assert_true(r.cv.pooled.f1_mean > 0);
        assert_memory_equal(&r.cv.pooled.f1_mean, &r2.cv.pooled.f1_mean, sizeof(double));
        assert_memory_equal(r.cv.thresholds, r2.cv.thresholds, sizeof r.cv.thresholds);
        assert_true(r.cv.fold_size[0] + r.cv.fold_size[1] == NN);

        /* independent pooling: tune on the other fold by hand, count */
        uint8_t fold[NN];
        assert_int_equal(lm_crossfit_folds(y, NN, KK, 2, seed, fold, &e), 0);
        int64_t tp[KK] = {0}, fp[KK] = {0}, fn[KK] = {0};
        for (int f = 0; f < 2; f++) {
            float *sp = malloc(NN * KK * sizeof *sp), *sy = malloc(NN * KK * sizeof *sy), t[KK];
            int m = 0;
            for (int i = 0; i < NN; i++)
                if (fold[i] != f) {
                    for (int j = 0; j < KK; j++) sp[m * KK + j] = p[i * KK + j], sy[m * KK + j] = y[i * KK + j];
                    m++;
                }
            assert_int_equal(lm_metrics_tune_thresholds(sp, sy, m, KK, t, &e), 0);
            for (int j = 0; j < KK; j++) assert_true(t[j] == r.cv.thresholds[f][j]);
            for (int i = 0; i < NN; i++)
                if (fold[i] == f)
                    for (int j = 0; j < KK; j++) {
                        int pred = p[i * KK + j] >= t[j], pos = y[i * KK + j] >= 0.5f;
                        tp[j] += pred && pos, fp[j] += pred && !pos, fn[j] += !pred && pos;
                    }
            free(sp);
            free(sy);
        }
        double f1 = 0;
        for (int j = 0; j < KK; j++) {
            assert_true(r.cv.pooled.cls[j].tp == tp[j] && r.cv.pooled.cls[j].fp == fp[j] &&
                        r.cv.pooled.cls[j].fn == fn[j]);
            f1 += 2.0 * tp[j] / (double)(2 * tp[j] + fp[j] + fn[j]) / KK;
        }
        assert_float_equal(r.cv.pooled.f1_mean, f1, 1e-12);
        assert_true(isnan(r.cv.pooled.ap_mean));
    }
    /* another seed gives other folds, so (almost surely) another estimate */
    lm_vreport a, b;
    assert_int_equal(lm_vreport_compute(p, y, NN, KK, LM_THR_TUNE, NULL, 0, 1, &a, &e), 0);
    assert_int_equal(lm_vreport_compute(p, y, NN, KK, LM_THR_TUNE, NULL, 0, 2, &b, &e), 0);
    assert_memory_not_equal(a.cv.thresholds, b.cv.thresholds, sizeof a.cv.thresholds);
    free(p);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_case),
        cmocka_unit_test(test_metric_keys),
        cmocka_unit_test(test_threshold_modes),
        cmocka_unit_test(test_folds_stratified_and_seeded),
        cmocka_unit_test(test_crossfit_honest_and_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
