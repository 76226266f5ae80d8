/* cpu_kernels.c -- see cpu_kernels.h. */
#include "cpu_kernels.h"

#include <string.h>

#define PAR_MIN 65536 /* below this, threads cost more than they bring */

void nn_cpu_add_relu(float *restrict out, const float *restrict a, const float *restrict b,
                     size_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float s = a[i] + b[i];
        out[i] = s > 0.0f ? s : 0.0f;
    }
}

void nn_cpu_grad_combine(float *dst, const float *c0, const float *c1, const float *out,
                         size_t n) {
    if (c1 && out) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) dst[i] = out[i] > 0.0f ? c0[i] + c1[i] : 0.0f;
    } else if (c1) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) dst[i] = c0[i] + c1[i];
    } else if (out) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) dst[i] = out[i] > 0.0f ? c0[i] : 0.0f;
    } else if (dst != c0) {
        memcpy(dst, c0, sizeof(float) * n);
    }
}

void nn_cpu_bn_running(float *run_mean, float *run_var, const float *mean, const float *var,
                       int C, double count, float momentum) {
    double corr = count > 1 ? count / (count - 1) : 1.0;
    for (int c = 0; c < C; c++) {
        run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + (double)momentum * mean[c]);
        run_var[c] = (float)((1.0 - momentum) * run_var[c] + (double)momentum * var[c] * corr);
    }
}

void nn_cpu_linear_forward(float *y, const float *x, const float *w, const float *b, int N,
                           int C, int K) {
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            const float *xr = x + (size_t)n * C, *wr = w + (size_t)k * C;
            double s = b ? b[k] : 0.0;
            for (int c = 0; c < C; c++) s += (double)xr[c] * wr[c];
            y[(size_t)n * K + k] = (float)s;
        }
}

void nn_cpu_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, int N, int C, int K) {
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dy[(size_t)n * K + k];
        db[k] = (float)s;
        float *dwr = dw + (size_t)k * C;
        for (int c = 0; c < C; c++) dwr[c] = 0.0f;
        for (int n = 0; n < N; n++) {
            float g = dy[(size_t)n * K + k];
            const float *xr = x + (size_t)n * C;
            for (int c = 0; c < C; c++) dwr[c] += g * xr[c];
        }
    }
    if (!dx) return;
    for (int n = 0; n < N; n++) {
        float *dxr = dx + (size_t)n * C;
        for (int c = 0; c < C; c++) dxr[c] = 0.0f;
        for (int k = 0; k < K; k++) {
            float g = dy[(size_t)n * K + k];
            const float *wr = w + (size_t)k * C;
            for (int c = 0; c < C; c++) dxr[c] += g * wr[c];
        }
    }
}

void nn_cpu_mul(float *y, const float *x, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * mask[i];
}
