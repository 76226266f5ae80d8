/*
 * cpu_kernels.h -- the cpu backend's own elementwise kernels (OpenMP,
 * written to vectorize).  They work on any memory layout as long as every
 * operand has the SAME layout (n counts physical floats, padding included).
 * Gradient rule as everywhere: outputs are overwritten.
 */
#ifndef CPU_KERNELS_H
#define CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* out = max(a + b, 0) */
void nn_cpu_add_relu(float *out, const float *a, const float *b, size_t n);
/* dst = (c0 + c1) masked by out > 0; c1 and out may be NULL (no sum / no mask).
 * dst may equal c0. */
void nn_cpu_grad_combine(float *dst, const float *c0, const float *c1, const float *out,
                         size_t n);
/* BN running stats, PyTorch: r = 0.9 r + 0.1 batch, var unbiased by
 * count / (count - 1). */
void nn_cpu_bn_running(float *run_mean, float *run_var, const float *mean, const float *var,
                       int C, double count, float momentum);
/* y[N,K] = x[N,C] w[K,C]^T + b */
void nn_cpu_linear_forward(float *y, const float *x, const float *w, const float *b, int N,
                           int C, int K);
/* dw[K,C], db[K] (overwritten), dx[N,C] (optional) from dy[N,K] */
void nn_cpu_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int C, int K);
/* y = x * mask */
void nn_cpu_mul(float *y, const float *x, const float *mask, size_t n);



/* Global average pool over a channel-blocked layout: element (n, c, p) of a
 * [N, C, HW] map sits at ((n * nb + c / b) * HW + p) * b + c % b, nb = ceil(C /
 * b).  nChw8c: b = 8; nChw16c: b = 16; nhwc: b = C.  out[N, C] plain.
 * Backward writes din in the same layout (padding channels 0). */
void nn_cpu_gap_forward(float *out, const float *in, int N, int C, int HW, int b);
void nn_cpu_gap_backward(float *din, const float *dout, int N, int C, int HW, int b);
/* Global pool, same layouts: out = (1 - pmax) mean + pmax max over HW, the
 * first max winning (the model's pool: pmax 0 avg, 1 max, 0.5 avgmax; pmax 0
 * is nn_cpu_gap_* exactly).  Backward reads the forward's input `in`. */
void nn_cpu_gpool_forward(float *out, const float *in, int N, int C, int HW, int b, float pmax);
void nn_cpu_gpool_backward(float *din, const float *dout, const float *in, int N, int C, int HW,
                           int b, float pmax);
/* Convolution backward-weights where oneDNN 2.6 has no JIT kernel (the stem's
 * plain 1- or 3-channel input with a blocked gradient; 3x3 maps of 1x1 or
 * 2x2 outputs):
 *   dw[OC,IC,k,k] = sum_{n,oh,ow} dy[n,oc,oh,ow] x[n,ic,oh*s-p+kh,ow*s-p+kw]
 * x: NCHW plain (xb 0) or channel-blocked with block xb; dy: channel-blocked
 * as for nn_cpu_gap_* (block b, b % 8 == 0, OC % 8 == 0).  xpad: scratch of
 * nn_cpu_conv_bwdw_scratch() floats.  dw overwritten (OIHW). */
size_t nn_cpu_conv_bwdw_scratch(int N, int IC, int H, int W, int k, int pad);
void nn_cpu_conv_bwdw(float *dw, const float *x, int xb, const float *dy, float *xpad, int N,
                      int IC, int H, int W, int OC, int OH, int OW, int k, int stride, int pad,
                      int b);

/* Convolution backward-weights for nChw8c input and gradient (the AVX2
 * activation layout).  3x3/1 pad 1: a sliding window over the input columns
 * (12 accumulators, 1 load + 4 broadcasts per 12 FMAs), 1.1-1.5x oneDNN 2.6's
 * jit:avx2 backward-weights here.  Other shapes: tasks of (2 output-channel
 * blocks x 1 input-channel block), 6 loads per 8 FMAs (about oneDNN's speed).
 * dw [OC, IC, k, k] (OIHW) overwritten; padding channels ignored.  k <= 7. */
void nn_cpu_conv_bwdw_blk8(float *dw, const float *x, const float *dy, int N, int IC, int H,
                           int W, int OC, int OH, int OW, int k, int stride, int pad);

/* Max pool k x k / stride / pad on a channel-blocked layout (block b, b % 8
 * == 0; nhwc: b = C): out [N, C, OH, OW] in the same layout; ws (may be NULL
 * for inference) gets, per output element, the window position kh * k + kw
 * of the FIRST maximum (PyTorch's tie rule); padding never wins.  k <= 15.
 * Backward: din = scatter of dout through ws (din overwritten). */
void nn_cpu_maxpool_forward(float *out, uint8_t *ws, const float *in, int N, int C, int H,
                            int W, int OH, int OW, int k, int stride, int pad, int b);
void nn_cpu_maxpool_backward(float *din, const float *dout, const uint8_t *ws, int N, int C,
                             int H, int W, int OH, int OW, int k, int stride, int pad, int b);

#endif /* CPU_KERNELS_H */
