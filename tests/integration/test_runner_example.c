/*
 * test_runner_example.c -- the out-of-tree story: the example plugin built
 * with the exact command the README shows, loaded through
 * LUMEN_PLUGIN_PATH and run inside a pipeline; and the installed layout
 * (PREFIX/bin/runner finding PREFIX/share/lumen/lua and
 * PREFIX/lib/lumen/plugins) used from another folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lm_util.h"

typedef struct fixture {
    char *tmp;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->tmp = hx_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hx_rmtree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* The README's build command, with the output placed in `dir`. */
static void build_example(const char *dir) {
    char *src = hx_src_dir();
    char *out = hx_join(dir, "hello_stage.so");
    const char *argv[] = {"/bin/sh", "-c",
                          "cc -std=c11 -shared -fPIC -Iplugins -o \"$OUT\" plugins/examples/hello_stage.c", NULL};
    char *env_out = hx_fmt("OUT=%s", out);
    const char *env[] = {env_out, NULL};
    hx_result r;
    hx_run(argv, src, env, 120, &r);
    hx_assert_ran(&r, "building the example");
    assert_true(hx_exists(out));
    hx_result_free(&r);
    free(env_out);
    free(out);
    free(src);
}

static void test_readme_command_is_the_one_tested(void **state) {
    (void)state;
    char *src = hx_src_dir();
    char *readme = hx_join(src, "README.md");
    char *text = hx_read(readme);
    assert_non_null(text);
    assert_non_null(strstr(text, "cc -std=c11 -shared -fPIC -Iplugins -o hello_stage.so plugins/examples/hello_stage.c"));
    free(text);
    free(readme);
    free(src);
}

static void test_example_plugin_runs_in_a_pipeline(void **state) {
    fixture *f = *state;
    char *plugdir = hx_join(f->tmp, "myplugins");
    assert_int_equal(lm_mkdirs(plugdir, NULL), 0);
    build_example(plugdir);

    hx_result r;
    hx_runner(&r, f->tmp, plugdir, NULL, "describe", "hello", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "hello 1.0 -- example: byte histogram of a file"));
    assert_non_null(strstr(r.out, "[1, 256]"));
    hx_result_free(&r);

    char *input = hx_join(f->tmp, "input.txt");
    hx_write(input, "AAAA\x01\x02zz\xff"); /* 9 bytes: 2 below 64, 6 in 64..127, 1 at 255 */
    hx_write_experiment(f->tmp, "exp.lua", "hello", "    lumen.hello { file = \"input.txt\", bins = 4 },\n");
    hx_runner(&r, f->tmp, plugdir, NULL, "exp.lua", NULL);
    hx_assert_ran(&r, "runner");
    char *rel = hx_last_line(r.out);
    char *csv_path = hx_fmt("%s/%s/hello/histogram/histogram.csv", f->tmp, rel);
    char *csv = hx_read(csv_path);
    assert_non_null(csv);
    assert_non_null(strstr(csv, "# hello\nbin,lo,hi,count\n0,0,63,2\n1,64,127,6\n2,128,191,0\n3,192,255,1\n"));
    char *metrics_path = hx_fmt("%s/%s/metrics.jsonl", f->tmp, rel);
    char *metrics = hx_read(metrics_path);
    assert_non_null(strstr(metrics, "\"key\":\"hello/bytes\",\"value\":9"));
    hx_result_free(&r);

    /* cacheable: the second run reuses it; touching the file reruns it */
    hx_runner(&r, f->tmp, plugdir, NULL, "exp.lua", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "hello: cached"));
    hx_result_free(&r);
    hx_write(input, "B");
    hx_runner(&r, f->tmp, plugdir, NULL, "exp.lua", NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "hello: running"));
    hx_result_free(&r);

    free(metrics);
    free(metrics_path);
    free(csv);
    free(csv_path);
    free(rel);
    free(input);
    free(plugdir);
}

static void copy_file(const char *from, const char *to) {
    char *data;
    size_t len;
    assert_int_equal(lm_read_file(from, &data, &len, NULL), 0);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(data);
}

static void test_installed_layout_from_another_folder(void **state) {
    fixture *f = *state;
    /* PREFIX/bin/runner, PREFIX/share/lumen/lua/lumen.lua, PREFIX/lib/lumen/plugins/counter.so */
    char *prefix = hx_join(f->tmp, "prefix");
    char *bin = hx_join(prefix, "bin"), *lua = hx_join(prefix, "share/lumen/lua"),
         *plug = hx_join(prefix, "lib/lumen/plugins");
    assert_int_equal(lm_mkdirs(bin, NULL), 0);
    assert_int_equal(lm_mkdirs(lua, NULL), 0);
    assert_int_equal(lm_mkdirs(plug, NULL), 0);
    char *runner_src = hx_join(hx_build_dir(), "runner"), *runner = hx_join(bin, "runner");
    copy_file(runner_src, runner);
    assert_int_equal(chmod(runner, 0755), 0);
    char *src = hx_src_dir();
    char *lua_src = hx_join(src, "lua/lumen.lua"), *lua_dst = hx_join(lua, "lumen.lua");
    copy_file(lua_src, lua_dst);
    char *so_src = hx_fmt("%s/tests/plugins/counter.so", hx_build_dir()), *so_dst = hx_join(plug, "counter.so");
    copy_file(so_src, so_dst);

    char *work = hx_join(f->tmp, "elsewhere/work");
    hx_write_experiment(work, "exp.lua", "installed", "    lumen.counter { record = \"rec.txt\" },\n");
    const char *argv[] = {runner, "exp.lua", NULL};
    const char *env[] = {"LUMEN_PLUGIN_PATH", "LUMEN_RUNS", NULL};
    hx_result r;
    hx_run(argv, work, env, 120, &r);
    hx_assert_ran(&r, "installed runner");
    char *rec = hx_join(work, "rec.txt");
    char *text = hx_read(rec);
    assert_non_null(strstr(text, "ran "));
    assert_non_null(strstr(r.out, "runs/installed/"));
    hx_result_free(&r);

    const char *argv2[] = {runner, "plugins", NULL};
    hx_run(argv2, work, env, 120, &r);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "lib/lumen/plugins/counter.so"));
    hx_result_free(&r);

    free(text);
    free(rec);
    free(work);
    free(so_src);
    free(so_dst);
    free(lua_src);
    free(lua_dst);
    free(src);
    free(runner_src);
    free(runner);
    free(bin);
    free(lua);
    free(plug);
    free(prefix);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_command_is_the_one_tested),
        cmocka_unit_test_setup_teardown(test_example_plugin_runs_in_a_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_installed_layout_from_another_folder, setup, teardown),
    };
    return cmocka_run_group_tests_name("runner_example", tests, NULL, NULL);
}
