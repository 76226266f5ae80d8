/*
 * mlflow_send.h -- the sender of the MLflow tracker: posts a run folder's
 * spool to the server and records how far the server has acknowledged it.
 *
 *   <run>/mlflow/spool.jsonl  append-only, one event per line (the tracker,
 *                             mlflow.c, writes it; fsync'ed at stage ends)
 *   <run>/mlflow/state.json   {"uri", "experiment_id", "run_id",
 *                             "artifact_uri", "acked" (bytes of the spool the
 *                             server has), "uncertain" (a batch may have
 *                             landed without an answer), "rejected",
 *                             "error"}, rewritten atomically
 *   <run>/mlflow/sync.log     one line per refusal or give-up (no secrets)
 *   <run>/mlflow/lock         flock'ed by whoever sends (one sender a run)
 *
 * Spool events ("t"): "run" (first line: uri, experiment, name, uid,
 * start_ms, parent run folder, tags), "param" (k, v), "tag" (k, v), "m"
 * (k, v, s = step, ts = ms; v a number or "NaN"/"Infinity"/"-Infinity"),
 * "resume", "status" (status, end_ms), "artifact" (src relative to the run
 * folder, dst).  Consecutive param/tag/metric lines go out as
 * runs/log-batch requests within the server's limits; a batch that may
 * have landed before a failure is deduplicated against
 * metrics/get-history before it is sent again.  runs/create is preceded by
 * a runs/search for the run's lumen.uid tag, so it is never created twice.
 * A refused batch (4xx other than 401/403) is dropped, counted and logged
 * with the server's message; everything else stops at the first failure.
 *
 * Errors and the state never hold credentials (mlflow_http.h).
 */
#ifndef RN_MLFLOW_SEND_H
#define RN_MLFLOW_SEND_H

#include "lm_util.h"
#include "mlflow_http.h"

#define MF_DIR "mlflow"
#define MF_SPOOL "spool.jsonl"
#define MF_STATE "state.json"
#define MF_LOG "sync.log"

typedef struct mf_sender mf_sender;

/* Opens run_dir's spool for sending to uri (NULL: the uri its "run" event
 * names) and takes the lock.  LUMEN_EBUSY-like failure when another
 * process sends it: LUMEN_EINVAL with "busy" in the message and *busy = 1.
 * abort: optional flag that abandons requests in flight. */
int mf_sender_open(const char *run_dir, const char *uri, const volatile int *abort, mf_sender **out, int *busy,
                   lm_err *e);
void mf_sender_close(mf_sender *s);

/* Sends every complete spool line past the acknowledged offset.  Returns
 * MF_OK when nothing is left, MF_RETRY when a retriable failure stopped it
 * (mf_sender_retry_after: the server's Retry-After), MF_AUTH / MF_REFUSED
 * when it cannot go on (the run or experiment could not be made), or
 * MF_ABORTED. */
mf_class mf_send_pending(mf_sender *s);

/* Calls mf_send_pending until it is done, backing off exponentially with
 * jitter (at least the server's Retry-After) between tries: at most
 * max_tries tries in a row without progress (0: no limit) and never past
 * *deadline (lm_now() seconds; 0: none; re-read after each nap), and once
 * a deadline is set, two failures in a row without progress or
 * Retry-After end it (a server that is down does not hold up the run's
 * end).  nap(arg,
 * s, must) waits s seconds, of which the first `must` (the server's
 * Retry-After) may not be cut short, and returns non-zero to stop. */
mf_class mf_send_drive(mf_sender *s, int max_tries, const volatile double *deadline,
                       int (*nap)(void *arg, double s, double must), void *arg);

/* Another process sent for s (the tracker's sender process, which shares
 * s's lock): re-read how far it got from state.json. */
void mf_sender_reload(mf_sender *s);
/* Writes s's state (with the last failure's message) to state.json. */
int mf_sender_save(mf_sender *s);

/* The last failure's message ("" when none). */
const char *mf_sender_error(const mf_sender *s);
/* The last refused request's message ("" when none). */
const char *mf_sender_refusal(const mf_sender *s);
/* Spool lines not yet acknowledged, and batches refused so far. */
long mf_sender_pending(mf_sender *s);
long mf_sender_rejected(const mf_sender *s);
/* The server's run id (NULL before it is created). */
const char *mf_sender_run_id(const mf_sender *s);

/* For `runner runs`: from the files alone, without a server: pending
 * lines (-1 when the run has no spool), rejected batches and whether the
 * run's end was acknowledged. */
int mf_spool_state(const char *run_dir, long *pending, long *rejected, char *err, size_t errlen);

/* The uri the spool's run event names (malloc'ed), NULL without one. */
char *mf_spool_uri(const char *run_dir);

#endif /* RN_MLFLOW_SEND_H */
