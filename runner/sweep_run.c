/* sweep_run.c -- the sweep's trial loop: journal, executor, timeouts,
 * pruning, --resume (see sweep.h). */
#include "sweep.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crossval.h"
#include "executor.h"
#include "jsonutil.h"
#include "paths.h"
#include "resume.h"
#include "signals.h"
#include "store.h"
#include "track.h"

#define GRACE_S 15.0 /* SIGTERM -> SIGKILL for a trial being stopped */
#define TICK_S 0.2

enum { T_PENDING = 0, T_RUNNING, T_ENDED };
enum { STOP_NONE = 0, STOP_PRUNE, STOP_TIMEOUT, STOP_SWEEP };

typedef struct trial {
    size_t n, c, s;    /* index, configuration, seed index */
    int state;
    char status[16];   /* ended: finished | failed | pruned */
    char *reason;
    double value;      /* the metric (finished) */
    int epochs;
    double duration;
    double t0;         /* lm_now() when started or adopted */
    rn_job job;
    int stopping;      /* STOP_* */
    double kill_at;    /* SIGKILL after this (stopping) */
    int prune_epoch;
    double *curve;     /* the prune metric by epoch (1-based; NaN = none) */
    int n_curve;
    long mpos;         /* bytes of metrics.jsonl already read */
    int prepared;      /* its folder was made but the executor held it back */
} trial;

typedef struct sweep {
    const rn_sweep_run *r;
    const rn_sweep_spec *sp;
    const rn_run_env *env;
    rn_executor ex;
    char *journal, *trials_dir;
    rn_dim *shape;
    double *points;    /* [n_configs * nd] */
    char *have;        /* [n_configs] */
    cJSON *labels;     /* [n_configs] objects (null until drawn) */
    trial *t;
    size_t nt;
    int threads;
    char exe[PATH_MAX];
} sweep;

static void say(sweep *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(sweep *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(w->r->term, "[%s] ", w->sp->id);
    vfprintf(w->r->term, fmt, ap);
    fputc('\n', w->r->term);
    fflush(w->r->term);
    va_end(ap);
}

/* ------------------------------------------------------------ journal -- */

static int journal(sweep *w, cJSON *ev, lm_err *e) {
    cJSON_AddNumberToObject(ev, "time", lm_wall_time());
    char *line = rn_json_print(ev, 0);
    char *nl = line ? lm_sprintf("%s\n", line) : NULL;
    free(line);
    cJSON_Delete(ev);
    if (!nl) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int rc = lm_append_file(w->journal, nl, strlen(nl), 1, e);
    free(nl);
    return rc;
}

/* "seed 3" or "fold 2, seed 3". */
static const char *rep_label(const rn_sweep_spec *sp, size_t rep, char *buf, size_t len) {
    unsigned long long seed = (unsigned long long)sp->seeds[rep % sp->n_seeds];
    if (sp->folds >= 2) snprintf(buf, len, "fold %zu, seed %llu", rep / sp->n_seeds, seed);
    else snprintf(buf, len, "seed %llu", seed);
    return buf;
}

static char *trial_dir(const sweep *w, size_t n) { return lm_sprintf("%s/%zu", w->trials_dir, n); }

static const char *config_label(const sweep *w, size_t c, char *buf, size_t len) {
    buf[0] = 0;
    const cJSON *l = cJSON_GetArrayItem(w->labels, (int)c);
    size_t off = 0;
    for (const cJSON *v = l ? l->child : NULL; v && off < len; v = v->next) {
        char num[64];
        const char *text = cJSON_IsString(v) ? v->valuestring : rn_num_str(v->valuedouble, num, sizeof num);
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%s", off ? " " : "", v->string, text);
    }
    if (!buf[0]) snprintf(buf, len, "(no search space)"); /* e.g. a crossval of one recipe */
    return buf;
}

/* The configuration's point: drawn (and journaled) on first use. */
static int draw_config(sweep *w, size_t c, lm_err *e) {
    if (w->have[c]) return 0;
    const rn_sweep_spec *sp = w->sp;
    double *x = &w->points[c * sp->nd];
    if (sp->strategy == RN_SWEEP_GRID) {
        rn_grid_point(w->shape, sp->nd, c, x);
    } else if (sp->strategy == RN_SWEEP_RANDOM) {
        rn_random_point(w->shape, sp->nd, sp->search_seed, c, x);
    } else {
        /* TPE observes every configuration whose seeds all ended: the mean
         * of its finished seeds; a pruned or failed one counts as the worst
         * value seen so far (so the model learns to avoid it). */
        double *X = calloc(c * sp->nd + 1, sizeof *X), *y = calloc(c + 1, sizeof *y);
        int *bad = calloc(c + 1, sizeof *bad);
        if (!X || !y || !bad) {
            free(X);
            free(y);
            free(bad);
            return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        }
        size_t n_obs = 0;
        double worst = NAN;
        for (size_t k = 0; k < c; k++) {
            size_t ended = 0, ok = 0;
            double sum = 0;
            size_t reps = rn_sweep_reps(sp);
            for (size_t s = 0; s < reps; s++) {
                const trial *t = &w->t[k * reps + s];
                if (t->state != T_ENDED) continue;
                ended++;
                if (strcmp(t->status, "finished") == 0) {
                    ok++;
                    sum += t->value;
                }
            }
            if (ended < reps) continue;
            memcpy(&X[n_obs * sp->nd], &w->points[k * sp->nd], sp->nd * sizeof *X);
            bad[n_obs] = ok == 0;
            y[n_obs] = ok ? sum / (double)ok : NAN;
            if (ok && (isnan(worst) || (sp->maximize ? y[n_obs] < worst : y[n_obs] > worst))) worst = y[n_obs];
            n_obs++;
        }
        size_t m = 0;
        for (size_t k = 0; k < n_obs; k++) {
            if (bad[k] && isnan(worst)) continue;
            memmove(&X[m * sp->nd], &X[k * sp->nd], sp->nd * sizeof *X);
            y[m++] = bad[k] ? worst : y[k];
        }
        rn_tpe_point(w->shape, sp->nd, X, y, m, sp->maximize, NULL, sp->search_seed, c, x);
        free(X);
        free(y);
        free(bad);
    }
    cJSON *desc = rn_sweep_trial_desc(sp, w->r->x, x, sp->seeds[0], NULL);
    if (!desc) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON_ReplaceItemInArray(w->labels, (int)c, cJSON_Duplicate(rn_json_item(desc, "labels"), 1));
    cJSON_Delete(desc);
    w->have[c] = 1;
    cJSON *ev = cJSON_CreateObject(), *pt = cJSON_CreateDoubleArray(x, (int)sp->nd);
    cJSON_AddStringToObject(ev, "t", "config");
    cJSON_AddNumberToObject(ev, "c", (double)c);
    cJSON_AddItemToObject(ev, "point", pt);
    cJSON_AddItemToObject(ev, "labels", cJSON_Duplicate(cJSON_GetArrayItem(w->labels, (int)c), 1));
    return journal(w, ev, e);
}

/* Replays the journal of an earlier attempt (--resume). */
static int replay(sweep *w, lm_err *e) {
    char *data = NULL;
    size_t len = 0;
    int rc = lm_read_file(w->journal, &data, &len, e);
    if (rc == LUMEN_ENOTFOUND) {
        lm_err_clear(e);
        return 0;
    }
    if (rc) return rc;
    const rn_sweep_spec *sp = w->sp;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *ev = cJSON_Parse(line);
        const char *t = cJSON_IsString(rn_json_item(ev, "t")) ? rn_json_item(ev, "t")->valuestring : "";
        if (!ev) continue; /* a torn last line of a crash: that event did not happen */
        if (strcmp(t, "config") == 0) {
            size_t c = (size_t)cJSON_GetNumberValue(rn_json_item(ev, "c"));
            const cJSON *pt = rn_json_item(ev, "point");
            if (c < sp->n_configs && cJSON_GetArraySize(pt) == (int)sp->nd) {
                for (size_t i = 0; i < sp->nd; i++) w->points[c * sp->nd + i] = cJSON_GetArrayItem(pt, (int)i)->valuedouble;
                w->have[c] = 1;
                cJSON_ReplaceItemInArray(w->labels, (int)c, cJSON_Duplicate(rn_json_item(ev, "labels"), 1));
            }
        } else if (strcmp(t, "start") == 0 || strcmp(t, "end") == 0) {
            size_t n = (size_t)cJSON_GetNumberValue(rn_json_item(ev, "n"));
            if (n >= w->nt) continue;
            trial *tr = &w->t[n];
            if (t[0] == 's') {
                tr->state = T_RUNNING;
                snprintf(tr->job.id, sizeof tr->job.id, "%s",
                         cJSON_IsString(rn_json_item(ev, "job")) ? rn_json_item(ev, "job")->valuestring : "");
            } else {
                tr->state = T_ENDED;
                const cJSON *st = rn_json_item(ev, "status"), *rs = rn_json_item(ev, "reason");
                snprintf(tr->status, sizeof tr->status, "%s", cJSON_IsString(st) ? st->valuestring : "failed");
                free(tr->reason);
                tr->reason = cJSON_IsString(rs) ? lm_strdup(rs->valuestring) : NULL;
                tr->value = cJSON_IsNumber(rn_json_item(ev, "value")) ? rn_json_item(ev, "value")->valuedouble : NAN;
                tr->epochs = (int)cJSON_GetNumberValue(rn_json_item(ev, "epochs"));
                tr->duration = cJSON_GetNumberValue(rn_json_item(ev, "duration"));
            }
        }
        cJSON_Delete(ev);
    }
    free(data);
    return 0;
}

/* ------------------------------------------------------------ metrics -- */

/* Reads what the trial appended to metrics.jsonl since the last call and
 * records the prune metric's per-epoch values.  Returns the number of new
 * epochs seen. */
static int read_curve(sweep *w, trial *t) {
    if (!w->sp->prune) return 0;
    char *dir = trial_dir(w, t->n);
    char *path = dir ? lm_path_join(dir, RN_METRICS_FILE) : NULL;
    free(dir);
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    if (!f) return 0;
    int fresh = 0;
    if (fseek(f, t->mpos, SEEK_SET) == 0) {
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            size_t l = strlen(line);
            if (l == 0 || line[l - 1] != '\n') break; /* partial line: read it next time */
            t->mpos += (long)l;
            cJSON *m = cJSON_Parse(line);
            const cJSON *k = rn_json_item(m, "key"), *v = rn_json_item(m, "value"), *st = rn_json_item(m, "step");
            if (cJSON_IsString(k) && strcmp(k->valuestring, w->sp->prune_metric) == 0 && cJSON_IsNumber(v) &&
                cJSON_IsNumber(st)) {
                int ep = (int)st->valuedouble;
                if (ep >= 1 && ep <= 100000 && ep > t->n_curve) {
                    double *nc = realloc(t->curve, (size_t)ep * sizeof *nc);
                    if (nc) {
                        for (int i = t->n_curve; i < ep; i++) nc[i] = NAN;
                        nc[ep - 1] = v->valuedouble;
                        t->curve = nc;
                        t->n_curve = ep;
                        fresh++;
                    }
                }
            }
            cJSON_Delete(m);
        }
    }
    fclose(f);
    return fresh;
}

/* Should t stop at epoch ep?  Compares with every other trial's value at
 * the same epoch. */
static int prune_now(sweep *w, const trial *t, int ep) {
    const rn_sweep_spec *sp = w->sp;
    double v = t->curve[ep - 1];
    if (isnan(v)) return 0;
    if (sp->prune == RN_PRUNE_ASHA && !rn_asha_is_rung(&sp->asha, ep)) return 0;
    double *others = calloc(w->nt + 1, sizeof *others);
    if (!others) return 0;
    size_t n = 0;
    for (size_t i = 0; i < w->nt; i++) {
        const trial *o = &w->t[i];
        if (o == t || o->n_curve < ep || isnan(o->curve[ep - 1])) continue;
        others[n++] = o->curve[ep - 1];
    }
    int stop = sp->prune == RN_PRUNE_ASHA ? rn_asha_prune(&sp->asha, ep, v, others, n, sp->maximize)
                                          : rn_median_prune(&sp->median, ep, v, others, n, sp->maximize);
    free(others);
    return stop;
}

/* ------------------------------------------------------------- trials -- */

/* A trial about to start: its folder, log and command line. */
typedef struct launch {
    trial *t;
    int resuming;
    char *dir, *log;
    char threads[16];
    const char *argv[16];
} launch;

static void launch_free(launch *l) {
    free(l->dir);
    free(l->log);
    l->dir = l->log = NULL;
}

/* Draws the configuration, writes trial.json and builds the command line. */
static int prepare_trial(sweep *w, launch *l, lm_err *e) {
    const rn_sweep_spec *sp = w->sp;
    trial *t = l->t;
    int rc = draw_config(w, t->c, e);
    if (rc) return rc;
    l->dir = trial_dir(w, t->n);
    char *desc_path = l->dir ? lm_path_join(l->dir, "trial.json") : NULL;
    l->log = l->dir ? lm_path_join(l->dir, "runner.log") : NULL;
    snprintf(l->threads, sizeof l->threads, "%d", w->threads);
    cJSON *desc = rn_sweep_trial_desc_rep(sp, w->r->x, &w->points[t->c * sp->nd], t->s, w->r->user_sets);
    if (!l->dir || !desc_path || !l->log || !desc) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(desc, "sweep_run", w->env->run_dir);
    cJSON_AddNumberToObject(desc, "trial", (double)t->n);
    cJSON_AddNumberToObject(desc, "config", (double)t->c);
    if ((rc = lm_mkdirs(l->dir, e))) goto out;
    if (!lm_exists(desc_path) && (rc = rn_json_write_atomic(desc_path, desc, e))) goto out;
    int a = 0;
    l->argv[a++] = w->exe;
    l->argv[a++] = "run";
    l->argv[a++] = w->r->exp_file;
    l->argv[a++] = "--trial";
    l->argv[a++] = l->dir;
    l->argv[a++] = "--runs";
    l->argv[a++] = w->r->plan->runs_dir;
    l->argv[a++] = "--threads";
    l->argv[a++] = l->threads;
    if (w->r->plan->smoke) l->argv[a++] = "--smoke";
    l->argv[a] = NULL;
out:
    cJSON_Delete(desc);
    free(desc_path);
    return rc;
}

/* The executor took the trial: journal its start. */
static int trial_started(sweep *w, launch *l, lm_err *e) {
    const rn_sweep_spec *sp = w->sp;
    trial *t = l->t;
    t->state = T_RUNNING;
    t->t0 = lm_now();
    t->stopping = STOP_NONE;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "t", "start");
    cJSON_AddNumberToObject(ev, "n", (double)t->n);
    cJSON_AddNumberToObject(ev, "c", (double)t->c);
    cJSON_AddNumberToObject(ev, "seed", (double)sp->seeds[t->s % sp->n_seeds]);
    if (sp->folds >= 2) cJSON_AddNumberToObject(ev, "fold", (double)(t->s / sp->n_seeds));
    cJSON_AddStringToObject(ev, "executor", w->ex.ops->name);
    cJSON_AddStringToObject(ev, "job", t->job.id);
    int rc = journal(w, ev, e);
    char lab[512], rl[64];
    say(w, "trial %zu/%zu %s: %s, %s%s%s", t->n + 1, w->nt, l->resuming ? "continues" : "started",
        config_label(w, t->c, lab, sizeof lab), rep_label(sp, t->s, rl, sizeof rl),
        w->ex.ops->submit ? ", job " : "", w->ex.ops->submit ? t->job.id : "");
    return rc;
}

/* Starts ls[0..n) (one batch where the executor submits batches); *took:
 * how many from the front it accepted. */
static int start_trials(sweep *w, launch *ls, size_t n, size_t *took, lm_err *e) {
    int rc = 0;
    *took = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = prepare_trial(w, &ls[i], e);
    if (rc) return rc;
    if (w->ex.ops->submit) {
        rn_submit *items = calloc(n + 1, sizeof *items);
        if (!items) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            items[i] = (rn_submit){.argv = ls[i].argv, .log_path = ls[i].log, .dir = ls[i].dir, .job = &ls[i].t->job};
        rc = w->ex.ops->submit(w->ex.self, items, n, took, e);
        free(items);
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            if ((rc = w->ex.ops->start(w->ex.self, ls[i].argv, ls[i].log, &ls[i].t->job, e)) == 0) ++*took;
    }
    for (size_t i = 0; i < n; i++) ls[i].t->prepared = i >= *took;
    for (size_t i = 0; i < *took; i++) {
        int r2 = trial_started(w, &ls[i], e);
        if (rc == 0) rc = r2;
    }
    return rc;
}

/* A JSON file of trial n's run folder; NULL when missing or unreadable. */
static cJSON *trial_json(const sweep *w, size_t n, const char *name) {
    char *path = lm_sprintf("%s/%zu/%s", w->trials_dir, n, name);
    cJSON *j = NULL;
    lm_err ignored = {0};
    if (path) rn_json_read_file(path, &j, &ignored);
    free(path);
    return j;
}

/* The trial ended: read its outcome from its folder and journal it. */
static int end_trial(sweep *w, trial *t, lm_err *e) {
    const rn_sweep_spec *sp = w->sp;
    char *dir = trial_dir(w, t->n);
    cJSON *st = trial_json(w, t->n, RN_STATUS_FILE), *sum = trial_json(w, t->n, RN_SUMMARY_FILE);
    const cJSON *status = rn_json_item(st, "status"), *reason = rn_json_item(st, "reason");
    const char *s = cJSON_IsString(status) ? status->valuestring : "";
    const cJSON *v = rn_json_item(sum, sp->metric), *ep = rn_json_item(sum, "train/epochs");
    free(t->reason);
    t->reason = NULL;
    t->value = NAN;
    read_curve(w, t);
    t->epochs = cJSON_IsNumber(ep) ? (int)ep->valuedouble : t->n_curve;
    char how[128];
    if (strcmp(s, "finished") == 0) {
        if (cJSON_IsNumber(v) || sp->folds >= 2) {
            /* crossval: the metric comes from the folds' predictions later */
            snprintf(t->status, sizeof t->status, "finished");
            t->value = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        } else {
            snprintf(t->status, sizeof t->status, "failed");
            t->reason = lm_sprintf("the trial finished without reporting '%s' (see its summary.json)", sp->metric);
        }
    } else if (t->stopping == STOP_PRUNE) {
        snprintf(t->status, sizeof t->status, "pruned");
        t->epochs = t->prune_epoch;
        t->reason = lm_sprintf("pruned at epoch %d (%s = %.4g)", t->prune_epoch, sp->prune_metric,
                               t->curve[t->prune_epoch - 1]);
    } else if (t->stopping == STOP_TIMEOUT) {
        snprintf(t->status, sizeof t->status, "failed");
        t->reason = lm_sprintf("timeout: still running after %g s (timeout = %g)", lm_now() - t->t0, sp->timeout);
    } else if (t->job.state[0] && strcmp(t->job.state, "COMPLETED") != 0) {
        /* Slurm ended it (TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL...) */
        snprintf(t->status, sizeof t->status, "failed");
        t->reason = lm_sprintf("%s%s%s", rn_job_describe(&t->job, how, sizeof how),
                               cJSON_IsString(reason) ? "; the trial: " : "",
                               cJSON_IsString(reason) ? reason->valuestring : "");
    } else {
        snprintf(t->status, sizeof t->status, "failed");
        if (strcmp(s, "failed") == 0 && cJSON_IsString(reason)) t->reason = lm_strdup(reason->valuestring);
        else
            t->reason = lm_sprintf("the trial's runner ended (%s) without finishing; see %s/runner.log",
                                   rn_job_describe(&t->job, how, sizeof how), dir ? dir : "");
    }
    t->duration += lm_now() - t->t0;
    t->state = T_ENDED;
    cJSON_Delete(st);
    cJSON_Delete(sum);
    free(dir);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "t", "end");
    cJSON_AddNumberToObject(ev, "n", (double)t->n);
    cJSON_AddStringToObject(ev, "status", t->status);
    if (isfinite(t->value)) cJSON_AddNumberToObject(ev, "value", t->value);
    else cJSON_AddNullToObject(ev, "value");
    cJSON_AddNumberToObject(ev, "epochs", t->epochs);
    cJSON_AddNumberToObject(ev, "duration", t->duration);
    if (t->reason) cJSON_AddStringToObject(ev, "reason", t->reason);
    else cJSON_AddNullToObject(ev, "reason");
    int rc = journal(w, ev, e);
    char lab[512], num[64];
    snprintf(num, sizeof num, "%.4f", t->value);
    char rl[64];
    say(w, "trial %zu/%zu %s: %s, %s: %s%s%s (%.0f s)", t->n + 1, w->nt, t->status,
        config_label(w, t->c, lab, sizeof lab), rep_label(sp, t->s, rl, sizeof rl),
        isfinite(t->value) ? sp->metric : "", isfinite(t->value) ? " = " : "",
        isfinite(t->value) ? num
        : t->reason        ? t->reason
        : sp->folds >= 2   ? "scored once every fold is in"
                           : "",
        t->duration);
    return rc;
}

static int trial_finished_on_disk(sweep *w, const trial *t) {
    cJSON *st = trial_json(w, t->n, RN_STATUS_FILE);
    const cJSON *s = rn_json_item(st, "status");
    int fin = cJSON_IsString(s) && strcmp(s->valuestring, "finished") == 0;
    cJSON_Delete(st);
    return fin;
}

/* Stops every running trial (the sweep was interrupted): SIGTERM, then
 * SIGKILL after the grace period.  They are not journaled as ended, so
 * --resume continues them. */
static void stop_all(sweep *w) {
    if (w->ex.ops->cancel_all) {
        w->ex.ops->cancel_all(w->ex.self);
        lm_err ignored = {0};
        for (size_t i = 0; i < w->nt; i++) {
            if (w->t[i].state != T_RUNNING) continue;
            cJSON *ev = cJSON_CreateObject();
            cJSON_AddStringToObject(ev, "t", "cancel");
            cJSON_AddNumberToObject(ev, "n", (double)w->t[i].n);
            cJSON_AddStringToObject(ev, "job", w->t[i].job.id);
            journal(w, ev, &ignored);
        }
    } else {
        for (size_t i = 0; i < w->nt; i++)
            if (w->t[i].state == T_RUNNING) w->ex.ops->cancel(w->ex.self, &w->t[i].job, SIGTERM);
    }
    double until = lm_now() + GRACE_S;
    for (;;) {
        int left = 0;
        for (size_t i = 0; i < w->nt; i++)
            if (w->t[i].state == T_RUNNING) {
                if (w->ex.ops->poll(w->ex.self, &w->t[i].job)) w->t[i].state = T_PENDING;
                else left++;
            }
        if (!left) break;
        if (lm_now() > until) {
            for (size_t i = 0; i < w->nt; i++)
                if (w->t[i].state == T_RUNNING) w->ex.ops->cancel(w->ex.self, &w->t[i].job, SIGKILL);
            until = lm_now() + 5;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int loop(sweep *w, lm_err *e) {
    const rn_sweep_spec *sp = w->sp;
    for (;;) {
        int sig = rn_signals_pending();
        if (sig) {
            size_t running = 0;
            for (size_t i = 0; i < w->nt; i++) running += w->t[i].state == T_RUNNING;
            say(w, "interrupted: stopping %zu running trial(s)", running);
            stop_all(w);
            return lm_fail(e, LUMEN_ECANCELED,
                           "sweep interrupted (%s); `--resume %s` continues it", sig == SIGINT ? "SIGINT" : "SIGTERM",
                           w->env->run_dir);
        }
        size_t running = 0, pending = 0;
        int rc = 0;
        char how[128];
        for (size_t i = 0; i < w->nt && rc == 0; i++) {
            trial *t = &w->t[i];
            if (t->state == T_PENDING) pending++;
            if (t->state != T_RUNNING) continue;
            if (w->ex.ops->poll(w->ex.self, &t->job)) {
                if (t->job.again && !t->stopping && !trial_finished_on_disk(w, t)) {
                    /* preempted: submitted again, it continues from its folder */
                    say(w, "trial %zu/%zu: %s; submitting it again", t->n + 1, w->nt,
                        rn_job_describe(&t->job, how, sizeof how));
                    t->duration += lm_now() - t->t0;
                    t->state = T_PENDING;
                    pending++;
                    continue;
                }
                rc = end_trial(w, t, e);
                continue;
            }
            running++;
            double now = lm_now();
            if (t->stopping) {
                if (now > t->kill_at) {
                    w->ex.ops->cancel(w->ex.self, &t->job, SIGKILL);
                    t->kill_at = now + 5;
                }
                continue;
            }
            if (sp->timeout > 0 && now - t->t0 > sp->timeout) {
                t->stopping = STOP_TIMEOUT;
                t->kill_at = now + GRACE_S;
                w->ex.ops->cancel(w->ex.self, &t->job, SIGTERM);
                continue;
            }
            int before = t->n_curve;
            if (read_curve(w, t) > 0) {
                for (int ep = before + 1; ep <= t->n_curve; ep++) {
                    if (prune_now(w, t, ep)) {
                        t->stopping = STOP_PRUNE;
                        t->prune_epoch = ep;
                        t->kill_at = now + GRACE_S;
                        w->ex.ops->cancel(w->ex.self, &t->job, SIGTERM);
                        break;
                    }
                }
            }
        }
        if (rc) return rc;
        /* start what fits; TPE draws a configuration only when it starts */
        int limit = w->ex.max_inflight > 0 ? w->ex.max_inflight : sp->parallel, hold = 0;
        if (w->ex.ops->hold && (rc = w->ex.ops->hold(w->ex.self, &hold, e))) return rc;
        launch *ls = hold ? NULL : calloc((size_t)limit < w->nt ? (size_t)limit + 1 : w->nt + 1, sizeof *ls);
        size_t nl = 0;
        for (size_t i = 0; ls && i < w->nt && (int)(running + nl) < limit && rc == 0; i++) {
            trial *t = &w->t[i];
            if (t->state != T_PENDING) continue;
            char *dir = trial_dir(w, t->n);
            int resuming = dir && lm_exists(dir) && !t->prepared;
            free(dir);
            if (resuming && trial_finished_on_disk(w, t)) { /* ended while no sweep watched */
                rc = draw_config(w, t->c, e);
                t->t0 = lm_now();
                if (rc == 0) rc = end_trial(w, t, e);
                pending--;
                continue;
            }
            ls[nl++] = (launch){.t = t, .resuming = resuming};
            /* TPE: draw in order, so the next draw sees this one */
            if (sp->strategy == RN_SWEEP_TPE && w->ex.ops->submit) break;
        }
        if (nl && rc == 0) {
            size_t took = 0;
            rc = start_trials(w, ls, nl, &took, e);
            running += took;
            pending -= took;
        }
        for (size_t i = 0; i < nl; i++) launch_free(&ls[i]);
        free(ls);
        if (rc) return rc;
        if (running == 0 && pending == 0) return 0;
        struct timespec ts = {0, (long)(TICK_S * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* x without what only scores the trials (crossval groups and ensemble:
 * the spec's keys and --set <id>.groups=... / .ensemble=...) and without
 * trial_stages (compared by rn_resume_check_trial_stages), canonical; NULL
 * on OOM. */
static char *trial_defining(const cJSON *x, const char *id) {
    static const char *const scoring[] = {"groups", "ensemble"};
    cJSON *c = cJSON_Duplicate(x, 1);
    if (!c) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(c, "trial_stages"); /* checked on their own */
    cJSON *sets = cJSON_GetObjectItemCaseSensitive(c, "sets");
    int ok = 1;
    for (size_t k = 0; ok && k < sizeof scoring / sizeof *scoring; k++) {
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "spec"), scoring[k]);
        char *pre = lm_sprintf("%s.%s=", id, scoring[k]);
        ok = pre != NULL;
        for (int i = cJSON_GetArraySize(sets) - 1; pre && i >= 0; i--) {
            const cJSON *s = cJSON_GetArrayItem(sets, i);
            if (cJSON_IsString(s) && strncmp(s->valuestring, pre, strlen(pre)) == 0) cJSON_DeleteItemFromArray(sets, i);
        }
        free(pre);
    }
    char *r = ok ? rn_json_canonical(c) : NULL;
    cJSON_Delete(c);
    return r;
}

/* sweep.json: the resolved spec, the command line's sets and the trials'
 * stages; a resumed sweep must match it in everything that defines its
 * trials (groups and ensemble may change: they only score them; sweep.json
 * then records the new ones). */
static int record_spec(sweep *w, lm_err *e) {
    char *path = lm_path_join(w->env->run_dir, "sweep.json");
    cJSON *now = cJSON_CreateObject();
    if (!path || !now) {
        free(path);
        cJSON_Delete(now);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(now, "id", w->sp->id);
    cJSON_AddItemToObject(now, "spec", cJSON_Duplicate(w->sp->json, 1));
    cJSON *sets = cJSON_AddArrayToObject(now, "sets");
    for (size_t i = 0; w->r->user_sets && i < w->r->user_sets->n; i++)
        cJSON_AddItemToArray(sets, cJSON_CreateString(w->r->user_sets->v[i]));
    cJSON_AddNumberToObject(now, "configurations", (double)w->sp->n_configs);
    cJSON_AddNumberToObject(now, "trials", (double)w->nt);
    cJSON *tp = w->r->trial_plan ? rn_plan_json(w->r->trial_plan) : NULL;
    cJSON_AddItemToObject(now, "trial_stages",
                          tp ? cJSON_DetachItemFromObjectCaseSensitive(tp, "stages") : cJSON_CreateArray());
    cJSON_Delete(tp);
    cJSON *was = NULL;
    lm_err ignored = {0};
    int rc = 0;
    if (w->r->resumed && rn_json_read_file(path, &was, &ignored) == 0) {
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(was, "trial_stages");
        if (ws && w->r->trial_plan) rc = rn_resume_check_trial_stages(w->r->trial_plan, ws, w->env->run_dir, e);
        if (!ws) { /* a run from before sweep.json recorded them: keep it that way */
            cJSON_DeleteItemFromObjectCaseSensitive(now, "trial_stages");
            fprintf(w->r->term, "[%s] warning: the run's sweep.json does not record its trials' stage parameters "
                                "(an older runner): the experiment's stages are not checked against them\n",
                    w->sp->id);
        }
        char *a = trial_defining(was, w->sp->id), *b = trial_defining(now, w->sp->id);
        if (rc == 0 && (!a || !b)) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        if (rc == 0 && strcmp(a, b) != 0)
            rc = lm_fail(e, LUMEN_EINVAL,
                         "--resume: the sweep differs from the one the run started (its sweep.json): resume with the "
                         "same experiment file and --set arguments (crossval groups and ensemble may differ)");
        if (rc == 0) rc = rn_json_write_atomic(path, now, e);
        free(a);
        free(b);
    } else {
        rc = rn_json_write_atomic(path, now, e);
    }
    cJSON_Delete(was);
    cJSON_Delete(now);
    free(path);
    return rc;
}

int rn_sweep_tail(void *arg, const rn_run_env *env, lm_err *e) {
    const rn_sweep_run *r = arg;
    const rn_sweep_spec *sp = r->spec;
    sweep w = {.r = r, .sp = sp, .env = env, .ex = rn_executor_local()};
    size_t reps = rn_sweep_reps(sp);
    w.nt = sp->n_configs * reps;
    w.threads = r->plan->threads / sp->parallel;
    if (w.threads < 1) w.threads = 1;
    rn_executor_env xenv = {.file = sp->file, .line = sp->line, .sweep_id = sp->id, .run_dir = env->run_dir,
                            .term = r->term, .tpe = sp->strategy == RN_SWEEP_TPE};
    int rc = rn_executor_open(rn_json_item(sp->json, "executor"), &xenv, &w.ex, e);
    if (rc) return rc;
    if (w.ex.threads > 0) w.threads = w.ex.threads; /* lumen.slurm { cpus = N }: N threads per trial */
    w.journal = lm_path_join(env->run_dir, "journal.jsonl");
    w.trials_dir = lm_path_join(env->run_dir, "trials");
    w.shape = calloc(sp->nd + 1, sizeof *w.shape);
    w.points = calloc(sp->n_configs * sp->nd + 1, sizeof *w.points);
    w.have = calloc(sp->n_configs + 1, 1);
    w.labels = cJSON_CreateArray();
    w.t = calloc(w.nt + 1, sizeof *w.t);
    if (!w.journal || !w.trials_dir || !w.shape || !w.points || !w.have || !w.labels || !w.t) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    ssize_t l = readlink("/proc/self/exe", w.exe, sizeof w.exe - 1);
    if (l <= 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot find the runner executable (/proc/self/exe)");
        goto out;
    }
    w.exe[l] = 0;
    for (size_t i = 0; i < sp->nd; i++) w.shape[i] = sp->dims[i].dim;
    for (size_t c = 0; c < sp->n_configs; c++) cJSON_AddItemToArray(w.labels, cJSON_CreateNull());
    for (size_t n = 0; n < w.nt; n++) {
        w.t[n].n = n;
        w.t[n].c = n / reps;
        w.t[n].s = n % reps;
        w.t[n].value = NAN;
    }
    if ((rc = record_spec(&w, e)) || (rc = lm_mkdirs(w.trials_dir, e)) || (rc = replay(&w, e))) goto out;
    size_t done = 0, adopted = 0;
    for (size_t n = 0; n < w.nt; n++) {
        trial *t = &w.t[n];
        if (t->state == T_ENDED) {
            done++;
            read_curve(&w, t);
        } else if (t->state == T_RUNNING) {
            char *dir = trial_dir(&w, n);
            t->job.tag = dir;
            int alive = dir && w.ex.ops->adopt(w.ex.self, &t->job);
            t->job.tag = NULL;
            free(dir);
            if (alive) {
                t->t0 = lm_now();
                adopted++;
                read_curve(&w, t);
            } else {
                t->state = T_PENDING; /* interrupted: continues from its folder */
            }
        }
        if (t->state == T_PENDING && w.ex.ops->recover) {
            /* submitted by an earlier sweep process that died before it
             * journaled the start: adopt that job, never submit it twice */
            char *dir = trial_dir(&w, n);
            int alive = 0;
            if (dir && lm_exists(dir)) {
                t->job.tag = dir;
                rc = w.ex.ops->recover(w.ex.self, dir, &t->job, &alive, e);
                t->job.tag = NULL;
            }
            free(dir);
            if (rc == 0 && alive) {
                launch l = {.t = t, .resuming = 1};
                if ((rc = draw_config(&w, t->c, e)) == 0) rc = trial_started(&w, &l, e);
                adopted++;
                read_curve(&w, t);
            }
            if (rc) goto out;
        }
    }
    char at_once[32];
    snprintf(at_once, sizeof at_once, "%d at a time", sp->parallel);
    char foldtxt[32] = "";
    if (sp->folds >= 2) snprintf(foldtxt, sizeof foldtxt, " x %d folds", sp->folds);
    say(&w, "%s, %zu configuration(s) x %zu seed(s)%s = %zu trial(s), %s, %d thread(s) each%s",
        sp->strategy == RN_SWEEP_GRID ? "grid" : sp->strategy == RN_SWEEP_RANDOM ? "random" : "tpe", sp->n_configs,
        sp->n_seeds, foldtxt, w.nt, w.ex.ops->submit ? "as Slurm job arrays" : at_once, w.threads, sp->prune == RN_PRUNE_ASHA ? ", ASHA pruning"
                                                    : sp->prune == RN_PRUNE_MEDIAN ? ", median pruning" : "");
    if (r->resumed) say(&w, "resumed: %zu trial(s) ended before, %zu still running (adopted)", done, adopted);
    if ((rc = loop(&w, e))) goto out;
    rn_trial_result *res = calloc(w.nt + 1, sizeof *res);
    if (!res) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t n = 0; n < w.nt; n++)
        res[n] = (rn_trial_result){.n = n, .c = w.t[n].c, .s = w.t[n].s, .status = w.t[n].status,
                                   .value = w.t[n].value, .epochs = w.t[n].epochs, .duration = w.t[n].duration,
                                   .reason = w.t[n].reason};
    if (sp->folds >= 2)
        rc = rn_crossval_results(sp, r->trial_plan, w.labels, res, w.nt, env, r->term, e);
    if (rc == 0) rc = rn_sweep_results(sp, r->trial_plan, w.labels, res, w.nt, env, r->term, e);
    free(res);
out:
    for (size_t n = 0; w.t && n < w.nt; n++) {
        free(w.t[n].reason);
        free(w.t[n].curve);
    }
    free(w.t);
    cJSON_Delete(w.labels);
    free(w.have);
    free(w.points);
    free(w.shape);
    free(w.trials_dir);
    free(w.journal);
    if (w.ex.ops->close) w.ex.ops->close(w.ex.self);
    return rc;
}
