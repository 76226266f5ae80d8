/*
 * test_predict.c -- `runner predict` and `runner eval` end to end, with a
 * tiny random checkpoint (no training) and PNGs generated with libspng:
 *   - predictions on raw images equal the engine's eval-mode forward on the
 *     pixels ingest stored for the same files (decode/resize/u8 rounding
 *     identical; BN folding vs the unfolded forward within float noise);
 *   - --csv gives the same rows as IMAGE arguments; --tta is the mean over
 *     the 8 dihedral views;
 *   - broken images (missing, truncated, a text file named .png) are named
 *     on stderr, the good ones are still predicted, exit status 1 with a
 *     last line "N of M images failed";
 *   - eval prints one JSON document whose counts add up to n and match the
 *     predicted probabilities; bad label headers and bad images are errors
 *     naming the file.
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
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dataset.h"
#include "harness.h"
#include "infer_fx.h"
#include "ingest/ingest.h"
#include "metrics.h"
#include "pixfilter.h"

#define NIMG 6
#define SIZE 32

static const char *const LABELS[] = {"crack", "inactive"};
static const float THRESHOLDS[] = {0.3f, 0.7f};
/* name, channels, w, h, crack, inactive */
static const struct {
    const char *name;
    int c;
    uint32_t w, h;
    int y[2];
} IMGS[NIMG] = {
    {"images/a.png", 1, 40, 40, {1, 0}}, {"images/b.png", 3, 50, 30, {0, 1}},
    {"images/c.png", 1, 32, 32, {1, 1}}, {"images/d.png", 1, 20, 20, {0, 0}},
    {"images/e.png", 3, 64, 64, {1, 0}}, {"images/f.png", 1, 33, 47, {0, 1}},
};

typedef struct fixture {
    char *tmp, *ckpt, *csv;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->tmp = hx_tmpdir();
    f->ckpt = hx_join(f->tmp, "best.safetensors");
    ifx_tiny_checkpoint(f->ckpt, 1, SIZE, SIZE, 2, LABELS, 0.45f, 0.2f, THRESHOLDS, 11);
    char *text = hx_fmt("filename;crack;inactive\n");
    for (int i = 0; i < NIMG; i++) {
        char *p = hx_join(f->tmp, IMGS[i].name);
        ifx_png(p, IMGS[i].c, IMGS[i].w, IMGS[i].h, 100 + (uint64_t)i);
        free(p);
        char *t = hx_fmt("%s%s;%d;%d\n", text, IMGS[i].name, IMGS[i].y[0], IMGS[i].y[1]);
        free(text);
        text = t;
    }
    f->csv = hx_join(f->tmp, "labels.csv");
    hx_write(f->csv, text);
    free(text);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hx_rmtree(f->tmp);
    free(f->tmp);
    free(f->ckpt);
    free(f->csv);
    free(f);
    return 0;
}

/* One parsed output row. */
typedef struct row {
    char name[64];
    float p[2];
    int d[2];
} row;

/* Parses predict's output: checks the header, returns the row count. */
static int parse_rows(const char *text, row *rows, int cap) {
    assert_non_null(text);
    const char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_memory_equal(text, "filename;p_crack;p_inactive;crack;inactive\n", (size_t)(nl - text + 1));
    int n = 0;
    for (const char *s = nl + 1; *s; s = strchr(s, '\n') + 1) {
        assert_true(n < cap);
        row *r = &rows[n++];
        int used = 0;
        char fmt[64];
        snprintf(fmt, sizeof fmt, "%%63[^;];%%f;%%f;%%d;%%d%%n");
        assert_int_equal(sscanf(s, fmt, r->name, &r->p[0], &r->p[1], &r->d[0], &r->d[1], &used), 5);
        assert_int_equal(s[used], '\n');
    }
    return n;
}

/* The pixels ingest stores for the fixture's images, in IMGS order, with
 * ingest's pixel filter `filter` (NULL: none). */
static uint8_t *ingested_pixels_filtered(const fixture *f, const lm_pixfilter *filter) {
    char *ds_dir = hx_join(f->tmp, "dataset");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = f->csv;
    o.out = ds_dir;
    o.size = SIZE;
    o.channels = 1;
    o.val = 0;
    o.threads = 1;
    if (filter) o.filter = *filter;
    const int c = lm_pixfilter_channels(filter, 1);
    lm_err e = {0};
    if (ingest_run(&o, NULL, &e)) fail_msg("%s", e.msg);
    lm_dataset *ds;
    if (lm_dataset_open(ds_dir, &ds, &e)) fail_msg("%s", e.msg);
    assert_int_equal(lm_dataset_count(ds), NIMG);
    assert_int_equal(lm_dataset_get_info(ds)->channels, c);
    uint8_t *px = malloc((size_t)NIMG * c * SIZE * SIZE);
    for (size_t i = 0; i < NIMG; i++) {
        lm_record r;
        assert_int_equal(lm_dataset_get(ds, i, &r), 0);
        int at = -1;
        for (int j = 0; j < NIMG; j++)
            if (!strcmp(r.name, IMGS[j].name)) at = j;
        assert_true(at >= 0);
        memcpy(px + (size_t)at * c * SIZE * SIZE, r.pixels, (size_t)c * SIZE * SIZE);
    }
    lm_dataset_close(ds);
    hx_rmtree(ds_dir);
    free(ds_dir);
    return px;
}

static uint8_t *ingested_pixels(const fixture *f) { return ingested_pixels_filtered(f, NULL); }

static void predict(hx_result *r, const fixture *f, const char *a1, const char *a2, const char *a3) {
    hx_runner(r, f->tmp, NULL, NULL, "predict", f->ckpt, a1, a2, a3, NULL);
}

static void test_predict_equals_engine_on_ingested_pixels(void **state) {
    fixture *f = *state;
    hx_result r;
    const char *out = "pred.csv";
    hx_runner(&r, f->tmp, NULL, NULL, "predict", f->ckpt, IMGS[0].name, IMGS[1].name,
              IMGS[2].name, IMGS[3].name, IMGS[4].name, IMGS[5].name, "--out", out, "--threads",
              "2", NULL);
    hx_assert_ran(&r, "predict");
    assert_string_equal(r.out, "");
    hx_result_free(&r);
    char *path = hx_join(f->tmp, out);
    char *text = hx_read(path);
    row rows[NIMG];
    assert_int_equal(parse_rows(text, rows, NIMG), NIMG);

    uint8_t *px = ingested_pixels(f);
    float ref[NIMG * 2];
    ifx_reference_probs(f->ckpt, px, NIMG, 0, ref);
    int spread = 0;
    for (int i = 0; i < NIMG; i++) {
        assert_string_equal(rows[i].name, IMGS[i].name);
        for (int j = 0; j < 2; j++) {
            assert_float_equal(rows[i].p[j], ref[i * 2 + j], 2e-5);
            assert_int_equal(rows[i].d[j], rows[i].p[j] >= THRESHOLDS[j]);
            spread |= fabsf(rows[i].p[j] - rows[0].p[j]) > 1e-4f;
        }
    }
    assert_true(spread); /* the images are told apart: the test can fail */

    /* --csv (first column only) to stdout: the same rows, byte for byte */
    predict(&r, f, "--csv", "labels.csv", NULL);
    hx_assert_ran(&r, "predict --csv");
    assert_string_equal(r.out, text);
    hx_result_free(&r);
    free(px);
    free(text);
    free(path);
}

static void test_predict_tta_is_the_mean_of_the_views(void **state) {
    fixture *f = *state;
    hx_result r;
    predict(&r, f, "--csv", f->csv, "--tta");
    hx_assert_ran(&r, "predict --tta");
    row rows[NIMG];
    assert_int_equal(parse_rows(r.out, rows, NIMG), NIMG);
    uint8_t *px = ingested_pixels(f);
    double mean[NIMG * 2] = {0};
    float v[NIMG * 2], plain[NIMG * 2];
    for (int k = 0; k < 8; k++) {
        ifx_reference_probs(f->ckpt, px, NIMG, k, v);
        if (k == 0) memcpy(plain, v, sizeof plain);
        for (int i = 0; i < NIMG * 2; i++) mean[i] += v[i] / 8.0;
    }
    int differs = 0;
    for (int i = 0; i < NIMG; i++)
        for (int j = 0; j < 2; j++) {
            assert_float_equal(rows[i].p[j], mean[i * 2 + j], 2e-5);
            differs |= fabs(mean[i * 2 + j] - plain[i * 2 + j]) > 1e-4;
        }
    assert_true(differs); /* TTA changes something on these images */
    hx_result_free(&r);
    free(px);
}

static void test_predict_broken_images(void **state) {
    fixture *f = *state;
    /* a truncated PNG (half of a good one) and a text file named .png */
    char *good = hx_join(f->tmp, IMGS[0].name), *bytes = NULL;
    size_t len;
    lm_err e = {0};
    assert_int_equal(lm_read_file(good, &bytes, &len, &e), 0);
    char *trunc = hx_join(f->tmp, "images/trunc.png");
    assert_int_equal(lm_write_file_atomic(trunc, bytes, len / 2, &e), 0);
    char *txt = hx_join(f->tmp, "images/text.png");
    hx_write(txt, "this is not an image\n");

    hx_result r;
    hx_runner(&r, f->tmp, NULL, NULL, "predict", f->ckpt, IMGS[0].name, "images/nope.png",
              "images/trunc.png", "images/text.png", IMGS[1].name, "--out", "out.csv", NULL);
    if (r.exit_code != 1) fail_msg("exit %d (signal %d):\n%s", r.exit_code, r.signal, r.err);
    assert_non_null(strstr(r.err, "images/nope.png"));
    assert_non_null(strstr(r.err, "images/trunc.png"));
    assert_non_null(strstr(r.err, "images/text.png"));
    assert_null(strstr(r.err, IMGS[0].name));
    char *last = hx_last_line(r.err);
    assert_string_equal(last, "runner: predict: 3 of 5 images failed");
    free(last);
    char *op = hx_join(f->tmp, "out.csv");
    char *text = hx_read(op);
    row rows[5];
    assert_int_equal(parse_rows(text, rows, 5), 2);
    assert_string_equal(rows[0].name, IMGS[0].name);
    assert_string_equal(rows[1].name, IMGS[1].name);
    hx_result_free(&r);

    /* the same through a CSV with a bad row ('..' escapes the root) */
    char *csv = hx_join(f->tmp, "list.csv");
    hx_write(csv, "filename;whatever\nimages/a.png;x\n../outside.png;1\nimages/text.png;0\n");
    predict(&r, f, "--csv", "list.csv", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "list.csv:3"));
    assert_non_null(strstr(r.err, "images/text.png"));
    last = hx_last_line(r.err);
    assert_string_equal(last, "runner: predict: 2 of 3 images failed");
    assert_int_equal(parse_rows(r.out, rows, 5), 1);
    free(last);
    hx_result_free(&r);

    /* all broken: the header only, still exit 1 */
    predict(&r, f, "images/nope.png", NULL, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(parse_rows(r.out, rows, 5), 0);
    hx_result_free(&r);
    free(csv);
    free(text);
    free(op);
    free(txt);
    free(trunc);
    free(bytes);
    free(good);
}

static void test_predict_usage_errors(void **state) {
    fixture *f = *state;
    hx_result r;
    predict(&r, f, NULL, NULL, NULL);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "no images given"));
    hx_result_free(&r);
    predict(&r, f, "--csv", "labels.csv", IMGS[0].name);
    assert_int_equal(r.exit_code, 2);
    hx_result_free(&r);
    predict(&r, f, "--ouy", IMGS[0].name, NULL);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "did you mean '--out'"));
    hx_result_free(&r);
    hx_runner(&r, f->tmp, NULL, NULL, "predict", "missing.safetensors", IMGS[0].name, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "missing.safetensors"));
    hx_result_free(&r);
}

/* A copy of the fixture checkpoint with one byte changed: at `from` (text in
 * the header, replaced by `to`) or, with from NULL, in the middle of the
 * weights. */
static char *damaged_copy(const fixture *f, const char *name, const char *from, const char *to) {
    lm_err e = {0};
    char *data;
    size_t len;
    if (lm_read_file(f->ckpt, &data, &len, &e)) fail_msg("%s", e.msg);
    if (from) {
        char *at = memmem(data, len, from, strlen(from));
        assert_non_null(at);
        memcpy(at, to, strlen(to));
    } else {
        data[len - len / 4] ^= 0x10;
    }
    char *path = hx_join(f->tmp, name);
    if (lm_write_file_atomic(path, data, len, &e)) fail_msg("%s", e.msg);
    free(data);
    return path;
}

/* A damaged checkpoint is refused with a message naming the file and what is
 * wrong, instead of predicting with a changed threshold or weight. */
static void test_predict_refuses_damaged_checkpoint(void **state) {
    fixture *f = *state;
    hx_result r;
    /* THRESHOLDS[1] 0.7 is stored as 0.699999988: one byte makes it 6.99.. */
    char *thr = damaged_copy(f, "thr.safetensors", "0.699999988", "6.699999988");
    hx_runner(&r, f->tmp, NULL, NULL, "predict", thr, IMGS[0].name, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, thr));
    assert_non_null(strstr(r.err, "metadata \"thresholds\": entry 1 is 6.7"));
    hx_result_free(&r);

    char *w = damaged_copy(f, "weights.safetensors", NULL, NULL);
    hx_runner(&r, f->tmp, NULL, NULL, "predict", w, IMGS[0].name, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, w));
    assert_non_null(strstr(r.err, "data section checksum mismatch: the file is damaged"));
    hx_result_free(&r);
    free(thr);
    free(w);
}

/* A checkpoint whose "input" records a high-pass filter (pixfilter.h, as
 * train writes for a dataset ingested with `highpass`): predict decodes
 * each image to the filter's source channels and filters it as ingest did,
 * so its probabilities equal the engine's on the pixels ingest stores with
 * that filter -- gray and RGB sources, images of other sizes.  Without the
 * filter (the gray plane twice) they differ.  An ensemble of a plain and
 * two differently filtered models gives each member the images with its
 * own filter: the mean of the three references, whichever member comes
 * first; members of other source channels are refused naming both, and a
 * damaged filter in the metadata is refused naming the file. */
static void test_predict_applies_the_checkpoint_filter(void **state) {
    fixture *f = *state;
    const lm_pixfilter hp = {.highpass_sigma = 1.5, .highpass_gain = 3};
    char *ck = hx_join(f->tmp, "hp.safetensors");
    ifx_tiny_checkpoint_filtered(ck, 2, SIZE, SIZE, 2, LABELS, 0.45f, 0.2f, THRESHOLDS, 12,
                                 "{\"highpass\":{\"sigma\":1.5,\"gain\":3}}");
    hx_result r;
    hx_runner(&r, f->tmp, NULL, NULL, "predict", ck, "--csv", "labels.csv", NULL);
    hx_assert_ran(&r, "predict with a filtered checkpoint");
    row rows[NIMG];
    assert_int_equal(parse_rows(r.out, rows, NIMG), NIMG);
    hx_result_free(&r);

    uint8_t *px = ingested_pixels_filtered(f, &hp);
    float ref[NIMG * 2], unf[NIMG * 2];
    ifx_reference_probs(ck, px, NIMG, 0, ref);
    /* the same images with the gray plane copied into the second channel */
    uint8_t *twice = malloc((size_t)NIMG * 2 * SIZE * SIZE);
    for (int i = 0; i < NIMG; i++)
        for (int c = 0; c < 2; c++)
            memcpy(twice + ((size_t)i * 2 + (size_t)c) * SIZE * SIZE, px + (size_t)i * 2 * SIZE * SIZE,
                   SIZE * SIZE);
    ifx_reference_probs(ck, twice, NIMG, 0, unf);
    double apart = 0;
    for (int i = 0; i < NIMG; i++) {
        assert_string_equal(rows[i].name, IMGS[i].name);
        for (int j = 0; j < 2; j++) {
            assert_float_equal(rows[i].p[j], ref[i * 2 + j], 2e-5);
            apart = fmax(apart, fabs(rows[i].p[j] - unf[i * 2 + j]));
        }
    }
    assert_true(apart > 1e-3); /* the filter changes what the model sees */

    /* an ensemble of models that filter differently: each member sees the
     * images with its own filter, in either order */
    const lm_pixfilter hp4 = {.highpass_sigma = 4, .highpass_gain = 3};
    char *ck4 = hx_join(f->tmp, "hp4.safetensors");
    ifx_tiny_checkpoint_filtered(ck4, 2, SIZE, SIZE, 2, LABELS, 0.45f, 0.2f, THRESHOLDS, 13,
                                 "{\"highpass\":{\"sigma\":4,\"gain\":3}}");
    uint8_t *px0 = ingested_pixels(f), *px4 = ingested_pixels_filtered(f, &hp4);
    float ref0[NIMG * 2], ref4[NIMG * 2];
    ifx_reference_probs(f->ckpt, px0, NIMG, 0, ref0);
    ifx_reference_probs(ck4, px4, NIMG, 0, ref4);
    const char *orders[2][3] = {{f->ckpt, ck, ck4}, {ck, ck4, f->ckpt}};
    for (int o = 0; o < 2; o++) {
        hx_runner(&r, f->tmp, NULL, NULL, "predict", "--csv", "labels.csv", "--ensemble", orders[o][0],
                  orders[o][1], orders[o][2], NULL);
        hx_assert_ran(&r, "predict with a mixed-filter ensemble");
        assert_int_equal(parse_rows(r.out, rows, NIMG), NIMG);
        hx_result_free(&r);
        for (int i = 0; i < NIMG; i++)
            for (int j = 0; j < 2; j++) {
                double want = ((double)ref0[i * 2 + j] + ref[i * 2 + j] + ref4[i * 2 + j]) / 3;
                assert_float_equal(rows[i].p[j], want, 2e-5);
            }
    }
    /* members decoded from other source channels are not one task */
    char *rgb = hx_join(f->tmp, "rgb.safetensors");
    ifx_tiny_checkpoint(rgb, 3, SIZE, SIZE, 2, LABELS, 0.45f, 0.2f, THRESHOLDS, 14);
    hx_runner(&r, f->tmp, NULL, NULL, "predict", "--ensemble", ck, rgb, "--", IMGS[0].name, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_string_equal(r.out, "");
    if (!strstr(r.err, ck) || !strstr(r.err, rgb) || !strstr(r.err, "1 source channel(s)") ||
        !strstr(r.err, "3 source channel(s)"))
        fail_msg("members not named in: %s", r.err);
    hx_result_free(&r);
    free(rgb);
    free(px0);
    free(px4);

    /* a damaged filter: sigma 1.5 -> 9e9 (the metadata is JSON inside a JSON
     * string, so its quotes are escaped in the file) */
    fixture g = *f;
    g.ckpt = ck;
    char *bad = damaged_copy(&g, "badfilter.safetensors", "sigma\\\":1.5", "sigma\\\":9e9");
    hx_runner(&r, f->tmp, NULL, NULL, "predict", bad, IMGS[0].name, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, bad));
    if (!strstr(r.err, "\"filter\" must be {\"highpass\""))
        fail_msg("no filter message in: %s", r.err);
    hx_result_free(&r);
    free(bad);
    free(ck4);
    free(twice);
    free(px);
    free(ck);
}

/* Counts of class j at threshold t from predicted rows and the labels. */
static void counts(const row *rows, int j, float t, int64_t c[4]) {
    memset(c, 0, 4 * sizeof *c);
    for (int i = 0; i < NIMG; i++) {
        int pred = rows[i].p[j] >= t, pos = IMGS[i].y[j];
        c[pred && pos ? 0 : pred ? 1 : pos ? 2 : 3]++;
    }
}

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!x) fail_msg("JSON has no '%s'", k);
    return x;
}

static void check_section(const cJSON *sec, const row *rows, const float *thr) {
    const cJSON *cls = get(sec, "classes");
    assert_int_equal(cJSON_GetArraySize(cls), 2);
    for (int j = 0; j < 2; j++) {
        const cJSON *c = cJSON_GetArrayItem(cls, j);
        assert_string_equal(get(c, "label")->valuestring, LABELS[j]);
        int64_t want[4];
        counts(rows, j, thr[j], want);
        static const char *const K[4] = {"tp", "fp", "fn", "tn"};
        double sum = 0;
        for (int q = 0; q < 4; q++) {
            assert_int_equal((int64_t)get(c, K[q])->valuedouble, want[q]);
            sum += get(c, K[q])->valuedouble;
        }
        assert_true(sum == NIMG);
        assert_true(get(c, "support")->valuedouble == (double)(want[0] + want[2]));
        double f1 = 2.0 * want[0] / (double)(2 * want[0] + want[1] + want[2]);
        assert_float_equal(get(c, "f1")->valuedouble, f1, 1e-12);
        assert_float_equal(get(c, "threshold")->valuedouble, thr[j], 1e-7);
    }
}

static void test_eval_json(void **state) {
    fixture *f = *state;
    hx_result r;
    /* reference probabilities from predict */
    predict(&r, f, "--csv", "labels.csv", NULL);
    assert_int_equal(r.exit_code, 0);
    row rows[NIMG];
    assert_int_equal(parse_rows(r.out, rows, NIMG), NIMG);
    hx_result_free(&r);

    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "labels.csv", "--root", ".",
              "--seed", "5", NULL);
    hx_assert_ran(&r, "eval");
    cJSON *doc = cJSON_Parse(r.out);
    assert_non_null(doc);
    assert_true(get(doc, "n")->valuedouble == NIMG);
    assert_string_equal(get(get(doc, "thresholds"), "mode")->valuestring, "stored");
    const cJSON *vals = get(get(doc, "thresholds"), "values");
    for (int j = 0; j < 2; j++)
        assert_float_equal(cJSON_GetArrayItem(vals, j)->valuedouble, THRESHOLDS[j], 1e-7);
    const float half[2] = {0.5f, 0.5f};
    check_section(get(doc, "default"), rows, half);
    check_section(get(doc, "chosen"), rows, THRESHOLDS);
    const cJSON *cv = get(doc, "tuned_cv");
    assert_true(get(cv, "seed")->valuedouble == 5);
    const cJSON *fs = get(cv, "fold_sizes");
    assert_true(cJSON_GetArrayItem(fs, 0)->valuedouble + cJSON_GetArrayItem(fs, 1)->valuedouble == NIMG);
    assert_string_equal(get(get(doc, "source"), "csv")->valuestring, "labels.csv");
    assert_true(cJSON_IsFalse(get(doc, "tta")));
    assert_true(get(doc, "loss_unweighted")->valuedouble > 0);
    cJSON_Delete(doc);
    hx_result_free(&r);

    /* tune: the thresholds lm_metrics_tune_thresholds picks on the same
     * probabilities, and the counts at them */
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "labels.csv", "--thresholds",
              "tune", NULL);
    assert_int_equal(r.exit_code, 0);
    doc = cJSON_Parse(r.out);
    assert_non_null(doc);
    float p[NIMG * 2], y[NIMG * 2], tuned[2];
    for (int i = 0; i < NIMG; i++)
        for (int j = 0; j < 2; j++) p[i * 2 + j] = rows[i].p[j], y[i * 2 + j] = (float)IMGS[i].y[j];
    lm_err e = {0};
    assert_int_equal(lm_metrics_tune_thresholds(p, y, NIMG, 2, tuned, &e), 0);
    vals = get(get(doc, "thresholds"), "values");
    for (int j = 0; j < 2; j++)
        assert_true((float)cJSON_GetArrayItem(vals, j)->valuedouble == tuned[j]);
    check_section(get(doc, "chosen"), rows, tuned);
    cJSON_Delete(doc);
    hx_result_free(&r);

    /* fixed */
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "labels.csv", "--thresholds",
              "fixed", "--threshold", "0.25", NULL);
    assert_int_equal(r.exit_code, 0);
    doc = cJSON_Parse(r.out);
    const float q[2] = {0.25f, 0.25f};
    check_section(get(doc, "chosen"), rows, q);
    cJSON_Delete(doc);
    hx_result_free(&r);

    /* --groups: a, c, e are "north", b, d, f "south" (no crack there):
     * each group's counts and F1 at the stored thresholds, recomputed */
    char *gp = hx_join(f->tmp, "sites.csv");
    hx_write(gp, "filename;site\nimages/a.png;north\nimages/b.png;south\nimages/c.png;north\n"
                 "images/d.png;south\nimages/e.png;north\nimages/f.png;south\n");
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "labels.csv", "--groups", "sites.csv", NULL);
    hx_assert_ran(&r, "eval --groups");
    doc = cJSON_Parse(r.out);
    assert_non_null(doc);
    const cJSON *by = get(get(doc, "groups"), "by");
    const char *site[2] = {"north", "south"};
    for (int g = 0; g < 2; g++) {
        float gp_[NIMG * 2], gy[NIMG * 2];
        int m = 0;
        for (int i = g; i < NIMG; i += 2, m++)
            for (int j = 0; j < 2; j++) gp_[m * 2 + j] = rows[i].p[j], gy[m * 2 + j] = (float)IMGS[i].y[j];
        lm_metrics x;
        assert_int_equal(lm_metrics_compute(gp_, gy, m, 2, THRESHOLDS, &x, &e), 0);
        const cJSON *go = get(by, site[g]);
        assert_true(get(go, "n")->valuedouble == 3);
        for (int j = 0; j < 2; j++) {
            const cJSON *lo = get(get(go, "labels"), j ? "inactive" : "crack");
            assert_true(get(lo, "support")->valuedouble == (double)x.cls[j].support);
            if (x.cls[j].support) assert_float_equal(get(lo, "f1")->valuedouble, x.cls[j].f1, 1e-12);
            else assert_true(cJSON_IsNull(get(lo, "f1")) && cJSON_IsNull(get(lo, "ap")));
        }
        if (g == 1) assert_true(cJSON_IsNull(get(go, "f1_mean"))); /* no crack in the south */
        else assert_float_equal(get(go, "f1_mean")->valuedouble, x.f1_mean, 1e-12);
    }
    cJSON_Delete(doc);
    hx_result_free(&r);
    /* an image the file does not list: the error names it */
    hx_write(gp, "filename;site\nimages/a.png;north\n");
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "labels.csv", "--groups", "sites.csv", NULL);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "sites.csv does not list 5 of the 6 images (the first: images/b.png)"))
        fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    free(gp);
}

static void test_eval_errors_name_the_file(void **state) {
    fixture *f = *state;
    hx_result r;
    char *csv = hx_join(f->tmp, "other.csv");
    hx_write(csv, "filename;crack;other\nimages/a.png;1;0\n");
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "other.csv", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "other.csv"));
    assert_non_null(strstr(last, "header"));
    assert_non_null(strstr(last, "missing 'inactive'"));
    assert_non_null(strstr(last, "unknown 'other'"));
    assert_string_equal(r.out, "");
    free(last);
    hx_result_free(&r);

    /* a column order other than the checkpoint's is fine */
    hx_write(csv, "filename;inactive;crack\nimages/a.png;0;1\nimages/b.png;1;0\n");
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "other.csv", NULL);
    assert_int_equal(r.exit_code, 0);
    cJSON *doc = cJSON_Parse(r.out);
    const cJSON *c0 = cJSON_GetArrayItem(get(get(doc, "default"), "classes"), 0);
    assert_string_equal(get(c0, "label")->valuestring, "crack");
    assert_true(get(c0, "support")->valuedouble == 1); /* a.png only */
    cJSON_Delete(doc);
    hx_result_free(&r);

    /* an unusable image is an error naming it */
    hx_write(csv, "filename;crack;inactive\nimages/a.png;1;0\nimages/gone.png;0;1\n");
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "other.csv", NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "images/gone.png"));
    hx_result_free(&r);

    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, NULL);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "--csv FILE is required"));
    hx_result_free(&r);
    hx_runner(&r, f->tmp, NULL, NULL, "eval", f->ckpt, "--csv", "labels.csv", "--thresholds", "best", NULL);
    assert_int_equal(r.exit_code, 2);
    hx_result_free(&r);
    free(csv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_predict_equals_engine_on_ingested_pixels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_tta_is_the_mean_of_the_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_broken_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_refuses_damaged_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict_applies_the_checkpoint_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval_errors_name_the_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
