/* evaluate.c -- see evaluate.h. */
#include "evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_augment.h"
#include "metrics.h"

void lm_eval_cfg_default(lm_eval_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->batch = 32;
    cfg->threads = 1;
}

void lm_eval_result_free(lm_eval_result *r) {
    if (!r) return;
    if (r->names)
        for (int64_t i = 0; i < r->n; i++) free(r->names[i]);
    free(r->names);
    free(r->probs);
    free(r->targets);
    free(r->loss);
    free(r->index);
    memset(r, 0, sizeof *r);
}

int lm_eval_tta_views(int h, int w, int views[8]) {
    if (h == w) {
        for (int k = 0; k < NN_AUG_DIHEDRAL_N; k++) views[k] = k;
        return NN_AUG_DIHEDRAL_N;
    }
    /* the elements that keep H x W: identity, rot180, hflip, vflip */
    static const int keep[4] = {0, 2, 4, 6};
    for (int k = 0; k < 4; k++) views[k] = keep[k];
    return 4;
}

/* log(1 + e^x) without overflow or cancellation. */
static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }

/* Focal terms from log p and log (1 - p); g = 0 is the BCE. */
static double focal_from_logs(double lp, double lq, double t, double pw, double g) {
    if (g == 0) return -pw * t * lp - (1 - t) * lq;
    return -pw * t * pow(exp(lq), g) * lp - (1 - t) * pow(exp(lp), g) * lq;
}

double lm_eval_focal_logit(double x, double y, double pw, double s, double g) {
    return focal_from_logs(-softplus(-x), -softplus(x), y * (1 - s) + s / 2, pw, g);
}

double lm_eval_bce_logit(double x, double y, double pw, double s) { return lm_eval_focal_logit(x, y, pw, s, 0); }

/* log(mean_v e^{a_v}) for v < n. */
static double log_mean_exp(const double *a, int n) {
    double m = a[0];
    for (int v = 1; v < n; v++)
        if (a[v] > m) m = a[v];
    if (isinf(m)) return m;
    double s = 0;
    for (int v = 0; v < n; v++) s += exp(a[v] - m);
    return m + log(s / n);
}

typedef struct eval_run {
    nn_engine *e;
    const lm_eval_cfg *cfg;
    int c, h, w, k;
    int views[8], nviews;
    float *xv;     /* [batch, C, H, W] a transformed view */
    float *logits; /* [nviews, batch, K] */
} eval_run;

/* Fills out[done .. done + b->n) from one loader batch. */
static int eval_batch(eval_run *r, const lm_batch *b, lm_eval_result *out, int64_t done, double *loss_sum,
                      lm_err *err) {
    const lm_eval_cfg *cfg = r->cfg;
    int n = b->n, k = r->k, V = r->nviews;
    size_t chw = (size_t)r->c * r->h * r->w, nk = (size_t)n * k;
    for (int v = 0; v < V; v++) {
        const float *x = b->x;
        if (r->views[v] != 0) {
            for (int j = 0; j < n; j++)
                if (nn_aug_dihedral_f32(b->x + j * chw, r->c, r->h, r->w, r->views[v], r->xv + j * chw))
                    return lm_fail(err, LUMEN_EINVAL, "evaluate: dihedral view %d failed", r->views[v]);
            x = r->xv;
        }
        int rc = nn_engine_predict(r->e, x, n, r->logits + (size_t)v * cfg->batch * k, err);
        if (rc) return rc;
    }
    float *probs = out->probs + (size_t)done * k;
    if (V == 1) lm_sigmoid(r->logits, probs, (int64_t)nk);
    for (int j = 0; j < n; j++) {
        double sample = 0;
        for (int c = 0; c < k; c++) {
            size_t i = (size_t)j * k + c;
            double y = b->y[i], pw = cfg->pos_weight ? cfg->pos_weight[c] : 1.0, s = cfg->label_smoothing;
            double l;
            if (V == 1) {
                l = lm_eval_focal_logit(r->logits[i], y, pw, s, cfg->focal_gamma);
            } else {
                double lp[8], lq[8], p = 0;
                for (int v = 0; v < V; v++) {
                    double x = r->logits[(size_t)v * cfg->batch * k + i];
                    lp[v] = -softplus(-x); /* log sigmoid(x) */
                    lq[v] = -softplus(x);  /* log (1 - sigmoid(x)) */
                    p += 1.0 / (1.0 + exp(-x));
                }
                probs[i] = (float)(p / V);
                double t = y * (1 - s) + s / 2;
                l = focal_from_logs(log_mean_exp(lp, V), log_mean_exp(lq, V), t, pw, cfg->focal_gamma);
            }
            sample += l;
        }
        *loss_sum += sample;
        out->loss[done + j] = (float)(sample / k);
    }
    memcpy(out->targets + (size_t)done * k, b->y, nk * sizeof(float));
    memcpy(out->index + done, b->index, (size_t)n * sizeof(uint32_t));
    return LUMEN_OK;
}

/* The shared core: runs the open loader's single epoch through the engine. */
static int eval_loader(nn_engine *e, lm_loader *ld, const lm_loader_source *shape, const lm_eval_cfg *cfg,
                       lm_eval_result *out, lm_err *err) {
    double t0 = lm_now();
    eval_run r = {.e = e, .cfg = cfg, .c = (int)shape->channels, .h = (int)shape->height,
                  .w = (int)shape->width, .k = (int)shape->nlabels};
    r.nviews = cfg->tta ? lm_eval_tta_views(r.h, r.w, r.views) : 1;
    if (!cfg->tta) r.views[0] = 0;
    int64_t n = (int64_t)lm_loader_count(ld);
    size_t chw = (size_t)r.c * r.h * r.w;
    out->k = r.k;
    out->views = r.nviews;
    out->probs = malloc(sizeof(float) * ((size_t)n * r.k + 1));
    out->targets = malloc(sizeof(float) * ((size_t)n * r.k + 1));
    out->loss = malloc(sizeof(float) * ((size_t)n + 1));
    out->index = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    r.logits = malloc(sizeof(float) * (size_t)r.nviews * cfg->batch * r.k);
    r.xv = r.nviews > 1 ? malloc(sizeof(float) * chw * cfg->batch) : NULL;
    if (!out->probs || !out->targets || !out->loss || !out->index || !r.logits || (r.nviews > 1 && !r.xv)) {
        free(r.logits);
        free(r.xv);
        return lm_fail(err, LUMEN_ENOMEM, "evaluate: out of memory for %lld samples", (long long)n);
    }
    double loss_sum = 0;
    int64_t done = 0;
    int rc = lm_loader_start_epoch(ld, 0);
    while (rc == 0) {
        if (cfg->cancelled && cfg->cancelled(cfg->user)) {
            rc = lm_fail(err, LUMEN_ECANCELED, "evaluation cancelled");
            break;
        }
        lm_batch b;
        if ((rc = lm_loader_next(ld, &b, err)) || b.n == 0) break;
        if (done + b.n > n) {
            rc = lm_fail(err, LUMEN_ERR, "evaluate: the loader delivered more samples than the split holds");
            break;
        }
        if ((rc = eval_batch(&r, &b, out, done, &loss_sum, err))) break;
        done += b.n;
        if (cfg->progress) cfg->progress(cfg->user, done, n);
    }
    if (rc == 0 && done != n)
        rc = lm_fail(err, LUMEN_ERR, "evaluate: %lld of %lld samples delivered", (long long)done, (long long)n);
    lm_loader_stats st;
    lm_loader_get_stats(ld, &st);
    free(r.logits);
    free(r.xv);
    out->n = n;
    out->mean_loss = n > 0 ? loss_sum / ((double)n * r.k) : NAN;
    out->seconds = lm_now() - t0;
    out->wait_s = st.wait_s;
    return rc;
}

static int check_cfg(nn_engine *e, const lm_loader_source *shape, const lm_eval_cfg *cfg, lm_err *err) {
    if (!cfg || cfg->batch < 1) return lm_fail(err, LUMEN_EINVAL, "evaluate: batch must be >= 1");
    if (!(cfg->label_smoothing >= 0 && cfg->label_smoothing <= 1))
        return lm_fail(err, LUMEN_EINVAL, "evaluate: label_smoothing must be in [0, 1]");
    if (!(cfg->focal_gamma >= 0 && cfg->focal_gamma <= 10))
        return lm_fail(err, LUMEN_EINVAL, "evaluate: focal_gamma must be in [0, 10]");
    const nn_graph *g = nn_engine_graph(e);
    int K = g->nodes[g->n - 1].c;
    if ((int)shape->channels != g->in_c || (int)shape->height != g->in_h || (int)shape->width != g->in_w)
        return lm_fail(err, LUMEN_EINVAL,
                       "evaluate: the images are %ux%ux%u (CxHxW) but the engine was built for %dx%dx%d",
                       shape->channels, shape->height, shape->width, g->in_c, g->in_h, g->in_w);
    if ((int)shape->nlabels != K)
        return lm_fail(err, LUMEN_EINVAL, "evaluate: the data has %u label(s) but the model has %d output(s)",
                       shape->nlabels, K);
    return LUMEN_OK;
}

static int eval_open(nn_engine *e, const lm_dataset *ds, const lm_loader_source *src, int split,
                     const lm_loader_source *shape, const lm_eval_cfg *cfg, lm_eval_result *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    int rc = check_cfg(e, shape, cfg, err);
    if (rc) return rc;
    lm_loader_cfg lc = {.split = split, .batch = cfg->batch, .shuffle = 0, .drop_last = 0, .seed = 0,
                        .policy = NULL, .mean = cfg->mean, .std = cfg->std,
                        .threads = cfg->threads > 0 ? cfg->threads : 1, .depth = 0};
    lm_loader *ld = NULL;
    rc = ds ? lm_loader_open(ds, &lc, &ld, err) : lm_loader_open_source(src, &lc, &ld, err);
    if (rc) return rc;
    rc = eval_loader(e, ld, shape, cfg, out, err);
    lm_loader_close(ld);
    if (rc) lm_eval_result_free(out);
    return rc;
}

int lm_eval_source(nn_engine *e, const lm_loader_source *src, const lm_eval_cfg *cfg, lm_eval_result *out,
                   lm_err *err) {
    return eval_open(e, NULL, src, 0, src, cfg, out, err);
}

int lm_eval_split(nn_engine *e, const lm_dataset *ds, int split, const lm_eval_cfg *cfg, lm_eval_result *out,
                  lm_err *err) {
    const lm_dataset_info *info = lm_dataset_get_info(ds);
    lm_loader_source shape = {.height = info->height, .width = info->width, .channels = info->channels,
                              .nlabels = (uint32_t)info->nlabels};
    int rc = eval_open(e, ds, NULL, split, &shape, cfg, out, err);
    if (rc) return rc;
    out->names = calloc((size_t)out->n + 1, sizeof *out->names);
    if (!out->names) {
        lm_eval_result_free(out);
        return lm_fail(err, LUMEN_ENOMEM, "evaluate: out of memory");
    }
    for (int64_t i = 0; i < out->n; i++) {
        lm_record rec;
        if (lm_dataset_get(ds, out->index[i], &rec) || !(out->names[i] = lm_strdup(rec.name))) {
            lm_eval_result_free(out);
            return lm_fail(err, LUMEN_ENOMEM, "evaluate: out of memory");
        }
    }
    return LUMEN_OK;
}
