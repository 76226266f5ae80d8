/* Unit tests for kernels/cpu/cpu_augment.c: the fused augmentation kernel against
 * its plain per-operation references, the dihedral group, identities and the
 * documented conventions (angle sign, shift direction, fill modes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment_ref.h"
#include "cpu/cpu_augment.h"
#include "rng.h"
#include <lumen/plugin.h>

static uint8_t *rand_img(int c, int h, int w, uint64_t seed) {
    uint8_t *p = malloc((size_t)c * h * w);
    assert_non_null(p);
    lm_rng r;
    lm_rng_init(&r, seed, 99, 0, 0);
    for (size_t i = 0; i < (size_t)c * h * w; i++)
        p[i] = (uint8_t)lm_rng_below(&r, 256);
    return p;
}

static float *fbuf(size_t n) {
    float *p = calloc(n, sizeof *p);
    assert_non_null(p);
    return p;
}

static const float MEAN3[3] = {0.5f, 0.4f, 0.3f};
static const float STD3[3] = {0.25f, 0.2f, 0.3f};

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates as a large difference */
    }
    return m;
}

/* ---- the dihedral group ------------------------------------------------ */

static void test_dihedral_group_tables(void **state) {
    (void)state;
    for (int a = 0; a < 8; a++) {
        assert_int_equal(nn_aug_dihedral_compose(a, 0), a);
        assert_int_equal(nn_aug_dihedral_compose(0, a), a);
        assert_int_equal(nn_aug_dihedral_compose(nn_aug_dihedral_inverse(a), a), 0);
        assert_int_equal(nn_aug_dihedral_compose(a, nn_aug_dihedral_inverse(a)), 0);
        for (int b = 0; b < 8; b++)
            for (int c = 0; c < 8; c++) /* associativity */
                assert_int_equal(
                    nn_aug_dihedral_compose(a, nn_aug_dihedral_compose(b, c)),
                    nn_aug_dihedral_compose(nn_aug_dihedral_compose(a, b), c));
    }
    assert_int_equal(nn_aug_dihedral_of(1, 0, 0), 4);
    assert_int_equal(nn_aug_dihedral_of(0, 1, 0), 6);
    assert_int_equal(nn_aug_dihedral_of(0, 0, 3), 3);
    assert_int_equal(nn_aug_dihedral_of(1, 1, 0), 2); /* hflip+vflip = rot180 */
    assert_int_equal(nn_aug_dihedral_of(0, 0, -1), 3);
}

/* Applies element k to a float image and checks against the same effect
 * built from the naive hflip / rot90 references. */
static void test_dihedral_f32_matches_reference_sequence(void **state) {
    (void)state;
    const int c = 2, h = 5, w = 7;
    size_t n = (size_t)c * h * w;
    float *src = fbuf(n), *got = fbuf(n), *a = fbuf(n), *b = fbuf(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (float)i;
    for (int k = 0; k < 8; k++) {
        assert_int_equal(nn_aug_dihedral_f32(src, c, h, w, k, got), 0);
        memcpy(a, src, n * sizeof *a);
        int hh = h, ww = w;
        if (k & 4) {
            nn_aug_ref_hflip(a, c, hh, ww, b);
            memcpy(a, b, n * sizeof *a);
        }
        for (int r = 0; r < (k & 3); r++) {
            nn_aug_ref_rot90(a, c, hh, ww, b);
            memcpy(a, b, n * sizeof *a);
            int t = hh; hh = ww; ww = t;
        }
        assert_memory_equal(got, a, n * sizeof *a);
    }
    free(src); free(got); free(a); free(b);
}

static void test_dihedral_closure_distinct_and_inverse(void **state) {
    (void)state;
    const int c = 1, h = 6, w = 6;
    size_t n = (size_t)c * h * w;
    float *src = fbuf(n), *views[8], *back = fbuf(n), *ab = fbuf(n), *tmp = fbuf(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (float)(i * 7 % 23) + 0.25f * (float)i; /* no symmetry */
    for (int k = 0; k < 8; k++) {
        views[k] = fbuf(n);
        assert_int_equal(nn_aug_dihedral_f32(src, c, h, w, k, views[k]), 0);
    }
    for (int a = 0; a < 8; a++) {
        /* 8 distinct images */
        for (int b = 0; b < a; b++)
            assert_true(memcmp(views[a], views[b], n * sizeof(float)) != 0);
        /* inverse brings the original back */
        assert_int_equal(
            nn_aug_dihedral_f32(views[a], c, h, w, nn_aug_dihedral_inverse(a), back), 0);
        assert_memory_equal(back, src, n * sizeof(float));
        /* closure: a applied after b equals one of the 8, namely compose(a,b) */
        for (int b = 0; b < 8; b++) {
            assert_int_equal(nn_aug_dihedral_f32(views[b], c, h, w, a, ab), 0);
            int k = nn_aug_dihedral_compose(a, b);
            assert_memory_equal(ab, views[k], n * sizeof(float));
        }
    }
    /* a plain vflip reference is element 6 */
    nn_aug_ref_vflip(src, c, h, w, tmp);
    assert_memory_equal(tmp, views[6], n * sizeof(float));
    for (int k = 0; k < 8; k++)
        free(views[k]);
    free(src); free(back); free(ab); free(tmp);
}

/* ---- fused kernel vs references ----------------------------------------- */

static void check_fused_vs_ref(int c, int h, int w, const nn_aug_params *p,
                               float tol, uint64_t seed) {
    uint8_t *src = rand_img(c, h, w, seed);
    size_t n = (size_t)c * h * w;
    float *got = fbuf(n), *want = fbuf(n);
    assert_int_equal(nn_aug_apply(src, c, h, w, p, MEAN3, STD3, got), 0);
    assert_int_equal(nn_aug_ref_apply(src, c, h, w, p, MEAN3, STD3, want), 0);
    float d = max_abs_diff(got, want, n);
    if (d > tol)
        fail_msg("k=%d angle=%g dx=%g dy=%g fill=%d: max diff %g > %g", p->dihedral,
                 p->angle_deg, p->dx, p->dy, p->fill, d, tol);
    if (tol == 0)
        assert_memory_equal(got, want, n * sizeof(float));
    free(src); free(got); free(want);
}

static void test_fused_dihedral_exact(void **state) {
    (void)state;
    for (int k = 0; k < 8; k++) {
        nn_aug_params p;
        nn_aug_params_identity(&p);
        p.dihedral = k;
        check_fused_vs_ref(3, 9, 13, &p, 0, 10 + k); /* rectangular */
        check_fused_vs_ref(1, 16, 16, &p, 0, 20 + k);
        p.gamma = 0.7;
        p.brightness = -0.05;
        p.contrast = 1.3;
        check_fused_vs_ref(3, 11, 8, &p, 0, 30 + k); /* + photometric, exact */
    }
}

static void test_fused_integer_shift_exact(void **state) {
    (void)state;
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.fill = NN_AUG_FILL_CONSTANT;
    p.fill_value = 0.3;
    int shifts[][2] = {{3, 0}, {0, -2}, {-4, 5}, {20, 1}};
    for (int k = 0; k < 8; k++)
        for (size_t i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
            p.dihedral = k;
            p.dx = shifts[i][0];
            p.dy = shifts[i][1];
            p.fill = NN_AUG_FILL_CONSTANT;
            check_fused_vs_ref(2, 10, 12, &p, 0, 40 + k);
            p.fill = NN_AUG_FILL_BORDER;
            check_fused_vs_ref(2, 10, 12, &p, 0, 50 + k);
            p.fill = NN_AUG_FILL_MEAN; /* the fill mean is summed in another order */
            check_fused_vs_ref(2, 10, 12, &p, 1e-5f, 60 + k);
        }
}

static void test_fused_bilinear_matches_reference(void **state) {
    (void)state;
    double angles[] = {0.5, -3, 7.25, 30, -45, 90, 180};
    double shifts[][2] = {{0, 0}, {0.5, -0.25}, {2.75, 1.5}, {-7.1, 3.3}};
    int fills[] = {NN_AUG_FILL_MEAN, NN_AUG_FILL_BORDER, NN_AUG_FILL_CONSTANT};
    uint64_t seed = 100;
    for (size_t a = 0; a < sizeof angles / sizeof angles[0]; a++)
        for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++)
            for (int f = 0; f < 3; f++) {
                nn_aug_params p;
                nn_aug_params_identity(&p);
                p.dihedral = (int)(seed % 8);
                p.angle_deg = angles[a];
                p.dx = shifts[s][0];
                p.dy = shifts[s][1];
                p.fill = fills[f];
                p.fill_value = 0.8;
                /* tone values are in [0,1]; 1/std <= 5 scales the error */
                check_fused_vs_ref(1, 17, 17, &p, 2e-5f, seed++);
                check_fused_vs_ref(3, 12, 19, &p, 2e-5f, seed++);
                p.gamma = 1.4;
                p.contrast = 0.6;
                p.brightness = 0.1;
                check_fused_vs_ref(3, 12, 19, &p, 2e-5f, seed++);
            }
    /* fractional shift only (no rotation) also takes the bilinear path */
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.dx = 0.5;
    check_fused_vs_ref(1, 8, 8, &p, 2e-5f, 7);
}

/* Random shapes (down to 1 pixel wide), angles and shifts: the fused kernel
 * stays within the source (run under ASan) and matches the reference. */
static void test_fused_random_cases(void **state) {
    (void)state;
    lm_rng r;
    lm_rng_init(&r, 2024, 7, 0, 0);
    for (int i = 0; i < 400; i++) {
        int c = 1 + (int)lm_rng_below(&r, 3);
        int h = 1 + (int)lm_rng_below(&r, 20), w = 1 + (int)lm_rng_below(&r, 20);
        nn_aug_params p;
        nn_aug_params_identity(&p);
        p.dihedral = (int)lm_rng_below(&r, 8);
        int kind = (int)lm_rng_below(&r, 4);
        p.angle_deg = kind == 0 ? 0 : kind == 1 ? 90.0 * (double)lm_rng_below(&r, 5)
                                                : lm_rng_range(&r, -180, 180);
        p.dx = kind == 3 ? lm_rng_range(&r, -w, w) : (double)((int)lm_rng_below(&r, 7) - 3);
        p.dy = kind == 3 ? lm_rng_range(&r, -h, h) : (double)((int)lm_rng_below(&r, 7) - 3);
        p.fill = (int)lm_rng_below(&r, 3);
        p.fill_value = lm_rng_uniform(&r);
        p.gamma = lm_rng_range(&r, 0.5, 2);
        p.contrast = lm_rng_range(&r, 0.5, 1.5);
        p.brightness = lm_rng_range(&r, -0.2, 0.2);
        check_fused_vs_ref(c, h, w, &p, 3e-5f, 1000 + (uint64_t)i);
    }
}

/* ---- identities and conventions ----------------------------------------- */

static void test_identity_is_plain_normalisation(void **state) {
    (void)state;
    const int c = 3, h = 7, w = 5;
    size_t n = (size_t)c * h * w, plane = (size_t)h * w;
    uint8_t *src = rand_img(c, h, w, 3);
    float *got = fbuf(n);
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.angle_deg = 360; /* a full turn is the identity too */
    p.dx = -0.0;
    assert_int_equal(nn_aug_apply(src, c, h, w, &p, MEAN3, STD3, got), 0);
    for (size_t i = 0; i < n; i++) {
        size_t ch = i / plane;
        float want = ((float)src[i] / 255.0f - MEAN3[ch]) / STD3[ch];
        assert_true(got[i] == want);
    }
    /* the bilinear reference at angle 0, shift 0 is the identity as well */
    float *tone = fbuf(n), *warped = fbuf(n);
    for (size_t i = 0; i < n; i++)
        tone[i] = (float)src[i] / 255.0f;
    nn_aug_ref_warp(tone, c, h, w, 0, 0, 0, NN_AUG_FILL_CONSTANT, 0.5, warped);
    assert_memory_equal(tone, warped, n * sizeof(float));
    free(src); free(got); free(tone); free(warped);
}

/* A 90 degree rotation through the bilinear path equals dihedral element 1
 * (one counter-clockwise quarter turn): checks the angle sign convention. */
static void test_rotation_sign_matches_rot90(void **state) {
    (void)state;
    const int h = 15, w = 15;
    uint8_t *src = rand_img(1, h, w, 5);
    float *a = fbuf((size_t)h * w), *b = fbuf((size_t)h * w);
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.angle_deg = 90;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, MEAN3, STD3, a), 0);
    assert_int_equal(nn_aug_dihedral(src, 1, h, w, 1, MEAN3, STD3, b), 0);
    assert_true(max_abs_diff(a, b, (size_t)h * w) < 1e-5f);
    /* and -90 equals three quarter turns */
    p.angle_deg = -90;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, MEAN3, STD3, a), 0);
    assert_int_equal(nn_aug_dihedral(src, 1, h, w, 3, MEAN3, STD3, b), 0);
    assert_true(max_abs_diff(a, b, (size_t)h * w) < 1e-5f);
    free(src); free(a); free(b);
}

/* dx > 0 moves content right, dy > 0 moves it down; revealed pixels get the
 * fill. */
static void test_shift_direction_and_fill(void **state) {
    (void)state;
    const int h = 6, w = 8;
    uint8_t *src = rand_img(1, h, w, 8);
    float *o = fbuf((size_t)h * w);
    const float m0 = 0, s1 = 1;
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.dx = 2;
    p.dy = 1;
    p.fill = NN_AUG_FILL_CONSTANT;
    p.fill_value = 0.5;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, &m0, &s1, o), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float want = (x < 2 || y < 1) ? 0.5f
                                          : (float)src[(y - 1) * w + (x - 2)] / 255.0f;
            assert_true(o[y * w + x] == want);
        }
    p.fill = NN_AUG_FILL_BORDER;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, &m0, &s1, o), 0);
    assert_true(o[0] == (float)src[0] / 255.0f);
    assert_true(o[w + 1] == (float)src[0] / 255.0f);     /* (1,1) <- (-1,0) */
    assert_true(o[2 * w] == (float)src[w] / 255.0f);     /* (0,2) <- (-2,1) */
    free(src); free(o);
}

static void test_photometric_semantics(void **state) {
    (void)state;
    const int h = 8, w = 8;
    size_t n = (size_t)h * w;
    uint8_t *src = rand_img(1, h, w, 9);
    float *o = fbuf(n);
    const float m0 = 0, s1 = 1;
    nn_aug_params p;
    nn_aug_params_identity(&p);
    /* contrast 0: every pixel becomes the image mean */
    p.contrast = 0;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, &m0, &s1, o), 0);
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += src[i] / 255.0;
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(o[i] - mean) < 1e-6);
    /* brightness adds in tone units and clamps to [0,1] */
    nn_aug_params_identity(&p);
    p.brightness = 0.2;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, &m0, &s1, o), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(o[i] - fminf(1.0f, src[i] / 255.0f + 0.2f)) < 1e-6f);
    /* gamma < 1 brightens mid-tones */
    nn_aug_params_identity(&p);
    p.gamma = 0.5;
    assert_int_equal(nn_aug_apply(src, 1, h, w, &p, &m0, &s1, o), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(o[i] - sqrtf(src[i] / 255.0f)) < 1e-6f);
    free(src); free(o);
}

static void test_bad_arguments(void **state) {
    (void)state;
    uint8_t src[4] = {0};
    float dst[4];
    const float m = 0, s = 1, s0 = 0;
    nn_aug_params p;
    nn_aug_params_identity(&p);
    p.dihedral = 8;
    assert_int_equal(nn_aug_apply(src, 1, 2, 2, &p, &m, &s, dst), LUMEN_EINVAL);
    nn_aug_params_identity(&p);
    p.gamma = 0;
    assert_int_equal(nn_aug_apply(src, 1, 2, 2, &p, &m, &s, dst), LUMEN_EINVAL);
    nn_aug_params_identity(&p);
    p.angle_deg = NAN;
    assert_int_equal(nn_aug_apply(src, 1, 2, 2, &p, &m, &s, dst), LUMEN_EINVAL);
    nn_aug_params_identity(&p);
    assert_int_equal(nn_aug_apply(src, 1, 2, 2, &p, &m, &s0, dst), LUMEN_EINVAL);
    assert_int_equal(nn_aug_apply(src, 0, 2, 2, &p, &m, &s, dst), LUMEN_EINVAL);
    assert_int_equal(nn_aug_dihedral_f32((float *)dst, 1, 2, 2, -1, dst + 0), LUMEN_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dihedral_group_tables),
        cmocka_unit_test(test_dihedral_f32_matches_reference_sequence),
        cmocka_unit_test(test_dihedral_closure_distinct_and_inverse),
        cmocka_unit_test(test_fused_dihedral_exact),
        cmocka_unit_test(test_fused_integer_shift_exact),
        cmocka_unit_test(test_fused_bilinear_matches_reference),
        cmocka_unit_test(test_fused_random_cases),
        cmocka_unit_test(test_identity_is_plain_normalisation),
        cmocka_unit_test(test_rotation_sign_matches_rot90),
        cmocka_unit_test(test_shift_direction_and_fill),
        cmocka_unit_test(test_photometric_semantics),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("augment", tests, NULL, NULL);
}
