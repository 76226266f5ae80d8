/* nn_engine.c -- the backend-independent half of the engine: see nn_engine.h
 * and nn_engine_impl.h. */
#include "nn_engine_impl.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "nn_optim.h"
#include "nn_ref.h"
#include "rng.h"

#ifdef LUMEN_HAVE_CUDA
/* The cuda backend is a separate library (see nn_engine_impl.h); this stub
 * is its name in the table.  Its create loads the library -- from
 * $LUMEN_CUDA_BACKEND, else next to the binary holding this code (the
 * runner, a plugin, a test: build/lib/, or lib/lumen/ when installed) --
 * swaps in the real ops and runs their create.  Any failure to load is
 * LUMEN_ENOTFOUND "no usable GPU: ...", like a missing GPU, so auto falls
 * back to the cpu. */
static int cuda_try(nn_engine *e, const char *path, lm_err *err) {
    /* NODELETE: the CUDA runtime inside keeps exit handlers and driver
     * threads; the library stays mapped after dlclose */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h)
        return lm_fail(err, LUMEN_ENOTFOUND, "cuda: no usable GPU: cannot load %s: %s", path,
                       dlerror());
    nn_cuda_entry_fn fn;
    *(void **)&fn = dlsym(h, NN_CUDA_ENTRY);
    const nn_backend_ops *ops = fn ? fn(sizeof(nn_engine), sizeof(nn_backend_ops)) : NULL;
    if (!ops) {
        dlclose(h);
        return lm_fail(err, LUMEN_ENOTFOUND,
                       "cuda: no usable GPU: %s is not this lumen's cuda backend (%s)", path,
                       fn ? "built against another struct nn_engine" : "no " NN_CUDA_ENTRY);
    }
    e->dl = h;
    e->ops = ops;
    return ops->create(e, err);
}

static int cuda_stub_create(nn_engine *e, lm_err *err) {
    const char *env = getenv("LUMEN_CUDA_BACKEND");
    if (env && *env) return cuda_try(e, env, err);
    char self[4096] = "";
    Dl_info info;
    if (dladdr((void *)cuda_stub_create, &info) && info.dli_fname && strchr(info.dli_fname, '/'))
        snprintf(self, sizeof self, "%s", info.dli_fname);
    else {
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        self[k > 0 ? k : 0] = 0;
    }
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    else snprintf(self, sizeof self, ".");
    static const char *const rel[] = {"", "lib/", "../lib/", "../../lib/", "../lib/lumen/", "../"};
    char path[4200];
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        snprintf(path, sizeof path, "%s/%s%s", self, rel[i], NN_CUDA_LIB);
        if (access(path, R_OK) == 0) return cuda_try(e, path, err);
    }
    return lm_fail(err, LUMEN_ENOTFOUND,
                   "cuda: no usable GPU: the cuda backend library %s is not in %s or its lib/, "
                   "../lib/, ../../lib/, ../lib/lumen/, ../ (set LUMEN_CUDA_BACKEND to its path)",
                   NN_CUDA_LIB, self);
}

static void cuda_stub_destroy(nn_engine *e) { (void)e; }

static const nn_backend_ops cuda_stub = {
    .name = "cuda",
    .create = cuda_stub_create,
    .destroy = cuda_stub_destroy,
};
#endif

static const nn_backend_ops *find_backend(const char *name) {
    if (!name || strcmp(name, "auto") == 0) {
#ifdef LUMEN_HAVE_CUDA
        return &cuda_stub; /* tried first; create falls back to cpu */
#else
        return &nn_backend_cpu;
#endif
    }
    if (strcmp(name, "cpu") == 0) return &nn_backend_cpu;
    if (strcmp(name, "ref") == 0) return &nn_backend_ref;
#ifdef LUMEN_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return &cuda_stub;
#endif
    return NULL;
}

int nn_engine_cuda_built(void) {
#ifdef LUMEN_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int nn_engine_create(const char *backend, const nn_model *model, const nn_engine_opts *o,
                     nn_engine **out, lm_err *err) {
    *out = NULL;
    const nn_backend_ops *ops = find_backend(backend);
    int is_auto = !backend || strcmp(backend, "auto") == 0;
    if (!ops) {
        if (backend && strcmp(backend, "cuda") == 0)
            return lm_fail(err, LUMEN_ENOTFOUND,
                           "engine.backend: \"cuda\" is not built into this lumen (no CUDA "
                           "toolkit/cuDNN at build time); use \"cpu\" or \"auto\"");
        return lm_fail(err, LUMEN_ENOTFOUND,
                       "engine.backend: unknown backend '%s' (known: cpu, ref, cuda, auto)",
                       backend);
    }
    if (o->gpu < 0) return lm_fail(err, LUMEN_EINVAL, "engine.gpu: must be >= 0, got %d", o->gpu);
    if (o->precision && strcmp(o->precision, "fp32") != 0 && strcmp(o->precision, "tf32") != 0 &&
        strcmp(o->precision, "bf16") != 0)
        return lm_fail(err, LUMEN_EINVAL, "engine.precision: must be fp32, tf32 or bf16, got '%s'",
                       o->precision);
    if (o->batch < 1 || o->batch > 65536)
        return lm_fail(err, LUMEN_EINVAL, "engine.batch: must be in 1..65536, got %d", o->batch);
    if (o->channels != model->cfg.in_channels)
        return lm_fail(err, LUMEN_EINVAL,
                       "engine.channels: the data has %d channel(s) but model.in_channels is %d",
                       o->channels, model->cfg.in_channels);
    if (o->threads < 0) return lm_fail(err, LUMEN_EINVAL, "engine.threads: must be >= 0");
    const char *convs[2] = {o->infer_conv, o->train_conv};
    for (int k = 0; k < 2; k++)
        if (convs[k] && strcmp(convs[k], "auto") != 0 && strcmp(convs[k], "direct") != 0 &&
            strcmp(convs[k], "wino2") != 0 && strcmp(convs[k], "wino4") != 0)
            return lm_fail(err, LUMEN_EINVAL,
                           "engine.%s: must be auto, direct, wino2 or wino4, got '%s'",
                           k ? "train_conv" : "infer_conv", convs[k]);
    nn_engine *e = calloc(1, sizeof *e);
    if (!e) return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory");
    e->ops = ops;
    e->model = model;
    e->opts = *o; /* opts.layout, .*_conv: read by ops->create only, then dropped */
    e->threads = o->threads > 0 ? o->threads : lm_ncpu();
    int rc = nn_model_graph(model, o->height, o->width, &e->graph, err);
    if (rc) {
        free(e);
        return rc;
    }
    size_t np = model->nparams;
    int fc_in = e->graph.nodes[e->graph.n - 1].ic;
    e->params = malloc(sizeof(float) * np * 4);
    e->buffers = malloc(sizeof(float) * (model->nbuffers + 1));
    e->counters = calloc(model->ncounters + 1, sizeof(int64_t));
    e->dropmask = malloc(sizeof(float) * (size_t)o->batch * (size_t)fc_in);
    e->times = calloc((size_t)e->graph.n, sizeof *e->times);
    if (!e->params || !e->buffers || !e->counters || !e->dropmask || !e->times) {
        nn_engine_free(e);
        return lm_fail(err, LUMEN_ENOMEM, "engine: out of memory for %zu parameters", np);
    }
    e->grads = e->params + np;
    e->m1 = e->params + 2 * np;
    e->m2 = e->params + 3 * np;
    memset(e->grads, 0, sizeof(float) * np * 3);
    nn_model_init(model, o->seed, e->params, e->buffers, e->counters);
    for (int i = 0; i < e->graph.n; i++) {
        e->times[i].name = e->graph.nodes[i].name;
        e->times[i].op = nn_op_name(e->graph.nodes[i].op);
        e->times[i].impl = "";
        e->times[i].inf_impl = "";
    }
    omp_set_num_threads(e->threads);
    int trial = is_auto && ops != &nn_backend_cpu;
    lm_err le = {0};
    rc = ops->create(e, trial ? &le : err);
    if (rc && trial) {
        /* auto: the GPU is not usable (or the device backend failed to set
         * up); say why and run on the cpu */
        snprintf(e->note, sizeof e->note, "auto: %.290s; using cpu", le.msg[0] ? le.msg : "cuda unavailable");
        if (e->impl) e->ops->destroy(e); /* the real ops, once the library was loaded */
        e->impl = NULL;
        if (e->dl) dlclose(e->dl);
        e->dl = NULL;
        e->ops = ops = &nn_backend_cpu;
        rc = ops->create(e, err);
    } else if (!rc && trial) {
        char note[sizeof e->note];
        snprintf(note, sizeof note, "auto: %.300s", e->note);
        memcpy(e->note, note, sizeof note);
    }
    e->opts.layout = NULL; /* the caller's strings may go away */
    e->opts.infer_conv = NULL;
    e->opts.train_conv = NULL;
    e->opts.precision = NULL;
    if (rc == LUMEN_ENOTFOUND && !trial && err && strstr(err->msg, "no usable GPU")) {
        size_t l = strlen(err->msg);
        snprintf(err->msg + l, sizeof err->msg - l, " (backend \"cpu\" or \"auto\" run without one)");
    }
    if (rc) {
        nn_engine_free(e); /* destroy copes with a half-built backend */
        return rc;
    }
    *out = e;
    return LUMEN_OK;
}

void nn_engine_free(nn_engine *e) {
    if (!e) return;
    if (e->ops && e->impl) e->ops->destroy(e);
    if (e->dl) dlclose(e->dl);
    nn_graph_free(&e->graph);
    free(e->params);
    free(e->buffers);
    free(e->counters);
    free(e->dropmask);
    free(e->times);
    free(e);
}

const char *nn_engine_backend(const nn_engine *e) { return e->ops->name; }
const char *nn_engine_note(const nn_engine *e) { return e->note; }

static int pull(nn_engine *e, unsigned what, lm_err *err) {
    return e->ops->pull && what ? e->ops->pull(e, what, err) : LUMEN_OK;
}
static int push(nn_engine *e, unsigned what, lm_err *err) {
    return e->ops->push && what ? e->ops->push(e, what, err) : LUMEN_OK;
}
const nn_graph *nn_engine_graph(const nn_engine *e) { return &e->graph; }

int nn_engine_get_state(nn_engine *e, float *params, float *buffers, int64_t *counters,
                        lm_err *err) {
    const nn_model *m = e->model;
    int rc = pull(e, (params ? NN_SYNC_PARAMS : 0) | (buffers ? NN_SYNC_BUFFERS : 0), err);
    if (rc) return rc;
    if (params) memcpy(params, e->params, sizeof(float) * m->nparams);
    if (buffers) memcpy(buffers, e->buffers, sizeof(float) * m->nbuffers);
    if (counters) memcpy(counters, e->counters, sizeof(int64_t) * m->ncounters);
    return LUMEN_OK;
}

int nn_engine_set_state(nn_engine *e, const float *params, const float *buffers,
                        const int64_t *counters, lm_err *err) {
    (void)err;
    const nn_model *m = e->model;
    if (params) memcpy(e->params, params, sizeof(float) * m->nparams);
    if (buffers) memcpy(e->buffers, buffers, sizeof(float) * m->nbuffers);
    if (counters) memcpy(e->counters, counters, sizeof(int64_t) * m->ncounters);
    if (params) e->params_version++;
    if (buffers) e->buffers_version++;
    return push(e, (params ? NN_SYNC_PARAMS : 0) | (buffers ? NN_SYNC_BUFFERS : 0), err);
}

int nn_engine_get_optim_state(nn_engine *e, float *m1, float *m2, int64_t *step,
                              lm_err *err) {
    size_t np = e->model->nparams;
    int rc = pull(e, m1 || m2 ? NN_SYNC_MOMENTS : 0, err);
    if (rc) return rc;
    if (m1) memcpy(m1, e->m1, sizeof(float) * np);
    if (m2) memcpy(m2, e->m2, sizeof(float) * np);
    if (step) *step = e->opt_step;
    return LUMEN_OK;
}

int nn_engine_set_optim_state(nn_engine *e, const float *m1, const float *m2, int64_t step,
                              lm_err *err) {
    if (step < 0) return lm_fail(err, LUMEN_EINVAL, "optimizer state: step must be >= 0");
    size_t np = e->model->nparams;
    int rc0;
    e->opt_step = step;
    if (m1 || m2) {
        /* a partial set keeps the device's other moment: make the host
         * mirror whole first */
        if ((!m1 || !m2) && (rc0 = pull(e, NN_SYNC_MOMENTS, err))) return rc0;
        if (m1) memcpy(e->m1, m1, sizeof(float) * np);
        if (m2) memcpy(e->m2, m2, sizeof(float) * np);
        return push(e, NN_SYNC_MOMENTS, err);
    }
    return LUMEN_OK;
}

int nn_engine_get_grads(nn_engine *e, float *grads, lm_err *err) {
    int rc = pull(e, NN_SYNC_GRADS, err);
    if (rc) return rc;
    memcpy(grads, e->grads, sizeof(float) * e->model->nparams);
    return LUMEN_OK;
}

double nn_engine_loss(const float *logits, const float *y, int n, int K,
                      const nn_loss_cfg *lc, float *dlogits) {
    size_t nk = (size_t)n * (size_t)K;
    double *x = calloc(nk * 2, sizeof(double));
    if (!x) return NAN;
    for (size_t i = 0; i < nk; i++) x[i] = logits[i];
    double loss = nn_ref_focal_forward(x, y, lc->pos_weight, lc->label_smoothing, lc->focal_gamma, n, K);
    nn_ref_focal_backward(x + nk, x, y, lc->pos_weight, lc->label_smoothing, lc->focal_gamma, n, K);
    for (size_t i = 0; i < nk; i++) dlogits[i] = (float)x[nk + i];
    free(x);
    return loss;
}

static int check_n(const nn_engine *e, int n, lm_err *err) {
    if (n < 1 || n > e->opts.batch)
        return lm_fail(err, LUMEN_EINVAL, "engine: n must be in 1..%d (the engine's batch), got %d",
                       e->opts.batch, n);
    return LUMEN_OK;
}

int nn_engine_train_step(nn_engine *e, const float *x, const float *y, int n,
                         const nn_loss_cfg *lc, float *loss, float *logits, lm_err *err) {
    int rc = check_n(e, n, err);
    if (rc) return rc;
    static const nn_loss_cfg none = {NULL, 0.0f, 0.0f};
    if (!lc) lc = &none;
    if (!(lc->label_smoothing >= 0 && lc->label_smoothing <= 1))
        return lm_fail(err, LUMEN_EINVAL, "loss.label_smoothing: must be in [0, 1], got %g",
                       (double)lc->label_smoothing);
    if (!(lc->focal_gamma >= 0 && lc->focal_gamma <= 10))
        return lm_fail(err, LUMEN_EINVAL, "loss.gamma: must be in [0, 10], got %g", (double)lc->focal_gamma);
    const float *mask = NULL;
    const nn_node *last = &e->graph.nodes[e->graph.n - 1];
    if (e->graph.n >= 2 && e->graph.nodes[e->graph.n - 2].op == NN_OP_DROPOUT) {
        /* mask of step t: lm_xoshiro seeded with seed ^ golden * (t + 1) */
        float p = e->graph.nodes[e->graph.n - 2].p, keep = 1.0f / (1.0f - p);
        lm_xoshiro r;
        lm_xoshiro_seed(&r, e->opts.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(e->train_steps + 1)));
        size_t cnt = (size_t)n * (size_t)last->ic;
        for (size_t i = 0; i < cnt; i++) e->dropmask[i] = lm_xoshiro_uniform(&r) < p ? 0.0f : keep;
        mask = e->dropmask;
    }
    omp_set_num_threads(e->threads);
    double l = 0;
    rc = e->ops->train_step(e, x, y, n, lc, mask, &l, logits, err);
    if (rc) return rc;
    e->train_steps++;
    e->buffers_version++;
    for (size_t i = 0; i < e->model->ncounters; i++) e->counters[i]++;
    if (loss) *loss = (float)l;
    if (!isfinite(l))
        return lm_fail(err, LUMEN_ENUMERIC, "training diverged: loss is %g at step %lld", l,
                       (long long)e->train_steps);
    return LUMEN_OK;
}

int nn_engine_grad_norm(nn_engine *e, double *norm, lm_err *err) {
    omp_set_num_threads(e->threads);
    double s;
    if (e->ops->grad_sumsq) {
        int rc = e->ops->grad_sumsq(e, &s, err);
        if (rc) return rc;
    } else {
        s = nn_sumsq(e->grads, e->model->nparams);
    }
    *norm = sqrt(s);
    if (!isfinite(s))
        return lm_fail(err, LUMEN_ENUMERIC, "training diverged: gradient norm is %g", *norm);
    return LUMEN_OK;
}

int nn_engine_optim_step(nn_engine *e, const nn_optim_cfg *cfg, float grad_scale,
                         lm_err *err) {
    int rc = nn_optim_validate(cfg, err);
    if (rc) return rc;
    if (!(grad_scale >= 0) || !isfinite(grad_scale))
        return lm_fail(err, LUMEN_EINVAL, "optimizer: grad_scale must be finite and >= 0");
    omp_set_num_threads(e->threads);
    e->opt_step++;
    if (e->ops->optim_step) {
        rc = e->ops->optim_step(e, cfg, grad_scale, err);
        if (rc) {
            e->opt_step--;
            return rc;
        }
    } else {
        nn_optim_update(cfg, e->params, e->grads, e->m1, e->m2, e->model->nparams, e->opt_step,
                        grad_scale);
    }
    e->params_version++;
    return LUMEN_OK;
}

int nn_engine_predict(nn_engine *e, const float *x, int n, float *logits, lm_err *err) {
    int rc = check_n(e, n, err);
    if (rc) return rc;
    omp_set_num_threads(e->threads);
    return e->ops->forward_eval(e, x, n, logits, 1, err);
}

int nn_engine_forward_eval(nn_engine *e, const float *x, int n, float *logits, lm_err *err) {
    int rc = check_n(e, n, err);
    if (rc) return rc;
    omp_set_num_threads(e->threads);
    return e->ops->forward_eval(e, x, n, logits, 0, err);
}

void nn_engine_set_profiling(nn_engine *e, int on) { e->profiling = on; }

const nn_layer_time *nn_engine_layer_times(nn_engine *e, int *count) {
    *count = e->graph.n;
    return e->times;
}

int64_t nn_engine_train_steps(const nn_engine *e) { return e->train_steps; }
void nn_engine_set_train_steps(nn_engine *e, int64_t steps) { e->train_steps = steps > 0 ? steps : 0; }
