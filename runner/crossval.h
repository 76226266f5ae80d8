/*
 * crossval.h -- lumen.crossval: k-fold cross-validation as a study.
 *
 * lumen.crossval { folds = 5, seeds = {...}?, space = {...}?, stages = {
 * lumen.ingest {...}, ..., lumen.validate {...} } } is a sweep (sweep.h)
 * whose every (configuration, seed) runs once per fold: the sweep sets
 * <ingest>.split.folds = K and <ingest>.split.fold = f on the ingest stage
 * inside it, so fold f (stratified by label combination, ingest split.h)
 * is that trial's validation split and the other folds its training set.
 * Each trial's validate stage writes the fold's out-of-fold predictions
 * (<trial>/<validate>/report/predictions.json, predictions.h).
 *
 * When the trials have ended, rn_crossval_results scores every fold with
 * thresholds tuned on the OTHER folds' out-of-fold predictions
 * (lm_crossval_nested, crossfit.h: nested, never on the fold being scored),
 * per (configuration, seed), and:
 *   - sets each finished trial's value to its fold's score under the
 *     sweep's metric when that is a "cv/..." key (default "cv/f1_mean";
 *     also cv/ap_mean, cv/f1_<label>, cv/ap_<label>, cv/f1_micro), so the
 *     sweep's results table (sweep_results.c) ranks and compares the
 *     configurations paired by fold and seed;
 *   - writes <run>/crossval.json and crossval.csv: per configuration and
 *     metric (per-label F1 and AP, mean F1, mean AP) the mean over the
 *     folds x seeds, the sd, the 95% t interval mean +- t975(n-1) sd/sqrt(n),
 *     the per-fold values, and the paired difference to configuration 0
 *     with its 95% t interval; plus the pooled out-of-fold F1;
 *   - with two or more seeds, a seed ensemble per configuration
 *     ("seed_ensemble" in crossval.json, "[seed ensemble]" rows in the
 *     csv): every fold scored at the mean of its seeds' probabilities
 *     (thresholds nested the same way) and the paired difference ensemble
 *     - single model (the fold's mean over seeds).  It needs the same
 *     folds for every seed, i.e. a numeric ingest split.seed; with "auto"
 *     the folds follow the trial seed and the table says why there is no
 *     ensemble;
 *   - with spec ensemble = "all" (rn_sweep_spec.ensemble_all): every
 *     configuration's fold models as one predictor, "ensemble_all" in
 *     crossval.json (csv configuration n_configs): each fold at the mean
 *     over configurations of their (seed-averaged) probabilities,
 *     thresholds nested the same way, and the paired difference to
 *     configuration 0 (its fold score the mean over its seeds).  Needs
 *     every configuration scored on the same folds with the same labels;
 *     otherwise the table says why;
 *   - writes an ensemble manifest per configuration,
 *     <run>/ensembles/<c>/ensemble.json (ensemble.h): the fold models
 *     (every seed's) with thresholds tuned on the out-of-fold predictions
 *     (averaged over seeds), and <run>/ensemble.json for the best one --
 *     or, with ensemble = "all" scored, for all of them (thresholds tuned
 *     on the out-of-fold predictions averaged over every configuration);
 *   - prints the table to term.
 * The t interval treats the fold scores as independent; they are not
 * quite (training sets overlap), so read it as approximate.
 *
 * What "nested" guarantees: fold f's predictions and labels are never an
 * input of the threshold search that scores fold f.  The other folds'
 * predictions come from models that did train on fold f (a fully nested
 * scheme -- inner cross-validation inside every training set -- costs
 * K (K - 1) more trainings); its labels reach fold f's thresholds only
 * through those models' weights, not through the search.
 *
 * A (configuration, seed) with a fold that did not finish is left out of
 * the statistics (its trials keep NAN).  Fails (LUMEN_EDATA) when the
 * trials have no validate stage, when folds overlap (a record predicted in
 * two folds) or a predictions file is unreadable; LUMEN_ENOMEM, LUMEN_EIO.
 */
#ifndef RN_CROSSVAL_H
#define RN_CROSSVAL_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "lm_util.h"
#include "metrics.h"
#include "plan.h"
#include "run.h"
#include "sweep.h"

int rn_crossval_results(const rn_sweep_spec *sp, const rn_plan *trial_plan, const cJSON *labels,
                        rn_trial_result *t, size_t nt, const rn_run_env *env, FILE *term, lm_err *e);

/* The base metrics of a scored fold, 2k + 3 of them: m < k: F1 of label m;
 * k: mean F1; k+1..2k: AP of label m-k-1; 2k+1: mean AP; 2k+2: micro F1.
 * Their names ("f1_crack", "f1_mean", "ap_crack", "ap_mean", "f1_micro";
 * NULL on OOM, free it). */
double rn_cv_fold_metric(const lm_metrics *x, int k, int m);
char *rn_cv_metric_name(const char *const *labels, int k, int m);

#endif /* RN_CROSSVAL_H */
