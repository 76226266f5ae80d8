/*
 * cuda_engine.c -- backend "cuda": the engine on one NVIDIA GPU.
 *
 * Built into its own shared library, liblumen_cuda.so (this directory plus
 * lm_util.c), which nn_engine.c dlopens when a cuda engine is asked for:
 * the runner, the plugins and the tests do not load CUDA, cuDNN and cuBLAS
 * (~0.3 s and ~200 MB per process) unless they use the GPU, and a machine
 * without those libraries still runs everything else.
 *
 *   convolutions       cuDNN (cuda_conv.c: forward, backward-data,
 *                      backward-filter; algorithms chosen once per layer
 *                      and batch size, plans cached, one shared workspace)
 *   classifier (fc)    cuBLAS sgemm
 *   everything else    own kernels (cuda_kernels.cu): batch norm (train /
 *                      eval, running stats as PyTorch), ReLU, max pool, GAP,
 *                      residual add, dropout with the common layer's mask,
 *                      BCE-with-logits loss, gradient norm, SGD/Adam/AdamW
 *
 * State: the device copy is the master.  params, grads, m1, m2 (one device
 * allocation, canonical offsets) and the BN buffers live on the GPU; the
 * common layer's host arrays are mirrors that `pull` refreshes on demand
 * (checkpoints, the trainer's BN snapshot, tests) and `push` uploads after
 * set_state.  host_stale records which mirrors are out of date.  Counters
 * (num_batches_tracked) stay on the host: nothing on the GPU reads them.
 *
 * Layout: NCHW activations and OIHW weights, the canonical layout, so that
 * weights, gradients and optimizer moments need no reorders and every
 * kernel's indexing matches the reference.  (cuDNN runs NCHW float/TF32
 * convolutions through internal transposes; channels-last activations are
 * the known next step for speed -- see kernels/cuda/README.md.)
 *
 * Precision: "tf32" (default): float storage, TF32 tensor cores in cuDNN
 * convolutions (CUDNN_DEFAULT_MATH) and cuBLAS (CUBLAS_TF32_TENSOR_OP_MATH);
 * "fp32": neither (CUDNN_FMA_MATH, CUBLAS_DEFAULT_MATH); "bf16": every
 * convolution on bf16 copies of its inputs and weights with fp32
 * accumulation (cuDNN compute type float), results widened back to float;
 * master weights, BN, loss and optimizer stay fp32.
 *
 * No global state: device, streams, handles, plans, workspace and buffers
 * are in the engine; every entry point first makes the engine's device
 * current (cudaSetDevice is per host thread), so engines on different GPUs
 * can be used from one thread.  Every CUDA, cuDNN and cuBLAS status is
 * checked and becomes an lm_err naming the call; a failed device
 * allocation is LUMEN_ENOMEM with the sizes involved.
 *
 * Data path: the input batch is copied into a pinned host buffer and
 * uploaded on a separate copy stream; the compute stream waits on its
 * event.  train_step returns the loss, so it ends with one synchronization
 * (the loss download); nothing else synchronizes per step.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "cuda_conv.h"
#include "cuda_kernels.h"
#include "nn_engine_impl.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define MAX_PLANS 4
#define WS_LIMIT ((size_t)1 << 30)
#ifndef NN_CUDA_MIN_CC
#define NN_CUDA_MIN_CC 90 /* 10 major + minor of the oldest GPU the build runs on */
#endif /* largest workspace one algorithm may take */

typedef struct cu_plan {
    int n;               /* batch size; 0 = free slot */
    nn_cuconv **conv;    /* per node (NULL for non-conv nodes) */
} cu_plan;

typedef struct cu_state {
    int dev;
    char gpu_name[256];
    size_t gpu_mem;
    cudaStream_t st, copy;
    cudaEvent_t uploaded;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    int tf32, bf16, det;
    size_t allocated;            /* device bytes this engine holds */
    /* canonical state on the device */
    float *params, *grads, *m1, *m2, *buffers;
    /* activations, full batch, per node */
    float **out, **dout, **mean, **invstd;
    int32_t **argmax;
    float *x, *y, *pw, *mask;    /* input, targets, pos_weight, dropout mask */
    double *scratch;             /* partial sums of the reductions */
    size_t scratch_n;
    double *scalar;              /* [0] loss, [1] sum of squares */
    void *ws;                    /* cuDNN workspace */
    size_t ws_size;
    /* folded inference: BN-folded weights (canonical offsets) and biases */
    float *fold_w, *fold_b;
    size_t *fold_b_off;          /* per conv node: offset into fold_b */
    uint64_t fold_pver, fold_bver;
    int have_fold;
    /* bf16: weight copies (canonical offsets) and conv in/out scratch */
    void *wb, *wb_fold, *xb, *yb, *dwb;
    uint64_t wb_ver;
    int have_wb, have_wb_fold;
    /* pinned host buffers */
    float *h_x;
    double *h_scalar;
    /* graph helpers */
    int *ncons, *bn_of;          /* consumers per node; conv -> its BN */
    char *seen;
    unsigned host_stale;         /* NN_SYNC_* bits whose host mirror is old */
    cu_plan plans[MAX_PLANS];
    int next_evict;
} cu_state;

/* ------------------------------------------------------------ errors -- */
static int cuda_fail(lm_err *err, cudaError_t st, const char *call, int line) {
    int code = st == cudaErrorMemoryAllocation ? LUMEN_ENOMEM : LUMEN_ERR;
    return lm_fail(err, code, "CUDA: %s: %s (%s:%d)", call, cudaGetErrorString(st), __FILE__, line);
}
#define CU(call)                                                                 \
    do {                                                                         \
        cudaError_t st_ = (call);                                                \
        if (st_ != cudaSuccess) return cuda_fail(err, st_, #call, __LINE__);     \
    } while (0)
/* own kernels: the launcher's status */
#define KL(call)                                                                              \
    do {                                                                                      \
        int st_ = (call);                                                                     \
        if (st_) return cuda_fail(err, (cudaError_t)st_, "kernel " #call, __LINE__);          \
    } while (0)
#define BL(call)                                                                              \
    do {                                                                                      \
        cublasStatus_t st_ = (call);                                                          \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                     \
            return lm_fail(err, st_ == CUBLAS_STATUS_ALLOC_FAILED ? LUMEN_ENOMEM : LUMEN_ERR, \
                           "cuBLAS: %s: %s (%s:%d)", #call, cublasGetStatusString(st_),       \
                           __FILE__, __LINE__);                                               \
    } while (0)
#define DNN(call)                                                                                \
    do {                                                                                         \
        cudnnStatus_t st_ = (call);                                                              \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                         \
            return lm_fail(err, st_ == CUDNN_STATUS_ALLOC_FAILED ? LUMEN_ENOMEM : LUMEN_ERR,      \
                           "cuDNN: %s: %s (%s:%d)", #call, cudnnGetErrorString(st_), __FILE__,   \
                           __LINE__);                                                            \
    } while (0)

static const double MiB = 1024.0 * 1024.0;

/* cudaMalloc with the out-of-memory error the issue asks for: what, how
 * much, what this engine already holds, what the GPU has free. */
static int dalloc(nn_engine *e, void **p, size_t bytes, const char *what, lm_err *err) {
    cu_state *s = e->impl;
    *p = NULL;
    if (bytes == 0) bytes = 16;
    cudaError_t st = cudaMalloc(p, bytes);
    if (st == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* clear the sticky-free error */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        *p = NULL;
        return lm_fail(err, LUMEN_ENOMEM,
                       "cuda: out of GPU memory allocating %s: %.1f MiB requested, %.1f MiB already "
                       "held by this engine (batch %d), %.1f of %.1f MiB free on GPU %d (%s); lower "
                       "the batch size",
                       what, bytes / MiB, s->allocated / MiB, e->opts.batch, fr / MiB, tot / MiB,
                       s->dev, s->gpu_name);
    }
    if (st != cudaSuccess) return cuda_fail(err, st, "cudaMalloc", __LINE__);
    s->allocated += bytes;
    return LUMEN_OK;
}

static size_t node_floats(const nn_node *n) { return (size_t)n->c * n->h * n->w; }
static size_t in_floats(const nn_node *n) { return (size_t)n->ic * n->ih * n->iw; }

/* ------------------------------------------------------------ plans -- */
static void plan_free(cu_plan *p, int G) {
    if (p->conv)
        for (int i = 0; i < G; i++) nn_cuconv_free(p->conv[i]);
    free(p->conv);
    memset(p, 0, sizeof *p);
}

static int ensure_ws(nn_engine *e, size_t need, lm_err *err) {
    cu_state *s = e->impl;
    if (need <= s->ws_size && s->ws) return LUMEN_OK;
    if (s->ws) {
        CU(cudaStreamSynchronize(s->st));
        CU(cudaFree(s->ws));
        s->allocated -= s->ws_size;
        s->ws = NULL;
        s->ws_size = 0;
    }
    int rc = dalloc(e, &s->ws, need, "the cuDNN workspace", err);
    if (rc) return rc;
    s->ws_size = need ? need : 16;
    return LUMEN_OK;
}

static int make_plan(nn_engine *e, cu_plan *p, int n, lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    p->conv = calloc((size_t)g->n, sizeof *p->conv);
    if (!p->conv) return lm_fail(err, LUMEN_ENOMEM, "cuda: out of host memory");
    p->n = n;
    size_t need_max = 0;
    for (int i = 0; i < g->n; i++) {
        const nn_node *nd = &g->nodes[i];
        if (nd->op != NN_OP_CONV) continue;
        nn_cuconv_shape sh = {n, nd->ic, nd->ih, nd->iw, nd->c, nd->h, nd->w, nd->k, nd->stride, nd->pad};
        nn_cuconv_opts o = {.dtype = s->bf16 ? NN_CUCONV_BF16 : NN_CUCONV_F32, .tf32 = s->tf32,
                            .deterministic = s->det, .bwd_data = nd->in[0] != NN_INPUT,
                            .bwd_filter = 1, .ws_limit = WS_LIMIT};
        size_t need = 0;
        int rc = nn_cuconv_plan(s->dnn, &sh, &o, &p->conv[i], &need, err);
        if (rc) {
            if (err) { /* name the layer */
                size_t l = strlen(err->msg);
                snprintf(err->msg + l, sizeof err->msg - l, " (layer %s)", nd->name);
            }
            return rc;
        }
        if (need > need_max) need_max = need;
    }
    return ensure_ws(e, need_max, err);
}

static cu_plan *get_plan(nn_engine *e, int n, lm_err *err) {
    cu_state *s = e->impl;
    for (int k = 0; k < MAX_PLANS; k++)
        if (s->plans[k].n == n) return &s->plans[k];
    int slot = -1;
    for (int k = 0; k < MAX_PLANS && slot < 0; k++)
        if (s->plans[k].n == 0) slot = k;
    if (slot < 0) { /* plan 0 (the full batch) stays */
        slot = 1 + s->next_evict;
        s->next_evict = (s->next_evict + 1) % (MAX_PLANS - 1);
        plan_free(&s->plans[slot], e->graph.n);
    }
    if (make_plan(e, &s->plans[slot], n, err)) {
        plan_free(&s->plans[slot], e->graph.n);
        return NULL;
    }
    return &s->plans[slot];
}

/* ------------------------------------------------------------ create -- */
static void cu_destroy(nn_engine *e) {
    cu_state *s = e->impl;
    if (!s) return;
    cudaSetDevice(s->dev);
    if (s->st) cudaStreamSynchronize(s->st);
    for (int k = 0; k < MAX_PLANS; k++) plan_free(&s->plans[k], e->graph.n);
    int G = e->graph.n;
    float **lists[] = {s->out, s->dout, s->mean, s->invstd};
    for (size_t l = 0; l < sizeof lists / sizeof *lists; l++)
        if (lists[l])
            for (int i = 0; i < G; i++) cudaFree(lists[l][i]);
    if (s->argmax)
        for (int i = 0; i < G; i++) cudaFree(s->argmax[i]);
    void *dev[] = {s->params, s->buffers, s->x, s->y, s->pw, s->mask, s->scratch, s->scalar,
                   s->ws, s->fold_w, s->fold_b, s->wb, s->wb_fold, s->xb, s->yb, s->dwb};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) cudaFree(dev[i]);
    if (s->h_x) cudaFreeHost(s->h_x);
    if (s->h_scalar) cudaFreeHost(s->h_scalar);
    if (s->blas) cublasDestroy(s->blas);
    if (s->dnn) cudnnDestroy(s->dnn);
    if (s->uploaded) cudaEventDestroy(s->uploaded);
    if (s->copy) cudaStreamDestroy(s->copy);
    if (s->st) cudaStreamDestroy(s->st);
    free(s->out);
    free(s->dout);
    free(s->mean);
    free(s->invstd);
    free(s->argmax);
    free(s->fold_b_off);
    free(s->ncons);
    free(s->bn_of);
    free(s->seen);
    free(s);
    e->impl = NULL;
}

/* "no usable GPU: <reason>" -- LUMEN_ENOTFOUND, so that auto falls back */
static int probe(nn_engine *e, cu_state *s, lm_err *err) {
    int count = 0;
    cudaError_t st = cudaGetDeviceCount(&count);
    if (st != cudaSuccess) {
        (void)cudaGetLastError();
        return lm_fail(err, LUMEN_ENOTFOUND, "cuda: no usable GPU: cudaGetDeviceCount: %s (%s)",
                       cudaGetErrorString(st), cudaGetErrorName(st));
    }
    if (count == 0) return lm_fail(err, LUMEN_ENOTFOUND, "cuda: no usable GPU: no CUDA device");
    if (e->opts.gpu >= count)
        return lm_fail(err, LUMEN_ENOTFOUND,
                       "cuda: no usable GPU: engine.gpu = %d but this machine has %d CUDA device(s)",
                       e->opts.gpu, count);
    s->dev = e->opts.gpu;
    struct cudaDeviceProp pr;
    st = cudaGetDeviceProperties(&pr, s->dev);
    if (st != cudaSuccess)
        return lm_fail(err, LUMEN_ENOTFOUND, "cuda: no usable GPU: cudaGetDeviceProperties(%d): %s",
                       s->dev, cudaGetErrorString(st));
    if ((st = cudaSetDevice(s->dev)) != cudaSuccess)
        return lm_fail(err, LUMEN_ENOTFOUND, "cuda: no usable GPU: cudaSetDevice(%d): %s", s->dev,
                       cudaGetErrorString(st));
    snprintf(s->gpu_name, sizeof s->gpu_name, "%s", pr.name);
    s->gpu_mem = pr.totalGlobalMem;
    /* the device code is sm_90 SASS + compute_90 PTX (Makefile CUDA_ARCH):
     * older GPUs cannot run it */
    if (pr.major * 10 + pr.minor < NN_CUDA_MIN_CC)
        return lm_fail(err, LUMEN_ENOTFOUND,
                       "cuda: no usable GPU: GPU %d (%s) has compute capability %d.%d; this build "
                       "targets %d.%d and newer (rebuild with CUDA_ARCH for it)",
                       s->dev, s->gpu_name, pr.major, pr.minor, NN_CUDA_MIN_CC / 10,
                       NN_CUDA_MIN_CC % 10);
    return LUMEN_OK;
}

static int cu_create(nn_engine *e, lm_err *err) {
    cu_state *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(err, LUMEN_ENOMEM, "cuda: out of host memory");
    e->impl = s;
    int rc = probe(e, s, err);
    if (rc) return rc;
    const char *prec = e->opts.precision ? e->opts.precision : "tf32";
    s->tf32 = strcmp(prec, "fp32") != 0;
    s->bf16 = strcmp(prec, "bf16") == 0;
    s->det = e->opts.deterministic != 0;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    int G = g->n, B = e->opts.batch, K = g->nodes[G - 1].c, fc_in = g->nodes[G - 1].ic;
    CU(cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking));
    CU(cudaStreamCreateWithFlags(&s->copy, cudaStreamNonBlocking));
    CU(cudaEventCreateWithFlags(&s->uploaded, cudaEventDisableTiming));
    DNN(cudnnCreate(&s->dnn));
    DNN(cudnnSetStream(s->dnn, s->st));
    BL(cublasCreate(&s->blas));
    BL(cublasSetStream(s->blas, s->st));
    BL(cublasSetMathMode(s->blas, s->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    if (s->det) BL(cublasSetAtomicsMode(s->blas, CUBLAS_ATOMICS_NOT_ALLOWED));

    s->out = calloc((size_t)G, sizeof *s->out);
    s->dout = calloc((size_t)G, sizeof *s->dout);
    s->mean = calloc((size_t)G, sizeof *s->mean);
    s->invstd = calloc((size_t)G, sizeof *s->invstd);
    s->argmax = calloc((size_t)G, sizeof *s->argmax);
    s->fold_b_off = calloc((size_t)G, sizeof *s->fold_b_off);
    s->ncons = calloc((size_t)G, sizeof *s->ncons);
    s->bn_of = calloc((size_t)G, sizeof *s->bn_of);
    s->seen = calloc((size_t)G, 1);
    if (!s->out || !s->dout || !s->mean || !s->invstd || !s->argmax || !s->fold_b_off ||
        !s->ncons || !s->bn_of || !s->seen)
        return lm_fail(err, LUMEN_ENOMEM, "cuda: out of host memory");
    size_t np = m->nparams, fold_b = 0, big_in = 0, big_out = 0, big_w = 0, red = 0;
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        s->bn_of[i] = -1;
        for (int k = 0; k < 2; k++)
            if (n->in[k] >= 0) s->ncons[n->in[k]]++;
    }
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        if (n->in[0] >= 0 && n->op == NN_OP_BN && g->nodes[n->in[0]].op == NN_OP_CONV)
            s->bn_of[n->in[0]] = i;
    }
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        if (n->op == NN_OP_CONV) {
            if (s->bn_of[i] < 0 || s->ncons[i] != 1)
                return lm_fail(err, LUMEN_EINVAL,
                               "cuda: conv %s is not followed by exactly one batch norm", n->name);
            s->fold_b_off[i] = fold_b;
            fold_b += (size_t)n->c;
            size_t wi = (size_t)B * in_floats(n), wo = (size_t)B * node_floats(n);
            if (wi > big_in) big_in = wi;
            if (wo > big_out) big_out = wo;
            if (m->tensors[n->weight].numel > big_w) big_w = m->tensors[n->weight].numel;
        }
        if (n->op == NN_OP_BN) {
            size_t r = nn_cu_partials((size_t)B * n->h * n->w, n->c) * 2;
            if (r > red) red = r;
        }
    }
    size_t r2 = nn_cu_partials(np, 1), r3 = nn_cu_partials((size_t)B * K, 1);
    if (r2 > red) red = r2;
    if (r3 > red) red = r3;
    s->scratch_n = red;

    char what[128];
    if ((rc = dalloc(e, (void **)&s->params, sizeof(float) * np * 4, "parameters, gradients and "
                                                                       "optimizer moments", err)))
        return rc;
    s->grads = s->params + np;
    s->m1 = s->params + 2 * np;
    s->m2 = s->params + 3 * np;
    if ((rc = dalloc(e, (void **)&s->buffers, sizeof(float) * (m->nbuffers + 1), "BN buffers", err)) ||
        (rc = dalloc(e, (void **)&s->x, sizeof(float) * (size_t)B * g->in_c * g->in_h * g->in_w,
                     "the input batch", err)) ||
        (rc = dalloc(e, (void **)&s->y, sizeof(float) * (size_t)B * K, "the targets", err)) ||
        (rc = dalloc(e, (void **)&s->pw, sizeof(float) * (size_t)K, "pos_weight", err)) ||
        (rc = dalloc(e, (void **)&s->mask, sizeof(float) * (size_t)B * fc_in, "the dropout mask",
                     err)) ||
        (rc = dalloc(e, (void **)&s->scratch, sizeof(double) * red, "reduction scratch", err)) ||
        (rc = dalloc(e, (void **)&s->scalar, sizeof(double) * 2, "scalars", err)) ||
        (rc = dalloc(e, (void **)&s->fold_w, sizeof(float) * np, "folded weights", err)) ||
        (rc = dalloc(e, (void **)&s->fold_b, sizeof(float) * (fold_b + 1), "folded biases", err)))
        return rc;
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        size_t bytes = sizeof(float) * (size_t)B * node_floats(n);
        snprintf(what, sizeof what, "the activations of %s", n->name);
        if ((rc = dalloc(e, (void **)&s->out[i], bytes, what, err))) return rc;
        snprintf(what, sizeof what, "the gradients of %s", n->name);
        if ((rc = dalloc(e, (void **)&s->dout[i], bytes, what, err))) return rc;
        if (n->op == NN_OP_BN &&
            ((rc = dalloc(e, (void **)&s->mean[i], sizeof(float) * n->c, "BN batch stats", err)) ||
             (rc = dalloc(e, (void **)&s->invstd[i], sizeof(float) * n->c, "BN batch stats", err))))
            return rc;
        if (n->op == NN_OP_MAXPOOL &&
            (rc = dalloc(e, (void **)&s->argmax[i], sizeof(int32_t) * (size_t)B * node_floats(n),
                         "max-pool indices", err)))
            return rc;
    }
    if (s->bf16 &&
        ((rc = dalloc(e, &s->wb, 2 * np, "bf16 weights", err)) ||
         (rc = dalloc(e, &s->wb_fold, 2 * np, "bf16 folded weights", err)) ||
         (rc = dalloc(e, &s->xb, 2 * (big_in > big_out ? big_in : big_out), "bf16 conv input", err)) ||
         (rc = dalloc(e, &s->yb, 2 * (big_in > big_out ? big_in : big_out), "bf16 conv output", err)) ||
         (rc = dalloc(e, &s->dwb, 2 * big_w, "bf16 weight gradient", err))))
        return rc;
    CU(cudaMallocHost((void **)&s->h_x, sizeof(float) * (size_t)B * g->in_c * g->in_h * g->in_w));
    CU(cudaMallocHost((void **)&s->h_scalar, sizeof(double) * 2));
    /* the initial state the common layer made */
    CU(cudaMemcpy(s->params, e->params, sizeof(float) * np * 4, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(s->buffers, e->buffers, sizeof(float) * m->nbuffers, cudaMemcpyHostToDevice));
    /* plan the full batch now: no algorithm, or no memory, fails here */
    if (!get_plan(e, B, err)) return err && err->code ? err->code : LUMEN_ERR;
    for (int i = 0; i < G; i++)
        if (s->plans[0].conv[i]) e->times[i].impl = nn_cuconv_impl(s->plans[0].conv[i]);
    snprintf(e->note, sizeof e->note,
             "cuda: GPU %d %.120s, %.1f GiB, precision %s%s; %.0f MiB on the GPU for batch %d", s->dev,
             s->gpu_name, s->gpu_mem / (1024.0 * MiB), prec, s->det ? ", deterministic" : "",
             s->allocated / MiB, B);
    return LUMEN_OK;
}

/* ------------------------------------------------------------ layers -- */
/* Makes sure the bf16 copies of the params (and the folded weights) are
 * current. */
static int refresh_wb(nn_engine *e, int fold, lm_err *err) {
    cu_state *s = e->impl;
    if (!s->bf16) return LUMEN_OK;
    if (fold) {
        if (!s->have_wb_fold) {
            KL(nn_cu_to_bf16(s->st, s->wb_fold, s->fold_w, e->model->nparams));
            s->have_wb_fold = 1;
        }
        return LUMEN_OK;
    }
    if (s->have_wb && s->wb_ver == e->params_version) return LUMEN_OK;
    KL(nn_cu_to_bf16(s->st, s->wb, s->params, e->model->nparams));
    s->wb_ver = e->params_version;
    s->have_wb = 1;
    return LUMEN_OK;
}

/* y = conv(x, w) (+ beta y): float, or through the bf16 copies */
static int conv_fwd(nn_engine *e, const nn_cuconv *c, const nn_node *nd, int N, const float *x,
                    const float *w, const void *wb, float *y, lm_err *err) {
    cu_state *s = e->impl;
    if (!s->bf16) return nn_cuconv_fwd(s->dnn, c, x, w, y, 0.0f, s->ws, s->ws_size, err);
    size_t ni = (size_t)N * in_floats(nd), no = (size_t)N * node_floats(nd);
    KL(nn_cu_to_bf16(s->st, s->xb, x, ni));
    int rc = nn_cuconv_fwd(s->dnn, c, s->xb, wb, s->yb, 0.0f, s->ws, s->ws_size, err);
    if (rc) return rc;
    KL(nn_cu_from_bf16(s->st, y, s->yb, no, 0));
    return LUMEN_OK;
}

static int conv_bwd(nn_engine *e, const nn_cuconv *c, const nn_node *nd, int N, const float *x,
                    const float *dy, float *dw, float *dx, int acc, lm_err *err) {
    cu_state *s = e->impl;
    const nn_tensor *t = &e->model->tensors[nd->weight];
    const float *w = s->params + t->offset;
    int rc;
    if (!s->bf16) {
        if ((rc = nn_cuconv_bwd_filter(s->dnn, c, x, dy, dw, s->ws, s->ws_size, err))) return rc;
        if (dx && (rc = nn_cuconv_bwd_data(s->dnn, c, dy, w, dx, acc ? 1.0f : 0.0f, s->ws,
                                           s->ws_size, err)))
            return rc;
        return LUMEN_OK;
    }
    size_t ni = (size_t)N * in_floats(nd), no = (size_t)N * node_floats(nd);
    const void *wb = (const char *)s->wb + 2 * t->offset;
    KL(nn_cu_to_bf16(s->st, s->xb, x, ni));
    KL(nn_cu_to_bf16(s->st, s->yb, dy, no));
    if ((rc = nn_cuconv_bwd_filter(s->dnn, c, s->xb, s->yb, s->dwb, s->ws, s->ws_size, err)))
        return rc;
    KL(nn_cu_from_bf16(s->st, dw, s->dwb, t->numel, 0));
    if (dx) {
        /* dx in bf16 lands in xb (free again), then widened (accumulated) */
        if ((rc = nn_cuconv_bwd_data(s->dnn, c, s->yb, wb, s->xb, 0.0f, s->ws, s->ws_size, err)))
            return rc;
        KL(nn_cu_from_bf16(s->st, dx, s->xb, ni, acc));
    }
    return LUMEN_OK;
}

/* fc: y[N,K] = x[N,C] W[K,C]^T + b (row-major; cuBLAS is column-major:
 * y^T = W x^T with W^T stored as a C x K column-major matrix) */
static int fc_fwd(nn_engine *e, const nn_node *nd, int N, const float *x, float *y, lm_err *err) {
    cu_state *s = e->impl;
    const nn_model *m = e->model;
    const float one = 1.0f, zero = 0.0f;
    int C = nd->ic, K = nd->c;
    BL(cublasSgemm(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, K, N, C, &one,
                   s->params + m->tensors[nd->weight].offset, C, x, C, &zero, y, K));
    KL(nn_cu_bias_add(s->st, y, s->params + m->tensors[nd->bias].offset, N, K));
    return LUMEN_OK;
}

static int fc_bwd(nn_engine *e, const nn_node *nd, int N, const float *x, const float *dy,
                  float *dx, int acc, lm_err *err) {
    cu_state *s = e->impl;
    const nn_model *m = e->model;
    const float one = 1.0f, zero = 0.0f, beta = acc ? 1.0f : 0.0f;
    int C = nd->ic, K = nd->c;
    /* dW[K,C] = dy^T x: column-major C x K = x^T (C x N) * dy (N x K) */
    BL(cublasSgemm(s->blas, CUBLAS_OP_N, CUBLAS_OP_T, C, K, N, &one, x, C, dy, K, &zero,
                   s->grads + m->tensors[nd->weight].offset, C));
    KL(nn_cu_bias_grad(s->st, s->grads + m->tensors[nd->bias].offset, dy, N, K));
    /* dx[N,C] = dy W: column-major C x N = W^T (C x K) * dy^T (K x N) */
    if (dx)
        BL(cublasSgemm(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, K, &one,
                       s->params + m->tensors[nd->weight].offset, C, dy, K, &beta, dx, C));
    return LUMEN_OK;
}

static double now_ms(void) { return lm_now() * 1e3; }

/* profiling: the node's time needs the stream drained before and after */
static int tick(nn_engine *e, double *t, lm_err *err) {
    cu_state *s = e->impl;
    if (!e->profiling) return LUMEN_OK;
    CU(cudaStreamSynchronize(s->st));
    *t = now_ms();
    return LUMEN_OK;
}

/* mode 0: eval (unfolded), 1: train, 2: folded inference */
static int forward(nn_engine *e, cu_plan *pl, int mode, int use_mask, lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    int N = pl->n, rc;
    for (int i = 0; i < g->n; i++) {
        const nn_node *n = &g->nodes[i];
        const float *x = n->in[0] == NN_INPUT ? s->x : s->out[n->in[0]];
        size_t cnt = (size_t)N * node_floats(n);
        double t0 = 0, t1 = 0;
        if ((rc = tick(e, &t0, err))) return rc;
        switch (n->op) {
        case NN_OP_CONV: {
            const nn_tensor *t = &m->tensors[n->weight];
            if (mode == 2) { /* into the BN's output, + folded bias (+ ReLU) */
                int bn = s->bn_of[i];
                if ((rc = conv_fwd(e, pl->conv[i], n, N, x, s->fold_w + t->offset,
                                   s->bf16 ? (const char *)s->wb_fold + 2 * t->offset : NULL,
                                   s->out[bn], err)))
                    return rc;
                KL(nn_cu_bias_act(s->st, s->out[bn], s->fold_b + s->fold_b_off[i], NULL, N, n->c,
                                  n->h * n->w, g->nodes[bn].relu));
            } else if ((rc = conv_fwd(e, pl->conv[i], n, N, x, s->params + t->offset,
                                      s->bf16 ? (const char *)s->wb + 2 * t->offset : NULL,
                                      s->out[i], err))) {
                return rc;
            }
            break;
        }
        case NN_OP_BN: {
            if (mode == 2) break; /* folded into the conv */
            const float *gm = s->params + m->tensors[n->weight].offset;
            const float *bt = s->params + m->tensors[n->bias].offset;
            float *rm = s->buffers + m->tensors[n->mean].offset;
            float *rv = s->buffers + m->tensors[n->var].offset;
            if (mode == 1)
                KL(nn_cu_bn_train(s->st, s->out[i], s->mean[i], s->invstd[i], rm, rv, x, gm, bt, N,
                                  n->c, n->h * n->w, BN_EPS, BN_MOMENTUM, n->relu, s->scratch));
            else
                KL(nn_cu_bn_eval(s->st, s->out[i], x, gm, bt, rm, rv, N, n->c, n->h * n->w, BN_EPS,
                                 n->relu));
            break;
        }
        case NN_OP_MAXPOOL:
            KL(nn_cu_maxpool_fwd(s->st, s->out[i], s->argmax[i], x, N, n->c, n->ih, n->iw, n->h,
                                 n->w, n->k, n->stride, n->pad));
            break;
        case NN_OP_ADD:
            KL(nn_cu_add(s->st, s->out[i], x, s->out[n->in[1]], cnt, n->relu));
            break;
        case NN_OP_GAP:
            KL(nn_cu_gpool_fwd(s->st, s->out[i], x, N, n->c, n->ih * n->iw, n->pmax));
            break;
        case NN_OP_DROPOUT:
            if (mode == 1 && use_mask) KL(nn_cu_mul(s->st, s->out[i], x, s->mask, cnt));
            else CU(cudaMemcpyAsync(s->out[i], x, sizeof(float) * cnt, cudaMemcpyDeviceToDevice, s->st));
            break;
        case NN_OP_FC:
            if ((rc = fc_fwd(e, n, N, x, s->out[i], err))) return rc;
            break;
        }
        if (e->profiling) {
            if ((rc = tick(e, &t1, err))) return rc;
            if (mode == 1) e->times[i].fwd_ms = t1 - t0;
            else if (mode == 2) e->times[i].inf_ms = t1 - t0;
        }
    }
    return LUMEN_OK;
}

static int backward(nn_engine *e, cu_plan *pl, int use_mask, lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    int N = pl->n, rc;
    memset(s->seen, 0, (size_t)g->n);
    s->seen[g->n - 1] = 1; /* the loss wrote dout[last] */
    for (int i = g->n - 1; i >= 0; i--) {
        const nn_node *n = &g->nodes[i];
        if (!s->seen[i]) continue;
        double t0 = 0, t1 = 0;
        if ((rc = tick(e, &t0, err))) return rc;
        float *dy = s->dout[i];
        size_t cnt = (size_t)N * node_floats(n), icnt = (size_t)N * in_floats(n);
        int p0 = n->in[0], p1 = n->in[1];
        const float *x = p0 == NN_INPUT ? s->x : s->out[p0];
        float *dx = p0 == NN_INPUT ? NULL : s->dout[p0];
        int acc = p0 == NN_INPUT ? 0 : s->seen[p0];
        if (n->relu) KL(nn_cu_relu_mask(s->st, dy, s->out[i], cnt));
        switch (n->op) {
        case NN_OP_CONV:
            if ((rc = conv_bwd(e, pl->conv[i], n, N, x, dy, s->grads + m->tensors[n->weight].offset,
                               dx, acc, err)))
                return rc;
            break;
        case NN_OP_BN:
            KL(nn_cu_bn_backward(s->st, dx, s->grads + m->tensors[n->weight].offset,
                                 s->grads + m->tensors[n->bias].offset, dy, x, s->mean[i],
                                 s->invstd[i], s->params + m->tensors[n->weight].offset, N, n->c,
                                 n->h * n->w, acc, s->scratch));
            break;
        case NN_OP_MAXPOOL:
            if (dx)
                KL(nn_cu_maxpool_bwd(s->st, dx, dy, s->argmax[i], N, n->c, n->ih, n->iw, n->h, n->w,
                                     n->k, n->stride, n->pad, acc));
            break;
        case NN_OP_ADD:
            if (dx) KL(nn_cu_accum(s->st, dx, dy, icnt, acc));
            if (p1 >= 0) {
                KL(nn_cu_accum(s->st, s->dout[p1], dy, cnt, s->seen[p1]));
                s->seen[p1] = 1;
            }
            break;
        case NN_OP_GAP:
            if (dx) KL(nn_cu_gpool_bwd(s->st, dx, dy, x, N, n->c, n->ih * n->iw, n->pmax, acc));
            break;
        case NN_OP_DROPOUT:
            if (use_mask) KL(nn_cu_mul(s->st, dy, dy, s->mask, cnt));
            if (dx) KL(nn_cu_accum(s->st, dx, dy, cnt, acc));
            break;
        case NN_OP_FC:
            if ((rc = fc_bwd(e, n, N, x, dy, dx, acc, err))) return rc;
            break;
        }
        if (p0 != NN_INPUT) s->seen[p0] = 1;
        if (e->profiling) {
            if ((rc = tick(e, &t1, err))) return rc;
            e->times[i].bwd_ms = t1 - t0;
        }
    }
    return LUMEN_OK;
}

/* The input batch: pinned staging, upload on the copy stream, the compute
 * stream waits for it. */
static int upload_x(nn_engine *e, const float *x, int n, lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    size_t bytes = sizeof(float) * (size_t)n * g->in_c * g->in_h * g->in_w;
    /* the previous upload must be done before the staging buffer is reused */
    CU(cudaEventSynchronize(s->uploaded));
    memcpy(s->h_x, x, bytes);
    CU(cudaMemcpyAsync(s->x, s->h_x, bytes, cudaMemcpyHostToDevice, s->copy));
    CU(cudaEventRecord(s->uploaded, s->copy));
    CU(cudaStreamWaitEvent(s->st, s->uploaded, 0));
    return LUMEN_OK;
}

static int cu_train_step(nn_engine *e, const float *x, const float *y, int n,
                         const nn_loss_cfg *lc, const float *dropmask, double *loss,
                         float *logits, lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_node *fc = &g->nodes[g->n - 1];
    int K = fc->c, rc;
    CU(cudaSetDevice(s->dev));
    cu_plan *pl = get_plan(e, n, err);
    if (!pl) return err && err->code ? err->code : LUMEN_ERR;
    if ((rc = refresh_wb(e, 0, err)) || (rc = upload_x(e, x, n, err))) return rc;
    CU(cudaMemcpyAsync(s->y, y, sizeof(float) * (size_t)n * K, cudaMemcpyHostToDevice, s->st));
    if (lc->pos_weight)
        CU(cudaMemcpyAsync(s->pw, lc->pos_weight, sizeof(float) * K, cudaMemcpyHostToDevice, s->st));
    if (dropmask)
        CU(cudaMemcpyAsync(s->mask, dropmask, sizeof(float) * (size_t)n * fc->ic,
                           cudaMemcpyHostToDevice, s->st));
    if ((rc = forward(e, pl, 1, dropmask != NULL, err))) return rc;
    /* the running stats changed on the device */
    s->host_stale |= NN_SYNC_BUFFERS | NN_SYNC_GRADS;
    KL(nn_cu_bce(s->st, s->scalar, s->dout[g->n - 1], s->out[g->n - 1], s->y,
                 lc->pos_weight ? s->pw : NULL, lc->label_smoothing, lc->focal_gamma, n, K, s->scratch));
    if ((rc = backward(e, pl, dropmask != NULL, err))) return rc;
    CU(cudaMemcpyAsync(s->h_scalar, s->scalar, sizeof(double), cudaMemcpyDeviceToHost, s->st));
    if (logits)
        CU(cudaMemcpyAsync(logits, s->out[g->n - 1], sizeof(float) * (size_t)n * K,
                           cudaMemcpyDeviceToHost, s->st));
    CU(cudaStreamSynchronize(s->st));
    *loss = s->h_scalar[0];
    return LUMEN_OK;
}

/* BN folded into the conv weights and a bias, once per params/buffers
 * change (as the cpu backend: double math per element) */
static int refresh_fold(nn_engine *e, lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    if (s->have_fold && s->fold_pver == e->params_version && s->fold_bver == e->buffers_version)
        return LUMEN_OK;
    for (int i = 0; i < g->n; i++) {
        const nn_node *c = &g->nodes[i];
        if (c->op != NN_OP_CONV) continue;
        const nn_node *bn = &g->nodes[s->bn_of[i]];
        const nn_tensor *t = &m->tensors[c->weight];
        KL(nn_cu_fold_bn(s->st, s->fold_w + t->offset, s->fold_b + s->fold_b_off[i],
                         s->params + t->offset, s->params + m->tensors[bn->weight].offset,
                         s->params + m->tensors[bn->bias].offset,
                         s->buffers + m->tensors[bn->mean].offset,
                         s->buffers + m->tensors[bn->var].offset, c->c,
                         (size_t)c->ic * c->k * c->k, BN_EPS));
    }
    s->fold_pver = e->params_version;
    s->fold_bver = e->buffers_version;
    s->have_fold = 1;
    s->have_wb_fold = 0;
    return refresh_wb(e, 1, err);
}

static int cu_forward_eval(nn_engine *e, const float *x, int n, float *logits, int fold,
                           lm_err *err) {
    cu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    int rc;
    CU(cudaSetDevice(s->dev));
    cu_plan *pl = get_plan(e, n, err);
    if (!pl) return err && err->code ? err->code : LUMEN_ERR;
    if (fold) rc = refresh_fold(e, err);
    else rc = refresh_wb(e, 0, err);
    if (rc || (rc = upload_x(e, x, n, err)) || (rc = forward(e, pl, fold ? 2 : 0, 0, err)))
        return rc;
    CU(cudaMemcpyAsync(logits, s->out[g->n - 1], sizeof(float) * (size_t)n * g->nodes[g->n - 1].c,
                       cudaMemcpyDeviceToHost, s->st));
    CU(cudaStreamSynchronize(s->st));
    return LUMEN_OK;
}

/* ------------------------------------------------------- state hooks -- */
static int cu_pull(nn_engine *e, unsigned what, lm_err *err) {
    cu_state *s = e->impl;
    unsigned need = what & s->host_stale;
    if (!need) return LUMEN_OK;
    size_t np = e->model->nparams;
    CU(cudaSetDevice(s->dev));
    CU(cudaStreamSynchronize(s->st));
    if (need & NN_SYNC_PARAMS)
        CU(cudaMemcpy(e->params, s->params, sizeof(float) * np, cudaMemcpyDeviceToHost));
    if (need & NN_SYNC_GRADS)
        CU(cudaMemcpy(e->grads, s->grads, sizeof(float) * np, cudaMemcpyDeviceToHost));
    if (need & NN_SYNC_MOMENTS)
        CU(cudaMemcpy(e->m1, s->m1, sizeof(float) * np * 2, cudaMemcpyDeviceToHost));
    if (need & NN_SYNC_BUFFERS)
        CU(cudaMemcpy(e->buffers, s->buffers, sizeof(float) * e->model->nbuffers,
                      cudaMemcpyDeviceToHost));
    s->host_stale &= ~need;
    return LUMEN_OK;
}

static int cu_push(nn_engine *e, unsigned what, lm_err *err) {
    cu_state *s = e->impl;
    size_t np = e->model->nparams;
    CU(cudaSetDevice(s->dev));
    CU(cudaStreamSynchronize(s->st));
    if (what & NN_SYNC_PARAMS)
        CU(cudaMemcpy(s->params, e->params, sizeof(float) * np, cudaMemcpyHostToDevice));
    if (what & NN_SYNC_GRADS)
        CU(cudaMemcpy(s->grads, e->grads, sizeof(float) * np, cudaMemcpyHostToDevice));
    if (what & NN_SYNC_MOMENTS)
        CU(cudaMemcpy(s->m1, e->m1, sizeof(float) * np * 2, cudaMemcpyHostToDevice));
    if (what & NN_SYNC_BUFFERS)
        CU(cudaMemcpy(s->buffers, e->buffers, sizeof(float) * e->model->nbuffers,
                      cudaMemcpyHostToDevice));
    s->host_stale &= ~what;
    return LUMEN_OK;
}

static int cu_grad_sumsq(nn_engine *e, double *sumsq, lm_err *err) {
    cu_state *s = e->impl;
    CU(cudaSetDevice(s->dev));
    KL(nn_cu_sumsq(s->st, s->scalar + 1, s->grads, e->model->nparams, s->scratch));
    CU(cudaMemcpyAsync(s->h_scalar + 1, s->scalar + 1, sizeof(double), cudaMemcpyDeviceToHost,
                       s->st));
    CU(cudaStreamSynchronize(s->st));
    *sumsq = s->h_scalar[1];
    return LUMEN_OK;
}

/* nn_optim_update on the device; the scalars derived exactly as there */
static int cu_optim_step(nn_engine *e, const nn_optim_cfg *c, float grad_scale, lm_err *err) {
    cu_state *s = e->impl;
    size_t n = e->model->nparams;
    int64_t t = e->opt_step;
    CU(cudaSetDevice(s->dev));
    if (c->kind == NN_OPT_SGD) {
        KL(nn_cu_sgd(s->st, s->params, s->grads, s->m1, n, c->lr, c->weight_decay, c->momentum,
                     1.0f - c->dampening, t <= 1, c->nesterov, grad_scale));
    } else {
        const float b1 = c->beta1, b2 = c->beta2;
        const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
        const float step = (float)(c->lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2));
        const float l2 = c->kind == NN_OPT_ADAM ? c->weight_decay : 0.0f;
        const float keep = c->kind == NN_OPT_ADAMW ? 1.0f - c->lr * c->weight_decay : 1.0f;
        KL(nn_cu_adam(s->st, s->params, s->grads, s->m1, s->m2, n, b1, b2, c->eps, step, rbc2, l2,
                      keep, grad_scale));
    }
    s->host_stale |= NN_SYNC_PARAMS | NN_SYNC_MOMENTS;
    return LUMEN_OK;
}

static const nn_backend_ops cuda_ops = {
    .name = "cuda",
    .create = cu_create,
    .destroy = cu_destroy,
    .train_step = cu_train_step,
    .forward_eval = cu_forward_eval,
    .pull = cu_pull,
    .push = cu_push,
    .grad_sumsq = cu_grad_sumsq,
    .optim_step = cu_optim_step,
};

/* The entry point nn_engine.c looks up after dlopen'ing this library
 * (liblumen_cuda.so): the ops, or NULL when the caller's struct nn_engine
 * is not the one this library was built against. */
__attribute__((visibility("default"))) const nn_backend_ops *lumen_cuda_backend(size_t engine_size,
                                                                             size_t ops_size) {
    if (engine_size != sizeof(nn_engine) || ops_size != sizeof(nn_backend_ops)) return NULL;
    return &cuda_ops;
}
