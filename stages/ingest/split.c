/* split.c -- see split.h. */
#include "split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "rng.h"

typedef struct sort_ctx {
    const float *labels;
    size_t nlabels;
} sort_ctx;

/* Orders rows by label vector, then by row index (stable groups). */
static int cmp_rows(const void *a, const void *b, void *arg) {
    const sort_ctx *c = arg;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    const float *x = c->labels + (size_t)i * c->nlabels, *y = c->labels + (size_t)j * c->nlabels;
    for (size_t k = 0; k < c->nlabels; k++)
        if (x[k] != y[k]) return x[k] < y[k] ? -1 : 1;
    return i < j ? -1 : i > j;
}

int ingest_split(const float *labels, size_t n, size_t nlabels, double val, uint64_t seed,
                 int stratify, uint8_t *split, lm_err *err) {
    if (!(val >= 0.0 && val <= 1.0))
        return lm_fail(err, LUMEN_EINVAL, "split.val must be in [0, 1], got %g", val);
    if (n > UINT32_MAX) return lm_fail(err, LUMEN_EINVAL, "split: too many rows (%zu)", n);
    memset(split, 0, n);
    if (n == 0) return 0;
    uint32_t *ord = malloc(n * sizeof *ord);
    if (!ord) return lm_fail(err, LUMEN_ENOMEM, "split: out of memory");
    for (size_t i = 0; i < n; i++) ord[i] = (uint32_t)i;
    sort_ctx c = {labels, nlabels};
    if (stratify && nlabels) qsort_r(ord, n, sizeof *ord, cmp_rows, &c);
    for (size_t g = 0; g < n;) {
        size_t e = g + 1;
        if (stratify && nlabels)
            while (e < n && !memcmp(labels + (size_t)ord[e] * nlabels,
                                    labels + (size_t)ord[g] * nlabels, nlabels * sizeof(float)))
                e++;
        else
            e = n;
        uint64_t gseed = stratify && nlabels
                             ? XXH3_64bits_withSeed(labels + (size_t)ord[g] * nlabels,
                                                    nlabels * sizeof(float), seed)
                             : XXH3_64bits_withSeed(NULL, 0, seed);
        lm_xoshiro r;
        lm_xoshiro_seed(&r, gseed);
        lm_xoshiro_shuffle(ord + g, e - g, &r);
        size_t k = (size_t)round(val * (double)(e - g));
        for (size_t i = g; i < g + k; i++) split[ord[i]] = 1;
        g = e;
    }
    free(ord);
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int ingest_subset(size_t n, size_t k, uint64_t seed, uint32_t *pick, lm_err *err) {
    if (k > n) k = n;
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    if (!all) return lm_fail(err, LUMEN_ENOMEM, "subset: out of memory");
    for (size_t i = 0; i < n; i++) all[i] = (uint32_t)i;
    lm_xoshiro r;
    lm_xoshiro_seed(&r, seed ^ 0x6c696d6974ull); /* "limit": not the split's stream */
    lm_xoshiro_shuffle(all, n, &r);
    memcpy(pick, all, k * sizeof *pick);
    qsort(pick, k, sizeof *pick, cmp_u32);
    free(all);
    return 0;
}

int ingest_split_fold(const float *labels, size_t n, size_t nlabels, int folds, int fold,
                      uint64_t seed, uint8_t *split, lm_err *err) {
    if (folds < 2 || folds > LM_CROSSFIT_MAX_FOLDS)
        return lm_fail(err, LUMEN_EINVAL, "split.folds must be in [2, %d], got %d",
                       LM_CROSSFIT_MAX_FOLDS, folds);
    if (fold < 0 || fold >= folds)
        return lm_fail(err, LUMEN_EINVAL, "split.fold must be in [0, %d], got %d", folds - 1, fold);
    if (n > INT64_MAX / 2 || nlabels < 1 || nlabels > LM_METRICS_MAX_CLASSES)
        return lm_fail(err, LUMEN_EINVAL, "split: k-fold mode needs 1 .. %d labels, got %zu",
                       LM_METRICS_MAX_CLASSES, nlabels);
    if (n == 0) return 0;
    uint8_t *f = malloc(n);
    if (!f) return lm_fail(err, LUMEN_ENOMEM, "split: out of memory");
    int rc = lm_crossfit_folds(labels, (int64_t)n, (int)nlabels, folds, seed, f, err);
    for (size_t i = 0; rc == 0 && i < n; i++) split[i] = f[i] == fold;
    free(f);
    return rc;
}
