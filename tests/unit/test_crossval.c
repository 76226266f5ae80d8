/*
 * test_crossval.c -- the pieces of cross-validation and ensembles:
 * ingest's k-fold split (stratified by label combination, a partition,
 * deterministic in the seed), nested threshold tuning that never sees the
 * scored fold (checked by construction, and shown to catch a planted leak),
 * predictions and ensemble manifests round trips, the ensemble mean against
 * hand-computed values and against each model's own forward pass, and the
 * error contact sheet (pick order, PNG size and content, decoded with
 * libspng).
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
#include <sys/stat.h>
#include <unistd.h>

#include <spng.h>

#include "crossfit.h"
#include "ensemble.h"
#include "errsheet.h"
#include "evaluate.h"
#include "infer.h"
#include "infer_fx.h"
#include "ingest/split.h"
#include "ingest_fx.h"
#include "metrics.h"
#include "predictions.h"

/* ------------------------------------------------------------ folds -- */

/* n rows, 2 labels, the four combinations in unequal shares. */
static float *combo_labels(size_t n) {
    float *y = malloc(n * 2 * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        int c = (int)((i * 7919u) % 20); /* 0..19: 11 none, 5 crack, 3 both, 1 inactive */
        y[2 * i] = c >= 11 && c < 19 ? 1.0f : 0.0f;
        y[2 * i + 1] = c >= 16 ? 1.0f : 0.0f;
    }
    return y;
}

static int combo(const float *y, size_t i) { return (y[2 * i] >= 0.5f) | (y[2 * i + 1] >= 0.5f) << 1; }

static void test_folds_partition_and_stratify(void **s) {
    (void)s;
    const size_t n = 1003;
    const int K = 5;
    float *y = combo_labels(n);
    uint8_t *split = malloc(n);
    int *times = calloc(n, sizeof *times);
    size_t total[4] = {0};
    for (size_t i = 0; i < n; i++) total[combo(y, i)]++;
    lm_err e = {0};
    size_t sizes[5] = {0};
    for (int f = 0; f < K; f++) {
        assert_int_equal(ingest_split_fold(y, n, 2, K, f, 42, split, &e), 0);
        size_t per[4] = {0};
        for (size_t i = 0; i < n; i++)
            if (split[i]) {
                times[i]++;
                per[combo(y, i)]++;
                sizes[f]++;
            }
        /* every combination in proportion: floor or ceil of its share */
        for (int c = 0; c < 4; c++) {
            assert_true(per[c] * K >= total[c] - (K - 1));
            assert_true(per[c] * K <= total[c] + (K - 1));
        }
    }
    /* the validation folds partition the set */
    for (size_t i = 0; i < n; i++) assert_int_equal(times[i], 1);
    for (int f = 0; f < K; f++) assert_true(sizes[f] == n / K || sizes[f] == n / K + 1);
    /* deterministic in the seed, and the seed matters */
    uint8_t *a = malloc(n), *b = malloc(n);
    assert_int_equal(ingest_split_fold(y, n, 2, K, 2, 7, a, &e), 0);
    assert_int_equal(ingest_split_fold(y, n, 2, K, 2, 7, b, &e), 0);
    assert_memory_equal(a, b, n);
    assert_int_equal(ingest_split_fold(y, n, 2, K, 2, 8, b, &e), 0);
    assert_true(memcmp(a, b, n) != 0);
    /* bad folds are refused */
    assert_int_equal(ingest_split_fold(y, n, 2, 1, 0, 7, a, &e), LUMEN_EINVAL);
    assert_int_equal(ingest_split_fold(y, n, 2, 5, 5, 7, a, &e), LUMEN_EINVAL);
    free(a);
    free(b);
    free(times);
    free(split);
    free(y);
}

/* ------------------------------------------------- nested thresholds -- */

typedef int (*nested_fn)(const float *p, const float *y, const uint8_t *fold, int64_t n, int k,
                         int folds, lm_cv_fold *out, lm_metrics *pooled, lm_err *err);

/* A planted leak: thresholds tuned on every sample, the scored fold too. */
static int leaky_nested(const float *p, const float *y, const uint8_t *fold, int64_t n, int k,
                        int folds, lm_cv_fold *out, lm_metrics *pooled, lm_err *err) {
    (void)pooled;
    float t[LM_METRICS_MAX_CLASSES];
    int rc = lm_metrics_tune_thresholds(p, y, n, k, t, err);
    float *sp = malloc((size_t)(n * k) * sizeof *sp), *sy = malloc((size_t)(n * k) * sizeof *sy);
    for (int f = 0; rc == 0 && f < folds; f++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (fold[i] == f) {
                memcpy(sp + m * k, p + i * k, (size_t)k * sizeof *sp);
                memcpy(sy + m * k, y + i * k, (size_t)k * sizeof *sy);
                m++;
            }
        memcpy(out[f].thresholds, t, sizeof t);
        out[f].n = m;
        rc = lm_metrics_compute(sp, sy, m, k, t, &out[f].m, err);
    }
    free(sp);
    free(sy);
    return rc;
}

/* Random out-of-fold data: n samples, k = 2, folds 4. */
static void random_oof(int64_t n, float *p, float *y, uint8_t *fold, unsigned seed) {
    srand(seed);
    for (int64_t i = 0; i < n; i++) {
        fold[i] = (uint8_t)(i % 4);
        for (int j = 0; j < 2; j++) {
            y[i * 2 + j] = (float)(rand() % 3 == 0);
            p[i * 2 + j] = 0.6f * y[i * 2 + j] + 0.4f * (float)rand() / (float)RAND_MAX;
        }
    }
}

/* Does fn keep the scored fold out of its thresholds?  Perturbs fold f's
 * predictions and labels wildly and reports whether fold f's thresholds
 * changed (1 = a leak). */
static int leaks(nested_fn fn) {
    const int64_t n = 200;
    float p[400], y[400], p2[400], y2[400];
    uint8_t fold[200];
    random_oof(n, p, y, fold, 3);
    lm_cv_fold a[4], b[4];
    lm_err e = {0};
    int leak = 0;
    for (int f = 0; f < 4; f++) {
        memcpy(p2, p, sizeof p);
        memcpy(y2, y, sizeof y);
        for (int64_t i = 0; i < n; i++)
            if (fold[i] == f)
                for (int j = 0; j < 2; j++) {
                    y2[i * 2 + j] = 1.0f - y[i * 2 + j];
                    p2[i * 2 + j] = 0.97f * p[i * 2 + j] * p[i * 2 + j];
                }
        assert_int_equal(fn(p, y, fold, n, 2, 4, a, NULL, &e), 0);
        assert_int_equal(fn(p2, y2, fold, n, 2, 4, b, NULL, &e), 0);
        leak |= memcmp(a[f].thresholds, b[f].thresholds, 2 * sizeof(float)) != 0;
    }
    return leak;
}

static void test_nested_never_sees_scored_fold(void **s) {
    (void)s;
    assert_false(leaks(lm_crossval_nested));
    /* the check has teeth: a version that tunes on everything is caught */
    assert_true(leaks(leaky_nested));
}

static void test_nested_matches_tuning_on_other_folds(void **s) {
    (void)s;
    const int64_t n = 200;
    float p[400], y[400], sp[400], sy[400];
    uint8_t fold[200];
    random_oof(n, p, y, fold, 11);
    lm_cv_fold out[4];
    lm_metrics pooled;
    lm_err e = {0};
    assert_int_equal(lm_crossval_nested(p, y, fold, n, 2, 4, out, &pooled, &e), 0);
    int64_t total = 0;
    for (int f = 0; f < 4; f++) {
        int64_t m = 0, q = 0;
        float fp[400], fy[400];
        for (int64_t i = 0; i < n; i++) {
            float *dp = fold[i] == f ? fp + q * 2 : sp + m * 2, *dy = fold[i] == f ? fy + q * 2 : sy + m * 2;
            memcpy(dp, p + i * 2, 2 * sizeof *p);
            memcpy(dy, y + i * 2, 2 * sizeof *y);
            if (fold[i] == f) q++;
            else m++;
        }
        float t[2];
        assert_int_equal(lm_metrics_tune_thresholds(sp, sy, m, 2, t, &e), 0);
        assert_memory_equal(t, out[f].thresholds, sizeof t);
        lm_metrics want;
        assert_int_equal(lm_metrics_compute(fp, fy, q, 2, t, &want, &e), 0);
        assert_int_equal(out[f].n, q);
        assert_true(out[f].m.f1_mean == want.f1_mean);
        assert_true(out[f].m.cls[0].ap == want.cls[0].ap);
        total += out[f].m.cls[0].tp + out[f].m.cls[0].fp + out[f].m.cls[0].fn + out[f].m.cls[0].tn;
    }
    assert_int_equal(total, n);
    assert_int_equal(pooled.n, n);
}

/* Data where a leak changes the score: fold 0 (40 samples) has positives
 * at 0.3 and negatives at 0.2; folds 1-3 (12 samples) positives at 0.9 and
 * negatives at 0.5.  Thresholds from folds 1-3 (~0.7) call all of fold 0
 * negative (F1 0); thresholds tuned on everything (fold 0 dominates) sit
 * near 0.25 and score fold 0 perfectly. */
static void test_nested_scores_fold_with_foreign_thresholds(void **s) {
    (void)s;
    float p[52], y[52];
    uint8_t fold[52];
    for (int i = 0; i < 52; i++) {
        fold[i] = (uint8_t)(i < 40 ? 0 : 1 + (i - 40) % 3);
        int pos = i % 2;
        y[i] = (float)pos;
        p[i] = fold[i] == 0 ? (pos ? 0.3f : 0.2f) : (pos ? 0.9f : 0.5f);
    }
    lm_cv_fold out[4], leak[4];
    lm_err e = {0};
    assert_int_equal(lm_crossval_nested(p, y, fold, 52, 1, 4, out, NULL, &e), 0);
    assert_true(out[0].thresholds[0] > 0.5f && out[0].thresholds[0] < 0.9f);
    assert_true(out[0].m.cls[0].f1 == 0.0);
    assert_true(out[1].thresholds[0] < 0.3f); /* fold 1 is scored with fold 0 in its tuning set */
    assert_int_equal(leaky_nested(p, y, fold, 52, 1, 4, leak, NULL, &e), 0);
    assert_true(leak[0].m.cls[0].f1 == 1.0); /* what a leak would report */
}

/* ---------------------------------------------------- predictions io -- */

static void test_predictions_round_trip(void **s) {
    (void)s;
    char *dir = fx_tmpdir("cvpred");
    char *path = fx_write_text(dir, "p.json", "");
    const char *labels[] = {"crack", "inactive"};
    const char *names[] = {"a.png", "dir/b;c.png", "\xc3\xa9.png"};
    float p[6] = {0.1f, 0.2f, 1.0f / 3.0f, 0.999999f, 1e-7f, 0.5f}, y[6] = {0, 1, 1, 0, 0, 0};
    uint32_t index[3] = {7, 3, 11};
    lm_err e = {0};
    assert_int_equal(lm_preds_write(path, p, y, index, names, 3, 2, labels, &e), 0);
    lm_preds r;
    assert_int_equal(lm_preds_read(path, &r, &e), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.k, 2);
    assert_string_equal(r.labels[1], "inactive");
    assert_memory_equal(r.p, p, sizeof p); /* bit for bit */
    assert_memory_equal(r.y, y, sizeof y);
    assert_memory_equal(r.index, index, sizeof index);
    for (int i = 0; i < 3; i++) assert_string_equal(r.names[i], names[i]);
    lm_preds_free(&r);
    free(fx_write_text(dir, "p.json", "{\"format\":\"other\"}"));
    assert_int_equal(lm_preds_read(path, &r, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "p.json"));
    free(path);
    fx_rmtree(dir);
}

/* ------------------------------------------------------- ensembles -- */

static void test_ensemble_mean_by_hand(void **s) {
    (void)s;
    const float a[4] = {0.1f, 0.9f, 0.25f, 0.0f}, b[4] = {0.3f, 0.5f, 0.75f, 1.0f},
                c[4] = {0.2f, 0.1f, 0.5f, 0.5f};
    const float *in[3] = {a, b, c};
    float out[4];
    lm_ensemble_mean(in, 3, 4, out);
    const double want[4] = {0.2, 0.5, 0.5, 0.5};
    for (int i = 0; i < 4; i++) assert_true(fabs(out[i] - want[i]) < 1e-7);
    lm_ensemble_mean(in, 1, 4, out);
    assert_memory_equal(out, a, sizeof a);
}

static void test_manifest_round_trip(void **s) {
    (void)s;
    char *dir = fx_tmpdir("cvens");
    char *sub = fx_write_text(dir, "m/x.txt", "");
    char *mpath = malloc(strlen(dir) + 32);
    sprintf(mpath, "%s/m/ensemble.json", dir);
    char *models[] = {"../f0.safetensors", "f1.safetensors", "/abs/f2.safetensors"};
    char *labels[] = {"crack", "inactive"};
    lm_ensemble w = {.n_models = 3, .models = models, .k = 2, .labels = labels, .has_thresholds = 1,
                     .thresholds = {0.625f, 0.3f}};
    lm_err e = {0};
    assert_int_equal(lm_ensemble_write(mpath, &w, NULL, &e), 0);
    lm_ensemble r;
    assert_int_equal(lm_ensemble_read(mpath, &r, &e), 0);
    assert_int_equal(r.n_models, 3);
    char want[512];
    snprintf(want, sizeof want, "%s/m/../f0.safetensors", dir);
    assert_string_equal(r.models[0], want);
    snprintf(want, sizeof want, "%s/m/f1.safetensors", dir);
    assert_string_equal(r.models[1], want);
    assert_string_equal(r.models[2], "/abs/f2.safetensors");
    assert_int_equal(r.k, 2);
    assert_string_equal(r.labels[0], "crack");
    assert_true(r.has_thresholds);
    assert_true(r.thresholds[0] == 0.625f && r.thresholds[1] == 0.3f);
    lm_ensemble_free(&r);
    /* a folder with the manifest; the manifest as the one argument keeps thresholds */
    char *mdir = malloc(strlen(dir) + 8);
    sprintf(mdir, "%s/m", dir);
    const char *args[2] = {mdir, NULL};
    assert_int_equal(lm_ensemble_from_args(args, 1, &r, &e), 0);
    assert_int_equal(r.n_models, 3);
    assert_true(r.has_thresholds);
    lm_ensemble_free(&r);
    /* plus another checkpoint: a different set, so no thresholds */
    args[1] = "extra.safetensors";
    assert_int_equal(lm_ensemble_from_args(args, 2, &r, &e), 0);
    assert_int_equal(r.n_models, 4);
    assert_string_equal(r.models[3], "extra.safetensors");
    assert_false(r.has_thresholds);
    lm_ensemble_free(&r);
    /* a folder of checkpoints without a manifest: by name */
    free(fx_write_text(dir, "fold/b.safetensors", "x"));
    free(fx_write_text(dir, "fold/a.safetensors", "x"));
    free(fx_write_text(dir, "fold/notes.txt", "x"));
    sprintf(mdir, "%s/fold", dir);
    args[0] = mdir;
    assert_int_equal(lm_ensemble_from_args(args, 1, &r, &e), 0);
    assert_int_equal(r.n_models, 2);
    assert_non_null(strstr(r.models[0], "/a.safetensors"));
    assert_non_null(strstr(r.models[1], "/b.safetensors"));
    lm_ensemble_free(&r);
    /* bad manifests name the file */
    free(fx_write_text(dir, "m/ensemble.json",
                       "{\"format\":\"lumen-ensemble\",\"labels\":[\"a\",\"b\"],\"models\":[\"x\"],"
                       "\"thresholds\":[0.5]}"));
    assert_int_equal(lm_ensemble_read(mpath, &r, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "ensemble.json"));
    free(fx_write_text(dir, "m/ensemble.json", "{\"format\":\"lumen-ensemble\",\"models\":[]}"));
    assert_int_equal(lm_ensemble_read(mpath, &r, &e), LUMEN_EDATA);
    free(mdir);
    free(mpath);
    free(sub);
    fx_rmtree(dir);
}

typedef struct set_ctx {
    const lm_image_set *set;
} set_ctx;

static int eval_set(void *user, const lm_infer_model *m, nn_engine *e, lm_eval_result *r, lm_err *err) {
    const set_ctx *c = user;
    lm_eval_cfg cfg;
    lm_infer_eval_cfg(m, 4, 0, &cfg);
    return lm_infer_eval_set(e, c->set, &cfg, r, err);
}

/* Two tiny random models: the ensemble's probabilities are the mean of
 * each model's own forward pass (ifx_reference_probs). */
static void test_ensemble_eval_is_mean_of_models(void **s) {
    (void)s;
    char *dir = fx_tmpdir("cvense");
    const char *labels[] = {"crack", "inactive"};
    char *c0 = fx_write_text(dir, "f0.safetensors", ""), *c1 = fx_write_text(dir, "f1.safetensors", "");
    ifx_tiny_checkpoint(c0, 1, 16, 16, 2, labels, 0.5f, 0.25f, NULL, 1);
    ifx_tiny_checkpoint(c1, 1, 16, 16, 2, labels, 0.4f, 0.2f, NULL, 2);
    char *names[3];
    for (int i = 0; i < 3; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "img%d.png", i);
        names[i] = fx_write_text(dir, nm, "");
        ifx_png(names[i], 1, 16, 16, (uint64_t)(10 + i));
    }
    lm_err e = {0};
    lm_infer_model m0;
    assert_int_equal(lm_infer_model_load(c0, &m0, &e), 0);
    lm_image_set set;
    assert_int_equal(lm_image_set_load((const char *const *)names, 3, NULL, NULL, &m0, 1, &set, &e), 0);
    char *models[2] = {c0, c1};
    lm_ensemble ens = {.n_models = 2, .models = models};
    set_ctx ctx = {&set};
    lm_eval_result r;
    assert_int_equal(lm_ensemble_eval(&ens, &m0, "cpu", 4, 1, eval_set, &ctx, &r, &e), 0);
    assert_int_equal(r.n, 3);
    float pa[6], pb[6];
    ifx_reference_probs(c0, set.pixels, 3, 0, pa);
    ifx_reference_probs(c1, set.pixels, 3, 0, pb);
    for (int i = 0; i < 6; i++) {
        double want = 0.5 * ((double)pa[i] + (double)pb[i]);
        assert_true(fabs(r.probs[i] - want) < 1e-5);
    }
    /* the two models really differ, so the mean is not either one */
    assert_true(fabs(pa[0] - pb[0]) > 1e-4);
    lm_eval_result_free(&r);
    /* a model of another input size is refused, naming both files */
    char *c2 = fx_write_text(dir, "f2.safetensors", "");
    ifx_tiny_checkpoint(c2, 1, 8, 8, 2, labels, 0.5f, 0.25f, NULL, 3);
    models[1] = c2;
    assert_int_equal(lm_ensemble_eval(&ens, &m0, "cpu", 4, 1, eval_set, &ctx, &r, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "f2.safetensors"));
    lm_image_set_free(&set);
    lm_infer_model_free(&m0);
    for (int i = 0; i < 3; i++) free(names[i]);
    free(c0);
    free(c1);
    free(c2);
    fx_rmtree(dir);
}

/* lm_image_set_for_model: the images decoded for one model, converted for
 * a model of another filter, equal the images decoded for that model --
 * plain -> high-pass, high-pass -> plain, sigma 1.5 -> sigma 4; names,
 * labels and per-image errors carry over; another size is refused. */
static void test_image_set_for_model(void **s) {
    (void)s;
    char *dir = fx_tmpdir("cvrefilter");
    const char *labels[] = {"crack", "inactive"};
    const char *filt[3] = {NULL, "{\"highpass\":{\"sigma\":1.5,\"gain\":2}}",
                           "{\"highpass\":{\"sigma\":4,\"gain\":3}}"};
    lm_infer_model m[3];
    lm_err e = {0};
    for (int i = 0; i < 3; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "m%d.safetensors", i);
        char *c = fx_write_text(dir, nm, "");
        ifx_tiny_checkpoint_filtered(c, i ? 2 : 1, 24, 20, 2, labels, 0.5f, 0.25f, NULL, (uint64_t)i + 1, filt[i]);
        assert_int_equal(lm_infer_model_load(c, &m[i], &e), 0);
        free(c);
    }
    char *names[4];
    for (int i = 0; i < 4; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "img%d.png", i);
        names[i] = fx_write_text(dir, nm, i == 2 ? "not a png" : "");
        if (i != 2) ifx_png(names[i], i == 3 ? 3 : 1, 30 + 7 * (uint32_t)i, 25, (uint64_t)(20 + i));
    }
    float y[8] = {1, 0, 0, 1, 1, 1, 0, 0};
    lm_image_set set[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(lm_image_set_load((const char *const *)names, 4, NULL, y, &m[i], 1, &set[i], &e), 0);
    assert_int_equal(set[0].nfailed, 1);
    for (int from = 0; from < 3; from++)
        for (int to = 0; to < 3; to++) {
            lm_image_set t;
            assert_int_equal(lm_image_set_for_model(&set[from], &m[to], 2, &t, &e), 0);
            assert_int_equal(t.n, 4);
            assert_int_equal(t.channels, set[to].channels);
            assert_int_equal(t.nfailed, 1);
            assert_memory_equal(t.ok, set[to].ok, 3 * sizeof *t.ok);
            assert_memory_equal(t.labels, y, sizeof y);
            assert_true(lm_pixfilter_equal(&t.filter, &m[to].filter));
            for (int i = 0; i < 4; i++) {
                assert_string_equal(t.names[i], names[i]);
                assert_true((t.errors[i] != NULL) == (i == 2));
            }
            assert_memory_equal(t.pixels, set[to].pixels, (size_t)4 * t.channels * 24 * 20);
            lm_image_set_free(&t);
        }
    /* the filters really differ: the second planes are not alike */
    assert_memory_not_equal(set[1].pixels + 24 * 20, set[2].pixels + 24 * 20, 24 * 20);
    lm_infer_model small = {0};
    char *c = fx_write_text(dir, "small.safetensors", "");
    ifx_tiny_checkpoint(c, 1, 8, 8, 2, labels, 0.5f, 0.25f, NULL, 9);
    assert_int_equal(lm_infer_model_load(c, &small, &e), 0);
    lm_image_set t;
    assert_int_equal(lm_image_set_for_model(&set[1], &small, 1, &t, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, c));
    lm_infer_model_free(&small);
    free(c);
    for (int i = 0; i < 3; i++) {
        lm_image_set_free(&set[i]);
        lm_infer_model_free(&m[i]);
    }
    for (int i = 0; i < 4; i++) free(names[i]);
    fx_rmtree(dir);
}

/* ------------------------------------------------------ contact sheet -- */

static void test_errsheet_pick_order(void **s) {
    (void)s;
    /* label 0 at 0.5: negatives 0.9 (i=1), 0.7 (i=3), 0.7 (i=5), 0.2 (i=0);
     * positives 0.1 (i=2), 0.4 (i=4), 0.8 (i=6) */
    float p[7] = {0.2f, 0.9f, 0.1f, 0.7f, 0.4f, 0.7f, 0.8f};
    float y[7] = {0, 0, 1, 0, 1, 0, 1};
    float thr[1] = {0.5f};
    int64_t pick[2 * 2], count[2];
    lm_err e = {0};
    assert_int_equal(lm_errsheet_pick(p, y, 7, 1, thr, 2, pick, count, &e), 0);
    assert_int_equal(count[0], 3); /* false positives: 1, 3, 5 */
    assert_int_equal(pick[0], 1);
    assert_int_equal(pick[1], 3); /* tie with 5: sample order */
    assert_int_equal(count[1], 2); /* false negatives: 2 (0.1), 4 (0.4) */
    assert_int_equal(pick[2], 2);
    assert_int_equal(pick[3], 4);
    int64_t pick3[6];
    assert_int_equal(lm_errsheet_pick(p, y, 7, 1, thr, 3, pick3, count, &e), 0);
    assert_int_equal(pick3[2], 5);
    assert_int_equal(pick3[5], -1); /* only two false negatives */
}

typedef struct pix_ctx {
    uint8_t img[4][8 * 8];
} pix_ctx;

static int test_pixels(void *user, int64_t i, const uint8_t **px, uint32_t *c, uint32_t *h, uint32_t *w,
                       lm_err *err) {
    (void)err;
    pix_ctx *x = user;
    *px = x->img[i];
    *c = 1;
    *h = *w = 8;
    return 0;
}

static uint8_t *decode_gray(const char *path, uint32_t *w, uint32_t *h) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    spng_ctx *ctx = spng_ctx_new(0);
    spng_set_png_file(ctx, f);
    struct spng_ihdr ih;
    assert_int_equal(spng_get_ihdr(ctx, &ih), 0);
    size_t size;
    assert_int_equal(spng_decoded_image_size(ctx, SPNG_FMT_G8, &size), 0);
    uint8_t *img = malloc(size);
    assert_int_equal(spng_decode_image(ctx, img, size, SPNG_FMT_G8, 0), 0);
    *w = ih.width;
    *h = ih.height;
    spng_ctx_free(ctx);
    fclose(f);
    return img;
}

static void test_errsheet_png(void **s) {
    (void)s;
    char *dir = fx_tmpdir("cvsheet");
    char *png = fx_write_text(dir, "errors.png", "");
    /* 4 samples, 2 labels: sample 0 a crack false positive, sample 1 a
     * crack false negative, sample 2 an inactive false positive, 3 right */
    float p[8] = {0.9f, 0.1f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f, 0.1f};
    float y[8] = {0, 0, 1, 0, 0, 0, 0, 0};
    float thr[2] = {0.5f, 0.5f};
    const char *labels[] = {"crack", "inactive"};
    const char *names[] = {"images/cell0001.png", "b.png", "c.png", "d.png"};
    pix_ctx px;
    for (int i = 0; i < 4; i++) memset(px.img[i], 60 + 40 * i, sizeof px.img[i]);
    lm_err e = {0};
    assert_int_equal(lm_errsheet_write(png, p, y, names, 4, 2, labels, thr, 3, test_pixels, &px, &e), 0);
    uint32_t w, h;
    uint8_t *img = decode_gray(png, &w, &h);
    int ew, eh;
    lm_errsheet_size(2, 3, &ew, &eh);
    assert_int_equal(w, (uint32_t)ew);
    assert_int_equal(h, (uint32_t)eh);
    assert_int_equal(ew, LM_ERRSHEET_PAD + 3 * (LM_ERRSHEET_THUMB + LM_ERRSHEET_PAD));
    /* the cells, in order: row r, column 0 shows the expected sample */
    const int row_h = LM_ERRSHEET_TITLE_H + LM_ERRSHEET_THUMB + 3 * LM_ERRSHEET_LINE_H + LM_ERRSHEET_PAD;
    const int want[4] = {0, 1, 2, -1}; /* crack FP, crack FN, inactive FP, inactive FN (none) */
    for (int r = 0; r < 4; r++) {
        int cx = LM_ERRSHEET_PAD + LM_ERRSHEET_THUMB / 2;
        int cy = LM_ERRSHEET_PAD + r * row_h + LM_ERRSHEET_TITLE_H + LM_ERRSHEET_THUMB / 2;
        uint8_t v = img[(size_t)cy * w + (size_t)cx];
        if (want[r] >= 0) assert_int_equal(v, 60 + 40 * want[r]);
        else assert_int_not_equal(v, 60 + 40 * 3);
        /* the second column is empty: background */
        int cx2 = cx + LM_ERRSHEET_THUMB + LM_ERRSHEET_PAD;
        assert_int_not_equal(img[(size_t)cy * w + (size_t)cx2], 60);
    }
    /* text was drawn under the first cell (the file name line) */
    int ty = LM_ERRSHEET_PAD + LM_ERRSHEET_TITLE_H + LM_ERRSHEET_THUMB + 2, lit = 0;
    for (int yy = ty; yy < ty + 7; yy++)
        for (int xx = LM_ERRSHEET_PAD; xx < LM_ERRSHEET_PAD + LM_ERRSHEET_THUMB; xx++)
            lit += img[(size_t)yy * w + (size_t)xx] == 255;
    assert_true(lit > 20);
    free(img);
    free(png);
    fx_rmtree(dir);
}

static void test_errsheet_text_glyphs(void **s) {
    (void)s;
    uint8_t img[7 * 12];
    memset(img, 0, sizeof img);
    assert_int_equal(lm_errsheet_text(img, 12, 7, 0, 0, "I-", 5, 255), 2);
    /* 'I': the middle column lit on every row; '-': row 3 of the second glyph */
    for (int r = 0; r < 7; r++) assert_int_equal(img[r * 12 + 2], 255);
    for (int b = 0; b < 5; b++) assert_int_equal(img[3 * 12 + 6 + b], 255);
    assert_int_equal(img[0 * 12 + 6], 0);
    /* clipped, never past the image */
    assert_int_equal(lm_errsheet_text(img, 12, 7, 10, 5, "WWW", 3, 9), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folds_partition_and_stratify),
        cmocka_unit_test(test_nested_never_sees_scored_fold),
        cmocka_unit_test(test_nested_matches_tuning_on_other_folds),
        cmocka_unit_test(test_nested_scores_fold_with_foreign_thresholds),
        cmocka_unit_test(test_predictions_round_trip),
        cmocka_unit_test(test_ensemble_mean_by_hand),
        cmocka_unit_test(test_manifest_round_trip),
        cmocka_unit_test(test_ensemble_eval_is_mean_of_models),
        cmocka_unit_test(test_image_set_for_model),
        cmocka_unit_test(test_errsheet_pick_order),
        cmocka_unit_test(test_errsheet_png),
        cmocka_unit_test(test_errsheet_text_glyphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
