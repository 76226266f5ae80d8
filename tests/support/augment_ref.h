/*
 * augment_ref.h -- plain references of the augmentation kernels
 * (kernels/cpu/cpu_augment.h): slow, obviously correct, for tests only.  The
 * naive sequence of separate operations with intermediate images and
 * double-precision coordinates that tests/unit/test_augment.c holds the fused
 * kernel against.
 */
#ifndef AUGMENT_REF_H
#define AUGMENT_REF_H

#include <stdint.h>

#include "cpu/cpu_augment.h"

/* All work on float [c, h, w] tensors; dst must not overlap src. */

/* dst[ch][y][x] = src[ch][y][w-1-x] */
void nn_aug_ref_hflip(const float *src, int c, int h, int w, float *dst);
/* dst[ch][y][x] = src[ch][h-1-y][x] */
void nn_aug_ref_vflip(const float *src, int c, int h, int w, float *dst);
/* One quarter turn counter-clockwise (numpy.rot90): dst is [c, w, h] with
 * dst[ch][y][x] = src[ch][x][w-1-y]. */
void nn_aug_ref_rot90(const float *src, int c, int h, int w, float *dst);
/* Rotation by angle_deg about the centre, then translation by (dx, dy),
 * bilinear, every coordinate in double precision; fill as in nn_aug_fill
 * (MEAN: the channel mean of src). */
void nn_aug_ref_warp(const float *src, int c, int h, int w, double angle_deg,
                     double dx, double dy, int fill, double fill_value,
                     float *dst);
/* The whole pipeline as separate naive steps with intermediate images:
 * tone with powf, H then R^k via the functions above, warp (only when angle,
 * dx or dy is non-zero), contrast, brightness, normalise.  Same contract as
 * nn_aug_apply (0, or LUMEN_EINVAL for NULL pointers, empty sizes or bad
 * params) plus LUMEN_ENOMEM when scratch cannot be allocated. */
int nn_aug_ref_apply(const uint8_t *src, int c, int h, int w,
                     const nn_aug_params *p, const float *mean,
                     const float *std, float *dst);

#endif /* AUGMENT_REF_H */
