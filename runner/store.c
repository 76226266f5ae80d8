/* store.c -- see store.h. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "proc.h"
#include "version.h"

struct rn_store {
    char *run_dir;
    char *run_id;
    char *experiment;
    cJSON *status;  /* status.json */
    cJSON *summary; /* summary.json */
    int metrics_fd;
    double started;
};

int rn_store_create(const char *runs_dir, const char *experiment, rn_store **out, lm_err *e) {
    *out = NULL;
    rn_store *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    s->metrics_fd = -1;
    s->experiment = lm_strdup(experiment);
    char *exp_dir = lm_path_join(runs_dir, experiment);
    int rc = 0;
    if (!s->experiment || !exp_dir) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = lm_mkdirs(exp_dir, e))) goto out;
    s->started = lm_wall_time();
    time_t t = (time_t)s->started;
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    /* Ids sort by creation time: milliseconds, then a counter when two runs
     * start within the same millisecond (mkdir is the arbiter). */
    int ms = (int)((s->started - (double)t) * 1000.0);
    if (ms > 999) ms = 999;
    for (int attempt = 0; attempt < 1000; attempt++) {
        free(s->run_id);
        free(s->run_dir);
        s->run_id = attempt ? lm_sprintf("%s-%03d-%d", stamp, ms, attempt)
                            : lm_sprintf("%s-%03d", stamp, ms);
        s->run_dir = s->run_id ? lm_path_join(exp_dir, s->run_id) : NULL;
        if (!s->run_dir) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        if (mkdir(s->run_dir, 0777) == 0) break;
        if (errno != EEXIST) {
            rc = lm_fail_errno(e, LUMEN_EIO, "cannot create run folder %s", s->run_dir);
            goto out;
        }
        if (attempt == 999) rc = lm_fail(e, LUMEN_EIO, "cannot find a free run id in %s", exp_dir);
    }
    if (rc) goto out;
    char *logs = lm_path_join(s->run_dir, "logs");
    rc = logs ? lm_mkdirs(logs, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    free(logs);
    s->summary = cJSON_CreateObject();
    if (rc == 0 && !s->summary) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
out:
    free(exp_dir);
    if (rc) rn_store_free(s);
    else *out = s;
    return rc;
}

int rn_store_create_at(const char *run_dir, const char *run_id, const char *experiment, rn_store **out,
                       lm_err *e) {
    *out = NULL;
    rn_store *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    s->metrics_fd = -1;
    s->experiment = lm_strdup(experiment);
    s->run_dir = lm_strdup(run_dir);
    s->run_id = lm_strdup(run_id);
    s->started = lm_wall_time();
    s->summary = cJSON_CreateObject();
    char *logs = lm_path_join(run_dir, "logs");
    int rc = s->experiment && s->run_dir && s->run_id && s->summary && logs ? lm_mkdirs(logs, e)
                                                                           : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    free(logs);
    if (rc) rn_store_free(s);
    else *out = s;
    return rc;
}

int rn_store_reopen(const char *run_dir, const char *experiment, rn_store **out, lm_err *e) {
    *out = NULL;
    rn_store *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    s->metrics_fd = -1;
    s->experiment = lm_strdup(experiment);
    s->run_dir = lm_strdup(run_dir);
    const char *slash = strrchr(run_dir, '/');
    s->run_id = lm_strdup(slash ? slash + 1 : run_dir);
    char *status = lm_path_join(run_dir, RN_STATUS_FILE), *summary = lm_path_join(run_dir, RN_SUMMARY_FILE);
    char *logs = lm_path_join(run_dir, "logs");
    int rc = 0;
    if (!s->experiment || !s->run_dir || !s->run_id || !status || !summary || !logs)
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) rc = rn_json_read_file(status, &s->status, e);
    if (rc == 0 && !cJSON_IsObject(s->status)) rc = lm_fail(e, LUMEN_EDATA, "%s: not a JSON object", status);
    if (rc == 0) {
        int src = rn_json_read_file(summary, &s->summary, e);
        if (src == LUMEN_ENOTFOUND || (src == 0 && !cJSON_IsObject(s->summary))) {
            lm_err_clear(e);
            cJSON_Delete(s->summary);
            s->summary = cJSON_CreateObject();
            if (!s->summary) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        } else {
            rc = src;
        }
    }
    if (rc == 0) rc = lm_mkdirs(logs, e);
    free(status);
    free(summary);
    free(logs);
    if (rc) rn_store_free(s);
    else *out = s;
    return rc;
}

const char *rn_store_run_id(const rn_store *s) { return s->run_id; }
const char *rn_store_run_dir(const rn_store *s) { return s->run_dir; }

char *rn_store_log_path(const rn_store *s, const char *stage_id) {
    return lm_sprintf("%s/logs/%s.log", s->run_dir, stage_id);
}

static int write_json(rn_store *s, const char *name, const cJSON *v, lm_err *e) {
    char *path = lm_path_join(s->run_dir, name);
    if (!path) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int rc = rn_json_write_atomic(path, v, e);
    free(path);
    return rc;
}

int rn_store_write_config(rn_store *s, const cJSON *config, lm_err *e) { return write_json(s, RN_CONFIG_FILE, config, e); }

void rn_store_free(rn_store *s) {
    if (!s) return;
    if (s->metrics_fd >= 0) close(s->metrics_fd);
    cJSON_Delete(s->status);
    cJSON_Delete(s->summary);
    free(s->run_dir);
    free(s->run_id);
    free(s->experiment);
    free(s);
}

/* ------------------------------------------------------ the tracker -- */

static void set_item(cJSON *o, const char *key, cJSON *v) {
    if (!v) return;
    if (cJSON_GetObjectItemCaseSensitive(o, key)) cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else cJSON_AddItemToObject(o, key, v);
}

/* The previous attempt of a resumed run goes into "attempts"; the status
 * becomes "running" again under this process. */
static int resume_status(rn_store *s, const rn_run_info *run, lm_err *e) {
    cJSON *st = s->status;
    static const char *const keep[] = {"started", "ended", "reason", "pid", "argv", "runner", NULL};
    cJSON *prev = cJSON_CreateObject();
    cJSON *attempts = cJSON_GetObjectItemCaseSensitive(st, "attempts");
    if (!prev) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON_AddStringToObject(prev, "status", run->prev_status ? run->prev_status : "interrupted");
    for (int i = 0; keep[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, keep[i]);
        if (v) cJSON_AddItemToObject(prev, keep[i], cJSON_Duplicate(v, 1));
    }
    if (!cJSON_IsArray(attempts)) {
        cJSON_DeleteItemFromObjectCaseSensitive(st, "attempts");
        attempts = cJSON_AddArrayToObject(st, "attempts");
    }
    if (!attempts || !cJSON_AddItemToArray(attempts, prev)) {
        cJSON_Delete(prev);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    const cJSON *t0 = cJSON_GetObjectItemCaseSensitive(st, "started_unix");
    s->started = cJSON_IsNumber(t0) ? t0->valuedouble : run->started;
    char iso[40];
    set_item(st, "status", cJSON_CreateString("running"));
    set_item(st, "reason", cJSON_CreateNull());
    set_item(st, "ended", cJSON_CreateNull());
    set_item(st, "duration_s", cJSON_CreateNull());
    set_item(st, "resumed", cJSON_CreateString(rn_time_iso(run->started, iso, sizeof iso)));
    set_item(st, "pid", cJSON_CreateNumber((double)getpid()));
    cJSON *argv = cJSON_CreateArray();
    for (int i = 0; argv && i < run->argc; i++) cJSON_AddItemToArray(argv, cJSON_CreateString(run->argv[i]));
    set_item(st, "argv", argv);
    set_item(st, "runner", cJSON_CreateString("lumen runner " RN_VERSION));
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(st, "stages"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(st, "stages");
        cJSON_AddObjectToObject(st, "stages");
    }
    return 0;
}

static int open_metrics(rn_store *s, lm_err *e) {
    char *path = lm_path_join(s->run_dir, RN_METRICS_FILE);
    if (!path) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int rc = 0;
    s->metrics_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->metrics_fd < 0) rc = lm_fail_errno(e, LUMEN_EIO, "cannot open %s", path);
    free(path);
    return rc;
}

static int st_run_started(void *self, const rn_run_info *run, const cJSON *params, lm_err *e) {
    rn_store *s = self;
    char iso[40];
    if (run->resumed && s->status) {
        int rc = resume_status(s, run, e);
        if (rc == 0) rc = write_json(s, RN_PARAMS_FILE, params, e);
        if (rc == 0) rc = write_json(s, RN_STATUS_FILE, s->status, e);
        if (rc == 0) rc = write_json(s, RN_SUMMARY_FILE, s->summary, e);
        return rc ? rc : open_metrics(s, e);
    }
    cJSON *st = cJSON_CreateObject();
    if (!st) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON_Delete(s->status);
    s->status = st;
    s->started = run->started;
    cJSON_AddStringToObject(st, "status", "running");
    cJSON_AddNullToObject(st, "reason");
    cJSON_AddStringToObject(st, "experiment", run->experiment);
    cJSON_AddStringToObject(st, "run", run->run_id);
    cJSON_AddStringToObject(st, "file", run->exp_file);
    cJSON_AddStringToObject(st, "started", rn_time_iso(run->started, iso, sizeof iso));
    cJSON_AddNumberToObject(st, "started_unix", run->started);
    cJSON_AddNullToObject(st, "ended");
    cJSON_AddNullToObject(st, "duration_s");
    cJSON_AddNumberToObject(st, "pid", (double)getpid());
    cJSON *argv = cJSON_AddArrayToObject(st, "argv");
    for (int i = 0; i < run->argc; i++) cJSON_AddItemToArray(argv, cJSON_CreateString(run->argv[i]));
    cJSON_AddStringToObject(st, "runner", "lumen runner " RN_VERSION);
    cJSON_AddObjectToObject(st, "stages");
    int rc = write_json(s, RN_PARAMS_FILE, params, e);
    if (rc == 0) rc = write_json(s, RN_STATUS_FILE, st, e);
    if (rc == 0) rc = write_json(s, RN_SUMMARY_FILE, s->summary, e);
    if (rc == 0) rc = open_metrics(s, e);
    return rc;
}

static int st_metric(void *self, const char *stage_id, const char *key, double value, int64_t step, double time,
                     lm_err *e) {
    (void)stage_id;
    rn_store *s = self;
    if (s->metrics_fd < 0) return lm_fail(e, LUMEN_EIO, "metrics file is not open");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "value", value);
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "time", time);
    char *line = rn_json_print(o, 0);
    cJSON_Delete(o);
    char *nl = line ? lm_sprintf("%s\n", line) : NULL;
    free(line);
    if (!nl) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    size_t n = strlen(nl), off = 0;
    int rc = 0;
    while (off < n) {
        ssize_t w = write(s->metrics_fd, nl + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = lm_fail_errno(e, LUMEN_EIO, "cannot append to %s/%s", s->run_dir, RN_METRICS_FILE);
            break;
        }
        off += (size_t)w;
    }
    free(nl);
    return rc;
}

static int st_summary(void *self, const char *key, const cJSON *value, lm_err *e) {
    rn_store *s = self;
    cJSON *v = cJSON_Duplicate(value, 1);
    if (!v) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    set_item(s->summary, key, v);
    return write_json(s, RN_SUMMARY_FILE, s->summary, e);
}

static int st_stage_status(void *self, const char *stage_id, const char *status, const char *detail, lm_err *e) {
    rn_store *s = self;
    if (!s->status) return 0;
    cJSON *stages = cJSON_GetObjectItemCaseSensitive(s->status, "stages");
    cJSON *o = cJSON_GetObjectItemCaseSensitive(stages, stage_id);
    double now = lm_wall_time();
    char iso[40];
    if (!o) {
        o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToObject(stages, stage_id, o)) {
            cJSON_Delete(o);
            return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        }
    }
    set_item(o, "status", cJSON_CreateString(status));
    if (strcmp(status, "running") == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "detail"); /* an earlier attempt's */
        set_item(o, "started", cJSON_CreateString(rn_time_iso(now, iso, sizeof iso)));
        set_item(o, "started_unix", cJSON_CreateNumber(now));
    } else {
        const cJSON *t0 = cJSON_GetObjectItemCaseSensitive(o, "started_unix");
        if (cJSON_IsNumber(t0)) set_item(o, "duration_s", cJSON_CreateNumber(now - t0->valuedouble));
        cJSON_DeleteItemFromObjectCaseSensitive(o, "started_unix");
    }
    if (detail) set_item(o, "detail", cJSON_CreateString(detail));
    return write_json(s, RN_STATUS_FILE, s->status, e);
}

static int st_run_ended(void *self, const char *status, const char *reason, double ended, lm_err *e) {
    rn_store *s = self;
    if (!s->status) return 0;
    char iso[40];
    set_item(s->status, "status", cJSON_CreateString(status));
    set_item(s->status, "reason", reason ? cJSON_CreateString(reason) : cJSON_CreateNull());
    set_item(s->status, "ended", cJSON_CreateString(rn_time_iso(ended, iso, sizeof iso)));
    set_item(s->status, "duration_s", cJSON_CreateNumber(ended - s->started));
    if (s->metrics_fd >= 0) {
        close(s->metrics_fd);
        s->metrics_fd = -1;
    }
    return write_json(s, RN_STATUS_FILE, s->status, e);
}

static const rn_tracker_ops STORE_OPS = {
    .name = "local",
    .run_started = st_run_started,
    .metric = st_metric,
    .summary = st_summary,
    .stage_status = st_stage_status,
    .run_ended = st_run_ended,
    .destroy = NULL,
};

const rn_tracker_ops *rn_store_tracker(void) { return &STORE_OPS; }

const char *rn_store_effective_status(const cJSON *status) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(status, "status");
    const char *s = cJSON_IsString(st) ? st->valuestring : "unknown";
    if (strcmp(s, "running") == 0) {
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(status, "pid");
        if (cJSON_IsNumber(pid) && !rn_pid_alive((long)pid->valuedouble)) return "killed";
    }
    return s;
}
