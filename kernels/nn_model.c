/* nn_model.c -- see nn_model.h. */
#include "nn_model.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rng.h"

/* ------------------------------------------------------------ config -- */
const char *nn_stem_name(nn_stem s) {
    return s == NN_STEM_3X3 ? "3x3" : s == NN_STEM_7X7_NOPOOL ? "7x7-nopool" : "7x7";
}

int nn_stem_kernel(nn_stem s) { return s == NN_STEM_3X3 ? 3 : 7; }

const char *nn_pool_name(nn_pool p) {
    return p == NN_POOL_MAX ? "max" : p == NN_POOL_AVGMAX ? "avgmax" : "avg";
}

float nn_pool_max_weight(nn_pool p) {
    return p == NN_POOL_MAX ? 1.0f : p == NN_POOL_AVGMAX ? 0.5f : 0.0f;
}

void nn_resnet_cfg_default(nn_resnet_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->nstages = 4;
    for (int i = 0; i < 4; i++) {
        cfg->blocks[i] = 1;
        cfg->widths[i] = 64 << i;
    }
    cfg->in_channels = 1;
    cfg->stem_width = 64;
    cfg->stem = NN_STEM_7X7;
    cfg->dropout = 0.0f;
    cfg->pool = NN_POOL_AVG;
    cfg->num_classes = 2;
}

int nn_resnet_cfg_validate(const nn_resnet_cfg *c, lm_err *err) {
    if (c->nstages < 1 || c->nstages > NN_MAX_STAGES)
        return lm_fail(err, LUMEN_EINVAL, "model.blocks: needs 1..%d stages, got %d",
                       NN_MAX_STAGES, c->nstages);
    for (int i = 0; i < c->nstages; i++) {
        if (c->blocks[i] < 1 || c->blocks[i] > NN_MAX_BLOCKS)
            return lm_fail(err, LUMEN_EINVAL,
                           "model.blocks: entry %d must be in 1..%d, got %d", i + 1,
                           NN_MAX_BLOCKS, c->blocks[i]);
        if (c->widths[i] < 1 || c->widths[i] > 8192)
            return lm_fail(err, LUMEN_EINVAL,
                           "model.widths: entry %d must be in 1..8192, got %d", i + 1,
                           c->widths[i]);
    }
    if (c->in_channels < 1 || c->in_channels > 16)
        return lm_fail(err, LUMEN_EINVAL, "model.in_channels: must be in 1..16, got %d",
                       c->in_channels);
    if (c->stem_width < 1 || c->stem_width > 8192)
        return lm_fail(err, LUMEN_EINVAL, "model.stem_width: must be in 1..8192, got %d",
                       c->stem_width);
    if (c->stem != NN_STEM_7X7 && c->stem != NN_STEM_3X3 && c->stem != NN_STEM_7X7_NOPOOL)
        return lm_fail(err, LUMEN_EINVAL, "model.stem: must be \"7x7\", \"3x3\" or \"7x7-nopool\"");
    if (c->pool != NN_POOL_AVG && c->pool != NN_POOL_MAX && c->pool != NN_POOL_AVGMAX)
        return lm_fail(err, LUMEN_EINVAL, "model.pool: must be \"avg\", \"max\" or \"avgmax\"");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return lm_fail(err, LUMEN_EINVAL, "model.dropout: must be in [0, 1), got %g",
                       (double)c->dropout);
    if (c->num_classes < 1 || c->num_classes > 4096)
        return lm_fail(err, LUMEN_EINVAL, "model.num_classes: must be in 1..4096, got %d",
                       c->num_classes);
    return LUMEN_OK;
}

/* Parses "{1,2}", "[1,2]" or "1,2" into v; returns count or -1. */
static int parse_int_list(const char *s, int *v, int max) {
    int n = 0;
    while (isspace((unsigned char)*s)) s++;
    char close = 0;
    if (*s == '{') close = '}';
    else if (*s == '[') close = ']';
    if (close) s++;
    for (;;) {
        while (isspace((unsigned char)*s)) s++;
        if (close && *s == close && n == 0) { s++; break; }
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < -1000000 || x > 1000000 || n >= max) return -1;
        v[n++] = (int)x;
        s = end;
        while (isspace((unsigned char)*s)) s++;
        if (*s == ',') { s++; continue; }
        if (close) {
            if (*s != close) return -1;
            s++;
        }
        break;
    }
    while (isspace((unsigned char)*s)) s++;
    return *s ? -1 : n;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (end == s || *end || errno || x < -1000000000L || x > 1000000000L) return -1;
    *out = (int)x;
    return 0;
}

int nn_resnet_cfg_set(nn_resnet_cfg *c, const char *key, const char *value,
                      lm_err *err) {
    const char *k = strncmp(key, "model.", 6) == 0 ? key + 6 : key;
    int v[NN_MAX_STAGES + 1];
    if (strcmp(k, "blocks") == 0 || strcmp(k, "widths") == 0) {
        int n = parse_int_list(value, v, NN_MAX_STAGES + 1);
        if (n < 1 || n > NN_MAX_STAGES)
            return lm_fail(err, LUMEN_EINVAL,
                           "model.%s: expected a list of 1..%d integers like {1,1,1,1}, got '%s'",
                           k, NN_MAX_STAGES, value);
        if (k[0] == 'b') {
            c->nstages = n;
            memcpy(c->blocks, v, sizeof(int) * (size_t)n);
        } else {
            if (n != c->nstages)
                return lm_fail(err, LUMEN_EINVAL,
                               "model.widths: needs as many entries as model.blocks (%d), got %d",
                               c->nstages, n);
            memcpy(c->widths, v, sizeof(int) * (size_t)n);
        }
        return LUMEN_OK;
    }
    if (strcmp(k, "stem") == 0) {
        if (strcmp(value, "7x7") == 0) c->stem = NN_STEM_7X7;
        else if (strcmp(value, "3x3") == 0) c->stem = NN_STEM_3X3;
        else if (strcmp(value, "7x7-nopool") == 0) c->stem = NN_STEM_7X7_NOPOOL;
        else
            return lm_fail(err, LUMEN_EINVAL,
                           "model.stem: must be \"7x7\", \"3x3\" or \"7x7-nopool\", got '%s'", value);
        return LUMEN_OK;
    }
    if (strcmp(k, "pool") == 0) {
        if (strcmp(value, "avg") == 0) c->pool = NN_POOL_AVG;
        else if (strcmp(value, "max") == 0) c->pool = NN_POOL_MAX;
        else if (strcmp(value, "avgmax") == 0) c->pool = NN_POOL_AVGMAX;
        else
            return lm_fail(err, LUMEN_EINVAL,
                           "model.pool: must be \"avg\", \"max\" or \"avgmax\", got '%s'", value);
        return LUMEN_OK;
    }
    if (strcmp(k, "dropout") == 0) {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (end == value || *end || errno)
            return lm_fail(err, LUMEN_EINVAL, "model.dropout: expected a number, got '%s'", value);
        c->dropout = (float)d;
        return LUMEN_OK;
    }
    int *dst = strcmp(k, "in_channels") == 0  ? &c->in_channels
               : strcmp(k, "stem_width") == 0 ? &c->stem_width
               : strcmp(k, "num_classes") == 0 ? &c->num_classes
                                               : NULL;
    if (!dst)
        return lm_fail(err, LUMEN_EINVAL,
                       "model.%s: unknown key (known: blocks, widths, in_channels, stem, "
                       "stem_width, dropout, pool, num_classes)", k);
    if (parse_int(value, dst))
        return lm_fail(err, LUMEN_EINVAL, "model.%s: expected an integer, got '%s'", k, value);
    return LUMEN_OK;
}

/* The shortest decimal that reads back as f: 0.2f is written 0.2, not
 * 0.20000000298023224, so configs and fingerprints stay readable. */
static double shortest_double(float f) {
    char buf[32];
    for (int prec = 6; prec < 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

char *nn_resnet_cfg_to_json(const nn_resnet_cfg *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "arch", "resnet");
    cJSON_AddItemToObject(o, "blocks", cJSON_CreateIntArray(c->blocks, c->nstages));
    cJSON_AddItemToObject(o, "widths", cJSON_CreateIntArray(c->widths, c->nstages));
    cJSON_AddNumberToObject(o, "in_channels", c->in_channels);
    cJSON_AddStringToObject(o, "stem", nn_stem_name(c->stem));
    cJSON_AddNumberToObject(o, "stem_width", c->stem_width);
    cJSON_AddNumberToObject(o, "dropout", shortest_double(c->dropout));
    if (c->pool != NN_POOL_AVG) cJSON_AddStringToObject(o, "pool", nn_pool_name(c->pool));
    cJSON_AddNumberToObject(o, "num_classes", c->num_classes);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int json_int_array(const cJSON *a, const char *key, int *v, int *n, lm_err *err) {
    if (!cJSON_IsArray(a))
        return lm_fail(err, LUMEN_EDATA, "model.%s: expected an array of integers", key);
    int cnt = cJSON_GetArraySize(a);
    if (cnt < 1 || cnt > NN_MAX_STAGES)
        return lm_fail(err, LUMEN_EDATA, "model.%s: needs 1..%d entries, got %d", key,
                       NN_MAX_STAGES, cnt);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
            return lm_fail(err, LUMEN_EDATA, "model.%s: entry %d is not an integer", key, i + 1);
        v[i++] = it->valueint;
    }
    *n = cnt;
    return LUMEN_OK;
}

int nn_resnet_cfg_from_json(const char *json, nn_resnet_cfg *cfg, lm_err *err) {
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return lm_fail(err, LUMEN_EDATA, "model: config is not a JSON object");
    }
    int rc = LUMEN_OK, nb = c.nstages, nw = c.nstages;
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        const char *k = it->string;
        if (strcmp(k, "arch") == 0) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "resnet") != 0)
                rc = lm_fail(err, LUMEN_EDATA, "model.arch: only \"resnet\" is known");
        } else if (strcmp(k, "blocks") == 0) {
            rc = json_int_array(it, k, c.blocks, &nb, err);
        } else if (strcmp(k, "widths") == 0) {
            rc = json_int_array(it, k, c.widths, &nw, err);
        } else if (strcmp(k, "stem") == 0 || strcmp(k, "pool") == 0) {
            if (!cJSON_IsString(it)) rc = lm_fail(err, LUMEN_EDATA, "model.%s: expected a string", k);
            else rc = nn_resnet_cfg_set(&c, k, it->valuestring, err) ? LUMEN_EDATA : 0;
        } else if (strcmp(k, "dropout") == 0) {
            if (!cJSON_IsNumber(it)) rc = lm_fail(err, LUMEN_EDATA, "model.dropout: expected a number");
            else c.dropout = (float)it->valuedouble;
        } else if (strcmp(k, "in_channels") == 0 || strcmp(k, "stem_width") == 0 ||
                   strcmp(k, "num_classes") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
                rc = lm_fail(err, LUMEN_EDATA, "model.%s: expected an integer", k);
            else
                *(k[0] == 'i' ? &c.in_channels : k[0] == 's' ? &c.stem_width : &c.num_classes) =
                    it->valueint;
        } else {
            rc = lm_fail(err, LUMEN_EDATA, "model.%s: unknown key", k);
        }
        if (rc) break;
    }
    cJSON_Delete(o);
    if (rc) return rc;
    if (nb != nw)
        return lm_fail(err, LUMEN_EDATA,
                       "model.widths: needs as many entries as model.blocks (%d), got %d", nb, nw);
    c.nstages = nb;
    if ((rc = nn_resnet_cfg_validate(&c, err))) return rc;
    *cfg = c;
    return LUMEN_OK;
}

/* ------------------------------------------------------------ tensors -- */
/* dst = a "." b, cut to NN_NAME_MAX - 1 characters (names here are short). */
static void name_join(char dst[NN_NAME_MAX], const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > NN_NAME_MAX - 2) la = NN_NAME_MAX - 2;
    if (la + 1 + lb > NN_NAME_MAX - 1) lb = NN_NAME_MAX - 2 - la;
    memcpy(dst, a, la);
    dst[la] = '.';
    memcpy(dst + la + 1, b, lb);
    dst[la + 1 + lb] = '\0';
}

typedef struct builder {
    nn_model *m;
    int cap;
} builder;

static int add_tensor(builder *b, const char *name, nn_tensor_kind kind, int ndim,
                      int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    nn_model *m = b->m;
    if (m->ntensors == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        nn_tensor *t = realloc(m->tensors, sizeof *t * (size_t)cap);
        if (!t) return -1;
        m->tensors = t;
        b->cap = cap;
    }
    nn_tensor *t = &m->tensors[m->ntensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->ndim = ndim;
    int64_t d[4] = {d0, d1, d2, d3};
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = d[i];
        t->numel *= (size_t)d[i];
    }
    size_t *cnt = kind == NN_T_PARAM ? &m->nparams : kind == NN_T_BUFFER ? &m->nbuffers
                                                                          : &m->ncounters;
    t->offset = *cnt;
    *cnt += t->numel;
    return m->ntensors++;
}

static int add_conv(builder *b, const char *mod, int oc, int ic, int k) {
    char n[NN_NAME_MAX];
    name_join(n, mod, "weight");
    return add_tensor(b, n, NN_T_PARAM, 4, oc, ic, k, k);
}

static int add_bn(builder *b, const char *mod, int c) {
    static const char *sfx[5] = {"weight", "bias", "running_mean", "running_var",
                                 "num_batches_tracked"};
    int first = -1;
    for (int i = 0; i < 5; i++) {
        char n[NN_NAME_MAX];
        name_join(n, mod, sfx[i]);
        int r = i == 4   ? add_tensor(b, n, NN_T_COUNTER, 0, 0, 0, 0, 0)
                : i >= 2 ? add_tensor(b, n, NN_T_BUFFER, 1, c, 0, 0, 0)
                         : add_tensor(b, n, NN_T_PARAM, 1, c, 0, 0, 0);
        if (r < 0) return -1;
        if (i == 0) first = r;
    }
    return first;
}

/* Visits the model's modules in state_dict order: calls conv/bn/fc makers.
 * Shared by the tensor-table build (g == NULL) and the graph build. */
typedef struct gbuild {
    nn_graph *g;
    int cap;
    int c, h, w;  /* current activation shape */
    int cur;      /* node producing the current activation */
} gbuild;

static int block_has_downsample(const nn_resnet_cfg *c, int s, int blk, int inch) {
    int stride = (s > 0 && blk == 0) ? 2 : 1;
    return stride != 1 || inch != c->widths[s];
}

int nn_model_create(const nn_resnet_cfg *cfg, nn_model **out, lm_err *err) {
    *out = NULL;
    int rc = nn_resnet_cfg_validate(cfg, err);
    if (rc) return rc;
    nn_model *m = calloc(1, sizeof *m);
    if (!m) return lm_fail(err, LUMEN_ENOMEM, "model: out of memory");
    m->cfg = *cfg;
    builder b = {m, 0};
    int ok = 1;
    int k1 = nn_stem_kernel(cfg->stem);
    ok &= add_conv(&b, "conv1", cfg->stem_width, cfg->in_channels, k1) >= 0;
    ok &= add_bn(&b, "bn1", cfg->stem_width) >= 0;
    int inch = cfg->stem_width;
    for (int s = 0; s < cfg->nstages && ok; s++) {
        for (int blk = 0; blk < cfg->blocks[s] && ok; blk++) {
            char mod[32], sub[NN_NAME_MAX];
            snprintf(mod, sizeof mod, "layer%d.%d", s + 1, blk);
            int w = cfg->widths[s];
            name_join(sub, mod, "conv1");
            ok &= add_conv(&b, sub, w, inch, 3) >= 0;
            name_join(sub, mod, "bn1");
            ok &= add_bn(&b, sub, w) >= 0;
            name_join(sub, mod, "conv2");
            ok &= add_conv(&b, sub, w, w, 3) >= 0;
            name_join(sub, mod, "bn2");
            ok &= add_bn(&b, sub, w) >= 0;
            if (block_has_downsample(cfg, s, blk, inch)) {
                name_join(sub, mod, "downsample.0");
                ok &= add_conv(&b, sub, w, inch, 1) >= 0;
                name_join(sub, mod, "downsample.1");
                ok &= add_bn(&b, sub, w) >= 0;
            }
            inch = w;
        }
    }
    ok &= add_tensor(&b, "fc.weight", NN_T_PARAM, 2, cfg->num_classes, inch, 0, 0) >= 0;
    ok &= add_tensor(&b, "fc.bias", NN_T_PARAM, 1, cfg->num_classes, 0, 0, 0) >= 0;
    if (!ok) {
        nn_model_free(m);
        return lm_fail(err, LUMEN_ENOMEM, "model: out of memory");
    }
    *out = m;
    return LUMEN_OK;
}

void nn_model_free(nn_model *m) {
    if (!m) return;
    free(m->tensors);
    free(m);
}

int nn_model_find(const nn_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

void nn_model_init(const nn_model *m, uint64_t seed, float *params, float *buffers,
                   int64_t *counters) {
    lm_xoshiro r;
    lm_xoshiro_seed(&r, seed);
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        size_t len = strlen(t->name);
        int is_weight = len > 7 && strcmp(t->name + len - 7, ".weight") == 0;
        if (t->kind == NN_T_COUNTER) {
            if (counters) counters[t->offset] = 0;
        } else if (t->kind == NN_T_BUFFER) {
            int is_var = strstr(t->name, "running_var") != NULL;
            if (buffers)
                for (size_t j = 0; j < t->numel; j++) buffers[t->offset + j] = is_var ? 1.0f : 0.0f;
        } else if (t->ndim == 4) { /* conv weight */
            double sd = sqrt(2.0 / (double)(t->dims[0] * t->dims[2] * t->dims[3]));
            for (size_t j = 0; j < t->numel; j++) {
                float v = (float)(sd * lm_xoshiro_normal(&r));
                if (params) params[t->offset + j] = v;
            }
        } else if (strncmp(t->name, "fc.", 3) == 0) {
            int fan_in = m->tensors[nn_model_find(m, "fc.weight")].dims[1];
            double bound = 1.0 / sqrt((double)fan_in);
            for (size_t j = 0; j < t->numel; j++) {
                float v = (float)((2.0 * lm_xoshiro_uniform(&r) - 1.0) * bound);
                if (params) params[t->offset + j] = v;
            }
        } else if (params) { /* bn weight / bias */
            for (size_t j = 0; j < t->numel; j++) params[t->offset + j] = is_weight ? 1.0f : 0.0f;
        }
    }
}

/* ------------------------------------------------------------ graph -- */
const char *nn_op_name(nn_op op) {
    static const char *names[] = {"conv", "bn", "maxpool", "add", "gap", "dropout", "fc"};
    return (unsigned)op < sizeof names / sizeof *names ? names[op] : "?";
}

static nn_node *push_node(gbuild *gb, nn_op op, const char *name, int in0) {
    nn_graph *g = gb->g;
    if (g->n == gb->cap) {
        int cap = gb->cap ? gb->cap * 2 : 64;
        nn_node *nn = realloc(g->nodes, sizeof *nn * (size_t)cap);
        if (!nn) return NULL;
        g->nodes = nn;
        gb->cap = cap;
    }
    nn_node *n = &g->nodes[g->n];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->in[0] = in0;
    n->in[1] = -2;
    n->weight = n->bias = n->mean = n->var = n->count = -1;
    const nn_node *src = in0 >= 0 ? &g->nodes[in0] : NULL;
    n->ic = src ? src->c : g->in_c;
    n->ih = src ? src->h : g->in_h;
    n->iw = src ? src->w : g->in_w;
    n->c = n->ic;
    n->h = n->ih;
    n->w = n->iw;
    g->n++;
    return n;
}

static int conv_node(gbuild *gb, const nn_model *m, const char *mod, int in0, int k,
                     int stride, int pad, lm_err *err) {
    nn_node *n = push_node(gb, NN_OP_CONV, mod, in0);
    if (!n) return lm_fail(err, LUMEN_ENOMEM, "model: out of memory");
    char t[NN_NAME_MAX];
    name_join(t, mod, "weight");
    n->weight = nn_model_find(m, t);
    n->c = (int)m->tensors[n->weight].dims[0];
    n->k = k;
    n->stride = stride;
    n->pad = pad;
    n->h = (n->ih + 2 * pad - k) / stride + 1;
    n->w = (n->iw + 2 * pad - k) / stride + 1;
    if (n->ih + 2 * pad < k || n->iw + 2 * pad < k || n->h < 1 || n->w < 1)
        return lm_fail(err, LUMEN_EINVAL,
                       "input size: %dx%d is too small for the model (layer %s gets %dx%d)",
                       gb->g->in_h, gb->g->in_w, mod, n->ih, n->iw);
    n->flops = 2.0 * n->c * n->h * n->w * (double)n->ic * k * k;
    return LUMEN_OK;
}

static int bn_node(gbuild *gb, const nn_model *m, const char *mod, int in0, int relu,
                   lm_err *err) {
    nn_node *n = push_node(gb, NN_OP_BN, mod, in0);
    if (!n) return lm_fail(err, LUMEN_ENOMEM, "model: out of memory");
    char t[NN_NAME_MAX];
    name_join(t, mod, "weight");
    n->weight = nn_model_find(m, t);
    name_join(t, mod, "bias");
    n->bias = nn_model_find(m, t);
    name_join(t, mod, "running_mean");
    n->mean = nn_model_find(m, t);
    name_join(t, mod, "running_var");
    n->var = nn_model_find(m, t);
    name_join(t, mod, "num_batches_tracked");
    n->count = nn_model_find(m, t);
    n->relu = relu;
    n->flops = (2.0 + relu) * n->c * n->h * n->w;
    return LUMEN_OK;
}

int nn_model_graph(const nn_model *m, int in_h, int in_w, nn_graph *g, lm_err *err) {
    const nn_resnet_cfg *cfg = &m->cfg;
    memset(g, 0, sizeof *g);
    g->in_c = cfg->in_channels;
    g->in_h = in_h;
    g->in_w = in_w;
    gbuild gb = {g, 0, 0, 0, 0, NN_INPUT};
    int rc;
    if (in_h < 1 || in_w < 1) {
        rc = lm_fail(err, LUMEN_EINVAL, "input size: %dx%d is not a valid image size", in_h, in_w);
        goto fail;
    }
    if (nn_stem_kernel(cfg->stem) == 7) rc = conv_node(&gb, m, "conv1", NN_INPUT, 7, 2, 3, err);
    else rc = conv_node(&gb, m, "conv1", NN_INPUT, 3, 1, 1, err);
    if (rc) goto fail;
    if ((rc = bn_node(&gb, m, "bn1", g->n - 1, 1, err))) goto fail;
    if (cfg->stem == NN_STEM_7X7) {
        nn_node *p = push_node(&gb, NN_OP_MAXPOOL, "maxpool", g->n - 1);
        if (!p) { rc = lm_fail(err, LUMEN_ENOMEM, "model: out of memory"); goto fail; }
        p->k = 3;
        p->stride = 2;
        p->pad = 1;
        p->h = (p->ih + 2 - 3) / 2 + 1;
        p->w = (p->iw + 2 - 3) / 2 + 1;
        p->flops = 9.0 * p->c * p->h * p->w;
    }
    int x = g->n - 1, inch = cfg->stem_width;
    for (int s = 0; s < cfg->nstages; s++) {
        for (int blk = 0; blk < cfg->blocks[s]; blk++) {
            char mod[32], sub[NN_NAME_MAX];
            snprintf(mod, sizeof mod, "layer%d.%d", s + 1, blk);
            int stride = (s > 0 && blk == 0) ? 2 : 1;
            name_join(sub, mod, "conv1");
            if ((rc = conv_node(&gb, m, sub, x, 3, stride, 1, err))) goto fail;
            name_join(sub, mod, "bn1");
            if ((rc = bn_node(&gb, m, sub, g->n - 1, 1, err))) goto fail;
            name_join(sub, mod, "conv2");
            if ((rc = conv_node(&gb, m, sub, g->n - 1, 3, 1, 1, err))) goto fail;
            name_join(sub, mod, "bn2");
            if ((rc = bn_node(&gb, m, sub, g->n - 1, 0, err))) goto fail;
            int main_out = g->n - 1, shortcut = x;
            if (block_has_downsample(cfg, s, blk, inch)) {
                name_join(sub, mod, "downsample.0");
                if ((rc = conv_node(&gb, m, sub, x, 1, stride, 0, err))) goto fail;
                name_join(sub, mod, "downsample.1");
                if ((rc = bn_node(&gb, m, sub, g->n - 1, 0, err))) goto fail;
                shortcut = g->n - 1;
            }
            name_join(sub, mod, "add");
            nn_node *a = push_node(&gb, NN_OP_ADD, sub, main_out);
            if (!a) { rc = lm_fail(err, LUMEN_ENOMEM, "model: out of memory"); goto fail; }
            a->in[1] = shortcut;
            a->relu = 1;
            a->flops = 2.0 * a->c * a->h * a->w;
            x = g->n - 1;
            inch = cfg->widths[s];
        }
    }
    nn_node *n = push_node(&gb, NN_OP_GAP, "avgpool", x);
    if (!n) { rc = lm_fail(err, LUMEN_ENOMEM, "model: out of memory"); goto fail; }
    n->pmax = nn_pool_max_weight(cfg->pool);
    n->flops = (double)n->c * n->ih * n->iw * (n->pmax > 0.0f && n->pmax < 1.0f ? 2 : 1);
    n->h = n->w = 1;
    if (cfg->dropout > 0.0f) {
        n = push_node(&gb, NN_OP_DROPOUT, "dropout", g->n - 1);
        if (!n) { rc = lm_fail(err, LUMEN_ENOMEM, "model: out of memory"); goto fail; }
        n->p = cfg->dropout;
        n->flops = n->c;
    }
    n = push_node(&gb, NN_OP_FC, "fc", g->n - 1);
    if (!n) { rc = lm_fail(err, LUMEN_ENOMEM, "model: out of memory"); goto fail; }
    n->weight = nn_model_find(m, "fc.weight");
    n->bias = nn_model_find(m, "fc.bias");
    n->c = cfg->num_classes;
    n->flops = 2.0 * n->ic * n->c;
    return LUMEN_OK;
fail:
    nn_graph_free(g);
    return rc;
}

void nn_graph_free(nn_graph *g) {
    if (!g) return;
    free(g->nodes);
    g->nodes = NULL;
    g->n = 0;
}

double nn_graph_flops(const nn_graph *g) {
    double f = 0;
    for (int i = 0; i < g->n; i++) f += g->nodes[i].flops;
    return f;
}
