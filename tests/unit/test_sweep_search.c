/*
 * Unit tests for runner/sweep_search.c: grid order, determinism and range of
 * random and TPE points, TPE against random search on a synthetic
 * objective, the ASHA and median pruners, and the results-table statistics
 * against hand-computed values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sweep_search.h"

/* |got - want| <= tol in double precision (cmocka's assert_float_equal
 * compares floats). */
#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), #got)
static void assert_near_at(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol))
        fail_msg("%s = %.12g, want %.12g within %g", what, got, want, tol);
}

/* A space with one dimension of each kind. */
static const rn_dim SPACE[] = {
    {.kind = RN_DIM_CHOICE, .n_choices = 4},
    {.kind = RN_DIM_UNIFORM, .lo = -1.0, .hi = 2.0},
    {.kind = RN_DIM_LOGUNIFORM, .lo = 1e-5, .hi = 1e-1},
    {.kind = RN_DIM_INT, .lo = 2, .hi = 7},
};
#define ND (sizeof SPACE / sizeof SPACE[0])

static void assert_in_space(const rn_dim *d, size_t nd, const double *x) {
    for (size_t j = 0; j < nd; j++) {
        switch (d[j].kind) {
        case RN_DIM_CHOICE:
            assert_true(x[j] == floor(x[j]) && x[j] >= 0 && x[j] < (double)d[j].n_choices);
            break;
        case RN_DIM_UNIFORM:
        case RN_DIM_LOGUNIFORM:
            if (!(x[j] >= d[j].lo && x[j] < d[j].hi))
                fail_msg("dimension %zu: %.17g outside [%g, %g)", j, x[j], d[j].lo, d[j].hi);
            break;
        case RN_DIM_INT:
            assert_true(x[j] == floor(x[j]) && x[j] >= d[j].lo && x[j] <= d[j].hi);
            break;
        default:
            fail();
        }
    }
}

/* ------------------------------------------------------------ the space -- */

static void test_dims_check(void **state) {
    (void)state;
    lm_err e = {0};
    assert_int_equal(rn_dims_check(SPACE, ND, &e), 0);
    rn_dim bad[][1] = {
        {{.kind = RN_DIM_CHOICE, .n_choices = 0}},
        {{.kind = RN_DIM_UNIFORM, .lo = 1, .hi = 1}},
        {{.kind = RN_DIM_UNIFORM, .lo = 0, .hi = INFINITY}},
        {{.kind = RN_DIM_LOGUNIFORM, .lo = 0, .hi = 1}},
        {{.kind = RN_DIM_INT, .lo = 0.5, .hi = 3}},
        {{.kind = RN_DIM_INT, .lo = 3, .hi = 2}},
        {{.kind = 99}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lm_err_clear(&e);
        assert_int_equal(rn_dims_check(bad[i], 1, &e), LUMEN_EINVAL);
        assert_non_null(strstr(e.msg, "dimension 0"));
    }
    rn_dim one_int = {.kind = RN_DIM_INT, .lo = 4, .hi = 4};
    assert_int_equal(rn_dims_check(&one_int, 1, NULL), 0);
}

/* ----------------------------------------------------------------- grid -- */

static void test_grid(void **state) {
    (void)state;
    rn_dim d[2] = {{.kind = RN_DIM_CHOICE, .n_choices = 2}, {.kind = RN_DIM_CHOICE, .n_choices = 3}};
    assert_int_equal(rn_grid_size(d, 2), 6);
    const double want[6][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 2}};
    for (size_t i = 0; i < 6; i++) {
        double x[2] = {-1, -1};
        rn_grid_point(d, 2, i, x);
        assert_true(x[0] == want[i][0] && x[1] == want[i][1]);
    }
    assert_int_equal(rn_grid_size(d, 0), 1);
    assert_int_equal(rn_grid_size(SPACE, ND), 0);                 /* continuous dims */
    assert_int_equal(rn_grid_size(&SPACE[3], 1), 0);              /* INT too */
    rn_dim huge[2] = {{.kind = RN_DIM_CHOICE, .n_choices = SIZE_MAX / 2},
                      {.kind = RN_DIM_CHOICE, .n_choices = 3}};
    assert_int_equal(rn_grid_size(huge, 2), 0);                   /* overflow */
}

/* --------------------------------------------------------------- random -- */

static void test_random_deterministic(void **state) {
    (void)state;
    double a[ND], b[ND], c[ND];
    size_t differ = 0;
    for (size_t i = 0; i < 50; i++) {
        rn_random_point(SPACE, ND, 42, i, a);
        rn_random_point(SPACE, ND, 42, i, b);
        rn_random_point(SPACE, ND, 43, i, c);
        assert_memory_equal(a, b, sizeof a);
        differ += memcmp(a, c, sizeof a) != 0;
    }
    assert_int_equal(differ, 50); /* the uniform dimension alone differs */
    /* Appending a dimension leaves the draws of the others alone. */
    rn_random_point(SPACE, ND - 1, 42, 7, b);
    rn_random_point(SPACE, ND, 42, 7, a);
    assert_memory_equal(a, b, (ND - 1) * sizeof a[0]);
}

static void test_random_ranges(void **state) {
    (void)state;
    enum { N = 20000, BINS = 5 };
    size_t choice[4] = {0}, ints[6] = {0}, logbin[BINS] = {0}, ubin[BINS] = {0};
    for (size_t i = 0; i < N; i++) {
        double x[ND];
        rn_random_point(SPACE, ND, 7, i, x);
        assert_in_space(SPACE, ND, x);
        choice[(size_t)x[0]]++;
        ubin[(size_t)((x[1] + 1.0) / 3.0 * BINS)]++;
        logbin[(size_t)((log10(x[2]) + 5.0) / 4.0 * BINS)]++;
        ints[(size_t)x[3] - 2]++;
    }
    /* Each count is binomial; 5 standard deviations of N p (1 - p) at most
     * ~ 5 * sqrt(20000 * 0.2 * 0.8) = 283 for p = 0.2. */
    for (size_t k = 0; k < 4; k++) assert_true(fabs((double)choice[k] - N / 4.0) < 5 * sqrt(N * 0.25 * 0.75));
    for (size_t k = 0; k < 6; k++) assert_true(fabs((double)ints[k] - N / 6.0) < 5 * sqrt(N / 6.0 * 5 / 6.0));
    for (size_t k = 0; k < BINS; k++) {
        assert_true(fabs((double)ubin[k] - N / 5.0) < 5 * sqrt(N * 0.2 * 0.8));
        assert_true(fabs((double)logbin[k] - N / 5.0) < 5 * sqrt(N * 0.2 * 0.8)); /* uniform in log */
    }
    assert_true(ints[0] > 0 && ints[5] > 0); /* both ends reached */
}

/* ------------------------------------------------------------------ TPE -- */

/* Observations: n random points of SPACE and an objective that likes choice
 * 1, x1 near 0.5, small learning rates and large integers. */
static void make_obs(size_t n, uint64_t seed, double *X, double *y) {
    for (size_t i = 0; i < n; i++) {
        double *x = X + i * ND;
        rn_random_point(SPACE, ND, seed, i, x);
        y[i] = (x[0] != 1) + (x[1] - 0.5) * (x[1] - 0.5) + 0.1 * (log10(x[2]) + 5) + 0.1 * (7 - x[3]);
    }
}

static void test_tpe_deterministic_and_in_range(void **state) {
    (void)state;
    enum { NOBS = 30 };
    double X[NOBS * ND], y[NOBS];
    make_obs(NOBS, 3, X, y);
    size_t differ = 0;
    size_t ints[6] = {0};
    for (size_t i = 0; i < 400; i++) {
        double a[ND], b[ND], c[ND];
        assert_int_equal(rn_tpe_point(SPACE, ND, X, y, NOBS, 0, NULL, 11, NOBS + i, a), 0);
        assert_int_equal(rn_tpe_point(SPACE, ND, X, y, NOBS, 0, NULL, 11, NOBS + i, b), 0);
        assert_int_equal(rn_tpe_point(SPACE, ND, X, y, NOBS, 0, NULL, 12, NOBS + i, c), 0);
        assert_memory_equal(a, b, sizeof a);
        differ += memcmp(a, c, sizeof a) != 0;
        assert_in_space(SPACE, ND, a);
        assert_in_space(SPACE, ND, c);
        ints[(size_t)a[3] - 2]++;
    }
    assert_true(differ >= 390);
    assert_true(ints[5] > 0 && ints[0] > 0); /* both ends of the INT reached */

    /* maximize mirrors minimize: the same ranking gives the same point. */
    double neg[NOBS], a[ND], b[ND];
    for (size_t i = 0; i < NOBS; i++) neg[i] = -y[i];
    rn_tpe_point(SPACE, ND, X, y, NOBS, 0, NULL, 5, 99, a);
    rn_tpe_point(SPACE, ND, X, neg, NOBS, 1, NULL, 5, 99, b);
    assert_memory_equal(a, b, sizeof a);
}

/* Distance of a coordinate to the optimum of test_tpe_focuses, scaled to [0, 1]. */
static double focus_dist(const rn_dim *p, double v) {
    switch (p->kind) {
    case RN_DIM_INT: return fabs(v - 17) / 20;
    case RN_DIM_LOGUNIFORM: return fabs(log10(v) + 2) / 6;
    case RN_DIM_UNIFORM: return fabs(v - 0.8);
    default: return v != 3;
    }
}

/* TPE concentrates where the good observations are, in every kind of
 * dimension: on a one-dimensional objective (the distance to 17, 1e-2, 0.8
 * or choice 3), at least 1.5 times as many of the points drawn after 30
 * random trials lie near the optimum (scaled distance <= 0.1, about a fifth
 * of the space) as of random points (measured: 300, 146, 116 and 300 of
 * 300 against 58, 47, 61 and 42).  Not more, and not the mean distance:
 * with 3 good trials hyperopt's bandwidth floor (range / 5 here) keeps l
 * broad, and TPE spends draws where no bad trial fell, where the prior
 * alone makes l/g = (n_bad + 1) / (n_good + 1). */
static void test_tpe_focuses(void **state) {
    (void)state;
    enum { NOBS = 30, DRAWS = 300 };
    static const rn_dim sp[] = {
        {.kind = RN_DIM_INT, .lo = 0, .hi = 20},
        {.kind = RN_DIM_LOGUNIFORM, .lo = 1e-6, .hi = 1.0},
        {.kind = RN_DIM_UNIFORM, .lo = 0.0, .hi = 1.0},
        {.kind = RN_DIM_CHOICE, .n_choices = 5},
    };
    for (size_t k = 0; k < 4; k++) {
        const rn_dim *p = &sp[k];
        double X[NOBS], y[NOBS];
        size_t near_t = 0, near_r = 0;
        for (size_t i = 0; i < NOBS; i++) {
            rn_random_point(p, 1, 21, i, &X[i]);
            y[i] = focus_dist(p, X[i]);
        }
        for (size_t i = NOBS; i < NOBS + DRAWS; i++) {
            double x, r;
            assert_int_equal(rn_tpe_point(p, 1, X, y, NOBS, 0, NULL, 21, i, &x), 0);
            rn_random_point(p, 1, 21, i, &r);
            assert_in_space(p, 1, &x);
            near_t += focus_dist(p, x) <= 0.1;
            near_r += focus_dist(p, r) <= 0.1;
        }
        print_message("kind %d: %zu of %d TPE points near the optimum, %zu random ones\n", p->kind, near_t,
                      DRAWS, near_r);
        assert_true(2 * near_t > 3 * near_r);
    }
}

static void test_tpe_startup_is_random(void **state) {
    (void)state;
    enum { NOBS = 12 };
    double X[NOBS * ND], y[NOBS], a[ND], b[ND];
    make_obs(NOBS, 3, X, y);
    for (size_t n = 0; n < 10; n++) { /* default n_startup 10 */
        rn_tpe_point(SPACE, ND, X, y, n, 0, NULL, 9, n, a);
        rn_random_point(SPACE, ND, 9, n, b);
        assert_memory_equal(a, b, sizeof a);
    }
    rn_tpe_opts o = {.n_startup = 13};
    rn_tpe_point(SPACE, ND, X, y, NOBS, 0, &o, 9, NOBS, a);
    rn_random_point(SPACE, ND, 9, NOBS, b);
    assert_memory_equal(a, b, sizeof a);
    rn_tpe_point(SPACE, ND, X, y, NOBS, 0, NULL, 9, NOBS, a); /* 12 >= 10: TPE */
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_tpe_failed_trials(void **state) {
    (void)state;
    enum { NOBS = 20 };
    double X[NOBS * ND], y[NOBS], x[ND];
    make_obs(NOBS, 4, X, y);
    for (size_t i = 0; i < NOBS; i += 3) y[i] = NAN;   /* failed trials */
    X[1 * ND + 1] = NAN;                                /* a missing coordinate */
    X[2 * ND + 2] = 5.0;                                /* outside: clamped */
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(rn_tpe_point(SPACE, ND, X, y, NOBS, 0, NULL, 1, i, x), 0);
        assert_in_space(SPACE, ND, x);
    }
    for (size_t i = 0; i < NOBS; i++) y[i] = NAN; /* all failed: still a point */
    rn_tpe_opts o = {.gamma = 1.0};
    assert_int_equal(rn_tpe_point(SPACE, ND, X, y, NOBS, 1, &o, 1, 0, x), 0);
    assert_in_space(SPACE, ND, x);
}

/* The objective of the comparison: minimum 0 at lr = 10^-2.5, u = 0.3,
 * choice 2. */
static const rn_dim OBJ_SPACE[] = {
    {.kind = RN_DIM_LOGUNIFORM, .lo = 1e-5, .hi = 1.0},
    {.kind = RN_DIM_UNIFORM, .lo = 0.0, .hi = 1.0},
    {.kind = RN_DIM_CHOICE, .n_choices = 4},
};

static double objective(const double *x) {
    double a = log10(x[0]) + 2.5, b = x[1] - 0.3;
    return a * a + b * b + (x[2] != 2 ? 0.5 : 0.0);
}

static void test_tpe_beats_random(void **state) {
    (void)state;
    enum { TRIALS = 40, REPS = 40, ND3 = 3 };
    double best_tpe[REPS], best_rand[REPS];
    size_t wins = 0;
    for (size_t r = 0; r < REPS; r++) {
        uint64_t seed = 1000 + r;
        double X[TRIALS * ND3], y[TRIALS];
        best_tpe[r] = best_rand[r] = INFINITY;
        for (size_t i = 0; i < TRIALS; i++) {
            double x[ND3];
            rn_random_point(OBJ_SPACE, ND3, seed, i, x);
            best_rand[r] = fmin(best_rand[r], objective(x));
            assert_int_equal(rn_tpe_point(OBJ_SPACE, ND3, X, y, i, 0, NULL, seed, i, X + i * ND3), 0);
            y[i] = objective(X + i * ND3);
            best_tpe[r] = fmin(best_tpe[r], y[i]);
        }
        wins += best_tpe[r] < best_rand[r];
    }
    double mt, mr, diff, half;
    rn_mean_sd(best_tpe, REPS, &mt, NULL);
    rn_mean_sd(best_rand, REPS, &mr, NULL);
    rn_paired_diff(best_tpe, best_rand, REPS, &diff, &half); /* random - TPE */
    print_message("TPE vs random, %d trials x %d seeds: mean best %.4f vs %.4f, TPE better in %zu/%d, "
                  "random - TPE = %.4f +- %.4f (95%%)\n",
                  TRIALS, REPS, mt, mr, wins, REPS, diff, half);
    assert_true(mt < 0.5 * mr);        /* clearly better on average */
    assert_true(diff - half > 0);      /* and not by chance */
    assert_true(wins >= REPS * 3 / 4); /* in a clear majority of runs */
}

/* -------------------------------------------------------------- pruners -- */

static void test_asha_rungs(void **state) {
    (void)state;
    rn_asha a = {0}; /* defaults 1, 3 */
    int rungs[] = {1, 3, 9, 27, 81};
    for (int e = 1, k = 0; e <= 81; e++) {
        int want = e == rungs[k];
        assert_int_equal(rn_asha_is_rung(&a, e), want);
        k += want;
    }
    assert_int_equal(rn_asha_is_rung(NULL, 9), 1);
    assert_int_equal(rn_asha_is_rung(&a, 0), 0);
    rn_asha b = {.min_epochs = 2, .reduction = 2};
    assert_true(rn_asha_is_rung(&b, 2) && rn_asha_is_rung(&b, 4) && rn_asha_is_rung(&b, 16));
    assert_false(rn_asha_is_rung(&b, 1) || rn_asha_is_rung(&b, 3) || rn_asha_is_rung(&b, 6));
    assert_int_equal(rn_asha_is_rung(&b, 1 << 30), 1);
    assert_int_equal(rn_asha_is_rung(&b, 0x7fffffff), 0);
}

static void test_asha_prune(void **state) {
    (void)state;
    rn_asha a = {.min_epochs = 1, .reduction = 3};
    const double others[] = {0.9, 0.8, 0.7};
    /* 4 values at rung 3: keep max(1, floor(4/3)) = 1 */
    assert_int_equal(rn_asha_prune(&a, 3, 0.95, others, 3, 1), 0);
    assert_int_equal(rn_asha_prune(&a, 3, 0.75, others, 3, 1), 1);
    assert_int_equal(rn_asha_prune(&a, 3, 0.9, others, 3, 1), 0);  /* tie with the best goes on */
    assert_int_equal(rn_asha_prune(&a, 2, 0.1, others, 3, 1), 0);  /* not a rung */
    assert_int_equal(rn_asha_prune(&a, 9, 0.0, NULL, 0, 1), 0);    /* first at a rung */
    assert_int_equal(rn_asha_prune(&a, 9, NAN, NULL, 0, 1), 0);
    /* minimize mirrors maximize */
    const double neg[] = {-0.9, -0.8, -0.7};
    assert_int_equal(rn_asha_prune(&a, 3, -0.95, neg, 3, 0), 0);
    assert_int_equal(rn_asha_prune(&a, 3, -0.75, neg, 3, 0), 1);
    /* 6 values: keep 2 */
    const double five[] = {5, 4, 3, 2, 1};
    assert_int_equal(rn_asha_prune(&a, 1, 4.5, five, 5, 1), 0);
    assert_int_equal(rn_asha_prune(&a, 1, 3.5, five, 5, 1), 1);
    assert_int_equal(rn_asha_prune(&a, 1, 1.5, five, 5, 0), 0);
    assert_int_equal(rn_asha_prune(&a, 1, 2.5, five, 5, 0), 1);
    /* a diverged trial is worst; diverged others do not count */
    assert_int_equal(rn_asha_prune(&a, 1, NAN, five, 5, 1), 1);
    const double failed[] = {NAN, NAN, 0.5};
    assert_int_equal(rn_asha_prune(&a, 1, 0.6, failed, 3, 1), 0);
    assert_int_equal(rn_asha_prune(&a, 1, 0.4, failed, 3, 1), 1);
}

static void test_median_prune(void **state) {
    (void)state;
    rn_median m = {0}; /* defaults: from epoch 1, at least 3 others */
    const double o[] = {0.2, 0.8, 0.5, 0.6};
    /* median of {0.2, 0.5, 0.6, 0.8} = 0.55 */
    assert_int_equal(rn_median_prune(&m, 1, 0.5, o, 2, 1), 0); /* 2 < min_trials */
    assert_int_equal(rn_median_prune(&m, 1, 0.54, o, 4, 1), 1);
    assert_int_equal(rn_median_prune(&m, 1, 0.55, o, 4, 1), 0); /* equal: goes on */
    assert_int_equal(rn_median_prune(&m, 1, 0.56, o, 4, 1), 0);
    assert_int_equal(rn_median_prune(&m, 1, 0.56, o, 4, 0), 1); /* minimize */
    assert_int_equal(rn_median_prune(&m, 1, 0.54, o, 4, 0), 0);
    /* odd count: median of {0.2, 0.8, 0.5} = 0.5 */
    assert_int_equal(rn_median_prune(&m, 1, 0.5, o, 3, 1), 0);
    assert_int_equal(rn_median_prune(&m, 1, 0.49, o, 3, 1), 1);
    rn_median late = {.min_epochs = 5, .min_trials = 1};
    assert_int_equal(rn_median_prune(&late, 4, 0.0, o, 4, 1), 0); /* before min_epochs */
    assert_int_equal(rn_median_prune(&late, 5, 0.0, o, 1, 1), 1); /* one other is enough */
    const double dup[] = {1, 1, 1, NAN, 3};
    assert_int_equal(rn_median_prune(&m, 2, 0.9, dup, 5, 1), 1);   /* median 1 */
    assert_int_equal(rn_median_prune(&m, 2, 1.0, dup, 5, 1), 0);
    assert_int_equal(rn_median_prune(&m, 2, NAN, dup, 5, 1), 1);
    const double few[] = {1, NAN, NAN};
    assert_int_equal(rn_median_prune(&m, 2, 0.0, few, 3, 1), 0);  /* one finite other */
}

/* ----------------------------------------------------------- statistics -- */

static void test_mean_sd(void **state) {
    (void)state;
    /* {2, 4, 4, 4, 5, 5, 7, 9}: mean 5, squared deviations sum 32, sd sqrt(32/7) */
    const double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
    double mean, sd;
    rn_mean_sd(v, 8, &mean, &sd);
    assert_near(mean, 5.0, 1e-12);
    assert_near(sd, sqrt(32.0 / 7.0), 1e-12);
    rn_mean_sd(v, 1, &mean, &sd);
    assert_true(mean == 2.0 && sd == 0.0);
    rn_mean_sd(NULL, 0, &mean, &sd);
    assert_true(mean == 0.0 && sd == 0.0);
    rn_mean_sd(v, 8, NULL, NULL);
}

static void test_t975(void **state) {
    (void)state;
    assert_near(rn_t975(1), 12.706, 5e-4);
    assert_near(rn_t975(2), 4.303, 5e-4);
    assert_near(rn_t975(10), 2.228, 5e-4);
    assert_near(rn_t975(30), 2.042, 5e-4);
    assert_near(rn_t975(31), 2.039513, 1e-6); /* the expansion takes over */
    assert_near(rn_t975(60), 2.000298, 1e-6);
    assert_near(rn_t975(1000), 1.962339, 1e-6);
    assert_near(rn_t975(1000000000), 1.959964, 1e-6);
    assert_true(isnan(rn_t975(0)) && isnan(rn_t975(-3)));
    for (int df = 1; df < 200; df++) assert_true(rn_t975(df + 1) < rn_t975(df)); /* decreasing */
}

static void test_paired_diff(void **state) {
    (void)state;
    /* b - a = {1, 2, 3, 2}: mean 2, sd sqrt(2/3), half = 3.182446 * sqrt(2/3) / 2 */
    const double a[] = {10, 11, 9, 12}, b[] = {11, 13, 12, 14};
    double mean, half;
    rn_paired_diff(a, b, 4, &mean, &half);
    assert_near(mean, 2.0, 1e-12);
    assert_near(half, 3.182446305 * sqrt(2.0 / 3.0) / 2.0, 1e-9);
    assert_near(half, 1.2992, 1e-4);
    rn_paired_diff(a, b, 1, &mean, &half);
    assert_true(mean == 1.0 && isnan(half));
    rn_paired_diff(NULL, NULL, 0, &mean, &half);
    assert_true(mean == 0.0 && isnan(half));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dims_check),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_random_deterministic),
        cmocka_unit_test(test_random_ranges),
        cmocka_unit_test(test_tpe_deterministic_and_in_range),
        cmocka_unit_test(test_tpe_focuses),
        cmocka_unit_test(test_tpe_startup_is_random),
        cmocka_unit_test(test_tpe_failed_trials),
        cmocka_unit_test(test_tpe_beats_random),
        cmocka_unit_test(test_asha_rungs),
        cmocka_unit_test(test_asha_prune),
        cmocka_unit_test(test_median_prune),
        cmocka_unit_test(test_mean_sd),
        cmocka_unit_test(test_t975),
        cmocka_unit_test(test_paired_diff),
    };
    return cmocka_run_group_tests_name("sweep_search", tests, NULL, NULL);
}
