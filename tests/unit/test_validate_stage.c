/*
 * test_validate_stage.c -- the validate stage (stages/validate) on a hand-made
 * dataset and tiny random checkpoints: report.json / report.txt, the metrics
 * it emits, the calibrated checkpoint in its own "model" output (thresholds
 * = the reported ones, "validated" record, same tensors, other files
 * carried over), the csv source, the per-group breakdown, and the errors
 * that name their cause; also through the plugin wrapper with the fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "dataset.h"
#include "fakehost.h"
#include "infer.h"
#include "infer_fx.h"
#include "metrics.h"
#include "pixfilter.h"
#include "predictions.h"
#include "ensemble.h"
#include "ingest_fx.h"
#include "rng.h"
#include "validate/validate.h"

#define S 32
#define NREC 48
static const char *const LABELS[] = {"crack", "inactive"};
static const float STORED[] = {0.4f, 0.6f};

typedef struct fixture {
    char *dir, *dataset, *model_in, *model_out, *report;
} fixture;

/* NREC records of S x S gray; every third is training, the rest val. */
static void make_dataset_x(const char *dir, const char *const *labels, const char *extra) {
    lm_dataset_spec spec = {.height = S, .width = S, .channels = 1, .nlabels = 2, .labels = labels};
    lm_dataset_writer *w;
    lm_err e = {0};
    if (lm_dataset_create(dir, &spec, &w, &e)) fail_msg("%s", e.msg);
    lm_rng r;
    lm_rng_init(&r, 5, 55, 0, 0);
    uint8_t px[S * S];
    for (int i = 0; i < NREC; i++) {
        float y[2] = {(float)(lm_rng_uniform(&r) < 0.4), (float)(lm_rng_uniform(&r) < 0.4)};
        for (int p = 0; p < S * S; p++)
            px[p] = (uint8_t)(60 + 80 * y[0] * (p % S == i % S) + lm_rng_below(&r, 120));
        char name[32];
        snprintf(name, sizeof name, "img%02d.png", i);
        lm_record rec = {.h = S, .w = S, .c = 1, .split = i % 3 ? LM_SPLIT_VAL : LM_SPLIT_TRAIN,
                         .nlabels = 2, .labels = y, .name = name, .pixels = px};
        if (lm_dataset_put(w, &rec, &e)) fail_msg("%s", e.msg);
    }
    cJSON *x = extra ? cJSON_Parse(extra) : NULL;
    if (lm_dataset_finish(w, x, &e)) fail_msg("%s", e.msg);
    cJSON_Delete(x);
}

static void make_dataset(const char *dir, const char *const *labels) { make_dataset_x(dir, labels, NULL); }

/* The dataset of make_dataset as ingest stores it with high-pass filter
 * hp: the same records, each with its filtered plane appended. */
static void make_dataset_filtered(const char *src, const char *dir, const lm_pixfilter *hp) {
    lm_dataset *in;
    lm_err e = {0};
    if (lm_dataset_open(src, &in, &e)) fail_msg("%s", e.msg);
    lm_dataset_spec spec = {.height = S, .width = S, .channels = 2, .nlabels = 2, .labels = LABELS};
    lm_dataset_writer *w;
    if (lm_dataset_create(dir, &spec, &w, &e)) fail_msg("%s", e.msg);
    uint8_t px[2 * S * S];
    for (size_t i = 0; i < lm_dataset_count(in); i++) {
        lm_record r;
        assert_int_equal(lm_dataset_get(in, i, &r), 0);
        assert_int_equal(lm_pixfilter_refilter(hp, r.pixels, 1, S, S, px, &e), 0);
        r.c = 2;
        r.pixels = px;
        if (lm_dataset_put(w, &r, &e)) fail_msg("%s", e.msg);
    }
    cJSON *x = cJSON_CreateObject();
    cJSON_AddItemToObject(x, "filter", lm_pixfilter_to_json(hp));
    if (lm_dataset_finish(w, x, &e)) fail_msg("%s", e.msg);
    cJSON_Delete(x);
    lm_dataset_close(in);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->dir = fx_tmpdir("validate");
    f->dataset = lm_path_join(f->dir, "dataset");
    f->model_in = lm_path_join(f->dir, "model_in");
    f->model_out = lm_path_join(f->dir, "model_out");
    f->report = lm_path_join(f->dir, "report");
    lm_err e = {0};
    assert_int_equal(lm_mkdirs(f->model_in, &e) | lm_mkdirs(f->model_out, &e) | lm_mkdirs(f->report, &e), 0);
    make_dataset(f->dataset, LABELS);
    char *best = lm_path_join(f->model_in, "best.safetensors");
    char *last = lm_path_join(f->model_in, "last.safetensors");
    ifx_tiny_checkpoint(best, 1, S, S, 2, LABELS, 0.5f, 0.25f, STORED, 21);
    ifx_tiny_checkpoint(last, 1, S, S, 2, LABELS, 0.5f, 0.25f, NULL, 22);
    free(fx_write_text(f->model_in, "notes/state.json", "{\"epoch\":3}\n"));
    free(best);
    free(last);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    free(f->dataset);
    free(f->model_in);
    free(f->model_out);
    free(f->report);
    fx_rmtree(f->dir);
    free(f);
    return 0;
}

typedef struct seen {
    int n, nmain;
    char key[512][96];
    double v[512];
    int64_t step[512];
} seen;

static void on_metric(void *user, const char *key, double value, int64_t step, int main) {
    seen *s = user;
    assert_true(s->n < 512);
    snprintf(s->key[s->n], sizeof s->key[0], "%s", key);
    s->v[s->n] = value;
    s->step[s->n++] = step;
    s->nmain += main;
}

static double seen_val(const seen *s, const char *key, int64_t *step) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->key[i], key)) {
            if (step) *step = s->step[i];
            return s->v[i];
        }
    fail_msg("metric %s not emitted", key);
    return NAN;
}

static cJSON *read_json(const char *dir, const char *name) {
    char *p = lm_path_join(dir, name), *text;
    size_t len;
    lm_err e = {0};
    if (lm_read_file(p, &text, &len, &e)) fail_msg("%s", e.msg);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    free(text);
    free(p);
    return j;
}

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x) fail_msg("JSON has no '%s'", k);
    return x;
}

static void opts_for(const fixture *f, validate_opts *o) {
    validate_opts_default(o);
    o->dataset = f->dataset;
    o->model_in = f->model_in;
    o->model_out = f->model_out;
    o->report_out = f->report;
    o->threads = 2;
    o->seed = 9;
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t lx, ly;
    lm_err e = {0};
    if (lm_read_file(a, &x, &lx, &e) || lm_read_file(b, &y, &ly, &e)) fail_msg("%s", e.msg);
    int same = lx == ly && !memcmp(x, y, lx);
    free(x);
    free(y);
    return same;
}

static void test_tune_on_val_split(void **state) {
    fixture *f = *state;
    validate_opts o;
    opts_for(f, &o);
    seen *s = calloc(1, sizeof *s);
    o.metric = on_metric;
    o.user = s;
    validate_result res;
    lm_err e = {0};
    if (validate_run(&o, &res, &e)) fail_msg("%s", e.msg);
    assert_int_equal(res.report.n, NREC - NREC / 3); /* the val split */
    assert_int_equal(res.views, 1);

    /* report.json: the report, and the thresholds chosen */
    cJSON *doc = read_json(f->report, "report.json");
    assert_true(get(doc, "n")->valuedouble == NREC - NREC / 3);
    assert_string_equal(get(get(doc, "thresholds"), "mode")->valuestring, "tune");
    assert_string_equal(get(get(doc, "source"), "split")->valuestring, "val");
    assert_string_equal(get(get(doc, "checkpoint"), "name")->valuestring, "best");
    assert_true(get(get(doc, "checkpoint"), "epoch")->valuedouble == 3);
    const cJSON *vals = get(get(doc, "thresholds"), "values");

    /* the calibrated checkpoint stores exactly the reported thresholds */
    char *out = lm_path_join(f->model_out, "best.safetensors");
    lm_infer_model m;
    if (lm_infer_model_load(out, &m, &e)) fail_msg("%s", e.msg);
    assert_true(m.has_thresholds);
    for (int j = 0; j < 2; j++) {
        assert_true((float)cJSON_GetArrayItem(vals, j)->valuedouble == m.thresholds[j]);
        assert_true(m.thresholds[j] == res.report.thresholds[j]);
        assert_true(m.thresholds[j] == res.report.tuned_thr[j]);
    }
    cJSON *v = cJSON_Parse(lm_st_meta_get(m.file, "validated"));
    assert_non_null(v);
    assert_string_equal(get(v, "split")->valuestring, "val");
    assert_string_equal(get(v, "thresholds")->valuestring, "tune");
    assert_true(cJSON_IsFalse(get(v, "tta")));
    assert_float_equal(get(get(v, "metrics"), "val/f1_mean_tuned_cv")->valuedouble,
                       res.report.cv.pooled.f1_mean, 1e-12);
    cJSON_Delete(v);
    assert_string_equal(lm_st_meta_get(m.file, "run"), "fixture"); /* other metadata kept */
    /* same tensors as the input checkpoint */
    char *in = lm_path_join(f->model_in, "best.safetensors");
    lm_infer_model mi;
    if (lm_infer_model_load(in, &mi, &e)) fail_msg("%s", e.msg);
    assert_memory_equal(m.params, mi.params, m.model->nparams * sizeof(float));
    assert_memory_equal(m.buffers, mi.buffers, m.model->nbuffers * sizeof(float));
    assert_true(mi.thresholds[0] == STORED[0]); /* the input is untouched */
    lm_infer_model_free(&mi);
    lm_infer_model_free(&m);
    /* the rest of the model folder is carried over unchanged */
    char *l_in = lm_path_join(f->model_in, "last.safetensors");
    char *l_out = lm_path_join(f->model_out, "last.safetensors");
    char *n_out = lm_path_join(f->model_out, "notes/state.json");
    assert_true(same_file(l_in, l_out));
    assert_true(lm_exists(n_out));

    /* metrics: the same numbers, step = the checkpoint's epoch */
    int64_t step;
    assert_float_equal(seen_val(s, "val/f1_mean", &step), res.report.at_default.f1_mean, 1e-12);
    assert_int_equal(step, 3);
    assert_float_equal(seen_val(s, "val/f1_mean_tuned", NULL), res.report.tuned.f1_mean, 1e-12);
    assert_float_equal(seen_val(s, "val/f1_mean_tuned_cv", NULL), res.report.cv.pooled.f1_mean, 1e-12);
    assert_float_equal(seen_val(s, "val/threshold_crack", NULL), res.report.thresholds[0], 1e-7);
    assert_true(seen_val(s, "val/loss_unweighted", NULL) > 0);
    assert_true(seen_val(s, "val/tp_crack", NULL) + seen_val(s, "val/fp_crack", NULL) +
                    seen_val(s, "val/fn_crack", NULL) + seen_val(s, "val/tn_crack", NULL) ==
                NREC - NREC / 3);
    assert_true(s->nmain >= 6);

    /* the counts at 0.5 from an independent forward of the val pixels */
    lm_dataset *ds;
    assert_int_equal(lm_dataset_open(f->dataset, &ds, &e), 0);
    size_t nv;
    const uint32_t *vi = lm_dataset_split(ds, LM_SPLIT_VAL, &nv);
    uint8_t *px = malloc(nv * S * S);
    float *y = malloc(nv * 2 * sizeof *y), *p = malloc(nv * 2 * sizeof *p);
    for (size_t i = 0; i < nv; i++) {
        lm_record rec;
        assert_int_equal(lm_dataset_get(ds, vi[i], &rec), 0);
        memcpy(px + i * S * S, rec.pixels, S * S);
        y[2 * i] = rec.labels[0], y[2 * i + 1] = rec.labels[1];
    }
    lm_dataset_close(ds);
    char *bin = lm_path_join(f->model_in, "best.safetensors");
    ifx_reference_probs(bin, px, (int)nv, 0, p);
    free(bin);
    int compared = 0;
    for (int j = 0; j < 2; j++) {
        /* at the tuned thresholds, which cut between distinct scores */
        float t = res.report.thresholds[j];
        int64_t tp = 0, fp = 0, near = 0;
        for (size_t i = 0; i < nv; i++) {
            near |= fabsf(p[2 * i + j] - t) < 1e-5f;
            tp += p[2 * i + j] >= t && y[2 * i + j] >= 0.5f;
            fp += p[2 * i + j] >= t && y[2 * i + j] < 0.5f;
        }
        if (near) continue; /* a float-noise tie: not comparable */
        assert_int_equal(res.report.at_chosen.cls[j].tp, tp);
        assert_int_equal(res.report.at_chosen.cls[j].fp, fp);
        compared += tp + fp > 0 && tp + fp < (int64_t)nv;
    }
    assert_true(compared > 0);
    free(px);
    free(y);
    free(p);

    char *txt = lm_path_join(f->report, "report.txt"), *text;
    size_t len;
    assert_int_equal(lm_read_file(txt, &text, &len, &e), 0);
    assert_non_null(strstr(text, "validation of checkpoint best (epoch 3)"));
    assert_non_null(strstr(text, "inactive"));
    assert_non_null(strstr(text, "cross-fitted"));
    free(text);
    free(txt);
    free(n_out);
    free(l_in);
    free(l_out);
    free(in);
    free(out);
    cJSON_Delete(doc);
    free(s);
}

static void test_tta_and_stored_thresholds(void **state) {
    fixture *f = *state;
    validate_opts o;
    opts_for(f, &o);
    o.mode = LM_THR_STORED;
    o.tta = 1;
    validate_result res;
    lm_err e = {0};
    if (validate_run(&o, &res, &e)) fail_msg("%s", e.msg);
    assert_int_equal(res.views, 8);
    for (int j = 0; j < 2; j++) assert_true(res.report.thresholds[j] == STORED[j]);
    cJSON *doc = read_json(f->report, "report.json");
    assert_true(cJSON_IsTrue(get(doc, "tta")));
    assert_true(get(doc, "views")->valuedouble == 8);
    cJSON_Delete(doc);
    /* stored mode writes the stored thresholds back */
    char *out = lm_path_join(f->model_out, "best.safetensors");
    lm_infer_model m;
    if (lm_infer_model_load(out, &m, &e)) fail_msg("%s", e.msg);
    assert_true(m.thresholds[0] == STORED[0] && m.thresholds[1] == STORED[1]);
    lm_infer_model_free(&m);
    free(out);
}

static void test_csv_source_and_header_mismatch(void **state) {
    fixture *f = *state;
    /* PNGs of the model's size: a csv evaluation of them */
    char *csvtext = strdup("filename;inactive;crack\n");
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "imgs/x%d.png", i);
        char *p = lm_path_join(f->dir, name);
        ifx_png(p, 1, 40, 36, (uint64_t)i);
        free(p);
        char *t = lm_sprintf("%s%s;%d;%d\n", csvtext, name, i % 2, i / 3);
        free(csvtext);
        csvtext = t;
    }
    char *csv = fx_write_text(f->dir, "other.csv", csvtext);
    validate_opts o;
    opts_for(f, &o);
    o.csv = csv;
    o.checkpoint = "last";
    o.mode = LM_THR_FIXED;
    o.threshold = 0.45f;
    validate_result res;
    lm_err e = {0};
    if (validate_run(&o, &res, &e)) fail_msg("%s", e.msg);
    assert_int_equal(res.report.n, 6);
    /* the columns were mapped: crack = i / 3 has 3 positives */
    assert_int_equal(res.report.at_default.cls[0].support, 3);
    assert_int_equal(res.report.at_default.cls[1].support, 3);
    cJSON *doc = read_json(f->report, "report.json");
    assert_string_equal(get(get(doc, "source"), "kind")->valuestring, "csv");
    cJSON_Delete(doc);
    char *out = lm_path_join(f->model_out, "last.safetensors");
    lm_infer_model m;
    if (lm_infer_model_load(out, &m, &e)) fail_msg("%s", e.msg);
    assert_true(m.thresholds[0] == 0.45f && m.thresholds[1] == 0.45f);
    cJSON *v = cJSON_Parse(lm_st_meta_get(m.file, "validated"));
    assert_string_equal(get(v, "split")->valuestring, "csv");
    assert_string_equal(get(v, "checkpoint")->valuestring, "last");
    cJSON_Delete(v);
    lm_infer_model_free(&m);

    /* labels that are not the checkpoint's */
    char *bad = fx_write_text(f->dir, "bad.csv", "filename;crack;cracks\nimgs/x0.png;1;0\n");
    o.csv = bad;
    lm_err e2 = {0};
    assert_int_equal(validate_run(&o, &res, &e2), LUMEN_EDATA);
    assert_non_null(strstr(e2.msg, bad));
    assert_non_null(strstr(e2.msg, "header labels (crack, cracks)"));
    assert_non_null(strstr(e2.msg, "missing 'inactive'"));
    /* an image that cannot be used is listed */
    char *gone = fx_write_text(f->dir, "gone.csv", "filename;crack;inactive\nimgs/x0.png;1;0\nimgs/none.png;0;0\n");
    o.csv = gone;
    lm_err e3 = {0};
    assert_int_equal(validate_run(&o, &res, &e3), LUMEN_EDATA);
    assert_non_null(strstr(e3.msg, "imgs/none.png"));
    free(gone);
    free(bad);
    free(out);
    free(csv);
    free(csvtext);
}

static void test_errors_name_the_cause(void **state) {
    fixture *f = *state;
    validate_opts o;
    opts_for(f, &o);
    validate_result res;
    /* a dataset with other labels */
    static const char *const other[] = {"crack", "dark"};
    char *ds2 = lm_path_join(f->dir, "dataset2");
    make_dataset(ds2, other);
    o.dataset = ds2;
    lm_err e = {0};
    assert_int_equal(validate_run(&o, &res, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "(crack, dark)"));
    assert_non_null(strstr(e.msg, "(crack, inactive)"));
    /* a dataset ingested with a filter the model was not trained with */
    char *ds3 = lm_path_join(f->dir, "dataset3");
    make_dataset_x(ds3, LABELS, "{\"filter\":{\"highpass\":{\"sigma\":2,\"gain\":2}}}");
    o.dataset = ds3;
    memset(&e, 0, sizeof e);
    assert_int_equal(validate_run(&o, &res, &e), LUMEN_EDATA);
    if (!strstr(e.msg, "was ingested with filter highpass(sigma 2, gain 2)") ||
        !strstr(e.msg, "trained on filter none"))
        fail_msg("%s", e.msg);
    free(ds3);
    /* no such checkpoint */
    opts_for(f, &o);
    char *empty = lm_path_join(f->dir, "empty");
    assert_int_equal(lm_mkdirs(empty, &e), 0);
    o.model_in = empty;
    lm_err e2 = {0};
    assert_int_equal(validate_run(&o, &res, &e2), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e2.msg, "best.safetensors"));
    /* a checkpoint without the metadata inference needs */
    char *best = lm_path_join(f->model_in, "best.safetensors");
    lm_infer_model m;
    lm_err e3 = {0};
    if (lm_infer_model_load(best, &m, &e3)) fail_msg("%s", e3.msg);
    char *bare = lm_path_join(empty, "best.safetensors");
    char *model = nn_resnet_cfg_to_json(&m.model->cfg);
    lm_ckpt_meta meta = {.model = model, .epoch = -1};
    assert_int_equal(lm_ckpt_save(bare, m.model, m.params, m.buffers, m.counters, &meta, &e3), 0);
    lm_infer_model_free(&m);
    lm_err e4 = {0};
    assert_int_equal(validate_run(&o, &res, &e4), LUMEN_EDATA);
    assert_non_null(strstr(e4.msg, bare));
    assert_non_null(strstr(e4.msg, "metadata \"input\" is missing"));
    free(model);
    free(bare);
    free(best);
    free(empty);
    free(ds2);
}

/* model's probabilities on the validation records of dataset dir, in
 * record order (as validate lists them), into p[nval * 2]; returns nval. */
static int val_reference(const char *dir, const char *model, float *p, uint32_t *rec) {
    lm_dataset *ds;
    lm_err e = {0};
    if (lm_dataset_open(dir, &ds, &e)) fail_msg("%s", e.msg);
    size_t n;
    const uint32_t *ids = lm_dataset_split(ds, LM_SPLIT_VAL, &n);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    size_t px = (size_t)in->channels * S * S;
    uint8_t *all = malloc(n * px);
    for (size_t i = 0; i < n; i++) {
        lm_record r;
        assert_int_equal(lm_dataset_get(ds, ids[i], &r), 0);
        memcpy(all + i * px, r.pixels, px);
        rec[i] = ids[i];
    }
    ifx_reference_probs(model, all, (int)n, 0, p);
    free(all);
    lm_dataset_close(ds);
    return (int)n;
}

/* An ensemble whose members were trained on differently filtered pixels
 * (a plain model and one with a high-pass channel): on a plain dataset and
 * on the same records ingested with the filter, every member sees the
 * images with its own filter -- predictions.json is the mean of each
 * member's reference on the dataset of its own filter, record for record
 * -- while a single model still refuses a dataset of another filter. */
static void test_mixed_filter_ensemble(void **state) {
    fixture *f = *state;
    const lm_pixfilter hp = {.highpass_sigma = 1.5, .highpass_gain = 3};
    char *dshp = lm_path_join(f->dir, "dataset_hp");
    make_dataset_filtered(f->dataset, dshp, &hp);
    char *plain = lm_path_join(f->model_in, "best.safetensors");
    char *hpm = lm_path_join(f->dir, "hp.safetensors");
    ifx_tiny_checkpoint_filtered(hpm, 2, S, S, 2, LABELS, 0.5f, 0.25f, NULL, 23,
                                 "{\"highpass\":{\"sigma\":1.5,\"gain\":3}}");
    float p0[NREC * 2], p1[NREC * 2];
    uint32_t r0[NREC], r1[NREC];
    int n = val_reference(f->dataset, plain, p0, r0);
    assert_int_equal(val_reference(dshp, hpm, p1, r1), n);
    assert_memory_equal(r0, r1, (size_t)n * sizeof *r0);
    char *man = lm_path_join(f->dir, "mixed.json");
    char *models[2] = {plain, hpm};
    lm_ensemble ens = {.n_models = 2, .models = models};
    lm_err e = {0};
    assert_int_equal(lm_ensemble_write(man, &ens, NULL, &e), 0);
    const char *sets[2] = {f->dataset, dshp};
    for (int d = 0; d < 2; d++) {
        validate_opts o;
        opts_for(f, &o);
        o.dataset = sets[d];
        o.ensemble = man;
        validate_result res;
        if (validate_run(&o, &res, &e)) fail_msg("%s: %s", sets[d], e.msg);
        assert_int_equal(res.report.n, n);
        char *pp = lm_path_join(f->report, "predictions.json");
        lm_preds pr;
        if (lm_preds_read(pp, &pr, &e)) fail_msg("%s", e.msg);
        assert_int_equal(pr.n, n);
        for (int i = 0; i < n; i++) {
            assert_int_equal(pr.index[i], r0[i]);
            char want[32];
            snprintf(want, sizeof want, "img%02u.png", r0[i]);
            assert_string_equal(pr.names[i], want);
            for (int j = 0; j < 2; j++)
                assert_float_equal(pr.p[i * 2 + j], 0.5 * ((double)p0[i * 2 + j] + p1[i * 2 + j]), 2e-5);
        }
        lm_preds_free(&pr);
        free(pp);
    }
    /* one model alone: the dataset must carry its filter */
    validate_opts o;
    opts_for(f, &o);
    o.dataset = dshp;
    validate_result res;
    assert_int_equal(validate_run(&o, &res, &e), LUMEN_EDATA);
    if (!strstr(e.msg, dshp) || !strstr(e.msg, "holds 2x32x32"))
        fail_msg("%s", e.msg);
    free(man);
    free(hpm);
    free(plain);
    free(dshp);
}

static void test_plugin_wrapper(void **state) {
    fixture *f = *state;
    assert_string_equal(validate_stage.name, "validate");
    assert_string_equal(validate_stage.inputs[0], "dataset");
    assert_string_equal(validate_stage.inputs[1], "model");
    assert_string_equal(validate_stage.outputs[0], "model");
    assert_string_equal(validate_stage.outputs[1], "report");
    assert_false(validate_stage.flags & LUMEN_STAGE_CACHEABLE);
    fh *h = fh_new(&validate_stage);
    fh_set_input(h, "dataset", f->dataset);
    fh_set_input(h, "model", f->model_in);
    fh_set_output(h, "model", f->model_out);
    fh_set_output(h, "report", f->report);
    fh_set_seed(h, 3);
    fh_set_threads(h, 2);
    fh_set(h, "thresholds", "fixed");
    fh_set(h, "threshold", "0.3");
    int rc = fh_run(h);
    if (rc) fail_msg("%s", fh_fail_msg(h));
    assert_null(fh_bad_key(h));
    int found;
    double f1 = fh_summary(h, "val/f1_mean_fixed", &found);
    assert_true(found && f1 >= 0 && f1 <= 1);
    fh_summary(h, "val/f1_mean_tuned_cv", &found);
    assert_true(found);
    assert_true(fh_log_count(h, LUMEN_LOG_INFO, "mean (macro)") >= 2); /* the table is logged */
    fh_free(h);

    h = fh_new(&validate_stage);
    fh_set(h, "root", "/tmp");
    assert_int_equal(fh_check(h), LUMEN_EINVAL);
    assert_non_null(strstr(fh_fail_msg(h), "root"));
    fh_free(h);
}


/* groups: each group of the validated images at the reported thresholds,
 * recomputed here from predictions.json and the groups file's rule */
static void test_groups_breakdown(void **state) {
    fixture *f = *state;
    char text[4096] = "filename;camera;line\n";
    for (int i = 0; i < NREC; i++) /* camera: even / odd images; line: all "L1" but img01 */
        snprintf(text + strlen(text), sizeof text - strlen(text), "img%02d.png;%s;%s\n", i, i % 2 ? "odd" : "even",
                 i == 1 ? "L2" : "L1");
    char *gpath = fx_write_text(f->dir, "groups.csv", text);
    validate_opts o;
    opts_for(f, &o);
    o.groups = gpath;
    validate_result res;
    lm_err e = {0};
    if (validate_run(&o, &res, &e)) fail_msg("%s", e.msg);
    cJSON *doc = read_json(f->report, "report.json");
    const cJSON *g = get(doc, "groups");
    assert_string_equal(get(g, "column")->valuestring, "camera");
    char *pp = lm_path_join(f->report, "predictions.json");
    lm_preds pr;
    if (lm_preds_read(pp, &pr, &e)) fail_msg("%s", e.msg);
    const char *gn[2] = {"even", "odd"};
    int64_t total = 0;
    for (int q = 0; q < 2; q++) {
        float P[NREC * 2], Y[NREC * 2];
        int64_t m = 0;
        for (int64_t i = 0; i < pr.n; i++) {
            int num = atoi(pr.names[i] + 3);
            if ((num % 2) != q) continue;
            memcpy(P + m * 2, pr.p + i * 2, 2 * sizeof *P);
            memcpy(Y + m * 2, pr.y + i * 2, 2 * sizeof *Y);
            m++;
        }
        lm_metrics x;
        assert_int_equal(lm_metrics_compute(P, Y, m, 2, res.report.thresholds, &x, &e), 0);
        const cJSON *go = get(get(g, "by"), gn[q]);
        assert_int_equal((int)get(go, "n")->valuedouble, (int)m);
        total += m;
        for (int j = 0; j < 2; j++) {
            const cJSON *lo = get(get(go, "labels"), LABELS[j]);
            assert_int_equal((int)get(lo, "support")->valuedouble, (int)x.cls[j].support);
            assert_true(x.cls[j].support > 0);
            if (fabs(get(lo, "f1")->valuedouble - x.cls[j].f1) > 1e-12 ||
                fabs(get(lo, "recall")->valuedouble - x.cls[j].recall) > 1e-12)
                fail_msg("%s %s: f1 %g recall %g, want %g %g", gn[q], LABELS[j], get(lo, "f1")->valuedouble,
                         get(lo, "recall")->valuedouble, x.cls[j].f1, x.cls[j].recall);
        }
        assert_true(fabs(get(go, "f1_mean")->valuedouble - x.f1_mean) < 1e-12);
        assert_true(fabs(get(go, "ap_mean")->valuedouble - x.ap_mean) < 1e-12);
    }
    assert_int_equal(total, pr.n);
    lm_preds_free(&pr);
    cJSON_Delete(doc);
    char *tp = lm_path_join(f->report, "report.txt"), *txt;
    size_t tl;
    if (lm_read_file(tp, &txt, &tl, &e)) fail_msg("%s", e.msg);
    assert_non_null(strstr(txt, "per group (column 'camera' of "));
    free(txt);
    free(tp);
    free(pp);

    /* a one-image group without positives: its F1 and AP, and its means, are null */
    o.groups_column = "line";
    if (validate_run(&o, &res, &e)) fail_msg("%s", e.msg);
    doc = read_json(f->report, "report.json");
    const cJSON *l2 = get(get(get(doc, "groups"), "by"), "L2");
    assert_int_equal((int)get(l2, "n")->valuedouble, 1);
    int nulls = 0, zero = 0;
    for (int j = 0; j < 2; j++) {
        const cJSON *lo = get(get(l2, "labels"), LABELS[j]);
        if (get(lo, "support")->valuedouble == 0) {
            zero++;
            nulls += cJSON_IsNull(get(lo, "f1")) && cJSON_IsNull(get(lo, "ap"));
        }
    }
    assert_true(zero >= 1); /* img01 is negative for at least one label */
    assert_int_equal(nulls, zero);
    assert_true(cJSON_IsNull(get(l2, "f1_mean")) && cJSON_IsNull(get(l2, "ap_mean")));
    cJSON_Delete(doc);

    /* an image the file does not list: named; a missing file fails first */
    char *part = fx_write_text(f->dir, "part.csv", "filename;camera\nimg00.png;x\nimg02.png;x\n");
    o.groups = part;
    o.groups_column = NULL;
    lm_err e2 = {0};
    assert_int_equal(validate_run(&o, &res, &e2), LUMEN_EDATA);
    if (!strstr(e2.msg, "part.csv does not list ") || !strstr(e2.msg, "(the first: img01.png)"))
        fail_msg("%s", e2.msg);
    char *none = lm_path_join(f->dir, "none.csv");
    o.groups = none;
    lm_err e3 = {0};
    assert_int_equal(validate_run(&o, &res, &e3), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e3.msg, "groups: "));
    free(none);
    free(part);
    free(gpath);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tune_on_val_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tta_and_stored_thresholds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_source_and_header_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_name_the_cause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_filter_ensemble, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin_wrapper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups_breakdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
