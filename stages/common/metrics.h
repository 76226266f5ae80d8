/*
 * metrics.h -- multi-label classification metrics shared by the train stage
 * (per-epoch validation), the validate stage and `runner eval`.
 *
 * Inputs are probabilities p[n*k] (sigmoid of the logits, row-major: sample
 * i, class j at p[i*k + j]) and targets y[n*k]; a target counts as positive
 * when >= 0.5 (so soft or smoothed targets work).  A sample is predicted
 * positive for class j when p >= threshold[j].
 *
 * Definitions (sklearn's, with zero_division = 0):
 *   precision = tp / (tp + fp), recall = tp / (tp + fn),
 *   f1 = 2 tp / (2 tp + fp + fn), each 0 when its denominator is 0;
 *   f1_mean  = unweighted mean of the per-class F1 (sklearn "macro" F1);
 *   f1_micro = F1 of the confusion counts summed over classes;
 *   ap = average precision (area under the precision-recall curve, step
 *        interpolation as sklearn's average_precision_score), threshold-free.
 * Nothing here allocates except lm_metrics_tune_thresholds (scratch, freed).
 */
#ifndef LM_METRICS_H
#define LM_METRICS_H

#include <stdint.h>

#include "lm_util.h"

#define LM_METRICS_MAX_CLASSES 64

typedef struct lm_class_metrics {
    int64_t tp, fp, fn, tn;
    int64_t support; /* positives: tp + fn */
    double precision, recall, f1;
    double ap;        /* average precision, NAN when support == 0 */
    float threshold;  /* the threshold these counts were taken at */
} lm_class_metrics;

typedef struct lm_metrics {
    int k;                                   /* classes */
    int64_t n;                               /* samples */
    lm_class_metrics cls[LM_METRICS_MAX_CLASSES];
    double f1_mean;   /* mean per-class F1 (= sklearn macro F1) */
    double f1_micro;
    double precision_micro, recall_micro;
    double ap_mean;   /* mean AP over classes with support > 0 */
    double exact_match; /* share of samples with every label right */
} lm_metrics;

/* Computes every metric at the given per-class thresholds (NULL = 0.5 for
 * all).  LUMEN_EINVAL when k is outside 1..LM_METRICS_MAX_CLASSES or n < 0. */
int lm_metrics_compute(const float *p, const float *y, int64_t n, int k,
                       const float *thresholds, lm_metrics *out, lm_err *err);

/* For each class, the threshold that maximizes its F1 on (p, y).  Cut
 * points lie between distinct scores; the threshold is placed halfway
 * between the two neighbouring scores (so it does not sit on a sample), and
 * of equally good cut points the median one is taken.  A class without
 * positives gets 0.5.  thresholds_out[k].  LUMEN_ENOMEM, LUMEN_EINVAL. */
int lm_metrics_tune_thresholds(const float *p, const float *y, int64_t n, int k,
                               float *thresholds_out, lm_err *err);

/* Logistic sigmoid of n logits into out (may alias). */
void lm_sigmoid(const float *logits, float *out, int64_t n);

#endif /* LM_METRICS_H */
