/*
 * mixup.h -- mixup (Zhang et al., "mixup: Beyond Empirical Risk
 * Minimization", ICLR 2018) for the train stage: each training batch is
 * mixed with a permutation of itself,
 *
 *     x_i = lam x_i + (1 - lam) x_perm(i),   y_i = lam y_i + (1 - lam) y_perm(i)
 *
 * with one lam ~ Beta(alpha, alpha) per batch (as the paper's code does),
 * on the normalized, augmented float inputs and the 0/1 targets, so the
 * BCE loss sees soft targets.  Engine-independent (it runs on the host
 * batch before the engine's step).  lam and the permutation are a pure
 * function of (seed, epoch, step): a resumed run mixes its batches as the
 * uninterrupted one would.
 */
#ifndef LM_MIXUP_H
#define LM_MIXUP_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* One Beta(a, a) draw from r, a > 0 (two gamma draws, Marsaglia-Tsang). */
double lm_beta_sym(lm_rng *r, double a);

/* Mixes the batch x [n, chw], y [n, k] into out_x / out_y (which must not
 * alias x / y) with alpha > 0 on the stream (seed, LM_RNG_MIXUP, epoch,
 * step).  perm [n] is scratch; returns lam (n < 2: copies, returns 1). */
double lm_mixup_batch(const float *x, const float *y, int n, size_t chw, int k, double alpha, uint64_t seed,
                      int64_t epoch, int64_t step, float *out_x, float *out_y, uint32_t *perm);

#endif
