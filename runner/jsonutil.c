/* jsonutil.c -- see jsonutil.h. */
#include "jsonutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_item(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

cJSON *rn_json_sorted(const cJSON *v) {
    if (!v) return NULL;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return cJSON_Duplicate(v, 0);
    cJSON *out = cJSON_IsObject(v) ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!out) return NULL;
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next) n++;
    const cJSON **items = calloc(n ? n : 1, sizeof *items);
    if (!items) {
        cJSON_Delete(out);
        return NULL;
    }
    n = 0;
    for (const cJSON *c = v->child; c; c = c->next) items[n++] = c;
    if (cJSON_IsObject(v)) qsort(items, n, sizeof *items, cmp_item);
    for (size_t i = 0; i < n; i++) {
        cJSON *c = rn_json_sorted(items[i]);
        int ok = c && (cJSON_IsObject(v) ? cJSON_AddItemToObject(out, items[i]->string, c)
                                         : cJSON_AddItemToArray(out, c));
        if (!ok) {
            cJSON_Delete(c);
            cJSON_Delete(out);
            free(items);
            return NULL;
        }
    }
    free(items);
    return out;
}

char *rn_json_canonical(const cJSON *v) {
    cJSON *s = rn_json_sorted(v);
    if (!s) return NULL;
    char *text = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return text;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

char *rn_json_utf8_fix(char *text) {
    if (!text) return NULL;
    const unsigned char *s = (const unsigned char *)text;
    size_t bad = 0, len = 0;
    for (size_t k; s[len]; len += k ? k : 1)
        if (!(k = utf8_seq(s + len))) bad++;
    if (!bad) return text;
    char *out = malloc(len + 4 * bad + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0, k; i < len; i += k ? k : 1) {
        if ((k = utf8_seq(s + i))) {
            memcpy(out + o, s + i, k);
            o += k;
        } else {
            out[o++] = '\\';
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[s[i] >> 4];
            out[o++] = hex[s[i] & 15];
        }
    }
    out[o] = '\0';
    free(text);
    return out;
}

char *rn_json_print(const cJSON *v, int pretty) {
    return rn_json_utf8_fix(pretty ? cJSON_Print(v) : cJSON_PrintUnformatted(v));
}

int rn_json_write_atomic(const char *path, const cJSON *v, lm_err *e) {
    char *text = rn_json_print(v, 1);
    if (!text) return lm_fail(e, LUMEN_ENOMEM, "out of memory writing %s", path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory writing %s", path);
    }
    buf[n] = '\n';
    buf[n + 1] = '\0';
    int rc = lm_write_file_atomic(path, buf, n + 1, e);
    free(buf);
    return rc;
}

int rn_json_read_file(const char *path, cJSON **out, lm_err *e) {
    *out = NULL;
    char *text;
    size_t len;
    int rc = lm_read_file(path, &text, &len, e);
    if (rc) return rc;
    *out = cJSON_ParseWithLength(text, len);
    free(text);
    if (!*out) return lm_fail(e, LUMEN_EDATA, "%s: not valid JSON", path);
    return 0;
}

const char *rn_num_str(double d, char *buf, size_t len) {
    if (isfinite(d) && d == floor(d) && fabs(d) < 1e15) {
        snprintf(buf, len, "%.0f", d);
        return buf;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return buf;
}

const char *rn_json_describe(const cJSON *v, char *buf, size_t len) {
    char num[64];
    if (!v || cJSON_IsNull(v)) snprintf(buf, len, "null");
    else if (cJSON_IsBool(v)) snprintf(buf, len, "boolean %s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v)) snprintf(buf, len, "number %s", rn_num_str(v->valuedouble, num, sizeof num));
    else if (cJSON_IsString(v)) snprintf(buf, len, "string \"%.60s\"", v->valuestring);
    else if (cJSON_IsArray(v)) snprintf(buf, len, "list");
    else if (cJSON_IsObject(v)) snprintf(buf, len, "table");
    else snprintf(buf, len, "value");
    return buf;
}

const char *rn_time_iso(double epoch_s, char *buf, size_t len) {
    time_t t = (time_t)floor(epoch_s);
    int ms = (int)((epoch_s - floor(epoch_s)) * 1000.0);
    if (ms > 999) ms = 999;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, ms);
    return buf;
}
