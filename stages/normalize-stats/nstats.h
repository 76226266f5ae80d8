/*
 * nstats.h -- the normalize-stats stage's core: per-channel mean and
 * standard deviation of a dataset's TRAINING split, pixel values scaled to
 * [0,1] (u8 / 255).
 *
 * The standard deviation is the population one (ddof = 0):
 *     mean = S / N,   std = sqrt(Q / N - mean^2)     per channel, where
 * N is the number of training pixels of the channel, S the sum and Q the sum
 * of squares of their values.  Each image's sums are computed exactly in
 * integers (u8 values), combined exactly in 64/128-bit integers across
 * images and threads, and only the final division happens in double -- so
 * the result does not depend on the thread count or image order, and has
 * no accumulated rounding error.
 *
 * Writes <out>/stats.json atomically:
 *   {"channels":C,"mean":[...],"std":[...],"images":n,"pixels":N,
 *    "split":"train","scale":"u8/255","ddof":0}
 * ("pixels" counts pixels per channel).
 */
#ifndef NSTATS_H
#define NSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "lm_util.h"

#define NSTATS_MAX_CHANNELS 64

typedef struct nstats_result {
    uint32_t channels;
    double mean[NSTATS_MAX_CHANNELS];
    double std[NSTATS_MAX_CHANNELS];
    size_t images;   /* training images */
    uint64_t pixels; /* pixels per channel */
    double seconds;
} nstats_result;

/* Computes the statistics of an open dataset's training split with
 * `threads` threads (<= 0: one per core).  Returns 0, LUMEN_EDATA (empty
 * training split, too many channels), LUMEN_ENOMEM, LUMEN_ERR (threads). */
int nstats_compute(const lm_dataset *ds, int threads, nstats_result *r, lm_err *err);

typedef struct nstats_opts {
    const char *dataset; /* dataset folder (input) */
    const char *out;     /* folder for stats.json (created) */
    int threads;         /* <= 0: one per core */
    void *user;          /* passed to log */
    void (*log)(void *user, int level, const char *msg); /* optional */
} nstats_opts;

/* Opens the dataset, computes, writes stats.json and logs one line.
 * Returns 0 or the error of lm_dataset_open / nstats_compute /
 * lm_write_file_atomic.  r may be NULL. */
int nstats_run(const nstats_opts *o, nstats_result *r, lm_err *err);

/* The stage descriptor (plugin.c), for tests. */
extern const lumen_stage nstats_stage;

#endif /* NSTATS_H */
