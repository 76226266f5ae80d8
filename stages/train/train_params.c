/*
 * train_params.c -- the train stage's declared parameters and their reading into
 * a train_cfg (see train.h).
 *
 * The names follow the experiment language: `model = lumen.resnet{...}`
 * flattens to model.kind / model.blocks / ..., `optimizer = lumen.adamw{...}`
 * to optimizer.kind / optimizer.lr / ..., `schedule = lumen.cosine{...}` to
 * schedule.kind / schedule.warmup / ..., `loss = lumen.bce{...}` to
 * loss.kind / loss.pos_weight / ...
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lm_util.h"
#include "train.h"

/* clang-format off */
const lumen_param train_params[] = {
    /* model */
    {"model.kind", LUMEN_ENUM, "resnet", 0, 0, "resnet", 0,
     "architecture: torchvision-style ResNet of BasicBlocks (lumen.resnet{...})"},
    {"model.blocks", LUMEN_INTS, "{1,1,1,1}", 1, 64, NULL, 0,
     "BasicBlocks per stage ({2,2,2,2} = ResNet-18)"},
    {"model.widths", LUMEN_INTS, "{64,128,256,512}", 1, 8192, NULL, 0,
     "channels per stage, one per entry of model.blocks"},
    {"model.stem", LUMEN_ENUM, "7x7", 0, 0, "7x7|3x3|7x7-nopool", 0,
     "first layer: 7x7/2 conv + 3x3/2 max pool (ImageNet style), 7x7/2 conv without the pool (twice "
     "the feature map), or 3x3/1 conv, no pool (small images)"},
    {"model.stem_width", LUMEN_INT, "64", 1, 8192, NULL, 0, "filters of the first conv"},
    {"model.dropout", LUMEN_NUM, "0", 0, 0.99, NULL, 0, "dropout probability before the classifier"},
    {"model.pool", LUMEN_ENUM, "avg", 0, 0, "avg|max|avgmax", 0,
     "global pool before the classifier: average (torchvision's), maximum (a small defect is not "
     "averaged away), or the mean of the two"},
    {"model.in_channels", LUMEN_INT, "auto", 1, 16, NULL, LUMEN_PF_AUTO,
     "input channels; auto = the dataset's (must match it)"},
    /* length of training */
    {"epochs", LUMEN_INT, "30", 1, 100000, NULL, 0, "passes over the training split (--smoke: 1)"},
    {"batch", LUMEN_INT, "32", 1, 4096, NULL, 0, "images per step (--smoke: at most 16)"},
    {"drop_last", LUMEN_BOOL, "true", 0, 0, NULL, 0,
     "drop the final partial batch of each epoch (steady BN statistics)"},
    /* optimizer */
    {"optimizer.kind", LUMEN_ENUM, "adamw", 0, 0, "sgd|adam|adamw", 0,
     "optimizer, PyTorch semantics (lumen.sgd / lumen.adam / lumen.adamw)"},
    {"optimizer.lr", LUMEN_NUM, "0.001", 0, 1e30, NULL, 0,
     "base learning rate (the schedule scales it); must be > 0"},
    {"optimizer.weight_decay", LUMEN_NUM, "auto", 0, 1, NULL, LUMEN_PF_AUTO,
     "weight decay (L2 for sgd/adam, decoupled for adamw); auto = PyTorch's default: 0.01 for adamw, else 0"},
    {"optimizer.momentum", LUMEN_NUM, "0.9", 0, 1, NULL, 0, "sgd: momentum (0 = plain SGD)"},
    {"optimizer.dampening", LUMEN_NUM, "0", 0, 1, NULL, 0, "sgd: dampening of the momentum"},
    {"optimizer.nesterov", LUMEN_BOOL, "false", 0, 0, NULL, 0,
     "sgd: Nesterov momentum (needs momentum > 0 and dampening 0)"},
    {"optimizer.beta1", LUMEN_NUM, "0.9", 0, 0.999999, NULL, 0, "adam/adamw: first-moment decay"},
    {"optimizer.beta2", LUMEN_NUM, "0.999", 0, 0.99999999, NULL, 0, "adam/adamw: second-moment decay"},
    {"optimizer.eps", LUMEN_NUM, "1e-08", 1e-12, 1, NULL, 0, "adam/adamw: denominator epsilon"},
    /* schedule */
    {"schedule.kind", LUMEN_ENUM, "cosine", 0, 0, "constant|step|multistep|cosine|plateau", 0,
     "learning-rate schedule (lumen.constant / step / multistep / cosine / plateau)"},
    {"schedule.warmup", LUMEN_NUM, "0", 0, 1000, NULL, 0,
     "cosine: epochs of linear warmup (fractions allowed), < epochs"},
    {"schedule.warmup_start_factor", LUMEN_NUM, "0.1", 1e-6, 1, NULL, 0,
     "cosine: the warmup starts at lr * this"},
    {"schedule.min_lr", LUMEN_NUM, "0", 0, 10, NULL, 0, "cosine: final rate; plateau: lowest rate"},
    {"schedule.step_size", LUMEN_INT, "10", 1, 100000, NULL, 0, "step: epochs between decays"},
    {"schedule.gamma", LUMEN_NUM, "0.1", 1e-6, 1, NULL, 0, "step, multistep: decay factor"},
    {"schedule.milestones", LUMEN_INTS, "{}", 1, 100000, NULL, 0,
     "multistep: epochs (ascending) after which the rate is multiplied by gamma"},
    {"schedule.factor", LUMEN_NUM, "0.1", 1e-6, 0.999999, NULL, 0, "plateau: rate multiplier on a plateau"},
    {"schedule.patience", LUMEN_INT, "10", 0, 100000, NULL, 0,
     "plateau: epochs without improvement of `metric` before reducing"},
    {"schedule.threshold", LUMEN_NUM, "0.0001", 0, 1, NULL, 0, "plateau: relative improvement that counts"},
    {"schedule.cooldown", LUMEN_INT, "0", 0, 100000, NULL, 0, "plateau: epochs to wait after a reduction"},
    /* loss */
    {"loss.kind", LUMEN_ENUM, "bce", 0, 0, "bce|focal", 0,
     "loss: binary cross-entropy on the logits, one sigmoid per label (lumen.bce), or its focal "
     "form (lumen.focal: each term scaled by (1 - p_true)^gamma, Lin et al. 2017)"},
    {"loss.gamma", LUMEN_NUM, "2", 0, 10, NULL, 0, "focal: the exponent gamma (0 = the BCE); bce ignores it"},
    {"loss.pos_weight", LUMEN_NUMS, "auto", 0, 1e6, NULL, LUMEN_PF_AUTO,
     "weight of positives per label ({w} for all, or one per label); auto = negatives/positives "
     "per label over the training split"},
    {"loss.label_smoothing", LUMEN_NUM, "0", 0, 1, NULL, 0, "targets y (1 - s) + s / 2"},
    /* regularity */
    {"mixup", LUMEN_NUM, "0", 0, 10, NULL, 0,
     "mixup alpha: each batch is mixed with a permutation of itself, inputs and targets, by one "
     "lam ~ Beta(alpha, alpha) per batch (0.2-0.4 typical; 0 = off)"},
    {"clip_grad_norm", LUMEN_NUM, "0", 0, 1e6, NULL, 0,
     "clip the global gradient L2 norm to this (0 = off)"},
    {"ema", LUMEN_NUM, "0", 0, 0.99999, NULL, 0,
     "keep an exponential moving average of the weights and BN statistics with this decay per step "
     "(warmed up as min(ema, (1 + n) / (ema_warmup + n)) after n updates); validation and best/last "
     "checkpoints use it (0 = off)"},
    {"ema_warmup", LUMEN_NUM, "10", 1, 1e6, NULL, 0,
     "W in the weight average's warm-up min(ema, (1 + n) / (W + n)): the default 10 reaches a decay of "
     "0.99 after ~900 steps but 0.998 only after ~4,500; 2 reaches 0.998 after ~500; 1 = no warm-up "
     "(the decay is ema from the second step); unused when ema = 0"},
    {"max_nonfinite", LUMEN_INT, "20", 1, 1000000, NULL, 0,
     "consecutive steps with a non-finite loss or gradient (skipped) before training is aborted"},
    /* model selection */
    {"metric", LUMEN_STR, "val/f1_mean", 0, 0, NULL, 0,
     "metric choosing best.safetensors, early stopping and the plateau schedule: val/f1_mean, "
     "val/f1_mean_tuned, val/f1_micro, val/ap_mean, val/loss, val/f1_<label>, val/ap_<label>, train/loss"},
    {"goal", LUMEN_ENUM, "auto", 0, 0, "auto|max|min", 0,
     "whether a larger metric is better; auto = min for losses, else max"},
    {"early_stop.patience", LUMEN_INT, "0", 0, 100000, NULL, 0,
     "stop after this many epochs without improvement of `metric` (0 = never)"},
    {"early_stop.min_delta", LUMEN_NUM, "0", 0, 1e6, NULL, 0, "smallest change that counts as improvement"},
    /* initialization */
    {"init", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "safetensors file with torch names (a lumen checkpoint or a converted torchvision one) to start from"},
    {"reset_head", LUMEN_BOOL, "false", 0, 0, NULL, 0,
     "with init: keep the freshly initialized classifier (fc) instead of loading it"},
    {"seed", LUMEN_INT, "auto", 0, 0, NULL, LUMEN_PF_AUTO,
     "seed of the initialization, data order, augmentation and dropout; auto = the experiment's seed"},
    /* execution */
    {"backend", LUMEN_ENUM, "auto", 0, 0, "auto|cpu|cuda|ref", 0,
     "engine backend: auto (cuda when built and a GPU is usable, else cpu; the log says which and why), "
     "cpu (oneDNN), cuda (cuDNN + cuBLAS on one GPU; an error when none is usable), ref (slow "
     "double-precision reference)"},
    {"gpu", LUMEN_INT, "0", 0, 1024, NULL, 0, "cuda backend: the GPU's index"},
    {"precision", LUMEN_ENUM, "tf32", 0, 0, "fp32|tf32|bf16", 0,
     "cuda backend: tf32 (float storage, TF32 tensor cores in convolutions and matmuls), fp32 "
     "(no TF32), bf16 (convolutions in bf16 with fp32 accumulation; fp32 master weights)"},
    {"deterministic", LUMEN_BOOL, "false", 0, 0, NULL, 0,
     "cuda backend: only deterministic cuDNN algorithms (the same run gives bitwise the same losses; "
     "may be slower)"},
    {"conv", LUMEN_ENUM, "direct", 0, 0, "direct|winograd", 0,
     "cpu backend, training: 3x3 stride-1 convolutions forward and backward-data as oneDNN direct "
     "convolutions, or as Winograd F(4x4,3x3)/F(2x2,3x3) (faster; float rounding differs slightly)"},
    {"loader_threads", LUMEN_INT, "auto", 1, 64, NULL, LUMEN_PF_AUTO,
     "background threads decoding and augmenting batches; auto = 1 (the engine uses the cores)"},
    {"eval_tta", LUMEN_BOOL, "false", 0, 0, NULL, 0,
     "per-epoch validation averages the 8 flips/rotations of each image (8x slower)"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
/* clang-format on */

static const char *const FIXED_METRICS[] = {
    "val/loss", "val/f1_mean", "val/f1_mean_tuned", "val/f1_micro", "val/ap_mean", "val/exact_match",
    "train/loss", NULL,
};

int train_metric_known(const char *name, const char *const *labels, size_t nlabels) {
    for (size_t i = 0; FIXED_METRICS[i]; i++)
        if (strcmp(name, FIXED_METRICS[i]) == 0) return 1;
    const char *rest = NULL;
    if (strncmp(name, "val/f1_", 7) == 0) rest = name + 7;
    else if (strncmp(name, "val/ap_", 7) == 0) rest = name + 7;
    if (!rest || !*rest) return 0;
    if (!labels) return 1;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(rest, labels[i]) == 0) return 1;
    return 0;
}

static int fail(lumen_ctx *ctx, const lumen_host *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(lumen_ctx *ctx, const lumen_host *h, const char *fmt, ...) {
    char msg[LM_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return h->fail(ctx, LUMEN_EINVAL, "%s", msg);
}

static int read_model(lumen_ctx *ctx, const lumen_host *h, train_cfg *c) {
    nn_resnet_cfg *m = &c->model;
    nn_resnet_cfg_default(m);
    int64_t blocks[NN_MAX_STAGES + 1], widths[NN_MAX_STAGES + 1];
    size_t nb = h->get_ints(ctx, "model.blocks", blocks, NN_MAX_STAGES + 1);
    size_t nw = h->get_ints(ctx, "model.widths", widths, NN_MAX_STAGES + 1);
    if (nb < 1 || nb > NN_MAX_STAGES)
        return fail(ctx, h, "model.blocks: needs 1..%d stages, got %zu", NN_MAX_STAGES, nb);
    if (nw != nb)
        return fail(ctx, h, "model.widths: needs as many entries as model.blocks (%zu), got %zu", nb, nw);
    m->nstages = (int)nb;
    for (size_t i = 0; i < nb; i++) {
        m->blocks[i] = (int)blocks[i];
        m->widths[i] = (int)widths[i];
    }
    const char *stem = h->get_str(ctx, "model.stem");
    m->stem = NN_STEM_7X7;
    lm_err se = {0}; /* the host checked the enum; the model's own parser maps it */
    if (stem && nn_resnet_cfg_set(m, "stem", stem, &se)) return fail(ctx, h, "%s", se.msg);
    m->stem_width = (int)h->get_int(ctx, "model.stem_width");
    m->dropout = (float)h->get_num(ctx, "model.dropout");
    const char *pool = h->get_str(ctx, "model.pool");
    if (pool && nn_resnet_cfg_set(m, "pool", pool, &se)) return fail(ctx, h, "%s", se.msg);
    m->in_channels = h->is_auto(ctx, "model.in_channels") ? 0 : (int)h->get_int(ctx, "model.in_channels");
    /* validate with placeholders for what the dataset decides */
    nn_resnet_cfg probe = *m;
    if (probe.in_channels == 0) probe.in_channels = 1;
    probe.num_classes = 2;
    lm_err e = {0};
    if (nn_resnet_cfg_validate(&probe, &e)) return h->fail(ctx, LUMEN_EINVAL, "%s", e.msg);
    return 0;
}

static int read_optimizer(lumen_ctx *ctx, const lumen_host *h, train_cfg *c) {
    nn_optim_cfg *o = &c->optim;
    memset(o, 0, sizeof *o);
    const char *kind = h->get_str(ctx, "optimizer.kind");
    o->kind = !kind || strcmp(kind, "adamw") == 0 ? NN_OPT_ADAMW
              : strcmp(kind, "adam") == 0         ? NN_OPT_ADAM
                                                  : NN_OPT_SGD;
    double lr = h->get_num(ctx, "optimizer.lr");
    if (!(lr > 0) || !isfinite(lr)) return fail(ctx, h, "optimizer.lr: must be > 0, got %g", lr);
    o->lr = (float)lr;
    o->weight_decay = h->is_auto(ctx, "optimizer.weight_decay")
                          ? (o->kind == NN_OPT_ADAMW ? 0.01f : 0.0f)
                          : (float)h->get_num(ctx, "optimizer.weight_decay");
    o->momentum = (float)h->get_num(ctx, "optimizer.momentum");
    o->dampening = (float)h->get_num(ctx, "optimizer.dampening");
    o->nesterov = h->get_bool(ctx, "optimizer.nesterov");
    o->beta1 = (float)h->get_num(ctx, "optimizer.beta1");
    o->beta2 = (float)h->get_num(ctx, "optimizer.beta2");
    o->eps = (float)h->get_num(ctx, "optimizer.eps");
    if (o->nesterov && o->kind != NN_OPT_SGD)
        return fail(ctx, h, "optimizer.nesterov: only the sgd optimizer has Nesterov momentum (kind is %s)",
                    kind);
    if (o->nesterov && !(o->momentum > 0))
        return fail(ctx, h, "optimizer.nesterov: needs optimizer.momentum > 0 (it is %g)", (double)o->momentum);
    if (o->nesterov && o->dampening != 0)
        return fail(ctx, h, "optimizer.nesterov: needs optimizer.dampening = 0 (it is %g)",
                    (double)o->dampening);
    return 0;
}

static int read_schedule(lumen_ctx *ctx, const lumen_host *h, train_cfg *c) {
    lm_sched_cfg *s = &c->sched;
    lm_sched_cfg_default(s);
    const char *kind = h->get_str(ctx, "schedule.kind");
    s->kind = lm_sched_kind_from_name(kind ? kind : "cosine");
    if (s->kind < 0) return fail(ctx, h, "schedule.kind: unknown schedule '%s'", kind);
    s->lr = h->get_num(ctx, "optimizer.lr"); /* double: the schedule's rates are exact */
    s->epochs = c->epochs;
    s->steps_per_epoch = 1; /* set from the data at run */
    s->step_size = h->get_int(ctx, "schedule.step_size");
    s->gamma = h->get_num(ctx, "schedule.gamma");
    int64_t ms[LM_SCHED_MAX_MILESTONES + 1];
    size_t nm = h->get_ints(ctx, "schedule.milestones", ms, LM_SCHED_MAX_MILESTONES + 1);
    if (nm > LM_SCHED_MAX_MILESTONES)
        return fail(ctx, h, "schedule.milestones: at most %d milestones, got %zu", LM_SCHED_MAX_MILESTONES, nm);
    for (size_t i = 0; i < nm; i++) {
        if (i > 0 && ms[i] <= ms[i - 1])
            return fail(ctx, h, "schedule.milestones: must be strictly increasing, but entry %zu (%lld) <= "
                                "entry %zu (%lld)",
                        i + 1, (long long)ms[i], i, (long long)ms[i - 1]);
        s->milestones[i] = ms[i];
    }
    s->n_milestones = (int)nm;
    if (s->kind == LM_SCHED_MULTISTEP && nm == 0)
        return fail(ctx, h, "schedule.milestones: the multistep schedule needs at least one milestone");
    s->warmup = h->get_num(ctx, "schedule.warmup");
    s->warmup_start_factor = h->get_num(ctx, "schedule.warmup_start_factor");
    s->min_lr = h->get_num(ctx, "schedule.min_lr");
    s->factor = h->get_num(ctx, "schedule.factor");
    s->patience = h->get_int(ctx, "schedule.patience");
    s->threshold = h->get_num(ctx, "schedule.threshold");
    s->cooldown = h->get_int(ctx, "schedule.cooldown");
    s->mode_max = c->early.goal_max;
    if (s->warmup > 0 && s->kind != LM_SCHED_COSINE)
        return fail(ctx, h, "schedule.warmup: only the cosine schedule has a warmup (kind is %s)", kind);
    if (c->smoke && s->warmup >= (double)s->epochs) s->warmup = 0; /* one smoke epoch: no warmup */
    if (s->kind == LM_SCHED_COSINE && s->warmup >= (double)s->epochs)
        return fail(ctx, h, "schedule.warmup: must be less than epochs (%lld), got %g", (long long)s->epochs,
                    s->warmup);
    if (s->min_lr > s->lr && (s->kind == LM_SCHED_COSINE || s->kind == LM_SCHED_PLATEAU))
        return fail(ctx, h, "schedule.min_lr: must not exceed optimizer.lr (%g), got %g", s->lr, s->min_lr);
    lm_err e = {0};
    if (lm_sched_cfg_check(s, &e)) return h->fail(ctx, LUMEN_EINVAL, "%s", e.msg);
    return 0;
}

static int read_loss(lumen_ctx *ctx, const lumen_host *h, train_cfg *c) {
    c->pos_weight_auto = h->is_auto(ctx, "loss.pos_weight");
    c->n_pos_weight = 0;
    if (!c->pos_weight_auto) {
        size_t n = h->get_nums(ctx, "loss.pos_weight", c->pos_weight, TRAIN_MAX_CLASSES);
        if (n < 1 || n > TRAIN_MAX_CLASSES)
            return fail(ctx, h, "loss.pos_weight: give one weight for every label or {w} for all (or \"auto\"), "
                                "got %zu values",
                        n);
        for (size_t i = 0; i < n; i++)
            if (!(c->pos_weight[i] > 0))
                return fail(ctx, h, "loss.pos_weight: weights must be > 0, entry %zu is %g", i + 1,
                            c->pos_weight[i]);
        c->n_pos_weight = (int)n;
    }
    c->label_smoothing = (float)h->get_num(ctx, "loss.label_smoothing");
    const char *lk = h->get_str(ctx, "loss.kind");
    c->focal_gamma = lk && strcmp(lk, "focal") == 0 ? (float)h->get_num(ctx, "loss.gamma") : 0.0f;
    c->mixup = h->get_num(ctx, "mixup");
    return 0;
}

static int read_selection(lumen_ctx *ctx, const lumen_host *h, train_cfg *c) {
    lm_early_cfg *e = &c->early;
    memset(e, 0, sizeof *e);
    const char *metric = h->get_str(ctx, "metric");
    if (!metric || !train_metric_known(metric, NULL, 0))
        return fail(ctx, h,
                    "metric: unknown metric '%s' (known: val/f1_mean, val/f1_mean_tuned, val/f1_micro, "
                    "val/ap_mean, val/loss, val/exact_match, val/f1_<label>, val/ap_<label>, train/loss)",
                    metric ? metric : "");
    if (strlen(metric) >= sizeof e->metric) return fail(ctx, h, "metric: name too long: '%s'", metric);
    snprintf(e->metric, sizeof e->metric, "%s", metric);
    const char *goal = h->get_str(ctx, "goal");
    if (!goal || strcmp(goal, "auto") == 0) {
        size_t n = strlen(metric);
        e->goal_max = !(n >= 4 && strcmp(metric + n - 4, "loss") == 0);
    } else {
        e->goal_max = strcmp(goal, "max") == 0;
    }
    e->patience = h->get_int(ctx, "early_stop.patience");
    e->min_delta = h->get_num(ctx, "early_stop.min_delta");
    lm_err err = {0};
    if (lm_early_cfg_check(e, &err)) return h->fail(ctx, LUMEN_EINVAL, "%s", err.msg);
    return 0;
}

int train_cfg_read(lumen_ctx *ctx, const lumen_host *h, train_cfg *c) {
    memset(c, 0, sizeof *c);
    c->smoke = h->smoke(ctx);
    c->epochs = h->get_int(ctx, "epochs");
    c->batch = (int)h->get_int(ctx, "batch");
    if (c->smoke) {
        c->epochs = 1;
        if (c->batch > TRAIN_SMOKE_BATCH) c->batch = TRAIN_SMOKE_BATCH;
    }
    c->drop_last = h->get_bool(ctx, "drop_last");
    int rc;
    const char *mk = h->get_str(ctx, "model.kind"), *lk = h->get_str(ctx, "loss.kind");
    if (mk && strcmp(mk, "resnet") != 0) return fail(ctx, h, "model.kind: unknown model '%s'", mk);
    if (lk && strcmp(lk, "bce") != 0 && strcmp(lk, "focal") != 0)
        return fail(ctx, h, "loss.kind: unknown loss '%s'", lk);
    if ((rc = read_model(ctx, h, c)) || (rc = read_optimizer(ctx, h, c)) || (rc = read_selection(ctx, h, c)) ||
        (rc = read_schedule(ctx, h, c)) || (rc = read_loss(ctx, h, c)))
        return rc;
    c->clip_grad_norm = h->get_num(ctx, "clip_grad_norm");
    c->ema = h->get_num(ctx, "ema");
    c->ema_warmup = h->get_num(ctx, "ema_warmup");
    c->max_nonfinite = h->get_int(ctx, "max_nonfinite");
    c->init = h->is_set(ctx, "init") ? h->get_str(ctx, "init") : NULL;
    c->reset_head = h->get_bool(ctx, "reset_head");
    if (c->reset_head && !c->init)
        return fail(ctx, h, "reset_head: only means something with init (no init file is given)");
    c->seed = h->is_auto(ctx, "seed") ? h->seed(ctx) : (uint64_t)h->get_int(ctx, "seed");
    c->backend = h->get_str(ctx, "backend");
    if (!c->backend) c->backend = "auto";
    c->loader_threads = h->is_auto(ctx, "loader_threads") ? 1 : (int)h->get_int(ctx, "loader_threads");
    c->eval_tta = h->get_bool(ctx, "eval_tta");
    c->winograd = strcmp(h->get_str(ctx, "conv"), "winograd") == 0;
    c->gpu = (int)h->get_int(ctx, "gpu");
    c->precision = h->get_str(ctx, "precision");
    c->deterministic = h->get_bool(ctx, "deterministic");
    return 0;
}

int train_check(lumen_ctx *ctx, const lumen_host *host) {
    train_cfg c;
    return train_cfg_read(ctx, host, &c);
}
