/* stage.c -- the train stage's descriptor (exported by plugin.c). */
#include "train.h"

static const char *const TRAIN_INPUTS[] = {"dataset", "stats", "policy?", NULL};
static const char *const TRAIN_OUTPUTS[] = {"model", NULL};

const lumen_stage train_stage = {
    LUMEN_STAGE_HEADER,
    .name = "train",
    .version = "1",
    .summary = "train a multi-label ResNet: best/last checkpoints, resumable state, per-epoch metrics",
    .params = train_params,
    .inputs = TRAIN_INPUTS,
    .outputs = TRAIN_OUTPUTS,
    .flags = 0, /* not cacheable: a run's training is its own (and --resume continues it) */
    .key = NULL,
    .check = train_check,
    .run = train_run,
};
