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

typedef struct rn_run_opts {
    int argc;
    char *const *argv; /* recorded in status.json */
    FILE *term;        /* where progress goes (stderr) */
    int tty;           /* term is a terminal */
    /* --resume: continue this run (resume.h) instead of creating one:
     * stages it marks "reuse" keep their outputs, the "continue" one runs
     * with host->resuming() = 1 in its output folder as left. */
    const struct rn_resume *resume;
} rn_run_opts;

/* Returns 0 when every stage succeeded, else the failing code with the
 * cause in e.  *run_dir (malloc'ed; may be NULL) is the run folder when one
 * was created (or resumed), also on failure. */
int rn_run_execute(rn_plan *plan, const rn_run_opts *o, char **run_dir, lm_err *e);

#endif /* RN_RUN_H */
