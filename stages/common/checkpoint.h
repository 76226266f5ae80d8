/*
 * checkpoint.h -- lumen model checkpoints and resumable training state, as
 * safetensors files (safetensors.h) on top of the engine's tensor table
 * (kernels/nn_model.h).
 *
 * A checkpoint holds every tensor of the model's table under its PyTorch
 * state_dict name: params and buffers as F32, num_batches_tracked counters as
 * I64 scalars (shape [], as torch writes them), plus "__metadata__" strings:
 *
 *   format      "lumen-checkpoint"          version   "1"
 *   model       config JSON (nn_resnet_cfg_to_json)
 *   labels      JSON list of label names    thresholds JSON list, one per label
 *   stats       {"channels":C,"mean":[..],"std":[..]} (normalization)
 *   input       {"height":H,"width":W,"channels":C}
 *   epoch       integer                     metrics   JSON object
 *   created     UTC time, "2026-01-31T12:00:00Z"
 *   lumen.data_xxh3_128
 *               XXH3-128 of the data section (the bytes after the header),
 *               32 lowercase hex digits (canonical, big-endian: what
 *               Python's xxhash.xxh3_128_hexdigest gives)
 *
 * so `safetensors.torch.load_file` + tests/torch/lumen_resnet.py load it in
 * PyTorch (strict; metadata is a string -> string map, the checksum is one
 * more entry), and a torchvision state_dict converted to safetensors can
 * initialize a lumen model (lm_ckpt_load with reset_head, RGB -> gray).
 *
 * Trust on load.  safetensors checks the layout, not the values: a flipped
 * byte can turn a threshold of 0.458 into 9.458 or a weight into another
 * weight.  So lm_ckpt_open range-checks every metadata entry (the same
 * checks lm_ckpt_save applies before writing):
 *   model       nn_resnet_cfg_from_json's ranges (those the train stage
 *               declares), dropout <= LM_CKPT_MAX_DROPOUT, and conv1.weight,
 *               fc.weight and fc.bias shaped as the config implies
 *   labels      num_classes distinct names, 1..LM_CKPT_MAX_LABEL bytes, no
 *               control characters
 *   thresholds  num_classes numbers in [0, 1]
 *   stats       channels = in_channels; mean in [0, 1], std in (0, 1]
 *               (tone units, normstats.h)
 *   input       height and width in 1..LM_CKPT_MAX_SIDE, channels =
 *               in_channels
 *   epoch       0..LM_CKPT_MAX_EPOCH      metrics, validated  JSON objects
 *   created     "YYYY-MM-DDTHH:MM:SSZ"
 * and every file lumen writes (checkpoints and state files) carries
 * lumen.data_xxh3_128, verified by lm_ckpt_open, lm_ckpt_state_open and
 * lm_ckpt_load_file (lm_ckpt_verify_data): a mismatch is LUMEN_EDATA
 * "<file>: data section checksum mismatch: the file is damaged".  A file
 * without the entry (lumen checkpoints written before it existed, converted
 * torchvision weights) loads as before, unverified.  The checksum covers the
 * tensor bytes only; the metadata is covered by the range checks above.
 *
 * Only nn_model's data (nn_model / nn_tensor) and its config parser
 * (nn_resnet_cfg_from_json) are used, no engine function.  Arrays follow
 * nn_model.h: params (nparams floats), buffers (nbuffers floats), counters
 * (ncounters int64), each tensor at its offset.
 *
 * Errors: 0 or LUMEN_E* with a message naming the file and the tensor or
 * metadata key (lm_util.h).  Threading: no shared state; distinct calls may
 * run in parallel on distinct files and arrays.
 */
#ifndef LM_CHECKPOINT_H
#define LM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"
#include "nn_model.h"
#include "safetensors.h"

#define LM_CKPT_FORMAT "lumen-checkpoint"
#define LM_CKPT_STATE_FORMAT "lumen-state"
#define LM_CKPT_VERSION "1"
/* Metadata key of the data section's XXH3-128 (see above). */
#define LM_CKPT_DIGEST_KEY "lumen.data_xxh3_128"

/* Metadata ranges checked on save and load (see above). */
#define LM_CKPT_MAX_LABEL 256      /* bytes of a label name */
#define LM_CKPT_MAX_SIDE 4096      /* input height / width (ingest's size) */
#define LM_CKPT_MAX_EPOCH 100000   /* the train stage's most epochs */
#define LM_CKPT_MAX_DROPOUT 0.99   /* the train stage's model.dropout */

/* Checkpoint metadata.  On save, NULL strings are left out (model is
 * required) and each JSON value is checked to parse and have the right
 * type; on read (lm_ckpt_read_meta) the strings point into the open file. */
typedef struct lm_ckpt_meta {
    const char *model;      /* config JSON object (required on save) */
    const char *labels;     /* JSON array of strings, num_classes long */
    const char *stats;      /* JSON object {"channels","mean","std"} */
    const char *thresholds; /* JSON array of numbers, one per label */
    const char *metrics;    /* JSON object */
    const char *input;      /* JSON object {"height","width","channels"} */
    int64_t epoch;          /* < 0: left out on save / absent on read */
    const char *created;    /* NULL on save: now (UTC) */
    /* More string metadata on save: NULL-terminated key, value, key, value,
     * ... (e.g. "run", "experiment").  Ignored by lm_ckpt_read_meta. */
    const char *const *extra;
} lm_ckpt_meta;

/* ----------------------------------------------------------- saving -- */

/* Adds every tensor of m's table to w under its torch name: params and
 * buffers as F32 views of the arrays, counters as I64 scalars.  The arrays
 * are borrowed until lm_st_writer_write returns.  LUMEN_EINVAL (a name
 * already in w), LUMEN_ENOMEM. */
int lm_ckpt_add_model(lm_st_writer *w, const nn_model *m, const float *params,
                      const float *buffers, const int64_t *counters,
                      lm_err *e);

/* Saves the model and `meta` to `path` atomically (a crash or failure leaves
 * the previous file intact), with the data section's checksum
 * (LM_CKPT_DIGEST_KEY).  LUMEN_EINVAL for a missing model, a metadata value
 * of the wrong JSON type or length or out of the ranges above, or a
 * reserved extra key (lm_ckpt_meta_reserved), naming the key; LUMEN_EIO,
 * LUMEN_ENOMEM. */
int lm_ckpt_save(const char *path, const nn_model *m, const float *params,
                 const float *buffers, const int64_t *counters,
                 const lm_ckpt_meta *meta, lm_err *e);

/* ---------------------------------------------------------- loading -- */

typedef struct lm_ckpt_load_opts {
    /* Leave fc.weight and fc.bias as they are (their fresh init) and report
     * them in `reset`, whatever their shape in the file: fine-tuning a
     * pretrained network on new labels.  Without it an fc shape mismatch is
     * an error like any other. */
    int reset_head;
    /* Missing or unexpected tensors are an error (like torch's strict
     * load_state_dict) instead of being reported. */
    int strict;
    /* Refuse (instead of summing) an RGB first-layer weight for a
     * one-channel model. */
    int no_rgb_to_gray;
} lm_ckpt_load_opts;

/* What a load did.  Lists are malloc'ed copies; lm_ckpt_report_free. */
typedef struct lm_ckpt_report {
    size_t nloaded;       /* model tensors filled from the file */
    char **missing;       /* model tensors absent from the file (kept) */
    size_t nmissing;
    char **unexpected;    /* file tensors the model does not have (ignored) */
    size_t nunexpected;
    char **reset;         /* head tensors kept at their init (reset_head) */
    size_t nreset;
    char **notes;         /* conversions: "conv1.weight: summed 3 input channels
                           * into 1 (RGB -> gray)", "x: F16 -> F32" */
    size_t nnotes;
} lm_ckpt_report;

void lm_ckpt_report_free(lm_ckpt_report *r);  /* frees the lists; NULL ok */
/* The report as lines "loaded 62 tensors", "missing (2): a, b", ... for a log;
 * malloc'ed, NULL on OOM. */
char *lm_ckpt_report_text(const lm_ckpt_report *r);

/* Loads the tensors of file f into the model arrays, matching by name.
 * First every tensor is checked (shape, dtype), then copied: on error the
 * arrays are unchanged.  Model tensors the file lacks, file tensors the model
 * lacks and reset head tensors keep the arrays' current values (the caller
 * initializes them first) and are listed in *rep (may be NULL).  Floating
 * sources (F32, F64, F16, BF16) are converted to float, integer counters to
 * int64.  An RGB conv1.weight [O,3,k,k] loaded into a model with
 * in_channels 1 is summed over its input channels (gray = R = G = B gives the
 * same response) and noted.
 * Errors (LUMEN_EDATA, message names the file and tensor): a shape mismatch
 * ("layer1.0.conv1.weight: shape [8, 8, 3, 3] in the file, [16, 8, 3, 3] in
 * the model"), a wrong dtype, and with opts->strict missing or unexpected
 * tensors (listed).  opts may be NULL (all zero). */
int lm_ckpt_load(const lm_st_file *f, const nn_model *m, float *params,
                 float *buffers, int64_t *counters,
                 const lm_ckpt_load_opts *opts, lm_ckpt_report *rep,
                 lm_err *e);

/* lm_st_open + lm_ckpt_verify_data + lm_ckpt_load + lm_st_close: `path` may
 * be any safetensors file with torch names (a lumen checkpoint, checked
 * against its data checksum when it has one, or a converted torchvision
 * state_dict). */
int lm_ckpt_load_file(const char *path, const nn_model *m, float *params,
                      float *buffers, int64_t *counters,
                      const lm_ckpt_load_opts *opts, lm_ckpt_report *rep,
                      lm_err *e);

/* Opens a lumen checkpoint and checks its metadata: format
 * "lumen-checkpoint" (LUMEN_EABI otherwise: "not a lumen checkpoint"), version
 * "1" (LUMEN_EABI for others), a "model" entry (LUMEN_EDATA when absent),
 * every entry in its range (LUMEN_EDATA naming the file and the entry, e.g.
 * '<file>: metadata "thresholds": entry 0 is 9.458, outside [0, 1]') and
 * the data checksum when present (lm_ckpt_verify_data).  Build the model
 * with nn_resnet_cfg_from_json(lm_st_meta_get(f, "model")).
 * *out: lm_st_close it. */
int lm_ckpt_open(const char *path, lm_st_file **out, lm_err *e);

/* The checks of lm_ckpt_open on a file already open (lm_st_open or
 * lm_st_open_buffer): format, version, metadata ranges, data checksum. */
int lm_ckpt_check(const lm_st_file *f, lm_err *e);

/* Checks f's data section against its LM_CKPT_DIGEST_KEY metadata: 0 when
 * they agree or the file has no such entry (older lumen files, converted
 * weights); LUMEN_EDATA naming the file when the entry is not 32 hex digits
 * or differs ("data section checksum mismatch: the file is damaged"). */
int lm_ckpt_verify_data(const lm_st_file *f, lm_err *e);

/* Non-zero for the metadata keys lm_ckpt_meta and lm_ckpt_save set
 * themselves (format, version, model, ..., created, LM_CKPT_DIGEST_KEY):
 * not allowed as extra keys.  For copying a file's other keys. */
int lm_ckpt_meta_reserved(const char *key);

/* Fills *meta from f's metadata (pointers into f, valid until lm_st_close;
 * absent entries NULL, epoch -1).  LUMEN_EDATA naming the file for an epoch
 * that is not an integer in 0..LM_CKPT_MAX_EPOCH.  The other values are
 * checked by lm_ckpt_open, not here. */
int lm_ckpt_read_meta(const lm_st_file *f, lm_ckpt_meta *meta, lm_err *e);

/* ------------------------------------------------ resumable state -- */
/*
 * A state file is a safetensors file with metadata format "lumen-state",
 * version "1" and "state" (a JSON object the train stage defines: step,
 * epoch, scheduler, RNG, ...), and whatever tensors the caller adds to the
 * writer: the model (lm_ckpt_add_model), optimizer moments named like
 * torch's optimizer state ("optim.<param>.exp_avg", ".exp_avg_sq",
 * ".momentum_buffer": lm_ckpt_add_param_like), the epoch's permutation
 * (I64), RNG words (U64), ...
 */

/* Adds format/version/state metadata and the data checksum
 * (LM_CKPT_DIGEST_KEY; add every tensor first) to w and writes it atomically
 * to path.  state_json must be a JSON object (LUMEN_EINVAL otherwise). */
int lm_ckpt_state_write(lm_st_writer *w, const char *state_json,
                        const char *path, lm_err *e);

/* Opens a state file: checks format and version (LUMEN_EABI), that
 * "state" is a JSON object (LUMEN_EDATA) and the data checksum when present
 * (lm_ckpt_verify_data); *state_json points into *out. */
int lm_ckpt_state_open(const char *path, lm_st_file **out,
                       const char **state_json, lm_err *e);

/* Adds one F32 tensor per model tensor of `kind` (NN_T_PARAM: arr has
 * m->nparams floats; NN_T_BUFFER: m->nbuffers), named prefix + tensor name
 * + suffix with its shape, viewing arr at the tensor's offset (borrowed
 * until the write).  e.g. prefix "ema.", suffix "" for averaged weights. */
int lm_ckpt_add_like(lm_st_writer *w, const nn_model *m, int kind,
                     const char *prefix, const char *suffix,
                     const float *arr, lm_err *e);
/* Reads them back (as lm_ckpt_read_param_like, for either kind). */
int lm_ckpt_read_like(const lm_st_file *f, const nn_model *m, int kind,
                      const char *prefix, const char *suffix, float *arr,
                      lm_err *e);

/* Adds one F32 tensor per model parameter (kind NN_T_PARAM), named
 * prefix + param name + suffix with the param's shape, viewing
 * arr[offset .. offset + numel) (arr has m->nparams floats; borrowed until
 * the write).  e.g. prefix "optim.", suffix ".exp_avg". */
int lm_ckpt_add_param_like(lm_st_writer *w, const nn_model *m,
                           const char *prefix, const char *suffix,
                           const float *arr, lm_err *e);

/* Reads them back into arr: every one must be present (LUMEN_ENOTFOUND naming
 * the file and tensor) with the param's shape (LUMEN_EDATA).  On error arr
 * may be partly written. */
int lm_ckpt_read_param_like(const lm_st_file *f, const nn_model *m,
                            const char *prefix, const char *suffix, float *arr,
                            lm_err *e);

#endif /* LM_CHECKPOINT_H */
