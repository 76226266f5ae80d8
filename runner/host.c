/* host.c -- see host.h. */
#include "host.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage_params.h"
#include "signals.h"
#include "strv.h"

struct lumen_ctx {
    const lumen_stage *stage;
    char *stage_id;
    const cJSON *params;
    int smoke, threads, resuming;
    uint64_t seed;
    char *run_dir;
    char **inputs;  /* per declared input; NULL = absent */
    char **outputs; /* per declared output */
    size_t n_inputs, n_outputs;
    rn_keyhash *kh; /* plan mode, inside key() */
    rn_evw *ev;     /* run mode */
    pthread_mutex_t lock;
    int fail_code;
    char *fail_msg;
    char *misuse;
    cJSON *json_texts; /* get_json results, kept until rn_ctx_free */
    double progress_sent;  /* lm_now() of the last progress event sent */
    int64_t progress_total;
};

/* Progress reports closer together than this are dropped (except a phase's
 * first and last), so a stage may report from a hot loop. */
#define PROGRESS_MIN_GAP_S 0.05

/* ------------------------------------------------------------ context -- */

static char **copy_list(const char *const *src, size_t n, int *oom) {
    if (!src || n == 0) return NULL;
    char **out = calloc(n, sizeof *out);
    if (!out) {
        *oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (src[i] && !(out[i] = lm_strdup(src[i]))) *oom = 1;
    }
    return out;
}

int rn_ctx_new(const rn_ctx_init *in, lumen_ctx **out, lm_err *e) {
    *out = NULL;
    lumen_ctx *c = calloc(1, sizeof *c);
    if (!c) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int oom = 0;
    c->stage = in->stage;
    c->stage_id = lm_strdup(in->stage_id);
    c->params = in->params;
    c->smoke = in->smoke;
    c->threads = in->threads;
    c->seed = in->seed;
    c->resuming = in->resuming;
    c->run_dir = in->run_dir ? lm_strdup(in->run_dir) : NULL;
    c->n_inputs = rn_list_len(in->stage->inputs);
    c->n_outputs = rn_list_len(in->stage->outputs);
    c->inputs = copy_list(in->inputs, c->n_inputs, &oom);
    c->outputs = copy_list(in->outputs, c->n_outputs, &oom);
    c->json_texts = cJSON_CreateObject();
    pthread_mutex_init(&c->lock, NULL);
    if (oom || !c->stage_id || (in->run_dir && !c->run_dir) || !c->json_texts) {
        rn_ctx_free(c);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    *out = c;
    return 0;
}

void rn_ctx_use_keyhash(lumen_ctx *ctx, rn_keyhash *kh) { ctx->kh = kh; }
void rn_ctx_use_events(lumen_ctx *ctx, rn_evw *ev) { ctx->ev = ev; }

int rn_ctx_failure(lumen_ctx *ctx, const char **msg) {
    pthread_mutex_lock(&ctx->lock);
    int code = ctx->fail_code;
    if (msg) *msg = ctx->fail_msg;
    pthread_mutex_unlock(&ctx->lock);
    return code;
}

const char *rn_ctx_misuse(lumen_ctx *ctx) {
    pthread_mutex_lock(&ctx->lock);
    const char *m = ctx->misuse;
    pthread_mutex_unlock(&ctx->lock);
    return m;
}

void rn_ctx_free(lumen_ctx *ctx) {
    if (!ctx) return;
    for (size_t i = 0; ctx->inputs && i < ctx->n_inputs; i++) free(ctx->inputs[i]);
    for (size_t i = 0; ctx->outputs && i < ctx->n_outputs; i++) free(ctx->outputs[i]);
    free(ctx->inputs);
    free(ctx->outputs);
    free(ctx->stage_id);
    free(ctx->run_dir);
    free(ctx->fail_msg);
    free(ctx->misuse);
    cJSON_Delete(ctx->json_texts);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static void misuse(lumen_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void misuse(lumen_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0) m = NULL;
    va_end(ap);
    pthread_mutex_lock(&ctx->lock);
    if (!ctx->misuse) {
        ctx->misuse = m;
        m = NULL;
    }
    pthread_mutex_unlock(&ctx->lock);
    free(m);
}

static void emit(lumen_ctx *ctx, cJSON *ev) {
    if (ctx->ev) rn_evw_send(ctx->ev, ev);
    else cJSON_Delete(ev);
}

/* ------------------------------------------------------------ the run -- */

static int h_smoke(lumen_ctx *ctx) { return ctx->smoke; }
static int h_threads(lumen_ctx *ctx) { return ctx->threads; }
static uint64_t h_seed(lumen_ctx *ctx) { return ctx->seed; }
static const char *h_stage_id(lumen_ctx *ctx) { return ctx->stage_id; }
static int h_resuming(lumen_ctx *ctx) { return ctx->resuming; }

/* ------------------------------------------------------- parameters -- */

#define T(x) (1u << (x))
#define ANY_TYPE 0xffffu

/* The value of a declared key, or NULL (unset, or misuse recorded). */
static const cJSON *param(lumen_ctx *ctx, const char *key, unsigned types, const char *getter) {
    if (!key) {
        misuse(ctx, "%s(NULL): no key given", getter);
        return NULL;
    }
    const lumen_param *p = rn_param_find(ctx->stage->params, key);
    if (!p) {
        misuse(ctx, "%s(\"%s\"): no parameter '%s' is declared", getter, key, key);
        return NULL;
    }
    if (!(types & T(p->type))) {
        misuse(ctx, "%s(\"%s\"): parameter '%s' is declared %s", getter, key, key, rn_ptype_name(p->type));
        return NULL;
    }
    return cJSON_GetObjectItemCaseSensitive(ctx->params, key);
}

static int h_is_set(lumen_ctx *ctx, const char *key) { return param(ctx, key, ANY_TYPE, "is_set") != NULL; }

static int h_is_auto(lumen_ctx *ctx, const char *key) {
    const cJSON *v = param(ctx, key, ANY_TYPE, "is_auto");
    return cJSON_IsString(v) && strcmp(v->valuestring, "auto") == 0;
}

static int h_get_bool(lumen_ctx *ctx, const char *key) {
    return cJSON_IsTrue(param(ctx, key, T(LUMEN_BOOL), "get_bool"));
}

static int64_t h_get_int(lumen_ctx *ctx, const char *key) {
    const cJSON *v = param(ctx, key, T(LUMEN_INT), "get_int");
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static double h_get_num(lumen_ctx *ctx, const char *key) {
    const cJSON *v = param(ctx, key, T(LUMEN_INT) | T(LUMEN_NUM), "get_num");
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static const char *h_get_str(lumen_ctx *ctx, const char *key) {
    const cJSON *v = param(ctx, key, T(LUMEN_STR) | T(LUMEN_ENUM) | T(LUMEN_PATH), "get_str");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static size_t get_list(lumen_ctx *ctx, const char *key, unsigned types, const char *getter, int64_t *iout,
                       double *dout, size_t cap) {
    const cJSON *v = param(ctx, key, types, getter);
    if (!cJSON_IsArray(v)) return 0;
    size_t n = 0;
    for (const cJSON *c = v->child; c; c = c->next, n++) {
        if (n >= cap) continue;
        if (iout) iout[n] = (int64_t)c->valuedouble;
        if (dout) dout[n] = c->valuedouble;
    }
    return n;
}

static size_t h_get_ints(lumen_ctx *ctx, const char *key, int64_t *out, size_t cap) {
    return get_list(ctx, key, T(LUMEN_INTS), "get_ints", out, NULL, out ? cap : 0);
}

static size_t h_get_nums(lumen_ctx *ctx, const char *key, double *out, size_t cap) {
    return get_list(ctx, key, T(LUMEN_INTS) | T(LUMEN_NUMS), "get_nums", NULL, out, out ? cap : 0);
}

static const char *h_get_json(lumen_ctx *ctx, const char *key) {
    const cJSON *v = param(ctx, key, ANY_TYPE, "get_json");
    if (!v) return NULL;
    pthread_mutex_lock(&ctx->lock);
    const cJSON *have = cJSON_GetObjectItemCaseSensitive(ctx->json_texts, key);
    const char *out = have ? have->valuestring : NULL;
    if (!out) {
        char *text = cJSON_PrintUnformatted(v);
        cJSON *s = text ? cJSON_CreateString(text) : NULL;
        free(text);
        if (s && cJSON_AddItemToObject(ctx->json_texts, key, s)) out = s->valuestring;
        else cJSON_Delete(s);
    }
    pthread_mutex_unlock(&ctx->lock);
    return out;
}

/* -------------------------------------------------------- artifacts -- */

/* Index of artifact in a declared list (inputs may be written "name?"). */
static long artifact_index(const char *const *list, const char *name) {
    size_t ln = strlen(name);
    for (size_t i = 0; list && list[i]; i++) {
        size_t n = strlen(list[i]);
        if (n && list[i][n - 1] == '?') n--;
        if (n == ln && strncmp(list[i], name, n) == 0) return (long)i;
    }
    return -1;
}

static const char *h_input(lumen_ctx *ctx, const char *artifact) {
    long i = artifact ? artifact_index(ctx->stage->inputs, artifact) : -1;
    if (i < 0) {
        misuse(ctx, "input(\"%s\"): no input artifact '%s' is declared", artifact ? artifact : "(null)",
               artifact ? artifact : "(null)");
        return NULL;
    }
    return ctx->inputs ? ctx->inputs[i] : NULL;
}

static const char *h_output(lumen_ctx *ctx, const char *artifact) {
    long i = artifact ? artifact_index(ctx->stage->outputs, artifact) : -1;
    if (i < 0) {
        misuse(ctx, "output(\"%s\"): no output artifact '%s' is declared", artifact ? artifact : "(null)",
               artifact ? artifact : "(null)");
        return NULL;
    }
    return ctx->outputs ? ctx->outputs[i] : NULL; /* created by the runner before run() */
}

static const char *h_run_dir(lumen_ctx *ctx) { return ctx->run_dir; }

/* -------------------------------------------------------- reporting -- */

static void h_vlog(lumen_ctx *ctx, int level, const char *fmt, va_list ap) {
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) return;
    if (level < LUMEN_LOG_DEBUG) level = LUMEN_LOG_DEBUG;
    if (level > LUMEN_LOG_ERROR) level = LUMEN_LOG_ERROR;
    if (ctx->ev) {
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "t", "log");
        cJSON_AddNumberToObject(ev, "level", level);
        cJSON_AddStringToObject(ev, "msg", msg);
        emit(ctx, ev);
    } else if (level >= LUMEN_LOG_INFO) {
        fprintf(stderr, "[%s] %s\n", ctx->stage_id, msg);
    }
    free(msg);
}

static void h_log(lumen_ctx *ctx, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    h_vlog(ctx, level, fmt, ap);
    va_end(ap);
}

static int h_metric(lumen_ctx *ctx, const char *key, double value, int64_t step) {
    if (!key || !*key) return LUMEN_EINVAL;
    if (!ctx->ev) return 0;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "t", "metric");
    cJSON_AddStringToObject(ev, "key", key);
    cJSON_AddNumberToObject(ev, "value", value); /* non-finite -> null */
    cJSON_AddNumberToObject(ev, "step", (double)step);
    cJSON_AddNumberToObject(ev, "time", lm_wall_time());
    emit(ctx, ev);
    return 0;
}

static int summary(lumen_ctx *ctx, const char *key, cJSON *value) {
    if (!key || !*key || !value) {
        cJSON_Delete(value);
        return key && *key ? LUMEN_ENOMEM : LUMEN_EINVAL;
    }
    if (!ctx->ev) {
        cJSON_Delete(value);
        return 0;
    }
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "t", "summary");
    cJSON_AddStringToObject(ev, "key", key);
    cJSON_AddItemToObject(ev, "value", value);
    emit(ctx, ev);
    return 0;
}

static int h_summary(lumen_ctx *ctx, const char *key, double value) {
    return summary(ctx, key, cJSON_CreateNumber(value));
}

static int h_summary_str(lumen_ctx *ctx, const char *key, const char *value) {
    return summary(ctx, key, cJSON_CreateString(value ? value : ""));
}

static void h_progress(lumen_ctx *ctx, int64_t done, int64_t total, const char *unit, const char *detail) {
    if (!ctx->ev) return;
    double now = lm_now();
    pthread_mutex_lock(&ctx->lock);
    int send = now - ctx->progress_sent >= PROGRESS_MIN_GAP_S || total != ctx->progress_total ||
               (total > 0 && done >= total);
    if (send) {
        ctx->progress_sent = now;
        ctx->progress_total = total;
    }
    pthread_mutex_unlock(&ctx->lock);
    if (!send) return;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "t", "progress");
    cJSON_AddNumberToObject(ev, "done", (double)done);
    cJSON_AddNumberToObject(ev, "total", (double)total);
    cJSON_AddStringToObject(ev, "unit", unit ? unit : "");
    cJSON_AddStringToObject(ev, "detail", detail ? detail : "");
    emit(ctx, ev);
}

static int h_cancelled(lumen_ctx *ctx) {
    (void)ctx;
    return rn_signals_pending() != 0;
}

static int h_fail(lumen_ctx *ctx, int code, const char *fmt, ...) {
    if (code == LUMEN_OK) code = LUMEN_ERR; /* fail() always fails */
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    int first = 0;
    pthread_mutex_lock(&ctx->lock);
    if (!ctx->fail_code) {
        ctx->fail_code = code;
        ctx->fail_msg = msg;
        first = 1;
    }
    pthread_mutex_unlock(&ctx->lock);
    if (first && ctx->ev) {
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "t", "fail");
        cJSON_AddNumberToObject(ev, "code", code);
        cJSON_AddStringToObject(ev, "msg", msg ? msg : "");
        emit(ctx, ev);
    }
    if (!first) free(msg);
    return code;
}

static void h_key_add(lumen_ctx *ctx, const void *data, size_t len) {
    if (!ctx->kh) {
        misuse(ctx, "key_add() called outside the stage's key() callback");
        return;
    }
    rn_keyhash_add(ctx->kh, data, data ? len : 0);
}

static const lumen_host HOST = {
    .abi_version = LUMEN_ABI_VERSION,
    .size = sizeof(lumen_host),
    .smoke = h_smoke,
    .threads = h_threads,
    .seed = h_seed,
    .stage_id = h_stage_id,
    .is_set = h_is_set,
    .is_auto = h_is_auto,
    .get_bool = h_get_bool,
    .get_int = h_get_int,
    .get_num = h_get_num,
    .get_str = h_get_str,
    .get_ints = h_get_ints,
    .get_nums = h_get_nums,
    .get_json = h_get_json,
    .input = h_input,
    .output = h_output,
    .run_dir = h_run_dir,
    .log = h_log,
    .vlog = h_vlog,
    .metric = h_metric,
    .summary = h_summary,
    .summary_str = h_summary_str,
    .progress = h_progress,
    .cancelled = h_cancelled,
    .fail = h_fail,
    .key_add = h_key_add,
    .resuming = h_resuming,
};

const lumen_host *rn_host(void) { return &HOST; }
