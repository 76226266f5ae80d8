/*
 * test_runner_exec.c -- running pipelines: the cache (hit on a second run,
 * --force, keys that follow parameters, key(), repair), --dry-run, --smoke,
 * inputs from a cached producer, the run folder's files, a crashing stage,
 * a runner killed with SIGKILL mid-stage, SIGINT, getter misuse, fail(),
 * `runner runs`, and the experiment seed in the keys of the real ingest and
 * augment-materialize stages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dataset.h"
#include "harness.h"
#include "ingest_fx.h"
#include "proc.h"

static const char *const PLUGINS[] = {"counter", "probe", "crash", "sleeper", NULL};

typedef hx_fixture fixture;

static int setup(void **state) {
    *state = hx_fixture_new(PLUGINS);
    return 0;
}

static int teardown(void **state) {
    hx_fixture_free(*state);
    return 0;
}

/* Runs exp.lua (plus args) and expects success; returns the run folder
 * (absolute) and, when err is non-NULL, a copy of stderr. */
static char *run_ok(fixture *f, char **err, const char *a1, const char *a2) {
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", a1, a2, NULL);
    hx_assert_ran(&r, "runner");
    char *rel = hx_last_line(r.out);
    char *dir = hx_join(f->tmp, rel);
    assert_true(hx_exists(dir));
    if (err) *err = strdup(r.err);
    free(rel);
    hx_result_free(&r);
    return dir;
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

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int record_lines(fixture *f, const char *name, const char *needle) {
    char *path = hx_join(f->tmp, name);
    char *text = hx_read(path);
    int n = hx_count(text, needle);
    free(text);
    free(path);
    return n;
}

/* Complete entries of a stage in the cache, and its leftover scratch folders. */
static void count_entries(fixture *f, const char *stage, int *complete, int *scratch) {
    *complete = *scratch = 0;
    char *dir = hx_fmt("%s/runs/.cache/%s", f->tmp, stage);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (strstr(de->d_name, ".tmp-") || strstr(de->d_name, ".old-")) {
            (*scratch)++;
            continue;
        }
        char *m = hx_fmt("%s/%s/.complete", dir, de->d_name);
        *complete += hx_exists(m);
        free(m);
    }
    if (d) closedir(d);
    free(dir);
}

static void test_cache_hit_then_force(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "cache", "    lumen.counter { record = \"rec.txt\", x = 3 },\n");
    char *err;
    char *run1 = run_ok(f, &err, NULL, NULL);
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 1);
    assert_non_null(strstr(err, "counter: running"));
    free(err);

    char *run2 = run_ok(f, &err, NULL, NULL);
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 1); /* not executed again */
    assert_non_null(strstr(err, "[1/1] counter: cached (runs/.cache/counter/"));
    free(err);
    assert_string_not_equal(run1, run2);
    /* the run folder links the cache entry it used */
    char *link = hx_join(run2, "counter");
    char target[512];
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_memory_equal(target, "../../.cache/counter/", 21);
    char *value = hx_fmt("%s/count/value.txt", link);
    char *text = hx_read(value);
    assert_string_equal(text, "x=3\n");
    free(text);
    free(value);
    free(link);
    cJSON *cfg = read_json(run2, "config.json");
    const cJSON *st = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cfg, "stages"), 0);
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(st, "cache"), "status"), "hit");
    cJSON_Delete(cfg);
    /* the cached stage's summary is replayed into the new run */
    cJSON *sum = read_json(run2, "summary.json");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sum, "val/score")));
    cJSON_Delete(sum);

    char *run3 = run_ok(f, &err, "--force", NULL);
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 2);
    assert_non_null(strstr(err, "counter: running"));
    free(err);
    int complete, scratch;
    count_entries(f, "counter", &complete, &scratch);
    assert_int_equal(complete, 1);
    assert_int_equal(scratch, 0);
    free(run1);
    free(run2);
    free(run3);
}

static void test_keys_follow_params_and_key_callback(void **state) {
    fixture *f = *state;
    char *k = hx_join(f->tmp, "k.txt");
    hx_write(k, "one");
    hx_write_experiment(f->tmp, "exp.lua", "keys",
                        "    lumen.counter { record = \"rec.txt\", key_file = \"k.txt\" },\n");
    free(run_ok(f, NULL, NULL, NULL));
    free(run_ok(f, NULL, "--set", "counter.x=4")); /* another parameter value: another key */
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 2);
    free(run_ok(f, NULL, "--set", "counter.x=1.0")); /* the default written differently: same key */
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 2);
    hx_write(k, "two"); /* key() folds the file content in */
    free(k);
    free(run_ok(f, NULL, NULL, NULL));
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 3);
    int complete, scratch;
    count_entries(f, "counter", &complete, &scratch);
    assert_int_equal(complete, 3);
}

static void test_dry_run_runs_nothing(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "dry",
                        "    lumen.counter { record = \"rec.txt\" },\n    lumen.probe { size = 8 },\n");
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", "--dry-run", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "[1] counter: stage counter 1"));
    assert_non_null(strstr(r.out, "      size = 300\n")); /* defaults are shown */
    assert_non_null(strstr(r.out, "      mode = \"fast\"\n"));
    assert_non_null(strstr(r.out, "      count <- counter\n"));
    assert_non_null(strstr(r.out, "cache: will run (key "));
    assert_non_null(strstr(r.out, "cache: not cacheable (the stage is not cacheable)"));
    hx_result_free(&r);
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 0);
    char *runs = hx_join(f->tmp, "runs/dry");
    assert_false(hx_exists(runs));
    free(runs);

    free(run_ok(f, NULL, NULL, NULL));
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", "--dry-run", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "cache: cached (runs/.cache/counter/"));
    hx_result_free(&r);
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 1);
}

static void test_smoke_reaches_stage_and_key(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "smoke", "    lumen.counter { record = \"rec.txt\" },\n");
    free(run_ok(f, NULL, NULL, NULL));
    free(run_ok(f, NULL, "--smoke", "--threads=3"));
    assert_int_equal(record_lines(f, "rec.txt", "ran smoke=0 threads="), 1);
    assert_int_equal(record_lines(f, "rec.txt", "ran smoke=1 threads=3 seed=42"), 1);
    free(run_ok(f, NULL, "--smoke", NULL)); /* smoke result is cached under its own key */
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 2);
}

static void test_inputs_from_cached_producer(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "inputs",
                        "    lumen.counter { record = \"rec.txt\", x = 7 },\n    lumen.probe {},\n");
    for (int i = 0; i < 2; i++) {
        char *run = run_ok(f, NULL, NULL, NULL);
        char *path = hx_join(run, "probe/probe/values.txt");
        char *v = hx_read(path);
        assert_non_null(v);
        char *input = hx_value(v, "input");
        assert_non_null(strstr(input, "/runs/.cache/counter/"));
        assert_non_null(strstr(input, "/count"));
        char *value = hx_value(v, "input_value");
        assert_string_equal(value, "x=7");
        char *rd = hx_value(v, "run_dir");
        assert_non_null(strstr(run, rd) ? rd : NULL);
        free(rd);
        free(value);
        free(input);
        free(v);
        free(path);
        free(run);
    }
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 1);
}

static void test_run_folder_files(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "files", "    lumen.counter { record = \"rec.txt\", x = 5 },\n");
    char *run = run_ok(f, NULL, NULL, NULL);
    char *p = hx_join(run, "metrics.jsonl");
    char *m = hx_read(p);
    assert_non_null(m);
    cJSON *line = cJSON_Parse(m);
    assert_non_null(line);
    assert_string_equal(jstr(line, "key"), "counter/x");
    assert_true(cJSON_GetObjectItemCaseSensitive(line, "value")->valuedouble == 5);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(line, "step")));
    assert_true(cJSON_GetObjectItemCaseSensitive(line, "time")->valuedouble > 1e9);
    cJSON_Delete(line);
    free(m);
    free(p);
    cJSON *sum = read_json(run, "summary.json");
    assert_true(cJSON_GetObjectItemCaseSensitive(sum, "val/score")->valuedouble == 0.5);
    cJSON_Delete(sum);
    cJSON *params = read_json(run, "params.json");
    assert_true(cJSON_GetObjectItemCaseSensitive(params, "counter.x")->valuedouble == 5);
    assert_string_equal(jstr(params, "counter.mode"), "fast");
    cJSON_Delete(params);
    cJSON *st = read_json(run, "status.json");
    assert_string_equal(jstr(st, "status"), "finished");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(st, "duration_s")));
    assert_non_null(jstr(st, "runner"));
    const cJSON *stg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "stages"), "counter");
    assert_string_equal(jstr(stg, "status"), "finished");
    cJSON_Delete(st);
    cJSON *cfg = read_json(run, "config.json");
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cfg, "stages"), 0);
    assert_string_equal(jstr(s0, "declared_at"), "exp.lua:5");
    assert_non_null(strstr(jstr(s0, "plugin"), "counter.so"));
    assert_string_equal(jstr(cJSON_GetObjectItemCaseSensitive(s0, "cache"), "status"), "miss");
    cJSON_Delete(cfg);
    /* the stage log has the log line and the plain stdout line */
    p = hx_join(run, "logs/counter.log");
    char *log = hx_read(p);
    assert_non_null(strstr(log, "INFO  counted x=5"));
    assert_non_null(strstr(log, "counter: plain stdout line"));
    free(log);
    free(p);
    /* the cache marker names the run that made it */
    char *mk = hx_fmt("%s/counter/.complete", run);
    char *marker = hx_read(mk);
    assert_non_null(strstr(marker, "\"files/"));
    free(marker);
    free(mk);
    free(run);
}

/* Runs an experiment that must fail; returns stderr's last line and the run
 * folder's status.json. */
static char *run_fail(fixture *f, const char *const *env, cJSON **status) {
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, env, "exp.lua", NULL);
    if (r.exit_code != 1) fail_msg("runner exited %d (signal %d):\n%s", r.exit_code, r.signal, r.err);
    char *last = hx_last_line(r.err);
    const char *rf = strstr(r.err, "run failed: ");
    assert_non_null(rf);
    char *rel = strndup(rf + 12, strcspn(rf + 12, "\n"));
    char *dir = hx_join(f->tmp, rel);
    *status = read_json(dir, "status.json");
    free(dir);
    free(rel);
    hx_result_free(&r);
    return last;
}

static void test_crash_is_recorded(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "crash",
                        "    lumen.counter { record = \"rec.txt\" },\n    lumen.crash {},\n");
    char *asan = hx_asan_env("handle_segv=0"); /* let the signal kill the stage */
    const char *env[] = {asan, NULL};
    cJSON *st;
    char *last = run_fail(f, env, &st);
    assert_non_null(strstr(last, "runner: stage 'crash' crashed: signal 11 (Segmentation fault); log: runs/crash/"));
    assert_non_null(strstr(last, "/logs/crash.log"));
    assert_string_equal(jstr(st, "status"), "failed");
    assert_non_null(strstr(jstr(st, "reason"), "signal 11"));
    const cJSON *stg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "stages"), "crash");
    assert_string_equal(jstr(stg, "status"), "failed");
    cJSON_Delete(st);
    /* its log kept what it said before dying */
    const char *lp = strstr(last, "log: ");
    char *log_path = hx_join(f->tmp, lp + 5);
    char *log = hx_read(log_path);
    assert_non_null(strstr(log, "about to crash"));
    assert_non_null(strstr(log, "crash: last words on stderr"));
    free(log);
    free(log_path);
    free(last);
    free(asan);
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 1); /* the stage before it ran */
}

static void test_fail_and_getter_misuse(void **state) {
    fixture *f = *state;
    cJSON *st;
    hx_write_experiment(f->tmp, "exp.lua", "fail", "    lumen.probe { fail_with = \"labels.csv:3: bad label\" },\n");
    char *last = run_fail(f, NULL, &st);
    assert_string_equal(last, "runner: stage 'probe': labels.csv:3: bad label");
    assert_string_equal(jstr(st, "reason"), "stage 'probe': labels.csv:3: bad label");
    cJSON_Delete(st);
    free(last);

    hx_write_experiment(f->tmp, "exp.lua", "fail", "    lumen.probe { misuse = true },\n");
    last = run_fail(f, NULL, &st);
    assert_non_null(strstr(last, "runner: stage 'probe': plugin "));
    assert_non_null(strstr(last, "get_int(\"nope\"): no parameter 'nope' is declared"));
    cJSON_Delete(st);
    free(last);
}

typedef struct file_has {
    const char *path;
    const char *needle;
} file_has;

static int file_has_text(void *arg) {
    file_has *fh = arg;
    char *t = hx_read(fh->path);
    int ok = t && strstr(t, fh->needle);
    free(t);
    return ok;
}

static int stage_pid_gone(void *arg) { return !rn_pid_alive(*(long *)arg); }

static void test_sigkill_mid_stage_then_redo(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "kill",
                        "    lumen.sleeper { record = \"rec.txt\", steps = 40, step_ms = 50 },\n");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, NULL);
    char *rec = hx_join(f->tmp, "rec.txt");
    file_has started = {rec, "start pid="};
    assert_true(hx_wait_for(file_has_text, &started, 60));
    kill(pid, SIGKILL);
    int status;
    assert_true(hx_wait(pid, 30, &status));
    assert_true(WIFSIGNALED(status));
    /* the stage process dies with its runner (PR_SET_PDEATHSIG) */
    char *text = hx_read(rec);
    long stage_pid = strtol(strstr(text, "start pid=") + 10, NULL, 10);
    free(text);
    assert_true(hx_wait_for(stage_pid_gone, &stage_pid, 30));
    int complete, scratch;
    count_entries(f, "sleeper", &complete, &scratch);
    assert_int_equal(complete, 0); /* no completed entry */
    assert_int_equal(record_lines(f, "rec.txt", "done"), 0);

    char *err;
    free(run_ok(f, &err, NULL, NULL));
    assert_non_null(strstr(err, "sleeper: running"));
    free(err);
    assert_int_equal(record_lines(f, "rec.txt", "start pid="), 2);
    assert_int_equal(record_lines(f, "rec.txt", "done"), 1);
    count_entries(f, "sleeper", &complete, &scratch);
    assert_int_equal(complete, 1);
    assert_int_equal(scratch, 0); /* the dead runner's tmp folder was removed */

    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", "kill", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(hx_count(r.out, " killed "), 1);
    assert_int_equal(hx_count(r.out, " finished "), 1);
    assert_non_null(strstr(r.out, "process died while running"));
    hx_result_free(&r);
    free(rec);
    free(pp);
    free(runner);
}

static void test_sigint_stops_the_stage(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "intr",
                        "    lumen.sleeper { record = \"rec.txt\", steps = 400, step_ms = 50 },\n");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    char *errf = hx_join(f->tmp, "err.txt");
    const char *argv[] = {runner, "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, errf);
    char *rec = hx_join(f->tmp, "rec.txt");
    file_has started = {rec, "start pid="};
    assert_true(hx_wait_for(file_has_text, &started, 60));
    kill(pid, SIGINT);
    int status;
    assert_true(hx_wait(pid, 60, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_int_equal(record_lines(f, "rec.txt", "cancelled"), 1); /* host->cancelled() saw it */
    char *err = hx_read(errf);
    char *last = hx_last_line(err);
    assert_string_equal(last, "runner: stage 'sleeper' interrupted (SIGINT)");
    int complete, scratch;
    count_entries(f, "sleeper", &complete, &scratch);
    assert_int_equal(complete + scratch, 0);
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", NULL);
    assert_non_null(strstr(r.out, "interrupted (SIGINT)"));
    assert_int_equal(hx_count(r.out, " failed "), 1);
    hx_result_free(&r);
    free(last);
    free(err);
    free(rec);
    free(errf);
    free(pp);
    free(runner);
}

static void test_damaged_entry_is_redone(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "repair", "    lumen.counter { record = \"rec.txt\" },\n");
    char *run = run_ok(f, NULL, NULL, NULL);
    char *marker = hx_fmt("%s/counter/.complete", run);
    assert_int_equal(unlink(marker), 0); /* an entry without its marker does not count */
    free(run_ok(f, NULL, NULL, NULL));
    assert_int_equal(record_lines(f, "rec.txt", "ran "), 2);
    assert_true(hx_exists(marker));
    free(marker);
    free(run);
}

static void test_runs_lists_runs(void **state) {
    fixture *f = *state;
    hx_write_experiment(f->tmp, "exp.lua", "listed", "    lumen.counter { record = \"rec.txt\", x = 2 },\n");
    free(run_ok(f, NULL, NULL, NULL));
    hx_write_experiment(f->tmp, "exp.lua", "listed", "    lumen.probe { fail_with = \"broken on purpose\" },\n");
    cJSON *st;
    free(run_fail(f, NULL, &st));
    cJSON_Delete(st);
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "EXPERIMENT"));
    const char *fin = strstr(r.out, " finished ");
    const char *fail = strstr(r.out, " failed ");
    assert_non_null(fin);
    assert_non_null(fail);
    assert_true(fin < fail); /* oldest first */
    assert_non_null(strstr(r.out, "val/score=0.2"));
    assert_non_null(strstr(r.out, "stage 'probe': broken on purpose"));
    assert_int_equal(hx_count(r.out, "listed "), 2);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", "nosuch", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "no runs of experiment 'nosuch'"));
    free(last);
    hx_result_free(&r);
}

static void test_refused_plugins_only_warn(void **state) {
    fixture *f = *state;
    char *bad = hx_fmt("%s/tests/plugins/abi_wrong.so", hx_build_dir());
    char *dst = hx_join(f->plugins, "abi_wrong.so");
    assert_int_equal(symlink(bad, dst), 0);
    hx_write_experiment(f->tmp, "exp.lua", "warn", "    lumen.counter { record = \"rec.txt\" },\n");
    char *err;
    free(run_ok(f, &err, NULL, NULL));
    assert_int_equal(hx_count(err, "runner: warning: plugin "), 1);
    assert_non_null(strstr(err, "abi_wrong.so refused: built for lumen ABI 2, this runner speaks 1"));
    free(err);
    free(dst);
    free(bad);
}

/* exp.lua with the given experiment seed (hx_write_experiment fixes 42). */
static void write_seeded(fixture *f, unsigned seed, const char *stage_lines) {
    char *path = hx_join(f->tmp, "exp.lua");
    char *text = hx_fmt("local lumen = require \"lumen\"\n"
                        "return lumen.experiment {\n"
                        "  name = \"seeded\", seed = %u,\n"
                        "  stages = {\n"
                        "%s"
                        "  },\n"
                        "}\n",
                        seed, stage_lines);
    hx_write(path, text);
    free(text);
    free(path);
}

/* data/labels.csv over n 8x8 gray PNGs in data/img, labels alternating. */
static void write_png_set(fixture *f, int n) {
    char *data = hx_join(f->tmp, "data");
    char *csv = hx_fmt("filename;crack\n");
    for (int i = 0; i < n; i++) {
        uint8_t px[64];
        for (int j = 0; j < 64; j++) px[j] = (uint8_t)(i * 17 + j * 3);
        char *png = hx_fmt("%s/img/c%d.png", data, i);
        fx_write_png(png, 8, 8, 0, 8, px, NULL, 0);
        free(png);
        char *more = hx_fmt("%simg/c%d.png;%d\n", csv, i, i % 2);
        free(csv);
        csv = more;
    }
    free(fx_write_text(data, "labels.csv", csv));
    free(csv);
    free(data);
}

/* The split seed recorded in the schema of the dataset a run's stage used
 * (run/<stage-id>/dataset, a link into the cache for a cached stage). */
static long long split_seed_of(const char *run, const char *stage_id) {
    char *dir = hx_fmt("%s/%s/dataset", run, stage_id);
    lm_dataset *ds = NULL;
    lm_err e = {0};
    if (lm_dataset_open(dir, &ds, &e)) fail_msg("%s", e.msg);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(lm_dataset_schema(ds), "split");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(sp, "seed");
    assert_true(cJSON_IsNumber(seed));
    long long v = (long long)seed->valuedouble;
    lm_dataset_close(ds);
    free(dir);
    return v;
}

/* Is s valid UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF)? */
static int utf8_ok(const unsigned char *s) {
    while (*s) {
        unsigned c = *s, cp, min;
        int n;
        if (c < 0x80) n = 0, cp = c, min = 0;
        else if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        s += n + 1;
    }
    return 1;
}

/* The JSON files of a run folder are valid UTF-8, and Python's json.load
 * reads them (when python3 is there). */
static void run_json_is_utf8(const char *run) {
    static const char *const FILES[] = {"status.json", "params.json", "config.json",
                                        "summary.json", NULL};
    for (int i = 0; FILES[i]; i++) {
        char *path = hx_join(run, FILES[i]);
        char *text = hx_read(path);
        if (!text) fail_msg("%s is missing", path);
        if (!utf8_ok((const unsigned char *)text)) fail_msg("%s is not valid UTF-8:\n%s", path, text);
        const char *argv[] = {"/usr/bin/env", "python3", "-c",
                              "import json,sys; json.load(open(sys.argv[1], encoding='utf-8'))",
                              path, NULL};
        hx_result r;
        hx_run(argv, NULL, NULL, 60, &r);
        if (r.exit_code != 0 && r.exit_code != 127) /* 127: no python3 */
            fail_msg("json.load(%s) failed:\n%s", path, r.err);
        hx_result_free(&r);
        free(text);
        free(path);
    }
}

/* Runs exp.lua, which must fail; returns the run folder and the reason
 * recorded in its status.json (a copy). */
static char *failed_run(fixture *f, char **reason) {
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "exp.lua", NULL);
    if (r.exit_code != 1) fail_msg("runner exited %d (signal %d):\n%s", r.exit_code, r.signal, r.err);
    const char *rf = strstr(r.err, "run failed: ");
    assert_non_null(rf);
    char *rel = strndup(rf + 12, strcspn(rf + 12, "\n"));
    char *dir = hx_join(f->tmp, rel);
    cJSON *st = read_json(dir, "status.json");
    assert_non_null(jstr(st, "reason"));
    *reason = strdup(jstr(st, "reason"));
    cJSON_Delete(st);
    free(rel);
    hx_result_free(&r);
    return dir;
}

/* Everything the runner writes as JSON is valid UTF-8, whatever bytes a
 * stage's message or a label file held: invalid bytes read as \xNN.  A
 * UTF-16 label file is named as such. */
static void test_json_stays_utf8(void **state) {
    fixture *f = *state;
    char *reason;
    /* a stage message with Latin-1, a lone continuation byte, a surrogate
     * and an overlong '/' */
    hx_write_experiment(f->tmp, "exp.lua", "bytes",
                        "    lumen.probe { fail_with = \"caf\\xe9 \\x80 \\xed\\xa0\\x80 \\xc0\\xaf "
                        "ok \\xc3\\xa9\" },\n");
    char *run = failed_run(f, &reason);
    assert_string_equal(reason, "stage 'probe': caf\\xe9 \\x80 \\xed\\xa0\\x80 \\xc0\\xaf ok \xc3\xa9");
    run_json_is_utf8(run);
    free(reason);
    free(run);

    /* a label file saved as UTF-16 (with its BOM) */
    write_png_set(f, 4);
    static const char ascii[] = "filename;crack\r\nimg/c0.png;1\r\nimg/c1.png;0\r\n";
    char u16[2 * sizeof ascii + 2] = {(char)0xFF, (char)0xFE};
    for (size_t i = 0; i + 1 < sizeof ascii; i++) u16[2 + 2 * i] = ascii[i];
    char *csv = hx_join(f->tmp, "data/u16.csv");
    FILE *fp = fopen(csv, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(u16, 1, 2 * (sizeof ascii - 1) + 2, fp), 2 * (sizeof ascii - 1) + 2);
    fclose(fp);
    hx_write_experiment(f->tmp, "exp.lua", "utf16",
                        "    lumen.ingest { csv = \"data/u16.csv\", size = 8 },\n");
    run = failed_run(f, &reason);
    assert_non_null(strstr(reason, "data/u16.csv: looks like UTF-16 text; save it as UTF-8"));
    run_json_is_utf8(run);
    free(reason);
    free(run);

    /* a Latin-1 file name in a label file, echoed by the error */
    free(fx_write_text(f->tmp, "data/l1.csv", "filename;crack\nimg/c0.png;1\nimg/caf\xe9.png;0\n"));
    hx_write_experiment(f->tmp, "exp.lua", "latin1",
                        "    lumen.ingest { csv = \"data/l1.csv\", size = 8 },\n");
    run = failed_run(f, &reason);
    assert_non_null(strstr(reason, "l1.csv:3:"));
    assert_non_null(strstr(reason, "img/caf\\xe9.png"));
    run_json_is_utf8(run);
    free(reason);
    free(run);
    free(csv);
}

static void test_seed_in_keys_of_seeded_stages(void **state) {
    fixture *f = *state;
    write_png_set(f, 12);
    static const char STAGES[] =
        "    lumen.ingest { csv = \"data/labels.csv\", size = 8, split = { val = 0.5 } },\n"
        "    lumen.augment_materialize { flip = true, brightness = 0.2 },\n";
    char *err;
    write_seeded(f, 1, STAGES);
    char *run1 = run_ok(f, &err, NULL, NULL);
    assert_non_null(strstr(err, "ingest: running"));
    assert_non_null(strstr(err, "augment-materialize: running"));
    free(err);
    assert_int_equal(split_seed_of(run1, "ingest"), 1);

    /* split.seed = "auto" follows the experiment seed: another seed is
     * another entry, for ingest and for the stage fed by it */
    write_seeded(f, 2, STAGES);
    char *run2 = run_ok(f, &err, NULL, NULL);
    assert_non_null(strstr(err, "ingest: running"));
    assert_non_null(strstr(err, "augment-materialize: running"));
    free(err);
    assert_int_equal(split_seed_of(run2, "ingest"), 2);
    int complete, scratch;
    count_entries(f, "ingest", &complete, &scratch);
    assert_int_equal(complete, 2);
    count_entries(f, "augment-materialize", &complete, &scratch);
    assert_int_equal(complete, 2);

    /* the same seed again hits both entries it made the first time */
    write_seeded(f, 1, STAGES);
    char *run3 = run_ok(f, &err, NULL, NULL);
    assert_non_null(strstr(err, "ingest: cached (runs/.cache/ingest/"));
    assert_non_null(strstr(err, "augment-materialize: cached (runs/.cache/augment-materialize/"));
    free(err);
    assert_int_equal(split_seed_of(run3, "ingest"), 1);
    free(run1);
    free(run2);
    free(run3);

    /* an explicit split.seed makes ingest independent of the experiment
     * seed; augment-materialize still draws from the experiment seed */
    static const char FIXED[] =
        "    lumen.ingest { csv = \"data/labels.csv\", size = 8, split = { val = 0.5, seed = 5 } },\n"
        "    lumen.augment_materialize { flip = true, brightness = 0.2 },\n";
    write_seeded(f, 1, FIXED);
    free(run_ok(f, NULL, NULL, NULL));
    write_seeded(f, 2, FIXED);
    run1 = run_ok(f, &err, NULL, NULL);
    assert_non_null(strstr(err, "ingest: cached (runs/.cache/ingest/"));
    assert_non_null(strstr(err, "augment-materialize: running"));
    free(err);
    assert_int_equal(split_seed_of(run1, "ingest"), 5);
    count_entries(f, "ingest", &complete, &scratch);
    assert_int_equal(complete, 3);
    count_entries(f, "augment-materialize", &complete, &scratch);
    assert_int_equal(complete, 4);
    free(run1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cache_hit_then_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_follow_params_and_key_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_runs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smoke_reaches_stage_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inputs_from_cached_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_folder_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_is_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_and_getter_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_mid_stage_then_redo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigint_stops_the_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_entry_is_redone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_lists_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_plugins_only_warn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_in_keys_of_seeded_stages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_stays_utf8, setup, teardown),
    };
    return cmocka_run_group_tests_name("runner_exec", tests, NULL, NULL);
}
