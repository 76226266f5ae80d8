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
