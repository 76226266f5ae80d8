/* nn_engine_ref.c -- backend "ref": the double-precision reference layers
 * (nn_ref.h) walked over the graph, NCHW.  Slow and simple; the yardstick the
 * fast backends are tested against.  Params are read from the canonical float
 * arrays and widened to double per step; gradients are narrowed to float. */
#include "nn_engine_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_ref.h"

#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1

typedef struct ref_state {
    double *params;     /* nparams, widened copy */
    double *dparams;    /* nparams */
    double **out;       /* per node: [batch, c, h, w] */
    double **dout;      /* per node: gradient of out */
    double **mean, **var; /* per BN node: [c] batch stats */
    int32_t **argmax;   /* per maxpool node */
    double *in;         /* network input [batch, C, H, W] */
    double *tmp, *tmp2; /* largest activation */
} ref_state;

static size_t node_size(const nn_node *n) { return (size_t)n->c * n->h * n->w; }

static void ref_destroy(nn_engine *e) {
    ref_state *s = e->impl;
    if (!s) return;
    for (int i = 0; i < e->graph.n; i++) {
        if (s->out) free(s->out[i]);
        if (s->dout) free(s->dout[i]);
        if (s->mean) free(s->mean[i]);
        if (s->var) free(s->var[i]);
        if (s->argmax) free(s->argmax[i]);
    }
    free(s->out);
    free(s->dout);
    free(s->mean);
    free(s->var);
    free(s->argmax);
    free(s->params);
    free(s->dparams);
    free(s->in);
    free(s->tmp);
    free(s->tmp2);
    free(s);
    e->impl = NULL;
}

static int ref_create(nn_engine *e, lm_err *err) {
    ref_state *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    e->impl = s;
    int G = e->graph.n;
    size_t B = (size_t)e->opts.batch, big = 0;
    s->out = calloc((size_t)G, sizeof *s->out);
    s->dout = calloc((size_t)G, sizeof *s->dout);
    s->mean = calloc((size_t)G, sizeof *s->mean);
    s->var = calloc((size_t)G, sizeof *s->var);
    s->argmax = calloc((size_t)G, sizeof *s->argmax);
    s->params = malloc(sizeof(double) * e->model->nparams);
    s->dparams = malloc(sizeof(double) * e->model->nparams);
    size_t insz = B * (size_t)e->graph.in_c * e->graph.in_h * e->graph.in_w;
    s->in = malloc(sizeof(double) * insz);
    int ok = s->out && s->dout && s->mean && s->var && s->argmax && s->params && s->dparams &&
             s->in;
    for (int i = 0; ok && i < G; i++) {
        const nn_node *n = &e->graph.nodes[i];
        size_t sz = B * node_size(n);
        if (sz > big) big = sz;
        s->out[i] = malloc(sizeof(double) * sz);
        s->dout[i] = malloc(sizeof(double) * sz);
        ok = s->out[i] && s->dout[i];
        if (n->op == NN_OP_BN) {
            s->mean[i] = malloc(sizeof(double) * (size_t)n->c);
            s->var[i] = malloc(sizeof(double) * (size_t)n->c);
            ok = ok && s->mean[i] && s->var[i];
        }
        if (n->op == NN_OP_MAXPOOL) ok = ok && (s->argmax[i] = malloc(sizeof(int32_t) * sz));
    }
    if (insz > big) big = insz;
    if (ok) {
        s->tmp = malloc(sizeof(double) * big);
        s->tmp2 = malloc(sizeof(double) * big);
        ok = s->tmp && s->tmp2;
    }
    if (!ok) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory (ref backend)");
    return LUMEN_OK;
}

static const double *input_of(const ref_state *s, const nn_node *n, int which) {
    int i = n->in[which];
    return i == NN_INPUT ? s->in : s->out[i];
}

/* Forward over the graph.  mode: 0 train, 1 eval. */
static void ref_forward(nn_engine *e, int N, int train, const float *dropmask) {
    ref_state *s = e->impl;
    const nn_model *m = e->model;
    const double *P = s->params;
    for (int i = 0; i < e->graph.n; i++) {
        const nn_node *n = &e->graph.nodes[i];
        const double *x = input_of(s, n, 0);
        double *y = s->out[i];
        size_t cnt = (size_t)N * node_size(n);
        switch (n->op) {
        case NN_OP_CONV:
            nn_ref_conv_forward(y, x, P + m->tensors[n->weight].offset, NULL, N, n->ic, n->ih,
                                n->iw, n->c, n->k, n->stride, n->pad);
            break;
        case NN_OP_BN: {
            const double *g = P + m->tensors[n->weight].offset, *b = P + m->tensors[n->bias].offset;
            float *rm = e->buffers + m->tensors[n->mean].offset;
            float *rv = e->buffers + m->tensors[n->var].offset;
            if (train) {
                nn_ref_bn_forward_train(y, s->mean[i], s->var[i], x, g, b, N, n->c, n->h * n->w,
                                        BN_EPS);
                double *rmd = s->tmp, *rvd = s->tmp + n->c;
                for (int c = 0; c < n->c; c++) rmd[c] = rm[c], rvd[c] = rv[c];
                nn_ref_bn_update_running(rmd, rvd, s->mean[i], s->var[i], n->c,
                                         N * n->h * n->w, BN_MOMENTUM);
                for (int c = 0; c < n->c; c++) rm[c] = (float)rmd[c], rv[c] = (float)rvd[c];
            } else {
                double *rmd = s->tmp, *rvd = s->tmp + n->c;
                for (int c = 0; c < n->c; c++) rmd[c] = rm[c], rvd[c] = rv[c];
                nn_ref_bn_forward_eval(y, x, g, b, rmd, rvd, N, n->c, n->h * n->w, BN_EPS);
            }
            break;
        }
        case NN_OP_MAXPOOL:
            nn_ref_maxpool_forward(y, s->argmax[i], x, N, n->c, n->ih, n->iw, n->k, n->stride,
                                   n->pad);
            break;
        case NN_OP_ADD:
            nn_ref_add_forward(y, x, input_of(s, n, 1), cnt);
            break;
        case NN_OP_GAP:
            nn_ref_gpool_forward(y, x, N, n->c, n->ih * n->iw, n->pmax);
            break;
        case NN_OP_DROPOUT:
            if (train) nn_ref_dropout_forward(y, x, dropmask, cnt);
            else memcpy(y, x, sizeof(double) * cnt);
            break;
        case NN_OP_FC:
            nn_ref_linear_forward(y, x, P + m->tensors[n->weight].offset,
                                  P + m->tensors[n->bias].offset, N, n->ic, n->c);
            break;
        }
        if (n->relu) nn_ref_relu_forward(y, y, cnt);
    }
}

static void widen_params(nn_engine *e) {
    ref_state *s = e->impl;
    for (size_t i = 0; i < e->model->nparams; i++) s->params[i] = e->params[i];
}

static void load_input(ref_state *s, const nn_graph *g, const float *x, int N) {
    size_t cnt = (size_t)N * g->in_c * g->in_h * g->in_w;
    for (size_t i = 0; i < cnt; i++) s->in[i] = x[i];
}

/* Adds the input gradient `d` (for node n's input `which`) into its producer. */
static void accum(ref_state *s, const nn_node *n, int which, const double *d, size_t cnt,
                  char *seen) {
    int p = n->in[which];
    if (p == NN_INPUT) return;
    double *dst = s->dout[p];
    if (!seen[p]) {
        memcpy(dst, d, sizeof(double) * cnt);
        seen[p] = 1;
    } else {
        for (size_t j = 0; j < cnt; j++) dst[j] += d[j];
    }
}

static int ref_train_step(nn_engine *e, const float *x, const float *y, int N,
                          const nn_loss_cfg *lc, const float *dropmask, double *loss,
                          float *logits, lm_err *err) {
    ref_state *s = e->impl;
    const nn_model *m = e->model;
    const nn_graph *g = &e->graph;
    widen_params(e);
    load_input(s, g, x, N);
    ref_forward(e, N, 1, dropmask);
    const nn_node *fc = &g->nodes[g->n - 1];
    int K = fc->c;
    const double *lg = s->out[g->n - 1];
    if (logits)
        for (int i = 0; i < N * K; i++) logits[i] = (float)lg[i];
    *loss = nn_ref_focal_forward(lg, y, lc->pos_weight, lc->label_smoothing, lc->focal_gamma, N, K);
    char *seen = calloc((size_t)g->n, 1);
    if (!seen) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    nn_ref_focal_backward(s->dout[g->n - 1], lg, y, lc->pos_weight, lc->label_smoothing, lc->focal_gamma,
                          N, K);
    seen[g->n - 1] = 1;
    double *D = s->dparams;
    memset(D, 0, sizeof(double) * m->nparams);
    for (int i = g->n - 1; i >= 0; i--) {
        const nn_node *n = &g->nodes[i];
        if (!seen[i]) continue;
        double *dy = s->dout[i];
        size_t cnt = (size_t)N * node_size(n), icnt = (size_t)N * n->ic * n->ih * n->iw;
        if (n->relu) nn_ref_relu_backward(dy, dy, s->out[i], cnt);
        const double *xin = input_of(s, n, 0);
        double *dx = s->tmp;
        switch (n->op) {
        case NN_OP_CONV:
            nn_ref_conv_backward(n->in[0] == NN_INPUT ? NULL : dx, D + m->tensors[n->weight].offset,
                                 NULL, dy, xin, s->params + m->tensors[n->weight].offset, N,
                                 n->ic, n->ih, n->iw, n->c, n->k, n->stride, n->pad);
            break;
        case NN_OP_BN:
            nn_ref_bn_backward(dx, D + m->tensors[n->weight].offset, D + m->tensors[n->bias].offset,
                               dy, xin, s->mean[i], s->var[i],
                               s->params + m->tensors[n->weight].offset, N, n->c, n->h * n->w,
                               BN_EPS);
            break;
        case NN_OP_MAXPOOL:
            nn_ref_maxpool_backward(dx, dy, s->argmax[i], N, n->c, n->ih, n->iw, n->h, n->w);
            break;
        case NN_OP_ADD:
            nn_ref_add_backward(dx, s->tmp2, dy, cnt);
            accum(s, n, 1, s->tmp2, cnt, seen);
            break;
        case NN_OP_GAP:
            nn_ref_gpool_backward(dx, dy, xin, N, n->c, n->ih * n->iw, n->pmax);
            break;
        case NN_OP_DROPOUT:
            nn_ref_dropout_backward(dx, dy, dropmask, cnt);
            break;
        case NN_OP_FC:
            nn_ref_linear_backward(dx, D + m->tensors[n->weight].offset,
                                   D + m->tensors[n->bias].offset, dy, xin,
                                   s->params + m->tensors[n->weight].offset, N, n->ic, n->c);
            break;
        }
        accum(s, n, 0, dx, icnt, seen);
    }
    free(seen);
    for (size_t i = 0; i < m->nparams; i++) e->grads[i] = (float)D[i];
    return LUMEN_OK;
}

static int ref_forward_eval(nn_engine *e, const float *x, int N, float *logits, int fold,
                            lm_err *err) {
    (void)fold;
    (void)err;
    ref_state *s = e->impl;
    widen_params(e);
    load_input(s, &e->graph, x, N);
    ref_forward(e, N, 0, NULL);
    const nn_node *fc = &e->graph.nodes[e->graph.n - 1];
    const double *lg = s->out[e->graph.n - 1];
    for (int i = 0; i < N * fc->c; i++) logits[i] = (float)lg[i];
    return LUMEN_OK;
}

const nn_backend_ops nn_backend_ref = {
    .name = "ref",
    .create = ref_create,
    .destroy = ref_destroy,
    .train_step = ref_train_step,
    .forward_eval = ref_forward_eval,
};
