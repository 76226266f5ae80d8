/* dataset.c -- see dataset.h. */
#include "dataset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#define DEFAULT_MAP ((size_t)64 << 20)
#define DEFAULT_BATCH ((size_t)32 << 20)

/* ------------------------------------------------------------- encoding -- */

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_f32(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}
static float get_f32(const uint8_t *p) {
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}
static void key_be32(uint8_t k[4], uint32_t i) {
    k[0] = (uint8_t)(i >> 24), k[1] = (uint8_t)(i >> 16), k[2] = (uint8_t)(i >> 8),
    k[3] = (uint8_t)i;
}

static void rm_env_files(const char *dir) {
    char *p = lm_path_join(dir, "data.mdb");
    if (p) unlink(p);
    free(p);
    p = lm_path_join(dir, "lock.mdb");
    if (p) unlink(p);
    free(p);
}

/* ----------------------------------------------------------------- write -- */

struct lm_dataset_writer {
    char *dir;
    MDB_env *env;
    MDB_dbi meta, records;
    lm_dataset_spec spec;
    char **labels;
    size_t map_size;
    int grown;
    size_t written;   /* records committed or buffered */
    size_t committed; /* records committed */
    /* the pending batch: packed records back to back */
    uint8_t *buf;
    size_t len, cap;
    size_t *ends; /* end offset of each buffered record */
    size_t nbuf, nbufcap;
    /* label counts (value >= 0.5) per split */
    size_t nsplit[3];
    size_t *pos[2];
};

static size_t record_size(const lm_dataset_spec *s, size_t name_len, size_t meta_len) {
    return LM_RECORD_HEADER + 4 * s->nlabels + name_len + 1 + meta_len + 1 +
           (size_t)s->height * s->width * s->channels;
}

int lm_dataset_write_fail(lm_err *err, const char *dir, const char *what, int rc,
                          long long avail) {
    if (rc == ENOSPC)
        return lm_fail(err, LUMEN_EIO, "no space left on device while writing %s (%s)", dir,
                       what);
    if (rc == EDQUOT)
        return lm_fail(err, LUMEN_EIO, "disk quota exceeded while writing %s (%s)", dir, what);
    if (rc == EIO && avail >= 0 && avail < LM_DATASET_LOW_SPACE)
        return lm_fail(err, LUMEN_EIO,
                       "no space left on device while writing %s (%s: %s with %lld bytes "
                       "left on its file system)",
                       dir, what, mdb_strerror(rc), avail);
    return lm_fail(err, rc == ENOMEM ? LUMEN_ENOMEM : LUMEN_EIO, "dataset %s: %s: %s", dir,
                   what, mdb_strerror(rc));
}

/* An LMDB or errno code from the writer as a message (lm_dataset_write_fail,
 * with the space left where it may tell a full disk). */
static int env_fail(lm_err *err, const char *dir, const char *what, int rc) {
    long long avail = -1;
    struct statvfs sv;
    if (rc == EIO && statvfs(dir, &sv) == 0)
        avail = (long long)sv.f_bavail * (long long)sv.f_frsize;
    return lm_dataset_write_fail(err, dir, what, rc, avail);
}

int lm_dataset_create(const char *dir, const lm_dataset_spec *spec,
                      lm_dataset_writer **out, lm_err *err) {
    *out = NULL;
    if (!spec || !spec->height || !spec->width || !spec->channels || !spec->nlabels ||
        !spec->labels)
        return lm_fail(err, LUMEN_EINVAL, "dataset %s: bad spec (zero size or no labels)", dir);
    int rc = lm_mkdirs(dir, err);
    if (rc) return rc;
    rm_env_files(dir);
    lm_dataset_writer *w = calloc(1, sizeof *w);
    if (!w) return lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", dir);
    w->spec = *spec;
    w->map_size = spec->map_size ? spec->map_size : DEFAULT_MAP;
    if (!w->spec.batch_bytes) w->spec.batch_bytes = DEFAULT_BATCH;
    w->dir = lm_strdup(dir);
    w->labels = calloc(spec->nlabels, sizeof *w->labels);
    w->pos[0] = calloc(spec->nlabels, sizeof(size_t));
    w->pos[1] = calloc(spec->nlabels, sizeof(size_t));
    if (!w->dir || !w->labels || !w->pos[0] || !w->pos[1]) goto oom;
    for (size_t i = 0; i < spec->nlabels; i++)
        if (!(w->labels[i] = lm_strdup(spec->labels[i]))) goto oom;
    w->spec.labels = (const char *const *)w->labels;

    if ((rc = mdb_env_create(&w->env)) != 0) {
        rc = env_fail(err, dir, "cannot create LMDB environment", rc);
        goto fail;
    }
    mdb_env_set_maxdbs(w->env, 2);
    mdb_env_set_mapsize(w->env, w->map_size);
    if ((rc = mdb_env_open(w->env, dir, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOLOCK, 0644))) {
        rc = env_fail(err, dir, "cannot open LMDB environment", rc);
        goto fail;
    }
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(w->env, NULL, 0, &txn))) {
        rc = env_fail(err, dir, "cannot begin transaction", rc);
        goto fail;
    }
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &w->meta)) ||
        (rc = mdb_dbi_open(txn, "records", MDB_CREATE, &w->records)) ||
        (rc = mdb_txn_commit(txn))) {
        if (rc) mdb_txn_abort(txn);
        rc = env_fail(err, dir, "cannot create databases", rc);
        goto fail;
    }
    *out = w;
    return 0;
oom:
    rc = lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", dir);
fail:
    lm_dataset_abort(w);
    return rc;
}

size_t lm_dataset_written(const lm_dataset_writer *w) { return w ? w->written : 0; }

size_t lm_dataset_map_size(const lm_dataset_writer *w, int *grown) {
    if (grown) *grown = w ? w->grown : 0;
    return w ? w->map_size : 0;
}

/* Commits the buffered batch, doubling the map on MDB_MAP_FULL. */
static int flush(lm_dataset_writer *w, lm_err *err) {
    if (!w->nbuf) return 0;
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(w->env, NULL, 0, &txn);
        if (rc) return env_fail(err, w->dir, "cannot begin transaction", rc);
        size_t start = 0;
        for (size_t i = 0; i < w->nbuf && !rc; i++) {
            uint8_t k[4];
            key_be32(k, (uint32_t)(w->committed + i));
            MDB_val key = {4, k}, val = {w->ends[i] - start, w->buf + start};
            rc = mdb_put(txn, w->records, &key, &val, MDB_APPEND);
            start = w->ends[i];
        }
        if (rc) mdb_txn_abort(txn);
        else rc = mdb_txn_commit(txn); /* frees txn either way */
        if (rc == MDB_MAP_FULL) {
            if (w->map_size > SIZE_MAX / 2)
                return env_fail(err, w->dir, "map cannot grow further", rc);
            w->map_size *= 2;
            w->grown++;
            rc = mdb_env_set_mapsize(w->env, w->map_size);
            if (rc) return env_fail(err, w->dir, "cannot grow the map", rc);
            continue;
        }
        if (rc) return env_fail(err, w->dir, "cannot write records", rc);
        break;
    }
    w->committed += w->nbuf;
    w->nbuf = 0;
    w->len = 0;
    return 0;
}

int lm_dataset_put(lm_dataset_writer *w, const lm_record *r, lm_err *err) {
    const lm_dataset_spec *s = &w->spec;
    if (r->h != s->height || r->w != s->width || r->c != s->channels ||
        r->nlabels != s->nlabels ||
        (r->split != LM_SPLIT_TRAIN && r->split != LM_SPLIT_VAL && r->split != LM_SPLIT_HELD) ||
        !r->name || !r->pixels || !r->labels)
        return lm_fail(err, LUMEN_EINVAL,
                       "dataset %s: record %zu (%s): %ux%ux%u, %u labels, split %d does not "
                       "match the dataset (%ux%ux%u, %zu labels)",
                       w->dir, w->written, r->name ? r->name : "?", r->c, r->h, r->w,
                       r->nlabels, r->split, s->channels, s->height, s->width, s->nlabels);
    if (w->written >= UINT32_MAX)
        return lm_fail(err, LUMEN_EINVAL, "dataset %s: too many records", w->dir);
    const char *meta = r->meta ? r->meta : "";
    size_t nl = strlen(r->name), ml = strlen(meta);
    if (nl > UINT32_MAX / 2 || ml > UINT32_MAX / 2)
        return lm_fail(err, LUMEN_EINVAL, "dataset %s: record %zu: name or meta too long",
                       w->dir, w->written);
    size_t size = record_size(s, nl, ml);
    if (w->len + size > w->cap) {
        size_t nc = w->cap ? w->cap : 1 << 20;
        while (nc < w->len + size) nc *= 2;
        uint8_t *b = realloc(w->buf, nc);
        if (!b) return lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", w->dir);
        w->buf = b;
        w->cap = nc;
    }
    if (w->nbuf == w->nbufcap) {
        size_t nc = w->nbufcap ? w->nbufcap * 2 : 64;
        size_t *e = realloc(w->ends, nc * sizeof *e);
        if (!e) return lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", w->dir);
        w->ends = e;
        w->nbufcap = nc;
    }
    uint8_t *p = w->buf + w->len;
    memcpy(p, LM_RECORD_MAGIC, 4);
    put_u16(p + 4, LM_RECORD_VERSION);
    p[6] = (uint8_t)r->split;
    p[7] = 0;
    put_u32(p + 8, r->h);
    put_u32(p + 12, r->w);
    put_u32(p + 16, r->c);
    put_u32(p + 20, r->nlabels);
    put_u32(p + 24, (uint32_t)nl);
    put_u32(p + 28, (uint32_t)ml);
    p += LM_RECORD_HEADER;
    for (uint32_t i = 0; i < r->nlabels; i++, p += 4) {
        put_f32(p, r->labels[i]);
        if (r->labels[i] >= 0.5f && r->split != LM_SPLIT_HELD) w->pos[r->split][i]++;
    }
    memcpy(p, r->name, nl + 1);
    p += nl + 1;
    memcpy(p, meta, ml + 1);
    p += ml + 1;
    memcpy(p, r->pixels, (size_t)r->h * r->w * r->c);
    w->len += size;
    w->ends[w->nbuf++] = w->len;
    w->nsplit[r->split]++;
    w->written++;
    if (w->len >= w->spec.batch_bytes) return flush(w, err);
    return 0;
}

static cJSON *counts_json(const size_t *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber((double)v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static cJSON *build_schema(const lm_dataset_writer *w, const cJSON *extra) {
    const lm_dataset_spec *s = &w->spec;
    cJSON *o = cJSON_CreateObject(), *lc = NULL;
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "format", LM_DATASET_FORMAT) &&
             cJSON_AddNumberToObject(o, "version", LM_DATASET_VERSION);
    cJSON *labels = ok ? cJSON_CreateStringArray((const char *const *)s->labels, (int)s->nlabels)
                       : NULL;
    ok = labels && cJSON_AddItemToObject(o, "labels", labels);
    if (!ok) cJSON_Delete(labels);
    ok = ok && cJSON_AddNumberToObject(o, "height", s->height) &&
         cJSON_AddNumberToObject(o, "width", s->width) &&
         cJSON_AddNumberToObject(o, "channels", s->channels) &&
         cJSON_AddStringToObject(o, "pixel", "u8") &&
         cJSON_AddStringToObject(o, "layout", "CHW") &&
         cJSON_AddStringToObject(o, "record", LM_RECORD_MAGIC) &&
         cJSON_AddNumberToObject(o, "count", (double)w->written) &&
         cJSON_AddNumberToObject(o, "train", (double)w->nsplit[0]) &&
         cJSON_AddNumberToObject(o, "val", (double)w->nsplit[1]) &&
         (!w->nsplit[2] || cJSON_AddNumberToObject(o, "held", (double)w->nsplit[2])) &&
         (lc = cJSON_AddObjectToObject(o, "label_counts")) != NULL;
    for (int sp = 0; ok && sp < 2; sp++) {
        cJSON *a = counts_json(w->pos[sp], s->nlabels);
        ok = a && cJSON_AddItemToObject(lc, sp ? "val" : "train", a);
        if (!ok) cJSON_Delete(a);
    }
    if (ok && extra && cJSON_IsObject(extra)) {
        for (const cJSON *it = extra->child; ok && it; it = it->next) {
            cJSON *dup = cJSON_Duplicate(it, 1);
            if (!dup) ok = 0;
            else if (cJSON_GetObjectItemCaseSensitive(o, it->string))
                ok = cJSON_ReplaceItemInObjectCaseSensitive(o, it->string, dup);
            else ok = cJSON_AddItemToObject(o, it->string, dup);
            if (!ok) cJSON_Delete(dup);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void writer_free(lm_dataset_writer *w) {
    if (!w) return;
    if (w->env) mdb_env_close(w->env);
    for (size_t i = 0; w->labels && i < w->spec.nlabels; i++) free(w->labels[i]);
    free(w->labels);
    free(w->pos[0]);
    free(w->pos[1]);
    free(w->buf);
    free(w->ends);
    free(w->dir);
    free(w);
}

void lm_dataset_abort(lm_dataset_writer *w) {
    if (!w) return;
    if (w->env) {
        mdb_env_close(w->env);
        w->env = NULL;
    }
    if (w->dir) rm_env_files(w->dir);
    writer_free(w);
}

int lm_dataset_finish(lm_dataset_writer *w, const cJSON *extra, lm_err *err) {
    int rc = 0;
    char *text = NULL;
    cJSON *schema = NULL;
    if (!w->written) {
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: no records", w->dir);
        goto fail;
    }
    if ((rc = flush(w, err))) goto fail;
    schema = build_schema(w, extra);
    text = schema ? cJSON_PrintUnformatted(schema) : NULL;
    if (!text) {
        rc = lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory (schema)", w->dir);
        goto fail;
    }
    for (;;) {
        MDB_txn *txn;
        if ((rc = mdb_txn_begin(w->env, NULL, 0, &txn))) break;
        MDB_val key = {6, "schema"}, val = {strlen(text), text};
        if ((rc = mdb_put(txn, w->meta, &key, &val, 0))) mdb_txn_abort(txn);
        else rc = mdb_txn_commit(txn);
        if (rc != MDB_MAP_FULL) break;
        w->map_size *= 2;
        w->grown++;
        if ((rc = mdb_env_set_mapsize(w->env, w->map_size))) break;
    }
    if (rc) {
        rc = env_fail(err, w->dir, "cannot write the schema", rc);
        goto fail;
    }
    if ((rc = mdb_env_sync(w->env, 1))) {
        rc = env_fail(err, w->dir, "cannot sync", rc);
        goto fail;
    }
    mdb_env_close(w->env);
    w->env = NULL;
    rc = lm_fsync_dir(w->dir, err);
    if (rc) goto fail;
    free(text);
    cJSON_Delete(schema);
    writer_free(w);
    return 0;
fail:
    free(text);
    cJSON_Delete(schema);
    lm_dataset_abort(w);
    return rc;
}

/* ------------------------------------------------------------------ read -- */

struct lm_dataset {
    char *dir;
    MDB_env *env;
    MDB_txn *txn;
    cJSON *schema;
    lm_dataset_info info;
    char **labels;
    lm_record *recs;
    float *labelv;     /* [count][nlabels] */
    uint32_t *idx[2];  /* per split */
};

static int schema_uint(const cJSON *o, const char *key, uint64_t max, uint64_t *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > (double)max ||
        it->valuedouble != (double)(uint64_t)it->valuedouble)
        return -1;
    *v = (uint64_t)it->valuedouble;
    return 0;
}

static int parse_schema(lm_dataset *ds, const char *text, size_t len, lm_err *err) {
    const char *dir = ds->dir;
    ds->schema = cJSON_ParseWithLength(text, len);
    if (!ds->schema || !cJSON_IsObject(ds->schema))
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema is not a JSON object", dir);
    const cJSON *s = ds->schema;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, LM_DATASET_FORMAT))
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema format is not '%s'", dir,
                       LM_DATASET_FORMAT);
    uint64_t ver, h, w, c, n, tr, va;
    if (schema_uint(s, "version", 1000000, &ver))
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema has no version", dir);
    if (ver != LM_DATASET_VERSION)
        return lm_fail(err, LUMEN_EABI, "dataset %s: format version %llu, this build reads %d",
                       dir, (unsigned long long)ver, LM_DATASET_VERSION);
    const cJSON *pix = cJSON_GetObjectItemCaseSensitive(s, "pixel");
    if (!cJSON_IsString(pix) || strcmp(pix->valuestring, "u8"))
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema pixel type is not \"u8\"", dir);
    if (schema_uint(s, "height", 1 << 20, &h) || !h || schema_uint(s, "width", 1 << 20, &w) ||
        !w || schema_uint(s, "channels", 64, &c) || !c)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema height/width/channels missing or bad",
                       dir);
    uint64_t held = 0; /* absent: none */
    if (schema_uint(s, "count", UINT32_MAX, &n) || schema_uint(s, "train", UINT32_MAX, &tr) ||
        schema_uint(s, "val", UINT32_MAX, &va) ||
        (cJSON_GetObjectItemCaseSensitive(s, "held") && schema_uint(s, "held", UINT32_MAX, &held)) ||
        tr + va + held != n)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema count/train/val missing or inconsistent",
                       dir);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(s, "labels");
    int nl = cJSON_IsArray(labels) ? cJSON_GetArraySize(labels) : 0;
    if (nl <= 0)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: schema has no labels", dir);
    ds->labels = calloc((size_t)nl, sizeof *ds->labels);
    if (!ds->labels) return lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", dir);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, labels) {
        if (!cJSON_IsString(it))
            return lm_fail(err, LUMEN_EDATA, "dataset %s: schema label %d is not a string", dir, i);
        ds->labels[i++] = it->valuestring;
    }
    ds->info = (lm_dataset_info){.height = (uint32_t)h, .width = (uint32_t)w,
                                 .channels = (uint32_t)c, .nlabels = (size_t)nl,
                                 .labels = (const char *const *)ds->labels,
                                 .count = (size_t)n, .ntrain = (size_t)tr, .nval = (size_t)va,
                                 .nheld = (size_t)held};
    return 0;
}

static int parse_record(lm_dataset *ds, size_t i, const MDB_val *v, lm_err *err) {
    const lm_dataset_info *in = &ds->info;
    const uint8_t *p = v->mv_data;
    size_t len = v->mv_size;
    const char *dir = ds->dir;
    if (len < LM_RECORD_HEADER || memcmp(p, LM_RECORD_MAGIC, 4))
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: bad magic", dir, i);
    if (get_u16(p + 4) != LM_RECORD_VERSION)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: unknown record version %u", dir,
                       i, get_u16(p + 4));
    lm_record *r = &ds->recs[i];
    r->split = p[6];
    r->h = get_u32(p + 8);
    r->w = get_u32(p + 12);
    r->c = get_u32(p + 16);
    r->nlabels = get_u32(p + 20);
    uint64_t nl = get_u32(p + 24), ml = get_u32(p + 28);
    if (r->split > LM_SPLIT_HELD)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: bad split %d", dir, i, r->split);
    if (r->h != in->height || r->w != in->width || r->c != in->channels ||
        r->nlabels != in->nlabels)
        return lm_fail(err, LUMEN_EDATA,
                       "dataset %s: record %zu: shape %ux%ux%u with %u labels differs from the "
                       "schema",
                       dir, i, r->c, r->h, r->w, r->nlabels);
    uint64_t want = LM_RECORD_HEADER + 4ull * r->nlabels + nl + 1 + ml + 1 +
                    (uint64_t)r->h * r->w * r->c;
    if (want != len)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: length %zu, header says %llu",
                       dir, i, len, (unsigned long long)want);
    const uint8_t *q = p + LM_RECORD_HEADER;
    float *lv = ds->labelv + i * in->nlabels;
    for (uint32_t k = 0; k < r->nlabels; k++, q += 4) lv[k] = get_f32(q);
    r->labels = lv;
    r->name = (const char *)q;
    if (q[nl] != 0)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: name not terminated", dir, i);
    q += nl + 1;
    r->meta = (const char *)q;
    if (q[ml] != 0)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %zu: meta not terminated", dir, i);
    q += ml + 1;
    r->pixels = q;
    return 0;
}

int lm_dataset_open(const char *dir, lm_dataset **out, lm_err *err) {
    *out = NULL;
    char *data = lm_path_join(dir, "data.mdb");
    if (!data) return lm_fail(err, LUMEN_ENOMEM, "out of memory");
    int there = lm_exists(data);
    free(data);
    if (!lm_is_dir(dir))
        return lm_fail(err, LUMEN_ENOTFOUND, "dataset %s: no such folder", dir);
    if (!there)
        return lm_fail(err, LUMEN_ENOTFOUND, "dataset %s: no data.mdb (not a lumen dataset)", dir);
    lm_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->dir = lm_strdup(dir))) {
        free(ds);
        return lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory", dir);
    }
    int rc;
    MDB_dbi meta, records;
    MDB_cursor *cur = NULL;
    if ((rc = mdb_env_create(&ds->env))) {
        ds->env = NULL;
        rc = env_fail(err, dir, "cannot create LMDB environment", rc);
        goto fail;
    }
    mdb_env_set_maxdbs(ds->env, 2);
    if ((rc = mdb_env_open(ds->env, dir, MDB_RDONLY | MDB_NOTLS | MDB_NOLOCK, 0644))) {
        rc = rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH
                 ? lm_fail(err, LUMEN_EDATA, "dataset %s: data.mdb is not an LMDB file: %s", dir,
                           mdb_strerror(rc))
                 : env_fail(err, dir, "cannot open", rc);
        goto fail;
    }
    if ((rc = mdb_txn_begin(ds->env, NULL, MDB_RDONLY, &ds->txn))) {
        ds->txn = NULL;
        rc = env_fail(err, dir, "cannot begin read transaction", rc);
        goto fail;
    }
    if ((rc = mdb_dbi_open(ds->txn, "meta", 0, &meta))) {
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: no meta database (not a lumen dataset): %s",
                     dir, mdb_strerror(rc));
        goto fail;
    }
    MDB_val key = {6, "schema"}, val;
    if ((rc = mdb_get(ds->txn, meta, &key, &val))) {
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: no schema (incomplete dataset)", dir);
        goto fail;
    }
    if ((rc = parse_schema(ds, val.mv_data, val.mv_size, err))) goto fail;
    if ((rc = mdb_dbi_open(ds->txn, "records", 0, &records))) {
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: no records database", dir);
        goto fail;
    }
    MDB_stat st;
    if ((rc = mdb_stat(ds->txn, records, &st))) {
        rc = env_fail(err, dir, "cannot stat records", rc);
        goto fail;
    }
    size_t n = ds->info.count;
    if (st.ms_entries != n) {
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: schema says %zu records, found %zu", dir, n,
                     (size_t)st.ms_entries);
        goto fail;
    }
    ds->recs = calloc(n ? n : 1, sizeof *ds->recs);
    ds->labelv = calloc(n * ds->info.nlabels + 1, sizeof *ds->labelv);
    ds->idx[0] = calloc(ds->info.ntrain + 1, sizeof(uint32_t));
    ds->idx[1] = calloc(ds->info.nval + 1, sizeof(uint32_t));
    if (!ds->recs || !ds->labelv || !ds->idx[0] || !ds->idx[1]) {
        rc = lm_fail(err, LUMEN_ENOMEM, "dataset %s: out of memory indexing %zu records", dir, n);
        goto fail;
    }
    if ((rc = mdb_cursor_open(ds->txn, records, &cur))) {
        cur = NULL;
        rc = env_fail(err, dir, "cannot open cursor", rc);
        goto fail;
    }
    size_t i = 0, cnt[3] = {0, 0, 0};
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        uint8_t want[4];
        key_be32(want, (uint32_t)i);
        if (i >= n || k.mv_size != 4 || memcmp(k.mv_data, want, 4)) {
            rc = lm_fail(err, LUMEN_EDATA, "dataset %s: record keys are not 0..%zu in order (at %zu)",
                         dir, n ? n - 1 : 0, i);
            goto fail;
        }
        if ((rc = parse_record(ds, i, &v, err))) goto fail;
        int sp = ds->recs[i].split;
        size_t cap = sp == LM_SPLIT_HELD ? ds->info.nheld : sp ? ds->info.nval : ds->info.ntrain;
        if (cnt[sp] >= cap) {
            rc = lm_fail(err, LUMEN_EDATA, "dataset %s: more %s records than the schema's %zu", dir,
                         sp == LM_SPLIT_HELD ? "held" : sp ? "val" : "train", cap);
            goto fail;
        }
        if (sp == LM_SPLIT_HELD) cnt[sp]++; /* in no split's list */
        else ds->idx[sp][cnt[sp]++] = (uint32_t)i;
    }
    if (rc != MDB_NOTFOUND) {
        rc = env_fail(err, dir, "cannot read records", rc);
        goto fail;
    }
    if (i != n || cnt[0] != ds->info.ntrain || cnt[1] != ds->info.nval || cnt[2] != ds->info.nheld) {
        rc = lm_fail(err, LUMEN_EDATA, "dataset %s: split counts differ from the schema", dir);
        goto fail;
    }
    mdb_cursor_close(cur);
    *out = ds;
    return 0;
fail:
    if (cur) mdb_cursor_close(cur);
    lm_dataset_close(ds);
    return rc;
}

const cJSON *lm_dataset_schema(const lm_dataset *ds) { return ds->schema; }
const lm_dataset_info *lm_dataset_get_info(const lm_dataset *ds) { return &ds->info; }
size_t lm_dataset_count(const lm_dataset *ds) { return ds->info.count; }
const char *lm_dataset_dir(const lm_dataset *ds) { return ds->dir; }

int lm_dataset_get(const lm_dataset *ds, size_t i, lm_record *rec) {
    if (i >= ds->info.count)
        return lm_fail(NULL, LUMEN_EINVAL, "dataset %s: record %zu out of range", ds->dir, i);
    *rec = ds->recs[i];
    return 0;
}

const uint32_t *lm_dataset_split(const lm_dataset *ds, int split, size_t *n) {
    if (split != LM_SPLIT_TRAIN && split != LM_SPLIT_VAL) {
        *n = 0;
        return NULL;
    }
    *n = split ? ds->info.nval : ds->info.ntrain;
    return ds->idx[split];
}

void lm_dataset_close(lm_dataset *ds) {
    if (!ds) return;
    if (ds->txn) mdb_txn_abort(ds->txn);
    if (ds->env) mdb_env_close(ds->env);
    cJSON_Delete(ds->schema);
    free(ds->labels);
    free(ds->recs);
    free(ds->labelv);
    free(ds->idx[0]);
    free(ds->idx[1]);
    free(ds->dir);
    free(ds);
}
