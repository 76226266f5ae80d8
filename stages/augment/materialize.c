/*
 * materialize.c -- the "augment-materialize" stage: writes an offline
 * augmented copy of a dataset (artifact "dataset" in, "dataset" out).
 *
 * Every validation record is copied unchanged.  Every training record is
 * copied (unless keep_original = false) and followed by `materialize`
 * augmented variants, in record order, so the output is deterministic.
 * Variant v of record i uses lm_policy_draw(policy, s, v, i, H, W) with
 * s = lm_rng_key(seed, LM_RNG_MATERIALIZE, 0, 0): the same draw as the online
 * loader but on its own stream, so a materialised variant never coincides
 * with an online one.  Augmented tones are stored back as u8
 * (round(255 * t)); variants are named "<source>#aug<v>" and their meta gains
 * ";aug=<v>".  The schema gets an "augment" object: the policy, the variant
 * count and the source dataset folder.  The seed is the experiment's, so the
 * stage's key() folds it into the cache key; the work is single-threaded.
 *
 * Dataset shapes are fixed, so rotate90 needs square images.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lumen/plugin.h>

#include "augment_stage.h"
#include "cpu/cpu_augment.h"
#include "dataset.h"
#include "lm_util.h"
#include "pixfilter.h"
#include "rng.h"

static const lumen_param PARAMS[] = {
    LM_POLICY_PARAMS,
    {"materialize", LUMEN_INT, "1", 1, 64, NULL, 0,
     "augmented variants written per training image"},
    {"keep_original", LUMEN_BOOL, "true", 0, 0, NULL, 0,
     "also keep each original training image"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static const char *const INPUTS[] = {"dataset", NULL};
static const char *const OUTPUTS[] = {"dataset", NULL};

/* Copies rec with new pixels/name/meta into the writer. */
static int put_variant(lm_dataset_writer *w, const lm_record *rec, const uint8_t *px,
                       int v, lm_err *err) {
    char *name = lm_sprintf("%s#aug%d", rec->name, v);
    char *meta = lm_sprintf("%s%saug=%d", rec->meta ? rec->meta : "",
                            rec->meta && rec->meta[0] ? ";" : "", v);
    if (!name || !meta) {
        free(name);
        free(meta);
        return lm_fail(err, LUMEN_ENOMEM, "augment-materialize: out of memory");
    }
    lm_record r = *rec;
    r.pixels = px;
    r.name = name;
    r.meta = meta;
    int rc = lm_dataset_put(w, &r, err);
    free(name);
    free(meta);
    return rc;
}

int augment_materialize(const augment_materialize_opts *o, size_t *written, lm_err *err) {
    lm_dataset *ds = NULL;
    int rc = lm_dataset_open(o->in, &ds, err);
    if (rc)
        return rc;
    const lm_dataset_info *info = lm_dataset_get_info(ds);
    int h = (int)info->height, w = (int)info->width, c = (int)info->channels;
    if (o->policy.rotate90 && h != w) {
        lm_dataset_close(ds);
        return lm_fail(err, LUMEN_EINVAL,
                       "augment-materialize: rotate90 needs square images, dataset %s has "
                       "%dx%d",
                       o->in, h, w);
    }
    /* a filtered dataset (pixfilter.h) keeps its filter, and its filtered
     * planes must not be toned as if they were images */
    lm_pixfilter filter;
    if ((rc = lm_pixfilter_from_schema(lm_dataset_schema(ds), c, o->in, &filter, err))) {
        lm_dataset_close(ds);
        return rc;
    }
    if (!lm_pixfilter_none(&filter) && lm_policy_is_photometric(&o->policy)) {
        lm_dataset_close(ds);
        return lm_fail(err, LUMEN_EINVAL,
                       "augment-materialize: dataset %s has a high-pass channel (ingest highpass); "
                       "contrast / brightness / gamma would tone it as an image: use geometric "
                       "augmentation only", o->in);
    }
    size_t chw = (size_t)h * w * c;
    uint8_t *px = malloc(chw);
    float *tone = malloc(chw * sizeof *tone);
    float *zero = calloc((size_t)c, sizeof *zero), *unit = malloc((size_t)c * sizeof *unit);
    lm_dataset_writer *wr = NULL;
    if (!px || !tone || !zero || !unit) {
        rc = lm_fail(err, LUMEN_ENOMEM, "augment-materialize: out of memory");
        goto out;
    }
    for (int i = 0; i < c; i++)
        unit[i] = 1.0f;
    lm_dataset_spec spec = {.height = info->height, .width = info->width,
                            .channels = info->channels, .nlabels = info->nlabels,
                            .labels = info->labels};
    if ((rc = lm_dataset_create(o->out, &spec, &wr, err)))
        goto out;
    uint64_t seed = lm_rng_key(o->seed, LM_RNG_MATERIALIZE, 0, 0);
    size_t n = lm_dataset_count(ds), total = info->nval + info->nheld +
                                              info->ntrain * ((size_t)o->variants + !!o->keep_original);
    for (size_t i = 0; i < n; i++) {
        if (o->cancelled && (i & 31) == 0 && o->cancelled(o->user)) {
            rc = lm_fail(err, LUMEN_ECANCELED, "augment-materialize: cancelled");
            goto out;
        }
        lm_record rec;
        if ((rc = lm_dataset_get(ds, i, &rec))) {
            rc = lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: unreadable", o->in, i);
            goto out;
        }
        if (rec.split != LM_SPLIT_TRAIN || o->keep_original)
            if ((rc = lm_dataset_put(wr, &rec, err)))
                goto out;
        if (rec.split != LM_SPLIT_TRAIN)
            continue;
        for (int v = 0; v < o->variants; v++) {
            nn_aug_params p;
            lm_policy_draw(&o->policy, seed, (uint64_t)v, i, h, w, &p);
            if ((rc = nn_aug_apply(rec.pixels, c, h, w, &p, zero, unit, tone))) {
                rc = lm_fail(err, rc, "augment-materialize: record %zu: augmentation failed", i);
                goto out;
            }
            for (size_t j = 0; j < chw; j++)
                px[j] = (uint8_t)lrintf(fminf(fmaxf(tone[j], 0.0f), 1.0f) * 255.0f);
            if ((rc = put_variant(wr, &rec, px, v, err)))
                goto out;
        }
        if (o->progress)
            o->progress(o->user, (int64_t)lm_dataset_written(wr), (int64_t)total);
    }
    /* schema extra: {"augment": {policy..., "variants", "keep_original", "source"}} */
    char *pj = lm_policy_to_json(&o->policy);
    cJSON *extra = cJSON_CreateObject(), *aug = pj ? cJSON_Parse(pj) : NULL;
    free(pj);
    if (!extra || !aug || !cJSON_AddNumberToObject(aug, "variants", o->variants) ||
        !cJSON_AddBoolToObject(aug, "keep_original", o->keep_original) ||
        !cJSON_AddStringToObject(aug, "source", o->in) ||
        !cJSON_AddItemToObject(extra, "augment", aug) ||
        (!lm_pixfilter_none(&filter) &&
         !cJSON_AddItemToObject(extra, "filter", lm_pixfilter_to_json(&filter)))) {
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(extra, "augment")))
            cJSON_Delete(aug);
        cJSON_Delete(extra);
        rc = lm_fail(err, LUMEN_ENOMEM, "augment-materialize: out of memory");
        goto out;
    }
    if (written)
        *written = lm_dataset_written(wr);
    rc = lm_dataset_finish(wr, extra, err);
    wr = NULL;
    cJSON_Delete(extra);
out:
    lm_dataset_abort(wr);
    lm_dataset_close(ds);
    free(px);
    free(tone);
    free(zero);
    free(unit);
    return rc;
}

/* ---- the plugin wrapper ------------------------------------------------------- */

typedef struct host_user {
    lumen_ctx *ctx;
    const lumen_host *host;
} host_user;

static int host_cancelled(void *user) {
    host_user *u = user;
    return u->host->cancelled(u->ctx);
}

static void host_progress(void *user, int64_t done, int64_t total) {
    host_user *u = user;
    u->host->progress(u->ctx, done, total, "img", "materializing augmented copies");
}

static int materialize_check(lumen_ctx *ctx, const lumen_host *host) {
    lm_policy p;
    return augment_policy_from_params(ctx, host, &p);
}

/* The variants are drawn from the experiment seed, which the parameters do
 * not show: fold it into the key so another seed makes another entry. */
static int materialize_key(lumen_ctx *ctx, const lumen_host *host) {
    uint64_t seed = host->seed(ctx);
    host->key_add(ctx, &seed, sizeof seed);
    return LUMEN_OK;
}

static int materialize_run(lumen_ctx *ctx, const lumen_host *host) {
    augment_materialize_opts o = {0};
    int rc = augment_policy_from_params(ctx, host, &o.policy);
    if (rc)
        return rc;
    o.in = host->input(ctx, "dataset");
    o.out = host->output(ctx, "dataset");
    if (!o.in || !o.out)
        return host->fail(ctx, LUMEN_ENOTFOUND, "augment-materialize: no input or output "
                                                "folder for artifact \"dataset\"");
    o.seed = host->seed(ctx);
    o.variants = (int)host->get_int(ctx, "materialize");
    o.keep_original = host->get_bool(ctx, "keep_original");
    host_user u = {ctx, host};
    o.user = &u;
    o.cancelled = host_cancelled;
    o.progress = host_progress;
    lm_err e = {0};
    size_t n = 0;
    if ((rc = augment_materialize(&o, &n, &e)))
        return host->fail(ctx, rc, "%s", e.msg);
    host->log(ctx, LUMEN_LOG_INFO, "augment-materialize: wrote %zu records (%d variants per "
                                   "training image)", n, o.variants);
    return LUMEN_OK;
}

const lumen_stage augment_materialize_stage = {
    LUMEN_STAGE_HEADER,
    .name = "augment-materialize",
    .version = "1",
    .summary = "offline augmented copy of a dataset: N augmented variants per training image",
    .params = PARAMS,
    .inputs = INPUTS,
    .outputs = OUTPUTS,
    .flags = LUMEN_STAGE_CACHEABLE,
    .key = materialize_key,
    .check = materialize_check,
    .run = materialize_run,
};
