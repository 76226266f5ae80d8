/* Tests for the augment plugin (stages/augment/): the "augment" stage writes a
 * policy.json the loader reads back; "augment-materialize" writes an augmented
 * LMDB copy.  Drives the real descriptors (loaded from build/plugins/augment.so
 * through dlopen, as the runner does) with a minimal fake host. */
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

#include "cpu/augment.h"
#include "dataset.h"
#include "lm_util.h"
#include "policy.h"
#include "rng.h"

/* ---- a minimal host --------------------------------------------------------- */

struct lumen_ctx {
    const lumen_stage *st;
    const char *keys[16], *vals[16];
    int nset;
    const char *in_dir, *out_dir;
    char failmsg[1024];
    int failcode;
};

static const char *value_of(lumen_ctx *c, const char *key, int type) {
    for (int i = 0; i < c->nset; i++)
        if (!strcmp(c->keys[i], key))
            return c->vals[i];
    for (const lumen_param *p = c->st->params; p->name; p++)
        if (!strcmp(p->name, key)) {
            assert_int_equal(p->type, type == LUMEN_NUM && p->type == LUMEN_INT ? LUMEN_INT : type);
            return p->def;
        }
    fail_msg("stage asked for undeclared key %s", key);
    return NULL;
}

static int h_smoke(lumen_ctx *c) { (void)c; return 0; }
static int h_threads(lumen_ctx *c) { (void)c; return 1; }
static uint64_t h_seed(lumen_ctx *c) { (void)c; return 42; }
static const char *h_stage_id(lumen_ctx *c) { return c->st->name; }
static int h_is_set(lumen_ctx *c, const char *k) { (void)c; (void)k; return 1; }
static int h_is_auto(lumen_ctx *c, const char *k) { (void)c; (void)k; return 0; }
static int h_get_bool(lumen_ctx *c, const char *k) {
    return !strcmp(value_of(c, k, LUMEN_BOOL), "true");
}
static int64_t h_get_int(lumen_ctx *c, const char *k) {
    return strtoll(value_of(c, k, LUMEN_INT), NULL, 10);
}
static double h_get_num(lumen_ctx *c, const char *k) {
    return strtod(value_of(c, k, LUMEN_NUM), NULL);
}
static const char *h_get_str(lumen_ctx *c, const char *k) { return value_of(c, k, LUMEN_ENUM); }
static const char *h_input(lumen_ctx *c, const char *a) {
    assert_string_equal(a, "dataset");
    return c->in_dir;
}
static const char *h_output(lumen_ctx *c, const char *a) {
    (void)a;
    lm_mkdirs(c->out_dir, NULL);
    return c->out_dir;
}
static void h_log(lumen_ctx *c, int l, const char *f, ...) { (void)c; (void)l; (void)f; }
static void h_progress(lumen_ctx *c, int64_t d, int64_t t, const char *u, const char *x) {
    (void)c; (void)d; (void)t; (void)u; (void)x;
}
static int h_cancelled(lumen_ctx *c) { (void)c; return 0; }
static int h_fail(lumen_ctx *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (!c->failcode) {
        vsnprintf(c->failmsg, sizeof c->failmsg, fmt, ap);
        c->failcode = code;
    }
    va_end(ap);
    return code;
}

static lumen_host make_host(void) {
    lumen_host h = {0};
    h.abi_version = LUMEN_ABI_VERSION;
    h.size = sizeof h;
    h.smoke = h_smoke;
    h.threads = h_threads;
    h.seed = h_seed;
    h.stage_id = h_stage_id;
    h.is_set = h_is_set;
    h.is_auto = h_is_auto;
    h.get_bool = h_get_bool;
    h.get_int = h_get_int;
    h.get_num = h_get_num;
    h.get_str = h_get_str;
    h.input = h_input;
    h.output = h_output;
    h.log = h_log;
    h.progress = h_progress;
    h.cancelled = h_cancelled;
    h.fail = h_fail;
    return h;
}

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

static void test_augment_writes_policy_the_loader_reads(void **state) {
    (void)state;
    char *dir = tmpdir();
    lumen_ctx c = {.st = find_stage("augment"), .out_dir = dir};
    c.keys[0] = "flip", c.vals[0] = "true";
    c.keys[1] = "rotate", c.vals[1] = "7.5";
    c.keys[2] = "contrast", c.vals[2] = "0.2";
    c.keys[3] = "fill", c.vals[3] = "border";
    c.nset = 4;
    lumen_host h = make_host();
    assert_int_equal(c.st->check(&c, &h), 0);
    if (c.st->run(&c, &h))
        fail_msg("run: %s", c.failmsg);
    char *path = lm_path_join(dir, LM_POLICY_FILE);
    lm_policy p;
    lm_err e = {0};
    if (lm_policy_load(path, &p, &e))
        fail_msg("%s", e.msg);
    assert_true(p.hflip && p.vflip && !p.rotate90);
    assert_true(p.rotate == 7.5 && p.contrast == 0.2 && p.translate == 0 && p.p == 1);
    assert_int_equal(p.fill, NN_AUG_FILL_BORDER);
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
        lm_record r = {.h = 10, .w = 10, .c = 1, .split = i % 3 == 0, .nlabels = 2,
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
    make_dataset(in, 9); /* val: 0, 3, 6; train: 6 records */
    lumen_ctx c = {.st = find_stage("augment-materialize"), .in_dir = in, .out_dir = out};
    c.keys[0] = "rotate90", c.vals[0] = "true";
    c.keys[1] = "gamma", c.vals[1] = "0.3";
    c.keys[2] = "materialize", c.vals[2] = "2";
    c.nset = 3;
    lumen_host h = make_host();
    if (c.st->run(&c, &h))
        fail_msg("run: %s", c.failmsg);
    lm_dataset *src = NULL, *ds = NULL;
    lm_err e = {0};
    assert_int_equal(lm_dataset_open(in, &src, &e), 0);
    if (lm_dataset_open(out, &ds, &e))
        fail_msg("%s", e.msg);
    const lm_dataset_info *info = lm_dataset_get_info(ds);
    assert_int_equal(info->nval, 3);
    assert_int_equal(info->ntrain, 6 * 3);
    const cJSON *aug = cJSON_GetObjectItemCaseSensitive(lm_dataset_schema(ds), "augment");
    assert_non_null(aug);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(aug, "variants")->valueint, 2);

    /* record order: val copies, train original + its 2 variants */
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
        if (r0.split == LM_SPLIT_VAL)
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
    assert_true(changed >= 6);
    lm_dataset_close(ds);
    lm_dataset_close(src);
    lm_rmtree(root, &e);
    free(in);
    free(out);
    free(root);
}

static void test_materialize_missing_input_names_folder(void **state) {
    (void)state;
    char *root = tmpdir();
    char *in = lm_path_join(root, "nope"), *out = lm_path_join(root, "out");
    lumen_ctx c = {.st = find_stage("augment-materialize"), .in_dir = in, .out_dir = out};
    lumen_host h = make_host();
    assert_int_not_equal(c.st->run(&c, &h), 0);
    assert_non_null(strstr(c.failmsg, in));
    lm_err e = {0};
    lm_rmtree(root, &e);
    free(in);
    free(out);
    free(root);
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
        cmocka_unit_test(test_augment_writes_policy_the_loader_reads),
        cmocka_unit_test(test_materialize_writes_variants),
        cmocka_unit_test(test_materialize_missing_input_names_folder),
    };
    return cmocka_run_group_tests_name("augment_stage", tests, NULL, teardown);
}
