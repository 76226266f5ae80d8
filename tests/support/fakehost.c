/* fakehost.c -- see fakehost.h. */
#include "fakehost.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define FH_MAX 128

struct lumen_ctx {
    const lumen_stage *st;
    char *val[FH_MAX]; /* per declared param */
    size_t nparams;
    char *in_name[8], *in_dir[8], *out_name[8], *out_dir[8];
    int smoke, threads, resuming;
    uint64_t seed;
    char fail[2048];
    int fail_code;
    char *logs[512];
    int log_level[512];
    int nlogs;
    char *sum_key[64];
    double sum_val[64];
    int nsum;
    const char *bad_key;
    XXH3_state_t *key;
    int64_t prog_done, prog_total;
    pthread_mutex_t mu;
};

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static int param_index(const fh *f, const char *key) {
    for (size_t i = 0; i < f->nparams; i++)
        if (!strcmp(f->st->params[i].name, key)) return (int)i;
    return -1;
}

static int pidx(lumen_ctx *c, const char *key) {
    int i = param_index(c, key);
    if (i < 0 && !c->bad_key) c->bad_key = key;
    return i;
}

fh *fh_new(const lumen_stage *st) {
    fh *f = calloc(1, sizeof *f);
    f->st = st;
    f->threads = 2;
    pthread_mutex_init(&f->mu, NULL);
    for (const lumen_param *p = st->params; p && p->name; p++) {
        if (f->nparams < FH_MAX) f->val[f->nparams] = dupstr(p->def);
        f->nparams++;
    }
    return f;
}

void fh_free(fh *f) {
    if (!f) return;
    for (size_t i = 0; i < f->nparams && i < FH_MAX; i++) free(f->val[i]);
    for (int i = 0; i < 8; i++) {
        free(f->in_name[i]);
        free(f->in_dir[i]);
        free(f->out_name[i]);
        free(f->out_dir[i]);
    }
    for (int i = 0; i < f->nlogs; i++) free(f->logs[i]);
    for (int i = 0; i < f->nsum; i++) free(f->sum_key[i]);
    if (f->key) XXH3_freeState(f->key);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

lumen_ctx *fh_ctx(fh *f) { return f; }

void fh_set(fh *f, const char *key, const char *value) {
    int i = param_index(f, key);
    if (i < 0) {
        fprintf(stderr, "fh_set: stage %s declares no '%s'\n", f->st->name, key);
        abort();
    }
    free(f->val[i]);
    f->val[i] = dupstr(value);
}

static void set_art(char **names, char **dirs, const char *a, const char *d) {
    for (int i = 0; i < 8; i++)
        if (!names[i] || !strcmp(names[i], a)) {
            free(names[i]);
            free(dirs[i]);
            names[i] = strdup(a);
            dirs[i] = dupstr(d);
            return;
        }
}
void fh_set_input(fh *f, const char *a, const char *d) { set_art(f->in_name, f->in_dir, a, d); }
void fh_set_output(fh *f, const char *a, const char *d) { set_art(f->out_name, f->out_dir, a, d); }
void fh_set_smoke(fh *f, int on) { f->smoke = on; }
void fh_set_seed(fh *f, uint64_t s) { f->seed = s; }
void fh_set_threads(fh *f, int n) { f->threads = n; }
void fh_set_resuming(fh *f, int on) { f->resuming = on; }

/* ---- host functions ---- */
static int h_smoke(lumen_ctx *c) { return c->smoke; }
static int h_threads(lumen_ctx *c) { return c->threads; }
static uint64_t h_seed(lumen_ctx *c) { return c->seed; }
static const char *h_stage_id(lumen_ctx *c) { return c->st->name; }
static int h_resuming(lumen_ctx *c) { return c->resuming; }
static const char *val_of(lumen_ctx *c, const char *k) {
    int i = pidx(c, k);
    return i < 0 ? NULL : c->val[i];
}
static int h_is_set(lumen_ctx *c, const char *k) { return val_of(c, k) != NULL; }
static int h_is_auto(lumen_ctx *c, const char *k) {
    const char *v = val_of(c, k);
    return v && !strcmp(v, "auto");
}
static int h_get_bool(lumen_ctx *c, const char *k) {
    const char *v = val_of(c, k);
    return v && !strcmp(v, "true");
}
static int64_t h_get_int(lumen_ctx *c, const char *k) {
    const char *v = val_of(c, k);
    return v ? strtoll(v, NULL, 10) : 0;
}
static double h_get_num(lumen_ctx *c, const char *k) {
    const char *v = val_of(c, k);
    return v ? strtod(v, NULL) : 0;
}
static const char *h_get_str(lumen_ctx *c, const char *k) { return val_of(c, k); }
/* A list value as written: "{1,2,3}", "[1,2,3]", "1,2,3" or "{}"; the
 * numbers go to io/dout (up to cap); returns the list's length. */
static size_t parse_list(const char *v, int64_t *io, double *dout, size_t cap) {
    if (!v) return 0;
    size_t n = 0;
    const char *p = v;
    while (*p == '{' || *p == '[' || *p == ' ') p++;
    for (;;) {
        char *end;
        double d = strtod(p, &end);
        if (end == p) break;
        if (n < cap) {
            if (io) io[n] = (int64_t)d;
            if (dout) dout[n] = d;
        }
        n++;
        p = end;
        while (*p == ' ') p++;
        if (*p != ',') break;
        p++;
    }
    return n;
}
static size_t h_get_ints(lumen_ctx *c, const char *k, int64_t *o, size_t cap) {
    return parse_list(val_of(c, k), o, NULL, o ? cap : 0);
}
static size_t h_get_nums(lumen_ctx *c, const char *k, double *o, size_t cap) {
    const char *v = val_of(c, k);
    if (v && !strcmp(v, "auto")) return 0;
    return parse_list(v, NULL, o, o ? cap : 0);
}
static const char *h_get_json(lumen_ctx *c, const char *k) { return val_of(c, k); }
static const char *find_art(char **names, char **dirs, const char *a) {
    for (int i = 0; i < 8 && names[i]; i++)
        if (!strcmp(names[i], a)) return dirs[i];
    return NULL;
}
static const char *h_input(lumen_ctx *c, const char *a) { return find_art(c->in_name, c->in_dir, a); }
static const char *h_output(lumen_ctx *c, const char *a) {
    return find_art(c->out_name, c->out_dir, a);
}
static const char *h_run_dir(lumen_ctx *c) {
    (void)c;
    return "/tmp";
}
static void h_vlog(lumen_ctx *c, int level, const char *fmt, va_list ap) {
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) return;
    pthread_mutex_lock(&c->mu);
    if (c->nlogs < 512) {
        c->log_level[c->nlogs] = level;
        c->logs[c->nlogs++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    free(s);
}
static void h_log(lumen_ctx *c, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    h_vlog(c, level, fmt, ap);
    va_end(ap);
}
static int h_metric(lumen_ctx *c, const char *k, double v, int64_t step) {
    (void)c, (void)k, (void)v, (void)step;
    return 0;
}
static int h_summary(lumen_ctx *c, const char *k, double v) {
    for (int i = 0; i < c->nsum; i++)
        if (!strcmp(c->sum_key[i], k)) {
            c->sum_val[i] = v;
            return 0;
        }
    if (c->nsum < 64) {
        c->sum_key[c->nsum] = strdup(k);
        c->sum_val[c->nsum++] = v;
    }
    return 0;
}
static int h_summary_str(lumen_ctx *c, const char *k, const char *v) {
    (void)c, (void)k, (void)v;
    return 0;
}
static void h_progress(lumen_ctx *c, int64_t done, int64_t total, const char *u, const char *d) {
    (void)u, (void)d;
    pthread_mutex_lock(&c->mu);
    c->prog_done = done;
    c->prog_total = total;
    pthread_mutex_unlock(&c->mu);
}
static int h_cancelled(lumen_ctx *c) {
    (void)c;
    return 0;
}
static int h_fail(lumen_ctx *c, int code, const char *fmt, ...) {
    pthread_mutex_lock(&c->mu);
    if (!c->fail_code) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->fail, sizeof c->fail, fmt, ap);
        va_end(ap);
        c->fail_code = code;
    }
    pthread_mutex_unlock(&c->mu);
    return code;
}
static void h_key_add(lumen_ctx *c, const void *d, size_t n) {
    if (c->key) XXH3_64bits_update(c->key, d, n);
}

static const lumen_host fake_host = {
    .abi_version = LUMEN_ABI_VERSION, .size = sizeof(lumen_host),
    .smoke = h_smoke, .threads = h_threads, .seed = h_seed, .stage_id = h_stage_id,
    .is_set = h_is_set, .is_auto = h_is_auto, .get_bool = h_get_bool, .get_int = h_get_int,
    .get_num = h_get_num, .get_str = h_get_str, .get_ints = h_get_ints, .get_nums = h_get_nums,
    .get_json = h_get_json, .input = h_input, .output = h_output, .run_dir = h_run_dir,
    .log = h_log, .vlog = h_vlog, .metric = h_metric, .summary = h_summary,
    .summary_str = h_summary_str, .progress = h_progress, .cancelled = h_cancelled,
    .fail = h_fail, .key_add = h_key_add, .resuming = h_resuming,
};

const lumen_host *fh_host(void) { return &fake_host; }

int fh_check(fh *f) { return f->st->check ? f->st->check(f, &fake_host) : 0; }
int fh_run(fh *f) { return f->st->run(f, &fake_host); }

uint64_t fh_key(fh *f, int *rc) {
    if (!f->key) f->key = XXH3_createState();
    XXH3_64bits_reset(f->key);
    int r = f->st->key ? f->st->key(f, &fake_host) : 0;
    if (rc) *rc = r;
    return r ? 0 : XXH3_64bits_digest(f->key);
}

const char *fh_fail_msg(const fh *f) { return f->fail; }
int fh_fail_code(const fh *f) { return f->fail_code; }
double fh_summary(const fh *f, const char *key, int *found) {
    for (int i = 0; i < f->nsum; i++)
        if (!strcmp(f->sum_key[i], key)) {
            if (found) *found = 1;
            return f->sum_val[i];
        }
    if (found) *found = 0;
    return 0;
}
int fh_log_count(const fh *f, int level, const char *needle) {
    int n = 0;
    for (int i = 0; i < f->nlogs; i++)
        if (f->log_level[i] >= level && strstr(f->logs[i], needle)) n++;
    return n;
}
const char *fh_bad_key(const fh *f) { return f->bad_key; }
int64_t fh_progress_last(const fh *f, int64_t *total) {
    if (total) *total = f->prog_total;
    return f->prog_done;
}
