/* safetensors.c -- see safetensors.h. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* ---------------------------------------------------------------- dtypes -- */

static const struct {
    const char *name;
    size_t size;
} dtype_info[LM_ST_NDTYPES] = {
    [LM_ST_BOOL] = {"BOOL", 1}, [LM_ST_U8] = {"U8", 1},     [LM_ST_I8] = {"I8", 1},
    [LM_ST_I16] = {"I16", 2},   [LM_ST_U16] = {"U16", 2},   [LM_ST_F16] = {"F16", 2},
    [LM_ST_BF16] = {"BF16", 2}, [LM_ST_I32] = {"I32", 4},   [LM_ST_U32] = {"U32", 4},
    [LM_ST_F32] = {"F32", 4},   [LM_ST_F64] = {"F64", 8},   [LM_ST_I64] = {"I64", 8},
    [LM_ST_U64] = {"U64", 8},
};

const char *lm_st_dtype_name(lm_st_dtype dt) {
    return (unsigned)dt < LM_ST_NDTYPES ? dtype_info[dt].name : "?";
}

size_t lm_st_dtype_size(lm_st_dtype dt) {
    return (unsigned)dt < LM_ST_NDTYPES ? dtype_info[dt].size : 0;
}

int lm_st_dtype_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < LM_ST_NDTYPES; i++)
        if (strcmp(name, dtype_info[i].name) == 0) return i;
    return -1;
}

int lm_st_dtype_is_float(lm_st_dtype dt) {
    return dt == LM_ST_F16 || dt == LM_ST_BF16 || dt == LM_ST_F32 || dt == LM_ST_F64;
}

/* ------------------------------------------------------- scalar converts -- */

float lm_st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    float f;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24 is exact in float */
        f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
    else bits = sign | ((exp + 112u) << 23) | (mant << 13);
    memcpy(&f, &bits, 4);
    return f;
}

float lm_st_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round-to-nearest-even float -> half (after F. Giesen's public-domain
 * float_to_half_fast3_rtne). */
uint16_t lm_st_f32_to_f16(float value) {
    const uint32_t f32_inf = 255u << 23;
    const uint32_t f16_max = (127u + 16u) << 23; /* 65536: rounds to Inf */
    const uint32_t denorm_magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    uint32_t f;
    memcpy(&f, &value, 4);
    uint32_t sign = f & 0x80000000u;
    f ^= sign;
    uint16_t o;
    if (f >= f16_max) {
        o = f > f32_inf ? 0x7e00u : 0x7c00u; /* NaN stays NaN, else Inf */
    } else if (f < (113u << 23)) { /* result is subnormal or zero */
        float fv, magic;
        memcpy(&fv, &f, 4);
        memcpy(&magic, &denorm_magic, 4);
        fv += magic; /* the FPU rounds the low bits away (nearest even) */
        memcpy(&f, &fv, 4);
        o = (uint16_t)(f - denorm_magic);
    } else {
        uint32_t mant_odd = (f >> 13) & 1u;
        f += ((uint32_t)(15 - 127) << 23) + 0xfffu; /* rebias and round */
        f += mant_odd;
        o = (uint16_t)(f >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

uint16_t lm_st_f32_to_bf16(float value) {
    uint32_t f;
    memcpy(&f, &value, 4);
    if ((f & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((f >> 16) | 0x40u);
    f += 0x7fffu + ((f >> 16) & 1u);
    return (uint16_t)(f >> 16);
}

/* ---------------------------------------------------------------- reader -- */

struct lm_st_file {
    char *path;
    const unsigned char *base; /* whole file */
    size_t len;
    int mapped;
    cJSON *root; /* owns the name and metadata strings */
    lm_st_tensor *t; /* file order */
    size_t n;
    const lm_st_tensor **by_name;
    const char **meta_key, **meta_val; /* sorted by key */
    size_t nmeta;
    const unsigned char *data; /* the data section: after the header */
    size_t data_len;
};

static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A JSON number that is a non-negative integer representable exactly. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const lm_st_tensor *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
    const lm_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_str_ptr(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

static void fmt_shape(char *buf, size_t cap, const lm_st_tensor *t) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "",
                              (long long)t->shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Fills tensor *t from its header entry; 0 or LUMEN_EDATA. */
static int parse_tensor(const char *path, const cJSON *j, lm_st_tensor *t,
                        lm_err *e) {
    const char *name = j->string;
    t->name = name;
    if (!cJSON_IsObject(j))
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s': header entry is not an object",
                       path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(jd))
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s': missing or non-string \"dtype\"",
                       path, name);
    int dt = lm_st_dtype_parse(jd->valuestring);
    if (dt < 0)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: tensor '%s': unknown or unsupported dtype '%s'", path, name,
                       jd->valuestring);
    t->dtype = (lm_st_dtype)dt;
    if (!cJSON_IsArray(js))
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s': missing or non-array \"shape\"",
                       path, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > LM_ST_MAX_DIMS)
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s': %d dimensions (at most %d supported)",
                       path, name, nd, LM_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int overflow = 0;
    int d = 0;
    for (const cJSON *x = js->child; x; x = x->next, d++) {
        uint64_t v;
        if (!json_uint(x, &v))
            return lm_fail(e, LUMEN_EDATA,
                           "%s: tensor '%s': shape entry %d is not a non-negative integer",
                           path, name, d);
        t->shape[d] = (int64_t)v;
        if (v && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    size_t esz = dtype_info[dt].size;
    if (overflow || numel > SIZE_MAX / esz || numel > (uint64_t)INT64_MAX)
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s': shape is too large", path, name);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)numel * esz;
    uint64_t b, en;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &b) ||
        !json_uint(jo->child->next, &en))
        return lm_fail(e, LUMEN_EDATA,
                       "%s: tensor '%s': \"data_offsets\" must be [begin, end] "
                       "non-negative integers",
                       path, name);
    if (en < b)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                       path, name, (unsigned long long)b, (unsigned long long)en);
    if (en - b != (uint64_t)t->nbytes) {
        char sh[160];
        fmt_shape(sh, sizeof sh, t);
        return lm_fail(e, LUMEN_EDATA,
                       "%s: tensor '%s': shape %s of %s needs %zu bytes but "
                       "data_offsets [%llu, %llu] span %llu",
                       path, name, sh, dtype_info[dt].name, t->nbytes,
                       (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(en - b));
    }
    t->offset = (size_t)b;
    return 0;
}

static int parse_metadata(lm_st_file *f, const cJSON *j, lm_err *e) {
    if (!cJSON_IsObject(j))
        return lm_fail(e, LUMEN_EDATA, "%s: \"__metadata__\" is not an object", f->path);
    size_t n = (size_t)cJSON_GetArraySize(j);
    f->meta_key = calloc(n ? n : 1, sizeof *f->meta_key);
    f->meta_val = calloc(n ? n : 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val)
        return lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", f->path);
    /* sort pointers to the keys, then look values up again (n is small) */
    size_t i = 0;
    for (const cJSON *x = j->child; x; x = x->next) {
        if (!cJSON_IsString(x))
            return lm_fail(e, LUMEN_EDATA,
                           "%s: metadata key '%s' has a non-string value "
                           "(safetensors metadata values must be strings)",
                           f->path, x->string);
        f->meta_key[i++] = x->string;
    }
    qsort(f->meta_key, n, sizeof *f->meta_key, cmp_str_ptr);
    for (i = 0; i + 1 < n; i++)
        if (strcmp(f->meta_key[i], f->meta_key[i + 1]) == 0)
            return lm_fail(e, LUMEN_EDATA, "%s: duplicate metadata key '%s'", f->path,
                           f->meta_key[i]);
    for (i = 0; i < n; i++)
        f->meta_val[i] = cJSON_GetObjectItemCaseSensitive(j, f->meta_key[i])->valuestring;
    f->nmeta = n;
    return 0;
}

static int parse_file(lm_st_file *f, lm_err *e) {
    const char *path = f->path;
    if (f->len < 8)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: file is %zu bytes, too short for a safetensors header", path,
                       f->len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | f->base[i];
    if (hn > LM_ST_MAX_HEADER)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: header length %llu exceeds the %u-byte limit "
                       "(not a safetensors file?)",
                       path, (unsigned long long)hn, LM_ST_MAX_HEADER);
    if (hn > f->len - 8)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: header length %llu runs past the end of the file (%zu bytes; "
                       "truncated?)",
                       path, (unsigned long long)hn, f->len);
    const unsigned char *h = f->base + 8;
    size_t hlen = (size_t)hn;
    if (hlen < 2 || h[0] != '{')
        return lm_fail(e, LUMEN_EDATA, "%s: header does not start with '{'", path);
    if (!utf8_valid(h, hlen))
        return lm_fail(e, LUMEN_EDATA, "%s: header is not valid UTF-8", path);
    /* JSON forbids raw control characters (cJSON would accept them) */
    for (size_t i = 0; i < hlen; i++)
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return lm_fail(e, LUMEN_EDATA,
                           "%s: header is not valid JSON (control character 0x%02x at "
                           "header byte %zu)",
                           path, h[i], i);
    const char *end = NULL;
    f->root = cJSON_ParseWithLengthOpts((const char *)h, hlen, &end, 0);
    if (!f->root) {
        size_t at = end && end >= (const char *)h ? (size_t)(end - (const char *)h) : 0;
        return lm_fail(e, LUMEN_EDATA,
                       "%s: header is not valid JSON (error near header byte %zu of %zu)",
                       path, at, hlen);
    }
    for (const char *p = end; p < (const char *)h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return lm_fail(e, LUMEN_EDATA,
                           "%s: header has trailing data after the JSON object (byte %zu)",
                           path, (size_t)(p - (const char *)h));
    if (!cJSON_IsObject(f->root))
        return lm_fail(e, LUMEN_EDATA, "%s: header is not a JSON object", path);

    size_t n = 0;
    const cJSON *meta = NULL;
    for (const cJSON *x = f->root->child; x; x = x->next) {
        if (strcmp(x->string, "__metadata__") == 0) {
            if (meta)
                return lm_fail(e, LUMEN_EDATA, "%s: \"__metadata__\" appears twice", path);
            meta = x;
        } else {
            n++;
        }
    }
    if (meta) {
        int rc = parse_metadata(f, meta, e);
        if (rc) return rc;
    }
    f->t = calloc(n ? n : 1, sizeof *f->t);
    f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
    if (!f->t || !f->by_name) return lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
    size_t i = 0;
    for (const cJSON *x = f->root->child; x; x = x->next) {
        if (x == meta) continue;
        int rc = parse_tensor(path, x, &f->t[i++], e);
        if (rc) return rc;
    }
    f->n = n;

    /* tensors must tile the data section: sorted by offset, each begins where
     * the previous ended, the last ends at the end of the file */
    size_t data_len = f->len - 8 - hlen;
    const unsigned char *data = f->base + 8 + hlen;
    f->data = data;
    f->data_len = data_len;
    qsort(f->t, n, sizeof *f->t, cmp_tensor_offset);
    size_t pos = 0;
    for (i = 0; i < n; i++) {
        lm_st_tensor *t = &f->t[i];
        size_t b = t->offset, en = t->offset + t->nbytes;
        if (b < pos)
            return lm_fail(e, LUMEN_EDATA,
                           "%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' "
                           "[%zu, %zu]",
                           path, t->name, b, en, f->t[i - 1].name, f->t[i - 1].offset,
                           f->t[i - 1].offset + f->t[i - 1].nbytes);
        if (en > data_len)
            return lm_fail(e, LUMEN_EDATA,
                           "%s: tensor '%s': data_offsets [%zu, %zu] run past the end of "
                           "the data section (%zu bytes; truncated?)",
                           path, t->name, b, en, data_len);
        if (b > pos)
            return lm_fail(e, LUMEN_EDATA,
                           "%s: tensor '%s': data_offsets [%zu, %zu] leave a %zu-byte gap "
                           "after %s%s%s",
                           path, t->name, b, en, b - pos, i ? "tensor '" : "the header",
                           i ? f->t[i - 1].name : "", i ? "'" : "");
        t->data = data + b;
        pos = en;
    }
    if (pos != data_len)
        return lm_fail(e, LUMEN_EDATA,
                       "%s: %zu bytes after the last tensor are not described by the header",
                       path, data_len - pos);

    for (i = 0; i < n; i++) f->by_name[i] = &f->t[i];
    qsort(f->by_name, n, sizeof *f->by_name, cmp_tensor_name);
    for (i = 0; i + 1 < n; i++)
        if (strcmp(f->by_name[i]->name, f->by_name[i + 1]->name) == 0)
            return lm_fail(e, LUMEN_EDATA, "%s: duplicate tensor name '%s'", path,
                           f->by_name[i]->name);
    return 0;
}

void lm_st_close(lm_st_file *f) {
    if (!f) return;
    if (f->mapped && f->base) munmap((void *)f->base, f->len);
    cJSON_Delete(f->root);
    free(f->t);
    free(f->by_name);
    free(f->meta_key);
    free(f->meta_val);
    free(f->path);
    free(f);
}

int lm_st_open_buffer(const void *buf, size_t len, const char *label,
                      lm_st_file **out, lm_err *e) {
    *out = NULL;
    lm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = lm_strdup(label ? label : "<buffer>"))) {
        free(f);
        return lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", label ? label : "<buffer>");
    }
    f->base = buf;
    f->len = len;
    int rc = parse_file(f, e);
    if (rc) {
        lm_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int lm_st_open(const char *path, lm_st_file **out, lm_err *e) {
    *out = NULL;
    int fd;
    struct stat st;
    int rc = lm_open_read(path, &fd, &st, e);
    if (rc)
        return rc;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lm_fail(e, LUMEN_EIO, "%s is not a regular file", path);
    }
    lm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = lm_strdup(path))) {
        free(f);
        close(fd);
        return lm_fail(e, LUMEN_ENOMEM, "%s: out of memory", path);
    }
    f->len = (size_t)st.st_size;
    if (f->len > 0) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = lm_fail_errno(e, LUMEN_EIO, "cannot map %s", path);
            close(fd);
            lm_st_close(f);
            return rc;
        }
        f->base = m;
        f->mapped = 1;
    }
    close(fd);
    rc = parse_file(f, e);
    if (rc) {
        lm_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

const char *lm_st_path(const lm_st_file *f) { return f->path; }
const void *lm_st_data_section(const lm_st_file *f, size_t *len) {
    *len = f->data_len;
    return f->data;
}
size_t lm_st_count(const lm_st_file *f) { return f->n; }
const lm_st_tensor *lm_st_at(const lm_st_file *f, size_t i) {
    return i < f->n ? &f->t[i] : NULL;
}

const lm_st_tensor *lm_st_find(const lm_st_file *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

size_t lm_st_meta_count(const lm_st_file *f) { return f->nmeta; }
const char *lm_st_meta_key(const lm_st_file *f, size_t i) {
    return i < f->nmeta ? f->meta_key[i] : NULL;
}
const char *lm_st_meta_value(const lm_st_file *f, size_t i) {
    return i < f->nmeta ? f->meta_val[i] : NULL;
}

const char *lm_st_meta_get(const lm_st_file *f, const char *key) {
    size_t lo = 0, hi = f->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->meta_key[mid]);
        if (c == 0) return f->meta_val[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

int lm_st_is_aligned(const lm_st_tensor *t) {
    size_t a = lm_st_dtype_size(t->dtype);
    return a && ((uintptr_t)t->data % a) == 0;
}

static int check_count(const lm_st_file *f, const lm_st_tensor *t, size_t n, lm_err *e) {
    if ((uint64_t)n != (uint64_t)t->numel)
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s' has %lld elements, expected %zu",
                       f->path, t->name, (long long)t->numel, n);
    return 0;
}

int lm_st_to_f32(const lm_st_file *f, const lm_st_tensor *t, float *out, size_t n,
                 lm_err *e) {
    int rc = check_count(f, t, n, e);
    if (rc) return rc;
    const void *p = t->data;
    switch (t->dtype) {
    case LM_ST_F32:
        if (n) memcpy(out, p, n * sizeof(float));
        return 0;
    case LM_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, (const char *)p + i * 8, 8);
            out[i] = (float)v;
        }
        return 0;
    case LM_ST_F16:
    case LM_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, (const char *)p + i * 2, 2);
            out[i] = t->dtype == LM_ST_F16 ? lm_st_f16_to_f32(h) : lm_st_bf16_to_f32(h);
        }
        return 0;
    default:
        return lm_fail(e, LUMEN_EDATA,
                       "%s: tensor '%s' is %s, expected a floating-point type "
                       "(F32, F64, F16, BF16)",
                       f->path, t->name, lm_st_dtype_name(t->dtype));
    }
}

int lm_st_to_f64(const lm_st_file *f, const lm_st_tensor *t, double *out, size_t n,
                 lm_err *e) {
    int rc = check_count(f, t, n, e);
    if (rc) return rc;
    if (t->dtype == LM_ST_F64) {
        if (n) memcpy(out, t->data, n * sizeof(double));
        return 0;
    }
    if (!lm_st_dtype_is_float(t->dtype))
        return lm_fail(e, LUMEN_EDATA,
                       "%s: tensor '%s' is %s, expected a floating-point type "
                       "(F32, F64, F16, BF16)",
                       f->path, t->name, lm_st_dtype_name(t->dtype));
    const char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == LM_ST_F32) {
            float v;
            memcpy(&v, p + i * 4, 4);
            out[i] = v;
        } else {
            uint16_t h;
            memcpy(&h, p + i * 2, 2);
            out[i] = t->dtype == LM_ST_F16 ? lm_st_f16_to_f32(h) : lm_st_bf16_to_f32(h);
        }
    }
    return 0;
}

int lm_st_to_i64(const lm_st_file *f, const lm_st_tensor *t, int64_t *out, size_t n,
                 lm_err *e) {
    int rc = check_count(f, t, n, e);
    if (rc) return rc;
    /* the type first: a tensor with no elements is refused alike */
    if (lm_st_dtype_is_float(t->dtype) || lm_st_dtype_size(t->dtype) == 0)
        return lm_fail(e, LUMEN_EDATA, "%s: tensor '%s' is %s, expected an integer or BOOL type",
                       f->path, t->name, lm_st_dtype_name(t->dtype));
    const char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case LM_ST_BOOL:
        case LM_ST_U8: out[i] = ((const uint8_t *)p)[i]; break;
        case LM_ST_I8: out[i] = ((const int8_t *)p)[i]; break;
        case LM_ST_I16: { int16_t v; memcpy(&v, p + i * 2, 2); out[i] = v; break; }
        case LM_ST_U16: { uint16_t v; memcpy(&v, p + i * 2, 2); out[i] = v; break; }
        case LM_ST_I32: { int32_t v; memcpy(&v, p + i * 4, 4); out[i] = v; break; }
        case LM_ST_U32: { uint32_t v; memcpy(&v, p + i * 4, 4); out[i] = v; break; }
        case LM_ST_I64: memcpy(&out[i], p + i * 8, 8); break;
        case LM_ST_U64: {
            uint64_t v;
            memcpy(&v, p + i * 8, 8);
            if (v > (uint64_t)INT64_MAX)
                return lm_fail(e, LUMEN_EDATA,
                               "%s: tensor '%s': element %zu (%llu) does not fit in int64",
                               f->path, t->name, i, (unsigned long long)v);
            out[i] = (int64_t)v;
            break;
        }
        default:
            return lm_fail(e, LUMEN_EDATA,
                           "%s: tensor '%s' is %s, expected an integer or BOOL type",
                           f->path, t->name, lm_st_dtype_name(t->dtype));
        }
    }
    return 0;
}

int lm_st_read_f32(const lm_st_file *f, const char *name, float *out, size_t n,
                   lm_err *e) {
    const lm_st_tensor *t = lm_st_find(f, name);
    if (!t) return lm_fail(e, LUMEN_ENOTFOUND, "%s: no tensor '%s'", f->path, name);
    return lm_st_to_f32(f, t, out, n, e);
}

int lm_st_read_i64(const lm_st_file *f, const char *name, int64_t *out, size_t n,
                   lm_err *e) {
    const lm_st_tensor *t = lm_st_find(f, name);
    if (!t) return lm_fail(e, LUMEN_ENOTFOUND, "%s: no tensor '%s'", f->path, name);
    return lm_st_to_i64(f, t, out, n, e);
}

/* ---------------------------------------------------------------- writer -- */

typedef struct wt_entry {
    char *name;
    lm_st_dtype dtype;
    int ndim;
    int64_t shape[LM_ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
} wt_entry;

struct lm_st_writer {
    wt_entry *t;
    size_t n, cap;
    char **mkey, **mval;
    size_t nmeta, mcap;
};

int lm_st_writer_new(lm_st_writer **out, lm_err *e) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
}

void lm_st_writer_free(lm_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->t);
    free(w->mkey);
    free(w->mval);
    free(w);
}

int lm_st_writer_add(lm_st_writer *w, const char *name, lm_st_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, lm_err *e) {
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return lm_fail(e, LUMEN_EINVAL, "safetensors writer: invalid tensor name '%s'",
                       name ? name : "(null)");
    if ((unsigned)dtype >= LM_ST_NDTYPES)
        return lm_fail(e, LUMEN_EINVAL, "safetensors writer: tensor '%s': bad dtype %d",
                       name, (int)dtype);
    if (ndim < 0 || ndim > LM_ST_MAX_DIMS || (ndim > 0 && !shape))
        return lm_fail(e, LUMEN_EINVAL,
                       "safetensors writer: tensor '%s': %d dimensions (0..%d allowed)",
                       name, ndim, LM_ST_MAX_DIMS);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return lm_fail(e, LUMEN_EINVAL,
                           "safetensors writer: tensor '%s': negative dimension %lld", name,
                           (long long)shape[d]);
        uint64_t v = (uint64_t)shape[d];
        if (v && numel > ((uint64_t)1 << 53) / v)
            return lm_fail(e, LUMEN_EINVAL, "safetensors writer: tensor '%s' is too large",
                           name);
        numel *= v;
    }
    size_t esz = dtype_info[dtype].size;
    if (numel > ((uint64_t)1 << 53) / esz)
        return lm_fail(e, LUMEN_EINVAL, "safetensors writer: tensor '%s' is too large", name);
    if (numel && !data)
        return lm_fail(e, LUMEN_EINVAL, "safetensors writer: tensor '%s' has no data", name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return lm_fail(e, LUMEN_EINVAL, "safetensors writer: duplicate tensor '%s'",
                           name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        wt_entry *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        w->t = nt;
        w->cap = cap;
    }
    wt_entry *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = lm_strdup(name))) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = (size_t)numel * esz;
    t->data = data;
    w->n++;
    return 0;
}

int lm_st_writer_meta(lm_st_writer *w, const char *key, const char *value, lm_err *e) {
    if (!key || !value)
        return lm_fail(e, LUMEN_EINVAL, "safetensors writer: NULL metadata key or value");
    char *v = lm_strdup(value);
    if (!v) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->mkey[i], key) == 0) {
            free(w->mval[i]);
            w->mval[i] = v;
            return 0;
        }
    if (w->nmeta == w->mcap) {
        size_t cap = w->mcap ? 2 * w->mcap : 8;
        char **nk = realloc(w->mkey, cap * sizeof *nk);
        if (nk) w->mkey = nk;
        char **nv = nk ? realloc(w->mval, cap * sizeof *nv) : NULL;
        if (nv) w->mval = nv;
        if (!nk || !nv) {
            free(v);
            return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        }
        w->mcap = cap;
    }
    char *k = lm_strdup(key);
    if (!k) {
        free(v);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    w->mkey[w->nmeta] = k;
    w->mval[w->nmeta] = v;
    w->nmeta++;
    return 0;
}

/* Layout order of the reference implementation: descending dtype (its enum
 * is in increasing alignment order), then name. */
static int cmp_entry_layout(const void *a, const void *b) {
    const wt_entry *x = *(const wt_entry *const *)a, *y = *(const wt_entry *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Builds the padded header (8-byte length + JSON + spaces) and the layout
 * order.  *hdr and *order are malloc'ed. */
static int build_header(const lm_st_writer *w, unsigned char **hdr, size_t *hdr_len,
                        const wt_entry ***order, lm_err *e) {
    *hdr = NULL;
    *order = NULL;
    const wt_entry **ord = calloc(w->n ? w->n : 1, sizeof *ord);
    const char **keys = calloc(w->nmeta ? w->nmeta : 1, sizeof *keys);
    cJSON *root = cJSON_CreateObject();
    char *json = NULL;
    int rc = LUMEN_ENOMEM;
    if (!ord || !keys || !root) goto out;
    for (size_t i = 0; i < w->n; i++) ord[i] = &w->t[i];
    qsort(ord, w->n, sizeof *ord, cmp_entry_layout);

    if (w->nmeta) {
        for (size_t i = 0; i < w->nmeta; i++) keys[i] = w->mkey[i];
        qsort(keys, w->nmeta, sizeof *keys, cmp_str_ptr);
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto out;
        for (size_t i = 0; i < w->nmeta; i++) {
            size_t k = 0;
            while (strcmp(w->mkey[k], keys[i]) != 0) k++;
            if (!cJSON_AddStringToObject(m, keys[i], w->mval[k])) goto out;
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wt_entry *t = ord[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) goto out;
        if (!cJSON_AddItemToObject(root, t->name, o)) {
            cJSON_Delete(o);
            goto out;
        }
        double shp[LM_ST_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) shp[d] = (double)t->shape[d];
        double offs[2] = {(double)off, (double)(off + t->nbytes)};
        if (!cJSON_AddStringToObject(o, "dtype", dtype_info[t->dtype].name)) goto out;
        cJSON *js = cJSON_CreateDoubleArray(shp, t->ndim);
        if (!js) goto out;
        if (!cJSON_AddItemToObject(o, "shape", js)) {
            cJSON_Delete(js);
            goto out;
        }
        cJSON *jo = cJSON_CreateDoubleArray(offs, 2);
        if (!jo) goto out;
        if (!cJSON_AddItemToObject(o, "data_offsets", jo)) {
            cJSON_Delete(jo);
            goto out;
        }
        off += t->nbytes;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) goto out;
    size_t jl = strlen(json), pad = (8 - jl % 8) % 8, total = 8 + jl + pad;
    unsigned char *h = malloc(total);
    if (!h) goto out;
    uint64_t n = jl + pad;
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)(n >> (8 * i));
    memcpy(h + 8, json, jl);
    memset(h + 8 + jl, ' ', pad);
    *hdr = h;
    *hdr_len = total;
    *order = ord;
    ord = NULL;
    rc = 0;
out:
    free(ord);
    free(keys);
    free(json);
    cJSON_Delete(root);
    if (rc) return lm_fail(e, rc, "safetensors writer: out of memory building the header");
    return 0;
}

int lm_st_writer_each_data(const lm_st_writer *w,
                           void (*fn)(void *ctx, const void *data, size_t n), void *ctx,
                           lm_err *e) {
    const wt_entry **ord = calloc(w->n ? w->n : 1, sizeof *ord);
    if (!ord) return lm_fail(e, LUMEN_ENOMEM, "safetensors writer: out of memory");
    for (size_t i = 0; i < w->n; i++) ord[i] = &w->t[i];
    qsort(ord, w->n, sizeof *ord, cmp_entry_layout);
    for (size_t i = 0; i < w->n; i++)
        if (ord[i]->nbytes) fn(ctx, ord[i]->data, ord[i]->nbytes);
    free(ord);
    return 0;
}

int lm_st_writer_serialize(const lm_st_writer *w, void **buf, size_t *len, lm_err *e) {
    *buf = NULL;
    *len = 0;
    unsigned char *hdr;
    size_t hl;
    const wt_entry **ord;
    int rc = build_header(w, &hdr, &hl, &ord, e);
    if (rc) return rc;
    size_t total = hl;
    for (size_t i = 0; i < w->n; i++) total += ord[i]->nbytes;
    unsigned char *out = realloc(hdr, total ? total : 1);
    if (!out) {
        free(hdr);
        free(ord);
        return lm_fail(e, LUMEN_ENOMEM, "safetensors writer: out of memory");
    }
    size_t pos = hl;
    for (size_t i = 0; i < w->n; i++) {
        if (ord[i]->nbytes) memcpy(out + pos, ord[i]->data, ord[i]->nbytes);
        pos += ord[i]->nbytes;
    }
    free(ord);
    *buf = out;
    *len = total;
    return 0;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int lm_st_writer_write(const lm_st_writer *w, const char *path, lm_err *e) {
    unsigned char *hdr;
    size_t hl;
    const wt_entry **ord;
    int rc = build_header(w, &hdr, &hl, &ord, e);
    if (rc) return rc;
    char *tmp = lm_sprintf("%s.tmp.XXXXXX", path);
    char *dir = lm_strdup(path);
    if (!tmp || !dir) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory writing %s", path);
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");

    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot create a temp file for %s", path);
        goto out;
    }
    if (fchmod(fd, 0644) != 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot set permissions of %s", tmp);
    } else if (write_all(fd, hdr, hl) != 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot write %s", tmp);
    } else {
        for (size_t i = 0; i < w->n && rc == 0; i++)
            if (ord[i]->nbytes && write_all(fd, ord[i]->data, ord[i]->nbytes) != 0)
                rc = lm_fail_errno(e, LUMEN_EIO, "cannot write %s (tensor '%s')", tmp,
                                   ord[i]->name);
    }
    if (rc == 0 && fsync(fd) != 0) rc = lm_fail_errno(e, LUMEN_EIO, "cannot sync %s", tmp);
    if (close(fd) != 0 && rc == 0) rc = lm_fail_errno(e, LUMEN_EIO, "cannot close %s", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot rename %s to %s", tmp, path);
    if (rc != 0) unlink(tmp);
    else rc = lm_fsync_dir(dir, e);
out:
    free(tmp);
    free(dir);
    free(hdr);
    free(ord);
    return rc;
}
