/*
 * cuda_conv.h -- convolutions on cuDNN for the cuda backend: one planned
 * convolution shape (descriptors and the algorithms chosen for it), its
 * forward, backward-data and backward-filter.  Everything cuDNN's
 * convolution API touches lives in cuda_conv.c (see there why it is the
 * legacy API and how its deprecation is contained).
 *
 * Data: x [N,IC,H,W], y [N,OC,OH,OW] NCHW, w [OC,IC,k,k] OIHW (the
 * canonical layout), all float, or all bf16 with fp32 accumulation.
 */
#ifndef NN_CUDA_CONV_H
#define NN_CUDA_CONV_H

#include <stddef.h>

#include <cudnn.h>

#include "lm_util.h"

typedef struct nn_cuconv nn_cuconv;

typedef struct nn_cuconv_shape {
    int N, IC, H, W, OC, OH, OW, k, stride, pad;
} nn_cuconv_shape;

enum { NN_CUCONV_F32 = 0, NN_CUCONV_BF16 = 1 };

typedef struct nn_cuconv_opts {
    int dtype;          /* NN_CUCONV_F32 / NN_CUCONV_BF16 */
    int tf32;           /* float: allow TF32 tensor cores */
    int deterministic;  /* only algorithms cuDNN reports as deterministic */
    int bwd_data;       /* plan backward-data too (not for the stem) */
    int bwd_filter;     /* plan backward-filter (training) */
    size_t ws_limit;    /* largest workspace an algorithm may ask for */
} nn_cuconv_opts;

/* Creates the descriptors and chooses, once, the fastest algorithm cuDNN's
 * heuristics rank first among those that fit ws_limit (and are
 * deterministic when asked) for each direction.  *ws_need gets the largest
 * workspace the chosen algorithms need.  LUMEN_ERR naming the cuDNN call
 * and its status; LUMEN_ENOMEM when cuDNN could not allocate. */
int nn_cuconv_plan(cudnnHandle_t h, const nn_cuconv_shape *s, const nn_cuconv_opts *o,
                   nn_cuconv **out, size_t *ws_need, lm_err *err);
void nn_cuconv_free(nn_cuconv *c);  /* NULL is a no-op */

/* y = conv(x, w) + beta y */
int nn_cuconv_fwd(cudnnHandle_t h, const nn_cuconv *c, const void *x, const void *w, void *y,
                  float beta, void *ws, size_t ws_size, lm_err *err);
/* dx = conv_transpose(dy, w) + beta dx */
int nn_cuconv_bwd_data(cudnnHandle_t h, const nn_cuconv *c, const void *dy, const void *w,
                       void *dx, float beta, void *ws, size_t ws_size, lm_err *err);
/* dw = grad_w(x, dy) (overwritten) */
int nn_cuconv_bwd_filter(cudnnHandle_t h, const nn_cuconv *c, const void *x, const void *dy,
                         void *dw, void *ws, size_t ws_size, lm_err *err);

/* The chosen algorithms, e.g. "fwd implicit_precomp_gemm/tf32" (for the
 * per-layer timing table); static storage inside c. */
const char *nn_cuconv_impl(const nn_cuconv *c);

#endif /* NN_CUDA_CONV_H */
