/*
 * cpu_engine.c -- backend "cpu": oneDNN primitives for convolution and batch
 * norm; own OpenMP kernels (cpu_kernels.h) for max pool (~2.5x faster than
 * oneDNN 2.6's here), global average pool, residual add + ReLU, gradient
 * sums, fc, dropout, and the convolution backward-weights cases where oneDNN
 * has only its reference kernel; loss and optimizer in the common layer.
 *
 * Layout: every feature map lives in ONE activation layout chosen at create
 * (auto: the layout oneDNN's convolution prefers here -- nChw8c with AVX2,
 * nChw16c with AVX-512 -- or "nhwc"/"blocked" on request; measured on the
 * 2-core AVX2 machine, nhwc trains ~1.7x and infers ~1.5x slower), so no
 * reorders happen between layers.  The only reorders: the network input when the
 * stem convolution wants another layout (not for 1 channel), and the conv
 * weights from the canonical OIHW master copy into each primitive's preferred
 * format, once per parameter change (~20 MB for the default model), plus the
 * weight gradients back to OIHW.
 *
 * Fusions: BN + ReLU (dnnl_fuse_norm_relu, the mask kept as a bit workspace),
 * residual add + ReLU (own kernel forward; backward the mask and the sum of
 * the two incoming gradients in one pass), no backward-data for the stem
 * convolution.  predict(): BN folded into the conv weights + bias, ReLU as an
 * eltwise post-op, the residual add as a sum post-op: the shortcut is written
 * first (downsample conv, or the block input itself) and the block's second
 * conv accumulates onto it in place.
 *
 * Primitives are created once per batch size ("plan"; a few are cached: the
 * full batch and e.g. an epoch's last partial batch) and reused.  Buffers are
 * allocated once for the full batch; a smaller batch uses their prefix (N is
 * the outermost dimension of every layout used).
 *
 * Buffers per graph node i (full batch):
 *   out[i]   forward output (for BN+ReLU: after the ReLU)
 *   dx[i]    gradient w.r.t. node i's input, written by its backward
 *   dsum[i]  gradient w.r.t. its output when it has to be assembled (two
 *            consumers, or the add's ReLU mask); otherwise the single
 *            consumer's dx[] is read in place
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "cpu_kernels.h"
#include "cpu_winograd.h"
#include "nn_engine_impl.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define MAX_PLANS 4
#define MAX_ARGS 10

#define DN(call)                                                                             \
    do {                                                                                     \
        dnnl_status_t st_ = (call);                                                          \
        if (st_ != dnnl_success)                                                             \
            return lm_fail(err, LUMEN_ERR, "oneDNN: %s: %s (%s:%d)", #call,                  \
                           dnnl_status2str(st_), __FILE__, __LINE__);                        \
    } while (0)

typedef struct prim {
    dnnl_primitive_t p;   /* NULL: nothing to run */
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
    char impl[32];        /* implementation name (e.g. "jit:avx2") */
} prim;

typedef struct node_plan {
    prim fwd;       /* training forward */
    prim fwd_eval;  /* BN: inference with running stats (unfolded eval) */
    prim bwd;       /* backward data (conv), backward (bn, pool) */
    prim bwdw;      /* conv backward weights */
    prim inf;       /* predict: folded conv + post-ops, pool, gap */
    prim w_fwd, w_bwd, w_inf, dw_out; /* weight reorders (p NULL: none) */
    float *w_fwd_buf, *w_bwd_buf, *w_inf_buf, *dw_buf; /* owned; NULL when not needed */
    int own_bwdw;   /* weight gradient by nn_cpu_conv_bwdw (oneDNN has only ref) */
    int blk8_bwdw;  /* weight gradient by nn_cpu_conv_bwdw_blk8 (faster here) */
} node_plan;

typedef struct plan {
    int n;                 /* batch size */
    node_plan *nodes;
    prim in_reorder;       /* user NCHW -> stem src layout (p NULL: none) */
    dnnl_memory_t x_user;  /* user NCHW input; handle set per call */
    dnnl_memory_t x_direct; /* the same bytes as the stem's src (1 channel, nhwc) */
    dnnl_memory_t *mems;   /* every memory object, for release */
    int nmems, capmems;
    uint64_t wversion;     /* params_version the weights were reordered at */
    int have_w, have_inf;
} plan;

typedef struct cpu_state {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_format_tag_t act_tag;
    const char *act_name;
    int act_block;         /* channel block of act_tag: 8, 16, or 0 for nhwc */
    int B;
    float **out, **dx, **dsum, **mean, **var;
    void **ws;             /* workspaces: BN ReLU mask, max-pool argmax */
    size_t *ws_size;       /* bytes of ws[i] (allocated by the full-batch plan) */
    size_t *img;           /* physical floats per image of out[i] */
    const float **dy;      /* per node: where its output gradient is read */
    int *ncons;            /* consumers per node */
    int *cons[2];          /* up to two consumers (more is not built) */
    float **infbuf;        /* predict: where each node's output goes */
    int *deferred;         /* predict: conv runs at its add (sum post-op) */
    unsigned char *own_pool; /* max pool by nn_cpu_maxpool_* (ws[i]: uint8 argmax) */
    float *xbuf;           /* reordered input, when needed */
    float *xpad;           /* scratch of nn_cpu_conv_bwdw */
    size_t xpad_floats;
    const float *x_cur;    /* the input of the current step */
    float *dlogits;
    float *fold_w, **fold_b; /* BN-folded conv weights (canonical layout), biases */
    uint64_t fold_pver, fold_bver; /* params / buffers version folded */
    int have_fold;
    int *wino_m;           /* predict: conv i runs as Winograd F(m x m, 3x3) (0: oneDNN) */
    float **wino_u;        /* its transformed folded weights (refresh_fold) */
    int *wtr_m;            /* train_step: conv i's forward and backward data as Winograd */
    float **wtr_uf, **wtr_ub; /* their transformed weights (forward, backward data) */
    uint64_t wtr_ver;      /* params_version they were transformed at */
    int have_wtr;
    float *zero_bias;      /* zeros, for the unbiased training convolutions */
    float *wino_scratch;   /* nn_wino_conv's per-thread scratch, grown on demand */
    size_t wino_scratch_floats;
    plan plans[MAX_PLANS];
    int nplans, next_evict;
} cpu_state;

/* ------------------------------------------------------------ helpers -- */
static void *falloc(size_t bytes) {
    size_t sz = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, sz ? sz : 64);
    if (p) memset(p, 0, sz ? sz : 64);
    return p;
}

static void md4(dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_format_tag_t tag) {
    dnnl_dims_t d = {n, c, h, w};
    dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag);
}

static void md1(dnnl_memory_desc_t *md, int c) {
    dnnl_dims_t d = {c};
    dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_x);
}

static int mem(plan *pl, cpu_state *s, const dnnl_memory_desc_t *md, void *ptr,
               dnnl_memory_t *out, lm_err *err) {
    if (pl->nmems == pl->capmems) {
        int cap = pl->capmems ? pl->capmems * 2 : 256;
        dnnl_memory_t *m = realloc(pl->mems, sizeof *m * (size_t)cap);
        if (!m) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
        pl->mems = m;
        pl->capmems = cap;
    }
    DN(dnnl_memory_create(out, md, s->eng, ptr));
    pl->mems[pl->nmems++] = *out;
    return LUMEN_OK;
}

static void arg(prim *p, int a, dnnl_memory_t m) {
    p->args[p->nargs].arg = a;
    p->args[p->nargs].memory = m;
    p->nargs++;
}

static const char *impl_of(dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return impl ? impl : "?";
}

static int make_prim(prim *p, dnnl_primitive_desc_t pd, lm_err *err) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(p->impl, sizeof p->impl, "%s", impl ? impl : "?");
    DN(dnnl_primitive_create(&p->p, pd));
    return LUMEN_OK;
}

static int run(cpu_state *s, const prim *p, lm_err *err) {
    if (!p->p) return LUMEN_OK;
    DN(dnnl_primitive_execute(p->p, s->stream, p->nargs, p->args));
    return LUMEN_OK;
}

static const dnnl_memory_desc_t *qmd(dnnl_primitive_desc_t pd, dnnl_query_t q) {
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

static size_t md_floats(const dnnl_memory_desc_t *md) {
    return dnnl_memory_desc_get_size(md) / sizeof(float);
}

/* A reorder from canonical OIHW weights (ptr) to the format `want` into a new
 * buffer, or nothing (p NULL, *buf NULL) when they are the same. */
static int weight_reorder(plan *pl, cpu_state *s, const nn_node *n, float *canon,
                          const dnnl_memory_desc_t *want, prim *p, float **buf, lm_err *err) {
    dnnl_memory_desc_t oihw;
    md4(&oihw, n->c, n->ic, n->k, n->k, dnnl_oihw);
    *buf = NULL;
    if (dnnl_memory_desc_equal(&oihw, want)) return LUMEN_OK;
    *buf = falloc(dnnl_memory_desc_get_size(want));
    if (!*buf) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    dnnl_memory_t src, dst;
    dnnl_primitive_desc_t pd;
    int rc;
    if ((rc = mem(pl, s, &oihw, canon, &src, err)) || (rc = mem(pl, s, want, *buf, &dst, err)))
        return rc;
    DN(dnnl_reorder_primitive_desc_create(&pd, &oihw, s->eng, want, s->eng, NULL));
    rc = make_prim(p, pd, err);
    dnnl_primitive_desc_destroy(pd);
    arg(p, DNNL_ARG_FROM, src);
    arg(p, DNNL_ARG_TO, dst);
    return rc;
}

static void prim_free(prim *p) {
    if (p->p) dnnl_primitive_destroy(p->p);
    p->p = NULL;
}

static void plan_free(plan *pl, int G) {
    if (pl->nodes)
        for (int i = 0; i < G; i++) {
            node_plan *np = &pl->nodes[i];
            prim *ps[] = {&np->fwd, &np->fwd_eval, &np->bwd, &np->bwdw, &np->inf,
                          &np->w_fwd, &np->w_bwd, &np->w_inf, &np->dw_out};
            for (size_t j = 0; j < sizeof ps / sizeof *ps; j++) prim_free(ps[j]);
            free(np->w_fwd_buf);
            free(np->w_bwd_buf);
            free(np->w_inf_buf);
            free(np->dw_buf);
        }
    prim_free(&pl->in_reorder);
    for (int i = 0; i < pl->nmems; i++) dnnl_memory_destroy(pl->mems[i]);
    free(pl->mems);
    free(pl->nodes);
    memset(pl, 0, sizeof *pl);
}

/* ------------------------------------------------------------ plan -- */
/* The workspace of node i (BN ReLU mask, max-pool indices), sized by the
 * first (full-batch) plan. */
static int workspace(plan *pl, cpu_state *s, int i, dnnl_primitive_desc_t pd,
                     dnnl_memory_t *out, lm_err *err) {
    const dnnl_memory_desc_t *md = qmd(pd, dnnl_query_workspace_md);
    size_t sz = dnnl_memory_desc_get_size(md);
    if (!s->ws[i]) {
        if (!(s->ws[i] = falloc(sz))) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
        s->ws_size[i] = sz;
    }
    if (sz > s->ws_size[i]) return lm_fail(err, LUMEN_ERR, "engine: workspace grew for a smaller batch");
    return mem(pl, s, md, s->ws[i], out, err);
}

static void act_md(const cpu_state *s, dnnl_memory_desc_t *md, int n, int c, int h, int w) {
    md4(md, n, c, h, w, s->act_tag);
}

static void conv_dims(const nn_node *nd, dnnl_dims_t st, dnnl_dims_t pl, dnnl_dims_t pr) {
    st[0] = st[1] = nd->stride;
    pl[0] = pl[1] = nd->pad;
    pr[0] = (nd->h - 1) * nd->stride + nd->k - nd->ih - nd->pad;
    pr[1] = (nd->w - 1) * nd->stride + nd->k - nd->iw - nd->pad;
}

static int plan_conv(nn_engine *e, cpu_state *s, plan *pl, int i, lm_err *err) {
    const nn_node *nd = &e->graph.nodes[i];
    node_plan *np = &pl->nodes[i];
    const nn_model *m = e->model;
    int N = pl->n, rc;
    dnnl_dims_t st, pdl, pdr;
    conv_dims(nd, st, pdl, pdr);
    dnnl_memory_desc_t src, dst, wany, bias;
    act_md(s, &dst, N, nd->c, nd->h, nd->w);
    if (nd->in[0] == NN_INPUT) md4(&src, N, nd->ic, nd->ih, nd->iw, dnnl_format_tag_any);
    else act_md(s, &src, N, nd->ic, nd->ih, nd->iw);
    md4(&wany, nd->c, nd->ic, nd->k, nd->k, dnnl_format_tag_any);
    float *wcanon = e->params + m->tensors[nd->weight].offset;
    float *gcanon = e->grads + m->tensors[nd->weight].offset;

    /* forward (training) */
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t fpd, pd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                          &src, &wany, NULL, &dst, st, pdl, pdr));
    DN(dnnl_primitive_desc_create(&fpd, &cd, NULL, s->eng, NULL));
    if (nd->in[0] == NN_INPUT && strncmp(impl_of(fpd), "ref", 3) == 0) {
        /* the stem: the plain input layout may have no JIT kernel for this
         * output layout (nhwc); offer the input as nhwc instead */
        md4(&src, N, nd->ic, nd->ih, nd->iw, dnnl_nhwc);
        DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                              &src, &wany, NULL, &dst, st, pdl, pdr));
        dnnl_primitive_desc_destroy(fpd);
        DN(dnnl_primitive_desc_create(&fpd, &cd, NULL, s->eng, NULL));
    }
    const dnnl_memory_desc_t *srcq = qmd(fpd, dnnl_query_src_md);
    dnnl_memory_t msrc, mdst, mw;
    if (nd->in[0] == NN_INPUT) {
        dnnl_memory_desc_t plain, nhwc;
        md4(&plain, N, nd->ic, nd->ih, nd->iw, dnnl_nchw);
        md4(&nhwc, N, nd->ic, nd->ih, nd->iw, dnnl_nhwc);
        if ((rc = mem(pl, s, &plain, DNNL_MEMORY_NONE, &pl->x_user, err))) goto out;
        if (dnnl_memory_desc_equal(&plain, srcq)) {
            msrc = pl->x_user;
        } else if (nd->ic == 1 && dnnl_memory_desc_equal(&nhwc, srcq)) { /* same bytes */
            if ((rc = mem(pl, s, srcq, DNNL_MEMORY_NONE, &pl->x_direct, err))) goto out;
            msrc = pl->x_direct;
        } else {
            /* the first plan is the full batch: the largest input */
            if (!s->xbuf && !(s->xbuf = falloc(dnnl_memory_desc_get_size(srcq)))) {
                rc = lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
                goto out;
            }
            if ((rc = mem(pl, s, srcq, s->xbuf, &msrc, err))) goto out;
            dnnl_primitive_desc_t rpd;
            if (dnnl_reorder_primitive_desc_create(&rpd, &plain, s->eng, srcq, s->eng, NULL)) {
                rc = lm_fail(err, LUMEN_ERR, "oneDNN: no input reorder");
                goto out;
            }
            rc = make_prim(&pl->in_reorder, rpd, err);
            dnnl_primitive_desc_destroy(rpd);
            if (rc) goto out;
            arg(&pl->in_reorder, DNNL_ARG_FROM, pl->x_user);
            arg(&pl->in_reorder, DNNL_ARG_TO, msrc);
        }
    } else if ((rc = mem(pl, s, &src, s->out[nd->in[0]], &msrc, err))) {
        goto out;
    }
    if ((rc = mem(pl, s, &dst, s->out[i], &mdst, err))) goto out;
    if ((rc = weight_reorder(pl, s, nd, wcanon, qmd(fpd, dnnl_query_weights_md), &np->w_fwd,
                             &np->w_fwd_buf, err)))
        goto out;
    if ((rc = mem(pl, s, qmd(fpd, dnnl_query_weights_md), np->w_fwd_buf ? np->w_fwd_buf : wcanon,
                  &mw, err)))
        goto out;
    if ((rc = make_prim(&np->fwd, fpd, err))) goto out;
    arg(&np->fwd, DNNL_ARG_SRC, msrc);
    arg(&np->fwd, DNNL_ARG_WEIGHTS, mw);
    arg(&np->fwd, DNNL_ARG_DST, mdst);

    /* backward weights */
    dnnl_memory_t mdy, mdw;
    DN(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, srcq, &wany,
                                                   NULL, &dst, st, pdl, pdr));
    if (dnnl_primitive_desc_create(&pd, &cd, NULL, s->eng, fpd)) {
        rc = lm_fail(err, LUMEN_ERR, "oneDNN: no backward-weights convolution for %s", nd->name);
        goto out;
    }
    if ((rc = mem(pl, s, &dst, (void *)s->dy[i], &mdy, err))) goto bw_out;
    {
        const dnnl_memory_desc_t *dwq = qmd(pd, dnnl_query_diff_weights_md);
        dnnl_memory_desc_t oihw;
        md4(&oihw, nd->c, nd->ic, nd->k, nd->k, dnnl_oihw);
        if (dnnl_memory_desc_equal(dwq, &oihw)) {
            if ((rc = mem(pl, s, dwq, gcanon, &mdw, err))) goto bw_out;
        } else {
            np->dw_buf = falloc(dnnl_memory_desc_get_size(dwq));
            if (!np->dw_buf) { rc = lm_fail(err, LUMEN_ENOMEM, "engine: out of memory"); goto bw_out; }
            dnnl_memory_t mg;
            dnnl_primitive_desc_t rpd;
            if ((rc = mem(pl, s, dwq, np->dw_buf, &mdw, err)) ||
                (rc = mem(pl, s, &oihw, gcanon, &mg, err)))
                goto bw_out;
            if (dnnl_reorder_primitive_desc_create(&rpd, dwq, s->eng, &oihw, s->eng, NULL)) {
                rc = lm_fail(err, LUMEN_ERR, "oneDNN: no weight-gradient reorder");
                goto bw_out;
            }
            rc = make_prim(&np->dw_out, rpd, err);
            dnnl_primitive_desc_destroy(rpd);
            if (rc) goto bw_out;
            arg(&np->dw_out, DNNL_ARG_FROM, mdw);
            arg(&np->dw_out, DNNL_ARG_TO, mg);
        }
    }
    if (s->act_block == 8 && nd->in[0] != NN_INPUT && nd->k == 3 && nd->stride == 1 &&
        nd->pad == 1) {
        /* 3x3/1 on nChw8c: our sliding-window kernel, 1.1-1.5x oneDNN 2.6's
         * jit:avx2 on this network's shapes; stride 2 and 1x1 stay with
         * oneDNN (ours measured no faster there) */
        np->blk8_bwdw = 1;
        prim_free(&np->dw_out);
        goto bw_out;
    }
    if (strncmp(impl_of(pd), "ref", 3) == 0 && nd->c % 8 == 0 &&
        (s->act_block ? s->act_block % 8 == 0 : nd->c % 8 == 0)) {
        /* no JIT kernel (the stem's plain input; 1x1 and 2x2 outputs): ours,
         * straight into the canonical OIHW gradient */
        np->own_bwdw = 1;
        size_t need = nn_cpu_conv_bwdw_scratch(N, nd->ic, nd->ih, nd->iw, nd->k, nd->pad);
        if (need > s->xpad_floats) {
            free(s->xpad);
            s->xpad_floats = 0;
            if (!(s->xpad = falloc(sizeof(float) * need))) {
                rc = lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
                goto bw_out;
            }
            s->xpad_floats = need;
        }
        prim_free(&np->dw_out);
        goto bw_out;
    }
    if ((rc = make_prim(&np->bwdw, pd, err))) goto bw_out;
    arg(&np->bwdw, DNNL_ARG_SRC, msrc);
    arg(&np->bwdw, DNNL_ARG_DIFF_DST, mdy);
    arg(&np->bwdw, DNNL_ARG_DIFF_WEIGHTS, mdw);
bw_out:
    dnnl_primitive_desc_destroy(pd);
    if (rc) goto out;

    /* backward data (not for the stem: nothing needs the input gradient) */
    if (nd->in[0] != NN_INPUT) {
        DN(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &wany,
                                                    &dst, st, pdl, pdr));
        if (dnnl_primitive_desc_create(&pd, &cd, NULL, s->eng, fpd)) {
            rc = lm_fail(err, LUMEN_ERR, "oneDNN: no backward-data convolution for %s", nd->name);
            goto out;
        }
        const dnnl_memory_desc_t *wq = qmd(pd, dnnl_query_weights_md);
        dnnl_memory_t mwb, mdx;
        if (dnnl_memory_desc_equal(wq, qmd(fpd, dnnl_query_weights_md))) {
            mwb = mw;
        } else if (!(rc = weight_reorder(pl, s, nd, wcanon, wq, &np->w_bwd, &np->w_bwd_buf, err))) {
            rc = mem(pl, s, wq, np->w_bwd_buf ? np->w_bwd_buf : wcanon, &mwb, err);
        }
        if (!rc) rc = mem(pl, s, &src, s->dx[i], &mdx, err);
        if (!rc) rc = make_prim(&np->bwd, pd, err);
        dnnl_primitive_desc_destroy(pd);
        if (rc) goto out;
        arg(&np->bwd, DNNL_ARG_DIFF_DST, mdy);
        arg(&np->bwd, DNNL_ARG_WEIGHTS, mwb);
        arg(&np->bwd, DNNL_ARG_DIFF_SRC, mdx);
    }

    /* predict: folded BN as bias, fused ReLU / residual sum as post-ops */
    {
        int c0 = s->cons[0][i];
        const nn_node *bn = c0 >= 0 && e->graph.nodes[c0].op == NN_OP_BN ? &e->graph.nodes[c0] : NULL;
        if (!bn) {
            rc = lm_fail(err, LUMEN_ERR, "engine: %s is not followed by batch norm", nd->name);
            goto out;
        }
        dnnl_post_ops_t po;
        dnnl_primitive_attr_t attr;
        DN(dnnl_post_ops_create(&po));
        if (s->deferred[i]) dnnl_post_ops_append_sum(po, 1.0f);
        if (bn->relu || s->deferred[i])
            dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        DN(dnnl_primitive_attr_create(&attr));
        dnnl_primitive_attr_set_post_ops(attr, po);
        md1(&bias, nd->c);
        dnnl_memory_desc_t isrc = *srcq;
        DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                              &isrc, &wany, &bias, &dst, st, pdl, pdr));
        dnnl_status_t stt = dnnl_primitive_desc_create(&pd, &cd, attr, s->eng, NULL);
        dnnl_primitive_attr_destroy(attr);
        dnnl_post_ops_destroy(po);
        if (stt) {
            rc = lm_fail(err, LUMEN_ERR, "oneDNN: no inference convolution for %s", nd->name);
            goto out;
        }
        const dnnl_memory_desc_t *wq = qmd(pd, dnnl_query_weights_md);
        float *fw = s->fold_w + m->tensors[nd->weight].offset;
        dnnl_memory_t mwi, mb, mo;
        rc = weight_reorder(pl, s, nd, fw, wq, &np->w_inf, &np->w_inf_buf, err);
        if (!rc) rc = mem(pl, s, wq, np->w_inf_buf ? np->w_inf_buf : fw, &mwi, err);
        if (!rc) rc = mem(pl, s, &bias, s->fold_b[i], &mb, err);
        if (!rc) rc = mem(pl, s, &dst, s->infbuf[i], &mo, err);
        if (!rc) rc = make_prim(&np->inf, pd, err);
        dnnl_primitive_desc_destroy(pd);
        if (rc) goto out;
        dnnl_memory_t misrc = msrc;
        if (nd->in[0] != NN_INPUT &&
            (rc = mem(pl, s, &src, s->infbuf[nd->in[0]], &misrc, err)))
            goto out;
        arg(&np->inf, DNNL_ARG_SRC, misrc);
        arg(&np->inf, DNNL_ARG_WEIGHTS, mwi);
        arg(&np->inf, DNNL_ARG_BIAS, mb);
        arg(&np->inf, DNNL_ARG_DST, mo);
    }
out:
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

static int plan_bn(nn_engine *e, cpu_state *s, plan *pl, int i, lm_err *err) {
    const nn_node *nd = &e->graph.nodes[i];
    node_plan *np = &pl->nodes[i];
    const nn_model *m = e->model;
    int N = pl->n, rc = 0;
    dnnl_memory_desc_t data, sc;
    act_md(s, &data, N, nd->c, nd->h, nd->w);
    md1(&sc, nd->c);
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (nd->relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t fpd, pd;
    DN(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &data, BN_EPS, flags));
    DN(dnnl_primitive_desc_create(&fpd, &bd, NULL, s->eng, NULL));
    dnnl_memory_t msrc, mdst, mg, mb, mmean, mvar, mws = NULL, mdy, mdx, mdg, mdb, mrm, mrv;
    rc = mem(pl, s, &data, s->out[nd->in[0]], &msrc, err);
    if (!rc) rc = mem(pl, s, &data, s->out[i], &mdst, err);
    if (!rc) rc = mem(pl, s, &sc, e->params + m->tensors[nd->weight].offset, &mg, err);
    if (!rc) rc = mem(pl, s, &sc, e->params + m->tensors[nd->bias].offset, &mb, err);
    if (!rc) rc = mem(pl, s, &sc, s->mean[i], &mmean, err);
    if (!rc) rc = mem(pl, s, &sc, s->var[i], &mvar, err);
    if (!rc) rc = mem(pl, s, &sc, e->buffers + m->tensors[nd->mean].offset, &mrm, err);
    if (!rc) rc = mem(pl, s, &sc, e->buffers + m->tensors[nd->var].offset, &mrv, err);
    if (!rc && nd->relu) rc = workspace(pl, s, i, fpd, &mws, err);
    if (!rc) rc = make_prim(&np->fwd, fpd, err);
    if (rc) goto out;
    arg(&np->fwd, DNNL_ARG_SRC, msrc);
    arg(&np->fwd, DNNL_ARG_SCALE, mg);
    arg(&np->fwd, DNNL_ARG_SHIFT, mb);
    arg(&np->fwd, DNNL_ARG_DST, mdst);
    arg(&np->fwd, DNNL_ARG_MEAN, mmean);
    arg(&np->fwd, DNNL_ARG_VARIANCE, mvar);
    if (mws) arg(&np->fwd, DNNL_ARG_WORKSPACE, mws);

    /* backward */
    DN(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &data, &data, BN_EPS, flags));
    if (dnnl_primitive_desc_create(&pd, &bd, NULL, s->eng, fpd)) {
        rc = lm_fail(err, LUMEN_ERR, "oneDNN: no backward batch norm for %s", nd->name);
        goto out;
    }
    rc = mem(pl, s, &data, (void *)s->dy[i], &mdy, err);
    if (!rc) rc = mem(pl, s, &data, s->dx[i], &mdx, err);
    if (!rc) rc = mem(pl, s, &sc, e->grads + m->tensors[nd->weight].offset, &mdg, err);
    if (!rc) rc = mem(pl, s, &sc, e->grads + m->tensors[nd->bias].offset, &mdb, err);
    if (!rc) rc = make_prim(&np->bwd, pd, err);
    dnnl_primitive_desc_destroy(pd);
    if (rc) goto out;
    arg(&np->bwd, DNNL_ARG_SRC, msrc);
    arg(&np->bwd, DNNL_ARG_MEAN, mmean);
    arg(&np->bwd, DNNL_ARG_VARIANCE, mvar);
    arg(&np->bwd, DNNL_ARG_DIFF_DST, mdy);
    arg(&np->bwd, DNNL_ARG_SCALE, mg);
    arg(&np->bwd, DNNL_ARG_SHIFT, mb);
    if (mws) arg(&np->bwd, DNNL_ARG_WORKSPACE, mws);
    arg(&np->bwd, DNNL_ARG_DIFF_SRC, mdx);
    arg(&np->bwd, DNNL_ARG_DIFF_SCALE, mdg);
    arg(&np->bwd, DNNL_ARG_DIFF_SHIFT, mdb);

    /* unfolded eval: running statistics */
    DN(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, &data, BN_EPS,
                                                  flags | dnnl_use_global_stats));
    if (dnnl_primitive_desc_create(&pd, &bd, NULL, s->eng, NULL)) {
        rc = lm_fail(err, LUMEN_ERR, "oneDNN: no inference batch norm for %s", nd->name);
        goto out;
    }
    rc = make_prim(&np->fwd_eval, pd, err);
    dnnl_primitive_desc_destroy(pd);
    if (rc) goto out;
    arg(&np->fwd_eval, DNNL_ARG_SRC, msrc);
    arg(&np->fwd_eval, DNNL_ARG_SCALE, mg);
    arg(&np->fwd_eval, DNNL_ARG_SHIFT, mb);
    arg(&np->fwd_eval, DNNL_ARG_MEAN, mrm);
    arg(&np->fwd_eval, DNNL_ARG_VARIANCE, mrv);
    arg(&np->fwd_eval, DNNL_ARG_DST, mdst);
out:
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* max pool (k, stride, pad). */
static int plan_pool(nn_engine *e, cpu_state *s, plan *pl, int i, lm_err *err) {
    const nn_node *nd = &e->graph.nodes[i];
    node_plan *np = &pl->nodes[i];
    int N = pl->n, rc = 0;
    dnnl_memory_desc_t src, dst;
    act_md(s, &src, N, nd->ic, nd->ih, nd->iw);
    act_md(s, &dst, N, nd->c, nd->h, nd->w);
    dnnl_dims_t st, ker, pdl, pdr;
    conv_dims(nd, st, pdl, pdr);
    ker[0] = ker[1] = nd->k;
    dnnl_alg_kind_t alg = dnnl_pooling_max;
    dnnl_pooling_desc_t d;
    dnnl_primitive_desc_t fpd, pd;
    DN(dnnl_pooling_forward_desc_init(&d, dnnl_forward_training, alg, &src, &dst, st, ker, pdl, pdr));
    DN(dnnl_primitive_desc_create(&fpd, &d, NULL, s->eng, NULL));
    dnnl_memory_t msrc, mdst, mws = NULL, mdy, mdx, misrc, mio;
    rc = mem(pl, s, &src, s->out[nd->in[0]], &msrc, err);
    if (!rc) rc = mem(pl, s, &dst, s->out[i], &mdst, err);
    if (!rc) rc = workspace(pl, s, i, fpd, &mws, err);
    if (!rc) rc = make_prim(&np->fwd, fpd, err);
    if (rc) goto out;
    arg(&np->fwd, DNNL_ARG_SRC, msrc);
    arg(&np->fwd, DNNL_ARG_DST, mdst);
    if (mws) arg(&np->fwd, DNNL_ARG_WORKSPACE, mws);

    DN(dnnl_pooling_backward_desc_init(&d, alg, &src, &dst, st, ker, pdl, pdr));
    if (dnnl_primitive_desc_create(&pd, &d, NULL, s->eng, fpd)) {
        rc = lm_fail(err, LUMEN_ERR, "oneDNN: no backward pooling for %s", nd->name);
        goto out;
    }
    rc = mem(pl, s, &dst, (void *)s->dy[i], &mdy, err);
    if (!rc) rc = mem(pl, s, &src, s->dx[i], &mdx, err);
    if (!rc) rc = make_prim(&np->bwd, pd, err);
    dnnl_primitive_desc_destroy(pd);
    if (rc) goto out;
    arg(&np->bwd, DNNL_ARG_DIFF_DST, mdy);
    arg(&np->bwd, DNNL_ARG_DIFF_SRC, mdx);
    if (mws) arg(&np->bwd, DNNL_ARG_WORKSPACE, mws);

    /* predict */
    DN(dnnl_pooling_forward_desc_init(&d, dnnl_forward_inference, alg, &src, &dst, st, ker, pdl, pdr));
    if (dnnl_primitive_desc_create(&pd, &d, NULL, s->eng, NULL)) {
        rc = lm_fail(err, LUMEN_ERR, "oneDNN: no inference pooling for %s", nd->name);
        goto out;
    }
    rc = mem(pl, s, &src, s->infbuf[nd->in[0]], &misrc, err);
    if (!rc) rc = mem(pl, s, &dst, s->infbuf[i], &mio, err);
    if (!rc) rc = make_prim(&np->inf, pd, err);
    dnnl_primitive_desc_destroy(pd);
    if (rc) goto out;
    arg(&np->inf, DNNL_ARG_SRC, misrc);
    arg(&np->inf, DNNL_ARG_DST, mio);
out:
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

static plan *get_plan(nn_engine *e, int n, lm_err *err) {
    cpu_state *s = e->impl;
    for (int k = 0; k < s->nplans; k++)
        if (s->plans[k].n == n) return &s->plans[k];
    plan *pl;
    if (s->nplans < MAX_PLANS) {
        pl = &s->plans[s->nplans++];
    } else { /* evict round-robin, never the full-batch plan in slot 0 */
        pl = &s->plans[1 + s->next_evict];
        s->next_evict = (s->next_evict + 1) % (MAX_PLANS - 1);
        plan_free(pl, e->graph.n);
    }
    memset(pl, 0, sizeof *pl);
    pl->n = n;
    pl->nodes = calloc((size_t)e->graph.n, sizeof *pl->nodes);
    int rc = pl->nodes ? 0 : lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    for (int i = 0; !rc && i < e->graph.n; i++) {
        switch (e->graph.nodes[i].op) {
        case NN_OP_CONV: rc = plan_conv(e, s, pl, i, err); break;
        case NN_OP_BN: rc = plan_bn(e, s, pl, i, err); break;
        case NN_OP_MAXPOOL:
            if (!s->own_pool[i]) rc = plan_pool(e, s, pl, i, err);
            break;
        default: break;
        }
    }
    if (rc) {
        plan_free(pl, e->graph.n);
        /* the slot stays free: move the last plan into it */
        int k = (int)(pl - s->plans);
        if (k != s->nplans - 1) *pl = s->plans[s->nplans - 1];
        memset(&s->plans[--s->nplans], 0, sizeof *pl);
        return NULL;
    }
    return pl;
}

/* ------------------------------------------------------------ create -- */
static void cpu_destroy(nn_engine *e) {
    cpu_state *s = e->impl;
    if (!s) return;
    int G = e->graph.n;
    for (int k = 0; k < s->nplans; k++) plan_free(&s->plans[k], G);
    if (s->ws)
        for (int i = 0; i < G; i++) free(s->ws[i]);
    free(s->ws);
    float **arrs[] = {s->out, s->dx, s->dsum, s->mean, s->var, s->fold_b};
    for (size_t a = 0; a < sizeof arrs / sizeof *arrs; a++) {
        if (!arrs[a]) continue;
        for (int i = 0; i < G; i++) free(arrs[a][i]);
        free(arrs[a]);
    }
    free(s->img);
    free(s->ws_size);
    free(s->dy);
    free(s->ncons);
    free(s->cons[0]);
    free(s->cons[1]);
    free(s->infbuf);
    free(s->deferred);
    free(s->own_pool);
    free(s->xbuf);
    free(s->xpad);
    free(s->dlogits);
    free(s->fold_w);
    if (s->wino_u)
        for (int i = 0; i < G; i++) free(s->wino_u[i]);
    free(s->wino_u);
    free(s->wino_m);
    if (s->wtr_uf)
        for (int i = 0; i < G; i++) free(s->wtr_uf[i]);
    if (s->wtr_ub)
        for (int i = 0; i < G; i++) free(s->wtr_ub[i]);
    free(s->wtr_uf);
    free(s->wtr_ub);
    free(s->wtr_m);
    free(s->zero_bias);
    free(s->wino_scratch);
    if (s->stream) dnnl_stream_destroy(s->stream);
    if (s->eng) dnnl_engine_destroy(s->eng);
    free(s);
    e->impl = NULL;
}

/* Picks the activation layout: what a layer1-like 3x3 convolution prefers. */
static int choose_layout(nn_engine *e, cpu_state *s, lm_err *err) {
    const char *want = e->opts.layout;
    if (want && strcmp(want, "nhwc") == 0) {
        s->act_tag = dnnl_nhwc;
        s->act_name = "nhwc";
        s->act_block = 0;
        return LUMEN_OK;
    }
    if (want && *want && strcmp(want, "auto") != 0 && strcmp(want, "blocked") != 0)
        return lm_fail(err, LUMEN_EINVAL, "engine.layout: must be auto, blocked or nhwc, got '%s'",
                       want);
    int c = e->model->cfg.widths[0], hw = 32;
    dnnl_memory_desc_t a, w;
    md4(&a, e->opts.batch, c, hw, hw, dnnl_format_tag_any);
    md4(&w, c, c, 3, 3, dnnl_format_tag_any);
    dnnl_dims_t st = {1, 1}, p = {1, 1};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd;
    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &a,
                                          &w, NULL, &a, st, p, p));
    DN(dnnl_primitive_desc_create(&pd, &cd, NULL, s->eng, NULL));
    const dnnl_memory_desc_t *q = qmd(pd, dnnl_query_src_md);
    static const struct { dnnl_format_tag_t t; const char *n; int b; } cand[] = {
        {dnnl_nChw16c, "nChw16c", 16}, {dnnl_nChw8c, "nChw8c", 8}, {dnnl_nhwc, "nhwc", 0}};
    s->act_tag = dnnl_nChw8c;
    s->act_name = "nChw8c";
    s->act_block = 8;
    for (size_t k = 0; k < sizeof cand / sizeof *cand; k++) {
        dnnl_memory_desc_t t;
        md4(&t, e->opts.batch, c, hw, hw, cand[k].t);
        if (dnnl_memory_desc_equal(&t, q)) {
            s->act_tag = cand[k].t;
            s->act_name = cand[k].n;
            s->act_block = cand[k].b;
        }
    }
    dnnl_primitive_desc_destroy(pd);
    if (want && strcmp(want, "blocked") == 0 && s->act_tag == dnnl_nhwc) {
        s->act_tag = dnnl_nChw8c;
        s->act_name = "nChw8c";
        s->act_block = 8;
    }
    return LUMEN_OK;
}

/* The Winograd tile for node n under the choice `want` (NULL/"auto",
 * "wino2", "wino4"; "direct": 0), or 0 when the convolution is not eligible
 * (nChw8c, 3x3 stride 1 pad 1, not the stem).  auto takes the tile with
 * fewer GEMM multiplications for the layer's map size (partial tiles at the
 * border count in full). */
static int wino_tile(const cpu_state *s, const nn_node *n, const char *want) {
    if (s->act_block != 8 || (want && strcmp(want, "direct") == 0)) return 0;
    if (n->op != NN_OP_CONV || n->in[0] == NN_INPUT || n->k != 3 || n->stride != 1 ||
        n->pad != 1 || n->h != n->ih || n->w != n->iw)
        return 0;
    if (want && strcmp(want, "wino2") == 0) return 2;
    if (want && strcmp(want, "wino4") == 0) return 4;
    long c2 = 16L * ((n->h + 1) / 2) * ((n->w + 1) / 2);
    long c4 = 36L * ((n->h + 3) / 4) * ((n->w + 3) / 4);
    return c4 < c2 ? 4 : 2;
}

/* Which convolutions predict (opts.infer_conv) and train_step
 * (opts.train_conv, default direct) run as Winograd; their weight buffers. */
static int choose_wino(nn_engine *e, cpu_state *s, lm_err *err) {
    const char *tc = e->opts.train_conv ? e->opts.train_conv : "direct";
    int cmax = 0;
    for (int i = 0; i < e->graph.n; i++) {
        const nn_node *n = &e->graph.nodes[i];
        int m = wino_tile(s, n, e->opts.infer_conv), mt = wino_tile(s, n, tc);
        s->wino_m[i] = m;
        s->wtr_m[i] = mt;
        if (m && !(s->wino_u[i] = falloc(sizeof(float) * nn_wino_weights_floats(m, n->ic, n->c))))
            return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for Winograd weights");
        if (!mt) continue;
        if (!(s->wtr_uf[i] = falloc(sizeof(float) * nn_wino_weights_floats(mt, n->ic, n->c))) ||
            !(s->wtr_ub[i] = falloc(sizeof(float) * nn_wino_weights_floats(mt, n->c, n->ic))))
            return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for Winograd weights");
        cmax = n->c > cmax ? n->c : cmax;
        cmax = n->ic > cmax ? n->ic : cmax;
    }
    if (cmax && !(s->zero_bias = falloc(sizeof(float) * (size_t)((cmax + 15) / 16 * 16))))
        return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    return LUMEN_OK;
}

static int cpu_create(nn_engine *e, lm_err *err) {
    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    e->impl = s;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    int G = g->n, B = e->opts.batch, rc;
    s->B = B;
    DN(dnnl_engine_create(&s->eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&s->stream, s->eng, dnnl_stream_default_flags));
    if ((rc = choose_layout(e, s, err))) return rc;

    s->out = calloc((size_t)G, sizeof(float *));
    s->dx = calloc((size_t)G, sizeof(float *));
    s->dsum = calloc((size_t)G, sizeof(float *));
    s->ws = calloc((size_t)G, sizeof(void *));
    s->mean = calloc((size_t)G, sizeof(float *));
    s->var = calloc((size_t)G, sizeof(float *));
    s->fold_b = calloc((size_t)G, sizeof(float *));
    s->img = calloc((size_t)G, sizeof(size_t));
    s->ws_size = calloc((size_t)G, sizeof(size_t));
    s->dy = calloc((size_t)G, sizeof(float *));
    s->ncons = calloc((size_t)G, sizeof(int));
    s->cons[0] = malloc(sizeof(int) * (size_t)G);
    s->cons[1] = malloc(sizeof(int) * (size_t)G);
    s->infbuf = calloc((size_t)G, sizeof(float *));
    s->deferred = calloc((size_t)G, sizeof(int));
    s->own_pool = calloc((size_t)G, 1);
    s->fold_w = falloc(sizeof(float) * m->nparams);
    s->wino_m = calloc((size_t)G, sizeof(int));
    s->wino_u = calloc((size_t)G, sizeof(float *));
    s->wtr_m = calloc((size_t)G, sizeof(int));
    s->wtr_uf = calloc((size_t)G, sizeof(float *));
    s->wtr_ub = calloc((size_t)G, sizeof(float *));
    const nn_node *fc = &g->nodes[G - 1];
    s->dlogits = falloc(sizeof(float) * (size_t)B * fc->c);
    if (!s->out || !s->dx || !s->dsum || !s->ws || !s->mean || !s->var || !s->fold_b || !s->img || !s->ws_size ||
        !s->dy || !s->ncons || !s->cons[0] || !s->cons[1] || !s->infbuf || !s->deferred || !s->own_pool ||
        !s->fold_w || !s->dlogits || !s->wino_m || !s->wino_u || !s->wtr_m || !s->wtr_uf ||
        !s->wtr_ub)
        return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    for (int i = 0; i < G; i++) s->cons[0][i] = s->cons[1][i] = -1;
    for (int j = 0; j < G; j++)
        for (int w = 0; w < 2; w++) {
            int p = g->nodes[j].in[w];
            if (p < 0) continue;
            if (s->ncons[p] >= 2)
                return lm_fail(err, LUMEN_ERR, "engine: %s has more than two consumers", g->nodes[p].name);
            s->cons[s->ncons[p]++][p] = j;
        }

    /* forward buffers */
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        dnnl_memory_desc_t md;
        if (n->op == NN_OP_GAP || n->op == NN_OP_DROPOUT || n->op == NN_OP_FC) md4(&md, 1, n->c, 1, 1, dnnl_nchw);
        else act_md(s, &md, 1, n->c, n->h, n->w);
        s->img[i] = md_floats(&md);
        s->out[i] = falloc(sizeof(float) * s->img[i] * B);
        if (!s->out[i]) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for activations");
        if (n->op == NN_OP_BN) {
            s->mean[i] = falloc(sizeof(float) * n->c);
            s->var[i] = falloc(sizeof(float) * n->c);
            /* bias of the folded conv, padded with zeros to whole 16-channel groups */
            s->fold_b[n->in[0]] = falloc(sizeof(float) * (size_t)((n->c + 15) / 16 * 16));
            if (!s->mean[i] || !s->var[i] || !s->fold_b[n->in[0]])
                return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
        }
        /* own max pool (measured ~4x faster than oneDNN 2.6's jit:avx2 here):
         * 8-lane chunks of a channel block */
        if (n->op == NN_OP_MAXPOOL && n->k <= 15 &&
            (s->act_block ? s->act_block % 8 == 0 : n->c % 8 == 0)) {
            s->own_pool[i] = 1;
            if (!(s->ws[i] = falloc(s->img[i] * B)))
                return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
        }
    }

    /* backward buffers and where each node's output gradient comes from */
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        if (n->in[0] != NN_INPUT && n->op != NN_OP_ADD &&
            !(s->dx[i] = falloc(sizeof(float) * s->img[n->in[0]] * B)))
            return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for gradients");
    }
    for (int i = 0; i < G - 1; i++)
        if ((s->ncons[i] > 1 || g->nodes[i].op == NN_OP_ADD) &&
            !(s->dsum[i] = falloc(sizeof(float) * s->img[i] * B)))
            return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for gradients");
    for (int i = 0; i < G; i++) {
        int c = s->cons[0][i];
        if (i == G - 1) s->dy[i] = s->dlogits;
        else if (s->dsum[i]) s->dy[i] = s->dsum[i];
        else s->dy[i] = g->nodes[c].op == NN_OP_ADD ? s->dsum[c] : s->dx[c];
    }

    /* predict: buffer aliasing for the in-place residual sum */
    for (int i = 0; i < G; i++) {
        const nn_node *n = &g->nodes[i];
        s->infbuf[i] = s->out[i];
        if (n->op == NN_OP_BN || n->op == NN_OP_DROPOUT) s->infbuf[i] = s->infbuf[n->in[0]];
        if (n->op == NN_OP_ADD) {
            int sc = n->in[1], main_conv = g->nodes[n->in[0]].in[0];
            const nn_node *scn = &g->nodes[sc];
            if (scn->op == NN_OP_BN && !scn->relu && s->ncons[sc] == 1) {
                /* downsample: its conv writes our buffer */
                int dsconv = g->nodes[sc].in[0];
                s->infbuf[dsconv] = s->infbuf[sc] = s->out[i];
            } else {
                s->infbuf[i] = s->infbuf[sc]; /* identity: accumulate onto the input */
            }
            s->deferred[main_conv] = 1;
            s->infbuf[main_conv] = s->infbuf[n->in[0]] = s->infbuf[i];
        }
    }
    if ((rc = choose_wino(e, s, err))) return rc;
    if (!get_plan(e, B, err)) return err && err->code ? err->code : LUMEN_ERR;
    for (int i = 0; i < G; i++) { /* plan 0 (full batch) is never evicted */
        const node_plan *np = &s->plans[0].nodes[i];
        if (np->fwd.p) e->times[i].impl = np->fwd.impl;
        if (s->wino_m[i]) e->times[i].inf_impl = s->wino_m[i] == 4 ? "wino4" : "wino2";
        else if (np->inf.p) e->times[i].inf_impl = np->inf.impl;
    }
    return LUMEN_OK;
}

/* ------------------------------------------------------------ steps -- */
/* nn_wino_conv with the engine's threads and its scratch (grown on demand). */
static int wino(nn_engine *e, float *y, const float *x, const float *U, const float *bias, int n,
                int IC, int H, int W, int OC, int m, int flags, lm_err *err) {
    cpu_state *s = e->impl;
    int tb = nn_wino_block(m, IC, OC, n, H, W, e->threads);
    size_t need = nn_wino_scratch_floats(m, IC, OC, tb) * (size_t)e->threads;
    if (need > s->wino_scratch_floats) {
        free(s->wino_scratch);
        s->wino_scratch_floats = 0;
        if (!(s->wino_scratch = falloc(sizeof(float) * need)))
            return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for Winograd scratch");
        s->wino_scratch_floats = need;
    }
    nn_wino_conv(y, x, U, bias, n, IC, H, W, OC, m, tb, flags, s->wino_scratch, e->threads);
    return LUMEN_OK;
}

static int refresh_weights(nn_engine *e, plan *pl, lm_err *err) {
    cpu_state *s = e->impl;
    if (pl->have_w && pl->wversion == e->params_version) return LUMEN_OK;
    for (int i = 0; i < e->graph.n; i++) {
        int rc;
        if ((rc = run(s, &pl->nodes[i].w_fwd, err)) || (rc = run(s, &pl->nodes[i].w_bwd, err)))
            return rc;
    }
    pl->wversion = e->params_version;
    pl->have_w = 1;
    return LUMEN_OK;
}

/* train_step's Winograd weights (forward, backward data), once per
 * parameter change. */
static void refresh_wtr(nn_engine *e) {
    cpu_state *s = e->impl;
    if (s->have_wtr && s->wtr_ver == e->params_version) return;
    for (int i = 0; i < e->graph.n; i++) {
        const nn_node *n = &e->graph.nodes[i];
        if (!s->wtr_m[i]) continue;
        const float *w = e->params + e->model->tensors[n->weight].offset;
        nn_wino_weights(s->wtr_uf[i], w, s->wtr_m[i], n->ic, n->c, 0);
        nn_wino_weights(s->wtr_ub[i], w, s->wtr_m[i], n->c, n->ic, 1);
    }
    s->wtr_ver = e->params_version;
    s->have_wtr = 1;
}

static double now_ms(void) { return lm_now() * 1e3; }

static int forward(nn_engine *e, plan *pl, int train, const float *dropmask, lm_err *err) {
    cpu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    int N = pl->n, rc = 0;
    for (int i = 0; i < g->n && !rc; i++) {
        const nn_node *n = &g->nodes[i];
        node_plan *np = &pl->nodes[i];
        double t0 = e->profiling ? now_ms() : 0;
        size_t cnt = s->img[i] * (size_t)N;
        switch (n->op) {
        case NN_OP_CONV:
            if (n->in[0] == NN_INPUT) rc = run(s, &pl->in_reorder, err);
            if (!rc && train && s->wtr_m[i])
                rc = wino(e, s->out[i], s->out[n->in[0]], s->wtr_uf[i], s->zero_bias, N, n->ic,
                          n->h, n->w, n->c, s->wtr_m[i], 0, err);
            else if (!rc) rc = run(s, &np->fwd, err);
            break;
        case NN_OP_BN:
            rc = run(s, train ? &np->fwd : &np->fwd_eval, err);
            if (!rc && train)
                nn_cpu_bn_running(e->buffers + m->tensors[n->mean].offset,
                                  e->buffers + m->tensors[n->var].offset, s->mean[i], s->var[i],
                                  n->c, (double)N * n->h * n->w, BN_MOMENTUM);
            break;
        case NN_OP_MAXPOOL:
            if (s->own_pool[i])
                nn_cpu_maxpool_forward(s->out[i], s->ws[i], s->out[n->in[0]], N, n->c,
                                       n->ih, n->iw, n->h, n->w, n->k, n->stride, n->pad,
                                       s->act_block ? s->act_block : n->c);
            else rc = run(s, &np->fwd, err);
            break;
        case NN_OP_GAP:
            nn_cpu_gpool_forward(s->out[i], s->out[n->in[0]], N, n->c, n->ih * n->iw,
                                 s->act_block ? s->act_block : n->c, n->pmax);
            break;
        case NN_OP_ADD:
            nn_cpu_add_relu(s->out[i], s->out[n->in[0]], s->out[n->in[1]], cnt);
            break;
        case NN_OP_DROPOUT:
            if (train) nn_cpu_mul(s->out[i], s->out[n->in[0]], dropmask, cnt);
            else memcpy(s->out[i], s->out[n->in[0]], sizeof(float) * cnt);
            break;
        case NN_OP_FC:
            nn_cpu_linear_forward(s->out[i], s->out[n->in[0]], e->params + m->tensors[n->weight].offset,
                                  e->params + m->tensors[n->bias].offset, N, n->ic, n->c);
            break;
        }
        if (e->profiling) e->times[i].fwd_ms = now_ms() - t0;
    }
    return rc;
}

static int backward(nn_engine *e, plan *pl, const float *dropmask, lm_err *err) {
    cpu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    int N = pl->n, rc = 0;
    for (int i = g->n - 1; i >= 0 && !rc; i--) {
        const nn_node *n = &g->nodes[i];
        node_plan *np = &pl->nodes[i];
        double t0 = e->profiling ? now_ms() : 0;
        size_t cnt = s->img[i] * (size_t)N;
        if (s->dsum[i]) { /* assemble the output gradient: sum of consumers, add's mask */
            const float *c[2] = {NULL, NULL};
            for (int k = 0; k < s->ncons[i]; k++) {
                int j = s->cons[k][i];
                c[k] = g->nodes[j].op == NN_OP_ADD ? s->dsum[j] : s->dx[j];
            }
            nn_cpu_grad_combine(s->dsum[i], c[0], c[1], n->op == NN_OP_ADD ? s->out[i] : NULL, cnt);
        }
        switch (n->op) {
        case NN_OP_CONV:
            if (np->blk8_bwdw) {
                nn_cpu_conv_bwdw_blk8(e->grads + m->tensors[n->weight].offset, s->out[n->in[0]],
                                      s->dy[i], N, n->ic, n->ih, n->iw, n->c, n->h, n->w, n->k,
                                      n->stride, n->pad);
            } else if (np->own_bwdw) {
                int stem = n->in[0] == NN_INPUT;
                nn_cpu_conv_bwdw(e->grads + m->tensors[n->weight].offset,
                                 stem ? s->x_cur : s->out[n->in[0]],
                                 stem ? 0 : s->act_block ? s->act_block : n->ic, s->dy[i], s->xpad,
                                 N, n->ic, n->ih, n->iw, n->c, n->h, n->w, n->k, n->stride, n->pad,
                                 s->act_block ? s->act_block : n->c);
            } else {
                rc = run(s, &np->bwdw, err);
            }
            if (!rc) rc = run(s, &np->dw_out, err);
            if (!rc && s->wtr_m[i]) /* input gradient: the transposed conv of dy */
                rc = wino(e, s->dx[i], s->dy[i], s->wtr_ub[i], s->zero_bias, N, n->c, n->h, n->w,
                          n->ic, s->wtr_m[i], 0, err);
            else if (!rc) rc = run(s, &np->bwd, err);
            break;
        case NN_OP_MAXPOOL:
            if (s->own_pool[i])
                nn_cpu_maxpool_backward(s->dx[i], s->dy[i], s->ws[i], N, n->c,
                                        n->ih, n->iw, n->h, n->w, n->k, n->stride, n->pad,
                                        s->act_block ? s->act_block : n->c);
            else rc = run(s, &np->bwd, err);
            break;
        case NN_OP_BN:
            rc = run(s, &np->bwd, err);
            break;
        case NN_OP_GAP:
            nn_cpu_gpool_backward(s->dx[i], s->dy[i], s->out[n->in[0]], N, n->c, n->ih * n->iw,
                                  s->act_block ? s->act_block : n->c, n->pmax);
            break;
        case NN_OP_ADD:
            break;
        case NN_OP_DROPOUT:
            nn_cpu_mul(s->dx[i], s->dy[i], dropmask, cnt);
            break;
        case NN_OP_FC:
            nn_cpu_linear_backward(s->dx[i], e->grads + m->tensors[n->weight].offset,
                                   e->grads + m->tensors[n->bias].offset, s->dy[i],
                                   s->out[n->in[0]], e->params + m->tensors[n->weight].offset, N,
                                   n->ic, n->c);
            break;
        }
        if (e->profiling) e->times[i].bwd_ms = now_ms() - t0;
    }
    return rc;
}

static int cpu_train_step(nn_engine *e, const float *x, const float *y, int n,
                          const nn_loss_cfg *lc, const float *dropmask, double *loss,
                          float *logits, lm_err *err) {
    cpu_state *s = e->impl;
    plan *pl = get_plan(e, n, err);
    if (!pl) return err && err->code ? err->code : LUMEN_ERR;
    int rc = refresh_weights(e, pl, err);
    if (rc) return rc;
    refresh_wtr(e);
    DN(dnnl_memory_set_data_handle(pl->x_user, (void *)x));
    if (pl->x_direct) DN(dnnl_memory_set_data_handle(pl->x_direct, (void *)x));
    s->x_cur = x;
    if ((rc = forward(e, pl, 1, dropmask, err))) return rc;
    const nn_node *fc = &e->graph.nodes[e->graph.n - 1];
    const float *lg = s->out[e->graph.n - 1];
    if (logits) memcpy(logits, lg, sizeof(float) * (size_t)n * fc->c);
    *loss = nn_engine_loss(lg, y, n, fc->c, lc, s->dlogits);
    return backward(e, pl, dropmask, err);
}

/* Folds every BN into the conv before it: w' = w g / sqrt(rv + eps),
 * b' = beta - rm g / sqrt(rv + eps).  Canonical layout, then reordered. */
static int refresh_fold(nn_engine *e, plan *pl, lm_err *err) {
    cpu_state *s = e->impl;
    const nn_model *m = e->model;
    const nn_graph *g = &e->graph;
    if (!s->have_fold || s->fold_pver != e->params_version ||
        s->fold_bver != e->buffers_version) {
        for (int i = 0; i < g->n; i++) {
            const nn_node *c = &g->nodes[i];
            if (c->op != NN_OP_CONV) continue;
            const nn_node *bn = &g->nodes[s->cons[0][i]];
            const float *gm = e->params + m->tensors[bn->weight].offset;
            const float *bt = e->params + m->tensors[bn->bias].offset;
            const float *rm = e->buffers + m->tensors[bn->mean].offset;
            const float *rv = e->buffers + m->tensors[bn->var].offset;
            const float *w = e->params + m->tensors[c->weight].offset;
            float *fw = s->fold_w + m->tensors[c->weight].offset;
            size_t per = (size_t)c->ic * c->k * c->k;
            for (int o = 0; o < c->c; o++) {
                double sc = gm[o] / sqrt((double)rv[o] + BN_EPS);
                for (size_t j = 0; j < per; j++) fw[o * per + j] = (float)(w[o * per + j] * sc);
                s->fold_b[i][o] = (float)(bt[o] - rm[o] * sc);
            }
            if (s->wino_m[i]) nn_wino_weights(s->wino_u[i], fw, s->wino_m[i], c->ic, c->c, 0);
        }
        s->fold_pver = e->params_version;
        s->fold_bver = e->buffers_version;
        s->have_fold = 1;
        for (int k = 0; k < s->nplans; k++) s->plans[k].have_inf = 0;
    }
    if (!pl->have_inf) {
        for (int i = 0; i < g->n; i++) {
            int rc = s->wino_m[i] ? 0 : run(s, &pl->nodes[i].w_inf, err); /* Winograd: U */
            if (rc) return rc;
        }
        pl->have_inf = 1;
    }
    return LUMEN_OK;
}

/* predict's convolution i on a batch of n: Winograd or the oneDNN primitive
 * (folded BN bias, ReLU, the residual sum when deferred). */
static int run_inf_conv(nn_engine *e, plan *pl, int i, int n, lm_err *err) {
    cpu_state *s = e->impl;
    const nn_node *nd = &e->graph.nodes[i];
    if (!s->wino_m[i]) return run(s, &pl->nodes[i].inf, err);
    const nn_node *bn = &e->graph.nodes[s->cons[0][i]];
    int flags = (bn->relu || s->deferred[i] ? NN_WINO_RELU : 0) |
                (s->deferred[i] ? NN_WINO_ACCUM : 0);
    return wino(e, s->infbuf[i], s->infbuf[nd->in[0]], s->wino_u[i], s->fold_b[i], n, nd->ic,
                nd->h, nd->w, nd->c, s->wino_m[i], flags, err);
}

static int cpu_forward_eval(nn_engine *e, const float *x, int n, float *logits, int fold,
                            lm_err *err) {
    cpu_state *s = e->impl;
    const nn_graph *g = &e->graph;
    const nn_model *m = e->model;
    plan *pl = get_plan(e, n, err);
    if (!pl) return err && err->code ? err->code : LUMEN_ERR;
    DN(dnnl_memory_set_data_handle(pl->x_user, (void *)x));
    if (pl->x_direct) DN(dnnl_memory_set_data_handle(pl->x_direct, (void *)x));
    int rc;
    const nn_node *fc = &g->nodes[g->n - 1];
    if (!fold) {
        if ((rc = refresh_weights(e, pl, err)) || (rc = forward(e, pl, 0, NULL, err))) return rc;
        memcpy(logits, s->out[g->n - 1], sizeof(float) * (size_t)n * fc->c);
        return LUMEN_OK;
    }
    if ((rc = refresh_fold(e, pl, err))) return rc;
    for (int i = 0; i < g->n; i++) {
        const nn_node *nd = &g->nodes[i];
        node_plan *np = &pl->nodes[i];
        double t0 = e->profiling ? now_ms() : 0;
        int timed = i; /* the node the time counts for */
        switch (nd->op) {
        case NN_OP_CONV:
            if (nd->in[0] == NN_INPUT && (rc = run(s, &pl->in_reorder, err))) return rc;
            if (!s->deferred[i] && (rc = run_inf_conv(e, pl, i, n, err))) return rc;
            break;
        case NN_OP_ADD: /* the block's second conv, accumulating onto the shortcut */
            timed = g->nodes[nd->in[0]].in[0];
            if ((rc = run_inf_conv(e, pl, timed, n, err))) return rc;
            break;
        case NN_OP_MAXPOOL:
            if (s->own_pool[i])
                nn_cpu_maxpool_forward(s->infbuf[i], NULL, s->infbuf[nd->in[0]], n, nd->c, nd->ih,
                                       nd->iw, nd->h, nd->w, nd->k, nd->stride, nd->pad,
                                       s->act_block ? s->act_block : nd->c);
            else if ((rc = run(s, &np->inf, err))) return rc;
            break;
        case NN_OP_GAP:
            nn_cpu_gpool_forward(s->infbuf[i], s->infbuf[nd->in[0]], n, nd->c, nd->ih * nd->iw,
                                 s->act_block ? s->act_block : nd->c, nd->pmax);
            break;
        case NN_OP_FC:
            nn_cpu_linear_forward(logits, s->infbuf[nd->in[0]],
                                  e->params + m->tensors[nd->weight].offset,
                                  e->params + m->tensors[nd->bias].offset, n, nd->ic, nd->c);
            break;
        default: /* BN folded; dropout is identity in eval */
            break;
        }
        if (e->profiling) {
            e->times[i].inf_ms = 0;
            e->times[timed].inf_ms = now_ms() - t0;
        }
    }
    return LUMEN_OK;
}

const nn_backend_ops nn_backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .train_step = cpu_train_step,
    .forward_eval = cpu_forward_eval,
};
