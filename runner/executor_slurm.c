/*
 * executor_slurm.c -- sweep trials as Slurm job arrays (see executor.h).
 *
 * A batch of trials is one job array (`sbatch --array=0-K%max_running
 * --parsable`) whose script, <run>/slurm/batch-<b>.sh, maps
 * $SLURM_ARRAY_TASK_ID to a trial: it writes the marker
 * <trial>/slurm.start (job id, host, time) and then execs the same runner
 * command line the local executor runs, with stdout and stderr appended to
 * the trial's runner.log.  The environment is sbatch's default: the
 * sweep's own (--export=ALL).  A trial's job id is "<array>_<index>".
 *
 * The very first task of a sweep is submitted alone: the rest waits until
 * its marker shows that the runs folder is writable from the jobs (a task
 * that ends without one fails the sweep with that diagnosis).
 *
 * Watching: one `squeue -h -r -t all -j A,B,...` every `poll` seconds for
 * every array with tasks not yet ended.  A task in a final state (or one
 * that left squeue: then sacct, when it answers) has ended; its state and
 * exit code (scontrol) describe it.  PREEMPTED tasks that Slurm did not
 * requeue are handed back for submitting again (job.again); requeued ones
 * stay in squeue (REQUEUED, PENDING) and simply run again.  Either way the
 * trial continues from its folder.
 *
 * Every Slurm command runs with a timeout; its command line, exit status
 * and stderr are appended to <run>/slurm/commands.log.  When slurmctld is
 * unreachable (connection refused or timed out, or the command timed out)
 * the call is repeated with backoff (1 s doubling to 30 s), saying so; a
 * timed-out sbatch is looked up by its unique job name before it is
 * repeated, so no batch is submitted twice.
 *
 * Before its sbatch, each batch's intent (job name, trial folders) is
 * written to <run>/slurm/batch-<b>.json, and the job id added once sbatch
 * answered.  A sweep process that died between sbatch and journaling the
 * trials' starts leaves that batch only there: on --resume (recover) the
 * newest batch holding a trial the journal has no running job for is
 * looked up by its job name (when its id was never recorded) and its tasks
 * adopted; when Slurm does not know it, the trial's folder decides
 * (finished: ended; otherwise submitted), as for adopted jobs.
 */
#include "executor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "signals.h"
#include "strv.h"
#include "suggest.h"

#define CMD_TIMEOUT_S 60.0 /* one Slurm command */
#define BACKOFF_MAX_S 30.0

/* ------------------------------------------------------------- spec ---- */

static const char *const SLURM_KEYS[] = {"kind", "partition", "time", "cpus", "mem", "gres", "max_running",
                                         "extra", "poll"};
#define N_SLURM_KEYS (sizeof SLURM_KEYS / sizeof SLURM_KEYS[0])

static const char *spec_kind(const cJSON *spec) {
    if (!spec) return "local";
    if (cJSON_IsString(spec)) return spec->valuestring;
    const cJSON *k = rn_json_item(spec, "kind");
    return cJSON_IsObject(spec) && cJSON_IsString(k) ? k->valuestring : "";
}

static int spec_int(const cJSON *spec, const char *key, int lo, int hi, int def, int *out, const char *file,
                    int line, lm_err *e) {
    const cJSON *v = rn_json_item(spec, key);
    *out = def;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: lumen.slurm: '%s' must be an integer in [%d, %d]", file, line, key,
                       lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

int rn_executor_check_spec(const cJSON *spec, const char *file, int line, lm_err *e) {
    const char *kind = spec_kind(spec);
    if (strcmp(kind, "local") != 0 && strcmp(kind, "slurm") != 0)
        return lm_fail(e, LUMEN_EINVAL,
                       "%s:%d: sweep executor must be lumen.slurm { ... } or \"local\" (the default), not %s", file,
                       line, cJSON_IsString(spec) ? spec->valuestring : "this value");
    if (!cJSON_IsObject(spec)) return 0;
    for (const cJSON *c = spec->child; c; c = c->next) {
        int known = 0;
        for (size_t k = 0; k < N_SLURM_KEYS; k++) known |= strcmp(c->string, SLURM_KEYS[k]) == 0;
        if (strcmp(kind, "local") == 0 && strcmp(c->string, "kind") != 0)
            return lm_fail(e, LUMEN_EINVAL, "%s:%d: the local executor takes no settings ('%s'); use the sweep's "
                           "parallel and timeout", file, line, c->string);
        if (!known) {
            char hint[128];
            rn_suggest_phrase(hint, sizeof hint, c->string, SLURM_KEYS, N_SLURM_KEYS);
            return lm_fail(e, LUMEN_EINVAL, "%s:%d: lumen.slurm: unknown key '%s'%s", file, line, c->string, hint);
        }
    }
    static const char *const strs[] = {"partition", "gres"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = rn_json_item(spec, strs[i]);
        if (v && (!cJSON_IsString(v) || !v->valuestring[0] || strpbrk(v->valuestring, " \t\n")))
            return lm_fail(e, LUMEN_EINVAL, "%s:%d: lumen.slurm: '%s' must be a non-empty string without spaces",
                           file, line, strs[i]);
    }
    static const char *const strnums[] = {"time", "mem"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = rn_json_item(spec, strnums[i]);
        if (v && !(cJSON_IsString(v) && v->valuestring[0] && !strpbrk(v->valuestring, " \t\n")) &&
            !(cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble == floor(v->valuedouble)))
            return lm_fail(e, LUMEN_EINVAL,
                           "%s:%d: lumen.slurm: '%s' must be Slurm's text (time = \"02:00:00\", mem = \"32G\") or a "
                           "positive integer (minutes, megabytes)",
                           file, line, strnums[i]);
    }
    int n;
    int rc = spec_int(spec, "cpus", 1, 4096, 0, &n, file, line, e);
    if (rc == 0) rc = spec_int(spec, "max_running", 0, 1000000, 0, &n, file, line, e);
    if (rc) return rc;
    const cJSON *p = rn_json_item(spec, "poll");
    if (p && (!cJSON_IsNumber(p) || p->valuedouble < 0.1 || p->valuedouble > 600))
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: lumen.slurm: 'poll' must be seconds in [0.1, 600]", file, line);
    const cJSON *x = rn_json_item(spec, "extra");
    if (x && !cJSON_IsArray(x))
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: lumen.slurm: 'extra' must be a list of sbatch options such as "
                       "{ \"--account=pv\" }", file, line);
    int i = 0;
    for (const cJSON *c = x ? x->child : NULL; c; c = c->next, i++)
        if (!cJSON_IsString(c) || strncmp(c->valuestring, "--", 2) != 0 || !strncmp(c->valuestring, "--array", 7))
            return lm_fail(e, LUMEN_EINVAL,
                           "%s:%d: lumen.slurm: extra[%d] must be one sbatch option written \"--name=value\" (and "
                           "not --array, which lumen sets)",
                           file, line, i + 1);
    return 0;
}

/* ---------------------------------------------------------- commands --- */

typedef struct cmd_res {
    int status;    /* exit status; -1: killed (timeout) or not started */
    int timed_out;
    char *out, *err;
} cmd_res;

static void cmd_res_free(cmd_res *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static int grow_append(char **buf, size_t *len, const char *data, size_t n) {
    char *b = realloc(*buf, *len + n + 1);
    if (!b) return -1;
    memcpy(b + *len, data, n);
    *len += n;
    b[*len] = 0;
    *buf = b;
    return 0;
}

/* Runs argv (found on PATH) with stdin /dev/null, capturing stdout and
 * stderr; kills it after timeout_s. */
static void run_cmd(const char *const *argv, double timeout_s, cmd_res *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0) {
        r->err = lm_sprintf("cannot run %s: pipe: %s", argv[0], strerror(errno));
        return;
    }
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        r->err = lm_sprintf("cannot run %s: pipe: %s", argv[0], strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        r->err = lm_sprintf("cannot run %s: fork: %s", argv[0], strerror(errno));
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, STDIN_FILENO);
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], (char *const *)argv);
        dprintf(STDERR_FILENO, "cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    double until = lm_now() + timeout_s;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_n = 2;
    while (open_n > 0) {
        double left = until - lm_now();
        if (left <= 0) {
            r->timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        int n = poll(fds, 2, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                if (i == 0 && r->out) grow_append(&r->out, &lo, buf, (size_t)got);
                if (i == 1 && r->err) grow_append(&r->err, &le, buf, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_n--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!r->timed_out && WIFEXITED(st)) r->status = WEXITSTATUS(st);
}

/* --------------------------------------------------------- executor ---- */

typedef struct task {
    char id[48];       /* "<array>_<index>" */
    char state[32];    /* last state squeue showed ("" before the first look) */
    char exit_code[16];
    int gone;          /* no longer in squeue */
} task;

typedef struct slurm {
    char *file, *sweep_id, *run_dir, *dir, *cmdlog;
    int line;
    FILE *term;
    char *partition, *time, *mem, *gres;
    int cpus, max_running;
    rn_strv extra;
    double poll_s;
    char cwd[PATH_MAX];
    task *tasks;
    size_t nt, cap;
    double last_refresh;
    int verified;      /* a task has shown the runs folder writable from the jobs */
    char first_id[48]; /* the lone first task, while not verified */
    char *first_marker, *first_dir;
    int said_wait;
    int batch;         /* the next batch number */
    int sbatches;      /* sbatch calls that returned (test hook) */
    cJSON *intents;    /* --resume: the batches' intents (batch-<N>.json), loaded by sl_recover */
} slurm;

static void say(slurm *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(slurm *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->term, "[%s] slurm: ", s->sweep_id);
    vfprintf(s->term, fmt, ap);
    fputc('\n', s->term);
    fflush(s->term);
    va_end(ap);
}

/* The last non-empty line of text, without its newline, in buf. */
static const char *last_line(const char *text, char *buf, size_t len) {
    buf[0] = 0;
    const char *end = text ? text + strlen(text) : NULL;
    while (end && end > text && (end[-1] == '\n' || end[-1] == ' ')) end--;
    if (!end || end == text) return buf;
    const char *b = end;
    while (b > text && b[-1] != '\n') b--;
    snprintf(buf, len, "%.*s", (int)(end - b), b);
    return buf;
}

static void log_cmd(slurm *s, const char *const *argv, const cmd_res *r, double took) {
    char *line = lm_sprintf("%.3f", lm_wall_time());
    for (size_t i = 0; line && argv[i]; i++) {
        char *l = lm_sprintf("%s %s", line, argv[i]);
        free(line);
        line = l;
    }
    if (!line) return;
    char *all = lm_sprintf("%s -> %s %d (%.2f s)%s%s\n", line, r->timed_out ? "timed out after" : "exit",
                           r->timed_out ? (int)CMD_TIMEOUT_S : r->status, took,
                           r->err && r->err[0] ? "\n  stderr: " : "", r->err ? r->err : "");
    free(line);
    lm_err ignored = {0};
    if (all) lm_append_file(s->cmdlog, all, strlen(all), 0, &ignored);
    free(all);
}

/* Is this failure slurmctld being unreachable (worth waiting for)? */
static int transient(const cmd_res *r) {
    if (r->timed_out) return 1;
    static const char *const marks[] = {"Unable to contact slurm controller", "Socket timed out",
                                        "Connection refused", "Connection timed out", "Zero Bytes were transmitted",
                                        "Communication connection failure", "backup controller in standby",
                                        "Slurm temporarily unable", "Resource temporarily unavailable"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (r->err && strstr(r->err, marks[i])) return 1;
    return 0;
}

static void nap(double s) {
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&ts, NULL);
}

enum { CALL_OK = 0, CALL_FAILED, CALL_GAVE_UP };

/* Runs a Slurm command; while slurmctld is unreachable waits and repeats it
 * with backoff, saying so, until it answers, a signal is pending
 * (interruptible) or give_up_s passed (0: never).  before_retry (may be
 * NULL) runs before each repeat and may end the wait (returns 1). */
static int slurm_call(slurm *s, const char *const *argv, double timeout_s, int interruptible, double give_up_s,
                      int (*before_retry)(slurm *, void *), void *arg, cmd_res *r) {
    double wait = 1, t_first = lm_now();
    int waited = 0;
    for (;;) {
        double t0 = lm_now();
        run_cmd(argv, timeout_s, r);
        log_cmd(s, argv, r, lm_now() - t0);
        if (r->status == 0) {
            if (waited) say(s, "slurmctld answers again (after %.0f s); going on", lm_now() - t_first);
            return CALL_OK;
        }
        if (!transient(r)) return CALL_FAILED;
        if ((interruptible && rn_signals_pending()) || (give_up_s > 0 && lm_now() - t_first > give_up_s))
            return CALL_GAVE_UP;
        char ll[256];
        say(s, "slurmctld unreachable (%s: %s); waiting %.0f s and trying again (nothing is lost: the trials keep "
               "running)",
            argv[0], r->timed_out ? "timed out" : last_line(r->err, ll, sizeof ll), wait);
        waited = 1;
        for (double t = 0; t < wait; t += 0.1) {
            if (interruptible && rn_signals_pending()) return CALL_GAVE_UP;
            nap(0.1);
        }
        wait = fmin(wait * 2, BACKOFF_MAX_S);
        if (before_retry && before_retry(s, arg)) {
            cmd_res_free(r);
            r->status = 0;
            return CALL_OK;
        }
        cmd_res_free(r);
    }
}

static task *find_task(slurm *s, const char *id) {
    for (size_t i = 0; i < s->nt; i++)
        if (strcmp(s->tasks[i].id, id) == 0) return &s->tasks[i];
    return NULL;
}

static task *add_task(slurm *s, const char *id) {
    task *t = find_task(s, id);
    if (t) return t;
    if (s->nt == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        task *nt = realloc(s->tasks, cap * sizeof *nt);
        if (!nt) return NULL;
        s->tasks = nt;
        s->cap = cap;
    }
    t = &s->tasks[s->nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    return t;
}

static int final_state(const char *st) {
    static const char *const fin[] = {"COMPLETED", "FAILED",   "CANCELLED", "TIMEOUT",      "OUT_OF_MEMORY",
                                      "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED",    "SPECIAL_EXIT",
                                      "REVOKED"};
    for (size_t i = 0; i < sizeof fin / sizeof fin[0]; i++)
        if (strncmp(st, fin[i], strlen(fin[i])) == 0) return 1;
    return 0;
}

static int task_ended(const task *t) { return t->gone || final_state(t->state); }

/* The array id of a task id ("12_3" -> "12") into buf. */
static const char *array_of(const char *id, char *buf, size_t len) {
    snprintf(buf, len, "%.*s", (int)strcspn(id, "_"), id);
    return buf;
}

/* squeue for the arrays in `arrays` (comma-separated): updates the tasks
 * of those arrays; the ones not listed are gone.  0 when squeue answered. */
static int query(slurm *s, const char *arrays, int interruptible) {
    const char *argv[] = {"squeue", "-h", "-r", "-t", "all", "-j", arrays, "-o", "%i|%T", NULL};
    cmd_res r;
    int rc = slurm_call(s, argv, CMD_TIMEOUT_S, interruptible, 0, NULL, NULL, &r);
    /* every array of the list left Slurm's memory: squeue refuses the ids */
    int none = rc == CALL_FAILED && r.err && strstr(r.err, "Invalid job id");
    if (rc != CALL_OK && !none) {
        if (rc == CALL_FAILED) {
            char ll[256];
            say(s, "squeue failed (exit %d: %s); trying again later", r.status, last_line(r.err, ll, sizeof ll));
        }
        cmd_res_free(&r);
        return -1;
    }
    char *listed = lm_sprintf(",%s,", arrays);
    for (size_t i = 0; listed && i < s->nt; i++) {
        char a[48], key[64];
        snprintf(key, sizeof key, ",%s,", array_of(s->tasks[i].id, a, sizeof a));
        if (!strstr(listed, key) || task_ended(&s->tasks[i])) continue;
        const char *p = none ? NULL : r.out;
        int seen = 0;
        size_t l = strlen(s->tasks[i].id);
        while (p && *p) {
            const char *nl = strchr(p, '\n');
            if (!nl) nl = p + strlen(p);
            if ((size_t)(nl - p) > l && strncmp(p, s->tasks[i].id, l) == 0 && p[l] == '|') {
                snprintf(s->tasks[i].state, sizeof s->tasks[i].state, "%.*s", (int)(nl - p - (ptrdiff_t)l - 1),
                         p + l + 1);
                seen = 1;
                break;
            }
            p = *nl ? nl + 1 : nl;
        }
        if (!seen) s->tasks[i].gone = 1;
    }
    free(listed);
    cmd_res_free(&r);
    return 0;
}

/* Refreshes every array that has tasks not yet ended, at most every poll_s
 * (force: now). */
static void refresh(slurm *s, int force) {
    if (!force && lm_now() - s->last_refresh < s->poll_s) return;
    size_t cap = 64, off = 0;
    char *arrays = calloc(cap, 1);
    for (size_t i = 0; arrays && i < s->nt; i++) {
        if (task_ended(&s->tasks[i])) continue;
        char a[48], key[64];
        array_of(s->tasks[i].id, a, sizeof a);
        snprintf(key, sizeof key, ",%s,", a);
        char *have = lm_sprintf(",%s,", arrays);
        int dup = have && strstr(have, key);
        free(have);
        if (dup) continue;
        if (off + strlen(a) + 2 > cap) {
            cap = (off + strlen(a) + 2) * 2;
            char *na = realloc(arrays, cap);
            if (!na) break;
            arrays = na;
        }
        off += (size_t)snprintf(arrays + off, cap - off, "%s%s", off ? "," : "", a);
    }
    if (arrays && off) query(s, arrays, 1);
    s->last_refresh = lm_now();
    free(arrays);
}

/* The state and exit code of an ended task: scontrol while Slurm still
 * knows the job, else sacct (when accounting is there). */
static void final_details(slurm *s, task *t) {
    if (t->exit_code[0]) return;
    if (!t->gone) {
        const char *argv[] = {"scontrol", "-o", "show", "job", t->id, NULL};
        cmd_res r;
        if (slurm_call(s, argv, 20, 1, 60, NULL, NULL, &r) == CALL_OK) {
            const char *p = strstr(r.out, "ExitCode=");
            if (p) snprintf(t->exit_code, sizeof t->exit_code, "%.*s", (int)strcspn(p + 9, " \n"), p + 9);
        }
        cmd_res_free(&r);
        return;
    }
    const char *argv[] = {"sacct", "-n", "-P", "-X", "-j", t->id, "-o", "State,ExitCode", NULL};
    cmd_res r;
    run_cmd(argv, 20, &r);
    log_cmd(s, argv, &r, 0);
    char st[32] = "", ec[16] = "";
    if (r.status == 0 && r.out && sscanf(r.out, "%31[^| \n]%*[^|]|%15[^\n]", st, ec) >= 1) {
        snprintf(t->state, sizeof t->state, "%s", st);
        snprintf(t->exit_code, sizeof t->exit_code, "%s", ec);
    } else {
        snprintf(t->state, sizeof t->state, "UNKNOWN");
        snprintf(t->exit_code, sizeof t->exit_code, "unknown");
        char ll[256];
        say(s, "job %s left Slurm's job list before the sweep saw it end, and sacct cannot say how it ended (%s)",
            t->id, last_line(r.err, ll, sizeof ll)[0] ? ll : "no accounting");
    }
    cmd_res_free(&r);
}

static int sl_poll(void *self, rn_job *job) {
    slurm *s = self;
    task *t = find_task(s, job->id);
    if (!t) t = add_task(s, job->id);
    if (!t) return 0;
    refresh(s, 0);
    if (!task_ended(t)) return 0;
    final_details(s, t);
    snprintf(job->state, sizeof job->state, "%s", t->state);
    snprintf(job->exit_code, sizeof job->exit_code, "%s", t->exit_code);
    job->again = strncmp(t->state, "PREEMPTED", 9) == 0;
    return 1;
}

static void sl_cancel(void *self, rn_job *job, int sig) {
    slurm *s = self;
    char opt[32];
    const char *name = sig == SIGTERM ? "TERM" : sig == SIGINT ? "INT" : "KILL";
    snprintf(opt, sizeof opt, "--signal=%s", name);
    /* --full: also the batch step, whose shell exec'ed the runner */
    const char *sigv[] = {"scancel", "--full", opt, job->id, NULL};
    const char *killv[] = {"scancel", job->id, NULL};
    cmd_res r;
    int rc = slurm_call(s, sig == SIGKILL ? killv : sigv, CMD_TIMEOUT_S, 0, 120, NULL, NULL, &r);
    if (rc != CALL_OK) {
        char ll[256];
        /* a task still pending cannot take a signal: cancel it */
        if (sig != SIGKILL && rc == CALL_FAILED) {
            cmd_res_free(&r);
            rc = slurm_call(s, killv, CMD_TIMEOUT_S, 0, 120, NULL, NULL, &r);
        }
        if (rc != CALL_OK)
            say(s, "scancel %s failed (%s); cancel it by hand if it still runs", job->id,
                last_line(r.err, ll, sizeof ll));
    }
    cmd_res_free(&r);
}

static void sl_cancel_all(void *self) {
    slurm *s = self;
    rn_strv argv = {0};
    rn_strv_push(&argv, "scancel");
    for (size_t i = 0; i < s->nt; i++) {
        if (task_ended(&s->tasks[i])) continue;
        char a[48];
        array_of(s->tasks[i].id, a, sizeof a);
        if (rn_strv_find(&argv, a) < 0) rn_strv_push(&argv, a);
    }
    if (argv.n > 1) {
        const char **v = calloc(argv.n + 1, sizeof *v);
        for (size_t i = 0; v && i < argv.n; i++) v[i] = argv.v[i];
        cmd_res r = {0};
        char ll[256];
        int rc = v ? slurm_call(s, v, CMD_TIMEOUT_S, 0, 120, NULL, NULL, &r) : CALL_FAILED;
        if (rc == CALL_OK) {
            fprintf(s->term, "[%s] slurm: cancelled job array(s)", s->sweep_id);
            for (size_t i = 1; i < argv.n; i++) fprintf(s->term, " %s", argv.v[i]);
            fputc('\n', s->term);
        } else {
            say(s, "could not cancel the sweep's jobs (%s); cancel them with scancel",
                last_line(r.err, ll, sizeof ll));
        }
        cmd_res_free(&r);
        free(v);
    }
    rn_strv_free(&argv);
}

static int sl_adopt(void *self, rn_job *job) {
    slurm *s = self;
    if (!job->id[0] || !strchr(job->id, '_')) return 0;
    task *t = add_task(s, job->id);
    if (!t) return 0;
    char a[48];
    if (!t->state[0] && !t->gone) query(s, array_of(job->id, a, sizeof a), 1);
    if (task_ended(t)) return 0;
    if (!t->state[0]) snprintf(t->state, sizeof t->state, "UNKNOWN"); /* squeue did not answer: watch it */
    char *marker = job->tag ? lm_path_join(job->tag, "slurm.start") : NULL;
    if (marker && lm_exists(marker)) s->verified = 1;
    free(marker);
    return 1;
}

static int sl_start(void *self, const char *const *argv, const char *log_path, rn_job *job, lm_err *e) {
    (void)self;
    (void)argv;
    (void)log_path;
    (void)job;
    return lm_fail(e, LUMEN_ERR, "the Slurm executor submits batches (submit)");
}

/* 'text' as one shell word. */
static char *sh_quote(const char *text) {
    size_t n = 3;
    for (const char *p = text; *p; p++) n += *p == '\'' ? 4 : 1;
    char *q = malloc(n), *w = q;
    if (!q) return NULL;
    *w++ = '\'';
    for (const char *p = text; *p; p++) {
        if (*p == '\'') {
            memcpy(w, "'\\''", 4);
            w += 4;
        } else {
            *w++ = *p;
        }
    }
    *w++ = '\'';
    *w = 0;
    return q;
}

static int append(char **buf, size_t *len, const char *text) {
    return text ? grow_append(buf, len, text, strlen(text)) : -1;
}

/* The job script of a batch: task k runs items[k]. */
static char *job_script(const rn_submit *items, size_t n) {
    char *b = calloc(1, 1);
    size_t len = 0;
    int bad = !b;
    bad |= append(&b, &len,
                  "#!/bin/sh\n"
                  "# lumen sweep trials, one per array task (written by the runner's Slurm executor)\n"
                  "case \"$SLURM_ARRAY_TASK_ID\" in\n");
    for (size_t k = 0; !bad && k < n; k++) {
        char *d = sh_quote(items[k].dir), *l = sh_quote(items[k].log_path), *line;
        line = d && l ? lm_sprintf("%zu) d=%s; log=%s; set --", k, d, l) : NULL;
        bad |= append(&b, &len, line);
        free(line);
        free(d);
        free(l);
        for (size_t i = 0; !bad && items[k].argv[i]; i++) {
            char *q = sh_quote(items[k].argv[i]);
            bad |= append(&b, &len, " ") || append(&b, &len, q);
            free(q);
        }
        bad |= append(&b, &len, " ;;\n");
    }
    bad |= append(&b, &len,
                  "*) echo \"lumen: no trial for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\n"
                  "esac\n"
                  "host=$(hostname)\n"
                  "if ! printf '{\"job\": \"%s_%s\", \"host\": \"%s\", \"time\": %s}\\n' \"$SLURM_ARRAY_JOB_ID\" "
                  "\"$SLURM_ARRAY_TASK_ID\" \"$host\" \"$(date +%s.%N)\" >\"$d/slurm.start.tmp\" ||\n"
                  "   ! mv -f \"$d/slurm.start.tmp\" \"$d/slurm.start\"; then\n"
                  "    echo \"lumen: cannot write to $d from $host: the runs folder must be on a filesystem the "
                  "nodes share\" >&2\n"
                  "    exit 3\n"
                  "fi\n"
                  "exec \"$@\" >>\"$log\" 2>&1 </dev/null\n");
    if (bad) {
        free(b);
        return NULL;
    }
    return b;
}

/* before_retry of a timed-out sbatch: did the controller take it anyway?
 * (looked up by the batch's unique job name) */
typedef struct lookup {
    const char *name;
    char id[48];
} lookup;

static int find_by_name(slurm *s, void *arg) {
    lookup *lk = arg;
    const char *argv[] = {"squeue", "-h", "-n", lk->name, "-o", "%F", NULL};
    cmd_res r;
    run_cmd(argv, 20, &r);
    log_cmd(s, argv, &r, 0);
    int found = r.status == 0 && r.out && sscanf(r.out, "%47s", lk->id) == 1;
    cmd_res_free(&r);
    return found;
}

static int sl_submit(void *self, rn_submit *items, size_t n, size_t *accepted, lm_err *e) {
    slurm *s = self;
    *accepted = 0;
    if (n == 0 || (!s->verified && s->first_id[0])) return 0;
    size_t k = s->verified ? n : 1;
    int rc = lm_mkdirs(s->dir, e);
    if (rc) return rc;
    for (size_t i = 0; i < k; i++) {
        char *m = lm_path_join(items[i].dir, "slurm.start");
        if (m) unlink(m); /* from an earlier attempt: the check must be this job's */
        free(m);
    }
    char *script = job_script(items, k);
    char *path = NULL;
    for (; script && !path; s->batch++) {
        char *p = lm_sprintf("%s/batch-%d.sh", s->dir, s->batch);
        if (p && lm_exists(p)) free(p);
        else path = p;
        if (!p) break;
    }
    if (!script || !path) {
        free(script);
        free(path);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    rc = lm_write_file_atomic(path, script, strlen(script), e);
    free(script);
    if (rc) {
        free(path);
        return rc;
    }
    const char *base = strrchr(s->run_dir, '/');
    char name[256], array[64], out[PATH_MAX + 32], chdir_opt[PATH_MAX + 16], part[160], tm[96], cpus[48], mem[96],
        gres[160];
    snprintf(name, sizeof name, "lumen-%s-%s-b%d", s->sweep_id, base ? base + 1 : s->run_dir, s->batch - 1);
    if (s->max_running > 0 && (size_t)s->max_running < k)
        snprintf(array, sizeof array, "--array=0-%zu%%%d", k - 1, s->max_running);
    else snprintf(array, sizeof array, "--array=0-%zu", k - 1);
    snprintf(out, sizeof out, "--output=%s/%%A_%%a.out", s->dir);
    snprintf(chdir_opt, sizeof chdir_opt, "--chdir=%s", s->cwd);
    const char *argv[64];
    char name_opt[300];
    snprintf(name_opt, sizeof name_opt, "--job-name=%s", name);
    int a = 0;
    argv[a++] = "sbatch";
    argv[a++] = "--parsable";
    argv[a++] = name_opt;
    argv[a++] = array;
    argv[a++] = chdir_opt;
    argv[a++] = out;
    argv[a++] = "--open-mode=append";
    argv[a++] = "--requeue";
    if (s->partition) snprintf(part, sizeof part, "--partition=%s", s->partition), argv[a++] = part;
    if (s->time) snprintf(tm, sizeof tm, "--time=%s", s->time), argv[a++] = tm;
    /* no cpus given: as many CPUs as the trial gets threads (the sweep's rule) */
    const char *threads = NULL;
    for (size_t i = 0; items[0].argv[i]; i++)
        if (strcmp(items[0].argv[i], "--threads") == 0) threads = items[0].argv[i + 1];
    if (s->cpus) snprintf(cpus, sizeof cpus, "--cpus-per-task=%d", s->cpus), argv[a++] = cpus;
    else if (threads) snprintf(cpus, sizeof cpus, "--cpus-per-task=%s", threads), argv[a++] = cpus;
    if (s->mem) snprintf(mem, sizeof mem, "--mem=%s", s->mem), argv[a++] = mem;
    if (s->gres) snprintf(gres, sizeof gres, "--gres=%s", s->gres), argv[a++] = gres;
    for (size_t i = 0; i < s->extra.n && a < 60; i++) argv[a++] = s->extra.v[i];
    argv[a++] = path;
    argv[a] = NULL;
    /* the batch's intent, before sbatch: a sweep process that dies before
     * journaling the trials' starts leaves it for --resume (sl_recover) */
    char *ipath = lm_sprintf("%s/batch-%d.json", s->dir, s->batch - 1);
    cJSON *intent = cJSON_CreateObject(), *dirs = cJSON_AddArrayToObject(intent, "trials");
    cJSON_AddStringToObject(intent, "name", name);
    for (size_t i = 0; i < k; i++) cJSON_AddItemToArray(dirs, cJSON_CreateString(items[i].dir));
    rc = ipath && dirs ? rn_json_write_atomic(ipath, intent, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc) {
        cJSON_Delete(intent);
        free(ipath);
        free(path);
        return rc;
    }
    lookup lk = {.name = name};
    cmd_res r;
    int cr = slurm_call(s, argv, CMD_TIMEOUT_S, 1, 0, find_by_name, &lk, &r);
    char id[48] = "";
    if (cr == CALL_OK) {
        if (lk.id[0]) snprintf(id, sizeof id, "%s", lk.id);
        else if (r.out) snprintf(id, sizeof id, "%.*s", (int)strcspn(r.out, ";\n "), r.out);
        /* TEST ONLY (tests/integration/test_slurm.c): the sweep process dies
         * right after its Nth sbatch returned, before the job id is recorded
         * anywhere, to test that --resume finds that batch by its job name. */
        const char *die = getenv("LUMEN_TEST_SLURM_DIE_AFTER_SBATCH");
        if (die && atoi(die) > 0 && ++s->sbatches == atoi(die)) raise(SIGKILL);
        if (id[0]) {
            cJSON_AddStringToObject(intent, "job", id);
            lm_err ignored = {0}; /* only saves --resume a lookup by name */
            rn_json_write_atomic(ipath, intent, &ignored);
        }
    }
    cJSON_Delete(intent);
    free(ipath);
    if (cr == CALL_GAVE_UP) {
        rc = lm_fail(e, LUMEN_ECANCELED, "interrupted while waiting for slurmctld to take a batch");
    } else if (cr != CALL_OK || !id[0] || strspn(id, "0123456789") != strlen(id)) {
        char ll[512];
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sbatch refused the sweep's trials (exit %d): %s (the sweep's "
                     "executor: partition, time, cpus, mem, gres, extra; commands and their stderr: %s)",
                     s->file, s->line, r.status, cr == CALL_OK ? "no job id" : last_line(r.err, ll, sizeof ll),
                     s->cmdlog);
    }
    cmd_res_free(&r);
    free(path);
    if (rc) return rc;
    for (size_t i = 0; i < k; i++) {
        rn_job *j = items[i].job;
        memset(j, 0, sizeof *j);
        snprintf(j->id, sizeof j->id, "%s_%zu", id, i);
        if (!add_task(s, j->id)) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    *accepted = k;
    if (!s->verified) {
        snprintf(s->first_id, sizeof s->first_id, "%s_0", id);
        free(s->first_marker);
        free(s->first_dir);
        s->first_marker = lm_path_join(items[0].dir, "slurm.start");
        s->first_dir = lm_strdup(items[0].dir);
        say(s, "submitted the first trial alone (job %s): it checks that the runs folder is writable from the jobs",
            s->first_id);
    } else {
        char throttle[48] = "";
        if (s->max_running > 0 && (size_t)s->max_running < k)
            snprintf(throttle, sizeof throttle, ", at most %d at once", s->max_running);
        say(s, "submitted %zu trial(s) as job array %s%s", k, id, throttle);
    }
    return 0;
}

/* Every batch's intent in s->dir (batch-<N>.json, written before its
 * sbatch), each with its number added as "batch". */
static cJSON *load_intents(slurm *s) {
    cJSON *all = cJSON_CreateArray();
    DIR *d = all ? opendir(s->dir) : NULL;
    for (struct dirent *de = d ? readdir(d) : NULL; de; de = readdir(d)) {
        int b;
        char tail[8];
        if (sscanf(de->d_name, "batch-%d.%7s", &b, tail) != 2 || strcmp(tail, "json") != 0) continue;
        char *p = lm_path_join(s->dir, de->d_name);
        cJSON *it = NULL;
        lm_err ignored = {0};
        if (p && rn_json_read_file(p, &it, &ignored) == 0 && cJSON_IsString(rn_json_item(it, "name")) &&
            cJSON_IsArray(rn_json_item(it, "trials"))) {
            cJSON_AddNumberToObject(it, "batch", b);
            cJSON_AddItemToArray(all, it);
        } else {
            cJSON_Delete(it);
        }
        free(p);
    }
    if (d) closedir(d);
    return all;
}

/* Do two paths name the same trial folder of this run (<run>/trials/<n>)?
 * By the folder's name: a resumed sweep may name the run folder otherwise
 * (relative, absolute) than the process that submitted. */
static int same_trial(const char *a, const char *b) {
    const char *x = strrchr(a, '/'), *y = strrchr(b, '/');
    return strcmp(x ? x + 1 : a, y ? y + 1 : b) == 0;
}

static int sl_recover(void *self, const char *dir, rn_job *job, int *alive, lm_err *e) {
    slurm *s = self;
    *alive = 0;
    if (!s->intents && !(s->intents = load_intents(s))) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    /* the newest batch that holds the trial */
    cJSON *best = NULL;
    int best_k = -1;
    for (cJSON *it = s->intents->child; it; it = it->next) {
        int k = 0;
        for (const cJSON *t = rn_json_item(it, "trials")->child; t; t = t->next, k++)
            if (cJSON_IsString(t) && same_trial(t->valuestring, dir) &&
                (!best || cJSON_GetNumberValue(rn_json_item(it, "batch")) >
                              cJSON_GetNumberValue(rn_json_item(best, "batch")))) {
                best = it;
                best_k = k;
            }
    }
    if (!best) return 0;
    const char *name = rn_json_item(best, "name")->valuestring;
    if (!rn_json_item(best, "job")) {
        /* sbatch was called but its job id never recorded: ask Slurm by the
         * batch's unique job name (also jobs that ended and are still known) */
        const char *argv[] = {"squeue", "-h", "-t", "all", "-n", name, "-o", "%F", NULL};
        cmd_res r;
        int cr = slurm_call(s, argv, CMD_TIMEOUT_S, 1, 0, NULL, NULL, &r);
        char id[48] = "";
        if (cr == CALL_OK && r.out && sscanf(r.out, "%47s", id) == 1 && strspn(id, "0123456789") == strlen(id)) {
            say(s, "batch %.0f (job array %s) was submitted before the sweep stopped: adopting its tasks, not "
                   "submitting them again", cJSON_GetNumberValue(rn_json_item(best, "batch")), id);
            cJSON_AddStringToObject(best, "job", id);
        } else if (cr == CALL_OK) {
            cJSON_AddNullToObject(best, "job"); /* Slurm does not know it (any more) */
        } else {
            char ll[256];
            int rc = lm_fail(e, cr == CALL_GAVE_UP ? LUMEN_ECANCELED : LUMEN_EIO,
                             "--resume: cannot tell whether batch %.0f (job name %s) was submitted: squeue %s; "
                             "nothing was submitted, --resume again (Slurm commands: %s)",
                             cJSON_GetNumberValue(rn_json_item(best, "batch")), name,
                             cr == CALL_GAVE_UP ? "interrupted" : last_line(r.err, ll, sizeof ll), s->cmdlog);
            cmd_res_free(&r);
            return rc;
        }
        cmd_res_free(&r);
    }
    const cJSON *id = rn_json_item(best, "job");
    if (!cJSON_IsString(id)) return 0; /* never reached slurmctld, or forgotten: the trial's folder decides */
    char old[sizeof job->id];
    snprintf(old, sizeof old, "%s", job->id);
    snprintf(job->id, sizeof job->id, "%s_%d", id->valuestring, best_k);
    if (strcmp(old, job->id) == 0) return 0; /* the journaled job: adopt already looked at it */
    *alive = sl_adopt(self, job);
    if (!*alive) snprintf(job->id, sizeof job->id, "%s", old);
    return 0;
}

static int sl_hold(void *self, int *hold, lm_err *e) {
    slurm *s = self;
    *hold = 0;
    if (s->verified || !s->first_id[0]) return 0;
    if (!lm_exists(s->first_marker)) {
        task *t = find_task(s, s->first_id);
        refresh(s, 0);
        if (t && task_ended(t) && !lm_exists(s->first_marker)) {
            final_details(s, t);
            return lm_fail(e, LUMEN_EIO,
                           "%s:%d: lumen.slurm: the first task (job %s) ended (%s, exit code %s) without writing its "
                           "marker %s: the runs folder must be on a filesystem the compute nodes share and writable "
                           "from the jobs (the job's output: %s/%s.out; Slurm commands: %s)",
                           s->file, s->line, s->first_id, t->state, t->exit_code[0] ? t->exit_code : "unknown",
                           s->first_marker, s->dir, s->first_id, s->cmdlog);
        }
        if (t && !task_ended(t)) {
            if (!s->said_wait) say(s, "waiting for the first task (job %s) to start before submitting the rest",
                                   s->first_id);
            s->said_wait = 1;
            *hold = 1;
            return 0;
        }
    }
    cJSON *m = NULL;
    lm_err ignored = {0};
    rn_json_read_file(s->first_marker, &m, &ignored);
    const cJSON *h = rn_json_item(m, "host");
    say(s, "the first task (job %s) started on %s: the runs folder is writable from the jobs", s->first_id,
        cJSON_IsString(h) ? h->valuestring : "its node");
    cJSON_Delete(m);
    s->verified = 1;
    return 0;
}

static void sl_close(void *self) {
    slurm *s = self;
    if (!s) return;
    free(s->file);
    free(s->sweep_id);
    free(s->run_dir);
    free(s->dir);
    free(s->cmdlog);
    free(s->partition);
    free(s->time);
    free(s->mem);
    free(s->gres);
    rn_strv_free(&s->extra);
    free(s->tasks);
    free(s->first_marker);
    free(s->first_dir);
    cJSON_Delete(s->intents);
    free(s);
}

static const rn_executor_ops SLURM_OPS = {.name = "slurm",
                                          .start = sl_start,
                                          .poll = sl_poll,
                                          .cancel = sl_cancel,
                                          .adopt = sl_adopt,
                                          .submit = sl_submit,
                                          .hold = sl_hold,
                                          .cancel_all = sl_cancel_all,
                                          .close = sl_close,
                                          .recover = sl_recover};

static char *str_or_num(const cJSON *v) {
    if (!v) return NULL;
    if (cJSON_IsString(v)) return lm_strdup(v->valuestring);
    return lm_sprintf("%.0f", v->valuedouble);
}

int rn_executor_open(const cJSON *spec, const rn_executor_env *env, rn_executor *out, lm_err *e) {
    int rc = rn_executor_check_spec(spec, env->file, env->line, e);
    if (rc) return rc;
    if (strcmp(spec_kind(spec), "local") == 0) {
        *out = rn_executor_local();
        return 0;
    }
    slurm *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    const cJSON *o = cJSON_IsObject(spec) ? spec : NULL;
    s->file = lm_strdup(env->file);
    s->line = env->line;
    s->sweep_id = lm_strdup(env->sweep_id);
    s->run_dir = lm_strdup(env->run_dir);
    s->dir = lm_path_join(env->run_dir, "slurm");
    s->cmdlog = s->dir ? lm_path_join(s->dir, "commands.log") : NULL;
    s->term = env->term;
    s->partition = str_or_num(rn_json_item(o, "partition"));
    s->time = str_or_num(rn_json_item(o, "time"));
    s->mem = str_or_num(rn_json_item(o, "mem"));
    s->gres = str_or_num(rn_json_item(o, "gres"));
    spec_int(o, "cpus", 1, 4096, 0, &s->cpus, env->file, env->line, e);
    spec_int(o, "max_running", 0, 1000000, 0, &s->max_running, env->file, env->line, e);
    const cJSON *p = rn_json_item(o, "poll");
    s->poll_s = cJSON_IsNumber(p) ? p->valuedouble : 2.0;
    for (const cJSON *c = rn_json_item(o, "extra") ? rn_json_item(o, "extra")->child : NULL; c; c = c->next)
        rn_strv_push(&s->extra, c->valuestring);
    if (!getcwd(s->cwd, sizeof s->cwd)) rc = lm_fail_errno(e, LUMEN_EIO, "getcwd");
    if (rc == 0 && (!s->file || !s->sweep_id || !s->run_dir || !s->cmdlog))
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) rc = lm_mkdirs(s->dir, e);
    if (rc == 0) {
        const char *argv[] = {"sbatch", "--version", NULL};
        cmd_res r;
        run_cmd(argv, 20, &r);
        log_cmd(s, argv, &r, 0);
        if (r.status != 0) {
            char ll[256];
            rc = lm_fail(e, LUMEN_ENOTFOUND,
                         "%s:%d: executor lumen.slurm: cannot run sbatch (%s): the Slurm client commands (sbatch, "
                         "squeue, scontrol, scancel) must be on PATH, as on a cluster's login node",
                         env->file, env->line, last_line(r.err, ll, sizeof ll));
        }
        cmd_res_free(&r);
    }
    if (rc) {
        sl_close(s);
        return rc;
    }
    *out = (rn_executor){.ops = &SLURM_OPS, .self = s, .threads = s->cpus};
    /* grid and random submit everything (Slurm throttles with %max_running);
     * tpe draws each configuration when it starts, so only a few at once */
    out->max_inflight = env->tpe ? (s->max_running > 0 ? s->max_running : 0) : 1000000;
    return 0;
}

/* ------------------------------------------------------ runner runs ---- */

void rn_slurm_print_jobs(const char *run_dir, FILE *out) {
    char *path = lm_path_join(run_dir, "journal.jsonl");
    char *data = NULL;
    size_t len = 0;
    lm_err e = {0};
    if (!path || lm_read_file(path, &data, &len, &e) != 0) {
        free(path);
        return;
    }
    free(path);
    size_t cap = 16, n = 0;
    struct row {
        long n;
        char job[48], state[48];
    } *rows = calloc(cap, sizeof *rows);
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); rows && line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        const cJSON *t = rn_json_item(ev, "t"), *ex = rn_json_item(ev, "executor"), *job = rn_json_item(ev, "job"),
                    *st = rn_json_item(ev, "status");
        long tn = (long)cJSON_GetNumberValue(rn_json_item(ev, "n"));
        if (cJSON_IsString(t) && (!strcmp(t->valuestring, "start") || !strcmp(t->valuestring, "end"))) {
            size_t i = 0;
            while (i < n && rows[i].n != tn) i++;
            int is_start = t->valuestring[0] == 's';
            if (i == n && is_start && cJSON_IsString(ex) && !strcmp(ex->valuestring, "slurm")) {
                if (n == cap) {
                    struct row *nr = realloc(rows, cap * 2 * sizeof *nr);
                    if (!nr) break;
                    rows = nr;
                    cap *= 2;
                }
                memset(&rows[n], 0, sizeof rows[n]);
                rows[n++].n = tn;
            }
            if (i < n && is_start && cJSON_IsString(job)) {
                snprintf(rows[i].job, sizeof rows[i].job, "%s", job->valuestring);
                rows[i].state[0] = 0;
            }
            if (i < n && !is_start) snprintf(rows[i].state, sizeof rows[i].state, "%s", cJSON_IsString(st) ? st->valuestring : "ended");
        }
        cJSON_Delete(ev);
    }
    free(data);
    if (!rows || n == 0) {
        free(rows);
        return;
    }
    /* the live state of the trials the journal has not seen end */
    rn_strv ids = {0};
    for (size_t i = 0; i < n; i++)
        if (!rows[i].state[0] && rows[i].job[0]) {
            char a[48];
            array_of(rows[i].job, a, sizeof a);
            if (rn_strv_find(&ids, a) < 0) rn_strv_push(&ids, a);
        }
    cmd_res r = {0};
    char *list = NULL;
    for (size_t i = 0; i < ids.n; i++) {
        char *l = lm_sprintf("%s%s%s", list ? list : "", list ? "," : "", ids.v[i]);
        free(list);
        list = l;
    }
    if (list) {
        const char *argv[] = {"squeue", "-h", "-r", "-t", "all", "-j", list, "-o", "%i|%T", NULL};
        run_cmd(argv, 10, &r);
    }
    fprintf(out, "\ntrials on Slurm:\n  %-6s %-16s %s\n", "trial", "job", "state");
    for (size_t i = 0; i < n; i++) {
        char state[64] = "";
        if (rows[i].state[0]) snprintf(state, sizeof state, "%s (journal)", rows[i].state);
        else if (r.status == 0 && r.out) {
            size_t l = strlen(rows[i].job);
            for (const char *p = r.out; p && *p;) {
                if (strncmp(p, rows[i].job, l) == 0 && p[l] == '|') {
                    snprintf(state, sizeof state, "%.*s", (int)strcspn(p + l + 1, "\n"), p + l + 1);
                    break;
                }
                p = strchr(p, '\n');
                if (p) p++;
            }
            if (!state[0]) snprintf(state, sizeof state, "not in squeue");
        } else if (list) {
            char ll[128];
            snprintf(state, sizeof state, "unknown (squeue: %s)", r.timed_out ? "timed out" : last_line(r.err, ll, sizeof ll));
        }
        fprintf(out, "  %-6ld %-16s %s\n", rows[i].n + 1, rows[i].job[0] ? rows[i].job : "-", state);
    }
    cmd_res_free(&r);
    free(list);
    rn_strv_free(&ids);
    free(rows);
}
