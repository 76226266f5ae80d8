/* Engine tests: the fast cpu backend (oneDNN, float) against the reference
 * backend (double) on whole small networks -- logits, loss, every gradient,
 * BN running statistics -- plus overfitting, folded inference, state round
 * trips and argument errors.
 *
 * Tolerances (float vs double through ~10 layers with batch norm):
 *   logits, loss      |fast - ref| <= 1e-4 * (1 + |ref|)
 *   gradients         per tensor: max |fast - ref| <= 2e-3 * max |ref| + 1e-6
 *   running stats     |fast - ref| <= 1e-4 * (1 + |ref|)
 *   folded predict vs unfolded eval: <= 1e-4 * (1 + |unfolded|)
 *   predict with Winograd 3x3 convs (F(2x2), F(4x4)) vs unfolded eval and vs
 *   predict with oneDNN's direct convs: the same 1e-4 * (1 + |ref|), and
 *   max |diff| <= 1e-4 * max |logit| (the logits here are O(0.1-1): the
 *   first bound alone would hide a relative error of 1e-3) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_engine.h"
#include "rng.h"

typedef struct netcase {
    const char *sets[6][2]; /* model key/value pairs, NULL-terminated */
    int batch, n, h, w;
    const char *layout;
    float smoothing;
    int pos_weight;
} netcase;

static nn_model *model_of(const netcase *c) {
    nn_resnet_cfg cfg;
    nn_resnet_cfg_default(&cfg);
    lm_err e = {0};
    for (int i = 0; i < 6 && c->sets[i][0]; i++)
        assert_int_equal(nn_resnet_cfg_set(&cfg, c->sets[i][0], c->sets[i][1], &e), 0);
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&cfg, &m, &e), 0);
    return m;
}

static float *randn(uint64_t seed, size_t n) {
    float *v = malloc(sizeof(float) * n);
    assert_non_null(v);
    lm_xoshiro r;
    lm_xoshiro_seed(&r, seed);
    for (size_t i = 0; i < n; i++) v[i] = (float)lm_xoshiro_normal(&r);
    return v;
}

static float *labels(uint64_t seed, int n, int K) {
    float *y = malloc(sizeof(float) * (size_t)n * K);
    lm_xoshiro r;
    lm_xoshiro_seed(&r, seed);
    for (int i = 0; i < n * K; i++) y[i] = lm_xoshiro_uniform(&r) < 0.5 ? 1.0f : 0.0f;
    return y;
}

static void close_or_fail(const char *what, float a, float b, double tol) {
    if (!(fabs((double)a - b) <= tol * (1 + fabs((double)b))))
        fail_msg("%s: fast %.8g vs ref %.8g", what, a, b);
}

/* Two train steps (the second after an SGD update) on both backends; the
 * cpu backend's training convolutions as train_conv says (NULL: direct);
 * the loss focal with focal_gamma > 0. */
static void compare_backends_loss(const netcase *c, const char *train_conv, float focal_gamma) {
    nn_model *m = model_of(c);
    int C = m->cfg.in_channels, K = m->cfg.num_classes;
    nn_engine_opts o = {.batch = c->batch, .channels = C, .height = c->h, .width = c->w,
                        .threads = 2, .seed = 77, .layout = c->layout, .train_conv = train_conv};
    nn_engine *fast, *ref;
    lm_err e = {0};
    assert_int_equal(nn_engine_create("cpu", m, &o, &fast, &e), 0);
    assert_int_equal(nn_engine_create("ref", m, &o, &ref, &e), 0);
    assert_string_equal(nn_engine_backend(fast), "cpu");
    size_t xn = (size_t)c->n * C * c->h * c->w;
    float *x = randn(1, xn), *y = labels(2, c->n, K);
    float pw[4] = {2.0f, 0.5f, 1.5f, 3.0f};
    nn_loss_cfg lc = {.pos_weight = c->pos_weight ? pw : NULL, .label_smoothing = c->smoothing,
                      .focal_gamma = focal_gamma};
    float *la = malloc(sizeof(float) * (size_t)c->n * K), *lb = malloc(sizeof(float) * (size_t)c->n * K);
    float *ga = malloc(sizeof(float) * m->nparams), *gb = malloc(sizeof(float) * m->nparams);
    float *ba = malloc(sizeof(float) * m->nbuffers), *bb = malloc(sizeof(float) * m->nbuffers);
    int64_t *ca = malloc(sizeof(int64_t) * m->ncounters), *cb = malloc(sizeof(int64_t) * m->ncounters);
    nn_optim_cfg sgd = {.kind = NN_OPT_SGD, .lr = 0.05f, .momentum = 0.9f};
    for (int step = 0; step < 2; step++) {
        float lossa, lossb;
        assert_int_equal(nn_engine_train_step(fast, x, y, c->n, &lc, &lossa, la, &e), 0);
        assert_int_equal(nn_engine_train_step(ref, x, y, c->n, &lc, &lossb, lb, &e), 0);
        close_or_fail("loss", lossa, lossb, 1e-4);
        for (int i = 0; i < c->n * K; i++) close_or_fail("logit", la[i], lb[i], 1e-4);
        nn_engine_get_grads(fast, ga, &e);
        nn_engine_get_grads(ref, gb, &e);
        for (int t = 0; t < m->ntensors; t++) {
            const nn_tensor *T = &m->tensors[t];
            if (T->kind != NN_T_PARAM) continue;
            double mx = 0, diff = 0;
            for (size_t j = 0; j < T->numel; j++) {
                mx = fmax(mx, fabs(gb[T->offset + j]));
                diff = fmax(diff, fabs((double)ga[T->offset + j] - gb[T->offset + j]));
            }
            if (diff > 2e-3 * mx + 1e-6)
                fail_msg("grad %s (step %d): max diff %.3g, max |ref| %.3g", T->name, step, diff, mx);
        }
        nn_engine_get_state(fast, NULL, ba, ca, &e);
        nn_engine_get_state(ref, NULL, bb, cb, &e);
        for (size_t j = 0; j < m->nbuffers; j++) close_or_fail("running stat", ba[j], bb[j], 1e-4);
        for (size_t j = 0; j < m->ncounters; j++) assert_int_equal(ca[j], step + 1);
        assert_int_equal(nn_engine_optim_step(fast, &sgd, 1.0f, &e), 0);
        assert_int_equal(nn_engine_optim_step(ref, &sgd, 1.0f, &e), 0);
    }
    /* eval paths: folded predict, unfolded eval, reference eval */
    float *pa = malloc(sizeof(float) * (size_t)c->n * K), *pb = malloc(sizeof(float) * (size_t)c->n * K);
    assert_int_equal(nn_engine_predict(fast, x, c->n, pa, &e), 0);
    assert_int_equal(nn_engine_forward_eval(ref, x, c->n, pb, &e), 0);
    for (int i = 0; i < c->n * K; i++) close_or_fail("eval logit", pa[i], pb[i], 1e-3);
    free(pa);
    free(pb);
    free(x);
    free(y);
    free(la);
    free(lb);
    free(ga);
    free(gb);
    free(ba);
    free(bb);
    free(ca);
    free(cb);
    nn_engine_free(fast);
    nn_engine_free(ref);
    nn_model_free(m);
}

static void compare_backends_conv(const netcase *c, const char *train_conv) {
    compare_backends_loss(c, train_conv, 0);
}
static void compare_backends(const netcase *c) { compare_backends_conv(c, NULL); }

static void test_fast_matches_reference_default_stem(void **state) {
    (void)state;
    netcase c = {{{"widths", "{8,16,32,64}"}}, 4, 4, 32, 32, NULL, 0, 0};
    compare_backends(&c);
}

static void test_fast_matches_reference_variants(void **state) {
    (void)state;
    /* 3x3 stem, 3 channels, odd size, two blocks in a stage, dropout, pos_weight,
     * label smoothing, a partial batch (n < batch); then the same with the focal loss */
    netcase a = {{{"blocks", "{2,1,1}"}, {"widths", "{8,16,24}"}, {"stem", "3x3"},
                  {"in_channels", "3"}, {"dropout", "0.3"}},
                 5, 3, 13, 11, NULL, 0.1f, 1};
    compare_backends(&a);
    compare_backends_loss(&a, NULL, 2);
    /* identity shortcut straight off the stem (stem width = widths[0]), nhwc */
    netcase b = {{{"blocks", "{1,1}"}, {"widths", "{16,16}"}, {"stem_width", "16"},
                  {"num_classes", "3"}},
                 3, 3, 19, 23, "nhwc", 0, 1};
    compare_backends(&b);
    /* same, blocked layout, 7x7 stem */
    netcase d = {{{"blocks", "{1,2}"}, {"widths", "{16,24}"}, {"stem_width", "16"}},
                 2, 2, 21, 17, "blocked", 0, 0};
    compare_backends(&d);
    /* 3x3 stem feeding an identity shortcut: BN+ReLU output with two consumers */
    netcase f = {{{"blocks", "{2}"}, {"widths", "{16}"}, {"stem", "3x3"}, {"stem_width", "16"}},
                 2, 2, 12, 10, NULL, 0, 0};
    compare_backends(&f);
    /* 7x7/2 stem without the pool feeding an identity shortcut, odd size */
    netcase g = {{{"blocks", "{1,1}"}, {"widths", "{8,16}"}, {"stem", "7x7-nopool"}, {"stem_width", "8"}},
                 3, 3, 19, 17, NULL, 0, 1};
    compare_backends(&g);
    /* the max and avg+max global pools (a 3x3 last map), blocked and nhwc,
     * with dropout after the pool */
    netcase h = {{{"blocks", "{1,1}"}, {"widths", "{16,24}"}, {"stem_width", "16"}, {"pool", "max"},
                  {"dropout", "0.2"}},
                 4, 4, 21, 17, "blocked", 0, 1};
    compare_backends(&h);
    netcase i = {{{"blocks", "{1,1}"}, {"widths", "{8,16}"}, {"stem_width", "8"}, {"pool", "avgmax"}},
                 3, 3, 19, 23, "nhwc", 0, 0};
    compare_backends(&i);
    compare_backends_loss(&i, NULL, 2);
}

static void test_overfits_sixteen_images(void **state) {
    (void)state;
    netcase c = {{{"widths", "{8,16,32,64}"}}, 16, 16, 32, 32, NULL, 0, 0};
    nn_model *m = model_of(&c);
    nn_engine_opts o = {.batch = 16, .channels = 1, .height = 32, .width = 32, .threads = 2, .seed = 5};
    nn_engine *e;
    lm_err err = {0};
    assert_int_equal(nn_engine_create("cpu", m, &o, &e, &err), 0);
    float *x = randn(3, 16 * 32 * 32), *y = labels(4, 16, 2);
    nn_optim_cfg adam = {.kind = NN_OPT_ADAM, .lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f,
                         .eps = 1e-8f};
    float loss = 1, first = 0, lg[32];
    int step;
    for (step = 0; step < 150 && loss >= 0.05f; step++) {
        assert_int_equal(nn_engine_train_step(e, x, y, 16, NULL, &loss, lg, &err), 0);
        if (step == 0) first = loss;
        double norm;
        assert_int_equal(nn_engine_grad_norm(e, &norm, &err), 0);
        assert_true(norm > 0);
        float scale = norm > 5.0 ? (float)(5.0 / norm) : 1.0f;
        assert_int_equal(nn_engine_optim_step(e, &adam, scale, &err), 0);
    }
    if (loss >= 0.05f) fail_msg("loss %.4f after %d steps (first %.4f)", loss, step, first);
    assert_true(first > 0.3f);
    /* every label is on the right side of the threshold */
    for (int i = 0; i < 32; i++) assert_int_equal(lg[i] > 0, y[i] > 0.5f);
    free(x);
    free(y);
    nn_engine_free(e);
    nn_model_free(m);
}

static void test_folded_predict_equals_unfolded_and_state_round_trip(void **state) {
    (void)state;
    netcase c = {{{"widths", "{8,16,32,64}"}}, 4, 4, 32, 32, NULL, 0, 0};
    nn_model *m = model_of(&c);
    nn_engine_opts o = {.batch = 4, .channels = 1, .height = 32, .width = 32, .threads = 2, .seed = 9};
    nn_engine *a, *b;
    lm_err e = {0};
    assert_int_equal(nn_engine_create("cpu", m, &o, &a, &e), 0);
    o.seed = 10; /* different init: set_state must overwrite it */
    assert_int_equal(nn_engine_create("cpu", m, &o, &b, &e), 0);
    float *x = randn(6, 4 * 32 * 32), *y = labels(7, 4, 2);
    nn_optim_cfg adamw = {.kind = NN_OPT_ADAMW, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f,
                          .eps = 1e-8f, .weight_decay = 1e-2f};
    for (int s = 0; s < 3; s++) { /* moves params and running stats off init */
        assert_int_equal(nn_engine_train_step(a, x, y, 4, NULL, NULL, NULL, &e), 0);
        assert_int_equal(nn_engine_optim_step(a, &adamw, 1.0f, &e), 0);
    }
    float fo[8], un[8], fo3[6];
    assert_int_equal(nn_engine_predict(a, x, 4, fo, &e), 0);
    assert_int_equal(nn_engine_forward_eval(a, x, 4, un, &e), 0);
    for (int i = 0; i < 8; i++) close_or_fail("folded vs unfolded", fo[i], un[i], 1e-4);
    /* a partial batch gives the same logits per image */
    assert_int_equal(nn_engine_predict(a, x, 3, fo3, &e), 0);
    for (int i = 0; i < 6; i++) close_or_fail("partial batch", fo3[i], fo[i], 1e-5);

    /* state round trip a -> b: same predictions, then identical training */
    float *p = malloc(sizeof(float) * m->nparams), *p2 = malloc(sizeof(float) * m->nparams);
    float *m1 = malloc(sizeof(float) * m->nparams), *m2 = malloc(sizeof(float) * m->nparams);
    float *bu = malloc(sizeof(float) * m->nbuffers);
    int64_t *cn = malloc(sizeof(int64_t) * m->ncounters), step;
    assert_int_equal(nn_engine_get_state(a, p, bu, cn, &e), 0);
    assert_int_equal(nn_engine_get_optim_state(a, m1, m2, &step, &e), 0);
    assert_int_equal(step, 3);
    assert_int_equal(cn[0], 3);
    assert_int_equal(nn_engine_set_state(b, p, bu, cn, &e), 0);
    assert_int_equal(nn_engine_set_optim_state(b, m1, m2, step, &e), 0);
    float fb[8];
    assert_int_equal(nn_engine_predict(b, x, 4, fb, &e), 0);
    assert_memory_equal(fb, fo, sizeof fb);
    for (int s = 0; s < 2; s++) {
        assert_int_equal(nn_engine_train_step(a, x, y, 4, NULL, NULL, NULL, &e), 0);
        assert_int_equal(nn_engine_optim_step(a, &adamw, 1.0f, &e), 0);
        assert_int_equal(nn_engine_train_step(b, x, y, 4, NULL, NULL, NULL, &e), 0);
        assert_int_equal(nn_engine_optim_step(b, &adamw, 1.0f, &e), 0);
    }
    nn_engine_get_state(a, p, NULL, NULL, &e);
    nn_engine_get_state(b, p2, NULL, NULL, &e);
    assert_memory_equal(p, p2, sizeof(float) * m->nparams);
    /* predict after params changed refolds (differs from before) */
    assert_int_equal(nn_engine_predict(a, x, 4, fb, &e), 0);
    assert_true(memcmp(fb, fo, sizeof fb) != 0);
    assert_int_equal(nn_engine_forward_eval(a, x, 4, un, &e), 0);
    for (int i = 0; i < 8; i++) close_or_fail("refolded", fb[i], un[i], 1e-4);
    /* a train step alone moves the running stats: the fold must follow */
    assert_int_equal(nn_engine_train_step(a, x, y, 4, NULL, NULL, NULL, &e), 0);
    assert_int_equal(nn_engine_predict(a, x, 4, fb, &e), 0);
    assert_int_equal(nn_engine_forward_eval(a, x, 4, un, &e), 0);
    for (int i = 0; i < 8; i++) close_or_fail("refolded after stats moved", fb[i], un[i], 1e-4);
    free(p);
    free(p2);
    free(m1);
    free(m2);
    free(bu);
    free(cn);
    free(x);
    free(y);
    nn_engine_free(a);
    nn_engine_free(b);
    nn_model_free(m);
}

static void test_errors_and_divergence(void **state) {
    (void)state;
    netcase c = {{{"blocks", "{1,1}"}, {"widths", "{8,16}"}}, 2, 2, 16, 16, NULL, 0, 0};
    nn_model *m = model_of(&c);
    nn_engine_opts o = {.batch = 2, .channels = 1, .height = 16, .width = 16, .threads = 1, .seed = 1};
    nn_engine *e = NULL;
    lm_err err = {0};
    assert_int_equal(nn_engine_create("tpu", m, &o, &e, &err), LUMEN_ENOTFOUND);
    assert_non_null(strstr(err.msg, "tpu"));
    assert_null(e);
    lm_err_clear(&err);
    o.channels = 3;
    assert_int_equal(nn_engine_create("cpu", m, &o, &e, &err), LUMEN_EINVAL);
    assert_non_null(strstr(err.msg, "channels"));
    lm_err_clear(&err);
    o.channels = 1;
    o.layout = "nchw";
    assert_int_equal(nn_engine_create("cpu", m, &o, &e, &err), LUMEN_EINVAL);
    assert_non_null(strstr(err.msg, "engine.layout"));
    lm_err_clear(&err);
    o.layout = NULL;
    o.infer_conv = "winograd";
    assert_int_equal(nn_engine_create("cpu", m, &o, &e, &err), LUMEN_EINVAL);
    assert_non_null(strstr(err.msg, "engine.infer_conv"));
    lm_err_clear(&err);
    o.infer_conv = NULL;
    assert_int_equal(nn_engine_create("auto", m, &o, &e, &err), 0);
    float *x = randn(8, 2 * 16 * 16), *y = labels(9, 2, 2), lg[4];
    assert_int_equal(nn_engine_train_step(e, x, y, 3, NULL, NULL, NULL, &err), LUMEN_EINVAL);
    assert_non_null(strstr(err.msg, "n must be"));
    lm_err_clear(&err);
    assert_int_equal(nn_engine_predict(e, x, 0, lg, &err), LUMEN_EINVAL);
    lm_err_clear(&err);
    /* grad norm equals the norm of the gradients handed out */
    assert_int_equal(nn_engine_train_step(e, x, y, 2, NULL, NULL, NULL, &err), 0);
    float *g = malloc(sizeof(float) * m->nparams);
    nn_engine_get_grads(e, g, &err);
    double s = 0, norm;
    for (size_t i = 0; i < m->nparams; i++) s += (double)g[i] * g[i];
    assert_int_equal(nn_engine_grad_norm(e, &norm, &err), 0);
    assert_true(fabs(norm - sqrt(s)) < 1e-6 * sqrt(s));
    /* a NaN parameter: the loss is not finite -> ENUMERIC */
    float *p = malloc(sizeof(float) * m->nparams);
    nn_engine_get_state(e, p, NULL, NULL, &err);
    p[m->tensors[nn_model_find(m, "fc.bias")].offset] = NAN;
    nn_engine_set_state(e, p, NULL, NULL, &err);
    assert_int_equal(nn_engine_train_step(e, x, y, 2, NULL, NULL, NULL, &err), LUMEN_ENUMERIC);
    assert_non_null(strstr(err.msg, "diverged"));
    lm_err_clear(&err);
    assert_int_equal(nn_engine_grad_norm(e, &norm, &err), LUMEN_ENUMERIC);
    free(g);
    free(p);
    free(x);
    free(y);
    nn_engine_free(e);
    nn_engine_free(NULL);
    nn_model_free(m);
}

/* predict with every infer_conv choice against the unfolded eval forward and
 * against predict with direct convolutions: layer widths that are not
 * multiples of 8 (padding channels), odd map sizes, identity and
 * downsample shortcuts, batch 1 and partial batches, 3 input channels. */
static void wino_case(const netcase *c) {
    nn_model *m = model_of(c);
    int C = m->cfg.in_channels, K = m->cfg.num_classes;
    const char *modes[] = {"direct", "wino2", "wino4", "auto"};
    nn_engine *en[4];
    lm_err e = {0};
    for (int k = 0; k < 4; k++) {
        nn_engine_opts o = {.batch = c->batch, .channels = C, .height = c->h, .width = c->w,
                            .threads = 2, .seed = 31, .layout = c->layout, .infer_conv = modes[k]};
        assert_int_equal(nn_engine_create("cpu", m, &o, &en[k], &e), 0);
    }
    size_t xn = (size_t)c->batch * C * c->h * c->w;
    float *x = randn(41, xn), *y = labels(42, c->batch, K);
    nn_optim_cfg adam = {.kind = NN_OPT_ADAM, .lr = 2e-2f, .beta1 = 0.9f, .beta2 = 0.999f,
                         .eps = 1e-8f};
    for (int s = 0; s < 3; s++) { /* params, running stats and logits off init */
        assert_int_equal(nn_engine_train_step(en[0], x, y, c->batch, NULL, NULL, NULL, &e), 0);
        assert_int_equal(nn_engine_optim_step(en[0], &adam, 1.0f, &e), 0);
    }
    float *p = malloc(sizeof(float) * m->nparams), *b = malloc(sizeof(float) * m->nbuffers);
    assert_int_equal(nn_engine_get_state(en[0], p, b, NULL, &e), 0);
    for (int k = 1; k < 4; k++) assert_int_equal(nn_engine_set_state(en[k], p, b, NULL, &e), 0);
    free(x);
    x = randn(43, xn);
    size_t nl = (size_t)c->batch * K;
    float *un = malloc(sizeof(float) * nl), *dir = malloc(sizeof(float) * nl),
          *pr = malloc(sizeof(float) * nl);
    for (int n = c->batch; n >= 1; n -= c->batch > 2 ? c->batch - 1 : 1) { /* full, then 1 */
        assert_int_equal(nn_engine_forward_eval(en[0], x, n, un, &e), 0);
        assert_int_equal(nn_engine_predict(en[0], x, n, dir, &e), 0);
        double mx = 0;
        for (int i = 0; i < n * K; i++) mx = fmax(mx, fabs(un[i]));
        for (int k = 0; k < 4; k++) {
            assert_int_equal(nn_engine_predict(en[k], x, n, pr, &e), 0);
            char what[64];
            for (int i = 0; i < n * K; i++) {
                snprintf(what, sizeof what, "%s vs unfolded, n %d", modes[k], n);
                close_or_fail(what, pr[i], un[i], 1e-4);
                snprintf(what, sizeof what, "%s vs direct, n %d", modes[k], n);
                close_or_fail(what, pr[i], dir[i], 1e-4);
                if (!(fabs((double)pr[i] - un[i]) <= 1e-4 * mx))
                    fail_msg("%s, n %d: logit %d: %.8g vs unfolded %.8g (max |logit| %.3g)",
                             modes[k], n, i, pr[i], un[i], mx);
            }
        }
    }
    free(p);
    free(b);
    free(x);
    free(y);
    free(un);
    free(dir);
    free(pr);
    for (int k = 0; k < 4; k++) nn_engine_free(en[k]);
    nn_model_free(m);
}

static void test_winograd_predict(void **state) {
    (void)state;
    netcase a = {{{"widths", "{16,32,64,64}"}}, 3, 3, 64, 64, NULL, 0, 0};
    wino_case(&a);
    netcase b = {{{"blocks", "{2,1}"}, {"widths", "{12,20}"}, {"stem_width", "12"},
                  {"in_channels", "3"}},
                 2, 2, 37, 29, NULL, 0, 0};
    wino_case(&b);
    netcase d = {{{"blocks", "{1,1}"}, {"widths", "{8,24}"}, {"stem", "3x3"}}, 1, 1, 9, 11,
                 "blocked", 0, 0};
    wino_case(&d);
}

/* training with Winograd forward / backward-data convolutions: the same
 * tolerances against the reference as the direct ones */
static void test_winograd_training(void **state) {
    (void)state;
    netcase a = {{{"widths", "{8,16,32,64}"}}, 4, 4, 32, 32, NULL, 0, 0};
    compare_backends_conv(&a, "wino4");
    compare_backends_conv(&a, "wino2");
    netcase b = {{{"blocks", "{2,1}"}, {"widths", "{12,20}"}, {"stem_width", "12"},
                  {"in_channels", "3"}},
                 3, 2, 19, 15, NULL, 0, 0};
    compare_backends_conv(&b, "auto");
}

/* More batch sizes than cached plans (4): eviction keeps every size right. */
static void test_many_batch_sizes(void **state) {
    (void)state;
    netcase c = {{{"blocks", "{1,1}"}, {"widths", "{8,16}"}}, 5, 5, 16, 16, NULL, 0, 0};
    nn_model *m = model_of(&c);
    nn_engine_opts o = {.batch = 5, .channels = 1, .height = 16, .width = 16, .threads = 2, .seed = 3};
    nn_engine *fast, *ref;
    lm_err e = {0};
    assert_int_equal(nn_engine_create("cpu", m, &o, &fast, &e), 0);
    assert_int_equal(nn_engine_create("ref", m, &o, &ref, &e), 0);
    float *x = randn(21, 5 * 16 * 16), *y = labels(22, 5, 2), a[10], b[10], la, lb;
    int sizes[] = {5, 1, 2, 3, 4, 2, 1, 5, 3};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int n = sizes[t];
        assert_int_equal(nn_engine_predict(fast, x, n, a, &e), 0);
        assert_int_equal(nn_engine_forward_eval(ref, x, n, b, &e), 0);
        for (int i = 0; i < 2 * n; i++) close_or_fail("predict", a[i], b[i], 1e-3);
        assert_int_equal(nn_engine_train_step(fast, x, y, n, NULL, &la, a, &e), 0);
        assert_int_equal(nn_engine_train_step(ref, x, y, n, NULL, &lb, b, &e), 0);
        close_or_fail("loss", la, lb, 1e-4);
        for (int i = 0; i < 2 * n; i++) close_or_fail("train logits", a[i], b[i], 1e-4);
    }
    free(x);
    free(y);
    nn_engine_free(fast);
    nn_engine_free(ref);
    nn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_matches_reference_default_stem),
        cmocka_unit_test(test_fast_matches_reference_variants),
        cmocka_unit_test(test_overfits_sixteen_images),
        cmocka_unit_test(test_folded_predict_equals_unfolded_and_state_round_trip),
        cmocka_unit_test(test_errors_and_divergence),
        cmocka_unit_test(test_many_batch_sizes),
        cmocka_unit_test(test_winograd_predict),
        cmocka_unit_test(test_winograd_training),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
