/*
 * test_experiments.c -- every experiment shipped in experiments/ plans
 * (--dry-run) and runs to the end under --smoke, and a sweep experiment
 * leaves its results table.  On the ELPV data in $LUMEN_DATA when it has
 * labels.csv and data.csv; otherwise on a generated ELPV-shaped set
 * (fx_elpv_fixture: 96 cells, 72 of them in data.csv, so the pretraining's
 * labels.csv minus data.csv keeps 24), made here and given to the runner as
 * $LUMEN_DATA, so the test runs without ../shared/data/elpv.  The dry runs
 * need the images too: ingest's cache key reads them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ingest_fx.h"

/* The .lua files in experiments/ (NULL-terminated). */
static char **experiments(size_t *n) {
    char *src = hx_src_dir();
    char *dir = hx_join(src, "experiments");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **v = calloc(64, sizeof *v);
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && *n < 63) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".lua") == 0) v[(*n)++] = hx_join(dir, de->d_name);
    }
    closedir(d);
    free(dir);
    free(src);
    return v;
}

/* $LUMEN_DATA has ELPV's labels.csv and data.csv (the experiments read
 * both: lumen.data "data.csv" and "labels.csv"). */
static int has_elpv(void) {
    const char *d = getenv("LUMEN_DATA");
    if (!d || !*d) return 0;
    char *l = hx_join(d, "labels.csv"), *c = hx_join(d, "data.csv");
    int ok = hx_exists(l) && hx_exists(c);
    free(l);
    free(c);
    return ok;
}

static char *generated; /* the generated set when $LUMEN_DATA has none */

static int group_setup(void **state) {
    (void)state;
    if (!has_elpv()) {
        generated = fx_elpv_fixture("experiments-elpv", 96, 72);
        setenv("LUMEN_DATA", generated, 1);
    }
    print_message("experiments on %s%s\n", getenv("LUMEN_DATA"), generated ? " (generated cells)" : "");
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    fx_rmtree(generated);
    generated = NULL;
    return 0;
}

static void test_every_experiment_plans(void **state) {
    (void)state;
    size_t n;
    char **v = experiments(&n);
    assert_true(n >= 5);
    char *tmp = hx_tmpdir();
    for (size_t i = 0; i < n; i++) {
        hx_result r;
        hx_runner(&r, tmp, NULL, NULL, v[i], "--dry-run", NULL);
        hx_assert_ran(&r, "%s --dry-run", v[i]);
        assert_non_null(strstr(r.err, "dry run: nothing was run"));
        hx_result_free(&r);
    }
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    hx_rmtree(tmp);
    free(tmp);
}

static void test_every_experiment_smoke(void **state) {
    (void)state;
    size_t n;
    char **v = experiments(&n);
    char *tmp = hx_tmpdir();
    for (size_t i = 0; i < n; i++) {
        hx_result r;
        hx_runner(&r, tmp, NULL, NULL, v[i], "--smoke", NULL);
        hx_assert_ran(&r, "%s --smoke", v[i]);
        char *rel = hx_last_line(r.out);
        char *run = hx_join(tmp, rel);
        if (strstr(v[i], "sweep") || strstr(v[i], "pretrain")) {
            char *res = hx_join(run, "results.csv");
            if (!hx_exists(res)) fail_msg("%s: no results.csv in %s", v[i], run);
            assert_non_null(strstr(r.err, "rank config"));
            free(res);
        }
        if (strstr(v[i], "crossval")) { /* per-fold scores and the fold ensemble */
            char *cv = hx_join(run, "crossval.csv"), *ens = hx_join(run, "ensemble.json");
            if (!hx_exists(cv) || !hx_exists(ens)) fail_msg("%s: no crossval.csv / ensemble.json in %s", v[i], run);
            assert_non_null(strstr(r.err, "cross-validation: 3 folds")); /* --smoke: at most 3 */
            free(cv);
            free(ens);
        }
        free(run);
        free(rel);
        hx_result_free(&r);
    }
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    hx_rmtree(tmp);
    free(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_experiment_plans),
        cmocka_unit_test(test_every_experiment_smoke),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
