/*
 * evaluate.h -- eval-mode inference of a trained engine over a dataset split
 * (or any source of u8 CHW images): probabilities, targets and the loss.
 *
 * Shared by the train stage (per-epoch validation), the validate stage and
 * `runner predict` / `runner eval`.
 *
 *   lm_eval_cfg cfg;
 *   lm_eval_cfg_default(&cfg);
 *   cfg.mean = stats_mean; cfg.std = stats_std; cfg.batch = 32;
 *   cfg.pos_weight = pw;                      // as in training
 *   lm_eval_result r;
 *   if (lm_eval_split(engine, ds, LM_SPLIT_VAL, &cfg, &r, &err)) ...;
 *   lm_metrics_compute(r.probs, r.targets, r.n, r.k, NULL, &m, &err);
 *   lm_eval_result_free(&r);
 *
 * What it does, per batch: the loader (batch_loader.h, evaluation mode: no
 * shuffle, no augmentation, the final partial batch kept) decodes and
 * normalizes (x/255 - mean[c]) / std[c] on background threads;
 * nn_engine_predict gives eval-mode logits (BN running statistics, no
 * dropout); the sigmoid gives probabilities.  Samples come out in the order
 * of the source: for a dataset split, ascending record index.
 *
 * Test-time augmentation (cfg.tta): the probabilities are the mean over the
 * dihedral views of each image (nn_aug_dihedral_f32 of kernels/cpu/cpu_augment.h
 * applied to the normalized tensor -- an exact gather, so identical to
 * augmenting the u8 image with nn_aug_dihedral and normalizing): all 8
 * elements of D4 for square images, the 4 that keep the shape (identity,
 * rot180, hflip, vflip) for rectangular ones.  The views are averaged in
 * double precision in view order.
 *
 * Loss: binary cross-entropy with the training formula (nn_engine.h:
 * BCEWithLogitsLoss with pos_weight, label smoothing t = y (1 - s) + s / 2),
 *   l = pw_k t softplus(-x) + (1 - t) softplus(x)
 * per element, so "val/loss" is comparable with "train/loss".  Without TTA x
 * is the logit; with TTA the loss is that of the averaged probability p
 * (-pw t log p - (1 - t) log(1 - p)), computed stably with log-sum-exp over
 * the views' log-sigmoids.  r.loss[i] is sample i's mean over its K classes;
 * r.mean_loss the mean over all n K elements (= the mean of r.loss).
 * Accumulation is in double, in sample order: the result is deterministic.
 *
 * Errors: 0 or LUMEN_E* with a message (lm_util.h): LUMEN_EINVAL (bad cfg,
 * shape mismatch between source and engine), LUMEN_ENOMEM, LUMEN_ECANCELED
 * (cfg.cancelled said so; nothing is returned), errors of the loader
 * (LUMEN_EDATA naming a bad record) and of the engine.
 *
 * Threading: one call uses the engine from the calling thread (engines are
 * single-user) plus cfg.threads loader workers it starts and joins before
 * returning.  No global state.
 *
 * Linking: this file calls the engine (nn_engine_predict), so a program
 * using it links libcommon, then libengine, then libbase.
 */
#ifndef LM_EVALUATE_H
#define LM_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "lm_util.h"
#include "batch_loader.h"
#include "nn_engine.h"

typedef struct lm_eval_cfg {
    const float *mean;       /* [channels] normalization (tone units); NULL = 0 */
    const float *std;        /* [channels] > 0; NULL = 1 */
    int batch;               /* samples per predict call, 1 .. the engine's batch */
    int threads;             /* loader worker threads; <= 0 = 1 */
    int tta;                 /* non-zero: average over the dihedral views */
    const float *pos_weight; /* [K] loss weight of positives; NULL = 1 */
    float label_smoothing;   /* as in training; 0 = off */
    float focal_gamma;       /* as in training (nn_ref_focal_*); 0 = BCE */
    /* Optional: polled between batches; non-zero stops with
     * LUMEN_ECANCELED. */
    int (*cancelled)(void *user);
    /* Optional: called after every batch with samples done / total. */
    void (*progress)(void *user, int64_t done, int64_t total);
    void *user;
} lm_eval_cfg;

/* Zero everything, batch 32, threads 1. */
void lm_eval_cfg_default(lm_eval_cfg *cfg);

/* What an evaluation produced.  Every array is malloc'ed and owned by the
 * result; free with lm_eval_result_free. */
typedef struct lm_eval_result {
    int64_t n;          /* samples */
    int k;              /* classes (labels) */
    float *probs;       /* [n, k] probabilities (TTA: mean over the views) */
    float *targets;     /* [n, k] labels as stored (0/1 or soft) */
    float *loss;        /* [n] per-sample loss, mean over the k classes */
    uint32_t *index;    /* [n] record index in the dataset (or the source's
                         * index for lm_eval_source) */
    char **names;       /* [n] record names (lm_eval_split only; else NULL) */
    double mean_loss;   /* mean over the n k elements; NAN when n == 0 */
    int views;          /* 1, or the number of TTA views averaged */
    double seconds;     /* wall time of the evaluation */
    double wait_s;      /* of which waiting for the loader */
} lm_eval_result;

/* Evaluates split `split` (LM_SPLIT_TRAIN / LM_SPLIT_VAL) of the open
 * dataset ds with engine e (built for the dataset's channels, height and
 * width; the number of classes must equal the dataset's labels).  *out is
 * filled on success (n may be 0 for an empty split) and zeroed on failure. */
int lm_eval_split(nn_engine *e, const lm_dataset *ds, int split,
                  const lm_eval_cfg *cfg, lm_eval_result *out, lm_err *err);

/* Same over any source of u8 CHW images (batch_loader.h); out->names is NULL and
 * out->index holds src->indices in order. */
int lm_eval_source(nn_engine *e, const lm_loader_source *src,
                   const lm_eval_cfg *cfg, lm_eval_result *out, lm_err *err);

/* The dihedral elements TTA uses for an h x w image: writes them to
 * views[8] and returns their count (8 when h == w, else 4). */
int lm_eval_tta_views(int h, int w, int views[8]);

/* The training loss of one element: pw t softplus(-x) + (1 - t)
 * softplus(x) with t = y (1 - s) + s / 2 (double precision). */
double lm_eval_bce_logit(double x, double y, double pw, double s);
/* The same with the focal factors of exponent g: pw t (1 - p)^g softplus(-x)
 * + (1 - t) p^g softplus(x), p = sigmoid(x); g = 0 is lm_eval_bce_logit. */
double lm_eval_focal_logit(double x, double y, double pw, double s, double g);

/* Frees every array and zeroes *r; NULL and a zeroed result are fine. */
void lm_eval_result_free(lm_eval_result *r);

#endif /* LM_EVALUATE_H */
