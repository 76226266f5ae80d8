/* ingest_fx.c -- see ingest_fx.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>
#include <spng.h>

#include "ingest_fx.h"
#include "lm_util.h"

char *fx_tmpdir(const char *tag) {
    char *tmpl = lm_sprintf("/tmp/lumen-%s-XXXXXX", tag ? tag : "test");
    assert_non_null(tmpl);
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

static void mkparent(const char *path) {
    char *d = strdup(path);
    char *s = strrchr(d, '/');
    if (s && s != d) {
        *s = 0;
        lm_err e = {0};
        assert_int_equal(lm_mkdirs(d, &e), 0);
    }
    free(d);
}

char *fx_write_text(const char *dir, const char *name, const char *text) {
    char *p = lm_path_join(dir, name);
    mkparent(p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

void fx_write_png(const char *path, uint32_t w, uint32_t h, int color_type, int bit_depth,
                  const void *data, const uint8_t *plte, int n_plte) {
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    assert_non_null(ctx);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ih = {.width = w, .height = h, .bit_depth = (uint8_t)bit_depth,
                           .color_type = (uint8_t)color_type};
    assert_int_equal(spng_set_ihdr(ctx, &ih), 0);
    if (color_type == SPNG_COLOR_TYPE_INDEXED) {
        struct spng_plte p = {.n_entries = (uint32_t)n_plte};
        for (int i = 0; i < n_plte; i++)
            p.entries[i] = (struct spng_plte_entry){plte[3 * i], plte[3 * i + 1], plte[3 * i + 2], 255};
        assert_int_equal(spng_set_plte(ctx, &p), 0);
    }
    int spp = color_type == 0 ? 1 : color_type == 2 ? 3 : color_type == 3 ? 1 : color_type == 4 ? 2 : 4;
    size_t len = (size_t)w * h * spp * (bit_depth == 16 ? 2 : 1);
    int rc = spng_encode_image(ctx, data, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    if (rc) fail_msg("spng_encode_image: %s", spng_strerror(rc));
    size_t n;
    int err;
    void *buf = spng_get_png_buffer(ctx, &n, &err);
    assert_non_null(buf);
    mkparent(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
    spng_ctx_free(ctx);
}

char *fx_data_dir(void) {
    const char *env = getenv("LUMEN_DATA");
    char buf[PATH_MAX];
    const char *d = env && *env ? env : "../shared/data/elpv";
    if (!realpath(d, buf)) return NULL;
    char *labels = lm_path_join(buf, "labels.csv");
    int ok = lm_exists(labels);
    free(labels);
    return ok ? strdup(buf) : NULL;
}

uint8_t *fx_libpng_read(const char *path, uint32_t *w, uint32_t *h, int *depth, int *ctype) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile out = NULL;
    if (!png || !info) goto done;
    if (setjmp(png_jmpbuf(png))) {
        free(out);
        out = NULL;
        goto done;
    }
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    *w = png_get_image_width(png, info);
    *h = png_get_image_height(png, info);
    *depth = png_get_bit_depth(png, info);
    *ctype = png_get_color_type(png, info);
    size_t rb = png_get_rowbytes(png, info);
    png_bytepp rows = png_get_rows(png, info);
    out = malloc(rb * *h);
    for (uint32_t y = 0; out && y < *h; y++) memcpy(out + y * rb, rows[y], rb);
done:
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    fclose(f);
    return out;
}

char *fx_head_lines(const char *path, int n) {
    char *text;
    size_t len;
    lm_err e = {0};
    assert_int_equal(lm_read_file(path, &text, &len, &e), 0);
    char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (p) *p = 0;
    return text;
}

void fx_rmtree(char *dir) {
    if (!dir) return;
    lm_err e = {0};
    lm_rmtree(dir, &e);
    free(dir);
}

/* ------------------------------------------------ generated ELPV cells -- */

#define CELL 300

static uint64_t fx_rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int fx_rng_int(uint64_t *s, int lo, int hi) { /* in [lo, hi] */
    return lo + (int)(fx_rng_next(s) % (uint64_t)(hi - lo + 1));
}
static uint8_t clamp_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* Cell i's labels (1-based): data.csv's crack/inactive for i <= n_data,
 * else only `defective`, drawn as a crack or an inactive area. */
static void cell_labels(int i, int n_data, int *crack, int *inactive, int *defective) {
    if (i <= n_data) {
        *crack = i % 3 == 1;
        *inactive = i % 4 == 3;
        *defective = *crack || *inactive;
    } else {
        *defective = i % 3 == 0;
        *crack = *defective && i % 2;
        *inactive = *defective && !*crack;
    }
}

static void draw_cell(uint8_t *px, int i, int poly, int crack, int inactive) {
    uint64_t s = 0x5eed0000u + (uint64_t)i;
    int grain[10][10];
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++) grain[y][x] = poly ? fx_rng_int(&s, 120, 175) : 150;
    for (int y = 0; y < CELL; y++)
        for (int x = 0; x < CELL; x++) {
            int v = grain[y / 30][x / 30] + fx_rng_int(&s, -6, 6);
            if (x < 4 || y < 4 || x >= CELL - 4 || y >= CELL - 4) v = 40;     /* border */
            else if ((y >= 72 && y < 76) || (y >= 148 && y < 152) || (y >= 224 && y < 228))
                v = 70; /* busbars */
            px[y * CELL + x] = clamp_u8(v);
        }
    if (inactive) { /* a darkened block */
        int w = fx_rng_int(&s, 90, 150), h = fx_rng_int(&s, 90, 150);
        int x0 = fx_rng_int(&s, 4, CELL - 4 - w), y0 = fx_rng_int(&s, 4, CELL - 4 - h);
        for (int y = y0; y < y0 + h; y++)
            for (int x = x0; x < x0 + w; x++) px[y * CELL + x] = (uint8_t)(px[y * CELL + x] * 35 / 100);
    }
    if (crack) { /* a dark line, 3 px wide, from the left edge to the right one */
        int y0 = fx_rng_int(&s, 20, CELL - 20), y1 = fx_rng_int(&s, 20, CELL - 20);
        for (int x = 4; x < CELL - 4; x++) {
            int yc = y0 + (y1 - y0) * (x - 4) / (CELL - 8);
            for (int d = -1; d <= 1; d++) px[(yc + d) * CELL + x] = 35;
        }
    }
}

void fx_elpv_make(const char *dir, int n_cells, int n_data) {
    assert_true(n_cells >= 1 && n_cells <= 9999 && n_data >= 0 && n_data <= n_cells);
    static const char *const PROB[4] = {"0.0", "0.3333333333333333", "0.6666666666666666", "1.0"};
    size_t cap = (size_t)n_cells * 64 + 64;
    char *labels = malloc(cap), *data = malloc(cap);
    assert_non_null(labels);
    assert_non_null(data);
    size_t nl = 0, nd = (size_t)snprintf(data, cap, "filename;crack;inactive\n");
    uint8_t *px = malloc(CELL * CELL);
    assert_non_null(px);
    for (int i = 1; i <= n_cells; i++) {
        int crack, inactive, defective, poly = i % 5 >= 2;
        cell_labels(i, n_data, &crack, &inactive, &defective);
        char name[32];
        snprintf(name, sizeof name, "images/cell%04d.png", i);
        draw_cell(px, i, poly, crack, inactive);
        char *path = lm_path_join(dir, name);
        fx_write_png(path, CELL, CELL, 0, 8, px, NULL, 0);
        free(path);
        const char *prob = PROB[defective ? 2 + i % 2 : i % 5 == 0];
        nl += (size_t)snprintf(labels + nl, cap - nl, "%s  %-20s%s\n", name, prob, poly ? "poly" : "mono");
        if (i <= n_data) nd += (size_t)snprintf(data + nd, cap - nd, "%s;%d;%d\n", name, crack, inactive);
    }
    free(fx_write_text(dir, "labels.csv", labels));
    free(fx_write_text(dir, "data.csv", data));
    free(px);
    free(labels);
    free(data);
}

char *fx_elpv_fixture(const char *tag, int n_cells, int n_data) {
    char *dir = fx_tmpdir(tag);
    fx_elpv_make(dir, n_cells, n_data);
    return dir;
}
