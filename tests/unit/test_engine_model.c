/* Unit tests for kernels/nn_model.c: config validation and JSON, tensor table
 * (torchvision names, shapes, flat offsets), init statistics, graph shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_model.h"

static nn_model *make(const nn_resnet_cfg *c) {
    nn_model *m = NULL;
    lm_err e = {0};
    assert_int_equal(nn_model_create(c, &m, &e), 0);
    return m;
}

static const nn_tensor *tensor(const nn_model *m, const char *name) {
    int i = nn_model_find(m, name);
    if (i < 0) fail_msg("tensor %s missing", name);
    return &m->tensors[i];
}

static void test_default_table_matches_torchvision_names(void **state) {
    (void)state;
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    nn_model *m = make(&c);
    assert_string_equal(m->tensors[0].name, "conv1.weight");
    const nn_tensor *t = tensor(m, "conv1.weight");
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->dims[0], 64);
    assert_int_equal(t->dims[1], 1);
    assert_int_equal(t->dims[2], 7);
    t = tensor(m, "layer2.0.downsample.0.weight");
    assert_int_equal(t->dims[0], 128);
    assert_int_equal(t->dims[1], 64);
    assert_int_equal(t->dims[2], 1);
    assert_int_equal(tensor(m, "layer3.0.bn2.num_batches_tracked")->kind, NN_T_COUNTER);
    assert_int_equal(tensor(m, "layer3.0.bn2.running_var")->kind, NN_T_BUFFER);
    assert_int_equal(tensor(m, "fc.weight")->dims[0], 2);
    assert_int_equal(tensor(m, "fc.weight")->dims[1], 512);
    assert_string_equal(m->tensors[m->ntensors - 1].name, "fc.bias");
    /* layer1 keeps 64 channels at stride 1: no downsample */
    assert_int_equal(nn_model_find(m, "layer1.0.downsample.0.weight"), -1);
    /* offsets tile each flat array exactly, in table order */
    size_t next[3] = {0, 0, 0};
    for (int i = 0; i < m->ntensors; i++) {
        const nn_tensor *x = &m->tensors[i];
        assert_int_equal(x->offset, next[x->kind]);
        next[x->kind] += x->numel;
    }
    assert_int_equal(next[NN_T_PARAM], m->nparams);
    assert_int_equal(next[NN_T_BUFFER], m->nbuffers);
    assert_int_equal(next[NN_T_COUNTER], m->ncounters);
    /* parameter count from the architecture's formula */
    size_t want = 64 * 49 + 2 * 64, in = 64;
    for (int s = 0; s < 4; s++) {
        size_t w = (size_t)c.widths[s];
        want += w * in * 9 + w * w * 9 + 4 * w;
        if (s > 0) want += w * in + 2 * w;
        in = w;
    }
    want += 2 * 512 + 2;
    assert_int_equal(m->nparams, want);
    nn_model_free(m);
}

static void test_validation_names_key(void **state) {
    (void)state;
    nn_resnet_cfg c;
    lm_err e = {0};
    nn_resnet_cfg_default(&c);
    assert_int_equal(nn_resnet_cfg_set(&c, "model.widths", "{8,16,32}", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "model.widths: needs as many entries as model.blocks"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_set(&c, "model.blok", "{1}", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "model.blok"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_set(&c, "stem", "5x5", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "model.stem"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_set(&c, "pool", "mean", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "model.pool"));
    assert_non_null(strstr(e.msg, "'mean'"));
    lm_err_clear(&e);
    c.blocks[2] = 0;
    nn_model *m = NULL;
    assert_int_equal(nn_model_create(&c, &m, &e), LUMEN_EINVAL);
    assert_null(m);
    assert_non_null(strstr(e.msg, "model.blocks"));
    lm_err_clear(&e);
    nn_resnet_cfg_default(&c);
    c.dropout = 1.0f;
    assert_int_equal(nn_resnet_cfg_validate(&c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "model.dropout"));
}

static void test_set_and_json_round_trip(void **state) {
    (void)state;
    nn_resnet_cfg c, back;
    lm_err e = {0};
    nn_resnet_cfg_default(&c);
    assert_int_equal(nn_resnet_cfg_set(&c, "model.blocks", "{3,4,6,3,2}", &e), 0);
    assert_int_equal(nn_resnet_cfg_set(&c, "widths", "[8, 16, 32, 64, 96]", &e), 0);
    assert_int_equal(nn_resnet_cfg_set(&c, "stem", "3x3", &e), 0);
    assert_int_equal(nn_resnet_cfg_set(&c, "in_channels", "3", &e), 0);
    assert_int_equal(nn_resnet_cfg_set(&c, "dropout", "0.25", &e), 0);
    assert_int_equal(nn_resnet_cfg_set(&c, "num_classes", "5", &e), 0);
    char *j = nn_resnet_cfg_to_json(&c);
    assert_non_null(j);
    assert_int_equal(nn_resnet_cfg_from_json(j, &back, &e), 0);
    assert_int_equal(back.nstages, 5);
    assert_memory_equal(back.blocks, c.blocks, sizeof(int) * 5);
    assert_memory_equal(back.widths, c.widths, sizeof(int) * 5);
    assert_int_equal(back.stem, NN_STEM_3X3);
    assert_int_equal(back.in_channels, 3);
    assert_int_equal(back.num_classes, 5);
    assert_true(back.dropout == c.dropout);
    assert_int_equal(back.pool, NN_POOL_AVG);
    /* the default pool is not written, so configs from before the key read
     * the same; another pool is */
    assert_null(strstr(j, "pool"));
    free(j);
    assert_int_equal(nn_resnet_cfg_set(&c, "model.pool", "avgmax", &e), 0);
    j = nn_resnet_cfg_to_json(&c);
    assert_non_null(strstr(j, "\"pool\":\"avgmax\""));
    assert_int_equal(nn_resnet_cfg_from_json(j, &back, &e), 0);
    assert_int_equal(back.pool, NN_POOL_AVGMAX);
    free(j);
    assert_int_equal(nn_resnet_cfg_from_json("{\"pool\":\"max\"}", &back, &e), 0);
    assert_int_equal(back.pool, NN_POOL_MAX);
    assert_int_equal(nn_resnet_cfg_from_json("{\"pool\":1}", &back, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "model.pool"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_from_json("{\"pool\":\"sum\"}", &back, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "model.pool"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_from_json("{\"blocks\":[1,1],\"widths\":[4]}", &back, &e),
                     LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "model.widths"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_from_json("{\"depth\":18}", &back, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "model.depth"));
    lm_err_clear(&e);
    assert_int_equal(nn_resnet_cfg_from_json("{\"in_channels\":\"one\"}", &back, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "model.in_channels"));
}

static void test_init_statistics_and_determinism(void **state) {
    (void)state;
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    nn_model *m = make(&c);
    float *p = malloc(sizeof(float) * m->nparams), *q = malloc(sizeof(float) * m->nparams);
    float *b = malloc(sizeof(float) * m->nbuffers);
    int64_t *cnt = malloc(sizeof(int64_t) * m->ncounters);
    nn_model_init(m, 7, p, b, cnt);
    nn_model_init(m, 7, q, NULL, NULL);
    assert_memory_equal(p, q, sizeof(float) * m->nparams);
    nn_model_init(m, 8, q, NULL, NULL);
    assert_true(memcmp(p, q, sizeof(float) * m->nparams) != 0);
    const nn_tensor *t = tensor(m, "layer4.0.conv2.weight");
    double s = 0, s2 = 0;
    for (size_t i = 0; i < t->numel; i++) {
        s += p[t->offset + i];
        s2 += (double)p[t->offset + i] * p[t->offset + i];
    }
    double mean = s / t->numel, sd = sqrt(s2 / t->numel - mean * mean);
    double want = sqrt(2.0 / (512 * 9));
    assert_true(fabs(mean) < 0.01 * want);
    assert_true(fabs(sd / want - 1) < 0.01);
    t = tensor(m, "fc.weight");
    double bound = 1 / sqrt(512.0), mx = 0;
    for (size_t i = 0; i < t->numel; i++) mx = fmax(mx, fabs(p[t->offset + i]));
    assert_true(mx <= bound && mx > 0.9 * bound);
    assert_true(p[tensor(m, "bn1.weight")->offset + 5] == 1.0f);
    assert_true(p[tensor(m, "bn1.bias")->offset + 5] == 0.0f);
    assert_true(b[tensor(m, "layer2.0.bn1.running_var")->offset + 3] == 1.0f);
    assert_true(b[tensor(m, "layer2.0.bn1.running_mean")->offset + 3] == 0.0f);
    assert_int_equal(cnt[tensor(m, "bn1.num_batches_tracked")->offset], 0);
    free(p);
    free(q);
    free(b);
    free(cnt);
    nn_model_free(m);
}

static void test_graph_shapes(void **state) {
    (void)state;
    nn_resnet_cfg c;
    nn_resnet_cfg_default(&c);
    nn_model *m = make(&c);
    nn_graph g;
    lm_err e = {0};
    assert_int_equal(nn_model_graph(m, 300, 300, &g, &e), 0);
    assert_int_equal(g.nodes[0].h, 150);
    assert_int_equal(g.nodes[2].op, NN_OP_MAXPOOL);
    assert_int_equal(g.nodes[2].h, 75);
    const nn_node *gap = &g.nodes[g.n - 2];
    assert_int_equal(gap->op, NN_OP_GAP);
    assert_int_equal(gap->ih, 10);
    assert_int_equal(gap->ic, 512);
    assert_int_equal(g.nodes[g.n - 1].op, NN_OP_FC);
    /* conv FLOPs from the shapes */
    double conv = 0;
    for (int i = 0; i < g.n; i++) {
        const nn_node *n = &g.nodes[i];
        if (n->op == NN_OP_CONV) conv += 2.0 * n->c * n->h * n->w * n->ic * n->k * n->k;
        if (n->op == NN_OP_ADD) {
            assert_int_equal(n->relu, 1);
            assert_int_equal(g.nodes[n->in[0]].c, g.nodes[n->in[1]].c);
            assert_int_equal(g.nodes[n->in[0]].h, g.nodes[n->in[1]].h);
        }
    }
    assert_true(nn_graph_flops(&g) > conv && nn_graph_flops(&g) < 1.01 * conv);
    nn_graph_free(&g);
    nn_model_free(m);

    /* 3x3 stem: no max pool; widths {8,...}: layer1 needs a downsample (64 -> 8) */
    assert_int_equal(nn_resnet_cfg_set(&c, "stem", "3x3", &e), 0);
    assert_int_equal(nn_resnet_cfg_set(&c, "widths", "{8,16,32,64}", &e), 0);
    c.dropout = 0.5f;
    m = make(&c);
    assert_true(nn_model_find(m, "layer1.0.downsample.0.weight") >= 0);
    assert_int_equal(nn_model_graph(m, 32, 32, &g, &e), 0);
    for (int i = 0; i < g.n; i++) assert_int_not_equal(g.nodes[i].op, NN_OP_MAXPOOL);
    assert_int_equal(g.nodes[g.n - 2].op, NN_OP_DROPOUT);
    assert_int_equal(g.nodes[g.n - 3].ih, 4);
    nn_graph_free(&g);
    nn_model_free(m);

    /* 7x7-nopool: the 7x7/2 conv (same weights' shape as "7x7") and no
     * pool, so every stage sees twice the side: 300 -> 150 into layer1 */
    nn_resnet_cfg_default(&c);
    assert_int_equal(nn_resnet_cfg_set(&c, "stem", "7x7-nopool", &e), 0);
    m = make(&c);
    const nn_tensor *w1 = tensor(m, "conv1.weight");
    assert_int_equal(w1->dims[2], 7);
    assert_int_equal(w1->dims[3], 7);
    assert_int_equal(nn_model_graph(m, 300, 300, &g, &e), 0);
    assert_int_equal(g.nodes[0].h, 150);
    for (int i = 0; i < g.n; i++) assert_int_not_equal(g.nodes[i].op, NN_OP_MAXPOOL);
    assert_int_equal(g.nodes[2].ih, 150); /* layer1.0.conv1 reads bn1's 150x150 */
    assert_int_equal(g.nodes[g.n - 2].ih, 19); /* 150 -> 75 -> 38 -> 19 */
    nn_graph_free(&g);
    char *j = nn_resnet_cfg_to_json(&c);
    assert_non_null(strstr(j, "\"stem\":\"7x7-nopool\""));
    nn_resnet_cfg back;
    assert_int_equal(nn_resnet_cfg_from_json(j, &back, &e), 0);
    assert_int_equal(back.stem, NN_STEM_7X7_NOPOOL);
    free(j);
    nn_model_free(m);
    assert_int_equal(nn_resnet_cfg_set(&c, "stem", "5x5", &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "7x7-nopool"));
    lm_err_clear(&e);

    /* a non-positive size is refused, naming it */
    nn_resnet_cfg_default(&c);
    m = make(&c);
    assert_int_equal(nn_model_graph(m, 0, 16, &g, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "input size"));
    nn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_table_matches_torchvision_names),
        cmocka_unit_test(test_validation_names_key),
        cmocka_unit_test(test_set_and_json_round_trip),
        cmocka_unit_test(test_init_statistics_and_determinism),
        cmocka_unit_test(test_graph_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
