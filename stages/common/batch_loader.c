/* batch_loader.c -- see batch_loader.h.
 *
 * Synchronisation (one mutex `mu`, three condition variables):
 *   work   workers wait for a claimable batch: next_claim < nbatches and
 *          next_claim < released + depth (its ring slot is free) and no error;
 *   ready  the consumer waits for slot[given % depth] to hold batch `given`
 *          of the current generation;
 *   idle   start_epoch waits until no worker is filling (busy == 0) before it
 *          reuses the buffers and rewrites the order.
 * Every epoch start (and close) bumps `gen`; a worker checks it (atomically,
 * without the lock) between samples and abandons a stale batch.  A slot is
 * written only by the worker that claimed its batch, and only after the
 * consumer released the batch depth numbers earlier, so no buffer is ever
 * shared between a writer and a reader.
 */
#include "batch_loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_augment.h"
#include "dataset.h"
#include "rng.h"

#define CANCELLED (-1) /* internal: a stale batch was abandoned */

typedef struct slot {
    float *x;       /* [batch, C, H, W] */
    float *y;       /* [batch, K] */
    uint32_t *idx;  /* [batch] */
    int n;
    int ready;
    int64_t number;
    int64_t gen;
} slot;

struct lm_loader {
    lm_loader_source src; /* src.indices points at `base` */
    uint32_t *base;       /* [count] the split, ascending */
    uint32_t *order;      /* [count] this epoch's order */
    size_t count, chw;
    int batch, shuffle, drop_last, threads, depth, augment;
    uint64_t seed;
    lm_policy policy;
    float *mean, *std; /* [channels] */
    void *owned_ctx;   /* the dataset adapter's context, freed at close */
    slot *slots;       /* [depth] */
    pthread_t *tids;
    int nthreads_started;

    pthread_mutex_t mu;
    pthread_cond_t work, ready, idle;
    /* guarded by mu */
    int stop, busy, failed, in_epoch;
    _Atomic int64_t gen; /* written under mu, read anywhere */
    int64_t epoch, nbatches, next_claim, given, released;
    lm_err err;
    int64_t batches_total;
    double wait_s, work_s;
};

/* ---- filling one batch (worker side, no lock held) ----------------------- */

static int fill(lm_loader *ld, slot *s, int64_t b, int64_t epoch, int64_t g,
                lm_err *e) {
    const lm_loader_source *src = &ld->src;
    size_t start = (size_t)b * (size_t)ld->batch;
    size_t left = ld->count - start;
    int n = left < (size_t)ld->batch ? (int)left : ld->batch;
    int h = (int)src->height, w = (int)src->width, c = (int)src->channels;
    size_t k = src->nlabels;
    for (int j = 0; j < n; j++) {
        if (atomic_load_explicit(&ld->gen, memory_order_relaxed) != g)
            return CANCELLED;
        uint32_t idx = ld->order[start + (size_t)j];
        const uint8_t *px = NULL;
        const float *lab = NULL;
        int rc = src->get(src->ctx, idx, &px, &lab, e);
        if (rc)
            return rc;
        nn_aug_params p;
        if (ld->augment)
            lm_policy_draw(&ld->policy, ld->seed, (uint64_t)epoch, idx, h, w, &p);
        else
            nn_aug_params_identity(&p);
        rc = nn_aug_apply(px, c, h, w, &p, ld->mean, ld->std, s->x + (size_t)j * ld->chw);
        if (rc)
            return lm_fail(e, rc, "loader: record %u: augmentation failed (%s)", idx,
                           lm_strcode(rc));
        memcpy(s->y + (size_t)j * k, lab, k * sizeof(float));
        s->idx[j] = idx;
    }
    if (n < ld->batch) {
        size_t rest = (size_t)(ld->batch - n);
        memset(s->x + (size_t)n * ld->chw, 0, rest * ld->chw * sizeof(float));
        memset(s->y + (size_t)n * k, 0, rest * k * sizeof(float));
        for (int j = n; j < ld->batch; j++)
            s->idx[j] = UINT32_MAX;
    }
    s->n = n;
    return LUMEN_OK;
}

static int claimable(const lm_loader *ld) {
    return ld->in_epoch && !ld->failed && ld->next_claim < ld->nbatches &&
           ld->next_claim < ld->released + ld->depth;
}

static void *worker_main(void *arg) {
    lm_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !claimable(ld))
            pthread_cond_wait(&ld->work, &ld->mu);
        if (ld->stop)
            break;
        int64_t b = ld->next_claim++;
        int64_t g = atomic_load(&ld->gen), epoch = ld->epoch;
        slot *s = &ld->slots[b % ld->depth];
        s->ready = 0;
        ld->busy++;
        pthread_mutex_unlock(&ld->mu);

        double t0 = lm_now();
        lm_err e = {0};
        int rc = fill(ld, s, b, epoch, g, &e);
        double dt = lm_now() - t0;

        pthread_mutex_lock(&ld->mu);
        ld->busy--;
        ld->work_s += dt;
        if (g == atomic_load(&ld->gen) && rc != CANCELLED) {
            if (rc) {
                if (!ld->failed) {
                    ld->failed = 1;
                    ld->err = e;
                    if (!ld->err.code) /* a source that returned a code without a message */
                        lm_fail(&ld->err, rc, "loader: batch %lld failed (%s)", (long long)b,
                                lm_strcode(rc));
                }
            } else {
                s->number = b;
                s->gen = g;
                s->ready = 1;
            }
            pthread_cond_broadcast(&ld->ready);
        }
        if (ld->busy == 0)
            pthread_cond_broadcast(&ld->idle);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* ---- open / close ---------------------------------------------------------- */

static void free_loader(lm_loader *ld) {
    if (!ld)
        return;
    if (ld->slots)
        for (int i = 0; i < ld->depth; i++) {
            free(ld->slots[i].x);
            free(ld->slots[i].y);
            free(ld->slots[i].idx);
        }
    free(ld->slots);
    free(ld->tids);
    free(ld->base);
    free(ld->order);
    free(ld->mean);
    free(ld->std);
    free(ld->owned_ctx);
    free(ld);
}

static void stop_workers(lm_loader *ld) {
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    atomic_fetch_add(&ld->gen, 1);
    pthread_cond_broadcast(&ld->work);
    pthread_cond_broadcast(&ld->ready);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->nthreads_started; i++)
        pthread_join(ld->tids[i], NULL);
    ld->nthreads_started = 0;
}

static void *alloc_aligned(size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p)
        memset(p, 0, n ? n : 64);
    return p;
}

int lm_loader_open_source(const lm_loader_source *src, const lm_loader_cfg *cfg,
                          lm_loader **out, lm_err *err) {
    *out = NULL;
    if (!src || !cfg || !src->get)
        return lm_fail(err, LUMEN_EINVAL, "loader: no source or configuration");
    if (cfg->batch < 1)
        return lm_fail(err, LUMEN_EINVAL, "loader: batch must be >= 1, got %d", cfg->batch);
    if (cfg->threads < 1)
        return lm_fail(err, LUMEN_EINVAL, "loader: threads must be >= 1, got %d",
                       cfg->threads);
    if (cfg->depth != 0 && cfg->depth < 2)
        return lm_fail(err, LUMEN_EINVAL, "loader: depth must be >= 2 (or 0), got %d",
                       cfg->depth);
    if (src->height < 1 || src->width < 1 || src->channels < 1 ||
        (uint64_t)src->height * src->width * src->channels > ((uint64_t)1 << 31))
        return lm_fail(err, LUMEN_EINVAL, "loader: bad image shape %ux%ux%u",
                       src->channels, src->height, src->width);
    if (src->count > UINT32_MAX || (src->count && !src->indices))
        return lm_fail(err, LUMEN_EINVAL, "loader: bad index list");
    if (cfg->std)
        for (uint32_t c = 0; c < src->channels; c++)
            if (!(cfg->std[c] > 0))
                return lm_fail(err, LUMEN_EINVAL, "loader: std[%u] must be > 0, got %g", c,
                               (double)cfg->std[c]);
    if (cfg->policy) {
        int rc = lm_policy_check(cfg->policy, err);
        if (rc)
            return rc;
        if (cfg->policy->rotate90 && src->height != src->width)
            return lm_fail(err, LUMEN_EINVAL,
                           "loader: policy.rotate90 needs square images, these are %ux%u",
                           src->height, src->width);
    }

    lm_loader *ld = calloc(1, sizeof *ld);
    if (!ld)
        return lm_fail(err, LUMEN_ENOMEM, "loader: out of memory");
    ld->src = *src;
    ld->count = src->count;
    ld->chw = (size_t)src->height * src->width * src->channels;
    ld->batch = cfg->batch;
    ld->shuffle = cfg->shuffle;
    ld->drop_last = cfg->drop_last;
    ld->threads = cfg->threads;
    ld->depth = cfg->depth ? cfg->depth : cfg->threads + 2;
    ld->seed = cfg->seed;
    lm_policy_default(&ld->policy);
    if (cfg->policy && !lm_policy_is_identity(cfg->policy)) {
        ld->policy = *cfg->policy;
        ld->augment = 1;
    }
    ld->base = malloc((ld->count ? ld->count : 1) * sizeof *ld->base);
    ld->order = malloc((ld->count ? ld->count : 1) * sizeof *ld->order);
    ld->mean = malloc(src->channels * sizeof *ld->mean);
    ld->std = malloc(src->channels * sizeof *ld->std);
    ld->slots = calloc((size_t)ld->depth, sizeof *ld->slots);
    ld->tids = calloc((size_t)ld->threads, sizeof *ld->tids);
    int ok = ld->base && ld->order && ld->mean && ld->std && ld->slots && ld->tids;
    for (int i = 0; ok && i < ld->depth; i++) {
        slot *s = &ld->slots[i];
        s->x = alloc_aligned((size_t)ld->batch * ld->chw * sizeof(float));
        s->y = alloc_aligned((size_t)ld->batch * (src->nlabels ? src->nlabels : 1) *
                             sizeof(float));
        s->idx = malloc((size_t)ld->batch * sizeof *s->idx);
        ok = s->x && s->y && s->idx;
    }
    if (!ok) {
        free_loader(ld);
        return lm_fail(err, LUMEN_ENOMEM, "loader: out of memory for %d batch buffers of %d",
                       cfg->depth ? cfg->depth : cfg->threads + 2, cfg->batch);
    }
    if (ld->count)
        memcpy(ld->base, src->indices, ld->count * sizeof *ld->base);
    ld->src.indices = ld->base;
    for (uint32_t c = 0; c < src->channels; c++) {
        ld->mean[c] = cfg->mean ? cfg->mean[c] : 0.0f;
        ld->std[c] = cfg->std ? cfg->std[c] : 1.0f;
    }
    ld->nbatches = 0;
    if (pthread_mutex_init(&ld->mu, NULL)) {
        free_loader(ld);
        return lm_fail(err, LUMEN_ERR, "loader: cannot create a mutex");
    }
    if (pthread_cond_init(&ld->work, NULL) || pthread_cond_init(&ld->ready, NULL) ||
        pthread_cond_init(&ld->idle, NULL)) {
        /* pthread_cond_destroy on a never-initialised condvar is undefined;
         * on Linux init cannot fail for default attributes, so just leak. */
        pthread_mutex_destroy(&ld->mu);
        free_loader(ld);
        return lm_fail(err, LUMEN_ERR, "loader: cannot create condition variables");
    }
    for (int i = 0; i < ld->threads; i++) {
        int prc = pthread_create(&ld->tids[i], NULL, worker_main, ld);
        if (prc) {
            lm_loader_close(ld);
            return lm_fail(err, LUMEN_ERR, "loader: cannot start worker thread %d: %s", i,
                           strerror(prc));
        }
        ld->nthreads_started++;
    }
    *out = ld;
    return LUMEN_OK;
}

/* ---- over an lm_dataset ------------------------------------------------------ */

typedef struct ds_ctx {
    const lm_dataset *ds;
    uint32_t h, w, c, k;
} ds_ctx;

static int ds_get(void *ctx, uint32_t i, const uint8_t **px, const float **lab,
                  lm_err *err) {
    const ds_ctx *d = ctx;
    lm_record rec;
    if (lm_dataset_get(d->ds, i, &rec))
        return lm_fail(err, LUMEN_EDATA, "dataset %s: record %u: does not exist",
                       lm_dataset_dir(d->ds), i);
    if (rec.h != d->h || rec.w != d->w || rec.c != d->c || rec.nlabels != d->k)
        return lm_fail(err, LUMEN_EDATA,
                       "dataset %s: record %u: shape %ux%ux%u with %u labels, schema says "
                       "%ux%ux%u with %u",
                       lm_dataset_dir(d->ds), i, rec.c, rec.h, rec.w, rec.nlabels, d->c, d->h,
                       d->w, d->k);
    *px = rec.pixels;
    *lab = rec.labels;
    return LUMEN_OK;
}

int lm_loader_open(const struct lm_dataset *ds, const lm_loader_cfg *cfg,
                   lm_loader **out, lm_err *err) {
    *out = NULL;
    if (!ds || !cfg)
        return lm_fail(err, LUMEN_EINVAL, "loader: no dataset or configuration");
    if (cfg->split != LM_SPLIT_TRAIN && cfg->split != LM_SPLIT_VAL)
        return lm_fail(err, LUMEN_EINVAL, "loader: split must be train (0) or val (1), got %d",
                       cfg->split);
    const lm_dataset_info *info = lm_dataset_get_info(ds);
    ds_ctx *d = malloc(sizeof *d);
    if (!d)
        return lm_fail(err, LUMEN_ENOMEM, "loader: out of memory");
    *d = (ds_ctx){ds, info->height, info->width, info->channels, (uint32_t)info->nlabels};
    lm_loader_source src = {d, d->h, d->w, d->c, d->k, NULL, 0, ds_get};
    src.indices = lm_dataset_split(ds, cfg->split, &src.count);
    int rc = lm_loader_open_source(&src, cfg, out, err);
    if (rc)
        free(d);
    else
        (*out)->owned_ctx = d;
    return rc;
}

void lm_loader_close(lm_loader *ld) {
    if (!ld)
        return;
    stop_workers(ld);
    pthread_cond_destroy(&ld->work);
    pthread_cond_destroy(&ld->ready);
    pthread_cond_destroy(&ld->idle);
    pthread_mutex_destroy(&ld->mu);
    free_loader(ld);
}

/* ---- epochs and batches ---------------------------------------------------- */

int64_t lm_loader_batches(const lm_loader *ld) {
    size_t b = (size_t)ld->batch;
    return (int64_t)(ld->drop_last ? ld->count / b : (ld->count + b - 1) / b);
}

size_t lm_loader_count(const lm_loader *ld) { return ld->count; }

void lm_loader_epoch_order(const lm_loader *ld, int64_t epoch, uint32_t *out) {
    if (ld->count)
        memcpy(out, ld->base, ld->count * sizeof *out);
    if (ld->shuffle)
        lm_shuffle_u32(out, ld->count, ld->seed, (uint64_t)epoch);
}

const uint32_t *lm_loader_order(const lm_loader *ld, size_t *n) {
    if (n)
        *n = ld->count;
    return ld->order;
}

int lm_loader_start_epoch_at(lm_loader *ld, int64_t epoch, int64_t first) {
    pthread_mutex_lock(&ld->mu);
    atomic_fetch_add(&ld->gen, 1);
    while (ld->busy > 0)
        pthread_cond_wait(&ld->idle, &ld->mu);
    for (int i = 0; i < ld->depth; i++)
        ld->slots[i].ready = 0;
    ld->epoch = epoch;
    lm_loader_epoch_order(ld, epoch, ld->order);
    ld->nbatches = lm_loader_batches(ld);
    if (first < 0)
        first = 0;
    if (first > ld->nbatches)
        first = ld->nbatches;
    ld->next_claim = ld->given = ld->released = first;
    ld->failed = 0;
    lm_err_clear(&ld->err);
    ld->in_epoch = 1;
    pthread_cond_broadcast(&ld->work);
    pthread_mutex_unlock(&ld->mu);
    return LUMEN_OK;
}

int lm_loader_start_epoch(lm_loader *ld, int64_t epoch) {
    return lm_loader_start_epoch_at(ld, epoch, 0);
}

int lm_loader_next(lm_loader *ld, lm_batch *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ld->mu);
    out->epoch = ld->epoch;
    /* the batch handed out last is released: its slot may be refilled */
    if (ld->released < ld->given) {
        ld->released = ld->given;
        pthread_cond_broadcast(&ld->work);
    }
    if (!ld->in_epoch || (!ld->failed && ld->given >= ld->nbatches)) {
        out->number = ld->given;
        pthread_mutex_unlock(&ld->mu);
        return LUMEN_OK;
    }
    slot *s = &ld->slots[ld->given % ld->depth];
    int64_t g = atomic_load(&ld->gen);
    double t0 = lm_now();
    while (!ld->failed && !(s->ready && s->gen == g && s->number == ld->given))
        pthread_cond_wait(&ld->ready, &ld->mu);
    ld->wait_s += lm_now() - t0;
    if (ld->failed) {
        int rc = lm_fail(err, ld->err.code, "%s", ld->err.msg);
        pthread_mutex_unlock(&ld->mu);
        return rc;
    }
    out->x = s->x;
    out->y = s->y;
    out->index = s->idx;
    out->n = s->n;
    out->number = ld->given;
    ld->given++;
    ld->batches_total++;
    pthread_mutex_unlock(&ld->mu);
    return LUMEN_OK;
}

void lm_loader_get_stats(const lm_loader *cld, lm_loader_stats *st) {
    lm_loader *ld = (lm_loader *)cld; /* the mutex is the only thing written */
    pthread_mutex_lock(&ld->mu);
    st->batches = ld->batches_total;
    st->wait_s = ld->wait_s;
    st->work_s = ld->work_s;
    pthread_mutex_unlock(&ld->mu);
}
