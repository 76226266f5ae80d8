/* plan.c -- see plan.h. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "jsonutil.h"
#include "stage_params.h"
#include "suggest.h"

void rn_plan_free(rn_plan *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        rn_plan_stage *s = &p->stages[i];
        free(s->id);
        free(s->file);
        free(s->nocache);
        cJSON_Delete(s->params);
        for (size_t k = 0; k < s->n_inputs; k++) free(s->inputs[k].artifact);
        free(s->inputs);
    }
    free(p->stages);
    free(p->file);
    free(p->name);
    free(p->description);
    free(p->cwd);
    free(p->runs_dir);
    free(p);
}

/* ---------------------------------------------------- stage lookup -- */

static int resolve_plugin(const rn_registry *reg, const rn_exp_stage *xs, rn_plan_stage *s, lm_err *e) {
    const rn_stage_ref *ref = rn_registry_find(reg, xs->stage);
    if (ref) {
        s->desc = ref->desc;
        s->plugin = ref->path;
        return 0;
    }
    const rn_refusal *why = rn_registry_refusal_for(reg, xs->stage);
    if (why)
        return lm_fail(e, LUMEN_ENOTFOUND, "%s:%d: stage '%s': plugin %s was refused: %s", xs->file, xs->line,
                       xs->stage, why->path, why->reason);
    const char **names = calloc(reg->n_stages + 1, sizeof *names);
    if (!names) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; i < reg->n_stages; i++) names[i] = reg->stages[i].desc->name;
    char hint[200];
    rn_suggest_phrase(hint, sizeof hint, xs->stage, names, reg->n_stages);
    free(names);
    return lm_fail(e, LUMEN_ENOTFOUND,
                   "%s:%d: unknown stage '%s'%s; no plugin provides it (`runner plugins` lists them)", xs->file,
                   xs->line, xs->stage, hint);
}

/* -------------------------------------------------------- overrides -- */

static int apply_set(rn_plan *p, const char *arg, lm_err *e) {
    const char *eq = strchr(arg, '=');
    const char *dot = strchr(arg, '.');
    if (!eq || !dot || dot > eq || dot == arg || dot + 1 == eq)
        return lm_fail(e, LUMEN_EINVAL, "--set %s: expected stage.key=value", arg);
    char *id = strndup(arg, (size_t)(dot - arg));
    char *key = strndup(dot + 1, (size_t)(eq - dot - 1));
    const char *text = eq + 1;
    int rc = 0;
    if (!id || !key) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    rn_plan_stage *s = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->stages[i].id, id) == 0) s = &p->stages[i];
    if (!s) {
        const char **ids = calloc(p->n, sizeof *ids);
        if (!ids) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < p->n; i++) ids[i] = p->stages[i].id;
        char hint[200];
        rn_suggest_phrase(hint, sizeof hint, id, ids, p->n);
        free(ids);
        rc = lm_fail(e, LUMEN_EINVAL, "--set %s: no stage '%s' in this experiment%s", arg, id, hint);
        goto out;
    }
    const lumen_param *decl = rn_param_find(s->desc->params, key);
    if (!decl) {
        size_t n = 0;
        while (s->desc->params && s->desc->params[n].name) n++;
        const char **names = calloc(n + 1, sizeof *names);
        if (!names) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) names[i] = s->desc->params[i].name;
        char hint[200];
        rn_suggest_phrase(hint, sizeof hint, key, names, n);
        free(names);
        rc = lm_fail(e, LUMEN_EINVAL, "--set %s: stage '%s' has no parameter '%s'%s", arg, id, key, hint);
        goto out;
    }
    char why[768];
    cJSON *v = NULL, *norm = NULL;
    rc = rn_param_parse(decl, text, &v, why, sizeof why);
    if (rc == 0) rc = rn_param_check(decl, v, p->cwd, &norm, why, sizeof why);
    cJSON_Delete(v);
    if (rc == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(s->params, key);
        if (!cJSON_AddItemToObject(s->params, key, norm)) {
            cJSON_Delete(norm);
            rc = LUMEN_ENOMEM;
        }
    }
    if (rc == LUMEN_ENOMEM) rc = lm_fail(e, rc, "out of memory");
    else if (rc) rc = lm_fail(e, rc, "--set %s: %s", arg, why);
out:
    free(id);
    free(key);
    return rc;
}

/* ----------------------------------------------------------- inputs -- */

static int declares(const char *const *list, const char *name) {
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

static int resolve_inputs(const rn_registry *reg, rn_plan *p, size_t i, lm_err *e) {
    rn_plan_stage *s = &p->stages[i];
    const char *const *in = s->desc->inputs;
    size_t n = rn_list_len(in);
    if (n == 0) return 0;
    s->inputs = calloc(n, sizeof *s->inputs);
    if (!s->inputs) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    s->n_inputs = n;
    for (size_t k = 0; k < n; k++) {
        size_t len = strlen(in[k]);
        rn_plan_input *pi = &s->inputs[k];
        pi->optional = in[k][len - 1] == '?';
        pi->artifact = strndup(in[k], pi->optional ? len - 1 : len);
        pi->producer = -1;
        if (!pi->artifact) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        for (size_t j = i; j-- > 0;) {
            if (declares(p->stages[j].desc->outputs, pi->artifact)) {
                pi->producer = (long)j;
                break;
            }
        }
        if (pi->producer >= 0 || pi->optional) continue;
        char who[256] = "";
        size_t w = 0;
        for (size_t r = 0; r < reg->n_stages && w + 40 < sizeof who; r++) {
            if (declares(reg->stages[r].desc->outputs, pi->artifact))
                w += (size_t)snprintf(who + w, sizeof who - w, "%s%s", w ? ", " : "", reg->stages[r].desc->name);
        }
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: stage '%s' needs input '%s', but no earlier stage produces it%s%s%s",
                       s->file, s->line, s->id, pi->artifact, w ? " (it comes from: " : "", who, w ? ")" : "");
    }
    return 0;
}

/* ------------------------------------------------ check() and key() -- */

static int plan_ctx(const rn_plan *p, const rn_plan_stage *s, lumen_ctx **ctx, lm_err *e) {
    rn_ctx_init in = {.stage = s->desc, .stage_id = s->id, .params = s->params, .smoke = p->smoke,
                      .threads = p->threads, .seed = p->seed};
    return rn_ctx_new(&in, ctx, e);
}

/* Turns the outcome of a callback into an error naming the stage. */
static int callback_outcome(const rn_plan_stage *s, lumen_ctx *ctx, const char *cb, int rc, lm_err *e) {
    const char *msg = NULL;
    int code = rn_ctx_failure(ctx, &msg);
    const char *mis = rn_ctx_misuse(ctx);
    if (code || rc) {
        if (!code) code = rc;
        if (msg) return lm_fail(e, code, "%s:%d: stage '%s': %s", s->file, s->line, s->id, msg);
        return lm_fail(e, code, "%s:%d: stage '%s': %s() failed (%s) without a message", s->file, s->line,
                       s->id, cb, lm_strcode(code));
    }
    if (mis)
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: stage '%s': plugin %s: %s(): %s", s->file, s->line, s->id,
                       s->plugin, cb, mis);
    return 0;
}

static int run_check(const rn_plan *p, const rn_plan_stage *s, lm_err *e) {
    if (!s->desc->check) return 0;
    lumen_ctx *ctx;
    int rc = plan_ctx(p, s, &ctx, e);
    if (rc) return rc;
    rc = s->desc->check(ctx, rn_host());
    rc = callback_outcome(s, ctx, "check", rc, e);
    rn_ctx_free(ctx);
    return rc;
}

static int compute_key(rn_plan *p, size_t i, lm_err *e) {
    rn_plan_stage *s = &p->stages[i];
    if (!(s->desc->flags & LUMEN_STAGE_CACHEABLE)) {
        s->nocache = lm_strdup("the stage is not cacheable");
        return s->nocache ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    rn_key_input *ki = calloc(s->n_inputs ? s->n_inputs : 1, sizeof *ki);
    if (!ki) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t k = 0; k < s->n_inputs; k++) {
        const rn_plan_input *pi = &s->inputs[k];
        ki[k].artifact = pi->artifact;
        if (pi->producer < 0) continue;
        const rn_plan_stage *prod = &p->stages[pi->producer];
        if (!prod->cached) {
            s->nocache = lm_sprintf("input '%s' comes from stage '%s', which is not cached", pi->artifact,
                                    prod->id);
            free(ki);
            return s->nocache ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
        }
        ki[k].producer_key = prod->key;
    }
    rn_key_desc d = {.stage = s->desc->name, .version = s->desc->version, .params = s->params,
                     .smoke = p->smoke, .inputs = ki, .n_inputs = s->n_inputs};
    rn_keyhash *kh = rn_keyhash_begin(&d);
    free(ki);
    if (!kh) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int rc = 0;
    if (s->desc->key) {
        lumen_ctx *ctx;
        rc = plan_ctx(p, s, &ctx, e);
        if (rc == 0) {
            rn_ctx_use_keyhash(ctx, kh);
            rc = s->desc->key(ctx, rn_host());
            rn_ctx_use_keyhash(ctx, NULL);
            rc = callback_outcome(s, ctx, "key", rc, e);
            rn_ctx_free(ctx);
        }
    }
    if (rc == 0) {
        rn_keyhash_hex(kh, s->key);
        s->cached = 1;
    }
    rn_keyhash_free(kh);
    return rc;
}

/* ------------------------------------------------------------ build -- */

int rn_plan_build(const rn_registry *reg, const rn_experiment *x, const rn_plan_opts *o, rn_plan **out,
                  lm_err *e) {
    *out = NULL;
    rn_plan *p = calloc(1, sizeof *p);
    if (!p) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    p->file = lm_strdup(x->file);
    p->name = lm_strdup(x->name);
    p->description = lm_strdup(x->description);
    p->cwd = lm_strdup(o->cwd);
    p->runs_dir = lm_strdup(o->runs_dir);
    p->seed = x->seed;
    p->threads = o->threads > 0 ? o->threads : x->threads > 0 ? x->threads : lm_ncpu();
    p->smoke = o->smoke;
    p->force = o->force;
    p->stages = calloc(x->n, sizeof *p->stages);
    int rc = 0;
    if (!p->file || !p->name || !p->description || !p->cwd || !p->runs_dir || !p->stages) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    /* 1. plugins and flat parameters */
    for (size_t i = 0; i < x->n && rc == 0; i++) {
        const rn_exp_stage *xs = &x->stages[i];
        rn_plan_stage *s = &p->stages[i];
        p->n++;
        s->id = lm_strdup(xs->id);
        s->file = lm_strdup(xs->file);
        s->line = xs->line;
        s->hit = 0;
        if (!s->id || !s->file) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            break;
        }
        if ((rc = resolve_plugin(reg, xs, s, e))) break;
        char why[768];
        rc = rn_params_flatten(s->desc->params, xs->params, &s->params, why, sizeof why);
        if (rc == LUMEN_ENOMEM) rc = lm_fail(e, rc, "out of memory");
        else if (rc) rc = lm_fail(e, rc, "%s:%d: stage '%s': %s", s->file, s->line, s->id, why);
    }
    /* 2. --set overrides, 3. validation and defaults */
    for (size_t k = 0; rc == 0 && o->sets && k < o->sets->n; k++) rc = apply_set(p, o->sets->v[k], e);
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        rn_plan_stage *s = &p->stages[i];
        char *where = lm_sprintf("%s:%d: stage '%s'", s->file, s->line, s->id);
        if (!where) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            break;
        }
        rc = rn_params_resolve(s->desc->params, s->params, p->cwd, where, e);
        free(where);
        if (rc == 0) {
            cJSON *sorted = rn_json_sorted(s->params);
            if (!sorted) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            cJSON_Delete(s->params);
            s->params = sorted;
        }
    }
    /* 4. inputs, check(), cache keys -- in pipeline order */
    rn_cache cache = {0};
    if (rc == 0) rc = rn_cache_init(&cache, p->runs_dir, e);
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        if ((rc = resolve_inputs(reg, p, i, e)) || (rc = run_check(p, &p->stages[i], e)) ||
            (rc = compute_key(p, i, e)))
            break;
        rn_plan_stage *s = &p->stages[i];
        s->hit = s->cached && rn_cache_has(&cache, s->desc->name, s->key);
    }
    rn_cache_free(&cache);
out:
    if (rc) rn_plan_free(p);
    else *out = p;
    return rc;
}

char *rn_plan_cache_dir(const rn_plan *p, size_t i) {
    const rn_plan_stage *s = &p->stages[i];
    if (!s->cached) return NULL;
    return lm_sprintf("%s/.cache/%s/%s", p->runs_dir, s->desc->name, s->key);
}

/* ------------------------------------------------------------- JSON -- */

static cJSON *string_list(const char *const *list) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && list && list[i]; i++) cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
    return a;
}

cJSON *rn_plan_json(const rn_plan *p) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON *xe = cJSON_AddObjectToObject(root, "experiment");
    cJSON_AddStringToObject(xe, "name", p->name);
    cJSON_AddStringToObject(xe, "file", p->file);
    cJSON_AddStringToObject(xe, "description", p->description);
    cJSON_AddNumberToObject(xe, "seed", (double)p->seed);
    cJSON_AddNumberToObject(root, "threads", p->threads);
    cJSON_AddBoolToObject(root, "smoke", p->smoke);
    cJSON_AddBoolToObject(root, "force", p->force);
    cJSON_AddStringToObject(root, "cwd", p->cwd);
    cJSON_AddStringToObject(root, "runs", p->runs_dir);
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    for (size_t i = 0; i < p->n; i++) {
        const rn_plan_stage *s = &p->stages[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(stages, o);
        cJSON_AddStringToObject(o, "id", s->id);
        cJSON_AddStringToObject(o, "stage", s->desc->name);
        cJSON_AddStringToObject(o, "version", s->desc->version);
        cJSON_AddStringToObject(o, "plugin", s->plugin);
        char at[600];
        snprintf(at, sizeof at, "%s:%d", s->file, s->line);
        cJSON_AddStringToObject(o, "declared_at", at);
        cJSON_AddItemToObject(o, "params", cJSON_Duplicate(s->params, 1));
        cJSON *ins = cJSON_AddObjectToObject(o, "inputs");
        for (size_t k = 0; k < s->n_inputs; k++) {
            const rn_plan_input *pi = &s->inputs[k];
            if (pi->producer < 0) cJSON_AddNullToObject(ins, pi->artifact);
            else cJSON_AddStringToObject(ins, pi->artifact, p->stages[pi->producer].id);
        }
        cJSON_AddItemToObject(o, "outputs", string_list(s->desc->outputs));
        cJSON *c = cJSON_AddObjectToObject(o, "cache");
        if (s->cached) {
            cJSON_AddStringToObject(c, "key", s->key);
            cJSON_AddStringToObject(c, "status", s->hit ? "hit" : "miss");
        } else {
            cJSON_AddStringToObject(c, "status", "not cached");
            cJSON_AddStringToObject(c, "reason", s->nocache ? s->nocache : "");
        }
    }
    return root;
}
