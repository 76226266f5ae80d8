/* mixup.c -- batch mixup for the train stage (see mixup.h). */
#include "mixup.h"

#include <math.h>
#include <string.h>

/* Standard normal by Box-Muller (u1 in (0, 1]). */
static double normal(lm_rng *r) {
    double u1 = 1.0 - lm_rng_uniform(r), u2 = lm_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Gamma(a, 1), a > 0: Marsaglia & Tsang (2000); a < 1 boosted by U^(1/a). */
static double gamma_draw(lm_rng *r, double a) {
    double boost = 1.0;
    if (a < 1.0) {
        boost = pow(1.0 - lm_rng_uniform(r), 1.0 / a);
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double z = normal(r), v = 1.0 + c * z;
        if (v <= 0) continue;
        v = v * v * v;
        double u = 1.0 - lm_rng_uniform(r);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v)) return d * v * boost;
    }
}

double lm_beta_sym(lm_rng *r, double a) {
    double g1 = gamma_draw(r, a), g2 = gamma_draw(r, a);
    double s = g1 + g2;
    return s > 0 ? g1 / s : 0.5; /* both underflow to 0 only for tiny a */
}

double lm_mixup_batch(const float *x, const float *y, int n, size_t chw, int k, double alpha, uint64_t seed,
                      int64_t epoch, int64_t step, float *out_x, float *out_y, uint32_t *perm) {
    if (n < 2) {
        memcpy(out_x, x, (size_t)(n > 0 ? n : 0) * chw * sizeof *x);
        memcpy(out_y, y, (size_t)(n > 0 ? n : 0) * (size_t)k * sizeof *y);
        return 1.0;
    }
    lm_rng r;
    lm_rng_init(&r, seed, LM_RNG_MIXUP, (uint64_t)epoch, (uint64_t)step);
    double lam = lm_beta_sym(&r, alpha);
    for (int i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)lm_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    float a = (float)lam, b = (float)(1.0 - lam);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * chw, *xj = x + (size_t)perm[i] * chw;
        float *o = out_x + (size_t)i * chw;
        for (size_t p = 0; p < chw; p++) o[p] = a * xi[p] + b * xj[p];
        for (int c = 0; c < k; c++) out_y[i * k + c] = a * y[i * k + c] + b * y[(int)perm[i] * k + c];
    }
    return lam;
}
