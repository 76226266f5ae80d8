/*
 * test_runner_params.c -- what the runner says about a wrong experiment:
 * every message names the experiment file and line (or the --set
 * argument), the stage and the key; and what a right one hands a stage
 * (flattened, defaulted, typed, overridden values through the getters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *const PLUGINS[] = {"counter", "probe", "abi_wrong", NULL};

typedef hx_fixture fixture;

static int setup(void **state) {
    *state = hx_fixture_new(PLUGINS);
    return 0;
}

static int teardown(void **state) {
    hx_fixture_free(*state);
    return 0;
}

/* Writes exp.lua with the given stage lines, runs the runner with the extra
 * args, expects failure and checks that the LAST stderr line is exactly
 * "runner: <expected>". */
static void expect_error(fixture *f, const char *stages, const char *expected, const char *a1, const char *a2) {
    hx_write_experiment(f->tmp, "exp.lua", "params", stages);
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", a1, a2, NULL);
    char *last = hx_last_line(r.err);
    char *want = hx_fmt("runner: %s", expected);
    if (r.exit_code != 1 || strcmp(last, want) != 0)
        fail_msg("exit %d, last stderr line\n  got:  %s\n  want: %s", r.exit_code, last, want);
    /* nothing ran: no run folder */
    char *runs = hx_join(f->tmp, "runs/params");
    assert_false(hx_exists(runs));
    free(runs);
    free(want);
    free(last);
    hx_result_free(&r);
}

static void test_unknown_key_suggests(void **state) {
    expect_error(*state, "    lumen.probe { szie = 3 },\n",
                 "exp.lua:5: stage 'probe': unknown parameter 'szie' (did you mean 'size'?)", NULL, NULL);
    expect_error(*state, "    lumen.probe {},\n    lumen.counter { record = \"r\", split = { vall = 1 } },\n",
                 "exp.lua:6: stage 'counter': unknown parameter 'split.vall'", NULL, NULL);
    expect_error(*state, "    lumen.probe { split = { vall = 0.1 } },\n",
                 "exp.lua:5: stage 'probe': unknown parameter 'split.vall' (did you mean 'split.val'?)", NULL, NULL);
}

static void test_wrong_type(void **state) {
    expect_error(*state, "    lumen.probe { size = \"big\" },\n",
                 "exp.lua:5: stage 'probe': parameter 'size' must be an integer, got string \"big\"", NULL, NULL);
    expect_error(*state, "    lumen.probe { size = 2.5 },\n",
                 "exp.lua:5: stage 'probe': parameter 'size' must be an integer, got number 2.5", NULL, NULL);
    expect_error(*state, "    lumen.probe { flag = 1 },\n",
                 "exp.lua:5: stage 'probe': parameter 'flag' must be a boolean, got number 1", NULL, NULL);
    expect_error(*state, "    lumen.probe { blocks = { 1, \"x\" } },\n",
                 "exp.lua:5: stage 'probe': parameter 'blocks' must be a list of integers, got string \"x\" at "
                 "position 2",
                 NULL, NULL);
    expect_error(*state, "    lumen.probe { pos_weight = \"much\" },\n",
                 "exp.lua:5: stage 'probe': parameter 'pos_weight' must be a number or \"auto\", got string "
                 "\"much\"",
                 NULL, NULL);
}

static void test_out_of_range(void **state) {
    expect_error(*state, "    lumen.probe { ratio = 1.5 },\n",
                 "exp.lua:5: stage 'probe': parameter 'ratio' = 1.5 is out of range [0, 1]", NULL, NULL);
    expect_error(*state, "    lumen.probe { blocks = { 1, 9 } },\n",
                 "exp.lua:5: stage 'probe': parameter 'blocks' element 2 = 9 is out of range [1, 8]", NULL, NULL);
}

static void test_bad_enum(void **state) {
    expect_error(*state, "    lumen.probe { format = \"png\" },\n",
                 "exp.lua:5: stage 'probe': parameter 'format' must be one of auto|csv|elpv, got \"png\"", NULL,
                 NULL);
    expect_error(*state, "    lumen.probe { optimizer = lumen.rmsprop { lr = 1 } },\n",
                 "exp.lua:5: stage 'probe': parameter 'optimizer' is given a stage entry (lumen.rmsprop); "
                 "is the constructor's name right?",
                 NULL, NULL);
}

static void test_missing_required(void **state) {
    expect_error(*state, "    lumen.counter { x = 1 },\n",
                 "exp.lua:5: stage 'counter': missing required parameter 'record' -- file that gets one line "
                 "per execution",
                 NULL, NULL);
}

static void test_bad_set(void **state) {
    const char *ok = "    lumen.probe {},\n";
    expect_error(*state, ok, "--set probe.szie=3: stage 'probe' has no parameter 'szie' (did you mean 'size'?)",
                 "--set", "probe.szie=3");
    expect_error(*state, ok, "--set prob.size=3: no stage 'prob' in this experiment (did you mean 'probe'?)",
                 "--set", "prob.size=3");
    expect_error(*state, ok, "--set probe.size=big: parameter 'size' must be an integer, got \"big\"", "--set",
                 "probe.size=big");
    expect_error(*state, ok, "--set probe.ratio=2: parameter 'ratio' = 2 is out of range [0, 1]", "--set",
                 "probe.ratio=2");
    expect_error(*state, ok, "--set probe.flag=yes: parameter 'flag' must be a boolean, got \"yes\"",
                 "--set=probe.flag=yes", NULL);
    expect_error(*state, ok, "--set size=3: expected stage.key=value", "--set", "size=3");
}

static void test_lua_errors_name_file_and_line(void **state) {
    fixture *f = *state;
    char *path = hx_join(f->tmp, "syntax.lua");
    hx_write(path, "local lumen = require \"lumen\"\nreturn lumen.experiment {\n  name = \"x\",\n"
                   "  stages = { lumen.probe { size = } },\n}\n");
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "syntax.lua", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "runner: syntax.lua:4: unexpected symbol near '}'"));
    free(last);
    hx_result_free(&r);

    hx_write(path, "local lumen = require \"lumen\"\nlocal t = nil\nlocal n = t.field\n");
    hx_runner(&r, f->tmp, f->plugins, NULL, "syntax.lua", NULL);
    last = hx_last_line(r.err);
    assert_non_null(strstr(last, "runner: syntax.lua:3: attempt to index a nil value"));
    free(last);
    hx_result_free(&r);

    hx_write(path, "local lumen = require \"lumen\"\nreturn { name = \"x\" }\n");
    hx_runner(&r, f->tmp, f->plugins, NULL, "syntax.lua", NULL);
    last = hx_last_line(r.err);
    assert_non_null(strstr(last, "syntax.lua: the experiment file must end with `return lumen.experiment"));
    free(last);
    hx_result_free(&r);
    free(path);
}

static void test_experiment_level_errors(void **state) {
    fixture *f = *state;
    char *path = hx_join(f->tmp, "exp.lua");
    hx_write(path, "local lumen = require \"lumen\"\n\nreturn lumen.experiment {\n  name = \"x\",\n"
                   "  stage = { lumen.probe {} },\n}\n");
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", NULL);
    char *last = hx_last_line(r.err);
    assert_string_equal(last, "runner: exp.lua:3: unknown experiment key 'stage' (did you mean 'stages'?)");
    free(last);
    hx_result_free(&r);
    free(path);

    expect_error(f, "    lumen.probe {},\n    lumen.probe {},\n",
                 "exp.lua:6: stage id 'probe' is used twice (first at exp.lua:5); give one of them id = \"...\"",
                 NULL, NULL);
    expect_error(f, "    lumen.probe { blocks = { 1, 2, x = 3 } },\n",
                 "exp.lua:5: stage 'probe': parameter 'blocks': table mixes list items and named keys", NULL,
                 NULL);
    expect_error(f, "    lumen.prob {},\n",
                 "exp.lua:5: unknown stage 'prob' (did you mean 'probe'?); no plugin provides it "
                 "(`runner plugins` lists them)",
                 NULL, NULL);
}

static void test_refused_plugin_is_the_error_when_needed(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "refused", "    lumen.abi_wrong {},\n");
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    char *want = hx_fmt("runner: exp.lua:5: stage 'abi-wrong': plugin %s/abi_wrong.so was refused: built for "
                        "lumen ABI 2, this runner speaks 1",
                        f->plugins);
    assert_string_equal(last, want);
    free(want);
    free(last);
    hx_result_free(&r);
}

static void test_missing_input_and_check(void **state) {
    expect_error(*state, "    lumen.needy { need = \"x\" },\n",
                 "exp.lua:5: stage 'needy' needs input 'count', but no earlier stage produces it (it comes from: "
                 "counter)",
                 NULL, NULL);
    expect_error(*state, "    lumen.counter { record = \"r\", mode = \"slow\", x = 7 },\n",
                 "exp.lua:5: stage 'counter': x: must be <= 5 in slow mode", NULL, NULL);
}

/* Runs a passing experiment and returns the probe's values.txt. */
static char *probe_values(fixture *f, const char *stages, const char *a1, const char *a2) {
    hx_write_experiment(f->tmp, "exp.lua", "values", stages);
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", a1, a2, NULL);
    hx_assert_ran(&r, "runner");
    char *run_dir = hx_last_line(r.out);
    char *path = hx_fmt("%s/%s/probe/probe/values.txt", f->tmp, run_dir);
    char *v = hx_read(path);
    assert_non_null(v);
    free(path);
    free(run_dir);
    hx_result_free(&r);
    return v;
}

static void check_value(const char *values, const char *key, const char *want) {
    char *got = hx_value(values, key);
    if (!got || strcmp(got, want) != 0) fail_msg("%s: got '%s', want '%s'", key, got ? got : "(none)", want);
    free(got);
}

static void test_values_reach_the_stage(void **state) {
    fixture *f = *state;
    char *v = probe_values(f,
                           "    lumen.probe { size = 64, csv = \"data/x.csv\", split = { val = 0.25 },\n"
                           "                  optimizer = lumen.adamw { lr = 1e-3 }, blocks = { 2, 3 },\n"
                           "                  widths = { 0.5, 2 }, flag = true, pos_weight = \"auto\",\n"
                           "                  space = { [\"train.lr\"] = { 0.1, 0.01 }, grid = true } },\n",
                           NULL, NULL);
    check_value(v, "size", "64");
    check_value(v, "channels", "1"); /* default */
    check_value(v, "ratio", "0.5");  /* default */
    char *csv = hx_fmt("%s/data/x.csv", f->tmp);
    char *real = realpath(f->tmp, NULL); /* /tmp may be a symlink: cwd is the real folder */
    char *csv_real = hx_fmt("%s/data/x.csv", real);
    char *got = hx_value(v, "csv");
    assert_true(strcmp(got, csv) == 0 || strcmp(got, csv_real) == 0);
    free(got);
    free(csv);
    free(csv_real);
    free(real);
    check_value(v, "split.val", "0.25");
    check_value(v, "split.seed", "7");
    check_value(v, "optimizer.kind", "adamw");
    check_value(v, "optimizer.lr", "0.001");
    check_value(v, "blocks", "2,3");
    check_value(v, "widths", "0.5,2");
    check_value(v, "flag", "1");
    check_value(v, "pos_weight", "auto");
    check_value(v, "space", "{\"grid\":true,\"train.lr\":[0.1,0.01]}");
    check_value(v, "seed", "42");
    check_value(v, "stage_id", "probe");
    check_value(v, "input", "(none)");
    free(v);

    /* --set overrides what the file says, parsed by the declared type */
    v = probe_values(f, "    lumen.probe { size = 64, blocks = { 2, 3 } },\n", "--set", "probe.blocks={4,4,4}");
    check_value(v, "blocks", "4,4,4");
    check_value(v, "size", "64");
    free(v);
    v = probe_values(f, "    lumen.probe { size = 64 },\n", "--set", "probe.pos_weight=2.5");
    check_value(v, "pos_weight", "2.5");
    free(v);
    v = probe_values(f, "    lumen.probe { id = \"p2\" },\n    lumen.probe {},\n", "--set", "p2.size=5");
    check_value(v, "size", "300"); /* the second instance ("probe") keeps its default */
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_key_suggests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_enum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_errors_name_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_experiment_level_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_plugin_is_the_error_when_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_input_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_reach_the_stage, setup, teardown),
    };
    return cmocka_run_group_tests_name("runner_params", tests, NULL, NULL);
}
