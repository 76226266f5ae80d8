/*
 * fuzz_checkpoint.c -- the safetensors reader (safetensors.h) and the
 * checkpoint checks on top of it (checkpoint.h), as `runner predict`,
 * validate and a train `init` read a checkpoint.
 *
 * Input: a safetensors file's bytes.  It is opened with lm_st_open_buffer
 * (the code lm_st_open runs on the mapping); every tensor is looked up by
 * name and converted (to float, double or int64 as its dtype allows), the
 * metadata is listed, and lm_ckpt_check (lm_ckpt_open's checks: format,
 * version, every metadata range, the data checksum) and lm_ckpt_read_meta
 * run.  A file that passes lm_ckpt_check has its model built from the
 * "model" entry and, when small (<= 1M parameters), loaded with
 * lm_ckpt_load as predict does.  Checked beyond the sanitizers: the
 * tensors tile the data section (the reader's promise), thresholds of an
 * accepted checkpoint lie in [0, 1].
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "nn_model.h"
#include "safetensors.h"
#include "fuzz_check.h"


static void read_tensors(const lm_st_file *f) {
    size_t n = lm_st_count(f), data_len = 0, at = 0;
    lm_st_data_section(f, &data_len);
    for (size_t i = 0; i < n; i++) {
        const lm_st_tensor *t = lm_st_at(f, i);
        CHECK(t && t->offset == at);
        at += t->nbytes;
        CHECK(lm_st_find(f, t->name) == t);
        lm_err e = {0};
        size_t k = (size_t)t->numel;
        if (lm_st_dtype_is_float(t->dtype)) {
            float *a = malloc(k ? k * sizeof *a : 1);
            double *b = malloc(k ? k * sizeof *b : 1);
            CHECK(a && b);
            CHECK(lm_st_to_f32(f, t, a, k, &e) == 0);
            CHECK(lm_st_to_f64(f, t, b, k, &e) == 0);
            CHECK(lm_st_to_i64(f, t, NULL, k, &e) != 0); /* floats refused */
            free(a);
            free(b);
        } else {
            int64_t *a = malloc(k ? k * sizeof *a : 1);
            CHECK(a);
            lm_st_to_i64(f, t, a, k, &e); /* U64 above INT64_MAX: an error */
            CHECK(lm_st_to_f32(f, t, NULL, k, &e) != 0);
            free(a);
        }
    }
    CHECK(at == data_len);
    for (size_t i = 0; i < lm_st_meta_count(f); i++) {
        const char *k = lm_st_meta_key(f, i), *v = lm_st_meta_value(f, i);
        CHECK(k && v && lm_st_meta_get(f, k) == v);
    }
}

static void load_model(const lm_st_file *f) {
    nn_resnet_cfg cfg;
    lm_err e = {0};
    CHECK(nn_resnet_cfg_from_json(lm_st_meta_get(f, "model"), &cfg, &e) == 0);
    const char *th = lm_st_meta_get(f, "thresholds");
    if (th) {
        cJSON *j = cJSON_Parse(th);
        CHECK(cJSON_IsArray(j));
        const cJSON *v;
        cJSON_ArrayForEach(v, j) CHECK(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1);
        cJSON_Delete(j);
    }
    nn_model *m = NULL;
    if (nn_model_create(&cfg, &m, &e)) return;
    if (m->nparams + m->nbuffers <= (1u << 20) && m->ncounters <= 4096) {
        float *p = calloc(m->nparams + 1, sizeof *p), *b = calloc(m->nbuffers + 1, sizeof *b);
        int64_t *c = calloc(m->ncounters + 1, sizeof *c);
        CHECK(p && b && c);
        lm_ckpt_report rep = {0};
        lm_ckpt_load_opts o = {.strict = 0};
        if (lm_ckpt_load(f, m, p, b, c, &o, &rep, &e) == 0) free(lm_ckpt_report_text(&rep));
        lm_ckpt_report_free(&rep);
        free(p);
        free(b);
        free(c);
    }
    nn_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy: the reader must not read past `size` */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    lm_st_file *f = NULL;
    lm_err e = {0};
    int rc = lm_st_open_buffer(buf, size, "fuzz.safetensors", &f, &e);
    if (rc) {
        CHECK(e.msg[0] != 0 && f == NULL);
        free(buf);
        return 0;
    }
    read_tensors(f);
    lm_ckpt_meta mt;
    lm_ckpt_read_meta(f, &mt, &e);
    lm_err ce = {0};
    if (lm_ckpt_check(f, &ce) == 0) load_model(f);
    else CHECK(ce.msg[0] != 0);
    lm_st_close(f);
    free(buf);
    return 0;
}
