/*
 * nn_engine_impl.h -- what a backend implements (private to kernels/).
 *
 * The common nn_engine (nn_engine.c) owns the canonical host state -- params,
 * grads, buffers, counters, optimizer moments -- and does the optimizer, the
 * gradient norm, dropout masks and argument checks.  A backend supplies the
 * compute: the training step (forward + loss + backward into e->grads, running
 * stats into e->buffers/e->counters) and the eval forward.  A device backend
 * (cuda) also sets the optional hooks below: the device copy is then the
 * master, and the host arrays are mirrors it fills on demand (pull) or reads
 * after the common layer wrote them (push); the optimizer and the gradient
 * norm then run on the device.  The cpu and ref backends leave the hooks
 * NULL and compute straight from the host arrays.
 *
 * e->params_version is bumped whenever params change (set_state, optim_step),
 * e->buffers_version whenever the BN running stats do (set_state,
 * train_step): a backend caches derived data (reordered weights against the
 * first, BN-folded weights against both).
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
    /* ---- optional: device backends ---- */
    /* pull: make the host arrays named by `what` (NN_SYNC_*) current;
     * push: the host arrays named by `what` were just written (set_state,
     * set_optim_state), copy them to the device. */
    int (*pull)(nn_engine *e, unsigned what, lm_err *err);
    int (*push)(nn_engine *e, unsigned what, lm_err *err);
    /* sum of squares of the gradients (double; NaN/inf propagate) */
    int (*grad_sumsq)(nn_engine *e, double *sumsq, lm_err *err);
    /* one update, nn_optim_update's semantics; e->opt_step is already the
     * number of this update */
    int (*optim_step)(nn_engine *e, const nn_optim_cfg *cfg, float grad_scale, lm_err *err);
} nn_backend_ops;

enum {
    NN_SYNC_PARAMS = 1,
    NN_SYNC_GRADS = 2,
    NN_SYNC_BUFFERS = 4,
    NN_SYNC_MOMENTS = 8,
};

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
    uint64_t params_version, buffers_version;
    float *dropmask;            /* [batch, fc in] */
    int profiling;
    nn_layer_time *times;       /* graph.n entries */
    char note[320];             /* nn_engine_note */
    void *dl;                   /* dlopen handle of the backend's library, or NULL */
};

/* Loss on host logits (double math): returns the mean loss, writes
 * dlogits[n,K] (float).  Shared by the float backends. */
double nn_engine_loss(const float *logits, const float *y, int n, int K,
                      const nn_loss_cfg *lc, float *dlogits);

extern const nn_backend_ops nn_backend_ref;
extern const nn_backend_ops nn_backend_cpu;
/* The cuda backend lives in liblumen_cuda.so (kernels/cuda/), loaded by
 * nn_engine.c on demand; it exports
 *     const nn_backend_ops *lumen_cuda_backend(size_t engine_size, size_t ops_size);
 * which answers NULL when the sizes of struct nn_engine / nn_backend_ops
 * differ from its own (a library from another build). */
typedef const nn_backend_ops *(*nn_cuda_entry_fn)(size_t engine_size, size_t ops_size);
#define NN_CUDA_LIB "liblumen_cuda.so"
#define NN_CUDA_ENTRY "lumen_cuda_backend"

#endif /* NN_ENGINE_IMPL_H */
