/* run.c -- see run.h. */
#include "run.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "exec.h"
#include "host.h"
#include "jsonutil.h"
#include "mlflow.h"
#include "paths.h"
#include "resume.h"
#include "signals.h"
#include "store.h"
#include "track.h"

typedef struct run_state {
    rn_plan *plan;
    const rn_run_opts *o;
    rn_store *store;
    rn_trackers trackers;
    rn_cache cache;
    char **base; /* per stage: the folder holding its artifact folders */
} run_state;

/* {"<stage-id>.<key>": value} over every stage. */
static cJSON *flat_params(const rn_plan *p) {
    cJSON *all = cJSON_CreateObject();
    for (size_t i = 0; all && i < p->n; i++) {
        for (const cJSON *c = p->stages[i].params->child; c; c = c->next) {
            char *k = lm_sprintf("%s.%s", p->stages[i].id, c->string);
            if (k) cJSON_AddItemToObject(all, k, cJSON_Duplicate(c, 1));
            free(k);
        }
    }
    return all;
}

static int write_config(run_state *r, lm_err *e) {
    cJSON *cfg = rn_plan_json(r->plan);
    if (!cfg) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON_AddStringToObject(cfg, "run", rn_store_run_id(r->store));
    int rc = rn_store_write_config(r->store, cfg, e);
    cJSON_Delete(cfg);
    return rc;
}

static void say(run_state *r, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(run_state *r, size_t i, const char *fmt, ...) {
    fprintf(r->o->term, "[%zu/%zu] %s: ", i + 1, r->plan->n, r->plan->stages[i].id);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->o->term, fmt, ap);
    va_end(ap);
    fputc('\n', r->o->term);
    fflush(r->o->term);
}

/* The run folder's way up to the runs folder: "../../" for
 * runs/<exp>/<run>, deeper for a sweep trial (runs/<exp>/<run>/trials/<n>);
 * NULL when the run folder is elsewhere (links are then absolute). */
static char *up_to_runs(const char *runs_dir, const char *run_dir) {
    size_t n = strlen(runs_dir);
    if (strncmp(run_dir, runs_dir, n) != 0 || run_dir[n] != '/') return NULL;
    size_t depth = 0;
    for (const char *c = run_dir + n; *c; c++) depth += *c == '/';
    char *up = calloc(3 * depth + 1, 1);
    for (size_t i = 0; up && i < depth; i++) memcpy(up + 3 * i, "../", 3);
    return up;
}

/* runs/<exp>/<run>/<stage-id> -> ../../.cache/<stage>/<key> */
static int link_entry(run_state *r, const rn_plan_stage *s, lm_err *e) {
    char *link = lm_path_join(rn_store_run_dir(r->store), s->id);
    char *up = up_to_runs(r->plan->runs_dir, rn_store_run_dir(r->store));
    char *target = up ? lm_sprintf("%s.cache/%s/%s", up, s->desc->name, s->key)
                      : lm_sprintf("%s/.cache/%s/%s", r->plan->runs_dir, s->desc->name, s->key);
    free(up);
    int rc = 0;
    struct stat sb;
    if (!link || !target) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    else if (lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode) && unlink(link) != 0) /* resumed run */
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot replace the link %s", link);
    else if (symlink(target, link) != 0) rc = lm_fail_errno(e, LUMEN_EIO, "cannot link %s", link);
    free(link);
    free(target);
    return rc;
}

/* Creates base/<artifact>/ for every declared output; fills paths[]. */
static int make_outputs(const lumen_stage *st, const char *base, char **paths, lm_err *e) {
    for (size_t k = 0; st->outputs && st->outputs[k]; k++) {
        paths[k] = lm_path_join(base, st->outputs[k]);
        if (!paths[k]) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        int rc = lm_mkdirs(paths[k], e);
        if (rc) return rc;
    }
    return 0;
}

/* Replays the summaries a cached stage reported when it ran. */
static int replay_summaries(run_state *r, const char *entry, lm_err *e) {
    char *path = lm_path_join(entry, RN_CACHE_MARKER);
    cJSON *m = NULL;
    int rc = path ? rn_json_read_file(path, &m, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(m, "summary");
    for (const cJSON *c = sum ? sum->child : NULL; rc == 0 && c; c = c->next)
        rc = rn_track_summary(&r->trackers, c->string, c, e);
    cJSON_Delete(m);
    free(path);
    return rc;
}

static int marker_json(run_state *r, const rn_plan_stage *s, cJSON *summaries, cJSON **out) {
    char iso[40];
    cJSON *m = cJSON_CreateObject();
    if (!m) return LUMEN_ENOMEM;
    cJSON_AddStringToObject(m, "stage", s->desc->name);
    cJSON_AddStringToObject(m, "version", s->desc->version);
    cJSON_AddStringToObject(m, "key", s->key);
    cJSON_AddItemToObject(m, "params", cJSON_Duplicate(s->params, 1));
    cJSON_AddBoolToObject(m, "smoke", r->plan->smoke);
    cJSON_AddStringToObject(m, "created", rn_time_iso(lm_wall_time(), iso, sizeof iso));
    char *run = lm_sprintf("%s/%s", r->plan->name, rn_store_run_id(r->store));
    cJSON_AddStringToObject(m, "run", run ? run : "");
    free(run);
    cJSON_AddItemToObject(m, "summary", cJSON_Duplicate(summaries, 1));
    *out = m;
    return 0;
}

/* A complete cache entry exists: link it, announce it, replay its
 * summaries.  Takes ownership of entry (the stage's artifact folder). */
static int reuse_entry(run_state *r, size_t i, char *entry, lm_err *e) {
    rn_plan_stage *s = &r->plan->stages[i];
    s->hit = 1;
    r->base[i] = entry;
    int rc = link_entry(r, s, e);
    if (rc) return rc;
    say(r, i, "cached (%s)", rn_display_path(r->plan->cwd, entry));
    rc = rn_track_stage_status(&r->trackers, s->id, "cached", entry, e);
    return rc ? rc : replay_summaries(r, entry, e);
}

/* --resume: a stage that is not cacheable and finished in an earlier
 * attempt keeps its outputs (its summaries are in summary.json already). */
static int reuse_finished(run_state *r, size_t i, lm_err *e) {
    rn_plan_stage *s = &r->plan->stages[i];
    r->base[i] = lm_path_join(rn_store_run_dir(r->store), s->id);
    if (!r->base[i]) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    say(r, i, "finished in an earlier attempt; reusing %s", rn_display_path(r->plan->cwd, r->base[i]));
    return rn_track_stage_status(&r->trackers, s->id, "finished", "reused by --resume", e);
}

/* A sweep trial: the stage ran once in the sweep's run; its outputs are
 * used from there (the cache entry a cached stage links to, or its folder). */
static int reuse_upstream(run_state *r, size_t i, lm_err *e) {
    rn_plan_stage *s = &r->plan->stages[i];
    char *path = lm_path_join(r->o->upstream_dir, s->id);
    if (!path) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    r->base[i] = realpath(path, NULL);
    if (!r->base[i]) {
        int rc = lm_fail_errno(e, LUMEN_ENOTFOUND, "stage '%s': the sweep's output %s is missing", s->id, path);
        free(path);
        return rc;
    }
    free(path);
    char *link = lm_path_join(rn_store_run_dir(r->store), s->id);
    struct stat sb;
    int rc = 0;
    if (!link) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    else if (lstat(link, &sb) != 0 && symlink(r->base[i], link) != 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot link %s", link);
    free(link);
    if (rc) return rc;
    return rn_track_stage_status(&r->trackers, s->id, "cached", r->base[i], e);
}

/* resuming: host->resuming() for the stage (its output folder is left as
 * the interrupted attempt left it); otherwise, in a resumed run, leftovers
 * of an earlier attempt are removed first. */
static int run_stage(run_state *r, size_t i, int resuming, lm_err *e) {
    rn_plan *p = r->plan;
    rn_plan_stage *s = &p->stages[i];
    const lumen_stage *st = s->desc;
    const char *cwd = p->cwd;
    int rc = 0;
    char *tmp = NULL, *log = NULL, *final = NULL;
    size_t n_out = rn_list_len(st->outputs);
    char **outs = calloc(n_out + 1, sizeof *outs);
    const char **ins = calloc(s->n_inputs + 1, sizeof *ins);
    char **in_paths = calloc(s->n_inputs + 1, sizeof *in_paths);
    lumen_ctx *ctx = NULL;
    cJSON *summaries = cJSON_CreateObject();
    if (!outs || !ins || !in_paths || !summaries) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (s->cached) {
        final = rn_plan_cache_dir(p, i);
        if (!final) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        if (!p->force && rn_cache_has(&r->cache, st->name, s->key)) {
            rc = reuse_entry(r, i, final, e);
            final = NULL;
            goto out;
        }
        s->hit = 0;
        if ((rc = rn_cache_begin(&r->cache, st->name, s->key, &tmp, e))) goto out;
        rc = make_outputs(st, tmp, outs, e);
    } else {
        char *dir = lm_path_join(rn_store_run_dir(r->store), s->id);
        if (dir && r->o->resume && !resuming && lm_exists(dir)) rc = lm_rmtree(dir, e);
        if (rc == 0) rc = dir ? make_outputs(st, dir, outs, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
        r->base[i] = dir;
    }
    if (rc) goto out;
    for (size_t k = 0; k < s->n_inputs; k++) {
        long j = s->inputs[k].producer;
        if (j < 0) continue;
        in_paths[k] = lm_path_join(r->base[j], s->inputs[k].artifact);
        if (!in_paths[k]) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        ins[k] = in_paths[k];
    }
    rn_ctx_init ci = {.stage = st, .stage_id = s->id, .params = s->params, .smoke = p->smoke,
                      .threads = p->threads, .seed = p->seed, .run_dir = rn_store_run_dir(r->store),
                      .inputs = ins, .outputs = (const char *const *)outs, .resuming = resuming};
    if ((rc = rn_ctx_new(&ci, &ctx, e))) goto out;
    log = rn_store_log_path(r->store, s->id);
    if (!log) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    say(r, i, "%s %s %s", resuming ? "resuming" : "running", st->name, st->version);
    if ((rc = rn_track_stage_status(&r->trackers, s->id, "running", NULL, e))) goto out;
    double t0 = lm_now();
    rn_exec_io io = {.stage_id = s->id, .plugin = s->plugin, .log_path = log,
                     .log_shown = rn_display_path(cwd, log), .trackers = &r->trackers, .term = r->o->term,
                     .tty = r->o->tty, .summaries = summaries};
    rc = rn_exec_stage(st, ctx, &io, e);
    if (rc == 0 && s->cached) {
        cJSON *marker = NULL;
        int lost = 0;
        rc = marker_json(r, s, summaries, &marker) ? lm_fail(e, LUMEN_ENOMEM, "out of memory")
                                        : rn_cache_commit(&r->cache, st->name, s->key, tmp, marker, p->force,
                                                          &lost, e);
        cJSON_Delete(marker);
        if (rc == 0) {
            free(tmp);
            tmp = NULL;
            if (lost)
                say(r, i, "another runner stored the same result first; using %s", rn_display_path(cwd, final));
            rc = link_entry(r, s, e);
            r->base[i] = final;
            final = NULL;
        }
    }
    if (rc) {
        lm_err ignored = {0};
        rn_track_stage_status(&r->trackers, s->id, "failed", e->msg, &ignored);
        goto out;
    }
    say(r, i, "done in %.1f s", lm_now() - t0);
    rc = rn_track_stage_status(&r->trackers, s->id, "finished", NULL, e);
out:
    if (tmp) rn_cache_abort(tmp);
    free(tmp);
    free(final);
    free(log);
    for (size_t k = 0; outs && k < n_out; k++) free(outs[k]);
    for (size_t k = 0; in_paths && k < s->n_inputs; k++) free(in_paths[k]);
    free(outs);
    free(ins);
    free(in_paths);
    rn_ctx_free(ctx);
    cJSON_Delete(summaries);
    return rc;
}

static const char *signal_word(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }

int rn_run_execute(rn_plan *plan, const rn_run_opts *o, char **run_dir, lm_err *e) {
    *run_dir = NULL;
    run_state r = {.plan = plan, .o = o};
    const rn_resume *res = o->resume;
    int rc = res        ? rn_store_reopen(res->run_dir, plan->name, &r.store, e)
             : o->run_at ? rn_store_create_at(o->run_at, o->run_at_id, plan->name, &r.store, e)
                         : rn_store_create(plan->runs_dir, plan->name, &r.store, e);
    if (rc) return rc;
    *run_dir = lm_strdup(rn_store_run_dir(r.store));
    r.base = calloc(plan->n, sizeof *r.base);
    cJSON *params = flat_params(plan);
    if (!*run_dir || !r.base || !params || rn_trackers_add(&r.trackers, rn_store_tracker(), r.store) ||
        rn_cache_init(&r.cache, plan->runs_dir, e)) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (o->mlflow && o->mlflow->uri) { /* beside the local store, which always runs */
        void *mf = NULL;
        if (rn_mlflow_new(o->mlflow, o->term, &mf, e) || rn_trackers_add(&r.trackers, rn_mlflow_tracker(), mf)) {
            rn_mlflow_tracker()->destroy(mf);
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (res && strcmp(res->prev_status, "finished") == 0)
        fprintf(o->term, "run %s (finished: its sweep is scored again from its trials; none runs again)\n",
                rn_display_path(plan->cwd, *run_dir));
    else if (res)
        fprintf(o->term, "run %s (resumed; it had %s)\n", rn_display_path(plan->cwd, *run_dir), res->prev_status);
    else
        fprintf(o->term, "run %s\n", rn_display_path(plan->cwd, *run_dir));
    rn_run_info info = {.experiment = plan->name, .run_id = rn_store_run_id(r.store),
                        .run_dir = *run_dir, .exp_file = plan->file, .started = lm_wall_time(),
                        .argc = o->argc, .argv = o->argv, .resumed = res != NULL,
                        .prev_status = res ? res->prev_status : NULL, .parent_dir = o->upstream_dir};
    rc = rn_track_run_started(&r.trackers, &info, params, e);
    if (rc == 0) rc = write_config(&r, e);
    for (size_t i = 0; i < plan->n && rc == 0; i++) {
        int sig = rn_signals_pending();
        if (sig) {
            rc = lm_fail(e, LUMEN_ECANCELED, "interrupted (%s) before stage '%s'", signal_word(sig),
                         plan->stages[i].id);
            break;
        }
        int action = res ? res->action[i] : RN_RESUME_RUN;
        rc = i < o->n_upstream           ? reuse_upstream(&r, i, e)
             : action == RN_RESUME_REUSE ? reuse_finished(&r, i, e)
                                         : run_stage(&r, i, action == RN_RESUME_CONTINUE, e);
    }
    if (rc == 0 && o->tail) {
        rn_run_env env = {.run_dir = *run_dir, .trackers = &r.trackers, .base = r.base};
        rc = rn_track_stage_status(&r.trackers, o->tail_id, "running", NULL, e);
        if (rc == 0) rc = o->tail(o->tail_arg, &env, e);
        lm_err ignored = {0};
        rn_track_stage_status(&r.trackers, o->tail_id, rc ? "failed" : "finished", rc ? e->msg : NULL, &ignored);
    }
    lm_err late = {0}; /* config.json again, now with the actual cache hits */
    if (write_config(&r, &late) && rc == 0) rc = lm_fail(e, late.code, "%s", late.msg);
    lm_err end_err = {0};
    int erc = rn_track_run_ended(&r.trackers, rc ? "failed" : "finished", rc ? e->msg : NULL, lm_wall_time(),
                                 &end_err);
    if (erc && rc == 0) rc = lm_fail(e, erc, "%s", end_err.msg);
out:
    cJSON_Delete(params);
    for (size_t i = 0; r.base && i < plan->n; i++) free(r.base[i]);
    free(r.base);
    rn_cache_free(&r.cache);
    rn_trackers_free(&r.trackers);
    rn_store_free(r.store);
    return rc;
}
