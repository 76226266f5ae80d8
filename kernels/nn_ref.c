/* nn_ref.c -- see nn_ref.h.  Plain loops, double precision, no tricks. */
#include "nn_ref.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ conv -- */
void nn_ref_conv_forward(double *out, const double *in, const double *w,
                         const double *bias, int N, int IC, int H, int W, int OC,
                         int k, int stride, int pad) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int ic = 0; ic < IC; ic++)
                        for (int kh = 0; kh < k; kh++) {
                            int ih = oh * stride - pad + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int kw = 0; kw < k; kw++) {
                                int iw = ow * stride - pad + kw;
                                if (iw < 0 || iw >= W) continue;
                                s += in[((size_t)(n * IC + ic) * H + ih) * W + iw] *
                                     w[((size_t)(oc * IC + ic) * k + kh) * k + kw];
                            }
                        }
                    out[((size_t)(n * OC + oc) * OH + oh) * OW + ow] = s;
                }
}

void nn_ref_conv_backward(double *din, double *dw, double *dbias, const double *dout,
                          const double *in, const double *w, int N, int IC, int H,
                          int W, int OC, int k, int stride, int pad) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    if (din) memset(din, 0, sizeof(double) * (size_t)N * IC * H * W);
    if (dw) memset(dw, 0, sizeof(double) * (size_t)OC * IC * k * k);
    if (dbias) memset(dbias, 0, sizeof(double) * (size_t)OC);
    for (int n = 0; n < N; n++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double g = dout[((size_t)(n * OC + oc) * OH + oh) * OW + ow];
                    if (dbias) dbias[oc] += g;
                    for (int ic = 0; ic < IC; ic++)
                        for (int kh = 0; kh < k; kh++) {
                            int ih = oh * stride - pad + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int kw = 0; kw < k; kw++) {
                                int iw = ow * stride - pad + kw;
                                if (iw < 0 || iw >= W) continue;
                                size_t ii = ((size_t)(n * IC + ic) * H + ih) * W + iw;
                                size_t wi = ((size_t)(oc * IC + ic) * k + kh) * k + kw;
                                if (din) din[ii] += g * w[wi];
                                if (dw) dw[wi] += g * in[ii];
                            }
                        }
                }
}

/* ------------------------------------------------------------ batch norm -- */
void nn_ref_bn_forward_train(double *out, double *mean, double *var, const double *in,
                             const double *gamma, const double *beta, int N, int C,
                             int HW, double eps) {
    double cnt = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) s += in[((size_t)n * C + c) * HW + i];
        double m = s / cnt;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                double d = in[((size_t)n * C + c) * HW + i] - m;
                s2 += d * d;
            }
        double v = s2 / cnt, inv = 1.0 / sqrt(v + eps);
        mean[c] = m;
        var[c] = v;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)n * C + c) * HW + i;
                out[j] = gamma[c] * (in[j] - m) * inv + beta[c];
            }
    }
}

void nn_ref_bn_update_running(double *run_mean, double *run_var, const double *mean,
                              const double *var, int C, int n, double momentum) {
    double corr = n > 1 ? (double)n / (n - 1) : 1.0;
    for (int c = 0; c < C; c++) {
        run_mean[c] = (1 - momentum) * run_mean[c] + momentum * mean[c];
        run_var[c] = (1 - momentum) * run_var[c] + momentum * var[c] * corr;
    }
}

void nn_ref_bn_forward_eval(double *out, const double *in, const double *gamma,
                            const double *beta, const double *run_mean,
                            const double *run_var, int N, int C, int HW, double eps) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double inv = 1.0 / sqrt(run_var[c] + eps);
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)n * C + c) * HW + i;
                out[j] = gamma[c] * (in[j] - run_mean[c]) * inv + beta[c];
            }
        }
}

void nn_ref_bn_backward(double *din, double *dgamma, double *dbeta, const double *dout,
                        const double *in, const double *mean, const double *var,
                        const double *gamma, int N, int C, int HW, double eps) {
    double cnt = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double inv = 1.0 / sqrt(var[c] + eps), sg = 0, sgx = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)n * C + c) * HW + i;
                sg += dout[j];
                sgx += dout[j] * (in[j] - mean[c]) * inv;
            }
        dbeta[c] = sg;
        dgamma[c] = sgx;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)n * C + c) * HW + i;
                double xh = (in[j] - mean[c]) * inv;
                din[j] = gamma[c] * inv / cnt * (cnt * dout[j] - sg - xh * sgx);
            }
    }
}

/* ------------------------------------------------------------ relu -- */
void nn_ref_relu_forward(double *out, const double *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0 ? in[i] : 0.0;
}

void nn_ref_relu_backward(double *din, const double *dout, const double *out, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] = out[i] > 0 ? dout[i] : 0.0;
}

/* ------------------------------------------------------------ max pool -- */
void nn_ref_maxpool_forward(double *out, int32_t *argmax, const double *in, int N, int C,
                            int H, int W, int k, int stride, int pad) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    for (int p = 0; p < N * C; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double best = -INFINITY;
                int32_t at = -1;
                for (int kh = 0; kh < k; kh++) {
                    int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < k; kw++) {
                        int iw = ow * stride - pad + kw;
                        if (iw < 0 || iw >= W) continue;
                        double v = in[((size_t)p * H + ih) * W + iw];
                        if (v > best || at < 0) {
                            best = v;
                            at = ih * W + iw;
                        }
                    }
                }
                size_t o = ((size_t)p * OH + oh) * OW + ow;
                out[o] = best;
                argmax[o] = at;
            }
}

void nn_ref_maxpool_backward(double *din, const double *dout, const int32_t *argmax, int N,
                             int C, int H, int W, int OH, int OW) {
    memset(din, 0, sizeof(double) * (size_t)N * C * H * W);
    for (int p = 0; p < N * C; p++)
        for (int o = 0; o < OH * OW; o++)
            din[(size_t)p * H * W + argmax[(size_t)p * OH * OW + o]] +=
                dout[(size_t)p * OH * OW + o];
}

/* ------------------------------------------------------------ gap -- */
void nn_ref_gap_forward(double *out, const double *in, int N, int C, int HW) {
    for (int p = 0; p < N * C; p++) {
        double s = 0;
        for (int i = 0; i < HW; i++) s += in[(size_t)p * HW + i];
        out[p] = s / HW;
    }
}

void nn_ref_gap_backward(double *din, const double *dout, int N, int C, int HW) {
    for (int p = 0; p < N * C; p++)
        for (int i = 0; i < HW; i++) din[(size_t)p * HW + i] = dout[p] / HW;
}

/* index of the first maximum of x[0..n) */
static int first_max(const double *x, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[a]) a = i;
    return a;
}

void nn_ref_gpool_forward(double *out, const double *in, int N, int C, int HW, double pmax) {
    nn_ref_gap_forward(out, in, N, C, HW);
    if (pmax == 0.0) return;
    for (int p = 0; p < N * C; p++) {
        const double *x = in + (size_t)p * HW;
        out[p] = (1.0 - pmax) * out[p] + pmax * x[first_max(x, HW)];
    }
}

void nn_ref_gpool_backward(double *din, const double *dout, const double *in, int N, int C,
                           int HW, double pmax) {
    nn_ref_gap_backward(din, dout, N, C, HW);
    if (pmax == 0.0) return;
    for (int p = 0; p < N * C; p++) {
        double *d = din + (size_t)p * HW;
        for (int i = 0; i < HW; i++) d[i] *= 1.0 - pmax;
        d[first_max(in + (size_t)p * HW, HW)] += pmax * dout[p];
    }
}

/* ------------------------------------------------------------ linear -- */
void nn_ref_linear_forward(double *out, const double *in, const double *w, const double *b,
                           int N, int C, int K) {
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            double s = b ? b[k] : 0.0;
            for (int c = 0; c < C; c++) s += in[(size_t)n * C + c] * w[(size_t)k * C + c];
            out[(size_t)n * K + k] = s;
        }
}

void nn_ref_linear_backward(double *din, double *dw, double *db, const double *dout,
                            const double *in, const double *w, int N, int C, int K) {
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dout[(size_t)n * K + k];
        if (db) db[k] = s;
        for (int c = 0; c < C; c++) {
            double g = 0;
            for (int n = 0; n < N; n++) g += dout[(size_t)n * K + k] * in[(size_t)n * C + c];
            dw[(size_t)k * C + c] = g;
        }
    }
    if (din)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double g = 0;
                for (int k = 0; k < K; k++) g += dout[(size_t)n * K + k] * w[(size_t)k * C + c];
                din[(size_t)n * C + c] = g;
            }
}

/* ------------------------------------------------------------ dropout / add -- */
void nn_ref_dropout_forward(double *out, const double *in, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] * mask[i];
}

void nn_ref_dropout_backward(double *din, const double *dout, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] = dout[i] * mask[i];
}

void nn_ref_add_forward(double *out, const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void nn_ref_add_backward(double *da, double *db, const double *dout, size_t n) {
    for (size_t i = 0; i < n; i++) da[i] = db[i] = dout[i];
}

/* ------------------------------------------------------------ loss -- */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

double nn_ref_bce_forward(const double *logits, const float *y, const float *pos_weight,
                          double smoothing, int N, int K) {
    return nn_ref_focal_forward(logits, y, pos_weight, smoothing, 0, N, K);
}

void nn_ref_bce_backward(double *dlogits, const double *logits, const float *y,
                         const float *pos_weight, double smoothing, int N, int K) {
    nn_ref_focal_backward(dlogits, logits, y, pos_weight, smoothing, 0, N, K);
}

/* g = 0 takes the BCE's own expressions (no pow, no extra rounding);
 * log sigmoid(x) = -softplus(-x), 1 - sigmoid(x) = sigmoid(-x). */
double nn_ref_focal_forward(const double *logits, const float *y, const float *pos_weight,
                            double smoothing, double gamma, int N, int K) {
    double s = 0;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            double x = logits[(size_t)n * K + k];
            double t = y[(size_t)n * K + k] * (1 - smoothing) + smoothing / 2;
            double pw = pos_weight ? pos_weight[k] : 1.0;
            if (gamma == 0) {
                s += pw * t * softplus(-x) + (1 - t) * softplus(x);
            } else {
                double p = 1.0 / (1.0 + exp(-x)), q = 1.0 / (1.0 + exp(x));
                s += pw * t * pow(q, gamma) * softplus(-x) + (1 - t) * pow(p, gamma) * softplus(x);
            }
        }
    return s / ((double)N * K);
}

void nn_ref_focal_backward(double *dlogits, const double *logits, const float *y,
                           const float *pos_weight, double smoothing, double gamma, int N, int K) {
    double scale = 1.0 / ((double)N * K);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)n * K + k;
            double x = logits[i], sg = 1.0 / (1.0 + exp(-x));
            double t = y[i] * (1 - smoothing) + smoothing / 2;
            double pw = pos_weight ? pos_weight[k] : 1.0;
            if (gamma == 0) {
                dlogits[i] = (pw * t * (sg - 1) + (1 - t) * sg) * scale;
            } else {
                double q = 1.0 / (1.0 + exp(x)), logp = -softplus(-x), logq = -softplus(x);
                double d = pw * t * pow(q, gamma) * (gamma * sg * logp - q) +
                           (1 - t) * pow(sg, gamma) * (sg - gamma * q * logq);
                dlogits[i] = d * scale;
            }
        }
}
