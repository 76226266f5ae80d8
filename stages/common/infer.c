/* infer.c -- see infer.h. */
#include "infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dataset.h"
#include "image.h"

/* ------------------------------------------------------------ model -- */

void lm_infer_model_free(lm_infer_model *m) {
    if (!m) return;
    for (int i = 0; i < m->k && m->labels; i++) free(m->labels[i]);
    free(m->labels);
    free(m->thresholds);
    free(m->params);
    free(m->buffers);
    free(m->counters);
    nn_model_free(m->model);
    lm_st_close(m->file);
    free(m->path);
    memset(m, 0, sizeof *m);
}

/* Parses metadata `key` (text) as JSON of the wanted kind (array / object). */
static int meta_json(const lm_infer_model *m, const char *key, const char *text, int array,
                     cJSON **out, lm_err *err) {
    *out = NULL;
    if (!text) return lm_fail(err, LUMEN_EDATA, "%s: metadata \"%s\" is missing", m->path, key);
    cJSON *j = cJSON_Parse(text);
    if (!j || (array ? !cJSON_IsArray(j) : !cJSON_IsObject(j))) {
        cJSON_Delete(j);
        return lm_fail(err, LUMEN_EDATA, "%s: metadata \"%s\" must be a JSON %s, got %.120s",
                       m->path, key, array ? "array" : "object", text);
    }
    *out = j;
    return 0;
}

static int json_int(const cJSON *o, const char *key, int *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 1 ||
        x->valuedouble > 1e6)
        return 0;
    *v = (int)x->valuedouble;
    return 1;
}

static int read_labels(lm_infer_model *m, const char *text, lm_err *err) {
    cJSON *j;
    int rc = meta_json(m, "labels", text, 1, &j, err);
    if (rc) return rc;
    if (cJSON_GetArraySize(j) != m->k) {
        cJSON_Delete(j);
        return lm_fail(err, LUMEN_EDATA, "%s: metadata \"labels\" must list %d names, got %.120s",
                       m->path, m->k, text);
    }
    if (!(m->labels = calloc((size_t)m->k, sizeof *m->labels))) rc = LUMEN_ENOMEM;
    int i = 0;
    for (const cJSON *x = j->child; x && !rc; x = x->next, i++) {
        if (!cJSON_IsString(x) || !*x->valuestring)
            rc = lm_fail(err, LUMEN_EDATA, "%s: metadata \"labels\": entry %d is not a name",
                         m->path, i);
        else if (!(m->labels[i] = strdup(x->valuestring)))
            rc = LUMEN_ENOMEM;
    }
    cJSON_Delete(j);
    return rc == LUMEN_ENOMEM ? lm_fail(err, rc, "%s: out of memory", m->path) : rc;
}

static int read_thresholds(lm_infer_model *m, const char *text, lm_err *err) {
    if (!(m->thresholds = malloc((size_t)m->k * sizeof *m->thresholds)))
        return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", m->path);
    for (int i = 0; i < m->k; i++) m->thresholds[i] = 0.5f;
    if (!text) return 0;
    cJSON *j;
    int rc = meta_json(m, "thresholds", text, 1, &j, err);
    if (rc) return rc;
    int i = 0, ok = cJSON_GetArraySize(j) == m->k;
    for (const cJSON *x = j->child; x && ok; x = x->next, i++) {
        ok = cJSON_IsNumber(x) && isfinite(x->valuedouble);
        if (ok) m->thresholds[i] = (float)x->valuedouble;
    }
    cJSON_Delete(j);
    if (!ok)
        return lm_fail(err, LUMEN_EDATA, "%s: metadata \"thresholds\" must hold %d numbers, got %.120s",
                       m->path, m->k, text);
    m->has_thresholds = 1;
    return 0;
}

static int read_stats(lm_infer_model *m, const char *text, lm_err *err) {
    cJSON *j;
    int rc = meta_json(m, "stats", text, 0, &j, err);
    if (rc) return rc;
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "std");
    int ok = cJSON_IsArray(mean) && cJSON_IsArray(sd) && cJSON_GetArraySize(mean) == m->channels &&
             cJSON_GetArraySize(sd) == m->channels;
    for (int c = 0; ok && c < m->channels; c++) {
        const cJSON *a = cJSON_GetArrayItem(mean, c), *b = cJSON_GetArrayItem(sd, c);
        ok = cJSON_IsNumber(a) && cJSON_IsNumber(b) && isfinite(a->valuedouble) &&
             b->valuedouble > 0 && isfinite(b->valuedouble);
        if (ok) m->mean[c] = (float)a->valuedouble, m->std[c] = (float)b->valuedouble;
    }
    cJSON_Delete(j);
    if (!ok)
        return lm_fail(err, LUMEN_EDATA,
                       "%s: metadata \"stats\" needs \"mean\" and \"std\" arrays of %d numbers "
                       "(std > 0), got %.120s",
                       m->path, m->channels, text);
    return 0;
}

static int read_input(lm_infer_model *m, const char *text, lm_err *err) {
    cJSON *j;
    int rc = meta_json(m, "input", text, 0, &j, err);
    if (rc) return rc;
    int c = 0, ok = json_int(j, "height", &m->height) && json_int(j, "width", &m->width) &&
                    json_int(j, "channels", &c) && c == m->model->cfg.in_channels;
    if (ok && (rc = lm_pixfilter_from_json(cJSON_GetObjectItemCaseSensitive(j, "filter"), m->path,
                                           &m->filter, err))) {
        cJSON_Delete(j);
        return rc;
    }
    m->src_channels = ok ? lm_pixfilter_src_channels(&m->filter, c) : 0;
    if (ok && m->src_channels != 1 && m->src_channels != 3) {
        cJSON_Delete(j);
        return lm_fail(err, LUMEN_EDATA,
                       "%s: metadata \"input\": %d channels do not come from 1 or 3 decoded "
                       "channels with its filter, got %.120s", m->path, c, text);
    }
    cJSON_Delete(j);
    if (!ok)
        return lm_fail(err, LUMEN_EDATA,
                       "%s: metadata \"input\" must be {\"height\":H,\"width\":W,\"channels\":%d}, "
                       "got %.120s",
                       m->path, m->model->cfg.in_channels, text);
    m->channels = c;
    return 0;
}

int lm_infer_model_load(const char *path, lm_infer_model *m, lm_err *err) {
    memset(m, 0, sizeof *m);
    if (!(m->path = strdup(path))) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
    lm_ckpt_meta meta;
    nn_resnet_cfg cfg;
    int rc = lm_ckpt_open(path, &m->file, err);
    if (!rc) rc = lm_ckpt_read_meta(m->file, &meta, err);
    if (!rc) {
        lm_err e2 = {0};
        rc = nn_resnet_cfg_from_json(meta.model, &cfg, &e2);
        if (rc) rc = lm_fail(err, LUMEN_EDATA, "%s: metadata \"model\": %s", path, e2.msg);
    }
    if (!rc) rc = nn_model_create(&cfg, &m->model, err);
    if (rc) goto fail;
    m->k = cfg.num_classes;
    m->epoch = meta.epoch;
    if (cfg.in_channels > LM_INFER_MAX_CHANNELS) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: %d input channels, at most %d supported", path,
                     cfg.in_channels, LM_INFER_MAX_CHANNELS);
        goto fail;
    }
    m->params = calloc(m->model->nparams + 1, sizeof *m->params);
    m->buffers = calloc(m->model->nbuffers + 1, sizeof *m->buffers);
    m->counters = calloc(m->model->ncounters + 1, sizeof *m->counters);
    if (!m->params || !m->buffers || !m->counters) {
        rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    lm_ckpt_load_opts lo = {.strict = 1};
    if ((rc = lm_ckpt_load(m->file, m->model, m->params, m->buffers, m->counters, &lo, NULL, err)) ||
        (rc = read_input(m, meta.input, err)) || (rc = read_labels(m, meta.labels, err)) ||
        (rc = read_stats(m, meta.stats, err)) || (rc = read_thresholds(m, meta.thresholds, err)))
        goto fail;
    return 0;
fail:
    lm_infer_model_free(m);
    return rc;
}

int lm_infer_engine(const lm_infer_model *m, const char *backend, int batch, int threads,
                    nn_engine **e, lm_err *err) {
    *e = NULL;
    nn_engine_opts o = {.batch = batch, .channels = m->channels, .height = m->height,
                        .width = m->width, .threads = threads};
    int rc = nn_engine_create(backend ? backend : "auto", m->model, &o, e, err);
    if (!rc) rc = nn_engine_set_state(*e, m->params, m->buffers, m->counters, err);
    if (rc) {
        nn_engine_free(*e);
        *e = NULL;
    }
    return rc;
}

int lm_infer_model_save(const lm_infer_model *m, const char *path, const float *thresholds,
                        const char *validated_json, lm_err *err) {
    if (validated_json) {
        cJSON *v = cJSON_Parse(validated_json);
        int ok = cJSON_IsObject(v);
        cJSON_Delete(v);
        if (!ok) return lm_fail(err, LUMEN_EINVAL, "%s: \"validated\" must be a JSON object", path);
    }
    lm_ckpt_meta meta;
    int rc = lm_ckpt_read_meta(m->file, &meta, err);
    if (rc) return rc;
    /* thresholds as JSON, shortest text that reads back as the same float */
    cJSON *thr = cJSON_CreateArray();
    for (int i = 0; thr && i < m->k; i++) {
        char num[32];
        snprintf(num, sizeof num, "%.9g", (double)thresholds[i]);
        cJSON *x = cJSON_CreateRaw(num);
        if (!x || !cJSON_AddItemToArray(thr, x)) {
            cJSON_Delete(x);
            cJSON_Delete(thr);
            thr = NULL;
        }
    }
    char *thr_text = thr ? cJSON_PrintUnformatted(thr) : NULL;
    cJSON_Delete(thr);
    size_t nmeta = lm_st_meta_count(m->file);
    const char **extra = calloc(2 * nmeta + 3, sizeof *extra);
    if (!thr_text || !extra) {
        free(thr_text);
        free(extra);
        return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
    }
    size_t ne = 0;
    for (size_t i = 0; i < nmeta; i++) {
        const char *k = lm_st_meta_key(m->file, i);
        if (lm_ckpt_meta_reserved(k) || (validated_json && !strcmp(k, "validated"))) continue;
        extra[ne++] = k;
        extra[ne++] = lm_st_meta_value(m->file, i);
    }
    if (validated_json) {
        extra[ne++] = "validated";
        extra[ne++] = validated_json;
    }
    meta.thresholds = thr_text;
    meta.extra = extra;
    rc = lm_ckpt_save(path, m->model, m->params, m->buffers, m->counters, &meta, err);
    free(thr_text);
    free(extra);
    return rc;
}

/* ------------------------------------------------------- image sets -- */

void lm_image_set_free(lm_image_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        if (s->names) free(s->names[i]);
        if (s->errors) free(s->errors[i]);
    }
    free(s->names);
    free(s->errors);
    free(s->ok);
    free(s->pixels);
    free(s->labels);
    free(s->record);
    memset(s, 0, sizeof *s);
}

/* An empty set of n images shaped for m (pixels, labels, names, errors,
 * ok allocated, all zero). */
static int set_alloc(lm_image_set *s, size_t n, const lm_infer_model *m, lm_err *err) {
    memset(s, 0, sizeof *s);
    if (n > UINT32_MAX) return lm_fail(err, LUMEN_EINVAL, "%zu images: too many", n);
    s->channels = (uint32_t)m->channels;
    s->height = (uint32_t)m->height;
    s->width = (uint32_t)m->width;
    s->nlabels = (uint32_t)m->k;
    s->filter = m->filter;
    s->src_channels = m->src_channels;
    size_t px = (size_t)s->channels * s->height * s->width;
    s->n = n;
    s->names = calloc(n + 1, sizeof *s->names);
    s->errors = calloc(n + 1, sizeof *s->errors);
    s->ok = calloc(n + 1, sizeof *s->ok);
    s->pixels = calloc(n * px + 1, 1);
    s->labels = calloc(n * s->nlabels + 1, sizeof *s->labels);
    if (s->names && s->errors && s->ok && s->pixels && s->labels) return 0;
    lm_image_set_free(s);
    return lm_fail(err, LUMEN_ENOMEM, "%zu images: out of memory", n);
}

/* Refilters image i of n planar images `in` (src_channels source planes
 * first, in_px bytes each) into s's pixels, in parallel; failures go to
 * s->errors.  Returns LUMEN_ENOMEM when a message could not be kept. */
static int refilter_all(lm_image_set *s, const uint8_t *const *in, int threads) {
    size_t px = (size_t)s->channels * s->height * s->width;
    int lost = 0;
    if (threads <= 0) threads = lm_ncpu();
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads) reduction(| : lost)
    for (size_t i = 0; i < s->n; i++) {
        if (!in[i] || s->errors[i]) continue;
        lm_err e = {0};
        int rc = lm_pixfilter_refilter(&s->filter, in[i], s->src_channels, s->height, s->width,
                                       s->pixels + i * px, &e);
        if (rc) {
            memset(s->pixels + i * px, 0, px);
            s->errors[i] = strdup(e.msg[0] ? e.msg : lm_strcode(rc));
            lost |= !s->errors[i];
        }
    }
    return lost ? LUMEN_ENOMEM : 0;
}

static void count_ok(lm_image_set *s) {
    size_t nok = 0;
    s->nfailed = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->errors[i]) s->nfailed++;
        else s->ok[nok++] = (uint32_t)i;
    }
}

int lm_image_set_for_model(const lm_image_set *s, const lm_infer_model *m, int threads,
                           lm_image_set *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    if (s->height != (uint32_t)m->height || s->width != (uint32_t)m->width ||
        s->src_channels != m->src_channels || s->nlabels != (uint32_t)m->k)
        return lm_fail(err, LUMEN_EDATA,
                       "%s expects %dx%d images of %d source channel(s) and %d labels; the images "
                       "were decoded at %ux%u with %d and %u",
                       m->path, m->height, m->width, m->src_channels, m->k, s->height, s->width,
                       s->src_channels, s->nlabels);
    int rc = set_alloc(out, s->n, m, err);
    if (rc) return rc;
    size_t px = (size_t)s->channels * s->height * s->width;
    const uint8_t **in = calloc(s->n + 1, sizeof *in);
    int oom = !in;
    for (size_t i = 0; i < s->n && !oom; i++) {
        oom = !(out->names[i] = strdup(s->names[i])) ||
              (s->errors[i] && !(out->errors[i] = strdup(s->errors[i])));
        in[i] = s->pixels + i * px;
    }
    if (!oom) memcpy(out->labels, s->labels, s->n * s->nlabels * sizeof *s->labels);
    if (!oom && refilter_all(out, in, threads)) oom = 1;
    free(in);
    if (oom) {
        lm_image_set_free(out);
        return lm_fail(err, LUMEN_ENOMEM, "%zu images: out of memory", s->n);
    }
    count_ok(out);
    return 0;
}

int lm_image_set_from_split(const lm_dataset *ds, int split, const lm_infer_model *m, int threads,
                            lm_image_set *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    const char *dir = lm_dataset_dir(ds);
    lm_pixfilter df;
    int rc = lm_pixfilter_from_schema(lm_dataset_schema(ds), (int)in->channels, dir, &df, err);
    if (rc) return rc;
    int same = in->height == (uint32_t)m->height && in->width == (uint32_t)m->width &&
               lm_pixfilter_src_channels(&df, (int)in->channels) == m->src_channels &&
               in->nlabels == (size_t)m->k;
    for (int j = 0; same && j < m->k; j++) same = !strcmp(in->labels[j], m->labels[j]);
    if (!same)
        return lm_fail(err, LUMEN_EDATA,
                       "dataset %s (%ux%u, %u channel(s), %zu labels) does not hold the images of "
                       "checkpoint %s (%dx%d, %d source channel(s), %d labels)",
                       dir, in->height, in->width, in->channels, (size_t)in->nlabels, m->path,
                       m->height, m->width, m->src_channels, m->k);
    size_t n;
    const uint32_t *ids = lm_dataset_split(ds, split, &n);
    if ((rc = set_alloc(out, n, m, err))) return rc;
    const uint8_t **px = calloc(n + 1, sizeof *px);
    out->record = calloc(n + 1, sizeof *out->record);
    int oom = !px || !out->record;
    for (size_t i = 0; i < n && !oom; i++) {
        lm_record rec;
        if ((rc = lm_dataset_get(ds, ids[i], &rec))) {
            free(px);
            lm_image_set_free(out);
            return lm_fail(err, LUMEN_EDATA, "dataset %s: cannot read record %u", dir, ids[i]);
        }
        oom = !(out->names[i] = strdup(rec.name));
        memcpy(out->labels + i * out->nlabels, rec.labels, out->nlabels * sizeof *rec.labels);
        px[i] = rec.pixels;
        out->record[i] = ids[i];
    }
    if (!oom && refilter_all(out, px, threads)) oom = 1;
    free(px);
    if (oom) {
        lm_image_set_free(out);
        return lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", dir);
    }
    count_ok(out);
    return 0;
}

int lm_image_sets_get(lm_image_sets *c, const lm_image_set *base, const lm_dataset *ds, int split,
                      const lm_infer_model *m, int threads, const lm_image_set **out, lm_err *err) {
    *out = NULL;
    if (base && lm_pixfilter_equal(&m->filter, &base->filter)) {
        *out = base;
        return 0;
    }
    for (size_t i = 0; i < c->n; i++)
        if (lm_pixfilter_equal(&m->filter, &c->v[i].filter)) {
            *out = &c->v[i];
            return 0;
        }
    lm_image_set *g = realloc(c->v, (c->n + 1) * sizeof *g);
    if (!g) return lm_fail(err, LUMEN_ENOMEM, "image sets: out of memory");
    c->v = g;
    int rc = base ? lm_image_set_for_model(base, m, threads, &g[c->n], err)
                  : lm_image_set_from_split(ds, split, m, threads, &g[c->n], err);
    if (rc) return rc;
    *out = &g[c->n++];
    return 0;
}

void lm_image_sets_free(lm_image_sets *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) lm_image_set_free(&c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

int lm_image_set_load(const char *const *names, size_t n, const char *root, const float *labels,
                      const lm_infer_model *m, int threads, lm_image_set *s, lm_err *err) {
    memset(s, 0, sizeof *s);
    if (!m || (n && !names)) return lm_fail(err, LUMEN_EINVAL, "lm_image_set_load: bad arguments");
    int rc = set_alloc(s, n, m, err);
    if (rc) return rc;
    size_t px = (size_t)s->channels * s->height * s->width;
    int oom = 0;
    for (size_t i = 0; i < n && !oom; i++) oom = !(s->names[i] = strdup(names[i]));
    if (oom) {
        lm_image_set_free(s);
        return lm_fail(err, LUMEN_ENOMEM, "decoding %zu images: out of memory", n);
    }
    if (labels) memcpy(s->labels, labels, n * s->nlabels * sizeof *labels);
    if (threads <= 0) threads = lm_ncpu();
    const lm_image_limits lim = LM_IMAGE_LIMITS_DEFAULT;
    int lost = 0; /* a failure whose message could not be stored */
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : lost)
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        int join = root && name[0] != '/';
        char *full = join ? lm_path_join(root, name) : NULL;
        lm_err e = {0};
        int r = join && !full ? lm_fail(&e, LUMEN_ENOMEM, "%s: out of memory", name)
                              : lm_png_load_u8(join ? full : name, m->src_channels, s->width,
                                               s->height, &lim, s->pixels + i * px, &e);
        if (!r) /* the model's filter, as ingest applied it to its training data */
            r = lm_pixfilter_apply(&m->filter, s->pixels + i * px, m->src_channels, s->height,
                                   s->width, &e);
        free(full);
        if (r) {
            memset(s->pixels + i * px, 0, px);
            s->errors[i] = strdup(e.msg[0] ? e.msg : lm_strcode(r));
            lost |= !s->errors[i];
        }
    }
    if (lost) {
        lm_image_set_free(s);
        return lm_fail(err, LUMEN_ENOMEM, "decoding %zu images: out of memory", n);
    }
    count_ok(s);
    return 0;
}

static int set_get(void *ctx, uint32_t i, const uint8_t **pixels, const float **labels,
                   lm_err *err) {
    const lm_image_set *s = ctx;
    if (i >= s->n || s->errors[i])
        return lm_fail(err, LUMEN_EINVAL, "image set: no usable image %u", (unsigned)i);
    *pixels = s->pixels + (size_t)i * s->channels * s->height * s->width;
    *labels = s->labels + (size_t)i * s->nlabels;
    return 0;
}

void lm_image_set_source(const lm_image_set *s, lm_loader_source *src) {
    *src = (lm_loader_source){
        .ctx = (void *)s,
        .height = s->height,
        .width = s->width,
        .channels = s->channels,
        .nlabels = s->nlabels,
        .indices = s->ok,
        .count = s->n - s->nfailed,
        .get = set_get,
    };
}

void lm_image_set_problems(const lm_image_set *s, lm_problems *probs) {
    for (size_t i = 0; i < s->n; i++)
        if (s->errors[i]) lm_problems_add(probs, (long)i + 1, "%s", s->errors[i]);
}

/* "a, b, c" of names[0..n) into buf. */
static void name_list(char *buf, size_t cap, char *const *names, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

/* col[j] := the file column of model label j; LUMEN_EDATA naming the header
 * when the label sets differ. */
static int map_labels(const char *csv, const lm_label_table *t, const lm_infer_model *m,
                      size_t *col, lm_err *err) {
    char missing[256] = "", unknown[256] = "";
    size_t lm = 0, lu = 0;
    for (int j = 0; j < m->k; j++) {
        col[j] = SIZE_MAX;
        for (size_t c = 0; c < t->nlabels; c++)
            if (!strcmp(t->label_names[c], m->labels[j])) col[j] = c;
        if (col[j] == SIZE_MAX && lm < sizeof missing)
            lm += (size_t)snprintf(missing + lm, sizeof missing - lm, "%s'%s'", lm ? ", " : "",
                                   m->labels[j]);
    }
    for (size_t c = 0; c < t->nlabels; c++) {
        int found = 0;
        for (int j = 0; j < m->k; j++) found |= !strcmp(t->label_names[c], m->labels[j]);
        if (!found && lu < sizeof unknown)
            lu += (size_t)snprintf(unknown + lu, sizeof unknown - lu, "%s'%s'", lu ? ", " : "",
                                   t->label_names[c]);
    }
    if (!lm && !lu) return 0;
    char have[512], want[512];
    name_list(have, sizeof have, t->label_names, t->nlabels);
    name_list(want, sizeof want, m->labels, (size_t)m->k);
    return lm_fail(err, LUMEN_EDATA,
                   "%s: header labels (%s) do not match the checkpoint's labels (%s)%s%s%s%s", csv,
                   have, want, lm ? ": missing " : "", missing, lu ? (lm ? ", unknown " : ": unknown ") : "",
                   unknown);
}

int lm_image_set_from_csv(const char *csv, const char *root, int names_only, int64_t limit,
                          const lm_infer_model *m, int threads, lm_image_set *s,
                          lm_problems *probs, lm_err *err) {
    memset(s, 0, sizeof *s);
    lm_labels_opts lo = {.format = LM_LABELS_AUTO, .threshold = 0.5, .names_only = names_only};
    lm_label_table t;
    int rc = lm_labels_load(csv, &lo, &t, probs, err);
    if (rc) return rc;
    size_t n = t.nrows;
    if (limit > 0 && (uint64_t)limit < n) n = (size_t)limit;
    size_t *col = calloc((size_t)m->k, sizeof *col);
    const char **names = calloc(n + 1, sizeof *names);
    float *labels = names_only ? NULL : calloc(n * (size_t)m->k + 1, sizeof *labels);
    char *dir = NULL;
    if (!col || !names || (!names_only && !labels)) {
        rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", csv);
        goto out;
    }
    if (!names_only && (rc = map_labels(csv, &t, m, col, err))) goto out;
    for (size_t i = 0; i < n; i++) {
        names[i] = t.rows[i].name;
        for (int j = 0; labels && j < m->k; j++)
            labels[i * (size_t)m->k + (size_t)j] = t.values[i * t.nlabels + col[j]];
    }
    if (!root) {
        const char *slash = strrchr(csv, '/');
        dir = slash ? strndup(csv, (size_t)(slash - csv) + (slash == csv)) : strdup(".");
        if (!dir) {
            rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", csv);
            goto out;
        }
        root = dir;
    }
    rc = lm_image_set_load(names, n, root, labels, m, threads, s, err);
out:
    free(dir);
    free(labels);
    free(names);
    free(col);
    lm_labels_free(&t);
    return rc;
}

void lm_infer_eval_cfg(const lm_infer_model *m, int batch, int tta, lm_eval_cfg *cfg) {
    lm_eval_cfg_default(cfg);
    cfg->mean = m->mean;
    cfg->std = m->std;
    cfg->batch = batch;
    cfg->tta = tta;
}

int lm_infer_eval_set(nn_engine *e, const lm_image_set *s, const lm_eval_cfg *cfg,
                      lm_eval_result *r, lm_err *err) {
    lm_loader_source src;
    lm_image_set_source(s, &src);
    return lm_eval_source(e, &src, cfg, r, err);
}
