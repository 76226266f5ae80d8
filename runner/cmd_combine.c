/*
 * cmd_combine.c -- `runner combine MEMBER... [--json FILE] [--runs DIR]`:
 * the cross-validated score of an ensemble of finished crossval studies'
 * models, from the fold predictions they already wrote (nothing trains).
 *
 * MEMBER is RUN[:CONFIG[:SEED]]: a finished lumen.crossval run (a folder,
 * or EXPERIMENT/RUN-ID under the runs folder), the configuration number of
 * its crossval.json (default 0) and a trial seed (default: every seed of
 * the configuration, each a model).  Every model must have been scored on
 * the same folds -- each fold holding the same cells with the same labels
 * (the same data and ingest split.seed / folds) -- or the command fails
 * naming the first difference.  The labels scored are the first model's;
 * the others must predict each of them (extra labels are ignored).
 *
 * Each fold is scored like lumen.crossval scores a configuration
 * (lm_crossval_nested: thresholds tuned on the other folds' out-of-fold
 * predictions, never on the fold scored), once per model alone and once at
 * the mean of the models' probabilities.  Printed: per model and for the
 * ensemble the mean over folds of each label's F1 and AP, the mean F1 with
 * its 95% t interval and the mean AP; then the paired difference ensemble
 * - first model, fold by fold, with its 95% t interval (--base N: ensemble
 * - the ensemble of the first N models, scored the same way: does adding
 * the others to those N help?); then per label how
 * many cells every model gets wrong (cells every recipe misses or flags are
 * where to look for label noise).  --json FILE also writes every per-fold
 * value; --wrong FILE every (cell, label) some model gets wrong at its
 * nested threshold, "filename;label;truth;wrong;models", most models
 * first.  An ensemble that scores well here is
 * trained by training each member's recipe; its manifest is not written
 * (the members' fold models may need different inputs).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "crossfit.h"
#include "crossval.h"
#include "jsonutil.h"
#include "paths.h"
#include "predictions.h"
#include "strv.h"
#include "sweep_search.h"

static const char USAGE[] =
    "usage: runner combine RUN[:CONFIG[:SEED]]... [--base N] [--json FILE] [--wrong FILE] [--runs DIR]\n";

#define MAX_MODELS 64
#define MAX_FOLDS LM_CROSSFIT_MAX_FOLDS

typedef struct model {
    char *name;            /* "EXPERIMENT/RUN-ID:CONFIG seed S" */
    char *run;             /* the run folder */
    int config, seed;
    lm_preds fold[MAX_FOLDS];
    char *path[MAX_FOLDS]; /* each fold's predictions.json */
    int *col;              /* [k]: column of each scored label */
} model;

typedef struct combo {
    model m[MAX_MODELS];
    int n, K, k;
    char **labels; /* the first model's, borrowed */
} combo;

static void model_free(model *m) {
    for (int f = 0; f < MAX_FOLDS; f++) {
        lm_preds_free(&m->fold[f]);
        free(m->path[f]);
    }
    free(m->name);
    free(m->run);
    free(m->col);
}

/* A JSON integer in int range, else -1 (missing, not a number, huge). */
static int int_of(const cJSON *v) {
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    return d >= 0 && d <= 1e6 && d == (double)(int)d ? (int)d : -1;
}

/* "RUN:C:S" -> run text, config, seed (-1 = all); the suffixes are digits. */
static void split_member(const char *arg, char **run, int *config, int *seed) {
    char *s = lm_strdup(arg);
    int nums[2], n = 0;
    *config = 0;
    *seed = -1;
    while (s && n < 2) {
        char *c = strrchr(s, ':');
        if (!c || !c[1] || strspn(c + 1, "0123456789") != strlen(c + 1) || strlen(c + 1) > 6) break;
        nums[n++] = atoi(c + 1);
        *c = '\0';
    }
    if (n == 1) *config = nums[0];
    if (n == 2) *config = nums[1], *seed = nums[0];
    *run = s;
}

/* The folder of `trial` that holds report/predictions.json (the validate
 * stage's), or NULL (none, or more than one: *many set). */
static char *trial_predictions(const char *trial, int *many) {
    rn_strv subs = {0};
    DIR *d = opendir(trial);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *p = lm_sprintf("%s/%s/report/predictions.json", trial, de->d_name);
        if (p && lm_exists(p)) rn_strv_take(&subs, p);
        else free(p);
    }
    if (d) closedir(d);
    *many = subs.n > 1;
    char *one = subs.n == 1 ? lm_strdup(subs.v[0]) : NULL;
    rn_strv_free(&subs);
    return one;
}

/* Reads the models of one member into c->m[c->n...]. */
static int load_member(combo *c, const char *cwd, const char *runs, const char *arg, lm_err *e) {
    char *rtext = NULL;
    int config, seed;
    split_member(arg, &rtext, &config, &seed);
    if (!rtext) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    char *run = lm_is_dir(rtext) ? rn_abspath(cwd, rtext) : lm_path_join(runs, rtext);
    char *cvp = run ? lm_path_join(run, "crossval.json") : NULL;
    cJSON *cv = NULL, *seeds = NULL;
    rn_strv trials = {0};
    int rc = 0;
    if (!run || !cvp) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (!lm_is_dir(run)) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s: no run folder '%s' (nor %s)", arg, rtext, run);
        goto out;
    }
    if (!lm_exists(cvp)) {
        rc = lm_fail(e, LUMEN_EDATA, "%s: %s has no crossval.json (not a finished lumen.crossval run)", arg, run);
        goto out;
    }
    if ((rc = rn_json_read_file(cvp, &cv, e))) goto out;
    int K = int_of(rn_json_item(cv, "folds"));
    const cJSON *cfgs = rn_json_item(cv, "configs");
    int ncfg = cJSON_GetArraySize(cfgs);
    if (K < 2 || K > MAX_FOLDS || ncfg < 1) {
        rc = lm_fail(e, LUMEN_EDATA, "%s: no folds or configurations", cvp);
        goto out;
    }
    if (config >= ncfg) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s: no configuration %d (the run has %d: 0..%d)", arg, config, ncfg, ncfg - 1);
        goto out;
    }
    if (c->n && K != c->K) {
        rc = lm_fail(e, LUMEN_EDATA, "%s: %d folds, the first member's run has %d", arg, K, c->K);
        goto out;
    }
    c->K = K;
    /* the seeds: the one asked for, or every seed of the run */
    seeds = cJSON_CreateArray();
    const cJSON *all = rn_json_item(cv, "seeds");
    for (const cJSON *s = all ? all->child : NULL; s; s = s->next)
        if (seed < 0 || int_of(s) == seed)
            cJSON_AddItemToArray(seeds, cJSON_CreateNumber(cJSON_GetNumberValue(s)));
    if (cJSON_GetArraySize(seeds) == 0) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s: the run has no seed %d", arg, seed);
        goto out;
    }
    /* every trial of this configuration: trial.json says its seed and fold */
    char *tdir = lm_path_join(run, "trials");
    DIR *d = tdir ? opendir(tdir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') rn_strv_take(&trials, lm_path_join(tdir, de->d_name));
    if (d) closedir(d);
    free(tdir);
    rn_strv_sort(&trials);
    int base = c->n;
    for (const cJSON *s = seeds->child; s && rc == 0; s = s->next) {
        if (c->n == MAX_MODELS) {
            rc = lm_fail(e, LUMEN_EINVAL, "%s: more than %d models", arg, MAX_MODELS);
            break;
        }
        model *m = &c->m[c->n++];
        memset(m, 0, sizeof *m);
        m->config = config;
        m->seed = int_of(s);
        m->run = lm_strdup(run);
        const char *slash = strrchr(run, '/');
        const char *exp_end = slash;
        while (exp_end && exp_end > run && exp_end[-1] != '/') exp_end--;
        m->name = lm_sprintf("%s:%d seed %d", exp_end ? exp_end : run, config, m->seed);
        if (!m->run || !m->name) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    for (size_t t = 0; t < trials.n && rc == 0; t++) {
        char *tj = lm_path_join(trials.v[t], "trial.json");
        cJSON *j = NULL;
        lm_err ig = {0};
        if (tj && lm_exists(tj) && rn_json_read_file(tj, &j, &ig) == 0 &&
            int_of(rn_json_item(j, "config")) == config) {
            int ts = int_of(rn_json_item(j, "seed"));
            int tf = int_of(rn_json_item(j, "fold"));
            for (int i = base; i < c->n; i++) {
                if (c->m[i].seed != ts || tf < 0 || tf >= K) continue;
                int many = 0;
                free(c->m[i].path[tf]);
                c->m[i].path[tf] = trial_predictions(trials.v[t], &many);
                if (many)
                    rc = lm_fail(e, LUMEN_EDATA, "%s: more than one stage wrote report/predictions.json",
                                 trials.v[t]);
            }
        }
        cJSON_Delete(j);
        free(tj);
    }
    for (int i = base; i < c->n && rc == 0; i++)
        for (int f = 0; f < K && rc == 0; f++) {
            model *m = &c->m[i];
            if (!m->path[f]) {
                rc = lm_fail(e, LUMEN_EDATA, "%s: configuration %d, seed %d has no predictions for fold %d (its trial "
                             "did not finish)", arg, config, m->seed, f);
                break;
            }
            rc = lm_preds_read(m->path[f], &m->fold[f], e);
        }
out:
    cJSON_Delete(cv);
    cJSON_Delete(seeds);
    rn_strv_free(&trials);
    free(cvp);
    free(run);
    free(rtext);
    return rc;
}

static int by_name(const void *a, const void *b, void *ctx) {
    const lm_preds *p = ctx;
    return strcmp(p->names[*(const int64_t *)a], p->names[*(const int64_t *)b]);
}

/* Row of `name` in fold f of the first model (sorted order ord), or -1. */
static int64_t find_row(const lm_preds *p, const int64_t *ord, const char *name) {
    int64_t lo = 0, hi = p->n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int s = strcmp(p->names[ord[mid]], name);
        if (s == 0) return ord[mid];
        if (s < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Checks that every model holds fold f's cells and the first model's
 * labels, and fills row[i][r]: model i's row of the first model's row r;
 * col: each model's column of each scored label. */
static int align(combo *c, int f, int64_t **row, lm_err *e) {
    const lm_preds *p0 = &c->m[0].fold[f];
    int64_t *ord = malloc(((size_t)p0->n + 1) * sizeof *ord);
    if (!ord) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (int64_t r = 0; r < p0->n; r++) ord[r] = r;
    qsort_r(ord, (size_t)p0->n, sizeof *ord, by_name, (void *)p0);
    int rc = 0;
    for (int64_t r = 1; r < p0->n && rc == 0; r++)
        if (strcmp(p0->names[ord[r]], p0->names[ord[r - 1]]) == 0 || !p0->names[ord[r]][0])
            rc = lm_fail(e, LUMEN_EDATA, "%s: cell names are missing or repeated ('%s')", c->m[0].path[f],
                         p0->names[ord[r]]);
    for (int i = 0; i < c->n && rc == 0; i++) {
        model *m = &c->m[i];
        const lm_preds *p = &m->fold[f];
        if (!m->col && !(m->col = malloc((size_t)c->k * sizeof *m->col))) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            break;
        }
        for (int j = 0; j < c->k && rc == 0; j++) {
            int q = 0;
            while (q < p->k && strcmp(p->labels[q], c->labels[j]) != 0) q++;
            if (q == p->k)
                rc = lm_fail(e, LUMEN_EDATA, "%s: no label '%s' (the first model's)", m->path[f], c->labels[j]);
            m->col[j] = q;
        }
        if (rc) break;
        if (p->n != p0->n) {
            rc = lm_fail(e, LUMEN_EDATA, "%s: fold %d holds %lld cells, %s's %lld: the runs' folds differ (same data, "
                         "ingest split.seed and folds needed)", m->name, f, (long long)p->n, c->m[0].name,
                         (long long)p0->n);
            break;
        }
        for (int64_t r = 0; r < p->n && rc == 0; r++) {
            int64_t at = find_row(p0, ord, p->names[r]);
            if (at < 0) {
                rc = lm_fail(e, LUMEN_EDATA, "%s: fold %d holds %s, %s's does not: the runs' folds differ (same data, "
                             "ingest split.seed and folds needed)", m->name, f, p->names[r], c->m[0].name);
                break;
            }
            row[i][at] = r;
            for (int j = 0; j < c->k; j++)
                if (p->y[r * p->k + m->col[j]] != p0->y[at * p0->k + c->m[0].col[j]]) {
                    rc = lm_fail(e, LUMEN_EDATA, "%s: %s is labelled %s=%g, in %s %g: not the same labels",
                                 m->name, p->names[r], c->labels[j], p->y[r * p->k + m->col[j]], c->m[0].name,
                                 p0->y[at * p0->k + c->m[0].col[j]]);
                    break;
                }
        }
    }
    free(ord);
    return rc;
}

/* The cells, fold by fold in the first model's row order: their number,
 * the name and the truth of label j of cell q. */
static int64_t cells(const combo *c) {
    int64_t n = 0;
    for (int f = 0; f < c->K; f++) n += c->m[0].fold[f].n;
    return n;
}

static const lm_preds *cell_at(const combo *c, int64_t *q) {
    int f = 0;
    while (*q >= c->m[0].fold[f].n) *q -= c->m[0].fold[f++].n;
    return &c->m[0].fold[f];
}

static const char *cell_name(const combo *c, int64_t q) {
    const lm_preds *p = cell_at(c, &q);
    return p->names[q];
}

static int truth(const combo *c, int64_t q, int j) {
    const lm_preds *p = cell_at(c, &q);
    return p->y[q * p->k + c->m[0].col[j]] >= 0.5f;
}

/* Scores the mean of models [lo, hi) over every fold into v[metric][fold];
 * wrong (or NULL), per cell (the first model's rows, fold by fold) and
 * label: +1 where the decision at the fold's nested threshold is wrong. */
static int score(const combo *c, int64_t *const *const *rows, int lo, int hi, double *v, int *wrong, lm_err *e) {
    int64_t n = cells(c);
    size_t k = (size_t)c->k, nm = 2 * k + 3;
    float *P = malloc(((size_t)n * k + 1) * sizeof *P), *Y = malloc(((size_t)n * k + 1) * sizeof *Y);
    uint8_t *F = malloc((size_t)n + 1);
    int rc = 0;
    if (!P || !Y || !F) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int64_t q = 0;
    for (int f = 0; f < c->K && rc == 0; f++) {
        const lm_preds *p0 = &c->m[0].fold[f];
        for (int64_t r = 0; r < p0->n; r++, q++) {
            for (size_t j = 0; j < k; j++) {
                double s = 0;
                for (int i = lo; i < hi; i++) {
                    const lm_preds *p = &c->m[i].fold[f];
                    s += p->p[rows[f][i][r] * p->k + c->m[i].col[j]];
                }
                P[q * k + j] = (float)(s / (hi - lo));
                Y[q * k + j] = p0->y[r * p0->k + c->m[0].col[j]];
            }
            F[q] = (uint8_t)f;
        }
    }
    lm_cv_fold folds[MAX_FOLDS];
    if (rc == 0) rc = lm_crossval_nested(P, Y, F, n, c->k, c->K, folds, NULL, e);
    for (int64_t r = 0; rc == 0 && wrong && r < n; r++)
        for (size_t j = 0; j < k; j++)
            wrong[r * (int64_t)k + (int64_t)j] += (P[r * (int64_t)k + (int64_t)j] >= folds[F[r]].thresholds[j]) !=
                                                  (Y[r * (int64_t)k + (int64_t)j] >= 0.5f);
    for (int f = 0; f < c->K && rc == 0; f++)
        for (size_t m = 0; m < nm; m++) v[m * (size_t)c->K + (size_t)f] = rn_cv_fold_metric(&folds[f].m, c->k, (int)m);
    free(P);
    free(Y);
    free(F);
    return rc;
}

static cJSON *stats_json(const double *v, int K, const double *base) {
    cJSON *o = cJSON_CreateObject(), *vals = cJSON_CreateArray();
    double mean, sd, h;
    rn_mean_ci95(v, (size_t)K, &mean, &sd, &h);
    for (int f = 0; f < K; f++)
        cJSON_AddItemToArray(vals, isfinite(v[f]) ? cJSON_CreateNumber(v[f]) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "values", vals);
    cJSON_AddNumberToObject(o, "mean", mean);
    cJSON_AddNumberToObject(o, "sd", sd);
    cJSON_AddNumberToObject(o, "ci95_lo", mean - h);
    cJSON_AddNumberToObject(o, "ci95_hi", mean + h);
    if (base) {
        double dm, dh;
        rn_paired_diff(base, v, (size_t)K, &dm, &dh);
        cJSON_AddNumberToObject(o, "diff", dm);
        cJSON_AddNumberToObject(o, "diff_ci95", dh);
    }
    return o;
}

/* {metric: stats_json} over the nm metrics of one row of values (row
 * m * K .. ), diffs against ref's rows when ref is not NULL. */
static cJSON *metrics_json(const combo *c, const double *vals, const double *ref) {
    cJSON *met = cJSON_CreateObject();
    for (int m = 0; m < 2 * c->k + 3; m++) {
        char *name = rn_cv_metric_name((const char *const *)c->labels, c->k, m);
        cJSON_AddItemToObject(met, name ? name : "?",
                              stats_json(vals + (size_t)m * c->K, c->K, ref ? ref + (size_t)m * c->K : NULL));
        free(name);
    }
    return met;
}

static char *fmt_mean(const double *v, int K, int ci) {
    double mean, h;
    rn_mean_ci95(v, (size_t)K, &mean, NULL, &h);
    if (!isfinite(mean)) return lm_strdup("-");
    if (!ci) return lm_sprintf("%.3f", mean);
    return lm_sprintf("%.3f [%.3f, %.3f]", mean, mean - h, mean + h);
}

/* Per label: the cells every model gets wrong at its nested thresholds
 * (positives missed, negatives flagged), and those most models do. */
static void report_wrong(const combo *c, const int *wrong) {
    int64_t n = cells(c);
    for (int j = 0; j < c->k; j++) {
        int64_t all_fn = 0, all_fp = 0, most = 0, any = 0;
        for (int64_t q = 0; q < n; q++) {
            int w = wrong[q * c->k + j];
            int pos = truth(c, q, j);
            any += w > 0;
            most += 2 * w > c->n;
            all_fn += w == c->n && pos;
            all_fp += w == c->n && !pos;
        }
        printf("%s: %lld cell(s) wrong in every model (%lld positive(s) missed, %lld negative(s) flagged), %lld in "
               "most, %lld in at least one\n",
               c->labels[j], (long long)(all_fn + all_fp), (long long)all_fn, (long long)all_fp, (long long)most,
               (long long)any);
    }
}

/* The (cell, label) pairs some model gets wrong, most models first, as
 * "filename;label;truth;wrong;models" lines. */
static int write_wrong(const combo *c, const int *wrong, const char *path, lm_err *e) {
    int64_t n = cells(c), m = 0;
    int64_t *ord = malloc(((size_t)n * (size_t)c->k + 1) * sizeof *ord);
    if (!ord) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (int w = c->n; w >= 1; w--) /* a counting sort: stable, cells in fold order */
        for (int64_t x = 0; x < n * c->k; x++)
            if (wrong[x] == w) ord[m++] = x;
    size_t cap = 64 * (size_t)m + 64, len = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) len += (size_t)snprintf(buf, cap, "filename;label;truth;wrong;models\n");
    for (int64_t i = 0; rc == 0 && i < m; i++) {
        int64_t q = ord[i] / c->k;
        int j = (int)(ord[i] % c->k);
        const char *name = cell_name(c, q);
        size_t need = strlen(name) + strlen(c->labels[j]) + 48;
        if (len + need >= cap) {
            char *g = realloc(buf, cap = 2 * cap + need);
            if (!g) {
                rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
                break;
            }
            buf = g;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s;%s;%d;%d;%d\n", name, c->labels[j], truth(c, q, j),
                                wrong[ord[i]], c->n);
    }
    if (rc == 0) rc = lm_write_file_atomic(path, buf, len, e);
    free(buf);
    free(ord);
    return rc;
}

static int run_combine(combo *c, int base, const char *json_out, const char *wrong_out, lm_err *e) {
    int K = c->K, k = c->k, nm = 2 * k + 3, rows_n = c->n + 2, rc = 0;
    int64_t **rows[MAX_FOLDS] = {0};
    double *v = calloc((size_t)rows_n * (size_t)nm * (size_t)K + 1, sizeof *v);
    int *wrong = calloc((size_t)cells(c) * (size_t)k + 1, sizeof *wrong);
    if (!v || !wrong) {
        free(v);
        free(wrong);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    for (int f = 0; f < K && rc == 0; f++) {
        if (!(rows[f] = calloc((size_t)c->n, sizeof *rows[f]))) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        for (int i = 0; i < c->n && rc == 0; i++)
            if (!(rows[f][i] = malloc(((size_t)c->m[0].fold[f].n + 1) * sizeof **rows[f])))
                rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        if (rc == 0) rc = align(c, f, rows[f], e);
    }
    /* rows 0..n-1: each model alone; row n: the ensemble */
    for (int i = 0; i < c->n && rc == 0; i++)
        rc = score(c, (int64_t *const *const *)rows, i, i + 1, v + (size_t)i * nm * K, wrong, e);
    if (rc == 0) rc = score(c, (int64_t *const *const *)rows, 0, c->n, v + (size_t)c->n * nm * K, NULL, e);
    /* row n + 1: the reference of the paired differences, the first base
     * models' ensemble (the first model itself when base is 1) */
    const double *vb = v;
    if (rc == 0 && base > 1) {
        rc = score(c, (int64_t *const *const *)rows, 0, base, v + (size_t)(c->n + 1) * nm * K, NULL, e);
        vb = v + (size_t)(c->n + 1) * nm * K;
    }

    if (rc == 0) {
        int64_t cells = 0;
        for (int f = 0; f < K; f++) cells += c->m[0].fold[f].n;
        printf("cross-validated ensemble of %d model(s) per fold: %d folds, %lld cells; each fold at thresholds "
               "tuned on the other folds' out-of-fold predictions\n",
               c->n, K, (long long)cells);
        size_t cols = (size_t)k + 3 + 1, r = 0;
        const char **cells_t = calloc(((size_t)rows_n + 2) * cols, sizeof *cells_t);
        char **own = calloc(((size_t)rows_n + 2) * cols, sizeof *own);
        if (!cells_t || !own) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        static const char *const tail[] = {"f1_mean [95% t]", "ap_mean", "f1_micro"};
        for (size_t x = 0; rc == 0 && x < cols; x++) /* header */
            own[x] = x == 0                ? lm_strdup("model")
                     : x <= (size_t)k      ? rn_cv_metric_name((const char *const *)c->labels, k, (int)x - 1)
                                           : lm_strdup(tail[x - (size_t)k - 1]);
        for (int i = 0; rc == 0 && i <= c->n + (base > 1); i++) {
            r++;
            const double *vi = v + (size_t)i * nm * K;
            own[r * cols] = i < c->n    ? lm_strdup(c->m[i].name)
                            : i == c->n ? lm_sprintf("ensemble (mean of %d)", c->n)
                                        : lm_sprintf("base: mean of the first %d", base);
            for (int j = 0; j < k; j++) own[r * cols + 1 + (size_t)j] = fmt_mean(vi + (size_t)j * K, K, 0);
            own[r * cols + (size_t)k + 1] = fmt_mean(vi + (size_t)k * K, K, 1);
            own[r * cols + (size_t)k + 2] = fmt_mean(vi + (size_t)(2 * k + 1) * K, K, 0);
            own[r * cols + (size_t)k + 3] = fmt_mean(vi + (size_t)(2 * k + 2) * K, K, 0);
        }
        if (rc == 0) { /* the paired difference ensemble - first model (or base) */
            r++;
            own[r * cols] = base > 1 ? lm_sprintf("ensemble - base (mean of the first %d)", base)
                                     : lm_sprintf("ensemble - %s", c->m[0].name);
            const double *ve = v + (size_t)c->n * nm * K;
            int show[4] = {-1, k, 2 * k + 1, 2 * k + 2};
            for (size_t x = 1; x < cols; x++) {
                int m = x <= (size_t)k ? (int)x - 1 : show[x - (size_t)k];
                double dm, dh;
                rn_paired_diff(vb + (size_t)m * K, ve + (size_t)m * K, (size_t)K, &dm, &dh);
                own[r * cols + x] = lm_sprintf("%+.3f +- %.3f", dm, dh);
            }
        }
        for (size_t x = 0; rc == 0 && x < (r + 1) * cols; x++) cells_t[x] = own[x];
        if (rc == 0) rn_cli_table(cells_t, r + 1, cols);
        for (size_t x = 0; own && x < ((size_t)rows_n + 2) * cols; x++) free(own[x]);
        free(own);
        free(cells_t);
    }
    if (rc == 0) report_wrong(c, wrong);
    if (rc == 0 && wrong_out) rc = write_wrong(c, wrong, wrong_out, e);
    if (rc == 0 && json_out) {
        cJSON *doc = cJSON_CreateObject(), *models = cJSON_CreateArray();
        cJSON_AddNumberToObject(doc, "folds", K);
        cJSON *labs = cJSON_CreateArray();
        for (int j = 0; j < k; j++) cJSON_AddItemToArray(labs, cJSON_CreateString(c->labels[j]));
        cJSON_AddItemToObject(doc, "labels", labs);
        cJSON_AddStringToObject(doc, "scoring", "each fold at thresholds tuned on the other folds' out-of-fold "
                                                "predictions; mean, sd and 95% t interval over folds; diff: "
                                                "paired by fold, ensemble - base (the mean of models[0] .. "
                                                "models[base.models - 1]; models[0] when base.models is 1)");
        for (int i = 0; i <= c->n; i++) {
            cJSON *row = cJSON_CreateObject();
            if (i < c->n) {
                cJSON_AddStringToObject(row, "run", c->m[i].run);
                cJSON_AddNumberToObject(row, "config", c->m[i].config);
                cJSON_AddNumberToObject(row, "seed", c->m[i].seed);
            }
            cJSON_AddItemToObject(row, "metrics", metrics_json(c, v + (size_t)i * nm * K, i == c->n ? vb : NULL));
            if (i < c->n) cJSON_AddItemToArray(models, row);
            else cJSON_AddItemToObject(doc, "ensemble", row);
        }
        cJSON_AddItemToObject(doc, "models", models);
        cJSON *bo = cJSON_CreateObject(); /* the base: its own values when it is an ensemble */
        cJSON_AddNumberToObject(bo, "models", base);
        if (base > 1) cJSON_AddItemToObject(bo, "metrics", metrics_json(c, vb, NULL));
        cJSON_AddItemToObject(doc, "base", bo);
        rc = rn_json_write_atomic(json_out, doc, e);
        cJSON_Delete(doc);
    }
    for (int f = 0; f < K; f++) {
        for (int i = 0; rows[f] && i < c->n; i++) free(rows[f][i]);
        free(rows[f]);
    }
    free(v);
    free(wrong);
    return rc;
}

int rn_cmd_combine(int argc, char **argv) {
    const char *runs_opt = NULL, *json_out = NULL, *wrong_out = NULL, *base_opt = NULL, *v;
    rn_strv args = {0};
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = rn_cli_value(argc, argv, &i, "--runs", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            runs_opt = v;
        } else if ((m = rn_cli_value(argc, argv, &i, "--json", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            json_out = v;
        } else if ((m = rn_cli_value(argc, argv, &i, "--wrong", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            wrong_out = v;
        } else if ((m = rn_cli_value(argc, argv, &i, "--base", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            base_opt = v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s\nThe cross-validated score of an ensemble of finished lumen.crossval runs' models, from the "
                   "fold predictions they wrote (nothing trains): each fold at the mean of the models' "
                   "probabilities, thresholds tuned on the other folds (nested), beside each model alone and the "
                   "paired difference to the first (--base N: to the ensemble of the first N models, counted "
                   "as listed).  RUN: a run folder or EXPERIMENT/RUN-ID; CONFIG: its crossval.json configuration "
                   "(default 0); SEED: one trial seed (default: each seed is a model). "
                   "The runs must share their folds.  --json FILE: every per-fold value.  --wrong FILE: the "
                   "cells some model gets wrong at its nested thresholds, per label, as "
                   "'filename;label;truth;wrong;models' (most models first).\n",
                   USAGE);
            rn_strv_free(&args);
            return RN_EXIT_OK;
        } else if (argv[i][0] == '-') {
            static const char *const known[] = {"--runs", "--json", "--wrong", "--base", "--help", NULL};
            rn_cli_unknown_option(argv[i], known);
            rn_strv_free(&args);
            return RN_EXIT_USAGE;
        } else {
            rn_strv_push(&args, argv[i]);
        }
    }
    if (args.n == 0) {
        rn_cli_error("combine: no run named (%s)", USAGE);
        return RN_EXIT_USAGE;
    }
    int base = 1;
    if (base_opt) {
        char *end;
        long b = strtol(base_opt, &end, 10);
        if (end == base_opt || *end || b < 1 || b > MAX_MODELS) {
            rn_cli_error("combine: --base %s: want a number of models, 1 or more (the first N models' ensemble is "
                         "the reference of the differences)",
                         base_opt);
            rn_strv_free(&args);
            return RN_EXIT_USAGE;
        }
        base = (int)b;
    }
    rn_paths paths;
    lm_err e = {0};
    if (rn_paths_init(&paths, &e)) {
        rn_cli_error("%s", e.msg);
        rn_strv_free(&args);
        return RN_EXIT_FAIL;
    }
    char *runs = rn_runs_dir(paths.cwd, runs_opt);
    combo *c = calloc(1, sizeof *c);
    int rc = (!runs || !c) ? lm_fail(&e, LUMEN_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; i < args.n && rc == 0; i++) rc = load_member(c, paths.cwd, runs, args.v[i], &e);
    if (rc == 0) {
        c->labels = c->m[0].fold[0].labels;
        c->k = c->m[0].fold[0].k;
        for (int f = 1; f < c->K && rc == 0; f++) { /* one model's folds agree on the labels */
            const lm_preds *p = &c->m[0].fold[f];
            int same = p->k == c->k;
            for (int j = 0; same && j < c->k; j++) same = strcmp(p->labels[j], c->labels[j]) == 0;
            if (!same) rc = lm_fail(&e, LUMEN_EDATA, "%s: labels differ from fold 0's", c->m[0].path[f]);
        }
    }
    if (rc == 0 && (c->k < 1 || c->k > LM_METRICS_MAX_CLASSES))
        rc = lm_fail(&e, LUMEN_EDATA, "%s: %d labels", c->m[0].path[0], c->k);
    if (rc == 0 && base > 1 && base >= c->n) /* counted in models: a RUN of several seeds is several */
        rc = lm_fail(&e, LUMEN_EINVAL, "--base %d: the members name %d model(s); the base must leave some to add",
                     base, c->n);
    if (rc == 0) rc = run_combine(c, base, json_out, wrong_out, &e);
    if (rc) rn_cli_error("combine: %s", e.msg);
    for (int i = 0; c && i < c->n; i++) model_free(&c->m[i]);
    free(c);
    free(runs);
    rn_paths_free(&paths);
    rn_strv_free(&args);
    return rc ? RN_EXIT_FAIL : RN_EXIT_OK;
}
