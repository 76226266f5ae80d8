/*
 * Unit tests for runner/cache.c: the publish protocol (tmp folder, marker,
 * rename), what counts as a hit, repair of damaged entries and dead
 * processes' leftovers, a second writer of the same key, and --force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "harness.h"

#define KEY "0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char *runs;
    rn_cache c;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->runs = hx_tmpdir();
    assert_int_equal(rn_cache_init(&f->c, f->runs, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hx_rmtree(f->runs);
    free(f->runs);
    rn_cache_free(&f->c);
    free(f);
    return 0;
}

/* Writes an entry's content into a fresh tmp folder and returns it. */
static char *begin_with(fixture *f, const char *content) {
    char *tmp = NULL;
    lm_err e = {0};
    assert_int_equal(rn_cache_begin(&f->c, "st", KEY, &tmp, &e), 0);
    assert_non_null(strstr(tmp, KEY ".tmp-"));
    char *file = hx_fmt("%s/out/data.txt", tmp);
    hx_write(file, content);
    free(file);
    return tmp;
}

static char *entry_file(fixture *f) { return hx_fmt("%s/.cache/st/" KEY "/out/data.txt", f->runs); }

static void test_publish_then_hit(void **state) {
    fixture *f = *state;
    assert_false(rn_cache_has(&f->c, "st", KEY));
    char *tmp = begin_with(f, "one");
    assert_false(rn_cache_has(&f->c, "st", KEY)); /* not before the marker */
    cJSON *marker = cJSON_Parse("{\"stage\":\"st\"}");
    int lost = -1;
    lm_err e = {0};
    assert_int_equal(rn_cache_commit(&f->c, "st", KEY, tmp, marker, 0, &lost, &e), 0);
    assert_int_equal(lost, 0);
    assert_true(rn_cache_has(&f->c, "st", KEY));
    assert_false(hx_exists(tmp));
    char *path = entry_file(f);
    char *text = hx_read(path);
    assert_string_equal(text, "one");
    free(text);
    free(path);
    char *m = hx_fmt("%s/.cache/st/" KEY "/.complete", f->runs);
    text = hx_read(m);
    assert_non_null(strstr(text, "\"stage\""));
    free(text);
    free(m);
    cJSON_Delete(marker);
    free(tmp);
}

static void test_second_writer_loses_force_replaces(void **state) {
    fixture *f = *state;
    cJSON *marker = cJSON_CreateObject();
    int lost;
    lm_err e = {0};
    char *a = begin_with(f, "A"), *b = begin_with(f, "B");
    assert_string_not_equal(a, b);
    assert_int_equal(rn_cache_commit(&f->c, "st", KEY, a, marker, 0, &lost, &e), 0);
    assert_int_equal(lost, 0);
    assert_int_equal(rn_cache_commit(&f->c, "st", KEY, b, marker, 0, &lost, &e), 0);
    assert_int_equal(lost, 1); /* the first one stays, the second copy is gone */
    assert_false(hx_exists(b));
    char *path = entry_file(f);
    char *text = hx_read(path);
    assert_string_equal(text, "A");
    free(text);
    char *c = begin_with(f, "C");
    assert_int_equal(rn_cache_commit(&f->c, "st", KEY, c, marker, 1, &lost, &e), 0);
    assert_int_equal(lost, 0);
    text = hx_read(path);
    assert_string_equal(text, "C");
    free(text);
    free(path);
    free(a);
    free(b);
    free(c);
    cJSON_Delete(marker);
}

static void test_repairs(void **state) {
    fixture *f = *state;
    /* a final folder without marker */
    char *final_file = entry_file(f);
    hx_write(final_file, "half");
    /* a tmp folder of a dead process, and one of a live process (ours) */
    pid_t child = fork();
    if (child == 0) _exit(0);
    int st;
    waitpid(child, &st, 0);
    char *dead = hx_fmt("%s/.cache/st/%s.tmp-%ld-0/x", f->runs, "ffffffffffffffffffffffffffffffff", (long)child);
    char *live = hx_fmt("%s/.cache/st/%s.tmp-%ld-99/x", f->runs, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", (long)getppid());
    hx_write(dead, "x");
    hx_write(live, "x");
    char *tmp = NULL;
    lm_err e = {0};
    assert_int_equal(rn_cache_begin(&f->c, "st", KEY, &tmp, &e), 0);
    assert_false(hx_exists(final_file));
    assert_false(hx_exists(dead));
    assert_true(hx_exists(live));
    rn_cache_abort(tmp);
    assert_false(hx_exists(tmp));
    free(tmp);
    free(dead);
    free(live);
    free(final_file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_loses_force_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repairs, setup, teardown),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
