/*
 * policy.h -- the augmentation policy: what the `augment` stage writes
 * (artifact "policy", file policy.json) and the trainer's loader applies.
 *
 * policy.json (all keys required, no others; written by lm_policy_to_json):
 *   {"version": 1, "hflip": false, "vflip": false, "rotate90": false,
 *    "rotate": 0, "translate": 0, "contrast": 0, "brightness": 0,
 *    "gamma": 0, "p": 1, "fill": "mean", "fill_value": 0}
 *
 * Per-sample draw (lm_policy_draw): a generator on the stream
 * lm_rng_key(seed, LM_RNG_AUGMENT, epoch, index) (see rng.h), index = the
 * record's index in the dataset, draws exactly ten uniforms u0..u9 in [0,1)
 * in this order, whatever is enabled (so enabling one transform never changes
 * the others' draws):
 *   u0 < p        the sample is augmented at all (else: identity)
 *   u1 < 0.5      horizontal flip   (when hflip)
 *   u2 < 0.5      vertical flip     (when vflip)
 *   k = floor(4 u3)  quarter turns  (when rotate90)
 *   angle      = rotate    * (2 u4 - 1)            degrees, counter-clockwise
 *   dx         = round(translate * W * (2 u5 - 1)) whole pixels
 *   dy         = round(translate * H * (2 u6 - 1)) whole pixels
 *   contrast   = 1 + contrast   * (2 u7 - 1)
 *   brightness =     brightness * (2 u8 - 1)       in [0,1] pixel units
 *   gamma      = exp(gamma      * (2 u9 - 1))
 * The flips and turns are composed into one dihedral element (flip, then
 * vflip, then turns; nn_aug_dihedral_of).  Translations are whole pixels
 * (like torchvision's RandomAffine), so without rotation the kernel's exact
 * gather path is used.  The result depends only on (policy, seed, epoch,
 * index): not on thread count, batch size or order.
 */
#ifndef LM_POLICY_H
#define LM_POLICY_H

#include <stdint.h>

#include <lumen/plugin.h>

#include "cpu/cpu_augment.h"
#include "lm_util.h"

#define LM_POLICY_VERSION 1
#define LM_POLICY_FILE "policy.json"

/* The policy's parameters, the one table behind the "augment" and the
 * "augment-materialize" stages (each stage's lumen_param table starts with
 * these entries) and behind lm_policy_check's ranges.  "flip" sets both
 * hflip and vflip; the others are lm_policy's fields of the same name. */
#define LM_POLICY_PARAMS                                                       \
    {"flip", LUMEN_BOOL, "false", 0, 0, NULL, 0,                               \
     "random horizontal and vertical flips, each with probability 0.5"},       \
    {"hflip", LUMEN_BOOL, "false", 0, 0, NULL, 0,                              \
     "random horizontal flip only (p = 0.5); implied by flip"},                \
    {"vflip", LUMEN_BOOL, "false", 0, 0, NULL, 0,                              \
     "random vertical flip only (p = 0.5); implied by flip"},                  \
    {"rotate90", LUMEN_BOOL, "false", 0, 0, NULL, 0,                           \
     "random quarter turns, k uniform in 0..3 (with flips: the 8 symmetries "  \
     "of a square); square images only"},                                      \
    {"rotate", LUMEN_NUM, "0", 0, 45, NULL, 0,                                 \
     "small rotation: angle uniform in [-rotate, rotate] degrees, bilinear"},  \
    {"translate", LUMEN_NUM, "0", 0, 0.3, NULL, 0,                             \
     "shift uniform in [-translate, translate] x size, rounded to whole "      \
     "pixels"},                                                                \
    {"contrast", LUMEN_NUM, "0", 0, 1, NULL, 0,                                \
     "contrast factor uniform in [1-c, 1+c] about the image mean"},            \
    {"brightness", LUMEN_NUM, "0", 0, 1, NULL, 0,                              \
     "added brightness uniform in [-b, b] (pixel values scaled to [0,1])"},    \
    {"gamma", LUMEN_NUM, "0", 0, 1, NULL, 0,                                   \
     "gamma = exp(uniform(-g, g)) applied to pixel values in [0,1]"},          \
    {"p", LUMEN_NUM, "1", 0, 1, NULL, 0,                                       \
     "probability that a training sample (augment) or a variant "              \
     "(augment-materialize) is augmented at all"},                             \
    {"fill", LUMEN_ENUM, "mean", 0, 0, "mean|border|constant", 0,              \
     "what rotation/translation reveals: image mean, nearest edge pixel, or "  \
     "fill_value"},                                                            \
    {"fill_value", LUMEN_NUM, "0", 0, 1, NULL, 0,                              \
     "pixel value in [0,1] for fill = \"constant\""}

typedef struct lm_policy {
    int hflip;         /* random horizontal flip, p = 0.5 */
    int vflip;         /* random vertical flip, p = 0.5 */
    int rotate90;      /* random quarter turns k in 0..3 */
    double rotate;     /* max |angle| in degrees, [0, 45] */
    double translate;  /* max |shift| as a fraction of the size, [0, 0.3] */
    double contrast;   /* [0, 1]: factor in [1-c, 1+c] about the image mean */
    double brightness; /* [0, 1]: added tone in [-b, b] */
    double gamma;      /* [0, 1]: gamma = exp(uniform(-g, g)) */
    double p;          /* [0, 1]: probability that a sample is augmented */
    int fill;          /* nn_aug_fill for rotation/translation */
    double fill_value; /* [0, 1], fill "constant" only */
} lm_policy;

/* The identity policy: everything off, p = 1, fill "mean", fill_value 0. */
void lm_policy_default(lm_policy *p);
/* Non-zero when the policy can change no image (all transforms off or p 0). */
int lm_policy_is_identity(const lm_policy *p);
/* 1 when p changes tones (contrast, brightness or gamma), which only makes
 * sense on image planes (not on a pixfilter.h high-pass plane). */
int lm_policy_is_photometric(const lm_policy *p);
/* Range checks (the ranges of LM_POLICY_PARAMS); LUMEN_EINVAL naming the
 * key ("policy.rotate: ..."). */
int lm_policy_check(const lm_policy *p, lm_err *err);

/* "mean" / "border" / "constant" <-> nn_aug_fill; -1 when unknown. */
int lm_policy_fill_from_name(const char *name);
const char *lm_policy_fill_name(int fill);

/* Parses policy.json text.  `source` names it in messages (a path).  Errors:
 * LUMEN_EDATA (not JSON, missing/unknown key, wrong type, out of range: the
 * message names source and key), LUMEN_EABI (another version).  *out is only
 * written on success. */
int lm_policy_from_json(const char *text, const char *source, lm_policy *out,
                        lm_err *err);
/* Reads and parses the file at `path`; also LUMEN_ENOTFOUND / LUMEN_EIO. */
int lm_policy_load(const char *path, lm_policy *out, lm_err *err);
/* policy.json text (pretty, with trailing newline); malloc'ed, caller frees;
 * NULL when out of memory. */
char *lm_policy_to_json(const lm_policy *p);

/* The augmentation of dataset record `index` in `epoch` for an image of
 * h x w pixels (see the draw above).  Pure; any thread. */
void lm_policy_draw(const lm_policy *p, uint64_t seed, uint64_t epoch,
                    uint64_t index, int h, int w, nn_aug_params *out);

#endif /* LM_POLICY_H */
