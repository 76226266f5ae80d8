/*
 * sweep_search.h -- where a hyperparameter sweep looks next, when it stops a
 * trial early, and the statistics of its results table.
 *
 * Pure math on caller-owned arrays: no files, processes or Lua, no global
 * state.  Every function is reentrant; only rn_tpe_point allocates (scratch,
 * freed before it returns).
 *
 * Search space.  A point is x[nd], one double per dimension:
 *   CHOICE      the index of the alternative, 0 .. n_choices-1
 *   UNIFORM     the value, in [lo, hi)
 *   LOGUNIFORM  the value, in [lo, hi), 0 < lo < hi
 *   INT         an integer value in [lo, hi], both ends included
 *
 * Randomness.  Every draw is a pure function of (seed, trial index, ...)
 * through the counter-based streams of rng.h, domain LM_RNG_SWEEP:
 *   rn_random_point, dimension j:  stream (seed, LM_RNG_SWEEP, index, j)
 *   rn_tpe_point,    dimension j:  stream (seed, LM_RNG_SWEEP, index, 2^32 + j)
 * so trial i gets the same point whatever the order or parallelism of the
 * trials (bit for bit wherever the C library's exp/log/cos/erfc round
 * alike), and adding a dimension at the end leaves the draws of the others
 * unchanged.
 */
#ifndef RN_SWEEP_SEARCH_H
#define RN_SWEEP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"

/* ------------------------------------------------------------ the space -- */

enum { RN_DIM_CHOICE = 1, RN_DIM_UNIFORM, RN_DIM_LOGUNIFORM, RN_DIM_INT };

typedef struct rn_dim {
    int kind;          /* RN_DIM_* */
    size_t n_choices;  /* CHOICE: number of alternatives (>= 1) */
    double lo, hi;     /* UNIFORM/LOGUNIFORM: [lo, hi) (LOGUNIFORM: 0 < lo < hi);
                        * INT: [lo, hi], integers, lo <= hi, |lo|,|hi| <= 2^53 */
} rn_dim;

/* Checks the dimensions against the rules above (finite bounds, lo < hi,
 * lo <= hi and integral for INT, n_choices >= 1).  0 or LUMEN_EINVAL with
 * "dimension j: why" in e.  The other functions assume checked dimensions. */
int rn_dims_check(const rn_dim *d, size_t nd, lm_err *e);

/* ----------------------------------------------------------------- grid -- */

/* Number of grid points: the product of n_choices.  0 when any dimension is
 * not CHOICE or the product overflows size_t; 1 for nd == 0 (the empty
 * point). */
size_t rn_grid_size(const rn_dim *d, size_t nd);

/* Grid point `index` (< rn_grid_size) into x[nd]: mixed radix, the first
 * dimension varies slowest.  Index 0 is all zeros, index 1 has the last
 * dimension at 1, ...; {a:{1,2}, b:{x,y}} gives (1,x),(1,y),(2,x),(2,y). */
void rn_grid_point(const rn_dim *d, size_t nd, size_t index, double *x);

/* --------------------------------------------------------------- random -- */

/* Point `index` of the random search with `seed` into x[nd]: each dimension
 * independently uniform -- CHOICE a uniform index, UNIFORM uniform on
 * [lo, hi), LOGUNIFORM uniform in log space on [lo, hi), INT uniform over
 * the integers lo..hi. */
void rn_random_point(const rn_dim *d, size_t nd, uint64_t seed, size_t index, double *x);

/* ------------------------------------------------------------------ TPE -- */

/* Options of rn_tpe_point; a zero field (or opts == NULL) takes the default. */
typedef struct rn_tpe_opts {
    size_t n_startup;    /* random points before TPE starts (default 10) */
    size_t n_candidates; /* candidates drawn from l(x) (default 24) */
    double gamma;        /* fraction of observations that are "good" (default
                          * 0.1; values above 1 act as 1) */
} rn_tpe_opts;

/* Tree-structured Parzen Estimator (Bergstra et al. 2011, "Algorithms for
 * Hyper-Parameter Optimization"), written from the paper with hyperopt's
 * estimators.  Point `index` into x[nd], given n_obs finished trials:
 * X[n_obs * nd] (row i is trial i's point) and their objective y[n_obs];
 * maximize != 0 means larger y is better.  A non-finite y (a failed trial)
 * ranks below every finite one; a non-finite coordinate is left out of that
 * dimension's estimators; coordinates outside the space are clamped to it.
 *
 *  - n_obs < n_startup: x = rn_random_point(d, nd, seed, index).
 *  - Otherwise the observations are ranked (best first; ties keep the order
 *    of X) and the first n_good = max(1, ceil(gamma * n_obs)) are "good",
 *    the rest "bad".  gamma defaults to 0.1 (Optuna's fraction), not 0.25:
 *    with a quarter of the trials good, a choice that the first random
 *    trials happened to pair with bad values keeps l/g < 1 and is never
 *    tried again (measured: TPE then loses to random search on objectives
 *    with a choice; see tests/unit/test_sweep_search.c).
 *  - Per dimension, independently, a density l(x) is fitted to the good
 *    values and g(x) to the bad ones:
 *      UNIFORM, LOGUNIFORM (in log space), INT (as continuous on
 *      [lo - 1/2, hi + 1/2], so the prior gives every integer equal mass):
 *        a mixture of Gaussians truncated to the range, one per observation
 *        plus a prior component at the centre of the range with sigma = the
 *        range, all weights equal.  An observation's sigma is the larger
 *        distance to its neighbours in the sorted list of centres (prior
 *        included), clipped to [range / min(100, m + 1), range], m = number
 *        of components (observations + prior), as hyperopt does.
 *        An INT is drawn from the mixture and rounded; its density is the
 *        mixture's mass on [k - 1/2, k + 1/2].
 *      CHOICE: p(k) proportional to (count of k) + 1, i.e. the counts plus a
 *        uniform prior of total weight n_choices.
 *  - n_candidates points are drawn from l (each coordinate from its
 *    dimension's l); x is the one with the largest log l(x) - log g(x),
 *    summed over the dimensions (the first on ties).  As in the paper, the
 *    candidate is scored as a whole; hyperopt instead keeps the best value
 *    per dimension, which measured worse on every test objective.
 * The result is a pure function of (d, X, y, n_obs, maximize, opts, seed,
 * index).  Returns 0, or LUMEN_ENOMEM when scratch memory (about 3 n_obs
 * doubles per dimension) could not be had; x then holds the random point,
 * so a caller that ignores the code still gets a valid point. */
int rn_tpe_point(const rn_dim *d, size_t nd, const double *X, const double *y, size_t n_obs, int maximize,
                 const rn_tpe_opts *opts, uint64_t seed, size_t index, double *x);

/* -------------------------------------------------------------- pruners -- */
/*
 * Epochs are 1-based.  others[n] holds the values OTHER trials reported at
 * this same epoch (the caller collects them; non-finite ones are ignored).
 * maximize as above.  A non-finite value is worse than any finite one.
 * Return 1: stop (prune) this trial, 0: let it go on.  NULL options take
 * the defaults, as do fields <= 0 (and reduction < 2).  Neither allocates.
 */

typedef struct rn_asha {
    int min_epochs; /* first rung (default 1) */
    int reduction;  /* eta: rung spacing and kept fraction 1/eta (default 3) */
} rn_asha;

/* 1 when `epoch` is a rung: min_epochs * reduction^k for some k >= 0
 * (defaults: 1, 3, 9, 27, ...). */
int rn_asha_is_rung(const rn_asha *a, int epoch);

/* Asynchronous successive halving (Li et al. 2020, "A System for Massively
 * Parallel Hyperparameter Tuning"), in its stopping form: off a rung never
 * prunes.  At a rung, with k = n + 1 values there (others plus this one),
 * the trial goes on when its rank <= max(1, floor(k / reduction)), rank =
 * 1 + the number of others strictly better (ties favour going on).  The
 * first trial to reach a rung therefore always goes on. */
int rn_asha_prune(const rn_asha *a, int epoch, double value, const double *others, size_t n, int maximize);

typedef struct rn_median {
    int min_epochs;    /* no pruning before this epoch (default 1) */
    size_t min_trials; /* no pruning with fewer finite others (default 3) */
} rn_median;

/* Median stopping rule (Golovin et al. 2017, "Google Vizier"): from epoch
 * min_epochs on, with at least min_trials finite others at this epoch,
 * prunes when value is strictly worse than the median of the others (the
 * mean of the two middle values for an even count).  O(n^2) time. */
int rn_median_prune(const rn_median *m, int epoch, double value, const double *others, size_t n, int maximize);

/* ----------------------------------------------------------- statistics -- */

/* Mean and sample standard deviation (divisor n - 1) of v[n]; either output
 * may be NULL.  n == 0 gives mean 0; n < 2 gives sd 0 (never NaN for finite
 * inputs). */
void rn_mean_sd(const double *v, size_t n, double *mean, double *sd);

/* Two-sided 95% Student-t quantile (the 0.975 quantile) for df degrees of
 * freedom: a table for df 1..30 (12.706, 4.303, ..., 2.042), then a
 * Cornish-Fisher expansion in 1/df (error < 1e-6), converging to 1.95996.
 * NaN for df < 1. */
double rn_t975(int df);

/* The mean of v[n] with its sd and the half-width of its 95% t interval,
 * rn_t975(n - 1) * sd / sqrt(n): for n == 0 all NaN, for n == 1 the value
 * with sd and half-width NaN.  Any output may be NULL. */
void rn_mean_ci95(const double *v, size_t n, double *mean, double *sd, double *half);

/* Paired differences d[i] = b[i] - a[i] over n pairs: *mean = their mean
 * (0 for n == 0), *half = the half-width of its 95% t interval,
 * rn_t975(n - 1) * sd(d) / sqrt(n) (NaN when n < 2).  Either output may be
 * NULL. */
void rn_paired_diff(const double *a, const double *b, size_t n, double *mean, double *half);

#endif /* RN_SWEEP_SEARCH_H */
