/* image.c -- see image.h. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spng.h>

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

void lm_image_free(lm_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* ---------------------------------------------------------------- decode -- */

/* An opened PNG: header read, output format chosen, size checked. */
typedef struct png_src {
    spng_ctx *ctx;
    uint32_t w, h;
    int fmt;      /* SPNG_FMT_* passed to spng_decode_image */
    int spp;      /* samples per pixel in the decoded buffer: 1, 2, 3 or 4 */
    int bytes;    /* bytes per sample: 1 or 2 (host-endian) */
    int gray;     /* source is gray or gray+alpha */
    size_t size;  /* decoded bytes */
} png_src;

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int png_open(const void *buf, size_t len, const char *name,
                    const lm_image_limits *lim, png_src *s, lm_err *err) {
    memset(s, 0, sizeof *s);
    const lm_image_limits def = LM_IMAGE_LIMITS_DEFAULT;
    if (!lim) lim = &def;
    if (len < 8 || memcmp(buf, png_sig, 8) != 0)
        return lm_fail(err, LUMEN_EDATA, "%s: not a PNG file", name);
    s->ctx = spng_ctx_new(0);
    if (!s->ctx) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory (PNG decoder)", name);
    int rc = spng_set_image_limits(s->ctx, lim->max_width, lim->max_height);
    if (!rc) rc = spng_set_chunk_limits(s->ctx, lim->max_chunk, lim->max_chunk_cache);
    if (rc) {
        spng_ctx_free(s->ctx);
        s->ctx = NULL;
        return lm_fail(err, LUMEN_EINVAL, "%s: bad image limits: %s", name, spng_strerror(rc));
    }
    spng_set_png_buffer(s->ctx, buf, len);
    struct spng_ihdr ih;
    rc = spng_get_ihdr(s->ctx, &ih);
    if (rc == SPNG_EUSER_WIDTH || rc == SPNG_EUSER_HEIGHT) {
        uint32_t w = len >= 24 ? be32((const unsigned char *)buf + 16) : 0;
        uint32_t h = len >= 24 ? be32((const unsigned char *)buf + 20) : 0;
        rc = lm_fail(err, LUMEN_EDATA, "%s: image too large: %ux%u exceeds the limit %ux%u",
                     name, w, h, lim->max_width, lim->max_height);
        goto fail;
    }
    if (rc) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: truncated or corrupt PNG: %s", name,
                     spng_strerror(rc));
        goto fail;
    }
    s->w = ih.width;
    s->h = ih.height;
    switch (ih.color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE:
        s->gray = 1, s->spp = 1;
        s->fmt = ih.bit_depth == 16 ? SPNG_FMT_PNG : SPNG_FMT_G8;
        break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: s->gray = 1, s->spp = 2, s->fmt = SPNG_FMT_PNG; break;
    case SPNG_COLOR_TYPE_TRUECOLOR: s->spp = 3, s->fmt = SPNG_FMT_PNG; break;
    case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: s->spp = 4, s->fmt = SPNG_FMT_PNG; break;
    case SPNG_COLOR_TYPE_INDEXED: s->spp = 3, s->fmt = SPNG_FMT_RGB8; break;
    default:
        rc = lm_fail(err, LUMEN_EDATA, "%s: unsupported PNG colour type %d", name,
                     ih.color_type);
        goto fail;
    }
    s->bytes = (s->fmt == SPNG_FMT_PNG && ih.bit_depth == 16) ? 2 : 1;
    rc = spng_decoded_image_size(s->ctx, s->fmt, &s->size);
    if (rc) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: truncated or corrupt PNG: %s", name,
                     spng_strerror(rc));
        goto fail;
    }
    if (s->size > lim->max_decoded) {
        rc = lm_fail(err, LUMEN_EDATA,
                     "%s: image too large: %ux%u decodes to %zu bytes, above the limit of %zu",
                     name, s->w, s->h, s->size, lim->max_decoded);
        goto fail;
    }
    if (s->size != (size_t)s->w * s->h * (size_t)s->spp * (size_t)s->bytes) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: unsupported PNG layout (bit depth %d)", name,
                     ih.bit_depth);
        goto fail;
    }
    return 0;
fail:
    spng_ctx_free(s->ctx);
    s->ctx = NULL;
    return rc;
}

static int png_decode_into(png_src *s, const char *name, void *dst, lm_err *err) {
    int rc = spng_decode_image(s->ctx, dst, s->size, s->fmt, 0);
    if (rc == SPNG_EMEM) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory decoding", name);
    if (rc)
        return lm_fail(err, LUMEN_EDATA, "%s: truncated or corrupt PNG: %s", name,
                       spng_strerror(rc));
    return 0;
}

/* Converts a decoded buffer into float planes of `channels`. */
static void raw_to_planes(const png_src *s, const void *raw, int channels, float *out) {
    size_t n = (size_t)s->w * s->h;
    const uint8_t *b8 = raw;
    const uint16_t *b16 = raw;
    const int spp = s->spp;
#define SAMPLE(i) (s->bytes == 1 ? (float)b8[i] : (float)b16[i] / 257.0f)
    if (s->gray) {
        for (size_t p = 0; p < n; p++) {
            float v = SAMPLE(p * spp);
            for (int c = 0; c < channels; c++) out[c * n + p] = v;
        }
    } else if (channels == 3) {
        for (size_t p = 0; p < n; p++)
            for (int c = 0; c < 3; c++) out[c * n + p] = SAMPLE(p * spp + c);
    } else {
        for (size_t p = 0; p < n; p++)
            out[p] = 0.299f * SAMPLE(p * spp) + 0.587f * SAMPLE(p * spp + 1) +
                     0.114f * SAMPLE(p * spp + 2);
    }
#undef SAMPLE
}

static int decode_to_image(png_src *s, const char *name, int channels, lm_image *out,
                           lm_err *err) {
    void *raw = malloc(s->size ? s->size : 1);
    float *planes = malloc((size_t)s->w * s->h * (size_t)channels * sizeof(float));
    int rc;
    if (!raw || !planes) {
        rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory (%ux%u image)", name, s->w, s->h);
        goto out;
    }
    rc = png_decode_into(s, name, raw, err);
    if (rc) goto out;
    raw_to_planes(s, raw, channels, planes);
    out->width = s->w;
    out->height = s->h;
    out->channels = (uint32_t)channels;
    out->data = planes;
    planes = NULL;
out:
    free(raw);
    free(planes);
    return rc;
}

int lm_png_decode(const void *buf, size_t len, const char *name, int channels,
                  const lm_image_limits *lim, lm_image *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<png>";
    if (channels != 1 && channels != 3)
        return lm_fail(err, LUMEN_EINVAL, "%s: channels must be 1 or 3, got %d", name, channels);
    png_src s;
    int rc = png_open(buf, len, name, lim, &s, err);
    if (rc) return rc;
    rc = decode_to_image(&s, name, channels, out, err);
    spng_ctx_free(s.ctx);
    return rc;
}

/* Reads a whole file into a malloc'ed buffer with messages for images. */
static int read_image_file(const char *path, void **data, size_t *len, lm_err *err) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return lm_fail(err, LUMEN_ENOTFOUND, "%s: missing image (no such file)", path);
        return lm_fail_errno(err, LUMEN_EIO, "%s: cannot open image", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lm_fail(err, LUMEN_EDATA, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory reading image", path);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int rc = lm_fail_errno(err, LUMEN_EIO, "%s: cannot read image", path);
            free(buf);
            close(fd);
            return rc;
        }
        if (r == 0) break; /* shrank while reading: decode what is there */
        got += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
}

int lm_png_read(const char *path, int channels, const lm_image_limits *lim,
                lm_image *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    void *buf;
    size_t len;
    int rc = read_image_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = lm_png_decode(buf, len, path, channels, lim, out, err);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- resize -- */

/* Per-axis resampling weights: output i reads count[i] inputs from start[i]
 * with weights w[i * k ...]. */
typedef struct axis {
    uint32_t k; /* weights per output (max taps) */
    uint32_t *start, *count;
    float *w;
} axis;

static void axis_free(axis *a) {
    free(a->start);
    free(a->count);
    free(a->w);
}

static int axis_build(axis *a, uint32_t in, uint32_t out) {
    memset(a, 0, sizeof *a);
    double scale = (double)in / out;
    a->k = out < in ? (uint32_t)ceil(scale) + 1 : 2;
    a->start = malloc(out * sizeof *a->start);
    a->count = malloc(out * sizeof *a->count);
    a->w = calloc((size_t)out * a->k, sizeof *a->w);
    if (!a->start || !a->count || !a->w) {
        axis_free(a);
        return -1;
    }
    for (uint32_t i = 0; i < out; i++) {
        float *w = a->w + (size_t)i * a->k;
        if (out == in) {
            a->start[i] = i, a->count[i] = 1, w[0] = 1.0f;
        } else if (out < in) {
            /* box: output i covers input interval [lo, hi) */
            double lo = i * scale, hi = (i + 1) * scale;
            if (hi > in) hi = in;
            uint32_t j0 = (uint32_t)floor(lo), j1 = (uint32_t)ceil(hi);
            if (j1 > in) j1 = in;
            if (j1 - j0 > a->k) j1 = j0 + a->k; /* cannot happen; guards the table */
            a->start[i] = j0;
            a->count[i] = j1 - j0;
            for (uint32_t j = j0; j < j1; j++) {
                double l = lo > j ? lo : j, h = hi < j + 1.0 ? hi : j + 1.0;
                w[j - j0] = (float)((h - l) / scale);
            }
        } else {
            /* bilinear, align_corners=False */
            double x = (i + 0.5) * scale - 0.5;
            if (x < 0) x = 0;
            uint32_t j0 = (uint32_t)x;
            if (j0 > in - 1) j0 = in - 1;
            double l1 = x - j0;
            a->start[i] = j0;
            if (j0 + 1 < in) {
                a->count[i] = 2;
                w[0] = (float)(1.0 - l1);
                w[1] = (float)l1;
            } else {
                a->count[i] = 1;
                w[0] = 1.0f;
            }
        }
    }
    return 0;
}

int lm_resize_plane(const float *src, uint32_t sw, uint32_t sh, float *dst,
                    uint32_t dw, uint32_t dh, lm_err *err) {
    if (!sw || !sh || !dw || !dh)
        return lm_fail(err, LUMEN_EINVAL, "resize: zero size (%ux%u -> %ux%u)", sw, sh, dw, dh);
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * sizeof *src);
        return 0;
    }
    axis ax, ay;
    float *tmp = malloc((size_t)dw * sh * sizeof *tmp);
    if (!tmp || axis_build(&ax, sw, dw)) {
        free(tmp);
        return lm_fail(err, LUMEN_ENOMEM, "resize: out of memory");
    }
    if (axis_build(&ay, sh, dh)) {
        axis_free(&ax);
        free(tmp);
        return lm_fail(err, LUMEN_ENOMEM, "resize: out of memory");
    }
    /* horizontal: [sh][sw] -> [sh][dw] */
    for (uint32_t y = 0; y < sh; y++) {
        const float *row = src + (size_t)y * sw;
        float *o = tmp + (size_t)y * dw;
        for (uint32_t x = 0; x < dw; x++) {
            const float *w = ax.w + (size_t)x * ax.k;
            const float *s = row + ax.start[x];
            float acc = 0.0f;
            for (uint32_t t = 0; t < ax.count[x]; t++) acc += w[t] * s[t];
            o[x] = acc;
        }
    }
    /* vertical: [sh][dw] -> [dh][dw] */
    for (uint32_t y = 0; y < dh; y++) {
        const float *w = ay.w + (size_t)y * ay.k;
        float *o = dst + (size_t)y * dw;
        for (uint32_t x = 0; x < dw; x++) o[x] = 0.0f;
        for (uint32_t t = 0; t < ay.count[y]; t++) {
            const float *s = tmp + (size_t)(ay.start[y] + t) * dw;
            float wt = w[t];
            for (uint32_t x = 0; x < dw; x++) o[x] += wt * s[x];
        }
    }
    axis_free(&ax);
    axis_free(&ay);
    free(tmp);
    return 0;
}

int lm_image_resize(const lm_image *src, uint32_t width, uint32_t height,
                    lm_image *dst, lm_err *err) {
    memset(dst, 0, sizeof *dst);
    if (!width || !height || !src->width || !src->height)
        return lm_fail(err, LUMEN_EINVAL, "resize: zero size (%ux%u -> %ux%u)", src->width,
                       src->height, width, height);
    size_t plane = (size_t)width * height;
    float *d = malloc(plane * src->channels * sizeof *d);
    if (!d) return lm_fail(err, LUMEN_ENOMEM, "resize: out of memory");
    size_t splane = (size_t)src->width * src->height;
    for (uint32_t c = 0; c < src->channels; c++) {
        int rc = lm_resize_plane(src->data + c * splane, src->width, src->height,
                                 d + c * plane, width, height, err);
        if (rc) {
            free(d);
            return rc;
        }
    }
    dst->width = width;
    dst->height = height;
    dst->channels = src->channels;
    dst->data = d;
    return 0;
}

void lm_image_to_u8(const lm_image *img, uint8_t *out) {
    size_t n = (size_t)img->width * img->height * img->channels;
    for (size_t i = 0; i < n; i++) {
        float v = floorf(img->data[i] + 0.5f);
        out[i] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
    }
}

int lm_png_decode_u8(const void *buf, size_t len, const char *name, int channels,
                     uint32_t width, uint32_t height, const lm_image_limits *lim,
                     uint8_t *out, lm_err *err) {
    if (!name) name = "<png>";
    if (channels != 1 && channels != 3)
        return lm_fail(err, LUMEN_EINVAL, "%s: channels must be 1 or 3, got %d", name, channels);
    if (!width || !height)
        return lm_fail(err, LUMEN_EINVAL, "%s: zero output size", name);
    png_src s;
    int rc = png_open(buf, len, name, lim, &s, err);
    if (rc) return rc;
    if (s.gray && s.spp == 1 && s.bytes == 1 && channels == 1 && s.w == width &&
        s.h == height) {
        rc = png_decode_into(&s, name, out, err); /* straight into the caller's buffer */
    } else {
        lm_image img = {0}, small = {0};
        rc = decode_to_image(&s, name, channels, &img, err);
        if (!rc) {
            rc = lm_image_resize(&img, width, height, &small, err);
            if (!rc) lm_image_to_u8(&small, out);
            lm_image_free(&small);
        }
        lm_image_free(&img);
    }
    spng_ctx_free(s.ctx);
    return rc;
}

int lm_png_load_u8(const char *path, int channels, uint32_t width, uint32_t height,
                   const lm_image_limits *lim, uint8_t *out, lm_err *err) {
    if (channels != 1 && channels != 3)
        return lm_fail(err, LUMEN_EINVAL, "%s: channels must be 1 or 3, got %d", path, channels);
    if (!width || !height)
        return lm_fail(err, LUMEN_EINVAL, "%s: zero output size", path);
    void *buf;
    size_t len;
    int rc = read_image_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = lm_png_decode_u8(buf, len, path, channels, width, height, lim, out, err);
    free(buf);
    return rc;
}
