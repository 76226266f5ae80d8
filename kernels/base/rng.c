/* rng.c -- see rng.h. */
#include "rng.h"

#define GOLDEN 0x9E3779B97F4A7C15ULL

uint64_t lm_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t lm_splitmix64(uint64_t *state) {
    *state += GOLDEN;
    return lm_mix64(*state);
}

uint64_t lm_rng_key(uint64_t seed, uint64_t domain, uint64_t a, uint64_t b) {
    uint64_t k = lm_mix64(seed + GOLDEN);
    k = lm_mix64(k ^ (domain * 0xD6E8FEB86659FD93ULL));
    k = lm_mix64(k ^ (a * 0xA0761D6478BD642FULL));
    k = lm_mix64(k ^ (b * 0xE7037ED1A0B428DBULL));
    return k;
}

void lm_rng_init(lm_rng *r, uint64_t seed, uint64_t domain, uint64_t a,
                 uint64_t b) {
    r->state = lm_rng_key(seed, domain, a, b);
}

uint64_t lm_rng_u64(lm_rng *r) { return lm_splitmix64(&r->state); }

double lm_rng_uniform(lm_rng *r) {
    return (double)(lm_rng_u64(r) >> 11) * 0x1.0p-53;
}

double lm_rng_range(lm_rng *r, double lo, double hi) {
    return lo + (hi - lo) * lm_rng_uniform(r);
}

uint64_t lm_rng_below(lm_rng *r, uint64_t n) {
    if (n <= 1)
        return 0;
    /* Reject the top (2^64 mod n) values so every residue is equally likely. */
    uint64_t limit = -n % n; /* == 2^64 mod n */
    for (;;) {
        uint64_t x = lm_rng_u64(r);
        if (x >= limit)
            return x % n;
    }
}

void lm_shuffle_u32(uint32_t *idx, size_t n, uint64_t seed, uint64_t epoch) {
    lm_rng r;
    lm_rng_init(&r, seed, LM_RNG_SHUFFLE, epoch, 0);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lm_rng_below(&r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

uint64_t lm_xoshiro_below(lm_xoshiro *r, uint64_t n) {
    unsigned __int128 m = (unsigned __int128)lm_xoshiro_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t thresh = (0 - n) % n;
        while (lo < thresh) {
            m = (unsigned __int128)lm_xoshiro_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void lm_xoshiro_shuffle(uint32_t *v, size_t n, lm_xoshiro *r) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lm_xoshiro_below(r, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}
