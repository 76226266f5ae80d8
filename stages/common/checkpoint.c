/* checkpoint.c -- see checkpoint.h. */
#include "checkpoint.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <xxhash.h>

#include "pixfilter.h"

/* ------------------------------------------------------------ helpers -- */

static void fmt_dims(char *buf, size_t cap, int ndim, const int64_t *dims) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)dims[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static const nn_tensor *model_find(const nn_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

static int is_head(const char *name) {
    return strcmp(name, "fc.weight") == 0 || strcmp(name, "fc.bias") == 0;
}

/* Appends a copy of s to a growing string list; -1 on OOM. */
static int list_push(char ***list, size_t *n, const char *s) {
    char **nl = realloc(*list, (*n + 1) * sizeof *nl);
    if (!nl) return -1;
    *list = nl;
    if (!(nl[*n] = lm_strdup(s))) return -1;
    (*n)++;
    return 0;
}

static void list_free(char **list, size_t n) {
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
}

/* "a, b, c, ... (N more)" of at most `show` names into buf. */
static void fmt_list(char *buf, size_t cap, char *const *list, size_t n, size_t show) {
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < show && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", list[i]);
    if (n > show && k < cap) snprintf(buf + k, cap - k, ", ... (%zu more)", n - show);
}

/* ------------------------------------------------------------- saving -- */

int lm_ckpt_add_model(lm_st_writer *w, const nn_model *m, const float *params,
                      const float *buffers, const int64_t *counters, lm_err *e) {
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        int rc;
        switch (t->kind) {
        case NN_T_PARAM:
            rc = lm_st_writer_add(w, t->name, LM_ST_F32, t->ndim, t->dims, params + t->offset, e);
            break;
        case NN_T_BUFFER:
            rc = lm_st_writer_add(w, t->name, LM_ST_F32, t->ndim, t->dims, buffers + t->offset, e);
            break;
        default:
            rc = lm_st_writer_add(w, t->name, LM_ST_I64, 0, NULL, counters + t->offset, e);
            break;
        }
        if (rc) return rc;
    }
    return 0;
}

/* Parses `json` for metadata key `key` and checks its type; *out (may be
 * NULL) receives the tree to inspect (caller deletes).  `code`: LUMEN_EINVAL
 * on save (the caller's mistake), LUMEN_EDATA on load (the file's). */
static int check_json(const char *path, int code, const char *key, const char *json,
                      int want_array, cJSON **out, lm_err *e) {
    cJSON *j = cJSON_Parse(json);
    if (!j || (want_array ? !cJSON_IsArray(j) : !cJSON_IsObject(j))) {
        cJSON_Delete(j);
        return lm_fail(e, code, "%s: metadata \"%s\" must be a JSON %s, got '%.80s'", path, key,
                       want_array ? "array" : "object", json);
    }
    if (out) *out = j;
    else cJSON_Delete(j);
    return 0;
}

/* An integer field of o within [lo, hi] into *v; 0 when absent, not an
 * integer or out of range. */
static int json_int_in(const cJSON *o, const char *k, long lo, long hi, long *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) ||
        !(x->valuedouble >= (double)lo && x->valuedouble <= (double)hi))
        return 0;
    *v = (long)x->valuedouble;
    return 1;
}

static const char *const reserved_keys[] = {"format",  "version", "model", "labels",
                                            "stats",   "thresholds", "metrics", "input",
                                            "epoch",   "created", LM_CKPT_DIGEST_KEY, NULL};

int lm_ckpt_meta_reserved(const char *key) {
    for (const char *const *r = reserved_keys; *r; r++)
        if (strcmp(*r, key) == 0) return 1;
    return 0;
}

/* "labels": num_classes distinct names, each 1..LM_CKPT_MAX_LABEL bytes
 * without control characters. */
static int check_labels(const char *path, int code, const nn_resnet_cfg *cfg, const char *text,
                        lm_err *e) {
    cJSON *j = NULL;
    int rc = check_json(path, code, "labels", text, 1, &j, e);
    if (rc) return rc;
    int n = cJSON_GetArraySize(j), i = 0;
    if (n != cfg->num_classes)
        rc = lm_fail(e, code, "%s: metadata \"labels\" must list %d label names (num_classes), "
                     "got %d: %.120s", path, cfg->num_classes, n, text);
    for (const cJSON *x = j->child; x && !rc; x = x->next, i++) {
        const char *s = cJSON_IsString(x) ? x->valuestring : NULL;
        size_t len = s ? strlen(s) : 0;
        int ctrl = 0;
        for (size_t k = 0; k < len; k++) ctrl |= (unsigned char)s[k] < 0x20 || s[k] == 0x7f;
        if (!s || len == 0 || len > LM_CKPT_MAX_LABEL || ctrl) {
            rc = lm_fail(e, code, "%s: metadata \"labels\": entry %d is not a label name "
                         "(1..%d bytes, no control characters): %.120s",
                         path, i, LM_CKPT_MAX_LABEL, text);
            break;
        }
        for (const cJSON *y = j->child; y != x && !rc; y = y->next)
            if (strcmp(y->valuestring, s) == 0)
                rc = lm_fail(e, code, "%s: metadata \"labels\": '%s' appears twice", path, s);
    }
    cJSON_Delete(j);
    return rc;
}

/* "thresholds": num_classes finite numbers in [0, 1]. */
static int check_thresholds(const char *path, int code, const nn_resnet_cfg *cfg,
                            const char *text, lm_err *e) {
    cJSON *j = NULL;
    int rc = check_json(path, code, "thresholds", text, 1, &j, e);
    if (rc) return rc;
    int n = cJSON_GetArraySize(j), i = 0;
    if (n != cfg->num_classes)
        rc = lm_fail(e, code, "%s: metadata \"thresholds\" must hold %d numbers (num_classes), "
                     "got %d: %.120s", path, cfg->num_classes, n, text);
    for (const cJSON *x = j->child; x && !rc; x = x->next, i++) {
        if (!cJSON_IsNumber(x))
            rc = lm_fail(e, code, "%s: metadata \"thresholds\": entry %d is not a number: %.120s",
                         path, i, text);
        else if (!(x->valuedouble >= 0.0 && x->valuedouble <= 1.0))
            rc = lm_fail(e, code, "%s: metadata \"thresholds\": entry %d is %g, outside [0, 1]",
                         path, i, x->valuedouble);
    }
    cJSON_Delete(j);
    return rc;
}

/* "stats": {"channels": in_channels, "mean": [..], "std": [..]} in tone
 * units (normstats.h): mean in [0, 1], std in (0, 1]. */
static int check_stats(const char *path, int code, const nn_resnet_cfg *cfg, const char *text,
                       lm_err *e) {
    cJSON *j = NULL;
    int rc = check_json(path, code, "stats", text, 0, &j, e);
    if (rc) return rc;
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(j, "mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "std");
    long c = 0;
    if (!json_int_in(j, "channels", 1, 16, &c) || c != cfg->in_channels || !cJSON_IsArray(mean) ||
        !cJSON_IsArray(sd) || cJSON_GetArraySize(mean) != c || cJSON_GetArraySize(sd) != c)
        rc = lm_fail(e, code, "%s: metadata \"stats\" needs \"channels\": %d (in_channels) and "
                     "\"mean\" and \"std\" arrays of as many numbers, got %.120s",
                     path, cfg->in_channels, text);
    for (int i = 0; i < c && !rc; i++) {
        const cJSON *a = cJSON_GetArrayItem(mean, i), *b = cJSON_GetArrayItem(sd, i);
        if (!cJSON_IsNumber(a) || !(a->valuedouble >= 0.0 && a->valuedouble <= 1.0))
            rc = lm_fail(e, code, "%s: metadata \"stats\": mean[%d] must be a number in [0, 1] "
                         "(tone units), got %.120s", path, i, text);
        else if (!cJSON_IsNumber(b) || !(b->valuedouble > 0.0 && b->valuedouble <= 1.0))
            rc = lm_fail(e, code, "%s: metadata \"stats\": std[%d] must be a number in (0, 1] "
                         "(tone units), got %.120s", path, i, text);
    }
    cJSON_Delete(j);
    return rc;
}

/* "input": {"height": H, "width": W, "channels": in_channels[, "filter": F]}
 * (pixfilter.h). */
static int check_input(const char *path, int code, const nn_resnet_cfg *cfg, const char *text,
                       lm_err *e) {
    cJSON *j = NULL;
    int rc = check_json(path, code, "input", text, 0, &j, e);
    if (rc) return rc;
    long h, w, c;
    int ok = json_int_in(j, "height", 1, LM_CKPT_MAX_SIDE, &h) &&
             json_int_in(j, "width", 1, LM_CKPT_MAX_SIDE, &w) &&
             json_int_in(j, "channels", 1, 16, &c) && c == cfg->in_channels;
    lm_pixfilter f = {0};
    lm_err fe = {0};
    if (ok && lm_pixfilter_from_json(cJSON_GetObjectItemCaseSensitive(j, "filter"), path, &f, &fe)) {
        cJSON_Delete(j);
        return lm_fail(e, code, "%s (metadata \"input\")", fe.msg);
    }
    cJSON_Delete(j);
    if (!ok)
        return lm_fail(e, code, "%s: metadata \"input\" must be {\"height\":H,\"width\":W,"
                       "\"channels\":%d[,\"filter\":F]} with H and W in 1..%d, got %.120s",
                       path, cfg->in_channels, LM_CKPT_MAX_SIDE, text);
    if (!lm_pixfilter_src_channels(&f, (int)c))
        return lm_fail(e, code, "%s: metadata \"input\": %ld channels cannot come from its high-pass "
                       "filter (it doubles the decoded channels)", path, c);
    return 0;
}

/* "created": "YYYY-MM-DDTHH:MM:SSZ". */
static int check_created(const char *path, int code, const char *text, lm_err *e) {
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    int ok = strlen(text) == sizeof pat - 1;
    for (size_t i = 0; ok && pat[i]; i++)
        ok = pat[i] == 'd' ? text[i] >= '0' && text[i] <= '9' : text[i] == pat[i];
    if (!ok)
        return lm_fail(e, code, "%s: metadata \"created\" must be a UTC time like "
                       "\"2026-01-31T12:00:00Z\", got '%.40s'", path, text);
    return 0;
}

/* Every value check shared by save (code LUMEN_EINVAL) and open
 * (LUMEN_EDATA) except the model config itself; validated may be NULL. */
static int check_values(const char *path, int code, const nn_resnet_cfg *cfg,
                        const lm_ckpt_meta *mt, const char *validated, lm_err *e) {
    int rc = 0;
    if (mt->labels && (rc = check_labels(path, code, cfg, mt->labels, e))) return rc;
    if (mt->thresholds && (rc = check_thresholds(path, code, cfg, mt->thresholds, e))) return rc;
    if (mt->stats && (rc = check_stats(path, code, cfg, mt->stats, e))) return rc;
    if (mt->input && (rc = check_input(path, code, cfg, mt->input, e))) return rc;
    if (mt->metrics && (rc = check_json(path, code, "metrics", mt->metrics, 0, NULL, e)))
        return rc;
    if (mt->epoch > LM_CKPT_MAX_EPOCH)
        return lm_fail(e, code, "%s: metadata \"epoch\" is %lld, more than %d", path,
                       (long long)mt->epoch, LM_CKPT_MAX_EPOCH);
    if (mt->created && (rc = check_created(path, code, mt->created, e))) return rc;
    if (validated && (rc = check_json(path, code, "validated", validated, 0, NULL, e)))
        return rc;
    return 0;
}

static int validate_meta(const char *path, const nn_model *m, const lm_ckpt_meta *mt,
                         lm_err *e) {
    const nn_resnet_cfg *cfg = &m->cfg;
    cJSON *j = NULL;
    long v;
    if (!mt || !mt->model)
        return lm_fail(e, LUMEN_EINVAL, "%s: checkpoint metadata \"model\" is required", path);
    int rc = check_json(path, LUMEN_EINVAL, "model", mt->model, 0, &j, e);
    if (rc) return rc;
    static const char *const ints[] = {"in_channels", "num_classes", "stem_width"};
    const int want[] = {cfg->in_channels, cfg->num_classes, cfg->stem_width};
    for (int i = 0; i < 3; i++)
        if (json_int_in(j, ints[i], -1000000000L, 1000000000L, &v) && v != want[i]) {
            cJSON_Delete(j);
            return lm_fail(e, LUMEN_EINVAL,
                           "%s: metadata \"model\" says %s %ld but the model has %d", path,
                           ints[i], v, want[i]);
        }
    cJSON_Delete(j);
    const char *validated = NULL;
    for (const char *const *x = mt->extra; x && *x; x += 2) {
        if (!x[1])
            return lm_fail(e, LUMEN_EINVAL, "%s: metadata \"%s\" has no value", path, x[0]);
        if (lm_ckpt_meta_reserved(x[0]))
            return lm_fail(e, LUMEN_EINVAL, "%s: extra metadata key \"%s\" is reserved", path,
                           x[0]);
        if (strcmp(x[0], "validated") == 0) validated = x[1];
    }
    return check_values(path, LUMEN_EINVAL, cfg, mt, validated, e);
}

/* ------------------------------------------------------ data checksum -- */

static void digest_update(void *st, const void *data, size_t n) {
    XXH3_128bits_update(st, data, n);
}

static void digest_hex(XXH128_hash_t h, char out[33]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[c.digest[i] >> 4];
        out[2 * i + 1] = hex[c.digest[i] & 15];
    }
    out[32] = '\0';
}

/* Sets LM_CKPT_DIGEST_KEY in w's metadata: the XXH3-128 of the data section
 * w is about to write (call after the last tensor is added). */
static int put_digest(lm_st_writer *w, const char *path, lm_err *e) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) return lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
    XXH3_128bits_reset(st);
    int rc = lm_st_writer_each_data(w, digest_update, st, e);
    if (rc == 0) {
        char hex[33];
        digest_hex(XXH3_128bits_digest(st), hex);
        rc = lm_st_writer_meta(w, LM_CKPT_DIGEST_KEY, hex, e);
    }
    XXH3_freeState(st);
    return rc;
}

int lm_ckpt_verify_data(const lm_st_file *f, lm_err *e) {
    const char *path = lm_st_path(f), *want = lm_st_meta_get(f, LM_CKPT_DIGEST_KEY);
    if (!want) return 0;
    int ok = strlen(want) == 32;
    for (size_t i = 0; ok && i < 32; i++) ok = isxdigit((unsigned char)want[i]) != 0;
    if (!ok)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: metadata \"" LM_CKPT_DIGEST_KEY "\" must be 32 hex digits, got "
                       "'%.40s'", path, want);
    size_t len;
    const void *data = lm_st_data_section(f, &len);
    char got[33];
    digest_hex(XXH3_128bits(data, len), got);
    if (strcasecmp(got, want) != 0)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: data section checksum mismatch: the file is damaged (metadata \""
                       LM_CKPT_DIGEST_KEY "\" is %s, the %zu data bytes hash to %s)",
                       path, want, len, got);
    return 0;
}

int lm_ckpt_save(const char *path, const nn_model *m, const float *params,
                 const float *buffers, const int64_t *counters, const lm_ckpt_meta *meta,
                 lm_err *e) {
    int rc = validate_meta(path, m, meta, e);
    if (rc) return rc;
    lm_st_writer *w;
    if ((rc = lm_st_writer_new(&w, e))) return rc;
    char epoch[32], created[32];
    if (!meta->created) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(epoch, sizeof epoch, "%lld", (long long)meta->epoch);
    const struct {
        const char *k, *v;
    } kv[] = {
        {"format", LM_CKPT_FORMAT},
        {"version", LM_CKPT_VERSION},
        {"model", meta->model},
        {"labels", meta->labels},
        {"stats", meta->stats},
        {"thresholds", meta->thresholds},
        {"metrics", meta->metrics},
        {"input", meta->input},
        {"epoch", meta->epoch >= 0 ? epoch : NULL},
        {"created", meta->created ? meta->created : created},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0] && rc == 0; i++)
        if (kv[i].v) rc = lm_st_writer_meta(w, kv[i].k, kv[i].v, e);
    for (const char *const *x = meta->extra; x && *x && rc == 0; x += 2)
        rc = lm_st_writer_meta(w, x[0], x[1], e);
    if (rc == 0) rc = lm_ckpt_add_model(w, m, params, buffers, counters, e);
    if (rc == 0) rc = put_digest(w, path, e);
    if (rc == 0) rc = lm_st_writer_write(w, path, e);
    lm_st_writer_free(w);
    return rc;
}

/* ------------------------------------------------------------ loading -- */

void lm_ckpt_report_free(lm_ckpt_report *r) {
    if (!r) return;
    list_free(r->missing, r->nmissing);
    list_free(r->unexpected, r->nunexpected);
    list_free(r->reset, r->nreset);
    list_free(r->notes, r->nnotes);
    memset(r, 0, sizeof *r);
}

char *lm_ckpt_report_text(const lm_ckpt_report *r) {
    struct {
        const char *what;
        char **l;
        size_t n;
    } parts[] = {{"missing (kept their init)", r->missing, r->nmissing},
                 {"unexpected (ignored)", r->unexpected, r->nunexpected},
                 {"head reset (kept its init)", r->reset, r->nreset},
                 {"converted", r->notes, r->nnotes}};
    size_t cap = 64;
    for (size_t p = 0; p < 4; p++)
        for (size_t i = 0; i < parts[p].n; i++) cap += strlen(parts[p].l[i]) + 2;
    cap += 4 * 64;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t k = (size_t)snprintf(s, cap, "loaded %zu tensors", r->nloaded);
    for (size_t p = 0; p < 4; p++) {
        if (!parts[p].n) continue;
        k += (size_t)snprintf(s + k, cap - k, "\n%s (%zu): ", parts[p].what, parts[p].n);
        for (size_t i = 0; i < parts[p].n; i++)
            k += (size_t)snprintf(s + k, cap - k, "%s%s", i ? ", " : "", parts[p].l[i]);
    }
    return s;
}

typedef enum { PLAN_SKIP = 0, PLAN_COPY, PLAN_GRAY } plan_kind;

int lm_ckpt_load(const lm_st_file *f, const nn_model *m, float *params, float *buffers,
                 int64_t *counters, const lm_ckpt_load_opts *opts, lm_ckpt_report *rep,
                 lm_err *e) {
    static const lm_ckpt_load_opts none = {0};
    if (!opts) opts = &none;
    const char *path = lm_st_path(f);
    lm_ckpt_report r = {0};
    int rc = 0;
    const lm_st_tensor **src = calloc((size_t)m->ntensors + 1, sizeof *src);
    unsigned char *plan = calloc((size_t)m->ntensors + 1, 1);
    size_t converted = 0;
    unsigned conv_from = 0; /* bit per source dtype */
    if (!src || !plan) {
        rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
        goto out;
    }

    /* pass 1: match and check every tensor, touching no array */
    for (int i = 0; i < m->ntensors && rc == 0; i++) {
        const nn_tensor *t = &m->tensors[i];
        const lm_st_tensor *ft = lm_st_find(f, t->name);
        char fs[160], ms[160];
        if (!ft) {
            if (list_push(&r.missing, &r.nmissing, t->name))
                rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
            continue;
        }
        fmt_dims(fs, sizeof fs, ft->ndim, ft->shape);
        fmt_dims(ms, sizeof ms, t->ndim, t->dims);
        if (opts->reset_head && is_head(t->name)) {
            char note[400];
            snprintf(note, sizeof note, "%s (file %s, model %s)", t->name, fs, ms);
            if (list_push(&r.reset, &r.nreset, note))
                rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
            continue;
        }
        if (t->kind == NN_T_COUNTER) {
            if (lm_st_dtype_is_float(ft->dtype) || ft->numel != 1 || ft->ndim > 1)
                rc = lm_fail(e, LUMEN_EDATA,
                             "%s: tensor '%s': expected an integer scalar (I64, shape []), "
                             "got %s %s",
                             path, t->name, lm_st_dtype_name(ft->dtype), fs);
            else
                plan[i] = PLAN_COPY;
            src[i] = ft;
            continue;
        }
        if (!lm_st_dtype_is_float(ft->dtype)) {
            rc = lm_fail(e, LUMEN_EDATA,
                         "%s: tensor '%s' is %s, expected a floating-point type "
                         "(F32, F64, F16, BF16)",
                         path, t->name, lm_st_dtype_name(ft->dtype));
            continue;
        }
        int same = ft->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = ft->shape[d] == t->dims[d];
        src[i] = ft;
        if (same) {
            plan[i] = PLAN_COPY;
        } else if (!opts->no_rgb_to_gray && strcmp(t->name, "conv1.weight") == 0 &&
                   t->ndim == 4 && ft->ndim == 4 && t->dims[1] == 1 && ft->shape[1] == 3 &&
                   ft->shape[0] == t->dims[0] && ft->shape[2] == t->dims[2] &&
                   ft->shape[3] == t->dims[3]) {
            plan[i] = PLAN_GRAY;
            char note[400];
            snprintf(note, sizeof note,
                     "%s: summed 3 input channels into 1 (RGB -> gray; file %s)", t->name, fs);
            if (list_push(&r.notes, &r.nnotes, note))
                rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
        } else {
            const char *hint = "";
            if (is_head(t->name))
                hint = " (set reset_head to train a fresh classifier head)";
            else if (strcmp(t->name, "conv1.weight") == 0 && ft->ndim == 4 && t->ndim == 4 &&
                     ft->shape[1] != t->dims[1])
                hint = " (the file was trained on images with another channel count)";
            rc = lm_fail(e, LUMEN_EDATA,
                         "%s: tensor '%s': shape %s in the file, %s in the model%s", path,
                         t->name, fs, ms, hint);
        }
        if (ft->dtype != LM_ST_F32 && plan[i]) {
            converted++;
            conv_from |= 1u << ft->dtype;
        }
    }
    for (size_t i = 0; i < lm_st_count(f) && rc == 0; i++) {
        const lm_st_tensor *ft = lm_st_at(f, i);
        if (!model_find(m, ft->name) && list_push(&r.unexpected, &r.nunexpected, ft->name))
            rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
    }
    if (rc) goto out;
    if (opts->strict && (r.nmissing || r.nunexpected)) {
        char a[600], b[600];
        fmt_list(a, sizeof a, r.missing, r.nmissing, 6);
        fmt_list(b, sizeof b, r.unexpected, r.nunexpected, 6);
        rc = lm_fail(e, LUMEN_EDATA,
                     "%s: does not match the model: %zu tensors missing from the file%s%s%s, "
                     "%zu unexpected%s%s%s",
                     path, r.nmissing, r.nmissing ? " (" : "", a, r.nmissing ? ")" : "",
                     r.nunexpected, r.nunexpected ? " (" : "", b, r.nunexpected ? ")" : "");
        goto out;
    }
    if (converted) {
        char note[200], from[64] = "";
        for (int d = 0; d < LM_ST_NDTYPES; d++)
            if (conv_from & (1u << d))
                snprintf(from + strlen(from), sizeof from - strlen(from), "%s%s",
                         from[0] ? "/" : "", lm_st_dtype_name((lm_st_dtype)d));
        snprintf(note, sizeof note, "%zu tensors converted from %s to F32", converted, from);
        if (list_push(&r.notes, &r.nnotes, note)) {
            rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
            goto out;
        }
    }

    /* pass 2: copy (cannot fail on data: types and sizes were checked) */
    for (int i = 0; i < m->ntensors && rc == 0; i++) {
        const nn_tensor *t = &m->tensors[i];
        const lm_st_tensor *ft = src[i];
        if (plan[i] == PLAN_SKIP) continue;
        if (t->kind == NN_T_COUNTER) {
            rc = lm_st_to_i64(f, ft, counters + t->offset, 1, e);
        } else {
            float *dst = (t->kind == NN_T_PARAM ? params : buffers) + t->offset;
            if (plan[i] == PLAN_COPY) {
                rc = lm_st_to_f32(f, ft, dst, t->numel, e);
            } else { /* PLAN_GRAY: [O,3,k,k] -> [O,1,k,k], summed R + G + B */
                size_t kk = (size_t)(t->dims[2] * t->dims[3]), oc = (size_t)t->dims[0];
                float *tmp = malloc((size_t)ft->numel * sizeof *tmp);
                if (!tmp) {
                    rc = lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
                    break;
                }
                rc = lm_st_to_f32(f, ft, tmp, (size_t)ft->numel, e);
                for (size_t o = 0; o < oc && rc == 0; o++)
                    for (size_t j = 0; j < kk; j++)
                        dst[o * kk + j] = tmp[(o * 3 + 0) * kk + j] + tmp[(o * 3 + 1) * kk + j] +
                                          tmp[(o * 3 + 2) * kk + j];
                free(tmp);
            }
        }
        if (rc == 0) r.nloaded++;
    }
out:
    free(src);
    free(plan);
    if (rc || !rep) lm_ckpt_report_free(&r);
    if (rep) *rep = r;
    return rc;
}

int lm_ckpt_load_file(const char *path, const nn_model *m, float *params, float *buffers,
                      int64_t *counters, const lm_ckpt_load_opts *opts, lm_ckpt_report *rep,
                      lm_err *e) {
    if (rep) memset(rep, 0, sizeof *rep);
    lm_st_file *f;
    int rc = lm_st_open(path, &f, e);
    if (rc) return rc;
    rc = lm_ckpt_verify_data(f, e);
    if (rc == 0) rc = lm_ckpt_load(f, m, params, buffers, counters, opts, rep, e);
    lm_st_close(f);
    return rc;
}

static int check_format(const lm_st_file *f, const char *want, const char *what, lm_err *e) {
    const char *path = lm_st_path(f);
    const char *fmt = lm_st_meta_get(f, "format");
    if (!fmt || strcmp(fmt, want) != 0)
        return lm_fail(e, LUMEN_EABI, "%s: not a %s (metadata \"format\" is %s%s%s, expected \"%s\")",
                       path, what, fmt ? "\"" : "", fmt ? fmt : "absent", fmt ? "\"" : "", want);
    const char *ver = lm_st_meta_get(f, "version");
    if (!ver || strcmp(ver, LM_CKPT_VERSION) != 0)
        return lm_fail(e, LUMEN_EABI,
                       "%s: %s version \"%s\" is not supported (this lumen reads version "
                       LM_CKPT_VERSION ")",
                       path, what, ver ? ver : "(absent)");
    return 0;
}

/* The shape tensor `name` must have under the config, when the file has
 * it (a missing tensor is lm_ckpt_load's business). */
static int check_dims(const lm_st_file *f, const char *name, int ndim, const int64_t *want,
                      lm_err *e) {
    const lm_st_tensor *t = lm_st_find(f, name);
    if (!t) return 0;
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == want[d];
    if (same) return 0;
    char fs[160], ms[160];
    fmt_dims(fs, sizeof fs, t->ndim, t->shape);
    fmt_dims(ms, sizeof ms, ndim, want);
    return lm_fail(e, LUMEN_EDATA,
                   "%s: metadata \"model\" does not match tensor '%s': the config implies "
                   "shape %s, the file has %s",
                   lm_st_path(f), name, ms, fs);
}

/* Every metadata entry of an open lumen checkpoint against the ranges lumen
 * writes (see lm_ckpt_open). */
static int check_file_meta(const lm_st_file *f, lm_err *e) {
    const char *path = lm_st_path(f);
    lm_ckpt_meta mt;
    int rc = lm_ckpt_read_meta(f, &mt, e);
    if (rc) return rc;
    if (!mt.model)
        return lm_fail(e, LUMEN_EDATA, "%s: checkpoint metadata has no \"model\" entry", path);
    nn_resnet_cfg cfg;
    lm_err e2 = {0};
    if (nn_resnet_cfg_from_json(mt.model, &cfg, &e2))
        return lm_fail(e, LUMEN_EDATA, "%s: metadata \"model\": %s", path, e2.msg);
    if (cfg.dropout > LM_CKPT_MAX_DROPOUT)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: metadata \"model\": model.dropout is %g, more than %g (the train "
                       "stage's range)",
                       path, (double)cfg.dropout, LM_CKPT_MAX_DROPOUT);
    int k = nn_stem_kernel(cfg.stem);
    const int64_t conv1[4] = {cfg.stem_width, cfg.in_channels, k, k};
    const int64_t fcw[2] = {cfg.num_classes, cfg.widths[cfg.nstages - 1]};
    const int64_t fcb[1] = {cfg.num_classes};
    if ((rc = check_dims(f, "conv1.weight", 4, conv1, e)) ||
        (rc = check_dims(f, "fc.weight", 2, fcw, e)) || (rc = check_dims(f, "fc.bias", 1, fcb, e)))
        return rc;
    return check_values(path, LUMEN_EDATA, &cfg, &mt, lm_st_meta_get(f, "validated"), e);
}

int lm_ckpt_check(const lm_st_file *f, lm_err *e) {
    int rc = check_format(f, LM_CKPT_FORMAT, "lumen checkpoint", e);
    if (rc == 0) rc = check_file_meta(f, e);
    if (rc == 0) rc = lm_ckpt_verify_data(f, e);
    return rc;
}

int lm_ckpt_open(const char *path, lm_st_file **out, lm_err *e) {
    *out = NULL;
    lm_st_file *f;
    int rc = lm_st_open(path, &f, e);
    if (rc) return rc;
    rc = lm_ckpt_check(f, e);
    if (rc) {
        lm_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int lm_ckpt_read_meta(const lm_st_file *f, lm_ckpt_meta *mt, lm_err *e) {
    memset(mt, 0, sizeof *mt);
    mt->model = lm_st_meta_get(f, "model");
    mt->labels = lm_st_meta_get(f, "labels");
    mt->stats = lm_st_meta_get(f, "stats");
    mt->thresholds = lm_st_meta_get(f, "thresholds");
    mt->metrics = lm_st_meta_get(f, "metrics");
    mt->input = lm_st_meta_get(f, "input");
    mt->created = lm_st_meta_get(f, "created");
    mt->epoch = -1;
    const char *ep = lm_st_meta_get(f, "epoch");
    if (ep) {
        char *end;
        errno = 0;
        long long v = strtoll(ep, &end, 10);
        if (end == ep || *end || errno || v < 0 || v > LM_CKPT_MAX_EPOCH)
            return lm_fail(e, LUMEN_EDATA,
                           "%s: metadata \"epoch\" is not an integer in 0..%d: '%.40s'",
                           lm_st_path(f), LM_CKPT_MAX_EPOCH, ep);
        mt->epoch = v;
    }
    return 0;
}

/* ----------------------------------------------------- resumable state -- */

int lm_ckpt_state_write(lm_st_writer *w, const char *state_json, const char *path,
                        lm_err *e) {
    if (!state_json) return lm_fail(e, LUMEN_EINVAL, "%s: state JSON is missing", path);
    int rc = check_json(path, LUMEN_EINVAL, "state", state_json, 0, NULL, e);
    if (rc) return rc;
    if ((rc = lm_st_writer_meta(w, "format", LM_CKPT_STATE_FORMAT, e)) ||
        (rc = lm_st_writer_meta(w, "version", LM_CKPT_VERSION, e)) ||
        (rc = lm_st_writer_meta(w, "state", state_json, e)) || (rc = put_digest(w, path, e)))
        return rc;
    return lm_st_writer_write(w, path, e);
}

int lm_ckpt_state_open(const char *path, lm_st_file **out, const char **state_json,
                       lm_err *e) {
    *out = NULL;
    *state_json = NULL;
    lm_st_file *f;
    int rc = lm_st_open(path, &f, e);
    if (rc) return rc;
    rc = check_format(f, LM_CKPT_STATE_FORMAT, "lumen training state", e);
    const char *s = lm_st_meta_get(f, "state");
    if (rc == 0) {
        cJSON *j = s ? cJSON_Parse(s) : NULL;
        if (!cJSON_IsObject(j))
            rc = lm_fail(e, LUMEN_EDATA, "%s: metadata \"state\" is %s", path,
                         s ? "not a JSON object" : "absent");
        cJSON_Delete(j);
    }
    if (rc == 0) rc = lm_ckpt_verify_data(f, e);
    if (rc) {
        lm_st_close(f);
        return rc;
    }
    *out = f;
    *state_json = s;
    return 0;
}

static int like_name(char *buf, size_t cap, const char *prefix, const char *name,
                     const char *suffix) {
    int n = snprintf(buf, cap, "%s%s%s", prefix ? prefix : "", name, suffix ? suffix : "");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int lm_ckpt_add_like(lm_st_writer *w, const nn_model *m, int kind, const char *prefix,
                     const char *suffix, const float *arr, lm_err *e) {
    if (kind != NN_T_PARAM && kind != NN_T_BUFFER)
        return lm_fail(e, LUMEN_EINVAL, "state tensors: kind %d is not a float kind", kind);
    char name[256];
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if ((int)t->kind != kind) continue;
        if (like_name(name, sizeof name, prefix, t->name, suffix))
            return lm_fail(e, LUMEN_EINVAL, "state tensor name too long for '%s'", t->name);
        int rc = lm_st_writer_add(w, name, LM_ST_F32, t->ndim, t->dims, arr + t->offset, e);
        if (rc) return rc;
    }
    return 0;
}

int lm_ckpt_read_like(const lm_st_file *f, const nn_model *m, int kind, const char *prefix,
                      const char *suffix, float *arr, lm_err *e) {
    if (kind != NN_T_PARAM && kind != NN_T_BUFFER)
        return lm_fail(e, LUMEN_EINVAL, "state tensors: kind %d is not a float kind", kind);
    char name[256];
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if ((int)t->kind != kind) continue;
        if (like_name(name, sizeof name, prefix, t->name, suffix))
            return lm_fail(e, LUMEN_EINVAL, "state tensor name too long for '%s'", t->name);
        const lm_st_tensor *ft = lm_st_find(f, name);
        if (!ft)
            return lm_fail(e, LUMEN_ENOTFOUND, "%s: no tensor '%s'", lm_st_path(f), name);
        int same = ft->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = ft->shape[d] == t->dims[d];
        if (!same) {
            char fs[160], ms[160];
            fmt_dims(fs, sizeof fs, ft->ndim, ft->shape);
            fmt_dims(ms, sizeof ms, t->ndim, t->dims);
            return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s': shape %s in the file, %s in the model",
                           lm_st_path(f), name, fs, ms);
        }
        int rc = lm_st_to_f32(f, ft, arr + t->offset, t->numel, e);
        if (rc) return rc;
    }
    return 0;
}

int lm_ckpt_add_param_like(lm_st_writer *w, const nn_model *m, const char *prefix,
                           const char *suffix, const float *arr, lm_err *e) {
    return lm_ckpt_add_like(w, m, NN_T_PARAM, prefix, suffix, arr, e);
}

int lm_ckpt_read_param_like(const lm_st_file *f, const nn_model *m, const char *prefix,
                            const char *suffix, float *arr, lm_err *e) {
    return lm_ckpt_read_like(f, m, NN_T_PARAM, prefix, suffix, arr, e);
}
