/* Unit tests for the train stage's parameter table and check() (through the
 * fake host, no runner): the declared table is valid and has a doc and a
 * default or AUTO for every key; the defaults read into the documented
 * config; --smoke shrinks epochs and batch but keeps the stem; every
 * cross-field rule fails naming its key; goal "auto" follows the metric. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fakehost.h"
#include "stage_params.h"
#include "train/train.h"

static void test_table_is_valid_and_documented(void **state) {
    (void)state;
    char why[512];
    if (rn_params_table_check(train_params, why, sizeof why)) fail_msg("%s", why);
    const char *must[] = {"model.kind", "model.blocks", "model.widths", "model.dropout", "model.stem",
                          "model.stem_width", "model.pool", "model.in_channels", "epochs", "batch", "optimizer.kind",
                          "optimizer.lr", "optimizer.weight_decay", "optimizer.momentum", "optimizer.nesterov",
                          "optimizer.beta1", "optimizer.beta2", "optimizer.eps", "schedule.kind", "schedule.warmup",
                          "schedule.step_size", "schedule.gamma", "schedule.milestones", "schedule.min_lr",
                          "schedule.factor", "schedule.patience", "loss.kind", "loss.pos_weight", "loss.gamma",
                          "loss.label_smoothing", "mixup", "clip_grad_norm", "early_stop.patience", "early_stop.min_delta",
                          "metric", "goal", "init", "reset_head", "max_nonfinite", "backend", "drop_last",
                          "eval_tta", NULL};
    for (int i = 0; must[i]; i++) {
        const lumen_param *p = rn_param_find(train_params, must[i]);
        if (!p) fail_msg("no parameter %s", must[i]);
        assert_true(p->doc && *p->doc);
        if (strcmp(must[i], "init") != 0) assert_non_null(p->def);
    }
    assert_true(rn_param_find(train_params, "loss.pos_weight")->flags & LUMEN_PF_AUTO);
    assert_string_equal(rn_param_find(train_params, "loss.pos_weight")->def, "auto");
}

static void test_defaults(void **state) {
    (void)state;
    fh *f = fh_new(&train_stage);
    fh_set_seed(f, 99);
    train_cfg c;
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_int_equal(c.epochs, 30);
    assert_int_equal(c.batch, 32);
    assert_int_equal(c.model.nstages, 4);
    assert_int_equal(c.model.widths[3], 512);
    assert_int_equal(c.model.stem, NN_STEM_7X7);
    assert_int_equal(c.model.pool, NN_POOL_AVG);
    assert_int_equal(c.model.in_channels, 0); /* auto */
    assert_int_equal(c.optim.kind, NN_OPT_ADAMW);
    assert_float_equal(c.optim.weight_decay, 0.01, 1e-9); /* auto for adamw */
    assert_int_equal(c.sched.kind, LM_SCHED_COSINE);
    assert_true(c.sched.lr == 0.001);
    assert_true(c.pos_weight_auto);
    assert_string_equal(c.early.metric, "val/f1_mean");
    assert_true(c.early.goal_max);
    assert_int_equal(c.seed, 99); /* auto = the experiment's */
    assert_int_equal(c.max_nonfinite, 20);
    assert_true(c.drop_last);
    assert_false(c.eval_tta);
    assert_null(c.init);
    assert_int_equal(c.loader_threads, 1);
    assert_true(c.mixup == 0); /* off */
    assert_true(c.ema == 0);   /* off */
    assert_true(c.ema_warmup == 10);
    assert_true(c.focal_gamma == 0); /* bce */
    assert_string_equal(fh_fail_msg(f), "");
    assert_null(fh_bad_key(f));
    fh_free(f);

    f = fh_new(&train_stage);
    fh_set(f, "optimizer.kind", "sgd");
    fh_set(f, "metric", "val/loss");
    fh_set(f, "loss.pos_weight", "{2, 0.5}");
    fh_set(f, "seed", "5");
    fh_set(f, "mixup", "0.3");
    fh_set(f, "model.pool", "max");
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_float_equal(c.mixup, 0.3, 0);
    assert_int_equal(c.model.pool, NN_POOL_MAX);
    assert_float_equal(c.optim.weight_decay, 0, 0);
    assert_false(c.early.goal_max); /* a loss: lower is better */
    assert_false(c.sched.mode_max);
    assert_int_equal(c.n_pos_weight, 2);
    assert_float_equal(c.pos_weight[1], 0.5, 0);
    assert_int_equal(c.seed, 5);
    assert_true(c.focal_gamma == 0); /* loss.gamma is the focal loss's only */
    fh_free(f);

    f = fh_new(&train_stage);
    fh_set(f, "loss.kind", "focal");
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_float_equal(c.focal_gamma, 2, 0); /* the paper's default */
    fh_set(f, "loss.gamma", "0.5");
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_float_equal(c.focal_gamma, 0.5, 0);
    fh_free(f);
}

static void test_smoke(void **state) {
    (void)state;
    fh *f = fh_new(&train_stage);
    fh_set_smoke(f, 1);
    fh_set(f, "schedule.warmup", "2");
    train_cfg c;
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_int_equal(c.epochs, 1);
    assert_int_equal(c.batch, TRAIN_SMOKE_BATCH);
    assert_int_equal(c.model.stem, NN_STEM_7X7); /* the model stays as configured */
    assert_true(c.sched.warmup == 0);            /* one epoch cannot warm up for two */
    fh_set(f, "batch", "4");
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_int_equal(c.batch, 4);
    fh_free(f);
}

/* check() with key=value fails naming `needle`. */
static void expect(const char *const *kv, const char *needle) {
    fh *f = fh_new(&train_stage);
    for (int i = 0; kv[i]; i += 2) fh_set(f, kv[i], kv[i + 1]);
    assert_int_equal(fh_check(f), LUMEN_EINVAL);
    if (!strstr(fh_fail_msg(f), needle)) fail_msg("expected '%s', got '%s'", needle, fh_fail_msg(f));
    assert_null(fh_bad_key(f));
    fh_free(f);
}

static void test_cross_field_errors(void **state) {
    (void)state;
    expect((const char *[]){"model.widths", "{8,16,32}", NULL},
           "model.widths: needs as many entries as model.blocks (4), got 3");
    expect((const char *[]){"optimizer.kind", "sgd", "optimizer.nesterov", "true", "optimizer.momentum", "0", NULL},
           "optimizer.nesterov: needs optimizer.momentum > 0");
    expect((const char *[]){"optimizer.kind", "sgd", "optimizer.nesterov", "true", "optimizer.dampening", "0.5", NULL},
           "optimizer.nesterov: needs optimizer.dampening = 0");
    expect((const char *[]){"optimizer.nesterov", "true", NULL}, "optimizer.nesterov: only the sgd optimizer");
    expect((const char *[]){"optimizer.lr", "0", NULL}, "optimizer.lr: must be > 0");
    expect((const char *[]){"schedule.kind", "multistep", "schedule.milestones", "{10, 10}", NULL},
           "schedule.milestones: must be strictly increasing");
    expect((const char *[]){"schedule.kind", "multistep", NULL}, "schedule.milestones: the multistep schedule needs");
    expect((const char *[]){"schedule.warmup", "30", NULL}, "schedule.warmup: must be less than epochs (30)");
    expect((const char *[]){"schedule.kind", "step", "schedule.warmup", "1", NULL},
           "schedule.warmup: only the cosine schedule");
    expect((const char *[]){"schedule.min_lr", "0.5", NULL}, "schedule.min_lr: must not exceed optimizer.lr");
    expect((const char *[]){"loss.pos_weight", "{0, 1}", NULL}, "loss.pos_weight: weights must be > 0");
    expect((const char *[]){"metric", "val/accuracy", NULL}, "metric: unknown metric 'val/accuracy'");
    expect((const char *[]){"reset_head", "true", NULL}, "reset_head: only means something with init");
    expect((const char *[]){"model.stem_width", "0", NULL}, "model.stem_width");
}

/* The weight average's decay: min(ema, (1 + n) / (W + n)) after n updates.
 * W = 10 (the default) caps ema = 0.998 at ~0.993 after 1,290 steps (30
 * epochs of best.lua), W = 2 reaches 0.998 at n = 498, W = 1 is ema from
 * the start. */
static void test_ema_decay(void **state) {
    (void)state;
    assert_float_equal(train_ema_decay(0.998, 10, 1290), 1291.0 / 1300.0, 1e-6);
    assert_float_equal(train_ema_decay(0.99, 10, 1290), 0.99, 1e-7);
    assert_float_equal(train_ema_decay(0.99, 10, 0), 0.1, 1e-7);
    assert_float_equal(train_ema_decay(0.998, 2, 100), 101.0 / 102.0, 1e-7);
    assert_float_equal(train_ema_decay(0.998, 2, 497), 498.0 / 499.0, 1e-7);
    assert_float_equal(train_ema_decay(0.998, 2, 498), 0.998, 1e-7);
    assert_float_equal(train_ema_decay(0.998, 2, 5000), 0.998, 1e-7);
    assert_float_equal(train_ema_decay(0.998, 1, 1), 0.998, 1e-7);
    fh *f = fh_new(&train_stage);
    fh_set(f, "ema", "0.998");
    fh_set(f, "ema_warmup", "2");
    train_cfg c;
    assert_int_equal(train_cfg_read(fh_ctx(f), fh_host(), &c), 0);
    assert_true(c.ema == 0.998 && c.ema_warmup == 2);
    fh_free(f);
}

static void test_metric_names(void **state) {
    (void)state;
    const char *labels[] = {"crack", "inactive"};
    assert_true(train_metric_known("val/f1_mean", labels, 2));
    assert_true(train_metric_known("val/f1_crack", labels, 2));
    assert_true(train_metric_known("val/ap_inactive", labels, 2));
    assert_false(train_metric_known("val/f1_dust", labels, 2));
    assert_true(train_metric_known("val/f1_dust", NULL, 0)); /* labels unknown while planning */
    assert_false(train_metric_known("val/f1_", NULL, 0));
    assert_false(train_metric_known("f1_mean", NULL, 0));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_valid_and_documented),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_smoke),
        cmocka_unit_test(test_cross_field_errors),
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_ema_decay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
