/* pixfilter.c -- see pixfilter.h. */
#include "pixfilter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lm_pixfilter_none(const lm_pixfilter *f) { return !f || f->highpass_sigma == 0.0; }

int lm_pixfilter_check(const lm_pixfilter *f, const char *what, lm_err *err) {
    if (lm_pixfilter_none(f)) return 0;
    double s = f->highpass_sigma, g = f->highpass_gain;
    if (!(s >= LM_HIGHPASS_SIGMA_MIN && s <= LM_HIGHPASS_SIGMA_MAX))
        return lm_fail(err, LUMEN_EINVAL, "%s: sigma must be 0 (off) or in [%g, %g] pixels, got %g",
                       what, LM_HIGHPASS_SIGMA_MIN, LM_HIGHPASS_SIGMA_MAX, s);
    if (!(g > 0.0 && g <= LM_HIGHPASS_GAIN_MAX))
        return lm_fail(err, LUMEN_EINVAL, "%s: gain must be in (0, %g], got %g", what,
                       LM_HIGHPASS_GAIN_MAX, g);
    return 0;
}

int lm_pixfilter_channels(const lm_pixfilter *f, int src_channels) {
    return lm_pixfilter_none(f) ? src_channels : 2 * src_channels;
}

int lm_pixfilter_src_channels(const lm_pixfilter *f, int channels) {
    if (lm_pixfilter_none(f)) return channels;
    return channels % 2 == 0 ? channels / 2 : 0;
}

/* Mirrors i into [0, n) without repeating the edge (-1 -> 1, n -> n - 2). */
static long mirror(long i, long n) {
    if (n == 1) return 0;
    long period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

int lm_pixfilter_apply(const lm_pixfilter *f, uint8_t *buf, int c, uint32_t h, uint32_t w,
                       lm_err *err) {
    if (lm_pixfilter_none(f)) return 0;
    int rc = lm_pixfilter_check(f, "highpass", err);
    if (rc) return rc;
    if (!buf || c < 1 || !h || !w) return lm_fail(err, LUMEN_EINVAL, "highpass: empty image");
    long r = (long)ceil(3.0 * f->highpass_sigma);
    size_t plane = (size_t)h * w;
    float *k = malloc((size_t)(2 * r + 1) * sizeof *k);
    float *tmp = malloc(plane * sizeof *tmp), *blur = malloc(plane * sizeof *blur);
    if (!k || !tmp || !blur) {
        free(k), free(tmp), free(blur);
        return lm_fail(err, LUMEN_ENOMEM, "highpass: out of memory");
    }
    double sum = 0.0, s2 = 2.0 * f->highpass_sigma * f->highpass_sigma;
    for (long i = -r; i <= r; i++) sum += exp(-(double)(i * i) / s2);
    for (long i = -r; i <= r; i++) k[i + r] = (float)(exp(-(double)(i * i) / s2) / sum);
    float gain = (float)f->highpass_gain;
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *x = buf + (size_t)ch * plane;
        uint8_t *out = buf + (size_t)(c + ch) * plane;
        for (uint32_t y = 0; y < h; y++) /* rows */
            for (uint32_t u = 0; u < w; u++) {
                float a = 0.0f;
                for (long i = -r; i <= r; i++)
                    a += k[i + r] * x[(size_t)y * w + (size_t)mirror((long)u + i, w)];
                tmp[(size_t)y * w + u] = a;
            }
        for (uint32_t y = 0; y < h; y++) /* columns */
            for (uint32_t u = 0; u < w; u++) {
                float a = 0.0f;
                for (long i = -r; i <= r; i++)
                    a += k[i + r] * tmp[(size_t)mirror((long)y + i, h) * w + u];
                blur[(size_t)y * w + u] = a;
            }
        for (size_t p = 0; p < plane; p++) {
            float v = floorf(128.0f + gain * ((float)x[p] - blur[p]) + 0.5f);
            out[p] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    }
    free(k), free(tmp), free(blur);
    return 0;
}

int lm_pixfilter_refilter(const lm_pixfilter *to, const uint8_t *in, int src_channels, uint32_t h,
                          uint32_t w, uint8_t *out, lm_err *err) {
    if (!in || !out || src_channels < 1) return lm_fail(err, LUMEN_EINVAL, "refilter: bad arguments");
    memcpy(out, in, (size_t)src_channels * h * w);
    return lm_pixfilter_apply(to, out, src_channels, h, w, err);
}

cJSON *lm_pixfilter_to_json(const lm_pixfilter *f) {
    if (lm_pixfilter_none(f)) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject(), *hp = o ? cJSON_AddObjectToObject(o, "highpass") : NULL;
    if (!hp || !cJSON_AddNumberToObject(hp, "sigma", f->highpass_sigma) ||
        !cJSON_AddNumberToObject(hp, "gain", f->highpass_gain)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int lm_pixfilter_from_json(const cJSON *j, const char *source, lm_pixfilter *f, lm_err *err) {
    memset(f, 0, sizeof *f);
    if (!j || cJSON_IsNull(j)) return 0;
    const cJSON *hp = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "highpass") : NULL;
    int ok = cJSON_IsObject(hp) && cJSON_GetArraySize(j) == 1;
    if (ok) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(hp, "sigma");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(hp, "gain");
        ok = cJSON_IsNumber(s) && cJSON_IsNumber(g) && cJSON_GetArraySize(hp) == 2;
        if (ok) f->highpass_sigma = s->valuedouble, f->highpass_gain = g->valuedouble;
        lm_err e = {0};
        ok = ok && f->highpass_sigma > 0.0 && !lm_pixfilter_check(f, "highpass", &e);
    }
    if (!ok) {
        char *text = cJSON_PrintUnformatted(j);
        int rc = lm_fail(err, LUMEN_EDATA,
                         "%s: \"filter\" must be {\"highpass\":{\"sigma\":S,\"gain\":G}} with S in "
                         "[%g, %g] and G in (0, %g], got %.120s",
                         source, LM_HIGHPASS_SIGMA_MIN, LM_HIGHPASS_SIGMA_MAX, LM_HIGHPASS_GAIN_MAX,
                         text ? text : "?");
        free(text);
        memset(f, 0, sizeof *f);
        return rc;
    }
    return 0;
}

int lm_pixfilter_from_schema(const cJSON *schema, int channels, const char *dir, lm_pixfilter *f,
                             lm_err *err) {
    int rc = lm_pixfilter_from_json(cJSON_GetObjectItemCaseSensitive(schema, "filter"), dir, f, err);
    if (rc == 0 && channels >= 0 && !lm_pixfilter_src_channels(f, channels))
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: %d channels cannot come from its high-pass filter", dir,
                     channels);
    return rc;
}

int lm_pixfilter_equal(const lm_pixfilter *a, const lm_pixfilter *b) {
    if (lm_pixfilter_none(a) || lm_pixfilter_none(b))
        return lm_pixfilter_none(a) && lm_pixfilter_none(b);
    return a->highpass_sigma == b->highpass_sigma && a->highpass_gain == b->highpass_gain;
}

void lm_pixfilter_describe(const lm_pixfilter *f, char *buf, size_t n) {
    if (lm_pixfilter_none(f)) snprintf(buf, n, "none");
    else snprintf(buf, n, "highpass(sigma %g, gain %g)", f->highpass_sigma, f->highpass_gain);
}
