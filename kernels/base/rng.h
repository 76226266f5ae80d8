/*
 * rng.h -- lumen's one seeded PRNG: splitmix64 and xoshiro256** (Blackman &
 * Vigna), pure integer arithmetic, the same numbers on every machine, for
 * every thread count.  No globals: a generator is a plain value on the
 * caller's stack, used by one thread at a time; nothing here allocates or
 * fails.  Two ways to use it:
 *
 * 1. Counter-based streams (lm_rng), for the data path, where a draw must be
 *    a pure function of a few integers, never of call order:
 *
 *   stream key  k = lm_rng_key(seed, domain, a, b)
 *       = M(M(M(M(seed + G) ^ domain') ^ a') ^ b')  with M = lm_mix64, the
 *         splitmix64 finaliser, G = 0x9E3779B97F4A7C15, and each counter
 *         multiplied by its own odd constant (domain', a', b') so (a, b) and
 *         (b, a) differ;
 *   draw j of that stream  = M(k + (j + 1) * G)
 *
 *    i.e. a splitmix64 generator started at state k.  `domain` separates uses
 *    (LM_RNG_SHUFFLE for the epoch permutation, LM_RNG_AUGMENT for per-sample
 *    augmentation parameters, ...) so they never share a stream.  Examples:
 *      augmentation of dataset record i in epoch e: lm_rng_key(seed, LM_RNG_AUGMENT, e, i)
 *      shuffle of epoch e:                          lm_rng_key(seed, LM_RNG_SHUFFLE, e, 0)
 *
 * 2. A sequential generator (lm_xoshiro: xoshiro256**, its 256-bit state
 *    filled by four splitmix64 outputs of the 64-bit seed), for the engine's
 *    parameter init and dropout masks, the ingest stage's seeded split and
 *    `limit` subset, and synthetic data in tests and benchmarks.
 *    uniform(): top 53 bits / 2^53, in [0, 1).  normal(): Box-Muller from two
 *    uniforms, u1 taken as 1 - uniform() (never 0), returns
 *    sqrt(-2 ln u1) * cos(2 pi u2) and discards the sine (one normal per two
 *    draws).  below(n): Lemire's multiply-shift with rejection (unbiased).
 *
 * The two bounded draws differ on purpose (lm_rng_below rejects by modulo,
 * lm_xoshiro_below by Lemire's method): each is pinned by the splits, cache
 * entries and checkpoints already made with it, so neither may change.
 */
#ifndef LM_RNG_H
#define LM_RNG_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* ---- splitmix64 --------------------------------------------------------- */

/* The splitmix64 output function: a bijective 64-bit mixer. */
uint64_t lm_mix64(uint64_t x);
/* One splitmix64 step: advances *state by 0x9E3779B97F4A7C15 and returns
 * lm_mix64 of the new state. */
uint64_t lm_splitmix64(uint64_t *state);

/* ---- counter-based streams ---------------------------------------------- */

enum lm_rng_domain {
    LM_RNG_SHUFFLE = 1, /* epoch permutations */
    LM_RNG_AUGMENT = 2, /* per-sample augmentation parameters */
    LM_RNG_MATERIALIZE = 3, /* offline augmented copies */
    LM_RNG_CROSSFIT = 4, /* fold assignment of cross-fitted threshold tuning */
    LM_RNG_SWEEP = 5, /* hyperparameter sweep points (runner/sweep_search.h) */
    LM_RNG_MIXUP = 6, /* mixup's lam and partner permutation per training step */
};

typedef struct lm_rng {
    uint64_t state;
} lm_rng;

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

/* ---- xoshiro256** ------------------------------------------------------- */

typedef struct lm_xoshiro {
    uint64_t s[4];
} lm_xoshiro;

/* State = four splitmix64 outputs of `seed`. */
static inline void lm_xoshiro_seed(lm_xoshiro *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = lm_splitmix64(&seed);
}

/* Next 64 random bits. */
static inline uint64_t lm_xoshiro_next(lm_xoshiro *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, res = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform double in [0, 1), 53 random bits. */
static inline double lm_xoshiro_uniform(lm_xoshiro *r) {
    return (double)(lm_xoshiro_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, cosine half; two draws per value). */
static inline double lm_xoshiro_normal(lm_xoshiro *r) {
    double u1 = 1.0 - lm_xoshiro_uniform(r), u2 = lm_xoshiro_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Uniform integer in [0, n) (Lemire: the high 64 bits of next * n, rejecting
 * the biased low range); n > 0. */
uint64_t lm_xoshiro_below(lm_xoshiro *r, uint64_t n);
/* Fisher-Yates shuffle of v[0..n): for i = n-1 down to 1, swap v[i] with
 * v[lm_xoshiro_below(r, i + 1)]. */
void lm_xoshiro_shuffle(uint32_t *v, size_t n, lm_xoshiro *r);

#endif /* LM_RNG_H */
