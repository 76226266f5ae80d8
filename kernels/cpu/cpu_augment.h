/*
 * cpu_augment.h -- per-sample image augmentation kernels (u8 CHW -> float CHW).
 *
 * One call, nn_aug_apply(), turns a stored image (u8, planar CHW) into a
 * normalised float tensor with every augmentation of one sample applied:
 *
 *   1. tone        t = (v / 255) ^ gamma                 (per source pixel, LUT)
 *   2. geometry    ONE inverse index map out -> source, composed of
 *                  dihedral element d, then a rotation by angle_deg about the
 *                  image centre, then a translation by (dx, dy) pixels;
 *                  sampled in a single pass (exact gather when the map is a
 *                  pure dihedral/integer shift, bilinear otherwise)
 *   3. contrast    t = clamp01((t - m_c) * contrast + m_c), m_c = mean of
 *                  channel c of the image after steps 1-2
 *   4. brightness  t = clamp01(t + brightness)
 *   5. normalise   out = (t - mean[c]) / std[c]
 *
 * Steps 1-2 (and 3-5 when contrast == 1) happen in the one sampling pass;
 * with contrast != 1 a second, cache-hot pass over the output finishes 3-5.
 * No intermediate image is allocated.
 *
 * Coordinates: pixel (x, y) is column x, row y, pixel centres at integers,
 * y grows downwards.  The centre of rotation is ((W-1)/2, (H-1)/2) of the
 * image being rotated.  A positive angle turns the picture counter-clockwise
 * as displayed (torchvision's convention); positive dx moves the content
 * right, positive dy moves it down.
 *
 * The dihedral group D4: element k in 0..7 is  R^(k % 4) o H^(k / 4):  first a
 * horizontal flip H (mirror left-right) when k >= 4, then k % 4 quarter turns
 * counter-clockwise (R, numpy's rot90).  So 0 = identity, 1/2/3 = rot90 x1/2/3,
 * 4 = hflip, 5 = transpose (x,y) -> (y,x), 6 = vflip (= R^2 H),
 * 7 = anti-transpose.  Odd quarter turns swap H and W (see nn_aug_out_shape):
 * they are allowed on rectangular images, the output is then W x H.
 *
 * Fill (what the rotation/translation reveals outside the source):
 *   NN_AUG_FILL_MEAN      each channel's mean tone (after step 1) -- neutral,
 *                         becomes ~0 after normalisation with dataset stats;
 *   NN_AUG_FILL_BORDER    replicate the nearest edge pixel;
 *   NN_AUG_FILL_CONSTANT  fill_value, a tone in [0, 1].
 * Outside neighbours take the fill value before bilinear weighting, so edges
 * blend smoothly.
 *
 * Determinism: the kernels are pure functions of their arguments (no state,
 * no threads inside); the same inputs give bitwise the same output on any
 * thread.  Callers parallelise over samples.
 *
 * Every function also has a plain reference (nn_aug_ref_* in the test code,
 * tests/support/augment_ref.h): the naive sequence of separate operations
 * with intermediate images and double-precision coordinates.  Tests hold the
 * fused kernel against it.
 */
#ifndef NN_CPU_AUGMENT_H
#define NN_CPU_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#define NN_AUG_DIHEDRAL_N 8

typedef enum nn_aug_fill {
    NN_AUG_FILL_MEAN = 0,
    NN_AUG_FILL_BORDER = 1,
    NN_AUG_FILL_CONSTANT = 2,
} nn_aug_fill;

/* The augmentation of one sample.  nn_aug_params_identity() gives the
 * do-nothing values (then nn_aug_apply only normalises). */
typedef struct nn_aug_params {
    int dihedral;       /* element of D4, 0..7 (see above) */
    double angle_deg;   /* rotation, degrees, counter-clockwise; any value */
    double dx, dy;      /* translation in pixels of the output image */
    double gamma;       /* tone exponent, > 0; 1 = none */
    double contrast;    /* factor around the channel mean, >= 0; 1 = none */
    double brightness;  /* added tone, in [0,1] pixel units; 0 = none */
    int fill;           /* nn_aug_fill */
    double fill_value;  /* tone in [0,1], NN_AUG_FILL_CONSTANT only */
} nn_aug_params;

/* Sets *p to the identity (dihedral 0, angle 0, no shift, gamma 1,
 * contrast 1, brightness 0, fill MEAN, fill_value 0). */
void nn_aug_params_identity(nn_aug_params *p);

/* Checks *p: dihedral in 0..7, finite numbers, gamma > 0, contrast >= 0,
 * fill a known mode, fill_value in [0,1].  Returns 0 or LUMEN_EINVAL. */
int nn_aug_params_check(const nn_aug_params *p);

/* ---- the dihedral group ------------------------------------------------ */

/* The element equal to "first hflip (if hflip), then vflip (if vflip), then
 * rot90 quarter turns counter-clockwise" (rot90 taken mod 4). */
int nn_aug_dihedral_of(int hflip, int vflip, int rot90);
/* Element a o b: apply b first, then a.  Both in 0..7. */
int nn_aug_dihedral_compose(int a, int b);
/* The element k' with k' o k = identity. */
int nn_aug_dihedral_inverse(int k);
/* Non-zero when element k swaps height and width (odd quarter turns). */
int nn_aug_dihedral_transposes(int k);

/* Output height/width of nn_aug_apply for an h x w input: (w, h) when
 * p->dihedral transposes, else (h, w). */
void nn_aug_out_shape(int h, int w, const nn_aug_params *p, int *oh, int *ow);

/* ---- fused kernels ----------------------------------------------------- */

/* Augments and normalises one image.
 *   src   [c, h, w] u8, planar; not modified
 *   p     the augmentation (nn_aug_params_identity for none)
 *   mean, std  [c] normalisation in tone units (x/255); std[i] > 0
 *   dst   [c, oh, ow] float with (oh, ow) from nn_aug_out_shape; must not
 *         overlap src
 * Returns 0, or LUMEN_EINVAL (bad sizes, params or std; dst untouched).
 * Allocates nothing; reentrant. */
int nn_aug_apply(const uint8_t *src, int c, int h, int w,
                 const nn_aug_params *p, const float *mean, const float *std,
                 float *dst);

/* Convenience for test-time augmentation: nn_aug_apply with only the
 * dihedral element k (0..7). */
int nn_aug_dihedral(const uint8_t *src, int c, int h, int w, int k,
                    const float *mean, const float *std, float *dst);

/* Dihedral element k on an already-decoded float tensor [c, h, w] -> dst
 * [c, oh, ow] (transposed shape for odd quarter turns); an exact gather.  Use
 * it to undo a TTA view (with nn_aug_dihedral_inverse(k)) or to transform a
 * batch.  dst must not overlap src.  Returns 0 or LUMEN_EINVAL. */
int nn_aug_dihedral_f32(const float *src, int c, int h, int w, int k,
                        float *dst);

#endif /* NN_CPU_AUGMENT_H */
