/*
 * infer.h -- inference from a trained checkpoint, shared by the validate
 * stage, `runner predict` and `runner eval`:
 *
 *   - lm_infer_model: a lumen checkpoint opened for inference -- the model
 *     and its weights, label names, stored thresholds, normalization stats
 *     and input size from its metadata (checkpoint.h) -- and the engine
 *     built from it; lm_infer_model_save writes it back with new
 *     thresholds and a "validated" record (the calibrated model);
 *   - lm_image_set: a list of PNG files decoded exactly as ingest stores
 *     them (lm_png_load_u8 of image.h: decode, channel conversion, resize,
 *     u8 rounding), so predictions on them equal predictions on an ingested
 *     copy, exposed as a loader source (batch_loader.h) for lm_eval_source
 *     (evaluate.h).  Files that cannot be used are recorded per image (the
 *     others are still decoded); the caller decides whether that is fatal.
 *
 *   lm_infer_model m;
 *   lm_infer_model_load("best.safetensors", &m, &err);
 *   nn_engine *e;
 *   lm_infer_engine(&m, "auto", 32, threads, &e, &err);
 *   lm_image_set s;
 *   lm_image_set_load(files, n, NULL, NULL, &m, threads, &s, &err);
 *   lm_eval_cfg cfg;
 *   lm_infer_eval_cfg(&m, 32, tta, &cfg);
 *   lm_infer_eval_set(e, &s, &cfg, &r, &err);   // r.index[i]: image number
 *
 * Errors follow lm_util.h (0 or LUMEN_E*, messages naming the file and the
 * metadata key or row at fault).  Threading: no shared state; an
 * lm_infer_model is read-only after loading and may be shared by threads;
 * lm_image_set_load decodes on its own OpenMP team and returns after it
 * finished.
 */
#ifndef LM_INFER_H
#define LM_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "csvparse.h"
#include "evaluate.h"
#include "lm_util.h"
#include "batch_loader.h"
#include "nn_engine.h"
#include "nn_model.h"
#include "pixfilter.h"
#include "problems.h"
#include "safetensors.h"

#define LM_INFER_MAX_CHANNELS 16

/* A checkpoint loaded for inference.  Everything is owned by the struct;
 * lm_infer_model_free releases it. */
typedef struct lm_infer_model {
    char *path;            /* the checkpoint file */
    lm_st_file *file;      /* the open file (its metadata is copied on save) */
    nn_model *model;
    float *params, *buffers;
    int64_t *counters;
    int k;                 /* classes = labels */
    char **labels;         /* [k] label names */
    float *thresholds;     /* [k] stored thresholds; 0.5 each when absent */
    int has_thresholds;    /* the checkpoint stores thresholds */
    int height, width, channels;              /* metadata "input" */
    lm_pixfilter filter;   /* metadata "input" "filter": applied after decoding */
    int src_channels;      /* channels decoded from a PNG (channels before the filter) */
    float mean[LM_INFER_MAX_CHANNELS];        /* metadata "stats", tone units */
    float std[LM_INFER_MAX_CHANNELS];
    int64_t epoch;         /* -1 when absent */
} lm_infer_model;

/* Opens the lumen checkpoint at `path` (lm_ckpt_open), builds the model from
 * its "model" config and loads every tensor (strict: a missing or unexpected
 * tensor is an error).  The metadata "labels" (one name per class), "stats"
 * ({"channels","mean","std"}, channels equal to the model's, std > 0) and
 * "input" ({"height","width","channels"[,"filter"]}) are required (a
 * filter, pixfilter.h, is applied by lm_image_set_load); "thresholds" is
 * optional.  Returns 0; LUMEN_ENOTFOUND, LUMEN_EIO, LUMEN_EABI (not a lumen
 * checkpoint), LUMEN_EDATA (a missing or malformed key: "FILE: metadata
 * \"stats\" ..."), LUMEN_ENOMEM.  On failure *m is zeroed. */
int lm_infer_model_load(const char *path, lm_infer_model *m, lm_err *err);
/* Frees everything and zeroes *m; NULL and a zeroed model are fine. */
void lm_infer_model_free(lm_infer_model *m);

/* Creates an engine for the model (backend as nn_engine_create: "auto",
 * "cpu", "ref"), sized for batches of at most `batch` images of the model's
 * input size, with `threads` OpenMP threads (0 = all cores), and loads the
 * checkpoint's weights into it.  *e: nn_engine_free it; m must outlive it. */
int lm_infer_engine(const lm_infer_model *m, const char *backend, int batch, int threads,
                    nn_engine **e, lm_err *err);

/* Writes the model to `path` atomically: the same tensors and metadata as
 * the loaded file (including keys lumen does not know), except
 * "thresholds" := thresholds[k] and "validated" := validated_json (a JSON
 * object; NULL leaves the file's own, if any).  LUMEN_EINVAL (bad JSON),
 * LUMEN_EIO, LUMEN_ENOMEM. */
int lm_infer_model_save(const lm_infer_model *m, const char *path, const float *thresholds,
                        const char *validated_json, lm_err *err);

/* ------------------------------------------------------- image sets -- */

typedef struct lm_image_set {
    size_t n;              /* images listed */
    char **names;          /* [n] names as listed (owned) */
    char **errors;         /* [n] NULL, or why image i is unusable (owned) */
    size_t nfailed;        /* images with an error */
    uint32_t *ok;          /* [n - nfailed] numbers of the usable images */
    uint32_t channels, height, width, nlabels; /* nlabels = the model's k */
    uint8_t *pixels;       /* [n][C][H][W] u8 as ingest stores them */
    float *labels;         /* [n][nlabels]; zeros when none were given */
    lm_pixfilter filter;   /* the filter the pixels carry (the model's) */
    int src_channels;      /* their source planes, first in each image */
    uint32_t *record;      /* [n] dataset record of image i (lm_image_set_from_split); else NULL */
} lm_image_set;

/* Decodes names[0..n) (each joined to `root` when root is non-NULL and the
 * name is relative) to the model's input size and channels with `threads`
 * threads (<= 0: all cores).  labels: [n][m->k] (copied), or NULL for
 * zeros (prediction).  A file that cannot be used
 * (missing, not a PNG, truncated, too large) gets its message in
 * s->errors[i] (naming the file); the call still succeeds.  Returns 0,
 * LUMEN_EINVAL, LUMEN_ENOMEM (then *s is zeroed). */
int lm_image_set_load(const char *const *names, size_t n, const char *root, const float *labels,
                      const lm_infer_model *m, int threads, lm_image_set *s, lm_err *err);

/* Frees everything and zeroes *s; NULL-safe. */
void lm_image_set_free(lm_image_set *s);

/* The images of s as model m sees them, for an ensemble whose members
 * were trained on differently filtered pixels (pixfilter.h): the same
 * names, labels, errors and usable images, each image's source planes
 * with m's filter applied (lm_pixfilter_refilter), so the result equals
 * lm_image_set_load of the same files for m.  m must have s's size and
 * source channels (else LUMEN_EDATA naming m); threads as above.
 * Returns 0, LUMEN_EDATA, LUMEN_ENOMEM (then *out is zeroed). */
int lm_image_set_for_model(const lm_image_set *s, const lm_infer_model *m, int threads,
                           lm_image_set *out, lm_err *err);

struct lm_dataset;
/* The same images for the members of an ensemble that filter differently:
 * one set per filter, derived on first use and kept (free with
 * lm_image_sets_free; a zeroed struct is empty). */
typedef struct lm_image_sets {
    lm_image_set *v;
    size_t n;
} lm_image_sets;

/* *out := the images for model m: `base` itself when it carries m's filter,
 * else the kept set for m's filter, else one derived now -- from base
 * (lm_image_set_for_model) or, base NULL, from split `split` of ds
 * (lm_image_set_from_split) -- and kept in c.  Errors as those. */
int lm_image_sets_get(lm_image_sets *c, const lm_image_set *base, const struct lm_dataset *ds,
                      int split, const lm_infer_model *m, int threads, const lm_image_set **out,
                      lm_err *err);
void lm_image_sets_free(lm_image_sets *c);

/* The records of a dataset split (lm_dataset_split order) as an image set
 * for model m: names, labels, and pixels refiltered for m as above (the
 * dataset's own filter may differ); out->record[i] is image i's record.
 * The dataset must have m's size, source channels and labels (else
 * LUMEN_EDATA naming both).  Returns 0, LUMEN_EDATA, LUMEN_ENOMEM. */
int lm_image_set_from_split(const struct lm_dataset *ds, int split, const lm_infer_model *m,
                            int threads, lm_image_set *out, lm_err *err);

/* Fills *src with a loader source over the usable images of s (record
 * index = image number, src->indices = s->ok); s must outlive the loader. */
void lm_image_set_source(const lm_image_set *s, lm_loader_source *src);

/* Reads a label file for evaluation or prediction (csvparse.h, format
 * auto: the ';' CSV or ELPV labels.csv) and decodes its images.
 *   root       image folder; NULL = the label file's folder
 *   names_only predict: only the first column is read (see csvparse.h);
 *              labels are zeros.  Otherwise the file's label names must be
 *              the model's (any column order; mapped to the model's order),
 *              else LUMEN_EDATA "FILE: header labels (a, b) do not match the
 *              checkpoint's labels (crack, inactive): missing 'inactive',
 *              unknown 'b'".
 *   limit      > 0: only the first `limit` rows
 * Bad rows go to *probs (csvparse.h) and are left out; undecodable images
 * are recorded in s->errors as by lm_image_set_load. */
int lm_image_set_from_csv(const char *csv, const char *root, int names_only, int64_t limit,
                          const lm_infer_model *m, int threads, lm_image_set *s,
                          lm_problems *probs, lm_err *err);

/* lm_eval_cfg_default plus the model's normalization stats, `batch` and
 * `tta` (the mean/std pointers point into m). */
void lm_infer_eval_cfg(const lm_infer_model *m, int batch, int tta, lm_eval_cfg *cfg);

/* Evaluates the usable images of s with engine e (lm_eval_source over
 * lm_image_set_source).  r->index[i] is the image number in s of result
 * row i (rows follow s->ok). */
int lm_infer_eval_set(nn_engine *e, const lm_image_set *s, const lm_eval_cfg *cfg,
                      lm_eval_result *r, lm_err *err);

/* Collects the rows the image set could not use into probs (one
 * "NAME: why" each, i.e. the decoder's message naming the file). */
void lm_image_set_problems(const lm_image_set *s, lm_problems *probs);

#endif /* LM_INFER_H */
