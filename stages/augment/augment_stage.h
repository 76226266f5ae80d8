/*
 * augment_stage.h -- internals shared by the files of the augment plugin
 * (stages/augment/): the two stage descriptors and the parameter reader.
 */
#ifndef AUGMENT_STAGE_H
#define AUGMENT_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include <lumen/plugin.h>

#include "policy.h"

extern const lumen_stage augment_stage;             /* "augment" */
extern const lumen_stage augment_materialize_stage; /* "augment-materialize" */

/* Reads the augmentation parameters both stages declare (LM_POLICY_PARAMS
 * of policy.h: flip, hflip, vflip, rotate90, rotate, translate, contrast,
 * brightness, gamma, p, fill, fill_value) into *p and checks them
 * (lm_policy_check); reports with host->fail. */
int augment_policy_from_params(lumen_ctx *ctx, const lumen_host *host,
                               lm_policy *p);

/* Offline materialisation (materialize.c), independent of the host. */
typedef struct augment_materialize_opts {
    const char *in;     /* source dataset folder */
    const char *out;    /* dataset folder to write (created) */
    lm_policy policy;
    uint64_t seed;
    int variants;       /* >= 1 augmented copies per training record */
    int keep_original;  /* also copy the training record itself */
    void *user;         /* passed to the callbacks */
    int (*cancelled)(void *user);                           /* optional */
    void (*progress)(void *user, int64_t done, int64_t total); /* optional */
} augment_materialize_opts;

/* Writes the augmented copy (see materialize.c for the layout).  *written
 * (may be NULL) receives the record count.  Errors from the dataset reader
 * and writer, LUMEN_EINVAL (rotate90 on non-square images), LUMEN_ECANCELED;
 * no partial dataset is left in o->out on failure. */
int augment_materialize(const augment_materialize_opts *o, size_t *written, lm_err *err);

#endif /* AUGMENT_STAGE_H */
