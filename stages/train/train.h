/*
 * train.h -- internals shared by the files of the train plugin
 * (stages/train/): the stage descriptor, the parameter reader and the
 * training run.
 *
 *   train_params.c  the declared parameters, train_cfg_read (params ->
 *                   train_cfg, with --smoke applied and every cross-field
 *                   rule checked), train_check
 *   train.c         train_run: data, model, engine, loader, the epoch loop,
 *                   validation (evaluate.h), metrics, early stopping
 *   state.c         files in the "model" output folder: best/last
 *                   checkpoints, history.json and the resumable
 *                   state.safetensors
 *   stage.c         the descriptor; plugin.c exports it
 *
 * Stage "train": inputs "dataset", "stats", "policy?"; output "model";
 * not cacheable (a run's training is its own; `--resume` continues it).
 */
#ifndef TRAIN_H
#define TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <lumen/plugin.h>

#include "nn_engine.h"
#include "nn_model.h"
#include "schedule.h"

#define TRAIN_MAX_CLASSES 64

/* Files in the "model" output folder. */
#define TRAIN_BEST_FILE "best.safetensors"
#define TRAIN_LAST_FILE "last.safetensors"
#define TRAIN_STATE_FILE "state.safetensors"
#define TRAIN_HISTORY_FILE "history.json"

/* Fault-injection hook for tests (documented in README, "Training"): when
 * this environment variable holds N >= 1, the stage process kills itself
 * with SIGKILL right after the state of epoch N was written, as a crash
 * would.  Unset in normal use. */
#define TRAIN_FAULT_ENV "LUMEN_TRAIN_KILL_AFTER_EPOCH"

/* Smoke runs (--smoke): one epoch, batch at most this. */
#define TRAIN_SMOKE_BATCH 16

/* Everything the parameters say, checked and with --smoke applied. */
typedef struct train_cfg {
    nn_resnet_cfg model;   /* in_channels 0 = auto (the dataset's);
                            * num_classes is set from the dataset at run */
    int64_t epochs;
    int batch;
    nn_optim_cfg optim;    /* lr = the base rate; the schedule sets it per step */
    lm_sched_cfg sched;    /* steps_per_epoch is set at run */
    lm_early_cfg early;    /* metric and goal shared with plateau and best */
    int pos_weight_auto;
    double pos_weight[TRAIN_MAX_CLASSES];
    int n_pos_weight;      /* 1 (applies to every class) or K */
    float label_smoothing;
    float focal_gamma;     /* loss.kind = focal: loss.gamma; bce: 0 */
    double mixup;          /* mixup alpha; 0 = off (mixup.h) */
    double clip_grad_norm; /* 0 = off */
    double ema;            /* weight-average decay per step; 0 = off */
    double ema_warmup;     /* W in min(ema, (1 + n) / (W + n)); >= 1 */
    const char *init;      /* host-owned path; NULL = train from scratch */
    int reset_head;
    int64_t max_nonfinite;
    const char *backend;   /* "auto", "cpu", "cuda", "ref" */
    int gpu;               /* cuda: device index */
    const char *precision; /* cuda: "fp32", "tf32", "bf16" (host-owned) */
    int deterministic;     /* cuda: deterministic algorithms only */
    int drop_last;
    int eval_tta;
    int winograd;          /* conv = "winograd": engine train_conv auto */
    int loader_threads;    /* >= 1 */
    uint64_t seed;
    int smoke;
} train_cfg;

extern const lumen_param train_params[];
extern const lumen_stage train_stage;

/* Reads and checks every parameter into *cfg.  On a problem returns
 * host->fail(ctx, LUMEN_EINVAL, "<key>: why"). */
int train_cfg_read(lumen_ctx *ctx, const lumen_host *host, train_cfg *cfg);

/* lumen_stage.check: train_cfg_read and nothing else. */
int train_check(lumen_ctx *ctx, const lumen_host *host);

/* lumen_stage.run. */
int train_run(lumen_ctx *ctx, const lumen_host *host);

/* Non-zero when `name` is a metric the stage reports per epoch for a
 * dataset with the given labels (labels may be NULL: then any
 * val/f1_<x>, val/ap_<x> is accepted). */
int train_metric_known(const char *name, const char *const *labels, size_t nlabels);

/* ---- state.c ------------------------------------------------------------ */

/* What a state file holds besides the tensors (the "state" JSON). */
typedef struct train_progress {
    int64_t epochs_done;   /* epochs completed (the next one is this, 0-based) */
    int64_t optim_step;    /* optimizer updates (the engine's step count) */
    int64_t train_steps;   /* engine train_step calls (dropout stream) */
    int64_t skipped;       /* skipped non-finite steps, all epochs */
    int64_t nonfinite_run; /* consecutive non-finite steps at the end */
    int64_t images;        /* training images seen */
    double train_seconds;  /* wall time of the epochs so far */
    int stopped;           /* early stopping ended training */
    int64_t ema_updates;   /* updates folded into the weight average */
    lm_sched_state sched;
    lm_early_state early;
    cJSON *history;        /* array of per-epoch metric objects (owned) */
} train_progress;

/* Identity of a training run a state file must match to be resumed. */
typedef struct train_fingerprint {
    const char *model_json; /* nn_resnet_cfg_to_json */
    uint64_t seed;
    int64_t batch, batches_per_epoch, epochs;
    const char *optimizer;  /* "sgd" / "adam" / "adamw" */
    double ema;             /* weight-average decay, 0 = off */
    double ema_warmup;      /* stored only when not 10 (older states stay resumable) */
} train_fingerprint;

/* The weight average's decay after n updates: min(ema, (1 + n) / (W + n)),
 * W = train_cfg.ema_warmup. */
static inline double train_ema_decay(double ema, double warmup, int64_t n) {
    double w = (1.0 + (double)n) / (warmup + (double)n);
    return ema < w ? ema : w;
}

/* The weight average (train_cfg.ema > 0): params and BN buffers, canonical
 * layout (m->nparams / m->nbuffers floats), owned by the trainer. */
typedef struct train_ema {
    float *params, *buffers;
} train_ema;

/* Writes state.safetensors atomically: model params/buffers/counters under
 * their torch names, optimizer moments as optim.<param>.momentum_buffer
 * (SGD) or .exp_avg / .exp_avg_sq (Adam, AdamW), the weight average as
 * ema.<tensor> when ema is non-NULL, and the "state" JSON (progress,
 * fingerprint, pos_weight, the data order's recipe).  Returns 0 or LUMEN_E*
 * with a message. */
int train_state_save(const char *path, const nn_model *m, nn_engine *e, const train_progress *p,
                     const train_fingerprint *fp, const float *pos_weight, const train_ema *ema,
                     lm_err *err);

/* Reads a state file written by train_state_save into the engine (params,
 * buffers, counters, optimizer moments and step, train steps), *ema (when
 * non-NULL) and *p (p->history owned by the caller afterwards).
 * LUMEN_EDATA when the file does not match fp (naming what differs) or is
 * malformed, plus the errors of the checkpoint reader. */
int train_state_load(const char *path, const nn_model *m, nn_engine *e, train_progress *p,
                     const train_fingerprint *fp, train_ema *ema, lm_err *err);

/* Metadata every checkpoint of this run carries. */
typedef struct train_ckpt_info {
    const char *model_json, *labels_json, *stats_json, *input_json;
    const char *const *extra; /* key, value, ..., NULL */
} train_ckpt_info;

/* Saves the engine's current model to path as a lumen checkpoint with
 * info's metadata plus the epoch, its metrics (JSON object text) and the
 * thresholds (K values). */
int train_ckpt_save(const char *path, const nn_model *m, nn_engine *e, const train_ckpt_info *info,
                    int64_t epoch, const char *metrics_json, const float *thresholds, int k, lm_err *err);

#endif /* TRAIN_H */
