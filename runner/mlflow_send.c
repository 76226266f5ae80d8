/* mlflow_send.c -- see mlflow_send.h. */
#include "mlflow_send.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonutil.h"

/* The server's limits (MLflow's mlflow/utils/validation.py). */
#define MAX_METRICS 1000
#define MAX_PARAMS 100
#define MAX_TAGS 100
#define MAX_ENTITIES 1000
#define MAX_BYTES 900000 /* of 1 MB a request, with room for the JSON around the entities */

struct mf_sender {
    char *run_dir, *dir, *spool, *state_path, *log_path;
    char *uri;
    int lockfd;
    mf_client *cli;
    cJSON *run_ev; /* the spool's first line */
    /* state */
    char *exp_id, *run_id, *artifact_uri;
    long long acked;
    int uncertain;
    long rejected;
    double retry_after;
    char error[512];
    char refusal[512]; /* the last refused request's message */
};

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = rn_json_item(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_str(char **dst, const char *v) {
    free(*dst);
    *dst = v ? lm_strdup(v) : NULL;
}

/* A line in sync.log: "<time> <text>". */
static void log_line(mf_sender *s, const char *text) {
    char iso[40];
    char *line = lm_sprintf("%s %s\n", rn_time_iso(lm_wall_time(), iso, sizeof iso), text);
    if (line) lm_append_file(s->log_path, line, strlen(line), 0, NULL);
    free(line);
}

static void set_error(mf_sender *s, const char *msg) {
    size_t n = strlen(msg);
    if (n >= sizeof s->error) n = sizeof s->error - 1;
    memcpy(s->error, msg, n);
    s->error[n] = '\0';
}

static int save_state(mf_sender *s) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return LUMEN_ENOMEM;
    cJSON_AddStringToObject(j, "uri", s->uri);
    if (s->exp_id) cJSON_AddStringToObject(j, "experiment_id", s->exp_id);
    if (s->run_id) cJSON_AddStringToObject(j, "run_id", s->run_id);
    if (s->artifact_uri) cJSON_AddStringToObject(j, "artifact_uri", s->artifact_uri);
    cJSON_AddNumberToObject(j, "acked", (double)s->acked);
    cJSON_AddBoolToObject(j, "uncertain", s->uncertain);
    cJSON_AddNumberToObject(j, "rejected", (double)s->rejected);
    cJSON_AddStringToObject(j, "error", s->error);
    cJSON_AddStringToObject(j, "refusal", s->refusal);
    lm_err e = {0};
    int rc = rn_json_write_atomic(s->state_path, j, &e);
    cJSON_Delete(j);
    return rc;
}

/* Reads `len` bytes of the spool from `off` (fewer at its end). */
static char *read_spool(const char *path, long long off, size_t *len) {
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat sb;
    char *b = NULL;
    if (fstat(fd, &sb) == 0 && sb.st_size >= off) {
        size_t n = (size_t)(sb.st_size - off);
        b = malloc(n + 1);
        ssize_t got = 0;
        while (b && (size_t)got < n) {
            ssize_t r = pread(fd, b + got, n - (size_t)got, (off_t)(off + got));
            if (r <= 0) break;
            got += r;
        }
        if (b) {
            b[got] = '\0';
            *len = (size_t)got;
        }
    }
    close(fd);
    return b;
}

/* state.json into s when it is for s->uri; else (another server, or
 * nothing sent yet) s keeps what it has: everything goes. */
static void load_state(mf_sender *s) {
    cJSON *st = NULL;
    lm_err ig = {0};
    if (rn_json_read_file(s->state_path, &st, &ig) == 0 && str(st, "uri") && strcmp(str(st, "uri"), s->uri) == 0) {
        set_str(&s->exp_id, str(st, "experiment_id"));
        set_str(&s->run_id, str(st, "run_id"));
        set_str(&s->artifact_uri, str(st, "artifact_uri"));
        s->acked = (long long)cJSON_GetNumberValue(rn_json_item(st, "acked"));
        if (s->acked < 0 || isnan((double)s->acked)) s->acked = 0;
        s->uncertain = cJSON_IsTrue(rn_json_item(st, "uncertain"));
        s->rejected = (long)cJSON_GetNumberValue(rn_json_item(st, "rejected"));
        if (s->rejected < 0) s->rejected = 0;
        snprintf(s->error, sizeof s->error, "%s", str(st, "error") ? str(st, "error") : "");
        snprintf(s->refusal, sizeof s->refusal, "%s", str(st, "refusal") ? str(st, "refusal") : "");
    }
    cJSON_Delete(st);
}

void mf_sender_reload(mf_sender *s) { load_state(s); }

int mf_sender_save(mf_sender *s) { return save_state(s); }

int mf_sender_open(const char *run_dir, const char *uri, const volatile int *abort, mf_sender **out, int *busy,
                   lm_err *e) {
    *out = NULL;
    if (busy) *busy = 0;
    mf_sender *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    s->lockfd = -1;
    s->run_dir = lm_strdup(run_dir);
    s->dir = lm_path_join(run_dir, MF_DIR);
    s->spool = s->dir ? lm_path_join(s->dir, MF_SPOOL) : NULL;
    s->state_path = s->dir ? lm_path_join(s->dir, MF_STATE) : NULL;
    s->log_path = s->dir ? lm_path_join(s->dir, MF_LOG) : NULL;
    char *lock = s->dir ? lm_path_join(s->dir, "lock") : NULL;
    int rc = 0;
    if (!s->run_dir || !s->spool || !s->state_path || !s->log_path || !lock) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    s->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lockfd < 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot open %s", lock);
        goto out;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (busy) *busy = 1;
        rc = lm_fail(e, LUMEN_EINVAL, "%s: busy (another runner is sending it)", run_dir);
        goto out;
    }
    /* the first line: the run event */
    size_t n;
    char *head = read_spool(s->spool, 0, &n);
    char *nl = head ? strchr(head, '\n') : NULL;
    if (nl) *nl = '\0';
    s->run_ev = nl ? cJSON_Parse(head) : NULL;
    free(head);
    const char *t = str(s->run_ev, "t");
    if (!t || strcmp(t, "run") != 0 || !str(s->run_ev, "uri") || !str(s->run_ev, "uid")) {
        rc = lm_fail(e, LUMEN_EDATA, "%s: no run event on its first line", s->spool);
        goto out;
    }
    s->uri = lm_strdup(uri ? uri : str(s->run_ev, "uri"));
    if (!s->uri) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    else if (!(rc = mf_client_new(s->uri, abort, &s->cli, e))) load_state(s);
out:
    free(lock);
    if (rc) mf_sender_close(s);
    else *out = s;
    return rc;
}

void mf_sender_close(mf_sender *s) {
    if (!s) return;
    mf_client_free(s->cli);
    if (s->lockfd >= 0) close(s->lockfd); /* releases the flock */
    cJSON_Delete(s->run_ev);
    free(s->run_dir);
    free(s->dir);
    free(s->spool);
    free(s->state_path);
    free(s->log_path);
    free(s->uri);
    free(s->exp_id);
    free(s->run_id);
    free(s->artifact_uri);
    free(s);
}

const char *mf_sender_error(const mf_sender *s) { return s->error; }
const char *mf_sender_refusal(const mf_sender *s) { return s->refusal; }
long mf_sender_rejected(const mf_sender *s) { return s->rejected; }
const char *mf_sender_run_id(const mf_sender *s) { return s->run_id; }

static long count_lines(const char *b, size_t n) {
    long k = 0;
    for (size_t i = 0; i < n; i++) k += b[i] == '\n';
    return k;
}

long mf_sender_pending(mf_sender *s) {
    size_t n;
    char *b = read_spool(s->spool, s->acked, &n);
    long k = b ? count_lines(b, n) : 0;
    free(b);
    return k;
}

/* One request; on failure the message is kept (and logged when refused). */
static mf_class call(mf_sender *s, const char *method, const char *path, const cJSON *body, const char *file,
                     cJSON **out, mf_resp *keep) {
    char *json = body ? rn_json_print(body, 0) : NULL;
    mf_resp r;
    mf_class c = (body && !json) ? MF_RETRY : mf_request(s->cli, method, path, json, file, &r);
    free(json);
    if (body && !json) {
        set_error(s, "out of memory");
        return c;
    }
    if (c == MF_OK && out) *out = r.body ? cJSON_Parse(r.body) : NULL;
    if (c == MF_RETRY) s->retry_after = r.retry_after;
    if (c != MF_OK && !(c == MF_ABORTED && s->error[0])) set_error(s, r.msg); /* keep why it was slow */
    if (keep) *keep = r;
    else mf_resp_free(&r);
    return c;
}

static int api_error_is(const mf_resp *r, const char *code) {
    return r->body && strstr(r->body, code) != NULL;
}

/* experiments/get-by-name, else experiments/create (another runner may win
 * the race: then get-by-name again). */
static mf_class ensure_experiment(mf_sender *s) {
    if (s->exp_id) return MF_OK;
    const char *name = str(s->run_ev, "experiment");
    char *q = mf_escape(name ? name : "Default", 0);
    char *path = q ? lm_sprintf("/api/2.0/mlflow/experiments/get-by-name?experiment_name=%s", q) : NULL;
    free(q);
    if (!path) return MF_RETRY;
    mf_class c = MF_RETRY;
    for (int round = 0; round < 2; round++) {
        cJSON *j = NULL;
        mf_resp r;
        c = call(s, "GET", path, NULL, NULL, &j, &r);
        int missing = c == MF_REFUSED && r.status == 404;
        mf_resp_free(&r);
        if (c == MF_OK) {
            const char *id = str(rn_json_item(j, "experiment"), "experiment_id");
            set_str(&s->exp_id, id);
            cJSON_Delete(j);
            if (!id) {
                set_error(s, "experiments/get-by-name: no experiment_id in the answer");
                c = MF_REFUSED;
            }
            break;
        }
        if (!missing || round > 0) break;
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "name", name ? name : "Default");
        c = call(s, "POST", "/api/2.0/mlflow/experiments/create", body, NULL, &j, &r);
        cJSON_Delete(body);
        int exists = c == MF_REFUSED && api_error_is(&r, "RESOURCE_ALREADY_EXISTS");
        mf_resp_free(&r);
        if (c == MF_OK) {
            set_str(&s->exp_id, str(j, "experiment_id"));
            cJSON_Delete(j);
            break;
        }
        if (!exists) break; /* else: created by someone else meanwhile: read it */
    }
    free(path);
    if (c == MF_OK) save_state(s);
    return c;
}

static void add_tag(cJSON *arr, const char *k, const char *v) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "key", k);
    cJSON_AddStringToObject(t, "value", v);
    cJSON_AddItemToArray(arr, t);
}

/* The parent's server run id (a sweep trial), or NULL with *wait set. */
static char *parent_run_id(mf_sender *s, const char *parent) {
    char *p = lm_sprintf("%s/%s/%s", parent, MF_DIR, MF_STATE);
    cJSON *st = NULL;
    lm_err ig = {0};
    char *id = NULL;
    if (p && rn_json_read_file(p, &st, &ig) == 0 && str(st, "uri") && strcmp(str(st, "uri"), s->uri) == 0 &&
        str(st, "run_id"))
        id = lm_strdup(str(st, "run_id"));
    cJSON_Delete(st);
    free(p);
    return id;
}

/* runs/search for the run's uid tag, else runs/create. */
static mf_class ensure_run(mf_sender *s) {
    if (s->run_id) return MF_OK;
    mf_class c = ensure_experiment(s);
    if (c != MF_OK) return c;
    const char *uid = str(s->run_ev, "uid"), *parent = str(s->run_ev, "parent");
    char *pid = NULL;
    if (parent && !(pid = parent_run_id(s, parent))) {
        char msg[600];
        snprintf(msg, sizeof msg, "waiting for the parent run %s to reach the server", parent);
        set_error(s, msg);
        s->retry_after = 0.5; /* the sweep's runner is creating it: look again soon, as for Retry-After */
        return MF_RETRY;
    }
    cJSON *q = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(q, "experiment_ids");
    cJSON_AddItemToArray(ids, cJSON_CreateString(s->exp_id));
    char *filter = lm_sprintf("tags.`lumen.uid` = '%s'", uid);
    cJSON_AddStringToObject(q, "filter", filter ? filter : "");
    cJSON_AddNumberToObject(q, "max_results", 1);
    cJSON_AddStringToObject(q, "run_view_type", "ALL");
    free(filter);
    cJSON *j = NULL;
    c = call(s, "POST", "/api/2.0/mlflow/runs/search", q, NULL, &j, NULL);
    cJSON_Delete(q);
    if (c != MF_OK) {
        free(pid);
        return c;
    }
    const cJSON *info = rn_json_item(cJSON_GetArrayItem(rn_json_item(j, "runs"), 0), "info");
    if (info) {
        set_str(&s->run_id, str(info, "run_id"));
        set_str(&s->artifact_uri, str(info, "artifact_uri"));
    }
    cJSON_Delete(j);
    if (!s->run_id) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "experiment_id", s->exp_id);
        if (str(s->run_ev, "name")) cJSON_AddStringToObject(b, "run_name", str(s->run_ev, "name"));
        cJSON_AddNumberToObject(b, "start_time", cJSON_GetNumberValue(rn_json_item(s->run_ev, "start_ms")));
        cJSON *tags = cJSON_AddArrayToObject(b, "tags");
        for (const cJSON *t = rn_json_item(s->run_ev, "tags") ? rn_json_item(s->run_ev, "tags")->child : NULL; t;
             t = t->next)
            if (cJSON_IsString(t)) add_tag(tags, t->string, t->valuestring);
        add_tag(tags, "lumen.uid", uid);
        if (pid) add_tag(tags, "mlflow.parentRunId", pid);
        c = call(s, "POST", "/api/2.0/mlflow/runs/create", b, NULL, &j, NULL);
        cJSON_Delete(b);
        if (c == MF_OK) {
            const cJSON *ri = rn_json_item(rn_json_item(j, "run"), "info");
            set_str(&s->run_id, str(ri, "run_id"));
            set_str(&s->artifact_uri, str(ri, "artifact_uri"));
            cJSON_Delete(j);
            if (!s->run_id) {
                set_error(s, "runs/create: no run_id in the answer");
                c = MF_REFUSED;
            }
        }
    }
    free(pid);
    if (c == MF_OK) save_state(s);
    return c;
}

/* ---------------------------------------------------------------- batches */

typedef struct batch {
    cJSON *body, *metrics, *params, *tags;
    int nm, np, nt;
    size_t bytes;
    long long end; /* spool offset after the batch's last line */
} batch;

static void batch_init(batch *b, const char *run_id) {
    memset(b, 0, sizeof *b);
    b->body = cJSON_CreateObject();
    cJSON_AddStringToObject(b->body, "run_id", run_id);
    b->metrics = cJSON_AddArrayToObject(b->body, "metrics");
    b->params = cJSON_AddArrayToObject(b->body, "params");
    b->tags = cJSON_AddArrayToObject(b->body, "tags");
}

static const cJSON *find_key(const cJSON *arr, const char *k) {
    for (const cJSON *c = arr->child; c; c = c->next)
        if (strcmp(str(c, "key"), k) == 0) return c;
    return NULL;
}

/* Adds one entity line; 0 when it does not fit (the batch is full). */
static int batch_add(batch *b, const cJSON *ev, size_t line_len) {
    const char *t = str(ev, "t"), *k = str(ev, "k");
    if (!t || !k) return 1; /* malformed line: skipped */
    int ents = b->nm + b->np + b->nt;
    if (ents >= MAX_ENTITIES || b->bytes + line_len + 64 > MAX_BYTES) return 0;
    if (strcmp(t, "m") == 0) {
        if (b->nm >= MAX_METRICS) return 0;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "key", k);
        const cJSON *v = rn_json_item(ev, "v");
        cJSON_AddItemToObject(m, "value", cJSON_Duplicate(v, 0));
        cJSON_AddNumberToObject(m, "timestamp", cJSON_GetNumberValue(rn_json_item(ev, "ts")));
        cJSON_AddNumberToObject(m, "step", cJSON_GetNumberValue(rn_json_item(ev, "s")));
        cJSON_AddItemToArray(b->metrics, m);
        b->nm++;
    } else if (strcmp(t, "param") == 0) {
        if (b->np >= MAX_PARAMS || find_key(b->params, k)) return 0;
        add_tag(b->params, k, str(ev, "v") ? str(ev, "v") : "");
        b->np++;
    } else if (strcmp(t, "tag") == 0) {
        cJSON *old = (cJSON *)find_key(b->tags, k);
        if (old) { /* a later value of the same tag in this batch wins */
            cJSON_ReplaceItemInObjectCaseSensitive(old, "value", cJSON_CreateString(str(ev, "v") ? str(ev, "v") : ""));
        } else {
            if (b->nt >= MAX_TAGS) return 0;
            add_tag(b->tags, k, str(ev, "v") ? str(ev, "v") : "");
            b->nt++;
        }
    }
    b->bytes += line_len + 64;
    return 1;
}

static int same_value(const cJSON *a, const cJSON *b) {
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) return a->valuedouble == b->valuedouble;
    double x = cJSON_IsNumber(a) ? a->valuedouble : NAN, y = cJSON_IsNumber(b) ? b->valuedouble : NAN;
    const char *sa = cJSON_IsString(a) ? a->valuestring : NULL, *sb = cJSON_IsString(b) ? b->valuestring : NULL;
    /* the server answers "NaN" for NaN and a huge finite number for +-Infinity */
    if (sa && sb) return strcmp(sa, sb) == 0;
    const char *s = sa ? sa : sb;
    double n = sa ? y : x;
    if (!s) return 0;
    if (strcmp(s, "Infinity") == 0) return n >= 1.79e308;
    if (strcmp(s, "-Infinity") == 0) return n <= -1.79e308;
    return 0;
}

/* A batch that may have landed: drops the metric points the server has
 * (metrics/get-history of each key in the batch).  Removing a key's points
 * removes the item the scan stands on (the key's first point), so the key
 * is copied and each key's scan starts again at the head, skipping the
 * keys already read. */
static mf_class dedupe(mf_sender *s, batch *b) {
    cJSON *done = cJSON_CreateObject(); /* keys already read */
    mf_class c = done ? MF_OK : MF_RETRY;
    for (cJSON *m = b->metrics->child; m && c == MF_OK;) {
        if (rn_json_item(done, str(m, "key"))) {
            m = m->next;
            continue;
        }
        char *k = lm_strdup(str(m, "key"));
        cJSON *hist = NULL;
        char *ek = k ? mf_escape(k, 0) : NULL;
        char *path = ek ? lm_sprintf("/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=%s", s->run_id, ek)
                        : NULL;
        free(ek);
        if (!path) {
            free(k);
            c = MF_RETRY;
            break;
        }
        c = call(s, "GET", path, NULL, NULL, &hist, NULL);
        free(path);
        if (c != MF_OK) {
            free(k);
            break;
        }
        if (!cJSON_AddItemToObject(done, k, cJSON_CreateTrue())) { /* out of memory: try again later */
            cJSON_Delete(hist);
            free(k);
            c = MF_RETRY;
            break;
        }
        const cJSON *pts = rn_json_item(hist, "metrics");
        for (cJSON *x = b->metrics->child; x;) {
            cJSON *next = x->next;
            int dup = 0;
            if (strcmp(str(x, "key"), k) == 0)
                for (const cJSON *p = pts ? pts->child : NULL; p && !dup; p = p->next)
                    dup = cJSON_GetNumberValue(rn_json_item(p, "step")) ==
                              cJSON_GetNumberValue(rn_json_item(x, "step")) &&
                          cJSON_GetNumberValue(rn_json_item(p, "timestamp")) ==
                              cJSON_GetNumberValue(rn_json_item(x, "timestamp")) &&
                          same_value(rn_json_item(p, "value"), rn_json_item(x, "value"));
            if (dup) {
                cJSON_DetachItemViaPointer(b->metrics, x);
                cJSON_Delete(x);
                b->nm--;
            }
            x = next;
        }
        cJSON_Delete(hist);
        free(k);
        m = b->metrics->child; /* m itself may be gone */
    }
    cJSON_Delete(done);
    return c;
}

static mf_class post_batch(mf_sender *s, batch *b) {
    mf_class c = MF_OK;
    if (s->uncertain) c = dedupe(s, b);
    if (c != MF_OK) return c;
    if (b->nm + b->np + b->nt > 0) {
        mf_resp r;
        c = call(s, "POST", "/api/2.0/mlflow/runs/log-batch", b->body, NULL, NULL, &r);
        if (c == MF_RETRY || c == MF_ABORTED) s->uncertain |= r.maybe_landed;
        mf_resp_free(&r);
    }
    if (c == MF_REFUSED) { /* retrying cannot help: dropped, counted, logged */
        s->rejected++;
        snprintf(s->refusal, sizeof s->refusal, "%s", s->error);
        char line[700];
        snprintf(line, sizeof line, "refused, not retried (%d metrics, %d params, %d tags dropped): %s", b->nm,
                 b->np, b->nt, s->error);
        log_line(s, line);
        c = MF_OK;
    }
    if (c == MF_OK) {
        s->acked = b->end;
        s->uncertain = 0;
        save_state(s);
    } else if (s->uncertain) {
        save_state(s);
    }
    return c;
}

static const char *mlflow_status(const char *st) {
    if (!st) return "FINISHED";
    if (strcmp(st, "FINISHED") == 0 || strcmp(st, "FAILED") == 0 || strcmp(st, "KILLED") == 0 ||
        strcmp(st, "RUNNING") == 0)
        return st;
    return "FAILED";
}

/* A single event that is not part of a batch. */
static mf_class send_single(mf_sender *s, const cJSON *ev) {
    const char *t = str(ev, "t");
    if (strcmp(t, "status") == 0 || strcmp(t, "resume") == 0) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "run_id", s->run_id);
        int resume = strcmp(t, "resume") == 0;
        cJSON_AddStringToObject(b, "status", resume ? "RUNNING" : mlflow_status(str(ev, "status")));
        if (!resume) cJSON_AddNumberToObject(b, "end_time", cJSON_GetNumberValue(rn_json_item(ev, "end_ms")));
        mf_class c = call(s, "POST", "/api/2.0/mlflow/runs/update", b, NULL, NULL, NULL);
        cJSON_Delete(b);
        return c;
    }
    if (strcmp(t, "artifact") == 0) {
        const char *src = str(ev, "src"), *dst = str(ev, "dst");
        static const char scheme[] = "mlflow-artifacts:";
        if (!src || !dst) return MF_OK;
        if (!s->artifact_uri || strncmp(s->artifact_uri, scheme, sizeof scheme - 1) != 0) {
            char line[700];
            snprintf(line, sizeof line, "artifact %s not uploaded: the server does not serve artifacts (%s)", dst,
                     s->artifact_uri ? s->artifact_uri : "no artifact_uri");
            log_line(s, line);
            return MF_OK;
        }
        /* mlflow-artifacts:/<exp>/<run>/artifacts or mlflow-artifacts://host/<...> */
        const char *rest = s->artifact_uri + sizeof scheme - 1;
        if (strncmp(rest, "//", 2) == 0) rest = strchr(rest + 2, '/') ? strchr(rest + 2, '/') : "";
        while (*rest == '/') rest++;
        char *file = lm_path_join(s->run_dir, src);
        char *er = mf_escape(rest, 1), *ed = mf_escape(dst, 1);
        char *path = er && ed ? lm_sprintf("/api/2.0/mlflow-artifacts/artifacts/%s/%s", er, ed) : NULL;
        mf_class c = MF_RETRY;
        if (file && path) {
            mf_resp r;
            c = call(s, "PUT", path, NULL, file, NULL, &r);
            mf_resp_free(&r);
            if (c == MF_REFUSED) { /* a file that is gone, or a path the server refuses */
                s->rejected++;
                snprintf(s->refusal, sizeof s->refusal, "%s", s->error);
                char line[700];
                snprintf(line, sizeof line, "artifact %s refused, not retried: %s", dst, s->error);
                log_line(s, line);
                c = MF_OK;
            }
        }
        free(file);
        free(er);
        free(ed);
        free(path);
        return c;
    }
    return MF_OK; /* an unknown event (a newer runner's): skipped */
}

mf_class mf_send_pending(mf_sender *s) {
    size_t n;
    char *buf = read_spool(s->spool, s->acked, &n);
    if (!buf) {
        set_error(s, "cannot read the spool");
        return MF_RETRY;
    }
    long long base = s->acked;
    mf_class c = MF_OK;
    batch b = {0};
    int have_batch = 0;
    size_t pos = 0;
    while (c == MF_OK) {
        char *nl = pos < n ? memchr(buf + pos, '\n', n - pos) : NULL;
        cJSON *ev = NULL;
        size_t len = 0;
        if (nl) {
            *nl = '\0';
            len = (size_t)(nl - (buf + pos)) + 1;
            ev = cJSON_Parse(buf + pos);
        }
        const char *t = str(ev, "t");
        int entity = t && (strcmp(t, "m") == 0 || strcmp(t, "param") == 0 || strcmp(t, "tag") == 0);
        if (have_batch && (!nl || !entity)) { /* the batch ends here */
            c = post_batch(s, &b);
            cJSON_Delete(b.body);
            have_batch = 0;
            if (c != MF_OK) {
                cJSON_Delete(ev);
                break;
            }
        }
        if (!nl) {
            cJSON_Delete(ev);
            break;
        }
        long long line_end = base + (long long)(pos + len);
        if (t && strcmp(t, "run") == 0) {
            c = ensure_run(s);
        } else if ((c = ensure_run(s)) != MF_OK) {
            /* the run must exist first */
        } else if (entity) {
            if (!have_batch) {
                batch_init(&b, s->run_id);
                have_batch = 1;
            }
            if (!batch_add(&b, ev, len)) { /* full: send it, then this line starts the next one */
                c = post_batch(s, &b);
                cJSON_Delete(b.body);
                have_batch = 0;
                if (c == MF_OK) {
                    batch_init(&b, s->run_id);
                    have_batch = 1;
                    batch_add(&b, ev, len);
                }
            }
            if (have_batch) b.end = line_end;
            cJSON_Delete(ev);
            pos += len;
            continue;
        } else if (t) {
            c = send_single(s, ev);
        }
        cJSON_Delete(ev);
        if (c != MF_OK) break;
        /* a single event (or an unreadable line) is done */
        pos += len;
        s->acked = line_end;
        save_state(s);
    }
    if (have_batch) cJSON_Delete(b.body);
    free(buf);
    if (c == MF_OK && s->error[0]) {
        s->error[0] = '\0';
        save_state(s);
    }
    return c;
}

static double jitter(void) {
    static __thread unsigned seed;
    if (!seed) seed = (unsigned)getpid() ^ (unsigned)(lm_now() * 1e6);
    return (double)rand_r(&seed) / RAND_MAX;
}

mf_class mf_send_drive(mf_sender *s, int max_tries, const volatile double *deadline,
                       int (*nap)(void *arg, double s, double must), void *arg) {
    int tries = 0, drain_fails = 0;
    long long last = s->acked;
    for (;;) {
        s->retry_after = 0;
        mf_class c = mf_send_pending(s);
        if (c != MF_RETRY) return c;
        if (s->acked != last) tries = drain_fails = 0; /* progress: a new series of tries */
        last = s->acked;
        tries++;
        if (max_tries > 0 && tries >= max_tries) return MF_RETRY;
        /* once a deadline is set (the run has ended), a server that does not
         * answer at all gets two tries, not the whole deadline; one that
         * asks to wait (Retry-After) is waited for */
        if (deadline && *deadline > 0 && s->retry_after <= 0 && ++drain_fails >= 2) return MF_RETRY;
        /* exponential backoff, full jitter on its upper half; at least Retry-After */
        double cap = 0.25 * (double)(1u << (tries < 8 ? tries : 8));
        if (cap > 30) cap = 30;
        double wait = cap * (0.5 + 0.5 * jitter());
        if (s->retry_after > wait) wait = s->retry_after + 0.1 * jitter();
        double dl = deadline ? *deadline : 0;
        if (dl > 0 && lm_now() + wait > dl) return MF_RETRY;
        if (nap(arg, wait, s->retry_after)) return MF_ABORTED;
    }
}

int mf_spool_state(const char *run_dir, long *pending, long *rejected, char *err, size_t errlen) {
    *pending = -1;
    *rejected = 0;
    if (errlen) err[0] = '\0';
    char *spool = lm_sprintf("%s/%s/%s", run_dir, MF_DIR, MF_SPOOL);
    char *state = lm_sprintf("%s/%s/%s", run_dir, MF_DIR, MF_STATE);
    if (!spool || !state || !lm_exists(spool)) {
        free(spool);
        free(state);
        return -1;
    }
    cJSON *st = NULL;
    lm_err ig = {0};
    long long acked = 0;
    if (rn_json_read_file(state, &st, &ig) == 0) {
        acked = (long long)cJSON_GetNumberValue(rn_json_item(st, "acked"));
        if (acked < 0) acked = 0;
        *rejected = (long)cJSON_GetNumberValue(rn_json_item(st, "rejected"));
        if (*rejected < 0) *rejected = 0;
        const char *m = str(st, "error");
        if (m && errlen) snprintf(err, errlen, "%s", m);
    }
    cJSON_Delete(st);
    size_t n;
    char *b = read_spool(spool, acked, &n);
    *pending = b ? count_lines(b, n) : 0;
    free(b);
    free(spool);
    free(state);
    return 0;
}

char *mf_spool_uri(const char *run_dir) {
    char *spool = lm_sprintf("%s/%s/%s", run_dir, MF_DIR, MF_SPOOL);
    size_t n;
    char *head = spool ? read_spool(spool, 0, &n) : NULL;
    char *nl = head ? strchr(head, '\n') : NULL;
    if (nl) *nl = '\0';
    cJSON *ev = nl ? cJSON_Parse(head) : NULL;
    char *uri = str(ev, "uri") ? lm_strdup(str(ev, "uri")) : NULL;
    cJSON_Delete(ev);
    free(head);
    free(spool);
    return uri;
}
