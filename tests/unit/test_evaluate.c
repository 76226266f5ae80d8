/* Unit tests for stages/common/evaluate.c: alignment of probabilities,
 * targets and indices with what the engine predicts for each image alone
 * (partial last batch included); the loss against a hand computation on a
 * model whose logits are known constants; TTA = plain on D4-symmetric
 * images and = the mean over the 8 views computed independently (u8
 * nn_aug_dihedral) otherwise; dataset splits (order, names); errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_augment.h"
#include "dataset.h"
#include "evaluate.h"
#include "harness.h"
#include "nn_engine.h"
#include "rng.h"

#define C 1
#define H 12
#define W 12
#define K 2

/* ---- an in-memory source ------------------------------------------------- */

typedef struct memsrc {
    size_t nrec;
    uint8_t *pixels; /* [nrec][C][H][W] */
    float *labels;   /* [nrec][K] */
    uint32_t *idx;
    size_t nidx;
} memsrc;

static int mem_get(void *ctx, uint32_t i, const uint8_t **px, const float **lab, lm_err *err) {
    memsrc *m = ctx;
    if (i >= m->nrec) return lm_fail(err, LUMEN_EINVAL, "record %u out of range", i);
    *px = m->pixels + (size_t)i * C * H * W;
    *lab = m->labels + (size_t)i * K;
    return 0;
}

/* symmetric: every image is invariant under the 8 symmetries of the square */
static memsrc *memsrc_new(size_t nrec, int symmetric) {
    memsrc *m = calloc(1, sizeof *m);
    m->nrec = nrec;
    m->pixels = malloc(nrec * C * H * W);
    m->labels = malloc(nrec * K * sizeof(float));
    m->idx = malloc(nrec * sizeof(uint32_t));
    assert_true(m->pixels && m->labels && m->idx);
    lm_rng r;
    lm_rng_init(&r, 11, 99, 0, 0);
    for (size_t i = 0; i < nrec; i++) {
        uint8_t *p = m->pixels + i * C * H * W;
        uint8_t table[H][W];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) table[y][x] = (uint8_t)lm_rng_u64(&r);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                if (symmetric) {
                    int dy = y < H - 1 - y ? y : H - 1 - y, dx = x < W - 1 - x ? x : W - 1 - x;
                    int a = dx < dy ? dx : dy, b = dx < dy ? dy : dx;
                    p[y * W + x] = table[a][b]; /* depends on the sorted distances to the edges */
                } else {
                    p[y * W + x] = table[y][x];
                }
            }
        m->labels[i * K] = (float)(i % 2);
        m->labels[i * K + 1] = (float)((i / 2) % 2);
    }
    /* the "split": every record except 3, in a non-trivial order */
    for (size_t i = 0; i < nrec; i++)
        if (i != 3) m->idx[m->nidx++] = (uint32_t)i;
    return m;
}

static void memsrc_free(memsrc *m) {
    free(m->pixels);
    free(m->labels);
    free(m->idx);
    free(m);
}

static lm_loader_source as_source(memsrc *m) {
    lm_loader_source s = {.ctx = m, .height = H, .width = W, .channels = C, .nlabels = K,
                          .indices = m->idx, .count = m->nidx, .get = mem_get};
    return s;
}

/* ---- a tiny engine ------------------------------------------------------- */

typedef struct fixture {
    nn_model *m;
    nn_engine *e;
} fixture;

static const float MEAN[1] = {0.45f}, STD[1] = {0.2f};

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    nn_resnet_cfg cfg;
    nn_resnet_cfg_default(&cfg);
    cfg.nstages = 2;
    cfg.blocks[0] = cfg.blocks[1] = 1;
    cfg.widths[0] = 4;
    cfg.widths[1] = 8;
    cfg.stem = NN_STEM_3X3;
    cfg.stem_width = 4;
    cfg.in_channels = C;
    cfg.num_classes = K;
    lm_err e = {0};
    if (nn_model_create(&cfg, &f->m, &e)) fail_msg("%s", e.msg);
    nn_engine_opts o = {.batch = 4, .channels = C, .height = H, .width = W, .threads = 1, .seed = 5};
    if (nn_engine_create("cpu", f->m, &o, &f->e, &e)) fail_msg("%s", e.msg);
    /* perturb the BN running statistics so eval mode is not the identity */
    float *buf = malloc(sizeof(float) * f->m->nbuffers);
    nn_engine_get_state(f->e, NULL, buf, NULL, &e);
    for (size_t i = 0; i < f->m->nbuffers; i++) buf[i] += 0.05f * (float)(i % 7);
    nn_engine_set_state(f->e, NULL, buf, NULL, &e);
    free(buf);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    nn_engine_free(f->e);
    nn_model_free(f->m);
    free(f);
    return 0;
}

/* Logits of one image by itself (u8 -> normalized with nn_aug_dihedral). */
static void predict_one(fixture *f, const uint8_t *px, int view, float *logits) {
    float x[C * H * W];
    assert_int_equal(nn_aug_dihedral(px, C, H, W, view, MEAN, STD, x), 0);
    lm_err e = {0};
    if (nn_engine_predict(f->e, x, 1, logits, &e)) fail_msg("%s", e.msg);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static lm_eval_cfg base_cfg(void) {
    lm_eval_cfg c;
    lm_eval_cfg_default(&c);
    c.mean = MEAN;
    c.std = STD;
    c.batch = 4;
    c.threads = 2;
    return c;
}

/* ---- tests --------------------------------------------------------------- */

static void test_alignment_with_single_predictions(void **state) {
    fixture *f = *state;
    memsrc *m = memsrc_new(11, 0); /* 10 samples: batches of 4, 4, 2 */
    lm_loader_source src = as_source(m);
    lm_eval_cfg cfg = base_cfg();
    lm_eval_result r;
    lm_err e = {0};
    if (lm_eval_source(f->e, &src, &cfg, &r, &e)) fail_msg("%s", e.msg);
    assert_int_equal(r.n, 10);
    assert_int_equal(r.k, K);
    assert_int_equal(r.views, 1);
    assert_null(r.names);
    for (int64_t i = 0; i < r.n; i++) {
        uint32_t idx = m->idx[i];
        assert_int_equal(r.index[i], idx);
        float lg[K];
        predict_one(f, m->pixels + (size_t)idx * C * H * W, 0, lg);
        for (int c = 0; c < K; c++) {
            assert_true(r.targets[i * K + c] == m->labels[idx * K + c]);
            assert_float_equal(r.probs[i * K + c], sigmoid(lg[c]), 2e-6);
        }
    }
    /* the samples are not all alike (otherwise alignment proves nothing) */
    assert_true(fabsf(r.probs[0] - r.probs[2 * K]) > 1e-7f || fabsf(r.probs[1] - r.probs[3]) > 1e-7f);
    lm_eval_result_free(&r);
    lm_eval_result_free(&r); /* zeroed: a second free is fine */
    memsrc_free(m);
}

/* fc.weight = 0, fc.bias = (b0, b1): every logit is known; the loss is
 * computed here from the textbook formula. */
static void test_loss_by_hand(void **state) {
    fixture *f = *state;
    nn_model *mod = f->m;
    lm_err e = {0};
    float *p = malloc(sizeof(float) * mod->nparams), *saved = malloc(sizeof(float) * mod->nparams);
    nn_engine_get_state(f->e, saved, NULL, NULL, &e);
    memcpy(p, saved, sizeof(float) * mod->nparams);
    const nn_tensor *fw = &mod->tensors[nn_model_find(mod, "fc.weight")];
    const nn_tensor *fb = &mod->tensors[nn_model_find(mod, "fc.bias")];
    memset(p + fw->offset, 0, sizeof(float) * fw->numel);
    const float bias[K] = {0.5f, -1.25f};
    memcpy(p + fb->offset, bias, sizeof bias);
    nn_engine_set_state(f->e, p, NULL, NULL, &e);

    memsrc *m = memsrc_new(6, 0);
    lm_loader_source src = as_source(m);
    const float pw[K] = {3.0f, 0.5f};
    for (int tta = 0; tta <= 1; tta++) {
        for (int smooth = 0; smooth <= 1; smooth++) {
            lm_eval_cfg cfg = base_cfg();
            cfg.pos_weight = pw;
            cfg.tta = tta;
            cfg.label_smoothing = smooth ? 0.1f : 0.0f;
            lm_eval_result r;
            if (lm_eval_source(f->e, &src, &cfg, &r, &e)) fail_msg("%s", e.msg);
            assert_int_equal(r.views, tta ? 8 : 1);
            double total = 0;
            for (int64_t i = 0; i < r.n; i++) {
                double sample = 0;
                for (int c = 0; c < K; c++) {
                    double s = cfg.label_smoothing;
                    double y = m->labels[r.index[i] * K + c], t = y * (1 - s) + s / 2;
                    double q = sigmoid(bias[c]);
                    double l = -(pw[c] * t * log(q) + (1 - t) * log(1 - q));
                    sample += l;
                    assert_float_equal(r.probs[i * K + c], q, 1e-6);
                }
                total += sample;
                assert_float_equal(r.loss[i], sample / K, 1e-6);
            }
            assert_float_equal(r.mean_loss, total / ((double)r.n * K), 1e-9);
            lm_eval_result_free(&r);
        }
    }
    /* the per-element formula helper agrees with the textbook one */
    double q = sigmoid(2.0);
    assert_float_equal(lm_eval_bce_logit(2.0, 1.0, 3.0, 0.0), -3.0 * log(q), 1e-12);
    assert_float_equal(lm_eval_bce_logit(2.0, 0.0, 3.0, 0.0), -log(1 - q), 1e-12);
    assert_true(isfinite(lm_eval_bce_logit(800.0, 0.0, 1.0, 0.0))); /* no overflow */
    /* focal: gamma 0 is the BCE; gamma 2 scales each term by (1 - p_true)^2 */
    assert_true(lm_eval_focal_logit(2.0, 1.0, 3.0, 0.1, 0.0) == lm_eval_bce_logit(2.0, 1.0, 3.0, 0.1));
    assert_float_equal(lm_eval_focal_logit(2.0, 1.0, 3.0, 0.0, 2.0), -3.0 * (1 - q) * (1 - q) * log(q), 1e-12);
    assert_float_equal(lm_eval_focal_logit(2.0, 0.0, 3.0, 0.0, 2.0), -q * q * log(1 - q), 1e-12);
    assert_true(isfinite(lm_eval_focal_logit(800.0, 0.0, 1.0, 0.0, 2.0)));
    nn_engine_set_state(f->e, saved, NULL, NULL, &e);
    free(p);
    free(saved);
    memsrc_free(m);
}

static void test_tta_equals_plain_on_symmetric_images(void **state) {
    fixture *f = *state;
    memsrc *m = memsrc_new(7, 1);
    lm_loader_source src = as_source(m);
    lm_eval_cfg cfg = base_cfg();
    lm_eval_result plain, tta;
    lm_err e = {0};
    if (lm_eval_source(f->e, &src, &cfg, &plain, &e)) fail_msg("%s", e.msg);
    cfg.tta = 1;
    if (lm_eval_source(f->e, &src, &cfg, &tta, &e)) fail_msg("%s", e.msg);
    assert_int_equal(tta.views, 8);
    assert_int_equal(plain.n, tta.n);
    for (int64_t i = 0; i < plain.n * K; i++) assert_float_equal(plain.probs[i], tta.probs[i], 1e-6);
    for (int64_t i = 0; i < plain.n; i++) assert_float_equal(plain.loss[i], tta.loss[i], 1e-5);
    assert_float_equal(plain.mean_loss, tta.mean_loss, 1e-6);
    lm_eval_result_free(&plain);
    lm_eval_result_free(&tta);
    memsrc_free(m);
}

static void test_tta_is_the_mean_over_the_eight_views(void **state) {
    fixture *f = *state;
    memsrc *m = memsrc_new(6, 0);
    lm_loader_source src = as_source(m);
    lm_eval_cfg cfg = base_cfg();
    cfg.tta = 1;
    lm_eval_result r, plain;
    lm_err e = {0};
    if (lm_eval_source(f->e, &src, &cfg, &r, &e)) fail_msg("%s", e.msg);
    cfg.tta = 0;
    if (lm_eval_source(f->e, &src, &cfg, &plain, &e)) fail_msg("%s", e.msg);
    double maxdiff = 0;
    for (int64_t i = 0; i < r.n; i++) {
        double mean[K] = {0};
        for (int v = 0; v < 8; v++) {
            float lg[K];
            predict_one(f, m->pixels + (size_t)r.index[i] * C * H * W, v, lg);
            for (int c = 0; c < K; c++) mean[c] += sigmoid(lg[c]) / 8;
        }
        for (int c = 0; c < K; c++) {
            assert_float_equal(r.probs[i * K + c], mean[c], 2e-6);
            double d = fabs(r.probs[i * K + c] - plain.probs[i * K + c]);
            if (d > maxdiff) maxdiff = d;
        }
    }
    assert_true(maxdiff > 1e-6); /* the views really differ on these images */
    lm_eval_result_free(&r);
    lm_eval_result_free(&plain);
    memsrc_free(m);
}

static void test_tta_views_rectangular(void **state) {
    (void)state;
    int v[8];
    assert_int_equal(lm_eval_tta_views(8, 8, v), 8);
    for (int i = 0; i < 8; i++) assert_int_equal(v[i], i);
    assert_int_equal(lm_eval_tta_views(8, 6, v), 4);
    for (int i = 0; i < 4; i++) assert_false(nn_aug_dihedral_transposes(v[i]));
}

static void test_dataset_split(void **state) {
    fixture *f = *state;
    char *dir = hx_tmpdir();
    const char *labels[K] = {"crack", "inactive"};
    lm_dataset_spec spec = {.height = H, .width = W, .channels = C, .nlabels = K, .labels = labels};
    lm_dataset_writer *w;
    lm_err e = {0};
    if (lm_dataset_create(dir, &spec, &w, &e)) fail_msg("%s", e.msg);
    memsrc *m = memsrc_new(9, 0);
    for (size_t i = 0; i < m->nrec; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%zu.png", i);
        lm_record rec = {.h = H, .w = W, .c = C, .split = i % 3 == 1 ? LM_SPLIT_VAL : LM_SPLIT_TRAIN,
                         .nlabels = K, .labels = m->labels + i * K, .name = name, .meta = "",
                         .pixels = m->pixels + i * C * H * W};
        if (lm_dataset_put(w, &rec, &e)) fail_msg("%s", e.msg);
    }
    if (lm_dataset_finish(w, NULL, &e)) fail_msg("%s", e.msg);
    lm_dataset *ds;
    if (lm_dataset_open(dir, &ds, &e)) fail_msg("%s", e.msg);
    lm_eval_cfg cfg = base_cfg();
    lm_eval_result r;
    if (lm_eval_split(f->e, ds, LM_SPLIT_VAL, &cfg, &r, &e)) fail_msg("%s", e.msg);
    assert_int_equal(r.n, 3);
    const uint32_t want[3] = {1, 4, 7};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.index[i], want[i]);
        char name[32];
        snprintf(name, sizeof name, "img%u.png", want[i]);
        assert_string_equal(r.names[i], name);
        float lg[K];
        predict_one(f, m->pixels + (size_t)want[i] * C * H * W, 0, lg);
        assert_float_equal(r.probs[i * K], sigmoid(lg[0]), 2e-6);
        assert_true(r.targets[i * K + 1] == m->labels[want[i] * K + 1]);
    }
    lm_eval_result_free(&r);
    lm_dataset_close(ds);
    memsrc_free(m);
    hx_rmtree(dir);
    free(dir);
}

static int always(void *user) {
    (void)user;
    return 1;
}

static void test_errors(void **state) {
    fixture *f = *state;
    memsrc *m = memsrc_new(5, 0);
    lm_loader_source src = as_source(m);
    lm_eval_cfg cfg = base_cfg();
    lm_eval_result r;
    lm_err e = {0};
    src.height = H - 2;
    src.width = W - 2; /* not what the engine was built for */
    assert_int_equal(lm_eval_source(f->e, &src, &cfg, &r, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "1x10x10"));
    assert_non_null(strstr(e.msg, "1x12x12"));
    assert_null(r.probs);
    src = as_source(m);
    src.nlabels = 3;
    lm_err_clear(&e);
    assert_int_equal(lm_eval_source(f->e, &src, &cfg, &r, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "3 label(s)"));
    src = as_source(m);
    cfg.cancelled = always;
    lm_err_clear(&e);
    assert_int_equal(lm_eval_source(f->e, &src, &cfg, &r, &e), LUMEN_ECANCELED);
    assert_null(r.probs);
    assert_int_equal(r.n, 0);
    memsrc_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_with_single_predictions),
        cmocka_unit_test(test_loss_by_hand),
        cmocka_unit_test(test_tta_equals_plain_on_symmetric_images),
        cmocka_unit_test(test_tta_is_the_mean_over_the_eight_views),
        cmocka_unit_test(test_tta_views_rectangular),
        cmocka_unit_test(test_dataset_split),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
