/*
 * schedule.h -- learning-rate schedules and early stopping for the trainer.
 *
 * Pure logic, no I/O: the train stage fills an lm_sched_cfg from its
 * parameters, keeps an lm_sched_state, asks lm_sched_lr() for the rate of
 * every optimiser step and calls lm_sched_epoch_end() after each validation.
 * The state serialises to JSON for resumable checkpoints.  Semantics follow
 * PyTorch's schedulers (tests/torch/make_schedule_fixture.py writes the
 * reference values tests/unit/test_schedule.c checks to 1e-9):
 *
 *   constant   lr
 *   step       lr * gamma^floor(epoch / step_size)                    (StepLR)
 *   multistep  lr * gamma^(number of milestones <= epoch)        (MultiStepLR)
 *   cosine     per optimiser step t = epoch * steps_per_epoch + step,
 *              T = epochs * steps_per_epoch, W = round(warmup * steps_per_epoch):
 *                t <  W: lr * (f + (1 - f) * t / W),  f = warmup_start_factor
 *                t >= W: min_lr + (lr - min_lr) * (1 + cos(pi (t-W)/(T-W))) / 2
 *                t >= T: min_lr
 *              (SequentialLR(LinearLR, CosineAnnealingLR), stepped per step)
 *   plateau    ReduceLROnPlateau, threshold_mode "rel": after each epoch with
 *              metric m, m improves on best when (min) m < best * (1 - threshold)
 *              or (max) m > best * (1 + threshold); after more than `patience`
 *              epochs without improvement lr = max(lr * factor, min_lr)
 *              (skipped when the change is <= 1e-8), then `cooldown` epochs
 *              in which bad epochs are not counted.  The first finite metric
 *              always improves; NaN never does.
 *
 * Early stopping (lm_early_*): `value` improves when (max) value > best +
 * min_delta or (min) value < best - min_delta (the first finite value always
 * does); training stops once `patience` consecutive epochs brought no
 * improvement.  patience 0 disables stopping (improvement is still tracked, so
 * the trainer can keep its best checkpoint).
 *
 * Threading: every function works on caller-owned structs; no globals.
 */
#ifndef LM_SCHEDULE_H
#define LM_SCHEDULE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lm_util.h"

#define LM_SCHED_MAX_MILESTONES 32

enum lm_sched_kind {
    LM_SCHED_CONSTANT = 0,
    LM_SCHED_STEP,
    LM_SCHED_MULTISTEP,
    LM_SCHED_COSINE,
    LM_SCHED_PLATEAU,
};

typedef struct lm_sched_cfg {
    int kind;                /* enum lm_sched_kind */
    double lr;               /* base learning rate, > 0 */
    int64_t epochs;          /* cosine: length in epochs, >= 1 */
    int64_t steps_per_epoch; /* cosine: optimiser steps per epoch, >= 1 */
    /* step, multistep */
    int64_t step_size; /* step: epochs between decays, >= 1 */
    double gamma;      /* decay factor, (0, 1] */
    int64_t milestones[LM_SCHED_MAX_MILESTONES]; /* multistep, ascending */
    int n_milestones;
    /* cosine */
    double warmup;              /* epochs of linear warmup, >= 0, may be fractional */
    double warmup_start_factor; /* (0, 1]: lr at step 0 is lr * factor */
    double min_lr;              /* cosine floor and plateau floor, [0, lr] */
    /* plateau */
    int mode_max;      /* 1: a larger metric is better ("max"), 0: "min" */
    double factor;     /* (0, 1) */
    int64_t patience;  /* >= 0 */
    double threshold;  /* >= 0, relative */
    int64_t cooldown;  /* >= 0 */
} lm_sched_cfg;

/* Serializable progress of a schedule (only plateau has real state; the
 * others are pure functions of epoch and step). */
typedef struct lm_sched_state {
    double lr;                /* plateau: current rate */
    int has_best;             /* plateau: a metric was seen */
    double best;              /* plateau: best metric so far */
    int64_t num_bad_epochs;   /* plateau */
    int64_t cooldown_counter; /* plateau */
    int64_t epochs_seen;      /* calls to lm_sched_epoch_end */
} lm_sched_state;

/* PyTorch's defaults: constant, lr 1e-3, epochs 1, steps_per_epoch 1,
 * step_size 1, gamma 0.1, no milestones, warmup 0, warmup_start_factor 1/3,
 * min_lr 0, mode min, factor 0.1, patience 10, threshold 1e-4, cooldown 0. */
void lm_sched_cfg_default(lm_sched_cfg *cfg);
/* Parses "constant|step|multistep|cosine|plateau"; -1 when unknown. */
int lm_sched_kind_from_name(const char *name);
const char *lm_sched_kind_name(int kind);
/* Validates every field the kind uses.  LUMEN_EINVAL with a message naming
 * the key, e.g. "schedule.gamma: must be in (0, 1], got 1.5". */
int lm_sched_cfg_check(const lm_sched_cfg *cfg, lm_err *err);
/* Fresh state for cfg (lr = cfg->lr). */
void lm_sched_init(const lm_sched_cfg *cfg, lm_sched_state *st);
/* Learning rate for optimiser step `step` (0-based, within the epoch) of
 * epoch `epoch` (0-based). */
double lm_sched_lr(const lm_sched_cfg *cfg, const lm_sched_state *st,
                   int64_t epoch, int64_t step);
/* End of an epoch with its validation metric (only plateau reads it; pass
 * NAN when there is none).  Returns 1 when the rate was reduced, else 0. */
int lm_sched_epoch_end(const lm_sched_cfg *cfg, lm_sched_state *st,
                       double metric);

/* JSON for checkpoints: {"version":1,"lr":..,"has_best":..,"best":..,
 * "num_bad_epochs":..,"cooldown_counter":..,"epochs_seen":..}.  Returns a new
 * object the caller frees with cJSON_Delete, NULL when out of memory. */
cJSON *lm_sched_state_to_json(const lm_sched_state *st);
/* Reads what lm_sched_state_to_json wrote.  LUMEN_EDATA naming the key when a
 * key is missing or has the wrong type, LUMEN_EABI for another version.  *st
 * is only written on success. */
int lm_sched_state_from_json(const cJSON *json, lm_sched_state *st,
                             lm_err *err);

/* ---- early stopping --------------------------------------------------- */

typedef struct lm_early_cfg {
    char metric[64];  /* e.g. "val/f1_mean"; informational for the trainer */
    int goal_max;     /* 1: larger is better */
    int64_t patience; /* epochs without improvement before stopping; 0 = never */
    double min_delta; /* >= 0, absolute */
} lm_early_cfg;

typedef struct lm_early_state {
    int has_best;
    double best;
    int64_t best_epoch; /* epoch of `best`, -1 before any */
    int64_t wait;       /* consecutive epochs without improvement */
    int stopped;        /* set once wait reached patience */
} lm_early_state;

#define LM_EARLY_IMPROVED 0x1 /* this epoch is the new best */
#define LM_EARLY_STOP 0x2     /* stop training after this epoch */

int lm_early_cfg_check(const lm_early_cfg *cfg, lm_err *err);
void lm_early_init(lm_early_state *st);
/* Feeds the metric of `epoch`; returns LM_EARLY_* flags. */
int lm_early_update(const lm_early_cfg *cfg, lm_early_state *st, int64_t epoch,
                    double value);
/* JSON as for the schedule state; same ownership and errors. */
cJSON *lm_early_state_to_json(const lm_early_state *st);
int lm_early_state_from_json(const cJSON *json, lm_early_state *st,
                             lm_err *err);

#endif /* LM_SCHEDULE_H */
