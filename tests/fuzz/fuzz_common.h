/*
 * fuzz_common.h -- shared pieces of the libFuzzer harnesses (tests/fuzz/).
 *
 * Header-only on purpose: each harness is one translation unit linked with
 * every archive of the fuzz build (make fuzz-build).
 *
 *   fuzz_tmpdir()       a private folder under $TMPDIR (removed at exit)
 *   fuzz_registry()     the built-in stages, registered in-process from the
 *                       stage archives (no dlopen, no probe children), so
 *                       the planner and the stages' check()/key() callbacks
 *                       are instrumented like the rest.  ingest's key() reads
 *                       the label file and stats the images; a fuzzed
 *                       experiment may name any path (/dev/zero), so outside
 *                       fuzz_data_dir() the wrapper keys the path's text.
 *   fuzz_data_dir()     a tiny labelled set (labels.csv, data.csv, two
 *                       4x4 PNGs) made at start-up; LUMEN_DATA points at it.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "lm_util.h"
#include "plan.h" /* and through it the runner's plugin registry (rn_registry) */

extern const lumen_stage ingest_stage, nstats_stage, augment_stage, augment_materialize_stage, train_stage,
    validate_stage;

static char fuzz_dir_[512];

static inline void fuzz_cleanup_(void) {
    if (!fuzz_dir_[0]) return;
    lm_err e = {0};
    lm_rmtree(fuzz_dir_, &e);
    fuzz_dir_[0] = 0;
}

/* A private folder, made once; its path stays valid for the process. */
static inline const char *fuzz_tmpdir(void) {
    if (fuzz_dir_[0]) return fuzz_dir_;
    const char *t = getenv("TMPDIR");
    snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/lumen-fuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(fuzz_dir_)) {
        FUZZ_FAIL("fuzz: mkdtemp %s failed", fuzz_dir_);
    }
    atexit(fuzz_cleanup_);
    return fuzz_dir_;
}

/* Writes len bytes to path (truncating); aborts on failure: a harness
 * that cannot write its scratch file is broken, not the code under test. */
static inline void fuzz_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        FUZZ_FAIL("fuzz: cannot write %s", path);
    }
}

static inline void fuzz_png4_(const char *path, uint8_t v) {
    uint8_t px[16];
    for (int i = 0; i < 16; i++) px[i] = (uint8_t)(v + 7 * i);
    spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
    struct spng_ihdr ih = {.width = 4, .height = 4, .bit_depth = 8, .color_type = SPNG_COLOR_TYPE_GRAYSCALE};
    FILE *f = fopen(path, "wb");
    if (!c || !f || spng_set_png_file(c, f) || spng_set_ihdr(c, &ih) ||
        spng_encode_image(c, px, sizeof px, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE)) {
        FUZZ_FAIL("fuzz: cannot write %s", path);
    }
    spng_ctx_free(c);
    fclose(f);
}

static char fuzz_data_[600];

/* The tiny labelled set (see above); sets LUMEN_DATA to it. */
static inline const char *fuzz_data_dir(void) {
    if (fuzz_data_[0]) return fuzz_data_;
    snprintf(fuzz_data_, sizeof fuzz_data_, "%s/data", fuzz_tmpdir());
    char p[700];
    lm_err e = {0};
    snprintf(p, sizeof p, "%s/images", fuzz_data_);
    if (lm_mkdirs(p, &e)) {
        FUZZ_FAIL("fuzz: %s", e.msg);
    }
    snprintf(p, sizeof p, "%s/images/cell0001.png", fuzz_data_);
    fuzz_png4_(p, 10);
    snprintf(p, sizeof p, "%s/images/cell0002.png", fuzz_data_);
    fuzz_png4_(p, 100);
    static const char labels[] = "images/cell0001.png  1.0  mono\nimages/cell0002.png  0.0  poly\n";
    static const char data[] = "filename;crack;inactive\nimages/cell0001.png;1;0\nimages/cell0002.png;0;0\n";
    snprintf(p, sizeof p, "%s/labels.csv", fuzz_data_);
    fuzz_write(p, labels, sizeof labels - 1);
    snprintf(p, sizeof p, "%s/data.csv", fuzz_data_);
    fuzz_write(p, data, sizeof data - 1);
    setenv("LUMEN_DATA", fuzz_data_, 1);
    return fuzz_data_;
}

/* ingest's key() only below the fuzz data folder (see above). */
static inline int fuzz_ingest_key_(lumen_ctx *ctx, const lumen_host *h) {
    const char *csv = h->get_str(ctx, "csv");
    const char *ex = h->is_set(ctx, "exclude") ? h->get_str(ctx, "exclude") : NULL;
    size_t n = strlen(fuzz_data_);
    int inside = csv && n && strncmp(csv, fuzz_data_, n) == 0 && !strstr(csv, "..") &&
                 (!ex || !*ex || (strncmp(ex, fuzz_data_, n) == 0 && !strstr(ex, "..")));
    if (inside) return ingest_stage.key(ctx, h);
    if (csv) h->key_add(ctx, csv, strlen(csv));
    return LUMEN_OK;
}

/* The built-in stages as a registry (rn_registry_find / rn_plan_build
 * read only stages, n_stages and refused). */
static inline const rn_registry *fuzz_registry(void) {
    static lumen_stage ingest;
    static rn_stage_ref refs[6];
    static rn_registry reg;
    if (reg.n_stages) return &reg;
    fuzz_data_dir();
    ingest = ingest_stage;
    ingest.key = fuzz_ingest_key_;
    const lumen_stage *all[] = {&ingest, &nstats_stage, &augment_stage, &augment_materialize_stage, &train_stage,
                                &validate_stage};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char why[512];
        if (rn_stage_check(all[i], why, sizeof why)) {
            FUZZ_FAIL("fuzz: built-in stage %s refused: %s", all[i]->name, why);
        }
        refs[i].desc = all[i];
        refs[i].path = "(built in)";
    }
    reg.stages = refs;
    reg.n_stages = sizeof all / sizeof all[0];
    return &reg;
}

#endif /* FUZZ_COMMON_H */
