/*
 * fuzz_png.c -- PNG decoding and resizing as ingest and `runner predict`
 * do it (image.h: lm_png_decode_u8 is lm_png_load_u8 after the file read).
 *
 * Input: the PNG file's bytes, so the seeds are real PNGs.  The harness
 * rewrites every chunk's CRC before decoding (libspng is not instrumented,
 * and a mutation that only breaks a CRC would stop at the CRC check; this
 * way mutations reach the chunk parsers, inflate and the pixel paths).  Each
 * input is decoded (lm_png_decode, 1 channel) and, when that works,
 * loaded through the ingest path three ways: at its own size with one
 * channel (the straight decode into the caller's buffer for 8-bit gray),
 * and resized with 1 and 3 channels to a size taken from the input's
 * length (shrinking and growing axes both occur).  Limits are smaller than
 * the default (1024 x 1024, 4 MiB decoded, 1 MiB per chunk) so that a
 * decompression bomb costs milliseconds; the limit checks are the same code.
 * Checked beyond the sanitizers: decode and load agree on success, and every
 * float pixel lies in [0, 255].
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "fuzz_check.h"


/* CRC-32 of PNG (ISO 3309), as zlib's crc32. */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* Rewrites the CRC of every complete chunk after the signature. */
static void fix_crcs(uint8_t *b, size_t n) {
    size_t at = 8;
    while (at + 12 <= n) {
        uint32_t len = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
        if (len > n - at - 12) break;
        uint32_t c = crc32_png(b + at + 4, (size_t)len + 4);
        uint8_t *o = b + at + 8 + len;
        o[0] = (uint8_t)(c >> 24), o[1] = (uint8_t)(c >> 16), o[2] = (uint8_t)(c >> 8), o[3] = (uint8_t)c;
        at += 12 + (size_t)len;
    }
}

static const lm_image_limits LIM = {1024, 1024, (size_t)4 << 20, (size_t)1 << 20, (size_t)4 << 20};

static int one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    one(copy, size);
    free(copy);
    return 0;
}

static int one(const uint8_t *data, size_t size) {
    lm_image img;
    lm_err e = {0};
    int rc = lm_png_decode(data, size, "fuzz.png", 1, &LIM, &img, &e);
    if (rc) {
        CHECK(e.msg[0] != 0);
        CHECK(img.data == NULL);
        /* the load path must refuse it too */
        uint8_t px[4];
        lm_err e2 = {0};
        CHECK(lm_png_decode_u8(data, size, "fuzz.png", 1, 2, 2, &LIM, px, &e2) != 0);
        return 0;
    }
    size_t n = (size_t)img.width * img.height;
    CHECK(img.channels == 1 && n > 0);
    for (size_t i = 0; i < n; i++) CHECK(img.data[i] >= 0.0f && img.data[i] <= 255.0f);

    /* its own size, one channel: equals the rounded decode */
    uint8_t *own = malloc(n);
    uint8_t *ref = malloc(n);
    CHECK(own && ref);
    rc = lm_png_decode_u8(data, size, "fuzz.png", 1, img.width, img.height, &LIM, own, &e);
    CHECK(rc == 0);
    lm_image_to_u8(&img, ref);
    CHECK(memcmp(own, ref, n) == 0);
    free(own);
    free(ref);

    /* resized, 1 and 3 channels */
    uint32_t w = 1 + (uint32_t)(size % 67), h = 1 + (uint32_t)((size / 67) % 53);
    uint8_t *small = malloc((size_t)w * h * 3);
    CHECK(small);
    for (int ch = 1; ch <= 3; ch += 2) {
        rc = lm_png_decode_u8(data, size, "fuzz.png", ch, w, h, &LIM, small, &e);
        CHECK(rc == 0);
    }
    lm_image rs;
    rc = lm_image_resize(&img, w, h, &rs, &e);
    CHECK(rc == 0);
    for (size_t i = 0; i < (size_t)w * h; i++) CHECK(isfinite(rs.data[i]) && rs.data[i] >= -0.01f && rs.data[i] <= 255.01f);
    lm_image_free(&rs);
    free(small);
    lm_image_free(&img);
    return 0;
}
