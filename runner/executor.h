/*
 * executor.h -- where sweep trials run: the executor interface.
 *
 * A trial is one `runner` command line (sweep.h builds it) whose run folder
 * holds everything the trial needs (trial.json).  An executor starts such
 * command lines, tells when they ended, stops them, and finds them again
 * after the sweep's own process restarted (adopt).  The local executor
 * (executor_local.c) runs each trial as a child process in its own process
 * group; the Slurm executor (executor_slurm.c) submits batches of trials as
 * job arrays and watches them with squeue.
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

#include <stdio.h>

#include <cjson/cJSON.h>

#include "lm_util.h"

typedef struct rn_job {
    char id[64];   /* executor's job id (local: the pid), kept in the journal */
    long pid;      /* local: the process (and process group) id */
    int ours;      /* local: our child (waitpid works); 0 when adopted */
    int wstatus;   /* local, ours: the wait status once ended */
    int have_wstatus;
    const char *tag; /* adopt: a string the job's command line contains (the
                      * trial folder), so a reused pid is not mistaken for it */
    /* slurm: filled when the job ended (poll returned 1) */
    char state[32];    /* Slurm's job state: COMPLETED, TIMEOUT, CANCELLED, ... */
    char exit_code[16]; /* Slurm's "exit:signal" */
    int again;         /* preempted and not requeued by Slurm: submit again
                        * (the trial continues from its folder) */
} rn_job;

/* One trial to submit (submit op). */
typedef struct rn_submit {
    const char *const *argv; /* as for start */
    const char *log_path;
    const char *dir;         /* the trial's folder (markers go there) */
    rn_job *job;             /* filled for each accepted item */
} rn_submit;

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
    /* Optional (NULL: start each item): starts items[0..n) at once (Slurm:
     * one job array) and sets *accepted to how many it took from the front
     * (fewer while it holds back, see hold); 0 or an error. */
    int (*submit)(void *self, rn_submit *items, size_t n, size_t *accepted, lm_err *e);
    /* Optional: *hold = 1 while no new trials should be submitted (Slurm:
     * the first task has not yet shown the runs folder is writable from the
     * jobs); an error when that check failed. */
    int (*hold)(void *self, int *hold, lm_err *e);
    /* Optional: stops every job at once (the sweep was interrupted);
     * NULL: cancel(SIGTERM) each. */
    void (*cancel_all)(void *self);
    /* Optional: frees self. */
    void (*close)(void *self);
    /* Optional (--resume): a trial (its folder dir) with no running job in
     * the journal may still have been submitted by an earlier sweep process
     * that died before journaling its start (Slurm: the batch's intent,
     * recorded before sbatch, is looked up by its job name).  Sets *alive =
     * 1 and job->id when such a job still runs (it is then adopted and its
     * start journaled), else *alive = 0 (submit it, unless its folder says
     * it finished).  0 or an error (the lookup failed: resuming again is
     * safe, guessing is not). */
    int (*recover)(void *self, const char *dir, rn_job *job, int *alive, lm_err *e);
} rn_executor_ops;

typedef struct rn_executor {
    const rn_executor_ops *ops;
    void *self;
    int max_inflight; /* trials submitted at once; 0: the sweep's `parallel` */
    int threads;      /* --threads of each trial; 0: the sweep's rule */
} rn_executor;

/* The local executor (no state). */
rn_executor rn_executor_local(void);

/* What an executor needs to know about its sweep. */
typedef struct rn_executor_env {
    const char *file;    /* the experiment file and line of the sweep (errors) */
    int line;
    const char *sweep_id;
    const char *run_dir; /* the sweep's run folder (Slurm: scripts and job output in run_dir/slurm) */
    FILE *term;          /* where progress and waits are said */
    int tpe;             /* configurations drawn one at a time (in-flight limit) */
} rn_executor_env;

/* Checks a sweep's `executor` value (NULL, "local", lumen.local {},
 * lumen.slurm {...}): LUMEN_EINVAL naming file:line and the key. */
int rn_executor_check_spec(const cJSON *spec, const char *file, int line, lm_err *e);

/* Makes the executor the spec asks for (the local one for NULL). */
int rn_executor_open(const cJSON *spec, const rn_executor_env *env, rn_executor *out, lm_err *e);

/* The job's ids and states as `runner runs` shows them: for each trial of
 * the sweep run in run_dir that went to Slurm, "trial job state" lines on
 * out (state from squeue while the sweep runs, else from its journal).
 * Nothing when the sweep never used Slurm. */
void rn_slurm_print_jobs(const char *run_dir, FILE *out);

/* A readable account of how a job ended ("exit status 3", "signal 11
 * (Segmentation fault)", "ended (adopted; status unknown)", "Slurm job
 * 12_3 TIMEOUT, exit code 0:15") into buf. */
const char *rn_job_describe(const rn_job *job, char *buf, size_t len);

#endif /* RN_EXECUTOR_H */
