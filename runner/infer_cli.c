/* infer_cli.c -- see infer_cli.h. */
#include "infer_cli.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void rn_infer_args_default(rn_infer_args *a) {
    memset(a, 0, sizeof *a);
    a->backend = "auto";
    a->batch = 32;
    a->threads = 0;
}

static int parse_int(const char *cmd, const char *opt, const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        rn_cli_error("%s: %s must be an integer in [%d, %d], got '%s'", cmd, opt, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 1;
}

int rn_infer_option(const char *cmd, int argc, char **argv, int *i, rn_infer_args *a) {
    const char *v;
    int m;
    if (!strcmp(argv[*i], "--tta")) {
        a->tta = 1;
        return 1;
    }
    if ((m = rn_cli_value(argc, argv, i, "--csv", &v))) return m < 0 ? -1 : (a->csv = v, 1);
    if ((m = rn_cli_value(argc, argv, i, "--root", &v))) return m < 0 ? -1 : (a->root = v, 1);
    if ((m = rn_cli_value(argc, argv, i, "--backend", &v))) return m < 0 ? -1 : (a->backend = v, 1);
    if ((m = rn_cli_value(argc, argv, i, "--batch", &v)))
        return m < 0 ? -1 : parse_int(cmd, "--batch", v, 1, 4096, &a->batch);
    if ((m = rn_cli_value(argc, argv, i, "--threads", &v)))
        return m < 0 ? -1 : parse_int(cmd, "--threads", v, 1, 1024, &a->threads);
    return 0;
}

int rn_infer_session_load(const rn_infer_args *a, int names_only, const char *const *names,
                          size_t n, rn_infer_session *s, lm_err *err) {
    memset(s, 0, sizeof *s);
    int rc = lm_infer_model_load(a->checkpoint, &s->model, err);
    if (rc) return rc;
    if (a->csv) {
        rc = lm_image_set_from_csv(a->csv, a->root, names_only, 0, &s->model, a->threads,
                                   &s->set, &s->probs, err);
        s->listed = s->set.n + s->probs.count;
    } else {
        rc = lm_image_set_load(names, n, a->root, NULL, &s->model, a->threads, &s->set, err);
        s->listed = n;
    }
    return rc;
}

int rn_infer_session_run(const rn_infer_args *a, rn_infer_session *s, lm_err *err) {
    nn_engine *e;
    int rc = lm_infer_engine(&s->model, a->backend, a->batch, a->threads, &e, err);
    if (rc) return rc;
    if (strcmp(nn_engine_backend(e), "cuda") == 0) fprintf(stderr, "runner: %s\n", nn_engine_note(e));
    lm_eval_cfg cfg;
    lm_infer_eval_cfg(&s->model, a->batch, a->tta, &cfg);
    rc = lm_infer_eval_set(e, &s->set, &cfg, &s->result, err);
    nn_engine_free(e);
    return rc;
}

void rn_infer_session_free(rn_infer_session *s) {
    if (!s) return;
    lm_eval_result_free(&s->result);
    lm_image_set_free(&s->set);
    lm_problems_free(&s->probs);
    lm_infer_model_free(&s->model);
}
