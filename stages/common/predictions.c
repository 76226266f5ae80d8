/* predictions.c -- see predictions.h. */
#include "predictions.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "lumen-predictions"

static cJSON *floats(const float *v, int k) {
    cJSON *a = cJSON_CreateArray();
    for (int j = 0; a && j < k; j++) {
        /* %.9g reads back to the same float; NAN / inf become null */
        cJSON *x = isfinite(v[j]) ? cJSON_CreateNumber((double)v[j]) : cJSON_CreateNull();
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

cJSON *lm_preds_json(const float *p, const float *y, const uint32_t *index,
                     const char *const *names, int64_t n, int k, const char *const *labels) {
    cJSON *d = cJSON_CreateObject();
    if (!d || !cJSON_AddStringToObject(d, "format", FORMAT) ||
        !cJSON_AddNumberToObject(d, "version", 1))
        goto oom;
    cJSON *l = cJSON_AddArrayToObject(d, "labels");
    cJSON *s = cJSON_AddArrayToObject(d, "samples");
    if (!l || !s) goto oom;
    for (int j = 0; j < k; j++)
        if (!cJSON_AddItemToArray(l, cJSON_CreateString(labels[j]))) goto oom;
    for (int64_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(s, o)) {
            cJSON_Delete(o);
            goto oom;
        }
        cJSON *pa = floats(p + i * k, k), *ya = floats(y + i * k, k);
        int ok = pa && ya &&
                 cJSON_AddNumberToObject(o, "index", index ? (double)index[i] : (double)i) &&
                 cJSON_AddStringToObject(o, "name", names && names[i] ? names[i] : "");
        if (ok) ok = cJSON_AddItemToObject(o, "p", pa);
        else cJSON_Delete(pa);
        if (ok) ok = cJSON_AddItemToObject(o, "y", ya);
        else cJSON_Delete(ya);
        if (!ok) goto oom;
    }
    return d;
oom:
    cJSON_Delete(d);
    return NULL;
}

int lm_json_write(const char *path, cJSON *d, int pretty, lm_err *err) {
    char *text = d ? (pretty ? cJSON_Print(d) : cJSON_PrintUnformatted(d)) : NULL;
    cJSON_Delete(d);
    if (!text) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    char *t2 = realloc(text, len + 2);
    if (!t2) {
        free(text);
        return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
    }
    memcpy(t2 + len, "\n", 2);
    int rc = lm_write_file_atomic(path, t2, len + 1, err);
    free(t2);
    return rc;
}

int lm_preds_write(const char *path, const float *p, const float *y, const uint32_t *index,
                   const char *const *names, int64_t n, int k, const char *const *labels,
                   lm_err *err) {
    return lm_json_write(path, lm_preds_json(p, y, index, names, n, k, labels), 0, err);
}

void lm_preds_free(lm_preds *r) {
    if (!r) return;
    for (int j = 0; r->labels && j < r->k; j++) free(r->labels[j]);
    for (int64_t i = 0; r->names && i < r->n; i++) free(r->names[i]);
    free(r->labels);
    free(r->names);
    free(r->index);
    free(r->p);
    free(r->y);
    memset(r, 0, sizeof *r);
}

static int read_row(const cJSON *a, int k, float *out) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != k) return 0;
    int j = 0;
    for (const cJSON *v = a->child; v; v = v->next, j++)
        out[j] = cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
    return 1;
}

int lm_preds_read(const char *path, lm_preds *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int rc = lm_read_file(path, &text, &len, err);
    if (rc) return rc;
    cJSON *d = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "format");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(d, "labels");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "samples");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, FORMAT) || !cJSON_IsArray(l) ||
        !cJSON_IsArray(s) || cJSON_GetArraySize(l) < 1) {
        cJSON_Delete(d);
        return lm_fail(err, LUMEN_EDATA, "%s: not a lumen predictions file", path);
    }
    out->k = cJSON_GetArraySize(l);
    out->n = cJSON_GetArraySize(s);
    size_t n = (size_t)out->n, nk = n * (size_t)out->k;
    out->labels = calloc((size_t)out->k, sizeof *out->labels);
    out->names = calloc(n + 1, sizeof *out->names);
    out->index = calloc(n + 1, sizeof *out->index);
    out->p = calloc(nk + 1, sizeof *out->p);
    out->y = calloc(nk + 1, sizeof *out->y);
    if (!out->labels || !out->names || !out->index || !out->p || !out->y) goto oom;
    int j = 0;
    for (const cJSON *v = l->child; v; v = v->next, j++)
        if (!(out->labels[j] = lm_strdup(cJSON_IsString(v) ? v->valuestring : ""))) goto oom;
    int64_t i = 0;
    for (const cJSON *o = s->child; o; o = o->next, i++) {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(o, "index");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsNumber(ix) ||
            !read_row(cJSON_GetObjectItemCaseSensitive(o, "p"), out->k, out->p + i * out->k) ||
            !read_row(cJSON_GetObjectItemCaseSensitive(o, "y"), out->k, out->y + i * out->k)) {
            cJSON_Delete(d);
            lm_preds_free(out);
            return lm_fail(err, LUMEN_EDATA, "%s: sample %lld: expected index, p[%d] and y[%d]",
                           path, (long long)i, (int)cJSON_GetArraySize(l), (int)cJSON_GetArraySize(l));
        }
        out->index[i] = (uint32_t)ix->valuedouble;
        if (!(out->names[i] = lm_strdup(cJSON_IsString(nm) ? nm->valuestring : ""))) goto oom;
    }
    cJSON_Delete(d);
    return 0;
oom:
    cJSON_Delete(d);
    lm_preds_free(out);
    return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
}
