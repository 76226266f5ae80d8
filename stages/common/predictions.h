/*
 * predictions.h -- per-sample probabilities with their targets and names,
 * as the validate stage writes them (<report>/predictions.json) and the
 * cross-validation study and ensembles read them back.
 *
 *   {"format": "lumen-predictions", "version": 1,
 *    "labels": ["crack", "inactive"],
 *    "samples": [{"index": 17, "name": "images/cell0017.png",
 *                 "p": [0.91, 0.02], "y": [1, 0]}, ...]}
 *
 * "index" is the record index in the dataset (or the row of the CSV
 * evaluated); "p" the probabilities (float, printed so that they read back
 * bit for bit), "y" the targets as stored.  Samples keep the evaluation's
 * order.
 *
 * Errors: 0 or LUMEN_E* with a message naming the file: LUMEN_ENOTFOUND,
 * LUMEN_EDATA (not a predictions document, rows of the wrong length),
 * LUMEN_EIO, LUMEN_ENOMEM.  No shared state.
 */
#ifndef LM_PREDICTIONS_H
#define LM_PREDICTIONS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lm_util.h"

typedef struct lm_preds {
    int64_t n;       /* samples */
    int k;           /* labels */
    char **labels;   /* [k] */
    char **names;    /* [n]; "" when unknown */
    uint32_t *index; /* [n] */
    float *p;        /* [n*k] probabilities */
    float *y;        /* [n*k] targets */
} lm_preds;

/* The document of (p, y, index, names) for labels[k]; names and index may
 * be NULL (then "" and the sample number).  NULL on OOM. */
cJSON *lm_preds_json(const float *p, const float *y, const uint32_t *index,
                     const char *const *names, int64_t n, int k, const char *const *labels);

/* Writes the document atomically to path. */
/* Writes d as JSON (pretty or compact) plus a newline to path atomically
 * and frees d (NULL: out of memory).  0, LUMEN_ENOMEM or LUMEN_EIO. */
int lm_json_write(const char *path, cJSON *d, int pretty, lm_err *err);

int lm_preds_write(const char *path, const float *p, const float *y, const uint32_t *index,
                   const char *const *names, int64_t n, int k, const char *const *labels,
                   lm_err *err);

/* Reads path into *out (owned; lm_preds_free). *out is zeroed on failure. */
int lm_preds_read(const char *path, lm_preds *out, lm_err *err);

/* Frees everything and zeroes *r; NULL-safe. */
void lm_preds_free(lm_preds *r);

#endif /* LM_PREDICTIONS_H */
