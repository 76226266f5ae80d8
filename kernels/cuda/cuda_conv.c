/*
 * cuda_conv.c -- the cuda backend's convolutions on cuDNN: see cuda_conv.h.
 *
 * WHY THE LEGACY API, AND HOW ITS DEPRECATION IS CONTAINED.  cuDNN 9 marks
 * the descriptor-based convolution API (cudnnConvolutionForward,
 * cudnnGetConvolution*Algorithm_v7, cudnnConvolutionDescriptor_t, ...) as
 * deprecated in favour of the graph (backend) API.  The legacy calls are
 * still shipped, supported on Hopper and give the same kernels for plain
 * convolutions; they are a few hundred lines shorter than building operation
 * graphs, engine configs and execution plans through
 * cudnnBackendSetAttribute, which mattered for writing a complete backend
 * without a GPU to try it on.  The deprecation warnings are opt-in in
 * cuDNN 9's headers (they appear only when CUDNN_WARN_DEPRECATED is
 * defined), so this file compiles warning-free as it is; it must never
 * define CUDNN_WARN_DEPRECATED, and it is the ONLY file of lumen that calls
 * cuDNN's convolution API -- the rest of the backend sees the opaque
 * nn_cuconv of cuda_conv.h.  Moving to the graph API (and its fusions:
 * conv + bias + ReLU + add for inference) replaces this file alone.
 *
 * Plans: descriptors and algorithms are made once per (layer, batch size)
 * by the engine and cached there; nothing here is re-planned per step.
 * Algorithm choice: cuDNN's heuristics (the _v7 queries, ranked by expected
 * speed), first entry that succeeded, fits the workspace limit, matches the
 * requested math (no TF32 unless allowed) and, in deterministic mode, is
 * deterministic.  Not timed (cudnn.benchmark-style search is a TODO).
 */
#include "cuda_conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALGOS 16

struct nn_cuconv {
    nn_cuconv_shape s;
    nn_cuconv_opts o;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t cf, cd, cw; /* one per direction: math types may differ */
    cudnnConvolutionFwdAlgo_t af;
    cudnnConvolutionBwdDataAlgo_t ad;
    cudnnConvolutionBwdFilterAlgo_t aw;
    size_t wsf, wsd, wsw;
    char impl[96];
};

static int cudnn_fail(lm_err *err, cudnnStatus_t st, const char *call, int line) {
    int code = st == CUDNN_STATUS_ALLOC_FAILED ? LUMEN_ENOMEM : LUMEN_ERR;
    return lm_fail(err, code, "cuDNN: %s: %s (%s:%d)", call, cudnnGetErrorString(st), __FILE__,
                   line);
}

#define DNN(call)                                                                     \
    do {                                                                              \
        cudnnStatus_t st_ = (call);                                                   \
        if (st_ != CUDNN_STATUS_SUCCESS) return cudnn_fail(err, st_, #call, __LINE__); \
    } while (0)

static const char *math_name(cudnnMathType_t m) {
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor+conv";
    case CUDNN_FMA_MATH: return "fma";
    }
    return "?";
}

/* Whether a heuristic result may be used.  Pass 0 is strict; pass 1 (only
 * tried when pass 0 found nothing) drops the math-type match for plain
 * fp32: cuDNN may label a non-tensor-core algorithm with another math type
 * than the FMA_MATH asked for, and the descriptor keeps FMA_MATH anyway. */
static int usable(const nn_cuconv_opts *o, int pass, cudnnStatus_t st, size_t mem,
                  cudnnDeterminism_t det, cudnnMathType_t math) {
    if (st != CUDNN_STATUS_SUCCESS || mem > o->ws_limit) return 0;
    if (o->deterministic && det != CUDNN_DETERMINISTIC) return 0;
    if (pass == 0 && o->dtype == NN_CUCONV_F32 && !o->tf32 && math != CUDNN_FMA_MATH) return 0;
    return 1;
}

/* the math type to run a chosen algorithm with */
static cudnnMathType_t run_math(const nn_cuconv_opts *o, cudnnMathType_t chosen) {
    return o->dtype == NN_CUCONV_F32 && !o->tf32 ? CUDNN_FMA_MATH : chosen;
}

void nn_cuconv_free(nn_cuconv *c) {
    if (!c) return;
    if (c->x) cudnnDestroyTensorDescriptor(c->x);
    if (c->y) cudnnDestroyTensorDescriptor(c->y);
    if (c->w) cudnnDestroyFilterDescriptor(c->w);
    if (c->cf) cudnnDestroyConvolutionDescriptor(c->cf);
    if (c->cd) cudnnDestroyConvolutionDescriptor(c->cd);
    if (c->cw) cudnnDestroyConvolutionDescriptor(c->cw);
    free(c);
}

static int conv_desc(cudnnConvolutionDescriptor_t *d, const nn_cuconv *c, lm_err *err) {
    DNN(cudnnCreateConvolutionDescriptor(d));
    DNN(cudnnSetConvolution2dDescriptor(*d, c->s.pad, c->s.pad, c->s.stride, c->s.stride, 1, 1,
                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    cudnnMathType_t m = c->o.dtype == NN_CUCONV_BF16 ? CUDNN_TENSOR_OP_MATH
                        : c->o.tf32                  ? CUDNN_DEFAULT_MATH
                                                     : CUDNN_FMA_MATH;
    DNN(cudnnSetConvolutionMathType(*d, m));
    return LUMEN_OK;
}

static int plan(cudnnHandle_t h, nn_cuconv *c, size_t *ws_need, lm_err *err) {
    const nn_cuconv_shape *s = &c->s;
    cudnnDataType_t dt = c->o.dtype == NN_CUCONV_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    DNN(cudnnCreateTensorDescriptor(&c->x));
    DNN(cudnnCreateTensorDescriptor(&c->y));
    DNN(cudnnCreateFilterDescriptor(&c->w));
    DNN(cudnnSetTensor4dDescriptor(c->x, CUDNN_TENSOR_NCHW, dt, s->N, s->IC, s->H, s->W));
    DNN(cudnnSetTensor4dDescriptor(c->y, CUDNN_TENSOR_NCHW, dt, s->N, s->OC, s->OH, s->OW));
    DNN(cudnnSetFilter4dDescriptor(c->w, dt, CUDNN_TENSOR_NCHW, s->OC, s->IC, s->k, s->k));
    int rc;
    if ((rc = conv_desc(&c->cf, c, err)) || (rc = conv_desc(&c->cd, c, err)) ||
        (rc = conv_desc(&c->cw, c, err)))
        return rc;
    int n, on, oh, ow, oc;
    DNN(cudnnGetConvolution2dForwardOutputDim(c->cf, c->x, c->w, &n, &oc, &oh, &ow));
    if (n != s->N || oc != s->OC || oh != s->OH || ow != s->OW)
        return lm_fail(err, LUMEN_ERR, "cuDNN: output of a %dx%d/%d conv is %dx%dx%d, the graph says %dx%dx%d",
                       s->k, s->k, s->stride, oc, oh, ow, s->OC, s->OH, s->OW);
    (void)on;
    size_t need = 0;
    int len = 0;
    {
        cudnnConvolutionFwdAlgoPerf_t p[MAX_ALGOS];
        int cnt = 0, pick = -1;
        DNN(cudnnGetConvolutionForwardAlgorithm_v7(h, c->x, c->w, c->cf, c->y, MAX_ALGOS, &cnt, p));
        for (int pass = 0; pass < 2 && pick < 0; pass++)
            for (int i = 0; i < cnt && pick < 0; i++)
                if (usable(&c->o, pass, p[i].status, p[i].memory, p[i].determinism,
                           p[i].mathType))
                    pick = i;
        if (pick < 0)
            return lm_fail(err, LUMEN_ERR,
                           "cuDNN: no forward algorithm for a %dx%d/%d conv %dx%dx%d -> %d (batch %d)%s%s",
                           s->k, s->k, s->stride, s->IC, s->H, s->W, s->OC, s->N,
                           c->o.deterministic ? ", deterministic" : "",
                           c->o.dtype == NN_CUCONV_BF16 ? ", bf16" : "");
        c->af = p[pick].algo;
        c->wsf = p[pick].memory;
        DNN(cudnnSetConvolutionMathType(c->cf, run_math(&c->o, p[pick].mathType)));
        len += snprintf(c->impl + len, sizeof c->impl - (size_t)len, "fwd %d/%s", (int)c->af,
                        math_name(p[pick].mathType));
        if (c->wsf > need) need = c->wsf;
    }
    if (c->o.bwd_data) {
        cudnnConvolutionBwdDataAlgoPerf_t p[MAX_ALGOS];
        int cnt = 0, pick = -1;
        DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, c->w, c->y, c->cd, c->x, MAX_ALGOS, &cnt,
                                                        p));
        for (int pass = 0; pass < 2 && pick < 0; pass++)
            for (int i = 0; i < cnt && pick < 0; i++)
                if (usable(&c->o, pass, p[i].status, p[i].memory, p[i].determinism,
                           p[i].mathType))
                    pick = i;
        if (pick < 0)
            return lm_fail(err, LUMEN_ERR,
                           "cuDNN: no backward-data algorithm for a %dx%d/%d conv %dx%dx%d -> %d (batch %d)",
                           s->k, s->k, s->stride, s->IC, s->H, s->W, s->OC, s->N);
        c->ad = p[pick].algo;
        c->wsd = p[pick].memory;
        DNN(cudnnSetConvolutionMathType(c->cd, run_math(&c->o, p[pick].mathType)));
        if (len < (int)sizeof c->impl)
            len += snprintf(c->impl + len, sizeof c->impl - (size_t)len, " bwd %d/%s", (int)c->ad,
                            math_name(p[pick].mathType));
        if (c->wsd > need) need = c->wsd;
    }
    if (c->o.bwd_filter) {
        cudnnConvolutionBwdFilterAlgoPerf_t p[MAX_ALGOS];
        int cnt = 0, pick = -1;
        DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, c->x, c->y, c->cw, c->w, MAX_ALGOS,
                                                          &cnt, p));
        for (int pass = 0; pass < 2 && pick < 0; pass++)
            for (int i = 0; i < cnt && pick < 0; i++)
                if (usable(&c->o, pass, p[i].status, p[i].memory, p[i].determinism,
                           p[i].mathType))
                    pick = i;
        if (pick < 0)
            return lm_fail(err, LUMEN_ERR,
                           "cuDNN: no backward-filter algorithm for a %dx%d/%d conv %dx%dx%d -> %d (batch %d)",
                           s->k, s->k, s->stride, s->IC, s->H, s->W, s->OC, s->N);
        c->aw = p[pick].algo;
        c->wsw = p[pick].memory;
        DNN(cudnnSetConvolutionMathType(c->cw, run_math(&c->o, p[pick].mathType)));
        if (len < (int)sizeof c->impl)
            snprintf(c->impl + len, sizeof c->impl - (size_t)len, " bwdw %d/%s", (int)c->aw,
                     math_name(p[pick].mathType));
        if (c->wsw > need) need = c->wsw;
    }
    *ws_need = need;
    return LUMEN_OK;
}

int nn_cuconv_plan(cudnnHandle_t h, const nn_cuconv_shape *s, const nn_cuconv_opts *o,
                   nn_cuconv **out, size_t *ws_need, lm_err *err) {
    *out = NULL;
    *ws_need = 0;
    nn_cuconv *c = calloc(1, sizeof *c);
    if (!c) return lm_fail(err, LUMEN_ENOMEM, "cuda: out of host memory");
    c->s = *s;
    c->o = *o;
    int rc = plan(h, c, ws_need, err);
    if (rc) {
        nn_cuconv_free(c);
        return rc;
    }
    *out = c;
    return LUMEN_OK;
}

int nn_cuconv_fwd(cudnnHandle_t h, const nn_cuconv *c, const void *x, const void *w, void *y,
                  float beta, void *ws, size_t ws_size, lm_err *err) {
    const float one = 1.0f;
    DNN(cudnnConvolutionForward(h, &one, c->x, x, c->w, w, c->cf, c->af, ws, ws_size, &beta, c->y,
                                y));
    return LUMEN_OK;
}

int nn_cuconv_bwd_data(cudnnHandle_t h, const nn_cuconv *c, const void *dy, const void *w,
                       void *dx, float beta, void *ws, size_t ws_size, lm_err *err) {
    const float one = 1.0f;
    DNN(cudnnConvolutionBackwardData(h, &one, c->w, w, c->y, dy, c->cd, c->ad, ws, ws_size, &beta,
                                     c->x, dx));
    return LUMEN_OK;
}

int nn_cuconv_bwd_filter(cudnnHandle_t h, const nn_cuconv *c, const void *x, const void *dy,
                         void *dw, void *ws, size_t ws_size, lm_err *err) {
    const float one = 1.0f, zero = 0.0f;
    DNN(cudnnConvolutionBackwardFilter(h, &one, c->x, x, c->y, dy, c->cw, c->aw, ws, ws_size, &zero,
                                       c->w, dw));
    return LUMEN_OK;
}

const char *nn_cuconv_impl(const nn_cuconv *c) { return c->impl; }
