/* crossval.c -- the cross-validation study's nested scores, tables and
 * ensemble manifests (see crossval.h). */
#include "crossval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crossfit.h"
#include "ensemble.h"
#include "groups.h"
#include "jsonutil.h"
#include "predictions.h"
#include "sweep_search.h"
#include "track.h"

#define LM_CROSSVAL_MAX_FOLDS_RN LM_CROSSFIT_MAX_FOLDS

static double num_or_nan(const cJSON *v) { return cJSON_IsNumber(v) ? v->valuedouble : NAN; }

double rn_cv_fold_metric(const lm_metrics *x, int k, int m) {
    if (m < k) return x->cls[m].f1;
    if (m == k) return x->f1_mean;
    if (m <= 2 * k) return x->cls[m - k - 1].ap;
    if (m == 2 * k + 1) return x->ap_mean;
    return x->f1_micro;
}

/* The base metrics of a fold's metrics, per label and overall (m as in
 * rn_cv_fold_metric): 2k + 3 of them; with groups, metric m >= base is base metric
 * m % base of group m / base - 1. */
static size_t base_metrics(int k) { return 2 * (size_t)k + 3; }

char *rn_cv_metric_name(const char *const *labels, int k, int m) {
    if (m < k) return lm_sprintf("f1_%s", labels[m]);
    if (m == k) return lm_strdup("f1_mean");
    if (m <= 2 * k) return lm_sprintf("ap_%s", labels[m - k - 1]);
    if (m == 2 * k + 1) return lm_strdup("ap_mean");
    return lm_strdup("f1_micro");
}

/* The last stage of the trial that writes a "report" (validate). */
static const rn_plan_stage *report_stage(const rn_plan *p) {
    const rn_plan_stage *r = NULL;
    for (size_t i = 0; p && i < p->n; i++)
        for (size_t k = 0; p->stages[i].desc->outputs && p->stages[i].desc->outputs[k]; k++)
            if (strcmp(p->stages[i].desc->outputs[k], "report") == 0) r = &p->stages[i];
    return r;
}

typedef struct cv {
    const rn_sweep_spec *sp;
    const rn_run_env *env;
    const char *vid;     /* the validate stage's id */
    const char *ckpt;    /* its checkpoint: "best" / "last" */
    size_t reps, nm;     /* repetitions per configuration; metrics */
    int k;
    char **labels;       /* [k], from the first predictions read */
    /* spec score: each configuration's own labels (its models predict
     * them; the ensemble manifest keeps them) and, per scored label, its
     * column there; predictions are read projected onto the scored ones */
    int *full_k;         /* [config]; 0 until read */
    char ***full_labels; /* [config][full_k] */
    int *col;            /* [config][n_score] */
    char **mnames;       /* [nm] */
    double *vals;        /* [config][metric][rep] */
    int *have;           /* [config][seed]: every fold scored */
    lm_metrics *pooled;  /* [config][seed] */
    /* out-of-fold probabilities per record (summed over seeds), per config */
    size_t nrec;
    double *oof_sum;     /* [config][nrec][k] */
    float *oof_y;        /* [nrec][k] */
    int *oof_cnt;        /* [config][nrec] */
    int8_t *oof_fold;    /* [config][nrec] the record's fold; -1: none; -2: seeds disagree */
    /* seed ensembles (n_seeds >= 2): each fold scored at the mean of its
     * seeds' probabilities */
    double *ens;         /* [config][metric][fold] */
    int ens_skipped;     /* a configuration's seeds had different folds */
    /* spec ensemble "all": every configuration's fold models as one
     * predictor, each fold scored (score_all_ensemble) */
    double *all;         /* [base metric][fold]; NULL: not scored */
    const char *all_why; /* why not, when asked for */
    /* spec groups: the metrics again per group (base_metrics each) */
    const lm_groups *groups; /* sp->groups */
    size_t ng;               /* its groups; 0: no breakdown */
} cv;

static double *val_at(cv *c, size_t cfg, size_t m, size_t rep) {
    return &c->vals[(cfg * c->nm + m) * c->reps + rep];
}

static int set_labels(cv *c, const lm_preds *p, const char *path, lm_err *e) {
    if (c->labels) {
        int same = p->k == c->k;
        for (int j = 0; same && j < c->k; j++) same = strcmp(p->labels[j], c->labels[j]) == 0;
        return same ? 0 : lm_fail(e, LUMEN_EDATA, "%s: labels differ from the other folds'", path);
    }
    if (p->k > LM_METRICS_MAX_CLASSES) return lm_fail(e, LUMEN_EDATA, "%s: too many labels", path);
    c->k = p->k;
    c->nm = base_metrics(c->k) * (1 + c->ng);
    c->labels = calloc((size_t)c->k, sizeof *c->labels);
    c->mnames = calloc(c->nm, sizeof *c->mnames);
    if (!c->labels || !c->mnames) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (int j = 0; j < c->k; j++)
        if (!(c->labels[j] = lm_strdup(p->labels[j]))) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    size_t base = base_metrics(c->k);
    for (size_t m = 0; m < c->nm; m++) {
        char *nm = rn_cv_metric_name((const char *const *)c->labels, c->k, (int)(m % base));
        c->mnames[m] = nm && m >= base ? lm_sprintf("%s[%s]", nm, c->groups->group[m / base - 1]) : nm;
        if (m >= base) free(nm);
        if (!c->mnames[m]) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    size_t nc = c->sp->n_configs;
    c->vals = malloc((nc * c->nm * c->reps + 1) * sizeof *c->vals);
    if (!c->vals) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; i < nc * c->nm * c->reps; i++) c->vals[i] = NAN;
    return 0;
}

/* With a spec `score`: checks that d (configuration cf's predictions, read
 * from path) holds every scored label and the labels cf's other folds had,
 * remembers them (the first time), and projects d onto the scored labels,
 * in score order.  Without one: nothing.  LUMEN_EINVAL naming a missing
 * label (with the ones there are), LUMEN_EDATA, LUMEN_ENOMEM. */
static int project_scored(cv *c, size_t cf, lm_preds *d, const char *path, lm_err *e) {
    const rn_sweep_spec *sp = c->sp;
    if (!sp->score) return 0;
    size_t nc = sp->n_configs, ns = sp->n_score;
    if (!c->full_k) {
        c->full_k = calloc(nc, sizeof *c->full_k);
        c->full_labels = calloc(nc, sizeof *c->full_labels);
        c->col = calloc(nc * ns, sizeof *c->col);
        if (!c->full_k || !c->full_labels || !c->col) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    if (c->full_k[cf]) {
        int same = d->k == c->full_k[cf];
        for (int j = 0; same && j < d->k; j++) same = strcmp(d->labels[j], c->full_labels[cf][j]) == 0;
        if (!same) return lm_fail(e, LUMEN_EDATA, "%s: labels differ from the other folds'", path);
    } else {
        int *col = c->col + cf * ns;
        for (size_t i = 0; i < ns; i++) {
            int j = 0;
            while (j < d->k && strcmp(d->labels[j], sp->score[i]) != 0) j++;
            if (j == d->k) {
                char have[512] = "";
                for (int q = 0; q < d->k; q++)
                    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", q ? ", " : "", d->labels[q]);
                return lm_fail(e, LUMEN_EINVAL,
                               "%s:%d: crossval score: '%s' is not a label of the folds' predictions (%s: %s)",
                               sp->file, sp->line, sp->score[i], path, have);
            }
            col[i] = j;
        }
        if (!(c->full_labels[cf] = calloc((size_t)d->k, sizeof **c->full_labels)))
            return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        c->full_k[cf] = d->k;
        for (int j = 0; j < d->k; j++)
            if (!(c->full_labels[cf][j] = lm_strdup(d->labels[j]))) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    const int *col = c->col + cf * ns;
    size_t k = (size_t)d->k;
    float row_p[LM_METRICS_MAX_CLASSES], row_y[LM_METRICS_MAX_CLASSES];
    for (int64_t i = 0; i < d->n; i++) { /* in place: row i's ns values end where row i's k began */
        for (size_t s = 0; s < ns; s++) row_p[s] = d->p[i * k + col[s]], row_y[s] = d->y[i * k + col[s]];
        memcpy(d->p + i * ns, row_p, ns * sizeof *row_p);
        memcpy(d->y + i * ns, row_y, ns * sizeof *row_y);
    }
    char **names = calloc(ns, sizeof *names);
    for (size_t s = 0; names && s < ns; s++)
        if (!(names[s] = lm_strdup(sp->score[s]))) {
            for (size_t t = 0; t < s; t++) free(names[t]);
            free(names);
            names = NULL;
        }
    if (!names) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (int j = 0; j < d->k; j++) free(d->labels[j]);
    free(d->labels);
    d->labels = names;
    d->k = (int)ns;
    return 0;
}

/* Grows the out-of-fold store to hold record index `need - 1`. */
static int oof_grow(cv *c, size_t need) {
    if (need <= c->nrec) return 0;
    size_t nc = c->sp->n_configs, k = (size_t)c->k, n = need;
    double *s = calloc(nc * n * k + 1, sizeof *s);
    float *y = calloc(n * k + 1, sizeof *y);
    int *cnt = calloc(nc * n + 1, sizeof *cnt);
    int8_t *fold = malloc(nc * n + 1);
    if (!s || !y || !cnt || !fold) {
        free(s);
        free(y);
        free(cnt);
        free(fold);
        return LUMEN_ENOMEM;
    }
    memset(fold, -1, nc * n + 1);
    for (size_t cf = 0; cf < nc && c->nrec; cf++) {
        memcpy(s + cf * n * k, c->oof_sum + cf * c->nrec * k, c->nrec * k * sizeof *s);
        memcpy(cnt + cf * n, c->oof_cnt + cf * c->nrec, c->nrec * sizeof *cnt);
        memcpy(fold + cf * n, c->oof_fold + cf * c->nrec, c->nrec);
    }
    if (c->nrec) memcpy(y, c->oof_y, c->nrec * k * sizeof *y);
    free(c->oof_sum);
    free(c->oof_y);
    free(c->oof_cnt);
    free(c->oof_fold);
    c->oof_sum = s;
    c->oof_y = y;
    c->oof_cnt = cnt;
    c->oof_fold = fold;
    c->nrec = n;
    return 0;
}

static char *preds_path(const cv *c, size_t n) {
    return lm_sprintf("%s/trials/%zu/%s/report/predictions.json", c->env->run_dir, n, c->vid);
}

/* With spec groups: the group of each of the n rows (the folds' records in
 * row order) into gid[n]; a record the groups file does not list fails
 * naming it. */
static int row_groups(const cv *c, const lm_preds *p, int K, int64_t n, int *gid, lm_err *e) {
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    if (!names) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int64_t q = 0;
    for (int f = 0; f < K; f++)
        for (int64_t i = 0; i < p[f].n; i++) names[q++] = p[f].names[i];
    lm_err ae = {0};
    int rc = lm_groups_assign(c->groups, names, n, "scored records", gid, &ae);
    if (rc) rc = lm_fail(e, rc, "%s:%d: crossval groups: %s", c->sp->file, c->sp->line, ae.msg);
    free(names);
    return rc;
}

/* The group breakdown of one scored (configuration, seed): fold f's
 * records of group g at fold f's nested thresholds, base metric m into
 * out(g, m, f).  A label without positives among them has F1 and AP NAN,
 * and so do the group's mean F1 and mean AP (F1 is undefined without
 * positives; a mean over fewer labels would not compare); a fold without
 * records of the group has every metric NAN. */
static int score_groups(const cv *c, const float *P, const float *Y, const uint8_t *F, const int *gid, int64_t n,
                        const lm_cv_fold *folds, int K, double *out, lm_err *e) {
    size_t k = (size_t)c->k, base = base_metrics(c->k);
    float *Pg = malloc(((size_t)n * k + 1) * sizeof *Pg), *Yg = malloc(((size_t)n * k + 1) * sizeof *Yg);
    int rc = Pg && Yg ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t g = 0; rc == 0 && g < c->ng; g++)
        for (int f = 0; rc == 0 && f < K; f++) {
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++)
                if (F[i] == f && gid[i] == (int)g) {
                    memcpy(Pg + m * k, P + i * k, k * sizeof *Pg);
                    memcpy(Yg + m * k, Y + i * k, k * sizeof *Yg);
                    m++;
                }
            double *o = out + g * base * (size_t)K;
            for (size_t j = 0; j < base; j++) o[j * (size_t)K + (size_t)f] = NAN;
            if (!m) continue;
            lm_metrics x;
            if ((rc = lm_metrics_compute(Pg, Yg, m, (int)k, folds[f].thresholds, &x, e))) break;
            lm_groups_undefined(&x);
            for (size_t j = 0; j < base; j++) o[j * (size_t)K + (size_t)f] = rn_cv_fold_metric(&x, (int)k, (int)j);
        }
    free(Pg);
    free(Yg);
    return rc;
}

/* Scores configuration cf, seed index s over its folds. */
static int score_cell(cv *c, size_t cf, size_t s, rn_trial_result *t, lm_err *e) {
    const rn_sweep_spec *sp = c->sp;
    int K = sp->folds, rc = 0;
    lm_preds p[LM_CROSSVAL_MAX_FOLDS_RN];
    memset(p, 0, sizeof p);
    size_t tn[LM_CROSSVAL_MAX_FOLDS_RN];
    for (int f = 0; f < K; f++) {
        tn[f] = cf * c->reps + (size_t)f * sp->n_seeds + s;
        if (!t[tn[f]].status || strcmp(t[tn[f]].status, "finished") != 0) goto out; /* incomplete */
    }
    int64_t n = 0;
    for (int f = 0; f < K && rc == 0; f++) {
        char *path = preds_path(c, tn[f]);
        if (!path) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            break;
        }
        rc = lm_preds_read(path, &p[f], e);
        if (rc == 0) rc = project_scored(c, cf, &p[f], path, e);
        if (rc == 0) rc = set_labels(c, &p[f], path, e);
        free(path);
        n += p[f].n;
    }
    if (rc) goto out;
    size_t k = (size_t)c->k;
    float *P = malloc(((size_t)n * k + 1) * sizeof *P), *Y = malloc(((size_t)n * k + 1) * sizeof *Y);
    uint8_t *F = malloc((size_t)n + 1);
    uint32_t maxi = 0;
    for (int f = 0; f < K; f++)
        for (int64_t i = 0; i < p[f].n; i++)
            if (p[f].index[i] > maxi) maxi = p[f].index[i];
    int8_t *seen = calloc((size_t)maxi + 1, 1);
    int *gid = c->ng ? malloc(((size_t)n + 1) * sizeof *gid) : NULL;
    double *gv = c->ng ? malloc((c->ng * base_metrics((int)k) * (size_t)K + 1) * sizeof *gv) : NULL;
    if (!P || !Y || !F || !seen || (c->ng && (!gid || !gv))) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out2;
    }
    int64_t q = 0;
    for (int f = 0; f < K && rc == 0; f++)
        for (int64_t i = 0; i < p[f].n; i++, q++) {
            uint32_t ix = p[f].index[i];
            if (seen[ix]) {
                rc = lm_fail(e, LUMEN_EDATA,
                             "crossval: record %u (%s) is in the validation split of two folds (trial %zu and "
                             "another): the folds do not partition the set",
                             ix, p[f].names[i], tn[f]);
                break;
            }
            seen[ix] = 1;
            memcpy(P + q * k, p[f].p + i * k, k * sizeof *P);
            memcpy(Y + q * k, p[f].y + i * k, k * sizeof *Y);
            F[q] = (uint8_t)f;
        }
    lm_cv_fold folds[LM_CROSSVAL_MAX_FOLDS_RN];
    lm_metrics pooled;
    if (rc == 0) rc = lm_crossval_nested(P, Y, F, n, (int)k, K, folds, &pooled, e);
    if (rc == 0 && c->ng) rc = row_groups(c, p, K, n, gid, e);
    if (rc == 0 && c->ng) rc = score_groups(c, P, Y, F, gid, n, folds, K, gv, e);
    if (rc == 0 && (rc = oof_grow(c, (size_t)maxi + 1)))
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) {
        c->have[cf * sp->n_seeds + s] = 1;
        c->pooled[cf * sp->n_seeds + s] = pooled;
        const char *want = strncmp(sp->metric, "cv/", 3) == 0 ? sp->metric + 3 : NULL;
        for (int f = 0; f < K; f++) {
            size_t rep = (size_t)f * sp->n_seeds + s;
            size_t base = base_metrics((int)k);
            for (size_t m = 0; m < c->nm; m++) {
                double v = m < base ? rn_cv_fold_metric(&folds[f].m, (int)k, (int)m)
                                    : gv[((m / base - 1) * base + m % base) * (size_t)K + (size_t)f];
                *val_at(c, cf, m, rep) = v;
                if (want && strcmp(want, c->mnames[m]) == 0) t[tn[f]].value = v;
            }
        }
        q = 0;
        for (int f = 0; f < K; f++)
            for (int64_t i = 0; i < p[f].n; i++, q++) {
                uint32_t ix = p[f].index[i];
                c->oof_cnt[cf * c->nrec + ix]++;
                int8_t *fo = &c->oof_fold[cf * c->nrec + ix];
                *fo = *fo == -1 || *fo == (int8_t)f ? (int8_t)f : -2;
                for (size_t j = 0; j < k; j++) {
                    c->oof_sum[(cf * c->nrec + ix) * k + j] += P[q * k + j];
                    c->oof_y[ix * k + j] = Y[q * k + j];
                }
            }
    }
out2:
    free(P);
    free(Y);
    free(F);
    free(seen);
    free(gid);
    free(gv);
out:
    for (int f = 0; f < K; f++) lm_preds_free(&p[f]);
    return rc;
}

/* Scores configuration cf's seed ensemble: every record of fold f at the
 * mean of the probabilities that fold's models (one per seed; they differ
 * only in the training seed) gave it, each fold at thresholds tuned on the
 * other folds' averaged out-of-fold predictions (nested as for one seed).
 * Needs every seed scored (c->have); otherwise leaves c->ens at NAN. */
static int score_seed_ensemble(cv *c, size_t cf, lm_err *e) {
    const rn_sweep_spec *sp = c->sp;
    size_t ns = sp->n_seeds, k = (size_t)c->k;
    int K = sp->folds, rc = 0;
    for (size_t s = 0; s < ns; s++)
        if (!c->have[cf * ns + s]) return 0;
    lm_preds p[LM_CROSSVAL_MAX_FOLDS_RN], q = {0};
    memset(p, 0, sizeof p);
    int64_t n = 0;
    double *sum[LM_CROSSVAL_MAX_FOLDS_RN] = {0};
    int32_t *slot = NULL; /* record index -> row of p[f], for the fold being read */
    size_t nslot = 0;
    for (int f = 0; f < K && rc == 0; f++) {
        for (size_t s = 0; s < ns && rc == 0; s++) {
            char *path = preds_path(c, cf * c->reps + (size_t)f * ns + s);
            lm_preds *d = s == 0 ? &p[f] : &q;
            rc = path ? lm_preds_read(path, d, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
            if (rc == 0) rc = project_scored(c, cf, d, path, e);
            if (rc == 0) rc = set_labels(c, d, path, e);
            if (rc == 0 && s == 0) {
                uint32_t maxi = 0;
                for (int64_t i = 0; i < d->n; i++)
                    if (d->index[i] > maxi) maxi = d->index[i];
                if ((size_t)maxi + 1 > nslot) {
                    int32_t *g = realloc(slot, ((size_t)maxi + 1) * sizeof *g);
                    if (!g) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
                    else {
                        slot = g;
                        nslot = (size_t)maxi + 1;
                    }
                }
                for (size_t i = 0; rc == 0 && i < nslot; i++) slot[i] = -1;
                for (int64_t i = 0; rc == 0 && i < d->n; i++) slot[d->index[i]] = (int32_t)i;
                sum[f] = calloc((size_t)d->n * k + 1, sizeof *sum[f]);
                if (rc == 0 && !sum[f]) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
                n += d->n;
            }
            /* the folds are a function of the labels and ingest's
             * split.seed; when that follows the trial seed ("auto"), the
             * seeds' folds hold different records: nothing to average */
            int same = rc == 0 && d->n == p[f].n;
            for (int64_t i = 0; same && i < d->n; i++) {
                uint32_t ix = d->index[i];
                int32_t r = ix < nslot ? slot[ix] : -1;
                if (r < 0) {
                    same = 0;
                    break;
                }
                for (size_t j = 0; j < k; j++) sum[f][(size_t)r * k + j] += d->p[i * k + j];
            }
            if (rc == 0 && !same) {
                c->ens_skipped = 1;
                free(path);
                if (s > 0) lm_preds_free(&q);
                goto done;
            }
            free(path);
            if (s > 0) lm_preds_free(&q);
        }
    }
    float *P = calloc((size_t)n * k + 1, sizeof *P), *Y = calloc((size_t)n * k + 1, sizeof *Y);
    uint8_t *F = calloc((size_t)n + 1, 1);
    if (rc == 0 && (!P || !Y || !F)) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int64_t w = 0;
    for (int f = 0; rc == 0 && f < K; f++)
        for (int64_t i = 0; i < p[f].n; i++, w++) {
            for (size_t j = 0; j < k; j++) P[w * k + j] = (float)(sum[f][i * k + j] / (double)ns);
            memcpy(Y + w * k, p[f].y + i * k, k * sizeof *Y);
            F[w] = (uint8_t)f;
        }
    lm_cv_fold folds[LM_CROSSVAL_MAX_FOLDS_RN];
    memset(folds, 0, sizeof folds);
    if (rc == 0) rc = lm_crossval_nested(P, Y, F, n, (int)k, K, folds, NULL, e);
    if (rc == 0 && !c->ens) {
        size_t m = sp->n_configs * c->nm * (size_t)K;
        if (!(c->ens = malloc((m + 1) * sizeof *c->ens))) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < m; i++) c->ens[i] = NAN;
    }
    for (int f = 0; rc == 0 && f < K; f++) /* the group breakdown is the single models' only */
        for (size_t m = 0; m < base_metrics((int)k); m++)
            c->ens[(cf * c->nm + m) * (size_t)K + (size_t)f] = rn_cv_fold_metric(&folds[f].m, (int)k, (int)m);
    free(P);
    free(Y);
    free(F);
done:
    free(slot);
    for (int f = 0; f < K; f++) {
        free(sum[f]);
        lm_preds_free(&p[f]);
    }
    return rc;
}

/* The out-of-fold probability of record i averaged over configurations
 * cfs[0..ncf) (each configuration's the mean over its seeds) into p[k];
 * 0 when a configuration has none. */
static int oof_mean(const cv *c, const size_t *cfs, size_t ncf, size_t i, float *p) {
    size_t k = (size_t)c->k;
    double acc[LM_METRICS_MAX_CLASSES] = {0};
    for (size_t q = 0; q < ncf; q++) {
        int cnt = c->oof_cnt[cfs[q] * c->nrec + i];
        if (!cnt) return 0;
        for (size_t j = 0; j < k; j++) acc[j] += c->oof_sum[(cfs[q] * c->nrec + i) * k + j] / cnt;
    }
    for (size_t j = 0; j < k; j++) p[j] = (float)(ncf == 1 ? acc[j] : acc[j] / (double)ncf);
    return 1;
}

/* Spec ensemble "all": every configuration's fold models as one
 * predictor.  Each record at oof_mean over all configurations (its fold's
 * models: every configuration's, every seed's), each fold at thresholds
 * tuned on the other folds' (lm_crossval_nested, as for one model), into
 * c->all.  Needs every configuration scored, on the same folds, predicting
 * the same labels; otherwise c->all stays NULL and c->all_why says why. */
static int score_all_ensemble(cv *c, lm_err *e) {
    const rn_sweep_spec *sp = c->sp;
    size_t nc = sp->n_configs, ns = sp->n_seeds, k = (size_t)c->k, base = base_metrics(c->k);
    int K = sp->folds;
    for (size_t q = 0; q < nc * ns; q++)
        if (!c->have[q]) {
            c->all_why = "a configuration has a fold that did not finish";
            return 0;
        }
    for (size_t cf = 1; sp->score && cf < nc; cf++) {
        int same = c->full_k[cf] == c->full_k[0];
        for (int j = 0; same && j < c->full_k[0]; j++) same = !strcmp(c->full_labels[cf][j], c->full_labels[0][j]);
        if (!same) {
            c->all_why = "the configurations' models predict different labels (one manifest holds one label list)";
            return 0;
        }
    }
    for (size_t i = 0; i < c->nrec; i++)
        for (size_t cf = 0; cf < nc; cf++)
            if (c->oof_fold[cf * c->nrec + i] != c->oof_fold[i] || c->oof_fold[i] == -2 ||
                (c->oof_fold[i] >= 0) != (c->oof_cnt[cf * c->nrec + i] > 0)) {
                c->all_why = "the configurations' (or seeds') folds hold different records -- ingest's split.seed "
                             "follows the trial seed; set it to a number";
                return 0;
            }
    size_t *cfs = malloc((nc + 1) * sizeof *cfs);
    float *P = malloc((c->nrec * k + 1) * sizeof *P), *Y = malloc((c->nrec * k + 1) * sizeof *Y);
    uint8_t *F = malloc(c->nrec + 1);
    c->all = malloc((base * (size_t)K + 1) * sizeof *c->all);
    int rc = cfs && P && Y && F && c->all ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int64_t n = 0;
    for (size_t cf = 0; rc == 0 && cf < nc; cf++) cfs[cf] = cf;
    for (int f = 0; rc == 0 && f < K; f++) /* rows fold by fold, records in order, as score_cell's */
        for (size_t i = 0; i < c->nrec; i++) {
            if (c->oof_fold[i] != f || !oof_mean(c, cfs, nc, i, P + n * k)) continue;
            memcpy(Y + n * k, c->oof_y + i * k, k * sizeof *Y);
            F[n++] = (uint8_t)f;
        }
    lm_cv_fold folds[LM_CROSSVAL_MAX_FOLDS_RN];
    memset(folds, 0, sizeof folds);
    if (rc == 0) rc = lm_crossval_nested(P, Y, F, n, (int)k, K, folds, NULL, e);
    for (int f = 0; rc == 0 && f < K; f++)
        for (size_t m = 0; m < base; m++) c->all[m * (size_t)K + (size_t)f] = rn_cv_fold_metric(&folds[f].m, (int)k, (int)m);
    if (rc) {
        free(c->all);
        c->all = NULL;
    }
    free(cfs);
    free(P);
    free(Y);
    free(F);
    return rc;
}

static void add_num(cJSON *o, const char *k, double v) {
    cJSON_AddItemToObject(o, k, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

/* The ensemble manifest of configurations cfs[0..ncf) (one: the
 * configuration's; several: spec ensemble "all", same labels): their
 * finished fold models and thresholds tuned on the out-of-fold predictions
 * (oof_mean).  prefix: the manifest's way back to the run folder. */
static int write_ensemble(cv *c, const size_t *cfs, size_t ncf, const char *path, const char *prefix,
                          cJSON *row, lm_err *e) {
    const rn_sweep_spec *sp = c->sp;
    size_t cf = cfs[0];
    lm_ensemble ens = {0};
    ens.k = c->k;
    ens.labels = c->labels;
    char **models = calloc(ncf * c->reps + 1, sizeof *models);
    if (!models) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t q = 0; q < ncf; q++)
        for (size_t r = 0; r < c->reps; r++) {
            size_t n = cfs[q] * c->reps + r;
            if (!c->have[cfs[q] * sp->n_seeds + r % sp->n_seeds]) continue;
            char *rel = lm_sprintf("trials/%zu/%s/model/%s.safetensors", n, c->vid, c->ckpt);
            char *abs = rel ? lm_path_join(c->env->run_dir, rel) : NULL;
            struct stat st;
            if (rel && abs && stat(abs, &st) == 0) models[ens.n_models++] = lm_sprintf("%s%s", prefix, rel);
            free(rel);
            free(abs);
        }
    int rc = 0;
    size_t k = (size_t)c->k, m = 0;
    float *P = malloc((c->nrec * k + 1) * sizeof *P), *Y = malloc((c->nrec * k + 1) * sizeof *Y);
    if (!P || !Y) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < c->nrec; i++) {
        if (!oof_mean(c, cfs, ncf, i, P + m * k)) continue;
        memcpy(Y + m * k, c->oof_y + i * k, k * sizeof *Y);
        m++;
    }
    lm_metrics om;
    if (rc == 0 && ens.n_models && m) {
        ens.models = models;
        if ((rc = lm_metrics_tune_thresholds(P, Y, (int64_t)m, (int)k, ens.thresholds, e)) == 0)
            rc = lm_metrics_compute(P, Y, (int64_t)m, (int)k, ens.thresholds, &om, e);
        ens.has_thresholds = 1;
        cJSON *untuned = NULL;
        if (rc == 0 && sp->score && c->full_k && c->full_k[cf]) {
            /* the models predict their own labels: the manifest lists them
             * all, the scored ones at their tuned thresholds, the rest
             * (auxiliary labels) at 0.5, named as untuned */
            float tuned[LM_METRICS_MAX_CLASSES];
            memcpy(tuned, ens.thresholds, k * sizeof *tuned);
            ens.k = c->full_k[cf];
            ens.labels = c->full_labels[cf];
            for (int j = 0; j < ens.k; j++) ens.thresholds[j] = 0.5f;
            for (size_t q = 0; q < sp->n_score; q++) ens.thresholds[c->col[cf * sp->n_score + q]] = tuned[q];
            untuned = cJSON_CreateArray();
            for (int j = 0; untuned && j < ens.k; j++) {
                int scored = 0;
                for (size_t q = 0; q < sp->n_score; q++) scored |= c->col[cf * sp->n_score + q] == j;
                if (!scored) cJSON_AddItemToArray(untuned, cJSON_CreateString(ens.labels[j]));
            }
            if (!untuned) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        }
        cJSON *extra = cJSON_CreateObject();
        char *from = lm_sprintf("tuned on the %zu out-of-fold predictions of the fold models (mean over %zu "
                                "seed(s)%s); the ensemble's own scores on new data are not measured here",
                                m, sp->n_seeds, ncf > 1 ? " and the configurations" : "");
        if (!extra || !from) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        if (rc == 0) {
            cJSON_AddStringToObject(extra, "thresholds_from", from);
            cJSON_AddNumberToObject(extra, "folds", sp->folds);
            if (ncf > 1) {
                cJSON *cl = cJSON_AddArrayToObject(extra, "configs");
                for (size_t q = 0; cl && q < ncf; q++) cJSON_AddItemToArray(cl, cJSON_CreateNumber((double)cfs[q]));
            }
            cJSON *oof = cJSON_AddObjectToObject(extra, "oof_in_sample");
            add_num(oof, "f1_mean", om.f1_mean);
            add_num(oof, "ap_mean", om.ap_mean);
            if (untuned && cJSON_GetArraySize(untuned)) {
                cJSON_AddItemToObject(extra, "untuned", untuned);
                untuned = NULL;
                cJSON_AddStringToObject(extra, "untuned_why",
                                        "labels outside the crossval's score: not tuned, threshold 0.5");
            }
            rc = lm_ensemble_write(path, &ens, extra, e);
        }
        cJSON_Delete(untuned);
        free(from);
        cJSON_Delete(extra);
        if (rc == 0 && row) {
            cJSON_AddNumberToObject(row, "ensemble_models", (double)ens.n_models);
            cJSON *th = cJSON_AddArrayToObject(row, "ensemble_thresholds");
            for (int j = 0; j < ens.k; j++) cJSON_AddItemToArray(th, cJSON_CreateNumber(ens.thresholds[j]));
        }
    }
    for (size_t i = 0; i < ens.n_models; i++) free(models[i]);
    free(models);
    free(P);
    free(Y);
    return rc;
}

static char *params_text(const cJSON *p) {
    char *s = lm_strdup("");
    for (const cJSON *v = p ? p->child : NULL; s && v; v = v->next) {
        char num[64];
        const char *txt = cJSON_IsString(v) ? v->valuestring : rn_num_str(v->valuedouble, num, sizeof num);
        char *n = lm_sprintf("%s%s%s=%s", s, *s ? " " : "", v->string, txt);
        free(s);
        s = n;
    }
    return s;
}

static void csv_text(FILE *f, const char *s, int last) {
    int q = strpbrk(s, ",\"\n") != NULL;
    if (q) {
        fputc('"', f);
        for (const char *p = s; *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void csv_num(FILE *f, double v, int last) {
    char b[64] = "";
    if (isfinite(v)) snprintf(b, sizeof b, "%.17g", v);
    csv_text(f, b, last);
}

/* One metric's row of a table: the mean, sd and 95% t interval of v[n]
 * (finite values) and, when np > 0, the paired difference b - a over np
 * pairs with its interval; into mo (JSON, the difference under diff_key),
 * the csv (configuration cf, params text pt) and term.  *mean_out: the mean. */
static void metric_row(cJSON *mo, FILE *csv, FILE *term, size_t cf, const char *pt, const char *mname,
                       const double *v, size_t n, const double *a, const double *b, size_t np,
                       const char *diff_key, double *mean_out) {
    double mean, sd, half, dm = NAN, dh = NAN;
    rn_mean_ci95(v, n, &mean, &sd, &half);
    if (np) rn_paired_diff(a, b, np, &dm, &dh);
    add_num(mo, "mean", mean);
    add_num(mo, "sd", sd);
    add_num(mo, "ci95_lo", mean - half);
    add_num(mo, "ci95_hi", mean + half);
    cJSON_AddNumberToObject(mo, "n", (double)n);
    add_num(mo, diff_key, dm);
    add_num(mo, "diff_ci95", dh);
    cJSON_AddNumberToObject(mo, "pairs", (double)np);
    csv_num(csv, (double)cf, 0);
    csv_text(csv, pt, 0);
    csv_text(csv, mname, 0);
    csv_num(csv, mean, 0);
    csv_num(csv, sd, 0);
    csv_num(csv, mean - half, 0);
    csv_num(csv, mean + half, 0);
    csv_num(csv, (double)n, 0);
    csv_num(csv, dm, 0);
    csv_num(csv, dh, 0);
    csv_num(csv, (double)np, 1);
    char iv[48] = "-", dv[48] = "", ms[16] = "-", ss[16] = "-";
    if (isfinite(mean)) snprintf(ms, sizeof ms, "%.4f", mean);
    if (isfinite(sd)) snprintf(ss, sizeof ss, "%.4f", sd);
    if (isfinite(half)) snprintf(iv, sizeof iv, "[%.4f, %.4f]", mean - half, mean + half);
    if (np && isfinite(dm)) snprintf(dv, sizeof dv, isfinite(dh) ? "%+.4f +- %.4f" : "%+.4f", dm, dh);
    fprintf(term, "  %-18s %-8s %-8s %-19s %-3zu %s\n", mname, ms, ss, iv, n, dv);
    if (mean_out) *mean_out = mean;
}

/* The seed ensemble's block of configuration cf (score_seed_ensemble):
 * per metric the mean, sd and 95% t interval over the folds, and the
 * paired difference ensemble - single model, the single model's fold score
 * being the mean over its seeds.  Into row ("seed_ensemble"), the csv (as
 * configuration "<cf>", params "<params> [seed ensemble]") and term. */
static void seed_ensemble_rows(cv *c, size_t cf, const char *pt, cJSON *row, FILE *csv, FILE *term) {
    size_t K = (size_t)c->sp->folds, ns = c->sp->n_seeds;
    double v[LM_CROSSVAL_MAX_FOLDS_RN], u[LM_CROSSVAL_MAX_FOLDS_RN], w[LM_CROSSVAL_MAX_FOLDS_RN];
    cJSON *se = cJSON_AddObjectToObject(row, "seed_ensemble");
    cJSON_AddStringToObject(se, "scoring",
                            "each fold at the mean of its seeds' probabilities, thresholds nested as above; "
                            "diff: ensemble - mean of the single models' scores, paired by fold");
    cJSON_AddNumberToObject(se, "models", (double)ns);
    char *ptx = lm_sprintf("%s%s[seed ensemble]", pt ? pt : "", pt && *pt ? " " : "");
    fprintf(term, "  seed ensemble: each fold at the mean of its %zu models' probabilities\n  %-18s %-8s %-8s "
                  "%-19s %-3s %s\n",
            ns, "metric", "mean", "sd", "95% interval", "n", "ensemble - single model (paired by fold)");
    for (size_t m = 0; m < base_metrics(c->k); m++) {
        size_t n = 0, np = 0;
        cJSON *mo = cJSON_AddObjectToObject(se, c->mnames[m]), *vl = cJSON_AddArrayToObject(mo, "values");
        for (size_t f = 0; f < K; f++) {
            double x = c->ens[(cf * c->nm + m) * K + f], single = 0;
            cJSON_AddItemToArray(vl, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
            if (!isfinite(x)) continue;
            v[n++] = x;
            for (size_t s = 0; s < ns; s++) single += *val_at(c, cf, m, f * ns + s) / (double)ns;
            if (isfinite(single)) {
                u[np] = single;
                w[np++] = x;
            }
        }
        metric_row(mo, csv, term, cf, ptx ? ptx : "[seed ensemble]", c->mnames[m], v, n, u, w, np,
                   "diff_vs_single", NULL);
    }
    free(ptx);
}

/* The all-configurations ensemble's block (score_all_ensemble): per base
 * metric the mean, sd and 95% t interval over the folds and the paired
 * difference ensemble - configuration 0 (its fold score being the mean
 * over its seeds).  Into doc ("ensemble_all"), the csv (as configuration
 * "<n_configs>", params "[ensemble of all configurations]") and term. */
static void all_ensemble_rows(cv *c, cJSON *doc, FILE *csv, FILE *term) {
    size_t K = (size_t)c->sp->folds, ns = c->sp->n_seeds, nc = c->sp->n_configs;
    double v[LM_CROSSVAL_MAX_FOLDS_RN], u[LM_CROSSVAL_MAX_FOLDS_RN], w[LM_CROSSVAL_MAX_FOLDS_RN];
    cJSON *ea = cJSON_AddObjectToObject(doc, "ensemble_all");
    cJSON_AddStringToObject(ea, "scoring",
                            "each fold at the mean of every configuration's probabilities (each configuration's "
                            "the mean over its seeds), thresholds nested as above; diff: ensemble - configuration "
                            "0, paired by fold");
    cJSON_AddNumberToObject(ea, "configs", (double)nc);
    cJSON_AddNumberToObject(ea, "models", (double)(nc * ns));
    cJSON *ms = cJSON_AddObjectToObject(ea, "metrics");
    fprintf(term, "\nensemble of all %zu configurations: each fold at the mean of its %zu models' probabilities\n"
                  "  %-18s %-8s %-8s %-19s %-3s %s\n",
            nc, nc * ns, "metric", "mean", "sd", "95% interval", "n", "diff vs configuration 0 (paired by fold)");
    for (size_t m = 0; m < base_metrics(c->k); m++) {
        size_t n = 0, np = 0;
        cJSON *mo = cJSON_AddObjectToObject(ms, c->mnames[m]), *vl = cJSON_AddArrayToObject(mo, "values");
        for (size_t f = 0; f < K; f++) {
            double x = c->all[m * K + f], single = 0;
            cJSON_AddItemToArray(vl, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
            if (!isfinite(x)) continue;
            v[n++] = x;
            for (size_t s = 0; s < ns; s++) single += *val_at(c, 0, m, f * ns + s) / (double)ns;
            if (isfinite(single)) {
                u[np] = single;
                w[np++] = x;
            }
        }
        metric_row(mo, csv, term, nc, "[ensemble of all configurations]", c->mnames[m], v, n, u, w, np, "diff", NULL);
    }
}

int rn_crossval_results(const rn_sweep_spec *sp, const rn_plan *trial_plan, const cJSON *labels,
                        rn_trial_result *t, size_t nt, const rn_run_env *env, FILE *term, lm_err *e) {
    const rn_plan_stage *vs = report_stage(trial_plan);
    if (!vs)
        return lm_fail(e, LUMEN_EDATA,
                       "%s:%d: crossval needs a validate stage inside it (its predictions are what the folds "
                       "are scored on)",
                       sp->file, sp->line);
    if (sp->folds > LM_CROSSVAL_MAX_FOLDS_RN) return lm_fail(e, LUMEN_EINVAL, "crossval: too many folds");
    /* every fold is scored on its last epoch (sweep.c sets checkpoint=last) */
    cv c = {.sp = sp, .env = env, .vid = vs->id, .ckpt = "last",
            .reps = rn_sweep_reps(sp), .groups = sp->groups, .ng = sp->groups ? sp->groups->ngroups : 0};
    size_t nc = sp->n_configs, ns = sp->n_seeds;
    c.have = calloc(nc * ns + 1, sizeof *c.have);
    c.pooled = calloc(nc * ns + 1, sizeof *c.pooled);
    int rc = c.have && c.pooled ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (nt < nc * c.reps) rc = lm_fail(e, LUMEN_EINVAL, "crossval: %zu trials for %zu", nt, nc * c.reps);
    for (size_t cf = 0; rc == 0 && cf < nc; cf++)
        for (size_t s = 0; rc == 0 && s < ns; s++) rc = score_cell(&c, cf, s, t, e);
    for (size_t cf = 0; rc == 0 && ns >= 2 && cf < nc; cf++) rc = score_seed_ensemble(&c, cf, e);
    if (rc == 0 && sp->ensemble_all && c.labels) {
        if (nc < 2) c.all_why = "the study has one configuration";
        else rc = score_all_ensemble(&c, e);
    }
    if (rc) goto out;
    if (!c.labels) {
        fprintf(term, "\n[%s] no configuration has every fold finished: no cross-validated scores\n", sp->id);
        goto out;
    }
    /* statistics */
    cJSON *doc = cJSON_CreateObject();
    cJSON *cfgs = cJSON_AddArrayToObject(doc, "configs");
    cJSON *mn = cJSON_AddArrayToObject(doc, "metrics");
    cJSON_AddNumberToObject(doc, "folds", sp->folds);
    cJSON *seeds = cJSON_AddArrayToObject(doc, "seeds");
    for (size_t s = 0; s < ns; s++) cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)sp->seeds[s]));
    cJSON_AddStringToObject(doc, "scoring",
                            "each fold at thresholds tuned on the other folds' out-of-fold predictions; mean, sd "
                            "and 95% t interval over folds x seeds; differences paired by fold and seed");
    cJSON_AddNumberToObject(doc, "control", 0);
    for (size_t m = 0; m < c.nm; m++) cJSON_AddItemToArray(mn, cJSON_CreateString(c.mnames[m]));
    char *text = NULL;
    size_t tlen = 0;
    FILE *csv = open_memstream(&text, &tlen);
    if (!doc || !cfgs || !mn || !csv) {
        if (csv) fclose(csv);
        free(text);
        cJSON_Delete(doc);
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    const char *hdr[] = {"config", "params", "metric", "mean", "sd", "ci95_lo", "ci95_hi", "n", "diff_vs_control",
                         "diff_ci95", "pairs"};
    for (size_t i = 0; i < 11; i++) csv_text(csv, hdr[i], i == 10);
    fprintf(term, "\ncross-validation: %d folds x %zu seed(s); each fold scored at thresholds tuned on the other "
                  "folds' out-of-fold predictions\n(mean over folds x seeds, sd, 95%% t interval; differences to "
                  "configuration 0 paired by fold and seed)\n",
            sp->folds, ns);
    if (sp->score) {
        cJSON *sc = cJSON_AddArrayToObject(doc, "score");
        fprintf(term, "scored labels (score):");
        for (size_t i = 0; i < sp->n_score; i++) {
            cJSON_AddItemToArray(sc, cJSON_CreateString(sp->score[i]));
            fprintf(term, "%s %s", i ? "," : "", sp->score[i]);
        }
        fprintf(term, "; other labels the models predict (auxiliary ones) are trained on, not scored (each "
                      "trial's validate report has them)\n");
    }
    if (c.ng) {
        cJSON *gr = cJSON_AddObjectToObject(doc, "groups");
        cJSON_AddStringToObject(gr, "file", c.groups->file);
        cJSON_AddStringToObject(gr, "column", c.groups->column);
        cJSON *gn = cJSON_AddArrayToObject(gr, "names");
        fprintf(term, "per group (column '%s' of %s; metric[group]): each fold's records of the group at that "
                      "fold's thresholds; F1 and AP of a label without positives there are left out:",
                c.groups->column, c.groups->file);
        for (size_t g = 0; g < c.ng; g++) {
            cJSON_AddItemToArray(gn, cJSON_CreateString(c.groups->group[g]));
            fprintf(term, "%s %s", g ? "," : "", c.groups->group[g]);
        }
        fprintf(term, "\n");
    }
    if (c.ens_skipped)
        fprintf(term, "(no seed ensemble: the seeds' folds hold different records -- ingest's split.seed follows "
                      "the trial seed; set it to a number to keep the folds fixed across seeds)\n");
    int best = -1;
    double bestv = NAN;
    size_t f1m = (size_t)c.k;
    double *a = malloc((c.reps + 1) * sizeof *a), *b = malloc((c.reps + 1) * sizeof *b);
    double *d = malloc((c.reps + 1) * sizeof *d);
    for (size_t cf = 0; a && b && d && cf < nc; cf++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(cfgs, row);
        cJSON_AddNumberToObject(row, "config", (double)cf);
        const cJSON *lab = cJSON_GetArrayItem(labels, (int)cf);
        cJSON_AddItemToObject(row, "params", cJSON_IsObject(lab) ? cJSON_Duplicate(lab, 1) : cJSON_CreateObject());
        char *pt = params_text(lab);
        cJSON *ms = cJSON_AddObjectToObject(row, "metrics");
        fprintf(term, "\nconfiguration %zu%s%s%s\n  %-18s %-8s %-8s %-19s %-3s %s\n", cf, pt && *pt ? " (" : "",
                pt ? pt : "", pt && *pt ? ")" : "", "metric", "mean", "sd", "95% interval", "n",
                cf ? "diff vs control (paired)" : "");
        for (size_t m = 0; m < c.nm; m++) {
            size_t n = 0, np = 0;
            cJSON *mo = cJSON_AddObjectToObject(ms, c.mnames[m]), *vl = cJSON_AddArrayToObject(mo, "values");
            double *v = a;
            for (size_t r = 0; r < c.reps; r++) {
                double x = *val_at(&c, cf, m, r);
                cJSON_AddItemToArray(vl, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
                if (isfinite(x)) v[n++] = x;
            }
            double *u = b, *w = d, mean;
            for (size_t r = 0; cf > 0 && r < c.reps; r++) {
                double x0 = *val_at(&c, 0, m, r), x1 = *val_at(&c, cf, m, r);
                if (isfinite(x0) && isfinite(x1)) {
                    u[np] = x0;
                    w[np++] = x1;
                }
            }
            metric_row(mo, csv, term, cf, pt ? pt : "", c.mnames[m], v, n, u, w, np, "diff", &mean);
            if (m == f1m && isfinite(mean) && (best < 0 || mean > bestv)) {
                best = (int)cf;
                bestv = mean;
            }
        }
        if (c.ens && isfinite(c.ens[(cf * c.nm + f1m) * (size_t)sp->folds])) seed_ensemble_rows(&c, cf, pt, row, csv, term);
        /* pooled out-of-fold decisions, mean over seeds */
        cJSON *po = cJSON_AddObjectToObject(row, "pooled_oof");
        double pf = 0;
        size_t pn = 0;
        for (size_t s = 0; s < ns; s++)
            if (c.have[cf * ns + s]) {
                pf += c.pooled[cf * ns + s].f1_mean;
                pn++;
            }
        add_num(po, "f1_mean", pn ? pf / (double)pn : NAN);
        char *mpath = lm_sprintf("%s/ensembles/%zu/%s", env->run_dir, cf, LM_ENSEMBLE_FILE);
        char *mdir = lm_sprintf("%s/ensembles/%zu", env->run_dir, cf);
        if (!mpath || !mdir) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        if (rc == 0 && pn) rc = lm_mkdirs(mdir, e);
        if (rc == 0 && pn) rc = write_ensemble(&c, &cf, 1, mpath, "../../", row, e);
        if (rc == 0 && pn) {
            char *rel = lm_sprintf("ensembles/%zu/%s", cf, LM_ENSEMBLE_FILE);
            cJSON_AddStringToObject(row, "ensemble", rel ? rel : "");
            free(rel);
        }
        free(mpath);
        free(mdir);
        free(pt);
        if (rc) break;
    }
    if (!a || !b || !d) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    free(a);
    free(b);
    free(d);
    if (rc == 0 && c.all) all_ensemble_rows(&c, doc, csv, term);
    if (rc == 0 && best >= 0) {
        cJSON_AddNumberToObject(doc, "best", best);
        char *path = lm_path_join(env->run_dir, LM_ENSEMBLE_FILE);
        size_t *all = c.all ? malloc(nc * sizeof *all) : NULL, one = (size_t)best;
        for (size_t cf = 0; all && cf < nc; cf++) all[cf] = cf;
        if (!path || (c.all && !all)) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        else rc = write_ensemble(&c, all ? all : &one, all ? nc : 1, path, "", NULL, e);
        free(path);
        free(all);
        cJSON_AddStringToObject(doc, "ensemble", c.all ? "all" : "best");
        if (c.all)
            fprintf(term, "\nbest by mean F1: configuration %d; every configuration's fold models as one predictor "
                          "(crossval ensemble = \"all\"): %s/%s\n", best, env->run_dir, LM_ENSEMBLE_FILE);
        else
            fprintf(term, "\nbest by mean F1: configuration %d; its fold models as one predictor: %s/%s\n", best,
                    env->run_dir, LM_ENSEMBLE_FILE);
        if (sp->ensemble_all && !c.all)
            fprintf(term, "(crossval ensemble = \"all\" asked for, but %s: the manifest holds the best "
                          "configuration's models)\n", c.all_why ? c.all_why : "it could not be scored");
    }
    int bad = ferror(csv);
    bad |= fclose(csv) != 0;
    char *jpath = lm_path_join(env->run_dir, "crossval.json"), *cpath = lm_path_join(env->run_dir, "crossval.csv");
    if (rc == 0 && (bad || !jpath || !cpath || !text)) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) rc = rn_json_write_atomic(jpath, doc, e);
    if (rc == 0) rc = lm_write_file_atomic(cpath, text, tlen, e);
    if (rc == 0 && best >= 0) {
        const cJSON *bm = rn_json_item(rn_json_item(cJSON_GetArrayItem(cfgs, best), "metrics"), "f1_mean");
        cJSON *v = cJSON_CreateNumber(num_or_nan(rn_json_item(bm, "mean")));
        char key[64];
        snprintf(key, sizeof key, "cv/f1_mean_best");
        if (v) rc = rn_track_summary(env->trackers, key, v, e);
        cJSON_Delete(v);
        if (rc == 0 && c.all) {
            const cJSON *am = rn_json_item(rn_json_item(rn_json_item(doc, "ensemble_all"), "metrics"), "f1_mean");
            v = cJSON_CreateNumber(num_or_nan(rn_json_item(am, "mean")));
            if (v) rc = rn_track_summary(env->trackers, "cv/f1_mean_ensemble_all", v, e);
            cJSON_Delete(v);
        }
    }
    free(jpath);
    free(cpath);
    free(text);
    cJSON_Delete(doc);
    fflush(term);
out:
    for (int j = 0; c.labels && j < c.k; j++) free(c.labels[j]);
    for (size_t m = 0; c.mnames && m < c.nm; m++) free(c.mnames[m]);
    free(c.labels);
    for (size_t cf = 0; c.full_labels && cf < nc; cf++) {
        for (int j = 0; c.full_labels[cf] && j < c.full_k[cf]; j++) free(c.full_labels[cf][j]);
        free(c.full_labels[cf]);
    }
    free(c.full_labels);
    free(c.full_k);
    free(c.col);
    free(c.mnames);
    free(c.vals);
    free(c.have);
    free(c.pooled);
    free(c.oof_sum);
    free(c.oof_y);
    free(c.oof_cnt);
    free(c.oof_fold);
    free(c.ens);
    free(c.all);
    return rc;
}
