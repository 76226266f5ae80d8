/*
 * plugin.c -- the "validate" stage plugin: maps the declared parameters onto
 * validate_opts (validate.h) and the host's logging, metrics, progress and
 * cancellation onto its callbacks.
 */
#include <stdio.h>
#include <string.h>

#include <lumen/plugin.h>

#include "validate.h"

#define SMOKE_LIMIT 64

static const lumen_param validate_params[] = {
    {"checkpoint", LUMEN_ENUM, "best", 0, 0, "best|last", 0,
     "which checkpoint of the model to validate (and calibrate)"},
    {"csv", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "evaluate on this labelled 'filename;<label>;...' CSV instead of the dataset's validation "
     "split (labels must be the checkpoint's; images decoded like ingest)"},
    {"root", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "folder the csv's image paths are relative to (default: the csv's folder)"},
    {"thresholds", LUMEN_ENUM, "tune", 0, 0, "tune|stored|fixed", 0,
     "decision thresholds: tune = per-class F1-maximizing on this split (stored with the "
     "output model), stored = the checkpoint's, fixed = `threshold` for every class"},
    {"threshold", LUMEN_NUM, "0.5", 0, 1, NULL, 0, "the threshold of thresholds = \"fixed\""},
    {"tta", LUMEN_BOOL, "false", 0, 0, NULL, 0,
     "test-time augmentation: average the probabilities over the dihedral views (8 for square "
     "images)"},
    {"batch", LUMEN_INT, "32", 1, 4096, NULL, 0, "images per forward pass"},
    {"ensemble", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "validate an ensemble instead of the input model: an ensemble.json manifest (its "
     "thresholds are the stored ones) or a folder of checkpoints; probabilities are averaged"},
    {"errors", LUMEN_INT, "8", 0, 64, NULL, 0,
     "report/errors.png: a contact sheet of this many worst false positives and false "
     "negatives per label (0 = none)"},
    {"groups", LUMEN_PATH, NULL, 0, 0, NULL, 0,
     "also report every metric per group of images: a label file mapping each image to a group "
     "(ELPV labels.csv: its type, mono/poly; a ';' CSV: groups_column), at the reported thresholds"},
    {"groups_column", LUMEN_STR, NULL, 0, 0, NULL, 0,
     "the groups file's column (ELPV: type or probability; CSV: a header name; default: type / the "
     "second column)"},
    {"backend", LUMEN_ENUM, "auto", 0, 0, "auto|cpu|cuda|ref", 0,
     "engine backend (auto: cuda when built and a GPU is usable, else cpu)"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static const char *const validate_inputs[] = {"dataset", "model", NULL};
static const char *const validate_outputs[] = {"model", "report", NULL};

typedef struct bridge {
    lumen_ctx *ctx;
    const lumen_host *host;
} bridge;

static void cb_log(void *user, int level, const char *msg) {
    bridge *b = user;
    b->host->log(b->ctx, level, "%s", msg);
}

static void cb_metric(void *user, const char *key, double value, int64_t step, int main) {
    bridge *b = user;
    b->host->metric(b->ctx, key, value, step);
    if (main) b->host->summary(b->ctx, key, value);
}

static void cb_progress(void *user, int64_t done, int64_t total) {
    bridge *b = user;
    b->host->progress(b->ctx, done, total, "img", "validate");
}

static int cb_cancelled(void *user) {
    bridge *b = user;
    return b->host->cancelled(b->ctx);
}

static int validate_stage_check(lumen_ctx *ctx, const lumen_host *h) {
    if (h->is_set(ctx, "root") && !h->is_set(ctx, "csv"))
        return h->fail(ctx, LUMEN_EINVAL, "root: only used with csv, which is not set");
    if (h->is_set(ctx, "groups_column") && !h->is_set(ctx, "groups"))
        return h->fail(ctx, LUMEN_EINVAL, "groups_column: only used with groups, which is not set");
    return LUMEN_OK;
}

static int validate_stage_run(lumen_ctx *ctx, const lumen_host *h) {
    validate_opts o;
    validate_opts_default(&o);
    bridge b = {ctx, h};
    o.dataset = h->input(ctx, "dataset");
    o.model_in = h->input(ctx, "model");
    o.model_out = h->output(ctx, "model");
    o.report_out = h->output(ctx, "report");
    if (!o.model_in || !o.model_out || !o.report_out)
        return h->fail(ctx, LUMEN_ERR, "validate: the host gave no 'model'/'report' folder");
    o.checkpoint = h->get_str(ctx, "checkpoint");
    o.csv = h->is_set(ctx, "csv") ? h->get_str(ctx, "csv") : NULL;
    o.root = h->is_set(ctx, "root") ? h->get_str(ctx, "root") : NULL;
    o.mode = lm_vreport_mode_parse(h->get_str(ctx, "thresholds"));
    o.threshold = (float)h->get_num(ctx, "threshold");
    o.tta = h->get_bool(ctx, "tta");
    o.batch = (int)h->get_int(ctx, "batch");
    o.backend = h->get_str(ctx, "backend");
    o.threads = h->threads(ctx);
    o.seed = h->seed(ctx);
    o.ensemble = h->is_set(ctx, "ensemble") ? h->get_str(ctx, "ensemble") : NULL;
    o.errors = (int)h->get_int(ctx, "errors");
    o.groups = h->is_set(ctx, "groups") ? h->get_str(ctx, "groups") : NULL;
    o.groups_column = h->is_set(ctx, "groups_column") ? h->get_str(ctx, "groups_column") : NULL;
    if (h->smoke(ctx) && o.csv) o.limit = SMOKE_LIMIT;
    o.user = &b;
    o.log = cb_log;
    o.metric = cb_metric;
    o.progress = cb_progress;
    o.cancelled = cb_cancelled;
    validate_result r;
    lm_err e = {0};
    int rc = validate_run(&o, &r, &e);
    if (rc) return h->fail(ctx, rc, "%s", e.msg);
    h->summary(ctx, "val/seconds", r.seconds);
    return LUMEN_OK;
}

const lumen_stage validate_stage = {
    LUMEN_STAGE_HEADER,
    .name = "validate",
    .version = "1",
    .summary = "evaluate a checkpoint: per-class P/R/F1/AP, macro/micro F1, tuned thresholds "
               "(stored with the model), cross-fitted estimate, report",
    .params = validate_params,
    .inputs = validate_inputs,
    .outputs = validate_outputs,
    .flags = 0,
    .check = validate_stage_check,
    .run = validate_stage_run,
};

static const lumen_stage *const validate_stages[] = {&validate_stage, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return validate_stages;
}
