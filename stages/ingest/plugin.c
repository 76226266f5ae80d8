/*
 * plugin.c -- the "ingest" stage plugin: maps the declared parameters onto
 * ingest_opts (ingest.h) and the host's logging, progress, cancellation and
 * summary onto its callbacks.
 */
#include <stdio.h>
#include <string.h>

#include <lumen/plugin.h>

#include "ingest.h"
#include "pixfilter.h"

#define SMOKE_LIMIT 64
#define SMOKE_SIZE 32

static const lumen_param ingest_params[] = {
    {"csv", LUMEN_PATH, NULL, 0, 0, NULL, LUMEN_PF_REQUIRED,
     "label file: ';'-separated CSV 'filename;<label>;...' (0/1 labels) or ELPV labels.csv"},
    {"root", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "folder the image paths are relative to (default: the label file's folder)"},
    {"format", LUMEN_ENUM, "auto", 0, 0, "auto|csv|elpv", 0,
     "label file format; auto tells them apart by the first line"},
    {"exclude", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "label file (CSV or ELPV, auto-detected; labels ignored) whose image paths (first "
     "column) are left out of csv; compared byte for byte with csv's paths as written "
     "(no normalisation: './a.png' != 'a.png')"},
    {"negatives.csv", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "label file (ELPV or CSV, auto-detected) of extra TRAINING negatives: its rows with "
     "defect probability <= negatives.max_prob (ELPV) or every label 0 (CSV) that csv does "
     "not list join the training split with every label 0; never validated on, csv's split "
     "and folds unchanged"},
    {"aux", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "label file (ELPV or CSV, auto-detected; ELPV's 'defective' at threshold) whose labels are "
     "appended to csv's as auxiliary multi-task targets, joined by image path; every image must "
     "be in it; the split and folds are assigned on csv's labels alone"},
    {"doubtful.csv", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "label file (ELPV or CSV, auto-detected), a second opinion on csv's negatives: a TRAINING row "
     "of csv whose every label is 0 but that this file calls defective (defect probability >= "
     "doubtful.min_prob, or a CSV label 1) is left out of training; validation keeps every row, "
     "the split and folds are unchanged"},
    {"doubtful.min_prob", LUMEN_NUM, "0.5", 0.001, 1, NULL, 0,
     "ELPV doubtful file: the defect probability from which a negative of csv is doubtful"},
    {"negatives.max_prob", LUMEN_NUM, "0", 0, 0.999, NULL, 0,
     "ELPV negatives file: the largest defect probability that counts as a negative"},
    {"threshold", LUMEN_NUM, "0.5", 0, 1, NULL, 0,
     "ELPV: label 'defective' = defect probability >= threshold"},
    {"size", LUMEN_INT, "300", 8, 4096, NULL, 0,
     "images are resized to size x size (area average down, bilinear up; aspect not kept)"},
    {"channels", LUMEN_INT, "1", 1, 3, NULL, 0,
     "1 = gray (luminance of colour images) or 3 = RGB (gray replicated); 2 is refused"},
    {"highpass.sigma", LUMEN_NUM, NULL, 0, LM_HIGHPASS_SIGMA_MAX, NULL, 0,
     "append a high-pass channel per channel (gray -> gray + high-pass): 128 + highpass.gain * "
     "(x - x blurred by a Gaussian of this sigma, in pixels at `size`); recorded in the dataset "
     "and the models trained on it, so predict filters the same way (default: none)"},
    {"highpass.gain", LUMEN_NUM, NULL, 0, LM_HIGHPASS_GAIN_MAX, NULL, 0,
     "the high-pass channel's gain (default 2; needs highpass.sigma)"},
    {"split.val", LUMEN_NUM, "0.2", 0, 0.9, NULL, 0,
     "share of each label combination that goes to the validation split"},
    {"split.seed", LUMEN_INT, "auto", 0, 0, NULL, LUMEN_PF_AUTO,
     "seed of the split shuffle; auto = the experiment's seed"},
    {"split.stratify", LUMEN_BOOL, "true", 0, 0, NULL, 0,
     "split each label combination separately (false: one seeded shuffle)"},
    {"split.folds", LUMEN_INT, "0", 0, 16, NULL, 0,
     "k-fold mode (cross-validation): deal the rows into this many folds, stratified by "
     "label combination, and validate on fold split.fold (0 = off: split.val decides)"},
    {"split.fold", LUMEN_INT, "0", 0, 15, NULL, 0,
     "k-fold mode: the fold (0 .. split.folds - 1) that becomes the validation split"},
    {"on_error", LUMEN_ENUM, "fail", 0, 0, "fail|skip", 0,
     "bad rows or images: fail listing them (file:line), or skip them with warnings"},
    {"limit", LUMEN_INT, "0", 0, 1e9, NULL, 0,
     "ingest only this many rows, a seeded random subset (0 = all; --smoke: 64)"},
    {"max_side", LUMEN_INT, "8192", 16, 65535, NULL, 0,
     "largest image width or height accepted; bigger images are bad input"},
    {"max_decoded_mib", LUMEN_INT, "256", 1, 16384, NULL, 0,
     "largest decoded image accepted, in MiB; bigger images are bad input"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static const char *const ingest_inputs[] = {NULL};
static const char *const ingest_outputs[] = {"dataset", NULL};

typedef struct bridge {
    lumen_ctx *ctx;
    const lumen_host *host;
} bridge;

static void cb_log(void *user, int level, const char *msg) {
    bridge *b = user;
    b->host->log(b->ctx, level, "%s", msg);
}

static void cb_progress(void *user, int64_t done, int64_t total) {
    bridge *b = user;
    b->host->progress(b->ctx, done, total, "img", NULL);
}

static int cb_cancelled(void *user) {
    bridge *b = user;
    return b->host->cancelled(b->ctx);
}

static int format_of(const char *s) {
    if (s && !strcmp(s, "csv")) return LM_LABELS_CSV;
    if (s && !strcmp(s, "elpv")) return LM_LABELS_ELPV;
    return LM_LABELS_AUTO;
}

/* Fills o from the parameters (smoke applied); out stays unset. */
static void opts_from_params(lumen_ctx *ctx, const lumen_host *h, ingest_opts *o) {
    ingest_opts_default(o);
    o->csv = h->get_str(ctx, "csv");
    o->root = h->is_set(ctx, "root") ? h->get_str(ctx, "root") : NULL;
    o->exclude = h->is_set(ctx, "exclude") ? h->get_str(ctx, "exclude") : NULL;
    o->negatives = h->is_set(ctx, "negatives.csv") ? h->get_str(ctx, "negatives.csv") : NULL;
    o->negatives_max_prob = h->get_num(ctx, "negatives.max_prob");
    o->aux = h->is_set(ctx, "aux") ? h->get_str(ctx, "aux") : NULL;
    o->doubtful = h->is_set(ctx, "doubtful.csv") ? h->get_str(ctx, "doubtful.csv") : NULL;
    o->doubtful_min_prob = h->get_num(ctx, "doubtful.min_prob");
    o->format = format_of(h->get_str(ctx, "format"));
    o->threshold = h->get_num(ctx, "threshold");
    o->size = (int)h->get_int(ctx, "size");
    o->channels = (int)h->get_int(ctx, "channels");
    if (h->is_set(ctx, "highpass.sigma")) {
        o->filter.highpass_sigma = h->get_num(ctx, "highpass.sigma");
        o->filter.highpass_gain = h->is_set(ctx, "highpass.gain") ? h->get_num(ctx, "highpass.gain") : 2.0;
    }
    o->val = h->get_num(ctx, "split.val");
    o->seed = h->is_auto(ctx, "split.seed") ? h->seed(ctx)
                                             : (uint64_t)h->get_int(ctx, "split.seed");
    o->stratify = h->get_bool(ctx, "split.stratify");
    o->folds = (int)h->get_int(ctx, "split.folds");
    o->fold = (int)h->get_int(ctx, "split.fold");
    const char *oe = h->get_str(ctx, "on_error");
    o->skip_bad = oe && !strcmp(oe, "skip");
    o->limit = h->get_int(ctx, "limit");
    o->limits = LM_IMAGE_LIMITS_DEFAULT;
    o->limits.max_width = o->limits.max_height = (uint32_t)h->get_int(ctx, "max_side");
    o->limits.max_decoded = (size_t)h->get_int(ctx, "max_decoded_mib") << 20;
    if (h->smoke(ctx)) {
        if (o->limit == 0 || o->limit > SMOKE_LIMIT) o->limit = SMOKE_LIMIT;
        if (o->size > SMOKE_SIZE) o->size = SMOKE_SIZE;
    }
    o->threads = h->threads(ctx);
}

static void key_add_cb(void *user, const void *data, size_t len) {
    bridge *b = user;
    b->host->key_add(b->ctx, data, len);
}

static int ingest_stage_key(lumen_ctx *ctx, const lumen_host *h) {
    ingest_opts o;
    opts_from_params(ctx, h, &o);
    bridge b = {ctx, h};
    lm_err e = {0};
    /* Fold the effective values the parameters do not show: --smoke changes
     * limit and size (a smoke run never shares an entry with a full one),
     * and split.seed = "auto" is the experiment seed, which picks the split
     * and the limit subset.  The thread count is left out: the output is
     * the same for every thread count (ingest.h). */
    int64_t eff[3] = {o.limit, o.size, (int64_t)o.seed};
    h->key_add(ctx, eff, sizeof eff);
    int rc = ingest_key(&o, key_add_cb, &b, &e);
    return rc ? h->fail(ctx, rc, "%s", e.msg) : LUMEN_OK;
}

static int ingest_stage_check(lumen_ctx *ctx, const lumen_host *h) {
    int64_t c = h->get_int(ctx, "channels");
    if (c != 1 && c != 3)
        return h->fail(ctx, LUMEN_EINVAL, "channels: must be 1 (gray) or 3 (RGB), got %lld",
                       (long long)c);
    if (h->is_set(ctx, "highpass.gain") && !h->is_set(ctx, "highpass.sigma"))
        return h->fail(ctx, LUMEN_EINVAL, "highpass.gain: set without highpass.sigma (the filter is off)");
    if (h->is_set(ctx, "highpass.sigma")) {
        ingest_opts o;
        opts_from_params(ctx, h, &o);
        const lm_pixfilter f = o.filter;
        lm_err e = {0};
        if (f.highpass_sigma == 0.0 || lm_pixfilter_check(&f, "highpass", &e))
            return h->fail(ctx, LUMEN_EINVAL, "highpass.sigma = %g / highpass.gain = %g: sigma must be in "
                           "[%g, %g] pixels and gain in (0, %g] (leave highpass out for no filter)",
                           f.highpass_sigma, f.highpass_gain, LM_HIGHPASS_SIGMA_MIN,
                           LM_HIGHPASS_SIGMA_MAX, LM_HIGHPASS_GAIN_MAX);
    }
    int64_t folds = h->get_int(ctx, "split.folds"), fold = h->get_int(ctx, "split.fold");
    if (folds == 1)
        return h->fail(ctx, LUMEN_EINVAL, "split.folds: 1 fold leaves nothing to train on; use 0 "
                                          "(off) or 2 .. 16");
    if (folds >= 2 && fold >= folds)
        return h->fail(ctx, LUMEN_EINVAL, "split.fold = %lld: must be below split.folds = %lld",
                       (long long)fold, (long long)folds);
    return LUMEN_OK;
}

static int ingest_stage_run(lumen_ctx *ctx, const lumen_host *h) {
    ingest_opts o;
    opts_from_params(ctx, h, &o);
    bridge b = {ctx, h};
    o.out = h->output(ctx, "dataset");
    if (!o.out) return h->fail(ctx, LUMEN_ERR, "ingest: the host gave no 'dataset' folder");
    o.user = &b;
    o.log = cb_log;
    o.progress = cb_progress;
    o.cancelled = cb_cancelled;
    if (h->smoke(ctx))
        h->log(ctx, LUMEN_LOG_INFO, "ingest: smoke run: limit %lld, size %d", (long long)o.limit,
               o.size);
    ingest_result r;
    lm_err e = {0};
    int rc = ingest_run(&o, &r, &e);
    if (rc) return h->fail(ctx, rc, "%s", e.msg);
    h->summary(ctx, "ingest/images", (double)r.images);
    h->summary(ctx, "ingest/train", (double)r.train);
    h->summary(ctx, "ingest/val", (double)r.val);
    h->summary(ctx, "ingest/skipped", (double)r.skipped);
    h->summary(ctx, "ingest/excluded", (double)r.excluded);
    if (o.negatives) h->summary(ctx, "ingest/negatives", (double)r.negatives);
    if (o.doubtful) h->summary(ctx, "ingest/doubtful", (double)r.doubtful);
    h->summary(ctx, "ingest/seconds", r.seconds);
    h->summary(ctx, "ingest/images_per_s", r.seconds > 0 ? (double)r.images / r.seconds : 0);
    return LUMEN_OK;
}

const lumen_stage ingest_stage = {
    LUMEN_STAGE_HEADER,
    .name = "ingest",
    .version = "1",
    .summary = "label CSV + PNG folder -> LMDB dataset (decoded, resized, labelled, split)",
    .params = ingest_params,
    .inputs = ingest_inputs,
    .outputs = ingest_outputs,
    .flags = LUMEN_STAGE_CACHEABLE,
    .key = ingest_stage_key,
    .check = ingest_stage_check,
    .run = ingest_stage_run,
};

static const lumen_stage *const ingest_stages[] = {&ingest_stage, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return ingest_stages;
}
