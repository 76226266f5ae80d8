/*
 * infer_cli.h -- what `runner predict` and `runner eval` share: their common
 * options and the session that loads a checkpoint, decodes the images
 * (infer.h) and runs them through the engine (evaluate.h).
 */
#ifndef RN_INFER_CLI_H
#define RN_INFER_CLI_H

#include <stdint.h>

#include "ensemble.h"
#include "evaluate.h"
#include "infer.h"
#include "problems.h"

typedef struct rn_infer_args {
    const char *checkpoint; /* positional */
    const char *csv, *root;
    const char *backend;    /* default "auto" */
    int tta;
    int batch;              /* default 32 */
    int threads;            /* default: all cores */
    /* --ensemble A B ...: checkpoints, manifests or folders (ensemble.h)
     * averaged as one predictor; also when `checkpoint` is a manifest
     * (.json) or a folder.  Points into argv. */
    const char **ensemble;
    size_t n_ensemble;
} rn_infer_args;

void rn_infer_args_default(rn_infer_args *a);

/* Matches argv[*i] against the common options (--csv, --root, --tta,
 * --batch, --threads, --backend, --ensemble X... which takes the arguments
 * up to the next one starting with '-'); `cmd` names the command in
 * messages.
 * Returns 1 (consumed, *i advanced past a value), 0 (not one of them) or
 * -1 (bad value; the error is printed). */
int rn_infer_option(const char *cmd, int argc, char **argv, int *i, rn_infer_args *a);

typedef struct rn_infer_session {
    lm_infer_model model;
    lm_image_set set;
    lm_problems probs;   /* CSV rows left out (bad rows) */
    size_t listed;       /* images asked for: set.n + CSV rows left out */
    lm_eval_result result;
    lm_ensemble ens;     /* the ensemble (n_models 0: one checkpoint) */
    lm_image_sets alt;   /* the images for members with another filter */
} rn_infer_session;

/* Loads the checkpoint (an ensemble's first; its manifest's thresholds,
 * when it has them, replace the model's stored ones) and decodes the images: from a->csv (names_only
 * for predict: first column only) or the `n` names given.  Problems with
 * single images are kept in s->set.errors / s->probs, not returned.
 * Returns 0 or the error of lm_infer_model_load / lm_image_set_* (message
 * in err).  Free with rn_infer_session_free in any case. */
int rn_infer_session_load(const rn_infer_args *a, int names_only, const char *const *names,
                          size_t n, rn_infer_session *s, lm_err *err);

/* Creates the engine and evaluates every usable image into s->result
 * (an ensemble: the mean of its models' probabilities, ensemble.h; a member
 * trained on other filtered pixels than the first sees the images with
 * its own filter, derived once per filter from the decoded ones). */
int rn_infer_session_run(const rn_infer_args *a, rn_infer_session *s, lm_err *err);

void rn_infer_session_free(rn_infer_session *s);

#endif /* RN_INFER_CLI_H */
