/* The device-backend half of nn_engine.c, without a GPU: the state hooks
 * (pull, push, grad_sumsq, optim_step) and the loading of the cuda library,
 * through tests/unit/fake_device.c -- a stand-in for liblumen_cuda.so whose
 * "device" is a second set of host arrays and whose compute is the ref
 * backend's, and which poisons the host mirrors with NaN whenever they go
 * stale.  The same sequence of calls on it and on the plain ref backend
 * must give bitwise the same numbers: a get without a pull, a set without
 * a push, a partial optimizer-state set that loses the other moment, or a
 * hook whose result is dropped all show up as NaN or a mismatch.
 * Needs a build with the cuda backend (the loader only exists there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn_engine.h"
#include "nn_rng.h"

#define N 3
#define H 20
#define W 20
#define K 2

static nn_model *model(void) {
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    c.nstages = 2;
    c.blocks[0] = 1, c.blocks[1] = 1;
    c.widths[0] = 4, c.widths[1] = 8;
    c.stem_width = 4;
    c.num_classes = K;
    c.dropout = 0.25f;
    nn_model *m = NULL;
    lm_err e = {0};
    assert_int_equal(nn_model_create(&c, &m, &e), 0);
    return m;
}

static int use_fake(void) {
    if (!nn_engine_cuda_built()) {
        print_message("SKIPPED: cuda backend not built: nn_engine.c has no library loader\n");
        return 0;
    }
    const char *b = getenv("LUMEN_BUILD");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/libfake_device.so", b && *b ? b : "build");
    if (access(path, R_OK) != 0) fail_msg("%s missing (make tests builds it)", path);
    setenv("LUMEN_CUDA_BACKEND", path, 1);
    return 1;
}

static void same(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("%s[%zu]: fake device %.9g, ref %.9g", what, i, (double)a[i], (double)b[i]);
}

static void test_hooks_match_ref(void **st) {
    (void)st;
    if (!use_fake()) skip();
    nn_model *m = model();
    nn_engine_opts o = {.batch = N, .channels = 1, .height = H, .width = W, .threads = 1, .seed = 11};
    nn_engine *d = NULL, *r = NULL;
    lm_err e = {0};
    if (nn_engine_create("cuda", m, &o, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(nn_engine_create("ref", m, &o, &r, &e), 0);
    assert_string_equal(nn_engine_backend(d), "fake-device");
    size_t np = m->nparams, nb = m->nbuffers;
    float x[N * H * W], y[N * K] = {1, 0, 0, 1, 1, 1}, pw[K] = {2.0f, 0.5f};
    nn_rng rng;
    nn_rng_seed(&rng, 3);
    for (int i = 0; i < N * H * W; i++) x[i] = (float)nn_rng_normal(&rng);
    float *a = malloc(4 * np), *b = malloc(4 * np), *a2 = malloc(4 * np), *b2 = malloc(4 * np);
    float *ab = malloc(4 * nb), *bb = malloc(4 * nb);
    int64_t ca[16], cb[16], sa, sb;
    nn_loss_cfg lc = {.pos_weight = pw, .label_smoothing = 0.05f};
    nn_optim_cfg opts[3] = {
        {.kind = NN_OPT_SGD, .lr = 0.05f, .momentum = 0.9f, .nesterov = 1, .weight_decay = 1e-3f},
        {.kind = NN_OPT_ADAMW, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.01f},
        {.kind = NN_OPT_ADAM, .lr = 1e-3f, .beta1 = 0.8f, .beta2 = 0.9f, .eps = 1e-8f},
    };
    for (int s = 0; s < 6; s++) {
        float la, lb, lga[N * K], lgb[N * K];
        assert_int_equal(nn_engine_train_step(d, x, y, N, &lc, &la, lga, &e), 0);
        assert_int_equal(nn_engine_train_step(r, x, y, N, &lc, &lb, lgb, &e), 0);
        same("loss", &la, &lb, 1);
        same("logits", lga, lgb, N * K);
        double na, nb2;
        assert_int_equal(nn_engine_grad_norm(d, &na, &e), 0);
        assert_int_equal(nn_engine_grad_norm(r, &nb2, &e), 0);
        assert_true(na == nb2);
        assert_int_equal(nn_engine_get_grads(d, a, &e), 0);
        assert_int_equal(nn_engine_get_grads(r, b, &e), 0);
        same("grads", a, b, np);
        /* the trainer's per-step snapshot of the BN statistics */
        assert_int_equal(nn_engine_get_state(d, NULL, ab, ca, &e), 0);
        assert_int_equal(nn_engine_get_state(r, NULL, bb, cb, &e), 0);
        same("buffers", ab, bb, nb);
        assert_memory_equal(ca, cb, sizeof(int64_t) * m->ncounters);
        const nn_optim_cfg *oc = &opts[s / 2];
        float scale = na > 1 ? (float)(1 / na) : 1.0f;
        assert_int_equal(nn_engine_optim_step(d, oc, scale, &e), 0);
        assert_int_equal(nn_engine_optim_step(r, oc, scale, &e), 0);
        if (s == 1 || s == 3) { /* switching optimizers: both start their moments afresh */
            assert_int_equal(nn_engine_set_optim_state(d, NULL, NULL, 0, &e), 0);
            assert_int_equal(nn_engine_set_optim_state(r, NULL, NULL, 0, &e), 0);
            memset(a, 0, 4 * np);
            assert_int_equal(nn_engine_set_optim_state(d, a, a, 0, &e), 0);
            assert_int_equal(nn_engine_set_optim_state(r, a, a, 0, &e), 0);
        }
    }
    /* state out: params, buffers, counters, moments */
    assert_int_equal(nn_engine_get_state(d, a, ab, ca, &e), 0);
    assert_int_equal(nn_engine_get_state(r, b, bb, cb, &e), 0);
    same("params", a, b, np);
    same("buffers", ab, bb, nb);
    assert_int_equal(nn_engine_get_optim_state(d, a, a2, &sa, &e), 0);
    assert_int_equal(nn_engine_get_optim_state(r, b, b2, &sb, &e), 0);
    assert_int_equal(sa, sb);
    same("m1", a, b, np);
    same("m2", a2, b2, np);
    /* a partial optimizer-state set keeps the other moment */
    for (size_t i = 0; i < np; i++) b[i] = (float)i * 1e-6f;
    assert_int_equal(nn_engine_set_optim_state(d, b, NULL, 7, &e), 0);
    assert_int_equal(nn_engine_get_optim_state(d, a, a2, &sa, &e), 0);
    assert_int_equal(sa, 7);
    same("m1 after set", a, b, np);
    same("m2 kept", a2, b2, np);
    /* state in: new params and buffers reach the device */
    assert_int_equal(nn_engine_get_state(r, b, bb, cb, &e), 0);
    for (size_t i = 0; i < np; i++) b[i] *= 0.5f;
    assert_int_equal(nn_engine_set_state(d, b, bb, cb, &e), 0);
    assert_int_equal(nn_engine_set_state(r, b, bb, cb, &e), 0);
    float pa[N * K], pb[N * K];
    assert_int_equal(nn_engine_predict(d, x, N, pa, &e), 0);
    assert_int_equal(nn_engine_predict(r, x, N, pb, &e), 0);
    same("predict after set_state", pa, pb, N * K);
    assert_int_equal(nn_engine_forward_eval(d, x, N, pa, &e), 0);
    same("forward_eval", pa, pb, N * K);
    /* buffers alone (the trainer's undo of a skipped step) */
    for (size_t i = 0; i < nb; i++) bb[i] += 0.25f;
    assert_int_equal(nn_engine_set_state(d, NULL, bb, NULL, &e), 0);
    assert_int_equal(nn_engine_set_state(r, NULL, bb, NULL, &e), 0);
    assert_int_equal(nn_engine_predict(d, x, N, pa, &e), 0);
    assert_int_equal(nn_engine_predict(r, x, N, pb, &e), 0);
    same("predict after set buffers", pa, pb, N * K);
    /* a failing optimizer hook leaves the step count as it was */
    int64_t before;
    assert_int_equal(nn_engine_get_optim_state(d, NULL, NULL, &before, &e), 0);
    nn_optim_cfg bad = opts[0];
    bad.lr = 12345.0f;
    memset(&e, 0, sizeof e);
    assert_int_equal(nn_engine_optim_step(d, &bad, 1.0f, &e), LUMEN_ERR);
    assert_non_null(strstr(e.msg, "refused"));
    assert_int_equal(nn_engine_get_optim_state(d, NULL, NULL, &sa, &e), 0);
    assert_int_equal(sa, before);
    free(a), free(b), free(a2), free(b2), free(ab), free(bb);
    nn_engine_free(d);
    nn_engine_free(r);
    nn_model_free(m);
    unsetenv("LUMEN_CUDA_BACKEND");
}

/* auto takes a loadable device library and says so */
static void test_auto_takes_the_library(void **st) {
    (void)st;
    if (!use_fake()) skip();
    nn_model *m = model();
    nn_engine_opts o = {.batch = 2, .channels = 1, .height = H, .width = W, .threads = 1, .seed = 1};
    nn_engine *d = NULL;
    lm_err e = {0};
    assert_int_equal(nn_engine_create("auto", m, &o, &d, &e), 0);
    assert_string_equal(nn_engine_backend(d), "fake-device");
    assert_string_equal(nn_engine_note(d), "auto: fake device (test stand-in for the cuda library)");
    nn_engine_free(d);
    nn_model_free(m);
    unsetenv("LUMEN_CUDA_BACKEND");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_match_ref),
        cmocka_unit_test(test_auto_takes_the_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
