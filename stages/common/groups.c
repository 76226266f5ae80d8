/* groups.c -- see groups.h. */
#include "groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvparse.h"
#include "metrics.h"
#include "problems.h"

void lm_groups_free(lm_groups *g) {
    if (!g) return;
    free(g->file);
    free(g->column);
    for (size_t i = 0; g->group && i < g->ngroups; i++) free(g->group[i]);
    free(g->group);
    for (size_t i = 0; g->entry && i < g->n; i++) free(g->entry[i].name);
    free(g->entry);
    memset(g, 0, sizeof *g);
}

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const lm_group_entry *)a)->name, ((const lm_group_entry *)b)->name);
}

/* ELPV meta "type=<t>;prob=<p>": a copy of the value of key. */
static char *meta_value(const char *meta, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = meta; p && *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') return lm_sprintf("%.*s", (int)(len - kl - 1), p + kl + 1);
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static int printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

int lm_groups_load(const char *path, const char *column, lm_groups *g, lm_err *err) {
    memset(g, 0, sizeof *g);
    lm_label_table t = {0};
    lm_problems probs;
    lm_problems_init(&probs);
    /* CSV: the named column, "" = the second one; ELPV: read as usual */
    lm_labels_opts o = {.format = LM_LABELS_AUTO, .threshold = 0.5, .text_column = column ? column : ""};
    int rc = lm_labels_load(path, &o, &t, &probs, err);
    if (rc) goto out;
    if (t.format == LM_LABELS_ELPV) {
        if (!column) column = "type";
        if (strcmp(column, "type") != 0 && strcmp(column, "probability") != 0) {
            rc = lm_fail(err, LUMEN_EINVAL,
                         "%s: an ELPV labels file groups by \"type\" or \"probability\", not '%s'", path, column);
            goto out;
        }
    }
    if (t.bad_rows) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: %zu bad row(s) for groups; the first: %s", path, t.bad_rows,
                     probs.kept ? probs.msg[0] : "(message lost: out of memory)");
        goto out;
    }
    g->file = lm_strdup(path);
    g->column = lm_strdup(t.format == LM_LABELS_ELPV ? column : t.text_column);
    g->group = calloc(LM_GROUPS_MAX, sizeof *g->group);
    g->entry = calloc(t.nrows + 1, sizeof *g->entry);
    if (!g->file || !g->column || !g->group || !g->entry) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    const char *key = strcmp(g->column, "type") == 0 ? "type" : "prob"; /* ELPV */
    for (size_t i = 0; rc == 0 && i < t.nrows; i++) {
        const lm_label_row *r = &t.rows[i];
        char *v = t.format == LM_LABELS_CSV ? lm_strdup(r->meta) : meta_value(r->meta, key);
        if (!v) {
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
            break;
        }
        if (!printable(v)) {
            rc = lm_fail(err, LUMEN_EDATA, "%s:%d: group name holds a control character", path, r->line);
            free(v);
            break;
        }
        size_t j = 0;
        while (j < g->ngroups && strcmp(g->group[j], v) != 0) j++;
        if (j == g->ngroups) {
            if (g->ngroups == LM_GROUPS_MAX) {
                rc = lm_fail(err, LUMEN_EDATA, "%s:%d: more than %d groups in column '%s' (a group per image?)",
                             path, r->line, LM_GROUPS_MAX, g->column);
                free(v);
                break;
            }
            g->group[g->ngroups++] = v;
        } else {
            free(v);
        }
        g->entry[g->n++] = (lm_group_entry){.name = t.rows[i].name, .gid = (int)j};
        t.rows[i].name = NULL; /* moved */
    }
    if (rc == 0) qsort(g->entry, g->n, sizeof *g->entry, entry_cmp);
out:
    lm_labels_free(&t);
    lm_problems_free(&probs);
    if (rc) lm_groups_free(g);
    return rc;
}

int lm_groups_find(const lm_groups *g, const char *name) {
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->entry[mid].name, name);
        if (c == 0) return g->entry[mid].gid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int lm_groups_assign(const lm_groups *g, const char *const *names, int64_t n, const char *what, int *gid,
                     lm_err *err) {
    int64_t missing = 0;
    const char *first = NULL;
    for (int64_t i = 0; i < n; i++)
        if ((gid[i] = names[i] ? lm_groups_find(g, names[i]) : -1) < 0 && !missing++)
            first = names[i] ? names[i] : "(one without a name)";
    if (missing)
        return lm_fail(err, LUMEN_EDATA, "%s does not list %lld of the %lld %s (the first: %s)", g->file,
                       (long long)missing, (long long)n, what, first);
    return 0;
}

void lm_groups_undefined(lm_metrics *x) {
    int all = 1;
    for (int j = 0; j < x->k; j++)
        if (!x->cls[j].support) {
            x->cls[j].f1 = x->cls[j].ap = NAN;
            all = 0;
        }
    if (!all) x->f1_mean = x->ap_mean = NAN;
}

static int put_num(cJSON *o, const char *k, double v) {
    cJSON *x = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    if (x && cJSON_AddItemToObject(o, k, x)) return 0;
    cJSON_Delete(x);
    return 1;
}

int lm_groups_report(const lm_groups *g, const float *probs, const float *targets, int64_t n, int kk,
                     const char *const *names, const char *const *labels, const float *thr, cJSON **doc,
                     char **text, lm_err *err) {
    *doc = NULL;
    *text = NULL;
    size_t k = (size_t)kk;
    int *gid = malloc(((size_t)n + 1) * sizeof *gid);
    float *P = malloc(((size_t)n * k + 1) * sizeof *P), *Y = malloc(((size_t)n * k + 1) * sizeof *Y);
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    cJSON *d = cJSON_CreateObject(), *by = d ? cJSON_AddObjectToObject(d, "by") : NULL;
    int rc = gid && P && Y && f && by ? 0 : lm_fail(err, LUMEN_ENOMEM, "out of memory");
    lm_err ae = {0};
    if (rc == 0 && lm_groups_assign(g, names, n, "images", gid, &ae))
        rc = lm_fail(err, ae.code, "groups: %s", ae.msg);
    if (rc == 0) {
        if (!cJSON_AddStringToObject(d, "file", g->file) || !cJSON_AddStringToObject(d, "column", g->column))
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        fprintf(f, "per group (column '%s' of %s), at the thresholds above; F1/AP '-' without positives:\n"
                   "  %-14s %-6s %-12s %-7s %-9s %-7s %-7s %-7s\n",
                g->column, g->file, "group", "n", "label", "support", "precision", "recall", "f1", "ap");
    }
    for (size_t q = 0; rc == 0 && q < g->ngroups; q++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (gid[i] == (int)q) {
                memcpy(P + m * k, probs + i * k, k * sizeof *P);
                memcpy(Y + m * k, targets + i * k, k * sizeof *Y);
                m++;
            }
        if (!m) continue; /* a group with no image here */
        lm_metrics x;
        if ((rc = lm_metrics_compute(P, Y, m, (int)k, thr, &x, err))) break;
        lm_groups_undefined(&x);
        cJSON *go = cJSON_AddObjectToObject(by, g->group[q]), *gl = go ? cJSON_AddObjectToObject(go, "labels") : NULL;
        if (!gl || put_num(go, "n", (double)m)) {
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
            break;
        }
        for (size_t j = 0; j < k; j++) {
            const lm_class_metrics *c = &x.cls[j];
            cJSON *lo = cJSON_AddObjectToObject(gl, labels[j]);
            if (!lo || put_num(lo, "support", (double)c->support) || put_num(lo, "precision", c->precision) ||
                put_num(lo, "recall", c->recall) || put_num(lo, "f1", c->f1) || put_num(lo, "ap", c->ap)) {
                rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
                break;
            }
            char f1s[16] = "-", aps[16] = "-";
            if (isfinite(c->f1)) snprintf(f1s, sizeof f1s, "%.4f", c->f1);
            if (isfinite(c->ap)) snprintf(aps, sizeof aps, "%.4f", c->ap);
            fprintf(f, "  %-14s %-6lld %-12s %-7lld %-9.4f %-7.4f %-7s %-7s\n", j ? "" : g->group[q],
                    j ? 0LL : (long long)m, labels[j], (long long)c->support, c->precision, c->recall, f1s, aps);
        }
        if (rc == 0 && (put_num(go, "f1_mean", x.f1_mean) || put_num(go, "ap_mean", x.ap_mean) ||
                        put_num(go, "f1_micro", x.f1_micro)))
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        char fm[16] = "-";
        if (isfinite(x.f1_mean)) snprintf(fm, sizeof fm, "%.4f", x.f1_mean);
        fprintf(f, "  %-14s %-6s %-12s mean F1 %s, micro F1 %.4f\n", "", "", "", fm, x.f1_micro);
    }
    if (f && fclose(f) != 0 && rc == 0) rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
    free(gid);
    free(P);
    free(Y);
    if (rc) {
        cJSON_Delete(d);
        free(t);
        return rc;
    }
    *doc = d;
    *text = t;
    return 0;
}

