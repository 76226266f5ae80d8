/*
 * test_runner_cli.c -- the runner's commands that run nothing: --help,
 * --version, usage errors, `runner plugins` (found and refused plugins with
 * their reasons) and `runner describe`; and what the runner does with an
 * experiment file that misbehaves while it is evaluated (a loop stopped by
 * SIGINT or the time budget, print, os.exit, error({})); and plugins that
 * crash or hang while loading, refused without taking the runner down
 * (plugins, describe, and a run that does not need them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lumen/plugin.h>

#include "harness.h"

static const char *const ALL_PLUGINS[] = {"counter", "probe", "crash", "sleeper", "abi_wrong", "sig_wrong",
                                          "no_entry", "dup_counter", "bad_params", NULL};

typedef hx_fixture fixture;

static int setup(void **state) {
    *state = hx_fixture_new(ALL_PLUGINS);
    return 0;
}

static int teardown(void **state) {
    hx_fixture_free(*state);
    return 0;
}

/* Plugins that kill or stall whoever loads them, next to good ones; the
 * probe timeout is short so the hanging one costs half a second. */
static const char *const LOAD_BREAKERS[] = {"counter", "probe", "ctor_segv", "wild_entry", "ctor_hang", NULL};
static const char *const SHORT_PROBE[] = {"LUMEN_PROBE_TIMEOUT=0.5", NULL};

static int setup_breakers(void **state) {
    *state = hx_fixture_new(LOAD_BREAKERS);
    return 0;
}

static void test_help(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, NULL, NULL, "--help", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: runner EXPERIMENT.lua"));
    for (const char *const *c = (const char *const[]){"plugins", "describe STAGE", "runs [EXPERIMENT]", "--set",
                                                      "--dry-run", "--smoke", "--force", "--threads", "--runs",
                                                      "LUMEN_PLUGIN_PATH", "LUMEN_EVAL_TIMEOUT", "LUMEN_EVAL_MEMORY", NULL};
         *c; c++)
        assert_non_null(strstr(r.out, *c));
    hx_result_free(&r);
}

static void test_version(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, NULL, NULL, "--version", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "plugin ABI 1"));
    assert_non_null(strstr(r.out, LUMEN_SIGNATURE));
    hx_result_free(&r);
}

static void test_usage_errors(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 2);
    char *last = hx_last_line(r.err);
    assert_string_equal(last, "runner: no experiment or command given");
    free(last);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, NULL, NULL, "plugin", NULL);
    assert_int_equal(r.exit_code, 2);
    last = hx_last_line(r.err);
    assert_non_null(strstr(last, "unknown command 'plugin' (did you mean 'plugins'?)"));
    free(last);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, NULL, NULL, "x.lua", "--dryrun", NULL);
    assert_int_equal(r.exit_code, 2);
    last = hx_last_line(r.err);
    assert_non_null(strstr(last, "unknown option '--dryrun' (did you mean '--dry-run'?)"));
    free(last);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, NULL, NULL, "missing.lua", NULL);
    assert_int_equal(r.exit_code, 1);
    last = hx_last_line(r.err);
    assert_non_null(strstr(last, "runner: cannot open experiment file missing.lua"));
    free(last);
    hx_result_free(&r);
}

/* The line of `out` that mentions `needle`, or fail. */
static char *line_with(const char *out, const char *needle) {
    const char *p = strstr(out, needle);
    if (!p) fail_msg("no line with '%s' in:\n%s", needle, out);
    const char *s = p;
    while (s > out && s[-1] != '\n') s--;
    const char *e = strchr(p, '\n');
    return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

static void test_plugins_lists_found_and_refused(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "plugins", NULL);
    assert_int_equal(r.exit_code, 0);
    /* found: name, version, ABI and file */
    char *l = line_with(r.out, "counter.so");
    assert_non_null(strstr(l, "counter"));
    assert_non_null(strstr(l, "yes")); /* cacheable */
    free(l);
    l = line_with(r.out, "needy");
    assert_non_null(strstr(l, "probe.so")); /* two stages in one file */
    free(l);
    /* refused, each with its reason */
    l = line_with(r.out, "abi_wrong.so:");
    assert_non_null(strstr(l, "built for lumen ABI 2, this runner speaks 1"));
    free(l);
    l = line_with(r.out, "sig_wrong.so:");
    assert_non_null(strstr(l, "compatibility signature \"lumen-abi:1:ptr4:long4:be\" does not match"));
    free(l);
    l = line_with(r.out, "no_entry.so:");
    assert_non_null(strstr(l, "missing entry symbol lumen_plugin_stages"));
    assert_non_null(strstr(l, "undefined symbol")); /* dlerror text */
    free(l);
    l = line_with(r.out, "dup_counter.so:");
    assert_non_null(strstr(l, "stage 'counter' is already provided by"));
    assert_non_null(strstr(l, "counter.so"));
    free(l);
    l = line_with(r.out, "bad_params.so:");
    assert_non_null(strstr(l, "invalid parameter table: enum parameter 'mode' needs choices"));
    free(l);
    /* the duplicate is not listed as a second counter */
    assert_int_equal(hx_count(r.out, "test: duplicate stage name"), 0);
    assert_non_null(strstr(r.out, f->plugins)); /* the search path is shown */
    hx_result_free(&r);
}

static void test_plugins_with_none(void **state) {
    fixture *f = *state;
    char *empty = hx_join(f->tmp, "empty");
    char *readme = hx_join(empty, "readme.txt");
    hx_write(readme, "no plugins here\n");
    free(readme);
    hx_result r;
    hx_runner(&r, f->tmp, empty, NULL, "plugins", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(hx_count(r.out, "counter"), 0);
    hx_result_free(&r);
    free(empty);
}

static void test_describe(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "describe", "counter", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "counter 1 -- test: cacheable, records each execution"));
    assert_non_null(strstr(r.out, "outputs: count"));
    assert_non_null(strstr(r.out, "cacheable: yes"));
    char *l = line_with(r.out, "  record ");
    assert_non_null(strstr(l, "path"));
    assert_non_null(strstr(l, "(required)"));
    assert_non_null(strstr(l, "file that gets one line per execution"));
    free(l);
    l = line_with(r.out, "  x ");
    assert_non_null(strstr(l, "num"));
    assert_non_null(strstr(l, "[0, 10]"));
    free(l);
    l = line_with(r.out, "  mode ");
    assert_non_null(strstr(l, "fast|slow"));
    free(l);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, f->plugins, NULL, "describe", "probe", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "inputs: count (optional)"));
    l = line_with(r.out, "  pos_weight ");
    assert_non_null(strstr(l, "auto"));
    free(l);
    hx_result_free(&r);
}

static void test_describe_errors(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "describe", "countr", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "unknown stage 'countr' (did you mean 'counter'?)"));
    free(last);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, f->plugins, NULL, "describe", "abi-wrong", NULL);
    assert_int_equal(r.exit_code, 1);
    last = hx_last_line(r.err);
    assert_non_null(strstr(last, "abi_wrong.so was refused: built for lumen ABI 2, this runner speaks 1"));
    free(last);
    hx_result_free(&r);
}

/* ---- experiment files that misbehave while evaluated ---- */

typedef struct file_has {
    const char *path, *needle;
} file_has;

static int file_has_text(void *arg) {
    file_has *fh = arg;
    char *t = hx_read(fh->path);
    int ok = t && strstr(t, fh->needle);
    free(t);
    return ok;
}

/* Writes text to f->tmp/name. */
static void write_in(fixture *f, const char *name, const char *text) {
    char *path = hx_join(f->tmp, name);
    hx_write(path, text);
    free(path);
}

/* `while true do end` (with and without --dry-run) ends promptly on SIGINT
 * with status 1 and "interrupted" as the last line of stderr. */
static void test_sigint_stops_a_looping_experiment(void **state) {
    fixture *f = *state;
    write_in(f, "loop.lua", "print(\"evaluating\")\nwhile true do end\n");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    char *errf = hx_join(f->tmp, "err.txt"), *outf = hx_join(f->tmp, "out.txt");
    for (int dry = 0; dry < 2; dry++) {
        const char *argv[] = {runner, "loop.lua", dry ? "--dry-run" : NULL, NULL};
        const char *env[] = {pp, "LUMEN_RUNS", "LUMEN_EVAL_TIMEOUT", NULL};
        pid_t pid = hx_spawn(argv, f->tmp, env, outf, errf);
        file_has started = {errf, "evaluating"};
        int up = hx_wait_for(file_has_text, &started, 60);
        usleep(500000); /* in the loop */
        kill(pid, SIGINT);
        int status = 0;
        int ended = hx_wait(pid, 3, &status);
        if (!ended) {
            kill(pid, SIGKILL);
            hx_wait(pid, 10, &status);
        }
        assert_true(up);
        assert_true(ended);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 1);
        char *err = hx_read(errf), *out = hx_read(outf);
        char *last = hx_last_line(err);
        assert_string_equal(last, "runner: interrupted (SIGINT) while evaluating loop.lua (at loop.lua:2)");
        assert_string_equal(out, "");
        free(last);
        free(err);
        free(out);
    }
    free(errf);
    free(outf);
    free(pp);
    free(runner);
}

static void test_evaluation_time_budget(void **state) {
    fixture *f = *state;
    write_in(f, "slow.lua", "local lumen = require \"lumen\"\nwhile true do end\n");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "slow.lua", "--dry-run", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", "LUMEN_EVAL_TIMEOUT=1", NULL};
    hx_result r;
    hx_run(argv, f->tmp, env, 30, &r);
    assert_false(r.timed_out);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_string_equal(last, "runner: experiment evaluation took longer than 1 s (stopped at slow.lua:2); an "
                              "experiment file only describes the run (LUMEN_EVAL_TIMEOUT=SECONDS changes the "
                              "budget)");
    free(last);
    hx_result_free(&r);
    free(pp);
    free(runner);
}

/* print goes to stderr: `dir=$(runner exp.lua)` gets the run folder only. */
static void test_print_goes_to_stderr(void **state) {
    fixture *f = *state;
    write_in(f, "exp.lua", "local lumen = require \"lumen\"\n"
                                         "print(\"from the experiment\", 42)\n"
                                         "return lumen.experiment { name = \"printer\",\n"
                                         "  stages = { lumen.counter { record = \"rec.txt\" } } }\n");
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "from the experiment\t42\n"));
    assert_int_equal(hx_count(r.out, "\n"), 1);
    assert_non_null(strstr(r.out, "runs/printer/"));
    assert_null(strstr(r.out, "from the experiment"));
    hx_result_free(&r);
}

/* Line 2 of exp.lua is `line`: the runner exits 1 with `want` last. */
static void experiment_fails(fixture *f, const char *line, const char *want) {
    char *text = hx_fmt("local lumen = require \"lumen\"\n%s\nreturn lumen.experiment { name = \"x\", stages = "
                        "{ lumen.counter {} } }\n",
                        line);
    write_in(f, "exp.lua", text);
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", "--dry-run", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_string_equal(last, want);
    assert_string_equal(r.out, "");
    free(last);
    free(text);
    hx_result_free(&r);
}

static void test_experiment_side_effects_refused(void **state) {
    fixture *f = *state;
    experiment_fails(f, "os.exit(3)",
                     "runner: exp.lua:2: 'os.exit' is not available in experiment files (they must have no side "
                     "effects)");
    experiment_fails(f, "local x = 1\nerror({ x })", "runner: exp.lua:3: error object is a table value, not a message");
    experiment_fails(f, "io.open(\"/nonexistent/f\", \"w\")",
                     "runner: exp.lua:2: 'io' is not available in experiment files (they must have no side "
                     "effects)");
}

static void test_plugins_that_crash_while_loading_are_refused(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, SHORT_PROBE, "plugins", NULL);
    assert_int_equal(r.signal, 0);
    assert_int_equal(r.exit_code, 0);
    char *l = line_with(r.out, "counter.so");
    assert_non_null(strstr(l, "test: cacheable"));
    free(l);
    /* each bad file refused by path, with the signal or the timeout */
    l = line_with(r.out, "plugins/ctor_segv.so:");
    assert_non_null(strstr(l, "crashed while loading: signal 11 (Segmentation fault)"));
    free(l);
    l = line_with(r.out, "plugins/wild_entry.so:");
    assert_non_null(strstr(l, "crashed while loading: signal 11 (Segmentation fault)"));
    free(l);
    l = line_with(r.out, "plugins/ctor_hang.so:");
    assert_non_null(strstr(l, "did not finish loading within 0.5 s"));
    free(l);
    assert_int_equal(hx_count(r.out, "never seen"), 0); /* their stages are not listed */
    hx_result_free(&r);

    /* a bad timeout is a clear error, not a silent default */
    const char *bad[] = {"LUMEN_PROBE_TIMEOUT=soon", NULL};
    hx_runner(&r, f->tmp, f->plugins, bad, "plugins", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "LUMEN_PROBE_TIMEOUT 'soon' is not a number of seconds in (0, 3600]"));
    free(last);
    hx_result_free(&r);
}

static void test_describe_with_plugins_that_crash_while_loading(void **state) {
    fixture *f = *state;
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, SHORT_PROBE, "describe", "counter", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "counter 1 -- test: cacheable, records each execution"));
    hx_result_free(&r);

    /* asking for the crashing file's stage names the file and the signal */
    hx_runner(&r, f->tmp, f->plugins, SHORT_PROBE, "describe", "ctor-segv", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "ctor_segv.so was refused: crashed while loading: signal 11 (Segmentation fault)"));
    free(last);
    hx_result_free(&r);
}

static void test_run_with_plugins_that_crash_while_loading(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "survive", "    lumen.counter { record = \"rec.txt\" },\n");
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, SHORT_PROBE, "exp.lua", NULL);
    hx_assert_ran(&r, "runner");
    char *want = hx_fmt("plugin %s/ctor_segv.so refused: crashed while loading: signal 11 (Segmentation fault)",
                        f->plugins);
    assert_non_null(strstr(r.err, want));
    free(want);
    want = hx_fmt("plugin %s/wild_entry.so refused: crashed while loading: signal 11", f->plugins);
    assert_non_null(strstr(r.err, want));
    free(want);
    want = hx_fmt("plugin %s/ctor_hang.so refused: did not finish loading within 0.5 s", f->plugins);
    assert_non_null(strstr(r.err, want));
    free(want);
    char *rec = hx_join(f->tmp, "rec.txt");
    char *text = hx_read(rec);
    assert_int_equal(hx_count(text, "ran "), 1); /* the good stage ran */
    free(text);
    free(rec);
    hx_result_free(&r);

    /* an experiment that needs the crashing file's stage fails, naming it */
    hx_write_experiment(f->tmp, "exp.lua", "needs", "    lumen.ctor_segv {},\n");
    hx_runner(&r, f->tmp, f->plugins, SHORT_PROBE, "exp.lua", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    want = hx_fmt("runner: exp.lua:5: stage 'ctor-segv': plugin %s/ctor_segv.so was refused: crashed while "
                  "loading: signal 11 (Segmentation fault)",
                  f->plugins);
    assert_string_equal(last, want);
    free(want);
    free(last);
    hx_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugins_lists_found_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugins_with_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigint_stops_a_looping_experiment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evaluation_time_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_goes_to_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_experiment_side_effects_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugins_that_crash_while_loading_are_refused, setup_breakers, teardown),
        cmocka_unit_test_setup_teardown(test_describe_with_plugins_that_crash_while_loading, setup_breakers,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_run_with_plugins_that_crash_while_loading, setup_breakers, teardown),
    };
    return cmocka_run_group_tests_name("runner_cli", tests, NULL, NULL);
}
