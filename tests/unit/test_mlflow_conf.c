/*
 * test_mlflow_conf.c -- the MLflow tracker's configuration (mlflow.h) and
 * spool bookkeeping without a server: where the URI and the experiment come
 * from (file, LUMEN_TRACKING_URI, MLFLOW_TRACKING_URI,
 * MLFLOW_EXPERIMENT_NAME, off), what is refused (not http(s), credentials in
 * the URI, unknown keys), and the sync state `runner runs` shows for a
 * spool with nothing, part or all of it acknowledged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "harness.h"
#include "mlflow.h"

static void clear_env(void) {
    unsetenv("LUMEN_TRACKING_URI");
    unsetenv("MLFLOW_TRACKING_URI");
    unsetenv("MLFLOW_EXPERIMENT_NAME");
}

static cJSON *tracking(const char *uri, const char *exp) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "kind", "mlflow");
    if (uri) cJSON_AddStringToObject(t, "uri", uri);
    if (exp) cJSON_AddStringToObject(t, "experiment", exp);
    return t;
}

static void test_where_uri_and_experiment_come_from(void **state) {
    (void)state;
    clear_env();
    rn_mlflow_conf c;
    lm_err e = {0};
    /* nothing configured: off */
    assert_int_equal(rn_mlflow_conf_resolve(NULL, "exp", "x.lua:1", &c, &e), 0);
    assert_null(c.uri);
    /* the file */
    cJSON *t = tracking("http://127.0.0.1:5000", "aug");
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:1", &c, &e), 0);
    assert_string_equal(c.uri, "http://127.0.0.1:5000");
    assert_string_equal(c.experiment, "aug");
    rn_mlflow_conf_free(&c);
    /* MLFLOW_TRACKING_URI loses to the file, LUMEN_TRACKING_URI wins */
    setenv("MLFLOW_TRACKING_URI", "http://mlflow-env:1", 1);
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:1", &c, &e), 0);
    assert_string_equal(c.uri, "http://127.0.0.1:5000");
    rn_mlflow_conf_free(&c);
    setenv("LUMEN_TRACKING_URI", "https://lumen-env:2/prefix", 1);
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:1", &c, &e), 0);
    assert_string_equal(c.uri, "https://lumen-env:2/prefix");
    assert_string_equal(c.experiment, "aug");
    rn_mlflow_conf_free(&c);
    /* off, whatever the file says */
    setenv("LUMEN_TRACKING_URI", "off", 1);
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:1", &c, &e), 0);
    assert_null(c.uri);
    cJSON_Delete(t);
    /* environment only: the experiment from MLFLOW_EXPERIMENT_NAME, else the lumen name */
    unsetenv("LUMEN_TRACKING_URI");
    assert_int_equal(rn_mlflow_conf_resolve(NULL, "exp", "x.lua:1", &c, &e), 0);
    assert_string_equal(c.uri, "http://mlflow-env:1");
    assert_string_equal(c.experiment, "exp");
    rn_mlflow_conf_free(&c);
    setenv("MLFLOW_EXPERIMENT_NAME", "from-env", 1);
    assert_int_equal(rn_mlflow_conf_resolve(NULL, "exp", "x.lua:1", &c, &e), 0);
    assert_string_equal(c.experiment, "from-env");
    rn_mlflow_conf_free(&c);
    clear_env();
}

static void test_refusals_name_the_place(void **state) {
    (void)state;
    clear_env();
    rn_mlflow_conf c;
    lm_err e = {0};
    cJSON *t = tracking("file:///tmp/mlruns", NULL);
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:3", &c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "x.lua:3"));
    assert_non_null(strstr(e.msg, "http://"));
    cJSON_Delete(t);
    t = tracking("http://bob:hunter2@host:5000", NULL);
    lm_err_clear(&e);
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:3", &c, &e), LUMEN_EINVAL);
    assert_null(strstr(e.msg, "hunter2")); /* the secret is not repeated */
    assert_non_null(strstr(e.msg, "MLFLOW_TRACKING_PASSWORD"));
    cJSON_Delete(t);
    t = tracking("http://host:5000", NULL);
    cJSON_AddStringToObject(t, "url", "http://x");
    lm_err_clear(&e);
    assert_int_equal(rn_mlflow_conf_resolve(t, "exp", "x.lua:3", &c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "unknown key 'url'"));
    cJSON_Delete(t);
    cJSON *wrong = cJSON_CreateString("http://host:5000");
    lm_err_clear(&e);
    assert_int_equal(rn_mlflow_conf_resolve(wrong, "exp", "x.lua:3", &c, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "lumen.mlflow"));
    cJSON_Delete(wrong);
}

static void test_sync_state_from_the_files(void **state) {
    (void)state;
    char *tmp = hx_tmpdir();
    char buf[64];
    rn_mlflow_sync_state(tmp, buf, sizeof buf);
    assert_string_equal(buf, "-"); /* not tracked */
    const char *spool = "{\"t\":\"run\",\"uri\":\"http://h:1\",\"uid\":\"u\"}\n"
                        "{\"t\":\"m\",\"k\":\"a\",\"v\":1,\"s\":1,\"ts\":5}\n"
                        "{\"t\":\"m\",\"k\":\"a\",\"v\":2,\"s\":2,\"ts\":6}\n";
    char *sp = hx_join(tmp, "mlflow/spool.jsonl");
    hx_write(sp, spool);
    rn_mlflow_sync_state(tmp, buf, sizeof buf);
    assert_string_equal(buf, "pending 3");
    char *st = hx_join(tmp, "mlflow/state.json");
    size_t first = strchr(spool, '\n') - spool + 1;
    char *text = hx_fmt("{\"uri\":\"http://h:1\",\"acked\":%zu,\"rejected\":0}", first);
    hx_write(st, text);
    rn_mlflow_sync_state(tmp, buf, sizeof buf);
    assert_string_equal(buf, "pending 2");
    free(text);
    text = hx_fmt("{\"uri\":\"http://h:1\",\"acked\":%zu,\"rejected\":1}", strlen(spool));
    hx_write(st, text);
    rn_mlflow_sync_state(tmp, buf, sizeof buf);
    assert_string_equal(buf, "synced, 1 refused");
    free(text);
    free(st);
    free(sp);
    hx_rmtree(tmp);
    free(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_where_uri_and_experiment_come_from),
        cmocka_unit_test(test_refusals_name_the_place),
        cmocka_unit_test(test_sync_state_from_the_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
