/* nn_optim.c -- see nn_optim.h. */
#include "nn_optim.h"

#include <math.h>

int nn_optim_validate(const nn_optim_cfg *c, lm_err *err) {
    if (!(c->lr >= 0)) return lm_fail(err, LUMEN_EINVAL, "optimizer.lr: must be >= 0, got %g", (double)c->lr);
    if (!(c->weight_decay >= 0))
        return lm_fail(err, LUMEN_EINVAL, "optimizer.weight_decay: must be >= 0, got %g",
                       (double)c->weight_decay);
    switch (c->kind) {
    case NN_OPT_SGD:
        if (!(c->momentum >= 0 && c->momentum <= 1))
            return lm_fail(err, LUMEN_EINVAL, "optimizer.momentum: must be in [0, 1], got %g",
                           (double)c->momentum);
        if (!(c->dampening >= 0 && c->dampening <= 1))
            return lm_fail(err, LUMEN_EINVAL, "optimizer.dampening: must be in [0, 1], got %g",
                           (double)c->dampening);
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return lm_fail(err, LUMEN_EINVAL,
                           "optimizer.nesterov: needs momentum > 0 and dampening 0");
        return LUMEN_OK;
    case NN_OPT_ADAM:
    case NN_OPT_ADAMW:
        if (!(c->beta1 >= 0 && c->beta1 < 1))
            return lm_fail(err, LUMEN_EINVAL, "optimizer.beta1: must be in [0, 1), got %g",
                           (double)c->beta1);
        if (!(c->beta2 >= 0 && c->beta2 < 1))
            return lm_fail(err, LUMEN_EINVAL, "optimizer.beta2: must be in [0, 1), got %g",
                           (double)c->beta2);
        if (!(c->eps > 0))
            return lm_fail(err, LUMEN_EINVAL, "optimizer.eps: must be > 0, got %g", (double)c->eps);
        return LUMEN_OK;
    }
    return lm_fail(err, LUMEN_EINVAL, "optimizer.kind: unknown (%d)", (int)c->kind);
}

void nn_optim_update(const nn_optim_cfg *c, float *p, const float *g, float *m1, float *m2,
                     size_t n, int64_t t, float grad_scale) {
    const float lr = c->lr, wd = c->weight_decay;
    if (c->kind == NN_OPT_SGD) {
        const float mom = c->momentum, damp = 1.0f - c->dampening;
        const int first = t <= 1, nest = c->nesterov;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float d = g[i] * grad_scale + wd * p[i];
            if (mom != 0.0f) {
                float b = first ? d : mom * m1[i] + damp * d;
                m1[i] = b;
                d = nest ? d + mom * b : b;
            }
            p[i] -= lr * d;
        }
        return;
    }
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    const float step = (float)(lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2));
    const float l2 = c->kind == NN_OPT_ADAM ? wd : 0.0f;
    const float keep = c->kind == NN_OPT_ADAMW ? 1.0f - lr * wd : 1.0f;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * keep;
        float d = g[i] * grad_scale + l2 * p[i];
        float m = b1 * m1[i] + (1.0f - b1) * d;
        float v = b2 * m2[i] + (1.0f - b2) * d * d;
        m1[i] = m;
        m2[i] = v;
        p[i] = pi - step * m / (sqrtf(v) * rbc2 + eps);
    }
}

double nn_sumsq(const float *g, size_t n) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}
