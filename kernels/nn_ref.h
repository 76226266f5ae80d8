/*
 * nn_ref.h -- naive reference layers in DOUBLE precision, NCHW, written for
 * clarity (the yardstick the fast backends and the gradient checks use).
 *
 * Layers come as forward/backward pairs.  Shapes are in the comments: N batch,
 * C/IC/OC channels, H,W input and OH,OW output spatial size, K classes.
 *
 * Gradient rule: every backward OVERWRITES what it writes -- input gradients
 * and parameter gradients alike; nothing accumulates.  (A graph walker that
 * feeds one tensor to two consumers sums the two input gradients itself.)
 * Any gradient output pointer documented as optional may be NULL (skipped).
 *
 * No allocation, no errors, no threads: callers pass correctly sized buffers.
 */
#ifndef NN_REF_H
#define NN_REF_H

#include <stddef.h>
#include <stdint.h>

/* ---- conv2d: square kernel k, stride, zero padding pad, no dilation ---- */
/* out[N,OC,OH,OW] = conv(in[N,IC,H,W], w[OC,IC,k,k]) (+ bias[OC] if non-NULL),
 * OH = (H + 2 pad - k) / stride + 1. */
void nn_ref_conv_forward(double *out, const double *in, const double *w,
                         const double *bias, int N, int IC, int H, int W, int OC,
                         int k, int stride, int pad);
/* din[N,IC,H,W] (optional), dw[OC,IC,k,k] (optional), dbias[OC] (optional)
 * from dout[N,OC,OH,OW]. */
void nn_ref_conv_backward(double *din, double *dw, double *dbias,
                          const double *dout, const double *in, const double *w,
                          int N, int IC, int H, int W, int OC, int k, int stride,
                          int pad);

/* ---- batch norm over (N, H*W) per channel; PyTorch semantics ---- */
/* Training: out[N,C,HW] = gamma * (in - mean) / sqrt(var + eps) + beta with
 * the batch mean and BIASED variance, written to mean[C] and var[C]. */
void nn_ref_bn_forward_train(double *out, double *mean, double *var,
                             const double *in, const double *gamma,
                             const double *beta, int N, int C, int HW, double eps);
/* running = (1 - momentum) running + momentum * batch, with the UNBIASED
 * variance var * n / (n - 1), n = N * HW (n == 1: the biased one). */
void nn_ref_bn_update_running(double *run_mean, double *run_var, const double *mean,
                              const double *var, int C, int n, double momentum);
/* Eval: out = gamma * (in - run_mean) / sqrt(run_var + eps) + beta. */
void nn_ref_bn_forward_eval(double *out, const double *in, const double *gamma,
                            const double *beta, const double *run_mean,
                            const double *run_var, int N, int C, int HW, double eps);
/* Backward of the training forward: din[N,C,HW], dgamma[C], dbeta[C] (all
 * required) from dout, the input and the saved batch mean / biased var. */
void nn_ref_bn_backward(double *din, double *dgamma, double *dbeta,
                        const double *dout, const double *in, const double *mean,
                        const double *var, const double *gamma, int N, int C,
                        int HW, double eps);

/* ---- ReLU (n elements); backward masks by out > 0 (out = forward output) ---- */
void nn_ref_relu_forward(double *out, const double *in, size_t n);
void nn_ref_relu_backward(double *din, const double *dout, const double *out, size_t n);

/* ---- max pool: k x k window, stride, pad (padding never wins) ---- */
/* out[N,C,OH,OW]; argmax[N,C,OH,OW] = flat index h*W+w of the winner inside its
 * [H,W] plane, the FIRST maximum in row-major window order (PyTorch). */
void nn_ref_maxpool_forward(double *out, int32_t *argmax, const double *in, int N,
                            int C, int H, int W, int k, int stride, int pad);
/* din[N,C,H,W] = scatter of dout through argmax (overwrites din). */
void nn_ref_maxpool_backward(double *din, const double *dout, const int32_t *argmax,
                             int N, int C, int H, int W, int OH, int OW);

/* ---- global average pool: in[N,C,HW] -> out[N,C] ---- */
void nn_ref_gap_forward(double *out, const double *in, int N, int C, int HW);
void nn_ref_gap_backward(double *din, const double *dout, int N, int C, int HW);
/* ---- global pool: out = (1 - pmax) mean + pmax max over HW, first max
 * wins (the model's "avg" 0, "max" 1, "avgmax" 0.5); pmax 0 is the average
 * above, bit for bit.  Backward needs the forward's input. ---- */
void nn_ref_gpool_forward(double *out, const double *in, int N, int C, int HW, double pmax);
void nn_ref_gpool_backward(double *din, const double *dout, const double *in, int N, int C,
                           int HW, double pmax);

/* ---- linear: out[N,K] = in[N,C] w[K,C]^T + b[K] ---- */
void nn_ref_linear_forward(double *out, const double *in, const double *w,
                           const double *b, int N, int C, int K);
/* din[N,C] (optional), dw[K,C], db[K] from dout[N,K]. */
void nn_ref_linear_backward(double *din, double *dw, double *db, const double *dout,
                            const double *in, const double *w, int N, int C, int K);

/* ---- dropout with a given mask: mask[i] is 0 or 1/(1-p) (inverted) ---- */
void nn_ref_dropout_forward(double *out, const double *in, const float *mask, size_t n);
void nn_ref_dropout_backward(double *din, const double *dout, const float *mask, size_t n);

/* ---- residual add: out = a + b; backward: da = db = dout ---- */
void nn_ref_add_forward(double *out, const double *a, const double *b, size_t n);
void nn_ref_add_backward(double *da, double *db, const double *dout, size_t n);

/* ---- loss: BCEWithLogitsLoss(pos_weight, reduction='mean') ---- */
/* With t = y (1 - s) + s / 2 (label smoothing s), per element
 *   l = pw[k] t softplus(-x) + (1 - t) softplus(x)
 * averaged over N*K.  pos_weight may be NULL (all 1).  Returns the loss. */
double nn_ref_bce_forward(const double *logits, const float *y, const float *pos_weight,
                          double smoothing, int N, int K);
/* dlogits[N,K] = (pw t (sigmoid(x) - 1) + (1 - t) sigmoid(x)) / (N K). */
void nn_ref_bce_backward(double *dlogits, const double *logits, const float *y,
                         const float *pos_weight, double smoothing, int N, int K);

/* ---- loss: focal BCE (Lin et al. 2017), soft targets allowed ---- */
/* With p = sigmoid(x) and t as above, per element
 *   l = pw[k] t (1 - p)^g softplus(-x) + (1 - t) p^g softplus(x)
 * averaged over N*K: the BCE above with each term scaled down where the
 * model is already right (g = gamma >= 0; g = 0 is exactly the BCE, and
 * nn_ref_bce_* are these with g = 0).  pw plays the part of the
 * paper's alpha. */
double nn_ref_focal_forward(const double *logits, const float *y, const float *pos_weight,
                            double smoothing, double gamma, int N, int K);
/* dl/dx = pw t (1 - p)^g (g p log p - (1 - p)) + (1 - t) p^g (p - g (1 - p) log(1 - p)),
 * divided by N K. */
void nn_ref_focal_backward(double *dlogits, const double *logits, const float *y,
                           const float *pos_weight, double smoothing, double gamma, int N, int K);

#endif /* NN_REF_H */
