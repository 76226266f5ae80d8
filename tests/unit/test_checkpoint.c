/* Unit tests for stages/common/checkpoint.c: save/load round trips, loading
 * files written by the PyTorch twin (tests/fixtures/golden_small.safetensors,
 * twin_rgb_f16.safetensors), missing/unexpected/mismatch reporting,
 * reset_head, RGB -> gray, corrupted files, atomic saves, training state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"

/* ------------------------------------------------------------- helpers -- */

static char *tmpdir(void) {
    char tmpl[] = "/tmp/lumen-ckpt-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rmdir_all(char *dir) {
    lm_err e = {0};
    chmod(dir, 0700);
    assert_int_equal(lm_rmtree(dir, &e), 0);
    free(dir);
}

static char *fixture(const char *name) {
    const char *dir = getenv("LUMEN_FIXTURES");
    return lm_path_join(dir && *dir ? dir : "tests/fixtures", name);
}

/* A model and its three arrays. */
typedef struct net {
    nn_model *m;
    float *params, *buffers;
    int64_t *counters;
} net;

static void net_make(net *n, const nn_resnet_cfg *cfg, uint64_t seed) {
    lm_err e = {0};
    int rc = nn_model_create(cfg, &n->m, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    n->params = calloc(n->m->nparams, sizeof(float));
    n->buffers = calloc(n->m->nbuffers, sizeof(float));
    n->counters = calloc(n->m->ncounters + 1, sizeof(int64_t));
    assert_true(n->params && n->buffers && n->counters);
    nn_model_init(n->m, seed, n->params, n->buffers, n->counters);
    /* non-trivial buffers and counters so a mix-up cannot pass unnoticed */
    for (size_t i = 0; i < n->m->nbuffers; i++) n->buffers[i] += 0.001f * (float)(i % 97);
    for (size_t i = 0; i < n->m->ncounters; i++) n->counters[i] = 100 + (int64_t)i;
}

static void net_free(net *n) {
    nn_model_free(n->m);
    free(n->params);
    free(n->buffers);
    free(n->counters);
}

static void cfg_small(nn_resnet_cfg *c, int b0, int w1, int classes) {
    nn_resnet_cfg_default(c);
    c->nstages = 2;
    c->blocks[0] = b0;
    c->blocks[1] = 1;
    c->widths[0] = 4;
    c->widths[1] = w1;
    c->stem_width = 4;
    c->stem = NN_STEM_3X3;
    c->num_classes = classes;
}

static int save_net(const char *path, const net *n, int64_t epoch, lm_err *e) {
    char *model = nn_resnet_cfg_to_json(&n->m->cfg);
    assert_non_null(model);
    const char *extra[] = {"run", "trial-7", NULL};
    lm_ckpt_meta meta = {
        .model = model,
        .labels = n->m->cfg.num_classes == 2 ? "[\"crack\",\"inactive\"]" : NULL,
        .stats = "{\"channels\":1,\"mean\":[0.5],\"std\":[0.25]}",
        .thresholds = n->m->cfg.num_classes == 2 ? "[0.4,0.6]" : NULL,
        .metrics = "{\"val/f1_mean\":0.75}",
        .input = "{\"height\":32,\"width\":32,\"channels\":1}",
        .epoch = epoch,
        .extra = extra,
    };
    int rc = lm_ckpt_save(path, n->m, n->params, n->buffers, n->counters, &meta, e);
    free(model);
    return rc;
}

static int list_has(char *const *l, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i], s) == 0) return 1;
    return 0;
}

/* --------------------------------------------------------------- tests -- */

static void test_save_load_roundtrip_bitwise(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *path = lm_path_join(dir, "best.safetensors");
    nn_resnet_cfg cfg;
    nn_resnet_cfg_default(&cfg);
    cfg.widths[0] = 8, cfg.widths[1] = 16, cfg.widths[2] = 32, cfg.widths[3] = 64;
    cfg.stem_width = 8;
    net a, b;
    net_make(&a, &cfg, 1);
    net_make(&b, &cfg, 2); /* different values everywhere */
    lm_err e = {0};
    assert_int_equal(save_net(path, &a, 12, &e), 0);

    lm_st_file *f;
    int rc = lm_ckpt_open(path, &f, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    lm_ckpt_meta mt;
    assert_int_equal(lm_ckpt_read_meta(f, &mt, &e), 0);
    assert_int_equal(mt.epoch, 12);
    assert_string_equal(mt.labels, "[\"crack\",\"inactive\"]");
    assert_string_equal(mt.thresholds, "[0.4,0.6]");
    assert_string_equal(mt.input, "{\"height\":32,\"width\":32,\"channels\":1}");
    assert_string_equal(mt.metrics, "{\"val/f1_mean\":0.75}");
    assert_non_null(strstr(mt.stats, "\"mean\":[0.5]"));
    assert_string_equal(lm_st_meta_get(f, "run"), "trial-7");
    assert_string_equal(lm_st_meta_get(f, "format"), "lumen-checkpoint");
    assert_string_equal(lm_st_meta_get(f, "version"), "1");
    assert_non_null(mt.created);
    assert_int_equal(strlen(mt.created), 20); /* 2026-01-31T12:00:00Z */
    assert_int_equal(mt.created[10], 'T');
    assert_int_equal(mt.created[19], 'Z');
    /* the model config comes back */
    nn_resnet_cfg back;
    assert_int_equal(nn_resnet_cfg_from_json(mt.model, &back, &e), 0);
    assert_memory_equal(back.widths, cfg.widths, sizeof cfg.widths);
    assert_int_equal(back.stem_width, 8);
    /* torch layout: counters are I64 scalars, the rest F32 */
    const lm_st_tensor *t = lm_st_find(f, "layer2.0.downsample.1.num_batches_tracked");
    assert_non_null(t);
    assert_int_equal(t->dtype, LM_ST_I64);
    assert_int_equal(t->ndim, 0);
    t = lm_st_find(f, "layer2.0.conv1.weight");
    assert_int_equal(t->dtype, LM_ST_F32);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 16);
    assert_int_equal(t->shape[1], 8);
    assert_int_equal(lm_st_count(f), (size_t)a.m->ntensors);

    lm_ckpt_report rep;
    lm_ckpt_load_opts strict = {.strict = 1};
    rc = lm_ckpt_load(f, b.m, b.params, b.buffers, b.counters, &strict, &rep, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.nloaded, (size_t)a.m->ntensors);
    assert_int_equal(rep.nmissing + rep.nunexpected + rep.nreset + rep.nnotes, 0);
    assert_memory_equal(a.params, b.params, a.m->nparams * sizeof(float));
    assert_memory_equal(a.buffers, b.buffers, a.m->nbuffers * sizeof(float));
    assert_memory_equal(a.counters, b.counters, a.m->ncounters * sizeof(int64_t));
    char *txt = lm_ckpt_report_text(&rep);
    assert_non_null(strstr(txt, "loaded"));
    free(txt);
    lm_ckpt_report_free(&rep);
    lm_st_close(f);
    net_free(&a);
    net_free(&b);
    free(path);
    rmdir_all(dir);
}

/* The golden fixture was written by the torch twin: its names and shapes are
 * exactly the C tensor table of the same config. */
static void test_loads_torch_twin_state_dict(void **state) {
    (void)state;
    char *path = fixture("golden_small.safetensors");
    lm_err e = {0};
    lm_st_file *f;
    int rc = lm_st_open(path, &f, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    nn_resnet_cfg cfg;
    assert_int_equal(nn_resnet_cfg_from_json(lm_st_meta_get(f, "model"), &cfg, &e), 0);
    net n;
    net_make(&n, &cfg, 3);
    lm_ckpt_report rep;
    rc = lm_ckpt_load(f, n.m, n.params, n.buffers, n.counters, NULL, &rep, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.nmissing, 0);
    assert_int_equal(rep.nloaded, (size_t)n.m->ntensors);
    assert_int_equal(rep.nunexpected, lm_st_count(f) - (size_t)n.m->ntensors);
    assert_true(list_has(rep.unexpected, rep.nunexpected, "x"));
    assert_true(list_has(rep.unexpected, rep.nunexpected, "grad.fc.weight"));
    /* values are the file's */
    for (int i = 0; i < n.m->ntensors; i++) {
        const nn_tensor *t = &n.m->tensors[i];
        const lm_st_tensor *ft = lm_st_find(f, t->name);
        if (t->kind == NN_T_COUNTER) {
            int64_t v;
            assert_int_equal(lm_st_to_i64(f, ft, &v, 1, &e), 0);
            assert_int_equal(n.counters[t->offset], v);
        } else {
            assert_memory_equal((t->kind == NN_T_PARAM ? n.params : n.buffers) + t->offset,
                                ft->data, t->numel * sizeof(float));
        }
    }
    lm_ckpt_report_free(&rep);

    /* strict: the extra tensors are an error listing them */
    lm_ckpt_load_opts strict = {.strict = 1};
    assert_int_equal(lm_ckpt_load(f, n.m, n.params, n.buffers, n.counters, &strict, &rep, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "0 tensors missing"));
    assert_non_null(strstr(e.msg, "unexpected"));
    assert_int_equal(rep.nunexpected, 0); /* report emptied on error */
    /* not a lumen checkpoint */
    lm_err_clear(&e);
    lm_st_file *g;
    assert_int_equal(lm_ckpt_open(path, &g, &e), LUMEN_EABI);
    assert_null(g);
    assert_non_null(strstr(e.msg, "not a lumen checkpoint"));
    assert_non_null(strstr(e.msg, "lumen-golden"));
    lm_st_close(f);
    net_free(&n);
    free(path);
}

static void test_rgb_f16_into_gray_model(void **state) {
    (void)state;
    char *path = fixture("twin_rgb_f16.safetensors");
    lm_err e = {0};
    lm_st_file *f;
    int rc = lm_st_open(path, &f, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    nn_resnet_cfg cfg;
    assert_int_equal(nn_resnet_cfg_from_json(lm_st_meta_get(f, "model"), &cfg, &e), 0);
    assert_int_equal(cfg.in_channels, 3);

    /* the RGB model itself loads strictly, from F16 */
    net rgb;
    net_make(&rgb, &cfg, 4);
    lm_ckpt_report rep;
    lm_ckpt_load_opts strict = {.strict = 1};
    rc = lm_ckpt_load(f, rgb.m, rgb.params, rgb.buffers, rgb.counters, &strict, &rep, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.nloaded, (size_t)rgb.m->ntensors);
    assert_int_equal(rep.nnotes, 1);
    assert_non_null(strstr(rep.notes[0], "from F16 to F32"));
    lm_ckpt_report_free(&rep);

    /* gray model: conv1.weight summed over R, G, B */
    cfg.in_channels = 1;
    net g;
    net_make(&g, &cfg, 5);
    rc = lm_ckpt_load(f, g.m, g.params, g.buffers, g.counters, &strict, &rep, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.nloaded, (size_t)g.m->ntensors);
    assert_true(rep.nnotes == 2);
    assert_non_null(strstr(rep.notes[0], "conv1.weight: summed 3 input channels into 1"));
    lm_ckpt_report_free(&rep);
    const lm_st_tensor *ft = lm_st_find(f, "conv1.weight");
    assert_int_equal(ft->dtype, LM_ST_F16);
    const nn_tensor *t = &g.m->tensors[nn_model_find(g.m, "conv1.weight")];
    int64_t O = ft->shape[0], K = ft->shape[2] * ft->shape[3];
    assert_int_equal(t->dims[1], 1);
    assert_int_equal(ft->shape[1], 3);
    const uint16_t *h = ft->data; /* aligned: written by the Python library */
    assert_true(lm_st_is_aligned(ft));
    for (int64_t o = 0; o < O; o++)
        for (int64_t k = 0; k < K; k++) {
            float r = lm_st_f16_to_f32(h[(o * 3 + 0) * K + k]);
            float gg = lm_st_f16_to_f32(h[(o * 3 + 1) * K + k]);
            float b = lm_st_f16_to_f32(h[(o * 3 + 2) * K + k]);
            float want = r + gg + b;
            assert_true(g.params[t->offset + (size_t)(o * K + k)] == want);
        }
    /* everything after the first conv equals the RGB model's */
    for (int i = 1; i < g.m->ntensors; i++) {
        const nn_tensor *tg = &g.m->tensors[i], *tr = &rgb.m->tensors[i];
        assert_string_equal(tg->name, tr->name);
        if (tg->kind == NN_T_COUNTER) continue;
        const float *ag = tg->kind == NN_T_PARAM ? g.params : g.buffers;
        const float *ar = tr->kind == NN_T_PARAM ? rgb.params : rgb.buffers;
        assert_memory_equal(ag + tg->offset, ar + tr->offset, tg->numel * sizeof(float));
    }
    assert_int_equal(g.counters[0], 11);

    /* refused on request */
    lm_ckpt_load_opts no = {.no_rgb_to_gray = 1};
    assert_int_equal(lm_ckpt_load(f, g.m, g.params, g.buffers, g.counters, &no, NULL, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'conv1.weight'"));
    assert_non_null(strstr(e.msg, "[6, 3, 3, 3] in the file, [6, 1, 3, 3] in the model"));
    lm_st_close(f);
    net_free(&rgb);
    net_free(&g);
    free(path);
}

static void test_missing_and_unexpected(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p1 = lm_path_join(dir, "one.safetensors"), *p2 = lm_path_join(dir, "two.safetensors");
    nn_resnet_cfg c1, c2;
    cfg_small(&c1, 1, 8, 2);
    cfg_small(&c2, 2, 8, 2); /* an extra block layer1.1 */
    net a, b;
    net_make(&a, &c1, 1);
    net_make(&b, &c2, 2);
    lm_err e = {0};
    assert_int_equal(save_net(p1, &a, 1, &e), 0);
    assert_int_equal(save_net(p2, &b, 1, &e), 0);

    /* one -> two: layer1.1.* missing, kept at their values */
    float *keep = malloc(b.m->nparams * sizeof(float));
    memcpy(keep, b.params, b.m->nparams * sizeof(float));
    lm_ckpt_report rep;
    assert_int_equal(lm_ckpt_load_file(p1, b.m, b.params, b.buffers, b.counters, NULL, &rep, &e), 0);
    assert_int_equal(rep.nmissing, 12); /* 2 convs + 2 BNs x 5 */
    assert_int_equal(rep.nunexpected, 0);
    assert_true(list_has(rep.missing, rep.nmissing, "layer1.1.conv1.weight"));
    assert_true(list_has(rep.missing, rep.nmissing, "layer1.1.bn2.num_batches_tracked"));
    assert_int_equal(rep.nloaded, (size_t)b.m->ntensors - 12);
    const nn_tensor *t = &b.m->tensors[nn_model_find(b.m, "layer1.1.conv1.weight")];
    assert_memory_equal(b.params + t->offset, keep + t->offset, t->numel * sizeof(float));
    t = &b.m->tensors[nn_model_find(b.m, "fc.weight")];
    const nn_tensor *ta = &a.m->tensors[nn_model_find(a.m, "fc.weight")];
    assert_memory_equal(b.params + t->offset, a.params + ta->offset, t->numel * sizeof(float));
    char *txt = lm_ckpt_report_text(&rep);
    assert_non_null(strstr(txt, "missing (kept their init) (12): layer1.1.conv1.weight"));
    free(txt);
    lm_ckpt_report_free(&rep);

    /* two -> one: layer1.1.* unexpected */
    assert_int_equal(lm_ckpt_load_file(p2, a.m, a.params, a.buffers, a.counters, NULL, &rep, &e), 0);
    assert_int_equal(rep.nmissing, 0);
    assert_int_equal(rep.nunexpected, 12);
    assert_true(list_has(rep.unexpected, rep.nunexpected, "layer1.1.bn1.running_var"));
    lm_ckpt_report_free(&rep);

    /* strict refuses, naming the file and a missing tensor; arrays untouched */
    memcpy(keep, b.params, b.m->nparams * sizeof(float));
    lm_ckpt_load_opts strict = {.strict = 1};
    assert_int_equal(lm_ckpt_load_file(p1, b.m, b.params, b.buffers, b.counters, &strict, NULL, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p1));
    assert_non_null(strstr(e.msg, "12 tensors missing"));
    assert_non_null(strstr(e.msg, "layer1.1.conv1.weight"));
    assert_memory_equal(keep, b.params, b.m->nparams * sizeof(float));
    free(keep);
    net_free(&a);
    net_free(&b);
    free(p1);
    free(p2);
    rmdir_all(dir);
}

static void test_shape_mismatch_names_both_shapes(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "w8.safetensors");
    nn_resnet_cfg c1, c2;
    cfg_small(&c1, 1, 8, 2);
    cfg_small(&c2, 1, 16, 2);
    net a, b;
    net_make(&a, &c1, 1);
    net_make(&b, &c2, 2);
    lm_err e = {0};
    assert_int_equal(save_net(p, &a, 1, &e), 0);
    float *keep = malloc(b.m->nparams * sizeof(float));
    memcpy(keep, b.params, b.m->nparams * sizeof(float));
    lm_ckpt_report rep;
    assert_int_equal(lm_ckpt_load_file(p, b.m, b.params, b.buffers, b.counters, NULL, &rep, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "'layer2.0.conv1.weight'"));
    assert_non_null(strstr(e.msg, "[8, 4, 3, 3] in the file, [16, 4, 3, 3] in the model"));
    /* nothing was written (checks happen before any copy) */
    assert_memory_equal(keep, b.params, b.m->nparams * sizeof(float));
    assert_int_equal(rep.nloaded, 0);
    free(keep);
    net_free(&a);
    net_free(&b);
    free(p);
    rmdir_all(dir);
}

static void test_reset_head(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "pre.safetensors");
    nn_resnet_cfg c1, c2;
    cfg_small(&c1, 1, 8, 5); /* "pretrained" on 5 classes */
    cfg_small(&c2, 1, 8, 2);
    net a, b;
    net_make(&a, &c1, 1);
    net_make(&b, &c2, 2);
    lm_err e = {0};
    assert_int_equal(save_net(p, &a, 30, &e), 0);

    assert_int_equal(lm_ckpt_load_file(p, b.m, b.params, b.buffers, b.counters, NULL, NULL, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'fc.weight'"));
    assert_non_null(strstr(e.msg, "[5, 8] in the file, [2, 8] in the model"));
    assert_non_null(strstr(e.msg, "reset_head"));
    lm_err_clear(&e);

    const nn_tensor *fw = &b.m->tensors[nn_model_find(b.m, "fc.weight")];
    const nn_tensor *fb = &b.m->tensors[nn_model_find(b.m, "fc.bias")];
    float head[2 * 8 + 2];
    memcpy(head, b.params + fw->offset, sizeof head); /* fc.weight then fc.bias */
    assert_int_equal(fb->offset, fw->offset + 16);
    lm_ckpt_load_opts o = {.reset_head = 1, .strict = 1};
    lm_ckpt_report rep;
    int rc = lm_ckpt_load_file(p, b.m, b.params, b.buffers, b.counters, &o, &rep, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.nreset, 2);
    assert_non_null(strstr(rep.reset[0], "fc.weight"));
    assert_non_null(strstr(rep.reset[0], "[5, 8]"));
    assert_non_null(strstr(rep.reset[1], "fc.bias"));
    assert_int_equal(rep.nloaded, (size_t)b.m->ntensors - 2);
    assert_memory_equal(head, b.params + fw->offset, sizeof head);
    /* the body is the pretrained one */
    assert_memory_equal(b.params, a.params, fw->offset * sizeof(float));
    assert_memory_equal(b.buffers, a.buffers, a.m->nbuffers * sizeof(float));
    char *txt = lm_ckpt_report_text(&rep);
    assert_non_null(strstr(txt, "head reset"));
    free(txt);
    lm_ckpt_report_free(&rep);
    net_free(&a);
    net_free(&b);
    free(p);
    rmdir_all(dir);
}

static void test_corrupted_checkpoint_refused(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "last.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a;
    net_make(&a, &c, 1);
    lm_err e = {0};
    assert_int_equal(save_net(p, &a, 3, &e), 0);
    char *data;
    size_t len;
    assert_int_equal(lm_read_file(p, &data, &len, &e), 0);

    /* truncated (a crash of a non-atomic writer would look like this) */
    assert_int_equal(lm_write_file_atomic(p, data, len - 100, &e), 0);
    lm_st_file *f;
    assert_int_equal(lm_ckpt_open(p, &f, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "truncated?"));
    lm_err_clear(&e);
    assert_int_equal(lm_ckpt_load_file(p, a.m, a.params, a.buffers, a.counters, NULL, NULL, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    lm_err_clear(&e);

    /* header garbage */
    data[20] = '\x01';
    assert_int_equal(lm_write_file_atomic(p, data, len, &e), 0);
    assert_int_equal(lm_ckpt_open(p, &f, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    if (!strstr(e.msg, "header")) print_error("%s\n", e.msg);
    assert_non_null(strstr(e.msg, "header"));
    lm_err_clear(&e);

    /* a future version */
    free(data);
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    assert_int_equal(lm_ckpt_add_model(w, a.m, a.params, a.buffers, a.counters, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "format", "lumen-checkpoint", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "version", "2", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "model", "{}", &e), 0);
    assert_int_equal(lm_st_writer_write(w, p, &e), 0);
    lm_st_writer_free(w);
    assert_int_equal(lm_ckpt_open(p, &f, &e), LUMEN_EABI);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "version \"2\""));

    /* a file that is not there */
    lm_err_clear(&e);
    char *none = lm_path_join(dir, "none.safetensors");
    assert_int_equal(lm_ckpt_open(none, &f, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, none));
    free(none);
    net_free(&a);
    free(p);
    rmdir_all(dir);
}

/* A failed save leaves the previous checkpoint loadable. */
static void test_failed_save_keeps_previous(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "best.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a, b;
    net_make(&a, &c, 1);
    net_make(&b, &c, 2);
    lm_err e = {0};
    assert_int_equal(save_net(p, &a, 1, &e), 0);

    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size / 2; /* the write of the new file fails */
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = save_net(p, &b, 2, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(rc, LUMEN_EIO);
    assert_non_null(strstr(e.msg, p));
    lm_err_clear(&e);

    if (geteuid() != 0) { /* a read-only folder stops everyone but root */
        assert_int_equal(chmod(dir, 0500), 0);
        assert_int_equal(save_net(p, &b, 2, &e), LUMEN_EIO);
        assert_int_equal(chmod(dir, 0700), 0);
        lm_err_clear(&e);
    }

    net c2;
    net_make(&c2, &c, 3);
    lm_st_file *f;
    assert_int_equal(lm_ckpt_open(p, &f, &e), 0);
    lm_ckpt_meta mt;
    assert_int_equal(lm_ckpt_read_meta(f, &mt, &e), 0);
    assert_int_equal(mt.epoch, 1);
    lm_ckpt_load_opts strict = {.strict = 1};
    assert_int_equal(lm_ckpt_load(f, c2.m, c2.params, c2.buffers, c2.counters, &strict, NULL, &e), 0);
    assert_memory_equal(c2.params, a.params, a.m->nparams * sizeof(float));
    lm_st_close(f);
    net_free(&a);
    net_free(&b);
    net_free(&c2);
    free(p);
    rmdir_all(dir);
}

static void test_metadata_validation(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "m.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a;
    net_make(&a, &c, 1);
    char *model = nn_resnet_cfg_to_json(&c);
    lm_err e = {0};
    struct {
        lm_ckpt_meta m;
        const char *frag;
    } bad[] = {
        {{.model = NULL}, "\"model\" is required"},
        {{.model = "[1]"}, "\"model\" must be a JSON object"},
        {{.model = "{\"num_classes\":3}"}, "num_classes 3"},
        {{.model = model, .labels = "[\"crack\"]"}, "\"labels\""},
        {{.model = model, .labels = "{\"a\":1}"}, "\"labels\" must be a JSON array"},
        {{.model = model, .thresholds = "[0.5,\"x\"]"}, "\"thresholds\""},
        {{.model = model, .thresholds = "[0.5,"}, "\"thresholds\""},
        {{.model = model, .stats = "{\"mean\":[0.1]}"}, "\"stats\""},
        {{.model = model, .input = "{\"height\":32,\"width\":32,\"channels\":3}"}, "\"input\""},
        {{.model = model, .metrics = "3"}, "\"metrics\""},
        {{.model = model, .extra = (const char *const[]){"epoch", "9", NULL}}, "reserved"},
        {{.model = model, .extra = (const char *const[]){LM_CKPT_DIGEST_KEY, "0", NULL}},
         "reserved"},
        {{.model = model, .extra = (const char *const[]){"validated", "[]", NULL}},
         "\"validated\" must be a JSON object"},
        /* the ranges lm_ckpt_open checks are checked before writing, too */
        {{.model = model, .thresholds = "[0.5,1.5]"}, "entry 1 is 1.5, outside [0, 1]"},
        {{.model = model, .thresholds = "[-0.25,0.5]"}, "entry 0 is -0.25"},
        {{.model = model, .labels = "[\"a\",\"a\"]"}, "'a' appears twice"},
        {{.model = model, .labels = "[\"a\",\"\"]"}, "\"labels\": entry 1"},
        {{.model = model, .stats = "{\"channels\":1,\"mean\":[1.5],\"std\":[0.2]}"},
         "mean[0]"},
        {{.model = model, .stats = "{\"channels\":1,\"mean\":[0.5],\"std\":[0]}"},
         "std[0]"},
        {{.model = model, .input = "{\"height\":5000,\"width\":32,\"channels\":1}"},
         "\"input\""},
        {{.model = model, .epoch = 100001}, "\"epoch\" is 100001"},
        {{.model = model, .created = "yesterday"}, "\"created\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i].m.epoch == 0) bad[i].m.epoch = -1;
        lm_err_clear(&e);
        int rc = lm_ckpt_save(p, a.m, a.params, a.buffers, a.counters, &bad[i].m, &e);
        if (rc != LUMEN_EINVAL || !strstr(e.msg, bad[i].frag))
            print_error("case %zu: rc %d msg %s\n", i, rc, e.msg);
        assert_int_equal(rc, LUMEN_EINVAL);
        assert_non_null(strstr(e.msg, bad[i].frag));
        assert_false(lm_exists(p));
    }
    /* the minimum: model only; epoch absent reads back as -1 */
    lm_ckpt_meta ok = {.model = model, .epoch = -1, .created = "2026-01-31T12:00:00Z"};
    lm_err_clear(&e);
    assert_int_equal(lm_ckpt_save(p, a.m, a.params, a.buffers, a.counters, &ok, &e), 0);
    lm_st_file *f;
    assert_int_equal(lm_ckpt_open(p, &f, &e), 0);
    lm_ckpt_meta mt;
    assert_int_equal(lm_ckpt_read_meta(f, &mt, &e), 0);
    assert_int_equal(mt.epoch, -1);
    assert_null(mt.labels);
    assert_string_equal(mt.created, "2026-01-31T12:00:00Z");
    assert_int_equal(lm_st_meta_count(f), 5); /* created format checksum model version */
    lm_st_close(f);
    free(model);
    net_free(&a);
    free(p);
    rmdir_all(dir);
}

/* Replaces the first `from` in the header of the file bytes with `to` (same
 * length, so the layout stays valid safetensors). */
static void flip_text(char *data, size_t len, const char *from, const char *to) {
    assert_int_equal(strlen(from), strlen(to));
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | (unsigned char)data[i];
    assert_true(8 + hn <= len);
    char *at = memmem(data + 8, (size_t)hn, from, strlen(from));
    if (!at) fail_msg("'%s' not in the header", from);
    memcpy(at, to, strlen(to));
}

/* One changed byte in a stored value is caught by the range checks, with a
 * message naming the file and the entry. */
static void test_damaged_metadata_refused(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "best.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a;
    net_make(&a, &c, 1);
    lm_err e = {0};
    assert_int_equal(save_net(p, &a, 3, &e), 0);
    char *orig;
    size_t len;
    assert_int_equal(lm_read_file(p, &orig, &len, &e), 0);
    const struct {
        const char *from, *to, *frag;
    } cases[] = {
        {"[0.4,0.6]", "[9.4,0.6]", "metadata \"thresholds\": entry 0 is 9.4, outside [0, 1]"},
        {"[0.4,0.6]", "[0.4,6.6]", "metadata \"thresholds\": entry 1 is 6.6"},
        {"[0.4,0.6]", "[0.4,0-6]", "metadata \"thresholds\" must be a JSON array"},
        {"\\\"mean\\\":[0.5]", "\\\"mean\\\":[5.5]", "metadata \"stats\": mean[0]"},
        {"\\\"std\\\":[0.25]", "\\\"std\\\":[0.00]", "metadata \"stats\": std[0]"},
        {"\\\"channels\\\":1,", "\\\"channels\\\":3,", "metadata \"stats\""},
        {"\\\"height\\\":32", "\\\"height\\\":0 ", "metadata \"input\""},
        {"\\\"width\\\":32", "\\\"width\\\":-1", "metadata \"input\""},
        {"\"epoch\":\"3\"", "\"epoch\":\"-\"", "metadata \"epoch\""},
        {"\\\"num_classes\\\":2", "\\\"num_classes\\\":3", "tensor 'fc.weight'"},
        {"\\\"in_channels\\\":1", "\\\"in_channels\\\":3", "tensor 'conv1.weight'"},
        {"\\\"stem_width\\\":4", "\\\"stem_width\\\":0", "model.stem_width"},
        {"[\\\"crack\\\",", "[\\\"cr\\\\t\\\",", "metadata \"labels\": entry 0"},
        {"{\\\"val/f1_mean\\\":0.75}", "[\\\"val/f1_mean\\\",0.75]",
         "metadata \"metrics\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *data = malloc(len);
        memcpy(data, orig, len);
        flip_text(data, len, cases[i].from, cases[i].to);
        assert_int_equal(lm_write_file_atomic(p, data, len, &e), 0);
        free(data);
        lm_err_clear(&e);
        lm_st_file *f = NULL;
        int rc = lm_ckpt_open(p, &f, &e);
        if (rc != LUMEN_EDATA || !strstr(e.msg, cases[i].frag) || !strstr(e.msg, p))
            print_error("case %zu: rc %d msg %s\n", i, rc, e.msg);
        assert_int_equal(rc, LUMEN_EDATA);
        assert_null(f);
        assert_non_null(strstr(e.msg, p));
        assert_non_null(strstr(e.msg, cases[i].frag));
    }
    /* the undamaged file opens */
    assert_int_equal(lm_write_file_atomic(p, orig, len, &e), 0);
    lm_st_file *f;
    assert_int_equal(lm_ckpt_open(p, &f, &e), 0);
    lm_st_close(f);
    free(orig);
    net_free(&a);
    free(p);
    rmdir_all(dir);
}

/* The data section's XXH3-128 is stored on save and checked on open: a
 * flipped weight byte is an error naming the file, for checkpoints and state
 * files alike. */
static void test_data_checksum(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "best.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a, b;
    net_make(&a, &c, 1);
    net_make(&b, &c, 2);
    lm_err e = {0};
    assert_int_equal(save_net(p, &a, 3, &e), 0);
    lm_st_file *f;
    assert_int_equal(lm_ckpt_open(p, &f, &e), 0);
    const char *sum = lm_st_meta_get(f, LM_CKPT_DIGEST_KEY);
    assert_non_null(sum);
    assert_int_equal(strlen(sum), 32);
    assert_int_equal(strspn(sum, "0123456789abcdef"), 32);
    size_t dlen;
    const void *d = lm_st_data_section(f, &dlen);
    assert_int_equal(dlen, (a.m->nparams + a.m->nbuffers) * 4 + a.m->ncounters * 8);
    assert_true(lm_ckpt_verify_data(f, &e) == 0);
    (void)d;
    lm_st_close(f);

    char *data;
    size_t len;
    assert_int_equal(lm_read_file(p, &data, &len, &e), 0);
    size_t at[] = {len - dlen, len - dlen / 2, len - 1}; /* first, middle, last byte */
    for (size_t i = 0; i < 3; i++) {
        data[at[i]] ^= 0x01;
        assert_int_equal(lm_write_file_atomic(p, data, len, &e), 0);
        data[at[i]] ^= 0x01;
        lm_err_clear(&e);
        assert_int_equal(lm_ckpt_open(p, &f, &e), LUMEN_EDATA);
        assert_non_null(strstr(e.msg, p));
        assert_non_null(strstr(e.msg, "data section checksum mismatch: the file is damaged"));
        lm_err_clear(&e);
        assert_int_equal(
            lm_ckpt_load_file(p, b.m, b.params, b.buffers, b.counters, NULL, NULL, &e),
            LUMEN_EDATA);
        assert_non_null(strstr(e.msg, p));
        assert_non_null(strstr(e.msg, "data section checksum mismatch"));
    }
    /* a malformed checksum entry */
    char *bad = malloc(len);
    memcpy(bad, data, len);
    char *v = memmem(bad, len, "\"" LM_CKPT_DIGEST_KEY "\":\"", strlen(LM_CKPT_DIGEST_KEY) + 4);
    assert_non_null(v);
    v[strlen(LM_CKPT_DIGEST_KEY) + 4] = 'g';
    assert_int_equal(lm_write_file_atomic(p, bad, len, &e), 0);
    free(bad);
    lm_err_clear(&e);
    assert_int_equal(lm_ckpt_open(p, &f, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "\"" LM_CKPT_DIGEST_KEY "\" must be 32 hex digits"));

    /* a state file carries one too */
    char *sp = lm_path_join(dir, "state.safetensors");
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    assert_int_equal(lm_ckpt_add_model(w, a.m, a.params, a.buffers, a.counters, &e), 0);
    assert_int_equal(lm_ckpt_state_write(w, "{\"step\":1}", sp, &e), 0);
    lm_st_writer_free(w);
    const char *sj;
    assert_int_equal(lm_ckpt_state_open(sp, &f, &sj, &e), 0);
    assert_non_null(lm_st_meta_get(f, LM_CKPT_DIGEST_KEY));
    lm_st_close(f);
    char *st;
    size_t slen;
    assert_int_equal(lm_read_file(sp, &st, &slen, &e), 0);
    st[slen - 5] ^= 0x40;
    assert_int_equal(lm_write_file_atomic(sp, st, slen, &e), 0);
    free(st);
    lm_err_clear(&e);
    assert_int_equal(lm_ckpt_state_open(sp, &f, &sj, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, sp));
    assert_non_null(strstr(e.msg, "data section checksum mismatch: the file is damaged"));
    free(sp);
    free(data);
    net_free(&a);
    net_free(&b);
    free(p);
    rmdir_all(dir);
}

/* Files without the checksum (lumen checkpoints written before it, converted
 * torchvision weights) load as before, unverified. */
static void test_checkpoint_without_checksum_loads(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "old.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a, b;
    net_make(&a, &c, 1);
    net_make(&b, &c, 2);
    char *model = nn_resnet_cfg_to_json(&c);
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    assert_int_equal(lm_ckpt_add_model(w, a.m, a.params, a.buffers, a.counters, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "format", LM_CKPT_FORMAT, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "version", LM_CKPT_VERSION, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "model", model, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "thresholds", "[0.4,0.6]", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "epoch", "4", &e), 0);
    assert_int_equal(lm_st_writer_write(w, p, &e), 0);
    lm_st_writer_free(w);

    lm_st_file *f;
    int rc = lm_ckpt_open(p, &f, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_null(lm_st_meta_get(f, LM_CKPT_DIGEST_KEY));
    assert_int_equal(lm_ckpt_verify_data(f, &e), 0);
    lm_ckpt_load_opts strict = {.strict = 1};
    assert_int_equal(lm_ckpt_load(f, b.m, b.params, b.buffers, b.counters, &strict, NULL, &e), 0);
    assert_memory_equal(b.params, a.params, a.m->nparams * sizeof(float));
    lm_st_close(f);
    assert_int_equal(lm_ckpt_load_file(p, b.m, b.params, b.buffers, b.counters, &strict, NULL, &e),
                     0);
    /* ... and nothing notices a changed weight: that is what the checksum adds */
    char *data;
    size_t len;
    assert_int_equal(lm_read_file(p, &data, &len, &e), 0);
    data[len - 1] ^= 0x01;
    assert_int_equal(lm_write_file_atomic(p, data, len, &e), 0);
    free(data);
    assert_int_equal(lm_ckpt_open(p, &f, &e), 0);
    lm_st_close(f);
    free(model);
    net_free(&a);
    net_free(&b);
    free(p);
    rmdir_all(dir);
}

static void test_training_state_roundtrip(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "state.safetensors");
    nn_resnet_cfg c;
    cfg_small(&c, 1, 8, 2);
    net a, b;
    net_make(&a, &c, 1);
    net_make(&b, &c, 2);
    size_t np = a.m->nparams;
    float *m1 = malloc(np * sizeof(float)), *v1 = malloc(np * sizeof(float));
    float *m2 = calloc(np, sizeof(float)), *v2 = calloc(np, sizeof(float));
    for (size_t i = 0; i < np; i++) {
        m1[i] = 0.001f * (float)i - 0.5f;
        v1[i] = 1e-6f * (float)(i % 1000);
    }
    int64_t perm[10] = {3, 1, 4, 0, 9, 2, 6, 5, 8, 7}, perm2[10];
    uint64_t rng[4] = {0x9e3779b97f4a7c15ULL, 1, 2, UINT64_MAX};
    int64_t s10[] = {10}, s4[] = {4};

    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    assert_int_equal(lm_ckpt_add_model(w, a.m, a.params, a.buffers, a.counters, &e), 0);
    assert_int_equal(lm_ckpt_add_param_like(w, a.m, "optim.", ".exp_avg", m1, &e), 0);
    assert_int_equal(lm_ckpt_add_param_like(w, a.m, "optim.", ".exp_avg_sq", v1, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "data.permutation", LM_ST_I64, 1, s10, perm, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "rng.state", LM_ST_U64, 1, s4, rng, &e), 0);
    /* adding the model twice is refused (duplicate names) */
    assert_int_equal(lm_ckpt_add_model(w, a.m, a.params, a.buffers, a.counters, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "conv1.weight"));
    lm_err_clear(&e);
    assert_int_equal(lm_ckpt_state_write(w, "[1,2]", p, &e), LUMEN_EINVAL);
    assert_false(lm_exists(p));
    lm_err_clear(&e);
    const char *js = "{\"step\":1234,\"epoch\":7,\"scheduler\":{\"kind\":\"cosine\",\"last_lr\":0.0005}}";
    assert_int_equal(lm_ckpt_state_write(w, js, p, &e), 0);
    lm_st_writer_free(w);

    lm_st_file *f;
    const char *back;
    int rc = lm_ckpt_state_open(p, &f, &back, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(back, js);
    assert_int_equal(lm_ckpt_read_param_like(f, b.m, "optim.", ".exp_avg", m2, &e), 0);
    assert_int_equal(lm_ckpt_read_param_like(f, b.m, "optim.", ".exp_avg_sq", v2, &e), 0);
    assert_memory_equal(m1, m2, np * sizeof(float));
    assert_memory_equal(v1, v2, np * sizeof(float));
    assert_non_null(lm_st_find(f, "optim.layer2.0.downsample.0.weight.exp_avg"));
    assert_null(lm_st_find(f, "optim.bn1.running_mean.exp_avg")); /* params only */
    assert_int_equal(lm_st_read_i64(f, "data.permutation", perm2, 10, &e), 0);
    assert_memory_equal(perm, perm2, sizeof perm);
    const lm_st_tensor *t = lm_st_find(f, "rng.state");
    assert_int_equal(t->dtype, LM_ST_U64);
    assert_memory_equal(t->data, rng, sizeof rng);
    lm_ckpt_load_opts o = {0};
    lm_ckpt_report rep;
    assert_int_equal(lm_ckpt_load(f, b.m, b.params, b.buffers, b.counters, &o, &rep, &e), 0);
    assert_memory_equal(a.params, b.params, np * sizeof(float));
    assert_int_equal(rep.nmissing, 0);
    assert_int_equal(rep.nunexpected, lm_st_count(f) - (size_t)a.m->ntensors);
    lm_ckpt_report_free(&rep);

    /* missing moments name the file and the tensor */
    assert_int_equal(lm_ckpt_read_param_like(f, b.m, "optim.", ".momentum_buffer", m2, &e),
                     LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, p));
    assert_non_null(strstr(e.msg, "'optim.conv1.weight.momentum_buffer'"));
    lm_st_close(f);

    /* a state file is not a checkpoint and vice versa */
    lm_err_clear(&e);
    assert_int_equal(lm_ckpt_open(p, &f, &e), LUMEN_EABI);
    assert_non_null(strstr(e.msg, "lumen-state"));
    char *ck = lm_path_join(dir, "last.safetensors");
    lm_err_clear(&e);
    assert_int_equal(save_net(ck, &a, 7, &e), 0);
    const char *sj;
    assert_int_equal(lm_ckpt_state_open(ck, &f, &sj, &e), LUMEN_EABI);
    assert_non_null(strstr(e.msg, ck));
    assert_non_null(strstr(e.msg, "not a lumen training state"));
    free(ck);
    free(m1);
    free(m2);
    free(v1);
    free(v2);
    net_free(&a);
    net_free(&b);
    free(p);
    rmdir_all(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_roundtrip_bitwise),
        cmocka_unit_test(test_loads_torch_twin_state_dict),
        cmocka_unit_test(test_rgb_f16_into_gray_model),
        cmocka_unit_test(test_missing_and_unexpected),
        cmocka_unit_test(test_shape_mismatch_names_both_shapes),
        cmocka_unit_test(test_reset_head),
        cmocka_unit_test(test_corrupted_checkpoint_refused),
        cmocka_unit_test(test_damaged_metadata_refused),
        cmocka_unit_test(test_data_checksum),
        cmocka_unit_test(test_checkpoint_without_checksum_loads),
        cmocka_unit_test(test_failed_save_keeps_previous),
        cmocka_unit_test(test_metadata_validation),
        cmocka_unit_test(test_training_state_roundtrip),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, NULL, NULL);
}
