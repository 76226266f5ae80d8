/* validate.c -- see validate.h. */
#include "validate.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dataset.h"
#include "evaluate.h"
#include "infer.h"
#include "ensemble.h"
#include "errsheet.h"
#include "groups.h"
#include "predictions.h"

void validate_opts_default(validate_opts *o) {
    memset(o, 0, sizeof *o);
    o->checkpoint = "best";
    o->mode = LM_THR_TUNE;
    o->threshold = 0.5f;
    o->batch = 32;
    o->backend = "auto";
    o->errors = 8;
}

static void logf_(const validate_opts *o, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(const validate_opts *o, int level, const char *fmt, ...) {
    if (!o->log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->log(o->user, level, msg);
}

/* --------------------------------------------------- model folder copy -- */

static int copy_file(const char *src, const char *dst, lm_err *err) {
    if (link(src, dst) == 0) return 0;
    char *data;
    size_t len;
    int rc = lm_read_file(src, &data, &len, err);
    if (rc) return rc;
    rc = lm_write_file_atomic(dst, data, len, err);
    free(data);
    return rc;
}

/* Copies every entry of src into dst (which exists) except `skip` (a name
 * at the top level). */
static int copy_tree(const char *src, const char *dst, const char *skip, lm_err *err) {
    DIR *d = opendir(src);
    if (!d) return lm_fail_errno(err, LUMEN_EIO, "%s: cannot list", src);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (skip && !strcmp(de->d_name, skip)) continue;
        char *s = lm_path_join(src, de->d_name), *t = lm_path_join(dst, de->d_name);
        struct stat st;
        if (!s || !t) rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", src);
        else if (stat(s, &st) != 0) rc = lm_fail_errno(err, LUMEN_EIO, "%s", s);
        else if (S_ISDIR(st.st_mode))
            rc = lm_mkdirs(t, err) ? LUMEN_EIO : copy_tree(s, t, NULL, err);
        else if (S_ISREG(st.st_mode))
            rc = copy_file(s, t, err);
        free(s);
        free(t);
    }
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------- sources -- */

/* Checks that dataset ds holds model m's images.  other_filter (an
 * ensemble member): the dataset may carry another filter than m's, as
 * long as its source planes are m's (eval_source refilters them); then
 * *refilter := 1 (else 0; refilter may be NULL). */
static int check_dataset(const lm_dataset *ds, const lm_infer_model *m, int other_filter, int *refilter_out,
                         lm_err *err) {
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    const char *dir = lm_dataset_dir(ds);
    lm_pixfilter df;
    int rc = lm_pixfilter_from_schema(lm_dataset_schema(ds), -1, dir, &df, err);
    if (rc) return rc;
    int refilter = other_filter && !lm_pixfilter_equal(&df, &m->filter);
    if (refilter_out) *refilter_out = refilter;
    if ((int)in->height != m->height || (int)in->width != m->width ||
        (refilter ? lm_pixfilter_src_channels(&df, (int)in->channels) != m->src_channels
                  : (int)in->channels != m->channels))
        return lm_fail(err, LUMEN_EDATA,
                       "dataset %s holds %ux%ux%u (CxHxW) images but checkpoint %s expects "
                       "%dx%dx%d",
                       dir, in->channels, in->height, in->width, m->path, m->channels, m->height,
                       m->width);
    if (!refilter && !lm_pixfilter_equal(&df, &m->filter)) {
        char fa[96], fb[96];
        lm_pixfilter_describe(&df, fa, sizeof fa);
        lm_pixfilter_describe(&m->filter, fb, sizeof fb);
        return lm_fail(err, LUMEN_EDATA, "dataset %s was ingested with filter %s but checkpoint %s "
                       "was trained on filter %s", dir, fa, m->path, fb);
    }
    int same = (int)in->nlabels == m->k;
    for (int j = 0; same && j < m->k; j++) same = !strcmp(in->labels[j], m->labels[j]);
    if (!same) {
        char a[512] = "", b[512] = "";
        for (size_t j = 0, l = 0; j < in->nlabels && l < sizeof a; j++)
            l += (size_t)snprintf(a + l, sizeof a - l, "%s%s", j ? ", " : "", in->labels[j]);
        for (int j = 0, l = 0; j < m->k && (size_t)l < sizeof b; j++)
            l += snprintf(b + l, sizeof b - (size_t)l, "%s%s", j ? ", " : "", m->labels[j]);
        return lm_fail(err, LUMEN_EDATA,
                       "dataset %s has labels (%s) but checkpoint %s was trained on (%s)", dir,
                       a, m->path, b);
    }
    return 0;
}

static int eval_cancelled(void *user) {
    const validate_opts *o = user;
    return o->cancelled && o->cancelled(o->user);
}

static void eval_progress(void *user, int64_t done, int64_t total) {
    const validate_opts *o = user;
    if (o->progress) o->progress(o->user, done, total);
}

/* The images being validated: the CSV's decoded images (set), or the
 * open dataset (ds, NULL for a CSV).  Kept until the outputs are written
 * (the error sheet shows them). */
typedef struct source {
    const validate_opts *o;
    lm_image_set set;
    lm_dataset *ds;
    int ensemble;          /* members may carry other filters than the source's */
    lm_image_sets alt;     /* the images for members with another filter */
} source;

static int open_source(const validate_opts *o, const lm_infer_model *m, int ensemble, source *src,
                       lm_err *err) {
    memset(src, 0, sizeof *src);
    src->o = o;
    src->ensemble = ensemble;
    if (o->csv) {
        lm_problems probs = {0};
        int rc = lm_image_set_from_csv(o->csv, o->root, 0, o->limit, m, o->threads, &src->set,
                                       &probs, err);
        if (!rc) {
            lm_image_set_problems(&src->set, &probs);
            if (probs.count) {
                char msg[LM_ERR_MSG];
                rc = lm_fail(err, LUMEN_EDATA, "%s",
                             lm_problems_report(&probs, o->csv, msg, sizeof msg));
            } else if (src->set.n == 0) {
                rc = lm_fail(err, LUMEN_EDATA, "%s: no images to evaluate", o->csv);
            }
        }
        if (!rc) logf_(o, LUMEN_LOG_INFO, "validate: %zu images from %s", src->set.n, o->csv);
        lm_problems_free(&probs);
        return rc;
    }
    int rc = lm_dataset_open(o->dataset, &src->ds, err);
    if (rc) return rc;
    size_t nval;
    lm_dataset_split(src->ds, LM_SPLIT_VAL, &nval);
    if (!(rc = check_dataset(src->ds, m, src->ensemble, NULL, err)) && nval == 0)
        rc = lm_fail(err, LUMEN_EDATA,
                     "dataset %s has an empty validation split (ingest split.val = 0?); give "
                     "validate a csv to evaluate on",
                     o->dataset);
    if (!rc) logf_(o, LUMEN_LOG_INFO, "validate: %zu images of the validation split", nval);
    return rc;
}

static void close_source(source *src) {
    lm_image_set_free(&src->set);
    lm_image_sets_free(&src->alt);
    lm_dataset_close(src->ds);
    src->ds = NULL;
}

/* Evaluates model m (engine e) on the source into *r
 * (lm_ensemble_eval_fn). */
static int eval_source(void *user, const lm_infer_model *m, nn_engine *e, lm_eval_result *r,
                       lm_err *err) {
    source *src = user;
    const validate_opts *o = src->o;
    lm_eval_cfg cfg;
    lm_infer_eval_cfg(m, o->batch, o->tta, &cfg);
    cfg.threads = 2;
    cfg.cancelled = eval_cancelled;
    cfg.progress = eval_progress;
    cfg.user = (void *)o;
    int rc = 0, refilter = 0;
    if (!o->csv && ((rc = check_dataset(src->ds, m, src->ensemble, &refilter, err)) || !refilter))
        return rc ? rc : lm_eval_split(e, src->ds, LM_SPLIT_VAL, &cfg, r, err);
    /* the CSV's images, or those of an ensemble member trained on other
     * filtered pixels than the dataset's, refiltered once per filter */
    const lm_image_set *set;
    if ((rc = lm_image_sets_get(&src->alt, o->csv ? &src->set : NULL, src->ds, LM_SPLIT_VAL, m,
                                o->threads, &set, err)) ||
        (rc = lm_infer_eval_set(e, set, &cfg, r, err)) || !refilter)
        return rc;
    /* as lm_eval_split reports them: record numbers and names */
    if (!(r->names = calloc((size_t)r->n + 1, sizeof *r->names))) rc = LUMEN_ENOMEM;
    for (int64_t i = 0; rc == 0 && i < r->n; i++) {
        if (!(r->names[i] = lm_strdup(set->names[r->index[i]]))) rc = LUMEN_ENOMEM;
        r->index[i] = set->record[r->index[i]];
    }
    if (rc) {
        lm_eval_result_free(r);
        return lm_fail(err, LUMEN_ENOMEM, "validate: out of memory");
    }
    return 0;
}

/* Sample i's pixels for the error sheet (lm_errsheet_pixels_fn); user is
 * the sheet context. */
typedef struct sheet_ctx {
    const source *src;
    const lm_eval_result *r;
} sheet_ctx;

static int sheet_pixels(void *user, int64_t i, const uint8_t **px, uint32_t *c, uint32_t *h,
                        uint32_t *w, lm_err *err) {
    const sheet_ctx *s = user;
    uint32_t ix = s->r->index[i];
    if (s->src->ds) {
        lm_record rec;
        if (lm_dataset_get(s->src->ds, ix, &rec))
            return lm_fail(err, LUMEN_EDATA, "validate: no record %u", ix);
        *px = rec.pixels;
        *c = rec.c;
        *h = rec.h;
        *w = rec.w;
        return 0;
    }
    const lm_image_set *set = &s->src->set;
    size_t plane = (size_t)set->channels * set->height * set->width;
    *px = set->pixels + (size_t)ix * plane;
    *c = set->channels;
    *h = set->height;
    *w = set->width;
    return 0;
}

/* ------------------------------------------------------------- outputs -- */

static int put_num(cJSON *o, const char *k, double v) {
    cJSON *x = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    if (x && cJSON_AddItemToObject(o, k, x)) return 0;
    cJSON_Delete(x);
    return 1;
}

static int put_str(cJSON *o, const char *k, const char *v) {
    cJSON *x = cJSON_CreateString(v);
    if (x && cJSON_AddItemToObject(o, k, x)) return 0;
    cJSON_Delete(x);
    return 1;
}

/* The main metrics as a JSON object (for the "validated" record). */
static void collect_main(void *user, const char *key, double value, int main) {
    if (main) put_num(user, key, value);
}

static int write_outputs(const validate_opts *o, const lm_infer_model *m,
                         const validate_result *res, const char *ckpt_file,
                         const lm_ensemble *ens, cJSON *groups, const char *groups_text, lm_err *err) {
    const lm_vreport *rep = &res->report;
    const char *const *labels = (const char *const *)m->labels;
    int rc = 0, bad = 0;
    char *json = NULL, *text = NULL, *vjson = NULL, *body = NULL;
    char *p_json = lm_path_join(o->report_out, "report.json");
    char *p_text = lm_path_join(o->report_out, "report.txt");
    char *p_ckpt = lm_path_join(o->model_out, ckpt_file);
    lm_vreport_info info = {.checkpoint = o->checkpoint, .epoch = m->epoch,
                            .split = o->csv ? NULL : "val", .csv = o->csv, .root = o->root,
                            .tta = o->tta, .views = res->views, .loss = res->loss,
                            .seconds = res->seconds};
    cJSON *doc = lm_vreport_json(rep, labels, &info), *v = cJSON_CreateObject();
    if (!p_json || !p_text || !p_ckpt || !doc || !v) goto oom;
    if (groups) cJSON_AddItemReferenceToObject(doc, "groups", groups);
    bad = put_str(v, "checkpoint", o->checkpoint) || put_str(v, "split", o->csv ? "csv" : "val") ||
          (o->csv && put_str(v, "csv", o->csv)) || !cJSON_AddBoolToObject(v, "tta", o->tta) ||
          put_str(v, "thresholds", lm_vreport_mode_name(rep->mode)) ||
          put_num(v, "n", (double)rep->n) || put_num(v, "seed", (double)rep->cv.seed);
    cJSON *vm = cJSON_AddObjectToObject(v, "metrics");
    if (bad || !vm) goto oom;
    lm_vreport_metrics(rep, labels, "val/", collect_main, vm);

    if (!(json = cJSON_Print(doc)) || !(vjson = cJSON_PrintUnformatted(v)) ||
        !(text = lm_vreport_text(rep, labels)))
        goto oom;
    size_t jl = strlen(json);
    char *jn = realloc(json, jl + 2);
    if (!jn) goto oom;
    json = jn;
    memcpy(json + jl, "\n", 2);
    char epoch[48] = "";
    if (m->epoch >= 0) snprintf(epoch, sizeof epoch, " (epoch %lld)", (long long)m->epoch);
    if (!(body = lm_sprintf("validation of checkpoint %s%s on %s%s\n%s%s", o->checkpoint, epoch,
                            o->csv ? o->csv : "the validation split",
                            o->tta ? ", TTA: mean over the dihedral views" : "", text,
                            groups_text ? groups_text : "")))
        goto oom;
    if ((rc = lm_write_file_atomic(p_json, json, strlen(json), err)) ||
        (rc = lm_write_file_atomic(p_text, body, strlen(body), err)))
        goto out;
    if (ens) {
        /* the input model passes through; the ensemble's manifest, with the
         * thresholds reported, goes with the report */
        lm_ensemble w = *ens;
        w.k = m->k;
        w.labels = m->labels;
        w.has_thresholds = 1;
        memcpy(w.thresholds, rep->thresholds, (size_t)m->k * sizeof *w.thresholds);
        char *p_ens = lm_path_join(o->report_out, LM_ENSEMBLE_FILE);
        rc = p_ens ? lm_ensemble_write(p_ens, &w, NULL, err) : LUMEN_ENOMEM;
        free(p_ens);
        if (rc == LUMEN_ENOMEM) goto oom;
        if (rc || (rc = copy_tree(o->model_in, o->model_out, NULL, err))) goto out;
    } else if ((rc = lm_infer_model_save(m, p_ckpt, rep->thresholds, vjson, err)) ||
               (rc = copy_tree(o->model_in, o->model_out, ckpt_file, err))) {
        goto out;
    }
    /* the table in the log, line by line */
    for (char *line = body, *nl; o->log && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        *nl = '\0';
        o->log(o->user, LUMEN_LOG_INFO, line);
    }
    goto out;
oom:
    rc = lm_fail(err, LUMEN_ENOMEM, "validate: out of memory writing the report");
out:
    cJSON_Delete(doc);
    cJSON_Delete(v);
    free(json);
    free(vjson);
    free(text);
    free(body);
    free(p_json);
    free(p_text);
    free(p_ckpt);
    return rc;
}

/* <report>/predictions.json: every sample's probabilities, targets and
 * name (predictions.h), for cross-validation and error analysis. */
static int write_predictions(const validate_opts *o, const lm_infer_model *m,
                             const lm_eval_result *r, const lm_image_set *set, lm_err *err) {
    const char **names = calloc((size_t)r->n + 1, sizeof *names);
    char *path = lm_path_join(o->report_out, "predictions.json");
    int rc = 0;
    if (!names || !path) {
        rc = lm_fail(err, LUMEN_ENOMEM, "validate: out of memory writing the predictions");
        goto out;
    }
    for (int64_t i = 0; i < r->n; i++)
        names[i] = r->names ? r->names[i]
                   : set->names && r->index[i] < set->n ? set->names[r->index[i]]
                                                        : "";
    rc = lm_preds_write(path, r->probs, r->targets, r->index, names, r->n, r->k,
                        (const char *const *)m->labels, err);
out:
    free(names);
    free(path);
    return rc;
}

typedef struct metric_ctx {
    const validate_opts *o;
    int64_t step;
} metric_ctx;

static void emit_metric(void *user, const char *key, double value, int main) {
    metric_ctx *c = user;
    c->o->metric(c->o->user, key, value, c->step, main);
}

/* ----------------------------------------------------------------- run -- */

int validate_run(const validate_opts *o, validate_result *res, lm_err *err) {
    memset(res, 0, sizeof *res);
    double t0 = lm_now();
    if (!o->model_in || !o->model_out || !o->report_out || !o->checkpoint ||
        (!o->csv && !o->dataset) || o->batch < 1 || o->errors < 0 ||
        o->errors > LM_ERRSHEET_MAX_PER)
        return lm_fail(err, LUMEN_EINVAL, "validate: bad options");
    char *ckpt_file = lm_sprintf("%s.safetensors", o->checkpoint);
    char *path = ckpt_file ? lm_path_join(o->model_in, ckpt_file) : NULL;
    if (!path) {
        free(ckpt_file);
        return lm_fail(err, LUMEN_ENOMEM, "validate: out of memory");
    }
    lm_ensemble ens = {0};
    lm_infer_model m;
    nn_engine *e = NULL;
    lm_eval_result r = {0};
    source src = {0};
    lm_groups groups = {0};
    cJSON *gdoc = NULL;
    char *gtext = NULL;
    const char **names = NULL;
    int rc = 0;
    if (o->groups) { /* before the work: a bad file fails at once */
        lm_err ge = {0};
        if ((rc = lm_groups_load(o->groups, o->groups_column, &groups, &ge))) {
            rc = lm_fail(err, rc, "groups: %s", ge.msg);
            goto out_nomodel;
        }
    }
    if (o->ensemble) {
        const char *one[1] = {o->ensemble};
        if ((rc = lm_ensemble_from_args(one, 1, &ens, err))) goto out_nomodel;
        logf_(o, LUMEN_LOG_INFO, "validate: ensemble of %zu checkpoints from %s (the input model "
              "passes through unchanged)", ens.n_models, o->ensemble);
    }
    rc = lm_infer_model_load(ens.n_models ? ens.models[0] : path, &m, err);
    if (rc) goto out_nomodel;
    if (ens.n_models && ens.has_thresholds) {
        if (ens.k != m.k) {
            rc = lm_fail(err, LUMEN_EDATA, "%s: %d thresholds for %d labels", o->ensemble, ens.k, m.k);
            goto out;
        }
        memcpy(m.thresholds, ens.thresholds, (size_t)m.k * sizeof *m.thresholds);
        m.has_thresholds = 1;
    }
    if (o->mode == LM_THR_STORED && !m.has_thresholds)
        logf_(o, LUMEN_LOG_WARN, "validate: %s stores no thresholds: using 0.5", m.path);
    if ((rc = open_source(o, &m, ens.n_models > 0, &src, err))) goto out;
    if (ens.n_models) {
        rc = lm_ensemble_eval(&ens, &m, o->backend, o->batch, o->threads, eval_source, &src, &r, err);
    } else {
        if ((rc = lm_infer_engine(&m, o->backend, o->batch, o->threads, &e, err))) goto out;
        logf_(o, LUMEN_LOG_INFO, "validate: checkpoint %s (epoch %lld), backend %s, tta %s%s%s", path,
              (long long)m.epoch, nn_engine_backend(e), o->tta ? "on" : "off",
              *nn_engine_note(e) ? "; " : "", nn_engine_note(e));
        rc = eval_source(&src, &m, e, &r, err);
    }
    if (rc) goto out;
    res->loss = r.mean_loss;
    res->views = r.views;
    if ((rc = lm_vreport_compute(r.probs, r.targets, r.n, r.k, o->mode, m.thresholds,
                                 o->threshold, o->seed, &res->report, err)))
        goto out;
    if (!(names = calloc((size_t)r.n + 1, sizeof *names))) {
        rc = lm_fail(err, LUMEN_ENOMEM, "validate: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < r.n; i++)
        names[i] = r.names ? r.names[i] : src.set.names && r.index[i] < src.set.n ? src.set.names[r.index[i]] : NULL;
    if (o->groups && (rc = lm_groups_report(&groups, r.probs, r.targets, r.n, r.k, names,
                                            (const char *const *)m.labels, res->report.thresholds, &gdoc,
                                            &gtext, err)))
        goto out;
    res->seconds = lm_now() - t0;
    if ((rc = write_outputs(o, &m, res, ckpt_file, ens.n_models ? &ens : NULL, gdoc, gtext, err))) goto out;
    if ((rc = write_predictions(o, &m, &r, &src.set, err))) goto out;
    if (o->errors > 0) {
        /* the worst mistakes at the reported thresholds, as a contact sheet */
        char *png = lm_path_join(o->report_out, "errors.png");
        sheet_ctx sc = {&src, &r};
        if (!png) rc = lm_fail(err, LUMEN_ENOMEM, "validate: out of memory");
        if (rc == 0)
            rc = lm_errsheet_write(png, r.probs, r.targets, names, r.n, r.k,
                                   (const char *const *)m.labels, res->report.thresholds,
                                   o->errors, sheet_pixels, &sc, err);
        if (rc == 0) logf_(o, LUMEN_LOG_INFO, "validate: worst errors per label: %s", png);
        free(png);
        if (rc) goto out;
    }
    if (o->metric) {
        metric_ctx mc = {o, m.epoch > 0 ? m.epoch : 0};
        lm_vreport_metrics(&res->report, (const char *const *)m.labels, "val/", emit_metric, &mc);
        /* not "val/loss": train logs that one with its pos_weight */
        if (isfinite(res->loss)) o->metric(o->user, "val/loss_unweighted", res->loss, mc.step, 0);
    }
out:
    lm_eval_result_free(&r);
    close_source(&src);
    nn_engine_free(e);
    lm_infer_model_free(&m);
out_nomodel:
    free(names);
    cJSON_Delete(gdoc);
    free(gtext);
    lm_groups_free(&groups);
    lm_ensemble_free(&ens);
    free(path);
    free(ckpt_file);
    return rc;
}
