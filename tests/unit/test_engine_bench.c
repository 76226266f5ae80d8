/* `runner bench` (runner/cmd_bench.c) on a tiny model: the per-layer table
 * and the closing JSON line are printed with every key; bad arguments give
 * exit status 2 and a message naming the option or key.  (No timing is
 * asserted: speed is measured by the benchmarks.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd_bench.h"
#include "lm_util.h"

/* Runs rn_cmd_bench with stdout and stderr captured into *out / *errs. */
static int run_bench(char **argv, int argc, char **out, char **errs) {
    char o[] = "/tmp/lumen-bench-out-XXXXXX", e[] = "/tmp/lumen-bench-err-XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    assert_true(fo >= 0 && fe >= 0);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = rn_cmd_bench(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    lm_err err = {0};
    assert_int_equal(lm_read_file(o, out, NULL, &err), 0);
    assert_int_equal(lm_read_file(e, errs, NULL, &err), 0);
    unlink(o);
    unlink(e);
    return rc;
}

static void test_bench_prints_layers_and_json(void **state) {
    (void)state;
    char *argv[] = {"bench", "--set", "model.widths={8,16,32,64}", "--size", "32", "--batch", "2",
                    "--steps", "1", "--warmup", "0", "--threads", "1", "--channels", "3"};
    char *out, *errs;
    assert_int_equal(run_bench(argv, (int)(sizeof argv / sizeof *argv), &out, &errs), 0);
    assert_non_null(strstr(out, "layer1.0.conv1"));
    assert_non_null(strstr(out, "total (medians)"));
    /* the predict table: the block's convs (Winograd by default) */
    const char *inf = strstr(out, "layer (predict)");
    assert_non_null(inf);
    assert_non_null(strstr(inf, "layer1.0.conv2"));
    assert_non_null(strstr(inf, "wino"));
    const char *last = strrchr(out, '{');
    assert_non_null(last);
    cJSON *j = cJSON_Parse(last);
    assert_non_null(j);
    const char *keys[] = {"train_img_s", "infer_img_s", "train_gflops", "infer_gflops",
                          "train_ms_step", "optim_ms", "infer_ms_batch", "gflop_per_train_img"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) fail_msg("JSON key %s missing or not > 0", keys[i]);
    }
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "channels")->valueint, 3);
    cJSON_Delete(j);
    free(out);
    free(errs);
}

/* --no-train: predict only (its table and a positive infer_img_s; train_*
 * fields 0); --infer-conv direct: no Winograd layer in the table */
static void test_bench_predict_only(void **state) {
    (void)state;
    char *argv[] = {"bench", "--set", "model.blocks={1,1}", "--set", "model.widths={8,16}",
                    "--size", "24", "--batch", "2", "--steps", "1", "--warmup", "0",
                    "--threads", "1", "--no-train", "--infer-conv", "direct"};
    char *out, *errs;
    assert_int_equal(run_bench(argv, (int)(sizeof argv / sizeof *argv), &out, &errs), 0);
    assert_non_null(strstr(out, "layer (predict)"));
    assert_null(strstr(out, "bwd ms"));
    assert_null(strstr(out, "wino"));
    const char *last = strrchr(out, '{');
    assert_non_null(last);
    cJSON *j = cJSON_Parse(last);
    assert_non_null(j);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "infer_img_s")->valuedouble > 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "train_img_s")->valuedouble == 0);
    cJSON_Delete(j);
    free(out);
    free(errs);
}

static void test_bench_bad_arguments(void **state) {
    (void)state;
    char *out, *errs;
    char *a1[] = {"bench", "--sizes", "32"};
    assert_int_equal(run_bench(a1, 3, &out, &errs), 2);
    assert_non_null(strstr(errs, "--sizes"));
    free(out);
    free(errs);
    char *a2[] = {"bench", "--set", "model.stem=9x9"};
    assert_int_equal(run_bench(a2, 3, &out, &errs), 2);
    assert_non_null(strstr(errs, "model.stem"));
    free(out);
    free(errs);
    char *a3[] = {"bench", "--batch", "zero"};
    assert_int_equal(run_bench(a3, 3, &out, &errs), 2);
    assert_non_null(strstr(errs, "--batch"));
    free(out);
    free(errs);
    char *a4[] = {"bench", "--infer-conv", "fft", "--size", "16"};
    assert_int_equal(run_bench(a4, 5, &out, &errs), 2);
    assert_non_null(strstr(errs, "engine.infer_conv"));
    free(out);
    free(errs);
    char *a5[] = {"bench", "--help"}; /* help is not an error */
    assert_int_equal(run_bench(a5, 2, &out, &errs), 0);
    assert_non_null(strstr(out, "usage: runner bench"));
    free(out);
    free(errs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_prints_layers_and_json),
        cmocka_unit_test(test_bench_predict_only),
        cmocka_unit_test(test_bench_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
