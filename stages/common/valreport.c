/* valreport.c -- see valreport.h. */
#include "valreport.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lm_vreport_mode_name(int mode) {
    switch (mode) {
    case LM_THR_TUNE: return "tune";
    case LM_THR_STORED: return "stored";
    case LM_THR_FIXED: return "fixed";
    default: return "?";
    }
}

const char *lm_vreport_mode_suffix(int mode) {
    return mode == LM_THR_TUNE ? "tuned" : lm_vreport_mode_name(mode);
}

int lm_vreport_mode_parse(const char *s) {
    for (int m = LM_THR_TUNE; m <= LM_THR_FIXED; m++)
        if (s && !strcmp(s, lm_vreport_mode_name(m))) return m;
    return -1;
}

int lm_vreport_compute(const float *p, const float *y, int64_t n, int k, int mode,
                       const float *stored, float fixed, uint64_t seed, lm_vreport *r,
                       lm_err *err) {
    memset(r, 0, sizeof *r);
    if (k < 1 || k > LM_METRICS_MAX_CLASSES || n < 0 || mode < LM_THR_TUNE ||
        mode > LM_THR_FIXED || (mode == LM_THR_STORED && !stored))
        return lm_fail(err, LUMEN_EINVAL, "validation report: bad arguments (k %d, n %lld, mode %d)",
                       k, (long long)n, mode);
    r->k = k;
    r->n = n;
    r->mode = mode;
    int rc = lm_metrics_tune_thresholds(p, y, n, k, r->tuned_thr, err);
    for (int j = 0; j < k; j++)
        r->thresholds[j] = mode == LM_THR_TUNE     ? r->tuned_thr[j]
                           : mode == LM_THR_STORED ? stored[j]
                                                   : fixed;
    if (!rc) rc = lm_metrics_compute(p, y, n, k, NULL, &r->at_default, err);
    if (!rc) rc = lm_metrics_compute(p, y, n, k, r->thresholds, &r->at_chosen, err);
    if (!rc) rc = lm_metrics_compute(p, y, n, k, r->tuned_thr, &r->tuned, err);
    if (!rc) rc = lm_crossfit_tuned(p, y, n, k, LM_VREPORT_FOLDS, seed, &r->cv, err);
    return rc;
}

/* ---------------------------------------------------------------- JSON -- */

/* A number, or null when it is not finite. */
static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* A float threshold printed with the digits that read back as the same
 * float (cJSON's own %.15g/%.17g would show 0.31000000238418579). */
static cJSON *fnum(float v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    return cJSON_CreateRaw(buf);
}

/* Adds item to obj under key (or to an array when key is NULL); returns 0,
 * or 1 (item freed) when item is NULL or cannot be added.  Containers are
 * attached to their parent first and filled afterwards, so on failure the
 * caller only deletes the root. */
static int put(cJSON *obj, const char *key, cJSON *item) {
    if (!item || !obj) {
        cJSON_Delete(item);
        return 1;
    }
    if (key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item)) return 0;
    cJSON_Delete(item);
    return 1;
}

/* A new object / array attached to parent (NULL on failure). */
static cJSON *child(cJSON *parent, const char *key, int array) {
    cJSON *c = array ? cJSON_CreateArray() : cJSON_CreateObject();
    return put(parent, key, c) ? NULL : c;
}

static int put_thresholds(cJSON *obj, const char *key, const float *t, int k) {
    cJSON *a = child(obj, key, 1);
    int bad = !a;
    for (int j = 0; !bad && j < k; j++) bad = put(a, NULL, fnum(t[j]));
    return bad;
}

static int put_section(cJSON *doc, const char *key, const lm_metrics *m, const float *thr,
                       const char *const *labels) {
    cJSON *s = child(doc, key, 0);
    int bad = put_thresholds(s, "thresholds", thr, m->k);
    bad |= put(s, "f1_mean", num(m->f1_mean)) | put(s, "f1_micro", num(m->f1_micro)) |
           put(s, "precision_micro", num(m->precision_micro)) |
           put(s, "recall_micro", num(m->recall_micro)) | put(s, "ap_mean", num(m->ap_mean)) |
           put(s, "exact_match", num(m->exact_match));
    cJSON *cls = child(s, "classes", 1);
    for (int j = 0; !bad && j < m->k; j++) {
        const lm_class_metrics *c = &m->cls[j];
        cJSON *o = child(cls, NULL, 0);
        bad = put(o, "label", cJSON_CreateString(labels[j])) | put(o, "threshold", fnum(thr[j])) |
              put(o, "support", cJSON_CreateNumber((double)c->support)) |
              put(o, "tp", cJSON_CreateNumber((double)c->tp)) |
              put(o, "fp", cJSON_CreateNumber((double)c->fp)) |
              put(o, "fn", cJSON_CreateNumber((double)c->fn)) |
              put(o, "tn", cJSON_CreateNumber((double)c->tn)) |
              put(o, "precision", num(c->precision)) | put(o, "recall", num(c->recall)) |
              put(o, "f1", num(c->f1)) | put(o, "ap", num(c->ap));
    }
    return bad || !cls;
}

static int put_cv(cJSON *doc, const lm_crossfit *cv, const char *const *labels) {
    const lm_metrics *m = &cv->pooled;
    cJSON *o = child(doc, "tuned_cv", 0);
    int bad = put(o, "folds", cJSON_CreateNumber(cv->folds)) |
              put(o, "seed", cJSON_CreateNumber((double)cv->seed));
    cJSON *sizes = child(o, "fold_sizes", 1);
    for (int f = 0; !bad && f < cv->folds; f++)
        bad = put(sizes, NULL, cJSON_CreateNumber((double)cv->fold_size[f]));
    bad |= put(o, "f1_mean", num(m->f1_mean)) | put(o, "f1_micro", num(m->f1_micro)) |
           put(o, "precision_micro", num(m->precision_micro)) |
           put(o, "recall_micro", num(m->recall_micro));
    cJSON *cls = child(o, "classes", 1);
    for (int j = 0; !bad && j < m->k; j++) {
        cJSON *c = child(cls, NULL, 0);
        bad = put(c, "label", cJSON_CreateString(labels[j])) | put(c, "f1", num(m->cls[j].f1)) |
              put(c, "precision", num(m->cls[j].precision)) |
              put(c, "recall", num(m->cls[j].recall));
        float t[LM_CROSSFIT_MAX_FOLDS];
        for (int f = 0; f < cv->folds; f++) t[f] = cv->thresholds[f][j];
        bad |= put_thresholds(c, "thresholds", t, cv->folds);
    }
    return bad || !sizes || !cls;
}

static int put_info(cJSON *doc, const lm_vreport_info *in) {
    cJSON *ck = child(doc, "checkpoint", 0), *src = child(doc, "source", 0);
    int bad = !ck || !src;
    if (in->checkpoint) bad |= put(ck, "name", cJSON_CreateString(in->checkpoint));
    if (in->checkpoint_file) bad |= put(ck, "file", cJSON_CreateString(in->checkpoint_file));
    if (in->epoch >= 0) bad |= put(ck, "epoch", cJSON_CreateNumber((double)in->epoch));
    if (in->csv) {
        bad |= put(src, "kind", cJSON_CreateString("csv")) |
               put(src, "csv", cJSON_CreateString(in->csv));
        if (in->root) bad |= put(src, "root", cJSON_CreateString(in->root));
    } else {
        bad |= put(src, "kind", cJSON_CreateString("split")) |
               put(src, "split", cJSON_CreateString(in->split ? in->split : "val"));
    }
    bad |= put(doc, "tta", cJSON_CreateBool(in->tta)) |
           put(doc, "views", cJSON_CreateNumber(in->views > 0 ? in->views : 1));
    if (isfinite(in->loss)) bad |= put(doc, "loss_unweighted", cJSON_CreateNumber(in->loss));
    if (in->seconds >= 0) bad |= put(doc, "seconds", cJSON_CreateNumber(in->seconds));
    return bad;
}

cJSON *lm_vreport_json(const lm_vreport *r, const char *const *labels,
                       const lm_vreport_info *info) {
    float half[LM_METRICS_MAX_CLASSES];
    for (int j = 0; j < r->k; j++) half[j] = 0.5f;
    cJSON *doc = cJSON_CreateObject();
    int bad = put(doc, "n", cJSON_CreateNumber((double)r->n));
    cJSON *names = child(doc, "labels", 1);
    for (int j = 0; !bad && j < r->k; j++) bad = put(names, NULL, cJSON_CreateString(labels[j]));
    cJSON *thr = child(doc, "thresholds", 0);
    bad |= put(thr, "mode", cJSON_CreateString(lm_vreport_mode_name(r->mode))) |
           put_thresholds(thr, "values", r->thresholds, r->k);
    bad |= put_section(doc, "default", &r->at_default, half, labels) |
           put_section(doc, "chosen", &r->at_chosen, r->thresholds, labels);
    cJSON *tuned = child(doc, "tuned", 0);
    bad |= put_thresholds(tuned, "thresholds", r->tuned_thr, r->k) |
           put(tuned, "f1_mean", num(r->tuned.f1_mean)) |
           put(tuned, "f1_micro", num(r->tuned.f1_micro));
    bad |= put_cv(doc, &r->cv, labels);
    if (info) bad |= put_info(doc, info);
    if (bad || !names) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* ---------------------------------------------------------------- text -- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)w < b->cap) {
            b->len += (size_t)w;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 1024) + (size_t)w;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
}

/* "  0.123" or "      -" for a non-number. */
static void sb_num(sbuf *b, double v) {
    if (isfinite(v)) sb_printf(b, " %7.4f", v);
    else sb_printf(b, " %7s", "-");
}

static void text_block(sbuf *b, const char *title, const lm_metrics *m, const float *thr,
                       const char *const *labels, int lw) {
    sb_printf(b, "%s\n", title);
    sb_printf(b, "  %-*s %7s %7s %7s %7s %7s %7s %6s %6s %6s %6s\n", lw, "label", "support",
              "thresh", "prec", "recall", "f1", "ap", "tp", "fp", "fn", "tn");
    for (int j = 0; j < m->k; j++) {
        const lm_class_metrics *c = &m->cls[j];
        sb_printf(b, "  %-*s %7lld", lw, labels[j], (long long)c->support);
        sb_num(b, thr[j]);
        sb_num(b, c->precision);
        sb_num(b, c->recall);
        sb_num(b, c->f1);
        sb_num(b, c->ap);
        sb_printf(b, " %6lld %6lld %6lld %6lld\n", (long long)c->tp, (long long)c->fp,
                  (long long)c->fn, (long long)c->tn);
    }
    sb_printf(b, "  %-*s %7s %7s %7s %7s", lw, "mean (macro)", "", "", "", "");
    sb_num(b, m->f1_mean);
    sb_num(b, m->ap_mean);
    sb_printf(b, "\n  %-*s %7s %7s", lw, "micro", "", "");
    sb_num(b, m->precision_micro);
    sb_num(b, m->recall_micro);
    sb_num(b, m->f1_micro);
    sb_printf(b, "\n  exact match (all labels right): %.4f\n", m->exact_match);
}

char *lm_vreport_text(const lm_vreport *r, const char *const *labels) {
    sbuf b = {0};
    int lw = 12;
    for (int j = 0; j < r->k; j++)
        if ((int)strlen(labels[j]) > lw) lw = (int)strlen(labels[j]);
    float half[LM_METRICS_MAX_CLASSES];
    for (int j = 0; j < r->k; j++) half[j] = 0.5f;
    sb_printf(&b, "%lld samples, %d labels; thresholds: %s\n", (long long)r->n, r->k,
              r->mode == LM_THR_TUNE     ? "tune (F1-maximizing on these samples)"
              : r->mode == LM_THR_STORED ? "stored (the checkpoint's)"
                                         : "fixed");
    text_block(&b, "at threshold 0.5:", &r->at_default, half, labels, lw);
    char title[64];
    snprintf(title, sizeof title, "at the %s thresholds:", lm_vreport_mode_suffix(r->mode));
    text_block(&b, title, &r->at_chosen, r->thresholds, labels, lw);
    sb_printf(&b, "tuned in-sample (optimistic):     f1_mean %.4f  f1_micro %.4f\n",
              r->tuned.f1_mean, r->tuned.f1_micro);
    sb_printf(&b, "tuned, %d-fold cross-fitted:       f1_mean %.4f  f1_micro %.4f  (seed %llu)\n",
              r->cv.folds, r->cv.pooled.f1_mean, r->cv.pooled.f1_micro,
              (unsigned long long)r->cv.seed);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ------------------------------------------------------------- metrics -- */

typedef struct emitter {
    const char *prefix;
    void (*emit)(void *user, const char *key, double value, int main);
    void *user;
} emitter;

static void emitf(const emitter *e, double v, int main, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emitf(const emitter *e, double v, int main, const char *fmt, ...) {
    if (!isfinite(v)) return;
    char key[256];
    int n = snprintf(key, sizeof key, "%s", e->prefix);
    if (n < 0 || (size_t)n >= sizeof key) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key + n, sizeof key - (size_t)n, fmt, ap);
    va_end(ap);
    e->emit(e->user, key, v, main);
}

/* A label as it appears in a metric key. */
static void key_label(char *out, size_t cap, const char *label) {
    size_t i = 0;
    for (; label[i] && i + 1 < cap; i++) {
        char c = label[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
}

/* Per-class counts and rates; sfx "" or "_<mode>". */
static void emit_classes(const emitter *e, const lm_metrics *m, const char *const *labels,
                         const char *sfx) {
    for (int j = 0; j < m->k; j++) {
        const lm_class_metrics *c = &m->cls[j];
        char l[128];
        key_label(l, sizeof l, labels[j]);
        emitf(e, c->f1, 0, "f1_%s%s", l, sfx);
        emitf(e, c->precision, 0, "precision_%s%s", l, sfx);
        emitf(e, c->recall, 0, "recall_%s%s", l, sfx);
        emitf(e, (double)c->tp, 0, "tp_%s%s", l, sfx);
        emitf(e, (double)c->fp, 0, "fp_%s%s", l, sfx);
        emitf(e, (double)c->fn, 0, "fn_%s%s", l, sfx);
        emitf(e, (double)c->tn, 0, "tn_%s%s", l, sfx);
        if (!*sfx) {
            emitf(e, c->ap, 0, "ap_%s", l);
            emitf(e, (double)c->support, 0, "support_%s", l);
        } else {
            emitf(e, c->threshold, 0, "threshold_%s", l);
        }
    }
}

void lm_vreport_metrics(const lm_vreport *r, const char *const *labels, const char *prefix,
                        void (*emit)(void *user, const char *key, double value, int main),
                        void *user) {
    emitter e = {prefix ? prefix : "", emit, user};
    const lm_metrics *d = &r->at_default, *c = &r->at_chosen;
    const char *m = lm_vreport_mode_suffix(r->mode);
    char sfx[32];
    snprintf(sfx, sizeof sfx, "_%s", m);
    emitf(&e, (double)r->n, 0, "n");
    emitf(&e, d->f1_mean, 1, "f1_mean");
    emitf(&e, d->f1_micro, 1, "f1_micro");
    emitf(&e, d->precision_micro, 0, "precision_micro");
    emitf(&e, d->recall_micro, 0, "recall_micro");
    emitf(&e, d->ap_mean, 1, "ap_mean");
    emitf(&e, d->exact_match, 0, "exact_match");
    emit_classes(&e, d, labels, "");
    emitf(&e, c->f1_mean, 1, "f1_mean_%s", m);
    emitf(&e, c->f1_micro, 1, "f1_micro_%s", m);
    emitf(&e, c->precision_micro, 0, "precision_micro_%s", m);
    emitf(&e, c->recall_micro, 0, "recall_micro_%s", m);
    emitf(&e, c->exact_match, 0, "exact_match_%s", m);
    emit_classes(&e, c, labels, sfx);
    if (r->mode != LM_THR_TUNE) {
        emitf(&e, r->tuned.f1_mean, 1, "f1_mean_tuned");
        emitf(&e, r->tuned.f1_micro, 0, "f1_micro_tuned");
    }
    emitf(&e, r->cv.pooled.f1_mean, 1, "f1_mean_tuned_cv");
    emitf(&e, r->cv.pooled.f1_micro, 0, "f1_micro_tuned_cv");
}
