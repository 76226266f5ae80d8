/*
 * nn_rng.h -- the engine's seeded PRNG (parameter init, dropout masks,
 * synthetic data in tests and benchmarks).
 *
 * Generator: xoshiro256** (Blackman & Vigna), state seeded by four outputs of
 * splitmix64(seed).  uniform(): top 53 bits / 2^53, in [0, 1).  normal():
 * Box-Muller from two uniforms, u1 taken as 1 - uniform() (never 0), returns
 * sqrt(-2 ln u1) * cos(2 pi u2) and discards the sine (one normal per two
 * draws: simple and reproducible).  Same seed -> same stream on every
 * platform.  The state is a plain value: no globals, not thread-safe per
 * instance (give each thread its own).
 */
#ifndef NN_RNG_H
#define NN_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct nn_rng { uint64_t s[4]; } nn_rng;

static inline uint64_t nn_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void nn_rng_seed(nn_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = nn_splitmix64(&seed);
}

static inline uint64_t nn_rng_next(nn_rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, res = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

static inline double nn_rng_uniform(nn_rng *r) {
    return (double)(nn_rng_next(r) >> 11) * 0x1.0p-53;
}

static inline double nn_rng_normal(nn_rng *r) {
    double u1 = 1.0 - nn_rng_uniform(r), u2 = nn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif /* NN_RNG_H */
