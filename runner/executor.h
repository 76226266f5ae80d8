/*
 * executor.h -- where sweep trials run: the executor interface.
 *
 * A trial is one `runner` command line (sweep.h builds it) whose run folder
 * holds everything the trial needs (trial.json).  An executor starts such
 * command lines, tells when they ended, stops them, and finds them again
 * after the sweep's own process restarted (adopt).  The local executor
 * (executor_local.c) runs each trial as a child process in its own process
 * group; a Slurm executor (job arrays) is meant to implement the same ops.
 *
 * Outcomes are not reported through the executor: a trial writes them into
 * its own run folder (status.json, summary.json), which the sweep reads once
 * the executor says the job ended.  That is what makes adoption work: a job
 * that ended while no sweep watched it still left its outcome behind.
 *
 * Single-threaded: called from the sweep's loop only.
 */
#ifndef RN_EXECUTOR_H
#define RN_EXECUTOR_H

#include "lm_util.h"

typedef struct rn_job {
    char id[64];   /* executor's job id (local: the pid), kept in the journal */
    long pid;      /* local: the process (and process group) id */
    int ours;      /* local: our child (waitpid works); 0 when adopted */
    int wstatus;   /* local, ours: the wait status once ended */
    int have_wstatus;
    const char *tag; /* adopt: a string the job's command line contains (the
                      * trial folder), so a reused pid is not mistaken for it */
} rn_job;

typedef struct rn_executor_ops {
    const char *name; /* "local", "slurm" */
    /* Starts argv (argv[0]: the runner executable) with stdout and stderr
     * appended to log_path; fills *job.  0, LUMEN_EIO or LUMEN_ENOMEM. */
    int (*start)(void *self, const char *const *argv, const char *log_path, rn_job *job, lm_err *e);
    /* 1 when the job has ended (and its process is gone), 0 while it runs. */
    int (*poll)(void *self, rn_job *job);
    /* Sends sig to the whole job (local: its process group). */
    void (*cancel)(void *self, rn_job *job, int sig);
    /* A job recorded by an earlier sweep process (job->id set): 1 when it is
     * still running (it is then watched like a started one), else 0. */
    int (*adopt)(void *self, rn_job *job);
} rn_executor_ops;

typedef struct rn_executor {
    const rn_executor_ops *ops;
    void *self;
} rn_executor;

/* The local executor (no state). */
rn_executor rn_executor_local(void);

/* A readable account of how a local job ended ("exit status 3", "signal 11
 * (Segmentation fault)", "ended (adopted; status unknown)") into buf. */
const char *rn_job_describe(const rn_job *job, char *buf, size_t len);

#endif /* RN_EXECUTOR_H */
