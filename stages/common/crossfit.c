/* crossfit.c -- see crossfit.h. */
#include "crossfit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

typedef struct keyed {
    uint64_t combo, rnd;
    int64_t i;
} keyed;

static int by_key(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->combo != y->combo) return x->combo < y->combo ? -1 : 1;
    if (x->rnd != y->rnd) return x->rnd < y->rnd ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int check_args(int64_t n, int k, int folds, lm_err *err) {
    if (k < 1 || k > LM_METRICS_MAX_CLASSES || n < 0)
        return lm_fail(err, LUMEN_EINVAL, "crossfit: %d classes, %lld samples", k, (long long)n);
    if (folds < 2 || folds > LM_CROSSFIT_MAX_FOLDS)
        return lm_fail(err, LUMEN_EINVAL, "crossfit: folds must be in 2..%d, got %d",
                       LM_CROSSFIT_MAX_FOLDS, folds);
    return 0;
}

int lm_crossfit_folds(const float *y, int64_t n, int k, int folds, uint64_t seed,
                      uint8_t *fold_out, lm_err *err) {
    int rc = check_args(n, k, folds, err);
    if (rc) return rc;
    keyed *s = malloc(((size_t)n + 1) * sizeof *s);
    if (!s) return lm_fail(err, LUMEN_ENOMEM, "crossfit: out of memory");
    lm_rng r;
    lm_rng_init(&r, seed, LM_RNG_CROSSFIT, 0, 0);
    for (int64_t i = 0; i < n; i++) {
        uint64_t combo = 0;
        for (int j = 0; j < k && j < 64; j++)
            if (y[i * k + j] >= 0.5f) combo |= (uint64_t)1 << j;
        s[i] = (keyed){combo, lm_rng_u64(&r), i};
    }
    qsort(s, (size_t)n, sizeof *s, by_key);
    for (int64_t q = 0; q < n; q++) fold_out[s[q].i] = (uint8_t)(q % folds);
    free(s);
    return 0;
}

int lm_crossfit_tuned(const float *p, const float *y, int64_t n, int k, int folds,
                      uint64_t seed, lm_crossfit *out, lm_err *err) {
    int rc = check_args(n, k, folds, err);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->folds = folds;
    out->seed = seed;
    size_t nk = (size_t)n * (size_t)k;
    uint8_t *fold = malloc((size_t)n + 1);
    float *sp = malloc((nk + 1) * sizeof *sp), *sy = malloc((nk + 1) * sizeof *sy);
    float *dec = malloc((nk + 1) * sizeof *dec);
    if (!fold || !sp || !sy || !dec) {
        rc = lm_fail(err, LUMEN_ENOMEM, "crossfit: out of memory");
        goto out;
    }
    if ((rc = lm_crossfit_folds(y, n, k, folds, seed, fold, err))) goto out;
    for (int f = 0; f < folds; f++) {
        /* tune on every other fold */
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fold[i] == f) {
                out->fold_size[f]++;
                continue;
            }
            memcpy(sp + m * k, p + i * k, (size_t)k * sizeof *sp);
            memcpy(sy + m * k, y + i * k, (size_t)k * sizeof *sy);
            m++;
        }
        float *t = out->thresholds[f];
        if ((rc = lm_metrics_tune_thresholds(sp, sy, m, k, t, err))) goto out;
        for (int64_t i = 0; i < n; i++)
            if (fold[i] == f)
                for (int j = 0; j < k; j++) dec[i * k + j] = p[i * k + j] >= t[j] ? 1.0f : 0.0f;
    }
    /* the pooled 0/1 decisions, scored at 0.5 */
    rc = lm_metrics_compute(dec, y, n, k, NULL, &out->pooled, err);
    for (int j = 0; j < k; j++) out->pooled.cls[j].ap = out->pooled.cls[j].threshold = NAN;
    out->pooled.ap_mean = NAN;
out:
    free(fold);
    free(sp);
    free(sy);
    free(dec);
    return rc;
}

int lm_crossval_nested(const float *p, const float *y, const uint8_t *fold, int64_t n, int k,
                       int folds, lm_cv_fold *out, lm_metrics *pooled, lm_err *err) {
    int rc = check_args(n, k, folds, err);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++)
        if (fold[i] >= folds)
            return lm_fail(err, LUMEN_EINVAL, "crossval: sample %lld has fold %d of %d",
                           (long long)i, fold[i], folds);
    size_t nk = (size_t)n * (size_t)k;
    float *sp = malloc((nk + 1) * sizeof *sp), *sy = malloc((nk + 1) * sizeof *sy);
    float *dec = malloc((nk + 1) * sizeof *dec);
    if (!sp || !sy || !dec) {
        rc = lm_fail(err, LUMEN_ENOMEM, "crossval: out of memory");
        goto out;
    }
    for (int f = 0; f < folds && rc == 0; f++) {
        lm_cv_fold *o = &out[f];
        memset(o, 0, sizeof *o);
        /* 1. tune on every other fold: fold f's rows are never copied */
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fold[i] == f) continue;
            memcpy(sp + m * k, p + i * k, (size_t)k * sizeof *sp);
            memcpy(sy + m * k, y + i * k, (size_t)k * sizeof *sy);
            m++;
        }
        if (m > 0) rc = lm_metrics_tune_thresholds(sp, sy, m, k, o->thresholds, err);
        else
            for (int j = 0; j < k; j++) o->thresholds[j] = 0.5f;
        if (rc) break;
        /* 2. score fold f at those thresholds */
        m = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fold[i] != f) continue;
            memcpy(sp + m * k, p + i * k, (size_t)k * sizeof *sp);
            memcpy(sy + m * k, y + i * k, (size_t)k * sizeof *sy);
            for (int j = 0; j < k; j++)
                dec[i * k + j] = p[i * k + j] >= o->thresholds[j] ? 1.0f : 0.0f;
            m++;
        }
        o->n = m;
        rc = lm_metrics_compute(sp, sy, m, k, o->thresholds, &o->m, err);
    }
    if (rc == 0 && pooled) {
        rc = lm_metrics_compute(dec, y, n, k, NULL, pooled, err);
        for (int j = 0; j < k; j++) pooled->cls[j].ap = pooled->cls[j].threshold = NAN;
        pooled->ap_mean = NAN;
    }
out:
    free(sp);
    free(sy);
    free(dec);
    return rc;
}
