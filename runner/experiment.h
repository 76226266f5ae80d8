/*
 * experiment.h -- the experiment as declared in its Lua file.
 *
 * rn_experiment_load() runs the Lua bridge on a file and checks the shape
 * of what it returned: the experiment-level keys (name, seed, threads,
 * description, stages; anything else is an error with a suggestion), the
 * stage entries (made by lumen.<stage>{...} or lumen.stage(name, {...})),
 * their ids (unique; default: the stage name).  Stage parameters stay
 * nested JSON here; the planner flattens and validates them against the
 * plugin's table.
 */
#ifndef RN_EXPERIMENT_H
#define RN_EXPERIMENT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"
#include "strv.h"

typedef struct rn_exp_stage {
    char *stage;    /* stage (plugin) name, "normalize-stats" */
    char *id;       /* instance id, unique in the experiment */
    char *file;     /* where lumen.<stage>{} was called */
    int line;
    cJSON *params;  /* nested parameter table (object), owned */
} rn_exp_stage;

/* A sweep (lumen.sweep { ... }): the stages it holds run once per trial
 * (sweep.h).  Its stage entries are appended to the experiment's stages, so
 * stages[first..n) are the sweep's and stages[0..first) run once, before
 * it.  The sweep must be the experiment's last entry. */
typedef struct rn_exp_sweep {
    char *id;      /* "sweep", or its id = "..." */
    char *file;    /* where lumen.sweep { } was called */
    int line;
    cJSON *spec;   /* its parameters without `stages` (owned) */
    size_t first;  /* index of its first stage */
} rn_exp_sweep;

typedef struct rn_experiment {
    char *file;        /* the experiment file as given on the command line */
    int line;          /* line of lumen.experiment { ... } */
    char *name;        /* [A-Za-z0-9_.-]+, not starting with '.' */
    char *description; /* "" when absent */
    uint64_t seed;     /* default 0 */
    int threads;       /* 0 when not given */
    rn_exp_stage *stages;
    size_t n;
    rn_exp_sweep *sweep; /* NULL when the experiment has no sweep */
    cJSON *tracking;     /* `tracking = lumen.mlflow { ... }` (owned), or NULL
                          * (mlflow.h checks it) */
} rn_experiment;

/* Evaluates `file` with the Lua bridge (lua_dirs: module folders) and builds
 * *out (owned; rn_experiment_free).  Errors name file:line: LUMEN_EINVAL,
 * LUMEN_ENOTFOUND, LUMEN_ENOMEM.  *traceback as for rn_lua_eval. */
int rn_experiment_load(const char *file, const rn_strv *lua_dirs, rn_experiment **out, char **traceback,
                       lm_err *e);

/* Builds an experiment from the JSON the bridge returns (exposed for
 * tests).  `file` is the experiment file as given. */
int rn_experiment_from_json(const cJSON *j, const char *file, rn_experiment **out, lm_err *e);

void rn_experiment_free(rn_experiment *x);

/* A deep copy (NULL on OOM). */
rn_experiment *rn_experiment_copy(const rn_experiment *x);
/* A copy of the first n stages only, without the sweep (NULL on OOM). */
rn_experiment *rn_experiment_head(const rn_experiment *x, size_t n);

/* Is s a valid stage id ([A-Za-z0-9_-]+, not "logs")? */
int rn_valid_stage_id(const char *s);

#endif /* RN_EXPERIMENT_H */
