/*
 * train.c -- the train stage's run (see train.h): data, model, engine,
 * loader, the epoch loop with per-step schedule, clipping and non-finite
 * skipping, per-epoch validation (evaluate.h) and metrics, early stopping,
 * checkpoints and the resumable state.
 *
 * One step:  lr = schedule(epoch, step); train_step; grad_norm; a
 * non-finite loss or gradient skips the step (no update; the BN running
 * statistics it touched are put back) and counts; max_nonfinite in a row
 * abort with LUMEN_ENUMERIC; else clip (scale = min(1, clip / norm)) and
 * optim_step.
 *
 * One epoch end (in this order, so a crash anywhere leaves a consistent
 * folder): validation -> metrics (host->metric, step = epoch, 1-based) ->
 * plateau schedule and early stopping -> best.safetensors (when the metric
 * improved, or while no finite value was seen) -> last.safetensors ->
 * history.json -> state.safetensors (the commit point) -> log line.
 *
 * Threads: the engine runs host->threads() OpenMP threads; the training
 * loader `loader_threads` workers (default 1: decoding and augmenting a
 * batch costs a small fraction of a step -- the log line reports the time
 * the step waited for data); the validation loader one.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "dataset.h"
#include "evaluate.h"
#include "lm_util.h"
#include "batch_loader.h"
#include "metrics.h"
#include "normstats.h"
#include "pixfilter.h"
#include "policy.h"
#include "mixup.h"
#include "train.h"

typedef struct trainer {
    lumen_ctx *ctx;
    const lumen_host *h;
    train_cfg cfg;
    lm_dataset *ds;
    const lm_dataset_info *info;
    int K;
    lm_normstats stats;
    lm_policy policy;
    lm_pixfilter filter; /* the dataset's (schema "filter"); written into the checkpoints' "input" */
    int has_policy;
    nn_model *model;
    nn_engine *eng;
    lm_loader *ld;
    int threads;
    float pos_weight[TRAIN_MAX_CLASSES];
    nn_loss_cfg loss;
    int64_t nbatches, images_per_epoch, nval;
    /* files */
    char *path_best, *path_last, *path_state, *path_history;
    char *model_json, *labels_json, *stats_json, *input_json, *run_name;
    const char *extra[5];
    train_fingerprint fp;
    /* progress (saved in the state) */
    train_progress pr;
    int have_best_ckpt; /* best.safetensors holds a finite-metric epoch */
    double last_val_f1;
    /* mixup (cfg.mixup > 0): the mixed batch and its partner permutation */
    float *mix_x, *mix_y;
    uint32_t *mix_perm;
    /* scratch for undoing a skipped step's BN statistics */
    float *bn_buffers;
    int64_t *bn_counters;
    /* the weight average (cfg.ema > 0) and room for the raw weights while
     * the average is swapped into the engine */
    train_ema ema;
    float *raw_params, *raw_buffers;
    double loader_wait_seen;
} trainer;

/* ------------------------------------------------------------ helpers -- */

static int fail_err(trainer *t, const lm_err *e, int rc) {
    return t->h->fail(t->ctx, rc, "%s", e->msg[0] ? e->msg : lm_strcode(rc));
}

static char *json_string_array(const char *const *v, size_t n) {
    cJSON *a = cJSON_CreateStringArray(v, (int)n);
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

/* "runs/<exp>/<run>" -> "<exp>/<run>" */
static char *run_name_of(const char *run_dir) {
    if (!run_dir) return lm_strdup("");
    const char *end = run_dir + strlen(run_dir), *p = end;
    int slashes = 0;
    while (p > run_dir) {
        if (p[-1] == '/' && ++slashes == 2) break;
        p--;
    }
    return lm_strdup(p);
}

static int is_cancelled(void *user) {
    trainer *t = user;
    return t->h->cancelled(t->ctx);
}

/* ---------------------------------------------------------- set-up -- */

static int open_data(trainer *t) {
    const lumen_host *h = t->h;
    lm_err e = {0};
    const char *dsdir = h->input(t->ctx, "dataset"), *stdir = h->input(t->ctx, "stats");
    const char *podir = h->input(t->ctx, "policy");
    if (!dsdir || !stdir) return h->fail(t->ctx, LUMEN_ERR, "train: the host gave no dataset/stats folder");
    int rc = lm_dataset_open(dsdir, &t->ds, &e);
    if (rc) return fail_err(t, &e, rc);
    t->info = lm_dataset_get_info(t->ds);
    t->K = (int)t->info->nlabels;
    if (t->K < 1 || t->K > TRAIN_MAX_CLASSES)
        return h->fail(t->ctx, LUMEN_EDATA, "train: the dataset has %d labels; 1..%d are supported", t->K,
                       TRAIN_MAX_CLASSES);
    if ((rc = lm_pixfilter_from_schema(lm_dataset_schema(t->ds), (int)t->info->channels, dsdir, &t->filter, &e)))
        return fail_err(t, &e, rc);
    if ((rc = lm_normstats_load(stdir, &t->stats, &e))) return fail_err(t, &e, rc);
    if (t->stats.channels != (int)t->info->channels)
        return h->fail(t->ctx, LUMEN_EDATA, "train: stats.json has %d channel(s) but the dataset has %u",
                       t->stats.channels, t->info->channels);
    lm_policy_default(&t->policy);
    if (podir) {
        char *pf = lm_path_join(podir, LM_POLICY_FILE);
        rc = pf ? lm_policy_load(pf, &t->policy, &e) : lm_fail(&e, LUMEN_ENOMEM, "out of memory");
        free(pf);
        if (rc) return fail_err(t, &e, rc);
        t->has_policy = !lm_policy_is_identity(&t->policy);
        if (!lm_pixfilter_none(&t->filter) && lm_policy_is_photometric(&t->policy))
            return h->fail(t->ctx, LUMEN_EINVAL,
                           "train: augment's contrast / brightness / gamma would treat the dataset's "
                           "high-pass channel (ingest highpass) as an image; use geometric augmentation "
                           "only with it");
    }
    size_t nval;
    lm_dataset_split(t->ds, LM_SPLIT_VAL, &nval);
    t->nval = (int64_t)nval;
    const char *metric = t->cfg.early.metric;
    if (!train_metric_known(metric, t->info->labels, t->info->nlabels)) {
        char labels[512] = "";
        for (size_t i = 0; i < t->info->nlabels; i++)
            snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s", i ? ", " : "",
                     t->info->labels[i]);
        return h->fail(t->ctx, LUMEN_EINVAL, "metric: '%s' names no label of the dataset (labels: %s)", metric,
                       labels);
    }
    if (t->nval == 0 && strncmp(metric, "val/", 4) == 0)
        return h->fail(t->ctx, LUMEN_EINVAL,
                       "metric: '%s' needs a validation split, but the dataset has none (ingest split.val = 0); "
                       "use metric = \"train/loss\"",
                       metric);
    return 0;
}

/* negatives / positives per label over the training split */
static int set_pos_weight(trainer *t) {
    const lumen_host *h = t->h;
    train_cfg *c = &t->cfg;
    if (!c->pos_weight_auto) {
        if (c->n_pos_weight != 1 && c->n_pos_weight != t->K)
            return h->fail(t->ctx, LUMEN_EINVAL,
                           "loss.pos_weight: the dataset has %d labels; give %d weights, {w} for all, or \"auto\" "
                           "(got %d)",
                           t->K, t->K, c->n_pos_weight);
        for (int k = 0; k < t->K; k++) t->pos_weight[k] = (float)c->pos_weight[c->n_pos_weight == 1 ? 0 : k];
    } else {
        size_t n;
        const uint32_t *idx = lm_dataset_split(t->ds, LM_SPLIT_TRAIN, &n);
        int64_t pos[TRAIN_MAX_CLASSES] = {0};
        for (size_t i = 0; i < n; i++) {
            lm_record r;
            if (lm_dataset_get(t->ds, idx[i], &r)) return h->fail(t->ctx, LUMEN_EDATA, "train: bad record %u", idx[i]);
            for (int k = 0; k < t->K; k++) pos[k] += r.labels[k] >= 0.5f;
        }
        char line[1024];
        size_t off = (size_t)snprintf(line, sizeof line,
                                      "loss.pos_weight = auto (negatives/positives over %zu training images):", n);
        for (int k = 0; k < t->K; k++) {
            int64_t neg = (int64_t)n - pos[k];
            if (pos[k] == 0) {
                t->pos_weight[k] = 1.0f;
                h->log(t->ctx, LUMEN_LOG_WARN, "loss.pos_weight: label '%s' has no positive training image; weight 1",
                       t->info->labels[k]);
            } else {
                t->pos_weight[k] = (float)((double)neg / (double)pos[k]);
            }
            if (off < sizeof line)
                off += (size_t)snprintf(line + off, sizeof line - off, " %s %lld/%lld = %.6g", t->info->labels[k],
                                        (long long)neg, (long long)pos[k], (double)t->pos_weight[k]);
        }
        h->log(t->ctx, LUMEN_LOG_INFO, "%s", line);
    }
    for (int k = 0; k < t->K; k++) {
        char key[128];
        snprintf(key, sizeof key, "train/pos_weight_%s", t->info->labels[k]);
        h->summary(t->ctx, key, (double)t->pos_weight[k]);
    }
    t->loss.pos_weight = t->pos_weight;
    t->loss.label_smoothing = c->label_smoothing;
    t->loss.focal_gamma = c->focal_gamma;
    return 0;
}

static int build_model(trainer *t) {
    const lumen_host *h = t->h;
    train_cfg *c = &t->cfg;
    lm_err e = {0};
    int C = (int)t->info->channels;
    if (c->model.in_channels == 0) {
        c->model.in_channels = C;
    } else if (c->model.in_channels != C) {
        return h->fail(t->ctx, LUMEN_EINVAL, "model.in_channels: is %d but the dataset has %d channel(s)",
                       c->model.in_channels, C);
    }
    c->model.num_classes = t->K;
    int rc = nn_model_create(&c->model, &t->model, &e);
    if (rc) return fail_err(t, &e, rc);
    nn_engine_opts o = {.batch = c->batch, .channels = C, .height = (int)t->info->height,
                        .width = (int)t->info->width, .threads = t->threads, .seed = c->seed, .layout = NULL,
                        .train_conv = c->winograd ? "auto" : NULL, .gpu = c->gpu,
                        .precision = c->precision, .deterministic = c->deterministic};
    if ((rc = nn_engine_create(c->backend, t->model, &o, &t->eng, &e))) {
        if (rc == LUMEN_EINVAL && strstr(e.msg, "input"))
            return h->fail(t->ctx, rc, "model: %s (the images are %ux%u)", e.msg, t->info->height, t->info->width);
        return fail_err(t, &e, rc);
    }
    if (c->mixup > 0) {
        size_t chw = (size_t)C * t->info->height * t->info->width;
        t->mix_x = malloc(sizeof(float) * (size_t)c->batch * chw);
        t->mix_y = malloc(sizeof(float) * (size_t)c->batch * (size_t)t->K);
        t->mix_perm = malloc(sizeof(uint32_t) * (size_t)c->batch);
        if (!t->mix_x || !t->mix_y || !t->mix_perm) return h->fail(t->ctx, LUMEN_ENOMEM, "train: out of memory");
    }
    t->bn_buffers = malloc(sizeof(float) * (t->model->nbuffers + 1));
    t->bn_counters = malloc(sizeof(int64_t) * (t->model->ncounters + 1));
    if (c->ema > 0) {
        t->ema.params = malloc(sizeof(float) * (t->model->nparams + 1));
        t->ema.buffers = malloc(sizeof(float) * (t->model->nbuffers + 1));
        t->raw_params = malloc(sizeof(float) * (t->model->nparams + 1));
        t->raw_buffers = malloc(sizeof(float) * (t->model->nbuffers + 1));
        if (!t->ema.params || !t->ema.buffers || !t->raw_params || !t->raw_buffers)
            return h->fail(t->ctx, LUMEN_ENOMEM, "train: out of memory");
    }
    t->model_json = nn_resnet_cfg_to_json(&c->model);
    t->labels_json = json_string_array(t->info->labels, t->info->nlabels);
    t->stats_json = lm_normstats_to_json(&t->stats);
    /* the dataset's filter travels with the model: predict filters the same way */
    cJSON *fj = lm_pixfilter_none(&t->filter) ? NULL : lm_pixfilter_to_json(&t->filter);
    char *ft = fj ? cJSON_PrintUnformatted(fj) : NULL;
    t->input_json = !lm_pixfilter_none(&t->filter) && !ft
                        ? NULL /* out of memory */
                        : lm_sprintf("{\"height\":%u,\"width\":%u,\"channels\":%u%s%s}", t->info->height,
                                     t->info->width, t->info->channels, ft ? ",\"filter\":" : "", ft ? ft : "");
    free(ft);
    cJSON_Delete(fj);
    t->run_name = run_name_of(h->run_dir(t->ctx));
    if (!t->bn_buffers || !t->bn_counters || !t->model_json || !t->labels_json || !t->stats_json || !t->input_json ||
        !t->run_name)
        return h->fail(t->ctx, LUMEN_ENOMEM, "train: out of memory");
    t->extra[0] = "run";
    t->extra[1] = t->run_name;
    t->extra[2] = "stage";
    t->extra[3] = h->stage_id(t->ctx);
    t->extra[4] = NULL;
    const nn_graph *g = nn_engine_graph(t->eng);
    int wino = c->winograd && strcmp(nn_engine_backend(t->eng), "cpu") == 0;
    h->log(t->ctx, LUMEN_LOG_INFO,
           "model: %s, %zu parameters, %.3g GFLOP/image forward; engine %s%s, %d thread(s); input "
           "%dx%dx%d",
           t->model_json, t->model->nparams, nn_graph_flops(g) / 1e9, nn_engine_backend(t->eng),
           wino ? " (3x3 training convs: winograd)" : "", t->threads, g->in_c, g->in_h, g->in_w);
    if (*nn_engine_note(t->eng)) h->log(t->ctx, LUMEN_LOG_INFO, "engine: %s", nn_engine_note(t->eng));
    if (c->winograd && !wino)
        h->log(t->ctx, LUMEN_LOG_WARN, "conv = \"winograd\" applies to the cpu backend only; the %s backend ignores it",
               nn_engine_backend(t->eng));
    return 0;
}

static int load_init(trainer *t) {
    const lumen_host *h = t->h;
    const nn_model *m = t->model;
    lm_err e = {0};
    float *p = malloc(sizeof(float) * (m->nparams + 1)), *b = malloc(sizeof(float) * (m->nbuffers + 1));
    int64_t *cn = malloc(sizeof(int64_t) * (m->ncounters + 1));
    lm_ckpt_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = !p || !b || !cn ? lm_fail(&e, LUMEN_ENOMEM, "out of memory") : 0;
    if (rc == 0) rc = nn_engine_get_state(t->eng, p, b, cn, &e);
    lm_ckpt_load_opts lo = {.reset_head = t->cfg.reset_head, .strict = 0, .no_rgb_to_gray = 0};
    if (rc == 0) rc = lm_ckpt_load_file(t->cfg.init, m, p, b, cn, &lo, &rep, &e);
    if (rc == 0) rc = nn_engine_set_state(t->eng, p, b, cn, &e);
    if (rc == 0) {
        char *text = lm_ckpt_report_text(&rep);
        h->log(t->ctx, rep.nmissing ? LUMEN_LOG_WARN : LUMEN_LOG_INFO, "init %s: %s", t->cfg.init,
               text ? text : "loaded");
        free(text);
        h->summary(t->ctx, "train/init_loaded_tensors", (double)rep.nloaded);
    }
    lm_ckpt_report_free(&rep);
    free(p);
    free(b);
    free(cn);
    if (rc) return h->fail(t->ctx, rc, "init: %s%s", e.msg,
                           strstr(e.msg, "fc.") ? " (a different number of labels? set reset_head = true)" : "");
    return 0;
}

static int open_loader(trainer *t) {
    train_cfg *c = &t->cfg;
    lm_loader_cfg lc = {.split = LM_SPLIT_TRAIN, .batch = c->batch, .shuffle = 1, .drop_last = c->drop_last,
                        .seed = c->seed, .policy = t->has_policy ? &t->policy : NULL, .mean = t->stats.mean,
                        .std = t->stats.std, .threads = c->loader_threads, .depth = 0};
    lm_err e = {0};
    int rc = lm_loader_open(t->ds, &lc, &t->ld, &e);
    if (rc) return fail_err(t, &e, rc);
    t->nbatches = lm_loader_batches(t->ld);
    size_t n = lm_loader_count(t->ld);
    if (t->nbatches < 1)
        return t->h->fail(t->ctx, LUMEN_EINVAL,
                          "batch: %d is larger than the training split (%zu images) with drop_last = true", c->batch,
                          n);
    t->images_per_epoch = c->drop_last ? t->nbatches * c->batch : (int64_t)n;
    c->sched.steps_per_epoch = t->nbatches;
    lm_err se = {0};
    if ((rc = lm_sched_cfg_check(&c->sched, &se))) return fail_err(t, &se, rc);
    return 0;
}

/* Fresh progress, or what state.safetensors holds when resuming. */
static int restore(trainer *t) {
    const lumen_host *h = t->h;
    train_cfg *c = &t->cfg;
    lm_sched_init(&c->sched, &t->pr.sched);
    lm_early_init(&t->pr.early);
    t->pr.history = cJSON_CreateArray();
    if (!t->pr.history) return h->fail(t->ctx, LUMEN_ENOMEM, "out of memory");
    t->fp = (train_fingerprint){.model_json = t->model_json, .seed = c->seed, .batch = c->batch,
                                .batches_per_epoch = t->nbatches, .epochs = c->epochs,
                                .optimizer = c->optim.kind == NN_OPT_SGD    ? "sgd"
                                             : c->optim.kind == NN_OPT_ADAM ? "adam"
                                                                            : "adamw",
                                .ema = c->ema,
                                .ema_warmup = c->ema_warmup};
    int resuming = LUMEN_HOST_HAS(h, resuming) && h->resuming && h->resuming(t->ctx);
    if (resuming && lm_exists(t->path_state)) {
        lm_err e = {0};
        int rc = train_state_load(t->path_state, t->model, t->eng, &t->pr, &t->fp,
                                  c->ema > 0 ? &t->ema : NULL, &e);
        if (rc) return fail_err(t, &e, rc);
        t->have_best_ckpt = t->pr.early.has_best && lm_exists(t->path_best);
        h->log(t->ctx, LUMEN_LOG_INFO,
               "resuming from %s: %lld of %lld epoch(s) done, %lld optimizer steps, best %s %.6g at epoch %lld%s",
               TRAIN_STATE_FILE, (long long)t->pr.epochs_done, (long long)c->epochs,
               (long long)nn_engine_train_steps(t->eng), c->early.metric, t->pr.early.best,
               (long long)t->pr.early.best_epoch, t->pr.stopped ? " (early stopping had ended training)" : "");
        return 0;
    }
    if (resuming)
        h->log(t->ctx, LUMEN_LOG_INFO, "resuming: no %s in the output folder (interrupted before the first epoch "
                                       "ended); starting fresh",
               TRAIN_STATE_FILE);
    if (c->init) return load_init(t);
    return 0;
}

/* ---------------------------------------------------------- one epoch -- */

typedef struct epoch_stats {
    double loss_sum, grad_norm_sum, lr_last, seconds, wait_s;
    int64_t steps, skipped, images;
} epoch_stats;

/* ------------------------------------------------- weight average -- */

/* Folds the engine's current weights and BN statistics into the average:
 * a = d a + (1 - d) w with d = min(ema, (1 + n) / (W + n)) after n
 * updates, W = ema_warmup (the first update copies).  Host-side and canonical, so every
 * backend gets it for free; ~3 M floats per step against a step of
 * ~10^9 FLOPs. */
static int ema_update(trainer *t, lm_err *e) {
    const nn_model *m = t->model;
    int rc = nn_engine_get_state(t->eng, t->raw_params, t->raw_buffers, NULL, e);
    if (rc) return rc;
    if (t->pr.ema_updates == 0) { /* a copy: 0 * (uninitialized memory) may be NaN */
        memcpy(t->ema.params, t->raw_params, sizeof(float) * m->nparams);
        memcpy(t->ema.buffers, t->raw_buffers, sizeof(float) * m->nbuffers);
        t->pr.ema_updates++;
        return 0;
    }
    float d = (float)train_ema_decay(t->cfg.ema, t->cfg.ema_warmup, t->pr.ema_updates);
    for (size_t i = 0; i < m->nparams; i++) t->ema.params[i] = d * t->ema.params[i] + (1.0f - d) * t->raw_params[i];
    for (size_t i = 0; i < m->nbuffers; i++)
        t->ema.buffers[i] = d * t->ema.buffers[i] + (1.0f - d) * t->raw_buffers[i];
    t->pr.ema_updates++;
    return 0;
}

/* Puts the average into the engine (keeping the raw weights aside), or the
 * raw weights back.  Counters and optimizer state are not touched. */
static int ema_swap(trainer *t, int in, lm_err *e) {
    if (in) {
        int rc = nn_engine_get_state(t->eng, t->raw_params, t->raw_buffers, NULL, e);
        return rc ? rc : nn_engine_set_state(t->eng, t->ema.params, t->ema.buffers, NULL, e);
    }
    return nn_engine_set_state(t->eng, t->raw_params, t->raw_buffers, NULL, e);
}

static int train_epoch(trainer *t, int64_t epoch, epoch_stats *es) {
    const lumen_host *h = t->h;
    train_cfg *c = &t->cfg;
    memset(es, 0, sizeof *es);
    double t0 = lm_now();
    lm_loader_start_epoch(t->ld, epoch);
    lm_err e = {0};
    int64_t total_images = c->epochs * t->images_per_epoch;
    for (int64_t step = 0;; step++) {
        if (h->cancelled(t->ctx))
            return h->fail(t->ctx, LUMEN_ECANCELED,
                           "cancelled during epoch %lld; %s holds epoch %lld and `--resume` continues from there",
                           (long long)epoch + 1, TRAIN_STATE_FILE, (long long)t->pr.epochs_done);
        lm_batch b;
        int rc = lm_loader_next(t->ld, &b, &e);
        if (rc) return fail_err(t, &e, rc);
        if (b.n == 0) break;
        double lr = lm_sched_lr(&c->sched, &t->pr.sched, epoch, step);
        nn_optim_cfg opt = c->optim;
        opt.lr = (float)lr;
        /* BN statistics before the step, to undo them if it is skipped */
        nn_engine_get_state(t->eng, NULL, t->bn_buffers, t->bn_counters, &e);
        float loss = 0;
        double norm = 0;
        lm_err se = {0};
        const float *bx = b.x, *by = b.y;
        if (c->mixup > 0) {
            size_t chw = (size_t)t->cfg.model.in_channels * t->info->height * t->info->width;
            lm_mixup_batch(b.x, b.y, b.n, chw, t->K, c->mixup, c->seed, epoch, step, t->mix_x, t->mix_y,
                           t->mix_perm);
            bx = t->mix_x;
            by = t->mix_y;
        }
        rc = nn_engine_train_step(t->eng, bx, by, b.n, &t->loss, &loss, NULL, &se);
        if (rc == 0) rc = nn_engine_grad_norm(t->eng, &norm, &se);
        if (rc == LUMEN_ENUMERIC) {
            nn_engine_set_state(t->eng, NULL, t->bn_buffers, t->bn_counters, &e);
            t->pr.skipped++;
            t->pr.nonfinite_run++;
            es->skipped++;
            const char *why = se.msg;
            if (strncmp(why, "training diverged: ", 19) == 0) why += 19;
            h->log(t->ctx, es->skipped == 1 ? LUMEN_LOG_WARN : LUMEN_LOG_DEBUG,
                   "epoch %lld step %lld skipped (no update): %s%s", (long long)epoch + 1, (long long)step + 1, why,
                   es->skipped == 1 ? " (further skips this epoch are logged at debug level)" : "");
            if (t->pr.nonfinite_run >= c->max_nonfinite) {
                h->summary(t->ctx, "train/skipped_steps", (double)t->pr.skipped);
                return h->fail(t->ctx, LUMEN_ENUMERIC,
                               "training diverged: %lld consecutive steps with a non-finite loss or gradient "
                               "(max_nonfinite = %lld; the last at epoch %lld step %lld: %s); lower optimizer.lr or "
                               "set clip_grad_norm",
                               (long long)t->pr.nonfinite_run, (long long)c->max_nonfinite, (long long)epoch + 1,
                               (long long)step + 1, why);
            }
        } else if (rc) {
            return fail_err(t, &se, rc);
        } else {
            float scale = c->clip_grad_norm > 0 && norm > c->clip_grad_norm ? (float)(c->clip_grad_norm / norm) : 1.0f;
            if ((rc = nn_engine_optim_step(t->eng, &opt, scale, &se))) return fail_err(t, &se, rc);
            if (c->ema > 0 && (rc = ema_update(t, &se))) return fail_err(t, &se, rc);
            t->pr.nonfinite_run = 0;
            es->loss_sum += loss;
            es->grad_norm_sum += norm;
            es->steps++;
        }
        es->lr_last = lr;
        es->images += b.n;
        t->pr.images += b.n;
        char detail[160];
        if (isnan(t->last_val_f1))
            snprintf(detail, sizeof detail, "epoch %lld/%lld loss %.4f", (long long)epoch + 1, (long long)c->epochs,
                     es->steps ? es->loss_sum / (double)es->steps : NAN);
        else
            snprintf(detail, sizeof detail, "epoch %lld/%lld loss %.4f val f1 %.3f", (long long)epoch + 1,
                     (long long)c->epochs, es->steps ? es->loss_sum / (double)es->steps : NAN, t->last_val_f1);
        h->progress(t->ctx, epoch * t->images_per_epoch + es->images, total_images, "img", detail);
    }
    lm_loader_stats st;
    lm_loader_get_stats(t->ld, &st);
    es->wait_s = st.wait_s - t->loader_wait_seen;
    t->loader_wait_seen = st.wait_s;
    es->seconds = lm_now() - t0;
    return 0;
}

/* ---------------------------------------------------------- epoch end -- */

static void put(cJSON *o, const char *key, double v) { cJSON_AddNumberToObject(o, key, v); }

/* Validation metrics into em; thresholds tuned on val into thr. */
static int validate_epoch(trainer *t, cJSON *em, float *thr) {
    const lumen_host *h = t->h;
    for (int k = 0; k < t->K; k++) thr[k] = 0.5f;
    if (t->nval == 0) return 0;
    lm_eval_cfg ec;
    lm_eval_cfg_default(&ec);
    ec.mean = t->stats.mean;
    ec.std = t->stats.std;
    ec.batch = t->cfg.batch;
    ec.threads = 1;
    ec.tta = t->cfg.eval_tta;
    ec.pos_weight = t->pos_weight;
    ec.label_smoothing = t->cfg.label_smoothing;
    ec.focal_gamma = t->cfg.focal_gamma;
    ec.cancelled = is_cancelled;
    ec.user = t;
    lm_eval_result r;
    lm_err e = {0};
    int rc = lm_eval_split(t->eng, t->ds, LM_SPLIT_VAL, &ec, &r, &e);
    if (rc) {
        if (rc == LUMEN_ECANCELED)
            return h->fail(t->ctx, rc, "cancelled during validation; %s holds epoch %lld", TRAIN_STATE_FILE,
                           (long long)t->pr.epochs_done);
        return fail_err(t, &e, rc);
    }
    lm_metrics m05, mt;
    if ((rc = lm_metrics_compute(r.probs, r.targets, r.n, r.k, NULL, &m05, &e)) ||
        (rc = lm_metrics_tune_thresholds(r.probs, r.targets, r.n, r.k, thr, &e)) ||
        (rc = lm_metrics_compute(r.probs, r.targets, r.n, r.k, thr, &mt, &e))) {
        lm_eval_result_free(&r);
        return fail_err(t, &e, rc);
    }
    put(em, "val/loss", r.mean_loss);
    put(em, "val/f1_mean", m05.f1_mean);
    put(em, "val/f1_micro", m05.f1_micro);
    put(em, "val/ap_mean", m05.ap_mean);
    put(em, "val/exact_match", m05.exact_match);
    put(em, "val/f1_mean_tuned", mt.f1_mean);
    for (int k = 0; k < t->K; k++) {
        char key[128];
        snprintf(key, sizeof key, "val/f1_%s", t->info->labels[k]);
        put(em, key, m05.cls[k].f1);
        snprintf(key, sizeof key, "val/ap_%s", t->info->labels[k]);
        put(em, key, m05.cls[k].ap);
        snprintf(key, sizeof key, "val/threshold_%s", t->info->labels[k]);
        put(em, key, thr[k]);
    }
    put(em, "val/seconds", r.seconds);
    t->last_val_f1 = m05.f1_mean;
    lm_eval_result_free(&r);
    return 0;
}

static double metric_of(const cJSON *em, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(em, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int end_epoch(trainer *t, int64_t epoch, const epoch_stats *es) {
    const lumen_host *h = t->h;
    train_cfg *c = &t->cfg;
    int64_t ep1 = epoch + 1;
    lm_err e = {0};
    float thr[TRAIN_MAX_CLASSES];
    cJSON *em = cJSON_CreateObject();
    if (!em) return h->fail(t->ctx, LUMEN_ENOMEM, "out of memory");
    put(em, "epoch", (double)ep1);
    put(em, "train/loss", es->steps ? es->loss_sum / (double)es->steps : NAN);
    put(em, "train/lr", es->lr_last);
    put(em, "train/img_s", es->seconds > 0 ? (double)es->images / es->seconds : 0);
    put(em, "train/epoch_s", es->seconds);
    put(em, "train/loader_wait_s", es->wait_s);
    put(em, "train/grad_norm", es->steps ? es->grad_norm_sum / (double)es->steps : NAN);
    put(em, "train/skipped_steps", (double)t->pr.skipped);
    /* with a weight average, validation and best/last see the average; the
     * raw weights go back before the state (which keeps both) is written */
    int swapped = c->ema > 0 && t->pr.ema_updates > 0;
    int rc = swapped ? ema_swap(t, 1, &e) : 0;
    if (rc) {
        cJSON_Delete(em);
        return fail_err(t, &e, rc);
    }
    rc = validate_epoch(t, em, thr);
    if (rc) {
        if (swapped) ema_swap(t, 0, &e);
        cJSON_Delete(em);
        return rc;
    }
    for (const cJSON *v = em->child; v; v = v->next)
        if (strcmp(v->string, "epoch") != 0) h->metric(t->ctx, v->string, v->valuedouble, ep1);
    double value = metric_of(em, c->early.metric);
    lm_sched_epoch_end(&c->sched, &t->pr.sched, value);
    int flags = lm_early_update(&c->early, &t->pr.early, ep1, value);
    if (flags & LM_EARLY_STOP) t->pr.stopped = 1;
    t->pr.epochs_done = ep1;
    t->pr.train_seconds += es->seconds;
    char *metrics = cJSON_PrintUnformatted(em);
    train_ckpt_info ci = {.model_json = t->model_json, .labels_json = t->labels_json, .stats_json = t->stats_json,
                          .input_json = t->input_json, .extra = t->extra};
    if (!metrics) rc = lm_fail(&e, LUMEN_ENOMEM, "out of memory");
    int improved = (flags & LM_EARLY_IMPROVED) != 0;
    if (rc == 0 && (improved || !t->have_best_ckpt)) {
        rc = train_ckpt_save(t->path_best, t->model, t->eng, &ci, ep1, metrics, thr, t->K, &e);
        if (improved) t->have_best_ckpt = 1;
    }
    if (rc == 0) rc = train_ckpt_save(t->path_last, t->model, t->eng, &ci, ep1, metrics, thr, t->K, &e);
    if (swapped) {
        int rs = ema_swap(t, 0, &e);
        if (rc == 0) rc = rs;
    }
    if (rc == 0 && !cJSON_AddItemToArray(t->pr.history, em)) rc = lm_fail(&e, LUMEN_ENOMEM, "out of memory");
    else if (rc == 0) em = NULL; /* owned by the history now */
    if (rc == 0) {
        char *text = cJSON_Print(t->pr.history);
        rc = text ? lm_write_file_atomic(t->path_history, text, strlen(text), &e)
                  : lm_fail(&e, LUMEN_ENOMEM, "out of memory");
        free(text);
    }
    if (rc == 0)
        rc = train_state_save(t->path_state, t->model, t->eng, &t->pr, &t->fp, t->pos_weight,
                              c->ema > 0 ? &t->ema : NULL, &e);
    free(metrics);
    cJSON_Delete(em);
    if (rc) return fail_err(t, &e, rc);
    const cJSON *last = cJSON_GetArrayItem(t->pr.history, cJSON_GetArraySize(t->pr.history) - 1);
    h->log(t->ctx, LUMEN_LOG_INFO,
           "epoch %lld/%lld: train loss %.4f lr %.3g %.1f img/s %.1f s (loader wait %.2f s)%s | val loss %.4f f1 %.4f "
           "(tuned %.4f) ap %.4f | %s %.4f%s%s",
           (long long)ep1, (long long)c->epochs, metric_of(last, "train/loss"), es->lr_last,
           metric_of(last, "train/img_s"), es->seconds, es->wait_s, es->skipped ? " [steps skipped]" : "",
           metric_of(last, "val/loss"), metric_of(last, "val/f1_mean"), metric_of(last, "val/f1_mean_tuned"),
           metric_of(last, "val/ap_mean"), c->early.metric, value, improved ? " (best)" : "",
           t->pr.stopped ? "; early stopping" : "");
    const char *fault = getenv(TRAIN_FAULT_ENV);
    if (fault && *fault && strtoll(fault, NULL, 10) == ep1) {
        h->log(t->ctx, LUMEN_LOG_WARN, "%s=%s: killing the stage process after epoch %lld (fault injection)",
               TRAIN_FAULT_ENV, fault, (long long)ep1);
        raise(SIGKILL);
    }
    return 0;
}

/* ---------------------------------------------------------- summaries -- */

static void summarize(trainer *t) {
    const lumen_host *h = t->h;
    const lm_early_state *es = &t->pr.early;
    h->summary(t->ctx, "train/epochs", (double)t->pr.epochs_done);
    h->summary(t->ctx, "train/seconds", t->pr.train_seconds);
    h->summary(t->ctx, "train/skipped_steps", (double)t->pr.skipped);
    h->summary(t->ctx, "train/stopped_early", t->pr.stopped ? 1 : 0);
    h->summary_str(t->ctx, "train/metric", t->cfg.early.metric);
    if (!es->has_best) return;
    h->summary(t->ctx, "train/best_epoch", (double)es->best_epoch);
    h->summary(t->ctx, "train/best_metric", es->best);
    const cJSON *best = cJSON_GetArrayItem(t->pr.history, (int)es->best_epoch - 1);
    static const char *const keys[] = {"val/f1_mean", "val/f1_mean_tuned", "val/f1_micro", "val/ap_mean", "val/loss",
                                       NULL};
    for (int i = 0; keys[i]; i++) {
        double v = metric_of(best, keys[i]);
        if (!isnan(v)) h->summary(t->ctx, keys[i], v);
    }
}

/* ---------------------------------------------------------------- run -- */

static void trainer_free(trainer *t) {
    lm_loader_close(t->ld);
    nn_engine_free(t->eng);
    nn_model_free(t->model);
    lm_dataset_close(t->ds);
    cJSON_Delete(t->pr.history);
    free(t->mix_x);
    free(t->mix_y);
    free(t->mix_perm);
    free(t->bn_buffers);
    free(t->bn_counters);
    free(t->ema.params);
    free(t->ema.buffers);
    free(t->raw_params);
    free(t->raw_buffers);
    free(t->path_best);
    free(t->path_last);
    free(t->path_state);
    free(t->path_history);
    free(t->model_json);
    free(t->labels_json);
    free(t->stats_json);
    free(t->input_json);
    free(t->run_name);
}

int train_run(lumen_ctx *ctx, const lumen_host *host) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.ctx = ctx;
    t.h = host;
    t.last_val_f1 = NAN;
    int rc = train_cfg_read(ctx, host, &t.cfg);
    if (rc) return rc;
    t.threads = host->threads(ctx) > 0 ? host->threads(ctx) : 1;
    const char *out = host->output(ctx, "model");
    if (!out) return host->fail(ctx, LUMEN_ERR, "train: the host gave no 'model' folder");
    t.path_best = lm_path_join(out, TRAIN_BEST_FILE);
    t.path_last = lm_path_join(out, TRAIN_LAST_FILE);
    t.path_state = lm_path_join(out, TRAIN_STATE_FILE);
    t.path_history = lm_path_join(out, TRAIN_HISTORY_FILE);
    if (!t.path_best || !t.path_last || !t.path_state || !t.path_history) {
        rc = host->fail(ctx, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (t.cfg.smoke)
        host->log(ctx, LUMEN_LOG_INFO, "train: smoke run: %lld epoch, batch %d", (long long)t.cfg.epochs,
                  t.cfg.batch);
    if ((rc = open_data(&t)) || (rc = build_model(&t)) || (rc = set_pos_weight(&t)) || (rc = open_loader(&t)) ||
        (rc = restore(&t)))
        goto out;
    host->log(ctx, LUMEN_LOG_INFO,
              "data: %zu training images (%lld batches of %d per epoch), %lld validation images, %ux%ux%u, "
              "augmentation %s; %lld epochs, %s lr %g, schedule %s, metric %s (%s)",
              t.info->ntrain, (long long)t.nbatches, t.cfg.batch, (long long)t.nval, t.info->channels,
              t.info->height, t.info->width, t.has_policy ? "on" : "off", (long long)t.cfg.epochs, t.fp.optimizer,
              (double)t.cfg.optim.lr, lm_sched_kind_name(t.cfg.sched.kind), t.cfg.early.metric,
              t.cfg.early.goal_max ? "max" : "min");
    while (t.pr.epochs_done < t.cfg.epochs && !t.pr.stopped) {
        epoch_stats es;
        int64_t epoch = t.pr.epochs_done;
        if ((rc = train_epoch(&t, epoch, &es)) || (rc = end_epoch(&t, epoch, &es))) goto out;
    }
    summarize(&t);
out:
    trainer_free(&t);
    return rc;
}
