/* Tests of normalize-stats: against an independent computation (libpng
 * decode of the training images of a generated ELPV-shaped set, naive
 * two-pass mean/std in double), on hand-made datasets, and through the
 * plugin wrapper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fakehost.h"
#include "ingest/ingest.h"
#include "ingest_fx.h"
#include "normalize-stats/nstats.h"

static cJSON *read_json(const char *dir, const char *name) {
    char *p = lm_path_join(dir, name), *text;
    size_t len;
    lm_err e = {0};
    assert_int_equal(lm_read_file(p, &text, &len, &e), 0);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    free(text);
    free(p);
    return j;
}

static void test_against_libpng_naive(void **s) {
    (void)s;
    /* 150 generated ELPV-shaped cells: 120 training images at val 0.2 */
    char *data = fx_elpv_fixture("nstats-elpv", 150, 150);
    char *dir = fx_tmpdir("nstats");
    char *src = lm_path_join(data, "labels.csv");
    char *text = fx_head_lines(src, 150);
    char *csv = fx_write_text(dir, "labels.csv", text);
    char *dsdir = lm_path_join(dir, "dataset"), *out = lm_path_join(dir, "stats");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv, o.root = data, o.out = dsdir, o.seed = 3;
    lm_err e = {0};
    int rc = ingest_run(&o, NULL, &e);
    if (rc) fail_msg("%s", e.msg);

    nstats_opts no = {.dataset = dsdir, .out = out, .threads = 2};
    nstats_result r;
    rc = nstats_run(&no, &r, &e);
    if (rc) fail_msg("%s", e.msg);

    /* independent: which images are training images comes from the dataset,
     * their pixels from libpng */
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(dsdir, &ds, &e), 0);
    size_t nt;
    const uint32_t *tr = lm_dataset_split(ds, LM_SPLIT_TRAIN, &nt);
    assert_int_equal(nt, 120);
    double *vals = malloc(nt * 90000 * sizeof *vals);
    size_t m = 0;
    for (size_t i = 0; i < nt; i++) {
        lm_record rec;
        lm_dataset_get(ds, tr[i], &rec);
        char *img = lm_path_join(data, rec.name);
        uint32_t w, h;
        int depth, ct;
        uint8_t *px = fx_libpng_read(img, &w, &h, &depth, &ct);
        assert_non_null(px);
        assert_true(w == 300 && h == 300 && depth == 8);
        for (size_t k = 0; k < 90000; k++) vals[m++] = px[k] / 255.0;
        free(px);
        free(img);
    }
    double mean = 0, var = 0;
    for (size_t k = 0; k < m; k++) mean += vals[k];
    mean /= (double)m;
    for (size_t k = 0; k < m; k++) var += (vals[k] - mean) * (vals[k] - mean);
    var /= (double)m; /* population (ddof = 0) */
    free(vals);
    assert_float_equal(r.mean[0], mean, 1e-6);
    assert_float_equal(r.std[0], sqrt(var), 1e-6);
    assert_true(r.mean[0] > 0.05 && r.std[0] > 0.01); /* not a constant image */

    cJSON *j = read_json(out, "stats.json");
    assert_int_equal(cJSON_GetObjectItem(j, "channels")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(j, "images")->valueint, 120);
    assert_true(cJSON_GetObjectItem(j, "pixels")->valuedouble == 120.0 * 90000);
    assert_string_equal(cJSON_GetObjectItem(j, "split")->valuestring, "train");
    assert_string_equal(cJSON_GetObjectItem(j, "scale")->valuestring, "u8/255");
    assert_float_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "mean"), 0)->valuedouble, mean, 1e-6);
    assert_float_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "std"), 0)->valuedouble,
                       sqrt(var), 1e-6);
    cJSON_Delete(j);
    lm_dataset_close(ds);
    free(out);
    free(dsdir);
    free(csv);
    free(text);
    free(src);
    fx_rmtree(data);
    fx_rmtree(dir);
}

/* Two training records and one validation record of 2x2x3. */
static char *hand_dataset(int val_only) {
    char *dir = fx_tmpdir("nstats-hand");
    static const char *const names[] = {"x"};
    lm_dataset_spec spec = {.height = 2, .width = 2, .channels = 3, .nlabels = 1, .labels = names};
    lm_dataset_writer *w;
    lm_err e = {0};
    assert_int_equal(lm_dataset_create(dir, &spec, &w, &e), 0);
    /* per record: ch0 | ch1 | ch2, 4 pixels each */
    uint8_t t1[12] = {0, 255, 0, 255, 51, 51, 51, 51, 10, 20, 30, 40};
    uint8_t t2[12] = {255, 0, 255, 0, 51, 51, 51, 51, 50, 60, 70, 80};
    uint8_t v1[12];
    memset(v1, 255, sizeof v1);
    float lab = 0;
    lm_record r = {.h = 2, .w = 2, .c = 3, .nlabels = 1, .labels = &lab, .name = "a"};
    r.split = val_only ? LM_SPLIT_VAL : LM_SPLIT_TRAIN;
    r.pixels = t1;
    assert_int_equal(lm_dataset_put(w, &r, &e), 0);
    r.pixels = t2;
    assert_int_equal(lm_dataset_put(w, &r, &e), 0);
    r.split = LM_SPLIT_VAL;
    r.pixels = v1;
    assert_int_equal(lm_dataset_put(w, &r, &e), 0);
    assert_int_equal(lm_dataset_finish(w, NULL, &e), 0);
    return dir;
}

static void test_hand_computed_three_channels(void **s) {
    (void)s;
    char *dir = hand_dataset(0);
    lm_dataset *ds;
    lm_err e = {0};
    assert_int_equal(lm_dataset_open(dir, &ds, &e), 0);
    nstats_result r1, r3;
    assert_int_equal(nstats_compute(ds, 1, &r1, &e), 0);
    assert_int_equal(nstats_compute(ds, 3, &r3, &e), 0);
    assert_int_equal(r1.channels, 3);
    assert_int_equal(r1.images, 2);
    assert_int_equal(r1.pixels, 8);
    /* ch0: half 0, half 1 -> mean 0.5, std 0.5 (the val record's 255s excluded) */
    assert_float_equal(r1.mean[0], 0.5, 1e-12);
    assert_float_equal(r1.std[0], 0.5, 1e-12);
    /* ch1: constant 51/255 = 0.2 */
    assert_float_equal(r1.mean[1], 0.2, 1e-12);
    assert_float_equal(r1.std[1], 0.0, 1e-12);
    /* ch2: 10..80 step 10 -> mean 45/255, population var = 525/255^2 */
    assert_float_equal(r1.mean[2], 45.0 / 255, 1e-12);
    assert_float_equal(r1.std[2], sqrt(525.0) / 255, 1e-12);
    /* bit-identical across thread counts */
    for (int c = 0; c < 3; c++) {
        assert_memory_equal(&r1.mean[c], &r3.mean[c], sizeof(double));
        assert_memory_equal(&r1.std[c], &r3.std[c], sizeof(double));
    }
    lm_dataset_close(ds);
    fx_rmtree(dir);
}

static void test_empty_train_split_fails(void **s) {
    (void)s;
    char *dir = hand_dataset(1);
    char *out = lm_path_join(dir, "stats");
    nstats_opts o = {.dataset = dir, .out = out};
    lm_err e = {0};
    assert_int_equal(nstats_run(&o, NULL, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, dir));
    assert_non_null(strstr(e.msg, "training split is empty"));
    char *sj = lm_path_join(out, "stats.json");
    assert_false(lm_exists(sj));
    free(sj);
    /* not a dataset at all */
    o.dataset = out;
    lm_err e2 = {0};
    assert_int_equal(nstats_run(&o, NULL, &e2), LUMEN_ENOTFOUND);
    free(out);
    fx_rmtree(dir);
}

static void test_plugin_wrapper(void **s) {
    (void)s;
    char *dir = hand_dataset(0);
    char *out = lm_path_join(dir, "stats");
    fh *f = fh_new(&nstats_stage);
    assert_string_equal(nstats_stage.name, "normalize-stats");
    assert_string_equal(nstats_stage.inputs[0], "dataset");
    assert_string_equal(nstats_stage.outputs[0], "stats");
    fh_set_input(f, "dataset", dir);
    fh_set_output(f, "stats", out);
    int rc = fh_run(f);
    if (rc) fail_msg("%s", fh_fail_msg(f));
    int found;
    assert_float_equal(fh_summary(f, "stats/mean", &found), 0.5, 1e-12);
    assert_true(found);
    assert_float_equal(fh_summary(f, "stats/std_2", &found), sqrt(525.0) / 255, 1e-12);
    assert_true(found);
    assert_true(fh_log_count(f, LUMEN_LOG_INFO, "normalize-stats: 2 training images") == 1);
    cJSON *j = read_json(out, "stats.json");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "mean")), 3);
    assert_float_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "std"), 1)->valuedouble, 0, 1e-12);
    cJSON_Delete(j);
    fh_free(f);
    free(out);
    fx_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_libpng_naive),
        cmocka_unit_test(test_hand_computed_three_channels),
        cmocka_unit_test(test_empty_train_split_fails),
        cmocka_unit_test(test_plugin_wrapper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
