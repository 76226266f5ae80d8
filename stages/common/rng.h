/*
 * rng.h -- counter-based, seeded pseudo-random numbers (splitmix64).
 *
 * Everything random in lumen's data path is a pure function of a few
 * integers, never of a hidden global state, thread count or call order:
 *
 *   stream key  k = lm_rng_key(seed, domain, a, b)
 *       = M(M(M(M(seed) ^ domain) ^ a) ^ b)  with M = lm_mix64, the splitmix64
 *         finaliser, each ^ applied after multiplying the counter by an odd
 *         constant so (a, b) and (b, a) differ;
 *   draw j of that stream  = M(k + (j + 1) * 0x9E3779B97F4A7C15)
 *
 * i.e. a splitmix64 generator started at state k.  `domain` separates uses
 * (LM_RNG_SHUFFLE for the epoch permutation, LM_RNG_AUGMENT for per-sample
 * augmentation parameters) so they never share a stream.  Examples:
 *   augmentation of dataset record i in epoch e: lm_rng_key(seed, LM_RNG_AUGMENT, e, i)
 *   shuffle of epoch e:                          lm_rng_key(seed, LM_RNG_SHUFFLE, e, 0)
 *
 * The functions are pure and reentrant: an lm_rng lives on the caller's stack
 * and may be used by one thread at a time; nothing here allocates or fails.
 */
#ifndef LM_RNG_H
#define LM_RNG_H

#include <stddef.h>
#include <stdint.h>

enum lm_rng_domain {
    LM_RNG_SHUFFLE = 1, /* epoch permutations */
    LM_RNG_AUGMENT = 2, /* per-sample augmentation parameters */
    LM_RNG_MATERIALIZE = 3, /* offline augmented copies */
    LM_RNG_CROSSFIT = 4, /* fold assignment of cross-fitted threshold tuning */
    LM_RNG_SWEEP = 5, /* hyperparameter sweep points (runner/sweep_search.h) */
};

typedef struct lm_rng {
    uint64_t state;
} lm_rng;

/* The splitmix64 output function: a bijective 64-bit mixer. */
uint64_t lm_mix64(uint64_t x);
/* Stream key for (seed, domain, a, b); see the formula above. */
uint64_t lm_rng_key(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b);
/* Starts a generator on the stream (seed, domain, a, b). */
void lm_rng_init(lm_rng *r, uint64_t seed, uint64_t domain, uint64_t a,
                 uint64_t b);
/* Next 64 random bits. */
uint64_t lm_rng_u64(lm_rng *r);
/* Uniform double in [0, 1), 53 random bits. */
double lm_rng_uniform(lm_rng *r);
/* Uniform double in [lo, hi). */
double lm_rng_range(lm_rng *r, double lo, double hi);
/* Uniform integer in [0, n) without modulo bias (rejection); n > 0. */
uint64_t lm_rng_below(lm_rng *r, uint64_t n);

/* Fisher-Yates shuffle of idx[0..n) in place with the stream
 * (seed, LM_RNG_SHUFFLE, epoch, 0): for i = n-1 down to 1, swap idx[i] with
 * idx[lm_rng_below(r, i + 1)].  Given the same input order, seed and epoch the
 * result is the same on every machine and thread count. */
void lm_shuffle_u32(uint32_t *idx, size_t n, uint64_t seed, uint64_t epoch);

#endif /* LM_RNG_H */
