/* errsheet.c -- see errsheet.h. */
#include "errsheet.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spng.h>

#define BG 24       /* background */
#define INK 255     /* text */
#define TITLE_INK 200

/* A 5x7 bitmap font: each glyph is 7 rows of 5 bits, the top row first,
 * bit 4 the leftmost pixel. */
typedef struct glyph {
    char c;
    uint8_t rows[7];
} glyph;

static const glyph FONT[] = {
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'?', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},
    {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}},
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}},
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}},
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}},
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}},
};

static const uint8_t *glyph_rows(char c) {
    c = (char)toupper((unsigned char)c);
    const uint8_t *q = NULL;
    for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++) {
        if (FONT[i].c == c) return FONT[i].rows;
        if (FONT[i].c == '?') q = FONT[i].rows;
    }
    return q;
}

int lm_errsheet_text(uint8_t *img, int iw, int ih, int x, int y, const char *s, int max_chars,
                     uint8_t ink) {
    int n = 0;
    for (; s && *s && n < max_chars; s++, n++) {
        if (*s == ' ') continue;
        const uint8_t *g = glyph_rows(*s);
        for (int r = 0; g && r < 7; r++)
            for (int b = 0; b < 5; b++) {
                int px = x + n * 6 + b, py = y + r;
                if ((g[r] >> (4 - b)) & 1 && px >= 0 && py >= 0 && px < iw && py < ih)
                    img[(size_t)py * (size_t)iw + (size_t)px] = ink;
            }
    }
    return n;
}

void lm_errsheet_size(int k, int per, int *width, int *height) {
    *width = LM_ERRSHEET_PAD + per * (LM_ERRSHEET_THUMB + LM_ERRSHEET_PAD);
    *height = LM_ERRSHEET_PAD + 2 * k * (LM_ERRSHEET_TITLE_H + LM_ERRSHEET_THUMB +
                                         3 * LM_ERRSHEET_LINE_H + LM_ERRSHEET_PAD);
}

typedef struct cand {
    int64_t i;
    float key; /* larger = worse */
} cand;

static int by_key(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int lm_errsheet_pick(const float *p, const float *y, int64_t n, int k, const float *thr, int per,
                     int64_t *pick, int64_t *count, lm_err *err) {
    if (k < 1 || per < 1 || per > LM_ERRSHEET_MAX_PER || n < 0)
        return lm_fail(err, LUMEN_EINVAL, "errsheet: %d labels, %d per row, %lld samples", k, per,
                       (long long)n);
    cand *c = malloc(((size_t)n + 1) * sizeof *c);
    if (!c) return lm_fail(err, LUMEN_ENOMEM, "errsheet: out of memory");
    for (int j = 0; j < k; j++)
        for (int e = 0; e < 2; e++) {
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++) {
                float pi = p[i * k + j];
                int pos = y[i * k + j] >= 0.5f, said = pi >= thr[j];
                if (e == 0 && !pos && said) c[m++] = (cand){i, pi};        /* false positive */
                else if (e == 1 && pos && !said) c[m++] = (cand){i, -pi};  /* false negative */
            }
            qsort(c, (size_t)m, sizeof *c, by_key);
            int64_t *row = pick + (size_t)(2 * j + e) * (size_t)per;
            for (int q = 0; q < per; q++) row[q] = q < m ? c[q].i : -1;
            count[2 * j + e] = m;
        }
    free(c);
    return 0;
}

/* Draws cell (row, col) for sample i. */
static int draw_cell(uint8_t *img, int W, int H, int x0, int y0, int64_t i, const float *p,
                     const float *y, const char *name, int k, const char *const *labels,
                     lm_errsheet_pixels_fn pixels, void *user, lm_err *err) {
    const uint8_t *px;
    uint32_t c, h, w;
    int rc = pixels(user, i, &px, &c, &h, &w, err);
    if (rc) return rc;
    const int T = LM_ERRSHEET_THUMB;
    for (int r = 0; h && w && r < T; r++)
        for (int q = 0; q < T; q++) {
            size_t sr = (size_t)r * h / T, sc = (size_t)q * w / T;
            img[(size_t)(y0 + r) * (size_t)W + (size_t)(x0 + q)] = px[sr * w + sc];
        }
    (void)H;
    int chars = T / 6, ty = y0 + T + 2;
    const char *nm = name ? name : "?";
    size_t l = strlen(nm);
    lm_errsheet_text(img, W, H, x0, ty, l > (size_t)chars ? nm + l - (size_t)chars : nm, chars, INK);
    char line[256];
    int off = snprintf(line, sizeof line, "Y:");
    int any = 0;
    for (int j = 0; j < k && off < (int)sizeof line; j++)
        if (y[i * k + j] >= 0.5f) {
            off += snprintf(line + off, sizeof line - (size_t)off, " %s", labels[j]);
            any = 1;
        }
    if (!any) snprintf(line + off, sizeof line - (size_t)off, " -");
    lm_errsheet_text(img, W, H, x0, ty + LM_ERRSHEET_LINE_H, line, chars, INK);
    off = snprintf(line, sizeof line, "P:");
    for (int j = 0; j < k && off < (int)sizeof line; j++)
        off += snprintf(line + off, sizeof line - (size_t)off, " %.2f", (double)p[i * k + j]);
    lm_errsheet_text(img, W, H, x0, ty + 2 * LM_ERRSHEET_LINE_H, line, chars, INK);
    return 0;
}

static int write_png(const char *path, const uint8_t *img, int W, int H, lm_err *err) {
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
    struct spng_ihdr ih = {.width = (uint32_t)W, .height = (uint32_t)H, .bit_depth = 8,
                           .color_type = SPNG_COLOR_TYPE_GRAYSCALE};
    int rc = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!rc) rc = spng_set_ihdr(ctx, &ih);
    if (!rc) rc = spng_encode_image(ctx, img, (size_t)W * (size_t)H, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    size_t len = 0;
    int e2 = 0;
    void *png = rc ? NULL : spng_get_png_buffer(ctx, &len, &e2);
    spng_ctx_free(ctx);
    if (rc || !png) {
        free(png);
        return lm_fail(err, LUMEN_EIO, "%s: cannot encode the PNG: %s", path,
                       spng_strerror(rc ? rc : e2));
    }
    rc = lm_write_file_atomic(path, png, len, err);
    free(png);
    return rc;
}

int lm_errsheet_write(const char *png_path, const float *p, const float *y,
                      const char *const *names, int64_t n, int k, const char *const *labels,
                      const float *thr, int per, lm_errsheet_pixels_fn pixels, void *user,
                      lm_err *err) {
    if (k < 1 || per < 1 || per > LM_ERRSHEET_MAX_PER)
        return lm_fail(err, LUMEN_EINVAL, "errsheet: %d labels, %d per row", k, per);
    int W, H;
    lm_errsheet_size(k, per, &W, &H);
    int64_t *pick = malloc((size_t)(2 * k * per) * sizeof *pick), count[2 * 64];
    uint8_t *img = malloc((size_t)W * (size_t)H);
    int rc = 0;
    if (!pick || !img || k > 64) {
        rc = lm_fail(err, LUMEN_ENOMEM, "errsheet: out of memory");
        goto out;
    }
    memset(img, BG, (size_t)W * (size_t)H);
    if ((rc = lm_errsheet_pick(p, y, n, k, thr, per, pick, count, err))) goto out;
    const int row_h = LM_ERRSHEET_TITLE_H + LM_ERRSHEET_THUMB + 3 * LM_ERRSHEET_LINE_H + LM_ERRSHEET_PAD;
    for (int r = 0; r < 2 * k && rc == 0; r++) {
        int j = r / 2, e = r % 2, y0 = LM_ERRSHEET_PAD + r * row_h;
        int64_t shown = count[r] < per ? count[r] : per;
        char title[256];
        snprintf(title, sizeof title, "%s: %s AT P %s %.2f (%lld OF %lld)", labels[j],
                 e ? "FALSE NEGATIVES" : "FALSE POSITIVES", e ? "<" : ">=", (double)thr[j],
                 (long long)shown, (long long)count[r]);
        lm_errsheet_text(img, W, H, LM_ERRSHEET_PAD, y0 + 2, title, (W - LM_ERRSHEET_PAD) / 6, TITLE_INK);
        for (int q = 0; q < per && rc == 0; q++) {
            int64_t i = pick[(size_t)r * (size_t)per + (size_t)q];
            if (i < 0) break;
            int x0 = LM_ERRSHEET_PAD + q * (LM_ERRSHEET_THUMB + LM_ERRSHEET_PAD);
            rc = draw_cell(img, W, H, x0, y0 + LM_ERRSHEET_TITLE_H, i, p, y, names ? names[i] : NULL, k,
                           labels, pixels, user, err);
        }
    }
    if (rc == 0) rc = write_png(png_path, img, W, H, err);
out:
    free(pick);
    free(img);
    return rc;
}
