/*
 * valreport.h -- the validation report shared by the validate stage and
 * `runner eval`: metrics of probabilities against targets at 0.5 and at the
 * chosen thresholds, thresholds tuned in-sample and their cross-fitted
 * (honest) estimate, as JSON, as a text table, and as metric keys.
 *
 * Threshold modes (lm_vreport_mode):
 *   tune    per-class thresholds maximizing F1 on these samples
 *           (lm_metrics_tune_thresholds) -- optimistic on the same samples,
 *           hence the cross-fitted estimate (crossfit.h) beside it
 *   stored  the checkpoint's thresholds
 *   fixed   one threshold for every class
 *
 * The JSON document (lm_vreport_json; the caller may add keys to it):
 *   {"n": 128, "labels": ["crack","inactive"],
 *    "thresholds": {"mode": "tune", "values": [0.31, 0.62]},
 *    "default": SECTION,                  metrics at 0.5 for every class
 *    "chosen":  SECTION,                  metrics at thresholds.values
 *    "tuned":   {"thresholds": [..], "f1_mean": x, "f1_micro": x},  in-sample
 *    "tuned_cv": {"folds": 2, "seed": 0, "fold_sizes": [64, 64],
 *                 "f1_mean": x, "f1_micro": x, "precision_micro": x,
 *                 "recall_micro": x,
 *                 "classes": [{"label","f1","precision","recall",
 *                              "thresholds": [per fold]}]}}
 *   SECTION = {"thresholds": [..], "f1_mean", "f1_micro", "precision_micro",
 *              "recall_micro", "ap_mean", "exact_match",
 *              "classes": [{"label","threshold","support","tp","fp","fn","tn",
 *                           "precision","recall","f1","ap"}]}
 * A value that is not a number (AP of a class without positives) is null.
 * Per class, tp + fp + fn + tn = n.
 *
 * Metric keys (lm_vreport_metrics), all under a prefix such as "val/";
 * <l> is a label name with characters outside [A-Za-z0-9_.-] made '_',
 * <m> the mode name (tuned | stored | fixed):
 *   n, f1_mean, f1_micro, precision_micro, recall_micro, ap_mean, exact_match
 *   f1_<l>, precision_<l>, recall_<l>, ap_<l>, support_<l>,
 *   tp_<l>, fp_<l>, fn_<l>, tn_<l>                         (at 0.5)
 *   f1_mean_<m>, f1_micro_<m>, precision_micro_<m>, recall_micro_<m>,
 *   exact_match_<m>, threshold_<l>, f1_<l>_<m>, precision_<l>_<m>,
 *   recall_<l>_<m>, tp_<l>_<m>, fp_<l>_<m>, fn_<l>_<m>, tn_<l>_<m>
 *                                               (at the chosen thresholds)
 *   f1_mean_tuned, f1_micro_tuned      (in-sample tuned; also when m != tuned)
 *   f1_mean_tuned_cv, f1_micro_tuned_cv                  (cross-fitted)
 * NAN values (AP without positives) are not emitted.  The "main" ones
 * (flagged for the run summary): f1_mean, f1_micro, ap_mean, f1_mean_<m>,
 * f1_micro_<m>, f1_mean_tuned, f1_mean_tuned_cv.
 *
 * Errors: 0 or LUMEN_E* (lm_util.h).  No shared state.
 */
#ifndef LM_VALREPORT_H
#define LM_VALREPORT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "crossfit.h"
#include "lm_util.h"
#include "metrics.h"

enum lm_vreport_mode { LM_THR_TUNE = 0, LM_THR_STORED = 1, LM_THR_FIXED = 2 };

/* "tune" / "stored" / "fixed" and back (-1 when unknown). */
const char *lm_vreport_mode_name(int mode);
int lm_vreport_mode_parse(const char *s);
/* The metric-key suffix of a mode: "tuned" / "stored" / "fixed". */
const char *lm_vreport_mode_suffix(int mode);

#define LM_VREPORT_FOLDS 2

typedef struct lm_vreport {
    int k;
    int64_t n;
    int mode;
    float thresholds[LM_METRICS_MAX_CLASSES]; /* the chosen thresholds */
    float tuned_thr[LM_METRICS_MAX_CLASSES];  /* tuned in-sample */
    lm_metrics at_default; /* at 0.5 */
    lm_metrics at_chosen;  /* at thresholds */
    lm_metrics tuned;      /* at tuned_thr (= at_chosen in mode tune) */
    lm_crossfit cv;        /* LM_VREPORT_FOLDS-fold cross-fitted tuning */
} lm_vreport;

/* Computes the report of p[n*k] against y[n*k] (metrics.h layout).
 * stored[k]: the checkpoint's thresholds (mode stored; may be NULL
 * otherwise); fixed: the threshold of mode fixed; seed: the cross-fitting
 * folds'.  LUMEN_EINVAL (bad k/n/mode, stored missing), LUMEN_ENOMEM. */
int lm_vreport_compute(const float *p, const float *y, int64_t n, int k, int mode,
                       const float *stored, float fixed, uint64_t seed, lm_vreport *r,
                       lm_err *err);

/* Where the numbers come from, for the JSON document (NULL members and
 * negative numbers are left out). */
typedef struct lm_vreport_info {
    const char *checkpoint;      /* "best" / "last" (validate) */
    const char *checkpoint_file; /* the file evaluated */
    int64_t epoch;               /* the checkpoint's epoch; < 0: unknown */
    const char *split;           /* "val" for the dataset's split, else NULL */
    const char *csv, *root;      /* the label file evaluated instead */
    int tta;                     /* TTA on */
    int views;                   /* views averaged (1 without TTA) */
    double loss;                 /* mean BCE, no pos_weight (NAN: left out) */
    double seconds;              /* evaluation time (< 0: left out) */
} lm_vreport_info;

/* The JSON document above (labels[k]), plus, when info is non-NULL:
 *   "checkpoint": {"name", "file", "epoch"},
 *   "source": {"kind": "split", "split": "val"} or
 *             {"kind": "csv", "csv": FILE, "root": DIR},
 *   "tta": bool, "views": V, "loss_unweighted": x (mean BCE without
 *   pos_weight), "seconds": s.
 * NULL on OOM; cJSON_Delete it. */
cJSON *lm_vreport_json(const lm_vreport *r, const char *const *labels,
                       const lm_vreport_info *info);

/* The report as a readable table (malloc'ed, lines ending in '\n'; NULL on
 * OOM): one block at 0.5 and one at the chosen thresholds (label, support,
 * threshold, precision, recall, F1, AP, tp, fp, fn, tn, then the macro mean
 * and micro rows), then the in-sample tuned and the cross-fitted F1. */
char *lm_vreport_text(const lm_vreport *r, const char *const *labels);

/* Calls emit(user, key, value, main) for every metric key above, key =
 * prefix + name.  Keys longer than 255 bytes are cut. */
void lm_vreport_metrics(const lm_vreport *r, const char *const *labels, const char *prefix,
                        void (*emit)(void *user, const char *key, double value, int main),
                        void *user);

#endif /* LM_VALREPORT_H */
