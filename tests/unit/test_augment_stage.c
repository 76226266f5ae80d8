/* Tests for the augment plugin (stages/augment/): the "augment" stage writes a
 * policy.json the loader reads back; "augment-materialize" writes an augmented
 * LMDB copy.  Drives the real descriptors (loaded from build/plugins/augment.so
 * through dlopen, as the runner does) with the fake host of tests/support. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lumen/plugin.h>

#include "cpu/cpu_augment.h"
#include "dataset.h"
#include "fakehost.h"
#include "lm_util.h"
#include "policy.h"
#include "rng.h"

static void *plugin;

static const lumen_stage *find_stage(const char *name) {
    if (!plugin) {
        const char *b = getenv("LUMEN_BUILD");
        char *path = lm_sprintf("%s/plugins/augment.so", b ? b : "build");
        plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!plugin)
            fail_msg("dlopen %s: %s", path, dlerror());
        free(path);
    }
    lumen_entry_fn entry = (lumen_entry_fn)dlsym(plugin, LUMEN_ENTRY_SYMBOL);
    assert_non_null(entry);
    for (const lumen_stage *const *s = entry(LUMEN_ABI_VERSION); *s; s++) {
        assert_int_equal((*s)->abi_version, LUMEN_ABI_VERSION);
        assert_string_equal((*s)->signature, LUMEN_SIGNATURE);
        if (!strcmp((*s)->name, name))
            return *s;
    }
    fail_msg("no stage %s", name);
    return NULL;
}

static char *tmpdir(void) {
    char tmpl[] = "/tmp/lumen-augstage-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_params_declared_with_docs_and_ranges(void **state) {
    (void)state;
    const lumen_stage *st = find_stage("augment");
    assert_true(st->flags & LUMEN_STAGE_CACHEABLE);
    assert_string_equal(st->outputs[0], "policy");
    const char *want[] = {"flip", "hflip", "vflip", "rotate90", "rotate", "translate",
                          "contrast", "brightness", "gamma", "p", "fill", "fill_value"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const lumen_param *p = st->params;
        while (p->name && strcmp(p->name, want[i]))
            p++;
        assert_non_null(p->name);
        assert_non_null(p->doc);
        assert_non_null(p->def);
        if (p->type == LUMEN_NUM)
            assert_true(p->max > p->min);
    }
}

static double *policy_num(lm_policy *p, const char *name) {
    if (!strcmp(name, "rotate")) return &p->rotate;
    if (!strcmp(name, "translate")) return &p->translate;
    if (!strcmp(name, "contrast")) return &p->contrast;
    if (!strcmp(name, "brightness")) return &p->brightness;
    if (!strcmp(name, "gamma")) return &p->gamma;
    if (!strcmp(name, "p")) return &p->p;
    if (!strcmp(name, "fill_value")) return &p->fill_value;
    fail_msg("no policy field %s", name);
    return NULL;
}

/* One table: augment and augment-materialize declare the policy parameters
 * identically (names, types, defaults, ranges, docs), and the policy's own
 * check takes the same ranges. */
static void test_policy_params_are_one_table(void **state) {
    (void)state;
    const lumen_param *a = find_stage("augment")->params;
    const lumen_param *m = find_stage("augment-materialize")->params;
    size_t n = 0;
    for (; a[n].name; n++) {
        assert_non_null(m[n].name);
        assert_string_equal(a[n].name, m[n].name);
        assert_int_equal(a[n].type, m[n].type);
        assert_string_equal(a[n].def, m[n].def);
        assert_true(a[n].min == m[n].min && a[n].max == m[n].max);
        assert_true((a[n].choices == NULL) == (m[n].choices == NULL));
        if (a[n].choices)
            assert_string_equal(a[n].choices, m[n].choices);
        assert_int_equal(a[n].flags, m[n].flags);
        assert_string_equal(a[n].doc, m[n].doc);
        if (a[n].type != LUMEN_NUM)
            continue;
        lm_policy p;
        lm_err e = {0};
        lm_policy_default(&p);
        *policy_num(&p, a[n].name) = a[n].min;
        assert_int_equal(lm_policy_check(&p, &e), 0);
        *policy_num(&p, a[n].name) = a[n].max;
        assert_int_equal(lm_policy_check(&p, &e), 0);
        *policy_num(&p, a[n].name) = a[n].max + 1e-9;
        assert_int_equal(lm_policy_check(&p, &e), LUMEN_EINVAL);
        assert_non_null(strstr(e.msg, a[n].name));
        lm_err_clear(&e);
        *policy_num(&p, a[n].name) = a[n].min - 1e-9;
        assert_int_equal(lm_policy_check(&p, &e), LUMEN_EINVAL);
    }
    assert_int_equal(n, 12);
    /* materialize adds its own two after the shared ones */
    assert_string_equal(m[n].name, "materialize");
    assert_string_equal(m[n + 1].name, "keep_original");
    assert_null(m[n + 2].name);
}

static void test_augment_writes_policy_the_loader_reads(void **state) {
    (void)state;
    char *dir = tmpdir();
    fh *f = fh_new(find_stage("augment"));
    fh_set_output(f, "policy", dir);
    fh_set(f, "flip", "true");
    fh_set(f, "rotate", "7.5");
    fh_set(f, "contrast", "0.2");
    fh_set(f, "fill", "border");
    assert_int_equal(fh_check(f), 0);
    if (fh_run(f))
        fail_msg("run: %s", fh_fail_msg(f));
    assert_null(fh_bad_key(f));
    char *path = lm_path_join(dir, LM_POLICY_FILE);
    lm_policy p;
    lm_err e = {0};
    if (lm_policy_load(path, &p, &e))
        fail_msg("%s", e.msg);
    assert_true(p.hflip && p.vflip && !p.rotate90);
    assert_true(p.rotate == 7.5 && p.contrast == 0.2 && p.translate == 0 && p.p == 1);
    assert_int_equal(p.fill, NN_AUG_FILL_BORDER);
    fh_free(f);
    free(path);
    lm_rmtree(dir, &e);
    free(dir);
}

static void make_dataset(const char *dir, int n) {
    const char *labels[] = {"crack", "inactive"};
    lm_dataset_spec spec = {.height = 10, .width = 10, .channels = 1, .nlabels = 2,
                            .labels = labels};
    lm_dataset_writer *w = NULL;
    lm_err e = {0};
    if (lm_dataset_create(dir, &spec, &w, &e))
        fail_msg("%s", e.msg);
    uint8_t px[100];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 100; j++)
            px[j] = (uint8_t)(i * 13 + j * 3);
        float lab[2] = {(float)(i % 2), 1.0f};
        char name[32];
        snprintf(name, sizeof name, "cell%d.png", i);
        int split = i % 3 == 0 ? LM_SPLIT_VAL : i == 4 ? LM_SPLIT_HELD : LM_SPLIT_TRAIN;
        lm_record r = {.h = 10, .w = 10, .c = 1, .split = split, .nlabels = 2,
                       .labels = lab, .name = name, .meta = "type=mono", .pixels = px};
        if (lm_dataset_put(w, &r, &e))
            fail_msg("%s", e.msg);
    }
    if (lm_dataset_finish(w, NULL, &e))
        fail_msg("%s", e.msg);
}

static void test_materialize_writes_variants(void **state) {
    (void)state;
    char *root = tmpdir();
    char *in = lm_path_join(root, "in"), *out = lm_path_join(root, "out");
    make_dataset(in, 9); /* val: 0, 3, 6; held: 4; train: 5 records */
    fh *f = fh_new(find_stage("augment-materialize"));
    fh_set_input(f, "dataset", in);
    fh_set_output(f, "dataset", out);
    fh_set_seed(f, 42);
    fh_set(f, "rotate90", "true");
    fh_set(f, "gamma", "0.3");
    fh_set(f, "materialize", "2");
    if (fh_run(f))
        fail_msg("run: %s", fh_fail_msg(f));
    assert_null(fh_bad_key(f));
    fh_free(f);
    lm_dataset *src = NULL, *ds = NULL;
    lm_err e = {0};
    assert_int_equal(lm_dataset_open(in, &src, &e), 0);
    if (lm_dataset_open(out, &ds, &e))
        fail_msg("%s", e.msg);
    const lm_dataset_info *info = lm_dataset_get_info(ds);
    assert_int_equal(info->nval, 3);
    assert_int_equal(info->nheld, 1);
    assert_int_equal(info->ntrain, 5 * 3);
    const cJSON *aug = cJSON_GetObjectItemCaseSensitive(lm_dataset_schema(ds), "augment");
    assert_non_null(aug);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(aug, "variants")->valueint, 2);

    /* record order: val and held copies (held stays held, no variants),
     * train original + its 2 variants */
    lm_policy pol;
    lm_policy_default(&pol);
    pol.rotate90 = 1;
    pol.gamma = 0.3;
    uint64_t seed = lm_rng_key(42, LM_RNG_MATERIALIZE, 0, 0);
    size_t k = 0;
    int changed = 0;
    for (size_t i = 0; i < 9; i++) {
        lm_record r0, r;
        assert_int_equal(lm_dataset_get(src, i, &r0), 0);
        assert_int_equal(lm_dataset_get(ds, k++, &r), 0);
        assert_string_equal(r.name, r0.name);
        assert_memory_equal(r.pixels, r0.pixels, 100);
        assert_int_equal(r.split, r0.split);
        if (r0.split != LM_SPLIT_TRAIN)
            continue;
        for (int v = 0; v < 2; v++) {
            assert_int_equal(lm_dataset_get(ds, k++, &r), 0);
            char want[64];
            snprintf(want, sizeof want, "%s#aug%d", r0.name, v);
            assert_string_equal(r.name, want);
            assert_string_equal(r.meta, v ? "type=mono;aug=1" : "type=mono;aug=0");
            assert_int_equal(r.split, LM_SPLIT_TRAIN);
            assert_memory_equal(r.labels, r0.labels, 2 * sizeof(float));
            nn_aug_params p;
            lm_policy_draw(&pol, seed, (uint64_t)v, i, 10, 10, &p);
            float tone[100];
            const float z = 0, one = 1;
            assert_int_equal(nn_aug_apply(r0.pixels, 1, 10, 10, &p, &z, &one, tone), 0);
            for (int j = 0; j < 100; j++)
                assert_int_equal(r.pixels[j], (int)lrintf(tone[j] * 255.0f));
            changed += memcmp(r.pixels, r0.pixels, 100) != 0;
        }
    }
    assert_int_equal(k, lm_dataset_count(ds));
    assert_true(changed >= 5);
    lm_dataset_close(ds);
    lm_dataset_close(src);
    lm_rmtree(root, &e);
    free(in);
    free(out);
    free(root);
}

/* A dataset ingested with a high-pass channel (schema "filter", 2
 * channels): its materialised copy keeps the filter, so the models trained
 * on it still record it; contrast / brightness / gamma, which would tone
 * the filtered plane as an image, are refused naming the reason. */
static void test_materialize_keeps_the_filter(void **state) {
    (void)state;
    char *root = tmpdir();
    char *in = lm_path_join(root, "in"), *out = lm_path_join(root, "out"),
         *out2 = lm_path_join(root, "out2");
    const char *labels[] = {"crack", "inactive"};
    lm_dataset_spec spec = {.height = 10, .width = 10, .channels = 2, .nlabels = 2, .labels = labels};
    lm_dataset_writer *w = NULL;
    lm_err e = {0};
    if (lm_dataset_create(in, &spec, &w, &e)) fail_msg("%s", e.msg);
    uint8_t px[200];
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 200; j++) px[j] = (uint8_t)(i * 7 + j);
        float lab[2] = {(float)(i % 2), 0.0f};
        char name[32];
        snprintf(name, sizeof name, "cell%d.png", i);
        lm_record r = {.h = 10, .w = 10, .c = 2, .split = i % 3 == 0, .nlabels = 2,
                       .labels = lab, .name = name, .meta = "", .pixels = px};
        if (lm_dataset_put(w, &r, &e)) fail_msg("%s", e.msg);
    }
    cJSON *extra = cJSON_Parse("{\"filter\":{\"highpass\":{\"sigma\":2,\"gain\":2}}}");
    if (lm_dataset_finish(w, extra, &e)) fail_msg("%s", e.msg);
    cJSON_Delete(extra);

    fh *f = fh_new(find_stage("augment-materialize"));
    fh_set_input(f, "dataset", in);
    fh_set_output(f, "dataset", out);
    fh_set(f, "rotate90", "true");
    fh_set(f, "materialize", "1");
    if (fh_run(f)) fail_msg("run: %s", fh_fail_msg(f));
    fh_free(f);
    lm_dataset *ds = NULL;
    if (lm_dataset_open(out, &ds, &e)) fail_msg("%s", e.msg);
    char *fj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(lm_dataset_schema(ds), "filter"));
    assert_string_equal(fj, "{\"highpass\":{\"sigma\":2,\"gain\":2}}");
    assert_int_equal(lm_dataset_get_info(ds)->channels, 2);
    free(fj);
    lm_dataset_close(ds);

    f = fh_new(find_stage("augment-materialize"));
    fh_set_input(f, "dataset", in);
    fh_set_output(f, "dataset", out2);
    fh_set(f, "contrast", "0.2");
    fh_set(f, "materialize", "1");
    assert_int_not_equal(fh_run(f), 0);
    if (!strstr(fh_fail_msg(f), "has a high-pass channel")) fail_msg("%s", fh_fail_msg(f));
    fh_free(f);
    lm_rmtree(root, &e);
    free(in);
    free(out);
    free(out2);
    free(root);
}

static void test_materialize_missing_input_names_folder(void **state) {
    (void)state;
    char *root = tmpdir();
    char *in = lm_path_join(root, "nope"), *out = lm_path_join(root, "out");
    fh *f = fh_new(find_stage("augment-materialize"));
    fh_set_input(f, "dataset", in);
    fh_set_output(f, "dataset", out);
    assert_int_not_equal(fh_run(f), 0);
    assert_non_null(strstr(fh_fail_msg(f), in));
    fh_free(f);
    lm_err e = {0};
    lm_rmtree(root, &e);
    free(in);
    free(out);
    free(root);
}

/* augment-materialize draws from the experiment seed, so its key follows it;
 * "augment" writes a policy that does not depend on the seed. */
static void test_materialize_key_follows_seed(void **state) {
    (void)state;
    fh *f = fh_new(find_stage("augment-materialize"));
    fh_set(f, "flip", "true");
    int rc;
    fh_set_seed(f, 1);
    uint64_t k1 = fh_key(f, &rc);
    assert_int_equal(rc, 0);
    fh_set_seed(f, 2);
    assert_true(fh_key(f, &rc) != k1);
    fh_set_seed(f, 1);
    assert_true(fh_key(f, &rc) == k1);
    fh_free(f);
    assert_null(find_stage("augment")->key);
}

static int teardown(void **state) {
    (void)state;
    if (plugin)
        dlclose(plugin);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_declared_with_docs_and_ranges),
        cmocka_unit_test(test_policy_params_are_one_table),
        cmocka_unit_test(test_augment_writes_policy_the_loader_reads),
        cmocka_unit_test(test_materialize_writes_variants),
        cmocka_unit_test(test_materialize_keeps_the_filter),
        cmocka_unit_test(test_materialize_missing_input_names_folder),
        cmocka_unit_test(test_materialize_key_follows_seed),
    };
    return cmocka_run_group_tests_name("augment_stage", tests, NULL, teardown);
}
