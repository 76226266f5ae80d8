/* Tests of the ingest stage core (ingest_run, ingest_key) and its plugin
 * wrapper (through the fake host), on slices of a generated ELPV-shaped set
 * (fx_elpv_fixture: 300x300 gray cells, labels.csv and data.csv), on
 * generated PNGs for bad input, and -- one test -- on the real ELPV data
 * where it exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "dataset.h"
#include "fakehost.h"
#include "ingest/ingest.h"
#include "ingest_fx.h"

/* The generated set: 100 cells, the first 80 in data.csv. */
#define FX_CELLS 100
#define FX_DATA 80
static char *data; /* the generated ELPV-shaped folder */

static int setup(void **s) {
    (void)s;
    data = fx_elpv_fixture("ingest-elpv", FX_CELLS, FX_DATA);
    return 0;
}
static int teardown(void **s) {
    (void)s;
    fx_rmtree(data);
    return 0;
}

typedef struct logbuf {
    int n[4];
    char text[16384];
} logbuf;

static void log_cb(void *user, int level, const char *msg) {
    logbuf *b = user;
    if (level >= 0 && level < 4) b->n[level]++;
    size_t l = strlen(b->text);
    snprintf(b->text + l, sizeof b->text - l, "%d|%s\n", level, msg);
}

/* A slice of one of the generated set's files: the first n lines (data
 * rows; the header counts as one line for data.csv). */
static char *slice(const char *dir, const char *file, int lines) {
    char *src = lm_path_join(data, file);
    char *text = fx_head_lines(src, lines);
    char *p = fx_write_text(dir, file, text);
    free(text);
    free(src);
    return p;
}

static void test_elpv_slice_end_to_end(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest");
    char *csv = slice(dir, "labels.csv", 60);
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv;
    o.root = data;
    o.out = out;
    o.val = 0.25;
    o.seed = 5;
    o.threads = 2;
    logbuf lb = {0};
    o.user = &lb;
    o.log = log_cb;
    ingest_result r;
    lm_err e = {0};
    int rc = ingest_run(&o, &r, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_int_equal(r.images, 60);
    assert_int_equal(r.skipped, 0);
    assert_int_equal(r.train + r.val, 60);
    assert_non_null(strstr(lb.text, "60 images"));

    /* independent expectations from the slice text */
    char *text = fx_head_lines(csv, 60);
    char names[60][64], types[60][8];
    double prob[60];
    int npos = 0, off = 0, used;
    for (int i = 0; i < 60; i++) {
        assert_int_equal(sscanf(text + off, "%63s %lf %7s%n", names[i], &prob[i], types[i], &used), 3);
        off += used;
        npos += prob[i] >= 0.5;
    }
    free(text);

    lm_dataset *ds;
    rc = lm_dataset_open(out, &ds, &e);
    if (rc) fail_msg("%s", e.msg);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    assert_int_equal(in->count, 60);
    assert_int_equal(in->height, 300);
    assert_int_equal(in->width, 300);
    assert_int_equal(in->channels, 1);
    assert_int_equal(in->nlabels, 1);
    assert_string_equal(in->labels[0], "defective");
    /* stratified: each class's val share is round(0.25 * class size) */
    int val_pos = 0, val_neg = 0;
    for (size_t i = 0; i < 60; i++) {
        lm_record rec;
        assert_int_equal(lm_dataset_get(ds, i, &rec), 0);
        assert_string_equal(rec.name, names[i]);
        assert_true(rec.labels[0] == (prob[i] >= 0.5 ? 1.0f : 0.0f));
        assert_non_null(strstr(rec.meta, types[i]));
        assert_true(strncmp(rec.meta, "type=", 5) == 0 && strstr(rec.meta, ";prob="));
        if (rec.split) *(rec.labels[0] > 0.5f ? &val_pos : &val_neg) += 1;
    }
    assert_int_equal(val_pos, lround(0.25 * npos));
    assert_int_equal(val_neg, lround(0.25 * (60 - npos)));
    const cJSON *sc = lm_dataset_schema(ds);
    assert_string_equal(cJSON_GetObjectItem(sc, "source")->valuestring, csv);
    assert_string_equal(cJSON_GetObjectItem(sc, "csv_format")->valuestring, "elpv");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(sc, "split"), "seed")->valueint, 5);

    /* pixel spot-check against libpng */
    const size_t spots[] = {0, 17, 59};
    for (size_t k = 0; k < 3; k++) {
        lm_record rec;
        lm_dataset_get(ds, spots[k], &rec);
        char *img = lm_path_join(data, rec.name);
        uint32_t w, h;
        int depth, ct;
        uint8_t *px = fx_libpng_read(img, &w, &h, &depth, &ct);
        assert_non_null(px);
        assert_true(w == 300 && h == 300 && depth == 8 && ct == 0);
        assert_memory_equal(rec.pixels, px, 300 * 300);
        free(px);
        free(img);
    }
    lm_dataset_close(ds);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

/* data.csv slice at 100x100 x3: every channel is the 3x3 block mean. */
static void test_data_csv_resized_rgb(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest");
    char *csv = slice(dir, "data.csv", 31);
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.root = data, o.out = out, o.size = 100, o.channels = 3, o.seed = 1;
    ingest_result r;
    lm_err e = {0};
    int rc = ingest_run(&o, &r, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_int_equal(r.images, 30);
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(out, &ds, &e), 0);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    assert_int_equal(in->nlabels, 2);
    assert_string_equal(in->labels[0], "crack");
    assert_string_equal(in->labels[1], "inactive");
    lm_record rec;
    lm_dataset_get(ds, 0, &rec);
    assert_string_equal(rec.name, "images/cell0001.png"); /* 1;0 in data.csv */
    assert_true(rec.labels[0] == 1.0f && rec.labels[1] == 0.0f);
    for (size_t k = 0; k < 30; k += 7) {
        lm_dataset_get(ds, k, &rec);
        assert_int_equal(rec.c, 3);
        char *img = lm_path_join(data, rec.name);
        uint32_t w, h;
        int depth, ct;
        uint8_t *px = fx_libpng_read(img, &w, &h, &depth, &ct);
        assert_non_null(px);
        int bad = 0;
        for (int y = 0; y < 100; y++)
            for (int x = 0; x < 100; x++) {
                double sum = 0;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) sum += px[(3 * y + dy) * 300 + 3 * x + dx];
                int want = (int)floor(sum / 9.0 + 0.5);
                for (int c = 0; c < 3; c++) bad += rec.pixels[c * 10000 + y * 100 + x] != want;
            }
        assert_int_equal(bad, 0);
        free(px);
        free(img);
    }
    lm_dataset_close(ds);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

static void test_thread_count_does_not_change_output(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest");
    char *csv = slice(dir, "labels.csv", 40);
    char *o1 = lm_path_join(dir, "t1"), *o3 = lm_path_join(dir, "t3");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.root = data, o.size = 64, o.seed = 9;
    lm_err e = {0};
    o.out = o1, o.threads = 1;
    assert_int_equal(ingest_run(&o, NULL, &e), 0);
    o.out = o3, o.threads = 3;
    assert_int_equal(ingest_run(&o, NULL, &e), 0);
    lm_dataset *a, *b;
    assert_int_equal(lm_dataset_open(o1, &a, &e), 0);
    assert_int_equal(lm_dataset_open(o3, &b, &e), 0);
    assert_int_equal(lm_dataset_count(a), 40);
    assert_int_equal(lm_dataset_count(b), 40);
    for (size_t i = 0; i < 40; i++) {
        lm_record x, y;
        lm_dataset_get(a, i, &x);
        lm_dataset_get(b, i, &y);
        assert_string_equal(x.name, y.name);
        assert_int_equal(x.split, y.split);
        assert_true(x.labels[0] == y.labels[0]);
        assert_memory_equal(x.pixels, y.pixels, 64 * 64);
    }
    lm_dataset_close(a);
    lm_dataset_close(b);
    free(o1);
    free(o3);
    free(csv);
    fx_rmtree(dir);
}

/* A root of small generated PNGs: a.png, b.png, d.png (16x16 gray),
 * big.png (100x100), notpng.png (text). */
static char *make_root(void) {
    char *dir = fx_tmpdir("ingest-bad");
    uint8_t px[100 * 100];
    for (int i = 0; i < 100 * 100; i++) px[i] = (uint8_t)i;
    const char *names[] = {"img/a.png", "img/b.png", "img/d.png"};
    for (int i = 0; i < 3; i++) {
        char *p = lm_path_join(dir, names[i]);
        fx_write_png(p, 16, 16, 0, 8, px + i, NULL, 0);
        free(p);
    }
    char *p = lm_path_join(dir, "img/big.png");
    fx_write_png(p, 100, 100, 0, 8, px, NULL, 0);
    free(p);
    free(fx_write_text(dir, "img/notpng.png", "plain text\n"));
    return dir;
}

static const char *bad_csv = "filename;crack;inactive\n"
                             "img/a.png;0;1\n"       /* 2 ok */
                             "img/missing.png;1;0\n" /* 3 missing image */
                             "img/b.png;2;0\n"       /* 4 bad label */
                             "../img/c.png;0;0\n"    /* 5 escapes the root */
                             "img/d.png;1;1\n";      /* 6 ok */

static void test_bad_input_fails_naming_lines(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "bad.csv", bad_csv);
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 16;
    lm_err e = {0};
    assert_int_equal(ingest_run(&o, NULL, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "3 problems"));
    assert_non_null(strstr(e.msg, "bad.csv:3:"));
    assert_non_null(strstr(e.msg, "missing"));
    assert_non_null(strstr(e.msg, "bad.csv:4:"));
    assert_non_null(strstr(e.msg, "'2'"));
    assert_non_null(strstr(e.msg, "bad.csv:5:"));
    assert_non_null(strstr(e.msg, "escapes"));
    /* reported in line order although the missing image was found last */
    assert_true(strstr(e.msg, "bad.csv:3:") < strstr(e.msg, "bad.csv:4:"));
    char *dm = lm_path_join(out, "data.mdb");
    assert_false(lm_exists(dm));
    free(dm);
    lm_dataset *ds;
    assert_int_not_equal(lm_dataset_open(out, &ds, &e), 0);

    /* clean CSV, bad images: found while decoding */
    char *csv2 = fx_write_text(dir, "bad2.csv",
                               "filename;crack\nimg/a.png;0\nimg/notpng.png;1\nimg/big.png;0\n"
                               "img/d.png;1\n");
    o.csv = csv2;
    o.limits = LM_IMAGE_LIMITS_DEFAULT;
    o.limits.max_width = o.limits.max_height = 64;
    lm_err e2 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e2), LUMEN_EDATA);
    assert_non_null(strstr(e2.msg, "2 problems"));
    assert_non_null(strstr(e2.msg, "bad2.csv:3:"));
    assert_non_null(strstr(e2.msg, "not a PNG"));
    assert_non_null(strstr(e2.msg, "bad2.csv:4:"));
    assert_non_null(strstr(e2.msg, "too large"));
    dm = lm_path_join(out, "data.mdb");
    assert_false(lm_exists(dm));
    free(dm);
    free(csv2);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

static void test_skip_mode_skips(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "bad.csv", bad_csv);
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 8, o.skip_bad = 1, o.val = 0;
    logbuf lb = {0};
    o.user = &lb;
    o.log = log_cb;
    ingest_result r;
    lm_err e = {0};
    int rc = ingest_run(&o, &r, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_int_equal(r.images, 2);
    assert_int_equal(r.skipped, 3);
    assert_true(lb.n[LUMEN_LOG_WARN] >= 1);
    assert_non_null(strstr(lb.text, "bad.csv:3:"));
    assert_non_null(strstr(lb.text, "bad.csv:5:"));
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(out, &ds, &e), 0);
    assert_int_equal(lm_dataset_count(ds), 2);
    assert_int_equal(cJSON_GetObjectItem(lm_dataset_schema(ds), "skipped")->valueint, 3);
    lm_record rec;
    lm_dataset_get(ds, 1, &rec);
    assert_string_equal(rec.name, "img/d.png");
    assert_true(rec.labels[0] == 1.0f && rec.labels[1] == 1.0f);
    /* 16 -> 8 area average of px[i] = i + 2 for d.png */
    assert_int_equal(rec.pixels[0], (int)floor((2 + 3 + 18 + 19) / 4.0 + 0.5));
    lm_dataset_close(ds);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

/* on_error = "skip" counts every data row read and the ones it skipped:
 * a CSV of 14 data rows with 2 bad ones is "12 of 14", not "12 of 12". */
static void test_skip_mode_counts_all_rows(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-count");
    uint8_t px[16 * 16];
    char *csv_text = lm_strdup("filename;crack\n");
    for (int i = 0; i < 14; i++) {
        char name[32], *more;
        snprintf(name, sizeof name, "img/g%02d.png", i);
        for (int j = 0; j < 16 * 16; j++) px[j] = (uint8_t)(i * 7 + j);
        char *p = lm_path_join(dir, name);
        fx_write_png(p, 16, 16, 0, 8, px, NULL, 0);
        free(p);
        if (i == 4) more = lm_sprintf("%s%s;yes\n", csv_text, name);        /* bad label */
        else if (i == 9) more = lm_sprintf("%s/abs/%s;1\n", csv_text, name); /* absolute */
        else more = lm_sprintf("%s%s;%d\n", csv_text, name, i % 2);
        free(csv_text);
        csv_text = more;
    }
    char *csv = fx_write_text(dir, "count.csv", csv_text);
    free(csv_text);
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 8, o.skip_bad = 1, o.val = 0, o.threads = 1;
    logbuf lb = {0};
    o.user = &lb;
    o.log = log_cb;
    ingest_result r;
    lm_err e = {0};
    if (ingest_run(&o, &r, &e)) fail_msg("%s", e.msg);
    assert_int_equal(r.images, 12);
    assert_int_equal(r.skipped, 2);
    char *want =
        lm_sprintf("ingest: 12 of 14 data rows from %s (csv; 2 bad rows skipped), 1 label,", csv);
    if (!strstr(lb.text, want)) fail_msg("no '%s' in the log:\n%s", want, lb.text);
    free(want);
    assert_null(strstr(lb.text, "12 of 12"));
    assert_non_null(strstr(lb.text, "count.csv:6:"));
    assert_non_null(strstr(lb.text, "count.csv:11:"));
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(out, &ds, &e), 0);
    assert_int_equal(cJSON_GetObjectItem(lm_dataset_schema(ds), "rows")->valueint, 14);
    assert_int_equal(cJSON_GetObjectItem(lm_dataset_schema(ds), "skipped")->valueint, 2);
    lm_dataset_close(ds);

    /* with a limit the total stays the rows read */
    o.limit = 5;
    lb.text[0] = '\0';
    if (ingest_run(&o, &r, &e)) fail_msg("%s", e.msg);
    assert_int_equal(r.images, 5);
    want = lm_sprintf("ingest: 5 of 14 data rows from %s (csv; 2 bad rows skipped; limit 5),", csv);
    if (!strstr(lb.text, want)) fail_msg("no '%s' in the log:\n%s", want, lb.text);
    free(want);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

static void test_missing_csv_and_bad_opts(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-none");
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = "/nonexistent/labels.csv", o.out = out;
    lm_err e = {0};
    assert_int_equal(ingest_run(&o, NULL, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent/labels.csv"));
    o.channels = 2;
    lm_err e2 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e2), LUMEN_EINVAL);
    assert_non_null(strstr(e2.msg, "channels"));
    free(out);
    fx_rmtree(dir);
}

static void key_cb(void *user, const void *d, size_t n) {
    uint64_t *h = user;
    const uint8_t *p = d;
    for (size_t i = 0; i < n; i++) *h = (*h ^ p[i]) * 0x100000001b3ull; /* FNV-1a */
}

static uint64_t key_of(const ingest_opts *o) {
    uint64_t h = 0xcbf29ce484222325ull;
    lm_err e = {0};
    int rc = ingest_key(o, key_cb, &h, &e);
    if (rc) fail_msg("%s", e.msg);
    return h;
}

static void test_key_tracks_inputs(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "k.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\n");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv;
    uint64_t k1 = key_of(&o), k2 = key_of(&o);
    assert_true(k1 == k2);
    /* an image's mtime changes the key */
    char *img = lm_path_join(dir, "img/b.png");
    struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimes(img, tv), 0);
    uint64_t k3 = key_of(&o);
    assert_true(k3 != k1);
    /* an image's size changes the key */
    uint8_t px[32 * 32] = {0};
    fx_write_png(img, 32, 32, 0, 8, px, NULL, 0);
    assert_int_equal(utimes(img, tv), 0);
    uint64_t k4 = key_of(&o);
    assert_true(k4 != k3);
    /* the root changes the key (the default root is the csv's folder) */
    o.root = dir;
    assert_true(key_of(&o) == k4);
    char *other = lm_path_join(dir, "img");
    o.root = other;
    assert_true(key_of(&o) != k4);
    o.root = NULL;
    free(other);
    /* the CSV content changes the key */
    free(fx_write_text(dir, "k.csv", "filename;crack\nimg/a.png;1\nimg/b.png;1\n"));
    assert_true(key_of(&o) != k4);
    free(img);
    free(csv);
    fx_rmtree(dir);
}

static void test_plugin_wrapper(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-plugin");
    char *csv = slice(dir, "labels.csv", 100);
    char *out = lm_path_join(dir, "dataset");
    fh *f = fh_new(&ingest_stage);
    assert_string_equal(ingest_stage.name, "ingest");
    assert_true(ingest_stage.flags & LUMEN_STAGE_CACHEABLE);
    assert_string_equal(ingest_stage.outputs[0], "dataset");
    fh_set(f, "csv", csv);
    fh_set(f, "root", data);
    fh_set_output(f, "dataset", out);
    fh_set_seed(f, 11);
    /* check() refuses 2 channels */
    fh_set(f, "channels", "2");
    assert_int_equal(fh_check(f), LUMEN_EINVAL);
    assert_non_null(strstr(fh_fail_msg(f), "channels"));
    fh_free(f);

    f = fh_new(&ingest_stage);
    fh_set(f, "csv", csv);
    fh_set(f, "root", data);
    fh_set_output(f, "dataset", out);
    fh_set_seed(f, 11);
    fh_set_smoke(f, 1);
    assert_int_equal(fh_check(f), 0);
    int rc;
    uint64_t key = fh_key(f, &rc);
    assert_int_equal(rc, 0);
    assert_true(key != 0);
    assert_true(fh_key(f, &rc) == key);
    /* a smoke run never shares its key with a full run */
    fh_set_smoke(f, 0);
    assert_true(fh_key(f, &rc) != key);
    fh_set_smoke(f, 1);
    rc = fh_run(f);
    if (rc) fail_msg("%s", fh_fail_msg(f));
    assert_null(fh_bad_key(f));
    int found;
    assert_int_equal((int)fh_summary(f, "ingest/images", &found), 64); /* smoke limit */
    assert_true(found);
    fh_summary(f, "ingest/seconds", &found);
    assert_true(found);
    int64_t total;
    assert_int_equal(fh_progress_last(f, &total), 64);
    assert_int_equal(total, 64);
    assert_true(fh_log_count(f, LUMEN_LOG_INFO, "64 images") >= 1);
    lm_dataset *ds;
    lm_err e = {0};
    assert_int_equal(lm_dataset_open(out, &ds, &e), 0);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    assert_int_equal(in->count, 64);
    assert_int_equal(in->height, 32); /* smoke size */
    /* split.seed auto = the experiment seed */
    const cJSON *sp = cJSON_GetObjectItem(lm_dataset_schema(ds), "split");
    assert_int_equal(cJSON_GetObjectItem(sp, "seed")->valueint, 11);
    lm_dataset_close(ds);
    fh_free(f);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

/* The plugin's key() folds the effective split seed: with split.seed =
 * "auto" it follows the experiment seed, with a fixed split.seed it does not. */
static void test_plugin_key_follows_effective_seed(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-seedkey");
    char *csv = fx_write_text(dir, "k.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\n");
    fh *f = fh_new(&ingest_stage);
    fh_set(f, "csv", csv);
    int rc;
    fh_set_seed(f, 1);
    uint64_t k1 = fh_key(f, &rc);
    assert_int_equal(rc, 0);
    fh_set_seed(f, 2);
    uint64_t k2 = fh_key(f, &rc);
    assert_true(k2 != k1);
    fh_set_seed(f, 1);
    assert_true(fh_key(f, &rc) == k1);
    fh_set(f, "split.seed", "5");
    uint64_t k5 = fh_key(f, &rc);
    fh_set_seed(f, 2);
    assert_true(fh_key(f, &rc) == k5);
    /* the output does not depend on the thread count (see
     * test_thread_count_does_not_change_output), so neither does the key */
    fh_set_threads(f, 3);
    assert_true(fh_key(f, &rc) == k5);
    fh_free(f);
    free(csv);
    fx_rmtree(dir);
}

/* ------------------------------------------------------------- exclude -- */

/* Names of the records of the dataset in `out`, in index order, joined by
 * ','; fails the test when it does not open. */
static char *record_names(const char *out, size_t *count) {
    lm_dataset *ds;
    lm_err e = {0};
    if (lm_dataset_open(out, &ds, &e)) fail_msg("%s", e.msg);
    *count = lm_dataset_count(ds);
    char *names = calloc(1, 4096);
    assert_non_null(names);
    for (size_t i = 0; i < *count; i++) {
        lm_record rec;
        assert_int_equal(lm_dataset_get(ds, i, &rec), 0);
        size_t l = strlen(names);
        snprintf(names + l, 4096 - l, "%s%s", i ? "," : "", rec.name);
    }
    lm_dataset_close(ds);
    return names;
}

static void test_exclude_drops_listed_rows(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "x.csv",
                              "filename;crack;inactive\n"
                              "img/a.png;0;1\n"
                              "img/missing.png;1;0\n" /* excluded: its image is not needed */
                              "img/b.png;1;0\n"
                              "img/d.png;1;1\n");
    /* ELPV format while csv is CSV: detected on its own, whatever `format`
     * says; a path of no row, and "./img/d.png" which is not "img/d.png" */
    char *ex = fx_write_text(dir, "ex.txt",
                             "img/b.png   1.0  mono\n"
                             "img/zzz.png 0.0  poly\n"
                             "./img/d.png 0.0  mono\n"
                             "img/missing.png 0.333 mono\n");
    char *out = lm_path_join(dir, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.exclude = ex, o.out = out, o.size = 8, o.val = 0, o.format = LM_LABELS_CSV;
    logbuf lb = {0};
    o.user = &lb;
    o.log = log_cb;
    ingest_result r;
    lm_err e = {0};
    int rc = ingest_run(&o, &r, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_int_equal(r.rows, 4);
    assert_int_equal(r.excluded, 2);
    assert_int_equal(r.selected, 2);
    assert_int_equal(r.images, 2);
    assert_int_equal(r.skipped, 0);
    assert_non_null(strstr(lb.text, "exclude: 2 of 4 rows skipped (listed in "));
    assert_non_null(strstr(lb.text, "ex.txt)"));
    assert_non_null(strstr(lb.text, "2 of its 4 paths name no row"));
    size_t n;
    char *names = record_names(out, &n);
    assert_int_equal(n, 2);
    assert_string_equal(names, "img/a.png,img/d.png");
    free(names);
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(out, &ds, &e), 0);
    const cJSON *sc = lm_dataset_schema(ds);
    assert_string_equal(cJSON_GetObjectItem(sc, "exclude")->valuestring, ex);
    assert_int_equal(cJSON_GetObjectItem(sc, "excluded")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(sc, "rows")->valueint, 4);
    lm_record rec;
    lm_dataset_get(ds, 1, &rec); /* labels stay with their row */
    assert_true(rec.labels[0] == 1.0f && rec.labels[1] == 1.0f);
    lm_dataset_close(ds);

    /* a CSV exclude list: only the first column counts, labels unchecked */
    char *ex2 = fx_write_text(dir, "ex2.csv", "filename;whatever\nimg/a.png;x\nimg/missing.png;\n");
    o.exclude = ex2, o.format = LM_LABELS_AUTO;
    o.log = NULL;
    rc = ingest_run(&o, &r, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_int_equal(r.excluded, 2);
    names = record_names(out, &n);
    assert_string_equal(names, "img/b.png,img/d.png");
    free(names);
    /* ... with the missing image not excluded: the usual failure */
    free(fx_write_text(dir, "ex2.csv", "filename\nimg/b.png\n"));
    lm_err e2 = {0};
    assert_int_equal(ingest_run(&o, &r, &e2), LUMEN_EDATA);
    assert_non_null(strstr(e2.msg, "x.csv:3:"));
    free(ex2);
    free(ex);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

static void test_exclude_bad_file_and_everything_excluded(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "x.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\n");
    char *out = lm_path_join(dir, "dataset");
    char *dm = lm_path_join(out, "data.mdb");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 8, o.val = 0;

    /* missing: names the file */
    char *missing = lm_path_join(dir, "no-such-exclude.csv");
    o.exclude = missing;
    lm_err e = {0};
    assert_int_equal(ingest_run(&o, NULL, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "exclude"));
    assert_non_null(strstr(e.msg, missing));
    assert_false(lm_exists(dm));

    /* bad rows: file:line, even with on_error = "skip" */
    char *bad = fx_write_text(dir, "bad-ex.csv", "filename;crack\nimg/a.png;0\n../b.png;1\n"
                                                 "img/a.png;1\n");
    o.exclude = bad, o.skip_bad = 1;
    lm_err e2 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e2), LUMEN_EDATA);
    assert_non_null(strstr(e2.msg, "2 problems"));
    assert_non_null(strstr(e2.msg, "bad-ex.csv:3:"));
    assert_non_null(strstr(e2.msg, "bad-ex.csv:4:"));
    assert_false(lm_exists(dm));

    /* not a label file at all */
    char *junk = fx_write_text(dir, "junk.csv", "\n\n");
    o.exclude = junk;
    lm_err e3 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e3), LUMEN_EDATA);
    assert_non_null(strstr(e3.msg, "junk.csv"));

    /* every row excluded */
    char *all = fx_write_text(dir, "all.csv", "img/b.png 1 mono\nimg/a.png 0 mono\n");
    o.exclude = all, o.skip_bad = 0;
    lm_err e4 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e4), LUMEN_EDATA);
    assert_non_null(strstr(e4.msg, "every usable row (2)"));
    assert_non_null(strstr(e4.msg, "all.csv"));
    assert_false(lm_exists(dm));
    free(all);
    free(junk);
    free(bad);
    free(missing);
    free(dm);
    free(csv);
    free(out);
    fx_rmtree(dir);
}

static void test_exclude_joins_key(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "k.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\n");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv;
    uint64_t k0 = key_of(&o);
    o.exclude = ""; /* empty = unset: the key is the one without exclude */
    assert_true(key_of(&o) == k0);
    char *ex = fx_write_text(dir, "ex.csv", "filename\nimg/a.png\n");
    o.exclude = ex;
    uint64_t k1 = key_of(&o);
    assert_true(k1 != k0);
    assert_true(key_of(&o) == k1);
    /* the exclude file's content changes the key */
    free(fx_write_text(dir, "ex.csv", "filename\nimg/b.png\n"));
    uint64_t k2 = key_of(&o);
    assert_true(k2 != k1);
    /* missing: an error naming it */
    char *missing = lm_path_join(dir, "gone.csv");
    o.exclude = missing;
    uint64_t h = 0;
    lm_err e = {0};
    assert_int_equal(ingest_key(&o, key_cb, &h, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, missing));

    /* through the plugin's key() */
    fh *f = fh_new(&ingest_stage);
    fh_set(f, "csv", csv);
    int rc;
    uint64_t p0 = fh_key(f, &rc);
    assert_int_equal(rc, 0);
    fh_set(f, "exclude", ex);
    uint64_t p1 = fh_key(f, &rc);
    assert_int_equal(rc, 0);
    assert_true(p1 != p0);
    free(fx_write_text(dir, "ex.csv", "filename\nimg/a.png\n"));
    uint64_t p2 = fh_key(f, &rc);
    assert_int_equal(rc, 0);
    assert_true(p2 != p1);
    fh_set(f, "exclude", missing);
    fh_key(f, &rc);
    assert_int_equal(rc, LUMEN_ENOTFOUND);
    assert_non_null(strstr(fh_fail_msg(f), missing));
    assert_null(fh_bad_key(f));
    fh_free(f);
    free(missing);
    free(ex);
    free(csv);
    fx_rmtree(dir);
}

/* The purpose: pretraining on labels.csv without the cells of data.csv.
 * root holds ELPV's labels.csv and data.csv; n_data and n_rest are the
 * counts excluded and kept. */
static void check_labels_minus_data(const char *root, int n_data, int n_rest) {
    char *dir = fx_tmpdir("ingest-exclude");
    char *out = lm_path_join(dir, "dataset");
    char *labels = lm_path_join(root, "labels.csv"), *dcsv = lm_path_join(root, "data.csv");
    fh *f = fh_new(&ingest_stage);
    fh_set(f, "csv", labels);
    fh_set(f, "exclude", dcsv);
    fh_set(f, "size", "32");
    fh_set_output(f, "dataset", out);
    fh_set_seed(f, 3);
    int rc = fh_run(f);
    if (rc) fail_msg("%s", fh_fail_msg(f));
    assert_null(fh_bad_key(f));
    int found;
    assert_int_equal((int)fh_summary(f, "ingest/excluded", &found), n_data);
    assert_true(found);
    assert_int_equal((int)fh_summary(f, "ingest/images", &found), n_rest);
    assert_int_equal((int)fh_summary(f, "ingest/skipped", &found), 0);
    char want[128];
    snprintf(want, sizeof want, "exclude: %d of %d rows skipped", n_data, n_data + n_rest);
    assert_int_equal(fh_log_count(f, LUMEN_LOG_INFO, want), 1);

    /* independently: no record is in data.csv, each is in labels.csv, in
     * labels.csv's order */
    char *dtext, *ltext;
    size_t dlen, llen;
    lm_err e = {0};
    assert_int_equal(lm_read_file(dcsv, &dtext, &dlen, &e), 0);
    assert_int_equal(lm_read_file(labels, &ltext, &llen, &e), 0);
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(out, &ds, &e), 0);
    assert_int_equal(lm_dataset_count(ds), (size_t)n_rest);
    const char *prev = ltext;
    for (size_t i = 0; i < (size_t)n_rest; i++) {
        lm_record rec;
        assert_int_equal(lm_dataset_get(ds, i, &rec), 0);
        char key[128];
        snprintf(key, sizeof key, "\n%s;", rec.name);
        if (strstr(dtext, key)) fail_msg("%s is in data.csv", rec.name);
        snprintf(key, sizeof key, "%s ", rec.name);
        const char *at = strstr(prev, key);
        if (!at) fail_msg("%s: not in labels.csv after the previous record", rec.name);
        prev = at + 1;
    }
    lm_dataset_close(ds);
    free(dtext);
    free(ltext);
    fh_free(f);
    free(labels);
    free(dcsv);
    free(out);
    fx_rmtree(dir);
}

static void test_exclude_labels_minus_data(void **s) {
    (void)s;
    check_labels_minus_data(data, FX_DATA, FX_CELLS - FX_DATA);
}

/* The same on the real ELPV set: 2,324 cells, 1,700 of them in data.csv. */
static void test_exclude_elpv_labels_minus_data(void **s) {
    (void)s;
    char *real = fx_data_dir();
    char *dcsv = real ? lm_path_join(real, "data.csv") : NULL;
    if (!dcsv || !lm_exists(dcsv)) {
        print_message("needs the real ELPV set (labels.csv and data.csv) in $LUMEN_DATA or ../shared/data/elpv\n");
        free(dcsv);
        free(real);
        skip();
    }
    check_labels_minus_data(real, 1700, 624);
    free(dcsv);
    free(real);
}

/* ----------------------------------------------------------- negatives -- */

/* The generated set ingested in 5-fold mode (fold 2) at 8 px, with the
 * given negatives file and bound (NULL: none); fails the test on error. */
static void ingest_folds(const char *out, const char *negatives, double max_prob, ingest_result *r,
                         logbuf *lb) {
    char *dcsv = lm_path_join(data, "data.csv");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = dcsv, o.out = out, o.size = 8, o.folds = 5, o.fold = 2, o.seed = 7;
    o.negatives = negatives, o.negatives_max_prob = max_prob;
    o.user = lb, o.log = lb ? log_cb : NULL;
    lm_err e = {0};
    if (ingest_run(&o, r, &e)) fail_msg("%s", e.msg);
    free(dcsv);
}

/* The cells of the generated labels.csv that data.csv does not list
 * (cells FX_DATA+1 ..) with probability <= max_prob: read from the file
 * itself, not from the ingest's parser. */
static int expected_negative(const char *name, double max_prob) {
    char *lpath = lm_path_join(data, "labels.csv");
    FILE *fp = fopen(lpath, "r");
    assert_non_null(fp);
    char line[256], nm[128];
    double p;
    int hit = 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "%127s %lf", nm, &p) == 2 && !strcmp(nm, name))
            hit = atoi(nm + strlen("images/cell")) > FX_DATA && p <= max_prob;
    fclose(fp);
    free(lpath);
    return hit;
}

static int count_expected_negatives(double max_prob) {
    int n = 0;
    for (int i = FX_DATA + 1; i <= FX_CELLS; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "images/cell%04d.png", i);
        n += expected_negative(nm, max_prob);
    }
    return n;
}

/* A side file of the ingest (o->negatives, o->doubtful: *field, named
 * `what` in messages) that is missing, then one whose second row is bad
 * (`bad_text`, skip_bad on: a side file's bad row is fatal anyway): each
 * run fails naming the file (and line 2) and writes no dataset.  Leaves
 * *field NULL and skip_bad off. */
static void expect_side_file_errors(ingest_opts *o, const char **field, const char *what, const char *dir,
                                    const char *bad_text) {
    char *dm = lm_path_join(o->out, "data.mdb");
    char *missing = lm_path_join(dir, "no-such-side-file.txt");
    *field = missing;
    lm_err e = {0};
    assert_int_equal(ingest_run(o, NULL, &e), LUMEN_ENOTFOUND);
    char *head = lm_sprintf("%s: ", what);
    if (!strstr(e.msg, head) || !strstr(e.msg, missing)) fail_msg("%s: unexpected message: %s", what, e.msg);
    assert_false(lm_exists(dm));
    char *bad = fx_write_text(dir, "bad-side.txt", bad_text);
    *field = bad, o->skip_bad = 1;
    lm_err e2 = {0};
    assert_int_equal(ingest_run(o, NULL, &e2), LUMEN_EDATA);
    if (!strstr(e2.msg, "bad-side.txt:2:")) fail_msg("%s: unexpected message: %s", what, e2.msg);
    assert_false(lm_exists(dm));
    *field = NULL, o->skip_bad = 0;
    free(head);
    free(bad);
    free(missing);
    free(dm);
}

/* labels.csv's defect probability of a cell, read from the file itself. */
static double elpv_prob(const char *name) {
    char *lpath = lm_path_join(data, "labels.csv");
    FILE *fp = fopen(lpath, "r");
    assert_non_null(fp);
    char line[256], nm[128];
    double p, got = -1;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "%127s %lf", nm, &p) == 2 && !strcmp(nm, name)) got = p;
    fclose(fp);
    free(lpath);
    assert_true(got >= 0);
    return got;
}

static void ingest_doubtful(const char *out, int fold, const char *doubtful, double min_prob, ingest_result *r,
                            logbuf *lb) {
    char *dcsv = lm_path_join(data, "data.csv");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = dcsv, o.out = out, o.size = 8, o.folds = 5, o.fold = fold, o.seed = 7;
    o.doubtful = doubtful, o.doubtful_min_prob = min_prob;
    o.user = lb, o.log = lb ? log_cb : NULL;
    lm_err e = {0};
    if (ingest_run(&o, r, &e)) fail_msg("%s", e.msg);
    free(dcsv);
}

/* doubtful = labels.csv at 0.3: exactly the training records of data.csv
 * whose labels are all 0 and whose labels.csv probability is >= 0.3 (read
 * from the file) are held out (split LM_SPLIT_HELD, in no split's list),
 * every record keeps its number, the validation fold and every other
 * record are as without it; the schema and the log say how many.  At 1.0
 * (no such negative in the set) nothing changes and the log warns. */
static void test_doubtful_negatives_leave_training(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-doubt");
    char *out0 = lm_path_join(dir, "plain"), *out1 = lm_path_join(dir, "doubt");
    char *lcsv = lm_path_join(data, "labels.csv");
    ingest_result r0, r1;
    size_t all_dropped = 0, all_val_doubtful = 0;
    for (int fold = 0; fold < 5; fold++) { /* every fold: both sides of the rule occur */
        logbuf lb = {0};
        ingest_doubtful(out0, fold, NULL, 0.5, &r0, NULL);
        ingest_doubtful(out1, fold, lcsv, 0.3, &r1, &lb);
        lm_dataset *d0, *d1;
        lm_err e = {0};
        assert_int_equal(lm_dataset_open(out0, &d0, &e), 0);
        assert_int_equal(lm_dataset_open(out1, &d1, &e), 0);
        size_t dropped = 0, val = 0, val_doubtful = 0;
        assert_int_equal(lm_dataset_count(d1), lm_dataset_count(d0)); /* every record keeps its number */
        for (size_t i = 0; i < lm_dataset_count(d0); i++) {
            lm_record a, b;
            assert_int_equal(lm_dataset_get(d0, i, &a), 0);
            assert_int_equal(lm_dataset_get(d1, i, &b), 0);
            int doubtful = a.labels[0] == 0.0f && a.labels[1] == 0.0f && elpv_prob(a.name) >= 0.3;
            int held = a.split == LM_SPLIT_TRAIN && doubtful;
            dropped += held;
            val += a.split == LM_SPLIT_VAL;
            val_doubtful += a.split == LM_SPLIT_VAL && doubtful;
            assert_string_equal(a.name, b.name);
            assert_int_equal(b.split, held ? LM_SPLIT_HELD : a.split);
            assert_memory_equal(a.labels, b.labels, 2 * sizeof(float));
            assert_memory_equal(a.pixels, b.pixels, 8 * 8);
        }
        /* the training list holds no held record */
        size_t nt;
        const uint32_t *tr = lm_dataset_split(d1, LM_SPLIT_TRAIN, &nt);
        assert_int_equal(nt, r0.train - dropped);
        for (size_t t = 0; t < nt; t++) {
            lm_record b;
            assert_int_equal(lm_dataset_get(d1, tr[t], &b), 0);
            assert_int_equal(b.split, LM_SPLIT_TRAIN);
        }
        assert_int_equal(lm_dataset_get_info(d1)->nheld, dropped);
        assert_int_equal(cJSON_GetObjectItem(lm_dataset_schema(d1), "held")->valueint, (int)dropped);
        assert_null(cJSON_GetObjectItem(lm_dataset_schema(d0), "held"));
        assert_int_equal(r1.doubtful, dropped);
        assert_int_equal(r1.train, r0.train - dropped);
        assert_int_equal(r1.images, r0.images);
        assert_int_equal(r1.val, r0.val);
        assert_int_equal(r1.val, val);
        const cJSON *db = cJSON_GetObjectItem(lm_dataset_schema(d1), "doubtful");
        assert_non_null(db);
        assert_string_equal(cJSON_GetObjectItem(db, "source")->valuestring, lcsv);
        assert_int_equal(cJSON_GetObjectItem(db, "rows")->valueint, (int)dropped);
        assert_null(cJSON_GetObjectItem(lm_dataset_schema(d0), "doubtful"));
        char msg[256];
        snprintf(msg, sizeof msg, "doubtful: %zu training negatives of ", dropped);
        if (!strstr(lb.text, msg)) fail_msg("no '%s' in the log:\n%s", msg, lb.text);
        snprintf(msg, sizeof msg, "the validation split keeps its %zu such rows", val_doubtful);
        if (!strstr(lb.text, msg)) fail_msg("no '%s' in the log:\n%s", msg, lb.text);
        lm_dataset_close(d0);
        lm_dataset_close(d1);
        all_dropped += dropped;
        all_val_doubtful += val_doubtful;
    }
    if (!(all_dropped > 0 && all_val_doubtful > 0))
        fail_msg("dropped %zu, validation doubtful %zu: the fixture exercises too little", all_dropped,
                 all_val_doubtful);
    print_message("doubtful: %zu training negatives left out over 5 folds, %zu kept in validation\n", all_dropped,
                  all_val_doubtful);

    logbuf lb2 = {0};
    ingest_doubtful(out1, 2, lcsv, 1.0, &r1, &lb2);
    ingest_doubtful(out0, 2, NULL, 0.5, &r0, NULL);
    assert_int_equal(r1.doubtful, 0);
    assert_int_equal(r1.train, r0.train);
    assert_int_equal(lb2.n[LUMEN_LOG_WARN], 1);
    free(lcsv);
    free(out0);
    free(out1);
    fx_rmtree(dir);
}

/* A doubtful file that is missing or has a bad row fails naming it (and
 * file:line) before anything is written; min_prob must be in (0, 1]; the
 * file's content and min_prob join the cache key. */
static void test_doubtful_errors_and_key(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "x.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\n");
    char *out = lm_path_join(dir, "dataset");
    char *dm = lm_path_join(out, "data.mdb");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 8, o.val = 0.5;
    expect_side_file_errors(&o, &o.doubtful, "doubtful", dir, "img/a.png 1.0 mono\nimg/b.png 7 mono\n");
    o.doubtful_min_prob = 0;
    lm_err e3 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e3), LUMEN_EINVAL);
    assert_non_null(strstr(e3.msg, "doubtful.min_prob: must be in (0, 1]"));
    /* the key: the file's content and the bound */
    char *good = fx_write_text(dir, "good.txt", "img/a.png 1.0 mono\nimg/b.png 0.0 mono\n");
    o.doubtful = good, o.doubtful_min_prob = 0.5;
    uint64_t k1 = key_of(&o);
    o.doubtful_min_prob = 0.9;
    assert_true(key_of(&o) != k1);
    o.doubtful_min_prob = 0.5;
    free(fx_write_text(dir, "good.txt", "img/a.png 0.0 mono\nimg/b.png 0.0 mono\n"));
    assert_true(key_of(&o) != k1);
    o.doubtful = NULL;
    assert_true(key_of(&o) != k1);
    free(good);
    free(dm);
    free(out);
    free(csv);
    fx_rmtree(dir);
}

/* Negatives join the training split only, every label 0, and leave
 * data.csv's own records -- names, labels, folds -- exactly as they are
 * without them. */
static void test_negatives_train_only(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-neg");
    char *out0 = lm_path_join(dir, "plain"), *out1 = lm_path_join(dir, "neg");
    char *lcsv = lm_path_join(data, "labels.csv");
    ingest_result r0, r1;
    logbuf lb = {0};
    ingest_folds(out0, NULL, 0, &r0, NULL);
    ingest_folds(out1, lcsv, 0, &r1, &lb);
    int want = count_expected_negatives(0.0);
    assert_true(want > 0);
    assert_int_equal(r0.negatives, 0);
    assert_int_equal(r1.negatives, want);
    assert_int_equal(r1.images, r0.images + (size_t)want);
    assert_int_equal(r1.train, r0.train + (size_t)want);
    assert_int_equal(r1.val, r0.val);
    char msg[256];
    snprintf(msg, sizeof msg, "negatives: %d of %d rows of %s (defect probability <= 0, not in ", want,
             FX_CELLS, lcsv);
    if (!strstr(lb.text, msg)) fail_msg("no '%s' in the log:\n%s", msg, lb.text);

    lm_dataset *d0, *d1;
    lm_err e = {0};
    assert_int_equal(lm_dataset_open(out0, &d0, &e), 0);
    assert_int_equal(lm_dataset_open(out1, &d1, &e), 0);
    size_t n0 = lm_dataset_count(d0);
    for (size_t i = 0; i < lm_dataset_count(d1); i++) {
        lm_record a, b;
        assert_int_equal(lm_dataset_get(d1, i, &b), 0);
        if (i < n0) { /* data.csv's record: unchanged */
            assert_int_equal(lm_dataset_get(d0, i, &a), 0);
            assert_string_equal(a.name, b.name);
            assert_int_equal(a.split, b.split);
            assert_memory_equal(a.labels, b.labels, 2 * sizeof(float));
            assert_memory_equal(a.pixels, b.pixels, 8 * 8);
        } else { /* a negative: training only, no label set, from outside data.csv */
            assert_int_equal(b.split, LM_SPLIT_TRAIN);
            assert_true(b.labels[0] == 0.0f && b.labels[1] == 0.0f);
            if (!expected_negative(b.name, 0.0)) fail_msg("%s is not a negative outside data.csv", b.name);
        }
    }
    const cJSON *ng = cJSON_GetObjectItem(lm_dataset_schema(d1), "negatives");
    assert_non_null(ng);
    assert_string_equal(cJSON_GetObjectItem(ng, "source")->valuestring, lcsv);
    assert_int_equal(cJSON_GetObjectItem(ng, "rows")->valueint, want);
    assert_null(cJSON_GetObjectItem(lm_dataset_schema(d0), "negatives"));
    lm_dataset_close(d0);
    lm_dataset_close(d1);

    /* a looser bound takes the 1/3-probability cells too */
    int want3 = count_expected_negatives(0.34);
    assert_true(want3 > want);
    ingest_folds(out1, lcsv, 0.34, &r1, NULL);
    assert_int_equal(r1.negatives, want3);
    assert_int_equal(r1.val, r0.val);
    free(lcsv);
    free(out0);
    free(out1);
    fx_rmtree(dir);
}

/* A negatives file that is missing, has bad rows or holds no negative
 * fails naming it (and file:line); a CSV one counts rows whose every
 * label is 0; the file, its content and the bound join the cache key. */
static void test_negatives_errors_and_key(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "x.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\n");
    char *out = lm_path_join(dir, "dataset");
    char *dm = lm_path_join(out, "data.mdb");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 8, o.val = 0.5;

    expect_side_file_errors(&o, &o.negatives, "negatives", dir, "img/d.png 0.0 mono\n../up.png 0.0 mono\n");

    /* only positives, or only rows csv lists already */
    char *none = fx_write_text(dir, "none.txt", "img/d.png 1.0 mono\nimg/a.png 0.0 mono\n");
    o.negatives = none, o.skip_bad = 0;
    lm_err e3 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e3), LUMEN_EDATA);
    assert_non_null(strstr(e3.msg, "none.txt: none of its 2 rows is a negative"));
    assert_non_null(strstr(e3.msg, "1 listed there, 1 not negative"));

    /* a CSV negatives file (labels of its own): rows whose labels are all 0 */
    char *cneg = fx_write_text(dir, "neg.csv", "filename;defect\nimg/d.png;0\nimg/big.png;1\n");
    o.negatives = cneg;
    ingest_result r;
    lm_err e4 = {0};
    if (ingest_run(&o, &r, &e4)) fail_msg("%s", e4.msg);
    assert_int_equal(r.negatives, 1);
    assert_int_equal(r.images, 3);
    size_t n;
    char *names = record_names(out, &n);
    assert_string_equal(names, "img/a.png,img/b.png,img/d.png");
    free(names);

    /* a negative whose image is broken: bad input naming the negatives file */
    char *brk = fx_write_text(dir, "img/broken.png", "not a png");
    char *bneg = fx_write_text(dir, "bneg.txt", "img/broken.png 0.0 poly\n");
    o.negatives = bneg;
    lm_err e5 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e5), LUMEN_EDATA);
    assert_non_null(strstr(e5.msg, "bneg.txt:1:"));
    assert_non_null(strstr(e5.msg, "x.csv and its negatives file "));
    assert_false(lm_exists(dm));

    /* the key */
    o.negatives = NULL;
    uint64_t k0 = key_of(&o);
    o.negatives = "";
    assert_true(key_of(&o) == k0);
    o.negatives = cneg;
    uint64_t k1 = key_of(&o);
    assert_true(k1 != k0);
    o.negatives_max_prob = 0.4;
    uint64_t k2 = key_of(&o);
    assert_true(k2 != k1);
    free(fx_write_text(dir, "neg.csv", "filename;defect\nimg/d.png;0\n"));
    assert_true(key_of(&o) != k2);
    char *missing = lm_path_join(dir, "no-such-negatives.csv");
    o.negatives = missing;
    uint64_t h = 0;
    lm_err e6 = {0};
    assert_int_equal(ingest_key(&o, key_cb, &h, &e6), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e6.msg, missing));

    /* the plugin: nested Lua keys, the summary */
    fh *f = fh_new(&ingest_stage);
    fh_set(f, "csv", csv);
    fh_set(f, "negatives.csv", cneg);
    fh_set(f, "split.val", "0.5");
    fh_set(f, "size", "8");
    char *pout = lm_path_join(dir, "plugin-dataset");
    fh_set_output(f, "dataset", pout);
    int rc = fh_run(f);
    if (rc) fail_msg("%s", fh_fail_msg(f));
    assert_null(fh_bad_key(f));
    int found = 0;
    assert_int_equal((int)fh_summary(f, "ingest/negatives", &found), 1);
    assert_true(found);
    fh_free(f);
    free(pout);
    free(brk);
    free(bneg);
    free(cneg);
    free(none);
    free(missing);
    free(dm);
    free(out);
    free(csv);
    fx_rmtree(dir);
}

/* ---------------------------------------------------------------- aux -- */

/* The ELPV "defective" label (probability >= 0.5) of `name`, read from the
 * generated labels.csv itself, not through the ingest's parser; -1 when it
 * does not list the name. */
static int expected_defective(const char *name) {
    char *lpath = lm_path_join(data, "labels.csv");
    FILE *fp = fopen(lpath, "r");
    assert_non_null(fp);
    char line[256], nm[128];
    double p;
    int v = -1;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "%127s %lf", nm, &p) == 2 && !strcmp(nm, name)) v = p >= 0.5;
    fclose(fp);
    free(lpath);
    return v;
}

/* labels.csv as aux: every record gains a third label, 'defective', from
 * that file; data.csv's records keep their names, two labels, splits (the
 * folds are assigned on crack/inactive alone) and pixels; the negatives get
 * theirs too. */
static void test_aux_labels_join_after_the_split(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-aux");
    char *out0 = lm_path_join(dir, "plain"), *out1 = lm_path_join(dir, "aux");
    char *dcsv = lm_path_join(data, "data.csv"), *lcsv = lm_path_join(data, "labels.csv");
    ingest_result r0, r1;
    ingest_folds(out0, NULL, 0, &r0, NULL);
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = dcsv, o.out = out1, o.size = 8, o.folds = 5, o.fold = 2, o.seed = 7;
    o.aux = lcsv, o.negatives = lcsv;
    logbuf lb = {0};
    o.user = &lb, o.log = log_cb;
    lm_err e = {0};
    if (ingest_run(&o, &r1, &e)) fail_msg("%s", e.msg);
    assert_int_equal(r1.aux, 1);
    assert_int_equal(r1.nlabels, 3);
    assert_true(r1.negatives > 0);
    assert_int_equal(r1.val, r0.val);
    if (!strstr(lb.text, "aux: 'defective' from "))
        fail_msg("no aux line in the log:\n%s", lb.text);

    lm_dataset *d0, *d1;
    assert_int_equal(lm_dataset_open(out0, &d0, &e), 0);
    assert_int_equal(lm_dataset_open(out1, &d1, &e), 0);
    const lm_dataset_info *i1 = lm_dataset_get_info(d1);
    assert_int_equal(i1->nlabels, 3);
    assert_string_equal(i1->labels[0], "crack");
    assert_string_equal(i1->labels[1], "inactive");
    assert_string_equal(i1->labels[2], "defective");
    size_t n0 = lm_dataset_count(d0), ones = 0, zeros = 0;
    assert_int_equal(lm_dataset_count(d1), n0 + r1.negatives);
    for (size_t i = 0; i < lm_dataset_count(d1); i++) {
        lm_record a, b;
        assert_int_equal(lm_dataset_get(d1, i, &b), 0);
        assert_int_equal(b.nlabels, 3);
        if (i < n0) {
            assert_int_equal(lm_dataset_get(d0, i, &a), 0);
            assert_string_equal(a.name, b.name);
            assert_int_equal(a.split, b.split);
            assert_memory_equal(a.labels, b.labels, 2 * sizeof(float));
            assert_memory_equal(a.pixels, b.pixels, 8 * 8);
        } else {
            assert_int_equal(b.split, LM_SPLIT_TRAIN);
        }
        int want = expected_defective(b.name);
        if (want < 0 || b.labels[2] != (float)want)
            fail_msg("%s: defective %g, labels.csv says %d", b.name, (double)b.labels[2], want);
        ones += want == 1, zeros += want == 0;
    }
    assert_true(ones > 0 && zeros > 0); /* the fixture has both */
    assert_string_equal(cJSON_GetObjectItem(lm_dataset_schema(d1), "aux")->valuestring, lcsv);
    lm_dataset_close(d0);
    lm_dataset_close(d1);
    free(dcsv);
    free(lcsv);
    free(out0);
    free(out1);
    fx_rmtree(dir);
}

/* An aux file that is missing, lacks an image to ingest or repeats one of
 * csv's label names fails naming it, leaving no dataset; it joins the key. */
static void test_aux_errors_and_key(void **s) {
    (void)s;
    char *dir = make_root();
    char *csv = fx_write_text(dir, "x.csv", "filename;crack\nimg/a.png;0\nimg/b.png;1\nimg/d.png;0\n");
    char *out = lm_path_join(dir, "dataset");
    char *dm = lm_path_join(out, "data.mdb");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.out = out, o.size = 8, o.val = 0.34;

    char *missing = lm_path_join(dir, "no-such-aux.txt");
    o.aux = missing;
    lm_err e = {0};
    assert_int_equal(ingest_run(&o, NULL, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "aux: "));
    assert_non_null(strstr(e.msg, missing));
    assert_false(lm_exists(dm));

    char *part = fx_write_text(dir, "part.txt", "img/a.png 1.0 mono\nimg/zz.png 0.0 poly\n");
    o.aux = part;
    lm_err e2 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e2), LUMEN_EDATA);
    if (!strstr(e2.msg, "aux: 2 of the 3 images to ingest are not in ") || !strstr(e2.msg, "part.txt") ||
        !strstr(e2.msg, "(first: img/"))
        fail_msg("unexpected message: %s", e2.msg);
    assert_false(lm_exists(dm));

    char *clash = fx_write_text(dir, "clash.csv", "filename;crack\nimg/a.png;1\n");
    o.aux = clash;
    lm_err e3 = {0};
    assert_int_equal(ingest_run(&o, NULL, &e3), LUMEN_EDATA);
    assert_non_null(strstr(e3.msg, "label 'crack' is one of"));
    assert_false(lm_exists(dm));

    /* a CSV aux file with two labels of its own */
    char *two = fx_write_text(dir, "two.csv",
                              "filename;dark;finger\nimg/d.png;1;0\nimg/b.png;0;1\nimg/a.png;1;1\n");
    o.aux = two;
    ingest_result r;
    lm_err e4 = {0};
    if (ingest_run(&o, &r, &e4)) fail_msg("%s", e4.msg);
    assert_int_equal(r.nlabels, 3);
    lm_dataset *d;
    assert_int_equal(lm_dataset_open(out, &d, &e4), 0);
    for (size_t i = 0; i < lm_dataset_count(d); i++) {
        lm_record b;
        assert_int_equal(lm_dataset_get(d, i, &b), 0);
        float want[3][3] = {{0, 1, 1}, {1, 0, 1}, {0, 1, 0}}; /* a, b, d */
        int row = b.name[4] == 'a' ? 0 : b.name[4] == 'b' ? 1 : 2;
        assert_memory_equal(b.labels, want[row], sizeof want[row]);
    }
    lm_dataset_close(d);

    o.aux = NULL;
    uint64_t k0 = key_of(&o);
    o.aux = "";
    assert_true(key_of(&o) == k0);
    o.aux = two;
    uint64_t k1 = key_of(&o);
    assert_true(k1 != k0);
    free(fx_write_text(dir, "two.csv", "filename;dark;finger\nimg/d.png;1;1\nimg/b.png;0;1\nimg/a.png;1;1\n"));
    assert_true(key_of(&o) != k1);
    free(missing);
    free(part);
    free(clash);
    free(two);
    free(dm);
    free(out);
    free(csv);
    fx_rmtree(dir);
}

/* ingest's high-pass channel (pixfilter.h): each record holds the plain
 * ingest's gray plane unchanged, then the filter of it; the schema records
 * the filter and 2 channels; the split is the same.  The plugin refuses a
 * gain without a sigma and a sigma out of range at check(), naming them. */
static void test_highpass_channel(void **s) {
    (void)s;
    char *dir = fx_tmpdir("ingest-hp");
    char *out0 = lm_path_join(dir, "plain"), *out1 = lm_path_join(dir, "hp");
    char *dcsv = lm_path_join(data, "data.csv");
    ingest_result r0, r1;
    ingest_folds(out0, NULL, 0, &r0, NULL);
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = dcsv, o.out = out1, o.size = 8, o.folds = 5, o.fold = 2, o.seed = 7;
    o.filter = (lm_pixfilter){.highpass_sigma = 1.2, .highpass_gain = 4};
    logbuf lb = {0};
    o.user = &lb, o.log = log_cb;
    lm_err e = {0};
    if (ingest_run(&o, &r1, &e)) fail_msg("%s", e.msg);
    if (!strstr(lb.text, "filter highpass(sigma 1.2, gain 4): 1 decoded channel + 1 high-pass"))
        fail_msg("no filter line in the log:\n%s", lb.text);
    lm_dataset *d0, *d1;
    assert_int_equal(lm_dataset_open(out0, &d0, &e), 0);
    assert_int_equal(lm_dataset_open(out1, &d1, &e), 0);
    assert_int_equal(lm_dataset_get_info(d1)->channels, 2);
    char *fj = cJSON_PrintUnformatted(cJSON_GetObjectItem(lm_dataset_schema(d1), "filter"));
    assert_string_equal(fj, "{\"highpass\":{\"sigma\":1.2,\"gain\":4}}");
    free(fj);
    assert_null(cJSON_GetObjectItem(lm_dataset_schema(d0), "filter"));
    assert_int_equal(lm_dataset_count(d1), lm_dataset_count(d0));
    int differs = 0;
    for (size_t i = 0; i < lm_dataset_count(d0); i++) {
        lm_record a, b;
        assert_int_equal(lm_dataset_get(d0, i, &a), 0);
        assert_int_equal(lm_dataset_get(d1, i, &b), 0);
        assert_string_equal(a.name, b.name);
        assert_int_equal(a.split, b.split);
        assert_int_equal(b.c, 2);
        assert_memory_equal(a.pixels, b.pixels, 64);
        uint8_t want[128];
        memcpy(want, a.pixels, 64);
        assert_int_equal(lm_pixfilter_apply(&o.filter, want, 1, 8, 8, &e), 0);
        assert_memory_equal(b.pixels + 64, want + 64, 64);
        for (int p = 0; p < 64; p++) differs |= b.pixels[64 + p] != 128;
    }
    assert_true(differs);
    lm_dataset_close(d0);
    lm_dataset_close(d1);

    /* a bad filter is refused before anything is written */
    char *out2 = lm_path_join(dir, "bad");
    o.out = out2, o.filter.highpass_sigma = 0.1;
    memset(&e, 0, sizeof e);
    assert_int_equal(ingest_run(&o, NULL, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "highpass: sigma must be"));
    struct stat st;
    assert_int_not_equal(stat(out2, &st), 0);

    /* check(): {sigma, gain, the message that must come (NULL: passes)} */
    const char *cases[][3] = {{NULL, "3", "highpass.gain: set without highpass.sigma"},
                              {"0.1", NULL, "highpass.sigma = 0.1"},
                              {"2", NULL, NULL}};
    for (int c = 0; c < 3; c++) {
        fh *f = fh_new(&ingest_stage);
        fh_set(f, "csv", dcsv);
        if (cases[c][0]) fh_set(f, "highpass.sigma", cases[c][0]);
        if (cases[c][1]) fh_set(f, "highpass.gain", cases[c][1]);
        assert_int_equal(fh_check(f), cases[c][2] ? LUMEN_EINVAL : 0);
        if (cases[c][2] && !strstr(fh_fail_msg(f), cases[c][2])) fail_msg("%s", fh_fail_msg(f));
        fh_free(f);
    }
    free(out2);
    free(dcsv);
    free(out0);
    free(out1);
    fx_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elpv_slice_end_to_end),
        cmocka_unit_test(test_data_csv_resized_rgb),
        cmocka_unit_test(test_thread_count_does_not_change_output),
        cmocka_unit_test(test_bad_input_fails_naming_lines),
        cmocka_unit_test(test_skip_mode_skips),
        cmocka_unit_test(test_skip_mode_counts_all_rows),
        cmocka_unit_test(test_missing_csv_and_bad_opts),
        cmocka_unit_test(test_key_tracks_inputs),
        cmocka_unit_test(test_plugin_wrapper),
        cmocka_unit_test(test_plugin_key_follows_effective_seed),
        cmocka_unit_test(test_exclude_drops_listed_rows),
        cmocka_unit_test(test_exclude_bad_file_and_everything_excluded),
        cmocka_unit_test(test_exclude_joins_key),
        cmocka_unit_test(test_exclude_labels_minus_data),
        cmocka_unit_test(test_exclude_elpv_labels_minus_data),
        cmocka_unit_test(test_negatives_train_only),
        cmocka_unit_test(test_doubtful_negatives_leave_training),
        cmocka_unit_test(test_doubtful_errors_and_key),
        cmocka_unit_test(test_negatives_errors_and_key),
        cmocka_unit_test(test_aux_labels_join_after_the_split),
        cmocka_unit_test(test_aux_errors_and_key),
        cmocka_unit_test(test_highpass_channel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
