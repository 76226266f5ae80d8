/* normstats.c -- see normstats.h. */
#include "normstats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int read_list(const cJSON *root, const char *key, const char *source, int n, float *out, lm_err *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(a))
        return lm_fail(err, LUMEN_EDATA, "%s: \"%s\" must be a list of numbers", source, key);
    if (cJSON_GetArraySize(a) != n)
        return lm_fail(err, LUMEN_EDATA, "%s: \"%s\" has %d values but \"channels\" is %d", source, key,
                       cJSON_GetArraySize(a), n);
    int i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++) {
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
            return lm_fail(err, LUMEN_EDATA, "%s: \"%s\"[%d] is not a finite number", source, key, i);
        out[i] = (float)c->valuedouble;
    }
    return 0;
}

int lm_normstats_from_json(const char *text, const char *source, lm_normstats *out, lm_err *err) {
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return lm_fail(err, LUMEN_EDATA, "%s: not a JSON object", source);
    }
    lm_normstats s;
    memset(&s, 0, sizeof s);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "channels");
    int rc = 0;
    if (!cJSON_IsNumber(c) || c->valuedouble != (int)c->valuedouble || c->valuedouble < 1 ||
        c->valuedouble > LM_NORMSTATS_MAX)
        rc = lm_fail(err, LUMEN_EDATA, "%s: \"channels\" must be an integer in 1..%d", source,
                     LM_NORMSTATS_MAX);
    if (rc == 0) {
        s.channels = (int)c->valuedouble;
        rc = read_list(root, "mean", source, s.channels, s.mean, err);
    }
    if (rc == 0) rc = read_list(root, "std", source, s.channels, s.std, err);
    for (int i = 0; rc == 0 && i < s.channels; i++)
        if (!(s.std[i] > 0)) rc = lm_fail(err, LUMEN_EDATA, "%s: \"std\"[%d] must be > 0, got %g", source, i, s.std[i]);
    cJSON_Delete(root);
    if (rc == 0) *out = s;
    return rc;
}

int lm_normstats_load(const char *path, lm_normstats *out, lm_err *err) {
    char *file = lm_is_dir(path) ? lm_path_join(path, LM_NORMSTATS_FILE) : lm_strdup(path);
    if (!file) return lm_fail(err, LUMEN_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len;
    int rc = lm_read_file(file, &text, &len, err);
    if (rc == 0) rc = lm_normstats_from_json(text, file, out, err);
    free(text);
    free(file);
    return rc;
}

static cJSON *float_list(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber((double)v[i]); /* a float is exact as a double */
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

char *lm_normstats_to_json(const lm_normstats *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON *m = float_list(s->mean, s->channels), *d = float_list(s->std, s->channels);
    char *text = NULL;
    if (o && m && d && cJSON_AddNumberToObject(o, "channels", s->channels) &&
        cJSON_AddItemToObject(o, "mean", m) && (m = NULL, cJSON_AddItemToObject(o, "std", d)) &&
        (d = NULL, 1))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(m);
    cJSON_Delete(d);
    cJSON_Delete(o);
    return text;
}
