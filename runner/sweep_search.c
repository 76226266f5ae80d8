/* sweep_search.c -- see sweep_search.h. */
#include "sweep_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define TPE_STREAM (UINT64_C(1) << 32) /* stream offset of TPE draws per dimension */
#define MAX_EXACT 9007199254740992.0   /* 2^53: larger INT bounds lose integers */

/* ------------------------------------------------------------ the space -- */

int rn_dims_check(const rn_dim *d, size_t nd, lm_err *e) {
    for (size_t j = 0; j < nd; j++) {
        const rn_dim *p = &d[j];
        switch (p->kind) {
        case RN_DIM_CHOICE:
            if (p->n_choices < 1)
                return lm_fail(e, LUMEN_EINVAL, "dimension %zu: a choice needs at least one alternative", j);
            break;
        case RN_DIM_UNIFORM:
        case RN_DIM_LOGUNIFORM:
            if (!isfinite(p->lo) || !isfinite(p->hi) || !(p->lo < p->hi))
                return lm_fail(e, LUMEN_EINVAL, "dimension %zu: needs finite lo < hi (got %g, %g)", j, p->lo,
                               p->hi);
            if (p->kind == RN_DIM_LOGUNIFORM && !(p->lo > 0))
                return lm_fail(e, LUMEN_EINVAL, "dimension %zu: a log-uniform range needs lo > 0 (got %g)", j,
                               p->lo);
            break;
        case RN_DIM_INT:
            if (!isfinite(p->lo) || !isfinite(p->hi) || p->lo != floor(p->lo) || p->hi != floor(p->hi) ||
                fabs(p->lo) > MAX_EXACT || fabs(p->hi) > MAX_EXACT)
                return lm_fail(e, LUMEN_EINVAL, "dimension %zu: integer bounds must be integers within 2^53 "
                               "(got %g, %g)", j, p->lo, p->hi);
            if (!(p->lo <= p->hi))
                return lm_fail(e, LUMEN_EINVAL, "dimension %zu: needs lo <= hi (got %g, %g)", j, p->lo, p->hi);
            break;
        default:
            return lm_fail(e, LUMEN_EINVAL, "dimension %zu: unknown kind %d", j, p->kind);
        }
    }
    return 0;
}

/* ----------------------------------------------------------------- grid -- */

size_t rn_grid_size(const rn_dim *d, size_t nd) {
    size_t n = 1;
    for (size_t j = 0; j < nd; j++) {
        size_t c = d[j].n_choices;
        if (d[j].kind != RN_DIM_CHOICE || c == 0)
            return 0;
        if (n > SIZE_MAX / c)
            return 0;
        n *= c;
    }
    return n;
}

void rn_grid_point(const rn_dim *d, size_t nd, size_t index, double *x) {
    for (size_t j = nd; j-- > 0;) {
        size_t c = d[j].n_choices ? d[j].n_choices : 1;
        x[j] = (double)(index % c);
        index /= c;
    }
}

/* --------------------------------------------------------------- random -- */

/* v clamped into [lo, hi) (hi excluded: rounding of lo + (hi-lo)*u can reach it). */
static double below_hi(double v, double lo, double hi) {
    if (v >= hi)
        v = nextafter(hi, lo);
    return v < lo ? lo : v;
}

static double draw_uniform_dim(const rn_dim *p, lm_rng *r) {
    switch (p->kind) {
    case RN_DIM_CHOICE:
        return (double)lm_rng_below(r, p->n_choices);
    case RN_DIM_UNIFORM:
        return below_hi(lm_rng_range(r, p->lo, p->hi), p->lo, p->hi);
    case RN_DIM_LOGUNIFORM:
        return below_hi(exp(lm_rng_range(r, log(p->lo), log(p->hi))), p->lo, p->hi);
    case RN_DIM_INT:
        return p->lo + (double)lm_rng_below(r, (uint64_t)(p->hi - p->lo) + 1);
    default:
        return 0;
    }
}

void rn_random_point(const rn_dim *d, size_t nd, uint64_t seed, size_t index, double *x) {
    for (size_t j = 0; j < nd; j++) {
        lm_rng r;
        lm_rng_init(&r, seed, LM_RNG_SWEEP, index, j);
        x[j] = draw_uniform_dim(&d[j], &r);
    }
}

/* ------------------------------------------------------------------ TPE -- */

/* A one-dimensional Parzen estimator.  Continuous: m Gaussians (mu, sigma)
 * truncated to [lo, hi] in the working space (log for LOGUNIFORM), equal
 * weights, logz[i] = log of the mass of component i inside [lo, hi].
 * Categorical: p[k] for k < n_choices. */
typedef struct parzen {
    size_t m;
    double lo, hi;
    double *mu, *sigma, *logz; /* [m] (continuous) */
    double *p;                 /* [n_choices] (CHOICE) */
} parzen;

static double norm_cdf(double z) { return 0.5 * erfc(-z * M_SQRT1_2); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Working-space range of a continuous dimension. */
static void work_range(const rn_dim *p, double *lo, double *hi) {
    if (p->kind == RN_DIM_LOGUNIFORM) {
        *lo = log(p->lo);
        *hi = log(p->hi);
    } else if (p->kind == RN_DIM_INT) {
        *lo = p->lo - 0.5;
        *hi = p->hi + 0.5;
    } else {
        *lo = p->lo;
        *hi = p->hi;
    }
}

/* An observed coordinate in the working space, clamped; NaN when not finite. */
static double to_work(const rn_dim *p, double v, double lo, double hi) {
    if (!isfinite(v))
        return NAN;
    if (p->kind == RN_DIM_LOGUNIFORM)
        v = v >= p->lo ? log(v) : lo; /* also catches v <= 0 */
    return v < lo ? lo : v > hi ? hi : v;
}

/* Fits the continuous estimator to the n working-space values v[] (sorted
 * here, in place; v has room for n + 1 entries).  mu/sigma/logz point into
 * scratch of n + 1 entries. */
static void parzen_fit(parzen *z, double *v, size_t n) {
    double lo = z->lo, hi = z->hi, range = hi - lo, prior = 0.5 * (lo + hi);
    v[n] = prior;
    size_t m = n + 1;
    qsort(v, m, sizeof *v, cmp_double);
    double minsig = range / fmin(100.0, (double)(m + 1));
    int prior_done = 0;
    for (size_t i = 0; i < m; i++) {
        double s;
        if (m == 1)
            s = range;
        else if (i == 0)
            s = v[1] - v[0];
        else if (i == m - 1)
            s = v[m - 1] - v[m - 2];
        else
            s = fmax(v[i] - v[i - 1], v[i + 1] - v[i]);
        s = fmin(fmax(s, minsig), range);
        if (!prior_done && v[i] == prior) { /* the prior keeps its own width */
            s = range;
            prior_done = 1;
        }
        z->mu[i] = v[i];
        z->sigma[i] = s;
        double mass = norm_cdf((hi - v[i]) / s) - norm_cdf((lo - v[i]) / s);
        z->logz[i] = log(mass); /* mu inside [lo, hi], s <= range: mass >= 0.34 */
    }
    z->m = m;
}

/* log density of the truncated mixture at t (log-sum-exp over components). */
static double parzen_logpdf(const parzen *z, double t) {
    double best = -INFINITY, acc = 0;
    for (size_t i = 0; i < z->m; i++) {
        double u = (t - z->mu[i]) / z->sigma[i];
        double l = -0.5 * u * u - log(z->sigma[i]) - z->logz[i];
        if (l > best) {
            acc = acc * exp(best - l) + 1;
            best = l;
        } else {
            acc += exp(l - best);
        }
    }
    return best + log(acc) - log((double)z->m) - 0.5 * log(2 * M_PI);
}

/* log of the mixture's mass on [a, b] (the integer bin of an INT). */
static double parzen_logmass(const parzen *z, double a, double b) {
    double s = 0;
    for (size_t i = 0; i < z->m; i++) {
        double sg = z->sigma[i], mu = z->mu[i];
        s += (norm_cdf((b - mu) / sg) - norm_cdf((a - mu) / sg)) * exp(-z->logz[i]);
    }
    /* The prior component alone gives every one of the B bins a mass of at
     * least 0.35 / (m * B), so the floor only guards against rounding. */
    return log(fmax(s / (double)z->m, 1e-300));
}

/* Standard normal draw (Box-Muller, one of the pair). */
static double normal_draw(lm_rng *r) {
    double u1 = 1.0 - lm_rng_uniform(r); /* (0, 1] */
    double u2 = lm_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

/* One draw from the truncated mixture: a component uniformly (equal
 * weights), then its Gaussian by rejection (acceptance >= 0.34 per try). */
static double parzen_draw(const parzen *z, lm_rng *r) {
    size_t i = (size_t)lm_rng_below(r, z->m);
    for (int tries = 0; tries < 1000; tries++) {
        double t = z->mu[i] + z->sigma[i] * normal_draw(r);
        if (t >= z->lo && t <= z->hi)
            return t;
    }
    return z->mu[i];
}

/* Categorical estimator: counts of the n indices v[] plus 1 per choice. */
static void parzen_fit_choice(parzen *z, const double *v, size_t n, size_t k) {
    for (size_t c = 0; c < k; c++) z->p[c] = 1.0;
    for (size_t i = 0; i < n; i++) {
        double c = floor(v[i] + 0.5);
        c = c < 0 ? 0 : c > (double)(k - 1) ? (double)(k - 1) : c;
        z->p[(size_t)c] += 1.0;
    }
    double tot = (double)(n + k);
    for (size_t c = 0; c < k; c++) z->p[c] /= tot;
}

static size_t draw_choice(const double *p, size_t k, lm_rng *r) {
    double u = lm_rng_uniform(r), acc = 0;
    for (size_t c = 0; c + 1 < k; c++) {
        acc += p[c];
        if (u < acc)
            return c;
    }
    return k - 1;
}

typedef struct ranked {
    int failed;   /* non-finite objective: ranks last */
    double key;   /* smaller is better */
    size_t i;     /* row in X: breaks ties */
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *p = a, *q = b;
    if (p->failed != q->failed)
        return p->failed - q->failed;
    if (!p->failed && p->key != q->key)
        return p->key < q->key ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

/* l (good) and g (bad) of one dimension, and that dimension's stream. */
typedef struct dim_fit {
    parzen l, g;
    lm_rng r;
} dim_fit;

/* Fits l and g of dimension p (column j of X) from the ranking rk (the
 * first n_good good).  vals: scratch of n_obs + 1; mem: 3 (n_obs + 2)
 * doubles for a continuous dimension, 2 n_choices for a CHOICE. */
static void fit_dim(dim_fit *f, const rn_dim *p, size_t j, const double *X, size_t nd, const ranked *rk,
                    size_t n_obs, size_t n_good, double *vals, double *mem) {
    if (p->kind == RN_DIM_CHOICE) {
        size_t k = p->n_choices, ng = 0, nb = 0;
        double *gv = vals, *bv = vals + n_good; /* [n_good], [n_obs - n_good] */
        for (size_t i = 0; i < n_obs; i++) {
            double v = X[rk[i].i * nd + j];
            if (!isfinite(v))
                continue;
            if (i < n_good)
                gv[ng++] = v;
            else
                bv[nb++] = v;
        }
        f->l = (parzen){.p = mem};
        f->g = (parzen){.p = mem + k};
        parzen_fit_choice(&f->l, gv, ng, k);
        parzen_fit_choice(&f->g, bv, nb, k);
        return;
    }
    double lo, hi;
    work_range(p, &lo, &hi);
    size_t nv = n_obs + 2;
    double *mu = mem, *sigma = mem + nv, *logz = mem + 2 * nv;
    /* l takes the front of mu/sigma/logz (at most n_good + 1 components),
     * g the rest (at most n_obs - n_good + 1): n_obs + 2 in all. */
    size_t n = 0;
    for (size_t i = 0; i < n_good; i++) {
        double t = to_work(p, X[rk[i].i * nd + j], lo, hi);
        if (!isnan(t))
            vals[n++] = t;
    }
    f->l = (parzen){.lo = lo, .hi = hi, .mu = mu, .sigma = sigma, .logz = logz};
    parzen_fit(&f->l, vals, n);
    size_t off = f->l.m;
    n = 0;
    for (size_t i = n_good; i < n_obs; i++) {
        double t = to_work(p, X[rk[i].i * nd + j], lo, hi);
        if (!isnan(t))
            vals[n++] = t;
    }
    f->g = (parzen){.lo = lo, .hi = hi, .mu = mu + off, .sigma = sigma + off, .logz = logz + off};
    parzen_fit(&f->g, vals, n);
}

/* Draws coordinate j of a candidate from l into *v and returns its
 * log l - log g. */
static double draw_dim(dim_fit *f, const rn_dim *p, double *v) {
    if (p->kind == RN_DIM_CHOICE) {
        size_t c = draw_choice(f->l.p, p->n_choices, &f->r);
        *v = (double)c;
        return log(f->l.p[c]) - log(f->g.p[c]);
    }
    double t = parzen_draw(&f->l, &f->r);
    if (p->kind == RN_DIM_INT) {
        double k = floor(t + 0.5);
        k = k < p->lo ? p->lo : k > p->hi ? p->hi : k;
        *v = k;
        return parzen_logmass(&f->l, k - 0.5, k + 0.5) - parzen_logmass(&f->g, k - 0.5, k + 0.5);
    }
    *v = below_hi(p->kind == RN_DIM_LOGUNIFORM ? exp(t) : t, p->lo, p->hi);
    return parzen_logpdf(&f->l, t) - parzen_logpdf(&f->g, t);
}

int rn_tpe_point(const rn_dim *d, size_t nd, const double *X, const double *y, size_t n_obs, int maximize,
                 const rn_tpe_opts *opts, uint64_t seed, size_t index, double *x) {
    size_t n_startup = opts && opts->n_startup ? opts->n_startup : 10;
    size_t n_cand = opts && opts->n_candidates ? opts->n_candidates : 24;
    double gamma = opts && opts->gamma > 0 ? opts->gamma : 0.1; /* also NaN -> default */
    if (gamma > 1)
        gamma = 1;
    if (n_obs < n_startup) { /* n_startup >= 1: also n_obs == 0 */
        rn_random_point(d, nd, seed, index, x);
        return 0;
    }

    /* Scratch, one block: vals [n_obs + 1], a candidate [nd], then each
     * dimension's estimator memory (see fit_dim). */
    size_t nv = n_obs + 2, total = nv + nd, ok = nv > n_obs;
    for (size_t j = 0; j < nd && ok; j++) {
        size_t need = d[j].kind == RN_DIM_CHOICE ? 2 * d[j].n_choices : 3 * nv;
        ok = need / 3 <= nv && total <= SIZE_MAX / sizeof(double) - need;
        total += need;
    }
    ranked *rk = NULL;
    dim_fit *fit = NULL;
    double *buf = NULL;
    if (ok && n_obs <= SIZE_MAX / sizeof *rk && nd <= SIZE_MAX / sizeof *fit) {
        rk = malloc(n_obs * sizeof *rk);
        fit = malloc(nd * sizeof *fit);
        buf = malloc(total * sizeof *buf);
    }
    if (!rk || !fit || !buf) {
        free(rk);
        free(fit);
        free(buf);
        rn_random_point(d, nd, seed, index, x);
        return LUMEN_ENOMEM;
    }

    for (size_t i = 0; i < n_obs; i++) {
        rk[i].failed = !isfinite(y[i]);
        rk[i].key = maximize ? -y[i] : y[i];
        rk[i].i = i;
    }
    qsort(rk, n_obs, sizeof *rk, cmp_ranked);
    size_t n_good = (size_t)ceil(gamma * (double)n_obs - 1e-9);
    n_good = n_good < 1 ? 1 : n_good > n_obs ? n_obs : n_good;

    double *vals = buf, *cand = buf + nv, *mem = cand + nd;
    for (size_t j = 0; j < nd; j++) {
        fit_dim(&fit[j], &d[j], j, X, nd, rk, n_obs, n_good, vals, mem);
        mem += d[j].kind == RN_DIM_CHOICE ? 2 * d[j].n_choices : 3 * nv;
        lm_rng_init(&fit[j].r, seed, LM_RNG_SWEEP, index, TPE_STREAM + j);
    }

    /* Candidates drawn from l (every coordinate from its own stream), scored
     * by log l(x) - log g(x) = sum over dimensions; the first best wins. */
    double best = -INFINITY;
    for (size_t c = 0; c < n_cand; c++) {
        double s = 0;
        for (size_t j = 0; j < nd; j++) s += draw_dim(&fit[j], &d[j], &cand[j]);
        if (c == 0 || s > best) {
            best = s;
            memcpy(x, cand, nd * sizeof *x);
        }
    }
    free(buf);
    free(fit);
    free(rk);
    return 0;
}

/* -------------------------------------------------------------- pruners -- */

/* 1 when a is strictly better than b; a non-finite value is worst. */
static int better(double a, double b, int maximize) {
    if (!isfinite(a))
        return 0;
    if (!isfinite(b))
        return 1;
    return maximize ? a > b : a < b;
}

int rn_asha_is_rung(const rn_asha *a, int epoch) {
    int min = a && a->min_epochs > 0 ? a->min_epochs : 1;
    int eta = a && a->reduction >= 2 ? a->reduction : 3;
    if (epoch < min)
        return 0;
    long long r = min;
    while (r < epoch) r *= eta; /* epoch is an int: r stays below eta * INT_MAX */
    return r == epoch;
}

int rn_asha_prune(const rn_asha *a, int epoch, double value, const double *others, size_t n, int maximize) {
    if (!rn_asha_is_rung(a, epoch))
        return 0;
    size_t eta = a && a->reduction >= 2 ? (size_t)a->reduction : 3;
    size_t k = 0, rank = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(others[i]))
            continue;
        k++;
        rank += better(others[i], value, maximize);
    }
    k++; /* this trial */
    size_t keep = k / eta;
    if (keep < 1)
        keep = 1;
    return rank > keep;
}

/* The q-th smallest (0-based) finite value of v[n], without allocating:
 * the value with fewer than q+1 smaller ones and at least q+1 not larger. */
static double kth_finite(const double *v, size_t n, size_t q) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        size_t less = 0, leq = 0;
        for (size_t j = 0; j < n; j++) {
            if (!isfinite(v[j]))
                continue;
            less += v[j] < v[i];
            leq += v[j] <= v[i];
        }
        if (less <= q && q < leq)
            return v[i];
    }
    return NAN;
}

int rn_median_prune(const rn_median *m, int epoch, double value, const double *others, size_t n, int maximize) {
    int min_epochs = m && m->min_epochs > 0 ? m->min_epochs : 1;
    size_t min_trials = m && m->min_trials > 0 ? m->min_trials : 3;
    if (epoch < min_epochs)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += isfinite(others[i]) != 0;
    if (k == 0 || k < min_trials)
        return 0;
    double med = 0.5 * (kth_finite(others, n, (k - 1) / 2) + kth_finite(others, n, k / 2));
    return better(med, value, maximize);
}

/* ----------------------------------------------------------- statistics -- */

void rn_mean_sd(const double *v, size_t n, double *mean, double *sd) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i];
    double mu = n ? s / (double)n : 0;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (v[i] - mu) * (v[i] - mu);
    if (mean)
        *mean = mu;
    if (sd)
        *sd = n >= 2 ? sqrt(ss / (double)(n - 1)) : 0;
}

double rn_t975(int df) {
    /* 0.975 quantiles for df = 1..30, to 9 decimals. */
    static const double tab[30] = {
        12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
        2.364624252,  2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
        2.160368656,  2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
        2.093024054,  2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
        2.059538553,  2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
    };
    if (df < 1)
        return NAN;
    if (df <= 30)
        return tab[df - 1];
    /* Cornish-Fisher expansion of the t quantile around the normal one
     * (Abramowitz & Stegun 26.7.5); below 3e-8 off for df > 30. */
    const double z = 1.959963984540054, z2 = z * z;
    double n = df;
    double g1 = z * (z2 + 1) / 4;
    double g2 = z * ((5 * z2 + 16) * z2 + 3) / 96;
    double g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384;
    double g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160;
    return z + (g1 + (g2 + (g3 + g4 / n) / n) / n) / n;
}

void rn_mean_ci95(const double *v, size_t n, double *mean, double *sd, double *half) {
    double mu = NAN, s = NAN, h = NAN;
    if (n) rn_mean_sd(v, n, &mu, &s);
    if (n >= 2) h = rn_t975((int)(n - 1 > 1000000 ? 1000000 : n - 1)) * s / sqrt((double)n);
    else s = NAN;
    if (mean) *mean = mu;
    if (sd) *sd = s;
    if (half) *half = h;
}

void rn_paired_diff(const double *a, const double *b, size_t n, double *mean, double *half) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += b[i] - a[i];
    double mu = n ? s / (double)n : 0;
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        double e = b[i] - a[i] - mu;
        ss += e * e;
    }
    if (mean)
        *mean = mu;
    if (half)
        *half = n >= 2 ? rn_t975((int)(n - 1 > 1000000 ? 1000000 : n - 1)) * sqrt(ss / (double)(n - 1)) /
                             sqrt((double)n)
                       : NAN;
}
