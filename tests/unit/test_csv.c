/* Unit tests for stages/common/csvparse.c: the ';' CSV and ELPV label files;
 * and groups.c, the image groups read from them (crossval `groups`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvparse.h"
#include "groups.h"
#include "harness.h"

typedef struct parsed {
    lm_label_table t;
    lm_problems p;
    lm_err e;
    int rc;
} parsed;

static parsed *parse(const char *text, int format) {
    parsed *r = calloc(1, sizeof *r);
    lm_labels_opts o = {.format = format, .threshold = 0.5};
    r->rc = lm_labels_parse("t.csv", text, strlen(text), &o, &r->t, &r->p, &r->e);
    return r;
}

static void done(parsed *r) {
    lm_labels_free(&r->t);
    lm_problems_free(&r->p);
    free(r);
}

/* Is there a kept problem containing all of a and b? */
static int has_problem(const parsed *r, const char *a, const char *b) {
    for (size_t i = 0; i < r->p.kept; i++)
        if (strstr(r->p.msg[i], a) && (!b || strstr(r->p.msg[i], b))) return 1;
    return 0;
}

static void test_basic_csv(void **s) {
    (void)s;
    parsed *r = parse("filename;crack;inactive\nimages/a.png;1;0\nimages/b.png;0;1\n", 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->t.format, LM_LABELS_CSV);
    assert_int_equal(r->t.nlabels, 2);
    assert_string_equal(r->t.label_names[0], "crack");
    assert_string_equal(r->t.label_names[1], "inactive");
    assert_int_equal(r->t.nrows, 2);
    assert_string_equal(r->t.rows[0].name, "images/a.png");
    assert_int_equal(r->t.rows[0].line, 2);
    assert_int_equal(r->t.rows[1].line, 3);
    assert_null(r->t.rows[0].meta);
    assert_true(r->t.values[0] == 1.0f && r->t.values[1] == 0.0f);
    assert_true(r->t.values[2] == 0.0f && r->t.values[3] == 1.0f);
    assert_int_equal(r->p.count, 0);
    done(r);
}

static void test_quotes_bom_crlf(void **s) {
    (void)s;
    const char *text = "\xEF\xBB\xBF"
                       "filename;\"crack\";inactive\r\n"
                       "\"dir;x/a \"\"q\"\".png\";1;\"0\"\r\n"
                       "  b.png ; 0 ;1\r\n"
                       "\"multi\nline.png\";0;0\r\n"
                       "\r\n";
    parsed *r = parse(text, 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->p.count, 0);
    assert_int_equal(r->t.nrows, 3);
    assert_string_equal(r->t.label_names[0], "crack");
    assert_string_equal(r->t.rows[0].name, "dir;x/a \"q\".png");
    assert_true(r->t.values[0] == 1.0f && r->t.values[1] == 0.0f);
    assert_string_equal(r->t.rows[1].name, "b.png"); /* unquoted fields trimmed */
    assert_true(r->t.values[3] == 1.0f);
    assert_string_equal(r->t.rows[2].name, "multi\nline.png");
    assert_int_equal(r->t.rows[2].line, 4);
    done(r);
}

static void test_short_long_rows_and_bad_labels(void **s) {
    (void)s;
    const char *text = "filename;crack;inactive\n"
                       "a.png;1\n"         /* line 2: short */
                       "b.png;1;0;1\n"     /* line 3: long */
                       "c.png;2;0\n"       /* line 4: bad label */
                       "d.png;yes;0\n"     /* line 5: bad label */
                       ";1;0\n"            /* line 6: empty filename */
                       "e.png;0;1\n"       /* line 7: fine */
                       "e.png;1;1\n"       /* line 8: duplicate */
                       "/abs/f.png;0;0\n"  /* line 9: absolute */
                       "g/../../h.png;0;0\n" /* line 10: escapes */
                       "\"x.png\"junk;0;0\n"; /* line 11: text after quote */
    parsed *r = parse(text, 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->t.nrows, 1);
    assert_string_equal(r->t.rows[0].name, "e.png");
    assert_int_equal(r->t.bad_rows, 9);
    assert_int_equal(r->p.count, 9);
    assert_true(has_problem(r, "t.csv:2:", "expected 3 fields"));
    assert_true(has_problem(r, "t.csv:2:", "got 2"));
    assert_true(has_problem(r, "t.csv:3:", "got 4"));
    assert_true(has_problem(r, "t.csv:4:", "'2'"));
    assert_true(has_problem(r, "t.csv:5:", "must be 0 or 1"));
    assert_true(has_problem(r, "t.csv:6:", "empty filename"));
    assert_true(has_problem(r, "t.csv:8:", "duplicate"));
    assert_true(has_problem(r, "t.csv:8:", "line 7"));
    assert_true(has_problem(r, "t.csv:9:", "absolute"));
    assert_true(has_problem(r, "t.csv:10:", "escapes"));
    assert_true(has_problem(r, "t.csv:11:", "closing quote"));
    done(r);
}

static void test_unterminated_quote(void **s) {
    (void)s;
    parsed *r = parse("filename;crack\na.png;1\n\"b.png;1\nc.png;0\n", LM_LABELS_CSV);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->t.nrows, 1);
    assert_true(has_problem(r, "t.csv:3:", "unterminated"));
    done(r);
}

static void test_empty_and_header_only(void **s) {
    (void)s;
    parsed *r = parse("", 0);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "t.csv"));
    assert_non_null(strstr(r->e.msg, "empty"));
    done(r);
    r = parse("\xEF\xBB\xBF\r\n\n", LM_LABELS_CSV);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "empty"));
    done(r);
    r = parse("filename;crack;inactive\r\n\r\n", 0);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "t.csv"));
    assert_non_null(strstr(r->e.msg, "no data rows"));
    done(r);
}

static void test_bad_header(void **s) {
    (void)s;
    parsed *r = parse("name;crack\na.png;1\n", 0);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "t.csv:1:"));
    assert_non_null(strstr(r->e.msg, "filename"));
    done(r);
    r = parse("filename\na.png\n", LM_LABELS_CSV);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "label column"));
    done(r);
    r = parse("filename;crack;crack\na.png;1;1\n", 0);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "duplicate label 'crack'"));
    done(r);
}

/* Encodes ASCII text as UTF-16 or UTF-32 (LE or BE), with or without a
 * byte order mark; *len receives the byte count. */
static char *encode(const char *ascii, int width, int big, int bom, size_t *len) {
    size_t n = strlen(ascii) + (bom ? 1 : 0);
    char *out = calloc(n, (size_t)width);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        unsigned c = bom && i == 0 ? 0xFEFFu : (unsigned char)ascii[i - (bom ? 1 : 0)];
        for (int b = 0; b < width; b++) {
            int shift = 8 * (big ? width - 1 - b : b);
            out[i * (size_t)width + (size_t)b] = (char)((c >> shift) & 0xFF);
        }
    }
    *len = n * (size_t)width;
    return out;
}

/* A label file saved as UTF-16/32 (Excel's "Unicode text", PowerShell's
 * default) or a binary file is named for what it is, not reported as a
 * garbled header. */
static void test_utf16_and_binary_files(void **s) {
    (void)s;
    const char *csv = "filename;crack\r\nimg/a.png;1\r\nimg/b.png;0\r\n";
    lm_labels_opts o = {.format = LM_LABELS_AUTO, .threshold = 0.5};
    for (int width = 2; width <= 4; width += 2)
        for (int big = 0; big < 2; big++)
            for (int bom = 0; bom < 2; bom++) {
                size_t len;
                char *text = encode(csv, width, big, bom, &len);
                lm_label_table t;
                lm_problems p;
                lm_problems_init(&p);
                lm_err e = {0};
                assert_int_equal(lm_labels_parse("u.csv", text, len, &o, &t, &p, &e), LUMEN_EDATA);
                const char *want = width == 2 ? "u.csv: looks like UTF-16 text; save it as UTF-8"
                                              : "u.csv: looks like UTF-32 text; save it as UTF-8";
                if (strcmp(e.msg, want) != 0)
                    print_error("width %d big %d bom %d: %s\n", width, big, bom, e.msg);
                assert_string_equal(e.msg, want);
                lm_problems_free(&p);
                free(text);
            }
    /* a NUL byte elsewhere: binary data, with the line it is on */
    static const char bin[] = "filename;crack\nimg/a.png;1\nimg/\0b.png;0\n";
    lm_label_table t;
    lm_problems p;
    lm_problems_init(&p);
    lm_err e = {0};
    assert_int_equal(lm_labels_parse("b.csv", bin, sizeof bin - 1, &o, &t, &p, &e), LUMEN_EDATA);
    assert_string_equal(e.msg, "b.csv: not a text file (NUL byte at line 3)");
    lm_problems_free(&p);
    /* a PNG given as the label file */
    static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    lm_problems_init(&p);
    lm_err_clear(&e);
    assert_int_equal(lm_labels_parse("x.png", png, sizeof png - 1, &o, &t, &p, &e), LUMEN_EDATA);
    assert_string_equal(e.msg, "x.png: not a text file (NUL byte at line 3)");
    lm_problems_free(&p);
    /* UTF-8 with a BOM is still fine */
    parsed *r = parse("\xEF\xBB\xBF" "filename;crack\nimg/\xC3\xA9.png;1\n", 0);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->t.rows[0].name, "img/\xC3\xA9.png");
    done(r);
}

static void test_elpv(void **s) {
    (void)s;
    const char *text = "images/cell0001.png  1.0                 mono\n"
                       "images/cell0002.png  0.3333333333333333  poly\r\n"
                       "images/cell0003.png\t0.6666666666666666\tmono\n"
                       "\n"
                       "images/cell0004.png  0.5  poly\n";
    parsed *r = parse(text, 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->t.format, LM_LABELS_ELPV);
    assert_int_equal(r->t.nlabels, 1);
    assert_string_equal(r->t.label_names[0], "defective");
    assert_int_equal(r->t.nrows, 4);
    assert_true(r->t.values[0] == 1.0f);
    assert_true(r->t.values[1] == 0.0f);
    assert_true(r->t.values[2] == 1.0f);
    assert_true(r->t.values[3] == 1.0f); /* 0.5 >= 0.5 */
    assert_string_equal(r->t.rows[1].meta, "type=poly;prob=0.3333333333333333");
    assert_string_equal(r->t.rows[0].meta, "type=mono;prob=1.0");
    assert_int_equal(r->t.rows[3].line, 5);
    done(r);

    /* threshold moves the decision */
    lm_labels_opts o = {.format = LM_LABELS_ELPV, .threshold = 0.3};
    lm_label_table t;
    lm_problems p = {0};
    lm_err e = {0};
    assert_int_equal(lm_labels_parse("t.csv", text, strlen(text), &o, &t, &p, &e), 0);
    assert_true(t.values[1] == 1.0f);
    lm_labels_free(&t);
    lm_problems_free(&p);
}

static void test_elpv_bad_rows(void **s) {
    (void)s;
    const char *text = "a.png 1.0 mono\n"
                       "b.png 1.5 mono\n"      /* 2: out of range */
                       "c.png abc mono\n"      /* 3: not a number */
                       "d.png 0.0\n"           /* 4: 2 fields */
                       "../e.png 0.0 mono\n"   /* 5: escapes */
                       "f.png 0 poly extra\n"; /* 6: 4 fields */
    parsed *r = parse(text, LM_LABELS_ELPV);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->t.nrows, 1);
    assert_int_equal(r->p.count, 5);
    assert_true(has_problem(r, "t.csv:2:", "[0,1]"));
    assert_true(has_problem(r, "t.csv:3:", "'abc'"));
    assert_true(has_problem(r, "t.csv:4:", "got 2"));
    assert_true(has_problem(r, "t.csv:5:", "escapes"));
    assert_true(has_problem(r, "t.csv:6:", "got 4"));
    done(r);
}

static void test_detect_fails_on_garbage(void **s) {
    (void)s;
    parsed *r = parse("hello world\n", 0);
    assert_int_equal(r->rc, LUMEN_EDATA);
    assert_non_null(strstr(r->e.msg, "t.csv:1:"));
    assert_non_null(strstr(r->e.msg, "format"));
    done(r);
}

static void test_path_rules(void **s) {
    (void)s;
    assert_null(lm_labels_path_problem("images/a.png"));
    assert_null(lm_labels_path_problem("a..b/c.png"));
    assert_null(lm_labels_path_problem("./a.png"));
    assert_non_null(lm_labels_path_problem(""));
    assert_non_null(lm_labels_path_problem("/etc/passwd"));
    assert_non_null(lm_labels_path_problem(".."));
    assert_non_null(lm_labels_path_problem("a/../../b.png"));
    assert_non_null(lm_labels_path_problem("a/.."));
}

static void test_problem_report_keeps_count(void **s) {
    (void)s;
    lm_problems p = {0};
    for (int i = 0; i < 25; i++) lm_problems_add(&p, i + 2, "f.csv:%d: problem number %d", i + 2, i);
    assert_int_equal(p.count, 25);
    assert_int_equal(p.kept, LM_PROBLEMS_KEEP);
    char buf[200];
    lm_problems_report(&p, "bad input", buf, sizeof buf);
    assert_non_null(strstr(buf, "25 problems"));
    assert_non_null(strstr(buf, "f.csv:2:"));
    assert_non_null(strstr(buf, "more"));
    char big[4096];
    lm_problems_report(&p, "bad input", big, sizeof big);
    assert_non_null(strstr(big, "f.csv:11:"));
    assert_null(strstr(big, "f.csv:12:"));
    assert_non_null(strstr(big, "and 15 more"));
    /* found later but on an earlier line: kept, reported in line order */
    lm_problems_add(&p, 1, "f.csv:1: late find");
    assert_int_equal(p.count, 26);
    lm_problems_report(&p, "bad input", big, sizeof big);
    char *l1 = strstr(big, "f.csv:1: late"), *l2 = strstr(big, "f.csv:2:");
    assert_non_null(l1);
    assert_non_null(l2);
    assert_true(l1 < l2);
    assert_null(strstr(big, "f.csv:11:")); /* evicted */
    assert_non_null(strstr(big, "and 16 more"));
    lm_problems_free(&p);
}

/* text_column: the named column kept as each row's meta, others ignored */
static void test_text_column(void **s) {
    (void)s;
    const char *text = "filename;line;crack\na.png;L1;1\nb.png;L2;0\nc.png;;1\nd.png;L1\n";
    lm_labels_opts o = {.format = LM_LABELS_AUTO, .text_column = "line"};
    lm_label_table t;
    lm_problems p = {0};
    lm_err e = {0};
    assert_int_equal(lm_labels_parse("t.csv", text, strlen(text), &o, &t, &p, &e), 0);
    assert_int_equal(t.nrows, 2);
    assert_int_equal(t.nlabels, 0);
    assert_string_equal(t.rows[0].meta, "L1");
    assert_string_equal(t.rows[1].name, "b.png");
    assert_string_equal(t.rows[1].meta, "L2");
    assert_int_equal(t.bad_rows, 2); /* an empty value, a short row */
    assert_true(p.kept == 2 && strstr(p.msg[0], "t.csv:4: empty 'line'") && strstr(p.msg[1], "t.csv:5: expected 3"));
    lm_labels_free(&t);
    lm_problems_free(&p);
    o.text_column = "camera";
    assert_int_equal(lm_labels_parse("t.csv", text, strlen(text), &o, &t, &p, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "t.csv:1: no column 'camera' in the header (columns: line, crack)"));
    lm_problems_free(&p);
}

static char *write_tmp(const char *dir, const char *name, const char *text) {
    char *path = hx_join(dir, name);
    hx_write(path, text);
    return path;
}

static void test_groups_elpv_and_csv(void **s) {
    (void)s;
    char *dir = hx_tmpdir();
    char *elpv = write_tmp(dir, "labels.csv",
                           "images/c2.png  1.0  poly\nimages/c1.png  0.0  mono\nimages/c3.png  0.3333333333333333  poly\n");
    lm_groups g;
    lm_err e = {0};
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(elpv, NULL, &g, &e), 0);
    assert_string_equal(g.column, "type");
    assert_int_equal(g.ngroups, 2); /* numbered in order of appearance */
    assert_string_equal(g.group[0], "poly");
    assert_string_equal(g.group[1], "mono");
    assert_int_equal(g.n, 3);
    assert_int_equal(lm_groups_find(&g, "images/c1.png"), 1);
    assert_int_equal(lm_groups_find(&g, "images/c2.png"), 0);
    assert_int_equal(lm_groups_find(&g, "images/c3.png"), 0);
    assert_int_equal(lm_groups_find(&g, "images/c4.png"), -1);
    assert_int_equal(lm_groups_find(&g, "c1.png"), -1); /* paths as written */
    lm_groups_free(&g);
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(elpv, "probability", &g, &e), 0);
    assert_int_equal(g.ngroups, 3);
    assert_string_equal(g.group[lm_groups_find(&g, "images/c3.png")], "0.3333333333333333"); /* as written */
    lm_groups_free(&g);
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(elpv, "line", &g, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "\"type\" or \"probability\", not 'line'"));

    char *csv = write_tmp(dir, "lines.csv", "filename;line;camera\na.png;L1;x\nb.png;L2;y\nc.png;L1;y\n");
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(csv, NULL, &g, &e), 0); /* default: the second column */
    assert_string_equal(g.column, "line");
    assert_int_equal(g.ngroups, 2);
    assert_int_equal(lm_groups_find(&g, "c.png"), lm_groups_find(&g, "a.png"));
    assert_int_not_equal(lm_groups_find(&g, "b.png"), lm_groups_find(&g, "a.png"));
    lm_groups_free(&g);
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(csv, "camera", &g, &e), 0);
    assert_int_equal(lm_groups_find(&g, "c.png"), lm_groups_find(&g, "b.png"));
    lm_groups_free(&g);
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(csv, "lens", &g, &e), LUMEN_EDATA);
    if (!strstr(e.msg, "no column 'lens' in the header (columns: line, camera)")) fail_msg("%s", e.msg);
    free(elpv);
    free(csv);
    hx_rmtree(dir);
    free(dir);
}

/* a half-read file would mislead: a bad row fails, named; so do too many
 * groups, a missing file, a duplicate path */
static void test_groups_errors(void **s) {
    (void)s;
    char *dir = hx_tmpdir();
    lm_groups g;
    lm_err e = {0};
    char *bad = write_tmp(dir, "bad.csv", "a.png 0.0 mono\nb.png 2.0 poly\n");
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(bad, NULL, &g, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "bad.csv: 1 bad row(s) for groups; the first: "));
    assert_non_null(strstr(e.msg, "bad.csv:2: probability"));
    char *dup = write_tmp(dir, "dup.csv", "filename;line\na.png;L1\na.png;L2\n");
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(dup, NULL, &g, &e), LUMEN_EDATA);
    if (!strstr(e.msg, "dup.csv:3")) fail_msg("%s", e.msg);
    char text[2048] = "filename;id\n";
    for (int i = 0; i <= LM_GROUPS_MAX; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "c%d.png;g%d\n", i, i);
    char *many = write_tmp(dir, "many.csv", text);
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(many, NULL, &g, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "many.csv:18: more than 16 groups in column 'id'"));
    char *none = hx_join(dir, "none.csv");
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(none, NULL, &g, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "none.csv"));
    char *nohdr = write_tmp(dir, "nohdr.csv", "a.png;L1\n");
    e = (lm_err){0};
    assert_int_equal(lm_groups_load(nohdr, "line", &g, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "header must be 'filename;line;...'"));
    free(bad);
    free(dup);
    free(many);
    free(none);
    free(nohdr);
    hx_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_csv),
        cmocka_unit_test(test_quotes_bom_crlf),
        cmocka_unit_test(test_short_long_rows_and_bad_labels),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_empty_and_header_only),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_utf16_and_binary_files),
        cmocka_unit_test(test_elpv),
        cmocka_unit_test(test_elpv_bad_rows),
        cmocka_unit_test(test_detect_fails_on_garbage),
        cmocka_unit_test(test_path_rules),
        cmocka_unit_test(test_problem_report_keeps_count),
        cmocka_unit_test(test_text_column),
        cmocka_unit_test(test_groups_elpv_and_csv),
        cmocka_unit_test(test_groups_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
