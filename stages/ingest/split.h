/*
 * split.h -- the seeded train/validation split of the ingest stage (and the
 * seeded row subset behind `limit`).
 *
 * PRNG: lumen's xoshiro256** (lm_xoshiro in rng.h: seeded by splitmix64,
 * unbiased bounded draws by Lemire's method, Fisher-Yates shuffles from the
 * last element down).  All of it is pure integer arithmetic: the same seed
 * gives the same split on every machine and for every thread count.
 *
 * Split: rows are grouped by their label vector (stratify = true) or form
 * one group (false).  Each group, in file order, is shuffled with a PRNG
 * seeded from XXH3-64(label vector bytes, seed) -- so a group's draw does
 * not depend on which other groups exist -- and its first
 * round(val * group size) rows (round half away from zero) go to validation.
 */
#ifndef INGEST_SPLIT_H
#define INGEST_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "crossfit.h"
#include "lm_util.h"

/* Assigns each of n rows to 0 (train) or 1 (val) in split[n].  labels is
 * row-major [n][nlabels].  val in [0, 1].  Returns 0, LUMEN_EINVAL or
 * LUMEN_ENOMEM. */
int ingest_split(const float *labels, size_t n, size_t nlabels, double val,
                 uint64_t seed, int stratify, uint8_t *split, lm_err *err);

/* k-fold mode: deals the n rows into `folds` folds with lm_crossfit_folds
 * (crossfit.h: ordered by label combination, then by a seeded random key,
 * dealt round-robin, so each combination is spread evenly (+-1) over the
 * folds and fold sizes differ by at most one; a pure function of the labels
 * and the seed) and marks the rows of fold `fold` as validation (1), the
 * rest as train (0).
 * Returns 0, LUMEN_EINVAL (folds outside 2..LM_CROSSFIT_MAX_FOLDS, fold
 * outside 0..folds-1) or LUMEN_ENOMEM. */
int ingest_split_fold(const float *labels, size_t n, size_t nlabels, int folds, int fold,
                      uint64_t seed, uint8_t *split, lm_err *err);

/* Picks k of n rows at random (seeded), writing their indices in ascending
 * order to pick[k].  k <= n.  Returns 0 or LUMEN_ENOMEM. */
int ingest_subset(size_t n, size_t k, uint64_t seed, uint32_t *pick, lm_err *err);

#endif /* INGEST_SPLIT_H */
