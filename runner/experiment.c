/* experiment.c -- see experiment.h. */
#include "experiment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "lua_bridge.h"
#include "suggest.h"

static const char *const EXP_KEYS[] = {"name", "seed", "threads", "description", "stages", "tracking"};
#define N_EXP_KEYS (sizeof EXP_KEYS / sizeof EXP_KEYS[0])

static int name_chars(const char *s, int allow_dot) {
    if (!s || !*s) return 0;
    for (const char *c = s; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                 *c == '-' || (allow_dot && *c == '.');
        if (!ok) return 0;
    }
    return 1;
}

int rn_valid_stage_id(const char *s) { return name_chars(s, 0) && strcmp(s, "logs") != 0; }

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int int_field(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : dflt;
}

void rn_experiment_free(rn_experiment *x) {
    if (!x) return;
    for (size_t i = 0; i < x->n; i++) {
        free(x->stages[i].stage);
        free(x->stages[i].id);
        free(x->stages[i].file);
        cJSON_Delete(x->stages[i].params);
    }
    free(x->stages);
    if (x->sweep) {
        free(x->sweep->id);
        free(x->sweep->file);
        cJSON_Delete(x->sweep->spec);
        free(x->sweep);
    }
    cJSON_Delete(x->tracking);
    free(x->file);
    free(x->name);
    free(x->description);
    free(x);
}

/* Reads one stage entry (element i of `stages`). */
static int read_stage(rn_experiment *x, const cJSON *s, size_t i, lm_err *e) {
    const char *stage = str_field(s, "__stage");
    if (!cJSON_IsObject(s) || !stage)
        return lm_fail(e, LUMEN_EINVAL,
                       "%s:%d: stages[%zu] is not a stage (build it with lumen.<stage> { ... } or "
                       "lumen.stage(\"name\", { ... }))",
                       x->file, x->line, i + 1);
    rn_exp_stage *st = &x->stages[x->n];
    const char *file = str_field(s, "__file");
    int line = int_field(s, "__line", 0);
    st->file = lm_strdup(file ? file : x->file);
    st->line = line;
    st->stage = lm_strdup(stage);
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(s, "id");
    const char *id = str_field(s, "id");
    st->id = lm_strdup(id ? id : stage);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(s, "params");
    st->params = params ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
    if (!st->file || !st->stage || !st->id || !st->params) {
        free(st->file);
        free(st->stage);
        free(st->id);
        cJSON_Delete(st->params);
        memset(st, 0, sizeof *st);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    x->n++;
    if (!name_chars(stage, 0))
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: '%s' is not a valid stage name", st->file, line, stage);
    if (idv && !id)
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: stage '%s': id must be a string", st->file, line, stage);
    if (!rn_valid_stage_id(st->id))
        return lm_fail(e, LUMEN_EINVAL,
                       "%s:%d: stage '%s': id '%s' must be letters, digits, '_' or '-' (and not 'logs')",
                       st->file, line, stage, st->id);
    if (!cJSON_IsObject(st->params))
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: stage '%s': parameters must be a table with named keys",
                       st->file, line, st->id);
    for (size_t k = 0; k + 1 < x->n; k++) {
        if (strcmp(x->stages[k].id, st->id) == 0)
            return lm_fail(e, LUMEN_EINVAL,
                           "%s:%d: stage id '%s' is used twice (first at %s:%d); give one of them "
                           "id = \"...\"",
                           st->file, line, st->id, x->stages[k].file, x->stages[k].line);
    }
    return 0;
}

/* The sweep entry: its spec, then its stages appended to x->stages. */
static int read_sweep(rn_experiment *x, const cJSON *s, lm_err *e) {
    const char *file = str_field(s, "__file");
    int line = int_field(s, "__line", 0);
    const char *id = str_field(s, "id");
    rn_exp_sweep *w = calloc(1, sizeof *w);
    if (!w) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    x->sweep = w;
    w->file = lm_strdup(file ? file : x->file);
    w->id = lm_strdup(id ? id : "sweep");
    w->line = line;
    w->first = x->n;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(s, "params");
    w->spec = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
    if (!w->file || !w->id || !w->spec) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (!rn_valid_stage_id(w->id))
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep id '%s' must be letters, digits, '_' or '-'", w->file, line,
                       w->id);
    cJSON *sub = cJSON_DetachItemFromObjectCaseSensitive(w->spec, "stages");
    int rc = 0;
    if (!cJSON_IsArray(sub) || !sub->child) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep needs stages = { lumen.<stage> { ... }, ... } to run per trial",
                     w->file, line);
    }
    size_t k = 0;
    for (const cJSON *c = sub ? sub->child : NULL; c && rc == 0; c = c->next, k++) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "__sweep")))
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: a sweep inside a sweep is not supported", w->file, line);
        else if (cJSON_IsObject(c) && str_field(c, "__stage")) rc = read_stage(x, c, k, e);
        else
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep stages[%zu] is not a stage (build it with lumen.<stage> { ... })",
                         w->file, line, k + 1);
    }
    for (size_t j = 0; rc == 0 && j < x->n; j++)
        if (strcmp(x->stages[j].id, w->id) == 0)
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: the sweep's id '%s' is also a stage's id (%s:%d)", w->file, line,
                         w->id, x->stages[j].file, x->stages[j].line);
    cJSON_Delete(sub);
    return rc;
}

rn_experiment *rn_experiment_head(const rn_experiment *x, size_t n) {
    rn_experiment *c = rn_experiment_copy(x);
    if (!c) return NULL;
    while (c->n > n) {
        rn_exp_stage *s = &c->stages[--c->n];
        free(s->stage);
        free(s->id);
        free(s->file);
        cJSON_Delete(s->params);
    }
    if (c->sweep) {
        free(c->sweep->id);
        free(c->sweep->file);
        cJSON_Delete(c->sweep->spec);
        free(c->sweep);
        c->sweep = NULL;
    }
    return c;
}

rn_experiment *rn_experiment_copy(const rn_experiment *x) {
    rn_experiment *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int ok = 1;
    c->file = lm_strdup(x->file);
    c->line = x->line;
    c->name = lm_strdup(x->name);
    c->description = lm_strdup(x->description);
    c->seed = x->seed;
    c->threads = x->threads;
    c->stages = calloc(x->n + 1, sizeof *c->stages);
    c->tracking = x->tracking ? cJSON_Duplicate(x->tracking, 1) : NULL;
    ok = c->file && c->name && c->description && c->stages && (c->tracking || !x->tracking);
    for (size_t i = 0; ok && i < x->n; i++) {
        rn_exp_stage *d = &c->stages[i];
        const rn_exp_stage *s = &x->stages[i];
        d->stage = lm_strdup(s->stage);
        d->id = lm_strdup(s->id);
        d->file = lm_strdup(s->file);
        d->line = s->line;
        d->params = cJSON_Duplicate(s->params, 1);
        c->n++;
        ok = d->stage && d->id && d->file && d->params;
    }
    if (ok && x->sweep) {
        c->sweep = calloc(1, sizeof *c->sweep);
        ok = c->sweep != NULL;
        if (ok) {
            c->sweep->id = lm_strdup(x->sweep->id);
            c->sweep->file = lm_strdup(x->sweep->file);
            c->sweep->line = x->sweep->line;
            c->sweep->first = x->sweep->first;
            c->sweep->spec = cJSON_Duplicate(x->sweep->spec, 1);
            ok = c->sweep->id && c->sweep->file && c->sweep->spec;
        }
    }
    if (!ok) {
        rn_experiment_free(c);
        return NULL;
    }
    return c;
}

int rn_experiment_from_json(const cJSON *j, const char *file, rn_experiment **out, lm_err *e) {
    *out = NULL;
    rn_experiment *x = calloc(1, sizeof *x);
    if (!x) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    x->file = lm_strdup(file);
    x->line = int_field(j, "__line", 0);
    int rc = 0;
    if (!x->file) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (const cJSON *c = j->child; c; c = c->next) {
        if (strncmp(c->string, "__", 2) == 0) continue;
        int known = 0;
        for (size_t k = 0; k < N_EXP_KEYS; k++) known |= strcmp(c->string, EXP_KEYS[k]) == 0;
        if (!known) {
            char hint[128];
            rn_suggest_phrase(hint, sizeof hint, c->string, EXP_KEYS, N_EXP_KEYS);
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: unknown experiment key '%s'%s", x->file, x->line, c->string,
                         hint);
            goto out;
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsString(v) || !name_chars(v->valuestring, 1) || v->valuestring[0] == '.') {
        rc = lm_fail(e, LUMEN_EINVAL,
                     "%s:%d: experiment needs name = \"...\" made of letters, digits, '_', '-' or '.'", x->file,
                     x->line);
        goto out;
    }
    x->name = lm_strdup(v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(j, "description");
    if (v && !cJSON_IsString(v)) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: experiment description must be a string", x->file, x->line);
        goto out;
    }
    x->description = lm_strdup(v ? v->valuestring : "");
    if (!x->name || !x->description) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "seed");
    if (v) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (d < 0 || d != floor(d) || d > 9007199254740992.0) {
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: experiment seed must be a non-negative integer", x->file,
                         x->line);
            goto out;
        }
        x->seed = (uint64_t)d;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "threads");
    if (v) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
        if (d < 1 || d != floor(d) || d > 4096) {
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: experiment threads must be an integer in [1, 4096]", x->file,
                         x->line);
            goto out;
        }
        x->threads = (int)d;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "tracking");
    if (v && !(x->tracking = cJSON_Duplicate(v, 1))) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "stages");
    if (!cJSON_IsArray(v) || !v->child) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: experiment needs stages = { lumen.<stage> { ... }, ... }", x->file,
                     x->line);
        goto out;
    }
    size_t cap = 0;
    for (const cJSON *s = v->child; s; s = s->next) {
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "params"), "stages");
        cap += 1 + (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "__sweep")) && cJSON_IsArray(sub)
                        ? (size_t)cJSON_GetArraySize(sub)
                        : 0);
    }
    x->stages = calloc(cap, sizeof *x->stages);
    if (!x->stages) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    size_t i = 0;
    for (const cJSON *s = v->child; s && rc == 0; s = s->next, i++) {
        if (x->sweep) {
            rc = lm_fail(e, LUMEN_EINVAL,
                         "%s:%d: stages[%zu] comes after the sweep (%s:%d); stages that should run per trial "
                         "go inside the sweep's stages",
                         x->file, x->line, i + 1, x->sweep->file, x->sweep->line);
        } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "__sweep"))) {
            rc = read_sweep(x, s, e);
        } else {
            rc = read_stage(x, s, i, e);
        }
    }
out:
    if (rc) rn_experiment_free(x);
    else *out = x;
    return rc;
}

int rn_experiment_load(const char *file, const rn_strv *lua_dirs, rn_experiment **out, char **traceback,
                       lm_err *e) {
    cJSON *j = NULL;
    int rc = rn_lua_eval(file, lua_dirs, &j, traceback, e);
    if (rc == 0) rc = rn_experiment_from_json(j, file, out, e);
    cJSON_Delete(j);
    return rc;
}
