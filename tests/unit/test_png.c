/* Unit tests for stages/common/image.c: PNG decoding under limits, channel
 * conversion, resizing.  Test PNGs are generated with libspng's encoder into
 * a temp folder; 16-bit layout is cross-checked with libpng. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "ingest_fx.h"

static char *dir;

static int setup(void **s) {
    (void)s;
    dir = fx_tmpdir("png");
    return 0;
}
static int teardown(void **s) {
    (void)s;
    fx_rmtree(dir);
    return 0;
}

static char *path_of(const char *name) { return lm_path_join(dir, name); }

static void test_gray8(void **s) {
    (void)s;
    uint8_t px[5 * 4];
    for (int i = 0; i < 20; i++) px[i] = (uint8_t)(i * 13);
    char *p = path_of("g8.png");
    fx_write_png(p, 5, 4, 0, 8, px, NULL, 0);
    lm_image img;
    lm_err e = {0};
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e), 0);
    assert_int_equal(img.width, 5);
    assert_int_equal(img.height, 4);
    assert_int_equal(img.channels, 1);
    for (int i = 0; i < 20; i++) assert_true(img.data[i] == (float)px[i]);
    lm_image_free(&img);
    assert_int_equal(lm_png_read(p, 3, NULL, &img, &e), 0);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 20; i++) assert_true(img.data[c * 20 + i] == (float)px[i]);
    lm_image_free(&img);
    /* u8 at the same size (decoded straight into the buffer) */
    uint8_t out[20];
    assert_int_equal(lm_png_load_u8(p, 1, 5, 4, NULL, out, &e), 0);
    assert_memory_equal(out, px, 20);
    free(p);
}

static void test_gray16(void **s) {
    (void)s;
    uint16_t px[6] = {0, 257, 0x1234, 65535, 32768, 1000};
    char *p = path_of("g16.png");
    fx_write_png(p, 3, 2, 0, 16, px, NULL, 0);
    /* the independent decoder sees the intended big-endian samples */
    uint32_t w, h;
    int depth, ct;
    uint8_t *raw = fx_libpng_read(p, &w, &h, &depth, &ct);
    assert_non_null(raw);
    assert_int_equal(depth, 16);
    assert_int_equal(ct, 0);
    for (int i = 0; i < 6; i++) assert_int_equal(raw[2 * i] << 8 | raw[2 * i + 1], px[i]);
    free(raw);
    lm_image img;
    lm_err e = {0};
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e), 0);
    for (int i = 0; i < 6; i++) assert_float_equal(img.data[i], px[i] / 257.0, 1e-4);
    lm_image_free(&img);
    uint8_t out[6];
    assert_int_equal(lm_png_load_u8(p, 1, 3, 2, NULL, out, &e), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(out[i], (int)lround(px[i] / 257.0));
    free(p);
}

static void test_rgb_and_luminance(void **s) {
    (void)s;
    uint8_t px[2 * 2 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    char *p = path_of("rgb.png");
    fx_write_png(p, 2, 2, 2, 8, px, NULL, 0);
    lm_image img;
    lm_err e = {0};
    assert_int_equal(lm_png_read(p, 3, NULL, &img, &e), 0);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++) assert_true(img.data[c * 4 + i] == (float)px[i * 3 + c]);
    lm_image_free(&img);
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e), 0);
    assert_float_equal(img.data[0], 0.299 * 255, 1e-3);
    assert_float_equal(img.data[1], 0.587 * 255, 1e-3);
    assert_float_equal(img.data[2], 0.114 * 255, 1e-3);
    assert_float_equal(img.data[3], 0.299 * 10 + 0.587 * 20 + 0.114 * 30, 1e-3);
    lm_image_free(&img);
    free(p);
}

static void test_alpha_palette_rgba16(void **s) {
    (void)s;
    lm_err e = {0};
    lm_image img;
    /* gray + alpha: alpha ignored */
    uint8_t ga[2 * 1 * 2] = {100, 0, 200, 255};
    char *p = path_of("ga.png");
    fx_write_png(p, 2, 1, 4, 8, ga, NULL, 0);
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e), 0);
    assert_true(img.data[0] == 100.0f && img.data[1] == 200.0f);
    lm_image_free(&img);
    free(p);
    /* palette */
    uint8_t plte[3 * 3] = {255, 0, 0, 0, 0, 255, 7, 7, 7};
    uint8_t idx[4] = {0, 1, 2, 1};
    p = path_of("pal.png");
    fx_write_png(p, 2, 2, 3, 8, idx, plte, 3);
    assert_int_equal(lm_png_read(p, 3, NULL, &img, &e), 0);
    assert_true(img.data[0] == 255.0f && img.data[4 + 0] == 0.0f && img.data[8 + 0] == 0.0f);
    assert_true(img.data[1] == 0.0f && img.data[8 + 1] == 255.0f);
    assert_true(img.data[2] == 7.0f && img.data[4 + 2] == 7.0f && img.data[8 + 2] == 7.0f);
    lm_image_free(&img);
    free(p);
    /* RGBA 16-bit */
    uint16_t rgba[4] = {65535, 0, 257 * 10, 0};
    p = path_of("rgba16.png");
    fx_write_png(p, 1, 1, 6, 16, rgba, NULL, 0);
    assert_int_equal(lm_png_read(p, 3, NULL, &img, &e), 0);
    assert_float_equal(img.data[0], 255.0, 1e-4);
    assert_float_equal(img.data[1], 0.0, 1e-4);
    assert_float_equal(img.data[2], 10.0, 1e-4);
    lm_image_free(&img);
    free(p);
}

static void test_truncated_png(void **s) {
    (void)s;
    uint8_t px[64 * 64];
    for (int i = 0; i < 64 * 64; i++) px[i] = (uint8_t)(i * 7 ^ i >> 3);
    char *p = path_of("trunc.png");
    fx_write_png(p, 64, 64, 0, 8, px, NULL, 0);
    char *data;
    size_t len;
    lm_err e = {0};
    assert_int_equal(lm_read_file(p, &data, &len, &e), 0);
    assert_true(len > 100);
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, len / 2, f);
    fclose(f);
    free(data);
    lm_image img;
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "truncated or corrupt"));
    assert_null(img.data);
    /* the u8 path reports the same */
    lm_err e2 = {0};
    uint8_t out[64 * 64];
    assert_int_equal(lm_png_load_u8(p, 1, 64, 64, NULL, out, &e2), LUMEN_EDATA);
    assert_non_null(strstr(e2.msg, "truncated or corrupt"));
    /* and through the resize path (decode into a float image first) */
    lm_err e3 = {0};
    assert_int_equal(lm_png_load_u8(p, 1, 32, 32, NULL, out, &e3), LUMEN_EDATA);
    assert_non_null(strstr(e3.msg, "truncated or corrupt"));
    free(p);
}

static void test_not_png_and_missing(void **s) {
    (void)s;
    char *p = fx_write_text(dir, "fake.png", "this is not a png at all\n");
    lm_image img;
    lm_err e = {0};
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "not a PNG"));
    free(p);
    p = path_of("nope.png");
    lm_err e2 = {0};
    assert_int_equal(lm_png_read(p, 1, NULL, &img, &e2), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e2.msg, p));
    assert_non_null(strstr(e2.msg, "missing"));
    free(p);
}

static void test_oversized_refused(void **s) {
    (void)s;
    uint8_t *px = calloc(100 * 50, 1);
    char *p = path_of("big.png");
    fx_write_png(p, 100, 50, 0, 8, px, NULL, 0);
    free(px);
    lm_image_limits lim = LM_IMAGE_LIMITS_DEFAULT;
    lim.max_width = lim.max_height = 64;
    lm_image img;
    lm_err e = {0};
    assert_int_equal(lm_png_read(p, 1, &lim, &img, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "too large"));
    assert_non_null(strstr(e.msg, "100x50"));
    /* decoded-byte budget */
    lim = LM_IMAGE_LIMITS_DEFAULT;
    lim.max_decoded = 4999;
    lm_err e2 = {0};
    assert_int_equal(lm_png_read(p, 1, &lim, &img, &e2), LUMEN_EDATA);
    assert_non_null(strstr(e2.msg, "too large"));
    lim.max_decoded = 5000;
    lm_err e3 = {0};
    assert_int_equal(lm_png_read(p, 1, &lim, &img, &e3), 0);
    lm_image_free(&img);
    free(p);
}

static void test_resize_area_hand_computed(void **s) {
    (void)s;
    /* 3x3 -> 2x2: each output covers 1.5 x 1.5 input pixels; per axis the
     * weights are 2/3, 1/3 (first output) and 1/3, 2/3 (second). */
    float src[9] = {0, 0, 9, 0, 9, 0, 9, 0, 0}, dst[4];
    lm_err e = {0};
    assert_int_equal(lm_resize_plane(src, 3, 3, dst, 2, 2, &e), 0);
    assert_float_equal(dst[0], 1.0, 1e-5); /* 9 * 1/3 * 1/3 */
    assert_float_equal(dst[1], 5.0, 1e-5); /* 9 * 2/3 * 2/3 + 9 * 1/3 * 1/3 */
    assert_float_equal(dst[2], 5.0, 1e-5);
    assert_float_equal(dst[3], 1.0, 1e-5);
    /* integer factor: 4x4 -> 2x2 block means */
    float s4[16] = {1, 2, 10, 20, 3, 4, 30, 40, 0, 0, 8, 8, 0, 4, 8, 0};
    assert_int_equal(lm_resize_plane(s4, 4, 4, dst, 2, 2, &e), 0);
    assert_float_equal(dst[0], 2.5, 1e-5);
    assert_float_equal(dst[1], 25.0, 1e-5);
    assert_float_equal(dst[2], 1.0, 1e-5);
    assert_float_equal(dst[3], 6.0, 1e-5);
    /* 5 -> 2 along x only: output 0 covers [0, 2.5) */
    float s5[5] = {10, 20, 30, 40, 50};
    assert_int_equal(lm_resize_plane(s5, 5, 1, dst, 2, 1, &e), 0);
    assert_float_equal(dst[0], (10 + 20 + 0.5 * 30) / 2.5, 1e-4);
    assert_float_equal(dst[1], (0.5 * 30 + 40 + 50) / 2.5, 1e-4);
}

static void test_resize_bilinear_up_and_identity(void **s) {
    (void)s;
    /* 2 -> 4, align_corners=False: samples at x = -0.25(->0), 0.25, 0.75, 1.25(->1) */
    float src[2] = {0, 8}, dst[8];
    lm_err e = {0};
    assert_int_equal(lm_resize_plane(src, 2, 1, dst, 4, 1, &e), 0);
    assert_float_equal(dst[0], 0.0, 1e-6);
    assert_float_equal(dst[1], 2.0, 1e-6);
    assert_float_equal(dst[2], 6.0, 1e-6);
    assert_float_equal(dst[3], 8.0, 1e-6);
    /* identity at the same size */
    float r[35], o[35];
    for (int i = 0; i < 35; i++) r[i] = (float)((i * 37) % 101) / 3.0f;
    assert_int_equal(lm_resize_plane(r, 7, 5, o, 7, 5, &e), 0);
    assert_memory_equal(r, o, sizeof r);
    /* x shrinks while y grows; a constant stays constant */
    float c[12], d[12];
    for (int i = 0; i < 12; i++) c[i] = 42.0f;
    assert_int_equal(lm_resize_plane(c, 6, 2, d, 3, 4, &e), 0);
    for (int i = 0; i < 12; i++) assert_float_equal(d[i], 42.0, 1e-4);
    assert_int_equal(lm_resize_plane(c, 6, 2, d, 0, 4, &e), LUMEN_EINVAL);
}

static void test_load_u8_resizes_and_rounds(void **s) {
    (void)s;
    uint8_t px[4 * 4] = {0, 1, 100, 101, 0, 0, 100, 100, 255, 255, 7, 8, 255, 254, 9, 9};
    char *p = path_of("r.png");
    fx_write_png(p, 4, 4, 0, 8, px, NULL, 0);
    uint8_t out[4], out3[12];
    lm_err e = {0};
    assert_int_equal(lm_png_load_u8(p, 1, 2, 2, NULL, out, &e), 0);
    assert_int_equal(out[0], 0);   /* 0.25 */
    assert_int_equal(out[1], 100); /* 100.25 */
    assert_int_equal(out[2], 255); /* 254.75 */
    assert_int_equal(out[3], 8);   /* 8.25 */
    assert_int_equal(lm_png_load_u8(p, 3, 2, 2, NULL, out3, &e), 0);
    for (int c = 0; c < 3; c++) assert_memory_equal(out3 + 4 * c, out, 4);
    lm_image img = {.width = 4, .height = 1, .channels = 1, .data = (float[]){2.5f, 2.49f, -3, 300}};
    uint8_t q[4];
    lm_image_to_u8(&img, q);
    assert_int_equal(q[0], 3);
    assert_int_equal(q[1], 2);
    assert_int_equal(q[2], 0);
    assert_int_equal(q[3], 255);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray8),
        cmocka_unit_test(test_gray16),
        cmocka_unit_test(test_rgb_and_luminance),
        cmocka_unit_test(test_alpha_palette_rgba16),
        cmocka_unit_test(test_truncated_png),
        cmocka_unit_test(test_not_png_and_missing),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_resize_area_hand_computed),
        cmocka_unit_test(test_resize_bilinear_up_and_identity),
        cmocka_unit_test(test_load_u8_resizes_and_rounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
