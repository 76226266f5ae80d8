/* Backend selection around the cuda backend, on whatever machine runs it:
 *   - not built: "cuda" is LUMEN_ENOTFOUND saying so, "auto" is the cpu
 *   - built, no usable GPU (no driver, no device): "cuda" is
 *     LUMEN_ENOTFOUND "no usable GPU: <reason>", "auto" runs on the cpu and
 *     its note says why
 *   - built, GPU usable: "auto" is cuda and its note names the GPU
 * plus the argument checks of the cuda options (precision, gpu), which
 * every build makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_engine.h"

static nn_model *small_model(void) {
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    c.nstages = 1;
    c.blocks[0] = 1;
    c.widths[0] = 8;
    c.stem_width = 8;
    nn_model *m = NULL;
    lm_err e = {0};
    assert_int_equal(nn_model_create(&c, &m, &e), 0);
    return m;
}

static const nn_engine_opts OPTS = {.batch = 2, .channels = 1, .height = 24, .width = 24,
                                    .threads = 1, .seed = 1};

static void test_cuda_and_auto(void **st) {
    (void)st;
    nn_model *m = small_model();
    nn_engine *e = NULL;
    lm_err err = {0};
    int rc = nn_engine_create("cuda", m, &OPTS, &e, &err);
    nn_engine *a = NULL;
    lm_err aerr = {0};
    assert_int_equal(nn_engine_create("auto", m, &OPTS, &a, &aerr), 0);
    const char *note = nn_engine_note(a);
    print_message("cuda: %s; auto: %s (%s)\n", rc ? err.msg : "usable", nn_engine_backend(a), note);
    if (!nn_engine_cuda_built()) {
        assert_int_equal(rc, LUMEN_ENOTFOUND);
        assert_non_null(strstr(err.msg, "not built"));
        assert_string_equal(nn_engine_backend(a), "cpu");
    } else if (rc) {
        assert_int_equal(rc, LUMEN_ENOTFOUND);
        assert_null(e);
        assert_non_null(strstr(err.msg, "no usable GPU: "));
        assert_string_equal(nn_engine_backend(a), "cpu");
        assert_true(strncmp(note, "auto: ", 6) == 0);
        assert_non_null(strstr(note, "no usable GPU: "));
        assert_non_null(strstr(note, "; using cpu"));
    } else {
        assert_string_equal(nn_engine_backend(e), "cuda");
        assert_string_equal(nn_engine_backend(a), "cuda");
        assert_true(strncmp(note, "auto: cuda: GPU ", 16) == 0);
    }
    /* whatever it chose, the engine works */
    float x[2 * 24 * 24] = {0}, y[4] = {1, 0, 0, 1}, loss = -1, logits[4];
    x[5] = 1;
    assert_int_equal(nn_engine_train_step(a, x, y, 2, NULL, &loss, logits, &aerr), 0);
    assert_true(loss > 0);
    nn_engine_free(e);
    nn_engine_free(a);
    nn_model_free(m);
}

static void test_cuda_options_checked(void **st) {
    (void)st;
    nn_model *m = small_model();
    nn_engine *e = NULL;
    lm_err err = {0};
    nn_engine_opts o = OPTS;
    o.precision = "fp16";
    assert_int_equal(nn_engine_create("auto", m, &o, &e, &err), LUMEN_EINVAL);
    assert_non_null(strstr(err.msg, "engine.precision"));
    assert_null(e);
    o = OPTS;
    o.gpu = -1;
    memset(&err, 0, sizeof err);
    assert_int_equal(nn_engine_create("cpu", m, &o, &e, &err), LUMEN_EINVAL);
    assert_non_null(strstr(err.msg, "engine.gpu"));
    /* a GPU index past the last device is not usable */
    o = OPTS;
    o.gpu = 999;
    memset(&err, 0, sizeof err);
    int rc = nn_engine_create("cuda", m, &o, &e, &err);
    assert_int_equal(rc, LUMEN_ENOTFOUND);
    if (nn_engine_cuda_built()) assert_non_null(strstr(err.msg, "no usable GPU"));
    /* the cpu ignores the cuda options */
    o.precision = "bf16";
    memset(&err, 0, sizeof err);
    assert_int_equal(nn_engine_create("cpu", m, &o, &e, &err), 0);
    assert_string_equal(nn_engine_note(e), "");
    nn_engine_free(e);
    nn_model_free(m);
}

/* The backend is a library loaded on demand: a missing or foreign one is
 * "no usable GPU" too (auto falls back), never a crash. */
static void test_cuda_library_loading(void **st) {
    (void)st;
    if (!nn_engine_cuda_built()) {
        print_message("SKIPPED: cuda backend not built (no nvcc/cudnn.h at build time)\n");
        skip();
    }
    nn_model *m = small_model();
    const char *build = getenv("LUMEN_BUILD");
    char foreign[1024];
    snprintf(foreign, sizeof foreign, "%s/tests/plugins/counter.so", build && *build ? build : "build");
    const char *paths[2] = {"/nonexistent/liblumen_cuda.so", foreign};
    const char *want[2] = {"cannot load", "is not this lumen's cuda backend"};
    for (int k = 0; k < 2; k++) {
        setenv("LUMEN_CUDA_BACKEND", paths[k], 1);
        nn_engine *e = NULL;
        lm_err err = {0};
        assert_int_equal(nn_engine_create("cuda", m, &OPTS, &e, &err), LUMEN_ENOTFOUND);
        print_message("%s\n", err.msg);
        assert_non_null(strstr(err.msg, "no usable GPU"));
        assert_non_null(strstr(err.msg, want[k]));
        memset(&err, 0, sizeof err);
        assert_int_equal(nn_engine_create("auto", m, &OPTS, &e, &err), 0);
        assert_string_equal(nn_engine_backend(e), "cpu");
        assert_non_null(strstr(nn_engine_note(e), want[k]));
        nn_engine_free(e);
    }
    unsetenv("LUMEN_CUDA_BACKEND");
    nn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_and_auto),
        cmocka_unit_test(test_cuda_options_checked),
        cmocka_unit_test(test_cuda_library_loading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
