/* sweep.c -- the sweep's spec and its trials' descriptions (see sweep.h).
 * The trial loop is in sweep_run.c, the results table in sweep_results.c. */
#include "sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "jsonutil.h"
#include "suggest.h"

static const char *const SPEC_KEYS[] = {"strategy", "seeds",   "metric", "goal", "space", "trials",
                                        "parallel", "timeout", "prune",  "seed", "executor", "folds",
                                        "score", "groups", "ensemble"};
#define N_SPEC_KEYS (sizeof SPEC_KEYS / sizeof SPEC_KEYS[0])

void rn_sweep_spec_free(rn_sweep_spec *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nd; i++) {
        free(s->dims[i].key);
        cJSON_Delete(s->dims[i].values);
        for (size_t k = 0; s->dims[i].names && k < s->dims[i].dim.n_choices; k++) free(s->dims[i].names[k]);
        free(s->dims[i].names);
    }
    free(s->dims);
    free(s->seeds);
    free(s->metric);
    free(s->prune_metric);
    free(s->id);
    free(s->file);
    free(s->fold_stage);
    free(s->fold_validate);
    for (size_t i = 0; s->score && i < s->n_score; i++) free(s->score[i]);
    free(s->score);
    lm_groups_free(s->groups);
    free(s->groups);
    cJSON_Delete(s->json);
    free(s);
}

int rn_sweep_is_own_set(const rn_experiment *x, const char *set) {
    if (!x->sweep) return 0;
    size_t n = strlen(x->sweep->id);
    return strncmp(set, x->sweep->id, n) == 0 && set[n] == '.';
}

/* "{1,2}", "[1,2]", "1,2" or "1" -> a JSON array of numbers; NULL when
 * something is not a number. */
static cJSON *parse_number_list(const char *text) {
    cJSON *a = cJSON_CreateArray();
    const char *p = text;
    while (a && *p) {
        while (*p == ' ' || *p == '{' || *p == '[' || *p == ',' || *p == '}' || *p == ']') p++;
        if (!*p) break;
        char *end;
        double d = strtod(p, &end);
        if (end == p) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, cJSON_CreateNumber(d));
        p = end;
    }
    return a;
}

/* --set <sweep>.key=value for the spec's scalar keys and seeds. */
static int apply_own_set(cJSON *spec, const char *id, const char *set, lm_err *e) {
    const char *key = set + strlen(id) + 1, *eq = strchr(key, '=');
    if (!eq) return lm_fail(e, LUMEN_EINVAL, "--set %s: expected %s.key=value", set, id);
    char *k = strndup(key, (size_t)(eq - key));
    const char *text = eq + 1;
    if (!k) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON *v = NULL;
    int rc = 0;
    if (strcmp(k, "seeds") == 0) {
        v = parse_number_list(text);
    } else if (!strcmp(k, "trials") || !strcmp(k, "parallel") || !strcmp(k, "timeout") || !strcmp(k, "seed") ||
               !strcmp(k, "folds")) {
        char *end;
        double d = strtod(text, &end);
        if (end != text && !*end) v = cJSON_CreateNumber(d);
    } else if (!strcmp(k, "strategy") || !strcmp(k, "metric") || !strcmp(k, "goal") || !strcmp(k, "groups") ||
               !strcmp(k, "ensemble")) {
        v = cJSON_CreateString(text); /* groups: a file, its default column */
    } else {
        char hint[160];
        static const char *const settable[] = {"strategy", "seeds",   "metric", "goal",  "trials",
                                               "parallel", "timeout", "seed",   "folds", "groups",
                                               "ensemble"};
        rn_suggest_phrase(hint, sizeof hint, k, settable, sizeof settable / sizeof settable[0]);
        rc = lm_fail(e, LUMEN_EINVAL, "--set %s: the sweep's '%s' cannot be set from the command line%s", set, k,
                     hint);
    }
    if (rc == 0 && !v) rc = lm_fail(e, LUMEN_EINVAL, "--set %s: cannot read '%s' as a value of %s", set, text, k);
    if (rc == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, k);
        cJSON_AddItemToObject(spec, k, v);
    }
    free(k);
    return rc;
}

/* A label for a choice value: variant name, or the value's text. */
static char *value_label(const cJSON *v) {
    if (cJSON_IsString(v)) return lm_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        return lm_strdup(rn_num_str(v->valuedouble, buf, sizeof buf));
    }
    return cJSON_PrintUnformatted(v);
}

static int is_sweep_stage(const rn_experiment *x, const char *id) {
    for (size_t i = x->sweep->first; i < x->n; i++)
        if (strcmp(x->stages[i].id, id) == 0) return 1;
    return 0;
}

static int is_upstream_stage(const rn_experiment *x, const char *id) {
    for (size_t i = 0; i < x->sweep->first; i++)
        if (strcmp(x->stages[i].id, id) == 0) return 1;
    return 0;
}

/* One entry of `space`. */
static int read_dim(const rn_experiment *x, const rn_sweep_spec *sp, const cJSON *c, rn_sweep_dim *d, lm_err *e) {
    const char *where = sp->file;
    int line = sp->line;
    d->key = lm_strdup(c->string);
    if (!d->key) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    const char *dot = strchr(c->string, '.');
    if (dot) {
        char *sid = strndup(c->string, (size_t)(dot - c->string));
        int up = sid && is_upstream_stage(x, sid), in = sid && is_sweep_stage(x, sid);
        free(sid);
        if (up)
            return lm_fail(e, LUMEN_EINVAL,
                           "%s:%d: sweep space '%s': that stage runs once before the sweep; only the sweep's own "
                           "stages can vary per trial",
                           where, line, c->string);
        if (!in)
            return lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep space '%s': no stage with that id inside the sweep",
                           where, line, c->string);
    }
    const char *sampler = cJSON_IsString(rn_json_item(c, "__sampler")) ? rn_json_item(c, "__sampler")->valuestring : NULL;
    const cJSON *values = NULL;
    cJSON *owned_names = NULL;
    if (sampler && (!strcmp(sampler, "uniform") || !strcmp(sampler, "loguniform") || !strcmp(sampler, "int"))) {
        if (!dot)
            return lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep space '%s': a %s range needs a stage.key name", where,
                           line, c->string, sampler);
        d->dim.kind = !strcmp(sampler, "uniform") ? RN_DIM_UNIFORM
                      : !strcmp(sampler, "int")   ? RN_DIM_INT
                                                  : RN_DIM_LOGUNIFORM;
        d->dim.lo = rn_json_item(c, "lo") ? rn_json_item(c, "lo")->valuedouble : 0;
        d->dim.hi = rn_json_item(c, "hi") ? rn_json_item(c, "hi")->valuedouble : 0;
        return 0;
    }
    if (sampler && !strcmp(sampler, "choice")) values = rn_json_item(c, "values");
    else if (sampler && !strcmp(sampler, "variants")) {
        values = rn_json_item(c, "values");
        owned_names = cJSON_Duplicate(rn_json_item(c, "names"), 1);
    } else if (cJSON_IsArray(c)) values = c;
    else if (cJSON_IsObject(c) && !sampler && c->child) {
        /* { none = {...}, flips = {...} }: variants in name order */
        cJSON *vals = cJSON_CreateArray();
        owned_names = cJSON_CreateArray();
        for (const cJSON *v = c->child; v; v = v->next) {
            cJSON_AddItemToArray(vals, cJSON_Duplicate(v, 1));
            cJSON_AddItemToArray(owned_names, cJSON_CreateString(v->string));
        }
        d->values = vals;
    } else {
        return lm_fail(e, LUMEN_EINVAL,
                       "%s:%d: sweep space '%s': expected a list of values, lumen.variants {...}, "
                       "lumen.uniform/loguniform/int(lo, hi) or lumen.choice {...}",
                       where, line, c->string);
    }
    if (!d->values) d->values = cJSON_Duplicate(values, 1);
    size_t n = (size_t)cJSON_GetArraySize(d->values);
    if (!d->values || n == 0) {
        cJSON_Delete(owned_names);
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep space '%s': no values", where, line, c->string);
    }
    d->dim.kind = RN_DIM_CHOICE;
    d->dim.n_choices = n;
    d->names = calloc(n, sizeof *d->names);
    if (!d->names) {
        cJSON_Delete(owned_names);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (const cJSON *v = d->values->child; v; v = v->next, k++) {
        const cJSON *nm = owned_names ? cJSON_GetArrayItem(owned_names, (int)k) : NULL;
        d->names[k] = nm ? value_label(nm) : value_label(v);
    }
    cJSON_Delete(owned_names);
    if (!dot) {
        /* variants: a stage's whole table, or settings "stage.key" = value */
        d->stage_table = is_sweep_stage(x, c->string);
        d->settings = !d->stage_table;
        for (const cJSON *v = d->values->child; v; v = v->next) {
            if (!cJSON_IsObject(v))
                return lm_fail(e, LUMEN_EINVAL,
                               "%s:%d: sweep space '%s': each alternative must be a table (%s)", where, line,
                               c->string,
                               d->stage_table ? "the stage's whole parameter table"
                                              : "of \"stage.key\" = value settings; or name a stage inside the "
                                                "sweep, or write stage.key");
            for (const cJSON *s = d->settings ? v->child : NULL; s; s = s->next) {
                const char *sd = strchr(s->string, '.');
                char *sid = sd ? strndup(s->string, (size_t)(sd - s->string)) : NULL;
                int ok = sid && is_sweep_stage(x, sid);
                free(sid);
                if (!ok)
                    return lm_fail(e, LUMEN_EINVAL,
                                   "%s:%d: sweep space '%s': '%s' is not \"stage.key\" of a stage inside the sweep "
                                   "(a variant key without a dot must name a stage inside the sweep)",
                                   where, line, c->string, s->string);
            }
        }
    }
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (strcmp(d->names[a], d->names[b]) == 0)
                return lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep space '%s': '%s' appears twice", where, line,
                               c->string, d->names[a]);
    return 0;
}

static int num_field(const cJSON *spec, const char *k, double dflt, double lo, double hi, int integer, double *out,
                     const rn_sweep_spec *sp, lm_err *e) {
    const cJSON *v = rn_json_item(spec, k);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        (integer && v->valuedouble != floor(v->valuedouble)))
        return lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep '%s' must be %s in [%g, %g]", sp->file, sp->line, k,
                       integer ? "an integer" : "a number", lo, hi);
    *out = v->valuedouble;
    return 0;
}

int rn_sweep_spec_parse(const rn_experiment *x, const rn_strv *sets, int smoke, rn_sweep_spec **out, lm_err *e) {
    *out = NULL;
    double d0;
    rn_sweep_spec *sp = calloc(1, sizeof *sp);
    if (!sp) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    sp->id = lm_strdup(x->sweep->id);
    sp->file = lm_strdup(x->sweep->file);
    sp->line = x->sweep->line;
    cJSON *spec = cJSON_Duplicate(x->sweep->spec, 1);
    int rc = sp->id && sp->file && spec ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && sets && i < sets->n; i++)
        if (rn_sweep_is_own_set(x, sets->v[i])) rc = apply_own_set(spec, x->sweep->id, sets->v[i], e);
    for (const cJSON *c = spec ? spec->child : NULL; rc == 0 && c; c = c->next) {
        int known = 0;
        for (size_t k = 0; k < N_SPEC_KEYS; k++) known |= strcmp(c->string, SPEC_KEYS[k]) == 0;
        if (!known) {
            char hint[128];
            rn_suggest_phrase(hint, sizeof hint, c->string, SPEC_KEYS, N_SPEC_KEYS);
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: unknown sweep key '%s'%s", sp->file, sp->line, c->string, hint);
        }
    }
    if (rc) goto out;
    const cJSON *v = rn_json_item(spec, "strategy");
    const char *strat = cJSON_IsString(v) ? v->valuestring : v ? "" : "grid";
    sp->strategy = !strcmp(strat, "grid") ? RN_SWEEP_GRID : !strcmp(strat, "random") ? RN_SWEEP_RANDOM
                   : !strcmp(strat, "tpe")                 ? RN_SWEEP_TPE
                                                           : 0;
    if (!sp->strategy) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep strategy must be \"grid\", \"random\" or \"tpe\"", sp->file,
                     sp->line);
        goto out;
    }
    v = rn_json_item(spec, "metric");
    if (v && !cJSON_IsString(v)) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep metric must be a metric name such as \"val/f1_mean\"",
                     sp->file, sp->line);
        goto out;
    }
    sp->metric = lm_strdup(v ? v->valuestring : "val/f1_mean_tuned_cv");
    v = rn_json_item(spec, "goal");
    const char *goal = cJSON_IsString(v) ? v->valuestring : v ? "" : "max";
    if (strcmp(goal, "max") && strcmp(goal, "min")) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep goal must be \"max\" or \"min\"", sp->file, sp->line);
        goto out;
    }
    sp->maximize = strcmp(goal, "max") == 0;
    /* seeds */
    v = rn_json_item(spec, "seeds");
    if (v && (!cJSON_IsArray(v) || !v->child)) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep seeds must be a non-empty list of integers", sp->file,
                     sp->line);
        goto out;
    }
    sp->n_seeds = v ? (size_t)cJSON_GetArraySize(v) : 1;
    sp->seeds = calloc(sp->n_seeds, sizeof *sp->seeds);
    if (!sp->seeds || !sp->metric) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (!v) sp->seeds[0] = x->seed;
    size_t k = 0;
    for (const cJSON *s = v ? v->child : NULL; s; s = s->next, k++) {
        if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble != floor(s->valuedouble) ||
            s->valuedouble > 9007199254740992.0) {
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep seeds[%zu] must be a non-negative integer", sp->file,
                         sp->line, k + 1);
            goto out;
        }
        sp->seeds[k] = (uint64_t)s->valuedouble;
        for (size_t j = 0; j < k; j++)
            if (sp->seeds[j] == sp->seeds[k]) {
                rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep seeds: %llu appears twice", sp->file, sp->line,
                             (unsigned long long)sp->seeds[k]);
                goto out;
            }
    }
    /* folds (lumen.crossval) */
    if ((rc = num_field(spec, "folds", 0, 0, 16, 1, &d0, sp, e))) goto out;
    sp->folds = (int)d0;
    if (sp->folds == 1) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: crossval folds must be 2 .. 16", sp->file, sp->line);
        goto out;
    }
    if (sp->folds >= 2) {
        for (size_t i = x->sweep->first; i < x->n && !sp->fold_stage; i++)
            if (strcmp(x->stages[i].stage, "ingest") == 0) sp->fold_stage = lm_strdup(x->stages[i].id);
        if (!sp->fold_stage) {
            rc = lm_fail(e, LUMEN_EINVAL,
                         "%s:%d: crossval needs its ingest stage inside it (stages = { lumen.ingest {...}, "
                         "... }): each fold is its own split",
                         sp->file, sp->line);
            goto out;
        }
        for (size_t i = x->sweep->first; i < x->n; i++) {
            if (strcmp(x->stages[i].stage, "validate") != 0) continue;
            const cJSON *ck = rn_json_item(x->stages[i].params, "checkpoint");
            if (cJSON_IsString(ck) && strcmp(ck->valuestring, "last") != 0) {
                rc = lm_fail(e, LUMEN_EINVAL,
                             "%s:%d: %s.checkpoint = \"%s\" inside crossval: the best epoch would be chosen "
                             "on the fold being scored; crossval scores each fold's last epoch (leave "
                             "checkpoint unset or \"last\")",
                             x->stages[i].file, x->stages[i].line, x->stages[i].id, ck->valuestring);
                goto out;
            }
            free(sp->fold_validate);
            sp->fold_validate = lm_strdup(x->stages[i].id);
        }
    }
    /* score (lumen.crossval): a subset of the labels */
    v = rn_json_item(spec, "score");
    if (v && sp->folds < 2) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: score is lumen.crossval's (the labels its summaries average)",
                     sp->file, sp->line);
        goto out;
    }
    if (v) {
        int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
        if (n < 1 || !(sp->score = calloc((size_t)n, sizeof *sp->score))) {
            rc = n < 1 ? lm_fail(e, LUMEN_EINVAL, "%s:%d: crossval score must be a non-empty list of label names",
                                 sp->file, sp->line)
                       : lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        for (const cJSON *s = v->child; s; s = s->next) {
            if (!cJSON_IsString(s) || !*s->valuestring) {
                rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: crossval score[%zu] must be a label name", sp->file, sp->line,
                             sp->n_score + 1);
                goto out;
            }
            for (size_t j = 0; j < sp->n_score; j++)
                if (strcmp(sp->score[j], s->valuestring) == 0) {
                    rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: crossval score: '%s' appears twice", sp->file, sp->line,
                                 s->valuestring);
                    goto out;
                }
            if (!(sp->score[sp->n_score++] = lm_strdup(s->valuestring))) {
                rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    /* groups (lumen.crossval): a per-group breakdown */
    v = rn_json_item(spec, "groups");
    if (v && sp->folds < 2) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: groups is lumen.crossval's (a per-group breakdown of its scores)",
                     sp->file, sp->line);
        goto out;
    }
    if (v) {
        const cJSON *file = cJSON_IsString(v) ? v : rn_json_item(v, "file");
        const cJSON *col = cJSON_IsObject(v) ? rn_json_item(v, "column") : NULL;
        for (const cJSON *q = cJSON_IsObject(v) ? v->child : NULL; q; q = q->next)
            if (strcmp(q->string, "file") != 0 && strcmp(q->string, "column") != 0) {
                rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: crossval groups: unknown key '%s' (file, column)", sp->file,
                             sp->line, q->string);
                goto out;
            }
        if (!cJSON_IsString(file) || !*file->valuestring || (col && (!cJSON_IsString(col) || !*col->valuestring))) {
            rc = lm_fail(e, LUMEN_EINVAL,
                         "%s:%d: crossval groups must be a label file's path or { file = path, column = name }",
                         sp->file, sp->line);
            goto out;
        }
        if (!(sp->groups = calloc(1, sizeof *sp->groups))) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        lm_err ge = {0};
        int grc = lm_groups_load(file->valuestring, col ? col->valuestring : NULL, sp->groups, &ge);
        if (grc) {
            rc = lm_fail(e, grc, "%s:%d: crossval groups: %s", sp->file, sp->line, ge.msg);
            goto out;
        }
    }
    /* ensemble (lumen.crossval): which fold models <run>/ensemble.json holds */
    v = rn_json_item(spec, "ensemble");
    if (v && sp->folds < 2) {
        rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: ensemble is lumen.crossval's (which fold models its ensemble.json holds)",
                     sp->file, sp->line);
        goto out;
    }
    if (v && !(cJSON_IsString(v) && (!strcmp(v->valuestring, "best") || !strcmp(v->valuestring, "all")))) {
        char *t = cJSON_PrintUnformatted(v);
        rc = lm_fail(e, LUMEN_EINVAL,
                     "%s:%d: crossval ensemble must be \"best\" (the best configuration's fold models) or \"all\" "
                     "(every configuration's, averaged as one predictor), got %s",
                     sp->file, sp->line, t ? t : "?");
        free(t);
        goto out;
    }
    sp->ensemble_all = v && !strcmp(v->valuestring, "all");
    /* space */
    v = rn_json_item(spec, "space");
    if (sp->folds >= 2 && !v) {
        /* one configuration: the recipe as written */
    } else if (!cJSON_IsObject(v) || !v->child) {
        rc = lm_fail(e, LUMEN_EINVAL,
                     "%s:%d: sweep needs space = { [\"stage.key\"] = { values... }, ... } (at least one entry)",
                     sp->file, sp->line);
        goto out;
    }
    sp->nd = 0;
    sp->dims = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *sp->dims);
    if (!sp->dims) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (const cJSON *c = v ? v->child : NULL; c && rc == 0; c = c->next)
        rc = read_dim(x, sp, c, &sp->dims[sp->nd++], e);
    if (rc) goto out;
    rn_dim *shape = calloc(sp->nd, sizeof *shape);
    if (!shape) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < sp->nd; i++) shape[i] = sp->dims[i].dim;
    size_t grid = rn_grid_size(shape, sp->nd);
    free(shape);
    double d;
    if (sp->strategy == RN_SWEEP_GRID) {
        if (!grid) {
            rc = lm_fail(e, LUMEN_EINVAL,
                         "%s:%d: strategy \"grid\" needs lists of values; uniform/loguniform/int ranges need "
                         "strategy \"random\" or \"tpe\"",
                         sp->file, sp->line);
            goto out;
        }
        if (rn_json_item(spec, "trials")) {
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep 'trials' bounds random and tpe; a grid runs all %zu", sp->file,
                         sp->line, grid);
            goto out;
        }
        sp->n_configs = grid;
    } else {
        if ((rc = num_field(spec, "trials", 20, 1, 100000, 1, &d, sp, e))) goto out;
        sp->n_configs = (size_t)d;
    }
    if ((rc = num_field(spec, "parallel", 1, 1, 256, 1, &d, sp, e))) goto out;
    sp->parallel = (int)d;
    if ((rc = num_field(spec, "timeout", 0, 0, 1e7, 0, &sp->timeout, sp, e))) goto out;
    if ((rc = num_field(spec, "seed", (double)x->seed, 0, 9007199254740992.0, 1, &d, sp, e))) goto out;
    sp->search_seed = (uint64_t)d;
    /* where trials run (executor.h) */
    if ((rc = rn_executor_check_spec(rn_json_item(spec, "executor"), sp->file, sp->line, e))) goto out;
    /* pruning */
    v = rn_json_item(spec, "prune");
    if (v) {
        const char *kind = cJSON_IsString(rn_json_item(v, "kind")) ? rn_json_item(v, "kind")->valuestring : "";
        sp->prune = !strcmp(kind, "asha") ? RN_PRUNE_ASHA : !strcmp(kind, "median") ? RN_PRUNE_MEDIAN : 0;
        if (!sp->prune) {
            rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep prune must be lumen.asha { ... } or lumen.median { ... }",
                         sp->file, sp->line);
            goto out;
        }
        for (const cJSON *c = v->child; c; c = c->next) {
            int ok = !strcmp(c->string, "kind") || !strcmp(c->string, "metric") ||
                     !strcmp(c->string, "min_epochs") ||
                     (sp->prune == RN_PRUNE_ASHA ? !strcmp(c->string, "reduction") : !strcmp(c->string, "min_trials"));
            if (!ok) {
                rc = lm_fail(e, LUMEN_EINVAL, "%s:%d: sweep prune: unknown key '%s' for lumen.%s (known: metric, "
                             "min_epochs, %s)", sp->file, sp->line, c->string, kind,
                             sp->prune == RN_PRUNE_ASHA ? "reduction" : "min_trials");
                goto out;
            }
        }
        const cJSON *pm = rn_json_item(v, "metric");
        sp->prune_metric = lm_strdup(cJSON_IsString(pm) ? pm->valuestring : "val/f1_mean");
        double me, r;
        if ((rc = num_field(v, "min_epochs", 1, 1, 1e6, 1, &me, sp, e))) goto out;
        if (sp->prune == RN_PRUNE_ASHA) {
            if ((rc = num_field(v, "reduction", 3, 2, 1000, 1, &r, sp, e))) goto out;
            sp->asha = (rn_asha){.min_epochs = (int)me, .reduction = (int)r};
        } else {
            if ((rc = num_field(v, "min_trials", 3, 1, 1e6, 1, &r, sp, e))) goto out;
            sp->median = (rn_median){.min_epochs = (int)me, .min_trials = (size_t)r};
        }
    }
    if (smoke) {
        if (sp->n_configs > 2) sp->n_configs = 2;
        if (sp->n_seeds > 2) sp->n_seeds = 2;
        if (sp->folds > 3) sp->folds = 3;
    }
    sp->json = spec;
    spec = NULL;
out:
    cJSON_Delete(spec);
    if (rc) rn_sweep_spec_free(sp);
    else *out = sp;
    return rc;
}

/* --set text of a JSON value, as rn_param_parse reads it back. */
static char *set_text(const cJSON *v) {
    if (cJSON_IsString(v)) return lm_strdup(v->valuestring);
    if (cJSON_IsBool(v)) return lm_strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
            return lm_sprintf("%.0f", v->valuedouble);
        return lm_sprintf("%.17g", v->valuedouble);
    }
    return cJSON_PrintUnformatted(v);
}

static int add_set(cJSON *sets, const char *key, const cJSON *v) {
    char *t = set_text(v);
    char *s = t ? lm_sprintf("%s=%s", key, t) : NULL;
    free(t);
    if (!s) return LUMEN_ENOMEM;
    cJSON_AddItemToArray(sets, cJSON_CreateString(s));
    free(s);
    return 0;
}

cJSON *rn_sweep_trial_desc(const rn_sweep_spec *sp, const rn_experiment *x, const double *point, uint64_t seed,
                           const rn_strv *user_sets) {
    cJSON *d = cJSON_CreateObject();
    cJSON *sets = cJSON_AddArrayToObject(d, "sets");
    cJSON *tables = cJSON_AddObjectToObject(d, "tables");
    cJSON *labels = cJSON_AddObjectToObject(d, "labels");
    if (!d || !sets || !tables || !labels) goto oom;
    cJSON_AddNumberToObject(d, "seed", (double)seed);
    cJSON_AddNumberToObject(d, "first", (double)x->sweep->first);
    for (size_t i = 0; user_sets && i < user_sets->n; i++)
        if (!rn_sweep_is_own_set(x, user_sets->v[i])) cJSON_AddItemToArray(sets, cJSON_CreateString(user_sets->v[i]));
    for (size_t i = 0; i < sp->nd; i++) {
        const rn_sweep_dim *dm = &sp->dims[i];
        if (dm->dim.kind == RN_DIM_CHOICE) {
            size_t k = (size_t)point[i];
            const cJSON *v = cJSON_GetArrayItem(dm->values, (int)k);
            cJSON_AddStringToObject(labels, dm->key, dm->names[k]);
            if (dm->stage_table) {
                cJSON_AddItemToObject(tables, dm->key, cJSON_Duplicate(v, 1));
            } else if (dm->settings) {
                for (const cJSON *s = v->child; s; s = s->next)
                    if (add_set(sets, s->string, s)) goto oom;
            } else if (add_set(sets, dm->key, v)) {
                goto oom;
            }
        } else {
            cJSON *num = cJSON_CreateNumber(dm->dim.kind == RN_DIM_INT ? floor(point[i] + 0.5) : point[i]);
            int rc = num ? add_set(sets, dm->key, num) : LUMEN_ENOMEM;
            if (num) cJSON_AddItemToObject(labels, dm->key, num);
            if (rc) goto oom;
        }
    }
    return d;
oom:
    cJSON_Delete(d);
    return NULL;
}

size_t rn_sweep_reps(const rn_sweep_spec *sp) { return sp->n_seeds * (size_t)(sp->folds >= 2 ? sp->folds : 1); }

cJSON *rn_sweep_trial_desc_rep(const rn_sweep_spec *sp, const rn_experiment *x, const double *point,
                               size_t rep, const rn_strv *user_sets) {
    cJSON *d = rn_sweep_trial_desc(sp, x, point, sp->seeds[rep % sp->n_seeds], user_sets);
    if (!d || sp->folds < 2) return d;
    cJSON *sets = cJSON_GetObjectItemCaseSensitive(d, "sets");
    char *a = lm_sprintf("%s.split.folds=%d", sp->fold_stage, sp->folds);
    char *b = lm_sprintf("%s.split.fold=%zu", sp->fold_stage, rep / sp->n_seeds);
    char *c = sp->fold_validate ? lm_sprintf("%s.checkpoint=last", sp->fold_validate) : NULL;
    int ok = a && b && (!sp->fold_validate || c) && cJSON_AddItemToArray(sets, cJSON_CreateString(a)) &&
             cJSON_AddItemToArray(sets, cJSON_CreateString(b)) &&
             (!c || cJSON_AddItemToArray(sets, cJSON_CreateString(c))) &&
             cJSON_AddNumberToObject(d, "fold", (double)(rep / sp->n_seeds));
    free(a);
    free(b);
    free(c);
    if (ok) return d;
    cJSON_Delete(d);
    return NULL;
}

#define UPSTREAM_MARK "${sweep_run}"

/* s with every UPSTREAM_MARK replaced by dir (malloc'ed). */
static char *subst(const char *s, const char *dir) {
    size_t n = 0, lm = strlen(UPSTREAM_MARK), ld = strlen(dir);
    for (const char *p = strstr(s, UPSTREAM_MARK); p; p = strstr(p + lm, UPSTREAM_MARK)) n++;
    char *out = malloc(strlen(s) + n * ld + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = s;;) {
        const char *q = strstr(p, UPSTREAM_MARK);
        size_t k = q ? (size_t)(q - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!q) break;
        memcpy(o, dir, ld);
        o += ld;
        p = q + lm;
    }
    *o = 0;
    return out;
}

/* lumen.upstream(...) strings in a replaced stage table. */
static int subst_tree(cJSON *v, const char *dir) {
    for (cJSON *c = v ? v->child : NULL; c; c = c->next) {
        if (cJSON_IsString(c) && strstr(c->valuestring, UPSTREAM_MARK)) {
            char *r = subst(c->valuestring, dir);
            if (!r) return LUMEN_ENOMEM;
            cJSON_SetValuestring(c, r);
            free(r);
        } else if (subst_tree(c, dir)) {
            return LUMEN_ENOMEM;
        }
    }
    return 0;
}

int rn_sweep_trial_apply(const cJSON *desc, rn_experiment *x, rn_strv *sets, lm_err *e) {
    const cJSON *seed = rn_json_item(desc, "seed"), *ss = rn_json_item(desc, "sets"), *tables = rn_json_item(desc, "tables");
    const cJSON *sr = rn_json_item(desc, "sweep_run");
    const char *dir = cJSON_IsString(sr) ? sr->valuestring : NULL; /* NULL while planning the sweep */
    if (!cJSON_IsNumber(seed) || !cJSON_IsArray(ss) || !cJSON_IsObject(tables))
        return lm_fail(e, LUMEN_EDATA, "trial.json: expected \"seed\", \"sets\" and \"tables\"");
    x->seed = (uint64_t)seed->valuedouble;
    for (const cJSON *s = ss->child; s; s = s->next) {
        if (!cJSON_IsString(s)) return lm_fail(e, LUMEN_EDATA, "trial.json: \"sets\" must hold strings");
        char *v = dir ? subst(s->valuestring, dir) : lm_strdup(s->valuestring);
        if (!v || rn_strv_take(sets, v)) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    for (const cJSON *t = tables->child; t; t = t->next) {
        size_t i = 0;
        while (i < x->n && strcmp(x->stages[i].id, t->string) != 0) i++;
        if (i == x->n) return lm_fail(e, LUMEN_EDATA, "trial.json: no stage '%s' in the experiment", t->string);
        cJSON *p = cJSON_Duplicate(t, 1);
        if (!p || (dir && subst_tree(p, dir))) {
            cJSON_Delete(p);
            return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        }
        cJSON_Delete(x->stages[i].params);
        x->stages[i].params = p;
    }
    return 0;
}

/* Plans the trial of one configuration; errors say which configuration. */
static int validate_point(const rn_sweep_spec *sp, const rn_registry *reg, const rn_experiment *x,
                          const rn_plan_opts *po, const double *point, rn_plan **keep, lm_err *e) {
    cJSON *desc = rn_sweep_trial_desc_rep(sp, x, point, 0, po->sets);
    rn_experiment *tx = desc ? rn_experiment_copy(x) : NULL;
    rn_strv sets = {0};
    rn_plan *plan = NULL;
    int rc = tx ? rn_sweep_trial_apply(desc, tx, &sets, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) {
        rn_plan_opts o = *po;
        o.sets = &sets;
        rc = rn_plan_build(reg, tx, &o, &plan, e);
        if (rc && rc != LUMEN_ENOMEM) {
            char *labels = cJSON_PrintUnformatted(rn_json_item(desc, "labels"));
            char msg[sizeof e->msg];
            snprintf(msg, sizeof msg, "%s", e->msg);
            lm_err_clear(e);
            rc = lm_fail(e, rc, "%s:%d: sweep configuration %s: %s", sp->file, sp->line, labels ? labels : "?",
                         msg);
            free(labels);
        }
    }
    if (rc == 0 && keep) *keep = plan;
    else rn_plan_free(plan);
    rn_strv_free(&sets);
    rn_experiment_free(tx);
    cJSON_Delete(desc);
    return rc;
}

int rn_sweep_validate(const rn_sweep_spec *sp, const rn_registry *reg, const rn_experiment *x,
                      const rn_plan_opts *po, rn_plan **first, lm_err *e) {
    if (first) *first = NULL;
    rn_dim *shape = calloc(sp->nd + 1, sizeof *shape);
    double *pt = calloc(sp->nd + 1, sizeof *pt);
    int rc = shape && pt ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    size_t n = 2;
    for (size_t i = 0; rc == 0 && i < sp->nd; i++) {
        shape[i] = sp->dims[i].dim;
        if (shape[i].kind == RN_DIM_CHOICE && shape[i].n_choices > n) n = shape[i].n_choices;
    }
    if (sp->strategy == RN_SWEEP_GRID) n = sp->n_configs;
    for (size_t c = 0; rc == 0 && c < n; c++) {
        if (sp->strategy == RN_SWEEP_GRID) {
            rn_grid_point(shape, sp->nd, c, pt);
        } else {
            rn_random_point(shape, sp->nd, sp->search_seed, c, pt);
            for (size_t i = 0; i < sp->nd; i++)
                if (shape[i].kind == RN_DIM_CHOICE) pt[i] = (double)(c % shape[i].n_choices);
        }
        rc = validate_point(sp, reg, x, po, pt, c == 0 ? first : NULL, e);
    }
    free(shape);
    free(pt);
    return rc;
}
