/*
 * run.h -- executing a plan: one run of an experiment.
 *
 * rn_run_execute() creates the run folder (store.h), announces the run to
 * the trackers, writes config.json, then runs the stages in order: a cached
 * stage with a complete entry is reused (unless plan->force); anything else
 * runs in its own process (exec.h), a cacheable stage writing into a fresh
 * cache tmp folder that is published when it succeeds (cache.h).  The first
 * failure stops the run.  The run ends with status.json "finished" or
 * "failed" and the reason, and config.json rewritten with the actual cache
 * hits.  Progress lines go to o->term.
 */
#ifndef RN_RUN_H
#define RN_RUN_H

#include <stdio.h>

#include "lm_util.h"
#include "plan.h"

struct rn_resume; /* resume.h */

/* What the part of a run after its stages (a sweep) gets. */
typedef struct rn_run_env {
    const char *run_dir;       /* the run's folder */
    struct rn_trackers *trackers;
    char *const *base;         /* per plan stage: the folder holding its artifact folders */
} rn_run_env;

typedef struct rn_run_opts {
    int argc;
    char *const *argv; /* recorded in status.json */
    FILE *term;        /* where progress goes (stderr) */
    int tty;           /* term is a terminal */
    /* --resume: continue this run (resume.h) instead of creating one:
     * stages it marks "reuse" keep their outputs, the "continue" one runs
     * with host->resuming() = 1 in its output folder as left. */
    const struct rn_resume *resume;
    /* A sweep trial: the run is created in run_at (id run_at_id) instead of
     * under runs/<experiment>/, and stages[0..n_upstream) are not run: they
     * ran once in the sweep's run folder upstream_dir, whose outputs
     * (upstream_dir/<stage-id>) feed the trial's stages. */
    const char *run_at, *run_at_id;
    const char *upstream_dir;
    size_t n_upstream;
    /* Called after the stages succeeded, as part of the run (the sweep,
     * recorded as stage tail_id); its failure fails the run. */
    int (*tail)(void *arg, const rn_run_env *env, lm_err *e);
    void *tail_arg;
    const char *tail_id;
    /* The MLflow tracker's configuration (mlflow.h); NULL or uri NULL: off. */
    const struct rn_mlflow_conf *mlflow;
} rn_run_opts;

/* Returns 0 when every stage succeeded, else the failing code with the
 * cause in e.  *run_dir (malloc'ed; may be NULL) is the run folder when one
 * was created (or resumed), also on failure. */
int rn_run_execute(rn_plan *plan, const rn_run_opts *o, char **run_dir, lm_err *e);

#endif /* RN_RUN_H */
