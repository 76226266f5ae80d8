/*
 * mlflow.h -- the MLflow tracker: a run's events go to an MLflow tracking
 * server (REST API /api/2.0/mlflow), beside the local store.
 *
 * Turned on by `tracking = lumen.mlflow { uri = "http://...", experiment =
 * "..." }` in the experiment, or by LUMEN_TRACKING_URI / MLFLOW_TRACKING_URI
 * (and MLFLOW_EXPERIMENT_NAME) in the environment; LUMEN_TRACKING_URI=off
 * turns it off.  The MLflow experiment defaults to the lumen experiment's
 * name.
 *
 * Every event is first appended to the run folder's spool
 * (<run>/mlflow/spool.jsonl, mlflow_send.h), fsync'ed at stage ends and at
 * the run's end; a sender process, forked at the run's start, posts from
 * the spool, so the training process and the runner's main loop never
 * wait for the server (a process, not a thread: the runner must stay
 * single-threaded to fork its stages safely; it dies with the runner,
 * PR_SET_PDEATHSIG).  At the
 * run's end the sender gets LUMEN_TRACKING_DRAIN seconds (default 10) to
 * finish (a server that does not answer gets two more tries, not all of
 * it); what is left stays in the spool and one line says so.  `runner
 * sync` (rn_mlflow_sync) sends it later; nothing is sent twice.
 *
 * A sweep trial (rn_run_info.parent_dir) is a child run of the sweep's
 * run (tag mlflow.parentRunId).  At the end, config.json, results.csv,
 * best/best.safetensors (a sweep's), the stages' report/ files and
 * model/best.safetensors are uploaded as
 * artifacts when the server serves them (mlflow-artifacts).
 *
 * The tracker never fails a run because of the server.  Credentials come
 * from the environment only (mlflow_http.h) and are never written.
 */
#ifndef RN_MLFLOW_H
#define RN_MLFLOW_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "lm_util.h"
#include "track.h"

typedef struct rn_mlflow_conf {
    char *uri;        /* NULL: tracking is off */
    char *experiment; /* MLflow experiment name */
} rn_mlflow_conf;

/* Resolves the configuration: tracking is the experiment's `tracking`
 * value (NULL when absent; {"kind": "mlflow", "uri", "experiment"}),
 * exp_name the lumen experiment's name, where names the experiment file
 * for messages.  LUMEN_TRACKING_URI wins over the file, which wins over
 * MLFLOW_TRACKING_URI.  Errors (LUMEN_EINVAL): not an http(s) URI, a URI
 * with credentials in it, an unknown key. */
int rn_mlflow_conf_resolve(const cJSON *tracking, const char *exp_name, const char *where, rn_mlflow_conf *c,
                           lm_err *e);
void rn_mlflow_conf_free(rn_mlflow_conf *c);

/* A tracker for conf (uri set); term gets the one-line outcome at the
 * run's end.  The tracker list owns it (ops->destroy). */
int rn_mlflow_new(const rn_mlflow_conf *conf, FILE *term, void **self, lm_err *e);
const rn_tracker_ops *rn_mlflow_tracker(void);

/* Sends what run_dir's spool holds beyond what the server acknowledged,
 * then the same for its sweep trials (trials/<n>).  uri: NULL for the
 * one the spool names.  Retries LUMEN_TRACKING_RETRIES times (default 5)
 * with backoff.  Prints one line per run folder to out.  Returns 0 when
 * everything is on the server, LUMEN_ENOTFOUND when run_dir has no spool,
 * else LUMEN_EIO with the cause in e. */
int rn_mlflow_sync(const char *run_dir, const char *uri, FILE *out, lm_err *e);

/* "synced", "pending N", "refused N" ..., or "-" when the run has no
 * spool: what `runner runs` shows. */
void rn_mlflow_sync_state(const char *run_dir, char *buf, size_t n);

#endif /* RN_MLFLOW_H */
