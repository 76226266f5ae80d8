/*
 * ensemble.h -- several checkpoints used as one predictor: the mean of
 * their probabilities, with thresholds kept in a small manifest.
 *
 * The manifest (ensemble.json; the cross-validation study writes one for
 * its fold models, runner/crossval.h):
 *   {"format": "lumen-ensemble", "version": 1,
 *    "labels": ["crack", "inactive"],
 *    "models": ["trials/0/validate/model/best.safetensors", ...],
 *    "thresholds": [0.62, 0.71],          optional; per label
 *    "thresholds_from": "...",            optional; where they come from
 *    ... any other keys (kept by the writer's `extra`, ignored on read)}
 * Relative model paths are relative to the manifest's folder.
 *
 * Averaging (lm_ensemble_mean): out[i] = (sum over models m, in order, of
 * p[m][i]) / M, accumulated in double and rounded once to float, so the
 * result does not depend on anything but the inputs and their order.
 *
 * Errors: 0 or LUMEN_E* with a message naming the file: LUMEN_ENOTFOUND,
 * LUMEN_EDATA (not a manifest, no models, thresholds of the wrong length),
 * LUMEN_EINVAL, LUMEN_EIO, LUMEN_ENOMEM.  No shared state.
 */
#ifndef LM_ENSEMBLE_H
#define LM_ENSEMBLE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lm_util.h"
#include "metrics.h"

#define LM_ENSEMBLE_FILE "ensemble.json"

typedef struct lm_ensemble {
    size_t n_models;
    char **models;       /* [n_models] checkpoint paths (resolved on read) */
    int k;               /* labels; 0 when the manifest names none */
    char **labels;       /* [k] */
    int has_thresholds;
    float thresholds[LM_METRICS_MAX_CLASSES];
} lm_ensemble;

/* Writes the manifest of ens to path (atomically).  Model paths are written
 * as given.  extra (may be NULL): an object whose items are copied in. */
int lm_ensemble_write(const char *path, const lm_ensemble *ens, const cJSON *extra, lm_err *err);

/* Reads the manifest at path into *out (lm_ensemble_free), relative model
 * paths joined to the manifest's folder. */
int lm_ensemble_read(const char *path, lm_ensemble *out, lm_err *err);

/* The ensemble the command line names: each argument is a checkpoint
 * (.safetensors), a manifest (.json) or a folder (its ensemble.json, else
 * every *.safetensors in it, by name).  Checkpoints from several arguments
 * are concatenated; thresholds come from a manifest only when it is the
 * one argument (they were tuned for exactly its models).  LUMEN_EINVAL when nothing is named. */
int lm_ensemble_from_args(const char *const *args, size_t n, lm_ensemble *out, lm_err *err);

/* out[i] = mean over the m arrays p[0..m)[i], i < count (see above). */
void lm_ensemble_mean(const float *const *p, size_t m, size_t count, float *out);

/* Frees everything and zeroes *e; NULL-safe. */
void lm_ensemble_free(lm_ensemble *e);

/* ---------------------------------------------------------- evaluation -- */

struct lm_infer_model;
struct lm_eval_result;
struct nn_engine;

/* Evaluates one model on the caller's images (each model gets its own
 * engine and normalization: fold models carry their fold's stats), decoded
 * for m's input: members may be trained on differently filtered pixels
 * (pixfilter.h; e.g. plain and with a high-pass channel), and each must see
 * the images with its own filter (lm_image_set_for_model, infer.h). */
typedef int (*lm_ensemble_eval_fn)(void *user, const struct lm_infer_model *m,
                                   struct nn_engine *e, struct lm_eval_result *r, lm_err *err);

/* Runs eval for each checkpoint of ens in order -- the first is m0, already
 * loaded by the caller (for the input size, labels and decoding); the
 * others are loaded here and must match m0's input size, source channels
 * and labels (else LUMEN_EDATA naming both files; the filter may differ)
 * -- and returns in *out the
 * first model's result with probs := lm_ensemble_mean of every model's
 * (samples must come out in the same order), and loss / mean_loss := the
 * binary cross-entropy of the mean probabilities (no pos_weight).  On
 * failure *out is zeroed.  backend/batch/threads as lm_infer_engine. */
int lm_ensemble_eval(const lm_ensemble *ens, const struct lm_infer_model *m0, const char *backend,
                     int batch, int threads, lm_ensemble_eval_fn eval, void *user,
                     struct lm_eval_result *out, lm_err *err);

#endif /* LM_ENSEMBLE_H */
