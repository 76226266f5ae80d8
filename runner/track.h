/*
 * track.h -- the tracker interface: where a run's events go.
 *
 * A tracker is a vtable plus its state.  The runner sends every tracker the
 * same events, in this order:
 *
 *   run_started   once: experiment, run id and folder, argv, and the flat
 *                 parameters of every stage ({"ingest.size": 300, ...})
 *                 (again, with `resumed` set, when --resume continues it)
 *   stage_status  per stage: "running", then "finished" / "failed", or
 *                 "cached" for a reused stage (detail: the cache entry or
 *                 the failure message)
 *   metric        any number, from stages (key, value, step, wall time)
 *   summary       any number: the latest value per key wins
 *   run_ended     once: "finished" or "failed" plus the reason
 *
 * The local run store (store.h) is the first tracker; the MLflow tracker
 * (mlflow.h) implements the same ops, spooling every event to the run
 * folder and posting from a sender process.  A tracker reports failures
 * through its return value; the runner records the first one as the stage's or run's failure,
 * so a tracker that must not fail a run (a remote server being down)
 * should spool and return 0.  Trackers are called from the runner's main
 * thread only, and start no thread in the runner: the runner forks a
 * process for every stage, and a fork while another thread holds a lock
 * leaves that lock held in the stage's process (a tracker that must work
 * in the background forks a process of its own, as mlflow.c does).
 */
#ifndef RN_TRACK_H
#define RN_TRACK_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"

typedef struct rn_run_info {
    const char *experiment;  /* experiment name */
    const char *run_id;      /* e.g. "20261129-193012-517" */
    const char *run_dir;     /* absolute runs/<experiment>/<run> */
    const char *exp_file;    /* experiment file as given */
    double started;          /* epoch seconds */
    int argc;
    char *const *argv;       /* the runner's command line */
    int resumed;             /* an interrupted run continues (--resume):
                              * the trackers already know it */
    const char *prev_status; /* resumed: how the last attempt ended
                              * ("failed", "killed", ...) */
    const char *parent_dir;  /* a sweep trial: the sweep's run folder;
                              * NULL otherwise */
} rn_run_info;

typedef struct rn_tracker_ops {
    const char *name; /* "local", "mlflow", ... */
    int (*run_started)(void *self, const rn_run_info *run, const cJSON *params, lm_err *e);
    int (*metric)(void *self, const char *stage_id, const char *key, double value, int64_t step, double time,
                  lm_err *e);
    int (*summary)(void *self, const char *key, const cJSON *value, lm_err *e);
    int (*stage_status)(void *self, const char *stage_id, const char *status, const char *detail, lm_err *e);
    int (*run_ended)(void *self, const char *status, const char *reason, double ended, lm_err *e);
    /* Frees self; NULL when the tracker list does not own it. */
    void (*destroy)(void *self);
} rn_tracker_ops;

typedef struct rn_tracker {
    const rn_tracker_ops *ops;
    void *self;
} rn_tracker;

typedef struct rn_trackers {
    rn_tracker *v;
    size_t n;
} rn_trackers;

/* Adds a tracker; the list owns self when ops->destroy is set.  0 or
 * LUMEN_ENOMEM. */
int rn_trackers_add(rn_trackers *t, const rn_tracker_ops *ops, void *self);
/* Destroys owned trackers and the list (t may be NULL). */
void rn_trackers_free(rn_trackers *t);

/* Broadcasts: every tracker gets the event even when an earlier one fails;
 * the first failure is returned (message in e, prefixed with the tracker's
 * name). */
int rn_track_run_started(rn_trackers *t, const rn_run_info *run, const cJSON *params, lm_err *e);
int rn_track_metric(rn_trackers *t, const char *stage_id, const char *key, double value, int64_t step,
                    double time, lm_err *e);
int rn_track_summary(rn_trackers *t, const char *key, const cJSON *value, lm_err *e);
int rn_track_stage_status(rn_trackers *t, const char *stage_id, const char *status, const char *detail,
                          lm_err *e);
int rn_track_run_ended(rn_trackers *t, const char *status, const char *reason, double ended, lm_err *e);

#endif /* RN_TRACK_H */
