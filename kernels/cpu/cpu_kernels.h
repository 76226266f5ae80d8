/*
 * cpu_kernels.h -- the cpu backend's own elementwise kernels (OpenMP,
 * written to vectorize).  They work on any memory layout as long as every
 * operand has the SAME layout (n counts physical floats, padding included).
 * Gradient rule as everywhere: outputs are overwritten.
 */
#ifndef CPU_KERNELS_H
#define CPU_KERNELS_H

#include <stddef.h>

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

#endif /* CPU_KERNELS_H */
