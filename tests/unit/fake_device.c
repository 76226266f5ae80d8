/* fake_device.c -> $(BUILD)/tests/libfake_device.so: a stand-in for
 * liblumen_cuda.so that runs on the CPU, for test_engine_hooks.c.
 *
 * It exports lumen_cuda_backend like the real library, so nn_engine.c
 * loads it for backend "cuda" when LUMEN_CUDA_BACKEND names it.  Its
 * "device" is a second set of host arrays that is the master copy, as on a
 * GPU; the compute is the ref backend's.  After every call that changes
 * the device state it fills the common layer's host mirrors with NaN and
 * marks them stale, so any path of nn_engine.c that reads a mirror without
 * pulling it first (or forgets to push after writing one) shows up as a
 * NaN or a wrong number in the test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_engine_impl.h"
#include "nn_optim.h"

typedef struct fake {
    float *p, *g, *m1, *m2, *b;  /* the "device" state */
    void *ref;                   /* the ref backend's impl */
    unsigned stale;              /* NN_SYNC_* bits whose host mirror is poisoned */
} fake;

static void poison(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

/* run a ref op with its own impl in place */
#define WITH_REF(e, f, expr)       \
    do {                           \
        (e)->impl = (f)->ref;      \
        expr;                      \
        (f)->ref = (e)->impl;      \
        (e)->impl = (f);           \
    } while (0)

static void fk_destroy(nn_engine *e) {
    fake *f = e->impl;
    if (!f) return;
    if (f->ref) WITH_REF(e, f, nn_backend_ref.destroy(e));
    free(f->p);
    free(f->b);
    free(f);
    e->impl = NULL;
}

static int fk_create(nn_engine *e, lm_err *err) {
    size_t np = e->model->nparams, nb = e->model->nbuffers;
    fake *f = calloc(1, sizeof *f);
    if (!f) return lm_fail(err, LUMEN_ENOMEM, "fake: out of memory");
    e->impl = f;
    f->p = malloc(sizeof(float) * np * 4);
    f->b = malloc(sizeof(float) * (nb + 1));
    if (!f->p || !f->b) return lm_fail(err, LUMEN_ENOMEM, "fake: out of memory");
    f->g = f->p + np;
    f->m1 = f->p + 2 * np;
    f->m2 = f->p + 3 * np;
    memcpy(f->p, e->params, sizeof(float) * np * 4); /* "upload" the initial state */
    memcpy(f->b, e->buffers, sizeof(float) * nb);
    int rc;
    WITH_REF(e, f, rc = nn_backend_ref.create(e, err));
    snprintf(e->note, sizeof e->note, "fake device (test stand-in for the cuda library)");
    return rc;
}

/* the host mirrors go stale (poisoned) after the device changed */
static void went_stale(nn_engine *e, fake *f, unsigned what) {
    size_t np = e->model->nparams;
    if (what & NN_SYNC_PARAMS) poison(e->params, np);
    if (what & NN_SYNC_GRADS) poison(e->grads, np);
    if (what & NN_SYNC_MOMENTS) poison(e->m1, np * 2);
    if (what & NN_SYNC_BUFFERS) poison(e->buffers, e->model->nbuffers);
    f->stale |= what;
}

/* the ref backend computes from the host arrays: give it the device's */
static void stage_for_ref(nn_engine *e, fake *f) {
    memcpy(e->params, f->p, sizeof(float) * e->model->nparams);
    memcpy(e->buffers, f->b, sizeof(float) * e->model->nbuffers);
}

static int fk_train_step(nn_engine *e, const float *x, const float *y, int n,
                         const nn_loss_cfg *lc, const float *mask, double *loss, float *logits,
                         lm_err *err) {
    fake *f = e->impl;
    stage_for_ref(e, f);
    int rc;
    WITH_REF(e, f, rc = nn_backend_ref.train_step(e, x, y, n, lc, mask, loss, logits, err));
    memcpy(f->g, e->grads, sizeof(float) * e->model->nparams);
    memcpy(f->b, e->buffers, sizeof(float) * e->model->nbuffers);
    went_stale(e, f, NN_SYNC_PARAMS | NN_SYNC_GRADS | NN_SYNC_BUFFERS);
    return rc;
}

static int fk_forward_eval(nn_engine *e, const float *x, int n, float *logits, int fold,
                           lm_err *err) {
    fake *f = e->impl;
    stage_for_ref(e, f);
    int rc;
    WITH_REF(e, f, rc = nn_backend_ref.forward_eval(e, x, n, logits, fold, err));
    went_stale(e, f, NN_SYNC_PARAMS | NN_SYNC_BUFFERS);
    return rc;
}

static int fk_pull(nn_engine *e, unsigned what, lm_err *err) {
    (void)err;
    fake *f = e->impl;
    size_t np = e->model->nparams;
    unsigned need = what & f->stale;
    if (need & NN_SYNC_PARAMS) memcpy(e->params, f->p, sizeof(float) * np);
    if (need & NN_SYNC_GRADS) memcpy(e->grads, f->g, sizeof(float) * np);
    if (need & NN_SYNC_MOMENTS) memcpy(e->m1, f->m1, sizeof(float) * np * 2);
    if (need & NN_SYNC_BUFFERS) memcpy(e->buffers, f->b, sizeof(float) * e->model->nbuffers);
    f->stale &= ~need;
    return LUMEN_OK;
}

static int has_nan(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(a[i])) return 1;
    return 0;
}

/* the common layer wrote host arrays: they must hold real numbers (a NaN
 * is a poisoned mirror it did not pull before a partial write) */
static int fk_push(nn_engine *e, unsigned what, lm_err *err) {
    fake *f = e->impl;
    size_t np = e->model->nparams;
    if (((what & NN_SYNC_PARAMS) && has_nan(e->params, np)) ||
        ((what & NN_SYNC_GRADS) && has_nan(e->grads, np)) ||
        ((what & NN_SYNC_MOMENTS) && has_nan(e->m1, np * 2)) ||
        ((what & NN_SYNC_BUFFERS) && has_nan(e->buffers, e->model->nbuffers)))
        return lm_fail(err, LUMEN_ERR, "fake: push of a poisoned host mirror (bits %u)", what);
    if (what & NN_SYNC_PARAMS) memcpy(f->p, e->params, sizeof(float) * np);
    if (what & NN_SYNC_GRADS) memcpy(f->g, e->grads, sizeof(float) * np);
    if (what & NN_SYNC_MOMENTS) memcpy(f->m1, e->m1, sizeof(float) * np * 2);
    if (what & NN_SYNC_BUFFERS) memcpy(f->b, e->buffers, sizeof(float) * e->model->nbuffers);
    f->stale &= ~what;
    return LUMEN_OK;
}

static int fk_grad_sumsq(nn_engine *e, double *s, lm_err *err) {
    (void)err;
    fake *f = e->impl;
    *s = nn_sumsq(f->g, e->model->nparams);
    return LUMEN_OK;
}

static int fk_optim_step(nn_engine *e, const nn_optim_cfg *cfg, float scale, lm_err *err) {
    fake *f = e->impl;
    if (cfg->lr == 12345.0f) return lm_fail(err, LUMEN_ERR, "fake: refused lr 12345");
    nn_optim_update(cfg, f->p, f->g, f->m1, f->m2, e->model->nparams, e->opt_step, scale);
    went_stale(e, f, NN_SYNC_PARAMS | NN_SYNC_MOMENTS);
    return LUMEN_OK;
}

static const nn_backend_ops fake_ops = {
    .name = "fake-device",
    .create = fk_create,
    .destroy = fk_destroy,
    .train_step = fk_train_step,
    .forward_eval = fk_forward_eval,
    .pull = fk_pull,
    .push = fk_push,
    .grad_sumsq = fk_grad_sumsq,
    .optim_step = fk_optim_step,
};

__attribute__((visibility("default"))) const nn_backend_ops *lumen_cuda_backend(size_t engine_size,
                                                                             size_t ops_size) {
    if (engine_size != sizeof(nn_engine) || ops_size != sizeof(nn_backend_ops)) return NULL;
    return &fake_ops;
}
