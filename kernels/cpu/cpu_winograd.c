/* cpu_winograd.c -- see cpu_winograd.h. */
#include "cpu_winograd.h"

#include <string.h>

#include <omp.h>

#ifdef __AVX__
#include <immintrin.h>
#endif

typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

static inline v8f set1(float f) {
    v8f v = {f, f, f, f, f, f, f, f};
    return v;
}

/* acc + a * b in one rounding where the target has FMA (-std=c11 turns off
 * GCC's automatic contraction, so the fallback rounds twice -- still
 * deterministic). */
#if defined(__FMA__) && defined(__AVX__)
static inline v8f fmav(v8f acc, v8f a, v8f b) {
    return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)acc);
}
static inline v8f relu8(v8f a) { return (v8f)_mm256_max_ps((__m256)a, _mm256_setzero_ps()); }
#else
static inline v8f fmav(v8f acc, v8f a, v8f b) { return acc + a * b; }
static inline v8f relu8(v8f a) {
    for (int i = 0; i < 8; i++) a[i] = a[i] > 0.0f ? a[i] : 0.0f;
    return a;
}
#endif
/* acc + a * c, c a scalar constant */
static inline v8f fmac(v8f acc, v8f a, float c) { return fmav(acc, a, set1(c)); }

#define INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------- transforms -- */
/* The 1-D transforms, applied to rows then columns.  F(4x4, 3x3) with the
 * points 0, 1, -1, 2, -2 (Lavin & Gray):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 *          0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
 *          1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * F(2x2, 3x3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], A^T = [1 1 1 0; 0 1 -1 -1]. */
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

INLINE void bt4(v8f *o, const v8f *d) {
    v8f d42 = d[4] - d[2], d13 = d[1] - d[3];
    o[0] = fmac(fmac(d[4], d[0], 4.0f), d[2], -5.0f);
    o[1] = fmac(d[3] + d[4], d[1] + d[2], -4.0f);
    o[2] = fmac(d[4] - d[3], d[1] - d[2], 4.0f);
    o[3] = fmac(d42, d13, -2.0f);
    o[4] = fmac(d42, d13, 2.0f);
    o[5] = fmac(fmac(d[5], d[1], 4.0f), d[3], -5.0f);
}

INLINE void at4(v8f *o, const v8f *m) {
    v8f s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = m[0] + s12 + s34;
    o[1] = fmac(d12, d34, 2.0f);
    o[2] = fmac(s12, s34, 4.0f);
    o[3] = fmac(d12 + m[5], d34, 8.0f);
}

INLINE void bt2(v8f *o, const v8f *d) {
    o[0] = d[0] - d[2];
    o[1] = d[1] + d[2];
    o[2] = d[2] - d[1];
    o[3] = d[1] - d[3];
}

INLINE void at2(v8f *o, const v8f *m) {
    o[0] = m[0] + m[1] + m[2];
    o[1] = m[1] - m[2] - m[3];
}

/* Input tile at (h0, w0) (top-left, may be outside: zeros there) of one
 * 8-channel plane xp [H][W][8] -> v[p * ps], p = i * alpha + j. */
INLINE void in_tile(int m, const float *xp, int H, int W, int h0, int w0, float *v, size_t ps) {
    const int A = m + 2;
    v8f t[6][6];
    const v8f z = set1(0.0f);
    int inside = h0 >= 0 && w0 >= 0 && h0 + A <= H && w0 + A <= W;
#pragma GCC unroll 6
    for (int i = 0; i < A; i++) {
        v8f d[6];
        int h = h0 + i;
#pragma GCC unroll 6
        for (int j = 0; j < A; j++) {
            int w = w0 + j;
            d[j] = inside || (h >= 0 && h < H && w >= 0 && w < W)
                       ? load8(xp + ((size_t)h * W + w) * 8)
                       : z;
        }
        if (m == 4) bt4(t[i], d);
        else bt2(t[i], d);
    }
#pragma GCC unroll 6
    for (int j = 0; j < A; j++) {
        v8f d[6], o[6];
#pragma GCC unroll 6
        for (int i = 0; i < A; i++) d[i] = t[i][j];
        if (m == 4) bt4(o, d);
        else bt2(o, d);
#pragma GCC unroll 6
        for (int i = 0; i < A; i++) store8(v + (size_t)(i * A + j) * ps, o[i]);
    }
}

/* Output tile: mp[p * ps] (p = i * alpha + j) -> the m x m pixels at (h0,
 * w0) of the 8-channel plane yp that lie inside H x W. */
INLINE void out_tile(int m, const float *mp, size_t ps, float *yp, int H, int W, int h0, int w0,
                     v8f bias, int flags) {
    const int A = m + 2;
    v8f t[6][4];
#pragma GCC unroll 6
    for (int i = 0; i < A; i++) {
        v8f d[6];
#pragma GCC unroll 6
        for (int j = 0; j < A; j++) d[j] = load8(mp + (size_t)(i * A + j) * ps);
        if (m == 4) at4(t[i], d);
        else at2(t[i], d);
    }
#pragma GCC unroll 4
    for (int j = 0; j < m; j++) {
        v8f d[6], o[4];
#pragma GCC unroll 6
        for (int i = 0; i < A; i++) d[i] = t[i][j];
        if (m == 4) at4(o, d);
        else at2(o, d);
        int w = w0 + j;
        if (w >= W) continue;
#pragma GCC unroll 4
        for (int i = 0; i < m; i++) {
            int h = h0 + i;
            if (h >= H) continue;
            float *py = yp + ((size_t)h * W + w) * 8;
            v8f r = o[i] + bias;
            if (flags & NN_WINO_ACCUM) r += load8(py);
            if (flags & NN_WINO_RELU) r = relu8(r);
            store8(py, r);
        }
    }
}

/* ------------------------------------------------------------- weights -- */
size_t nn_wino_weights_floats(int m, int IC, int OC) {
    size_t A = (size_t)m + 2;
    return A * A * (size_t)((OC + 15) / 16) * 16 * (size_t)((IC + 7) / 8) * 8;
}

void nn_wino_weights(float *U, const float *w, int m, int IC, int OC, int transposed) {
    const int A = m + 2, NJ = (OC + 15) / 16, ICp = (IC + 7) / 8 * 8;
    const double(*G)[3] = m == 4 ? G4 : G2;
    memset(U, 0, sizeof(float) * nn_wino_weights_floats(m, IC, OC));
#pragma omp parallel for collapse(2) schedule(static)
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++) {
            double g[9];
            if (transposed) { /* forward weight [ic][oc], rotated by 180 degrees */
                const float *f = w + ((size_t)ic * OC + oc) * 9;
                for (int k = 0; k < 9; k++) g[k] = f[8 - k];
            } else {
                const float *f = w + ((size_t)oc * IC + ic) * 9;
                for (int k = 0; k < 9; k++) g[k] = f[k];
            }
            double t[6][3]; /* G g */
            for (int i = 0; i < A; i++)
                for (int c = 0; c < 3; c++)
                    t[i][c] = G[i][0] * g[c] + G[i][1] * g[3 + c] + G[i][2] * g[6 + c];
            for (int i = 0; i < A; i++)
                for (int j = 0; j < A; j++) {
                    double u = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                    size_t p = (size_t)(i * A + j);
                    U[((p * NJ + oc / 16) * ICp + ic) * 16 + oc % 16] = (float)u;
                }
        }
}

/* ---------------------------------------------------------------- gemm -- */
/* c[6][16] (row stride ldc) = a[6][K] (row stride lda) * b[K][16]. */
static void gemm6x16(const float *restrict a, size_t lda, const float *restrict b,
                     float *restrict c, size_t ldc, int K) {
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda,
                *a5 = a + 5 * lda;
    v8f z = set1(0.0f);
    v8f c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z,
        c41 = z, c50 = z, c51 = z;
#pragma GCC unroll 4
    for (int k = 0; k < K; k++) {
        v8f b0 = load8(b + (size_t)k * 16), b1 = load8(b + (size_t)k * 16 + 8), s;
        s = set1(a0[k]);
        c00 = fmav(c00, s, b0);
        c01 = fmav(c01, s, b1);
        s = set1(a1[k]);
        c10 = fmav(c10, s, b0);
        c11 = fmav(c11, s, b1);
        s = set1(a2[k]);
        c20 = fmav(c20, s, b0);
        c21 = fmav(c21, s, b1);
        s = set1(a3[k]);
        c30 = fmav(c30, s, b0);
        c31 = fmav(c31, s, b1);
        s = set1(a4[k]);
        c40 = fmav(c40, s, b0);
        c41 = fmav(c41, s, b1);
        s = set1(a5[k]);
        c50 = fmav(c50, s, b0);
        c51 = fmav(c51, s, b1);
    }
    store8(c, c00);
    store8(c + 8, c01);
    store8(c + ldc, c10);
    store8(c + ldc + 8, c11);
    store8(c + 2 * ldc, c20);
    store8(c + 2 * ldc + 8, c21);
    store8(c + 3 * ldc, c30);
    store8(c + 3 * ldc + 8, c31);
    store8(c + 4 * ldc, c40);
    store8(c + 4 * ldc + 8, c41);
    store8(c + 5 * ldc, c50);
    store8(c + 5 * ldc + 8, c51);
}

/* ---------------------------------------------------------------- conv -- */
size_t nn_wino_scratch_floats(int m, int IC, int OC, int tb) {
    size_t A = (size_t)m + 2;
    size_t ICp = (size_t)(IC + 7) / 8 * 8, OC16 = (size_t)(OC + 15) / 16 * 16;
    return A * A * (size_t)tb * (ICp + OC16);
}

int nn_wino_block(int m, int IC, int OC, int N, int H, int W, int threads) {
    long T = (long)N * ((H + m - 1) / m) * ((W + m - 1) / m);
    size_t per = nn_wino_scratch_floats(m, IC, OC, 1) * sizeof(float);
    /* V + M of a block within ~1 MiB (L2 + a slice of L3), at least 4 row
     * groups so the weights streamed per block are reused enough */
    long tb = (long)((1u << 20) / per) / 6 * 6;
    if (tb < 24) tb = 24;
    if (tb > 96) tb = 96;
    if (threads < 1) threads = 1;
    long nblk = (T + tb - 1) / tb;
    nblk = (nblk + threads - 1) / threads * threads;
    tb = (T + nblk - 1) / nblk;
    tb = (tb + 5) / 6 * 6;
    return (int)(tb < 6 ? 6 : tb);
}

#define WINO_BODY(M_)                                                                        \
    do {                                                                                     \
        for (int r = 0; r < nt; r++) {                                                       \
            long t = t0 + r;                                                                 \
            int n = (int)(t / tpi), q = (int)(t % tpi), ty = q / tw, tx = q % tw;            \
            for (int cb = 0; cb < ICb; cb++)                                                 \
                in_tile(M_, x + ((size_t)n * ICb + cb) * HW8, H, W, ty * M_ - 1, tx * M_ - 1,  \
                        V + (size_t)r * ICp + cb * 8, (size_t)tb * ICp);                     \
        }                                                                                    \
        for (int p = 0; p < P; p++)                                                          \
            for (int j = 0; j < NJ; j++)                                                     \
                for (int g = 0; g < ng; g++)                                                 \
                    gemm6x16(V + ((size_t)p * tb + g * 6) * ICp, ICp,                         \
                             U + ((size_t)p * NJ + j) * ICp * 16,                            \
                             Mb + ((size_t)p * tb + g * 6) * OC16 + j * 16, OC16, ICp);      \
        for (int r = 0; r < nt; r++) {                                                       \
            long t = t0 + r;                                                                 \
            int n = (int)(t / tpi), q = (int)(t % tpi), ty = q / tw, tx = q % tw;            \
            for (int ob = 0; ob < OCb; ob++)                                                 \
                out_tile(M_, Mb + (size_t)r * OC16 + ob * 8, (size_t)tb * OC16,              \
                         y + ((size_t)n * OCb + ob) * HW8, H, W, ty * M_, tx * M_,           \
                         load8(bias + ob * 8), flags);                                       \
        }                                                                                    \
    } while (0)

void nn_wino_conv(float *y, const float *x, const float *U, const float *bias, int N, int IC,
                  int H, int W, int OC, int m, int tb, int flags, float *scratch, int threads) {
    const int A = m + 2, P = A * A;
    const int ICb = (IC + 7) / 8, ICp = ICb * 8, OCb = (OC + 7) / 8, NJ = (OC + 15) / 16,
              OC16 = NJ * 16;
    const int th = (H + m - 1) / m, tw = (W + m - 1) / m, tpi = th * tw;
    const long T = (long)N * tpi, nblk = (T + tb - 1) / tb;
    const size_t HW8 = (size_t)H * W * 8, per = nn_wino_scratch_floats(m, IC, OC, tb);
#pragma omp parallel num_threads(threads)
    {
        float *V = scratch + per * (size_t)omp_get_thread_num();
        float *Mb = V + (size_t)P * tb * ICp;
#pragma omp for schedule(static)
        for (long b = 0; b < nblk; b++) {
            long t0 = b * tb;
            int nt = (int)(T - t0 < tb ? T - t0 : tb), ng = (nt + 5) / 6;
            /* rows past the last tile of a partial block: zeros (not stale
             * values that could be denormals or NaN) */
            if (nt < ng * 6)
                for (int p = 0; p < P; p++)
                    memset(V + ((size_t)p * tb + nt) * ICp, 0,
                           sizeof(float) * (size_t)(ng * 6 - nt) * ICp);
            if (m == 4) WINO_BODY(4);
            else WINO_BODY(2);
        }
    }
}
