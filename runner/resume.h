/*
 * resume.h -- continuing an interrupted run: `runner EXP.lua --resume RUN`.
 *
 * rn_resume_open() finds the run folder (RUN is a path to it, or a run id
 * under <runs>/<experiment>/), refuses a run that finished (unless the
 * experiment has a sweep, has_sweep: a finished sweep is re-scored -- its
 * stages are reused, its ended trials kept and nothing trained again, and
 * its results are computed anew, e.g. with crossval groups added) or whose
 * runner is still alive, and checks that the plan matches the run's config.json:
 * experiment name, seed, --smoke, the stage list (ids, stage names,
 * versions) and every resolved parameter -- the first difference is an
 * error naming it ("--resume 2026...: train.epochs is 3 in the run's
 * config.json but 5 now").  A different thread count is allowed (with a
 * warning: results are then not bitwise those of an uninterrupted run).
 *
 * Then it decides, per stage, from the run's status.json:
 *   RN_RESUME_REUSE     not cacheable and "finished" in the run: its output
 *                       folder (runs/<exp>/<run>/<id>/) is used as is;
 *   RN_RESUME_CONTINUE  not cacheable and started but not finished (the
 *                       interrupted stage): it runs again with
 *                       host->resuming() = 1 and its output folder as the
 *                       interrupted attempt left it;
 *   RN_RESUME_RUN       everything else: cacheable stages go through the
 *                       cache as in any run (a complete entry is reused),
 *                       stages that never started run normally.
 * The run records the resume in status.json ("attempts", store.h).
 */
#ifndef RN_RESUME_H
#define RN_RESUME_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "lm_util.h"
#include "plan.h"

enum { RN_RESUME_RUN = 0, RN_RESUME_REUSE = 1, RN_RESUME_CONTINUE = 2 };

typedef struct rn_resume {
    char *run_dir;         /* absolute runs/<exp>/<run> */
    char *run_id;          /* its last path component */
    char *prev_status;     /* the run's effective status: failed, killed, running,
                            * finished (a sweep, re-scored) */
    int *action;           /* [plan->n] RN_RESUME_* */
    size_t n;
} rn_resume;

/* Opens RUN for resuming plan p.  Warnings (thread count) go to `warn`
 * (may be NULL).  *out is owned by the caller (rn_resume_free).  Errors:
 * LUMEN_ENOTFOUND (no such run), LUMEN_EINVAL (finished, still running,
 * or a mismatch -- the message names the key), LUMEN_EDATA (unreadable
 * config/status), LUMEN_ENOMEM. */
int rn_resume_open(const rn_plan *p, const char *run, int has_sweep, FILE *warn, rn_resume **out, lm_err *e);
void rn_resume_free(rn_resume *r);

/* A resumed sweep's check of the stages inside it: trial_plan against the
 * "stages" list its sweep.json recorded (rn_plan_json's shape).  0, or
 * LUMEN_EINVAL naming the first difference ("--resume RUN: the trials'
 * train.epochs is 30 in the run but 40 now ..."). */
int rn_resume_check_trial_stages(const rn_plan *trial_plan, const cJSON *stages, const char *run, lm_err *e);

#endif /* RN_RESUME_H */
