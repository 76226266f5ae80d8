/* infer_cli.c -- see infer_cli.h. */
#include "infer_cli.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    if (!strcmp(argv[*i], "--ensemble")) {
        if (a->n_ensemble) {
            rn_cli_error("%s: give --ensemble once, with every checkpoint after it", cmd);
            return -1;
        }
        int start = *i + 1;
        while (*i + 1 < argc && argv[*i + 1][0] != '-') ++*i;
        a->ensemble = (const char **)&argv[start]; /* contiguous in argv */
        a->n_ensemble = (size_t)(*i + 1 - start);
        if (a->n_ensemble == 0) {
            rn_cli_error("%s: --ensemble needs checkpoints, manifests or folders after it", cmd);
            return -1;
        }
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
    struct stat st;
    int is_ens = a->n_ensemble > 0 ||
                 (a->checkpoint && ((stat(a->checkpoint, &st) == 0 && S_ISDIR(st.st_mode)) ||
                                    (strlen(a->checkpoint) > 5 &&
                                     !strcmp(a->checkpoint + strlen(a->checkpoint) - 5, ".json"))));
    int rc = 0;
    if (is_ens) {
        const char *one[1] = {a->checkpoint};
        rc = a->n_ensemble ? lm_ensemble_from_args(a->ensemble, a->n_ensemble, &s->ens, err)
                           : lm_ensemble_from_args(one, 1, &s->ens, err);
        if (rc) return rc;
    }
    rc = lm_infer_model_load(is_ens ? s->ens.models[0] : a->checkpoint, &s->model, err);
    if (rc) return rc;
    if (is_ens && s->ens.has_thresholds) {
        int same = s->ens.k == s->model.k;
        for (int j = 0; same && j < s->model.k; j++) same = !strcmp(s->ens.labels[j], s->model.labels[j]);
        if (!same)
            return lm_fail(err, LUMEN_EDATA, "ensemble manifest: its labels differ from those of %s",
                           s->model.path);
        memcpy(s->model.thresholds, s->ens.thresholds, (size_t)s->model.k * sizeof *s->model.thresholds);
        s->model.has_thresholds = 1;
    }
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

typedef struct ens_ctx {
    const rn_infer_args *a;
    rn_infer_session *s;
} ens_ctx;

static int ens_eval(void *user, const lm_infer_model *m, nn_engine *e, lm_eval_result *r, lm_err *err) {
    const ens_ctx *c = user;
    const lm_image_set *set; /* the decoded images, or derived for m's filter */
    int rc = lm_image_sets_get(&c->s->alt, &c->s->set, NULL, 0, m, c->a->threads, &set, err);
    if (rc) return rc;
    lm_eval_cfg cfg;
    lm_infer_eval_cfg(m, c->a->batch, c->a->tta, &cfg);
    return lm_infer_eval_set(e, set, &cfg, r, err);
}

int rn_infer_session_run(const rn_infer_args *a, rn_infer_session *s, lm_err *err) {
    if (s->ens.n_models) {
        ens_ctx c = {a, s};
        return lm_ensemble_eval(&s->ens, &s->model, a->backend, a->batch, a->threads, ens_eval, &c,
                                &s->result, err);
    }
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
    lm_image_sets_free(&s->alt);
    lm_problems_free(&s->probs);
    lm_infer_model_free(&s->model);
    lm_ensemble_free(&s->ens);
}
