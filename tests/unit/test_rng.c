/* Unit tests for kernels/base/rng.c, lumen's one seeded PRNG: the splitmix64
 * reference, and the xoshiro256** and counter-based streams pinned to the
 * numbers they gave before the engine, the ingest split and the data path
 * shared this one generator (a change here would silently change every
 * split, cache entry and initialisation made since). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "rng.h"

static void test_splitmix_reference(void **s) {
    (void)s;
    /* reference outputs of Vigna's splitmix64.c for seed 0 */
    uint64_t x = 0;
    assert_true(lm_splitmix64(&x) == 0xe220a8397b1dcdafull);
    assert_true(lm_splitmix64(&x) == 0x6e789e6aa1b965f4ull);
    assert_true(lm_splitmix64(&x) == 0x06c45d188009454full);
    assert_true(lm_mix64(0x9e3779b97f4a7c15ull) == 0xe220a8397b1dcdafull);
}

static void test_xoshiro_pinned(void **s) {
    (void)s;
    /* the engine's nn_rng and the ingest split's own copy gave these */
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 42);
    assert_true(lm_xoshiro_next(&r) == 0x15780b2e0c2ec716ull);
    assert_true(lm_xoshiro_next(&r) == 0x6104d9866d113a7eull);
    assert_true(lm_xoshiro_next(&r) == 0xae17533239e499a1ull);
    lm_xoshiro_seed(&r, 7);
    assert_true(lm_xoshiro_uniform(&r) == 0.7005764821796896);
    assert_true(fabs(lm_xoshiro_normal(&r) - 0.43157401280419289) < 1e-15);
    lm_xoshiro_seed(&r, 42);
    static const uint64_t below[10] = {83, 378, 680, 924, 991, 769, 719, 850, 761, 583};
    for (int i = 0; i < 10; i++)
        assert_true(lm_xoshiro_below(&r, 1000) == below[i]);
    uint32_t v[10];
    static const uint32_t shuffled[10] = {3, 6, 1, 5, 0, 9, 2, 8, 4, 7};
    for (uint32_t i = 0; i < 10; i++)
        v[i] = i;
    lm_xoshiro_seed(&r, 1);
    lm_xoshiro_shuffle(v, 10, &r);
    assert_memory_equal(v, shuffled, sizeof v);
}

static void test_xoshiro_deterministic_and_uniform(void **s) {
    (void)s;
    lm_xoshiro a, b, c;
    lm_xoshiro_seed(&a, 42);
    lm_xoshiro_seed(&b, 42);
    lm_xoshiro_seed(&c, 43);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = lm_xoshiro_next(&a);
        assert_true(x == lm_xoshiro_next(&b));
        same += x == lm_xoshiro_next(&c);
    }
    assert_int_equal(same, 0);
    int cnt[6] = {0};
    for (int i = 0; i < 60000; i++) {
        uint64_t v = lm_xoshiro_below(&a, 6);
        assert_true(v < 6);
        cnt[v]++;
    }
    for (int i = 0; i < 6; i++)
        assert_in_range(cnt[i], 9500, 10500);
    uint32_t v[50];
    for (int i = 0; i < 50; i++)
        v[i] = (uint32_t)i;
    lm_xoshiro_shuffle(v, 50, &a);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[v[i]]++;
        moved += v[i] != (uint32_t)i;
    }
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 25);
}

static void test_streams_pinned(void **s) {
    (void)s;
    /* the data path's counter-based streams (stages/common/rng.c) gave these */
    assert_true(lm_rng_key(42, LM_RNG_SHUFFLE, 0, 0) == 0x4838c89fc32888fbull);
    lm_rng r;
    lm_rng_init(&r, 42, LM_RNG_AUGMENT, 3, 5);
    assert_true(lm_rng_u64(&r) == 0xb850fdb537b10b7eull);
    static const uint64_t below[6] = {906, 511, 505, 858, 975, 750};
    for (int i = 0; i < 6; i++)
        assert_true(lm_rng_below(&r, 1000) == below[i]);
    uint32_t v[10];
    static const uint32_t shuffled[10] = {4, 8, 3, 9, 5, 0, 6, 1, 2, 7};
    for (uint32_t i = 0; i < 10; i++)
        v[i] = i;
    lm_shuffle_u32(v, 10, 42, 0);
    assert_memory_equal(v, shuffled, sizeof v);
    /* a stream is splitmix64 started at its key */
    uint64_t k = lm_rng_key(9, LM_RNG_SWEEP, 1, 2);
    lm_rng_init(&r, 9, LM_RNG_SWEEP, 1, 2);
    for (int i = 0; i < 5; i++)
        assert_true(lm_rng_u64(&r) == lm_splitmix64(&k));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix_reference),
        cmocka_unit_test(test_xoshiro_pinned),
        cmocka_unit_test(test_xoshiro_deterministic_and_uniform),
        cmocka_unit_test(test_streams_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
