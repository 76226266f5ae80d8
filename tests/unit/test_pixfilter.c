/* Tests of the pixel filters (pixfilter.h): the high-pass channel against a
 * naive two-dimensional Gaussian written out here (no separable passes, in
 * double), its edge cases, and the JSON record that datasets and
 * checkpoints carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pixfilter.h"

/* The mirrored index, written as the definition: reflect at -1/2 steps of
 * the edge pixel (..., 2, 1, | 0, 1, ..., n-1, | n-2, ...), repeatedly. */
static long naive_mirror(long i, long n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/* 128 + gain * (x - G * x) with the 2-D kernel g(a) g(b) / (sum g)^2. */
static void naive_highpass(const uint8_t *x, int h, int w, double sigma, double gain, uint8_t *out) {
    long r = (long)ceil(3.0 * sigma);
    double sum = 0;
    for (long a = -r; a <= r; a++) sum += exp(-(double)(a * a) / (2 * sigma * sigma));
    for (int y = 0; y < h; y++)
        for (int u = 0; u < w; u++) {
            double b = 0;
            for (long dy = -r; dy <= r; dy++)
                for (long dx = -r; dx <= r; dx++) {
                    double k = exp(-(double)(dy * dy + dx * dx) / (2 * sigma * sigma)) / (sum * sum);
                    b += k * x[naive_mirror(y + dy, h) * w + naive_mirror(u + dx, w)];
                }
            double v = floor(128.0 + gain * (x[y * w + u] - b) + 0.5);
            out[y * w + u] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static void pattern(uint8_t *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)((i * 37 + seed * 101 + (i * i) % 13 * 11) % 256);
}

/* Every plane of 1- and 3-channel images, square and not, at blur widths
 * whose kernel is wider than the image (the mirror wraps more than once):
 * within one grey level of the naive filter (float rounding), the source
 * planes untouched. */
static void test_highpass_matches_naive_2d(void **s) {
    (void)s;
    const int shapes[][3] = {{1, 17, 23}, {3, 9, 9}, {1, 1, 5}, {1, 4, 1}};
    const double sig[] = {0.5, 1.5, 4.0}, gains[] = {1.0, 2.0, 5.0};
    size_t exact = 0, total = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int k = 0; k < 3; k++) {
            int c = shapes[si][0], h = shapes[si][1], w = shapes[si][2];
            size_t plane = (size_t)h * w;
            uint8_t *buf = calloc(2 * (size_t)c * plane, 1), *src = malloc((size_t)c * plane),
                    *want = malloc(plane);
            pattern(buf, (size_t)c * plane, (unsigned)(si * 3 + (size_t)k));
            memcpy(src, buf, (size_t)c * plane);
            lm_pixfilter f = {sig[k], gains[k]};
            lm_err e = {0};
            assert_int_equal(lm_pixfilter_channels(&f, c), 2 * c);
            if (lm_pixfilter_apply(&f, buf, c, (uint32_t)h, (uint32_t)w, &e)) fail_msg("%s", e.msg);
            assert_memory_equal(buf, src, (size_t)c * plane);
            for (int ch = 0; ch < c; ch++) {
                naive_highpass(src + (size_t)ch * plane, h, w, sig[k], gains[k], want);
                const uint8_t *got = buf + (size_t)(c + ch) * plane;
                for (size_t p = 0; p < plane; p++) {
                    if (abs((int)got[p] - (int)want[p]) > 1)
                        fail_msg("%dx%dx%d sigma %g gain %g: channel %d pixel %zu is %d, naive %d", c,
                                 h, w, sig[k], gains[k], ch, p, got[p], want[p]);
                    exact += got[p] == want[p];
                    total++;
                }
            }
            free(buf), free(src), free(want);
        }
    assert_true(exact * 100 >= total * 98); /* off by one only at rounding ties */
}

/* A flat image is 128 everywhere; a one-pixel dark line on a flat ground
 * is far below 128 on the line, above it beside the line (the blur spreads
 * the line's darkness), and 128 far away; a brightness step between two
 * "grains" fades out of the channel within a few sigma of the boundary. */
static void test_highpass_shapes(void **s) {
    (void)s;
    enum { H = 24, W = 40 };
    uint8_t buf[2 * H * W];
    lm_pixfilter f = {1.5, 2.0};
    lm_err e = {0};
    memset(buf, 173, H * W);
    assert_int_equal(lm_pixfilter_apply(&f, buf, 1, H, W, &e), 0);
    for (int p = 0; p < H * W; p++) assert_int_equal(buf[H * W + p], 128);

    memset(buf, 200, H * W);
    for (int y = 0; y < H; y++) buf[y * W + 10] = 120;
    assert_int_equal(lm_pixfilter_apply(&f, buf, 1, H, W, &e), 0);
    const uint8_t *hp = buf + H * W;
    assert_true(hp[5 * W + 10] < 128 - 100);
    assert_true(hp[5 * W + 11] > 128 && hp[5 * W + 9] > 128);
    assert_int_equal(hp[5 * W + 30], 128);

    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) buf[y * W + x] = x < W / 2 ? 90 : 150;
    assert_int_equal(lm_pixfilter_apply(&f, buf, 1, H, W, &e), 0);
    assert_int_equal(hp[3 * W + 2], 128);
    assert_int_equal(hp[3 * W + W - 3], 128);
    assert_true(hp[3 * W + W / 2 - 1] < 128 && hp[3 * W + W / 2] > 128);
}

/* What datasets and checkpoints record, and what is refused. */
static void test_json_and_checks(void **s) {
    (void)s;
    lm_pixfilter f = {2.5, 3.0}, g, none = {0};
    lm_err e = {0};
    cJSON *j = lm_pixfilter_to_json(&f);
    char *text = cJSON_PrintUnformatted(j);
    assert_string_equal(text, "{\"highpass\":{\"sigma\":2.5,\"gain\":3}}");
    assert_int_equal(lm_pixfilter_from_json(j, "x", &g, &e), 0);
    assert_true(lm_pixfilter_equal(&f, &g));
    free(text);
    cJSON_Delete(j);
    j = lm_pixfilter_to_json(&none);
    assert_true(cJSON_IsNull(j));
    assert_int_equal(lm_pixfilter_from_json(j, "x", &g, &e), 0);
    assert_true(lm_pixfilter_none(&g));
    cJSON_Delete(j);
    assert_int_equal(lm_pixfilter_from_json(NULL, "x", &g, &e), 0);
    assert_true(lm_pixfilter_none(&g) && !lm_pixfilter_equal(&f, &g));
    assert_int_equal(lm_pixfilter_channels(&none, 3), 3);
    assert_int_equal(lm_pixfilter_src_channels(&f, 2), 1);
    assert_int_equal(lm_pixfilter_src_channels(&f, 6), 3);
    assert_int_equal(lm_pixfilter_src_channels(&f, 3), 0);

    const char *bad[] = {"{\"highpass\":{\"sigma\":0.1,\"gain\":2}}",
                         "{\"highpass\":{\"sigma\":2,\"gain\":0}}",
                         "{\"highpass\":{\"sigma\":0,\"gain\":2}}",
                         "{\"highpass\":{\"sigma\":2}}",
                         "{\"highpass\":{\"sigma\":2,\"gain\":2,\"x\":1}}",
                         "{\"lowpass\":{\"sigma\":2,\"gain\":2}}",
                         "\"highpass\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *b = cJSON_Parse(bad[i]);
        assert_non_null(b);
        memset(&e, 0, sizeof e);
        assert_int_equal(lm_pixfilter_from_json(b, "ck.safetensors", &g, &e), LUMEN_EDATA);
        if (!strstr(e.msg, "ck.safetensors: \"filter\" must be") || !strstr(e.msg, "got "))
            fail_msg("%s: %s", bad[i], e.msg);
        assert_true(lm_pixfilter_none(&g));
        cJSON_Delete(b);
    }
    lm_pixfilter big = {40, 2}, weak = {2, 0}, small = {0.2, 2};
    memset(&e, 0, sizeof e); /* lm_fail keeps the first message */
    assert_int_equal(lm_pixfilter_check(&big, "highpass", &e), LUMEN_EINVAL);
    if (!strstr(e.msg, "highpass: sigma must be 0 (off) or in [0.3, 32] pixels, got 40")) fail_msg("%s", e.msg);
    assert_int_equal(lm_pixfilter_check(&small, "highpass", &e), LUMEN_EINVAL);
    memset(&e, 0, sizeof e);
    assert_int_equal(lm_pixfilter_check(&weak, "highpass", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "gain must be in (0, 64], got 0"));
    uint8_t px[8] = {0};
    assert_int_equal(lm_pixfilter_apply(&big, px, 1, 2, 2, &e), LUMEN_EINVAL);
    char d[96];
    lm_pixfilter_describe(&f, d, sizeof d);
    assert_string_equal(d, "highpass(sigma 2.5, gain 3)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_highpass_matches_naive_2d),
        cmocka_unit_test(test_highpass_shapes),
        cmocka_unit_test(test_json_and_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
