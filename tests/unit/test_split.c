/* Unit tests for stages/ingest/split.c: PRNG, seeded stratified split, subset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/split.h"

static void test_splitmix_reference(void **s) {
    (void)s;
    /* reference outputs of Vigna's splitmix64.c for seed 0 */
    uint64_t x = 0;
    assert_true(ingest_splitmix64(&x) == 0xe220a8397b1dcdafull);
    assert_true(ingest_splitmix64(&x) == 0x6e789e6aa1b965f4ull);
    assert_true(ingest_splitmix64(&x) == 0x06c45d188009454full);
}

static void test_rng_deterministic_and_uniform(void **s) {
    (void)s;
    ingest_rng a, b, c;
    ingest_rng_seed(&a, 42);
    ingest_rng_seed(&b, 42);
    ingest_rng_seed(&c, 43);
    int same = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = ingest_rng_next(&a);
        assert_true(x == ingest_rng_next(&b));
        same += x == ingest_rng_next(&c);
    }
    assert_int_equal(same, 0);
    int cnt[6] = {0};
    for (int i = 0; i < 60000; i++) {
        uint64_t v = ingest_rng_below(&a, 6);
        assert_true(v < 6);
        cnt[v]++;
    }
    for (int i = 0; i < 6; i++) assert_in_range(cnt[i], 9500, 10500);
    uint32_t v[50];
    for (int i = 0; i < 50; i++) v[i] = (uint32_t)i;
    ingest_shuffle(v, 50, &a);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[v[i]]++;
        moved += v[i] != (uint32_t)i;
    }
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 25);
}

/* 1003 rows, 2 labels, four combinations in file order interleaved:
 * (0,0) 600, (1,0) 250, (1,1) 100, (0,1) 53. */
static float *make_labels(size_t *n, int *group) {
    static const int sizes[4] = {600, 250, 100, 53};
    static const float combo[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
    *n = 1003;
    float *l = malloc(*n * 2 * sizeof *l);
    int left[4] = {sizes[0], sizes[1], sizes[2], sizes[3]};
    for (size_t i = 0, g = 0; i < *n; g = (g + 1) % 4) {
        if (!left[g]) continue;
        left[g]--;
        group[i] = (int)g;
        l[2 * i] = combo[g][0];
        l[2 * i + 1] = combo[g][1];
        i++;
    }
    return l;
}

static void test_split_deterministic_and_seeded(void **s) {
    (void)s;
    size_t n;
    int group[1003];
    float *l = make_labels(&n, group);
    uint8_t a[1003], b[1003], c[1003];
    lm_err e = {0};
    assert_int_equal(ingest_split(l, n, 2, 0.2, 7, 1, a, &e), 0);
    assert_int_equal(ingest_split(l, n, 2, 0.2, 7, 1, b, &e), 0);
    assert_int_equal(ingest_split(l, n, 2, 0.2, 8, 1, c, &e), 0);
    assert_memory_equal(a, b, n);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += a[i] != c[i];
    assert_true(diff > 50);
    free(l);
}

static void test_split_stratified(void **s) {
    (void)s;
    size_t n;
    int group[1003];
    float *l = make_labels(&n, group);
    static const int sizes[4] = {600, 250, 100, 53};
    const double vals[] = {0.0, 0.1, 0.2, 0.25, 0.5, 0.9};
    for (size_t vi = 0; vi < sizeof vals / sizeof *vals; vi++) {
        for (uint64_t seed = 0; seed < 5; seed++) {
            uint8_t sp[1003];
            lm_err e = {0};
            assert_int_equal(ingest_split(l, n, 2, vals[vi], seed, 1, sp, &e), 0);
            int inval[4] = {0};
            for (size_t i = 0; i < n; i++) {
                assert_true(sp[i] <= 1);
                inval[group[i]] += sp[i];
            }
            for (int g = 0; g < 4; g++) {
                long want = lround(vals[vi] * sizes[g]);
                assert_in_range(inval[g], want > 0 ? want - 1 : 0, want + 1);
                assert_int_equal(inval[g], want); /* documented: exactly round() */
            }
        }
    }
    free(l);
}

static void test_split_unstratified(void **s) {
    (void)s;
    size_t n;
    int group[1003];
    float *l = make_labels(&n, group);
    uint8_t sp[1003], sp2[1003];
    lm_err e = {0};
    assert_int_equal(ingest_split(l, n, 2, 0.2, 3, 0, sp, &e), 0);
    size_t nval = 0;
    for (size_t i = 0; i < n; i++) nval += sp[i];
    assert_int_equal(nval, lround(0.2 * 1003));
    /* differs from the stratified draw of the same seed */
    assert_int_equal(ingest_split(l, n, 2, 0.2, 3, 1, sp2, &e), 0);
    assert_memory_not_equal(sp, sp2, n);
    assert_int_equal(ingest_split(l, n, 2, 1.5, 3, 0, sp, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "split.val"));
    free(l);
}

static void test_subset(void **s) {
    (void)s;
    uint32_t a[64], b[64], c[64];
    lm_err e = {0};
    assert_int_equal(ingest_subset(2324, 64, 1, a, &e), 0);
    assert_int_equal(ingest_subset(2324, 64, 1, b, &e), 0);
    assert_int_equal(ingest_subset(2324, 64, 2, c, &e), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    for (int i = 0; i < 64; i++) {
        assert_true(a[i] < 2324);
        if (i) assert_true(a[i] > a[i - 1]);
    }
    assert_true(a[63] > 1000); /* spread over the file, not the first rows */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix_reference),
        cmocka_unit_test(test_rng_deterministic_and_uniform),
        cmocka_unit_test(test_split_deterministic_and_seeded),
        cmocka_unit_test(test_split_stratified),
        cmocka_unit_test(test_split_unstratified),
        cmocka_unit_test(test_subset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
