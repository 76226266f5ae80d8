/* mlflow.c -- see mlflow.h. */
#include "mlflow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "jsonutil.h"
#include "mlflow_send.h"
#include "signals.h"
#include "store.h"
#include "strv.h"
#include "version.h"

#define MAX_PARAM_VAL 6000 /* MLflow's limits */
#define MAX_TAG_VAL 8000
#define LINGER_S 0.5       /* events gather this long before a batch goes */

/* ------------------------------------------------------------------ conf */

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int uri_ok(const char *uri, const char *from, lm_err *e) {
    if (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0)
        return lm_fail(e, LUMEN_EINVAL, "%s: tracking uri '%s': expected an http:// or https:// MLflow server", from,
                       uri);
    const char *host = strstr(uri, "//") + 2;
    size_t auth = strcspn(host, "/?#");
    if (memchr(host, '@', auth))
        return lm_fail(e, LUMEN_EINVAL,
                       "%s: the tracking uri holds credentials; give them in MLFLOW_TRACKING_USERNAME/"
                       "MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN instead (they are never written anywhere)",
                       from);
    return 0;
}

int rn_mlflow_conf_resolve(const cJSON *tracking, const char *exp_name, const char *where, rn_mlflow_conf *c,
                           lm_err *e) {
    memset(c, 0, sizeof *c);
    const char *furi = NULL, *fexp = NULL;
    if (tracking && !cJSON_IsNull(tracking) && !cJSON_IsFalse(tracking)) {
        const cJSON *kind = rn_json_item(tracking, "kind");
        if (!cJSON_IsObject(tracking) || !cJSON_IsString(kind) || strcmp(kind->valuestring, "mlflow") != 0)
            return lm_fail(e, LUMEN_EINVAL,
                           "%s: tracking must be lumen.mlflow { uri = \"http://...\", experiment = \"...\" }", where);
        for (const cJSON *k = tracking->child; k; k = k->next) {
            if (strcmp(k->string, "kind") == 0) continue;
            if (strcmp(k->string, "uri") != 0 && strcmp(k->string, "experiment") != 0)
                return lm_fail(e, LUMEN_EINVAL, "%s: lumen.mlflow: unknown key '%s' (known: uri, experiment)", where,
                               k->string);
            if (!cJSON_IsString(k) || !*k->valuestring)
                return lm_fail(e, LUMEN_EINVAL, "%s: lumen.mlflow: %s must be a non-empty string", where, k->string);
        }
        const cJSON *u = rn_json_item(tracking, "uri"), *x = rn_json_item(tracking, "experiment");
        furi = u ? u->valuestring : NULL;
        fexp = x ? x->valuestring : NULL;
    }
    const char *luri = env("LUMEN_TRACKING_URI");
    if (luri && (strcasecmp(luri, "off") == 0 || strcasecmp(luri, "none") == 0)) return 0;
    const char *uri = luri ? luri : furi ? furi : env("MLFLOW_TRACKING_URI");
    const char *from = luri ? "LUMEN_TRACKING_URI" : furi ? where : "MLFLOW_TRACKING_URI";
    if (!uri) return 0;
    int rc = uri_ok(uri, from, e);
    if (rc) return rc;
    const char *exp = fexp ? fexp : env("MLFLOW_EXPERIMENT_NAME") ? env("MLFLOW_EXPERIMENT_NAME") : exp_name;
    c->uri = lm_strdup(uri);
    c->experiment = lm_strdup(exp);
    if (!c->uri || !c->experiment) {
        rn_mlflow_conf_free(c);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    return 0;
}

void rn_mlflow_conf_free(rn_mlflow_conf *c) {
    if (!c) return;
    free(c->uri);
    free(c->experiment);
    c->uri = c->experiment = NULL;
}

/* --------------------------------------------------------------- tracker */

/* What the runner tells its sender process, in a shared anonymous mapping
 * (MAP_SHARED, made before the fork).  The runner sets the flags; the
 * sender clears dirty, flush and wake as it takes them.  The flags go
 * through the __atomic builtins (sequentially consistent), and the runner
 * rings the bell (one byte down a pipe) after a change, so the sender may
 * sleep in poll() in between. */
typedef struct mf_shared {
    int dirty;                /* the spool grew since the sender last looked */
    int flush;                /* send now, without lingering (a stage's end) */
    int stopping;             /* the run ended: send what is left, then exit */
    int wake;                 /* cut a backoff short (the run's end) */
    volatile int abort;       /* abandon the request in flight (mf_client) */
    volatile double deadline; /* lm_now() the drain ends; 0 before */
    volatile double dirty_since; /* written before dirty is set */
} mf_shared;

typedef struct mlf {
    rn_mlflow_conf conf;
    FILE *term;
    char *run_dir;
    int fd;        /* the spool, O_APPEND */
    int warned;    /* the spool could not be written (said once) */
    mf_sender *snd;
    char open_err[sizeof(((lm_err *)0)->msg)];
    /* The sender is a process, not a thread: the runner forks a process
     * for every stage, and a fork while a sender thread held a lock (in
     * malloc, in the sanitizers' allocator, in stdio) left that lock held
     * forever in the stage's process.  So the runner stays single-threaded
     * and the sender, forked once at the run's start, runs beside it. */
    mf_shared *sh;      /* NULL until the sender process is started */
    pid_t pid;          /* the sender process; 0 when none */
    int bell_r, bell_w; /* runner -> sender wake-ups */
    int done_r;         /* EOF when the sender process has exited */
    int is_trial;       /* a sweep trial (its sweep's runner does the siblings) */
    int siblings_done;  /* earlier runs' pending events were looked at (sender) */
} mlf;

static int sync_tree(const char *run_dir, const char *uri, FILE *out, int tries, const volatile int *abort,
                     lm_err *e);

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)

/* The runner wakes the sender (a full pipe already holds a wake-up). */
static void ring(mlf *t) {
    if (t->bell_w < 0) return;
    char b = 1;
    while (write(t->bell_w, &b, 1) < 0 && errno == EINTR) {
    }
}

/* The sender sleeps until rung or `when` (mono()); the bytes are drained.
 * Returns -1 when the runner has gone (every write end closed). */
static int bell_wait(int bell_r, double when) {
    double left = when - mono();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = bell_r, .events = POLLIN};
    int rc = poll(&p, 1, (int)(left * 1000) + 1);
    if (rc > 0 && (p.revents & POLLIN)) {
        char buf[256];
        ssize_t n;
        while ((n = read(bell_r, buf, sizeof buf)) > 0) {
        }
        if (n == 0) return -1;
    } else if (rc > 0 && (p.revents & (POLLHUP | POLLERR))) {
        return -1;
    }
    return 0;
}

/* Tells the sender that the spool grew, and with flush to send it without
 * lingering.  Rings only when that changes something. */
static void nudge(mlf *t, int flush) {
    if (!t->pid) return;
    int was = LOAD(t->sh->dirty);
    if (!was) {
        t->sh->dirty_since = mono(); /* before dirty: the sender reads it after */
        STORE(t->sh->dirty, 1);
    }
    if (flush) STORE(t->sh->flush, 1);
    if (!was || flush) ring(t);
}

static void spool(mlf *t, cJSON *ev, int sync) {
    char *text = ev ? rn_json_print(ev, 0) : NULL;
    cJSON_Delete(ev);
    char *line = text ? lm_sprintf("%s\n", text) : NULL;
    free(text);
    int ok = line && t->fd >= 0;
    if (ok) {
        size_t n = strlen(line);
        ok = write(t->fd, line, n) == (ssize_t)n; /* one write: the reader takes whole lines only */
        if (ok && sync) fdatasync(t->fd);
    }
    free(line);
    if (!ok && !t->warned) {
        t->warned = 1;
        fprintf(t->term, "mlflow: cannot write the spool in %s/%s (%s); this run is not fully tracked\n", t->run_dir,
                MF_DIR, strerror(errno));
    }
    nudge(t, sync);
}

static cJSON *event(const char *type) {
    cJSON *ev = cJSON_CreateObject();
    if (ev) cJSON_AddStringToObject(ev, "t", type);
    return ev;
}

/* s cut to at most max bytes, on a UTF-8 character boundary; *cut set when
 * it was. */
static char *cut_utf8(const char *s, size_t max, int *cut) {
    size_t n = strlen(s);
    *cut = n > max;
    if (!*cut) return lm_strdup(s);
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    char *r = malloc(max + 1);
    if (r) {
        memcpy(r, s, max);
        r[max] = '\0';
    }
    return r;
}

static void spool_kv(mlf *t, const char *type, const char *k, const char *v, size_t max, int *cut) {
    int c = 0;
    char *val = cut_utf8(v ? v : "", max, &c);
    if (cut) *cut = c;
    cJSON *ev = event(type);
    cJSON_AddStringToObject(ev, "k", k);
    cJSON_AddStringToObject(ev, "v", val ? val : "");
    free(val);
    spool(t, ev, 0);
}

static char *value_text(const cJSON *v) {
    char num[64];
    if (cJSON_IsString(v)) return lm_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) return lm_strdup(rn_num_str(v->valuedouble, num, sizeof num));
    if (cJSON_IsBool(v)) return lm_strdup(cJSON_IsTrue(v) ? "true" : "false");
    return rn_json_print(v, 0);
}

/* XXH3-128 of the experiment file, hex. */
static int file_hash(const char *path, char out[33]) {
    char *data = NULL;
    size_t n = 0;
    lm_err ig = {0};
    if (lm_read_file(path, &data, &n, &ig)) return -1;
    XXH128_hash_t h = XXH3_128bits(data, n);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    free(data);
    return 0;
}

/* The commit of the git repository holding dir (git rev-parse HEAD). */
static char *git_commit(const char *dir) {
    if (strchr(dir, '\'')) return NULL;
    char *cmd = lm_sprintf("git -C '%s' rev-parse HEAD 2>/dev/null", dir);
    FILE *p = cmd ? popen(cmd, "r") : NULL;
    free(cmd);
    if (!p) return NULL;
    char line[128] = "";
    char *got = fgets(line, sizeof line, p);
    pclose(p);
    line[strcspn(line, "\r\n")] = '\0';
    return got && strlen(line) == 40 ? lm_strdup(line) : NULL;
}

static void add_str(cJSON *o, const char *k, const char *v) {
    if (v) cJSON_AddStringToObject(o, k, v);
}

/* In the sender process.  The run's end (wake) cuts a backoff short, not
 * the server's Retry-After. */
static int sender_nap(void *arg, double s, double must) {
    mlf *t = arg;
    double start = mono(), until = start + s;
    while (!t->sh->abort && mono() < until) {
        if (__atomic_exchange_n(&t->sh->wake, 0, __ATOMIC_SEQ_CST)) {
            if (start + must < until) until = start + must;
            continue;
        }
        if (bell_wait(t->bell_r, until) < 0) t->sh->abort = 1;
    }
    return t->sh->abort;
}

/* The other runs of this experiment folder that were tracked to the same
 * server and still hold something (a run whose server was down): sent once,
 * while this run is in good contact with the server, one try each. */
static void sync_siblings(mlf *t) {
    t->siblings_done = 1;
    if (t->is_trial) return;
    char *exp_dir = lm_strdup(t->run_dir);
    char *slash = exp_dir ? strrchr(exp_dir, '/') : NULL;
    if (!slash) {
        free(exp_dir);
        return;
    }
    *slash = '\0';
    rn_strv names = {0};
    DIR *d = opendir(exp_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && strcmp(de->d_name, slash + 1) != 0) rn_strv_push(&names, de->d_name);
    if (d) closedir(d);
    rn_strv_sort(&names);
    for (size_t i = 0; i < names.n && !t->sh->abort; i++) {
        char *rd = lm_path_join(exp_dir, names.v[i]);
        long pending = 0, rejected = 0;
        char err[8];
        char *uri = rd ? mf_spool_uri(rd) : NULL;
        if (uri && strcmp(uri, t->conf.uri) == 0 && mf_spool_state(rd, &pending, &rejected, err, sizeof err) == 0) {
            lm_err ig = {0};
            sync_tree(rd, t->conf.uri, NULL, 1, &t->sh->abort, &ig); /* a busy one (still running) is skipped */
        }
        free(uri);
        free(rd);
    }
    rn_strv_free(&names);
    free(exp_dir);
}

/* The sender process's life: sends the spool as it grows (after LINGER_S,
 * or at once on a flush) until the run ends, then what is left until the
 * deadline; leaves how far it got in state.json; never returns. */
static void sender_main(mlf *t, pid_t runner) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != runner) _exit(0); /* the runner died before prctl */
    /* Ctrl-C, or a sweep's SIGTERM to the trial's process group, ends the
     * run; the runner then drains and ends the sender itself (abort, then
     * SIGKILL), so the sender ignores both */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    mf_shared *sh = t->sh;
    for (;;) {
        while (!sh->abort && !LOAD(sh->stopping) &&
               !(LOAD(sh->dirty) && (LOAD(sh->flush) || mono() >= sh->dirty_since + LINGER_S))) {
            double when = LOAD(sh->dirty) ? sh->dirty_since + LINGER_S : mono() + 1;
            if (bell_wait(t->bell_r, when) < 0) sh->abort = 1;
        }
        if (sh->abort) break;
        STORE(sh->dirty, 0); /* before reading the spool: a line spooled after this rings again */
        STORE(sh->flush, 0);
        mf_class c = mf_send_drive(t->snd, 0, &sh->deadline, sender_nap, t);
        int stopping = LOAD(sh->stopping), more = LOAD(sh->dirty);
        if (c == MF_ABORTED || c == MF_AUTH || c == MF_REFUSED) break; /* AUTH/REFUSED: the rest stays spooled */
        if (c == MF_OK && !t->siblings_done) sync_siblings(t); /* bounded by the drain at the end */
        if (stopping && (c != MF_OK || !more)) break;         /* all sent, or the deadline passed */
    }
    mf_sender_save(t->snd); /* the last failure's message, for the runner's last line */
    _exit(0);
}

/* Waits until the sender process has exited (its end of done_r closed) or
 * `until` (mono()); 1 when it has. */
static int sender_exited(mlf *t, double until) {
    for (;;) {
        double left = until - mono();
        struct pollfd p = {.fd = t->done_r, .events = POLLIN};
        int rc = poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
        if (rc == 0) return 0;
        if (rc < 0 && errno != EINTR) return 0;
        if (rc > 0) return 1; /* EOF (POLLIN or POLLHUP): the sender never writes to it */
    }
}

/* Ends the sender process: it has until `until` (mono()) to finish on its
 * own, then `grace` seconds after abort (a request in flight is
 * abandoned), then SIGKILL -- state.json is written atomically, so at
 * worst `runner sync` sends again what may have landed, and it
 * deduplicates.  Then re-reads how far it got. */
static void stop_sender(mlf *t, double until, double grace) {
    if (!t->pid) return;
    if (!sender_exited(t, until)) {
        t->sh->abort = 1;
        ring(t);
        if (!sender_exited(t, mono() + grace)) kill(t->pid, SIGKILL);
    }
    while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    t->pid = 0;
    close(t->done_r);
    close(t->bell_w);
    t->done_r = t->bell_w = -1;
    if (t->snd) mf_sender_reload(t->snd);
}

static int start_sender(mlf *t) {
    int busy = 0;
    lm_err e = {0};
    void *m = mmap(NULL, sizeof *t->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        snprintf(t->open_err, sizeof t->open_err, "cannot map the sender's flags: %s", strerror(errno));
        return -1;
    }
    t->sh = m;
    memset(t->sh, 0, sizeof *t->sh);
    /* opened before the fork: the runner says a busy spool, and both hold
     * the lock (an flock on one shared open file) */
    if (mf_sender_open(t->run_dir, t->conf.uri, &t->sh->abort, &t->snd, &busy, &e)) {
        snprintf(t->open_err, sizeof t->open_err, "%s", e.msg);
        return -1;
    }
    int bell[2] = {-1, -1}, done[2] = {-1, -1};
    pid_t runner = getpid(), pid = -1;
    if (pipe2(bell, O_CLOEXEC | O_NONBLOCK) == 0 && pipe2(done, O_CLOEXEC) == 0) {
        fflush(NULL); /* nothing buffered is written twice */
        pid = fork();
    }
    if (pid == 0) {
        close(bell[1]);
        close(done[0]);
        t->bell_r = bell[0];
        t->bell_w = -1;
        sender_main(t, runner); /* holds done[1] until it exits */
    }
    if (pid > 0) { /* the runner keeps the bell's write end and done's read end */
        close(bell[0]);
        close(done[1]);
        t->pid = pid;
        t->bell_w = bell[1];
        t->done_r = done[0];
        return 0;
    }
    int err = errno;
    for (int i = 0; i < 2; i++) {
        if (bell[i] >= 0) close(bell[i]);
        if (done[i] >= 0) close(done[i]);
    }
    snprintf(t->open_err, sizeof t->open_err, "cannot start the sender process: %s", strerror(err));
    mf_sender_close(t->snd);
    t->snd = NULL;
    return -1;
}

static int op_run_started(void *self, const rn_run_info *run, const cJSON *params, lm_err *e) {
    (void)e;
    mlf *t = self;
    t->run_dir = lm_strdup(run->run_dir);
    t->is_trial = run->parent_dir != NULL;
    char *dir = t->run_dir ? lm_path_join(t->run_dir, MF_DIR) : NULL;
    char *path = dir ? lm_path_join(dir, MF_SPOOL) : NULL;
    lm_err ig = {0};
    int existed = path && lm_exists(path);
    if (path && lm_mkdirs(dir, &ig) == 0) t->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    free(dir);
    free(path);
    if (run->resumed && existed) {
        spool(t, event("resume"), 1);
    } else {
        cJSON *ev = event("run");
        unsigned char rnd[4] = {0};
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            unsigned x = (unsigned)getpid() ^ (unsigned)(lm_now() * 1e6);
            memcpy(rnd, &x, sizeof rnd);
        }
        char *uid = lm_sprintf("%s-%02x%02x%02x%02x", run->run_id, rnd[0], rnd[1], rnd[2], rnd[3]);
        for (char *c = uid; c && *c; c++)
            if (*c == '\'' || *c == '\\') *c = '_';
        add_str(ev, "uri", t->conf.uri);
        add_str(ev, "experiment", t->conf.experiment);
        add_str(ev, "name", run->run_id);
        add_str(ev, "uid", uid);
        free(uid);
        cJSON_AddNumberToObject(ev, "start_ms", floor(run->started * 1000));
        if (run->parent_dir) add_str(ev, "parent", run->parent_dir);
        cJSON *tags = cJSON_AddObjectToObject(ev, "tags");
        add_str(tags, "lumen.version", RN_VERSION);
        add_str(tags, "lumen.experiment", run->experiment);
        add_str(tags, "lumen.run_id", run->run_id);
        add_str(tags, "lumen.run_dir", run->run_dir);
        char *abs = run->exp_file ? realpath(run->exp_file, NULL) : NULL;
        if (abs) {
            char hash[33];
            add_str(tags, "lumen.experiment_file", abs);
            add_str(tags, "mlflow.source.name", abs);
            add_str(tags, "mlflow.source.type", "LOCAL");
            if (file_hash(abs, hash) == 0) add_str(tags, "lumen.experiment_xxh128", hash);
            char *slash = strrchr(abs, '/');
            if (slash) *slash = '\0';
            char *commit = git_commit(slash ? (*abs ? abs : "/") : ".");
            add_str(tags, "lumen.git_commit", commit);
            add_str(tags, "mlflow.source.git.commit", commit);
            free(commit);
            free(abs);
        }
        spool(t, ev, 0);
        rn_strv cut = {0};
        for (const cJSON *p = params ? params->child : NULL; p; p = p->next) {
            char *v = value_text(p);
            int was_cut = 0;
            spool_kv(t, "param", p->string, v ? v : "", MAX_PARAM_VAL, &was_cut);
            if (was_cut) rn_strv_push(&cut, p->string);
            free(v);
        }
        if (cut.n) {
            size_t len = 0;
            for (size_t i = 0; i < cut.n; i++) len += strlen(cut.v[i]) + 1;
            char *list = calloc(len + 1, 1);
            for (size_t i = 0; list && i < cut.n; i++) {
                if (i) strcat(list, ",");
                strcat(list, cut.v[i]);
            }
            spool_kv(t, "tag", "lumen.params_truncated", list ? list : "", MAX_TAG_VAL, NULL);
            free(list);
        }
        rn_strv_free(&cut);
        if (t->fd >= 0) fdatasync(t->fd);
    }
    if (start_sender(t) == 0) nudge(t, 1); /* what the spool holds already */
    return 0;
}

static int op_metric(void *self, const char *stage_id, const char *key, double value, int64_t step, double time,
                     lm_err *e) {
    (void)stage_id, (void)e;
    mlf *t = self;
    cJSON *ev = event("m");
    cJSON_AddStringToObject(ev, "k", key);
    if (isnan(value)) cJSON_AddStringToObject(ev, "v", "NaN");
    else if (isinf(value)) cJSON_AddStringToObject(ev, "v", value > 0 ? "Infinity" : "-Infinity");
    else cJSON_AddNumberToObject(ev, "v", value);
    cJSON_AddNumberToObject(ev, "s", (double)step);
    cJSON_AddNumberToObject(ev, "ts", floor(time * 1000));
    spool(t, ev, 0);
    return 0;
}

static int op_summary(void *self, const char *key, const cJSON *value, lm_err *e) {
    (void)e;
    mlf *t = self;
    char *k = lm_sprintf("summary/%s", key);
    if (!k) return 0;
    if (cJSON_IsNumber(value)) {
        op_metric(self, NULL, k, value->valuedouble, 0, lm_wall_time(), e);
    } else {
        char *v = value_text(value), *tk = lm_sprintf("lumen.summary.%s", key);
        if (tk) spool_kv(t, "tag", tk, v ? v : "", MAX_TAG_VAL, NULL);
        free(v);
        free(tk);
    }
    free(k);
    return 0;
}

static int op_stage_status(void *self, const char *stage_id, const char *status, const char *detail, lm_err *e) {
    (void)e;
    mlf *t = self;
    char *k = lm_sprintf("lumen.stage.%s", stage_id);
    if (!k) return 0;
    int end = strcmp(status, "running") != 0;
    if (detail && strcmp(status, "failed") == 0) {
        char *dk = lm_sprintf("%s.error", k);
        if (dk) spool_kv(t, "tag", dk, detail, MAX_TAG_VAL, NULL);
        free(dk);
    }
    spool_kv(t, "tag", k, status, MAX_TAG_VAL, NULL);
    free(k);
    if (end && t->fd >= 0) { /* a stage's end: durable, and sent without waiting */
        fdatasync(t->fd);
        nudge(t, 1);
    }
    return 0;
}

static void spool_artifact(mlf *t, const char *src) {
    char *p = lm_path_join(t->run_dir, src);
    struct stat sb;
    if (p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
        cJSON *ev = event("artifact");
        cJSON_AddStringToObject(ev, "src", src);
        cJSON_AddStringToObject(ev, "dst", src);
        spool(t, ev, 0);
    }
    free(p);
}

/* config.json, results.csv, and per stage folder its report/ files and
 * model/best.safetensors. */
static void spool_artifacts(mlf *t) {
    spool_artifact(t, RN_CONFIG_FILE);
    spool_artifact(t, "results.csv");
    spool_artifact(t, "best/best.safetensors"); /* a sweep's best trial's checkpoint */
    DIR *d = opendir(t->run_dir);
    rn_strv names = {0};
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && strcmp(de->d_name, "logs") != 0 && strcmp(de->d_name, MF_DIR) != 0 &&
            strcmp(de->d_name, "trials") != 0)
            rn_strv_push(&names, de->d_name);
    if (d) closedir(d);
    rn_strv_sort(&names);
    for (size_t i = 0; i < names.n; i++) {
        char *best = lm_sprintf("%s/model/best.safetensors", names.v[i]);
        if (best) spool_artifact(t, best);
        free(best);
        char *rep = lm_sprintf("%s/%s/report", t->run_dir, names.v[i]);
        DIR *r = rep ? opendir(rep) : NULL;
        rn_strv files = {0};
        while (r && (de = readdir(r)) != NULL)
            if (de->d_name[0] != '.') rn_strv_push(&files, de->d_name);
        if (r) closedir(r);
        rn_strv_sort(&files);
        for (size_t k = 0; k < files.n; k++) {
            char *src = lm_sprintf("%s/report/%s", names.v[i], files.v[k]);
            if (src) spool_artifact(t, src);
            free(src);
        }
        rn_strv_free(&files);
        free(rep);
    }
    rn_strv_free(&names);
}

static double drain_seconds(void) {
    const char *v = env("LUMEN_TRACKING_DRAIN");
    char *end;
    double d = v ? strtod(v, &end) : 10;
    return v && (*end || d < 0) ? 10 : d;
}

static int op_run_ended(void *self, const char *status, const char *reason, double ended, lm_err *e) {
    (void)e;
    mlf *t = self;
    if (reason) spool_kv(t, "tag", "lumen.reason", reason, MAX_TAG_VAL, NULL);
    spool_artifacts(t);
    cJSON *ev = event("status");
    /* KILLED: the runner got SIGINT/SIGTERM (its stage may have stopped on
     * the same signal first, with a message of its own) */
    const char *ms = strcmp(status, "finished") == 0 ? "FINISHED"
                     : rn_signals_pending() || (reason && strncmp(reason, "interrupted", 11) == 0) ? "KILLED"
                                                                                                  : "FAILED";
    cJSON_AddStringToObject(ev, "status", ms);
    cJSON_AddNumberToObject(ev, "end_ms", floor(ended * 1000));
    spool(t, ev, 1);
    if (t->pid) {
        double dl = mono() + drain_seconds();
        t->sh->deadline = dl; /* the status event above asked for a flush */
        STORE(t->sh->wake, 1);
        STORE(t->sh->stopping, 1);
        ring(t);
        stop_sender(t, dl, 5);
    }
    long pending = 0, rejected = 0;
    char err[sizeof t->open_err] = "";
    if (t->snd) {
        pending = mf_sender_pending(t->snd);
        rejected = mf_sender_rejected(t->snd);
        snprintf(err, sizeof err, "%s", mf_sender_error(t->snd));
        if (rejected)
            fprintf(t->term, "mlflow: %ld request(s) refused by the server, not retried (%s/%s/%s): %s\n", rejected,
                    t->run_dir, MF_DIR, MF_LOG, mf_sender_refusal(t->snd));
    } else {
        mf_spool_state(t->run_dir, &pending, &rejected, err, sizeof err);
        snprintf(err, sizeof err, "%s", t->open_err);
    }
    if (pending == 0)
        fprintf(t->term, "mlflow: synced to %s (experiment '%s', run %s)\n", t->conf.uri, t->conf.experiment,
                t->snd && mf_sender_run_id(t->snd) ? mf_sender_run_id(t->snd) : "?");
    else
        fprintf(t->term, "mlflow: %ld event(s) not yet on %s (%s); `runner sync %s` sends them\n", pending,
                t->conf.uri, err[0] ? err : "the server did not answer in time", t->run_dir);
    fflush(t->term);
    mf_sender_close(t->snd);
    t->snd = NULL;
    return 0;
}

static void op_destroy(void *self) {
    mlf *t = self;
    if (!t) return;
    if (t->pid) { /* the run never ended (an early failure): stop at once */
        STORE(t->sh->stopping, 1);
        t->sh->abort = 1;
        ring(t);
        stop_sender(t, mono() + 5, 1);
    }
    if (t->sh) munmap(t->sh, sizeof *t->sh);
    mf_sender_close(t->snd);
    if (t->fd >= 0) close(t->fd);
    rn_mlflow_conf_free(&t->conf);
    free(t->run_dir);
    free(t);
}

static const rn_tracker_ops OPS = {
    .name = "mlflow",
    .run_started = op_run_started,
    .metric = op_metric,
    .summary = op_summary,
    .stage_status = op_stage_status,
    .run_ended = op_run_ended,
    .destroy = op_destroy,
};

const rn_tracker_ops *rn_mlflow_tracker(void) { return &OPS; }

int rn_mlflow_new(const rn_mlflow_conf *conf, FILE *term, void **self, lm_err *e) {
    *self = NULL;
    mlf *t = calloc(1, sizeof *t);
    if (!t) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    t->fd = t->bell_r = t->bell_w = t->done_r = -1;
    t->term = term;
    t->conf.uri = lm_strdup(conf->uri);
    t->conf.experiment = lm_strdup(conf->experiment);
    if (!t->conf.uri || !t->conf.experiment || mf_global_init()) {
        rn_mlflow_conf_free(&t->conf);
        free(t);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory (or curl_global_init failed)");
    }
    *self = t;
    return 0;
}

/* ------------------------------------------------------------------ sync */

static int sleep_nap(void *arg, double s, double must) {
    (void)arg, (void)must;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

/* out may be NULL (nothing printed). */
static int sync_one(const char *run_dir, const char *uri, FILE *out, int tries, const volatile int *abort,
                    lm_err *e) {
    mf_sender *s = NULL;
    int busy = 0;
    int rc = mf_sender_open(run_dir, uri, abort, &s, &busy, e);
    if (rc) {
        if (out) fprintf(out, "%s: not synced: %s\n", run_dir, e->msg);
        return rc;
    }
    mf_class c = mf_send_drive(s, tries, NULL, sleep_nap, NULL);
    long pending = mf_sender_pending(s);
    if (!out) {
        if (c != MF_OK || pending) rc = lm_fail(e, LUMEN_EIO, "%s: %ld event(s) not sent", run_dir, pending);
    } else if (mf_sender_rejected(s))
        fprintf(out, "%s: %ld request(s) refused by the server (see %s/%s): %s\n", run_dir, mf_sender_rejected(s),
                MF_DIR, MF_LOG, mf_sender_refusal(s));
    if (!out) {
    } else if (c == MF_OK && pending == 0) {
        fprintf(out, "%s: synced (run %s)\n", run_dir, mf_sender_run_id(s) ? mf_sender_run_id(s) : "?");
    } else {
        rc = lm_fail(e, LUMEN_EIO, "%s: %ld event(s) not sent: %s", run_dir, pending, mf_sender_error(s));
        fprintf(out, "%s\n", e->msg);
    }
    mf_sender_close(s);
    return rc;
}

int rn_mlflow_sync(const char *run_dir, const char *uri, FILE *out, lm_err *e) {
    const char *v = env("LUMEN_TRACKING_RETRIES");
    int tries = v ? atoi(v) : 5;
    return sync_tree(run_dir, uri, out, tries < 1 ? 1 : tries, NULL, e);
}

static int sync_tree(const char *run_dir, const char *uri, FILE *out, int tries, const volatile int *abort,
                     lm_err *e) {
    long pending, rejected;
    char err[8];
    if (mf_spool_state(run_dir, &pending, &rejected, err, sizeof err) != 0)
        return lm_fail(e, LUMEN_ENOTFOUND, "%s: no MLflow spool (the run was not tracked)", run_dir);
    int rc = sync_one(run_dir, uri, out, tries, abort, e);
    char *trials = lm_path_join(run_dir, "trials");
    DIR *d = trials ? opendir(trials) : NULL;
    rn_strv names = {0};
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') rn_strv_push(&names, de->d_name);
    if (d) closedir(d);
    rn_strv_sort(&names);
    for (size_t i = 0; i < names.n; i++) {
        char *td = lm_path_join(trials, names.v[i]);
        if (td && mf_spool_state(td, &pending, &rejected, err, sizeof err) == 0) {
            if (rc) {
                if (out) fprintf(out, "%s: skipped (its sweep run is not on the server yet)\n", td);
            } else {
                lm_err te = {0};
                int trc = sync_one(td, uri, out, tries, abort, &te);
                if (trc && !rc) rc = lm_fail(e, trc, "%s", te.msg);
            }
        }
        free(td);
    }
    rn_strv_free(&names);
    free(trials);
    return rc;
}

void rn_mlflow_sync_state(const char *run_dir, char *buf, size_t n) {
    long pending, rejected;
    char err[64];
    if (mf_spool_state(run_dir, &pending, &rejected, err, sizeof err) != 0) {
        snprintf(buf, n, "-");
        return;
    }
    if (pending == 0 && rejected == 0) snprintf(buf, n, "synced");
    else if (pending == 0) snprintf(buf, n, "synced, %ld refused", rejected);
    else snprintf(buf, n, "pending %ld%s", pending, rejected ? ", refused" : "");
}
