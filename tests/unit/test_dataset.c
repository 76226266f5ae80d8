/* Unit tests for stages/common/dataset.c: LMDB round trip, map growth from a
 * tiny map, refusal of incomplete/corrupt datasets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "dataset.h"
#include "ingest_fx.h"

static const char *const labels2[] = {"crack", "inactive"};

/* Deterministic record content for index i. */
typedef struct gen {
    uint32_t h, w, c;
    float lab[2];
    char name[64], meta[64];
    uint8_t *pix;
} gen;

static void make(gen *g, size_t i, uint32_t h, uint32_t w, uint32_t c) {
    g->h = h, g->w = w, g->c = c;
    g->lab[0] = (float)(i % 2);
    g->lab[1] = (float)(i % 3 == 0);
    snprintf(g->name, sizeof g->name, "images/cell%04zu.png", i);
    if (i % 4 == 0) g->meta[0] = 0;
    else snprintf(g->meta, sizeof g->meta, "type=%s;prob=%zu", i % 2 ? "mono" : "poly", i);
    size_t n = (size_t)h * w * c;
    g->pix = malloc(n);
    for (size_t k = 0; k < n; k++) g->pix[k] = (uint8_t)(k * 31 + i * 7);
}

/* val every 5th, held (in neither split) every 7th of the others, else train */
static int split_of(size_t i) { return i % 5 == 0 ? LM_SPLIT_VAL : i % 7 == 3 ? LM_SPLIT_HELD : LM_SPLIT_TRAIN; }

static void write_n(const char *dir, size_t n, uint32_t h, uint32_t w, uint32_t c, size_t map,
                    size_t batch) {
    lm_dataset_spec spec = {.height = h, .width = w, .channels = c, .nlabels = 2,
                            .labels = labels2, .map_size = map, .batch_bytes = batch};
    lm_dataset_writer *w_;
    lm_err e = {0};
    assert_int_equal(lm_dataset_create(dir, &spec, &w_, &e), 0);
    for (size_t i = 0; i < n; i++) {
        gen g;
        make(&g, i, h, w, c);
        lm_record r = {.h = h, .w = w, .c = c, .split = split_of(i), .nlabels = 2,
                       .labels = g.lab, .name = g.name, .meta = g.meta, .pixels = g.pix};
        int rc = lm_dataset_put(w_, &r, &e);
        free(g.pix);
        if (rc) fail_msg("put %zu: %s", i, e.msg);
    }
    assert_int_equal(lm_dataset_written(w_), n);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "source", "/x/labels.csv");
    cJSON_AddNumberToObject(extra, "skipped", 3);
    lm_dataset_finish(w_, extra, &e); /* frees w_ */
    cJSON_Delete(extra);
    assert_int_equal(e.code, 0);
}

static void check_all(const char *dir, size_t n, uint32_t h, uint32_t w, uint32_t c) {
    lm_dataset *ds;
    lm_err e = {0};
    int rc = lm_dataset_open(dir, &ds, &e);
    if (rc) fail_msg("open: %s", e.msg);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    assert_int_equal(lm_dataset_count(ds), n);
    assert_int_equal(in->height, h);
    assert_int_equal(in->width, w);
    assert_int_equal(in->channels, c);
    assert_int_equal(in->nlabels, 2);
    assert_string_equal(in->labels[0], "crack");
    assert_string_equal(in->labels[1], "inactive");
    size_t nval = 0, nheld = 0, pos_tr[2] = {0, 0}, pos_va[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        gen g;
        make(&g, i, h, w, c);
        lm_record r;
        assert_int_equal(lm_dataset_get(ds, i, &r), 0);
        assert_int_equal(r.h, h);
        assert_int_equal(r.w, w);
        assert_int_equal(r.c, c);
        assert_int_equal(r.split, split_of(i));
        assert_int_equal(r.nlabels, 2);
        assert_true(r.labels[0] == g.lab[0] && r.labels[1] == g.lab[1]);
        assert_string_equal(r.name, g.name);
        assert_string_equal(r.meta, g.meta);
        assert_memory_equal(r.pixels, g.pix, (size_t)h * w * c);
        nval += split_of(i) == LM_SPLIT_VAL;
        nheld += split_of(i) == LM_SPLIT_HELD;
        for (int k = 0; k < 2 && split_of(i) != LM_SPLIT_HELD; k++)
            (split_of(i) ? pos_va : pos_tr)[k] += g.lab[k] >= 0.5f; /* held records count in neither */
        free(g.pix);
    }
    lm_record r;
    assert_int_equal(lm_dataset_get(ds, n, &r), LUMEN_EINVAL);
    size_t nt, nv;
    const uint32_t *tr = lm_dataset_split(ds, LM_SPLIT_TRAIN, &nt);
    const uint32_t *va = lm_dataset_split(ds, LM_SPLIT_VAL, &nv);
    assert_int_equal(nv, nval);
    assert_int_equal(nt, n - nval - nheld);
    assert_int_equal(in->nheld, nheld);
    assert_true(n < 4 || nheld > 0);
    for (size_t i = 0; i < nv; i++)
        assert_true(split_of(va[i]) == LM_SPLIT_VAL && (i == 0 || va[i] > va[i - 1]));
    for (size_t i = 0; i < nt; i++)
        assert_true(split_of(tr[i]) == LM_SPLIT_TRAIN && (i == 0 || tr[i] > tr[i - 1]));
    assert_null(lm_dataset_split(ds, LM_SPLIT_HELD, &nt)); /* no list: no stage reads them */
    const cJSON *s = lm_dataset_schema(ds);
    assert_string_equal(cJSON_GetObjectItem(s, "format")->valuestring, "lumen-dataset");
    assert_int_equal(cJSON_GetObjectItem(s, "count")->valueint, (int)n);
    assert_int_equal(cJSON_GetObjectItem(s, "val")->valueint, (int)nval);
    if (nheld) assert_int_equal(cJSON_GetObjectItem(s, "held")->valueint, (int)nheld);
    else assert_null(cJSON_GetObjectItem(s, "held")); /* absent when none: older schemas read the same */
    assert_string_equal(cJSON_GetObjectItem(s, "source")->valuestring, "/x/labels.csv");
    assert_int_equal(cJSON_GetObjectItem(s, "skipped")->valueint, 3);
    const cJSON *lc = cJSON_GetObjectItem(s, "label_counts");
    for (int k = 0; k < 2; k++) {
        assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(lc, "train"), k)->valueint,
                         (int)pos_tr[k]);
        assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(lc, "val"), k)->valueint,
                         (int)pos_va[k]);
    }
    lm_dataset_close(ds);
}

static void test_round_trip(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ds");
    char *ds = lm_path_join(dir, "dataset");
    write_n(ds, 37, 4, 5, 3, 0, 0);
    check_all(ds, 37, 4, 5, 3);
    /* no lock file left in an immutable dataset */
    char *lock = lm_path_join(ds, "lock.mdb");
    assert_false(lm_exists(lock));
    free(lock);
    free(ds);
    fx_rmtree(dir);
}

static void test_map_grows_from_tiny_map(void **s) {
    (void)s;
    char *dir = fx_tmpdir("dsgrow");
    const size_t n = 300, small = 64 * 1024;
    lm_dataset_spec spec = {.height = 64, .width = 64, .channels = 1, .nlabels = 2,
                            .labels = labels2, .map_size = small, .batch_bytes = 40000};
    lm_dataset_writer *w;
    lm_err e = {0};
    assert_int_equal(lm_dataset_create(dir, &spec, &w, &e), 0);
    for (size_t i = 0; i < n; i++) {
        gen g;
        make(&g, i, 64, 64, 1);
        lm_record r = {.h = 64, .w = 64, .c = 1, .split = split_of(i), .nlabels = 2,
                       .labels = g.lab, .name = g.name, .meta = g.meta, .pixels = g.pix};
        int rc = lm_dataset_put(w, &r, &e);
        free(g.pix);
        if (rc) fail_msg("put %zu: %s", i, e.msg);
    }
    int grown = 0;
    size_t map = lm_dataset_map_size(w, &grown);
    assert_true(grown >= 4); /* 300 x 4 KiB needs > 1 MiB from 64 KiB */
    assert_true(map >= n * 64 * 64);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "source", "/x/labels.csv");
    cJSON_AddNumberToObject(extra, "skipped", 3);
    assert_int_equal(lm_dataset_finish(w, extra, &e), 0);
    cJSON_Delete(extra);
    check_all(dir, n, 64, 64, 1);

    /* one huge batch (default batch size) into a tiny map also grows */
    char *d2 = lm_path_join(dir, "one-batch");
    write_n(d2, 100, 32, 32, 3, small, 0);
    check_all(d2, 100, 32, 32, 3);
    free(d2);
    fx_rmtree(dir);
}

static void test_abort_and_bad_put(void **s) {
    (void)s;
    char *dir = fx_tmpdir("dsabort");
    lm_dataset_spec spec = {.height = 2, .width = 2, .channels = 1, .nlabels = 2, .labels = labels2};
    lm_dataset_writer *w;
    lm_err e = {0};
    assert_int_equal(lm_dataset_create(dir, &spec, &w, &e), 0);
    uint8_t px[12] = {0};
    float lab[2] = {0, 1};
    lm_record r = {.h = 2, .w = 2, .c = 3, .nlabels = 2, .labels = lab, .name = "a.png",
                   .pixels = px};
    assert_int_equal(lm_dataset_put(w, &r, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, dir));
    r.c = 1;
    r.split = 3; /* no such split */
    lm_err e1 = {0};
    assert_int_equal(lm_dataset_put(w, &r, &e1), LUMEN_EINVAL);
    assert_non_null(strstr(e1.msg, "split 3"));
    r.split = LM_SPLIT_TRAIN;
    lm_err e2 = {0};
    assert_int_equal(lm_dataset_put(w, &r, &e2), 0);
    lm_dataset_abort(w);
    char *data = lm_path_join(dir, "data.mdb");
    assert_false(lm_exists(data));
    free(data);
    lm_dataset *ds;
    lm_err e3 = {0};
    assert_int_equal(lm_dataset_open(dir, &ds, &e3), LUMEN_ENOTFOUND);
    assert_null(ds);
    assert_non_null(strstr(e3.msg, dir));
    fx_rmtree(dir);
}

/* Opens a finished dataset with raw LMDB and applies `edit`. */
typedef void (*edit_fn)(MDB_txn *txn, MDB_dbi meta, MDB_dbi recs);

static void raw_edit(const char *dir, edit_fn edit) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, recs;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 2);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOLOCK, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
    edit(txn, meta, recs);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static MDB_val get3(MDB_txn *txn, MDB_dbi recs, uint8_t *copy) {
    uint8_t k[4] = {0, 0, 0, 3};
    MDB_val key = {4, k}, v;
    assert_int_equal(mdb_get(txn, recs, &key, &v), 0);
    memcpy(copy, v.mv_data, v.mv_size);
    v.mv_data = copy;
    return v;
}
static void put3(MDB_txn *txn, MDB_dbi recs, MDB_val v) {
    uint8_t k[4] = {0, 0, 0, 3};
    MDB_val key = {4, k};
    assert_int_equal(mdb_put(txn, recs, &key, &v, 0), 0);
}
static void edit_magic(MDB_txn *txn, MDB_dbi meta, MDB_dbi recs) {
    (void)meta;
    uint8_t buf[4096];
    MDB_val v = get3(txn, recs, buf);
    buf[0] = 'X';
    put3(txn, recs, v);
}
static void edit_length(MDB_txn *txn, MDB_dbi meta, MDB_dbi recs) {
    (void)meta;
    uint8_t buf[4096];
    MDB_val v = get3(txn, recs, buf);
    v.mv_size -= 1;
    put3(txn, recs, v);
}
static void edit_no_schema(MDB_txn *txn, MDB_dbi meta, MDB_dbi recs) {
    (void)recs;
    MDB_val key = {6, "schema"};
    assert_int_equal(mdb_del(txn, meta, &key, NULL), 0);
}
static void edit_version(MDB_txn *txn, MDB_dbi meta, MDB_dbi recs) {
    (void)recs;
    MDB_val key = {6, "schema"}, v;
    assert_int_equal(mdb_get(txn, meta, &key, &v), 0);
    cJSON *j = cJSON_ParseWithLength(v.mv_data, v.mv_size);
    cJSON_ReplaceItemInObject(j, "version", cJSON_CreateNumber(2));
    char *t = cJSON_PrintUnformatted(j);
    MDB_val nv = {strlen(t), t};
    assert_int_equal(mdb_put(txn, meta, &key, &nv, 0), 0);
    free(t);
    cJSON_Delete(j);
}

static void expect_refused(edit_fn edit, int code, const char *what) {
    char *dir = fx_tmpdir("dsbad");
    write_n(dir, 10, 8, 8, 1, 0, 0);
    raw_edit(dir, edit);
    lm_dataset *ds;
    lm_err e = {0};
    assert_int_equal(lm_dataset_open(dir, &ds, &e), code);
    assert_null(ds);
    assert_non_null(strstr(e.msg, dir));
    if (!strstr(e.msg, what)) fail_msg("message '%s' lacks '%s'", e.msg, what);
    fx_rmtree(dir);
}

static void test_refuses_corrupt_records(void **s) {
    (void)s;
    expect_refused(edit_magic, LUMEN_EDATA, "record 3: bad magic");
    expect_refused(edit_length, LUMEN_EDATA, "record 3: length");
    expect_refused(edit_no_schema, LUMEN_EDATA, "incomplete");
    expect_refused(edit_version, LUMEN_EABI, "version 2");
}

/* A full disk reads as one, not as LMDB's "Input/output error". */
static void test_full_disk_messages(void **s) {
    (void)s;
    const char *dir = "runs/.cache/ingest/k.tmp-1-1/dataset";
    lm_err e = {0};
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot write records", ENOSPC, -1),
                     LUMEN_EIO);
    assert_string_equal(e.msg, "no space left on device while writing "
                               "runs/.cache/ingest/k.tmp-1-1/dataset (cannot write records)");
    lm_err_clear(&e);
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot sync", EDQUOT, 0), LUMEN_EIO);
    assert_string_equal(e.msg, "disk quota exceeded while writing "
                               "runs/.cache/ingest/k.tmp-1-1/dataset (cannot sync)");
    /* LMDB turns a short write into EIO: with (almost) no space left, that
     * was the disk filling up */
    lm_err_clear(&e);
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot write records", EIO, 4096),
                     LUMEN_EIO);
    assert_non_null(strstr(e.msg, "no space left on device while writing "
                                  "runs/.cache/ingest/k.tmp-1-1/dataset (cannot write records: "));
    assert_non_null(strstr(e.msg, "4096 bytes left"));
    /* ... but not with plenty of room, or when the space is unknown */
    lm_err_clear(&e);
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot write records", EIO, 1LL << 40),
                     LUMEN_EIO);
    assert_null(strstr(e.msg, "no space"));
    assert_non_null(
        strstr(e.msg, "dataset runs/.cache/ingest/k.tmp-1-1/dataset: cannot write records: "));
    lm_err_clear(&e);
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot sync", EIO, -1), LUMEN_EIO);
    assert_null(strstr(e.msg, "no space"));
    /* other codes keep LMDB's text; ENOMEM stays LUMEN_ENOMEM */
    lm_err_clear(&e);
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot open LMDB environment", EACCES, 0),
                     LUMEN_EIO);
    assert_non_null(strstr(e.msg, "cannot open LMDB environment: Permission denied"));
    lm_err_clear(&e);
    assert_int_equal(lm_dataset_write_fail(&e, dir, "cannot grow the map", ENOMEM, -1),
                     LUMEN_ENOMEM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_map_grows_from_tiny_map),
        cmocka_unit_test(test_abort_and_bad_put),
        cmocka_unit_test(test_refuses_corrupt_records),
        cmocka_unit_test(test_full_disk_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
