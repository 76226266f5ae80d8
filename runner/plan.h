/*
 * plan.h -- from a declared experiment to an executable plan.
 *
 * rn_plan_build() resolves every stage entry to a loaded plugin, flattens
 * and validates its parameters (stage_params.h), applies --set overrides, resolves
 * each declared input artifact to the nearest EARLIER stage that declares
 * it as output, calls the plugins' check() and key() callbacks in-process,
 * and computes the cache key of every cacheable stage (cachekey.h).  A
 * cacheable stage fed by a stage that is not cached is not cached either.
 *
 * Every error names where it comes from: "<file>:<line>: stage '<id>': ..."
 * for things written in the experiment, "--set <arg>: ..." for overrides.
 */
#ifndef RN_PLAN_H
#define RN_PLAN_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include <lumen/plugin.h>

#include "cache.h"
#include "cachekey.h"
#include "experiment.h"
#include "plugin_loader.h"
#include "lm_util.h"
#include "strv.h"

typedef struct rn_plan_input {
    char *artifact; /* declared name without '?' */
    int optional;
    long producer;  /* index of the producing stage, -1 when absent */
} rn_plan_input;

typedef struct rn_plan_stage {
    char *id;                 /* instance id */
    const lumen_stage *desc;  /* plugin descriptor (registry-owned) */
    const char *plugin;       /* plugin file (registry-owned) */
    char *file;               /* where the experiment declares it */
    int line;
    cJSON *params;            /* resolved flat parameters, keys sorted */
    rn_plan_input *inputs;    /* one per declared input */
    size_t n_inputs;
    int cached;               /* outputs live in the cache */
    char *nocache;            /* why not cached (NULL when cached) */
    char key[RN_KEY_HEX];     /* cache key ("" when not cached) */
    int hit;                  /* a complete entry exists (updated by the run) */
} rn_plan_stage;

typedef struct rn_plan {
    char *file;         /* experiment file as given */
    char *name;
    char *description;
    uint64_t seed;
    int threads;        /* --threads, else the experiment's, else #cpus */
    int smoke;
    int force;
    char *cwd;          /* the runner's starting folder */
    char *runs_dir;     /* absolute */
    rn_plan_stage *stages;
    size_t n;
} rn_plan;

typedef struct rn_plan_opts {
    const char *cwd;
    const char *runs_dir;  /* absolute */
    const rn_strv *sets;   /* "stage.key=value" (may be NULL) */
    int smoke;
    int force;
    int threads;           /* 0: not given on the command line */
} rn_plan_opts;

/* Builds *out (owned; rn_plan_free).  Errors: LUMEN_EINVAL (the message
 * names file:line, stage and key, or the --set argument), LUMEN_ENOTFOUND
 * (unknown stage, refused plugin), LUMEN_ENOMEM; or a code returned by a
 * plugin's check()/key(). */
int rn_plan_build(const rn_registry *reg, const rn_experiment *x, const rn_plan_opts *o, rn_plan **out,
                  lm_err *e);

/* The plan as JSON (the body of config.json): experiment, flags and every
 * stage with plugin, version, declaration site, resolved params, inputs
 * with producers, outputs and cache key/status.  Owned by the caller. */
cJSON *rn_plan_json(const rn_plan *p);

/* Where the stage's cache entry lives (malloc'ed) -- only for cached
 * stages; NULL otherwise or on OOM. */
char *rn_plan_cache_dir(const rn_plan *p, size_t i);

void rn_plan_free(rn_plan *p);

#endif /* RN_PLAN_H */
