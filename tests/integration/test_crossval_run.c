/*
 * test_crossval_run.c -- lumen.crossval through the real runner and the
 * real stages (ingest, normalize-stats, augment, train, validate) on a
 * generated ELPV-shaped set, under --smoke: 2 configurations x 3 folds.
 * Checks that the folds' validation splits partition the cells, that each
 * fold's score is the nested one (thresholds from the other folds'
 * out-of-fold predictions, recomputed here with lm_crossval_nested), that
 * crossval.json's mean/sd/interval agree with its per-fold values and the
 * configurations are paired by fold, that the ensemble manifest predicts
 * the mean of its fold models' own predictions (runner predict), that
 * runner eval takes --ensemble, that each fold's errors.png decodes, and
 * that --resume of the finished study re-scores it (crossval groups added)
 * without running a trial.
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
#include <spng.h>

#include "crossfit.h"
#include "errsheet.h"
#include "harness.h"
#include "ingest_fx.h"
#include "predictions.h"

#define FOLDS 3
#define CELLS 48

static const cJSON *at(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static cJSON *read_json(const char *dir, const char *name) {
    char *path = hx_join(dir, name);
    char *text = hx_read(path);
    if (!text) fail_msg("%s is missing", path);
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("%s is not JSON", path);
    free(text);
    free(path);
    return j;
}

/* "filename;p_a;p_b;a;b" rows -> the probabilities, in row order. */
static int read_pred_csv(const char *text, float *p, int max) {
    int n = 0;
    const char *line = strchr(text, '\n');
    while (line && line[1] && n + 2 <= max) {
        line++;
        const char *semi = strchr(line, ';');
        if (!semi) break;
        p[n] = strtof(semi + 1, NULL);
        const char *s2 = strchr(semi + 1, ';');
        p[n + 1] = strtof(s2 + 1, NULL);
        n += 2;
        line = strchr(line, '\n');
    }
    return n / 2;
}

/* Writes exp into tmp/exp.lua and runs it under --smoke.  hx_runner's
 * 120 s are tight for 6 trials on a loaded 2-core machine (~25 s when
 * quiet): the same call with a longer timeout.  *r: the runner's output,
 * for the caller to free. */
static void run_smoke_any(const char *tmp, const char *exp, hx_result *r) {
    char *ep = hx_join(tmp, "exp.lua");
    hx_write(ep, exp);
    free(ep);
    char *runner = hx_join(hx_build_dir(), "runner");
    const char *argv[] = {runner, "exp.lua", "--smoke", "--threads", "2", NULL};
    const char *env[] = {"LUMEN_PLUGIN_PATH", "LUMEN_RUNS", "LUMEN_DEBUG", NULL};
    hx_run(argv, tmp, env, 900, r);
    free(runner);
}

/* run_smoke_any, failing the test unless the runner exits 0. */
static void run_smoke(const char *tmp, const char *exp, hx_result *r) {
    run_smoke_any(tmp, exp, r);
    hx_assert_ran(r, "runner");
}

/* --resume of the finished two-configuration study with crossval ensemble
 * = "all" (it only scores the trials, so the resume is allowed): the
 * block "ensemble_all" scores every fold at the mean of both
 * configurations' models -- the same per-fold values and difference as
 * runner combine RUN:0 RUN:1 computes from the fold predictions -- and
 * <run>/ensemble.json lists all 2 x FOLDS fold models, predicting their
 * mean (runner predict on each); every single configuration's row is as
 * before.  A value other than "best" / "all" is refused naming the key. */
static void check_ensemble_all(const char *tmp, const char *run, const cJSON *cv) {
    char *runner = hx_join(hx_build_dir(), "runner");
    const char *env[] = {"LUMEN_PLUGIN_PATH", "LUMEN_RUNS", "LUMEN_DEBUG", NULL};
    const char *argv[] = {runner, "exp.lua", "--smoke", "--threads", "2", "--resume", run, "--set",
                          "crossval.ensemble=all", NULL};
    hx_result r;
    hx_run(argv, tmp, env, 300, &r);
    hx_assert_ran(&r, "re-scoring with ensemble = all");
    if (!strstr(r.err, "ensemble of all 2 configurations") || strstr(r.err, "started:") ||
        !strstr(r.err, "every configuration's fold models as one predictor"))
        fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    cJSON *cv3 = read_json(run, "crossval.json");
    assert_string_equal(at(cv3, "ensemble")->valuestring, "all");
    for (int c = 0; c < 2; c++) {
        const cJSON *m1s = at(cJSON_GetArrayItem(at(cv, "configs"), c), "metrics");
        const cJSON *m3s = at(cJSON_GetArrayItem(at(cv3, "configs"), c), "metrics");
        for (const cJSON *m = m1s->child; m; m = m->next)
            assert_true(cJSON_Compare(at(m, "values"), at(at(m3s, m->string), "values"), 1));
    }
    char *js = hx_join(tmp, "combine_all.json"), *m0 = hx_fmt("%s:0", run), *m1 = hx_fmt("%s:1", run);
    hx_runner(&r, tmp, NULL, NULL, "combine", m0, m1, "--json", js, NULL);
    hx_assert_ran(&r, "runner combine");
    hx_result_free(&r);
    cJSON *cj = read_json(tmp, "combine_all.json");
    const char *names[] = {"f1_crack", "f1_inactive", "f1_mean", "ap_crack", "ap_inactive", "ap_mean", "f1_micro"};
    for (int j = 0; j < 7; j++) {
        const cJSON *mine = at(at(at(cv3, "ensemble_all"), "metrics"), names[j]);
        const cJSON *theirs = at(at(at(cj, "ensemble"), "metrics"), names[j]);
        if (!mine || !theirs) fail_msg("%s missing", names[j]);
        for (int f = 0; f < FOLDS; f++) {
            double a = cJSON_GetNumberValue(cJSON_GetArrayItem(at(mine, "values"), f));
            double b = cJSON_GetNumberValue(cJSON_GetArrayItem(at(theirs, "values"), f));
            if (!(fabs(a - b) < 1e-12)) fail_msg("%s fold %d: crossval %.17g, combine %.17g", names[j], f, a, b);
        }
        double da = cJSON_GetNumberValue(at(mine, "diff")), db = cJSON_GetNumberValue(at(theirs, "diff"));
        if (!(fabs(da - db) < 1e-12)) fail_msg("%s diff: crossval %.17g, combine %.17g", names[j], da, db);
    }
    cJSON_Delete(cj);
    /* the manifest: every configuration's fold models, predicting their mean */
    cJSON *ens = read_json(run, "ensemble.json");
    const cJSON *models = at(ens, "models");
    assert_int_equal(cJSON_GetArraySize(models), 2 * FOLDS);
    assert_int_equal(cJSON_GetArraySize(at(ens, "configs")), 2);
    char *data = hx_join(tmp, "data.csv"), *mpath = hx_join(run, "ensemble.json");
    hx_runner(&r, tmp, NULL, NULL, "predict", mpath, "--csv", data, "--threads", "1", NULL);
    hx_assert_ran(&r, "predict with the manifest");
    float pe[2 * CELLS], pm[2 * FOLDS][2 * CELLS];
    assert_int_equal(read_pred_csv(r.out, pe, 2 * CELLS), CELLS);
    hx_result_free(&r);
    int trial_seen[2 * FOLDS] = {0};
    for (int m = 0; m < 2 * FOLDS; m++) {
        const char *name = cJSON_GetArrayItem(models, m)->valuestring;
        int tn = -1;
        assert_int_equal(sscanf(name, "trials/%d/", &tn), 1);
        assert_true(tn >= 0 && tn < 2 * FOLDS);
        trial_seen[tn]++;
        char *ck = hx_join(run, name);
        hx_runner(&r, tmp, NULL, NULL, "predict", ck, "--csv", data, "--threads", "1", NULL);
        hx_assert_ran(&r, "predict %s", ck);
        assert_int_equal(read_pred_csv(r.out, pm[m], 2 * CELLS), CELLS);
        hx_result_free(&r);
        free(ck);
    }
    for (int t = 0; t < 2 * FOLDS; t++) assert_int_equal(trial_seen[t], 1);
    for (int i = 0; i < 2 * CELLS; i++) {
        double want = 0;
        for (int m = 0; m < 2 * FOLDS; m++) want += pm[m][i];
        want /= 2 * FOLDS;
        if (fabs(pe[i] - want) > 2e-6) fail_msg("value %d: ensemble %.9g, mean of models %.9g", i, pe[i], want);
    }
    /* a bad value, named */
    const char *argv2[] = {runner, "exp.lua", "--smoke", "--threads", "2", "--resume", run, "--set",
                           "crossval.ensemble=every", NULL};
    hx_run(argv2, tmp, env, 300, &r);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "crossval ensemble must be \"best\"") || !strstr(r.err, "got \"every\""))
        fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    cJSON_Delete(ens);
    cJSON_Delete(cv3);
    free(data);
    free(mpath);
    free(js);
    free(m0);
    free(m1);
    free(runner);
}

static void test_crossval_smoke_end_to_end(void **state) {
    (void)state;
    char *tmp = fx_elpv_fixture("cvrun", CELLS, CELLS);
    char *exp = hx_fmt("local lumen = require \"lumen\"\n"
                       "return lumen.experiment {\n"
                       "  name = \"cv\", seed = 5,\n"
                       "  stages = {\n"
                       "    lumen.crossval {\n"
                       "      folds = %d, seeds = { 3 },\n"
                       "      space = { recipe = lumen.variants {\n"
                       "        { \"a\", { [\"train.optimizer.lr\"] = 0.001 } },\n"
                       "        { \"b\", { [\"train.optimizer.lr\"] = 0.003 } } } },\n"
                       "      stages = {\n"
                       "        lumen.ingest { csv = \"%s/data.csv\", size = 32 },\n"
                       "        lumen.normalize_stats {},\n"
                       "        lumen.augment { flip = true },\n"
                       "        lumen.train { epochs = 1, batch = 8,\n"
                       "          model = lumen.resnet { blocks = { 1, 1 }, widths = { 8, 16 }, stem_width = 8 } },\n"
                       "        lumen.validate { errors = 4 },\n"
                       "      },\n"
                       "    },\n"
                       "  },\n"
                       "}\n",
                       FOLDS, tmp);
    hx_result r;
    run_smoke(tmp, exp, &r);
    assert_non_null(strstr(r.err, "cross-validation: 3 folds"));
    assert_non_null(strstr(r.err, "scored once every fold is in"));
    assert_non_null(strstr(r.err, "paired by fold and seed"));
    char *rel = hx_last_line(r.out);
    char *run = hx_join(tmp, rel);
    hx_result_free(&r);

    cJSON *cv = read_json(run, "crossval.json");
    cJSON *res = read_json(run, "results.json");
    assert_int_equal((int)cJSON_GetNumberValue(at(cv, "folds")), FOLDS);
    assert_int_equal(cJSON_GetArraySize(at(cv, "configs")), 2);
    char *csvp = hx_join(run, "crossval.csv");
    char *csv = hx_read(csvp);
    free(csvp);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "f1_crack"));
    assert_non_null(strstr(csv, "ap_inactive"));
    free(csv);
    lm_err e = {0};
    for (int c = 0; c < 2; c++) {
        /* the folds' validation splits partition the cells */
        lm_preds pr[FOLDS];
        int seen[CELLS + 1] = {0};
        int64_t n = 0;
        for (int f = 0; f < FOLDS; f++) {
            char *path = hx_fmt("%s/trials/%d/validate/report/predictions.json", run, c * FOLDS + f);
            assert_int_equal(lm_preds_read(path, &pr[f], &e), 0);
            for (int64_t i = 0; i < pr[f].n; i++) {
                assert_true(pr[f].index[i] < CELLS);
                seen[pr[f].index[i]]++;
            }
            n += pr[f].n;
            free(path);
            /* the error sheet decodes, at its documented size */
            char *png = hx_fmt("%s/trials/%d/validate/report/errors.png", run, c * FOLDS + f);
            FILE *fp = fopen(png, "rb");
            assert_non_null(fp);
            spng_ctx *ctx = spng_ctx_new(0);
            spng_set_png_file(ctx, fp);
            struct spng_ihdr ih;
            assert_int_equal(spng_get_ihdr(ctx, &ih), 0);
            int ew, eh;
            lm_errsheet_size(2, 4, &ew, &eh);
            assert_int_equal(ih.width, (uint32_t)ew);
            assert_int_equal(ih.height, (uint32_t)eh);
            size_t size;
            assert_int_equal(spng_decoded_image_size(ctx, SPNG_FMT_G8, &size), 0);
            void *img = malloc(size);
            assert_int_equal(spng_decode_image(ctx, img, size, SPNG_FMT_G8, 0), 0);
            free(img);
            spng_ctx_free(ctx);
            fclose(fp);
            free(png);
        }
        assert_int_equal(n, CELLS);
        for (int i = 0; i < CELLS; i++) assert_int_equal(seen[i], 1);
        /* each fold's value is the nested score, recomputed here */
        float *P = malloc((size_t)n * 2 * sizeof *P), *Y = malloc((size_t)n * 2 * sizeof *Y);
        uint8_t *F = malloc((size_t)n);
        int64_t q = 0;
        for (int f = 0; f < FOLDS; f++)
            for (int64_t i = 0; i < pr[f].n; i++, q++) {
                memcpy(P + q * 2, pr[f].p + i * 2, 2 * sizeof *P);
                memcpy(Y + q * 2, pr[f].y + i * 2, 2 * sizeof *Y);
                F[q] = (uint8_t)f;
            }
        lm_cv_fold folds[FOLDS];
        assert_int_equal(lm_crossval_nested(P, Y, F, n, 2, FOLDS, folds, NULL, &e), 0);
        const cJSON *row = cJSON_GetArrayItem(at(cv, "configs"), c);
        const cJSON *f1 = at(at(row, "metrics"), "f1_mean");
        const cJSON *vals = at(f1, "values");
        const cJSON *rrow = cJSON_GetArrayItem(at(res, "rows"), c);
        double sum = 0;
        for (int f = 0; f < FOLDS; f++) {
            double v = cJSON_GetNumberValue(cJSON_GetArrayItem(vals, f));
            assert_true(fabs(v - folds[f].m.f1_mean) < 1e-12);
            /* the sweep table ranks on the same per-fold values */
            assert_true(fabs(cJSON_GetNumberValue(cJSON_GetArrayItem(at(rrow, "values"), f)) - v) < 1e-12);
            sum += v;
        }
        double mean = cJSON_GetNumberValue(at(f1, "mean")), sd = cJSON_GetNumberValue(at(f1, "sd"));
        assert_true(fabs(mean - sum / FOLDS) < 1e-12);
        /* 95% t interval with df = 2: t = 4.303 */
        double half = cJSON_GetNumberValue(at(f1, "ci95_hi")) - mean;
        assert_true(fabs(half - 4.302652729911275 * sd / sqrt(3.0)) < 1e-6);
        if (c == 1) assert_int_equal((int)cJSON_GetNumberValue(at(f1, "pairs")), FOLDS);
        /* one seed: no seed ensemble to score */
        assert_null(at(row, "seed_ensemble"));
        free(P);
        free(Y);
        free(F);
        for (int f = 0; f < FOLDS; f++) lm_preds_free(&pr[f]);
    }

    /* the ensemble manifest predicts the mean of its fold models */
    cJSON *ens = read_json(run, "ensemble.json");
    const cJSON *models = at(ens, "models");
    assert_int_equal(cJSON_GetArraySize(models), FOLDS);
    /* each fold is scored, and ensembled, at its last epoch: the "best"
     * epoch would have been picked on the fold being scored */
    for (int m = 0; m < FOLDS; m++) {
        const char *name = cJSON_GetArrayItem(models, m)->valuestring;
        size_t ln = strlen(name), ls = strlen("/last.safetensors");
        assert_true(ln > ls && strcmp(name + ln - ls, "/last.safetensors") == 0);
        char *tn = hx_fmt("trials/%d/trial.json", m);
        cJSON *tj = read_json(run, tn);
        free(tn);
        int found = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, at(tj, "sets")) found |= strcmp(s->valuestring, "validate.checkpoint=last") == 0;
        assert_true(found);
        cJSON_Delete(tj);
    }
    assert_int_equal(cJSON_GetArraySize(at(ens, "thresholds")), 2);
    char *data = hx_join(tmp, "data.csv");
    char *mpath = hx_join(run, "ensemble.json");
    hx_runner(&r, tmp, NULL, NULL, "predict", mpath, "--csv", data, "--threads", "1", NULL);
    hx_assert_ran(&r, "predict with the manifest");
    float pe[2 * CELLS], pm[FOLDS][2 * CELLS];
    assert_int_equal(read_pred_csv(r.out, pe, 2 * CELLS), CELLS);
    hx_result_free(&r);
    for (int m = 0; m < FOLDS; m++) {
        char *ck = hx_join(run, cJSON_GetArrayItem(models, m)->valuestring);
        hx_runner(&r, tmp, NULL, NULL, "predict", ck, "--csv", data, "--threads", "1", NULL);
        hx_assert_ran(&r, "predict %s", ck);
        assert_int_equal(read_pred_csv(r.out, pm[m], 2 * CELLS), CELLS);
        hx_result_free(&r);
        free(ck);
    }
    for (int i = 0; i < 2 * CELLS; i++) {
        double want = 0;
        for (int m = 0; m < FOLDS; m++) want += pm[m][i];
        want /= FOLDS;
        if (fabs(pe[i] - want) > 2e-6) fail_msg("value %d: ensemble %.9g, mean of models %.9g", i, pe[i], want);
    }
    /* runner eval --ensemble with the fold checkpoints */
    char *m0 = hx_join(run, cJSON_GetArrayItem(models, 0)->valuestring);
    char *m1 = hx_join(run, cJSON_GetArrayItem(models, 1)->valuestring);
    hx_runner(&r, tmp, NULL, NULL, "eval", "--ensemble", m0, m1, "--csv", data, NULL);
    hx_assert_ran(&r, "eval --ensemble");
    cJSON *doc = cJSON_Parse(r.out);
    assert_non_null(doc);
    assert_int_equal((int)cJSON_GetNumberValue(at(doc, "n")), CELLS);
    cJSON_Delete(doc);
    hx_result_free(&r);
    free(m0);
    free(m1);
    free(data);
    free(mpath);

    /* --resume of the finished study with groups added: scored again from
     * its trials (none runs again), the overall rows unchanged, the
     * per-group rows added; a change that defines the trials (the sweep's
     * seeds, a parameter of a stage inside it) is refused */
    char *runner = hx_join(hx_build_dir(), "runner"), *gset = hx_fmt("crossval.groups=%s/labels.csv", tmp);
    const char *env[] = {"LUMEN_PLUGIN_PATH", "LUMEN_RUNS", "LUMEN_DEBUG", NULL};
    const char *argv[] = {runner, "exp.lua", "--smoke", "--threads", "2", "--resume", run, "--set", gset, NULL};
    hx_run(argv, tmp, env, 300, &r);
    hx_assert_ran(&r, "re-scoring with groups");
    if (!strstr(r.err, "finished: its sweep is scored again from its trials; none runs again") ||
        !strstr(r.err, "6 trial(s) ended before") || strstr(r.err, "started:") || !strstr(r.err, "f1_crack[poly]"))
        fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    cJSON *cv2 = read_json(run, "crossval.json");
    assert_string_equal(at(at(cv2, "groups"), "column")->valuestring, "type");
    for (int c = 0; c < 2; c++) {
        const cJSON *m1s = at(cJSON_GetArrayItem(at(cv, "configs"), c), "metrics");
        const cJSON *m2s = at(cJSON_GetArrayItem(at(cv2, "configs"), c), "metrics");
        for (const cJSON *m = m1s->child; m; m = m->next) /* every overall row as before */
            assert_true(cJSON_Compare(at(m, "values"), at(at(m2s, m->string), "values"), 1));
        assert_non_null(at(m2s, "f1_mean[mono]"));
        assert_non_null(at(m2s, "ap_inactive[poly]"));
    }
    cJSON_Delete(cv2);
    check_ensemble_all(tmp, run, cv);
    const char *argv2[] = {runner, "exp.lua", "--smoke", "--threads", "2", "--resume", run, "--set", gset,
                           "--set", "crossval.seeds=4", NULL};
    hx_run(argv2, tmp, env, 300, &r);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "the sweep differs from the one the run started")) fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    /* the recipe inside the study changed since: refused, naming the key */
    char *ep = hx_join(tmp, "exp.lua"), *ed = hx_read(ep), *at1 = strstr(ed, "epochs = 1");
    assert_non_null(at1);
    at1[9] = '2';
    hx_write(ep, ed);
    hx_run(argv, tmp, env, 300, &r);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "the trials' train.epochs is 1 in the run but 2 now")) fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    free(ep);
    free(ed);
    free(runner);
    free(gset);
    cJSON_Delete(ens);
    cJSON_Delete(cv);
    cJSON_Delete(res);
    free(run);
    free(rel);
    free(exp);
    fx_rmtree(tmp);
}

/* Two training seeds: each fold is also scored at the mean of its two
 * models' probabilities (thresholds nested the same way), recomputed here
 * from the trials' own predictions, with the paired difference to the
 * single models' mean score.  split.seed is a number: "auto" would follow
 * the trial seed and give each seed its own folds (no ensemble then). */
/* tmp/NAME: a hand-made crossval run of the seed study's seed-3 trials
 * (crossval.json, trials/F/trial.json, the validate predictions with each
 * fold's samples in reverse order); rename: fold 0's first cell renamed. */
static void write_fake_run(const char *tmp, const char *run, const char *name, int rename) {
    for (int f = 0; f < FOLDS; f++) {
        char *src = hx_fmt("%s/trials/%d/validate/report/predictions.json", run, f * 2);
        char *text = hx_read(src);
        assert_non_null(text);
        cJSON *doc = cJSON_Parse(text), *samples = (cJSON *)at(doc, "samples"), *rev = cJSON_CreateArray();
        assert_non_null(samples);
        while (samples->child) cJSON_AddItemToArray(rev, cJSON_DetachItemViaPointer(samples, samples->child));
        for (cJSON *x = rev->child; x;) { /* reversed: prepend each */
            cJSON *next = x->next;
            cJSON *d = cJSON_DetachItemViaPointer(rev, x);
            cJSON_InsertItemInArray(samples, 0, d);
            x = next;
        }
        cJSON_Delete(rev);
        if (rename && f == 0) {
            cJSON *first = cJSON_GetArrayItem(samples, 0);
            char *nn = hx_fmt("X%s", cJSON_GetStringValue(at(first, "name")));
            cJSON_ReplaceItemInObjectCaseSensitive(first, "name", cJSON_CreateString(nn));
            free(nn);
        }
        char *out = cJSON_PrintUnformatted(doc);
        char *dst = hx_fmt("%s/%s/trials/%d/validate/report/predictions.json", tmp, name, f);
        hx_write(dst, out);
        char *tj = hx_fmt("%s/%s/trials/%d/trial.json", tmp, name, f);
        char *tjt = hx_fmt("{\"config\": 0, \"seed\": 3, \"fold\": %d}", f);
        hx_write(tj, tjt);
        free(tj);
        free(tjt);
        free(dst);
        free(out);
        cJSON_Delete(doc);
        free(text);
        free(src);
    }
    char *fcv = hx_fmt("%s/%s/crossval.json", tmp, name);
    hx_write(fcv, "{\"folds\": 3, \"seeds\": [3], \"configs\": [{\"config\": 0}]}");
    free(fcv);
}

/* combine --wrong for seeds 3 and 4: each (cell, label) listed with the
 * number of the two models whose decision at its fold's nested threshold
 * is wrong, recomputed here from the trials' predictions; none left out. */
static void check_wrong(const char *run, const char *path) {
    char *text = hx_read(path);
    assert_non_null(text);
    assert_true(strncmp(text, "filename;label;truth;wrong;models\n", 34) == 0);
    const char *labels[2] = {"crack", "inactive"};
    int want_lines = 0, found = 0, prev = 2;
    lm_preds p[2][FOLDS];
    int count[FOLDS][CELLS][2];
    memset(count, 0, sizeof count);
    lm_err e = {0};
    for (int s = 0; s < 2; s++) {
        float P[CELLS * 2], Y[CELLS * 2];
        uint8_t F[CELLS];
        int64_t q = 0;
        for (int f = 0; f < FOLDS; f++) {
            char *pp = hx_fmt("%s/trials/%d/validate/report/predictions.json", run, f * 2 + s);
            assert_int_equal(lm_preds_read(pp, &p[s][f], &e), 0);
            free(pp);
            for (int64_t i = 0; i < p[s][f].n; i++, q++) {
                memcpy(P + q * 2, p[s][f].p + i * 2, 2 * sizeof *P);
                memcpy(Y + q * 2, p[s][f].y + i * 2, 2 * sizeof *Y);
                F[q] = (uint8_t)f;
            }
        }
        lm_cv_fold folds[FOLDS];
        assert_int_equal(lm_crossval_nested(P, Y, F, q, 2, FOLDS, folds, NULL, &e), 0);
        for (int f = 0; f < FOLDS; f++)
            for (int64_t i = 0; i < p[s][f].n; i++) {
                int64_t r = 0; /* the row of seed 3's cell in seed s's fold */
                while (strcmp(p[s][f].names[r], p[0][f].names[i]) != 0) r++;
                for (int j = 0; j < 2; j++)
                    count[f][i][j] +=
                        (p[s][f].p[r * 2 + j] >= folds[f].thresholds[j]) != (p[s][f].y[r * 2 + j] >= 0.5f);
            }
    }
    for (int f = 0; f < FOLDS; f++)
        for (int64_t i = 0; i < p[0][f].n; i++)
            for (int j = 0; j < 2; j++) {
                if (!count[f][i][j]) continue;
                want_lines++;
                char *line = hx_fmt("\n%s;%s;%d;%d;2\n", p[0][f].names[i], labels[j], p[0][f].y[i * 2 + j] >= 0.5f,
                                    count[f][i][j]);
                if (!strstr(text, line)) fail_msg("--wrong lacks %s", line + 1);
                free(line);
            }
    for (const char *l = strchr(text, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        int w = 0;
        const char *semi = l;
        for (int k = 0; k < 3 && semi; k++) semi = strchr(semi + 1, ';');
        assert_non_null(semi);
        w = atoi(semi + 1);
        assert_true(w >= 1 && w <= prev); /* most models first */
        prev = w;
        found++;
    }
    assert_int_equal(found, want_lines);
    assert_true(want_lines > 0);
    for (int s = 0; s < 2; s++)
        for (int f = 0; f < FOLDS; f++) lm_preds_free(&p[s][f]);
    free(text);
}

/* runner combine on the seed study's run: each seed alone scores what
 * crossval.json says for that seed's folds, their mean what its seed
 * ensemble says (every metric, every fold), the difference is paired by
 * fold; bad members are named.  A hand-made run of the seed-3 trials with
 * each fold's rows reversed combined with the run's seed 3 is seed 3; with
 * one cell renamed in fold 0 it is refused as having other folds. */
static void check_combine(const char *tmp, const char *run, const cJSON *cv) {
    hx_result r;
    char *js = hx_join(tmp, "combine.json");
    char *m3 = hx_fmt("%s:0:3", run), *m4 = hx_fmt("%s:0:4", run);
    char *wr = hx_join(tmp, "wrong.csv");
    hx_runner(&r, tmp, NULL, NULL, "combine", m3, m4, "--json", js, "--wrong", wr, NULL);
    hx_assert_ran(&r, "runner combine");
    assert_non_null(strstr(r.out, "ensemble (mean of 2)"));
    assert_non_null(strstr(r.out, "crack: "));
    hx_result_free(&r);
    check_wrong(run, wr);
    free(wr);
    cJSON *cj = read_json(tmp, "combine.json");
    const cJSON *row = cJSON_GetArrayItem(at(cv, "configs"), 0), *se = at(row, "seed_ensemble");
    const char *names[] = {"f1_crack", "f1_inactive", "f1_mean", "ap_crack", "ap_inactive", "ap_mean", "f1_micro"};
    int checked = 0;
    for (int j = 0; j < 7; j++) {
        const cJSON *ens = at(at(at(cj, "ensemble"), "metrics"), names[j]);
        double dsum = 0;
        for (int f = 0; f < FOLDS; f++) {
            for (int s = 0; s < 2; s++) {
                const cJSON *mine = at(at(cJSON_GetArrayItem(at(cj, "models"), s), "metrics"), names[j]);
                double got = cJSON_GetNumberValue(cJSON_GetArrayItem(at(mine, "values"), f));
                double want = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(at(row, "metrics"), names[j]), "values"),
                                                                      f * 2 + s));
                if (fabs(got - want) > 1e-12)
                    fail_msg("%s seed %d fold %d: %.17g, crossval %.17g", names[j], s, f, got, want);
                checked++;
            }
            if (!at(se, names[j])) continue; /* the seed ensemble block has the base metrics */
            double got = cJSON_GetNumberValue(cJSON_GetArrayItem(at(ens, "values"), f));
            double want = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(se, names[j]), "values"), f));
            if (fabs(got - want) > 1e-12)
                fail_msg("%s ensemble fold %d: %.17g, crossval %.17g", names[j], f, got, want);
            const cJSON *m0 = at(at(cJSON_GetArrayItem(at(cj, "models"), 0), "metrics"), names[j]);
            dsum += got - cJSON_GetNumberValue(cJSON_GetArrayItem(at(m0, "values"), f));
            checked++;
        }
        if (at(se, names[j])) assert_true(fabs(cJSON_GetNumberValue(at(ens, "diff")) - dsum / FOLDS) < 1e-12);
    }
    assert_true(checked >= 7 * FOLDS * 2 + 6 * FOLDS);
    cJSON_Delete(cj);
    /* RUN alone: configuration 0, every seed */
    hx_runner(&r, tmp, NULL, NULL, "combine", run, NULL);
    hx_assert_ran(&r, "runner combine");
    assert_non_null(strstr(r.out, "ensemble (mean of 2)"));
    hx_result_free(&r);
    /* the seed-3 models again, each fold's rows in reverse order: the
     * ensemble of a model with itself is the model, cell by cell */
    write_fake_run(tmp, run, "fake", 0);
    hx_runner(&r, tmp, NULL, NULL, "combine", m3, "fake", "--json", js, NULL);
    hx_assert_ran(&r, "runner combine");
    hx_result_free(&r);
    cj = read_json(tmp, "combine.json");
    for (int j = 0; j < 7; j++)
        for (int f = 0; f < FOLDS; f++) {
            const cJSON *ens = at(at(at(cj, "ensemble"), "metrics"), names[j]);
            double got = cJSON_GetNumberValue(cJSON_GetArrayItem(at(ens, "values"), f));
            double want = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(at(row, "metrics"), names[j]), "values"), f * 2));
            if (fabs(got - want) > 1e-12)
                fail_msg("%s self-ensemble fold %d: %.17g, the model %.17g", names[j], f, got, want);
        }
    cJSON_Delete(cj);
    /* --base 2: seeds 3 and 4 and the reversed seed 3 against the first
     * two's ensemble -- crossval.json's seed ensemble, fold by fold -- not
     * against seed 3 alone */
    hx_runner(&r, tmp, NULL, NULL, "combine", m3, m4, "fake", "--base", "2", "--json", js, NULL);
    hx_assert_ran(&r, "runner combine --base 2");
    assert_non_null(strstr(r.out, "ensemble - base (mean of the first 2)"));
    hx_result_free(&r);
    cj = read_json(tmp, "combine.json");
    assert_int_equal(cJSON_GetNumberValue(at(at(cj, "base"), "models")), 2);
    int moved = 0, based = 0;
    for (int j = 0; j < 7; j++) {
        if (!at(se, names[j])) continue;
        const cJSON *ens = at(at(at(cj, "ensemble"), "metrics"), names[j]);
        const cJSON *bm = at(at(at(cj, "base"), "metrics"), names[j]);
        const cJSON *m0 = at(at(cJSON_GetArrayItem(at(cj, "models"), 0), "metrics"), names[j]);
        double dsum = 0, d0 = 0;
        for (int f = 0; f < FOLDS; f++) {
            double b = cJSON_GetNumberValue(cJSON_GetArrayItem(at(bm, "values"), f));
            double want = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(se, names[j]), "values"), f));
            if (fabs(b - want) > 1e-12)
                fail_msg("%s base fold %d: %.17g, crossval's seed ensemble %.17g", names[j], f, b, want);
            double en = cJSON_GetNumberValue(cJSON_GetArrayItem(at(ens, "values"), f));
            dsum += en - b;
            d0 += en - cJSON_GetNumberValue(cJSON_GetArrayItem(at(m0, "values"), f));
            based++;
        }
        double diff = cJSON_GetNumberValue(at(ens, "diff"));
        if (fabs(diff - dsum / FOLDS) > 1e-12)
            fail_msg("%s --base 2 diff %.17g, want %.17g", names[j], diff, dsum / FOLDS);
        moved += fabs(dsum - d0) > 1e-9; /* the base is not the first model */
    }
    assert_true(based >= 6 * FOLDS);
    assert_true(moved > 0);
    cJSON_Delete(cj);
    const char *bad_base[] = {"3", "0", "two"};
    for (size_t i = 0; i < 3; i++) {
        hx_runner(&r, tmp, NULL, NULL, "combine", m3, m4, "fake", "--base", bad_base[i], NULL);
        if (r.exit_code == 0 || !strstr(r.err, "--base"))
            fail_msg("combine --base %s: exit %d:\n%s", bad_base[i], r.exit_code, r.err);
        hx_result_free(&r);
    }
    /* ... and with one cell renamed in fold 0 */
    write_fake_run(tmp, run, "fake2", 1);
    struct {
        const char *a, *b, *want;
    } bad[] = {
        {m3, "fake2", "fold 0 holds X"},
        {m3, "fake2:1", "fake2:1: no configuration 1 (the run has 1: 0..0)"},
        {m3, "fake2:0:9", "fake2:0:9: the run has no seed 9"},
        {m3, "nowhere", "nowhere: no run folder"},
        {m3, ".", "has no crossval.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hx_runner(&r, tmp, NULL, NULL, "combine", bad[i].a, bad[i].b, NULL);
        if (r.exit_code == 0 || !strstr(r.err, bad[i].want))
            fail_msg("combine %s %s: exit %d, want '%s':\n%s", bad[i].a, bad[i].b, r.exit_code, bad[i].want, r.err);
        hx_result_free(&r);
    }
    /* the fake run alone is a fine one-model ensemble */
    hx_runner(&r, tmp, NULL, NULL, "combine", "fake2", NULL);
    hx_assert_ran(&r, "runner combine");
    hx_result_free(&r);
    free(m3);
    free(m4);
    free(js);
    print_message("runner combine: %d values checked against crossval.json\n", checked);
}

static void test_crossval_seed_ensemble(void **state) {
    (void)state;
    char *tmp = fx_elpv_fixture("cvseeds", CELLS, CELLS);
    char *exp = hx_fmt("local lumen = require \"lumen\"\n"
                       "return lumen.experiment {\n"
                       "  name = \"cvs\", seed = 5,\n"
                       "  stages = {\n"
                       "    lumen.crossval {\n"
                       "      folds = %d, seeds = { 3, 4 },\n"
                       "      stages = {\n"
                       "        lumen.ingest { csv = \"%s/data.csv\", size = 32, split = { seed = 7 } },\n"
                       "        lumen.normalize_stats {},\n"
                       "        lumen.train { epochs = 1, batch = 8,\n"
                       "          model = lumen.resnet { blocks = { 1, 1 }, widths = { 8, 16 }, stem_width = 8 } },\n"
                       "        lumen.validate {},\n"
                       "      },\n"
                       "    },\n"
                       "  },\n"
                       "}\n",
                       FOLDS, tmp);
    hx_result r;
    run_smoke(tmp, exp, &r);
    if (!strstr(r.err, "seed ensemble: each fold at the mean of its 2 models' probabilities"))
        fail_msg("no seed ensemble block:\n%s", r.err);
    char *rel = hx_last_line(r.out);
    char *run = hx_join(tmp, rel);
    hx_result_free(&r);
    cJSON *cv = read_json(run, "crossval.json");
    const cJSON *row = cJSON_GetArrayItem(at(cv, "configs"), 0);
    const cJSON *se = at(row, "seed_ensemble");
    assert_non_null(se);
    assert_int_equal((int)cJSON_GetNumberValue(at(se, "models")), 2);
    lm_err e = {0};
    /* trial f*2+s is fold f, seed s: average the two seeds per record */
    float P[CELLS * 2], Y[CELLS * 2];
    uint8_t F[CELLS];
    int64_t q = 0;
    for (int f = 0; f < FOLDS; f++) {
        lm_preds a, b;
        char *pa = hx_fmt("%s/trials/%d/validate/report/predictions.json", run, f * 2);
        char *pb = hx_fmt("%s/trials/%d/validate/report/predictions.json", run, f * 2 + 1);
        assert_int_equal(lm_preds_read(pa, &a, &e), 0);
        assert_int_equal(lm_preds_read(pb, &b, &e), 0);
        assert_int_equal(a.n, b.n);
        for (int64_t i = 0; i < a.n; i++, q++) {
            int64_t j = 0;
            while (j < b.n && b.index[j] != a.index[i]) j++;
            assert_true(j < b.n);
            for (int l = 0; l < 2; l++) {
                P[q * 2 + l] = (float)(((double)a.p[i * 2 + l] + b.p[j * 2 + l]) / 2);
                Y[q * 2 + l] = a.y[i * 2 + l];
            }
            F[q] = (uint8_t)f;
        }
        /* the seeds' models differ: the ensemble is not one of them */
        int differ = 0;
        for (int64_t i = 0; i < a.n * 2; i++) differ |= a.p[i] != b.p[i];
        assert_true(differ);
        lm_preds_free(&a);
        lm_preds_free(&b);
        free(pa);
        free(pb);
    }
    assert_int_equal(q, CELLS);
    lm_cv_fold folds[FOLDS];
    assert_int_equal(lm_crossval_nested(P, Y, F, q, 2, FOLDS, folds, NULL, &e), 0);
    const cJSON *ef1 = at(se, "f1_mean"), *sf1 = at(at(row, "metrics"), "f1_mean");
    double dsum = 0;
    for (int f = 0; f < FOLDS; f++) {
        double v = cJSON_GetNumberValue(cJSON_GetArrayItem(at(ef1, "values"), f));
        if (fabs(v - folds[f].m.f1_mean) > 1e-12) fail_msg("fold %d: %.17g, recomputed %.17g", f, v, folds[f].m.f1_mean);
        double s0 = cJSON_GetNumberValue(cJSON_GetArrayItem(at(sf1, "values"), f * 2));
        double s1 = cJSON_GetNumberValue(cJSON_GetArrayItem(at(sf1, "values"), f * 2 + 1));
        dsum += v - (s0 + s1) / 2;
    }
    assert_true(fabs(cJSON_GetNumberValue(at(ef1, "diff_vs_single")) - dsum / FOLDS) < 1e-12);
    assert_int_equal((int)cJSON_GetNumberValue(at(ef1, "n")), FOLDS);
    char *csvp = hx_join(run, "crossval.csv");
    char *csv = hx_read(csvp);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "[seed ensemble]"));
    free(csv);
    free(csvp);
    check_combine(tmp, run, cv);
    cJSON_Delete(cv);
    free(run);
    free(rel);
    free(exp);
    fx_rmtree(tmp);
}

/* ELPV's "defective" as an auxiliary label (ingest aux) with score =
 * {crack, inactive}: the models learn three labels, the study scores the
 * two -- each fold's f1_mean is the nested score of the predictions'
 * crack and inactive columns, recomputed here, and differs from the
 * three-label one -- and the ensemble manifest keeps all three labels, as
 * its models predict them (defective untuned, at 0.5), and predicts.  A
 * score naming no label fails naming it. */
/* The per-group rows (crossval groups = the fixture's labels.csv by its
 * ELPV rating: "0.0" and "0.3333333333333333" cells have no crack or
 * inactive positives, "0.6666666666666666" and "1.0" ones do): fold f's
 * metric[g] is fold f's cells rated g scored at fold f's nested
 * thresholds, recomputed here from the predictions and labels.csv read
 * directly; a label without positives among them is null, and so are that
 * group-fold's mean F1 and mean AP; a fold without cells of the group has
 * every value null. */
static void check_groups(const char *tmp, const cJSON *ms, const lm_preds *pr, const float *P, const float *Y,
                         const uint8_t *F, int64_t n, const lm_cv_fold *folds) {
    char *lp = hx_join(tmp, "labels.csv");
    char *text = hx_read(lp);
    assert_non_null(text);
    const char *groups[4] = {"0.0", "0.3333333333333333", "0.6666666666666666", "1.0"};
    float *Pg = malloc((size_t)n * 2 * sizeof *Pg), *Yg = malloc((size_t)n * 2 * sizeof *Yg);
    int checked = 0, nulls = 0;
    for (int g = 0; g < 4; g++)
        for (int f = 0; f < FOLDS; f++) {
            int64_t m = 0, q = 0;
            for (int ff = 0; ff < FOLDS; ff++)
                for (int64_t i = 0; i < pr[ff].n; i++, q++) {
                    char pat[256];
                    snprintf(pat, sizeof pat, "%s ", pr[ff].names[i]);
                    const char *row = strstr(text, pat);
                    assert_non_null(row);
                    char rated[64] = "";
                    assert_int_equal(sscanf(row + strlen(pat), " %63s", rated), 1);
                    int is = strcmp(rated, groups[g]) == 0;
                    if (F[q] != f || !is) continue;
                    memcpy(Pg + m * 2, P + q * 2, 2 * sizeof *Pg);
                    memcpy(Yg + m * 2, Y + q * 2, 2 * sizeof *Yg);
                    m++;
                }
            lm_metrics x;
            lm_err e = {0};
            assert_int_equal(lm_metrics_compute(Pg, Yg, m, 2, folds[f].thresholds, &x, &e), 0);
            if (m == 0) x.f1_micro = NAN; /* no cell of the group in the fold: every value null */
            const char *names[] = {"f1_crack", "f1_inactive", "f1_mean", "ap_crack", "ap_inactive", "ap_mean",
                                   "f1_micro"};
            int all = x.cls[0].support && x.cls[1].support;
            double want[] = {x.cls[0].support ? x.cls[0].f1 : NAN, x.cls[1].support ? x.cls[1].f1 : NAN,
                             all ? x.f1_mean : NAN, x.cls[0].support ? x.cls[0].ap : NAN,
                             x.cls[1].support ? x.cls[1].ap : NAN, all ? x.ap_mean : NAN, x.f1_micro};
            for (int j = 0; j < 7; j++) {
                char key[64];
                snprintf(key, sizeof key, "%s[%s]", names[j], groups[g]);
                const cJSON *v = cJSON_GetArrayItem(at(at(ms, key), "values"), f);
                if (!v) fail_msg("%s: no value for fold %d", key, f);
                if (isnan(want[j])) {
                    if (!cJSON_IsNull(v)) fail_msg("%s fold %d: %g, want null (no positives)", key, f, v->valuedouble);
                    nulls++;
                } else if (!cJSON_IsNumber(v) || fabs(v->valuedouble - want[j]) > 1e-12) {
                    fail_msg("%s fold %d: %g, want %.9g", key, f, cJSON_GetNumberValue(v), want[j]);
                }
                checked++;
            }
        }
    assert_int_equal(checked, 4 * FOLDS * 7);
    assert_true(nulls > 0); /* the null rule was exercised */
    print_message("group values checked: %d (%d null: no positives)\n", checked, nulls);
    free(Pg);
    free(Yg);
    free(text);
    free(lp);
}

static void test_crossval_scores_a_subset_of_labels(void **state) {
    (void)state;
    char *tmp = fx_elpv_fixture("cvaux", CELLS, CELLS);
    const char *fmt = "local lumen = require \"lumen\"\n"
                      "return lumen.experiment {\n"
                      "  name = \"cv\", seed = 5,\n"
                      "  stages = {\n"
                      "    lumen.crossval {\n"
                      "      folds = %d, seeds = { 3 }, score = { %s }, groups = { file = \"%s/%s\", column = \"probability\" },\n"
                      "      stages = {\n"
                      "        lumen.ingest { csv = \"%s/data.csv\", aux = \"%s/labels.csv\", size = 32 },\n"
                      "        lumen.normalize_stats {},\n"
                      "        lumen.train { epochs = 1, batch = 8,\n"
                      "          model = lumen.resnet { blocks = { 1, 1 }, widths = { 8, 16 }, stem_width = 8 } },\n"
                      "        lumen.validate {},\n"
                      "      },\n"
                      "    },\n"
                      "  },\n"
                      "}\n";
    char *exp = hx_fmt(fmt, FOLDS, "\"crack\", \"inactive\"", tmp, "labels.csv", tmp, tmp);
    hx_result r;
    run_smoke(tmp, exp, &r);
    assert_non_null(strstr(r.err, "scored labels (score): crack, inactive; other labels"));
    assert_non_null(strstr(r.err, "per group (column 'probability' of "));
    assert_non_null(strstr(r.err, "f1_crack[1.0]"));
    char *rel = hx_last_line(r.out);
    char *run = hx_join(tmp, rel);
    hx_result_free(&r);
    cJSON *cv = read_json(run, "crossval.json");
    assert_int_equal(cJSON_GetArraySize(at(cv, "score")), 2);
    lm_preds pr[FOLDS];
    lm_err e = {0};
    int64_t n = 0;
    for (int f = 0; f < FOLDS; f++) {
        char *path = hx_fmt("%s/trials/%d/validate/report/predictions.json", run, f);
        assert_int_equal(lm_preds_read(path, &pr[f], &e), 0);
        assert_int_equal(pr[f].k, 3);
        assert_string_equal(pr[f].labels[2], "defective");
        n += pr[f].n;
        free(path);
    }
    assert_int_equal(n, CELLS);
    /* the nested score of the two scored columns, and of all three */
    float *P2 = malloc((size_t)n * 2 * sizeof *P2), *Y2 = malloc((size_t)n * 2 * sizeof *Y2);
    float *P3 = malloc((size_t)n * 3 * sizeof *P3), *Y3 = malloc((size_t)n * 3 * sizeof *Y3);
    uint8_t *F = malloc((size_t)n);
    int64_t q = 0;
    for (int f = 0; f < FOLDS; f++)
        for (int64_t i = 0; i < pr[f].n; i++, q++) {
            memcpy(P3 + q * 3, pr[f].p + i * 3, 3 * sizeof *P3);
            memcpy(Y3 + q * 3, pr[f].y + i * 3, 3 * sizeof *Y3);
            memcpy(P2 + q * 2, pr[f].p + i * 3, 2 * sizeof *P2);
            memcpy(Y2 + q * 2, pr[f].y + i * 3, 2 * sizeof *Y2);
            F[q] = (uint8_t)f;
        }
    lm_cv_fold f2[FOLDS], f3[FOLDS];
    assert_int_equal(lm_crossval_nested(P2, Y2, F, n, 2, FOLDS, f2, NULL, &e), 0);
    assert_int_equal(lm_crossval_nested(P3, Y3, F, n, 3, FOLDS, f3, NULL, &e), 0);
    const cJSON *ms = at(cJSON_GetArrayItem(at(cv, "configs"), 0), "metrics");
    int moved = 0;
    for (int f = 0; f < FOLDS; f++) {
        double v = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(ms, "f1_mean"), "values"), f));
        double c = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(ms, "f1_crack"), "values"), f));
        double i = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(ms, "f1_inactive"), "values"), f));
        if (fabs(v - f2[f].m.f1_mean) > 1e-12 || fabs(v - (c + i) / 2) > 1e-12)
            fail_msg("fold %d: f1_mean %.9g, want %.9g = mean of crack %.9g and inactive %.9g", f, v,
                     f2[f].m.f1_mean, c, i);
        moved |= fabs(f3[f].m.f1_mean - v) > 1e-9;
        double ap = cJSON_GetNumberValue(cJSON_GetArrayItem(at(at(ms, "ap_mean"), "values"), f));
        assert_true(fabs(ap - f2[f].m.ap_mean) < 1e-12 || (isnan(ap) && isnan(f2[f].m.ap_mean)));
    }
    assert_true(moved);                      /* the third label would have changed the mean */
    check_groups(tmp, ms, pr, P2, Y2, F, n, f2);
    assert_null(at(ms, "f1_defective"));     /* trained on, not scored */
    /* the manifest lists the models' three labels; defective untuned at 0.5 */
    cJSON *ens = read_json(run, "ensemble.json");
    assert_int_equal(cJSON_GetArraySize(at(ens, "labels")), 3);
    assert_int_equal(cJSON_GetArraySize(at(ens, "thresholds")), 3);
    assert_true(cJSON_GetNumberValue(cJSON_GetArrayItem(at(ens, "thresholds"), 2)) == 0.5);
    assert_string_equal(cJSON_GetArrayItem(at(ens, "untuned"), 0)->valuestring, "defective");
    cJSON_Delete(ens);
    char *data = hx_join(tmp, "data.csv"), *mpath = hx_join(run, "ensemble.json");
    hx_runner(&r, tmp, NULL, NULL, "predict", mpath, "--csv", data, "--threads", "1", NULL);
    hx_assert_ran(&r, "predict with the manifest");
    assert_non_null(strstr(r.out, "defective"));
    hx_result_free(&r);
    free(data);
    free(mpath);
    cJSON_Delete(cv);
    for (int f = 0; f < FOLDS; f++) lm_preds_free(&pr[f]);
    free(P2);
    free(Y2);
    free(P3);
    free(Y3);
    free(F);
    free(run);
    free(rel);
    free(exp);

    /* a groups file that does not list every cell: the run fails naming one */
    char *lp = hx_join(tmp, "labels.csv"), *text = hx_read(lp), *cut = strstr(text, "images/cell0002.png");
    assert_non_null(cut);
    char *nl = strchr(cut, '\n');
    memmove(cut, nl + 1, strlen(nl + 1) + 1);
    char *part = hx_join(tmp, "part.csv");
    hx_write(part, text);
    exp = hx_fmt(fmt, FOLDS, "\"crack\", \"inactive\"", tmp, "part.csv", tmp, tmp);
    run_smoke_any(tmp, exp, &r);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "part.csv does not list 1 of the 48 scored records (the first: images/cell0002.png)"))
        fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    free(exp);
    free(lp);
    free(text);
    free(part);

    /* a label the predictions do not have: named, with the ones they do */
    exp = hx_fmt(fmt, FOLDS, "\"crack\", \"crak\"", tmp, "labels.csv", tmp, tmp);
    run_smoke_any(tmp, exp, &r);
    assert_int_not_equal(r.exit_code, 0);
    if (!strstr(r.err, "crossval score: 'crak' is not a label") || !strstr(r.err, "crack, inactive, defective"))
        fail_msg("unexpected output:\n%s", r.err);
    hx_result_free(&r);
    free(exp);
    fx_rmtree(tmp);
}

/* score's own mistakes are caught before anything runs, naming the line */
static void test_crossval_score_spec_errors(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"lumen.crossval { folds = 3, score = \"crack\", stages = { lumen.ingest { csv = \"d.csv\" } } }",
         "crossval score must be a non-empty list of label names"},
        {"lumen.crossval { folds = 3, score = { \"crack\", \"crack\" }, stages = { lumen.ingest { csv = \"d.csv\" } } }",
         "crossval score: 'crack' appears twice"},
        {"lumen.crossval { folds = 3, groups = { file = \"g.csv\", colum = \"x\" }, stages = { lumen.ingest { csv = \"d.csv\" } } }",
         "crossval groups: unknown key 'colum' (file, column)"},
        {"lumen.crossval { folds = 3, groups = 3, stages = { lumen.ingest { csv = \"d.csv\" } } }",
         "crossval groups must be a label file's path or { file = path, column = name }"},
        {"lumen.crossval { folds = 3, groups = \"nothere.csv\", stages = { lumen.ingest { csv = \"d.csv\" } } }",
         "crossval groups: cannot open nothere.csv"},
        {"lumen.sweep { score = { \"crack\" }, space = { [\"train.epochs\"] = { 1, 2 } },\n"
         "  stages = { lumen.train {} } }",
         "score is lumen.crossval's"},
        {"lumen.crossval { folds = 3, ensemble = \"al\", stages = { lumen.ingest { csv = \"d.csv\" } } }",
         "crossval ensemble must be \"best\" (the best configuration's fold models) or \"all\""},
        {"lumen.sweep { ensemble = \"all\", space = { [\"train.epochs\"] = { 1, 2 } },\n"
         "  stages = { lumen.train {} } }",
         "ensemble is lumen.crossval's"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *tmp = hx_tmpdir();
        char *ep = hx_join(tmp, "exp.lua");
        char *text = hx_fmt("local lumen = require \"lumen\"\n"
                            "return lumen.experiment { name = \"cv\", stages = {\n"
                            "  %s } }\n",
                            cases[i][0]);
        hx_write(ep, text);
        hx_result r;
        hx_runner(&r, tmp, NULL, NULL, "exp.lua", "--dry-run", NULL);
        char *last = hx_last_line(r.err);
        if (r.exit_code != 1 || !strstr(last, "exp.lua:3") || !strstr(last, cases[i][1]))
            fail_msg("case %zu: exit %d, last line: %s", i, r.exit_code, last);
        free(last);
        hx_result_free(&r);
        free(text);
        free(ep);
        hx_rmtree(tmp);
        free(tmp);
    }
}

static void test_crossval_needs_ingest_inside(void **state) {
    (void)state;
    char *tmp = hx_tmpdir();
    char *ep = hx_join(tmp, "exp.lua");
    hx_write(ep, "local lumen = require \"lumen\"\n"
                 "return lumen.experiment { name = \"cv\", stages = {\n"
                 "  lumen.ingest { csv = \"data.csv\" },\n"
                 "  lumen.crossval { folds = 4, stages = { lumen.normalize_stats {}, lumen.validate {} } } } }\n");
    hx_result r;
    hx_runner(&r, tmp, NULL, NULL, "exp.lua", "--dry-run", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "exp.lua:4"));
    assert_non_null(strstr(last, "ingest stage inside it"));
    free(last);
    hx_result_free(&r);
    free(ep);
    hx_rmtree(tmp);
    free(tmp);
}

static void test_crossval_refuses_best_checkpoint(void **state) {
    (void)state;
    char *tmp = hx_tmpdir();
    char *ep = hx_join(tmp, "exp.lua");
    hx_write(ep, "local lumen = require \"lumen\"\n"
                 "return lumen.experiment { name = \"cv\", stages = {\n"
                 "  lumen.crossval { folds = 4, stages = {\n"
                 "    lumen.ingest { csv = \"data.csv\" },\n"
                 "    lumen.validate { checkpoint = \"best\" } } } } }\n");
    hx_result r;
    hx_runner(&r, tmp, NULL, NULL, "exp.lua", "--dry-run", NULL);
    assert_int_equal(r.exit_code, 1);
    char *last = hx_last_line(r.err);
    assert_non_null(strstr(last, "exp.lua:5"));
    assert_non_null(strstr(last, "validate.checkpoint = \"best\""));
    assert_non_null(strstr(last, "fold being scored"));
    free(last);
    hx_result_free(&r);
    free(ep);
    hx_rmtree(tmp);
    free(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crossval_smoke_end_to_end),
        cmocka_unit_test(test_crossval_seed_ensemble),
        cmocka_unit_test(test_crossval_scores_a_subset_of_labels),
        cmocka_unit_test(test_crossval_score_spec_errors),
        cmocka_unit_test(test_crossval_needs_ingest_inside),
        cmocka_unit_test(test_crossval_refuses_best_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
