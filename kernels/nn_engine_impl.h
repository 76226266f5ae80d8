/*
 * nn_engine_impl.h -- what a backend implements (private to kernels/).
 *
 * The common nn_engine (nn_engine.c) owns the canonical host state -- params,
 * grads, buffers, counters, optimizer moments -- and does the optimizer, the
 * gradient norm, dropout masks and argument checks.  A backend supplies the
 * compute: the training step (forward + loss + backward into e->grads, running
 * stats into e->buffers/e->counters) and the eval forward.  A device backend
 * (cuda) would also override the state hooks to keep device copies in sync;
 * the cpu and ref backends compute straight from the host arrays.
 *
 * e->params_version is bumped whenever params change (set_state, optim_step):
 * a backend caches derived data (reordered or BN-folded weights) against it.
 */
#ifndef NN_ENGINE_IMPL_H
#define NN_ENGINE_IMPL_H

#include "nn_engine.h"

typedef struct nn_backend_ops {
    const char *name;
    int (*create)(nn_engine *e, lm_err *err);   /* sets e->impl */
    void (*destroy)(nn_engine *e);
    /* dropmask: [n, C_fc_in] floats 0 or 1/(1-p), NULL when no dropout.
     * dlogits_fn computes the loss: see nn_engine_loss below. */
    int (*train_step)(nn_engine *e, const float *x, const float *y, int n,
                      const nn_loss_cfg *lc, const float *dropmask, double *loss,
                      float *logits, lm_err *err);
    /* fold != 0: the fast inference path (predict); 0: unfolded eval. */
    int (*forward_eval)(nn_engine *e, const float *x, int n, float *logits, int fold,
                        lm_err *err);
} nn_backend_ops;

struct nn_engine {
    const nn_backend_ops *ops;
    void *impl;                 /* backend state */
    const nn_model *model;
    nn_graph graph;
    nn_engine_opts opts;
    int threads;
    float *params, *grads;      /* nparams each (one allocation) */
    float *m1, *m2;             /* optimizer moments, nparams each */
    float *buffers;             /* nbuffers */
    int64_t *counters;          /* ncounters */
    int64_t opt_step;           /* optim_step calls so far */
    int64_t train_steps;        /* train_step calls so far (dropout stream) */
    uint64_t params_version;
    float *dropmask;            /* [batch, fc in] */
    int profiling;
    nn_layer_time *times;       /* graph.n entries */
};

/* Loss on host logits (double math): returns the mean loss, writes
 * dlogits[n,K] (float).  Shared by the float backends. */
double nn_engine_loss(const float *logits, const float *y, int n, int K,
                      const nn_loss_cfg *lc, float *dlogits);

extern const nn_backend_ops nn_backend_ref;
extern const nn_backend_ops nn_backend_cpu;

#endif /* NN_ENGINE_IMPL_H */
