/*
 * exec.h -- running one stage in a child process.
 *
 * rn_exec_stage() forks.  The child: dies with the runner
 * (PR_SET_PDEATHSIG = SIGKILL), starts with a clear cancel flag (SIGINT /
 * SIGTERM set what host->cancelled() reports), sends its stdout and stderr
 * into one pipe and its host reports into another (events.h), calls
 * run(ctx, host), sends {"t":"end"} and _exit()s.
 *
 * The parent polls both pipes: raw output is appended to the stage log and
 * copied to the terminal; log events go to the log (and, at INFO and above,
 * the terminal); metric and summary events go to every tracker; progress is
 * drawn (progress.h).  A SIGINT/SIGTERM received by the runner is forwarded
 * to the child, which gets SIGKILL if it has not ended RN_EXEC_GRACE_S
 * later.
 *
 * Outcome, as the message of the returned error:
 *   fail() message          "stage 'train': <message>"
 *   died by a signal        "stage 'train' crashed: signal 11 (Segmentation
 *                            fault); log: runs/.../logs/train.log"
 *   exited without ending   "stage 'train' exited with status 3 before
 *                            finishing; log: ..."
 *   interrupted             "stage 'train' interrupted (SIGINT)"
 *   getter misuse           "stage 'train': plugin <file>: get_int(\"x\"):
 *                            no parameter 'x' is declared"
 */
#ifndef RN_EXEC_H
#define RN_EXEC_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include <lumen/plugin.h>

#include "lm_util.h"
#include "track.h"

#define RN_EXEC_GRACE_S 10.0

typedef struct rn_exec_io {
    const char *stage_id;
    const char *plugin;      /* plugin file, for misuse messages */
    const char *log_path;    /* stage log (created / appended) */
    const char *log_shown;   /* the same path as messages show it */
    rn_trackers *trackers;   /* metric and summary events go here */
    FILE *term;              /* the terminal stream (stderr) */
    int tty;                 /* term is a terminal: draw a progress bar */
    cJSON *summaries;        /* optional: every summary is also set here
                              * (kept with a cache entry, replayed on a hit) */
} rn_exec_io;

/* Runs st->run(ctx, host) in a child process; ctx must be in run mode
 * inputs/outputs set (host.h) and not yet attached to events.  Returns 0
 * when the stage succeeded, else its code (LUMEN_ECANCELED when
 * interrupted, LUMEN_ERR for a crash) with the cause in e.  The runner must
 * be single-threaded when calling this (fork). */
int rn_exec_stage(const lumen_stage *st, lumen_ctx *ctx, const rn_exec_io *io, lm_err *e);

#endif /* RN_EXEC_H */
