/*
 * batch_loader.h -- the trainer's batch loader: streams augmented, normalised
 * float batches from the memory-mapped dataset on background threads.
 *
 *   lm_loader *ld;
 *   lm_loader_cfg cfg = {.split = LM_SPLIT_TRAIN, .batch = 32, .shuffle = 1,
 *                        .drop_last = 1, .seed = seed, .policy = &policy,
 *                        .mean = stats_mean, .std = stats_std, .threads = 1};
 *   if (lm_loader_open(ds, &cfg, &ld, &err)) ...;
 *   for (epoch ...) {
 *       lm_loader_start_epoch(ld, epoch);
 *       lm_batch b;
 *       while ((rc = lm_loader_next(ld, &b, &err)) == 0 && b.n > 0)
 *           train_step(b.x, b.y, b.n);       // x [batch,C,H,W], y [batch,K]
 *       if (rc) ...;
 *   }
 *   lm_loader_close(ld);
 *
 * Order.  The split's record indices, ascending (lm_dataset_split), form the
 * base order.  With shuffle, epoch e visits them in the order
 * lm_shuffle_u32(base, n, seed, e) (Fisher-Yates on the splitmix64 stream
 * (seed, LM_RNG_SHUFFLE, e, 0), see rng.h); without, in the base order.
 * Batch k holds positions [k*batch, (k+1)*batch) of that order.  drop_last
 * drops a final partial batch; otherwise it is delivered with n < batch, its
 * unused rows zero.  lm_loader_order() exposes the order for resume and
 * logging; lm_loader_start_epoch_at() resumes mid-epoch.
 *
 * Augmentation.  Sample with record index i in epoch e is augmented with
 * lm_policy_draw(policy, seed, e, i, H, W) (policy.h) and normalised as
 * (x/255 - mean[c]) / std[c] by nn_aug_apply (kernels/cpu/cpu_augment.h).  The
 * pixels of a batch are therefore a pure function of (dataset, cfg, epoch,
 * batch number): bitwise the same for any thread count or depth.
 *
 * Threads.  `threads` workers each fill whole batches into a ring of `depth`
 * buffers, running ahead of the consumer by at most depth-1 batches (the one
 * the consumer holds is never touched).  All lm_loader_* calls must come from
 * one consumer thread.  lm_loader_close (and lm_loader_start_epoch) stop
 * workers wherever they are -- blocked on a full ring or mid-batch -- and
 * join/park them; no thread outlives close.
 */
#ifndef LM_BATCH_LOADER_H
#define LM_BATCH_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"
#include "policy.h"

struct lm_dataset; /* dataset.h */

typedef struct lm_loader lm_loader;

typedef struct lm_loader_cfg {
    int split;      /* LM_SPLIT_TRAIN (0) or LM_SPLIT_VAL (1); dataset open only */
    int batch;      /* samples per batch, >= 1 */
    int shuffle;    /* per-epoch permutation (training) */
    int drop_last;  /* drop a final partial batch (training) */
    uint64_t seed;  /* shuffle and augmentation seed */
    const lm_policy *policy; /* augmentation; NULL = none (evaluation). Copied */
    const float *mean;       /* [channels] tone units; NULL = 0. Copied */
    const float *std;        /* [channels] > 0; NULL = 1. Copied */
    int threads;    /* worker threads, >= 1 */
    int depth;      /* batch buffers in the ring, >= 2; 0 = threads + 2 */
} lm_loader_cfg;

/* A delivered batch.  Memory is owned by the loader and valid until the next
 * lm_loader_next / lm_loader_start_epoch / lm_loader_close. */
typedef struct lm_batch {
    const float *x;         /* [batch, C, H, W], 64-byte aligned */
    const float *y;         /* [batch, K] labels */
    const uint32_t *index;  /* [batch] record indices; UINT32_MAX past n */
    int n;                  /* valid samples; 0 = the epoch is over */
    int64_t number;         /* batch number within the epoch */
    int64_t epoch;
} lm_batch;

/* Source of samples: what the loader needs from a dataset.  lm_loader_open
 * builds one over an lm_dataset; tests and tools may supply their own. */
typedef struct lm_loader_source {
    void *ctx;
    uint32_t height, width, channels, nlabels;
    const uint32_t *indices; /* [count] record indices of the split; copied */
    size_t count;
    /* Points *pixels at record i's u8 [C,H,W] pixels and *labels at its
     * [nlabels] labels; both must stay valid while the loader is open.
     * Called from worker threads concurrently.  Returns 0 or LUMEN_E*
     * (with a message in *err). */
    int (*get)(void *ctx, uint32_t i, const uint8_t **pixels,
               const float **labels, lm_err *err);
} lm_loader_source;

typedef struct lm_loader_stats {
    int64_t batches;     /* delivered since open */
    double wait_s;       /* time lm_loader_next spent blocked on workers */
    double work_s;       /* worker time spent filling batches (all threads) */
} lm_loader_stats;

/* Opens a loader over split cfg->split of dataset ds (which must outlive it).
 * Errors: LUMEN_EINVAL (bad cfg, e.g. batch < 1, threads < 1, std <= 0, or
 * rotate90 on non-square images -- the message names the field);
 * LUMEN_ENOMEM; LUMEN_ERR (threads could not be started).  *out is NULL on
 * failure.  Workers start idle; call lm_loader_start_epoch. */
int lm_loader_open(const struct lm_dataset *ds, const lm_loader_cfg *cfg,
                   lm_loader **out, lm_err *err);
/* Same over any source (cfg->split is ignored). */
int lm_loader_open_source(const lm_loader_source *src, const lm_loader_cfg *cfg,
                          lm_loader **out, lm_err *err);

/* Batches per epoch: count/batch rounded down with drop_last, up without. */
int64_t lm_loader_batches(const lm_loader *ld);
/* Samples in the split. */
size_t lm_loader_count(const lm_loader *ld);

/* Begins epoch `epoch` (any order of epochs; restarting one is allowed):
 * cancels whatever is in flight, computes the order, wakes the workers.
 * Invalidates the last batch.  Returns 0 (it cannot fail). */
int lm_loader_start_epoch(lm_loader *ld, int64_t epoch);
/* Same, starting at batch `first` (0 <= first <= batches) -- for resuming
 * mid-epoch; batches before `first` are skipped, not computed. */
int lm_loader_start_epoch_at(lm_loader *ld, int64_t epoch, int64_t first);

/* Blocks until the next batch of the current epoch is ready and fills *out;
 * out->n == 0 when the epoch is over (or no epoch was started).  Returns 0,
 * or the first error a worker hit (e.g. LUMEN_EDATA for a bad record: the
 * message names the record); after an error the epoch must be restarted. */
int lm_loader_next(lm_loader *ld, lm_batch *out, lm_err *err);

/* The current epoch's visiting order (record indices, lm_loader_count of
 * them); owned by ld, valid until the next start_epoch/close. */
const uint32_t *lm_loader_order(const lm_loader *ld, size_t *n);
/* The order epoch `epoch` would use, written to out[lm_loader_count]. */
void lm_loader_epoch_order(const lm_loader *ld, int64_t epoch, uint32_t *out);

void lm_loader_get_stats(const lm_loader *ld, lm_loader_stats *st);

/* Stops and joins the workers (wherever they are blocked), frees everything.
 * NULL-safe. */
void lm_loader_close(lm_loader *ld);

#endif /* LM_BATCH_LOADER_H */
