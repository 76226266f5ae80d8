/*
 * crossfit.h -- an honest estimate of the F1 that per-class threshold tuning
 * buys: K-fold cross-fitting.
 *
 * Thresholds tuned to maximize F1 on a split (lm_metrics_tune_thresholds)
 * and then evaluated on that same split are optimistic.  Cross-fitting
 * splits the samples into `folds` parts; for each part, thresholds are
 * tuned on the other parts and applied to this one.  The decisions of all
 * parts are pooled and scored once (lm_metrics_compute on the pooled
 * decisions), so every sample is judged by thresholds that never saw it.
 *
 * Folds are stratified by label combination and seeded: samples are ordered
 * by their label combination (the bit set of classes with target >= 0.5,
 * classes beyond 64 ignored), within one combination by a random key
 * (draw i of the stream (seed, LM_RNG_CROSSFIT, 0, 0) for sample i, rng.h;
 * ties by index), and dealt round-robin: position q goes to fold q % folds.
 * Each combination is thus spread evenly (+-1) over the folds, fold sizes
 * differ by at most one, and the assignment depends only on (y, seed).
 *
 * The pooled decisions carry no scores: the pooled metrics' AP fields and
 * per-class `threshold` are NAN (AP is threshold-free: take it from the
 * plain metrics; the thresholds used are in lm_crossfit.thresholds).
 *
 * Note: pooled decisions of different thresholds per part are not one
 * threshold rule, so the estimate is not bounded above by the in-sample
 * tuned F1 in every case; on noisy data it is typically below it.
 *
 * Errors: LUMEN_EINVAL (k outside 1..LM_METRICS_MAX_CLASSES, folds outside
 * 2..LM_CROSSFIT_MAX_FOLDS, n < 0), LUMEN_ENOMEM.  No shared state.
 */
#ifndef LM_CROSSFIT_H
#define LM_CROSSFIT_H

#include <stdint.h>

#include "lm_util.h"
#include "metrics.h"

#define LM_CROSSFIT_MAX_FOLDS 16

typedef struct lm_crossfit {
    int folds;
    uint64_t seed;
    int64_t fold_size[LM_CROSSFIT_MAX_FOLDS];
    /* thresholds[f][j]: tuned on every fold but f, applied to fold f */
    float thresholds[LM_CROSSFIT_MAX_FOLDS][LM_METRICS_MAX_CLASSES];
    lm_metrics pooled; /* metrics of the pooled decisions (ap: NAN) */
} lm_crossfit;

/* Writes the fold (0..folds-1) of each of the n samples to fold_out[n]
 * (see above). */
int lm_crossfit_folds(const float *y, int64_t n, int k, int folds, uint64_t seed,
                      uint8_t *fold_out, lm_err *err);

/* Cross-fitted tuned-threshold metrics of probabilities p[n*k] against
 * targets y[n*k] (layout as metrics.h). */
int lm_crossfit_tuned(const float *p, const float *y, int64_t n, int k, int folds,
                      uint64_t seed, lm_crossfit *out, lm_err *err);

/* --------------------------------------------- nested cross-validation -- */

/* One fold of a k-fold cross-validation, scored honestly. */
typedef struct lm_cv_fold {
    int64_t n;                                  /* samples in the fold */
    float thresholds[LM_METRICS_MAX_CLASSES];   /* tuned on the OTHER folds */
    lm_metrics m;                               /* this fold at those thresholds;
                                                 * AP (threshold-free) too */
} lm_cv_fold;

/* Out-of-fold predictions p[n*k] (each sample predicted by the model that
 * did not train on its fold) with targets y[n*k] and each sample's fold
 * fold[n] in 0..folds-1: for every fold f, thresholds are tuned
 * (lm_metrics_tune_thresholds) on the samples of every fold but f, and fold
 * f is scored at them into out[f] (folds entries).  By construction the
 * thresholds applied to fold f are a function of the other folds' (p, y)
 * alone: changing fold f's predictions or labels cannot change them.  A fold
 * without samples gets n = 0 and metrics of nothing; when the other folds
 * hold no samples the thresholds are 0.5.  pooled (may be NULL): the
 * metrics of every fold's decisions pooled (AP: NAN, as lm_crossfit).
 * LUMEN_EINVAL (k, folds, a fold id out of range), LUMEN_ENOMEM. */
int lm_crossval_nested(const float *p, const float *y, const uint8_t *fold, int64_t n, int k,
                       int folds, lm_cv_fold *out, lm_metrics *pooled, lm_err *err);

#endif /* LM_CROSSFIT_H */
