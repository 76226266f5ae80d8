/*
 * sweep.h -- lumen.sweep { ... }: repeating a sub-pipeline over a search
 * space and seeds, one trial per (configuration, seed).
 *
 *   lumen.sweep {
 *     strategy = "grid",                 -- grid | random | tpe
 *     seeds = { 1, 2, 3 },               -- each configuration once per seed
 *     metric = "val/f1_mean_tuned_cv", goal = "max",
 *     space = {
 *       ["augment.rotate90"] = { false, true },              -- values (grid/random/tpe)
 *       ["train.optimizer.lr"] = lumen.loguniform(1e-4, 3e-3), -- random / tpe
 *       augment = lumen.variants { {"none", {}}, {"flips", { flip = true }} },
 *     },
 *     trials = 20,                       -- random / tpe: configurations
 *     parallel = 1, timeout = 3600,      -- trials at once; seconds per trial
 *     prune = lumen.asha { min_epochs = 3, reduction = 3 },
 *     executor = lumen.slurm { partition = "gpu", gres = "gpu:1" }, -- default: local (executor.h)
 *     stages = { lumen.augment {...}, lumen.train {...}, lumen.validate {...} },
 *   }
 *
 * Stages before the sweep run once, in the sweep's own run.  Each trial is
 * a run of the runner itself in <sweep run>/trials/<n>/ (config, params,
 * metrics, status, logs as any run), started through an executor
 * (executor.h) with the command line
 *     runner run EXP.lua --trial <dir> --runs <runs> --threads <t> [--smoke]
 * and <dir>/trial.json holding everything else: the seed, the --set
 * assignments and replaced stage tables of its configuration, and the
 * sweep's run folder, whose outputs feed the trial's stages.
 *
 * The sweep's journal (<run>/journal.jsonl, append-only, fsync'ed) is the
 * single source of truth: configurations as they are drawn, trial starts
 * (with the executor's job id) and trial ends.  `--resume RUN` replays it:
 * ended trials are kept, trials still running are adopted, interrupted ones
 * continue from their own folder (train: its state.safetensors), and none
 * runs twice.
 *
 * Results: <run>/results.csv and results.json (one row per configuration:
 * parameters, the metric's mean, sd and per-seed values, the paired
 * difference to the first configuration -- the control -- with a 95%
 * interval, epochs, duration, status), <run>/best -> the model folder of the
 * best configuration's best trial, and the table on stderr.
 */
#ifndef RN_SWEEP_H
#define RN_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "experiment.h"
#include "groups.h"
#include "lm_util.h"
#include "plugin_loader.h"
#include "plan.h"
#include "run.h"
#include "strv.h"
#include "sweep_search.h"

enum { RN_SWEEP_GRID = 1, RN_SWEEP_RANDOM, RN_SWEEP_TPE };
enum { RN_PRUNE_NONE = 0, RN_PRUNE_ASHA, RN_PRUNE_MEDIAN };

typedef struct rn_sweep_dim {
    char *key;       /* "train.optimizer.lr", or a name for variants */
    int stage_table; /* variants replacing the whole table of stage `key` */
    int settings;    /* variants made of "stage.key" = value settings */
    rn_dim dim;      /* shape for the search (sweep_search.h) */
    cJSON *values;   /* CHOICE: array of the alternatives */
    char **names;    /* CHOICE: a label per alternative */
} rn_sweep_dim;

typedef struct rn_sweep_spec {
    char *id, *file;  /* the sweep's id and where it is declared */
    int line;
    int strategy;     /* RN_SWEEP_* */
    uint64_t *seeds;
    size_t n_seeds;
    char *metric;
    int maximize;
    rn_sweep_dim *dims;
    size_t nd;
    size_t n_configs; /* grid: the whole grid; random/tpe: `trials` */
    int parallel;
    double timeout;   /* seconds per trial; 0: none */
    int prune;        /* RN_PRUNE_* */
    rn_asha asha;
    rn_median median;
    char *prune_metric;
    uint64_t search_seed;
    cJSON *json;      /* the resolved spec, as sweep.json records it */
    /* lumen.crossval (folds >= 2; crossval.h): every (configuration, seed)
     * runs once per fold, the fold set on fold_stage (the ingest stage
     * inside the sweep) as split.folds / split.fold; the validate stage
     * inside it (fold_validate) scores the last epoch's model: picking the
     * "best" epoch would pick it on the fold being scored. */
    int folds;
    char *fold_stage;
    char *fold_validate;
    /* crossval `score`: the labels the study scores, in this order (its
     * per-label rows, mean F1 / AP, micro F1, the ranking); the folds'
     * predictions are projected onto them, so configurations whose models
     * predict more labels (ingest's aux) compare with those that do not.
     * NULL: every label (then every configuration must have the same). */
    char **score;
    size_t n_score;
    /* crossval `groups`: every metric also per group of images (groups.h),
     * each fold's records of a group at that fold's nested thresholds;
     * loaded when the spec is read.  NULL: no breakdown. */
    lm_groups *groups;
    /* crossval `ensemble = "all"`: <run>/ensemble.json averages every
     * configuration's fold models (scored as one predictor, crossval.h);
     * 0 ("best", the default): the best configuration's. */
    int ensemble_all;
} rn_sweep_spec;

/* Trials per configuration: seeds x folds (folds < 2: seeds).  Repetition
 * r of a configuration is fold r / n_seeds with seed index r % n_seeds. */
size_t rn_sweep_reps(const rn_sweep_spec *sp);

/* rn_sweep_trial_desc for repetition `rep` (seed and, for crossval, the
 * fold's --set assignments).  NULL on OOM. */
cJSON *rn_sweep_trial_desc_rep(const rn_sweep_spec *sp, const rn_experiment *x, const double *point,
                               size_t rep, const rn_strv *user_sets);

/* Reads x->sweep->spec, applying "sweep-id.key=value" overrides from sets
 * (the rest of sets is left alone).  --smoke keeps the first two
 * configurations and the first two seeds.  Errors name file:line and the
 * key: LUMEN_EINVAL, LUMEN_ENOMEM.  A crossval also keeps at most 3
 * folds under --smoke. */
int rn_sweep_spec_parse(const rn_experiment *x, const rn_strv *sets, int smoke, rn_sweep_spec **out, lm_err *e);
void rn_sweep_spec_free(rn_sweep_spec *s);

/* Is this --set argument for the sweep itself ("<sweep-id>.key=...")? */
int rn_sweep_is_own_set(const rn_experiment *x, const char *set);

/* The trial description (trial.json) of configuration `point` and seed:
 * {"seed", "sets": [user sets..., the configuration's], "tables":
 * {stage-id: params}, "labels": {dim key: label}, "first", ...}.  NULL on
 * OOM. */
cJSON *rn_sweep_trial_desc(const rn_sweep_spec *sp, const rn_experiment *x, const double *point, uint64_t seed,
                           const rn_strv *user_sets);

/* Trial side: applies a trial description to x (seed, replaced stage
 * tables) and appends its --set assignments to sets.  LUMEN_EDATA for a
 * malformed description. */
int rn_sweep_trial_apply(const cJSON *desc, rn_experiment *x, rn_strv *sets, lm_err *e);

/* Plans every configuration of a grid (for random/tpe: draws that cover
 * every alternative of each list) as a trial, so a typo in the space fails
 * before anything runs.  *first (may be NULL) gets the plan of the first. */
int rn_sweep_validate(const rn_sweep_spec *sp, const rn_registry *reg, const rn_experiment *x,
                      const rn_plan_opts *po, rn_plan **first, lm_err *e);

/* What the sweep's run tail needs (cmd_run.c fills it). */
typedef struct rn_sweep_run {
    const rn_sweep_spec *spec;
    const rn_experiment *x;
    const rn_plan *plan;     /* the upstream plan (stages before the sweep) */
    const rn_plan *trial_plan; /* a planned trial (configuration 0): its stages */
    const rn_strv *user_sets;
    const char *exp_file;
    int resumed;
    FILE *term;
} rn_sweep_run;

/* rn_run_opts.tail: runs the trials, writes the results. */
int rn_sweep_tail(void *arg, const rn_run_env *env, lm_err *e);

/* One trial's outcome, for the results. */
typedef struct rn_trial_result {
    size_t n, c, s;      /* trial, configuration, seed index */
    const char *status;  /* finished | failed | pruned */
    double value;        /* the metric when finished, else NaN */
    int epochs;
    double duration;     /* seconds */
    const char *reason;  /* failed / pruned: why */
} rn_trial_result;

/* Writes results.csv, results.json and the `best` link into the run
 * folder, sends the sweep's summaries to the trackers and prints the table
 * to term.  Fails when no trial finished. */
int rn_sweep_results(const rn_sweep_spec *sp, const rn_plan *trial_plan, const cJSON *labels,
                     const rn_trial_result *t, size_t nt, const rn_run_env *env, FILE *term, lm_err *e);

/* Prints a sweep run's results table (results.json in run_dir) to out,
 * sorted by the metric.  LUMEN_ENOTFOUND when the run has none. */
int rn_sweep_print_results(const char *run_dir, FILE *out, lm_err *e);

#endif /* RN_SWEEP_H */
