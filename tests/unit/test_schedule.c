/* Unit tests for stages/common/schedule.c: learning rates against PyTorch's
 * schedulers (tests/fixtures/schedule_torch.json, written by
 * tests/torch/make_schedule_fixture.py), plateau/early-stopping logic, and
 * the JSON state round trip used for resume. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

static cJSON *load_fixture(void) {
    const char *build = getenv("LUMEN_BUILD");
    char *path;
    if (build) {
        char *b = strdup(build);
        path = lm_sprintf("%s/tests/fixtures/schedule_torch.json", dirname(b));
        free(b);
    } else {
        path = strdup("tests/fixtures/schedule_torch.json");
    }
    char *text = NULL;
    lm_err e = {0};
    if (lm_read_file(path, &text, NULL, &e))
        fail_msg("%s", e.msg);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    free(text);
    free(path);
    return doc;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it))
        fail_msg("fixture: missing number %s", k);
    return it->valuedouble;
}

static void cfg_from_fixture(const cJSON *j, lm_sched_cfg *c) {
    lm_sched_cfg_default(c);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    c->kind = lm_sched_kind_from_name(kind->valuestring);
    assert_true(c->kind >= 0);
    c->lr = num(j, "lr");
    if (c->kind == LM_SCHED_STEP) {
        c->step_size = (int64_t)num(j, "step_size");
        c->gamma = num(j, "gamma");
    } else if (c->kind == LM_SCHED_MULTISTEP) {
        c->gamma = num(j, "gamma");
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "milestones"))
            c->milestones[c->n_milestones++] = (int64_t)m->valuedouble;
    } else if (c->kind == LM_SCHED_COSINE) {
        c->epochs = (int64_t)num(j, "epochs");
        c->steps_per_epoch = (int64_t)num(j, "steps_per_epoch");
        c->warmup = num(j, "warmup");
        c->warmup_start_factor = num(j, "warmup_start_factor");
        c->min_lr = num(j, "min_lr");
    } else if (c->kind == LM_SCHED_PLATEAU) {
        c->mode_max = !strcmp(cJSON_GetObjectItemCaseSensitive(j, "mode")->valuestring, "max");
        c->factor = num(j, "factor");
        c->patience = (int64_t)num(j, "patience");
        c->threshold = num(j, "threshold");
        c->cooldown = (int64_t)num(j, "cooldown");
        c->min_lr = num(j, "min_lr");
    }
    lm_err e = {0};
    if (lm_sched_cfg_check(c, &e))
        fail_msg("fixture config rejected: %s", e.msg);
}

static void expect_close(const char *name, int i, double got, double want) {
    if (!(fabs(got - want) <= 1e-9 * fmax(fabs(want), 1e-3)))
        fail_msg("%s[%d]: got %.17g, torch %.17g", name, i, got, want);
}

static void test_matches_torch(void **state) {
    (void)state;
    cJSON *doc = load_fixture();
    const cJSON *cs;
    int ncase = 0, kinds_seen = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(doc, "cases")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(cs, "name")->valuestring;
        lm_sched_cfg c;
        cfg_from_fixture(cJSON_GetObjectItemCaseSensitive(cs, "config"), &c);
        kinds_seen |= 1 << c.kind;
        lm_sched_state st;
        lm_sched_init(&c, &st);
        const cJSON *lrs = cJSON_GetObjectItemCaseSensitive(cs, "lr");
        const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(cs, "metrics");
        int n = cJSON_GetArraySize(lrs);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            double want = cJSON_GetArrayItem(lrs, i)->valuedouble, got;
            if (c.kind == LM_SCHED_PLATEAU) {
                lm_sched_epoch_end(&c, &st, cJSON_GetArrayItem(metrics, i)->valuedouble);
                got = lm_sched_lr(&c, &st, i + 1, 0);
            } else if (c.kind == LM_SCHED_COSINE) {
                got = lm_sched_lr(&c, &st, i / c.steps_per_epoch, i % c.steps_per_epoch);
            } else {
                got = lm_sched_lr(&c, &st, i, 0);
                /* epoch schedules do not depend on the step */
                assert_true(got == lm_sched_lr(&c, &st, i, 17));
            }
            expect_close(name, i, got, want);
        }
        ncase++;
    }
    assert_int_equal(ncase, 8);
    assert_int_equal(kinds_seen, 0x1f); /* every kind compared */
    cJSON_Delete(doc);
}

/* Stopping mid-run, serialising the state and continuing from the JSON gives
 * the same rates as an uninterrupted run. */
static void test_plateau_resume_through_json(void **state) {
    (void)state;
    lm_sched_cfg c;
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_PLATEAU;
    c.lr = 0.1;
    c.patience = 1;
    c.cooldown = 2;
    c.factor = 0.5;
    double metrics[] = {1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85};
    int n = (int)(sizeof metrics / sizeof *metrics);
    lm_sched_state a, b;
    lm_sched_init(&c, &a);
    double want[12];
    int reductions = 0;
    for (int i = 0; i < n; i++) {
        reductions += lm_sched_epoch_end(&c, &a, metrics[i]);
        want[i] = lm_sched_lr(&c, &a, i + 1, 0);
    }
    assert_true(reductions >= 2); /* the scenario exercises cooldown + reduce */
    lm_sched_init(&c, &b);
    lm_err e = {0};
    for (int i = 0; i < n; i++) {
        if (i == 5) {
            cJSON *j = lm_sched_state_to_json(&b);
            char *text = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            cJSON *back = cJSON_Parse(text);
            memset(&b, 0xab, sizeof b);
            assert_int_equal(lm_sched_state_from_json(back, &b, &e), 0);
            cJSON_Delete(back);
            free(text);
        }
        lm_sched_epoch_end(&c, &b, metrics[i]);
        assert_true(lm_sched_lr(&c, &b, i + 1, 0) == want[i]);
    }
    assert_int_equal(b.epochs_seen, n);
}

static void test_plateau_nan_counts_as_bad_and_min_lr_floor(void **state) {
    (void)state;
    lm_sched_cfg c;
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_PLATEAU;
    c.lr = 1.0;
    c.patience = 0;
    c.factor = 0.5;
    c.min_lr = 0.3;
    lm_sched_state st;
    lm_sched_init(&c, &st);
    assert_int_equal(lm_sched_epoch_end(&c, &st, NAN), 1); /* bad: 1 > 0 */
    assert_true(st.lr == 0.5);
    assert_int_equal(lm_sched_epoch_end(&c, &st, NAN), 1);
    assert_true(st.lr == 0.3); /* floored */
    assert_int_equal(lm_sched_epoch_end(&c, &st, NAN), 0);
    assert_true(st.lr == 0.3);
    assert_false(st.has_best);
}

static void test_cosine_edges(void **state) {
    (void)state;
    lm_sched_cfg c;
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_COSINE;
    c.lr = 0.2;
    c.epochs = 4;
    c.steps_per_epoch = 10;
    c.warmup = 1;
    c.warmup_start_factor = 0.25;
    c.min_lr = 0.01;
    lm_sched_state st;
    lm_sched_init(&c, &st);
    assert_true(lm_sched_lr(&c, &st, 0, 0) == 0.2 * 0.25);
    assert_true(fabs(lm_sched_lr(&c, &st, 1, 0) - 0.2) < 1e-15); /* warmup done */
    for (int t = 1; t < 40; t++) /* monotone up, then monotone down */
        if (t <= 10)
            assert_true(lm_sched_lr(&c, &st, t / 10, t % 10) >
                        lm_sched_lr(&c, &st, (t - 1) / 10, (t - 1) % 10));
        else
            assert_true(lm_sched_lr(&c, &st, t / 10, t % 10) <
                        lm_sched_lr(&c, &st, (t - 1) / 10, (t - 1) % 10));
    assert_true(lm_sched_lr(&c, &st, 4, 0) == 0.01); /* past the end: the floor */
    assert_true(lm_sched_lr(&c, &st, 9, 3) == 0.01);
}

static void test_bad_config_names_key(void **state) {
    (void)state;
    lm_sched_cfg c;
    lm_err e = {0};
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_STEP;
    c.step_size = 0;
    assert_int_equal(lm_sched_cfg_check(&c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "schedule.step_size"));

    lm_err_clear(&e);
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_MULTISTEP;
    c.n_milestones = 2;
    c.milestones[0] = 5;
    c.milestones[1] = 3;
    assert_int_equal(lm_sched_cfg_check(&c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "schedule.milestones"));

    lm_err_clear(&e);
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_COSINE;
    c.epochs = 3;
    c.warmup = 3;
    assert_int_equal(lm_sched_cfg_check(&c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "schedule.warmup"));

    lm_err_clear(&e);
    lm_sched_cfg_default(&c);
    c.kind = LM_SCHED_PLATEAU;
    c.factor = 1.0;
    assert_int_equal(lm_sched_cfg_check(&c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "schedule.factor"));

    assert_int_equal(lm_sched_kind_from_name("cosin"), -1);
}

static void test_state_json_errors(void **state) {
    (void)state;
    lm_sched_state st;
    lm_err e = {0};
    cJSON *j = cJSON_Parse("{\"version\":1,\"lr\":0.1,\"has_best\":true,\"best\":\"inf\","
                           "\"num_bad_epochs\":2,\"cooldown_counter\":0}");
    assert_int_equal(lm_sched_state_from_json(j, &st, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "epochs_seen"));
    cJSON_Delete(j);

    lm_err_clear(&e);
    j = cJSON_Parse("{\"version\":2}");
    assert_int_equal(lm_sched_state_from_json(j, &st, &e), LUMEN_EABI);
    cJSON_Delete(j);

    /* infinities survive the round trip */
    lm_sched_state a = {.lr = 0.5, .has_best = 1, .best = INFINITY, .epochs_seen = 3};
    j = lm_sched_state_to_json(&a);
    assert_non_null(j);
    lm_err_clear(&e);
    assert_int_equal(lm_sched_state_from_json(j, &st, &e), 0);
    assert_true(isinf(st.best) && st.best > 0);
    assert_int_equal(st.epochs_seen, 3);
    cJSON_Delete(j);
}

/* ---- early stopping ------------------------------------------------------- */

static void test_early_stopping_max(void **state) {
    (void)state;
    lm_early_cfg c = {.metric = "val/f1_mean", .goal_max = 1, .patience = 2, .min_delta = 0.01};
    lm_early_state st;
    lm_early_init(&st);
    assert_int_equal(lm_early_update(&c, &st, 0, 0.50), LM_EARLY_IMPROVED);
    assert_int_equal(lm_early_update(&c, &st, 1, 0.505), 0); /* < min_delta */
    assert_int_equal(lm_early_update(&c, &st, 2, 0.52), LM_EARLY_IMPROVED);
    assert_int_equal(st.best_epoch, 2);
    assert_int_equal(lm_early_update(&c, &st, 3, NAN), 0);
    assert_int_equal(lm_early_update(&c, &st, 4, 0.40), LM_EARLY_STOP);
    assert_true(st.best == 0.52);
    assert_int_equal(st.best_epoch, 2);
    /* once stopped it stays stopped, even if the metric improves later */
    assert_int_equal(lm_early_update(&c, &st, 5, 0.9), LM_EARLY_IMPROVED | LM_EARLY_STOP);
}

static void test_early_stopping_min_and_disabled(void **state) {
    (void)state;
    lm_early_cfg c = {.goal_max = 0, .patience = 0, .min_delta = 0};
    lm_early_state st;
    lm_early_init(&st);
    assert_int_equal(lm_early_update(&c, &st, 0, 1.0), LM_EARLY_IMPROVED);
    for (int i = 1; i < 50; i++)
        assert_int_equal(lm_early_update(&c, &st, i, 2.0), 0); /* never stops */
    assert_int_equal(lm_early_update(&c, &st, 50, 0.99), LM_EARLY_IMPROVED);

    lm_early_cfg c1 = {.goal_max = 0, .patience = 1};
    lm_early_state s1;
    lm_early_init(&s1);
    lm_early_update(&c1, &s1, 0, 1.0);
    /* resume through JSON, then one bad epoch stops */
    cJSON *j = lm_early_state_to_json(&s1);
    lm_early_state s2;
    lm_err e = {0};
    assert_int_equal(lm_early_state_from_json(j, &s2, &e), 0);
    cJSON_Delete(j);
    assert_int_equal(lm_early_update(&c1, &s2, 1, 1.0), LM_EARLY_STOP);

    /* through JSON text, values come back bitwise (cJSON's own printing
     * would keep only 15 digits for these) */
    lm_early_state s3;
    lm_early_init(&s3);
    lm_early_update(&c1, &s3, 4, 0.1764705882352941);
    lm_sched_state ss = {.lr = 0.00031622776601683794 * 0.1, .has_best = 1, .best = 2.0 / 3.0};
    cJSON *je = lm_early_state_to_json(&s3), *js = lm_sched_state_to_json(&ss);
    char *te = cJSON_PrintUnformatted(je), *ts = cJSON_PrintUnformatted(js);
    cJSON_Delete(je);
    cJSON_Delete(js);
    je = cJSON_Parse(te);
    js = cJSON_Parse(ts);
    lm_early_state s4;
    lm_sched_state ss2;
    assert_int_equal(lm_early_state_from_json(je, &s4, &e), 0);
    assert_int_equal(lm_sched_state_from_json(js, &ss2, &e), 0);
    assert_true(s4.best == s3.best);
    assert_true(ss2.lr == ss.lr && ss2.best == ss.best);
    cJSON_Delete(je);
    cJSON_Delete(js);
    free(te);
    free(ts);

    lm_early_cfg bad = {.patience = -1};
    lm_err_clear(&e);
    assert_int_equal(lm_early_cfg_check(&bad, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "early_stop.patience"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_torch),
        cmocka_unit_test(test_plateau_resume_through_json),
        cmocka_unit_test(test_plateau_nan_counts_as_bad_and_min_lr_floor),
        cmocka_unit_test(test_cosine_edges),
        cmocka_unit_test(test_bad_config_names_key),
        cmocka_unit_test(test_state_json_errors),
        cmocka_unit_test(test_early_stopping_max),
        cmocka_unit_test(test_early_stopping_min_and_disabled),
    };
    return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}
