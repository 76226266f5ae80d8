/*
 * validate.h -- the validate stage's core, independent of the plugin host
 * (plugin.c maps the stage parameters onto validate_opts).
 *
 * Reads <model_in>/<checkpoint>.safetensors (written by train), evaluates it
 * in eval mode (evaluate.h; optional dihedral TTA) on the dataset's
 * validation split, or on another labelled CSV whose images are decoded
 * like ingest (infer.h), and computes the validation report (valreport.h:
 * per-class P/R/F1/AP/confusion counts, macro and micro F1 at 0.5 and at the
 * chosen thresholds, thresholds tuned in-sample and their 2-fold
 * cross-fitted estimate).  Writes
 *
 *   <report_out>/report.json   the valreport document plus
 *                              "checkpoint": {"name","epoch"},
 *                              "source": {"kind":"split","split":"val"} or
 *                                        {"kind":"csv","csv":..,"root":..},
 *                              "tta", "views", "loss_unweighted", "seconds"
 *   <report_out>/report.txt    the same as a readable table
 *   <report_out>/predictions.json  every sample's probabilities, targets and
 *                              name (predictions.h)
 *                              "groups" (with o->groups): per group of images
 *                              {"n", "labels": {label: {support, precision,
 *                              recall, f1, ap}}, "f1_mean", "ap_mean",
 *                              "f1_micro"} at the reported thresholds; F1 and
 *                              AP null for a label without positives in the
 *                              group, and then the group's means too
 *   <report_out>/errors.png    (errors > 0) the worst false positives and
 *                              false negatives per label at the reported
 *                              thresholds, as a contact sheet (errsheet.h)
 *   <model_out>/<checkpoint>.safetensors
 *                              the checkpoint with "thresholds" := the chosen
 *                              ones (the ones reported) and "validated" :=
 *                              {"checkpoint","split","csv"?,"tta","thresholds"
 *                               (mode),"n","seed","metrics":{main metrics}}
 *   <model_out>/<other files>  every other file of <model_in> (the other
 *                              checkpoint, ...) unchanged (hard link, else
 *                              copy), so the output is a complete "model"
 *
 * "loss_unweighted" (and the metric val/loss_unweighted) is the mean binary
 * cross-entropy without pos_weight or label smoothing: the checkpoint does
 * not record the training loss settings, and train's own "val/loss" (with
 * them) is not overwritten.
 *
 * Errors: 0 or LUMEN_E* with a message naming the file or key at fault:
 * LUMEN_ENOTFOUND (no such checkpoint), LUMEN_EDATA (bad checkpoint,
 * dataset/checkpoint mismatch in labels or image size, empty validation
 * split, CSV rows or images that cannot be used -- all listed, CSV labels
 * other than the checkpoint's), LUMEN_EINVAL, LUMEN_EIO, LUMEN_ENOMEM,
 * LUMEN_ECANCELED.
 */
#ifndef VALIDATE_H
#define VALIDATE_H

#include <stdint.h>

#include "lm_util.h"
#include "valreport.h"

typedef struct validate_opts {
    const char *dataset;    /* dataset folder (ingest output) */
    const char *model_in;   /* model folder (train output) */
    const char *model_out;  /* model folder to write (exists) */
    const char *report_out; /* report folder to write (exists) */
    const char *checkpoint; /* "best" or "last" */
    const char *csv;        /* NULL: the dataset's validation split */
    const char *root;       /* images of csv; NULL: the CSV's folder */
    int64_t limit;          /* > 0: only the first `limit` CSV rows */
    int mode;               /* enum lm_vreport_mode */
    float threshold;        /* LM_THR_FIXED */
    int tta;
    int batch;              /* >= 1 */
    const char *backend;    /* nn_engine_create name; NULL = "auto" */
    int threads;            /* engine and decoding threads; <= 0: all cores */
    uint64_t seed;          /* cross-fitting folds */
    const char *ensemble;   /* NULL, or a manifest / folder (ensemble.h):
                             * evaluate the mean of its models instead of
                             * model_in (which is copied through unchanged;
                             * <report>/ensemble.json gets the thresholds) */
    int errors;             /* > 0: <report>/errors.png with this many worst
                             * false positives and negatives per label
                             * (errsheet.h); 0: none */
    const char *groups;     /* NULL, or a label file grouping the images
                             * (groups.h): report.json "groups" and a table
                             * in report.txt, every group at the reported
                             * thresholds */
    const char *groups_column; /* its column; NULL: the default */

    /* Optional callbacks, called from the calling thread. */
    void *user;
    void (*log)(void *user, int level, const char *msg);
    /* key "val/...", main: also a run summary value; step = the
     * checkpoint's epoch (0 when unknown) */
    void (*metric)(void *user, const char *key, double value, int64_t step, int main);
    void (*progress)(void *user, int64_t done, int64_t total);
    int (*cancelled)(void *user);
} validate_opts;

void validate_opts_default(validate_opts *o);

typedef struct validate_result {
    lm_vreport report;
    double loss;
    int views;
    double seconds;
} validate_result;

int validate_run(const validate_opts *o, validate_result *res, lm_err *err);

/* The stage descriptor (plugin.c), for tests. */
extern const lumen_stage validate_stage;

#endif /* VALIDATE_H */
