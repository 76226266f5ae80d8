/* resume.c -- see resume.h. */
#include "resume.h"

#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "store.h"

void rn_resume_free(rn_resume *r) {
    if (!r) return;
    free(r->run_dir);
    free(r->run_id);
    free(r->prev_status);
    free(r->action);
    free(r);
}

/* The run folder RUN names: a path (anything with a '/', or an existing
 * folder), else a run id under <runs>/<experiment>/. */
static char *locate(const rn_plan *p, const char *run) {
    if (strchr(run, '/') || lm_is_dir(run)) {
        char *path = run[0] == '/' ? lm_strdup(run) : lm_path_join(p->cwd, run);
        char *real = path ? realpath(path, NULL) : NULL;
        if (real) {
            free(path);
            return real;
        }
        return path;
    }
    return lm_sprintf("%s/%s/%s", p->runs_dir, p->name, run);
}

static char *text_of(const cJSON *v) {
    return v ? cJSON_PrintUnformatted(v) : lm_strdup("absent");
}

/* Where a recorded value comes from, for "--resume RUN: <who><what> is A
 * in <where> but B now". */
typedef struct place {
    const char *run, *who, *where;
} place;

static int differ_at(const place *pl, const char *what, const cJSON *was, const cJSON *now, lm_err *e) {
    char *a = text_of(was), *b = text_of(now);
    int rc = lm_fail(e, LUMEN_EINVAL,
                     "--resume %s: %s%s is %s in %s but %s now (resume with the experiment, --set and --smoke as the "
                     "run had them)",
                     pl->run, pl->who, what, a ? a : "?", pl->where, b ? b : "?");
    free(a);
    free(b);
    return rc;
}

static int differ(const char *run, const char *what, const cJSON *was, const cJSON *now, lm_err *e) {
    place pl = {run, "", "the run's config.json"};
    return differ_at(&pl, what, was, now, e);
}

/* Compares the plan's stages with a recorded "stages" list (config.json's,
 * or a sweep's trial_stages): id, stage, version and every parameter; 0 or
 * the first difference. */
static int compare_stages(const rn_plan *p, const cJSON *stages, const place *pl, lm_err *e) {
    int rc = 0;
    size_t n = (size_t)cJSON_GetArraySize(stages);
    for (size_t i = 0; i < p->n || i < n; i++) {
        const cJSON *cs = cJSON_GetArrayItem(stages, (int)i);
        const rn_plan_stage *s = i < p->n ? &p->stages[i] : NULL;
        if (!cs || !s) {
            char what[64];
            snprintf(what, sizeof what, "stage %zu", i + 1);
            cJSON *sid = s ? cJSON_CreateString(s->id) : NULL;
            rc = differ_at(pl, what, cs ? rn_json_item(cs, "id") : NULL, sid, e);
            cJSON_Delete(sid);
            return rc;
        }
        const char *fields[][2] = {{"id", s->id}, {"stage", s->desc->name}, {"version", s->desc->version}};
        for (int f = 0; f < 3; f++) {
            cJSON *v = cJSON_CreateString(fields[f][1]);
            if (!cJSON_Compare(rn_json_item(cs, fields[f][0]), v, 1)) {
                char what[160];
                snprintf(what, sizeof what, "stage %zu's %s", i + 1, fields[f][0]);
                rc = differ_at(pl, what, rn_json_item(cs, fields[f][0]), v, e);
            }
            cJSON_Delete(v);
            if (rc) return rc;
        }
        /* every key of either side, in sorted order (both are sorted) */
        const cJSON *was = rn_json_item(cs, "params");
        cJSON *keys = cJSON_CreateObject();
        for (const cJSON *c = was ? was->child : NULL; c; c = c->next)
            if (!rn_json_item(keys, c->string)) cJSON_AddNullToObject(keys, c->string);
        for (const cJSON *c = s->params->child; c; c = c->next)
            if (!rn_json_item(keys, c->string)) cJSON_AddNullToObject(keys, c->string);
        cJSON *sorted = rn_json_sorted(keys);
        cJSON_Delete(keys);
        if (!sorted) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        for (const cJSON *k = sorted->child; k && rc == 0; k = k->next) {
            const cJSON *a = rn_json_item(was, k->string), *b = rn_json_item(s->params, k->string);
            if (!a || !b || !cJSON_Compare(a, b, 1)) {
                char *what = lm_sprintf("%s.%s", s->id, k->string);
                rc = what ? differ_at(pl, what, a, b, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
                free(what);
            }
        }
        cJSON_Delete(sorted);
        if (rc) return rc;
    }
    return 0;
}

/* Compares plan and config.json; 0 or the first difference. */
static int compare(const rn_plan *p, const cJSON *cfg, const char *run, FILE *warn, lm_err *e) {
    const cJSON *xe = rn_json_item(cfg, "experiment");
    cJSON *now = cJSON_CreateString(p->name);
    int rc = 0;
    if (!cJSON_Compare(rn_json_item(xe, "name"), now, 1)) rc = differ(run, "the experiment name", rn_json_item(xe, "name"), now, e);
    cJSON_Delete(now);
    if (rc) return rc;
    now = cJSON_CreateNumber((double)p->seed);
    if (!cJSON_Compare(rn_json_item(xe, "seed"), now, 1)) rc = differ(run, "seed", rn_json_item(xe, "seed"), now, e);
    cJSON_Delete(now);
    if (rc) return rc;
    now = cJSON_CreateBool(p->smoke);
    if (!cJSON_Compare(rn_json_item(cfg, "smoke"), now, 1)) rc = differ(run, "--smoke", rn_json_item(cfg, "smoke"), now, e);
    cJSON_Delete(now);
    if (rc) return rc;
    const cJSON *threads = rn_json_item(cfg, "threads");
    if (warn && cJSON_IsNumber(threads) && (int)threads->valuedouble != p->threads)
        fprintf(warn,
                "runner: warning: --resume %s: the run used %d thread(s), this one %d; results will not be bitwise "
                "those of an uninterrupted run\n",
                run, (int)threads->valuedouble, p->threads);
    const cJSON *stages = rn_json_item(cfg, "stages");
    if (!cJSON_IsArray(stages))
        return lm_fail(e, LUMEN_EDATA, "--resume %s: config.json has no \"stages\" list", run);
    place pl = {run, "", "the run's config.json"};
    return compare_stages(p, stages, &pl, e);
}

int rn_resume_check_trial_stages(const rn_plan *trial_plan, const cJSON *stages, const char *run, lm_err *e) {
    place pl = {run, "the trials' ", "the run"};
    return compare_stages(trial_plan, stages, &pl, e);
}

int rn_resume_open(const rn_plan *p, const char *run, int has_sweep, FILE *warn, rn_resume **out, lm_err *e) {
    *out = NULL;
    rn_resume *r = calloc(1, sizeof *r);
    if (!r) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON *cfg = NULL, *status = NULL;
    char *cpath = NULL, *spath = NULL;
    int rc = 0;
    r->run_dir = locate(p, run);
    r->action = calloc(p->n + 1, sizeof *r->action);
    r->n = p->n;
    if (!r->run_dir || !r->action) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (!lm_is_dir(r->run_dir)) {
        rc = lm_fail(e, LUMEN_ENOTFOUND, "--resume %s: no run folder %s", run, r->run_dir);
        goto out;
    }
    const char *slash = strrchr(r->run_dir, '/');
    r->run_id = lm_strdup(slash ? slash + 1 : r->run_dir);
    cpath = lm_path_join(r->run_dir, RN_CONFIG_FILE);
    spath = lm_path_join(r->run_dir, RN_STATUS_FILE);
    if (!r->run_id || !cpath || !spath) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = rn_json_read_file(cpath, &cfg, e)) || (rc = rn_json_read_file(spath, &status, e))) {
        if (rc == LUMEN_ENOTFOUND) {
            lm_err_clear(e);
            rc = lm_fail(e, LUMEN_ENOTFOUND, "--resume %s: %s is not a run folder (no %s or %s)", run, r->run_dir,
                         RN_CONFIG_FILE, RN_STATUS_FILE);
        }
        goto out;
    }
    const char *st = rn_store_effective_status(status);
    if (strcmp(st, "finished") == 0 && !has_sweep) {
        rc = lm_fail(e, LUMEN_EINVAL, "--resume %s: the run finished; there is nothing to resume", run);
        goto out;
    }
    if (strcmp(st, "running") == 0) {
        const cJSON *pid = rn_json_item(status, "pid");
        rc = lm_fail(e, LUMEN_EINVAL, "--resume %s: the run is still running (runner pid %.0f); stop it first", run,
                     cJSON_IsNumber(pid) ? pid->valuedouble : -1.0);
        goto out;
    }
    r->prev_status = lm_strdup(st);
    if (!r->prev_status) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = compare(p, cfg, run, warn, e))) goto out;
    const cJSON *stages = rn_json_item(status, "stages");
    int reusing = 1; /* only a prefix of the non-cached stages is reused */
    for (size_t i = 0; i < p->n; i++) {
        const rn_plan_stage *s = &p->stages[i];
        if (s->cached) continue; /* the cache decides */
        const cJSON *sst = rn_json_item(rn_json_item(stages, s->id), "status");
        const char *was = cJSON_IsString(sst) ? sst->valuestring : NULL;
        char *dir = lm_path_join(r->run_dir, s->id);
        int have_dir = dir && lm_is_dir(dir);
        free(dir);
        if (reusing && was && strcmp(was, "finished") == 0 && have_dir) {
            r->action[i] = RN_RESUME_REUSE;
            continue;
        }
        reusing = 0;
        r->action[i] = was && have_dir && strcmp(was, "finished") != 0 ? RN_RESUME_CONTINUE : RN_RESUME_RUN;
    }
out:
    free(cpath);
    free(spath);
    cJSON_Delete(cfg);
    cJSON_Delete(status);
    if (rc) rn_resume_free(r);
    else *out = r;
    return rc;
}
