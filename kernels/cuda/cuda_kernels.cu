// cuda_kernels.cu -- the cuda backend's own kernels: see cuda_kernels.h.
// Straightforward, correct first: one thread per element (grid-stride),
// deterministic two-pass reductions, double accumulation where the cpu and
// ref backends accumulate in double.
#include "cuda_kernels.h"

#include <cuda_bf16.h>
#include <math.h>

#define TPB 256
#define MAX_PARTIALS 64     // blocks per channel in a per-channel reduction
#define SPAN_MIN 4096       // elements per block before another block is used

static inline unsigned grid_for(size_t n) {
    size_t b = (n + TPB - 1) / TPB;
    if (b < 1) b = 1;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return (unsigned)b;
}

static inline int launched(void) { return (int)cudaGetLastError(); }

#define FOR_N(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
                         i += (size_t)gridDim.x * blockDim.x)

static int partials_of(size_t m) {
    size_t p = (m + SPAN_MIN - 1) / SPAN_MIN;
    if (p < 1) p = 1;
    if (p > MAX_PARTIALS) p = MAX_PARTIALS;
    return (int)p;
}

extern "C" size_t nn_cu_partials(size_t count_per_channel, int C) {
    return (size_t)partials_of(count_per_channel) * (size_t)(C > 0 ? C : 1);
}

// Fixed-shape block sum of a double (TPB threads); the result in thread 0.
__device__ static double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

// ------------------------------------------------------------ elementwise --
__global__ static void k_add(float *y, const float *a, const float *b, size_t n, int relu) {
    FOR_N(i, n) {
        float v = b ? a[i] + b[i] : a[i];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}
extern "C" int nn_cu_add(cudaStream_t st, float *y, const float *a, const float *b, size_t n,
                         int relu) {
    k_add<<<grid_for(n), TPB, 0, st>>>(y, a, b, n, relu);
    return launched();
}

__global__ static void k_accum(float *d, const float *s, size_t n, int acc) {
    FOR_N(i, n) d[i] = acc ? d[i] + s[i] : s[i];
}
extern "C" int nn_cu_accum(cudaStream_t st, float *dst, const float *src, size_t n, int acc) {
    k_accum<<<grid_for(n), TPB, 0, st>>>(dst, src, n, acc);
    return launched();
}

__global__ static void k_relu_mask(float *dy, const float *out, size_t n) {
    FOR_N(i, n) if (!(out[i] > 0.0f)) dy[i] = 0.0f;
}
extern "C" int nn_cu_relu_mask(cudaStream_t st, float *dy, const float *out, size_t n) {
    k_relu_mask<<<grid_for(n), TPB, 0, st>>>(dy, out, n);
    return launched();
}

__global__ static void k_mul(float *y, const float *x, const float *m, size_t n) {
    FOR_N(i, n) y[i] = x[i] * m[i];
}
extern "C" int nn_cu_mul(cudaStream_t st, float *y, const float *x, const float *mask, size_t n) {
    k_mul<<<grid_for(n), TPB, 0, st>>>(y, x, mask, n);
    return launched();
}

// ------------------------------------------------------------ batch norm --
// Per-channel partial sums over (N, HW) of NCHW data.  Block (p, c) sums
// elements j in [p span, (p+1) span) of channel c, j = n HW + i.
//   mode 0: a = sum x
//   mode 1: a = sum (x - mean[c])^2
//   mode 2: a = sum dy, b = sum dy (x - mean[c]) invstd[c]
__global__ static void k_chan_partial(double *pa, double *pb, const float *x, const float *dy,
                                      const float *mean, const float *invstd, int N, int C,
                                      int HW, int P, int mode) {
    __shared__ double sh[TPB];
    int c = blockIdx.y, p = blockIdx.x;
    size_t M = (size_t)N * HW, span = (M + P - 1) / P;
    size_t j0 = (size_t)p * span, j1 = j0 + span < M ? j0 + span : M;
    double a = 0, b = 0;
    double m = mode ? (double)mean[c] : 0.0, is = mode == 2 ? (double)invstd[c] : 0.0;
    for (size_t j = j0 + threadIdx.x; j < j1; j += TPB) {
        size_t n = j / HW, i = j % HW, at = (n * C + c) * HW + i;
        double v = x[at];
        if (mode == 0) {
            a += v;
        } else if (mode == 1) {
            a += (v - m) * (v - m);
        } else {
            double d = dy[at];
            a += d;
            b += d * ((v - m) * is);
        }
    }
    a = block_sum(a, sh);
    if (mode == 2) b = block_sum(b, sh);
    if (threadIdx.x == 0) {
        pa[c * P + p] = a;
        if (mode == 2) pb[c * P + p] = b;
    }
}

// step 0: mean[c] = sum / M.  step 1: invstd, running stats.
__global__ static void k_bn_stats(float *mean, float *invstd, float *rm, float *rv,
                                  const double *pa, int C, int P, double M, float eps,
                                  float momentum, int step) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0;
    for (int p = 0; p < P; p++) s += pa[c * P + p];
    if (step == 0) {
        mean[c] = (float)(s / M);
        return;
    }
    double var = s / M;
    invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
    // as the cpu backend: float running stats, unbiased variance
    double corr = M > 1 ? M / (M - 1) : 1.0;
    rm[c] = (float)((1.0 - momentum) * rm[c] + momentum * (double)mean[c]);
    rv[c] = (float)((1.0 - momentum) * rv[c] + momentum * var * corr);
}

__global__ static void k_bn_apply(float *y, const float *x, const float *mean, const float *invstd,
                                  const float *g, const float *b, int C, int HW, size_t n,
                                  int relu) {
    FOR_N(i, n) {
        int c = (int)((i / HW) % C);
        float v = g[c] * ((x[i] - mean[c]) * invstd[c]) + b[c];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

extern "C" int nn_cu_bn_train(cudaStream_t st, float *y, float *mean, float *invstd,
                              float *run_mean, float *run_var, const float *x, const float *g,
                              const float *b, int N, int C, int HW, float eps, float momentum,
                              int relu, double *scratch) {
    size_t M = (size_t)N * HW;
    int P = partials_of(M);
    dim3 grid(P, C);
    unsigned cb = (unsigned)((C + 127) / 128);
    k_chan_partial<<<grid, TPB, 0, st>>>(scratch, NULL, x, NULL, NULL, NULL, N, C, HW, P, 0);
    k_bn_stats<<<cb, 128, 0, st>>>(mean, invstd, run_mean, run_var, scratch, C, P, (double)M, eps,
                                   momentum, 0);
    k_chan_partial<<<grid, TPB, 0, st>>>(scratch, NULL, x, NULL, mean, NULL, N, C, HW, P, 1);
    k_bn_stats<<<cb, 128, 0, st>>>(mean, invstd, run_mean, run_var, scratch, C, P, (double)M, eps,
                                   momentum, 1);
    size_t n = M * C;
    k_bn_apply<<<grid_for(n), TPB, 0, st>>>(y, x, mean, invstd, g, b, C, HW, n, relu);
    return launched();
}

__global__ static void k_bn_eval(float *y, const float *x, const float *g, const float *b,
                                 const float *rm, const float *rv, int C, int HW, size_t n,
                                 float eps, int relu) {
    FOR_N(i, n) {
        int c = (int)((i / HW) % C);
        float inv = (float)(1.0 / sqrt((double)rv[c] + (double)eps));
        float v = g[c] * ((x[i] - rm[c]) * inv) + b[c];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}
extern "C" int nn_cu_bn_eval(cudaStream_t st, float *y, const float *x, const float *g,
                             const float *b, const float *rm, const float *rv, int N, int C,
                             int HW, float eps, int relu) {
    size_t n = (size_t)N * C * HW;
    k_bn_eval<<<grid_for(n), TPB, 0, st>>>(y, x, g, b, rm, rv, C, HW, n, eps, relu);
    return launched();
}

__global__ static void k_bn_bgrads(float *dg, float *db, const double *pa, const double *pb, int C,
                                   int P) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double a = 0, b = 0;
    for (int p = 0; p < P; p++) a += pa[c * P + p], b += pb[c * P + p];
    db[c] = (float)a;
    dg[c] = (float)b;
}

__global__ static void k_bn_dx(float *dx, const float *dy, const float *x, const float *mean,
                               const float *invstd, const float *g, const float *dg,
                               const float *db, int C, int HW, size_t n, double M, int acc) {
    FOR_N(i, n) {
        int c = (int)((i / HW) % C);
        double is = invstd[c], xh = ((double)x[i] - mean[c]) * is;
        double v = (double)g[c] * is * ((double)dy[i] - (double)db[c] / M - xh * (double)dg[c] / M);
        dx[i] = acc ? dx[i] + (float)v : (float)v;
    }
}

extern "C" int nn_cu_bn_backward(cudaStream_t st, float *dx, float *dgamma, float *dbeta,
                                 const float *dy, const float *x, const float *mean,
                                 const float *invstd, const float *g, int N, int C, int HW,
                                 int acc, double *scratch) {
    size_t M = (size_t)N * HW;
    int P = partials_of(M);
    double *pa = scratch, *pb = scratch + (size_t)P * C;
    k_chan_partial<<<dim3(P, C), TPB, 0, st>>>(pa, pb, x, dy, mean, invstd, N, C, HW, P, 2);
    k_bn_bgrads<<<(unsigned)((C + 127) / 128), 128, 0, st>>>(dgamma, dbeta, pa, pb, C, P);
    if (dx) {
        size_t n = M * C;
        k_bn_dx<<<grid_for(n), TPB, 0, st>>>(dx, dy, x, mean, invstd, g, dgamma, dbeta, C, HW, n,
                                             (double)M, acc);
    }
    return launched();
}

// -------------------------------------------------------------- max pool --
__global__ static void k_maxpool_fwd(float *y, int32_t *am, const float *x, int C, int H, int W,
                                     int OH, int OW, int k, int s, int pad, size_t n) {
    FOR_N(i, n) {
        int ow = (int)(i % OW), oh = (int)((i / OW) % OH);
        size_t plane = i / ((size_t)OH * OW);
        const float *xp = x + plane * (size_t)H * W;
        float best = -INFINITY;
        int arg = -1;
        for (int a = 0; a < k; a++) {
            int h = oh * s - pad + a;
            if (h < 0 || h >= H) continue;
            for (int b = 0; b < k; b++) {
                int w = ow * s - pad + b;
                if (w < 0 || w >= W) continue;
                float v = xp[h * W + w];
                if (arg < 0 || v > best || (v != v && best == best)) best = v, arg = h * W + w;
            }
        }
        y[i] = best;
        if (am) am[i] = arg;
    }
    (void)C;
}
extern "C" int nn_cu_maxpool_fwd(cudaStream_t st, float *y, int32_t *argmax, const float *x, int N,
                                 int C, int H, int W, int OH, int OW, int k, int stride, int pad) {
    size_t n = (size_t)N * C * OH * OW;
    k_maxpool_fwd<<<grid_for(n), TPB, 0, st>>>(y, argmax, x, C, H, W, OH, OW, k, stride, pad, n);
    return launched();
}

__global__ static void k_maxpool_bwd(float *dx, const float *dy, const int32_t *am, int H, int W,
                                     int OH, int OW, int k, int s, int pad, size_t n, int acc) {
    FOR_N(i, n) {
        int w = (int)(i % W), h = (int)((i / W) % H);
        size_t plane = i / ((size_t)H * W);
        const float *dyp = dy + plane * (size_t)OH * OW;
        const int32_t *amp = am + plane * (size_t)OH * OW;
        // output rows oh whose window covers h: oh s - pad <= h <= oh s - pad + k - 1
        int oh0 = (h + pad - k + 1 + s - 1) / s, oh1 = (h + pad) / s;
        int ow0 = (w + pad - k + 1 + s - 1) / s, ow1 = (w + pad) / s;
        if (h + pad - k + 1 < 0) oh0 = 0;
        if (w + pad - k + 1 < 0) ow0 = 0;
        if (oh1 > OH - 1) oh1 = OH - 1;
        if (ow1 > OW - 1) ow1 = OW - 1;
        float sum = 0.0f;
        int me = h * W + w;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++)
                if (amp[oh * OW + ow] == me) sum += dyp[oh * OW + ow];
        dx[i] = acc ? dx[i] + sum : sum;
    }
}
extern "C" int nn_cu_maxpool_bwd(cudaStream_t st, float *dx, const float *dy,
                                 const int32_t *argmax, int N, int C, int H, int W, int OH, int OW,
                                 int k, int stride, int pad, int acc) {
    size_t n = (size_t)N * C * H * W;
    k_maxpool_bwd<<<grid_for(n), TPB, 0, st>>>(dx, dy, argmax, H, W, OH, OW, k, stride, pad, n,
                                               acc);
    return launched();
}

// ------------------------------------------------------------------- GAP --
// one block per (n, c) plane, double sum in a fixed order
__global__ static void k_gap_fwd(float *y, const float *x, int HW) {
    __shared__ double sh[TPB];
    size_t plane = blockIdx.x;
    const float *xp = x + plane * (size_t)HW;
    double s = 0;
    for (int i = threadIdx.x; i < HW; i += TPB) s += xp[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) y[plane] = (float)(s / HW);
}
extern "C" int nn_cu_gap_fwd(cudaStream_t st, float *y, const float *x, int N, int C, int HW) {
    size_t planes = (size_t)N * C;
    if (planes == 0) return 0;
    // gridDim.x allows 2^31 - 1 blocks
    k_gap_fwd<<<(unsigned)planes, TPB, 0, st>>>(y, x, HW);
    return launched();
}

__global__ static void k_gap_bwd(float *dx, const float *dy, int HW, size_t n, int acc) {
    FOR_N(i, n) {
        float v = dy[i / HW] / (float)HW;
        dx[i] = acc ? dx[i] + v : v;
    }
}
extern "C" int nn_cu_gap_bwd(cudaStream_t st, float *dx, const float *dy, int N, int C, int HW,
                             int acc) {
    size_t n = (size_t)N * C * HW;
    k_gap_bwd<<<grid_for(n), TPB, 0, st>>>(dx, dy, HW, n, acc);
    return launched();
}

// Index of the first maximum of x[0..HW), the same in every thread of the
// block (TPB threads; each scans a stride, then a tree keeps the larger
// value, the lower index on ties).
__device__ static int block_argmax(const float *x, int HW, float *shv, int *shi) {
    int a = -1;
    float m = 0.0f;
    for (int i = threadIdx.x; i < HW; i += TPB)
        if (a < 0 || x[i] > m) m = x[i], a = i;
    shv[threadIdx.x] = m;
    shi[threadIdx.x] = a;
    __syncthreads();
    for (int s = TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            int t = threadIdx.x, u = t + s, at = shi[t], au = shi[u];
            if (au >= 0 && (at < 0 || shv[u] > shv[t] || (shv[u] == shv[t] && au < at)))
                shv[t] = shv[u], shi[t] = au;
        }
        __syncthreads();
    }
    int r = shi[0];
    __syncthreads();
    return r;
}

// one block per (n, c) plane
__global__ static void k_gpool_fwd(float *y, const float *x, int HW, float pmax) {
    __shared__ double sh[TPB];
    __shared__ float shv[TPB];
    __shared__ int shi[TPB];
    size_t plane = blockIdx.x;
    const float *xp = x + plane * (size_t)HW;
    double s = 0;
    for (int i = threadIdx.x; i < HW; i += TPB) s += xp[i];
    s = block_sum(s, sh);
    int a = block_argmax(xp, HW, shv, shi);
    if (threadIdx.x == 0) y[plane] = (1.0f - pmax) * (float)(s / HW) + pmax * xp[a];
}
extern "C" int nn_cu_gpool_fwd(cudaStream_t st, float *y, const float *x, int N, int C, int HW,
                               float pmax) {
    if (pmax == 0.0f) return nn_cu_gap_fwd(st, y, x, N, C, HW);
    size_t planes = (size_t)N * C;
    if (planes == 0) return 0;
    k_gpool_fwd<<<(unsigned)planes, TPB, 0, st>>>(y, x, HW, pmax);
    return launched();
}

__global__ static void k_gpool_bwd(float *dx, const float *dy, const float *x, int HW, float pmax,
                                   int acc) {
    __shared__ float shv[TPB];
    __shared__ int shi[TPB];
    size_t plane = blockIdx.x;
    int a = block_argmax(x + plane * (size_t)HW, HW, shv, shi);
    float g = dy[plane];
    float *d = dx + plane * (size_t)HW;
    for (int i = threadIdx.x; i < HW; i += TPB) {
        float v = (1.0f - pmax) * g / (float)HW + (i == a ? pmax * g : 0.0f);
        d[i] = acc ? d[i] + v : v;
    }
}
extern "C" int nn_cu_gpool_bwd(cudaStream_t st, float *dx, const float *dy, const float *x, int N,
                               int C, int HW, float pmax, int acc) {
    if (pmax == 0.0f) return nn_cu_gap_bwd(st, dx, dy, N, C, HW, acc);
    size_t planes = (size_t)N * C;
    if (planes == 0) return 0;
    k_gpool_bwd<<<(unsigned)planes, TPB, 0, st>>>(dx, dy, x, HW, pmax, acc);
    return launched();
}

// ---------------------------------------------------------------- linear --
__global__ static void k_bias_add(float *y, const float *b, int K, size_t n) {
    FOR_N(i, n) y[i] += b[i % K];
}
extern "C" int nn_cu_bias_add(cudaStream_t st, float *y, const float *b, int N, int K) {
    size_t n = (size_t)N * K;
    k_bias_add<<<grid_for(n), TPB, 0, st>>>(y, b, K, n);
    return launched();
}

__global__ static void k_bias_grad(float *db, const float *dy, int N, int K) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= K) return;
    double s = 0;
    for (int n = 0; n < N; n++) s += dy[(size_t)n * K + k];
    db[k] = (float)s;
}
extern "C" int nn_cu_bias_grad(cudaStream_t st, float *db, const float *dy, int N, int K) {
    k_bias_grad<<<(unsigned)((K + 127) / 128), 128, 0, st>>>(db, dy, N, K);
    return launched();
}

// ----------------------------------------------------------- conv helpers --
__global__ static void k_bias_act(float *y, const float *b, const float *z, int C, int HW,
                                  size_t n, int relu) {
    FOR_N(i, n) {
        float v = y[i] + b[(i / HW) % C];
        if (z) v += z[i];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}
extern "C" int nn_cu_bias_act(cudaStream_t st, float *y, const float *b, const float *z, int N,
                              int C, int HW, int relu) {
    size_t n = (size_t)N * C * HW;
    k_bias_act<<<grid_for(n), TPB, 0, st>>>(y, b, z, C, HW, n, relu);
    return launched();
}

__global__ static void k_fold(float *fw, float *fb, const float *w, const float *g,
                              const float *beta, const float *rm, const float *rv, size_t per,
                              size_t n, float eps, int OC) {
    FOR_N(i, n) {
        size_t o = i / per;
        double sc = g[o] / sqrt((double)rv[o] + eps);
        fw[i] = (float)(w[i] * sc);
        if (i % per == 0) fb[o] = (float)(beta[o] - rm[o] * sc);
    }
    (void)OC;
}
extern "C" int nn_cu_fold_bn(cudaStream_t st, float *fw, float *fb, const float *w, const float *g,
                             const float *beta, const float *rm, const float *rv, int OC,
                             size_t per, float eps) {
    size_t n = (size_t)OC * per;
    k_fold<<<grid_for(n), TPB, 0, st>>>(fw, fb, w, g, beta, rm, rv, per, n, eps, OC);
    return launched();
}

__global__ static void k_to_bf16(__nv_bfloat16 *d, const float *s, size_t n) {
    FOR_N(i, n) d[i] = __float2bfloat16_rn(s[i]);
}
extern "C" int nn_cu_to_bf16(cudaStream_t st, void *dst, const float *src, size_t n) {
    k_to_bf16<<<grid_for(n), TPB, 0, st>>>((__nv_bfloat16 *)dst, src, n);
    return launched();
}
__global__ static void k_from_bf16(float *d, const __nv_bfloat16 *s, size_t n, int acc) {
    FOR_N(i, n) {
        float v = __bfloat162float(s[i]);
        d[i] = acc ? d[i] + v : v;
    }
}
extern "C" int nn_cu_from_bf16(cudaStream_t st, float *dst, const void *src, size_t n, int acc) {
    k_from_bf16<<<grid_for(n), TPB, 0, st>>>(dst, (const __nv_bfloat16 *)src, n, acc);
    return launched();
}

// ------------------------------------------------------------------ loss --
__device__ static double softplus_d(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

// per block: partial loss sums; dlogits written elementwise
__global__ static void k_bce(double *part, float *dl, const float *x, const float *y,
                             const float *pw, double s, double g, int K, size_t n, size_t span) {
    __shared__ double sh[TPB];
    size_t j0 = blockIdx.x * span, j1 = j0 + span < n ? j0 + span : n;
    double acc = 0, scale = 1.0 / (double)n;
    for (size_t i = j0 + threadIdx.x; i < j1; i += TPB) {
        double v = x[i], t = y[i] * (1 - s) + s / 2, w = pw ? pw[i % K] : 1.0;
        double sg = 1.0 / (1.0 + exp(-v));
        if (g == 0) {
            acc += w * t * softplus_d(-v) + (1 - t) * softplus_d(v);
            dl[i] = (float)((w * t * (sg - 1) + (1 - t) * sg) * scale);
        } else { /* focal, as nn_ref_focal_* */
            double q = 1.0 / (1.0 + exp(v)), lp = -softplus_d(-v), lq = -softplus_d(v);
            double mq = pow(q, g), mp = pow(sg, g);
            acc += -w * t * mq * lp - (1 - t) * mp * lq;
            dl[i] = (float)((w * t * mq * (g * sg * lp - q) + (1 - t) * mp * (sg - g * q * lq)) * scale);
        }
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}
__global__ static void k_sum_partials(double *out, const double *part, int P, double div) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double s = 0;
    for (int p = 0; p < P; p++) s += part[p];
    *out = s / div;
}
extern "C" int nn_cu_bce(cudaStream_t st, double *loss, float *dlogits, const float *logits,
                         const float *y, const float *pos_weight, float smoothing, float gamma,
                         int N, int K, double *scratch) {
    size_t n = (size_t)N * K;
    int P = partials_of(n);
    size_t span = (n + P - 1) / P;
    k_bce<<<P, TPB, 0, st>>>(scratch, dlogits, logits, y, pos_weight, (double)smoothing,
                             (double)gamma, K, n, span);
    k_sum_partials<<<1, 1, 0, st>>>(loss, scratch, P, (double)n);
    return launched();
}

// ------------------------------------------------------ sumsq, optimizer --
__global__ static void k_sumsq(double *part, const float *g, size_t n, size_t span) {
    __shared__ double sh[TPB];
    size_t j0 = blockIdx.x * span, j1 = j0 + span < n ? j0 + span : n;
    double s = 0;
    for (size_t i = j0 + threadIdx.x; i < j1; i += TPB) s += (double)g[i] * g[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
extern "C" int nn_cu_sumsq(cudaStream_t st, double *out, const float *g, size_t n,
                           double *scratch) {
    int P = partials_of(n);
    size_t span = (n + P - 1) / P;
    k_sumsq<<<P, TPB, 0, st>>>(scratch, g, n, span);
    k_sum_partials<<<1, 1, 0, st>>>(out, scratch, P, 1.0);
    return launched();
}

__global__ static void k_sgd(float *p, const float *g, float *m1, size_t n, float lr, float wd,
                             float mom, float damp, int first, int nest, float scale) {
    FOR_N(i, n) {
        float d = g[i] * scale + wd * p[i];
        if (mom != 0.0f) {
            float b = first ? d : mom * m1[i] + damp * d;
            m1[i] = b;
            d = nest ? d + mom * b : b;
        }
        p[i] -= lr * d;
    }
}
extern "C" int nn_cu_sgd(cudaStream_t st, float *p, const float *g, float *m1, size_t n, float lr,
                         float wd, float mom, float damp1, int first, int nesterov, float scale) {
    k_sgd<<<grid_for(n), TPB, 0, st>>>(p, g, m1, n, lr, wd, mom, damp1, first, nesterov, scale);
    return launched();
}

__global__ static void k_adam(float *p, const float *g, float *m1, float *m2, size_t n, float b1,
                              float b2, float eps, float step, float rbc2, float l2, float keep,
                              float scale) {
    FOR_N(i, n) {
        float pi = p[i] * keep;
        float d = g[i] * scale + l2 * p[i];
        float m = b1 * m1[i] + (1.0f - b1) * d;
        float v = b2 * m2[i] + (1.0f - b2) * d * d;
        m1[i] = m;
        m2[i] = v;
        p[i] = pi - step * m / (sqrtf(v) * rbc2 + eps);
    }
}
extern "C" int nn_cu_adam(cudaStream_t st, float *p, const float *g, float *m1, float *m2,
                          size_t n, float b1, float b2, float eps, float step, float rbc2,
                          float l2, float keep, float scale) {
    k_adam<<<grid_for(n), TPB, 0, st>>>(p, g, m1, m2, n, b1, b2, eps, step, rbc2, l2, keep, scale);
    return launched();
}

// ------------------------------------------------------------ u8 batches --
// The dihedral element k of kernels/cpu/augment.c (R^(k&3) o H^(k>>2)) as
// its forward integer map; the source of output pixel (x, y) is A^T (q - t).
struct imap { int a, b, c, d, tx, ty; };
__device__ static imap dihedral_forward(int k, int h, int w) {
    imap t = {1, 0, 0, 1, 0, 0};
    int cw = w, ch = h;
    if (k & 4) t = imap{-t.a, -t.b, t.c, t.d, (cw - 1) - t.tx, t.ty};
    for (int i = 0; i < (k & 3); i++) {
        imap n = {t.c, t.d, -t.a, -t.b, t.ty, (cw - 1) - t.tx};
        t = n;
        int s = cw;
        cw = ch;
        ch = s;
    }
    return t;
}

__global__ static void k_u8_norm(float *x, const uint8_t *u8, const uint8_t *flags,
                                 const float *mean, const float *sd, int C, int H, int W,
                                 size_t n) {
    FOR_N(i, n) {
        // output [img, c, y, x]; with odd k the caller guarantees H == W
        int ox = (int)(i % W), oy = (int)((i / W) % H), c = (int)((i / ((size_t)W * H)) % C);
        size_t img = i / ((size_t)W * H * C);
        int k = flags ? flags[img] & 7 : 0, sx = ox, sy = oy;
        if (k) {
            imap f = dihedral_forward(k, H, W);
            int qx = ox - f.tx, qy = oy - f.ty;
            sx = f.a * qx + f.c * qy;
            sy = f.b * qx + f.d * qy;
        }
        if (sx < 0 || sx >= W || sy < 0 || sy >= H) { // an odd element on a non-square image
            x[i] = NAN;
            continue;
        }
        float t = (float)u8[((img * C + c) * H + sy) * W + sx] / 255.0f;
        x[i] = (t - mean[c]) / sd[c];
    }
}
extern "C" int nn_cu_u8_normalize(cudaStream_t st, float *x, const uint8_t *u8,
                                  const uint8_t *flags, const float *mean, const float *std,
                                  int N, int C, int H, int W) {
    size_t n = (size_t)N * C * H * W;
    k_u8_norm<<<grid_for(n), TPB, 0, st>>>(x, u8, flags, mean, std, C, H, W, n);
    return launched();
}
