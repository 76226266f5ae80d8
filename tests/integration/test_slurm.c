/*
 * test_slurm.c -- sweeps on a real one-node Slurm cluster (lumen.slurm,
 * runner/executor_slurm.c).  The group setup starts munged, slurmctld and
 * slurmd on loopback in a temp folder (tests/slurm/cluster.sh) and points
 * SLURM_CONF at it; the teardown stops them by pid.  Every case is skipped,
 * saying why, where the Slurm packages are missing or we are not root.
 *
 * Cases: a --smoke sweep gives the local executor's results; scancel of one
 * task fails that trial (CANCELLED) and a task over its `time` fails
 * (TIMEOUT) while the other trial finishes; the sweep's runner SIGKILLed,
 * then --resume adopts the jobs and every trial runs exactly once with no
 * batch submitted twice; the runner dead right after an sbatch, before
 * journaling those starts: --resume adopts that batch by its job name;
 * slurmctld stopped for 20 s while trials run: the
 * sweep says it waits, and finishes.
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

static char *cluster_dir;   /* the cluster's temp folder; NULL when it did not start */
static char *cluster_skip;  /* why not */

static char *cluster_script(void) {
    char *src = hx_src_dir();
    char *p = hx_join(src, "tests/slurm/cluster.sh");
    free(src);
    return p;
}

static int cluster_cmd(const char *cmd, hx_result *r) {
    char *script = cluster_script();
    const char *argv[] = {"/bin/bash", script, cmd, cluster_dir, NULL};
    hx_run(argv, NULL, NULL, 60, r);
    free(script);
    return r->exit_code;
}

static int group_setup(void **state) {
    (void)state;
    cluster_dir = hx_tmpdir();
    hx_result r;
    int rc = cluster_cmd("start", &r);
    if (rc == 0) {
        char *conf = hx_value(r.out, "SLURM_CONF");
        setenv("SLURM_CONF", conf, 1);
        free(conf);
    } else {
        char *last = hx_last_line(r.err);
        cluster_skip = rc == 77 ? strdup(last) : hx_fmt("the test cluster did not start (exit %d): %s", rc, last);
        free(last);
        hx_result_free(&r);
        cluster_cmd("stop", &r);
        hx_rmtree(cluster_dir);
        free(cluster_dir);
        cluster_dir = NULL;
    }
    hx_result_free(&r);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (cluster_dir) {
        hx_result r;
        cluster_cmd("stop", &r);
        hx_result_free(&r);
        hx_rmtree(cluster_dir);
        free(cluster_dir);
    }
    free(cluster_skip);
    return 0;
}

static int setup(void **state) {
    *state = hx_fixture_new(PLUGINS);
    return 0;
}

static int teardown(void **state) {
    hx_fixture_free(*state);
    return 0;
}

static void need_cluster(void) {
    if (!cluster_dir) {
        print_message("%s\n", cluster_skip ? cluster_skip : "no Slurm test cluster");
        skip();
    }
}

static const cJSON *at(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

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

/* Runs the runner (timeout_s) and returns the run folder it printed. */
static char *run_ok(hx_fixture *f, double timeout_s, char **err, const char *a1, const char *a2, const char *a3) {
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "run", "exp.lua", a1, a2, a3, NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    hx_result r;
    hx_run(argv, f->tmp, env, timeout_s, &r);
    hx_assert_ran(&r, "runner");
    char *rel = hx_last_line(r.out);
    char *dir = hx_join(f->tmp, rel);
    if (err) *err = strdup(r.err);
    free(rel);
    hx_result_free(&r);
    free(pp);
    free(runner);
    return dir;
}

/* Journal events of type t (and of trial n when n >= 0); with job, the
 * job id of the last such event is copied there. */
static int journal_count(const char *run, const char *t, int n, char *job, size_t len) {
    char *path = hx_join(run, "journal.jsonl");
    char *text = hx_read(path);
    int count = 0;
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        const cJSON *tt = at(ev, "t");
        if (cJSON_IsString(tt) && strcmp(tt->valuestring, t) == 0 &&
            (n < 0 || (int)cJSON_GetNumberValue(at(ev, "n")) == n)) {
            count++;
            if (job && cJSON_IsString(at(ev, "job"))) snprintf(job, len, "%s", at(ev, "job")->valuestring);
        }
        cJSON_Delete(ev);
    }
    free(text);
    free(path);
    return count;
}

/* The reason journaled with trial n's end ("" when none). */
static char *end_reason(const char *run, int n) {
    char *path = hx_join(run, "journal.jsonl");
    char *text = hx_read(path);
    char *out = strdup("");
    char *save = NULL;
    for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        if (cJSON_IsString(at(ev, "t")) && strcmp(at(ev, "t")->valuestring, "end") == 0 &&
            (int)cJSON_GetNumberValue(at(ev, "n")) == n && cJSON_IsString(at(ev, "reason"))) {
            free(out);
            out = strdup(at(ev, "reason")->valuestring);
        }
        cJSON_Delete(ev);
    }
    free(text);
    free(path);
    return out;
}

static const cJSON *row_of(const cJSON *res, int config) {
    for (const cJSON *r = at(res, "rows")->child; r; r = r->next)
        if ((int)cJSON_GetNumberValue(at(r, "config")) == config) return r;
    fail_msg("no row for configuration %d", config);
    return NULL;
}

static void test_slurm_smoke_sweep_matches_local(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    const char *space = "      seeds = { 1, 2, 3 },\n      space = { [\"curve.a\"] = { 0.5, 0.9, 0.2 } },\n";
    char *fields = hx_fmt("%s      executor = lumen.slurm { cpus = 1, time = 5, poll = 0.5 },", space);
    hx_write_sweep(f->tmp, space, "epochs = 3");
    char *local = run_ok(f, 120, NULL, "--smoke", NULL, NULL);
    hx_write_sweep(f->tmp, fields, "epochs = 3");
    char *err;
    char *slurm = run_ok(f, 120, &err, "--smoke", NULL, NULL);
    assert_non_null(strstr(err, "as Slurm job arrays"));
    assert_non_null(strstr(err, "runs folder is writable from the jobs"));
    assert_int_equal(journal_count(slurm, "start", -1, NULL, 0), 4);
    assert_int_equal(journal_count(slurm, "end", -1, NULL, 0), 4);
    char job[64] = "";
    journal_count(slurm, "start", 3, job, sizeof job);
    assert_non_null(strchr(job, '_')); /* "<array>_<task>" */
    /* the same results table: configurations, per-seed values, means, ranks */
    cJSON *a = read_json(local, "results.json"), *b = read_json(slurm, "results.json");
    assert_int_equal(cJSON_GetArraySize(at(a, "rows")), 2);
    assert_int_equal(cJSON_GetArraySize(at(b, "rows")), 2);
    for (int c = 0; c < 2; c++) {
        const cJSON *ra = row_of(a, c), *rb = row_of(b, c);
        static const char *const keys[] = {"rank", "mean", "sd", "diff", "epochs"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            assert_true(cJSON_Compare(at(ra, keys[k]), at(rb, keys[k]), 1));
        assert_true(cJSON_Compare(at(ra, "values"), at(rb, "values"), 1));
        assert_true(cJSON_Compare(at(ra, "params"), at(rb, "params"), 1));
        assert_string_equal(at(rb, "status")->valuestring, "finished");
    }
    assert_int_equal((int)cJSON_GetNumberValue(at(at(b, "best"), "config")), 1);
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* each trial ran in a Slurm job: its marker names the job */
    cJSON *m = read_json(slurm, "trials/3/slurm.start");
    assert_string_equal(at(m, "job")->valuestring, job);
    cJSON_Delete(m);
    /* `runner runs sw` lists the trials' jobs */
    hx_result r;
    hx_runner(&r, f->tmp, f->plugins, NULL, "runs", "sw", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "trials on Slurm:"));
    assert_non_null(strstr(r.out, job));
    hx_result_free(&r);
    free(err);
    free(fields);
    free(local);
    free(slurm);
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

/* The newest run folder of experiment sw (runs/sw/<id>). */
static char *newest_run(hx_fixture *f) {
    char *runs = hx_join(f->tmp, "runs/sw");
    char *cmd = hx_fmt("ls -1 %s 2>/dev/null | tail -n1", runs);
    FILE *p = popen(cmd, "r");
    char id[128] = "";
    if (p) {
        if (!fgets(id, sizeof id, p)) id[0] = 0;
        pclose(p);
    }
    id[strcspn(id, "\n")] = 0;
    char *out = id[0] ? hx_fmt("%s/%s", runs, id) : NULL;
    free(cmd);
    free(runs);
    return out;
}

static int has_run(void *arg) {
    hx_fixture *f = arg;
    char *r = newest_run(f);
    int ok = r != NULL;
    free(r);
    return ok;
}

static void scancel(const char *id) {
    const char *argv[] = {"/usr/bin/env", "scancel", id, NULL};
    hx_result r;
    hx_run(argv, NULL, NULL, 30, &r);
    hx_assert_ran(&r, "scancel %s", id);
    hx_result_free(&r);
}

/* One sweep, three configurations: ok finishes; the first "hang" is
 * scancel'ed (CANCELLED); the second runs into its 1-minute `time`
 * (TIMEOUT; OverTimeLimit=0 and KillWait=2 in the test cluster). */
static void test_slurm_scancel_and_time_limit_fail_others_finish(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      space = { arm = lumen.variants { { \"ok\", { [\"curve.mode\"] = \"ok\" } },\n"
                   "        { \"cancelled\", { [\"curve.mode\"] = \"hang\" } },\n"
                   "        { \"late\", { [\"curve.mode\"] = \"hang\", [\"curve.b\"] = 2 } } } },\n"
                   "      executor = lumen.slurm { time = 1, poll = 0.5 },",
                   "epochs = 2, sleep = 1");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "run", "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    char *errf = hx_join(f->tmp, "sweep.err");
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, errf);
    assert_true(hx_wait_for(has_run, f, 60));
    char *run = newest_run(f);
    /* trial 2 (the first hang) is running: cancel its job */
    char *marker = hx_join(run, "trials/1/slurm.start");
    file_count started = {marker, "\"job\"", 1};
    assert_true(hx_wait_for(file_has_count, &started, 60));
    char job[64] = "";
    assert_int_equal(journal_count(run, "start", 1, job, sizeof job), 1);
    scancel(job);
    int status;
    if (!hx_wait(pid, 200, &status)) {
        kill(pid, SIGKILL);
        fail_msg("the sweep did not end within 200 s");
    }
    char *err = hx_read(errf);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("the sweep failed:\n%s", err);
    cJSON *res = read_json(run, "results.json");
    assert_string_equal(at(row_of(res, 0), "status")->valuestring, "finished");
    assert_string_equal(at(row_of(res, 1), "status")->valuestring, "failed");
    assert_string_equal(at(row_of(res, 2), "status")->valuestring, "failed");
    char *r1 = end_reason(run, 1), *r2 = end_reason(run, 2);
    if (!strstr(r1, "CANCELLED") || !strstr(r1, job)) fail_msg("trial 2: %s", r1);
    if (!strstr(r2, "TIMEOUT")) fail_msg("trial 3: %s", r2);
    assert_non_null(strstr(err, "CANCELLED"));
    free(r1);
    free(r2);
    cJSON_Delete(res);
    free(err);
    free(marker);
    free(run);
    free(errf);
    free(pp);
    free(runner);
}

static void test_slurm_sigkill_then_resume_adopts_jobs(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      seeds = { 1, 2 },\n      space = { [\"curve.a\"] = { 0.5, 0.9 } },\n"
                   "      executor = lumen.slurm { cpus = 1, max_running = 2, poll = 0.5 },",
                   "epochs = 4, sleep = 0.75");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "run", "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    char *rec = hx_join(f->tmp, "rec.txt");
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, NULL);
    /* two trials running on Slurm (so every batch is submitted): kill the
     * sweep's runner; the jobs go on without it */
    file_count two = {rec, "run ", 2};
    assert_true(hx_wait_for(file_has_count, &two, 60));
    kill(pid, SIGKILL);
    int status;
    assert_true(hx_wait(pid, 30, &status));
    char *run = newest_run(f);
    char *cmdlog = hx_join(run, "slurm/commands.log");
    char *text = hx_read(cmdlog);
    int sbatches = hx_count(text, "sbatch --parsable");
    free(text);
    assert_int_equal(sbatches, 2); /* the lone first task, then the rest */
    char *err;
    char *done = run_ok(f, 120, &err, "--resume", run, NULL);
    assert_string_equal(done, run);
    if (!strstr(err, "still running (adopted)")) fail_msg("no adoption:\n%s", err);
    for (int n = 0; n < 4; n++) {
        assert_int_equal(journal_count(run, "end", n, NULL, 0), 1);
        char *td = hx_fmt("%s/trials/%d", run, n);
        cJSON *st = read_json(td, "status.json");
        assert_string_equal(at(st, "status")->valuestring, "finished");
        cJSON_Delete(st);
        free(td);
    }
    /* every trial ran exactly once, from its start; nothing was submitted again */
    text = hx_read(rec);
    assert_int_equal(hx_count(text, "run "), 4);
    assert_int_equal(hx_count(text, "from=0"), 4);
    free(text);
    text = hx_read(cmdlog);
    assert_int_equal(hx_count(text, "sbatch --parsable"), 2);
    free(text);
    free(err);
    free(done);
    free(cmdlog);
    free(run);
    free(rec);
    free(pp);
    free(runner);
}

/* The sweep's runner dies right after sbatch accepted the second batch
 * and before it journaled those trials' starts (a test-only hook makes it
 * SIGKILL itself there): --resume finds that batch by its job name and
 * adopts its tasks; no batch is submitted twice, every trial ends once. */
static void test_slurm_die_after_sbatch_resume_submits_none_twice(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      seeds = { 1, 2 },\n      space = { [\"curve.a\"] = { 0.5, 0.9 } },\n"
                   "      executor = lumen.slurm { cpus = 1, max_running = 2, poll = 0.5 },",
                   "epochs = 4, sleep = 0.75");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "run", "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_TEST_SLURM_DIE_AFTER_SBATCH=2", "LUMEN_RUNS", NULL};
    char *rec = hx_join(f->tmp, "rec.txt");
    char *errf = hx_join(f->tmp, "sweep.err");
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, errf);
    int status;
    if (!hx_wait(pid, 90, &status)) {
        kill(pid, SIGKILL);
        fail_msg("the sweep did not die after its second sbatch within 90 s");
    }
    char *err = hx_read(errf);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) fail_msg("expected the test hook's SIGKILL:\n%s", err);
    char *run = newest_run(f);
    /* the lone first task was journaled; the second batch (3 trials) was not */
    assert_int_equal(journal_count(run, "start", -1, NULL, 0), 1);
    char *cmdlog = hx_join(run, "slurm/commands.log");
    char *text = hx_read(cmdlog);
    assert_int_equal(hx_count(text, "sbatch --parsable"), 2);
    free(text);
    char *rerr;
    char *done = run_ok(f, 120, &rerr, "--resume", run, NULL);
    assert_string_equal(done, run);
    for (int n = 0; n < 4; n++) {
        assert_int_equal(journal_count(run, "end", n, NULL, 0), 1);
        char *td = hx_fmt("%s/trials/%d", run, n);
        cJSON *st = read_json(td, "status.json");
        assert_string_equal(at(st, "status")->valuestring, "finished");
        cJSON_Delete(st);
        free(td);
    }
    /* every trial ran exactly once, from its start; no batch was submitted again */
    text = hx_read(rec);
    assert_int_equal(hx_count(text, "run "), 4);
    assert_int_equal(hx_count(text, "from=0"), 4);
    free(text);
    text = hx_read(cmdlog);
    if (hx_count(text, "sbatch --parsable") != 2) fail_msg("a batch was submitted twice:\n%s\n%s", text, rerr);
    free(text);
    free(rerr);
    free(done);
    free(cmdlog);
    free(run);
    free(err);
    free(errf);
    free(rec);
    free(pp);
    free(runner);
}

static void test_slurm_controller_down_sweep_waits(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      seeds = { 1, 2 },\n      space = { [\"curve.a\"] = { 0.5, 0.9 } },\n"
                   "      executor = lumen.slurm { cpus = 1, poll = 0.5 },",
                   "epochs = 4, sleep = 2");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "run", "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    char *rec = hx_join(f->tmp, "rec.txt");
    char *errf = hx_join(f->tmp, "sweep.err");
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, errf);
    file_count two = {rec, "run ", 2};
    assert_true(hx_wait_for(file_has_count, &two, 60));
    hx_result r;
    assert_int_equal(cluster_cmd("stopctld", &r), 0);
    hx_result_free(&r);
    sleep(20);
    if (cluster_cmd("startctld", &r) != 0) fail_msg("slurmctld did not restart: %s", r.err);
    hx_result_free(&r);
    int status;
    if (!hx_wait(pid, 180, &status)) {
        kill(pid, SIGKILL);
        fail_msg("the sweep did not end within 180 s of slurmctld's return");
    }
    char *err = hx_read(errf);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("the sweep failed:\n%s", err);
    assert_non_null(strstr(err, "slurmctld unreachable"));
    assert_non_null(strstr(err, "slurmctld answers again"));
    char *run = newest_run(f);
    cJSON *res = read_json(run, "results.json");
    assert_int_equal((int)cJSON_GetNumberValue(at(res, "finished")), 4);
    cJSON_Delete(res);
    for (int n = 0; n < 4; n++) assert_int_equal(journal_count(run, "end", n, NULL, 0), 1);
    char *text = hx_read(rec);
    assert_int_equal(hx_count(text, "run "), 4);
    free(text);
    free(err);
    free(run);
    free(errf);
    free(rec);
    free(pp);
    free(runner);
}

/* SIGTERM to the sweep: its jobs are cancelled (scancel) and journaled;
 * --resume submits what did not finish and completes. */
static void test_slurm_sigterm_cancels_jobs_resume_completes(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    hx_write_sweep(f->tmp,
                   "      space = { [\"curve.a\"] = { 0.5, 0.9 } },\n"
                   "      executor = lumen.slurm { cpus = 1, poll = 0.5 },",
                   "epochs = 4, sleep = 1");
    char *runner = hx_join(hx_build_dir(), "runner");
    char *pp = hx_fmt("LUMEN_PLUGIN_PATH=%s", f->plugins);
    const char *argv[] = {runner, "run", "exp.lua", NULL};
    const char *env[] = {pp, "LUMEN_RUNS", NULL};
    char *rec = hx_join(f->tmp, "rec.txt");
    char *errf = hx_join(f->tmp, "sweep.err");
    pid_t pid = hx_spawn(argv, f->tmp, env, NULL, errf);
    file_count two = {rec, "run ", 2};
    assert_true(hx_wait_for(file_has_count, &two, 60));
    kill(pid, SIGTERM);
    int status;
    assert_true(hx_wait(pid, 60, &status));
    char *err = hx_read(errf);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 || !strstr(err, "sweep interrupted (SIGTERM)"))
        fail_msg("expected an interrupted sweep:\n%s", err);
    assert_non_null(strstr(err, "slurm: cancelled job array(s)"));
    char *run = newest_run(f);
    assert_int_equal(journal_count(run, "cancel", -1, NULL, 0), 2);
    assert_int_equal(journal_count(run, "end", -1, NULL, 0), 0);
    /* nothing of the sweep is left running on the cluster */
    char job[64] = "", arr[64];
    journal_count(run, "start", 1, job, sizeof job);
    snprintf(arr, sizeof arr, "%.*s", (int)strcspn(job, "_"), job);
    const char *sq[] = {"/usr/bin/env", "squeue", "-h", "-r", "-t", "running,pending", "-j", arr, NULL};
    hx_result r;
    hx_run(sq, NULL, NULL, 30, &r);
    assert_string_equal(r.out, "");
    hx_result_free(&r);
    char *done = run_ok(f, 120, NULL, "--resume", run, NULL);
    for (int n = 0; n < 2; n++) {
        assert_int_equal(journal_count(run, "end", n, NULL, 0), 1);
        char *td = hx_fmt("%s/trials/%d", run, n);
        cJSON *st = read_json(td, "status.json");
        assert_string_equal(at(st, "status")->valuestring, "finished");
        cJSON_Delete(st);
        free(td);
    }
    free(done);
    free(err);
    free(run);
    free(errf);
    free(rec);
    free(pp);
    free(runner);
}

static void test_slurm_spec_errors_name_the_key(void **state) {
    need_cluster();
    hx_fixture *f = *state;
    struct {
        const char *exec, *needle;
    } cases[] = {
        {"lumen.slurm { partitoin = \"gpu\" }", "exp.lua:6: lumen.slurm: unknown key 'partitoin' (did you mean 'partition'"},
        {"lumen.slurm { cpus = 0 }", "'cpus' must be an integer in [1, 4096]"},
        {"lumen.slurm { extra = { \"-A pv\" } }", "extra[1] must be one sbatch option"},
        {"\"lsf\"", "sweep executor must be lumen.slurm"},
        {"lumen.slurm { partition = \"nosuchpartition\" }", "sbatch refused the sweep's trials"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *fields = hx_fmt("      space = { [\"curve.a\"] = { 0.5 } }, executor = %s,", cases[i].exec);
        hx_write_sweep(f->tmp, fields, "epochs = 1");
        hx_result r;
        hx_runner(&r, f->tmp, f->plugins, NULL, "run", "exp.lua", NULL);
        assert_int_equal(r.exit_code, 1);
        char *last = hx_last_line(r.err);
        if (!strstr(last, cases[i].needle)) fail_msg("case %zu: expected '%s' in: %s", i, cases[i].needle, last);
        free(last);
        free(fields);
        hx_result_free(&r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slurm_smoke_sweep_matches_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_spec_errors_name_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_sigkill_then_resume_adopts_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_sigterm_cancels_jobs_resume_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_die_after_sbatch_resume_submits_none_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_scancel_and_time_limit_fail_others_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_controller_down_sweep_waits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
