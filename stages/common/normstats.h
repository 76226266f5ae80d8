/*
 * normstats.h -- the normalization statistics a model is trained with:
 * per-channel mean and standard deviation of the pixel values scaled to
 * [0, 1] ("tone units").  Read from the normalize-stats stage's artifact
 * (<dir>/stats.json: {"channels":C,"mean":[..],"std":[..],...}) and written
 * into checkpoint metadata as {"channels":C,"mean":[..],"std":[..]}.
 *
 * The values are held as float (what the loader and the augmentation kernel
 * use); the JSON written here reads back to the same floats.
 * Errors: 0 or LUMEN_E* with a message naming the file (lm_util.h).
 * No state; thread-safe.
 */
#ifndef LM_NORMSTATS_H
#define LM_NORMSTATS_H

#include "lm_util.h"

#define LM_NORMSTATS_MAX 16
#define LM_NORMSTATS_FILE "stats.json"

typedef struct lm_normstats {
    int channels;                 /* 1..LM_NORMSTATS_MAX */
    float mean[LM_NORMSTATS_MAX]; /* [channels] */
    float std[LM_NORMSTATS_MAX];  /* [channels], > 0 */
} lm_normstats;

/* Parses JSON text holding "channels", "mean" and "std" (other keys are
 * ignored).  `source` names the text in messages.  LUMEN_EDATA (not JSON, a
 * key missing or of the wrong type, lengths differing from channels, a std
 * <= 0 or a non-finite value: the message names source and key). */
int lm_normstats_from_json(const char *text, const char *source, lm_normstats *out, lm_err *err);

/* Reads `path`: a stats.json file, or a folder holding one (the "stats"
 * artifact).  Also LUMEN_ENOTFOUND / LUMEN_EIO. */
int lm_normstats_load(const char *path, lm_normstats *out, lm_err *err);

/* {"channels":C,"mean":[..],"std":[..]} (compact, cJSON); malloc'ed, caller
 * frees; NULL when out of memory. */
char *lm_normstats_to_json(const lm_normstats *s);

#endif /* LM_NORMSTATS_H */
