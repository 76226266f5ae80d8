/*
 * test_sweep.c -- lumen.sweep end to end with the `curve` test plugin (a
 * training-like stage whose per-epoch metric is a known function of its
 * parameters and seed): a --smoke sweep of 4 trials whose results table
 * equals the trials' own summaries, crash and timeout recorded as failures
 * while the others finish, ASHA pruning, named variants, SIGKILL of the
 * sweep's runner then --resume with every trial exactly once (adopted and
 * continued), deterministic random draws, and space typos refused before
 * anything runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

static const char *const PLUGINS[] = {"counter", "curve", NULL};

typedef hx_fixture fixture;

static int setup(void **state) {
    *state = hx_fixture_new(PLUGINS);
    return 0;
}

static int teardown(void **state) {
    hx_fixture_free(*state);
    return 0;
}

static cJSON *read_json(const char *dir, const char *name) {
    char *path = hx_join(dir, name);
    char *text = hx_read(path);
    if (!text) fail_msg("%s is missing", path);
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("%s is not JSON:\n%s", path, text);
    free(text);
    free(path);
    return j;
}

static const cJSON *at(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static char *run_ok(fixture *f, char **err, const char *a1, const char *a2, const char *a3) {
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", a1, a2, a3, NULL);
    hx_assert_ran(&r, "runner");
    char *rel = hx_last_line(r.out);
    char *dir = hx_join(f->tmp, rel);
    if (err) *err = strdup(r.err);
    free(rel);
    hx_result_free(&r);
    return dir;
}

/* How many journal events of type t (and, with n >= 0, of trial n). */
static int journal_count(const char *run, const char *t, int n) {
    char *path = hx_join(run, "journal.jsonl");
    char *text = hx_read(path);
    int count = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        const cJSON *tt = at(ev, "t");
        if (cJSON_IsString(tt) && strcmp(tt->valuestring, t) == 0 &&
            (n < 0 || (int)cJSON_GetNumberValue(at(ev, "n")) == n))
            count++;
        cJSON_Delete(ev);
    }
    free(text);
    free(path);
    return count;
}

static const cJSON *row_of(const cJSON *res, int config) {
    for (const cJSON *r = at(res, "rows")->child; r; r = r->next)
        if ((int)cJSON_GetNumberValue(at(r, "config")) == config) return r;
    fail_msg("no row for configuration %d", config);
    return NULL;
}

static void test_smoke_sweep_table_matches_trials(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp, "      seeds = { 1, 2, 3 },\n      space = { [\"curve.a\"] = { 0.5, 0.9, 0.2 } },", "epochs = 3");
    char *err;
    char *run = run_ok(f, &err, "--smoke", NULL, NULL);
    /* --smoke: the first two configurations x the first two seeds */
    assert_int_equal(journal_count(run, "start", -1), 4);
    assert_int_equal(journal_count(run, "end", -1), 4);
    assert_non_null(strstr(err, "rank config"));
    /* the upstream stage ran once, not per trial */
    char *up = hx_join(f->tmp, "up.txt");
    char *text = hx_read(up);
    assert_int_equal(hx_count(text, "ran "), 1);
    free(text);
    free(up);
    cJSON *res = read_json(run, "results.json");
    assert_int_equal(cJSON_GetArraySize(at(res, "rows")), 2);
    const uint64_t seeds[] = {1, 2};
    for (int c = 0; c < 2; c++) {
        const cJSON *row = row_of(res, c);
        double sum = 0;
        for (int s = 0; s < 2; s++) {
            int n = c * 2 + s;
            char *td = hx_fmt("%s/trials/%d", run, n);
            cJSON *summary = read_json(td, "summary.json");
            cJSON *cfg = read_json(td, "config.json");
            double v = cJSON_GetNumberValue(at(summary, "val/score"));
            double a = c == 0 ? 0.5 : 0.9;
            assert_true(fabs(v - (a * (1 - exp(-3.0)) + 0.001 * (double)(seeds[s] % 7))) < 1e-12);
            assert_true(cJSON_GetNumberValue(cJSON_GetArrayItem(at(row, "values"), s)) == v);
            assert_int_equal((uint64_t)cJSON_GetNumberValue(at(at(cfg, "experiment"), "seed")), seeds[s]);
            sum += v;
            cJSON_Delete(summary);
            cJSON_Delete(cfg);
            free(td);
        }
        assert_true(fabs(cJSON_GetNumberValue(at(row, "mean")) - sum / 2) < 1e-12);
    }
    /* configuration 1 wins; its paired difference to the control is 0.4 (1 - e^-3) */
    assert_int_equal((int)cJSON_GetNumberValue(at(row_of(res, 1), "rank")), 1);
    assert_true(fabs(cJSON_GetNumberValue(at(row_of(res, 1), "diff")) - 0.4 * (1 - exp(-3.0))) < 1e-9);
    assert_int_equal((int)cJSON_GetNumberValue(at(at(res, "best"), "config")), 1);
    cJSON_Delete(res);
    char *best = hx_join(run, "best/score.txt");
    assert_true(hx_exists(best));
    free(best);
    char *csv_path = hx_join(run, "results.csv");
    char *csv = hx_read(csv_path);
    assert_non_null(csv);
    assert_int_equal(hx_count(csv, "\n"), 3);
    assert_non_null(strstr(csv, "config,rank,curve.a,mean,sd,n,seed_1,seed_2,diff_vs_control"));
    free(csv);
    free(csv_path);
    /* `runner runs sw` shows the table */
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", "sw", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "rank config"));
    assert_non_null(strstr(r.out, "curve.a=0.9"));
    hx_result_free(&r);
    free(err);
    free(run);
}

static void test_crash_and_timeout_fail_others_finish(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp, "      timeout = 2,\n      space = { [\"curve.mode\"] = { \"ok\", \"crash\", \"hang\" } },",
                "epochs = 2");
    char *asan = hx_asan_env("handle_segv=0"); /* let the signal kill the stage */
    const char *env[] = {asan, NULL};
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, env, "exp.lua", NULL);
    hx_assert_ran(&r, "runner");
    char *rel = hx_last_line(r.out);
    char *run = hx_join(f->tmp, rel);
    cJSON *res = read_json(run, "results.json");
    assert_string_equal(at(row_of(res, 0), "status")->valuestring, "finished");
    assert_string_equal(at(row_of(res, 1), "status")->valuestring, "failed");
    assert_string_equal(at(row_of(res, 2), "status")->valuestring, "failed");
    assert_int_equal((int)cJSON_GetNumberValue(at(res, "failed")), 2);
    assert_non_null(strstr(r.err, "crashed: signal 11"));
    assert_non_null(strstr(r.err, "timeout: still running after"));
    cJSON_Delete(res);
    hx_result_free(&r);
    free(rel);
    free(run);
    free(asan);
}

static void test_asha_prunes_the_hopeless(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      space = { [\"curve.a\"] = { 0.9, 0.2, 0.95, 0.1 } },\n"
                   "      prune = lumen.asha { metric = \"val/score\", min_epochs = 1, reduction = 2 },",
                   "epochs = 4, sleep = 0.3");
    char *err;
    char *run = run_ok(f, &err, NULL, NULL, NULL);
    cJSON *res = read_json(run, "results.json");
    assert_string_equal(at(row_of(res, 0), "status")->valuestring, "finished");
    assert_string_equal(at(row_of(res, 1), "status")->valuestring, "pruned");
    assert_string_equal(at(row_of(res, 2), "status")->valuestring, "finished");
    assert_string_equal(at(row_of(res, 3), "status")->valuestring, "pruned");
    assert_int_equal((int)cJSON_GetNumberValue(at(row_of(res, 1), "epochs")), 1);
    assert_non_null(strstr(err, "pruned at epoch 1"));
    cJSON_Delete(res);
    free(err);
    free(run);
}

static void test_variants_name_the_alternatives(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      space = { curve = lumen.variants { { \"low\", { a = 0.2, record = \"rec.txt\" } },\n"
                   "                                         { \"high\", { a = 0.8, record = \"rec.txt\" } } } },",
                   "a = 0.5");
    char *run = run_ok(f, NULL, NULL, NULL, NULL);
    cJSON *res = read_json(run, "results.json");
    assert_string_equal(at(at(row_of(res, 0), "params"), "curve")->valuestring, "low");
    assert_string_equal(at(at(row_of(res, 1), "params"), "curve")->valuestring, "high");
    assert_int_equal((int)cJSON_GetNumberValue(at(row_of(res, 1), "rank")), 1);
    cJSON_Delete(res);
    free(run);
}

static char *journal_points(const char *run) {
    char *path = hx_join(run, "journal.jsonl");
    char *text = hx_read(path);
    free(path);
    size_t cap = 4096, off = 0;
    char *out = calloc(cap, 1);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        if (strcmp(at(ev, "t")->valuestring, "config") == 0) {
            char *p = cJSON_PrintUnformatted(at(ev, "point"));
            off += (size_t)snprintf(out + off, cap - off, "%s;", p);
            free(p);
        }
        cJSON_Delete(ev);
    }
    free(text);
    return out;
}

static void test_random_draws_are_deterministic(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      strategy = \"random\", trials = 3,\n"
                   "      space = { [\"curve.a\"] = lumen.loguniform(0.01, 1), [\"curve.b\"] = lumen.uniform(0.5, 2) },",
                   "epochs = 1");
    char *r1 = run_ok(f, NULL, NULL, NULL, NULL);
    char *r2 = run_ok(f, NULL, NULL, NULL, NULL);
    char *p1 = journal_points(r1), *p2 = journal_points(r2);
    assert_int_equal(hx_count(p1, ";"), 3);
    assert_string_equal(p1, p2);
    char *r3 = run_ok(f, NULL, "--set", "sweep.seed=7", NULL);
    char *p3 = journal_points(r3);
    assert_string_not_equal(p1, p3);
    free(p1);
    free(p2);
    free(p3);
    free(r1);
    free(r2);
    free(r3);
}

static void test_space_typos_fail_before_running(void **state) {
    fixture *f = *state;
    struct {
        const char *fields, *needle;
    } cases[] = {
        {"      space = { [\"curve.aa\"] = { 1, 2 } },", "no parameter 'aa' (did you mean 'a'"},
        {"      space = { [\"counter.x\"] = { 1, 2 } },", "runs once before the sweep"},
        {"      space = { [\"curv.a\"] = { 1, 2 } },", "no stage with that id inside the sweep"},
        {"      seedz = { 1 }, space = { [\"curve.a\"] = { 1 } },", "unknown sweep key 'seedz' (did you mean 'seeds'"},
        {"      space = { [\"curve.a\"] = lumen.uniform(0, 1) },", "need strategy \"random\" or \"tpe\""},
        {"      space = { [\"curve.a\"] = { 1, 20 } },", "exp.lua:6: sweep configuration"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hx_write_sweep(f->tmp, cases[i].fields, "epochs = 1");
        hx_result r;
        hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", NULL);
        assert_int_equal(r.exit_code, 1);
        char *last = hx_last_line(r.err);
        if (!strstr(last, cases[i].needle)) fail_msg("case %zu: expected '%s' in: %s", i, cases[i].needle, last);
        free(last);
        hx_result_free(&r);
        char *runs = hx_join(f->tmp, "runs/sw");
        assert_false(hx_exists(runs)); /* nothing ran */
        free(runs);
    }
}

typedef struct file_count {
    const char *path, *needle;
    int n;
} file_count;

static int file_has_count(void *arg) {
    file_count *fc = arg;
    char *text = hx_read(fc->path);
    int n = hx_count(text, fc->needle);
    free(text);
    return n >= fc->n;
}

/* The newest run folder of experiment sw. */
static char *only_run(fixture *f) {
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", "sw", NULL);
    assert_int_equal(r.exit_code, 0);
    const char *p = strstr(r.out, "\nsw ");
    assert_non_null(p);
    char id[64];
    assert_int_equal(sscanf(p + 4, " %63s", id), 1);
    hx_result_free(&r);
    return hx_fmt("%s/runs/sw/%s", f->tmp, id);
}

static void test_sigkill_then_resume_runs_each_trial_once(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp, "      seeds = { 1, 2 },\n      space = { [\"curve.a\"] = { 0.5, 0.9 } },",
                "epochs = 4, sleep = 0.25");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    char *rec = hx_join(f->tmp, "rec.txt");
    /* 1: kill the sweep's runner while trial 2 runs; the trial goes on and
     * the resumed sweep adopts it */
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, NULL);
    file_count second = {rec, "run ", 2};
    assert_true(hx_wait_for(file_has_count, &second, 60));
    kill(pid, SIGKILL);
    int status;
    assert_true(hx_wait(pid, 30, &status));
    char *run = only_run(f);
    const char *rargv[] = {runner, "exp.lua", "--resume", run, NULL};
    char *out1 = hx_join(f->tmp, "resume1.err");
    pid = hx_spawn(rargv, f->tmp, env, NULL, out1);
    /* 2: kill the resumed runner and the running trial's whole process
     * group in trial 3: that trial continues from its state */
    file_count third = {rec, "run ", 3};
    assert_true(hx_wait_for(file_has_count, &third, 60));
    char *tm = hx_fmt("%s/trials/2/metrics.jsonl", run);
    file_count epoch = {tm, "val/score", 1};
    assert_true(hx_wait_for(file_has_count, &epoch, 60));
    kill(pid, SIGKILL);
    assert_true(hx_wait(pid, 30, &status));
    char *text = hx_read(out1);
    assert_non_null(strstr(text, "1 still running (adopted)"));
    free(text);
    cJSON *ts = read_json(run, "trials/2/status.json");
    pid_t tpid = (pid_t)cJSON_GetNumberValue(at(ts, "pid"));
    cJSON_Delete(ts);
    kill(-tpid, SIGKILL);
    usleep(300 * 1000);
    char *err;
    char *done = run_ok(f, &err, "--resume", run, NULL);
    assert_string_equal(done, run);
    for (int n = 0; n < 4; n++) {
        assert_int_equal(journal_count(run, "end", n), 1);
        char *td = hx_fmt("%s/trials/%d", run, n);
        cJSON *st = read_json(td, "status.json");
        assert_string_equal(at(st, "status")->valuestring, "finished");
        cJSON_Delete(st);
        free(td);
    }
    /* every trial started from scratch once; trial 3 continued once */
    text = hx_read(rec);
    assert_int_equal(hx_count(text, "from=0"), 4);
    assert_int_equal(hx_count(text, "run "), 5);
    free(text);
    cJSON *res = read_json(run, "results.json");
    assert_int_equal((int)cJSON_GetNumberValue(at(res, "finished")), 4);
    cJSON_Delete(res);
    free(err);
    free(done);
    free(tm);
    free(out1);
    free(run);
    free(rec);
    free(pp);
    free(runner);
}

static void test_upstream_paths_reach_trials(void **state) {
    fixture *f = *state;
    char *path = hx_join(f->tmp, "exp.lua");
    hx_write(path, "local lumen = require \"lumen\"\n"
                   "return lumen.experiment {\n"
                   "  name = \"sw\", seed = 42,\n"
                   "  stages = {\n"
                   "    lumen.curve { id = \"pre\", epochs = 1 },\n"
                   "    lumen.sweep {\n"
                   "      metric = \"val/score\",\n"
                   "      space = { arm = lumen.variants { { \"plain\", {} },\n"
                   "        { \"linked\", { [\"curve.record\"] = lumen.upstream(\"pre\", \"model/from_trial.txt\") } } } },\n"
                   "      stages = { lumen.curve { epochs = 1 } },\n"
                   "    },\n"
                   "  },\n"
                   "}\n");
    char *run = run_ok(f, NULL, NULL, NULL, NULL);
    char *rec = hx_join(run, "pre/model/from_trial.txt");
    char *text = hx_read(rec);
    assert_non_null(text);
    assert_int_equal(hx_count(text, "run "), 1); /* only the "linked" trial wrote there */
    free(text);
    free(rec);
    free(run);
    free(path);
}

/* The journal's event types in order, as "s0 s1 e0 ..." (start/end + n). */
static char *journal_order(const char *run) {
    char *path = hx_join(run, "journal.jsonl");
    char *text = hx_read(path);
    free(path);
    char *out = calloc(4096, 1);
    size_t off = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        const char *t = at(ev, "t")->valuestring;
        if (strcmp(t, "config") != 0)
            off += (size_t)snprintf(out + off, 4096 - off, "%c%d ", t[0], (int)cJSON_GetNumberValue(at(ev, "n")));
        cJSON_Delete(ev);
    }
    free(text);
    return out;
}

static void test_parallel_splits_threads(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp, "      parallel = 2,\n      space = { [\"curve.a\"] = { 0.5, 0.9 } },", "epochs = 2, sleep = 0.5");
    char *run = run_ok(f, NULL, "--threads", "2", NULL);
    char *order = journal_order(run);
    /* both start before either ends (that is the parallelism); the two
     * trials take the same time, so they may end in either order */
    assert_true(strcmp(order, "s0 s1 e0 e1 ") == 0 || strcmp(order, "s0 s1 e1 e0 ") == 0);
    for (int n = 0; n < 2; n++) {
        char *td = hx_fmt("%s/trials/%d", run, n);
        cJSON *cfg = read_json(td, "config.json");
        assert_int_equal((int)cJSON_GetNumberValue(at(cfg, "threads")), 1);
        cJSON_Delete(cfg);
        free(td);
    }
    free(order);
    free(run);
}

static void test_sigint_stops_trials_and_resume_continues(void **state) {
    fixture *f = *state;
    hx_write_sweep(f->tmp, "      space = { [\"curve.a\"] = { 0.5, 0.9 } },", "epochs = 4, sleep = 0.4");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    char *errf = hx_join(f->tmp, "int.err");
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, errf);
    char *tm = hx_fmt("%s/runs/sw", f->tmp);
    char *rec = hx_join(f->tmp, "rec.txt");
    file_count one = {rec, "run ", 1};
    assert_true(hx_wait_for(file_has_count, &one, 60));
    char *run = only_run(f);
    char *metrics = hx_fmt("%s/trials/0/metrics.jsonl", run);
    file_count epoch = {metrics, "val/score", 1};
    assert_true(hx_wait_for(file_has_count, &epoch, 60));
    kill(pid, SIGINT);
    int status;
    assert_true(hx_wait(pid, 60, &status));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    char *err = hx_read(errf);
    assert_non_null(strstr(err, "sweep interrupted (SIGINT)"));
    free(err);
    assert_int_equal(journal_count(run, "end", -1), 0);
    char *done = run_ok(f, NULL, "--resume", run, NULL);
    assert_int_equal(journal_count(run, "end", 0), 1);
    assert_int_equal(journal_count(run, "end", 1), 1);
    char *text = hx_read(rec);
    assert_int_equal(hx_count(text, "from=0"), 2); /* trial 0 continued, not restarted */
    assert_int_equal(hx_count(text, "run "), 3);
    free(text);
    free(done);
    free(metrics);
    free(run);
    free(rec);
    free(tm);
    free(errf);
    free(pp);
    free(runner);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_smoke_sweep_table_matches_trials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_and_timeout_fail_others_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_asha_prunes_the_hopeless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variants_name_the_alternatives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_draws_are_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_typos_fail_before_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_then_resume_runs_each_trial_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_splits_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstream_paths_reach_trials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigint_stops_trials_and_resume_continues, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
