/*
 * test_validate_pipeline.c -- the validate stage through build/runner on a
 * tiny pipeline over a generated ELPV-shaped set (fx_elpv_fixture: 100
 * cells with data.csv, given to the runner as $LUMEN_DATA, so the test runs
 * without ../shared/data/elpv; ingest limit 64 size 32, normalize-stats,
 * train 1 epoch of a tiny ResNet, validate with tuned thresholds, then a
 * second validate with TTA on the stored -- i.e. just calibrated --
 * thresholds), and the commands on its outputs: `runner predict` decides
 * with the calibrated thresholds, `runner eval` agrees with the report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "harness.h"
#include "ingest_fx.h"
#include "lm_util.h"
#include "safetensors.h"

static const char STAGES[] =
    "    lumen.ingest { csv = lumen.data \"data.csv\", size = 32, limit = 64, split = { val = 0.5 } },\n"
    "    lumen.normalize_stats {},\n"
    "    lumen.train { model = lumen.resnet { blocks = {1,1}, widths = {8,16}, stem = \"3x3\", stem_width = 8 },\n"
    "                  epochs = 1, batch = 8 },\n"
    "    lumen.validate { thresholds = \"tune\" },\n"
    "    lumen.validate { id = \"val_tta\", thresholds = \"stored\", tta = true, checkpoint = \"best\" },\n";

static cJSON *read_json(const char *path) {
    char *text = hx_read(path);
    if (!text) fail_msg("missing %s", path);
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("%s is not JSON", path);
    free(text);
    return j;
}

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x) fail_msg("JSON has no '%s'", k);
    return x;
}

/* The thresholds stored in a checkpoint file. */
static void stored_thresholds(const char *path, float *t, int k) {
    lm_st_file *f;
    lm_err e = {0};
    if (lm_ckpt_open(path, &f, &e)) fail_msg("%s", e.msg);
    cJSON *a = cJSON_Parse(lm_st_meta_get(f, "thresholds"));
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(a), k);
    for (int j = 0; j < k; j++) t[j] = (float)cJSON_GetArrayItem(a, j)->valuedouble;
    cJSON_Delete(a);
    lm_st_close(f);
}

static void test_pipeline(void **state) {
    (void)state;
    char *data = fx_elpv_fixture("valpipe-elpv", 100, 100);
    setenv("LUMEN_DATA", data, 1); /* lumen.data "data.csv" in the run */
    char *csv = hx_join(data, "data.csv");
    char *tmp = hx_tmpdir();
    hx_write_experiment(tmp, "exp.lua", "valpipe", STAGES);
    hx_result r;
    hx_runner(&r, tmp, NULL, NULL, "exp.lua", "--threads", "2", NULL);
    hx_assert_ran(&r, "runner");
    char *rel = hx_last_line(r.out);
    char *run = hx_join(tmp, rel);
    hx_result_free(&r);

    /* the report of the first validate: the validation split, tuned */
    char *rep_path = hx_fmt("%s/validate/report/report.json", run);
    cJSON *rep = read_json(rep_path);
    int n = (int)get(rep, "n")->valuedouble;
    assert_true(n >= 24 && n <= 40); /* half of 64, stratified */
    assert_string_equal(get(get(rep, "thresholds"), "mode")->valuestring, "tune");
    const cJSON *labels = get(rep, "labels");
    assert_int_equal(cJSON_GetArraySize(labels), 2);
    assert_string_equal(cJSON_GetArrayItem(labels, 0)->valuestring, "crack");
    const cJSON *cls = get(get(rep, "chosen"), "classes");
    for (int j = 0; j < 2; j++) {
        const cJSON *c = cJSON_GetArrayItem(cls, j);
        assert_true(get(c, "tp")->valuedouble + get(c, "fp")->valuedouble + get(c, "fn")->valuedouble +
                        get(c, "tn")->valuedouble ==
                    n);
    }
    /* thresholds stored in the output model are the ones reported */
    char *ckpt = hx_fmt("%s/validate/model/best.safetensors", run);
    float t[2];
    stored_thresholds(ckpt, t, 2);
    const cJSON *vals = get(get(rep, "thresholds"), "values");
    for (int j = 0; j < 2; j++) assert_true((float)cJSON_GetArrayItem(vals, j)->valuedouble == t[j]);
    char *last = hx_fmt("%s/validate/model/last.safetensors", run);
    assert_true(hx_exists(last));

    /* the second validate read the calibrated model: stored = those */
    char *rep2_path = hx_fmt("%s/val_tta/report/report.json", run);
    cJSON *rep2 = read_json(rep2_path);
    assert_string_equal(get(get(rep2, "thresholds"), "mode")->valuestring, "stored");
    assert_true(cJSON_IsTrue(get(rep2, "tta")));
    assert_true(get(rep2, "views")->valuedouble == 8);
    vals = get(get(rep2, "thresholds"), "values");
    for (int j = 0; j < 2; j++) assert_true((float)cJSON_GetArrayItem(vals, j)->valuedouble == t[j]);

    /* metrics and summary */
    char *sum_path = hx_fmt("%s/summary.json", run);
    cJSON *sum = read_json(sum_path);
    assert_true(cJSON_IsNumber(get(sum, "val/f1_mean_tuned_cv")));
    assert_true(cJSON_IsNumber(get(sum, "val/f1_mean_tuned")));
    char *met_path = hx_fmt("%s/metrics.jsonl", run);
    char *metrics = hx_read(met_path);
    assert_non_null(metrics);
    assert_true(hx_count(metrics, "\"val/f1_crack\"") >= 2); /* train's epoch + both validates */
    assert_true(hx_count(metrics, "\"val/f1_mean_tuned_cv\"") >= 2);
    assert_true(hx_count(metrics, "\"val/threshold_inactive\"") >= 2);
    char *log_path = hx_fmt("%s/logs/validate.log", run);
    char *log = hx_read(log_path);
    assert_non_null(log);
    assert_non_null(strstr(log, "mean (macro)"));
    assert_non_null(strstr(log, "cross-fitted"));

    /* predict with the calibrated model: decisions at its thresholds */
    const char *root = data;
    char *img1 = hx_fmt("%s/images/cell0001.png", root), *img2 = hx_fmt("%s/images/cell0002.png", root);
    hx_runner(&r, tmp, NULL, NULL, "predict", ckpt, img1, img2, NULL);
    hx_assert_ran(&r, "predict");
    int rows = 0;
    for (char *line = strchr(r.out, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        float p[2];
        int d[2];
        const char *semi = strchr(line, ';');
        assert_non_null(semi);
        assert_int_equal(sscanf(semi, ";%f;%f;%d;%d", &p[0], &p[1], &d[0], &d[1]), 4);
        for (int j = 0; j < 2; j++) assert_int_equal(d[j], p[j] >= t[j]);
        rows++;
    }
    assert_int_equal(rows, 2);
    hx_result_free(&r);

    /* eval on the first 100 rows of data.csv with the stored thresholds */
    char *all = hx_read(csv), *cut = all;
    for (int i = 0; i < 101 && cut; i++) cut = strchr(cut, '\n') ? strchr(cut, '\n') + 1 : NULL;
    assert_non_null(cut);
    *cut = '\0';
    char *head = hx_join(tmp, "head.csv");
    hx_write(head, all);
    hx_runner(&r, tmp, NULL, NULL, "eval", ckpt, "--csv", head, "--root", root, NULL);
    hx_assert_ran(&r, "eval");
    cJSON *ev = cJSON_Parse(r.out);
    assert_non_null(ev);
    assert_true(get(ev, "n")->valuedouble == 100);
    vals = get(get(ev, "thresholds"), "values");
    for (int j = 0; j < 2; j++) assert_true((float)cJSON_GetArrayItem(vals, j)->valuedouble == t[j]);
    cJSON_Delete(ev);
    hx_result_free(&r);

    free(head);
    free(all);
    free(img1);
    free(img2);
    free(log);
    free(log_path);
    free(metrics);
    free(met_path);
    cJSON_Delete(sum);
    free(sum_path);
    cJSON_Delete(rep2);
    free(rep2_path);
    free(last);
    free(ckpt);
    cJSON_Delete(rep);
    free(rep_path);
    free(run);
    free(rel);
    hx_rmtree(tmp);
    free(tmp);
    free(csv);
    fx_rmtree(data);
}

static const char HP_STAGES[] =
    "    lumen.ingest { csv = lumen.data \"data.csv\", size = 32, limit = 64, split = { val = 0.5 },\n"
    "                   highpass = { sigma = 1.5, gain = 2 } },\n"
    "    lumen.normalize_stats {},\n"
    "    lumen.augment { flip = true, rotate90 = true%s },\n"
    "    lumen.train { model = lumen.resnet { blocks = {1,1}, widths = {8,16}, stem = \"3x3\", stem_width = 8 },\n"
    "                  epochs = 1, batch = 8 },\n"
    "    lumen.validate { thresholds = \"tune\" },\n";

/* ingest's high-pass channel end to end: the trained checkpoint records the
 * filter with its 2 input channels, and `runner predict` on the validation
 * images -- decoded from the PNGs and filtered by predict itself -- gives
 * validate's probabilities (computed on the pixels ingest filtered and
 * stored).  Photometric augmentation on such a dataset is refused, naming
 * the reason. */
static void test_highpass_pipeline(void **state) {
    (void)state;
    char *data = fx_elpv_fixture("valpipe-hp", 100, 100);
    setenv("LUMEN_DATA", data, 1);
    char *tmp = hx_tmpdir();
    char *stages = hx_fmt(HP_STAGES, "");
    hx_write_experiment(tmp, "hp.lua", "hp", stages);
    hx_result r;
    hx_runner(&r, tmp, NULL, NULL, "hp.lua", "--threads", "2", NULL);
    hx_assert_ran(&r, "runner (highpass)");
    char *rel = hx_last_line(r.out);
    char *run = hx_join(tmp, rel);
    hx_result_free(&r);

    char *ckpt = hx_fmt("%s/validate/model/last.safetensors", run);
    lm_st_file *f;
    lm_err e = {0};
    if (lm_ckpt_open(ckpt, &f, &e)) fail_msg("%s", e.msg);
    assert_string_equal(lm_st_meta_get(f, "input"),
                        "{\"height\":32,\"width\":32,\"channels\":2,"
                        "\"filter\":{\"highpass\":{\"sigma\":1.5,\"gain\":2}}}");
    lm_st_close(f);

    char *pred_path = hx_fmt("%s/validate/report/predictions.json", run);
    cJSON *pred = read_json(pred_path);
    const cJSON *samples = get(pred, "samples");
    int n = cJSON_GetArraySize(samples);
    assert_true(n >= 24);
    char *list = hx_fmt("filename;crack;inactive\n"), *t;
    const cJSON *smp;
    cJSON_ArrayForEach(smp, samples) {
        t = hx_fmt("%s%s;0;0\n", list, get(smp, "name")->valuestring);
        free(list);
        list = t;
    }
    char *csv = hx_join(tmp, "val.csv");
    hx_write(csv, list);
    hx_runner(&r, tmp, NULL, NULL, "predict", ckpt, "--csv", csv, "--root", data, NULL);
    hx_assert_ran(&r, "predict (highpass)");
    const char *line = strchr(r.out, '\n') + 1;
    int rows = 0;
    double worst = 0;
    cJSON_ArrayForEach(smp, samples) {
        char name[128];
        float p[2];
        assert_int_equal(sscanf(line, "%127[^;];%f;%f", name, &p[0], &p[1]), 3);
        assert_string_equal(name, get(smp, "name")->valuestring);
        for (int j = 0; j < 2; j++)
            worst = fmax(worst, fabs(p[j] - cJSON_GetArrayItem(get(smp, "p"), j)->valuedouble));
        line = strchr(line, '\n') + 1;
        rows++;
    }
    assert_int_equal(rows, n);
    if (worst > 2e-5) fail_msg("predict differs from validate by %g", worst);
    hx_result_free(&r);

    /* contrast on a high-pass dataset: refused */
    char *stages2 = hx_fmt(HP_STAGES, ", contrast = 0.2");
    hx_write_experiment(tmp, "hp2.lua", "hp2", stages2);
    hx_runner(&r, tmp, NULL, NULL, "hp2.lua", "--threads", "2", NULL);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "high-pass channel") && !strstr(r.out, "high-pass channel"))
        fail_msg("no reason given:\n%s\n%s", r.out, r.err);
    hx_result_free(&r);

    free(stages2);
    free(csv);
    free(list);
    cJSON_Delete(pred);
    free(pred_path);
    free(ckpt);
    free(run);
    free(rel);
    free(stages);
    hx_rmtree(tmp);
    free(tmp);
    fx_rmtree(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_highpass_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
