/* The engine against PyTorch: tests/fixtures/golden_small.safetensors and
 * golden_small_sgd.safetensors, written by tests/torch/make_golden.py (the
 * torch twin of lumen's ResNet, computed in float64 from float32 inputs,
 * stored as F32).  For each backend ("ref": double reference layers, "cpu":
 * oneDNN) it checks the eval-mode logits (unfolded and folded inference),
 * the train-mode logits and loss, every parameter gradient, the BN running
 * stats after the step, and 3 steps of Adam and of SGD (Nesterov, weight
 * decay): the 4 losses, the params and the running stats.
 *
 * Tolerances (TOL below; the same numbers as make_golden.py's "tolerance"
 * metadata):  elementwise |lumen - ref| <= atol + rtol |ref|, or for
 * gradients max |lumen - ref| <= max_norm * max |ref| over each tensor.
 * Why these: `make_golden.py --check` runs torch itself in float32 against
 * the float64 reference with these rules; its worst ratio (error/allowed)
 * is <= 0.05 in every group, so the tolerances leave >= 10x headroom over
 * plain float32 rounding on this network while a real bug (a wrong
 * gradient, a BN variance with the wrong divisor, a missed bias correction)
 * is off by orders of magnitude more.  Counters are exact. */
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
#include "nn_engine.h"

typedef struct tol {
    const char *group;
    double atol, rtol, max_norm; /* max_norm > 0: the norm rule */
} tol;

static const tol TOL[] = {
    {"logits", 1e-4, 1e-4, 0},  {"loss", 1e-5, 1e-5, 0},  {"eval", 1e-4, 1e-4, 0},
    {"grad", 0, 0, 1e-3},       {"buffers", 1e-4, 1e-4, 0}, {"losses", 2e-4, 2e-4, 0},
    {"adam", 2e-5, 1e-4, 0},    {"sgd", 1e-4, 1e-4, 0},
};

static const tol *tol_of(const char *group) {
    for (size_t i = 0; i < sizeof TOL / sizeof TOL[0]; i++)
        if (strcmp(TOL[i].group, group) == 0) return &TOL[i];
    fail_msg("no tolerance for group %s", group);
    return NULL;
}

static char *fixture(const char *name) {
    const char *dir = getenv("LUMEN_FIXTURES");
    return lm_path_join(dir && *dir ? dir : "tests/fixtures", name);
}

/* Compares got[0..n) with the F32 tensor `name` of f under group's rule;
 * returns the worst ratio error/allowed (fails the test when > 1). */
static double expect_close(const lm_st_file *f, const char *name, const float *got, size_t n,
                           const char *group, const char *backend) {
    const tol *t = tol_of(group);
    float *ref = malloc((n ? n : 1) * sizeof *ref);
    assert_non_null(ref);
    lm_err e = {0};
    int rc = lm_st_read_f32(f, name, ref, n, &e);
    if (rc) fail_msg("%s", e.msg);
    double worst = 0, maxref = 0, maxdiff = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d == d)) d = INFINITY; /* NaN */
        maxref = fmax(maxref, fabs(ref[i]));
        if (d > maxdiff) maxdiff = d, at = i;
        if (t->max_norm == 0) {
            double r = d / (t->atol + t->rtol * fabs(ref[i]));
            if (r > worst) worst = r;
        }
    }
    if (t->max_norm > 0) worst = maxdiff / (t->max_norm * fmax(maxref, 1e-30));
    if (worst > 1.0)
        fail_msg("%s: %s: max |diff| %.3e at element %zu (lumen %.9g, torch %.9g), "
                 "%.1fx the %s tolerance",
                 backend, name, maxdiff, at, (double)got[at], (double)ref[at], worst, group);
    free(ref);
    return worst;
}

/* Mean BCE-with-logits with pos_weight, in double (for the eval loss). */
static double bce(const float *logits, const float *y, const float *pw, int n, int k) {
    double s = 0;
    for (int i = 0; i < n * k; i++) {
        double z = logits[i], t = y[i], p = pw[i % k];
        double lsp = z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z)); /* log sigmoid(z) */
        double lsn = lsp - z;                                       /* log sigmoid(-z) */
        s += -(p * t * lsp + (1 - t) * lsn);
    }
    return s / (n * k);
}

typedef struct golden {
    lm_st_file *f, *fsgd;
    nn_model *m;
    float *p0, *b0;
    int64_t *c0;
    float *x, *y, *pw;
    int n, k, c, h, w;
    cJSON *optim;
} golden;

static void golden_open(golden *g) {
    memset(g, 0, sizeof *g);
    lm_err e = {0};
    char *p = fixture("golden_small.safetensors"), *q = fixture("golden_small_sgd.safetensors");
    if (lm_st_open(p, &g->f, &e) || lm_st_open(q, &g->fsgd, &e)) fail_msg("%s", e.msg);
    free(p);
    free(q);
    assert_string_equal(lm_st_meta_get(g->f, "format"), "lumen-golden");
    nn_resnet_cfg cfg;
    if (nn_resnet_cfg_from_json(lm_st_meta_get(g->f, "model"), &cfg, &e)) fail_msg("%s", e.msg);
    assert_int_equal(nn_model_create(&cfg, &g->m, &e), 0);
    g->p0 = calloc(g->m->nparams, sizeof(float));
    g->b0 = calloc(g->m->nbuffers, sizeof(float));
    g->c0 = calloc(g->m->ncounters, sizeof(int64_t));
    lm_ckpt_report rep;
    if (lm_ckpt_load(g->f, g->m, g->p0, g->b0, g->c0, NULL, &rep, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rep.nmissing, 0);
    lm_ckpt_report_free(&rep);
    const lm_st_tensor *tx = lm_st_find(g->f, "x"), *ty = lm_st_find(g->f, "y");
    assert_non_null(tx);
    assert_non_null(ty);
    g->n = (int)tx->shape[0];
    g->c = (int)tx->shape[1];
    g->h = (int)tx->shape[2];
    g->w = (int)tx->shape[3];
    g->k = (int)ty->shape[1];
    g->x = malloc((size_t)tx->numel * sizeof(float));
    g->y = malloc((size_t)ty->numel * sizeof(float));
    g->pw = malloc((size_t)g->k * sizeof(float));
    assert_int_equal(lm_st_to_f32(g->f, tx, g->x, (size_t)tx->numel, &e), 0);
    assert_int_equal(lm_st_to_f32(g->f, ty, g->y, (size_t)ty->numel, &e), 0);
    assert_int_equal(lm_st_read_f32(g->f, "pos_weight", g->pw, (size_t)g->k, &e), 0);
    g->optim = cJSON_Parse(lm_st_meta_get(g->f, "optim"));
    assert_non_null(g->optim);
}

static void golden_close(golden *g) {
    lm_st_close(g->f);
    lm_st_close(g->fsgd);
    nn_model_free(g->m);
    free(g->p0);
    free(g->b0);
    free(g->c0);
    free(g->x);
    free(g->y);
    free(g->pw);
    cJSON_Delete(g->optim);
}

static nn_engine *engine_at_init(golden *g, const char *backend) {
    /* precision: the cuda backend without TF32 (tests/gpu/test_golden_cuda.c) */
    nn_engine_opts o = {.batch = g->n, .channels = g->c, .height = g->h, .width = g->w,
                        .threads = 0, .seed = 1, .precision = "fp32"};
    nn_engine *en;
    lm_err e = {0};
    if (nn_engine_create(backend, g->m, &o, &en, &e)) fail_msg("%s: %s", backend, e.msg);
    if (nn_engine_set_state(en, g->p0, g->b0, g->c0, &e)) fail_msg("%s", e.msg);
    return en;
}

/* Compares every param (prefix "" -> names like "adam.conv1.weight") and
 * every buffer/counter of the model under `pfx` (e.g. "train1."). */
static double expect_state(const lm_st_file *f, const nn_model *m, const char *pfx,
                         const float *params, const float *buffers, const int64_t *counters,
                         const char *param_group, const char *backend) {
    char name[160];
    lm_err e = {0};
    double worst = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        snprintf(name, sizeof name, "%s%s", pfx, t->name);
        if (t->kind == NN_T_COUNTER) {
            int64_t v;
            if (lm_st_read_i64(f, name, &v, 1, &e)) fail_msg("%s", e.msg);
            if (counters[t->offset] != v)
                fail_msg("%s: %s: %lld, torch %lld", backend, name,
                         (long long)counters[t->offset], (long long)v);
        } else if (t->kind == NN_T_BUFFER) {
            worst = fmax(worst, expect_close(f, name, buffers + t->offset, t->numel, "buffers",
                                             backend));
        } else if (params) {
            worst = fmax(worst, expect_close(f, name, params + t->offset, t->numel, param_group,
                                             backend));
        }
    }
    return worst;
}

static void check_forward_backward(const char *backend) {
    golden g;
    golden_open(&g);
    nn_engine *en = engine_at_init(&g, backend);
    lm_err e = {0};
    size_t nk = (size_t)(g.n * g.k);
    float *logits = calloc(nk, sizeof(float));

    /* eval mode: unfolded and folded inference */
    assert_int_equal(nn_engine_forward_eval(en, g.x, g.n, logits, &e), 0);
    expect_close(g.f, "eval.logits", logits, nk, "eval", backend);
    float el = (float)bce(logits, g.y, g.pw, g.n, g.k);
    expect_close(g.f, "eval.loss", &el, 1, "loss", backend);
    memset(logits, 0, nk * sizeof(float));
    assert_int_equal(nn_engine_predict(en, g.x, g.n, logits, &e), 0);
    expect_close(g.f, "eval.logits", logits, nk, "eval", backend);

    /* train mode: logits, loss, gradients, running stats */
    nn_loss_cfg lc = {.pos_weight = g.pw};
    float loss = NAN;
    if (nn_engine_train_step(en, g.x, g.y, g.n, &lc, &loss, logits, &e)) fail_msg("%s", e.msg);
    expect_close(g.f, "logits", logits, nk, "logits", backend);
    expect_close(g.f, "loss", &loss, 1, "loss", backend);
    float *grads = calloc(g.m->nparams, sizeof(float));
    float *bufs = calloc(g.m->nbuffers, sizeof(float));
    int64_t *cnt = calloc(g.m->ncounters, sizeof(int64_t));
    assert_int_equal(nn_engine_get_grads(en, grads, &e), 0);
    double worst = 0;
    char name[160];
    for (int i = 0; i < g.m->ntensors; i++) {
        const nn_tensor *t = &g.m->tensors[i];
        if (t->kind != NN_T_PARAM) continue;
        snprintf(name, sizeof name, "grad.%s", t->name);
        worst = fmax(worst, expect_close(g.f, name, grads + t->offset, t->numel, "grad", backend));
    }
    print_message("%s: worst gradient error %.3f of the tolerance\n", backend, worst);
    assert_int_equal(nn_engine_get_state(en, NULL, bufs, cnt, &e), 0);
    expect_state(g.f, g.m, "train1.", NULL, bufs, cnt, NULL, backend);
    free(grads);
    free(bufs);
    free(cnt);
    free(logits);
    nn_engine_free(en);
    golden_close(&g);
}

static void check_optimizer(const char *backend, const char *kind) {
    golden g;
    golden_open(&g);
    const lm_st_file *f = strcmp(kind, "sgd") == 0 ? g.fsgd : g.f;
    const cJSON *hp = cJSON_GetObjectItemCaseSensitive(g.optim, kind);
    assert_non_null(hp);
#define HP(k) (cJSON_GetObjectItemCaseSensitive(hp, k)->valuedouble)
    nn_optim_cfg oc = {0};
    oc.lr = (float)HP("lr");
    oc.weight_decay = (float)HP("weight_decay");
    if (strcmp(kind, "adam") == 0) {
        oc.kind = NN_OPT_ADAM;
        oc.beta1 = (float)HP("beta1");
        oc.beta2 = (float)HP("beta2");
        oc.eps = (float)HP("eps");
    } else {
        oc.kind = NN_OPT_SGD;
        oc.momentum = (float)HP("momentum");
        oc.dampening = (float)HP("dampening");
        oc.nesterov = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hp, "nesterov"));
    }
    int steps = (int)HP("steps");
#undef HP
    nn_engine *en = engine_at_init(&g, backend);
    lm_err e = {0};
    nn_loss_cfg lc = {.pos_weight = g.pw};
    float *losses = calloc((size_t)steps + 1, sizeof(float));
    for (int s = 0; s < steps; s++) {
        if (nn_engine_train_step(en, g.x, g.y, g.n, &lc, &losses[s], NULL, &e) ||
            nn_engine_optim_step(en, &oc, 1.0f, &e))
            fail_msg("%s", e.msg);
    }
    float *params = calloc(g.m->nparams, sizeof(float));
    float *bufs = calloc(g.m->nbuffers, sizeof(float));
    int64_t *cnt = calloc(g.m->ncounters, sizeof(int64_t));
    assert_int_equal(nn_engine_get_state(en, params, bufs, cnt, &e), 0);
    int64_t t = -1;
    assert_int_equal(nn_engine_get_optim_state(en, NULL, NULL, &t, &e), 0);
    assert_int_equal(t, steps);
    if (nn_engine_train_step(en, g.x, g.y, g.n, &lc, &losses[steps], NULL, &e))
        fail_msg("%s", e.msg);
    char name[64];
    snprintf(name, sizeof name, "%s.losses", kind);
    double wl = expect_close(f, name, losses, (size_t)steps + 1, "losses", backend);
    snprintf(name, sizeof name, "%s.", kind);
    double ws = expect_state(f, g.m, name, params, bufs, cnt, kind, backend);
    print_message("%s %s: worst error %.3f (losses), %.3f (params, stats) of the tolerance\n",
                  backend, kind, wl, ws);
    free(losses);
    free(params);
    free(bufs);
    free(cnt);
    nn_engine_free(en);
    golden_close(&g);
}

static void test_ref_forward_backward(void **s) { (void)s; check_forward_backward("ref"); }
static void test_cpu_forward_backward(void **s) { (void)s; check_forward_backward("cpu"); }
static void test_ref_adam(void **s) { (void)s; check_optimizer("ref", "adam"); }
static void test_cpu_adam(void **s) { (void)s; check_optimizer("cpu", "adam"); }
static void test_ref_sgd(void **s) { (void)s; check_optimizer("ref", "sgd"); }
static void test_cpu_sgd(void **s) { (void)s; check_optimizer("cpu", "sgd"); }

#ifndef GOLDEN_NO_MAIN /* tests/gpu/test_golden_cuda.c reuses this file */
int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_forward_backward), cmocka_unit_test(test_cpu_forward_backward),
        cmocka_unit_test(test_ref_adam),             cmocka_unit_test(test_cpu_adam),
        cmocka_unit_test(test_ref_sgd),              cmocka_unit_test(test_cpu_sgd),
    };
    return cmocka_run_group_tests_name("golden", tests, NULL, NULL);
}
#endif
