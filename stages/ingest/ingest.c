/* ingest.c -- see ingest.h. */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dataset.h"
#include "problems.h"
#include "split.h"
#include "crossfit.h"

void ingest_opts_default(ingest_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = LM_LABELS_AUTO;
    o->threshold = 0.5;
    o->size = 300;
    o->channels = 1;
    o->val = 0.2;
    o->stratify = 1;
    o->doubtful_min_prob = 0.5;
}

static void say(const ingest_opts *o, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const ingest_opts *o, int level, const char *fmt, ...) {
    if (!o->log) return;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    o->log(o->user, level, buf);
}

/* The label file's folder ("." when it has none). */
static char *default_root(const char *csv) {
    const char *slash = strrchr(csv, '/');
    if (!slash) return lm_strdup(".");
    if (slash == csv) return lm_strdup("/");
    return strndup(csv, (size_t)(slash - csv));
}

static int resolve_root(const ingest_opts *o, char **root, lm_err *err) {
    *root = o->root && *o->root ? lm_strdup(o->root) : default_root(o->csv);
    return *root ? 0 : lm_fail(err, LUMEN_ENOMEM, "out of memory");
}

static int check_opts(const ingest_opts *o, lm_err *err) {
    if (!o->csv || !*o->csv) return lm_fail(err, LUMEN_EINVAL, "csv: no label file given");
    if (!o->out || !*o->out) return lm_fail(err, LUMEN_EINVAL, "ingest: no output folder");
    if (o->channels != 1 && o->channels != 3)
        return lm_fail(err, LUMEN_EINVAL, "channels: must be 1 or 3, got %d", o->channels);
    int rc = lm_pixfilter_check(&o->filter, "highpass", err);
    if (rc) return rc;
    if (o->size < 1 || o->size > 65535)
        return lm_fail(err, LUMEN_EINVAL, "size: must be in [1, 65535], got %d", o->size);
    if (!(o->val >= 0.0 && o->val <= 1.0))
        return lm_fail(err, LUMEN_EINVAL, "split.val: must be in [0, 1], got %g", o->val);
    if (!isfinite(o->threshold))
        return lm_fail(err, LUMEN_EINVAL, "threshold: must be a number");
    if (o->limit < 0) return lm_fail(err, LUMEN_EINVAL, "limit: must be >= 0");
    if (!(o->negatives_max_prob >= 0.0 && o->negatives_max_prob < 1.0))
        return lm_fail(err, LUMEN_EINVAL, "negatives.max_prob: must be in [0, 1), got %g",
                       o->negatives_max_prob);
    if (!(o->doubtful_min_prob > 0.0 && o->doubtful_min_prob <= 1.0))
        return lm_fail(err, LUMEN_EINVAL, "doubtful.min_prob: must be in (0, 1], got %g", o->doubtful_min_prob);
    if (o->folds == 1 || o->folds < 0 || o->folds > LM_CROSSFIT_MAX_FOLDS)
        return lm_fail(err, LUMEN_EINVAL, "split.folds: must be 0 (off) or 2 .. %d, got %d",
                       LM_CROSSFIT_MAX_FOLDS, o->folds);
    if (o->folds >= 2 && (o->fold < 0 || o->fold >= o->folds))
        return lm_fail(err, LUMEN_EINVAL, "split.fold: must be in [0, %d], got %d", o->folds - 1,
                       o->fold);
    return 0;
}

/* ------------------------------------------------------------ pipeline -- */

typedef struct slot {
    int ready; /* guarded by mu */
    int rc;
    lm_err err;
    uint8_t *pix;
} slot;

typedef struct pipeline {
    const ingest_opts *o;
    const lm_label_row *const *rows; /* record k's label row, [n] */
    size_t n;
    const char *root;
    lm_image_limits lim;
    slot *slots;
    size_t nslots;
    /* guarded by mu */
    size_t next;     /* next index a worker claims */
    size_t consumed; /* indices the writer is done with */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t ready, freed;
} pipeline;

static void *worker(void *arg) {
    pipeline *p = arg;
    const int size = p->o->size;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->next < p->n && p->next >= p->consumed + p->nslots)
            pthread_cond_wait(&p->freed, &p->mu);
        if (p->stop || p->next >= p->n) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        size_t k = p->next++;
        pthread_mutex_unlock(&p->mu);

        slot *s = &p->slots[k % p->nslots];
        const lm_label_row *row = p->rows[k];
        lm_err e = {0};
        char *path = lm_path_join(p->root, row->name);
        int rc = path ? lm_png_load_u8(path, p->o->channels, (uint32_t)size, (uint32_t)size,
                                       &p->lim, s->pix, &e)
                      : lm_fail(&e, LUMEN_ENOMEM, "out of memory");
        if (!rc)
            rc = lm_pixfilter_apply(&p->o->filter, s->pix, p->o->channels, (uint32_t)size,
                                    (uint32_t)size, &e);
        free(path);

        pthread_mutex_lock(&p->mu);
        s->rc = rc;
        if (rc) s->err = e;
        s->ready = 1;
        pthread_cond_broadcast(&p->ready);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* Waits until slot k is ready, polling the cancel callback.  Returns 0 or
 * LUMEN_ECANCELED. */
static int wait_slot(pipeline *p, size_t k) {
    slot *s = &p->slots[k % p->nslots];
    pthread_mutex_lock(&p->mu);
    while (!s->ready) {
        if (p->o->cancelled && p->o->cancelled(p->o->user)) {
            pthread_mutex_unlock(&p->mu);
            return LUMEN_ECANCELED;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->ready, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static void release_slot(pipeline *p, size_t k) {
    pthread_mutex_lock(&p->mu);
    p->slots[k % p->nslots].ready = 0;
    p->consumed = k + 1;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

static void stop_all(pipeline *p) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------- helpers -- */

/* "x.csv" or "x.csv and its negatives file n.txt": where problems are. */
static void inputs_named(const ingest_opts *o, char *buf, size_t size) {
    if (o->negatives && *o->negatives)
        snprintf(buf, size, "%s and its negatives file %s", o->csv, o->negatives);
    else
        snprintf(buf, size, "%s", o->csv);
}

static int fail_report(const ingest_opts *o, const lm_problems *probs, lm_err *err) {
    char head[512], msg[LM_ERR_MSG], files[400];
    inputs_named(o, files, sizeof files);
    snprintf(head, sizeof head, "bad input in %s (on_error = \"fail\")", files);
    lm_problems_report(probs, head, msg, sizeof msg);
    return lm_fail(err, LUMEN_EDATA, "%s", msg);
}

static void warn_report(const ingest_opts *o, const lm_problems *probs) {
    char head[512], msg[4096], files[400];
    inputs_named(o, files, sizeof files);
    snprintf(head, sizeof head, "skipped bad input in %s (on_error = \"skip\")", files);
    lm_problems_report(probs, head, msg, sizeof msg);
    say(o, LUMEN_LOG_WARN, "%s", msg);
}

/* Adds a problem for every usable row whose image does not exist. */
static int check_images_exist(const ingest_opts *o, const lm_label_table *tab, const char *root,
                              lm_problems *probs, lm_err *err) {
    for (size_t i = 0; i < tab->nrows; i++) {
        char *path = lm_path_join(root, tab->rows[i].name);
        if (!path) return lm_fail(err, LUMEN_ENOMEM, "out of memory");
        struct stat st;
        if (stat(path, &st) != 0)
            lm_problems_add(probs, tab->rows[i].line, "%s:%d: %s: missing image (no such file)", o->csv,
                            tab->rows[i].line, path);
        free(path);
    }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* t's row paths (borrowed), sorted for bsearch with cmp_name; NULL when t
 * has no rows.  Returns 0 or LUMEN_ENOMEM. */
static int sorted_names(const lm_label_table *t, const char ***names, lm_err *err) {
    *names = NULL;
    if (!t->nrows) return 0;
    if (!(*names = malloc(t->nrows * sizeof **names))) return lm_fail(err, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->nrows; i++) (*names)[i] = t->rows[i].name;
    qsort(*names, t->nrows, sizeof **names, cmp_name);
    return 0;
}

/* Loads a side label file of the ingest (exclude, negatives, aux: `what`)
 * where any bad row is fatal, whatever skip_bad says: LUMEN_EDATA listing
 * them as "file:line" under "<what>: bad rows in <path><why>"; a file that
 * cannot be read or parsed fails as lm_labels_load does, prefixed
 * "<what>: ".  *t is set up either way (lm_labels_free). */
static int load_side(const char *what, const char *path, const lm_labels_opts *lo, const char *why,
                     lm_label_table *t, lm_err *err) {
    lm_problems pr;
    lm_problems_init(&pr);
    lm_err e = {0};
    int rc = lm_labels_load(path, lo, t, &pr, &e);
    if (rc) {
        rc = lm_fail(err, rc, "%s: %s", what, e.msg);
    } else if (pr.count) {
        char head[512], msg[LM_ERR_MSG];
        snprintf(head, sizeof head, "%s: bad rows in %s%s", what, path, why);
        lm_problems_report(&pr, head, msg, sizeof msg);
        rc = lm_fail(err, LUMEN_EDATA, "%s", msg);
    }
    lm_problems_free(&pr);
    return rc;
}

/* Drops from *tab the rows whose path the exclude file lists (see
 * ingest_opts.exclude), keeping file order, and logs the count.  Sets
 * *excluded.  Returns 0; LUMEN_ENOTFOUND / LUMEN_EIO (exclude file
 * unreadable), LUMEN_EDATA (it does not parse, or has bad rows: "file:line"
 * for each), LUMEN_ENOMEM; every message names the exclude file. */
static int apply_exclude(const ingest_opts *o, lm_label_table *tab, size_t *excluded,
                         lm_err *err) {
    *excluded = 0;
    lm_label_table ex;
    memset(&ex, 0, sizeof ex);
    lm_labels_opts lo = {.format = LM_LABELS_AUTO, .threshold = o->threshold, .names_only = 1};
    const char **names = NULL;
    int rc = load_side("exclude", o->exclude, &lo,
                       " (always fatal: a skipped row would not be excluded)", &ex, err);
    if (rc) goto out;
    if ((rc = sorted_names(&ex, &names, err))) goto out;

    /* both files hold each path at most once (duplicates are bad rows), so
     * every hit is one row dropped and one exclude name used */
    size_t nl = tab->nlabels, kept = 0, total = tab->nrows;
    for (size_t i = 0; i < total; i++) {
        lm_label_row *row = &tab->rows[i];
        if (ex.nrows && bsearch(&row->name, names, ex.nrows, sizeof *names, cmp_name)) {
            free(row->name);
            free(row->meta);
            continue;
        }
        if (kept != i) {
            tab->rows[kept] = *row;
            memmove(tab->values + kept * nl, tab->values + i * nl, nl * sizeof *tab->values);
        }
        kept++;
    }
    tab->nrows = kept;
    *excluded = total - kept;
    size_t unmatched = ex.nrows - *excluded;
    char more[256] = "";
    if (unmatched)
        snprintf(more, sizeof more, "; %zu of its %zu paths name no row of %s%s", unmatched,
                 ex.nrows, o->csv,
                 *excluded ? "" : " (paths are compared as written, e.g. \"images/a.png\" "
                                  "is not \"./images/a.png\")");
    say(o, *excluded || !ex.nrows ? LUMEN_LOG_INFO : LUMEN_LOG_WARN,
        "exclude: %zu of %zu rows skipped (listed in %s)%s", *excluded, total, o->exclude, more);

out:
    free(names);
    lm_labels_free(&ex);
    return rc;
}

/* Reads the negatives file (see ingest_opts.negatives) into *neg, keeping
 * only its negative rows whose path `tab` (the whole csv) does not list;
 * logs what was kept.  Returns 0; LUMEN_ENOTFOUND / LUMEN_EIO (unreadable),
 * LUMEN_EDATA (it does not parse, has bad rows -- "file:line" each --, or
 * holds no negative row), LUMEN_ENOMEM; every message names the file. */
static int load_negatives(const ingest_opts *o, const lm_label_table *tab, lm_label_table *neg,
                          lm_err *err) {
    /* ELPV: "defective" = probability >= threshold, so a row is a negative
     * (value 0) exactly when its probability is <= max_prob */
    lm_labels_opts lo = {.format = LM_LABELS_AUTO, .threshold = nextafter(o->negatives_max_prob, 2.0)};
    const char **names = NULL;
    int rc = load_side("negatives", o->negatives, &lo, "", neg, err);
    if (rc) goto out;
    if ((rc = sorted_names(tab, &names, err))) goto out;
    size_t nl = neg->nlabels, kept = 0, total = neg->nrows, listed = 0, positive = 0;
    for (size_t i = 0; i < total; i++) {
        lm_label_row *row = &neg->rows[i];
        int in_csv = tab->nrows && bsearch(&row->name, names, tab->nrows, sizeof *names, cmp_name);
        int is_neg = 1;
        for (size_t j = 0; j < nl; j++) is_neg &= neg->values[i * nl + j] == 0.0f;
        if (in_csv || !is_neg) {
            listed += in_csv;
            positive += !in_csv;
            free(row->name);
            free(row->meta);
            continue;
        }
        neg->rows[kept++] = *row;
    }
    neg->nrows = kept;
    char bound[64];
    if (neg->format == LM_LABELS_ELPV)
        snprintf(bound, sizeof bound, "defect probability <= %g", o->negatives_max_prob);
    else
        snprintf(bound, sizeof bound, "every label 0");
    if (kept == 0) {
        rc = lm_fail(err, LUMEN_EDATA, "negatives: %s: none of its %zu rows is a negative (%s) "
                                       "outside %s (%zu listed there, %zu not negative)",
                     o->negatives, total, bound, o->csv, listed, positive);
        goto out;
    }
    say(o, LUMEN_LOG_INFO, "negatives: %zu of %zu rows of %s (%s, not in %s) join the training "
                           "split with every label 0; %zu listed in %s, %zu not negative",
        kept, total, o->negatives, bound, o->csv, listed, o->csv, positive);

out:
    free(names);
    return rc;
}

/* Moves out of the training split the rows of csv (the first n of
 * sel/lab/spl, nl labels each) that are negatives there but that the
 * doubtful file (see ingest_opts.doubtful) calls defective: their split
 * becomes LM_SPLIT_HELD (written, read by no stage), so every other
 * record keeps its number.  Validation rows are untouched.  Sets
 * *dropped; errors name the file, as load_side's. */
static int drop_doubtful(const ingest_opts *o, const lm_label_table *tab, const uint32_t *sel,
                         const float *lab, uint8_t *spl, size_t n, size_t nl, size_t *dropped, lm_err *err) {
    *dropped = 0;
    lm_label_table db;
    memset(&db, 0, sizeof db);
    lm_labels_opts lo = {.format = LM_LABELS_AUTO, .threshold = o->doubtful_min_prob};
    const char **flagged = NULL;
    size_t nf = 0;
    int rc = load_side("doubtful", o->doubtful, &lo, "", &db, err);
    if (rc == 0 && !(flagged = malloc((db.nrows + 1) * sizeof *flagged)))
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < db.nrows; i++) {
        int any = 0;
        for (size_t j = 0; j < db.nlabels; j++) any |= db.values[i * db.nlabels + j] != 0.0f;
        if (any) flagged[nf++] = db.rows[i].name;
    }
    if (rc) goto out;
    qsort(flagged, nf, sizeof *flagged, cmp_name);
    size_t train_neg = 0, val_flagged = 0;
    for (size_t i = 0; i < n; i++) {
        int neg = 1;
        for (size_t j = 0; j < nl; j++) neg &= lab[i * nl + j] == 0.0f;
        const char *name = tab->rows[sel[i]].name;
        int hit = neg && nf && bsearch(&name, flagged, nf, sizeof *flagged, cmp_name);
        if (hit && spl[i] == LM_SPLIT_TRAIN) {
            spl[i] = LM_SPLIT_HELD;
            (*dropped)++;
        } else {
            train_neg += neg && spl[i] == LM_SPLIT_TRAIN;
            val_flagged += hit;
        }
    }
    char bound[64];
    if (db.format == LM_LABELS_ELPV) snprintf(bound, sizeof bound, "defect probability >= %g", o->doubtful_min_prob);
    else snprintf(bound, sizeof bound, "a label 1");
    say(o, *dropped ? LUMEN_LOG_INFO : LUMEN_LOG_WARN,
        "doubtful: %zu training negatives of %s left out (%s in %s; %zu flagged rows there); %zu training "
        "negatives stay; the validation split keeps its %zu such rows",
        *dropped, o->csv, bound, o->doubtful, nf, train_neg, val_flagged);
out:
    free(flagged);
    lm_labels_free(&db);
    return rc;
}

static int cmp_row_name(const void *a, const void *b) {
    return strcmp((*(const lm_label_row *const *)a)->name, (*(const lm_label_row *const *)b)->name);
}

/* Reads the aux file (see ingest_opts.aux) into *aux and checks that its
 * label names are new to csv's.  Returns 0; LUMEN_ENOTFOUND / LUMEN_EIO,
 * LUMEN_EDATA (it does not parse, has bad rows -- "file:line" each --, or a
 * label name csv has), LUMEN_ENOMEM; every message names the file. */
static int load_aux(const ingest_opts *o, const lm_label_table *tab, lm_label_table *aux,
                    lm_err *err) {
    lm_labels_opts lo = {.format = LM_LABELS_AUTO, .threshold = o->threshold};
    int rc = load_side("aux", o->aux, &lo, "", aux, err);
    for (size_t j = 0; rc == 0 && j < aux->nlabels; j++)
        for (size_t i = 0; rc == 0 && i < tab->nlabels; i++)
            if (strcmp(aux->label_names[j], tab->label_names[i]) == 0)
                rc = lm_fail(err, LUMEN_EDATA, "aux: %s: label '%s' is one of %s's already", o->aux,
                             aux->label_names[j], o->csv);
    if (rc == 0 && tab->nlabels + aux->nlabels > 64)
        rc = lm_fail(err, LUMEN_EDATA, "aux: %s: %zu labels + %zu of %s: more than 64", o->aux,
                     aux->nlabels, tab->nlabels, o->csv);
    return rc;
}

/* lab2[k] = lab[k] (nl labels) followed by aux's labels of rows[k]'s path.
 * Returns 0, LUMEN_EDATA (a row aux does not list: the count and the first
 * one named) or LUMEN_ENOMEM. */
static int join_aux(const ingest_opts *o, const lm_label_table *aux, const lm_label_row *const *rows,
                    size_t n, const float *lab, size_t nl, float *lab2, lm_err *err) {
    size_t na = aux->nlabels, nt = nl + na, missing = 0;
    const char *first = NULL;
    const lm_label_row **byname = malloc((aux->nrows + 1) * sizeof *byname);
    if (!byname) return lm_fail(err, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; i < aux->nrows; i++) byname[i] = &aux->rows[i];
    qsort(byname, aux->nrows, sizeof *byname, cmp_row_name);
    for (size_t k = 0; k < n; k++) {
        memcpy(lab2 + k * nt, lab + k * nl, nl * sizeof *lab2);
        const lm_label_row *key = rows[k];
        const lm_label_row *const *hit =
            aux->nrows ? bsearch(&key, byname, aux->nrows, sizeof *byname, cmp_row_name) : NULL;
        if (!hit) {
            if (!missing++) first = rows[k]->name;
            continue;
        }
        memcpy(lab2 + k * nt + nl, aux->values + (size_t)(*hit - aux->rows) * na, na * sizeof *lab2);
    }
    free(byname);
    if (missing)
        return lm_fail(err, LUMEN_EDATA, "aux: %zu of the %zu images to ingest are not in %s (first: %s)",
                       missing, n, o->aux, first);
    return 0;
}

/* A JSON number when exactly representable, else a decimal string. */
static cJSON *seed_json(uint64_t seed) {
    if (seed <= (1ull << 53)) return cJSON_CreateNumber((double)seed);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    return cJSON_CreateString(buf);
}

static cJSON *schema_extra(const ingest_opts *o, const lm_label_table *tab, const char *root,
                           size_t skipped, size_t rows, size_t excluded, size_t negatives, size_t doubtful) {
    cJSON *x = cJSON_CreateObject(), *sp = NULL;
    if (!x) return NULL;
    int ok = cJSON_AddStringToObject(x, "source", o->csv) &&
             cJSON_AddStringToObject(x, "root", root) &&
             cJSON_AddStringToObject(x, "csv_format", lm_labels_format_name(tab->format)) &&
             cJSON_AddNumberToObject(x, "rows", (double)rows) &&
             cJSON_AddNumberToObject(x, "skipped", (double)skipped) &&
             cJSON_AddNumberToObject(x, "limit", (double)o->limit) &&
             cJSON_AddStringToObject(x, "resize", "area-down/bilinear-up") &&
             (sp = cJSON_AddObjectToObject(x, "split")) != NULL &&
             cJSON_AddNumberToObject(sp, "val", o->val) &&
             cJSON_AddBoolToObject(sp, "stratify", o->stratify) &&
             (o->folds < 2 || (cJSON_AddNumberToObject(sp, "folds", o->folds) &&
                               cJSON_AddNumberToObject(sp, "fold", o->fold)));
    if (ok) {
        cJSON *s = seed_json(o->seed);
        ok = s && cJSON_AddItemToObject(sp, "seed", s);
        if (!ok) cJSON_Delete(s);
    }
    if (ok && o->exclude && *o->exclude)
        ok = cJSON_AddStringToObject(x, "exclude", o->exclude) &&
             cJSON_AddNumberToObject(x, "excluded", (double)excluded);
    if (ok && tab->format == LM_LABELS_ELPV)
        ok = cJSON_AddNumberToObject(x, "threshold", o->threshold) != NULL;
    if (ok && o->negatives && *o->negatives) {
        cJSON *ng = cJSON_AddObjectToObject(x, "negatives");
        ok = ng && cJSON_AddStringToObject(ng, "source", o->negatives) &&
             cJSON_AddNumberToObject(ng, "max_prob", o->negatives_max_prob) &&
             cJSON_AddNumberToObject(ng, "rows", (double)negatives) &&
             cJSON_AddStringToObject(ng, "split", "train");
    }
    if (ok && o->aux && *o->aux) ok = cJSON_AddStringToObject(x, "aux", o->aux) != NULL;
    if (ok && o->doubtful && *o->doubtful) {
        cJSON *db = cJSON_AddObjectToObject(x, "doubtful");
        ok = db && cJSON_AddStringToObject(db, "source", o->doubtful) &&
             cJSON_AddNumberToObject(db, "min_prob", o->doubtful_min_prob) &&
             cJSON_AddNumberToObject(db, "rows", (double)doubtful) &&
             cJSON_AddStringToObject(db, "split", "train");
    }
    if (ok && !lm_pixfilter_none(&o->filter)) {
        cJSON *f = lm_pixfilter_to_json(&o->filter);
        ok = f && cJSON_AddItemToObject(x, "filter", f);
        if (!ok) cJSON_Delete(f);
    }
    if (!ok) {
        cJSON_Delete(x);
        return NULL;
    }
    return x;
}

/* ------------------------------------------------------------------ run -- */

int ingest_run(const ingest_opts *o, ingest_result *res, lm_err *err) {
    double t0 = lm_now();
    ingest_result r = {0};
    if (res) *res = r;
    int rc = check_opts(o, err);
    if (rc) return rc;
    const int oc = lm_pixfilter_channels(&o->filter, o->channels); /* stored channels */

    lm_problems probs;
    lm_problems_init(&probs);
    lm_label_table tab, neg, aux;
    memset(&neg, 0, sizeof neg);
    memset(&aux, 0, sizeof aux);
    const char **names = NULL; /* csv's label names, then aux's (borrowed) */
    char *root = NULL;
    uint32_t *sel = NULL;
    const lm_label_row **rows = NULL;
    float *lab = NULL;
    uint8_t *spl = NULL;
    lm_dataset_writer *w = NULL;
    pipeline p;
    memset(&p, 0, sizeof p);
    pthread_t *th = NULL;
    int nth = 0, sync_init = 0;
    cJSON *extra = NULL;
    size_t pos[3][64] = {{0}}; /* train, val, held */

    lm_labels_opts lo = {.format = o->format, .threshold = o->threshold};
    rc = lm_labels_load(o->csv, &lo, &tab, &probs, err);
    if (rc) {
        lm_problems_free(&probs);
        return rc;
    }
    if ((rc = resolve_root(o, &root, err))) goto out;
    r.rows = tab.nrows;
    r.nlabels = tab.nlabels;
    /* against the whole csv: a row listed there is never a negative */
    if (o->negatives && *o->negatives && (rc = load_negatives(o, &tab, &neg, err))) goto out;
    if (o->aux && *o->aux && (rc = load_aux(o, &tab, &aux, err))) goto out;
    /* before the bad-input check: an excluded row's image is not needed */
    if (o->exclude && *o->exclude && (rc = apply_exclude(o, &tab, &r.excluded, err))) goto out;

    if (probs.count && !o->skip_bad) {
        /* the label file is bad already: report missing images too, but
         * decode nothing */
        if (!(rc = check_images_exist(o, &tab, root, &probs, err))) rc = fail_report(o, &probs, err);
        goto out;
    }
    if (tab.nrows == 0 && r.excluded) {
        rc = lm_fail(err, LUMEN_EDATA,
                     "%s: every usable row (%zu) is listed in the exclude file %s; nothing left "
                     "to ingest", o->csv, r.excluded, o->exclude);
        goto out;
    }
    if (tab.nrows == 0) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: no usable rows (%zu bad rows skipped)", o->csv,
                     tab.bad_rows);
        goto out;
    }

    /* rows to ingest: csv's, then the negatives' (after the split) */
    size_t n = tab.nrows, nl = tab.nlabels, nneg = neg.nrows;
    if (o->limit > 0 && (uint64_t)o->limit < n) n = (size_t)o->limit;
    if (o->limit > 0 && (uint64_t)o->limit < nneg) nneg = (size_t)o->limit;
    sel = malloc((n + nneg) * sizeof *sel);
    lab = malloc((n + nneg) * nl * sizeof *lab);
    spl = malloc(n + nneg);
    if (!sel || !lab || !spl) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (n < tab.nrows) {
        if ((rc = ingest_subset(tab.nrows, n, o->seed, sel, err))) goto out;
    } else {
        for (size_t i = 0; i < n; i++) sel[i] = (uint32_t)i;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(lab + i * nl, tab.values + (size_t)sel[i] * nl, nl * sizeof *lab);
    if (o->folds >= 2) {
        if ((rc = ingest_split_fold(lab, n, nl, o->folds, o->fold, o->seed, spl, err))) goto out;
    } else if ((rc = ingest_split(lab, n, nl, o->val, o->seed, o->stratify, spl, err))) {
        goto out;
    }
    if (o->doubtful && *o->doubtful && (rc = drop_doubtful(o, &tab, sel, lab, spl, n, nl, &r.doubtful, err)))
        goto out;
    const size_t n_csv = n;
    if (nneg) { /* sel[n_csv ..] index neg.rows */
        uint32_t *pick = sel + n;
        if (nneg < neg.nrows) {
            if ((rc = ingest_subset(neg.nrows, nneg, o->seed, pick, err))) goto out;
        } else {
            for (size_t i = 0; i < nneg; i++) pick[i] = (uint32_t)i;
        }
        memset(lab + n * nl, 0, nneg * nl * sizeof *lab);
        memset(spl + n, LM_SPLIT_TRAIN, nneg);
        n += nneg;
        r.negatives = nneg;
    }
    if (!(rows = malloc(n * sizeof *rows))) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < n; k++) rows[k] = k < n_csv ? &tab.rows[sel[k]] : &neg.rows[sel[k]];
    r.selected = n;
    if (!(names = malloc((nl + aux.nlabels) * sizeof *names))) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t j = 0; j < nl; j++) names[j] = tab.label_names[j];
    if (aux.nlabels) { /* after the split: it saw csv's labels only */
        size_t nt = nl + aux.nlabels;
        float *lab2 = malloc(n * nt * sizeof *lab2);
        if (!lab2) {
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = join_aux(o, &aux, rows, n, lab, nl, lab2, err))) {
            free(lab2);
            goto out;
        }
        free(lab);
        lab = lab2;
        for (size_t j = 0; j < aux.nlabels; j++) names[nl + j] = aux.label_names[j];
        nl = nt;
        r.aux = aux.nlabels;
        r.nlabels = nl;
        char an[256] = "";
        for (size_t j = 0; j < aux.nlabels; j++)
            snprintf(an + strlen(an), sizeof an - strlen(an), "%s'%s'", j ? ", " : "", aux.label_names[j]);
        say(o, LUMEN_LOG_INFO, "aux: %s from %s appended to every image's labels (multi-task targets; the "
                               "split used %s's labels alone)", an, o->aux, o->csv);
    }

    int threads = o->threads > 0 ? o->threads : lm_ncpu();
    if ((size_t)threads > n) threads = (int)n;
    /* count every data row read: bad rows (skipped) and excluded ones were
     * dropped from tab already */
    char why[160] = "";
    size_t wl = 0;
    if (tab.bad_rows)
        wl += (size_t)snprintf(why + wl, sizeof why - wl, "; %zu bad row%s skipped", tab.bad_rows,
                               tab.bad_rows == 1 ? "" : "s");
    if (r.excluded && wl < sizeof why)
        wl += (size_t)snprintf(why + wl, sizeof why - wl, "; %zu excluded", r.excluded);
    if (n_csv < tab.nrows && wl < sizeof why)
        wl += (size_t)snprintf(why + wl, sizeof why - wl, "; limit %lld", (long long)o->limit);
    if (r.doubtful && wl < sizeof why)
        wl += (size_t)snprintf(why + wl, sizeof why - wl, "; %zu doubtful left out", r.doubtful);
    if (r.negatives && wl < sizeof why)
        snprintf(why + wl, sizeof why - wl, "; + %zu training negatives", r.negatives);
    say(o, LUMEN_LOG_INFO,
        "ingest: %zu of %zu data rows from %s (%s%s), %zu label%s, %dx%dx%d, %d thread%s", n_csv,
        r.rows + tab.bad_rows, o->csv, lm_labels_format_name(tab.format), why, nl,
        nl == 1 ? "" : "s", oc, o->size, o->size, threads, threads == 1 ? "" : "s");

    if (!lm_pixfilter_none(&o->filter)) {
        char fd[96];
        lm_pixfilter_describe(&o->filter, fd, sizeof fd);
        say(o, LUMEN_LOG_INFO, "ingest: filter %s: %d decoded channel%s + %d high-pass", fd,
            o->channels, o->channels == 1 ? "" : "s", oc - o->channels);
    }
    lm_dataset_spec spec = {.height = (uint32_t)o->size, .width = (uint32_t)o->size,
                            .channels = (uint32_t)oc, .nlabels = nl,
                            .labels = (const char *const *)names,
                            .map_size = o->map_size};
    if ((rc = lm_dataset_create(o->out, &spec, &w, err))) goto out;

    /* start the decode workers */
    p.o = o;
    p.rows = rows;
    p.n = n;
    p.root = root;
    p.lim = o->limits.max_width ? o->limits : LM_IMAGE_LIMITS_DEFAULT;
    p.nslots = 4 * (size_t)threads + 4;
    size_t pix = (size_t)o->size * o->size * (size_t)oc;
    p.slots = calloc(p.nslots, sizeof *p.slots);
    th = calloc((size_t)threads, sizeof *th);
    if (!p.slots || !th) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p.nslots; i++)
        if (!(p.slots[i].pix = malloc(pix))) {
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory (%zu image slots)", p.nslots);
            goto out;
        }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.ready, NULL);
    pthread_cond_init(&p.freed, NULL);
    sync_init = 1;
    for (; nth < threads; nth++)
        if (pthread_create(&th[nth], NULL, worker, &p) != 0) {
            rc = lm_fail(err, LUMEN_ERR, "cannot start decode threads");
            goto out;
        }

    /* commit in index order */
    size_t step = n / 100 ? n / 100 : 1, split_n[3] = {0, 0, 0};
    for (size_t k = 0; k < n; k++) {
        if ((rc = wait_slot(&p, k))) {
            rc = lm_fail(err, LUMEN_ECANCELED, "ingest: cancelled after %zu of %zu images", k, n);
            goto out;
        }
        slot *s = &p.slots[k % p.nslots];
        const lm_label_row *row = rows[k];
        const char *file = k < n_csv ? o->csv : o->negatives;
        if (s->rc == LUMEN_EDATA || s->rc == LUMEN_ENOTFOUND) {
            /* the negatives' problems sort after csv's */
            long key = (long)row->line + (k < n_csv ? 0 : 1L << 40);
            lm_problems_add(&probs, key, "%s:%d: %s", file, row->line, s->err.msg);
        } else if (s->rc) {
            rc = lm_fail(err, s->rc, "%s:%d: %s", file, row->line, s->err.msg);
            goto out;
        } else if (o->skip_bad || probs.count == 0) {
            lm_record rec = {.h = (uint32_t)o->size, .w = (uint32_t)o->size,
                             .c = (uint32_t)oc, .split = spl[k],
                             .nlabels = (uint32_t)nl, .labels = lab + k * nl,
                             .name = row->name, .meta = row->meta, .pixels = s->pix};
            if ((rc = lm_dataset_put(w, &rec, err))) goto out;
            split_n[spl[k]]++;
            for (size_t j = 0; j < nl && j < 64; j++)
                if (lab[k * nl + j] >= 0.5f) pos[spl[k]][j]++;
        }
        release_slot(&p, k);
        if (o->progress && ((k + 1) % step == 0 || k + 1 == n))
            o->progress(o->user, (int64_t)(k + 1), (int64_t)n);
    }
    for (; nth > 0; nth--) pthread_join(th[nth - 1], NULL);

    if (probs.count && !o->skip_bad) {
        rc = fail_report(o, &probs, err);
        goto out;
    }
    r.skipped = probs.count;
    if (probs.count) warn_report(o, &probs);
    r.images = lm_dataset_written(w);
    r.train = split_n[0];
    r.val = split_n[1];
    if (r.images == 0) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: no image could be ingested (%zu skipped)", o->csv,
                     r.skipped);
        goto out;
    }
    extra = schema_extra(o, &tab, root, r.skipped, r.rows + tab.bad_rows, r.excluded, r.negatives, r.doubtful);
    if (!extra) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    rc = lm_dataset_finish(w, extra, err);
    w = NULL;
    if (rc) goto out;
    r.seconds = lm_now() - t0;

    char line[2048];
    size_t off = (size_t)snprintf(line, sizeof line,
                                  "ingest: %zu images (%zu train, %zu val%s), %zux%dx%d", r.images,
                                  r.train, r.val, r.doubtful ? ", the doubtful held out of both" : "", (size_t)oc,
                                  o->size, o->size);
    for (size_t j = 0; j < nl && j < 64 && off < sizeof line; j++)
        off += (size_t)snprintf(line + off, sizeof line - off, "%s %s %zu/%zu",
                                j ? "," : "; positives train/val:", names[j],
                                pos[0][j], pos[1][j]);
    if (off < sizeof line)
        snprintf(line + off, sizeof line - off, "; skipped %zu; %.2f s, %.0f images/s", r.skipped,
                 r.seconds, r.seconds > 0 ? (double)r.images / r.seconds : 0.0);
    say(o, LUMEN_LOG_INFO, "%s", line);

out:
    if (nth > 0) {
        stop_all(&p);
        for (; nth > 0; nth--) pthread_join(th[nth - 1], NULL);
    }
    if (sync_init) {
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.ready);
        pthread_cond_destroy(&p.freed);
    }
    for (size_t i = 0; p.slots && i < p.nslots; i++) free(p.slots[i].pix);
    free(p.slots);
    free(th);
    lm_dataset_abort(w); /* NULL after finish */
    if (rc && o->out) {
        /* leave nothing that looks like a dataset */
        char *d = lm_path_join(o->out, "data.mdb"), *l = lm_path_join(o->out, "lock.mdb");
        if (d) remove(d);
        if (l) remove(l);
        free(d);
        free(l);
    }
    cJSON_Delete(extra);
    free(sel);
    free(rows);
    free(lab);
    free(spl);
    free(root);
    free(names);
    lm_labels_free(&tab);
    lm_labels_free(&neg);
    lm_labels_free(&aux);
    lm_problems_free(&probs);
    if (res) *res = r;
    return rc;
}

/* ------------------------------------------------------------------ key -- */

/* Folds every usable row of a label file (when it parses) into the key:
 * its path and its image's size and mtime (stat only). */
static int key_rows(const char *file, const char *text, size_t len, const lm_labels_opts *lo,
                    const char *root, void (*add)(void *user, const void *data, size_t len),
                    void *user, lm_err *err) {
    lm_problems probs;
    lm_problems_init(&probs);
    lm_label_table tab;
    int rc = 0;
    if (lm_labels_parse(file, text, len, lo, &tab, &probs, NULL) == 0) {
        for (size_t i = 0; i < tab.nrows && !rc; i++) {
            const char *name = tab.rows[i].name;
            char *path = lm_path_join(root, name);
            if (!path) {
                rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
                break;
            }
            struct stat st;
            int64_t v[4] = {0, -1, 0, 0}; /* exists, size, mtime s, mtime ns */
            if (stat(path, &st) == 0) {
                v[0] = 1;
                v[1] = (int64_t)st.st_size;
                v[2] = (int64_t)st.st_mtim.tv_sec;
                v[3] = (int64_t)st.st_mtim.tv_nsec;
            }
            add(user, name, strlen(name) + 1);
            add(user, v, sizeof v);
            free(path);
        }
        lm_labels_free(&tab);
    }
    lm_problems_free(&probs);
    return rc;
}

/* Adds `what` (NUL included), the file's length and its bytes to the key;
 * *text gets the bytes (the caller frees them), *len their count (len may
 * be NULL).  Errors name `what` and the file. */
static int key_file(const char *path, const char *what,
                    void (*add)(void *user, const void *data, size_t len), void *user, char **text,
                    size_t *len, lm_err *err) {
    size_t n;
    lm_err e = {0};
    int rc = lm_read_file(path, text, &n, &e);
    if (rc) return lm_fail(err, rc, "%s: %s", what, e.msg);
    uint64_t n64 = n;
    add(user, what, strlen(what) + 1);
    add(user, &n64, sizeof n64);
    add(user, *text, n);
    if (len) *len = n;
    return 0;
}

int ingest_key(const ingest_opts *o, void (*add)(void *user, const void *data, size_t len),
               void *user, lm_err *err) {
    if (!o->csv || !*o->csv) return lm_fail(err, LUMEN_EINVAL, "csv: no label file given");
    char *text, *root = NULL;
    size_t len;
    int rc = lm_read_file(o->csv, &text, &len, err);
    if (rc) return rc;
    add(user, "lumen-ingest-key-1", 18);
    add(user, text, len);
    if ((rc = resolve_root(o, &root, err))) {
        free(text);
        return rc;
    }
    add(user, root, strlen(root) + 1);
    if (o->exclude && *o->exclude) {
        char *xt;
        if ((rc = key_file(o->exclude, "exclude", add, user, &xt, NULL, err))) goto out;
        free(xt);
    }
    if (o->negatives && *o->negatives) {
        char *nt;
        size_t nlen;
        if ((rc = key_file(o->negatives, "negatives", add, user, &nt, &nlen, err))) goto out;
        add(user, &o->negatives_max_prob, sizeof o->negatives_max_prob);
        lm_labels_opts nlo = {.format = LM_LABELS_AUTO, .threshold = 0.5};
        rc = key_rows(o->negatives, nt, nlen, &nlo, root, add, user, err);
        free(nt);
    }
    if (!rc && o->doubtful && *o->doubtful) {
        char *dt;
        if ((rc = key_file(o->doubtful, "doubtful", add, user, &dt, NULL, err))) goto out;
        add(user, "doubtful", 8);
        add(user, &o->doubtful_min_prob, sizeof o->doubtful_min_prob);
        free(dt);
    }
    if (!rc && o->aux && *o->aux) {
        char *at;
        if ((rc = key_file(o->aux, "aux", add, user, &at, NULL, err))) goto out;
        free(at);
    }
    lm_labels_opts lo = {.format = o->format, .threshold = o->threshold};
    if (!rc) rc = key_rows(o->csv, text, len, &lo, root, add, user, err);
out:
    free(root);
    free(text);
    return rc;
}
