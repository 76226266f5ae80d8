/*
 * pixfilter.h -- pixel filters applied after decoding and resizing, the same
 * way when a dataset is ingested and when `runner predict` / `eval` /
 * validate decode images for a model, so a model sees at prediction time the
 * pixels it was trained on.
 *
 * One filter so far, the high-pass channel: for every source channel x
 * (u8, at the stored size) one more plane is appended,
 *
 *     hp = 128 + gain * (x - G_sigma * x),   rounded, clamped to [0, 255]
 *
 * where G_sigma * x is x blurred by a Gaussian of standard deviation
 * `sigma` pixels (separable, truncated at ceil(3 sigma), weights summing to
 * 1, borders mirrored without repeating the edge pixel: -1 -> 1).  The
 * source planes come first, unchanged, so a gray image becomes 2 channels
 * (gray, high-pass) and RGB becomes 6.  Thin dark lines (cracks) stand out
 * as values below 128 whatever the brightness of the grain around them.
 *
 * Where it is recorded: the dataset schema and a checkpoint's "input"
 * metadata carry "filter": {"highpass": {"sigma": S, "gain": G}}; no
 * "filter" key means no filter (every dataset and checkpoint written before
 * filters existed).
 *
 * Threading: no shared state.
 */
#ifndef LM_PIXFILTER_H
#define LM_PIXFILTER_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lm_util.h"

#define LM_HIGHPASS_SIGMA_MIN 0.3
#define LM_HIGHPASS_SIGMA_MAX 32.0
#define LM_HIGHPASS_GAIN_MAX 64.0

typedef struct lm_pixfilter {
    double highpass_sigma; /* 0: no high-pass channel */
    double highpass_gain;  /* > 0 when sigma is */
} lm_pixfilter;

/* 1 when the filter does nothing. */
int lm_pixfilter_none(const lm_pixfilter *f);

/* Checks sigma (0, or LM_HIGHPASS_SIGMA_MIN .. MAX) and gain (0 < gain <=
 * LM_HIGHPASS_GAIN_MAX); the message starts with `what` (e.g. "highpass"). */
int lm_pixfilter_check(const lm_pixfilter *f, const char *what, lm_err *err);

/* Channels after the filter for `src_channels` source channels. */
int lm_pixfilter_channels(const lm_pixfilter *f, int src_channels);

/* Source channels that give `channels` after the filter; 0 when none does. */
int lm_pixfilter_src_channels(const lm_pixfilter *f, int channels);

/* Applies f to the planar image buf[c][h][w]; buf must hold
 * lm_pixfilter_channels(f, c) planes: the appended planes are written after
 * the source ones.  Returns 0, LUMEN_EINVAL or LUMEN_ENOMEM. */
int lm_pixfilter_apply(const lm_pixfilter *f, uint8_t *buf, int c, uint32_t h, uint32_t w,
                       lm_err *err);

/* The pixels of one image as a model with filter `to` sees them, from the
 * same image stored with any filter: every filter keeps the src_channels
 * source planes first, unchanged (see above), so they are copied from `in`
 * into `out` and `to` is applied to them.  out must hold
 * lm_pixfilter_channels(to, src_channels) planes; in and out must not
 * overlap.  Returns 0 or as lm_pixfilter_apply. */
int lm_pixfilter_refilter(const lm_pixfilter *to, const uint8_t *in, int src_channels, uint32_t h,
                          uint32_t w, uint8_t *out, lm_err *err);

/* {"highpass":{"sigma":S,"gain":G}}, or a JSON null for no filter; NULL when
 * out of memory. */
cJSON *lm_pixfilter_to_json(const lm_pixfilter *f);

/* Reads a "filter" value (NULL or a JSON null: no filter) written by
 * lm_pixfilter_to_json.  An unknown filter or a bad number is LUMEN_EDATA
 * naming `source`. */
int lm_pixfilter_from_json(const cJSON *j, const char *source, lm_pixfilter *f, lm_err *err);

/* The filter a dataset was stored with: its schema's "filter" (none when
 * absent), checked against the dataset's `channels` (a high-pass filter
 * doubles the decoded channels; channels < 0: not checked, for a caller
 * that requires the same channels and filter as a checkpoint, whose own
 * metadata was checked).  LUMEN_EDATA naming `dir`. */
int lm_pixfilter_from_schema(const cJSON *schema, int channels, const char *dir, lm_pixfilter *f,
                             lm_err *err);

/* 1 when a and b filter the same way. */
int lm_pixfilter_equal(const lm_pixfilter *a, const lm_pixfilter *b);

/* Short text for messages: "none" or "highpass(sigma 2, gain 2)". */
void lm_pixfilter_describe(const lm_pixfilter *f, char *buf, size_t n);

#endif
