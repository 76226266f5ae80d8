/*
 * harness.h -- helpers for lumen's cmocka tests: run a command capturing
 * stdout, stderr and exit status under a timeout, start one in the
 * background, make and remove temp folders, write and read files, and find
 * the build products ($LUMEN_BUILD/runner, $LUMEN_BUILD/tests/plugins).
 *
 * Failures inside a helper are cmocka assertion failures of the calling
 * test.  Returned strings are malloc'ed and owned by the caller.
 */
#ifndef HX_HARNESS_H
#define HX_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct hx_result {
    int exit_code;  /* exit status; -1 when killed by a signal */
    int signal;     /* the terminating signal, 0 when it exited */
    int timed_out;  /* killed because the timeout passed */
    char *out;      /* captured stdout (NUL-terminated) */
    char *err;      /* captured stderr */
} hx_result;

/* Runs argv (argv[0] is a path) in cwd (NULL: current) with env changes
 * (NULL-terminated "NAME=value" to set, "NAME" to unset; may be NULL),
 * killing it after timeout_s.  Fills *r (free with hx_result_free). */
void hx_run(const char *const *argv, const char *cwd, const char *const *env, double timeout_s, hx_result *r);
void hx_result_free(hx_result *r);

/* Starts argv in the background with stdout/stderr going to the files
 * out_file/err_file (NULL: /dev/null).  Returns the pid. */
pid_t hx_spawn(const char *const *argv, const char *cwd, const char *const *env, const char *out_file,
               const char *err_file);
/* Waits up to timeout_s for pid; returns 1 and the wait status in *status
 * when it ended, 0 on timeout. */
int hx_wait(pid_t pid, double timeout_s, int *status);
/* Polls until cond(arg) returns non-zero or timeout_s passes; returns the
 * last value of cond. */
int hx_wait_for(int (*cond)(void *arg), void *arg, double timeout_s);

/* A fresh folder "/tmp/lumen-test-XXXXXX". */
char *hx_tmpdir(void);
void hx_rmtree(const char *path);
char *hx_join(const char *a, const char *b);
char *hx_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes text to path, creating parent folders. */
void hx_write(const char *path, const char *text);
/* The whole file, or NULL when it does not exist. */
char *hx_read(const char *path);
int hx_exists(const char *path);
/* Occurrences of needle in hay (0 when hay is NULL). */
int hx_count(const char *hay, const char *needle);
/* A copy of the last non-empty line of text ("" when none). */
char *hx_last_line(const char *text);
/* The value after "key=" on its own line in text ("key=value\n"), or NULL. */
char *hx_value(const char *text, const char *key);

/* Fails the calling test unless r exited 0.  First the command's whole
 * stdout and stderr go to this process's stderr, which the test log keeps:
 * cmocka cuts a failure message at about 1 KB, and that cut has hidden
 * the cause of a failing runner before.  The failure message itself says
 * what ran (a printf format and its arguments), how it ended (exit status,
 * signal, or killed at the harness's deadline) and the last line of its
 * stderr. */
#define hx_assert_ran(r, ...)                                                                                  \
    do {                                                                                                       \
        if ((r)->exit_code != 0) fail_msg("%s", hx_failure_text((r), hx_fmt(__VA_ARGS__)));                   \
    } while (0)
/* hx_assert_ran's report: prints r's output and returns the one-paragraph
 * summary (takes what, malloc'ed; the result is malloc'ed). */
char *hx_failure_text(const hx_result *r, char *what);

/* $LUMEN_BUILD (the test fails when it is unset). */
const char *hx_build_dir(void);
/* The lumen source folder: $LUMEN_SRC, else $LUMEN_BUILD/.. */
char *hx_src_dir(void);
/* Makes parent/plugins holding symlinks to the named test plugins
 * ($LUMEN_BUILD/tests/plugins/<name>.so) and returns its path. */
char *hx_plugin_dir(const char *parent, const char *const *names);

/* A temp folder plus a plugin folder linking the named test plugins: the
 * usual per-test fixture of the runner tests. */
typedef struct hx_fixture {
    char *tmp;     /* hx_tmpdir() */
    char *plugins; /* hx_plugin_dir(tmp, names) */
} hx_fixture;
hx_fixture *hx_fixture_new(const char *const *plugin_names);
/* Removes the temp folder and frees f. */
void hx_fixture_free(hx_fixture *f);

/* Runs $LUMEN_BUILD/runner with the NULL-terminated arguments in cwd, with
 * LUMEN_PLUGIN_PATH=plugin_path (unset when NULL), LUMEN_RUNS unset and
 * the extra env entries (may be NULL); timeout 120 s. */
void hx_runner(hx_result *r, const char *cwd, const char *plugin_path, const char *const *env, ...)
    __attribute__((sentinel));

/* Writes dir/file as an experiment named `name` whose stage list is
 * `stage_lines` (Lua, one stage per line): line k of stage_lines is line
 * 4 + k of the file, so messages can be checked as "exp.lua:5: ...". */
void hx_write_experiment(const char *dir, const char *file, const char *name, const char *stage_lines);
/* Writes dir/exp.lua: a counter stage (test plugin, record "up.txt"), then
 * a sweep on "val/score" whose other fields are `fields` (Lua lines) over
 * one curve stage (record "rec.txt") with the extra params `curve`: the
 * sweep tests' experiment (test_sweep, test_slurm). */
void hx_write_sweep(const char *dir, const char *fields, const char *curve);

/* "ASAN_OPTIONS=<current value>:<extra>" (for a child that must die by a
 * signal the sanitizer would otherwise catch). */
char *hx_asan_env(const char *extra);

#endif /* HX_HARNESS_H */
