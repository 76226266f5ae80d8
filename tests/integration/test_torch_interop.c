/*
 * test_torch_interop.c -- a lumen checkpoint loaded into PyTorch gives the
 * same answers as lumen.
 *
 * Trains a tiny ResNet (the 7x7 stem, the 7x7-nopool one, the avg+max
 * global pool) for one
 * epoch through the runner (16 generated
 * ELPV-shaped cells, fx_elpv_fixture, at their native 300x300, so no
 * resampling can differ), predicts four cells
 * with `runner predict`, then runs tests/torch/check_lumen_checkpoint.py
 * (the PyTorch twin, strict state_dict load) on the same checkpoint and
 * images and compares the probabilities.
 *
 * Needs a Python with torch, numpy and safetensors: $LUMEN_TORCH_PYTHON
 * (`make test` sets it to .venv/bin/python when `make torch-venv` created
 * that venv).  Without one the test is skipped, saying so (CI installs no
 * torch); the committed golden fixture (test_golden.c) checks the numerics
 * either way.
 *
 * Tolerance: 2e-5 absolute on probabilities.  lumen predicts with batch norm
 * folded into the convolutions (float32), torch runs the unfolded network in
 * float32; the golden test bounds that difference at 1e-4 on logits.
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

#include "harness.h"
#include "ingest_fx.h"

static const char *const CELLS[] = {"images/cell0001.png", "images/cell0004.png", "images/cell0011.png",
                                    "images/cell0030.png", NULL};

/* Trains `model` (a lumen.resnet{...} expression) for one epoch and
 * compares runner predict with the PyTorch twin on four cells. */
static void twin_matches(const char *model) {
    const char *py = getenv("LUMEN_TORCH_PYTHON");
    if (!py || !*py) {
        print_message("no LUMEN_TORCH_PYTHON (make torch-venv creates .venv with torch)\n");
        skip();
    }
    {
        const char *argv[] = {py, "-c", "import torch, numpy, safetensors", NULL};
        hx_result r;
        hx_run(argv, NULL, NULL, 60, &r);
        int ok = r.exit_code == 0;
        hx_result_free(&r);
        if (!ok) {
            print_message("%s cannot import torch, numpy and safetensors (make torch-venv)\n", py);
            skip();
        }
    }
    char *data = fx_elpv_fixture("torch-elpv", 32, 32);
    char *csv = hx_fmt("%s/data.csv", data);
    char *tmp = hx_tmpdir();
    char *stages = hx_fmt(
        "lumen.ingest { csv = \"%s\", size = 300, limit = 16, split = { val = 0.25 } },\n"
        "lumen.normalize_stats {},\n"
        "lumen.train { model = %s, epochs = 1, batch = 4 },\n",
        csv, model);
    hx_write_experiment(tmp, "tiny.lua", "tiny", stages);
    hx_result r;
    hx_runner(&r, tmp, NULL, NULL, "tiny.lua", NULL);
    hx_assert_ran(&r, "training");
    char *rel = hx_last_line(r.out);
    hx_result_free(&r);
    char *ckpt = hx_fmt("%s/%s/train/model/best.safetensors", tmp, rel);
    assert_true(hx_exists(ckpt));

    /* lumen's answer */
    char *runner = hx_join(hx_build_dir(), "runner");
    const char *pargv[8] = {runner, "predict", ckpt};
    char *paths[4];
    for (int i = 0; CELLS[i]; i++) pargv[3 + i] = paths[i] = hx_fmt("%s/%s", data, CELLS[i]);
    pargv[7] = NULL;
    hx_result pr;
    hx_run(pargv, tmp, NULL, 120, &pr);
    hx_assert_ran(&pr, "predict");

    /* torch's answer */
    char *src = hx_src_dir();
    char *script = hx_fmt("%s/tests/torch/check_lumen_checkpoint.py", src);
    const char *targv[8] = {py, script, ckpt, paths[0], paths[1], paths[2], paths[3], NULL};
    hx_result tr;
    hx_run(targv, tmp, NULL, 300, &tr);
    hx_assert_ran(&tr, "check_lumen_checkpoint.py");

    /* predict: header "filename;p_crack;p_inactive;crack;inactive", then rows
     * in argument order; torch: one JSON line per input, same order */
    char *save_p = NULL, *save_t = NULL;
    char *line = strtok_r(pr.out, "\n", &save_p); /* header */
    assert_non_null(line);
    assert_non_null(strstr(line, "p_crack"));
    char *tline = strtok_r(tr.out, "\n", &save_t);
    int rows = 0;
    double worst = 0;
    while ((line = strtok_r(NULL, "\n", &save_p)) != NULL) {
        assert_non_null(tline);
        cJSON *j = cJSON_Parse(tline);
        assert_non_null(j);
        const cJSON *probs = cJSON_GetObjectItem(j, "probs");
        assert_int_equal(cJSON_GetArraySize(probs), 2);
        char *f = strchr(line, ';');
        assert_non_null(f);
        for (int k = 0; k < 2; k++) {
            double lumen = strtod(f + 1, &f);
            double torch = cJSON_GetArrayItem(probs, k)->valuedouble;
            double d = fabs(lumen - torch);
            if (d > worst) worst = d;
            if (d > 2e-5) fail_msg("row %d label %d: lumen %.9f torch %.9f", rows, k, lumen, torch);
        }
        cJSON_Delete(j);
        rows++;
        tline = strtok_r(NULL, "\n", &save_t);
    }
    assert_int_equal(rows, 4);
    printf("torch twin vs runner predict (%s): worst |dp| = %.2g over %d images\n", model, worst, rows);

    hx_result_free(&pr);
    hx_result_free(&tr);
    for (int i = 0; i < 4; i++) free(paths[i]);
    free(script);
    free(src);
    free(runner);
    free(ckpt);
    free(rel);
    free(stages);
    free(csv);
    fx_rmtree(data);
    hx_rmtree(tmp);
    free(tmp);
}

static void test_torch_twin_matches_runner_predict(void **state) {
    (void)state;
    twin_matches("lumen.resnet { widths = {8,16,32,64}, stem_width = 8 }");
}

/* the 7x7/2 stem without its max pool: conv1 feeds layer1 directly */
static void test_torch_twin_matches_nopool_stem(void **state) {
    (void)state;
    twin_matches("lumen.resnet { widths = {8,16,32,64}, stem = \"7x7-nopool\", stem_width = 8 }");
}

/* the head's global pool as the mean of the average and the maximum */
static void test_torch_twin_matches_avgmax_pool(void **state) {
    (void)state;
    twin_matches("lumen.resnet { widths = {8,16,32,64}, stem_width = 8, pool = \"avgmax\" }");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_twin_matches_runner_predict),
        cmocka_unit_test(test_torch_twin_matches_nopool_stem),
        cmocka_unit_test(test_torch_twin_matches_avgmax_pool),
    };
    return cmocka_run_group_tests_name("torch_interop", tests, NULL, NULL);
}
