/*
 * Unit tests for runner/lua_bridge.c, lua/lumen.lua and runner/experiment.c:
 * what an experiment file turns into (stage entries with file:line, ids,
 * constructors, lumen.data), the messages for what cannot be converted, the
 * sandbox (what experiment files may and may not use) and the limits on
 * evaluation (signals, time budget).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "harness.h"
#include "jsonutil.h"
#include "lua_bridge.h"
#include "signals.h"

typedef struct fixture {
    char *tmp;
    rn_strv dirs;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->tmp = hx_tmpdir();
    char *src = hx_src_dir();
    rn_strv_take(&f->dirs, hx_join(src, "lua"));
    free(src);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hx_rmtree(f->tmp);
    free(f->tmp);
    rn_strv_free(&f->dirs);
    free(f);
    return 0;
}

/* Writes `text` to exp.lua and loads it; returns the rc, fills *x / e. */
static int load(fixture *f, const char *text, rn_experiment **x, lm_err *e) {
    char *path = hx_join(f->tmp, "exp.lua");
    hx_write(path, text);
    int rc = rn_experiment_load(path, &f->dirs, x, NULL, e);
    free(path);
    return rc;
}

static void test_stage_entries(void **state) {
    fixture *f = *state;
    rn_experiment *x;
    lm_err e = {0};
    int rc = load(f,
                  "local lumen = require \"lumen\"\n"
                  "return lumen.experiment {\n"
                  "  name = \"demo\", seed = 7, threads = 2, description = \"d\",\n"
                  "  stages = {\n"
                  "    lumen.normalize_stats {},\n"
                  "    lumen.stage(\"my-stage\", { id = \"mine\", opt = lumen.adamw { lr = 1e-3 } }),\n"
                  "    lumen.train { model = lumen.resnet { blocks = {1,1} }, n = 3 },\n"
                  "  },\n"
                  "}\n",
                  &x, &e);
    if (rc) fail_msg("%s", e.msg);
    assert_string_equal(x->name, "demo");
    assert_int_equal(x->seed, 7);
    assert_int_equal(x->threads, 2);
    assert_string_equal(x->description, "d");
    assert_int_equal(x->line, 2); /* `return lumen.experiment {` is a tail call: found in the text */
    assert_int_equal(x->n, 3);
    assert_string_equal(x->stages[0].stage, "normalize-stats");
    assert_string_equal(x->stages[0].id, "normalize-stats");
    assert_int_equal(x->stages[0].line, 5);
    assert_non_null(strstr(x->stages[0].file, "exp.lua"));
    assert_string_equal(x->stages[1].stage, "my-stage");
    assert_string_equal(x->stages[1].id, "mine");
    assert_int_equal(x->stages[1].line, 6);
    char *p = rn_json_canonical(x->stages[1].params);
    assert_string_equal(p, "{\"opt\":{\"kind\":\"adamw\",\"lr\":0.001}}");
    free(p);
    p = rn_json_canonical(x->stages[2].params);
    assert_string_equal(p, "{\"model\":{\"blocks\":[1,1],\"kind\":\"resnet\"},\"n\":3}");
    free(p);
    rn_experiment_free(x);
}

static void test_data_helper(void **state) {
    fixture *f = *state;
    rn_experiment *x;
    lm_err e = {0};
    const char *text = "local lumen = require \"lumen\"\n"
                       "local e = lumen.experiment { name = \"d\", stages = { lumen.s { a = lumen.data \"l.csv\","
                       " b = lumen.data \"/abs/x\" } } }\n"
                       "return e\n";
    setenv("LUMEN_DATA", "/data/elpv/", 1);
    assert_int_equal(load(f, text, &x, &e), 0);
    assert_int_equal(x->line, 2); /* not a tail call: Lua knows the line */
    char *p = rn_json_canonical(x->stages[0].params);
    assert_string_equal(p, "{\"a\":\"/data/elpv/l.csv\",\"b\":\"/abs/x\"}");
    free(p);
    rn_experiment_free(x);
    unsetenv("LUMEN_DATA");
    assert_int_equal(load(f, text, &x, &e), 0);
    p = rn_json_canonical(x->stages[0].params);
    assert_string_equal(p, "{\"a\":\"data/elpv/l.csv\",\"b\":\"/abs/x\"}");
    free(p);
    rn_experiment_free(x);
}

static void load_bad(fixture *f, const char *stages_and_keys, const char *want) {
    char *text = hx_fmt("local lumen = require \"lumen\"\nreturn lumen.experiment {\n  name = \"b\",\n%s}\n",
                        stages_and_keys);
    rn_experiment *x = NULL;
    lm_err e = {0};
    int rc = load(f, text, &x, &e);
    free(text);
    assert_int_equal(rc, LUMEN_EINVAL);
    assert_null(x);
    char *full = hx_fmt("%s/%s", f->tmp, want);
    if (strcmp(e.msg, full) != 0) fail_msg("got:  %s\nwant: %s", e.msg, full);
    free(full);
}

static void test_conversion_errors(void **state) {
    fixture *f = *state;
    load_bad(f, "  stages = { lumen.s { t = { 1, 2, x = 3 } } },\n",
             "exp.lua:4: stage 's': parameter 't': table mixes list items and named keys");
    load_bad(f, "  stages = { lumen.s { t = { [1] = 1, [3] = 3 } } },\n",
             "exp.lua:4: stage 's': parameter 't': list has a hole at position 2 (nil?)");
    load_bad(f, "  stages = { lumen.s { f = print } },\n",
             "exp.lua:4: stage 's': parameter 'f': a function cannot be a value here");
    load_bad(f, "  stages = { lumen.s { n = math.huge } },\n",
             "exp.lua:4: stage 's': parameter 'n': inf is not a finite number");
    load_bad(f, "  stages = { lumen.s { deep = { a = { [true] = 1 } } } },\n",
             "exp.lua:4: stage 's': parameter 'deep.a': key true is neither a name nor a list position");
}

static void test_experiment_errors(void **state) {
    fixture *f = *state;
    load_bad(f, "  stage = {},\n", "exp.lua:2: unknown experiment key 'stage' (did you mean 'stages'?)");
    load_bad(f, "  stages = {},\n", "exp.lua:2: experiment needs stages = { lumen.<stage> { ... }, ... }");
    load_bad(f, "  stages = { { size = 3 } },\n",
             "exp.lua:2: stages[1] is not a stage (build it with lumen.<stage> { ... } or lumen.stage(\"name\", { "
             "... }))");
    load_bad(f, "  seed = -1, stages = { lumen.s {} },\n", "exp.lua:2: experiment seed must be a non-negative integer");
    char *want = hx_fmt("exp.lua:6: stage id 's' is used twice (first at %s/exp.lua:5); give one of them id = "
                        "\"...\"",
                        f->tmp);
    load_bad(f, "  stages = {\n    lumen.s {},\n    lumen.s {},\n  },\n", want);
    free(want);
}

static void test_lua_errors(void **state) {
    fixture *f = *state;
    char *path = hx_join(f->tmp, "exp.lua");
    hx_write(path, "local lumen = require \"lumen\"\nreturn lumen.experiment { name = }\n");
    cJSON *j = NULL;
    char *tb = NULL;
    lm_err e = {0};
    assert_int_equal(rn_lua_eval(path, &f->dirs, &j, &tb, &e), LUMEN_EINVAL);
    char *want = hx_fmt("%s:2: unexpected symbol near '}'", path);
    assert_string_equal(e.msg, want);
    free(want);
    free(tb);
    lm_err_clear(&e);
    hx_write(path, "local lumen = require \"lumen\"\nlumen.s(42)\n");
    assert_int_equal(rn_lua_eval(path, &f->dirs, &j, &tb, &e), LUMEN_EINVAL);
    want = hx_fmt("%s:2: lumen.s expects a table of parameters, got number", path);
    assert_string_equal(e.msg, want);
    assert_non_null(tb);
    assert_non_null(strstr(tb, "stack traceback:"));
    free(want);
    free(tb);
    lm_err_clear(&e);
    assert_int_equal(rn_lua_eval("/nonexistent/exp.lua", &f->dirs, &j, NULL, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent/exp.lua"));
    free(path);
}

/* Evaluates `text` as f->tmp/exp.lua; returns the rc, e holds the message. */
static int eval_text(fixture *f, const char *text, lm_err *e) {
    char *path = hx_join(f->tmp, "exp.lua");
    hx_write(path, text);
    cJSON *j = NULL;
    int rc = rn_lua_eval(path, &f->dirs, &j, NULL, e);
    cJSON_Delete(j);
    free(path);
    return rc;
}

/* Line 2 of an experiment is `line`; the evaluation must fail with
 * "<path>:2: <want>". */
static void refused(fixture *f, const char *line, const char *want) {
    char *text = hx_fmt("local lumen = require \"lumen\"\n%s\nreturn lumen.experiment { name = \"x\", stages = {} }\n",
                        line);
    lm_err e = {0};
    int rc = eval_text(f, text, &e);
    char *full = hx_fmt("%s/exp.lua:2: %s", f->tmp, want);
    if (rc != LUMEN_EINVAL || strcmp(e.msg, full) != 0)
        fail_msg("%s\n  want %s\n  got  (%d) %s", line, full, rc, e.msg);
    free(full);
    free(text);
}

#define NA "is not available in experiment files (they must have no side effects)"

/* (the refused calls are harmless ones, in case the sandbox breaks) */
static void test_sandbox_refuses_side_effects(void **state) {
    fixture *f = *state;
    refused(f, "local f = io.open(\"/nonexistent/x.txt\", \"w\")", "'io' " NA);
    refused(f, "io.stderr:write(\"x\")", "'io' " NA);
    refused(f, "os.execute(\"true\")", "'os.execute' " NA);
    refused(f, "os.exit(3)", "'os.exit' " NA);
    refused(f, "os.remove(\"/nonexistent/x\")", "'os.remove' " NA);
    refused(f, "os.rename(\"/nonexistent/x\", \"/nonexistent/y\")", "'os.rename' " NA);
    refused(f, "local n = os.tmpname()", "'os.tmpname' " NA);
    refused(f, "package.loadlib(\"/lib/x.so\", \"f\")", "'package.loadlib' " NA);
    refused(f, "local i = debug.getinfo(1)", "'debug' " NA);
    refused(f, "dofile(\"x.lua\")", "'dofile' " NA);
    refused(f, "loadfile(\"x.lua\")", "'loadfile' " NA);
    refused(f, "require \"io\"", "'io' " NA);
    refused(f, "local t = setmetatable({}, { __gc = function() end })",
            "'__gc' metamethods are not available in experiment files (finalizers cannot be interrupted)");
    /* C modules: a .so where a Lua module would be is named, never loaded */
    char *so = hx_join(f->tmp, "cmod.so");
    hx_write(so, "not really a shared object");
    char *want = hx_fmt("module 'cmod' is a C module (%s); experiment files can require only Lua modules", so);
    refused(f, "local m = require \"cmod\"", want);
    free(want);
    free(so);
    lm_err e = {0};
    assert_int_equal(eval_text(f, "local m = require \"no_such_module\"\n", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "exp.lua:1: module 'no_such_module' not found (no no_such_module.lua in "));
    lm_err_clear(&e);
    /* binary chunks cannot be loaded */
    assert_int_equal(eval_text(f,
                               "local f, msg = load(string.dump(function() end))\n"
                               "assert(f == nil and msg:find(\"binary\"), msg)\n"
                               "return nil\n",
                               &e),
                     LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "it returned nil")); /* got past the assert */
    lm_err_clear(&e);
    /* the lumen module's helper is not given to experiment files */
    assert_int_equal(eval_text(f, "assert(lumen_host == nil, \"host visible\")\nreturn 1\n", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "it returned number"));
}

static void test_sandbox_allows(void **state) {
    fixture *f = *state;
    char *helper = hx_join(f->tmp, "helpers/common.lua");
    hx_write(helper, "local M = {}\nfunction M.lr() return tonumber(os.getenv(\"LR_FOR_TEST\")) end\nreturn M\n");
    setenv("LR_FOR_TEST", "0.25", 1);
    rn_experiment *x;
    lm_err e = {0};
    int rc = load(f,
                  "local lumen = require \"lumen\"\n"
                  "local common = require \"helpers.common\"\n"
                  "assert(require \"helpers.common\" == common)\n"
                  "local two = load(\"return 1 + one\", \"chunk\", \"t\", { one = 1 })()\n"
                  "local three = load(\"return math.floor(3.5)\")()\n"
                  "local s = (\"%s-%d\"):format(string.upper(\"a\"), utf8.len(\"\\u{e9}\"))\n"
                  "local ok = pcall(error, \"caught\")\n"
                  "assert(not ok and os.time() > 0 and os.clock() >= 0 and os.date(\"%Y\"))\n"
                  "local sorted = { 3, 1, 2 }\n"
                  "table.sort(sorted)\n"
                  "return lumen.experiment { name = s, seed = two + three + sorted[1],\n"
                  "  stages = { lumen.train { lr = common.lr() } } }\n",
                  &x, &e);
    unsetenv("LR_FOR_TEST");
    if (rc) fail_msg("%s", e.msg);
    assert_string_equal(x->name, "A-1");
    assert_int_equal(x->seed, 6);
    assert_int_equal(x->stages[0].line, 12);
    rn_experiment_free(x);
    free(helper);
}

static void test_error_values_have_position(void **state) {
    fixture *f = *state;
    refused(f, "error({})", "error object is a table value, not a message");
    refused(f, "local function boom() error(false) end boom()", "error object is a boolean value, not a message");
    refused(f, "error(setmetatable({}, { __tostring = function() return \"custom\" end }))", "custom");
    /* a string raised by a module keeps the module's position */
    char *mod = hx_join(f->tmp, "failing.lua");
    hx_write(mod, "local M = {}\nerror({ code = 1 })\nreturn M\n");
    lm_err e = {0};
    assert_int_equal(eval_text(f, "local m = require \"failing\"\n", &e), LUMEN_EINVAL);
    char *want = hx_fmt("%s:2: error object is a table value, not a message", mod);
    assert_string_equal(e.msg, want);
    free(want);
    free(mod);
}

static void test_time_budget(void **state) {
    fixture *f = *state;
    setenv("LUMEN_EVAL_TIMEOUT", "0.3", 1);
    lm_err e = {0};
    /* a pcall cannot swallow the stop */
    int rc = eval_text(f, "local n = 0\nwhile true do\n  pcall(function() while true do n = n + 1 end end)\nend\n", &e);
    assert_int_equal(rc, LUMEN_EINVAL);
    char *want = hx_fmt("experiment evaluation took longer than 0.3 s (stopped at %s/exp.lua:", f->tmp);
    if (!strstr(e.msg, want)) fail_msg("got %s", e.msg);
    assert_non_null(strstr(e.msg, "LUMEN_EVAL_TIMEOUT"));
    free(want);
    lm_err_clear(&e);
    setenv("LUMEN_EVAL_TIMEOUT", "soon", 1);
    assert_int_equal(eval_text(f, "return 1\n", &e), LUMEN_EINVAL);
    assert_string_equal(e.msg, "LUMEN_EVAL_TIMEOUT=soon: expected a number of seconds (0: no limit)");
    unsetenv("LUMEN_EVAL_TIMEOUT");
}

/* Found with tests/fuzz/fuzz_experiment: `s = s .. s` in a loop made the
 * runner allocate gigabytes while evaluating (the time budget only counts
 * VM instructions, and one concatenation of a big string is one).  Lua's
 * allocator now has a budget, and a pcall cannot swallow its stop. */
static void test_memory_budget(void **state) {
    fixture *f = *state;
    setenv("LUMEN_EVAL_MEMORY", "16", 1);
    lm_err e = {0};
    /* 2^27 bytes = 128 MiB at the end, far past 16 MiB */
    int rc = eval_text(f, "local s = 'x'\nfor i = 1, 27 do s = s .. s end\nreturn #s\n", &e);
    assert_int_equal(rc, LUMEN_EINVAL);
    if (!strstr(e.msg, "experiment evaluation needed more than 16 MiB of memory (stopped at "))
        fail_msg("got %s", e.msg);
    assert_non_null(strstr(e.msg, "exp.lua"));
    assert_non_null(strstr(e.msg, "LUMEN_EVAL_MEMORY"));
    lm_err_clear(&e);
    /* caught by pcall, again and again: still the memory stop */
    rc = eval_text(f,
                   "for k = 1, 100 do\n  pcall(function() local s = 'x' for i = 1, 27 do s = s .. s end end)\nend\n"
                   "return require('lumen').experiment { name = 'x', stages = {} }\n",
                   &e);
    assert_int_equal(rc, LUMEN_EINVAL);
    if (!strstr(e.msg, "needed more than 16 MiB")) fail_msg("got %s", e.msg);
    lm_err_clear(&e);
    /* one big C call is refused at once */
    rc = eval_text(f, "return string.rep('x', 64 * 1024 * 1024)\n", &e);
    assert_int_equal(rc, LUMEN_EINVAL);
    if (!strstr(e.msg, "needed more than 16 MiB")) fail_msg("got %s", e.msg);
    lm_err_clear(&e);
    /* 0: no limit; a bad value is named */
    setenv("LUMEN_EVAL_MEMORY", "0", 1);
    assert_int_equal(eval_text(f, "local s = string.rep('x', 32 * 1024 * 1024)\n"
                                  "return require('lumen').experiment { name = 'x', stages = {} }\n", &e), 0);
    setenv("LUMEN_EVAL_MEMORY", "lots", 1);
    assert_int_equal(eval_text(f, "return 1\n", &e), LUMEN_EINVAL);
    assert_string_equal(e.msg, "LUMEN_EVAL_MEMORY=lots: expected a number of MiB (0: no limit)");
    unsetenv("LUMEN_EVAL_MEMORY");
}

static void test_signal_stops_evaluation(void **state) {
    fixture *f = *state;
    rn_signals_install();
    raise(SIGINT); /* recorded by the handler; the hook sees it */
    lm_err e = {0};
    int rc = eval_text(f, "while true do end\n", &e);
    rn_signals_clear();
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    assert_int_equal(rc, LUMEN_ECANCELED);
    char *want = hx_fmt("interrupted (SIGINT) while evaluating %s/exp.lua (at %s/exp.lua:1)", f->tmp, f->tmp);
    assert_string_equal(e.msg, want);
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stage_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_helper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversion_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_experiment_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_refuses_side_effects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_allows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_values_have_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_stops_evaluation, setup, teardown),
    };
    return cmocka_run_group_tests_name("lua_bridge", tests, NULL, NULL);
}
