/*
 * cuda_kernels.h -- the cuda backend's own kernels (cuda_kernels.cu), as C
 * launchers.  Every launcher enqueues on `st` and returns the launch status
 * (cudaGetLastError after the launch) as an int (0 = cudaSuccess); the
 * caller turns a failure into an lm_err naming the kernel.
 *
 * Layout: activations NCHW float (the canonical layout; see cuda_engine.c
 * for why), parameters and gradients flat in the canonical order.
 *
 * Determinism: no atomics.  Every reduction is two-pass (fixed partial
 * ranges per block, then one fixed-order sum), so a kernel gives bitwise the
 * same result run after run on the same GPU.  The file is compiled with
 * --fmad=false so that elementwise float formulas (optimizer updates,
 * dropout, BN apply) round like the C code of the cpu backend.
 */
#ifndef NN_CUDA_KERNELS_H
#define NN_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blocks of the partial reductions below: scratch needs
 * nn_cu_partials(count, C) doubles. */
size_t nn_cu_partials(size_t count_per_channel, int C);

/* y = a + b (b may be NULL: y = a), ReLU when relu. */
int nn_cu_add(cudaStream_t st, float *y, const float *a, const float *b, size_t n, int relu);
/* dst = acc ? dst + src : src */
int nn_cu_accum(cudaStream_t st, float *dst, const float *src, size_t n, int acc);
/* dy[i] = out[i] > 0 ? dy[i] : 0 (in place: the ReLU backward) */
int nn_cu_relu_mask(cudaStream_t st, float *dy, const float *out, size_t n);
/* y = x * mask (dropout forward/backward with the host-made mask) */
int nn_cu_mul(cudaStream_t st, float *y, const float *x, const float *mask, size_t n);

/* ---- batch norm over (N, HW) per channel, NCHW, PyTorch semantics ---- */
/* Training forward: batch mean / biased variance into mean[C], invstd[C]
 * (1/sqrt(var + eps)); y = (x - mean) invstd g + b (ReLU when relu); the
 * running stats updated as PyTorch does (momentum, unbiased variance).
 * scratch: nn_cu_partials(N*HW, C) * 2 doubles. */
int nn_cu_bn_train(cudaStream_t st, float *y, float *mean, float *invstd, float *run_mean,
                   float *run_var, const float *x, const float *g, const float *b, int N, int C,
                   int HW, float eps, float momentum, int relu, double *scratch);
/* Eval: y = (x - rm) / sqrt(rv + eps) g + b (ReLU when relu). */
int nn_cu_bn_eval(cudaStream_t st, float *y, const float *x, const float *g, const float *b,
                  const float *rm, const float *rv, int N, int C, int HW, float eps, int relu);
/* Backward of the training forward: dy is the gradient w.r.t. the BN output
 * already masked by the ReLU; writes dgamma[C], dbeta[C] and dx (dx += when
 * acc).  scratch as for nn_cu_bn_train. */
int nn_cu_bn_backward(cudaStream_t st, float *dx, float *dgamma, float *dbeta, const float *dy,
                      const float *x, const float *mean, const float *invstd, const float *g,
                      int N, int C, int HW, int acc, double *scratch);

/* ---- max pool k x k, stride, pad: -inf padding, the FIRST maximum of
 * the window in row-major order wins (PyTorch, nn_ref) ---- */
int nn_cu_maxpool_fwd(cudaStream_t st, float *y, int32_t *argmax, const float *x, int N, int C,
                      int H, int W, int OH, int OW, int k, int stride, int pad);
/* dx (overwritten, or += when acc) gathered from dy through argmax: each
 * input pixel sums, in a fixed order, the windows that chose it. */
int nn_cu_maxpool_bwd(cudaStream_t st, float *dx, const float *dy, const int32_t *argmax, int N,
                      int C, int H, int W, int OH, int OW, int k, int stride, int pad, int acc);

/* ---- global average pool [N,C,HW] -> [N,C] ---- */
int nn_cu_gap_fwd(cudaStream_t st, float *y, const float *x, int N, int C, int HW);
int nn_cu_gap_bwd(cudaStream_t st, float *dx, const float *dy, int N, int C, int HW, int acc);
/* ---- global pool (1 - pmax) mean + pmax max, first max wins (the model's
 * pool; pmax 0 is the gap above); backward reads the forward's input x ---- */
int nn_cu_gpool_fwd(cudaStream_t st, float *y, const float *x, int N, int C, int HW, float pmax);
int nn_cu_gpool_bwd(cudaStream_t st, float *dx, const float *dy, const float *x, int N, int C,
                    int HW, float pmax, int acc);

/* ---- linear helpers (the matmuls are cuBLAS) ---- */
/* y[N,K] += b[K] */
int nn_cu_bias_add(cudaStream_t st, float *y, const float *b, int N, int K);
/* db[K] = sum_n dy[n,K] (fixed order) */
int nn_cu_bias_grad(cudaStream_t st, float *db, const float *dy, int N, int K);

/* ---- convolution helpers ---- */
/* y[N,C,HW] += b[C], ReLU when relu, + z (when non-NULL) before the ReLU */
int nn_cu_bias_act(cudaStream_t st, float *y, const float *b, const float *z, int N, int C, int HW,
                   int relu);
/* BN folded into conv weights: fw[o,...] = w[o,...] g[o]/sqrt(rv[o]+eps),
 * fb[o] = beta[o] - rm[o] g[o]/sqrt(rv[o]+eps) (double math, as the cpu) */
int nn_cu_fold_bn(cudaStream_t st, float *fw, float *fb, const float *w, const float *g,
                  const float *beta, const float *rm, const float *rv, int OC, size_t per, float eps);
/* float <-> bf16 (round to nearest even) */
int nn_cu_to_bf16(cudaStream_t st, void *dst, const float *src, size_t n);
int nn_cu_from_bf16(cudaStream_t st, float *dst, const void *src, size_t n, int acc);

/* ---- loss: BCEWithLogits(pos_weight, label smoothing s, focal gamma g), mean over N*K ---- */
/* dlogits[N,K] (float) and *loss (double, device) as nn_ref_focal_* (g = 0:
 * nn_ref_bce_*); pos_weight may be NULL.  scratch: nn_cu_partials(N*K, 1) doubles. */
int nn_cu_bce(cudaStream_t st, double *loss, float *dlogits, const float *logits, const float *y,
              const float *pos_weight, float smoothing, float gamma, int N, int K, double *scratch);

/* ---- whole-array reductions and the optimizer ---- */
/* *out = sum g[i]^2 in double.  scratch: nn_cu_partials(n, 1) doubles. */
int nn_cu_sumsq(cudaStream_t st, double *out, const float *g, size_t n, double *scratch);
/* nn_optim_update, elementwise, with the scalars the host derives exactly
 * as nn_optim.c does:
 *   SGD : p -= lr d, d = g scale + wd p, momentum buffer m1 (first: copy)
 *   Adam/AdamW: step = lr / (1 - b1^t), rbc2 = 1 / sqrt(1 - b2^t),
 *               l2 (Adam's wd), keep (AdamW's 1 - lr wd) */
int nn_cu_sgd(cudaStream_t st, float *p, const float *g, float *m1, size_t n, float lr, float wd,
              float mom, float damp1, int first, int nesterov, float scale);
int nn_cu_adam(cudaStream_t st, float *p, const float *g, float *m1, float *m2, size_t n, float b1,
               float b2, float eps, float step, float rbc2, float l2, float keep, float scale);

/* ---- uploaded u8 batches: normalize (and flip/rotate) on the device ----
 * u8[n,C,H,W] planar, as the dataset stores images; x[n,C,H,W] =
 * (v / 255 - mean[c]) / std[c] of the image under dihedral element
 * flags[n] & 7 (kernels/cpu/cpu_augment.h's numbering; NULL: identity) -- the
 * same floats nn_aug_dihedral gives.  Odd elements need H == W (else
 * that image comes out NaN, never a read out of bounds). */
int nn_cu_u8_normalize(cudaStream_t st, float *x, const uint8_t *u8, const uint8_t *flags,
                       const float *mean, const float *std, int N, int C, int H, int W);

#ifdef __cplusplus
}
#endif

#endif /* NN_CUDA_KERNELS_H */
