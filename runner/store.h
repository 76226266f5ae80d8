/*
 * store.h -- the local run store: one folder per run, and the first tracker.
 *
 *   runs/<experiment>/<run>/
 *     config.json     the resolved plan (rn_plan_json) + run id
 *     params.json     flat {"<stage-id>.<key>": value}
 *     metrics.jsonl   one {"key","value","step","time"} per line, appended
 *     summary.json    {"key": value}, rewritten atomically
 *     status.json     {"status": running|finished|failed, "reason", "started",
 *                     "ended", "duration_s", "pid", "argv", "runner", "stages",
 *                     and after --resume "attempts": [earlier attempts],
 *                     "resumed": time}, rewritten atomically on every change
 *     logs/<stage-id>.log
 *     <stage-id>/<artifact>/         outputs of a stage that is not cached
 *     <stage-id> -> ../../.cache/<stage>/<key>   a cached stage's entry
 *
 * Run ids sort by start time: "YYYYMMDD-HHMMSS-xxxx" (UTC, then 4 hex
 * digits that make it unique).  A run whose process died without ending it
 * keeps "running" in status.json; readers compare the recorded pid with the
 * live processes (rn_store_effective_status).
 *
 * Single-threaded (the runner's main loop).
 */
#ifndef RN_STORE_H
#define RN_STORE_H

#include <cjson/cJSON.h>

#include "lm_util.h"
#include "track.h"

#define RN_STATUS_FILE "status.json"
#define RN_SUMMARY_FILE "summary.json"
#define RN_CONFIG_FILE "config.json"
#define RN_PARAMS_FILE "params.json"
#define RN_METRICS_FILE "metrics.jsonl"

typedef struct rn_store rn_store;

/* Creates runs_dir/<experiment>/<new run id>/ (and logs/).  *out owned by
 * the caller (rn_store_free).  Errors: LUMEN_EIO, LUMEN_ENOMEM. */
int rn_store_create(const char *runs_dir, const char *experiment, rn_store **out, lm_err *e);
/* Creates the run in a given folder (a sweep trial: <sweep run>/trials/<n>,
 * which may exist and hold trial.json, but no status.json yet), with the
 * given run id.  Errors: LUMEN_EIO, LUMEN_ENOMEM. */
int rn_store_create_at(const char *run_dir, const char *run_id, const char *experiment, rn_store **out,
                       lm_err *e);
/* Reopens an existing run folder to continue it (--resume): its
 * status.json and summary.json are loaded; metrics.jsonl is appended to.
 * When the run_started event then comes with `resumed` set, status.json
 * keeps the stages' entries and the first start time, moves the previous
 * attempt's {started, ended, status, reason, pid, argv} into "attempts"
 * and becomes "running" again with the new pid and argv.  Errors:
 * LUMEN_ENOTFOUND, LUMEN_EDATA (unreadable JSON), LUMEN_EIO, LUMEN_ENOMEM. */
int rn_store_reopen(const char *run_dir, const char *experiment, rn_store **out, lm_err *e);
const char *rn_store_run_id(const rn_store *s);
const char *rn_store_run_dir(const rn_store *s);
/* Writes config.json (atomically). */
int rn_store_write_config(rn_store *s, const cJSON *config, lm_err *e);
/* runs/<exp>/<run>/logs/<stage_id>.log; malloc'ed, NULL on OOM. */
char *rn_store_log_path(const rn_store *s, const char *stage_id);
/* The tracker ops of the store (self = the rn_store; not owned by the
 * tracker list). */
const rn_tracker_ops *rn_store_tracker(void);
void rn_store_free(rn_store *s);

/* Reading side: the status of a run as `runner runs` shows it: the
 * recorded status, except "killed" for a "running" run whose process is
 * gone.  status is the parsed status.json. */
const char *rn_store_effective_status(const cJSON *status);

#endif /* RN_STORE_H */
