/*
 * cmd_eval.c -- `runner eval CHECKPOINT --csv FILE [--root DIR] [--tta]
 * [--thresholds stored|tune|fixed] [--threshold T] [--seed N] [--batch N]
 * [--threads N] [--backend B] [--groups FILE [--groups-column C]]`: the
 * validate stage's metrics of a checkpoint
 * on a labelled CSV, as ONE JSON document on stdout (valreport.h: per class,
 * macro mean, micro, the thresholds used, n, in-sample tuned and 2-fold
 * cross-fitted F1; plus "checkpoint", "source", "tta", "views", "loss_unweighted").
 *
 * The images are decoded like ingest (infer.h); the CSV's labels must be the
 * checkpoint's.  Any bad row or unusable image is an error listing them
 * (metrics on a silently shrunk set would mislead).  --thresholds defaults
 * to stored (the checkpoint's, 0.5 when it has none).  --groups adds
 * "groups": the metrics per group of images (groups.h) at the thresholds used.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "groups.h"
#include "infer_cli.h"
#include "jsonutil.h"
#include "valreport.h"

static const char USAGE[] =
    "usage: runner eval (CHECKPOINT | --ensemble CKPT... ) --csv FILE [--root DIR] [--tta]\n"
    "                   [--thresholds stored|tune|fixed] [--threshold T] [--seed N]\n"
    "                   [--batch N] [--threads N] [--backend auto|cpu|cuda|ref]\n"
    "                   [--groups FILE [--groups-column NAME]]\n"
    "\n"
    "Evaluates a lumen checkpoint on a labelled 'filename;<label>;...' CSV (images\n"
    "relative to --root, default the CSV's folder; labels must be the checkpoint's)\n"
    "and prints the validation metrics as one JSON document: per class precision,\n"
    "recall, F1, AP, support and tp/fp/fn/tn, macro and micro F1 at 0.5 and at the\n"
    "chosen thresholds (default: the checkpoint's stored ones), the in-sample tuned\n"
    "F1 and its 2-fold cross-fitted estimate (folds seeded by --seed, default 0).\n"
    "An ensemble (--ensemble A.safetensors B.safetensors ..., or a manifest ensemble.json\n"
    "or a folder of checkpoints as CHECKPOINT) averages its models' probabilities; a\n"
    "manifest's thresholds are its stored ones.  --groups FILE (ELPV labels.csv: by cell\n"
    "type; a ';' CSV: --groups-column, default its second column) adds \"groups\": every\n"
    "label's metrics per group of images at the thresholds used.\n";

int rn_cmd_eval(int argc, char **argv) {
    rn_infer_args a;
    rn_infer_args_default(&a);
    int mode = LM_THR_STORED;
    double threshold = 0.5;
    unsigned long long seed = 0;
    const char *v, *groups_file = NULL, *groups_column = NULL;
    static const char *const known[] = {"--csv",   "--root",    "--tta",     "--thresholds",
                                        "--threshold", "--seed", "--batch", "--threads",
                                        "--backend", "--ensemble", "--groups", "--groups-column",
                                        "--help",    NULL};
    for (int i = 1; i < argc; i++) {
        int m = rn_infer_option("eval", argc, argv, &i, &a);
        if (m == 0 && (m = rn_cli_value(argc, argv, &i, "--thresholds", &v)) == 1 &&
            (mode = lm_vreport_mode_parse(v)) < 0) {
            rn_cli_error("eval: --thresholds must be stored, tune or fixed, got '%s'", v);
            return RN_EXIT_USAGE;
        }
        if (m == 0 && (m = rn_cli_value(argc, argv, &i, "--threshold", &v)) == 1) {
            char *end;
            errno = 0;
            threshold = strtod(v, &end);
            if (errno || end == v || *end || !(threshold >= 0 && threshold <= 1)) {
                rn_cli_error("eval: --threshold must be a number in [0, 1], got '%s'", v);
                return RN_EXIT_USAGE;
            }
        }
        if (m == 0 && (m = rn_cli_value(argc, argv, &i, "--groups", &v)) == 1) groups_file = v;
        if (m == 0 && (m = rn_cli_value(argc, argv, &i, "--groups-column", &v)) == 1) groups_column = v;
        if (m == 0 && (m = rn_cli_value(argc, argv, &i, "--seed", &v)) == 1) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') {
                rn_cli_error("eval: --seed must be a non-negative integer, got '%s'", v);
                return RN_EXIT_USAGE;
            }
        }
        if (m < 0) return RN_EXIT_USAGE;
        if (m) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return RN_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            rn_cli_unknown_option(argv[i], known);
            return RN_EXIT_USAGE;
        }
        if (a.checkpoint || a.n_ensemble) {
            fputs(USAGE, stderr);
            rn_cli_error("eval: unexpected argument '%s' (the images come from --csv)", argv[i]);
            return RN_EXIT_USAGE;
        }
        a.checkpoint = argv[i];
    }
    if ((!a.checkpoint && !a.n_ensemble) || !a.csv) {
        fputs(USAGE, stderr);
        rn_cli_error("eval: %s", !a.checkpoint && !a.n_ensemble ? "no CHECKPOINT given" : "--csv FILE is required");
        return RN_EXIT_USAGE;
    }
    if (groups_column && !groups_file) {
        rn_cli_error("eval: --groups-column needs --groups FILE");
        return RN_EXIT_USAGE;
    }

    rn_infer_session s;
    lm_err e = {0};
    int status = RN_EXIT_FAIL;
    char *text = NULL, *gtext = NULL;
    cJSON *doc = NULL, *gdoc = NULL;
    lm_groups groups = {0};
    const char **names = NULL;
    memset(&s, 0, sizeof s);
    if (groups_file && lm_groups_load(groups_file, groups_column, &groups, &e)) { /* before the work */
        rn_cli_error("eval: --groups: %s", e.msg);
        return RN_EXIT_FAIL;
    }
    if (rn_infer_session_load(&a, 0, NULL, 0, &s, &e)) {
        rn_cli_error("eval: %s", e.msg);
        goto out;
    }
    lm_image_set_problems(&s.set, &s.probs);
    if (s.probs.count) {
        char msg[4096];
        rn_cli_error("eval: %s", lm_problems_report(&s.probs, a.csv, msg, sizeof msg));
        goto out;
    }
    if (s.set.n == 0) {
        rn_cli_error("eval: %s: no images to evaluate", a.csv);
        goto out;
    }
    if (rn_infer_session_run(&a, &s, &e)) {
        rn_cli_error("eval: %s", e.msg);
        goto out;
    }
    lm_vreport rep;
    const lm_eval_result *r = &s.result;
    if (lm_vreport_compute(r->probs, r->targets, r->n, r->k, mode, s.model.thresholds,
                           (float)threshold, (uint64_t)seed, &rep, &e)) {
        rn_cli_error("eval: %s", e.msg);
        goto out;
    }
    if (groups_file) {
        if (!(names = calloc((size_t)r->n + 1, sizeof *names))) {
            rn_cli_error("eval: out of memory");
            goto out;
        }
        for (int64_t i = 0; i < r->n; i++) names[i] = r->index[i] < s.set.n ? s.set.names[r->index[i]] : NULL;
        if (lm_groups_report(&groups, r->probs, r->targets, r->n, r->k, names,
                             (const char *const *)s.model.labels, rep.thresholds, &gdoc, &gtext, &e)) {
            rn_cli_error("eval: %s", e.msg);
            goto out;
        }
    }
    lm_vreport_info info = {.checkpoint_file = a.checkpoint, .epoch = s.model.epoch,
                            .csv = a.csv, .root = a.root, .tta = a.tta, .views = r->views,
                            .loss = r->mean_loss, .seconds = r->seconds};
    if (!(doc = lm_vreport_json(&rep, (const char *const *)s.model.labels, &info)) ||
        (gdoc && !cJSON_AddItemReferenceToObject(doc, "groups", gdoc)) || !(text = rn_json_print(doc, 1))) {
        rn_cli_error("eval: out of memory");
        goto out;
    }
    if (puts(text) < 0 || fflush(stdout) != 0) {
        rn_cli_error("eval: writing to stdout failed");
        goto out;
    }
    status = RN_EXIT_OK;
out:
    free(text);
    cJSON_Delete(doc);
    cJSON_Delete(gdoc);
    free(gtext);
    free(names);
    lm_groups_free(&groups);
    rn_infer_session_free(&s);
    return status;
}
