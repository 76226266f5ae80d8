/*
 * fuzz_labels.c -- the label-file parser (csvparse.h) that ingest, validate
 * on an external CSV and `runner predict --csv` read.
 *
 * Input: one option byte, then the file's bytes.  The option byte picks the
 * format (auto / csv / elpv), names_only, and the ELPV threshold.  Beyond
 * the sanitizers, every table that parses is checked against the header's
 * promises: label values are 0 or 1, every row's path passes
 * lm_labels_path_problem, no path twice, line numbers ascend, and the
 * problems collector counts at least bad_rows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvparse.h"
#include "problems.h"
#include "fuzz_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t opt = data[0];
    static const double thresholds[4] = {0.5, 0.0, 1.0, 1.0 / 3.0};
    lm_labels_opts o = {.format = opt % 3, .threshold = thresholds[(opt >> 2) & 3], .names_only = (opt >> 4) & 1};
    /* an unterminated copy, so reading past len is caught */
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text) return 0;
    memcpy(text, data + 1, len);
    lm_problems probs;
    lm_problems_init(&probs);
    lm_label_table t;
    lm_err e = {0};
    int rc = lm_labels_parse("fuzz.csv", text, len, &o, &t, &probs, &e);
    if (rc == 0) {
        CHECK(t.format == LM_LABELS_CSV || t.format == LM_LABELS_ELPV);
        CHECK(o.names_only ? t.nlabels == 0 || t.format == LM_LABELS_ELPV : t.nlabels >= 1);
        CHECK(probs.count >= t.bad_rows);
        for (size_t i = 0; i < t.nlabels; i++) CHECK(t.label_names[i] != NULL);
        for (size_t r = 0; r < t.nrows; r++) {
            CHECK(t.rows[r].name && lm_labels_path_problem(t.rows[r].name) == NULL);
            CHECK(t.rows[r].line >= 1);
            if (r) CHECK(t.rows[r].line > t.rows[r - 1].line);
            for (size_t k = 0; k < t.nlabels && t.values; k++) {
                float v = t.values[r * t.nlabels + k];
                CHECK(v == 0.0f || v == 1.0f);
            }
        }
        /* duplicates are a row problem: what is left is distinct (small tables) */
        for (size_t a = 0; a < t.nrows && t.nrows <= 256; a++)
            for (size_t b = a + 1; b < t.nrows; b++) CHECK(strcmp(t.rows[a].name, t.rows[b].name) != 0);
        lm_labels_free(&t);
    } else {
        CHECK(e.msg[0] != 0);
        CHECK(t.nrows == 0 && t.rows == NULL);
    }
    char buf[2048];
    lm_problems_report(&probs, "fuzz.csv", buf, sizeof buf);
    CHECK(memchr(buf, 0, sizeof buf) != NULL);
    lm_problems_free(&probs);
    free(text);
    return 0;
}
