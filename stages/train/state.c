/*
 * state.c -- the train stage's files: checkpoints (best/last) and the
 * resumable state (see train.h).
 *
 * state.safetensors ("lumen-state", checkpoint.h) holds
 *   tensors   every model tensor under its torch name (params, BN buffers,
 *             num_batches_tracked), and the optimizer moments under torch's
 *             optimizer-state names: optim.<param>.momentum_buffer (sgd) or
 *             optim.<param>.exp_avg / .exp_avg_sq (adam, adamw);
 *   "state"   a JSON object:
 *     {"format":"lumen-train-state","version":1,
 *      "epochs_done":E,"optim_step":t,"train_steps":s,"skipped_steps":n,
 *      "nonfinite_run":r,"images":i,"train_seconds":x,"stopped":false,
 *      "schedule":{...lm_sched_state...},"early_stop":{...lm_early_state...},
 *      "fingerprint":{"model":{...},"seed":"42","batch":32,
 *                     "batches_per_epoch":61,"epochs":30,"optimizer":"adamw"},
 *      "pos_weight":[...],
 *      "data":{"order":...,"augment":...},     (how epoch e's data is made)
 *      "history":[{"epoch":1,"train/loss":...,...},...]}
 * Everything that decides the next epoch is there: the data order and the
 * augmentation of epoch e are pure functions of (seed, e) (batch_loader.h,
 * policy.h), dropout masks of (seed, train_steps) (nn_engine.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "train.h"

#define STATE_FORMAT "lumen-train-state"
#define STATE_VERSION 1

typedef struct arrays {
    float *params, *buffers, *m1, *m2;
    int64_t *counters;
} arrays;

static void arrays_free(arrays *a) {
    free(a->params);
    free(a->buffers);
    free(a->m1);
    free(a->m2);
    free(a->counters);
}

static int arrays_new(const nn_model *m, int moments, arrays *a, lm_err *err) {
    memset(a, 0, sizeof *a);
    a->params = malloc(sizeof(float) * (m->nparams + 1));
    a->buffers = malloc(sizeof(float) * (m->nbuffers + 1));
    a->counters = malloc(sizeof(int64_t) * (m->ncounters + 1));
    if (moments) {
        a->m1 = malloc(sizeof(float) * (m->nparams + 1));
        a->m2 = malloc(sizeof(float) * (m->nparams + 1));
    }
    if (!a->params || !a->buffers || !a->counters || (moments && (!a->m1 || !a->m2))) {
        arrays_free(a);
        return lm_fail(err, LUMEN_ENOMEM, "out of memory for the model state");
    }
    return 0;
}

static cJSON *float_array(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

/* ------------------------------------------------------ checkpoints -- */

int train_ckpt_save(const char *path, const nn_model *m, nn_engine *e, const train_ckpt_info *info,
                    int64_t epoch, const char *metrics_json, const float *thresholds, int k, lm_err *err) {
    arrays a;
    int rc = arrays_new(m, 0, &a, err);
    if (rc) return rc;
    cJSON *th = float_array(thresholds, k);
    char *th_text = th ? cJSON_PrintUnformatted(th) : NULL;
    cJSON_Delete(th);
    if (!th_text) rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) rc = nn_engine_get_state(e, a.params, a.buffers, a.counters, err);
    if (rc == 0) {
        lm_ckpt_meta meta = {.model = info->model_json, .labels = info->labels_json,
                             .stats = info->stats_json, .thresholds = th_text, .metrics = metrics_json,
                             .input = info->input_json, .epoch = epoch, .created = NULL,
                             .extra = info->extra};
        rc = lm_ckpt_save(path, m, a.params, a.buffers, a.counters, &meta, err);
    }
    free(th_text);
    arrays_free(&a);
    return rc;
}

/* ------------------------------------------------------------ state -- */

static const char *moment_suffix(const char *optimizer, int which) {
    if (strcmp(optimizer, "sgd") == 0) return which == 0 ? ".momentum_buffer" : NULL;
    return which == 0 ? ".exp_avg" : ".exp_avg_sq";
}

static cJSON *fingerprint_json(const train_fingerprint *fp) {
    cJSON *o = cJSON_CreateObject();
    cJSON *model = cJSON_Parse(fp->model_json);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)fp->seed);
    if (!o || !model) {
        cJSON_Delete(o);
        cJSON_Delete(model);
        return NULL;
    }
    cJSON_AddItemToObject(o, "model", model);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddNumberToObject(o, "batch", (double)fp->batch);
    cJSON_AddNumberToObject(o, "batches_per_epoch", (double)fp->batches_per_epoch);
    cJSON_AddNumberToObject(o, "epochs", (double)fp->epochs);
    cJSON_AddStringToObject(o, "optimizer", fp->optimizer);
    cJSON_AddNumberToObject(o, "ema", fp->ema);
    if (fp->ema > 0 && fp->ema_warmup != 10) cJSON_AddNumberToObject(o, "ema_warmup", fp->ema_warmup);
    return o;
}

int train_state_save(const char *path, const nn_model *m, nn_engine *e, const train_progress *p,
                     const train_fingerprint *fp, const float *pos_weight, const train_ema *ema,
                     lm_err *err) {
    arrays a;
    int rc = arrays_new(m, 1, &a, err);
    if (rc) return rc;
    int64_t step = 0;
    lm_st_writer *w = NULL;
    char *text = NULL;
    cJSON *s = cJSON_CreateObject();
    if ((rc = nn_engine_get_state(e, a.params, a.buffers, a.counters, err)) ||
        (rc = nn_engine_get_optim_state(e, a.m1, a.m2, &step, err)))
        goto out;
    if (!s) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(s, "format", STATE_FORMAT);
    cJSON_AddNumberToObject(s, "version", STATE_VERSION);
    cJSON_AddNumberToObject(s, "epochs_done", (double)p->epochs_done);
    cJSON_AddNumberToObject(s, "optim_step", (double)step);
    cJSON_AddNumberToObject(s, "train_steps", (double)nn_engine_train_steps(e));
    cJSON_AddNumberToObject(s, "skipped_steps", (double)p->skipped);
    cJSON_AddNumberToObject(s, "nonfinite_run", (double)p->nonfinite_run);
    cJSON_AddNumberToObject(s, "images", (double)p->images);
    cJSON_AddNumberToObject(s, "train_seconds", p->train_seconds);
    cJSON_AddBoolToObject(s, "stopped", p->stopped);
    cJSON_AddNumberToObject(s, "ema_updates", (double)p->ema_updates);
    cJSON_AddItemToObject(s, "schedule", lm_sched_state_to_json(&p->sched));
    cJSON_AddItemToObject(s, "early_stop", lm_early_state_to_json(&p->early));
    cJSON_AddItemToObject(s, "fingerprint", fingerprint_json(fp));
    cJSON_AddItemToObject(s, "pos_weight", float_array(pos_weight, m->cfg.num_classes));
    cJSON *data = cJSON_AddObjectToObject(s, "data");
    cJSON_AddStringToObject(data, "order",
                            "epoch e visits the training split (ascending record indices) in the order "
                            "lm_shuffle_u32(indices, seed, e), batches of `batch`, drop_last as configured");
    cJSON_AddStringToObject(data, "augment", "record i in epoch e: lm_policy_draw(policy, seed, e, i)");
    cJSON_AddItemToObject(s, "history", cJSON_Duplicate(p->history, 1));
    if (!(text = cJSON_PrintUnformatted(s))) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = lm_st_writer_new(&w, err)) || (rc = lm_ckpt_add_model(w, m, a.params, a.buffers, a.counters, err)))
        goto out;
    for (int which = 0; which < 2 && rc == 0; which++) {
        const char *suffix = moment_suffix(fp->optimizer, which);
        if (suffix) rc = lm_ckpt_add_param_like(w, m, "optim.", suffix, which == 0 ? a.m1 : a.m2, err);
    }
    if (rc == 0 && ema)
        if ((rc = lm_ckpt_add_like(w, m, NN_T_PARAM, "ema.", "", ema->params, err)) == 0)
            rc = lm_ckpt_add_like(w, m, NN_T_BUFFER, "ema.", "", ema->buffers, err);
    if (rc == 0) rc = lm_ckpt_state_write(w, text, path, err);
out:
    lm_st_writer_free(w);
    free(text);
    cJSON_Delete(s);
    arrays_free(&a);
    return rc;
}

static int get_i64(const cJSON *o, const char *key, const char *path, int64_t *out, lm_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0)
        return lm_fail(err, LUMEN_EDATA, "%s: state key \"%s\" must be an integer >= 0", path, key);
    *out = (int64_t)v->valuedouble;
    return 0;
}

/* The stored model config read back through nn_resnet_cfg_from_json and
 * written again, so that states written before a change in how numbers are
 * printed (dropout 0.20000000298023224, now 0.2) still match; NULL when it
 * does not parse (the raw comparison then reports the difference). */
static cJSON *normalized_model(const cJSON *have) {
    char *text = have ? cJSON_PrintUnformatted(have) : NULL;
    nn_resnet_cfg cfg;
    lm_err ignore;
    cJSON *out = NULL;
    if (text && nn_resnet_cfg_from_json(text, &cfg, &ignore) == 0) {
        char *again = nn_resnet_cfg_to_json(&cfg);
        if (again) out = cJSON_Parse(again);
        free(again);
    }
    free(text);
    return out;
}

/* Compares the stored fingerprint with this run's: a description of the
 * first difference, or NULL. */
static int check_fingerprint(const cJSON *have, const train_fingerprint *fp, const char *path, lm_err *err) {
    cJSON *want = fingerprint_json(fp);
    if (!want) return lm_fail(err, LUMEN_ENOMEM, "out of memory");
    int rc = 0;
    if (!cJSON_IsObject(have)) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: state has no \"fingerprint\"", path);
    } else {
        for (const cJSON *c = want->child; c && rc == 0; c = c->next) {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(have, c->string);
            cJSON *norm = strcmp(c->string, "model") == 0 ? normalized_model(h) : NULL;
            if (norm) h = norm;
            int same = h && cJSON_Compare(h, c, 1);
            cJSON_Delete(norm);
            if (!same) {
                char *a = h ? cJSON_PrintUnformatted(h) : NULL, *b = cJSON_PrintUnformatted(c);
                rc = lm_fail(err, LUMEN_EDATA,
                             "%s was written by a different training (%s %s there, %s in this run); "
                             "remove it to start over",
                             path, c->string, a ? a : "absent", b ? b : "?");
                free(a);
                free(b);
            }
        }
    }
    cJSON_Delete(want);
    return rc;
}

int train_state_load(const char *path, const nn_model *m, nn_engine *e, train_progress *p,
                     const train_fingerprint *fp, train_ema *ema, lm_err *err) {
    lm_st_file *f = NULL;
    const char *json = NULL;
    cJSON *s = NULL;
    arrays a;
    memset(&a, 0, sizeof a);
    lm_ckpt_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = lm_ckpt_state_open(path, &f, &json, err);
    if (rc) return rc;
    if ((rc = arrays_new(m, 1, &a, err))) goto out;
    s = cJSON_Parse(json);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(s, "version");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, STATE_FORMAT) != 0) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: not a train state (format is not \"%s\")", path, STATE_FORMAT);
        goto out;
    }
    if (!cJSON_IsNumber(ver) || ver->valueint != STATE_VERSION) {
        rc = lm_fail(err, LUMEN_EABI, "%s: train state version %d, this build reads %d", path,
                     cJSON_IsNumber(ver) ? ver->valueint : -1, STATE_VERSION);
        goto out;
    }
    if ((rc = check_fingerprint(cJSON_GetObjectItemCaseSensitive(s, "fingerprint"), fp, path, err))) goto out;
    train_progress q;
    memset(&q, 0, sizeof q);
    int64_t optim_step = 0, train_steps = 0;
    if ((rc = get_i64(s, "epochs_done", path, &q.epochs_done, err)) ||
        (rc = get_i64(s, "optim_step", path, &optim_step, err)) ||
        (rc = get_i64(s, "train_steps", path, &train_steps, err)) ||
        (rc = get_i64(s, "skipped_steps", path, &q.skipped, err)) ||
        (rc = get_i64(s, "nonfinite_run", path, &q.nonfinite_run, err)) ||
        (rc = get_i64(s, "images", path, &q.images, err)) ||
        (ema && (rc = get_i64(s, "ema_updates", path, &q.ema_updates, err))))
        goto out;
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(s, "train_seconds");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(s, "history");
    if (!cJSON_IsNumber(secs) || !cJSON_IsArray(hist) ||
        !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(s, "stopped"))) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: state needs \"train_seconds\", \"stopped\" and \"history\"", path);
        goto out;
    }
    q.train_seconds = secs->valuedouble;
    q.stopped = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "stopped"));
    if ((rc = lm_sched_state_from_json(cJSON_GetObjectItemCaseSensitive(s, "schedule"), &q.sched, err)) ||
        (rc = lm_early_state_from_json(cJSON_GetObjectItemCaseSensitive(s, "early_stop"), &q.early, err)))
        goto out;
    /* tensors: every model tensor must be there (the optim.* ones are
     * "unexpected" for the model and read separately) */
    lm_ckpt_load_opts lo = {.reset_head = 0, .strict = 0, .no_rgb_to_gray = 1};
    if ((rc = nn_engine_get_state(e, a.params, a.buffers, a.counters, err)) ||
        (rc = lm_ckpt_load(f, m, a.params, a.buffers, a.counters, &lo, &rep, err)))
        goto out;
    if (rep.nmissing) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: state lacks %zu model tensor(s), e.g. %s", path, rep.nmissing,
                     rep.missing[0]);
        goto out;
    }
    memset(a.m2, 0, sizeof(float) * m->nparams);
    for (int which = 0; which < 2 && rc == 0; which++) {
        const char *suffix = moment_suffix(fp->optimizer, which);
        if (suffix) rc = lm_ckpt_read_param_like(f, m, "optim.", suffix, which == 0 ? a.m1 : a.m2, err);
    }
    if (rc == 0 && ema)
        if ((rc = lm_ckpt_read_like(f, m, NN_T_PARAM, "ema.", "", ema->params, err)) == 0)
            rc = lm_ckpt_read_like(f, m, NN_T_BUFFER, "ema.", "", ema->buffers, err);
    if (rc) goto out;
    if ((rc = nn_engine_set_state(e, a.params, a.buffers, a.counters, err)) ||
        (rc = nn_engine_set_optim_state(e, a.m1, a.m2, optim_step, err)))
        goto out;
    nn_engine_set_train_steps(e, train_steps);
    q.history = cJSON_Duplicate(hist, 1);
    if (!q.history) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    cJSON_Delete(p->history);
    *p = q;
out:
    lm_ckpt_report_free(&rep);
    cJSON_Delete(s);
    arrays_free(&a);
    lm_st_close(f);
    return rc;
}
