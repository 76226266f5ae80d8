/* cpu_kernels.c -- see cpu_kernels.h. */
#include "cpu_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __AVX__
#include <immintrin.h>
#endif

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

void nn_cpu_gap_forward(float *out, const float *in, int N, int C, int HW, int b) {
    int nb = (C + b - 1) / b;
    float inv = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < nb; cb++) {
            const float *src = in + ((size_t)n * nb + cb) * HW * b;
            int w = C - cb * b < b ? C - cb * b : b;
            float acc[64];
            for (int j0 = 0; j0 < w; j0 += 64) {
                int wj = w - j0 < 64 ? w - j0 : 64;
                for (int j = 0; j < wj; j++) acc[j] = 0.0f;
                for (int p = 0; p < HW; p++)
                    for (int j = 0; j < wj; j++) acc[j] += src[(size_t)p * b + j0 + j];
                for (int j = 0; j < wj; j++) out[(size_t)n * C + cb * b + j0 + j] = acc[j] * inv;
            }
        }
}

void nn_cpu_gap_backward(float *din, const float *dout, int N, int C, int HW, int b) {
    int nb = (C + b - 1) / b;
    float inv = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < nb; cb++) {
            float *dst = din + ((size_t)n * nb + cb) * HW * b;
            for (int p = 0; p < HW; p++)
                for (int j = 0; j < b; j++) {
                    int c = cb * b + j;
                    dst[(size_t)p * b + j] = c < C ? dout[(size_t)n * C + c] * inv : 0.0f;
                }
        }
}

void nn_cpu_gpool_forward(float *out, const float *in, int N, int C, int HW, int b, float pmax) {
    if (pmax == 0.0f) {
        nn_cpu_gap_forward(out, in, N, C, HW, b);
        return;
    }
    int nb = (C + b - 1) / b;
    float inv = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < nb; cb++) {
            const float *src = in + ((size_t)n * nb + cb) * HW * b;
            int w = C - cb * b < b ? C - cb * b : b;
            for (int j = 0; j < w; j++) {
                float sum = 0.0f, mx = src[j];
                for (int p = 0; p < HW; p++) {
                    float v = src[(size_t)p * b + j];
                    sum += v;
                    if (v > mx) mx = v;
                }
                out[(size_t)n * C + cb * b + j] = (1.0f - pmax) * sum * inv + pmax * mx;
            }
        }
}

void nn_cpu_gpool_backward(float *din, const float *dout, const float *in, int N, int C, int HW,
                           int b, float pmax) {
    if (pmax == 0.0f) {
        nn_cpu_gap_backward(din, dout, N, C, HW, b);
        return;
    }
    int nb = (C + b - 1) / b;
    float inv = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < nb; cb++) {
            const float *src = in + ((size_t)n * nb + cb) * HW * b;
            float *dst = din + ((size_t)n * nb + cb) * HW * b;
            for (int j = 0; j < b; j++) {
                int c = cb * b + j;
                float g = c < C ? dout[(size_t)n * C + c] : 0.0f;
                int arg = 0;
                for (int p = 0; p < HW; p++) {
                    dst[(size_t)p * b + j] = (1.0f - pmax) * g * inv;
                    if (src[(size_t)p * b + j] > src[(size_t)arg * b + j]) arg = p;
                }
                dst[(size_t)arg * b + j] += pmax * g;
            }
        }
}

/* ---- stem backward-weights ---- */
typedef float v8f __attribute__((vector_size(32)));

/* a + b * c with one fused multiply-add where the target has it (-std=c11
 * turns off GCC's automatic contraction). */
#if defined(__FMA__) && defined(__AVX__)
static inline v8f fma8(v8f a, v8f b, float c) {
    return (v8f)_mm256_fmadd_ps((__m256)b, _mm256_set1_ps(c), (__m256)a);
}
#else
static inline v8f fma8(v8f a, v8f b, float c) { return a + b * c; }
#endif

static inline v8f load8(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

size_t nn_cpu_conv_bwdw_scratch(int N, int IC, int H, int W, int k, int pad) {
    /* rows padded by pad on the left and k + pad on the right (reads past the
     * last output column stay inside), pad + k rows below */
    return (size_t)N * IC * (size_t)(H + 2 * pad + k) * (size_t)(W + 2 * pad + k);
}

/* One output-channel chunk of 8 and one input channel, all (kh, kw). */
static void bwdw_task(float *acc, const float *xpad, const float *dy, int N, int IC, int ic,
                      int Hp, int Wp, int nb, int cb, int j8, int OH, int OW, int k, int s,
                      int b) {
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++) {
            const float *dyrow = dy + (((size_t)n * nb + cb) * OH + oh) * (size_t)OW * b + j8 * 8;
            for (int kh = 0; kh < k; kh++) {
                const float *xr = xpad + (((size_t)n * IC + ic) * Hp + (size_t)oh * s + kh) * Wp;
                v8f *a = (v8f *)acc + kh * k;
                if (k == 7) {
                    v8f a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5], a6 = a[6];
                    for (int ow = 0; ow < OW; ow++) {
                        v8f d = load8(dyrow + (size_t)ow * b);
                        const float *xp = xr + (size_t)ow * s;
                        a0 = fma8(a0, d, xp[0]);
                        a1 = fma8(a1, d, xp[1]);
                        a2 = fma8(a2, d, xp[2]);
                        a3 = fma8(a3, d, xp[3]);
                        a4 = fma8(a4, d, xp[4]);
                        a5 = fma8(a5, d, xp[5]);
                        a6 = fma8(a6, d, xp[6]);
                    }
                    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3, a[4] = a4, a[5] = a5, a[6] = a6;
                } else {
                    for (int ow = 0; ow < OW; ow++) {
                        v8f d = load8(dyrow + (size_t)ow * b);
                        const float *xp = xr + (size_t)ow * s;
                        for (int kw = 0; kw < k; kw++) a[kw] = fma8(a[kw], d, xp[kw]);
                    }
                }
            }
        }
}

void nn_cpu_conv_bwdw(float *dw, const float *x, int xb, const float *dy, float *xpad, int N,
                      int IC, int H, int W, int OC, int OH, int OW, int k, int stride, int pad,
                      int b) {
    int Hp = H + 2 * pad + k, Wp = W + 2 * pad + k, nb = (OC + b - 1) / b;
    int nbi = xb ? (IC + xb - 1) / xb : 0;
    /* zero-padded plain copy of the input, one [Hp, Wp] plane per (n, ic) */
    memset(xpad, 0, sizeof(float) * nn_cpu_conv_bwdw_scratch(N, IC, H, W, k, pad));
#pragma omp parallel for schedule(static)
    for (int p = 0; p < N * IC; p++) {
        float *dst = xpad + (size_t)p * Hp * Wp;
        int n = p / IC, ic = p % IC;
        for (int h = 0; h < H; h++) {
            float *row = dst + (size_t)(h + pad) * Wp + pad;
            if (!xb) {
                memcpy(row, x + ((size_t)p * H + h) * W, sizeof(float) * (size_t)W);
            } else {
                const float *src = x + (((size_t)n * nbi + ic / xb) * H + h) * (size_t)W * xb + ic % xb;
                for (int w = 0; w < W; w++) row[w] = src[(size_t)w * xb];
            }
        }
    }
    int chunks = OC / 8, kk = k * k;
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < chunks * IC; t++) {
        int chunk = t / IC, ic = t % IC, oc0 = chunk * 8;
        int cb = oc0 / b, j8 = (oc0 % b) / 8;
        v8f accv[121]; /* k <= 11 */
        float *acc = (float *)accv;
        memset(acc, 0, sizeof(v8f) * (size_t)kk);
        bwdw_task(acc, xpad, dy, N, IC, ic, Hp, Wp, nb, cb, j8, OH, OW, k, stride, b);
        for (int j = 0; j < 8; j++)
            for (int q = 0; q < kk; q++)
                dw[((size_t)(oc0 + j) * IC + ic) * kk + q] = acc[q * 8 + j];
    }
}

/* ---- max pool ---- */
void nn_cpu_maxpool_forward(float *out, uint8_t *ws, const float *in, int N, int C, int H,
                            int W, int OH, int OW, int k, int stride, int pad, int b) {
    int nb = (C + b - 1) / b, chunks = b / 8;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < nb; cb++) {
            const float *src = in + ((size_t)n * nb + cb) * H * W * (size_t)b;
            float *dst = out + ((size_t)n * nb + cb) * OH * OW * (size_t)b;
            uint8_t *wsp = ws ? ws + ((size_t)n * nb + cb) * OH * OW * (size_t)b : NULL;
            for (int oh = 0; oh < OH; oh++) {
                int h0 = oh * stride - pad, kh0 = h0 < 0 ? -h0 : 0;
                int kh1 = h0 + k > H ? H - h0 : k;
                for (int ow = 0; ow < OW; ow++) {
                    int w0 = ow * stride - pad, kw0 = w0 < 0 ? -w0 : 0;
                    int kw1 = w0 + k > W ? W - w0 : k;
                    size_t o = ((size_t)oh * OW + ow) * b;
                    for (int j = 0; j < chunks; j++) {
#ifdef __AVX__
                        const float *first =
                            src + ((size_t)(h0 + kh0) * W + (w0 + kw0)) * b + j * 8;
                        __m256 best = _mm256_loadu_ps(first);
                        __m256 at = _mm256_set1_ps((float)(kh0 * k + kw0));
                        for (int kh = kh0; kh < kh1; kh++)
                            for (int kw = kw0; kw < kw1; kw++) {
                                __m256 v = _mm256_loadu_ps(
                                    src + ((size_t)(h0 + kh) * W + (w0 + kw)) * b + j * 8);
                                /* strictly greater: the first maximum wins */
                                __m256 m = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
                                best = _mm256_blendv_ps(best, v, m);
                                at = _mm256_blendv_ps(at, _mm256_set1_ps((float)(kh * k + kw)), m);
                            }
                        _mm256_storeu_ps(dst + o + j * 8, best);
                        if (wsp) {
                            float a[8];
                            _mm256_storeu_ps(a, at);
                            for (int l = 0; l < 8; l++) wsp[o + j * 8 + l] = (uint8_t)a[l];
                        }
#else
                        for (int l = 0; l < 8; l++) {
                            float bv = -INFINITY;
                            int ba = -1;
                            for (int kh = kh0; kh < kh1; kh++)
                                for (int kw = kw0; kw < kw1; kw++) {
                                    float v = src[((size_t)(h0 + kh) * W + (w0 + kw)) * b + j * 8 + l];
                                    if (ba < 0 || v > bv) bv = v, ba = kh * k + kw;
                                }
                            dst[o + j * 8 + l] = bv;
                            if (wsp) wsp[o + j * 8 + l] = (uint8_t)ba;
                        }
#endif
                    }
                }
            }
        }
}

void nn_cpu_maxpool_backward(float *din, const float *dout, const uint8_t *ws, int N, int C,
                             int H, int W, int OH, int OW, int k, int stride, int pad, int b) {
    int nb = (C + b - 1) / b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < nb; cb++) {
            /* one plane at a time: zeroed and scattered while it sits in cache */
            float *dst = din + ((size_t)n * nb + cb) * H * W * (size_t)b;
            const float *g = dout + ((size_t)n * nb + cb) * OH * OW * (size_t)b;
            const uint8_t *wsp = ws + ((size_t)n * nb + cb) * OH * OW * (size_t)b;
            memset(dst, 0, sizeof(float) * (size_t)H * W * b);
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    size_t o = ((size_t)oh * OW + ow) * b;
                    int h0 = oh * stride - pad, w0 = ow * stride - pad;
                    for (int l = 0; l < b; l++) {
                        int a = wsp[o + l];
                        int ih = h0 + a / k, iw = w0 + a % k;
                        dst[((size_t)ih * W + iw) * b + l] += g[o + l];
                    }
                }
        }
}

/* ---- backward-weights, nChw8c ---- */
/* One task: output-channel blocks oa and ob (ob may equal oa: its results are
 * then dropped), input-channel block ib.  acc: [k*k][2 halves][2 ocb][4 ic]. */
static void bwdw_blk8_task(v8f *acc, const float *x, const float *dy, int N, int nbi, int nbo,
                           int H, int W, int OH, int OW, int k, int s, int pad, int oa, int ob,
                           int ib) {
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++) {
            const float *da = dy + (((size_t)n * nbo + oa) * OH + oh) * (size_t)OW * 8;
            const float *db = dy + (((size_t)n * nbo + ob) * OH + oh) * (size_t)OW * 8;
            for (int kh = 0; kh < k; kh++) {
                int ih = oh * s + kh - pad;
                if (ih < 0 || ih >= H) continue;
                const float *xr = x + (((size_t)n * nbi + ib) * H + ih) * (size_t)W * 8;
                for (int kw = 0; kw < k; kw++) {
                    /* ow with 0 <= ow*s + kw - pad < W */
                    int lo = pad - kw > 0 ? (pad - kw + s - 1) / s : 0;
                    int hi = (W - 1 - kw + pad) / s + 1;
                    if (hi > OW) hi = OW;
                    if (lo >= hi) continue;
                    for (int half = 0; half < 2; half++) {
                        v8f *a = acc + ((size_t)(kh * k + kw) * 2 + half) * 8;
                        v8f a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
                        v8f b0 = a[4], b1 = a[5], b2 = a[6], b3 = a[7];
                        const float *xp = xr + (size_t)(lo * s + kw - pad) * 8 + half * 4;
                        for (int ow = lo; ow < hi; ow++, xp += (size_t)s * 8) {
                            v8f ga = load8(da + (size_t)ow * 8), gb = load8(db + (size_t)ow * 8);
                            a0 = fma8(a0, ga, xp[0]);
                            b0 = fma8(b0, gb, xp[0]);
                            a1 = fma8(a1, ga, xp[1]);
                            b1 = fma8(b1, gb, xp[1]);
                            a2 = fma8(a2, ga, xp[2]);
                            b2 = fma8(b2, gb, xp[2]);
                            a3 = fma8(a3, ga, xp[3]);
                            b3 = fma8(b3, gb, xp[3]);
                        }
                        a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
                        a[4] = b0, a[5] = b1, a[6] = b2, a[7] = b3;
                    }
                }
            }
        }
}

/* 3x3, stride 1, pad 1 ("same"): one output block ob and one input block ib
 * per task; a sliding window over the x columns -- each broadcast x value
 * meets the gradient vectors of its three output columns (kw 0..2): 12
 * accumulators, 1 gradient load + 4 broadcasts per 12 FMAs.  dyp: scratch of
 * (W + 4) * 8 floats (a zero-padded gradient row).  acc: [3 kh][2 halves][3
 * kw][4 ic]. */
static void bwdw_s1k3_task(v8f *acc, float *dyp, const float *x, const float *dy, int N,
                           int nbi, int nbo, int H, int W, int ob, int ib) {
    memset(dyp, 0, sizeof(float) * (size_t)(W + 4) * 8);
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < H; oh++) {
            /* dyp[j] = dy[oh][j - 2], zero outside */
            memcpy(dyp + 16, dy + (((size_t)n * nbo + ob) * H + oh) * (size_t)W * 8,
                   sizeof(float) * (size_t)W * 8);
            for (int kh = 0; kh < 3; kh++) {
                int ih = oh + kh - 1;
                if (ih < 0 || ih >= H) continue;
                const float *xr = x + (((size_t)n * nbi + ib) * H + ih) * (size_t)W * 8;
                for (int half = 0; half < 2; half++) {
                    v8f *a = acc + ((size_t)kh * 2 + half) * 12;
                    v8f a00 = a[0], a01 = a[1], a02 = a[2], a03 = a[3];
                    v8f a10 = a[4], a11 = a[5], a12 = a[6], a13 = a[7];
                    v8f a20 = a[8], a21 = a[9], a22 = a[10], a23 = a[11];
                    /* column c: kw 0 meets output c + 1 (dyp[c + 3]), kw 1
                     * output c (dyp[c + 2]), kw 2 output c - 1 (dyp[c + 1]) */
                    v8f r1 = load8(dyp + 8), r2 = load8(dyp + 16);
                    const float *xp = xr + half * 4;
                    for (int c = 0; c < W; c++, xp += 8) {
                        v8f r3 = load8(dyp + (size_t)(c + 3) * 8);
                        a00 = fma8(a00, r3, xp[0]);
                        a10 = fma8(a10, r2, xp[0]);
                        a20 = fma8(a20, r1, xp[0]);
                        a01 = fma8(a01, r3, xp[1]);
                        a11 = fma8(a11, r2, xp[1]);
                        a21 = fma8(a21, r1, xp[1]);
                        a02 = fma8(a02, r3, xp[2]);
                        a12 = fma8(a12, r2, xp[2]);
                        a22 = fma8(a22, r1, xp[2]);
                        a03 = fma8(a03, r3, xp[3]);
                        a13 = fma8(a13, r2, xp[3]);
                        a23 = fma8(a23, r1, xp[3]);
                        r1 = r2;
                        r2 = r3;
                    }
                    a[0] = a00, a[1] = a01, a[2] = a02, a[3] = a03;
                    a[4] = a10, a[5] = a11, a[6] = a12, a[7] = a13;
                    a[8] = a20, a[9] = a21, a[10] = a22, a[11] = a23;
                }
            }
        }
}

/* The same sums for small maps, loops turned inside out: the 12
 * accumulators of one (kh, ic half) stay in registers over every (n, oh, c);
 * the task's gradient and input blocks (small) are re-read from cache once
 * per (kh, half).  No scratch: the edge columns are peeled. */
static void bwdw_s1k3_small_task(v8f *acc, const float *x, const float *dy, int N, int nbi,
                                 int nbo, int H, int W, int ob, int ib) {
    const v8f zero = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int kh = 0; kh < 3; kh++)
        for (int half = 0; half < 2; half++) {
            v8f *a = acc + ((size_t)kh * 2 + half) * 12;
            v8f a00 = a[0], a01 = a[1], a02 = a[2], a03 = a[3];
            v8f a10 = a[4], a11 = a[5], a12 = a[6], a13 = a[7];
            v8f a20 = a[8], a21 = a[9], a22 = a[10], a23 = a[11];
            for (int n = 0; n < N; n++)
                for (int oh = 0; oh < H; oh++) {
                    int ih = oh + kh - 1;
                    if (ih < 0 || ih >= H) continue;
                    const float *g = dy + (((size_t)n * nbo + ob) * H + oh) * (size_t)W * 8;
                    const float *xp = x + (((size_t)n * nbi + ib) * H + ih) * (size_t)W * 8 + half * 4;
                    /* column c: kw 0 meets output c + 1, kw 1 output c, kw 2 output c - 1 */
                    v8f r1 = zero, r2 = load8(g);
                    for (int c = 0; c < W; c++, xp += 8) {
                        v8f r3 = c + 1 < W ? load8(g + (size_t)(c + 1) * 8) : zero;
                        a00 = fma8(a00, r3, xp[0]);
                        a10 = fma8(a10, r2, xp[0]);
                        a20 = fma8(a20, r1, xp[0]);
                        a01 = fma8(a01, r3, xp[1]);
                        a11 = fma8(a11, r2, xp[1]);
                        a21 = fma8(a21, r1, xp[1]);
                        a02 = fma8(a02, r3, xp[2]);
                        a12 = fma8(a12, r2, xp[2]);
                        a22 = fma8(a22, r1, xp[2]);
                        a03 = fma8(a03, r3, xp[3]);
                        a13 = fma8(a13, r2, xp[3]);
                        a23 = fma8(a23, r1, xp[3]);
                        r1 = r2;
                        r2 = r3;
                    }
                }
            a[0] = a00, a[1] = a01, a[2] = a02, a[3] = a03;
            a[4] = a10, a[5] = a11, a[6] = a12, a[7] = a13;
            a[8] = a20, a[9] = a21, a[10] = a22, a[11] = a23;
        }
}

void nn_cpu_conv_bwdw_blk8(float *dw, const float *x, const float *dy, int N, int IC, int H,
                           int W, int OC, int OH, int OW, int k, int stride, int pad) {
    int nbi = (IC + 7) / 8, nbo = (OC + 7) / 8, pairs = (nbo + 1) / 2, kk = k * k;
    if (k == 3 && stride == 1 && pad == 1 && OH == H && OW == W) {
#pragma omp parallel
        {
            float *dyp = malloc(sizeof(float) * (size_t)(W + 4) * 8);
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < nbo * nbi; t++) {
                int ob = t / nbi, ib = t % nbi;
                v8f accv[3 * 2 * 12];
                memset(accv, 0, sizeof accv);
                /* a task's blocks of x and dy: small enough for L2 -> the
                 * register-resident variant */
                if ((size_t)N * H * W * 8 * sizeof(float) * 2 <= (256u << 10))
                    bwdw_s1k3_small_task(accv, x, dy, N, nbi, nbo, H, W, ob, ib);
                else if (dyp)
                    bwdw_s1k3_task(accv, dyp, x, dy, N, nbi, nbo, H, W, ob, ib);
                const float *acc = (const float *)accv;
                for (int kh = 0; kh < 3; kh++)
                    for (int half = 0; half < 2; half++)
                        for (int kw = 0; kw < 3; kw++)
                            for (int i = 0; i < 4; i++) {
                                int ic = ib * 8 + half * 4 + i;
                                if (ic >= IC) continue;
                                const float *v = acc + (((size_t)(kh * 2 + half) * 3 + kw) * 4 + i) * 8;
                                for (int l = 0; l < 8; l++) {
                                    int oc = ob * 8 + l;
                                    if (oc < OC) dw[((size_t)oc * IC + ic) * 9 + kh * 3 + kw] = v[l];
                                }
                            }
            }
            free(dyp);
        }
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < pairs * nbi; t++) {
        int pr = t / nbi, ib = t % nbi, oa = 2 * pr, ob = oa + 1 < nbo ? oa + 1 : oa;
        v8f accv[7 * 7 * 16]; /* k <= 7 */
        memset(accv, 0, sizeof(v8f) * (size_t)kk * 16);
        bwdw_blk8_task(accv, x, dy, N, nbi, nbo, H, W, OH, OW, k, stride, pad, oa, ob, ib);
        const float *acc = (const float *)accv;
        for (int q = 0; q < kk; q++)
            for (int half = 0; half < 2; half++)
                for (int j = 0; j < 2; j++) {
                    int ob_j = j ? ob : oa;
                    if (j && ob == oa) continue;
                    for (int i = 0; i < 4; i++) {
                        int ic = ib * 8 + half * 4 + i;
                        if (ic >= IC) continue;
                        const float *v = acc + ((((size_t)q * 2 + half) * 2 + j) * 4 + i) * 8;
                        for (int l = 0; l < 8; l++) {
                            int oc = ob_j * 8 + l;
                            if (oc < OC) dw[((size_t)oc * IC + ic) * kk + q] = v[l];
                        }
                    }
                }
    }
}
