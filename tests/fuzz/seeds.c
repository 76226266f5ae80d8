/*
 * seeds.c -- the seed corpora of the fuzz harnesses that are made at fuzz
 * time (images and binary files are not committed; tests/fuzz/corpus/ holds
 * the small text seeds).
 *
 *   fuzz-seeds OUT [DATA]
 *
 * OUT/png         the first three cells of DATA/images as they are, and each
 *                 of them resized to 24x24 (lumen's own resize) and written
 *                 with libspng in every colour type and bit depth ingest
 *                 reads: gray 1/2/4/8/16-bit, gray+alpha, RGB 8/16-bit,
 *                 RGBA, palette, and 8-bit gray interlaced.  Without DATA a
 *                 generated gradient stands in for the cells.
 * OUT/checkpoint  a small lumen checkpoint (lm_ckpt_save: every metadata
 *                 entry and the data checksum) and a training-state file
 *                 (the fixtures in tests/fixtures are added by run.sh).
 * OUT/labels      the first 20 lines of DATA/data.csv and DATA/labels.csv,
 *                 behind the option bytes of fuzz_labels.c.
 * OUT/set         for every declared parameter of the built-in stages, its
 *                 default as a --set value (fuzz_set.c's even mode).
 *
 * Exits non-zero with a message on any failure.
 */
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_common.h"
#include "image.h"
#include "nn_model.h"

static const char *out_dir;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "fuzz-seeds: %s: %s\n", what, msg);
    exit(1);
}

static char *path_of(const char *sub, const char *name) {
    static char p[1200];
    snprintf(p, sizeof p, "%s/%s/%s", out_dir, sub, name);
    return p;
}

static void mkdir_sub(const char *sub) {
    char p[1100];
    snprintf(p, sizeof p, "%s/%s", out_dir, sub);
    lm_err e = {0};
    if (lm_mkdirs(p, &e)) die(p, e.msg);
}

/* Encodes `px` (the PNG's own sample layout) with libspng. */
static void write_png(const char *path, uint32_t w, uint32_t h, int ctype, int depth, int interlace,
                      const void *px, size_t len, const struct spng_plte *plte) {
    spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
    struct spng_ihdr ih = {.width = w, .height = h, .bit_depth = (uint8_t)depth, .color_type = (uint8_t)ctype,
                           .interlace_method = (uint8_t)interlace};
    FILE *f = fopen(path, "wb");
    int rc = !c || !f;
    if (!rc) rc = spng_set_png_file(c, f);
    if (!rc) rc = spng_set_ihdr(c, &ih);
    if (!rc && plte) rc = spng_set_plte(c, (struct spng_plte *)plte);
    if (!rc) rc = spng_encode_image(c, px, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    if (rc) die(path, rc > 0 ? spng_strerror(rc) : "cannot write");
    spng_ctx_free(c);
    fclose(f);
}

/* Packs 8-bit gray into `depth` bits per sample (rows padded to bytes). */
static size_t pack(const uint8_t *g, uint32_t w, uint32_t h, int depth, uint8_t *out) {
    size_t row = ((size_t)w * depth + 7) / 8;
    memset(out, 0, row * h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            unsigned v = g[y * w + x] >> (8 - depth);
            size_t bit = (size_t)x * depth;
            out[y * row + bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
        }
    return row * h;
}

static void png_variants(const char *tag, const uint8_t *g, uint32_t n) {
    enum { N = 24 * 24 };
    uint8_t buf[N * 8];
    uint16_t b16[N * 3];
    char name[200];
    (void)n;
    const uint32_t s = 24;
    for (int depth = 1; depth <= 8; depth *= 2) {
        snprintf(name, sizeof name, "%s_gray%d.png", tag, depth);
        size_t len = pack(g, s, s, depth, buf);
        write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_GRAYSCALE, depth, 0, buf, len, NULL);
    }
    snprintf(name, sizeof name, "%s_gray8_interlaced.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_GRAYSCALE, 8, 1, g, N, NULL);
    for (int i = 0; i < N; i++) b16[i] = (uint16_t)(g[i] * 257u);
    snprintf(name, sizeof name, "%s_gray16.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_GRAYSCALE, 16, 0, b16, N * 2, NULL);
    for (int i = 0; i < N; i++) buf[2 * i] = g[i], buf[2 * i + 1] = (uint8_t)(255 - i % 256);
    snprintf(name, sizeof name, "%s_graya8.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 0, buf, N * 2, NULL);
    for (int i = 0; i < N; i++) buf[3 * i] = g[i], buf[3 * i + 1] = (uint8_t)(g[i] / 2), buf[3 * i + 2] = 255 - g[i];
    snprintf(name, sizeof name, "%s_rgb8.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, buf, N * 3, NULL);
    for (int i = 0; i < N * 3; i++) b16[i] = (uint16_t)(buf[i] * 257u);
    snprintf(name, sizeof name, "%s_rgb16.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_TRUECOLOR, 16, 0, b16, N * 6, NULL);
    for (int i = 0; i < N; i++)
        buf[4 * i] = g[i], buf[4 * i + 1] = g[i], buf[4 * i + 2] = (uint8_t)(g[i] ^ 0x55), buf[4 * i + 3] = 200;
    snprintf(name, sizeof name, "%s_rgba8.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 0, buf, N * 4, NULL);
    struct spng_plte plte = {.n_entries = 16};
    for (int i = 0; i < 16; i++)
        plte.entries[i] = (struct spng_plte_entry){(uint8_t)(i * 17), (uint8_t)(255 - i * 17), (uint8_t)(i * 8), 255};
    for (int i = 0; i < N; i++) buf[i] = g[i] >> 4;
    snprintf(name, sizeof name, "%s_palette8.png", tag);
    write_png(path_of("png", name), s, s, SPNG_COLOR_TYPE_INDEXED, 8, 0, buf, N, &plte);
}

static void png_seeds(const char *data) {
    mkdir_sub("png");
    for (int k = 1; k <= 3; k++) {
        char src[900], tag[32];
        snprintf(tag, sizeof tag, "cell%04d", k);
        uint8_t small[24 * 24];
        lm_err e = {0};
        int have = 0;
        if (data) {
            snprintf(src, sizeof src, "%s/images/%s.png", data, tag);
            char *bytes;
            size_t len;
            if (lm_read_file(src, &bytes, &len, &e) == 0) {
                char name[64];
                snprintf(name, sizeof name, "%s.png", tag);
                fuzz_write(path_of("png", name), bytes, len);
                free(bytes);
                if (lm_png_load_u8(src, 1, 24, 24, NULL, small, &e)) die(src, e.msg);
                have = 1;
            }
        }
        if (!have)
            for (int i = 0; i < 24 * 24; i++) small[i] = (uint8_t)(i * k + (i / 24) * 5);
        png_variants(tag, small, 24 * 24);
    }
}

static void checkpoint_seeds(void) {
    mkdir_sub("checkpoint");
    nn_resnet_cfg cfg;
    nn_resnet_cfg_default(&cfg);
    cfg.nstages = 1;
    cfg.blocks[0] = 1;
    cfg.widths[0] = 2;
    cfg.stem_width = 2;
    cfg.stem = NN_STEM_3X3;
    cfg.num_classes = 2;
    nn_model *m;
    lm_err e = {0};
    if (nn_model_create(&cfg, &m, &e)) die("model", e.msg);
    float *p = calloc(m->nparams, sizeof *p), *b = calloc(m->nbuffers + 1, sizeof *b);
    int64_t *c = calloc(m->ncounters + 1, sizeof *c);
    if (!p || !b || !c) die("model", "out of memory");
    nn_model_init(m, 1, p, b, c);
    char *model = nn_resnet_cfg_to_json(&cfg);
    lm_ckpt_meta meta = {
        .model = model,
        .labels = "[\"crack\",\"inactive\"]",
        .stats = "{\"channels\":1,\"mean\":[0.5],\"std\":[0.25]}",
        .thresholds = "[0.458,0.6]",
        .metrics = "{\"val/f1_mean\":0.75}",
        .input = "{\"height\":32,\"width\":32,\"channels\":1}",
        .epoch = 3,
    };
    if (lm_ckpt_save(path_of("checkpoint", "small.safetensors"), m, p, b, c, &meta, &e)) die("checkpoint", e.msg);
    lm_st_writer *w;
    if (lm_st_writer_new(&w, &e) || lm_ckpt_add_model(w, m, p, b, c, &e) ||
        lm_ckpt_state_write(w, "{\"step\":12,\"epoch\":3}", path_of("checkpoint", "state.safetensors"), &e))
        die("state", e.msg);
    lm_st_writer_free(w);
    free(model);
    free(p);
    free(b);
    free(c);
    nn_model_free(m);
}

static void label_seeds(const char *data) {
    mkdir_sub("labels");
    static const char *const files[] = {"data.csv", "labels.csv"};
    static const char opts[] = {'B', 'C', 'D', 'Q'}; /* auto, csv, elpv thr 0, auto names-only */
    for (size_t f = 0; data && f < 2; f++) {
        char src[900];
        snprintf(src, sizeof src, "%s/%s", data, files[f]);
        char *text;
        size_t len;
        lm_err e = {0};
        if (lm_read_file(src, &text, &len, &e)) continue;
        size_t cut = 0;
        for (int lines = 0; cut < len && lines < 20; cut++) lines += text[cut] == '\n';
        for (size_t o = 0; o < sizeof opts; o++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%c", files[f], opts[o]);
            char *buf = malloc(cut + 1);
            if (!buf) die("labels", "out of memory");
            buf[0] = opts[o];
            memcpy(buf + 1, text, cut);
            fuzz_write(path_of("labels", name), buf, cut + 1);
            free(buf);
        }
        free(text);
    }
}

static void set_seeds(void) {
    mkdir_sub("set");
    const rn_registry *reg = fuzz_registry();
    size_t i = 0;
    for (size_t s = 0; s < reg->n_stages; s++)
        for (const lumen_param *p = reg->stages[s].desc->params; p && p->name; p++, i++) {
            const char *def = p->def ? p->def : "1";
            size_t n = strlen(def);
            char *buf = malloc(n + 2), name[200];
            if (!buf) die("set", "out of memory");
            buf[0] = (char)((i & 0x7f) << 1);
            buf[1] = (char)(i >> 7);
            memcpy(buf + 2, def, n);
            snprintf(name, sizeof name, "param_%s_%s", reg->stages[s].desc->name, p->name);
            fuzz_write(path_of("set", name), buf, n + 2);
            free(buf);
        }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: fuzz-seeds OUT [DATA]\n");
        return 2;
    }
    out_dir = argv[1];
    const char *data = argc > 2 && argv[2][0] ? argv[2] : NULL;
    png_seeds(data);
    checkpoint_seeds();
    label_seeds(data);
    set_seeds();
    return 0;
}
