/* Unit tests for stages/common/lm_util.c: atomic writes, folders, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_util.h"

static char *tmpdir(void) {
    char tmpl[] = "/tmp/lumen-util-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void test_atomic_write_replaces_whole_file(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p = lm_path_join(dir, "a/b/f.txt");
    lm_err e = {0};
    char *sub = lm_path_join(dir, "a/b");
    assert_int_equal(lm_mkdirs(sub, &e), 0);
    assert_int_equal(lm_write_file_atomic(p, "first", 5, &e), 0);
    assert_int_equal(lm_write_file_atomic(p, "second!", 7, &e), 0);
    char *data;
    size_t len;
    assert_int_equal(lm_read_file(p, &data, &len, &e), 0);
    assert_int_equal(len, 7);
    assert_string_equal(data, "second!");
    free(data);
    /* no temp file left behind */
    char *tmp = lm_sprintf("%s.tmp.%ld", p, (long)getpid());
    assert_false(lm_exists(tmp));
    free(tmp);
    assert_int_equal(lm_rmtree(dir, &e), 0);
    assert_false(lm_exists(dir));
    free(sub);
    free(p);
    free(dir);
}

static void test_read_missing_names_file(void **state) {
    (void)state;
    lm_err e = {0};
    char *data;
    assert_int_equal(lm_read_file("/nonexistent/x.csv", &data, NULL, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent/x.csv"));
    assert_null(data);
}

static void test_first_error_wins(void **state) {
    (void)state;
    lm_err e = {0};
    assert_int_equal(lm_fail(&e, LUMEN_EDATA, "first %d", 1), LUMEN_EDATA);
    assert_int_equal(lm_fail(&e, LUMEN_EIO, "second"), LUMEN_EIO);
    assert_int_equal(e.code, LUMEN_EDATA);
    assert_string_equal(e.msg, "first 1");
}

static void test_edit_distance(void **state) {
    (void)state;
    assert_int_equal(lm_edit_distance("size", "size"), 0);
    assert_int_equal(lm_edit_distance("szie", "size"), 2);
    assert_int_equal(lm_edit_distance("chanels", "channels"), 1);
    assert_int_equal(lm_edit_distance("", "abc"), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_atomic_write_replaces_whole_file),
        cmocka_unit_test(test_read_missing_names_file),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_edit_distance),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
