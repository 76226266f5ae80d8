/*
 * nn_engine.h -- the training engine: one interface, several backends.
 *
 * Backends (selected by name at nn_engine_create):
 *   "cpu"  : oneDNN primitives (conv, BN, pooling) + own OpenMP kernels, float
 *   "ref"  : the double-precision reference layers of nn_ref.h walked over the
 *            graph (slow; for tests and as a second opinion)
 *   "cuda" : cuDNN + cuBLAS on one NVIDIA GPU (kernels/cuda/; built when the
 *            CUDA toolkit and cuDNN are found at build time).  Without a
 *            build, or without a usable GPU at run time, create answers
 *            LUMEN_ENOTFOUND ("no usable GPU: <reason>").
 *   "auto" : "cuda" when built and a GPU is usable, else "cpu";
 *            nn_engine_note says which and why
 * A backend is a vtable (nn_backend_ops in nn_engine_impl.h); this header is
 * all a caller needs.
 *
 * State every backend keeps in the CANONICAL view of nn_model.h -- one flat
 * float array of params (conv weights OIHW), one of grads (same offsets), one
 * of float buffers (BN running stats), int64 counters (num_batches_tracked),
 * and the optimizer moments (same offsets as params).  get/set copy these
 * views, so checkpoints, the optimizer and every backend agree.
 *
 * A training step is:
 *     nn_engine_train_step(e, x, y, n, &loss_cfg, &loss, logits, err);
 *     nn_engine_grad_norm(e, &norm, err);               (optional: clipping)
 *     nn_engine_optim_step(e, &opt, scale, err);
 *
 * Gradient rule: train_step OVERWRITES the gradients (no accumulation across
 * calls); optim_step reads them.
 *
 * Data: x is [n, C, H, W] float (NCHW, host memory, already normalized),
 * y is [n, K] float in {0, 1} (or soft targets in [0, 1]), logits [n, K].
 *
 * Threading: an engine is used by one thread at a time; it runs its own
 * OpenMP team of opts.threads (each call sets omp_set_num_threads on the
 * calling thread).  Engines share nothing (no global state).
 * Errors: int LUMEN_* codes with an lm_err message (LUMEN_EINVAL for bad
 * arguments, LUMEN_ENOMEM, LUMEN_ENOTFOUND for an unknown backend, LUMEN_ERR
 * for a library failure with its status in the message).
 */
#ifndef NN_ENGINE_H
#define NN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"
#include "nn_model.h"

typedef struct nn_engine nn_engine;

typedef struct nn_engine_opts {
    int batch;        /* the largest n passed to train_step / predict; smaller
                         n get their own primitives (no padding), cached */
    int channels;     /* must equal model.in_channels */
    int height, width;
    int threads;      /* OpenMP threads; 0 = the core count */
    uint64_t seed;    /* dropout masks: mask of step t from (seed, t) */
    /* cpu backend: activation layout "auto" (NULL), "blocked" or "nhwc"
     * (for measuring; auto = what oneDNN prefers on this machine). */
    const char *layout;
    /* cpu backend, predict only: how 3x3 stride-1 convolutions run --
     * "auto" (NULL): Winograd where the layout allows it (nChw8c), the
     * transform size chosen per layer; "direct": oneDNN's direct
     * convolution everywhere (the yardstick); "wino2" / "wino4": Winograd
     * F(2x2,3x3) / F(4x4,3x3) for every eligible layer.  Read at create. */
    const char *infer_conv;
    /* cpu backend, train_step: the same choice for the forward and
     * backward-data passes of 3x3 stride-1 convolutions in training
     * ("direct" (NULL), "auto", "wino2", "wino4"; backward-weights and the
     * unfolded eval forward stay direct).  Read at create. */
    const char *train_conv;
    /* cuda backend (ignored by the others; zero = the default):
     *   gpu: device index (0 = the first);
     *   precision: "tf32" (NULL: the default -- fp32 storage, TF32 tensor
     *   cores in convolutions and matmuls), "fp32" (no TF32) or "bf16"
     *   (convolutions on bf16 copies, fp32 accumulation and master weights);
     *   deterministic: only deterministic cuDNN algorithms (two runs from
     *   the same state give bitwise the same losses).  Read at create. */
    int gpu;
    const char *precision;
    int deterministic;
} nn_engine_opts;

typedef struct nn_loss_cfg {
    const float *pos_weight;  /* [K], NULL = all 1 (BCEWithLogitsLoss pos_weight) */
    float label_smoothing;    /* s: targets y (1 - s) + s / 2; 0 = off */
    float focal_gamma;        /* focal modulation (nn_ref_focal_*); 0 = plain BCE */
} nn_loss_cfg;

typedef enum { NN_OPT_SGD = 0, NN_OPT_ADAM = 1, NN_OPT_ADAMW = 2 } nn_optim_kind;

/* PyTorch semantics (torch.optim.SGD / Adam / AdamW, one param group):
 *   g = grad * grad_scale
 *   SGD  : g += wd p; if momentum: buf = (first step ? g : momentum buf +
 *          (1 - dampening) g); g = nesterov ? g + momentum buf : buf;
 *          p -= lr g
 *   Adam : g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   AdamW: p *= 1 - lr wd, then Adam without the L2 term.
 * Weight decay applies to every parameter (BN and biases included). */
typedef struct nn_optim_cfg {
    nn_optim_kind kind;
    float lr;
    float momentum, dampening;  /* SGD */
    int nesterov;               /* SGD; needs momentum > 0 and dampening 0 */
    float beta1, beta2, eps;    /* Adam, AdamW */
    float weight_decay;
} nn_optim_cfg;

/* Per-layer timing (runner bench): milliseconds of the last profiled step. */
typedef struct nn_layer_time {
    const char *name;   /* node name ("layer1.0.conv1"), owned by the engine */
    const char *op;     /* "conv", "bn", ... */
    const char *impl;   /* backend implementation of the forward (cpu:
                           oneDNN's name, e.g. "jit:avx2"), "" for own code */
    double fwd_ms, bwd_ms;
    /* predict (recorded while profiling is on): milliseconds of the node's
     * folded inference (a block's second conv, which runs at its add, counts
     * for the conv; BN, dropout and the add itself are 0) and its
     * implementation ("wino4", "jit:avx2", "" for own code) */
    const char *inf_impl;
    double inf_ms;
} nn_layer_time;

/* Creates an engine for `model` (which must outlive it).  Params start from
 * nn_model_init(model, opts->seed); optimizer state zero, step 0. */
int nn_engine_create(const char *backend, const nn_model *model,
                     const nn_engine_opts *opts, nn_engine **out, lm_err *err);
void nn_engine_free(nn_engine *e);  /* NULL is a no-op */
/* The backend actually used ("cpu", "ref", "cuda"); static string. */
const char *nn_engine_backend(const nn_engine *e);
/* One line on how the backend was chosen and what it runs on, for the log:
 * "cuda: GPU 0 NVIDIA H100 80GB HBM3, 79.1 GiB, precision tf32" or "auto:
 * no usable GPU: cudaGetDeviceCount: ...; using cpu"; "" when there is
 * nothing to say.  Owned by the engine. */
const char *nn_engine_note(const nn_engine *e);
/* Non-zero when this build has the cuda backend compiled in (whether a GPU
 * is usable is only known at create). */
int nn_engine_cuda_built(void);

/* Copy the canonical state out / in.  Arrays sized model->nparams,
 * ->nbuffers, ->ncounters; any pointer may be NULL (that part skipped). */
int nn_engine_get_state(nn_engine *e, float *params, float *buffers,
                        int64_t *counters, lm_err *err);
int nn_engine_set_state(nn_engine *e, const float *params, const float *buffers,
                        const int64_t *counters, lm_err *err);
/* Optimizer state: m1 (SGD momentum buffer / Adam exp_avg), m2 (Adam
 * exp_avg_sq), each nparams floats (NULL skips), and the step count t
 * (number of optim_step calls so far). */
int nn_engine_get_optim_state(nn_engine *e, float *m1, float *m2, int64_t *step,
                              lm_err *err);
int nn_engine_set_optim_state(nn_engine *e, const float *m1, const float *m2,
                              int64_t step, lm_err *err);
/* Gradients of the last train_step, canonical layout (nparams floats). */
int nn_engine_get_grads(nn_engine *e, float *grads, lm_err *err);

/* Forward in training mode (batch statistics, dropout), loss, backward.
 * 1 <= n <= opts.batch.  Gradients are overwritten; BN running stats and
 * num_batches_tracked are updated.  *loss gets the mean loss; logits [n,K]
 * may be NULL.  LUMEN_ENUMERIC when the loss is not finite (state then holds
 * that step's gradients; params are untouched). */
int nn_engine_train_step(nn_engine *e, const float *x, const float *y, int n,
                         const nn_loss_cfg *loss_cfg, float *loss, float *logits,
                         lm_err *err);
/* Global L2 norm of the gradients in *norm; LUMEN_ENUMERIC when any gradient
 * is NaN/inf (*norm is then that non-finite value). */
int nn_engine_grad_norm(nn_engine *e, double *norm, lm_err *err);
/* One optimizer update from the current gradients times grad_scale (pass
 * min(1, max_norm / norm) for clipping, else 1). */
int nn_engine_optim_step(nn_engine *e, const nn_optim_cfg *cfg, float grad_scale,
                         lm_err *err);

/* Eval-mode logits [n,K] (running stats, no dropout).  predict uses the fast
 * inference path (cpu: BN folded into conv weights + bias, ReLU and the
 * residual add fused as post-ops; the folded weights are recomputed lazily
 * after params changed).  forward_eval runs the unfolded eval forward
 * (BN as its own layer) -- the yardstick for the folding. */
int nn_engine_predict(nn_engine *e, const float *x, int n, float *logits, lm_err *err);
int nn_engine_forward_eval(nn_engine *e, const float *x, int n, float *logits,
                           lm_err *err);

/* Per-layer timing: while enabled, train_step records forward and backward
 * milliseconds per graph node, predict the inference milliseconds (at a
 * small synchronization cost).
 * nn_engine_layer_times hands out the engine's array (valid until the next
 * call on e): *count entries in graph order. */
void nn_engine_set_profiling(nn_engine *e, int on);
const nn_layer_time *nn_engine_layer_times(nn_engine *e, int *count);

/* The graph the engine runs (shapes for opts' input size). */
const nn_graph *nn_engine_graph(const nn_engine *e);

/* Training steps taken so far: train_step calls that reached the backend
 * (whether their loss was finite or not).  The dropout mask of a step
 * derives from (opts.seed, this count), so resumable training state saves
 * it and sets it back (with get/set_state and get/set_optim_state) to
 * continue bitwise where it stopped.  steps < 0 is clamped to 0. */
int64_t nn_engine_train_steps(const nn_engine *e);
void nn_engine_set_train_steps(nn_engine *e, int64_t steps);

#endif /* NN_ENGINE_H */
