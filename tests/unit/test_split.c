/* Unit tests for stages/ingest/split.c: seeded stratified split, subset (the
 * PRNG itself: test_rng.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ingest/split.h"

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
    /* pinned: the split ingest drew before the PRNG was shared (rows 6, 7,
     * 11, ... go to validation; XXH3-64 of the whole assignment) */
    static const size_t first_val[8] = {6, 7, 11, 23, 38, 45, 47, 50};
    for (size_t i = 0, k = 0; i < n && k < 8; i++)
        if (a[i]) assert_int_equal(i, first_val[k++]);
    assert_true(XXH3_64bits(a, n) == 0xf91cb799d1b8cd8cull);
    assert_int_equal(ingest_split(l, n, 2, 0.2, 3, 0, c, &e), 0);
    assert_true(XXH3_64bits(c, n) == 0x3acd7199e93f3618ull);
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
    /* pinned: the subset ingest drew before the PRNG was shared */
    static const uint32_t pinned[5] = {0, 9, 11, 13, 14};
    uint32_t d[5];
    assert_int_equal(ingest_subset(20, 5, 42, d, &e), 0);
    assert_memory_equal(d, pinned, sizeof d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_deterministic_and_seeded),
        cmocka_unit_test(test_split_stratified),
        cmocka_unit_test(test_split_unstratified),
        cmocka_unit_test(test_subset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
