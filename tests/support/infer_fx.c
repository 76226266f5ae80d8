/* infer_fx.c -- see infer_fx.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "cpu/cpu_augment.h"
#include "infer_fx.h"
#include "ingest_fx.h"
#include "metrics.h"
#include "nn_engine.h"
#include "rng.h"

static char *json_list(const char *const *s, const float *f, int k) {
    cJSON *a = cJSON_CreateArray();
    for (int j = 0; j < k; j++)
        cJSON_AddItemToArray(a, s ? cJSON_CreateString(s[j]) : cJSON_CreateNumber(f[j]));
    char *t = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    assert_non_null(t);
    return t;
}

static void tiny_cfg(nn_resnet_cfg *cfg, int c, int k) {
    nn_resnet_cfg_default(cfg);
    cfg->nstages = 2;
    cfg->blocks[0] = cfg->blocks[1] = 1;
    cfg->widths[0] = 4;
    cfg->widths[1] = 8;
    cfg->stem_width = 4;
    cfg->stem = NN_STEM_3X3;
    cfg->in_channels = c;
    cfg->num_classes = k;
}

void ifx_tiny_checkpoint(const char *path, int c, int h, int w, int k,
                         const char *const *labels, float mean, float std,
                         const float *thresholds, uint64_t seed) {
    ifx_tiny_checkpoint_filtered(path, c, h, w, k, labels, mean, std, thresholds, seed, NULL);
}

void ifx_tiny_checkpoint_filtered(const char *path, int c, int h, int w, int k,
                                  const char *const *labels, float mean, float std,
                                  const float *thresholds, uint64_t seed, const char *filter) {
    nn_resnet_cfg cfg;
    tiny_cfg(&cfg, c, k);
    nn_model *m;
    lm_err e = {0};
    if (nn_model_create(&cfg, &m, &e)) fail_msg("%s", e.msg);
    float *params = calloc(m->nparams, sizeof *params);
    float *buffers = calloc(m->nbuffers, sizeof *buffers);
    int64_t *counters = calloc(m->ncounters + 1, sizeof *counters);
    assert_true(params && buffers && counters);
    nn_model_init(m, seed, params, buffers, counters);
    /* BN running stats away from (0, 1) and a non-zero head bias, so eval
     * mode and BN folding are exercised and probabilities spread */
    lm_rng r;
    lm_rng_init(&r, seed, 99, 0, 0);
    for (int t = 0; t < m->ntensors; t++) {
        const nn_tensor *x = &m->tensors[t];
        float *base = x->kind == NN_T_BUFFER ? buffers : x->kind == NN_T_PARAM ? params : NULL;
        if (!base) continue;
        int is_var = strstr(x->name, "running_var") != NULL;
        int is_mean = strstr(x->name, "running_mean") != NULL;
        int is_bn = strstr(x->name, "bn") || strstr(x->name, "downsample.1");
        for (size_t i = 0; i < x->numel; i++) {
            float *v = base + x->offset + i;
            if (is_var) *v = (float)lm_rng_range(&r, 0.5, 2.0);
            else if (is_mean) *v = (float)lm_rng_range(&r, -0.3, 0.3);
            else if (is_bn && x->ndim == 1) *v += (float)lm_rng_range(&r, -0.2, 0.2);
            else if (!strcmp(x->name, "fc.bias")) *v = (float)lm_rng_range(&r, -0.5, 0.5);
        }
    }
    char *model = nn_resnet_cfg_to_json(&cfg);
    char *lab = json_list(labels, NULL, k);
    char *thr = thresholds ? json_list(NULL, thresholds, k) : NULL;
    cJSON *st = cJSON_CreateObject(), *mn = cJSON_CreateArray(), *sd = cJSON_CreateArray();
    cJSON_AddNumberToObject(st, "channels", c);
    for (int i = 0; i < c; i++) {
        cJSON_AddItemToArray(mn, cJSON_CreateNumber(mean));
        cJSON_AddItemToArray(sd, cJSON_CreateNumber(std));
    }
    cJSON_AddItemToObject(st, "mean", mn);
    cJSON_AddItemToObject(st, "std", sd);
    char *stats = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    char *input = filter ? lm_sprintf("{\"height\":%d,\"width\":%d,\"channels\":%d,\"filter\":%s}", h, w,
                                      c, filter)
                         : lm_sprintf("{\"height\":%d,\"width\":%d,\"channels\":%d}", h, w, c);
    const char *extra[] = {"run", "fixture", NULL};
    lm_ckpt_meta meta = {.model = model, .labels = lab, .stats = stats, .thresholds = thr,
                         .metrics = "{\"val/f1_mean\":0.5}", .input = input, .epoch = 3,
                         .extra = extra};
    if (lm_ckpt_save(path, m, params, buffers, counters, &meta, &e)) fail_msg("%s", e.msg);
    free(model);
    free(lab);
    free(thr);
    free(stats);
    free(input);
    free(params);
    free(buffers);
    free(counters);
    nn_model_free(m);
}

void ifx_png(const char *path, int channels, uint32_t w, uint32_t h, uint64_t seed) {
    uint8_t *px = malloc((size_t)w * h * (size_t)channels);
    assert_non_null(px);
    lm_rng r;
    lm_rng_init(&r, seed, 77, 0, 0);
    uint32_t stripe = (uint32_t)lm_rng_below(&r, h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (int c = 0; c < channels; c++) {
                double v = 40 + 120.0 * x / w + 60.0 * y / h * (c + 1) / channels +
                           lm_rng_range(&r, -25, 25) + (y == stripe ? 60 : 0);
                px[((size_t)y * w + x) * (size_t)channels + (size_t)c] =
                    (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    fx_write_png(path, w, h, channels == 1 ? 0 : 2, 8, px, NULL, 0);
    free(px);
}

void ifx_reference_probs(const char *path, const uint8_t *pixels, int n, int view,
                         float *probs) {
    lm_err e = {0};
    lm_st_file *f;
    if (lm_ckpt_open(path, &f, &e)) fail_msg("%s", e.msg);
    nn_resnet_cfg cfg;
    if (nn_resnet_cfg_from_json(lm_st_meta_get(f, "model"), &cfg, &e)) fail_msg("%s", e.msg);
    nn_model *m;
    if (nn_model_create(&cfg, &m, &e)) fail_msg("%s", e.msg);
    float *params = calloc(m->nparams, sizeof *params);
    float *buffers = calloc(m->nbuffers, sizeof *buffers);
    int64_t *counters = calloc(m->ncounters + 1, sizeof *counters);
    if (lm_ckpt_load(f, m, params, buffers, counters, NULL, NULL, &e)) fail_msg("%s", e.msg);
    cJSON *in = cJSON_Parse(lm_st_meta_get(f, "input")), *st = cJSON_Parse(lm_st_meta_get(f, "stats"));
    int h = cJSON_GetObjectItem(in, "height")->valueint, w = cJSON_GetObjectItem(in, "width")->valueint;
    int c = cfg.in_channels, k = cfg.num_classes;
    float mean[16], sd[16];
    for (int i = 0; i < c; i++) {
        mean[i] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(st, "mean"), i)->valuedouble;
        sd[i] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(st, "std"), i)->valuedouble;
    }
    cJSON_Delete(in);
    cJSON_Delete(st);
    nn_engine_opts o = {.batch = n, .channels = c, .height = h, .width = w, .threads = 1};
    nn_engine *en;
    if (nn_engine_create("cpu", m, &o, &en, &e)) fail_msg("%s", e.msg);
    if (nn_engine_set_state(en, params, buffers, counters, &e)) fail_msg("%s", e.msg);
    size_t chw = (size_t)c * h * w;
    float *x = malloc(chw * (size_t)n * sizeof *x), *plain = malloc(chw * sizeof *plain);
    assert_true(x && plain);
    for (int i = 0; i < n; i++) {
        /* normalize by hand, then the view as an exact gather */
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < (size_t)h * w; p++)
                plain[(size_t)ch * h * w + p] =
                    ((float)pixels[i * chw + (size_t)ch * h * w + p] / 255.0f - mean[ch]) / sd[ch];
        if (view) assert_int_equal(nn_aug_dihedral_f32(plain, c, h, w, view, x + i * chw), 0);
        else memcpy(x + i * chw, plain, chw * sizeof *x);
    }
    float *logits = malloc((size_t)n * k * sizeof *logits);
    if (nn_engine_forward_eval(en, x, n, logits, &e)) fail_msg("%s", e.msg);
    lm_sigmoid(logits, probs, (int64_t)n * k);
    free(logits);
    free(x);
    free(plain);
    nn_engine_free(en);
    free(params);
    free(buffers);
    free(counters);
    nn_model_free(m);
    lm_st_close(f);
}
