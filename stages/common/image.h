/*
 * image.h -- PNG decoding (libspng) under explicit limits, channel
 * conversion and resizing, for ingest and `runner predict`.
 *
 * Decoding.  Any PNG colour type and bit depth: gray (1/2/4/8/16-bit),
 * gray+alpha, RGB, RGBA (8/16-bit) and palette.  Alpha is ignored (not
 * composited) and gamma/colour chunks are not applied: pixel values are the
 * stored samples.  16-bit samples are scaled to [0,255] (v / 257), lower
 * gray depths are expanded to 8 bits by libspng.
 *
 * Channels.  1: a gray source gives its gray channel; a colour source
 * (RGB/RGBA/palette) gives luminance 0.299 R + 0.587 G + 0.114 B (ITU-R
 * BT.601).  3: a gray source is replicated into R, G, B; a colour source
 * gives R, G, B.
 *
 * Resizing (lm_image_resize) is separable and chosen per axis: an axis that
 * shrinks is area-averaged (an exact box filter: each output pixel is the
 * mean of the input interval it covers, input pixels partly covered weigh by
 * their covered fraction); an axis that grows is bilinear with the
 * align_corners=False convention (output pixel i samples input coordinate
 * (i + 0.5) * in / out - 0.5, clamped to the edges), as PyTorch's
 * interpolate(mode="bilinear").  An axis of equal size is copied.  A
 * non-square input is resized directly to the requested size: the aspect
 * ratio is NOT kept (no crop, no padding).
 *
 * Quantization to u8 rounds to nearest (halves up) and clamps to [0,255].
 *
 * Errors (all name the file): LUMEN_ENOTFOUND for a missing file, LUMEN_EIO
 * for a read error, LUMEN_EDATA for "not a PNG file", a truncated or corrupt
 * PNG (libspng's message), and an image exceeding the limits ("too
 * large"); LUMEN_ENOMEM; LUMEN_EINVAL for bad arguments.
 *
 * Threading: no shared state; all functions may run concurrently on
 * different images.
 */
#ifndef LM_IMAGE_H
#define LM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"

typedef struct lm_image_limits {
    uint32_t max_width;     /* widest image accepted */
    uint32_t max_height;    /* tallest image accepted */
    size_t max_decoded;     /* bytes of the decoded image (as stored) */
    size_t max_chunk;       /* largest single chunk (libspng chunk_size) */
    size_t max_chunk_cache; /* memory for ancillary chunks (cache_size) */
} lm_image_limits;

/* 8192 x 8192, 256 MiB decoded, 16 MiB per chunk, 64 MiB chunk cache. */
#define LM_IMAGE_LIMITS_DEFAULT                                                \
    ((lm_image_limits){8192, 8192, (size_t)256 << 20, (size_t)16 << 20,        \
                       (size_t)64 << 20})

/* A float image: planar [channels][height][width], values in [0,255]. */
typedef struct lm_image {
    uint32_t width, height, channels;
    float *data; /* malloc'ed; owned by the image */
} lm_image;

/* Frees img->data and zeroes *img; NULL-safe. */
void lm_image_free(lm_image *img);

/* Decodes a PNG held in memory.  `name` is used in messages; `channels` is
 * 1 or 3; `lim` NULL means LM_IMAGE_LIMITS_DEFAULT.  On success *out holds a
 * new image at the PNG's own size (free with lm_image_free). */
int lm_png_decode(const void *buf, size_t len, const char *name, int channels,
                  const lm_image_limits *lim, lm_image *out, lm_err *err);

/* Reads and decodes the PNG file at `path`, as lm_png_decode. */
int lm_png_read(const char *path, int channels, const lm_image_limits *lim,
                lm_image *out, lm_err *err);

/* Resizes src to width x height into a new image *dst (see the rules above;
 * equal size copies).  Returns 0, LUMEN_EINVAL (a zero size) or
 * LUMEN_ENOMEM. */
int lm_image_resize(const lm_image *src, uint32_t width, uint32_t height,
                    lm_image *dst, lm_err *err);

/* Resizes one plane; dst must hold dw * dh floats.  Returns 0, LUMEN_EINVAL
 * or LUMEN_ENOMEM (scratch). */
int lm_resize_plane(const float *src, uint32_t sw, uint32_t sh, float *dst,
                    uint32_t dw, uint32_t dh, lm_err *err);

/* Rounds and clamps every value to u8, same planar layout:
 * out holds channels * height * width bytes. */
void lm_image_to_u8(const lm_image *img, uint8_t *out);

/* The whole ingest path: read `path`, decode, convert to `channels`, resize
 * to width x height and write u8 planar [channels][height][width] into out.
 * An 8-bit gray PNG that needs no resize is decoded straight into out. */
int lm_png_load_u8(const char *path, int channels, uint32_t width,
                   uint32_t height, const lm_image_limits *lim, uint8_t *out,
                   lm_err *err);

/* lm_png_load_u8 on a PNG held in memory (`name` for messages): what
 * lm_png_load_u8 does after reading the file, and what the fuzzer drives. */
int lm_png_decode_u8(const void *buf, size_t len, const char *name, int channels,
                     uint32_t width, uint32_t height, const lm_image_limits *lim,
                     uint8_t *out, lm_err *err);

#endif /* LM_IMAGE_H */
