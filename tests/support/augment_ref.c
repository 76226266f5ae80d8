/* augment_ref.c -- see augment_ref.h. */
#include "augment_ref.h"

#include <math.h>
#include <stdlib.h>

#include <lumen/plugin.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

void nn_aug_ref_hflip(const float *src, int c, int h, int w, float *dst) {
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                dst[((size_t)ch * h + y) * w + x] =
                    src[((size_t)ch * h + y) * w + (w - 1 - x)];
}

void nn_aug_ref_vflip(const float *src, int c, int h, int w, float *dst) {
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                dst[((size_t)ch * h + y) * w + x] =
                    src[((size_t)ch * h + (h - 1 - y)) * w + x];
}

void nn_aug_ref_rot90(const float *src, int c, int h, int w, float *dst) {
    /* dst is [c, w, h]: row y in 0..w-1, column x in 0..h-1 */
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < w; y++)
            for (int x = 0; x < h; x++)
                dst[((size_t)ch * w + y) * h + x] =
                    src[((size_t)ch * h + x) * w + (w - 1 - y)];
}

static double ref_at(const float *s, int h, int w, int x, int y, int fill,
                     double fillv) {
    if (fill == NN_AUG_FILL_BORDER) {
        x = x < 0 ? 0 : (x >= w ? w - 1 : x);
        y = y < 0 ? 0 : (y >= h ? h - 1 : y);
    } else if (x < 0 || y < 0 || x >= w || y >= h) {
        return fillv;
    }
    return s[(size_t)y * w + x];
}

void nn_aug_ref_warp(const float *src, int c, int h, int w, double angle_deg,
                     double dx, double dy, int fill, double fill_value,
                     float *dst) {
    double th = angle_deg * M_PI / 180.0, cs = cos(th), sn = sin(th);
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    for (int ch = 0; ch < c; ch++) {
        const float *s = src + (size_t)ch * h * w;
        double fillv = fill_value;
        if (fill == NN_AUG_FILL_MEAN) {
            double sum = 0;
            for (size_t i = 0; i < (size_t)h * w; i++)
                sum += s[i];
            fillv = sum / ((double)h * w);
        }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                /* undo the translation, then the rotation about the centre */
                double ux = x - dx - cx, uy = y - dy - cy;
                double sx = cx + cs * ux - sn * uy;
                double sy = cy + sn * ux + cs * uy;
                int x0 = (int)floor(sx), y0 = (int)floor(sy);
                double fx = sx - x0, fy = sy - y0;
                double v = (1 - fy) * ((1 - fx) * ref_at(s, h, w, x0, y0, fill, fillv) +
                                       fx * ref_at(s, h, w, x0 + 1, y0, fill, fillv)) +
                           fy * ((1 - fx) * ref_at(s, h, w, x0, y0 + 1, fill, fillv) +
                                 fx * ref_at(s, h, w, x0 + 1, y0 + 1, fill, fillv));
                dst[((size_t)ch * h + y) * w + x] = (float)v;
            }
    }
}

int nn_aug_ref_apply(const uint8_t *src, int c, int h, int w,
                     const nn_aug_params *p, const float *mean,
                     const float *std, float *dst) {
    if (!src || !dst || !mean || !std || c <= 0 || h <= 0 || w <= 0)
        return LUMEN_EINVAL;
    int rc = nn_aug_params_check(p);
    if (rc)
        return rc;
    size_t n = (size_t)c * h * w;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return LUMEN_ENOMEM;
    }
    /* 1. tone */
    for (size_t i = 0; i < n; i++) {
        float t = (float)src[i] / 255.0f;
        a[i] = p->gamma == 1.0 ? t : powf(t, (float)p->gamma);
    }
    /* 2. dihedral: H first, then quarter turns */
    int ch_ = h, cw_ = w;
    if (p->dihedral & 4) {
        nn_aug_ref_hflip(a, c, ch_, cw_, b);
        float *t = a; a = b; b = t;
    }
    for (int i = 0; i < (p->dihedral & 3); i++) {
        nn_aug_ref_rot90(a, c, ch_, cw_, b);
        float *t = a; a = b; b = t;
        int s = ch_; ch_ = cw_; cw_ = s;
    }
    /* rotation + translation */
    if (p->angle_deg != 0.0 || p->dx != 0.0 || p->dy != 0.0) {
        nn_aug_ref_warp(a, c, ch_, cw_, p->angle_deg, p->dx, p->dy, p->fill,
                        p->fill_value, b);
        float *t = a; a = b; b = t;
    }
    /* 3-5. contrast, brightness, normalise */
    size_t plane = (size_t)ch_ * cw_;
    for (int ch = 0; ch < c; ch++) {
        float *t = a + ch * plane;
        if (p->contrast != 1.0) {
            double sum = 0;
            for (size_t i = 0; i < plane; i++)
                sum += t[i];
            float m = (float)(sum / (double)plane), cf = (float)p->contrast;
            for (size_t i = 0; i < plane; i++)
                t[i] = clamp01((t[i] - m) * cf + m);
        }
        for (size_t i = 0; i < plane; i++) {
            float v = clamp01(t[i] + (float)p->brightness);
            dst[ch * plane + i] = (v - mean[ch]) / std[ch];
        }
    }
    free(a);
    free(b);
    return LUMEN_OK;
}
