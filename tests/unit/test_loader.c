/* Unit tests for stages/common/batch_loader.c (and the policy it applies): order,
 * coverage, determinism across thread counts, partial batches, resume,
 * errors and shutdown while workers are blocked or busy.  Most tests use an
 * in-memory source; test_loader_over_lmdb_dataset goes through a real LMDB
 * dataset written with the dataset writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "cpu/cpu_augment.h"
#include "dataset.h"
#include "batch_loader.h"
#include "policy.h"
#include "rng.h"

/* ---- an in-memory source --------------------------------------------------- */

typedef struct memsrc {
    int c, h, w, k;
    size_t nrec;
    uint8_t *pixels; /* [nrec][c][h][w] */
    float *labels;   /* [nrec][k] */
    uint32_t *split; /* indices of the "split" (every record not % 5 == 3) */
    size_t nsplit;
    /* changed by the test while workers run, hence atomic */
    _Atomic uint32_t bad;  /* get() fails for this record (UINT32_MAX: none) */
    _Atomic long sleep_ns; /* per get(), to keep workers busy */
} memsrc;

static int mem_get(void *ctx, uint32_t i, const uint8_t **px, const float **lab,
                   lm_err *err) {
    memsrc *m = ctx;
    long ns = m->sleep_ns;
    if (ns) {
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
    }
    if (i == m->bad)
        return lm_fail(err, LUMEN_EDATA, "memsrc: record %u: corrupt", i);
    if (i >= m->nrec)
        return lm_fail(err, LUMEN_EINVAL, "memsrc: record %u out of range", i);
    *px = m->pixels + (size_t)i * m->c * m->h * m->w;
    *lab = m->labels + (size_t)i * m->k;
    return LUMEN_OK;
}

static memsrc *memsrc_new(size_t nrec, int c, int h, int w) {
    memsrc *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->c = c, m->h = h, m->w = w, m->k = 2, m->nrec = nrec, m->bad = UINT32_MAX;
    size_t chw = (size_t)c * h * w;
    m->pixels = malloc(nrec * chw);
    m->labels = malloc(nrec * 2 * sizeof(float));
    m->split = malloc(nrec * sizeof(uint32_t));
    assert_true(m->pixels && m->labels && m->split);
    lm_rng r;
    lm_rng_init(&r, 7, 100, 0, 0);
    for (size_t i = 0; i < nrec * chw; i++)
        m->pixels[i] = (uint8_t)lm_rng_u64(&r);
    for (size_t i = 0; i < nrec; i++) {
        m->labels[2 * i] = (float)(i % 2);
        m->labels[2 * i + 1] = (float)i; /* label identifies the record */
        if (i % 5 != 3)
            m->split[m->nsplit++] = (uint32_t)i;
    }
    return m;
}

static void memsrc_free(memsrc *m) {
    free(m->pixels);
    free(m->labels);
    free(m->split);
    free(m);
}

static lm_loader_source source_of(memsrc *m) {
    lm_loader_source s = {m, (uint32_t)m->h, (uint32_t)m->w, (uint32_t)m->c, 2,
                          m->split, m->nsplit, mem_get};
    return s;
}

static lm_policy busy_policy(void) {
    lm_policy p;
    lm_policy_default(&p);
    p.hflip = p.vflip = p.rotate90 = 1;
    p.rotate = 10;
    p.translate = 0.1;
    p.contrast = 0.2;
    p.brightness = 0.1;
    p.gamma = 0.2;
    p.p = 0.9;
    return p;
}

static const float MEAN2[2] = {0.45f, 0.5f};
static const float STD2[2] = {0.2f, 0.25f};

static lm_loader *open_or_fail(memsrc *m, lm_loader_cfg *cfg) {
    lm_loader_source s = source_of(m);
    lm_loader *ld = NULL;
    lm_err e = {0};
    if (lm_loader_open_source(&s, cfg, &ld, &e))
        fail_msg("open: %s", e.msg);
    return ld;
}

/* Runs one epoch; returns its digest (x, y, index, n of every batch) and
 * checks coverage: every split index exactly once (or, with drop_last, at
 * most once and exactly nbatches*batch of them). */
static XXH128_hash_t run_epoch(lm_loader *ld, memsrc *m, const lm_loader_cfg *cfg,
                               int64_t epoch, uint32_t *first_indices) {
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    char *seen = calloc(m->nrec, 1);
    lm_loader_start_epoch(ld, epoch);
    lm_batch b;
    lm_err e = {0};
    int64_t nb = 0;
    size_t total = 0, chw = (size_t)m->c * m->h * m->w;
    int rc;
    while ((rc = lm_loader_next(ld, &b, &e)) == 0 && b.n > 0) {
        assert_int_equal(b.number, nb);
        assert_int_equal(b.epoch, epoch);
        assert_true(b.n <= cfg->batch);
        if (b.n < cfg->batch)
            assert_false(cfg->drop_last);
        for (int j = 0; j < b.n; j++) {
            uint32_t idx = b.index[j];
            assert_true(idx < m->nrec);
            assert_true(idx % 5 != 3); /* only the split */
            assert_int_equal(seen[idx], 0);
            seen[idx] = 1;
            /* labels travel with their sample */
            assert_true(b.y[2 * j + 1] == (float)idx);
            if (first_indices && total + j < 8)
                first_indices[total + j] = idx;
        }
        for (int j = b.n; j < cfg->batch; j++) {
            assert_int_equal(b.index[j], UINT32_MAX);
            for (size_t i = 0; i < chw; i++)
                assert_true(b.x[j * chw + i] == 0.0f);
        }
        XXH3_128bits_update(st, b.x, (size_t)cfg->batch * chw * sizeof(float));
        XXH3_128bits_update(st, b.y, (size_t)cfg->batch * 2 * sizeof(float));
        XXH3_128bits_update(st, b.index, (size_t)cfg->batch * sizeof(uint32_t));
        XXH3_128bits_update(st, &b.n, sizeof b.n);
        total += (size_t)b.n;
        nb++;
    }
    if (rc)
        fail_msg("next: %s", e.msg);
    assert_int_equal(nb, lm_loader_batches(ld));
    if (cfg->drop_last)
        assert_int_equal(total, (m->nsplit / cfg->batch) * cfg->batch);
    else
        assert_int_equal(total, m->nsplit);
    /* after the end, next keeps saying "over" */
    assert_int_equal(lm_loader_next(ld, &b, &e), 0);
    assert_int_equal(b.n, 0);
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    free(seen);
    return h;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_every_index_once_and_pixels_match_kernel(void **state) {
    (void)state;
    memsrc *m = memsrc_new(53, 2, 10, 10);
    lm_policy pol = busy_policy();
    lm_loader_cfg cfg = {.batch = 8, .shuffle = 1, .seed = 42, .policy = &pol,
                         .mean = MEAN2, .std = STD2, .threads = 2};
    lm_loader *ld = open_or_fail(m, &cfg);
    assert_int_equal(lm_loader_count(ld), m->nsplit);
    run_epoch(ld, m, &cfg, 0, NULL);

    /* each delivered image is exactly nn_aug_apply of its record with the
     * parameters lm_policy_draw gives for (seed, epoch, record) */
    size_t chw = 2 * 10 * 10;
    float *want = malloc(chw * sizeof(float));
    lm_loader_start_epoch(ld, 3);
    lm_batch b;
    lm_err e = {0};
    int checked = 0, augmented = 0;
    while (lm_loader_next(ld, &b, &e) == 0 && b.n > 0)
        for (int j = 0; j < b.n; j++) {
            nn_aug_params p;
            lm_policy_draw(&pol, 42, 3, b.index[j], 10, 10, &p);
            assert_int_equal(nn_aug_apply(m->pixels + b.index[j] * chw, 2, 10, 10, &p, MEAN2,
                                          STD2, want),
                             0);
            assert_memory_equal(b.x + j * chw, want, chw * sizeof(float));
            augmented += p.dihedral != 0 || p.angle_deg != 0;
            checked++;
        }
    assert_int_equal(checked, (int)m->nsplit);
    assert_true(augmented > checked / 2); /* the policy really does something */
    free(want);
    lm_loader_close(ld);
    memsrc_free(m);
}

static void test_same_seed_same_bits_any_thread_count(void **state) {
    (void)state;
    memsrc *m = memsrc_new(61, 2, 12, 12);
    lm_policy pol = busy_policy();
    XXH128_hash_t ref = {0, 0};
    uint32_t ref_first[8], first[8];
    int configs[][2] = {{1, 2}, {1, 0}, {2, 0}, {3, 0}, {4, 7}};
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        lm_loader_cfg cfg = {.batch = 6, .shuffle = 1, .seed = 9, .policy = &pol,
                             .mean = MEAN2, .std = STD2, .threads = configs[i][0],
                             .depth = configs[i][1]};
        lm_loader *ld = open_or_fail(m, &cfg);
        /* run another epoch first: state from it must not leak into epoch 5 */
        run_epoch(ld, m, &cfg, 4, NULL);
        XXH128_hash_t h = run_epoch(ld, m, &cfg, 5, first);
        if (i == 0) {
            ref = h;
            memcpy(ref_first, first, sizeof first);
        } else {
            assert_true(XXH128_isEqual(h, ref));
            assert_memory_equal(first, ref_first, sizeof first);
        }
        lm_loader_close(ld);
    }
    memsrc_free(m);
}

static void test_epochs_and_seeds_change_order(void **state) {
    (void)state;
    memsrc *m = memsrc_new(100, 1, 4, 4);
    lm_loader_cfg cfg = {.batch = 10, .shuffle = 1, .seed = 1, .threads = 1};
    lm_loader *ld = open_or_fail(m, &cfg);
    size_t n = lm_loader_count(ld);
    uint32_t *a = malloc(n * 4), *b = malloc(n * 4);
    lm_loader_epoch_order(ld, 0, a);
    lm_loader_epoch_order(ld, 1, b);
    assert_true(memcmp(a, b, n * 4) != 0);
    /* the exposed order is what start_epoch uses, and it is the documented
     * Fisher-Yates permutation of the ascending split */
    lm_loader_start_epoch(ld, 1);
    size_t n2;
    const uint32_t *cur = lm_loader_order(ld, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(cur, b, n * 4);
    memcpy(a, m->split, n * 4);
    lm_shuffle_u32(a, n, 1, 1);
    assert_memory_equal(a, b, n * 4);
    /* and the batches follow it */
    lm_batch bt;
    lm_err e = {0};
    assert_int_equal(lm_loader_next(ld, &bt, &e), 0);
    assert_memory_equal(bt.index, b, 10 * 4);
    lm_loader_close(ld);

    cfg.seed = 2;
    ld = open_or_fail(m, &cfg);
    lm_loader_epoch_order(ld, 1, a);
    assert_true(memcmp(a, b, n * 4) != 0);
    lm_loader_close(ld);
    free(a);
    free(b);
    memsrc_free(m);
}

static void test_eval_order_and_last_partial_batch(void **state) {
    (void)state;
    memsrc *m = memsrc_new(29, 1, 6, 6); /* split: 23 records */
    lm_loader_cfg cfg = {.batch = 5, .shuffle = 0, .drop_last = 0, .seed = 3,
                         .policy = NULL, .threads = 2};
    lm_loader *ld = open_or_fail(m, &cfg);
    assert_int_equal(m->nsplit, 23);
    assert_int_equal(lm_loader_batches(ld), 5);
    for (int rep = 0; rep < 2; rep++) {
        lm_loader_start_epoch(ld, rep * 7); /* the epoch does not matter in eval */
        lm_batch b;
        lm_err e = {0};
        size_t pos = 0;
        int last_n = -1;
        while (lm_loader_next(ld, &b, &e) == 0 && b.n > 0) {
            for (int j = 0; j < b.n; j++) {
                assert_int_equal(b.index[j], m->split[pos++]);
                /* no augmentation: plain normalisation with mean 0, std 1 */
                assert_true(b.x[j * 36 + 7] == (float)m->pixels[b.index[j] * 36 + 7] / 255.0f);
            }
            last_n = b.n;
        }
        assert_int_equal(pos, 23);
        assert_int_equal(last_n, 3);
    }
    run_epoch(ld, m, &cfg, 0, NULL);
    lm_loader_close(ld);

    cfg.drop_last = 1;
    cfg.shuffle = 1;
    ld = open_or_fail(m, &cfg);
    assert_int_equal(lm_loader_batches(ld), 4);
    run_epoch(ld, m, &cfg, 0, NULL); /* checks 20 samples, all full batches */
    lm_loader_close(ld);

    /* fewer samples than one batch with drop_last: an empty epoch */
    cfg.batch = 64;
    ld = open_or_fail(m, &cfg);
    assert_int_equal(lm_loader_batches(ld), 0);
    lm_loader_start_epoch(ld, 0);
    lm_batch b;
    lm_err e = {0};
    assert_int_equal(lm_loader_next(ld, &b, &e), 0);
    assert_int_equal(b.n, 0);
    lm_loader_close(ld);
    memsrc_free(m);
}

static void test_resume_mid_epoch_matches(void **state) {
    (void)state;
    memsrc *m = memsrc_new(40, 1, 8, 8);
    lm_policy pol = busy_policy();
    lm_loader_cfg cfg = {.batch = 4, .shuffle = 1, .seed = 11, .policy = &pol,
                         .threads = 2};
    lm_loader *ld = open_or_fail(m, &cfg);
    size_t chw = 64;
    int64_t nb = lm_loader_batches(ld);
    float *all = malloc((size_t)nb * 4 * chw * sizeof(float));
    lm_loader_start_epoch(ld, 2);
    lm_batch b;
    lm_err e = {0};
    for (int64_t i = 0; i < nb; i++) {
        assert_int_equal(lm_loader_next(ld, &b, &e), 0);
        memcpy(all + i * 4 * chw, b.x, 4 * chw * sizeof(float));
    }
    lm_loader_start_epoch_at(ld, 2, 5);
    for (int64_t i = 5; i < nb; i++) {
        assert_int_equal(lm_loader_next(ld, &b, &e), 0);
        assert_int_equal(b.number, i);
        assert_memory_equal(b.x, all + i * 4 * chw, 4 * chw * sizeof(float));
    }
    assert_int_equal(lm_loader_next(ld, &b, &e), 0);
    assert_int_equal(b.n, 0);
    free(all);
    lm_loader_close(ld);
    memsrc_free(m);
}

/* close while workers are blocked on a full ring, while they are busy
 * mid-batch, and before any epoch; restart an epoch in the middle. */
static void test_shutdown_and_restart_mid_epoch(void **state) {
    (void)state;
    memsrc *m = memsrc_new(200, 1, 16, 16);
    lm_loader_cfg cfg = {.batch = 4, .shuffle = 1, .seed = 5, .threads = 3, .depth = 3};
    lm_loader *ld = open_or_fail(m, &cfg);
    lm_loader_close(ld); /* never started */

    ld = open_or_fail(m, &cfg);
    lm_loader_start_epoch(ld, 0);
    lm_batch b;
    lm_err e = {0};
    assert_int_equal(lm_loader_next(ld, &b, &e), 0);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL); /* ring fills up, workers block */
    lm_loader_close(ld);

    m->sleep_ns = 2 * 1000 * 1000; /* 2 ms per sample: workers stay busy */
    ld = open_or_fail(m, &cfg);
    lm_loader_start_epoch(ld, 0);
    assert_int_equal(lm_loader_next(ld, &b, &e), 0);
    lm_loader_start_epoch(ld, 1); /* restart while workers are mid-batch */
    lm_loader_start_epoch(ld, 1);
    m->sleep_ns = 0;
    run_epoch(ld, m, &cfg, 1, NULL); /* still a complete, correct epoch */
    m->sleep_ns = 2 * 1000 * 1000;
    lm_loader_start_epoch(ld, 2);
    lm_loader_close(ld); /* close while workers are mid-batch */
    memsrc_free(m);
}

static void test_bad_record_reported(void **state) {
    (void)state;
    memsrc *m = memsrc_new(30, 1, 5, 5);
    m->bad = m->split[7];
    lm_loader_cfg cfg = {.batch = 4, .shuffle = 0, .threads = 2};
    lm_loader *ld = open_or_fail(m, &cfg);
    lm_loader_start_epoch(ld, 0);
    lm_batch b;
    lm_err e = {0};
    int rc;
    while ((rc = lm_loader_next(ld, &b, &e)) == 0 && b.n > 0)
        ;
    assert_int_equal(rc, LUMEN_EDATA);
    char want[64];
    snprintf(want, sizeof want, "record %u", (unsigned)m->bad);
    assert_non_null(strstr(e.msg, want));
    /* a restarted epoch without the fault works */
    m->bad = UINT32_MAX;
    run_epoch(ld, m, &cfg, 1, NULL);
    lm_loader_close(ld);
    memsrc_free(m);
}

static void test_bad_config_names_field(void **state) {
    (void)state;
    memsrc *m = memsrc_new(10, 1, 4, 6); /* not square */
    lm_loader_source s = source_of(m);
    lm_loader *ld = (lm_loader *)&s; /* must be reset to NULL */
    lm_err e = {0};
    lm_loader_cfg cfg = {.batch = 0, .threads = 1};
    assert_int_equal(lm_loader_open_source(&s, &cfg, &ld, &e), LUMEN_EINVAL);
    assert_null(ld);
    assert_non_null(strstr(e.msg, "batch"));
    lm_err_clear(&e);
    cfg.batch = 2;
    cfg.threads = 0;
    assert_int_equal(lm_loader_open_source(&s, &cfg, &ld, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "threads"));
    lm_err_clear(&e);
    cfg.threads = 1;
    lm_policy pol;
    lm_policy_default(&pol);
    pol.rotate90 = 1;
    cfg.policy = &pol;
    assert_int_equal(lm_loader_open_source(&s, &cfg, &ld, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "rotate90"));
    lm_err_clear(&e);
    const float bad_std[1] = {0};
    cfg.policy = NULL;
    cfg.std = bad_std;
    assert_int_equal(lm_loader_open_source(&s, &cfg, &ld, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "std[0]"));
    memsrc_free(m);
}

/* Through a real LMDB dataset: only the requested split is visited, pixels
 * and labels come from the records. */
static void test_loader_over_lmdb_dataset(void **state) {
    (void)state;
    char tmpl[] = "/tmp/lumen-loader-XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    const char *labels[] = {"crack", "inactive"};
    lm_dataset_spec spec = {.height = 12, .width = 12, .channels = 1, .nlabels = 2,
                            .labels = labels};
    lm_dataset_writer *w = NULL;
    lm_err e = {0};
    if (lm_dataset_create(dir, &spec, &w, &e))
        fail_msg("create: %s", e.msg);
    uint8_t px[144];
    for (int i = 0; i < 37; i++) {
        for (int j = 0; j < 144; j++)
            px[j] = (uint8_t)(i * 7 + j);
        float lab[2] = {(float)(i % 2), (float)i};
        char name[32];
        snprintf(name, sizeof name, "img%02d.png", i);
        lm_record r = {.h = 12, .w = 12, .c = 1, .split = i % 4 == 0 ? LM_SPLIT_VAL : LM_SPLIT_TRAIN,
                       .nlabels = 2, .labels = lab, .name = name, .meta = "", .pixels = px};
        if (lm_dataset_put(w, &r, &e))
            fail_msg("put: %s", e.msg);
    }
    if (lm_dataset_finish(w, NULL, &e))
        fail_msg("finish: %s", e.msg);
    lm_dataset *ds = NULL;
    if (lm_dataset_open(dir, &ds, &e))
        fail_msg("open: %s", e.msg);

    for (int split = 0; split < 2; split++) {
        lm_policy pol = busy_policy();
        const float mean = 0.5f, sd = 0.25f;
        lm_loader_cfg cfg = {.split = split, .batch = 4, .shuffle = split == 0,
                             .drop_last = 0, .seed = 3, .policy = split == 0 ? &pol : NULL,
                             .mean = &mean, .std = &sd, .threads = 2};
        lm_loader *ld = NULL;
        if (lm_loader_open(ds, &cfg, &ld, &e))
            fail_msg("loader: %s", e.msg);
        size_t want_n = split == 0 ? 27 : 10;
        assert_int_equal(lm_loader_count(ld), want_n);
        lm_loader_start_epoch(ld, 1);
        lm_batch b;
        size_t seen = 0;
        float img[144];
        while (lm_loader_next(ld, &b, &e) == 0 && b.n > 0)
            for (int j = 0; j < b.n; j++, seen++) {
                uint32_t i = b.index[j];
                assert_int_equal(i % 4 == 0, split == LM_SPLIT_VAL);
                assert_true(b.y[2 * j + 1] == (float)i);
                lm_record r;
                assert_int_equal(lm_dataset_get(ds, i, &r), 0);
                nn_aug_params p;
                if (split == 0)
                    lm_policy_draw(&pol, 3, 1, i, 12, 12, &p);
                else
                    nn_aug_params_identity(&p);
                assert_int_equal(nn_aug_apply(r.pixels, 1, 12, 12, &p, &mean, &sd, img), 0);
                assert_memory_equal(b.x + j * 144, img, sizeof img);
            }
        assert_int_equal(seen, want_n);
        lm_loader_close(ld);
    }
    lm_loader_cfg bad = {.split = 2, .batch = 1, .threads = 1};
    lm_loader *ld = NULL;
    lm_err_clear(&e);
    assert_int_equal(lm_loader_open(ds, &bad, &ld, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "split"));
    lm_dataset_close(ds);
    assert_int_equal(lm_rmtree(dir, &e), 0);
}

/* ---- policy ------------------------------------------------------------------ */

static void test_policy_json_round_trip_and_errors(void **state) {
    (void)state;
    lm_policy p = busy_policy(), q;
    p.fill = NN_AUG_FILL_CONSTANT;
    p.fill_value = 0.25;
    char *text = lm_policy_to_json(&p);
    assert_non_null(text);
    lm_err e = {0};
    assert_int_equal(lm_policy_from_json(text, "x/policy.json", &q, &e), 0);
    assert_memory_equal(&p, &q, sizeof p);
    free(text);

    const char *bad[][2] = {
        {"{\"version\":1}", "hflip"},
        {"{\"version\":2}", "version 2"},
        {"[1]", "not a JSON object"},
        {"{\"version\":1,\"hflip\":false,\"vflip\":false,\"rotate90\":false,\"rotate\":90,"
         "\"translate\":0,\"contrast\":0,\"brightness\":0,\"gamma\":0,\"p\":1,"
         "\"fill\":\"mean\",\"fill_value\":0}",
         "\"rotate\""},
        {"{\"version\":1,\"hflip\":false,\"vflip\":false,\"rotate90\":false,\"rotate\":0,"
         "\"translate\":0,\"contrast\":0,\"brightness\":0,\"gamma\":0,\"p\":1,"
         "\"fill\":\"mean\",\"fill_value\":0,\"rotat\":3}",
         "unknown key \"rotat\""},
        {"{\"version\":1,\"hflip\":false,\"vflip\":false,\"rotate90\":false,\"rotate\":0,"
         "\"translate\":0,\"contrast\":0,\"brightness\":0,\"gamma\":0,\"p\":1,"
         "\"fill\":\"zero\",\"fill_value\":0}",
         "\"fill\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lm_err_clear(&e);
        assert_int_not_equal(lm_policy_from_json(bad[i][0], "x/policy.json", &q, &e), 0);
        if (!strstr(e.msg, bad[i][1]) || !strstr(e.msg, "x/policy.json"))
            fail_msg("case %zu: message '%s' lacks '%s'", i, e.msg, bad[i][1]);
    }
    lm_err_clear(&e);
    assert_int_equal(lm_policy_load("/nonexistent/policy.json", &q, &e), LUMEN_ENOTFOUND);
}

static void test_policy_draw_ranges_and_independence(void **state) {
    (void)state;
    lm_policy p = busy_policy();
    p.p = 1;
    int dihedral_seen = 0;
    for (uint64_t i = 0; i < 400; i++) {
        nn_aug_params a;
        lm_policy_draw(&p, 1, 0, i, 100, 50, &a);
        assert_int_equal(nn_aug_params_check(&a), 0);
        assert_true(fabs(a.angle_deg) <= 10);
        assert_true(fabs(a.dx) <= 5 && a.dx == floor(a.dx));   /* 0.1 * w = 5 */
        assert_true(fabs(a.dy) <= 10 && a.dy == floor(a.dy));  /* 0.1 * h = 10 */
        assert_true(a.contrast >= 0.8 && a.contrast <= 1.2);
        assert_true(fabs(a.brightness) <= 0.1);
        assert_true(a.gamma >= exp(-0.2) && a.gamma <= exp(0.2));
        dihedral_seen |= 1 << a.dihedral;
    }
    assert_int_equal(dihedral_seen, 0xff); /* flips + rot90 reach all 8 */
    /* switching one transform off leaves the other draws unchanged */
    lm_policy q = p;
    q.rotate = 0;
    nn_aug_params a, b;
    lm_policy_draw(&p, 1, 2, 3, 64, 64, &a);
    lm_policy_draw(&q, 1, 2, 3, 64, 64, &b);
    assert_true(b.angle_deg == 0);
    assert_true(a.dx == b.dx && a.contrast == b.contrast && a.gamma == b.gamma &&
                a.dihedral == b.dihedral);
    /* p = 0: never augmented */
    q.p = 0;
    for (uint64_t i = 0; i < 50; i++) {
        lm_policy_draw(&q, 1, 0, i, 8, 8, &a);
        assert_true(a.dihedral == 0 && a.angle_deg == 0 && a.dx == 0 && a.contrast == 1 &&
                    a.gamma == 1 && a.brightness == 0);
    }
    /* draws depend on epoch and index */
    lm_policy_draw(&p, 1, 0, 5, 64, 64, &a);
    lm_policy_draw(&p, 1, 1, 5, 64, 64, &b);
    assert_true(a.angle_deg != b.angle_deg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once_and_pixels_match_kernel),
        cmocka_unit_test(test_same_seed_same_bits_any_thread_count),
        cmocka_unit_test(test_epochs_and_seeds_change_order),
        cmocka_unit_test(test_eval_order_and_last_partial_batch),
        cmocka_unit_test(test_resume_mid_epoch_matches),
        cmocka_unit_test(test_shutdown_and_restart_mid_epoch),
        cmocka_unit_test(test_bad_record_reported),
        cmocka_unit_test(test_bad_config_names_field),
        cmocka_unit_test(test_loader_over_lmdb_dataset),
        cmocka_unit_test(test_policy_json_round_trip_and_errors),
        cmocka_unit_test(test_policy_draw_ranges_and_independence),
    };
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
