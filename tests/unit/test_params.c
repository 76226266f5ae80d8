/*
 * Unit tests for runner/stage_params.c: flattening nested parameter tables,
 * parsing --set/default text, validation messages, defaults, and the checks
 * the loader applies to a declared table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "stage_params.h"
#include "suggest.h"

static const lumen_param TABLE[] = {
    {"size", LUMEN_INT, "300", 1, 10000, NULL, 0, "image size"},
    {"ratio", LUMEN_NUM, "0.5", 0, 1, NULL, 0, NULL},
    {"name", LUMEN_STR, NULL, 0, 0, NULL, 0, NULL},
    {"format", LUMEN_ENUM, "auto", 0, 0, "auto|csv|elpv", 0, NULL},
    {"csv", LUMEN_PATH, NULL, 0, 0, NULL, LUMEN_PF_REQUIRED, "labels"},
    {"flag", LUMEN_BOOL, "false", 0, 0, NULL, 0, NULL},
    {"blocks", LUMEN_INTS, "{1,1,1,1}", 1, 8, NULL, 0, NULL},
    {"widths", LUMEN_NUMS, "{}", 0, 0, NULL, 0, NULL},
    {"split.val", LUMEN_NUM, "0.2", 0, 1, NULL, 0, NULL},
    {"optimizer.kind", LUMEN_ENUM, "sgd", 0, 0, "sgd|adamw", 0, NULL},
    {"optimizer.lr", LUMEN_NUM, "0.1", 0, 10, NULL, 0, NULL},
    {"space", LUMEN_JSON, NULL, 0, 0, NULL, 0, NULL},
    {"pos_weight", LUMEN_NUM, "1", 0, 100, NULL, LUMEN_PF_AUTO, NULL},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static cJSON *flatten_text(const char *nested_json) {
    cJSON *n = cJSON_Parse(nested_json);
    assert_non_null(n);
    cJSON *flat;
    char why[512];
    assert_int_equal(rn_params_flatten(TABLE, n, &flat, why, sizeof why), 0);
    cJSON_Delete(n);
    return flat;
}

static void assert_canonical(const cJSON *v, const char *want) {
    char *got = rn_json_canonical(v);
    assert_string_equal(got, want);
    free(got);
}

static void test_flatten_nested_and_constructors(void **state) {
    (void)state;
    cJSON *flat = flatten_text("{\"split\":{\"val\":0.3},\"optimizer\":{\"kind\":\"adamw\",\"lr\":0.001},"
                               "\"size\":64}");
    assert_canonical(flat, "{\"optimizer.kind\":\"adamw\",\"optimizer.lr\":0.001,\"size\":64,\"split.val\":0.3}");
    cJSON_Delete(flat);
}

static void test_flatten_keeps_json_subtrees(void **state) {
    (void)state;
    cJSON *flat = flatten_text("{\"space\":{\"augment\":{\"flip\":[false,true]},\"n\":2}}");
    assert_canonical(flat, "{\"space\":{\"augment\":{\"flip\":[false,true]},\"n\":2}}");
    cJSON_Delete(flat);
}

static void test_flatten_unknown_and_twice(void **state) {
    (void)state;
    /* unknown keys stay (flat) for resolve to report */
    cJSON *flat = flatten_text("{\"splt\":{\"val\":1},\"split\":{}}");
    assert_canonical(flat, "{\"splt.val\":1}");
    cJSON_Delete(flat);
    cJSON *n = cJSON_Parse("{\"split\":{\"val\":0.1},\"split.val\":0.2}");
    char why[512];
    assert_int_equal(rn_params_flatten(TABLE, n, &flat, why, sizeof why), LUMEN_EINVAL);
    assert_string_equal(why, "parameter 'split.val' is given twice");
    assert_null(flat);
    cJSON_Delete(n);
    /* a stage entry where a value belongs */
    n = cJSON_Parse("{\"optimizer\":{\"__stage\":\"rmsprop\",\"params\":{}}}");
    assert_int_equal(rn_params_flatten(TABLE, n, &flat, why, sizeof why), LUMEN_EINVAL);
    assert_non_null(strstr(why, "parameter 'optimizer' is given a stage entry (lumen.rmsprop)"));
    cJSON_Delete(n);
}

static void parse_ok(const char *key, const char *text, const char *want) {
    const lumen_param *p = rn_param_find(TABLE, key);
    assert_non_null(p);
    cJSON *v;
    char why[512] = "";
    int rc = rn_param_parse(p, text, &v, why, sizeof why);
    if (rc) fail_msg("%s=%s: %s", key, text, why);
    assert_canonical(v, want);
    cJSON_Delete(v);
}

static void parse_bad(const char *key, const char *text, const char *want_why) {
    cJSON *v = NULL;
    char why[512] = "";
    assert_int_equal(rn_param_parse(rn_param_find(TABLE, key), text, &v, why, sizeof why), LUMEN_EINVAL);
    assert_null(v);
    assert_string_equal(why, want_why);
}

static void test_parse_values(void **state) {
    (void)state;
    parse_ok("size", "42", "42");
    parse_ok("size", " -7 ", "-7");
    parse_ok("ratio", "1e-3", "0.001");
    parse_ok("flag", "true", "true");
    parse_ok("flag", "0", "false");
    parse_ok("blocks", "{2,2,2,2}", "[2,2,2,2]");
    parse_ok("blocks", "2, 3", "[2,3]");
    parse_ok("blocks", "[4]", "[4]");
    parse_ok("blocks", "{}", "[]");
    parse_ok("widths", "0.5,1", "[0.5,1]");
    parse_ok("name", "hello world", "\"hello world\"");
    parse_ok("space", "{\"a\":[1,2]}", "{\"a\":[1,2]}");
    parse_ok("pos_weight", "auto", "\"auto\"");
    parse_bad("size", "big", "parameter 'size' must be an integer, got \"big\"");
    parse_bad("size", "2.5", "parameter 'size' must be an integer, got \"2.5\"");
    parse_bad("ratio", "nan", "parameter 'ratio' must be a number, got \"nan\"");
    parse_bad("flag", "yes", "parameter 'flag' must be a boolean, got \"yes\"");
    parse_bad("blocks", "1,x", "parameter 'blocks' must be a list of integers, got \"x\" at position 2");
    parse_bad("pos_weight", "lots", "parameter 'pos_weight' must be a number or \"auto\", got \"lots\"");
    parse_bad("space", "{oops", "parameter 'space' must be JSON text, got \"{oops\"");
}

static void check_bad(const char *key, const char *json, const char *want_why) {
    cJSON *v = cJSON_Parse(json), *norm = NULL;
    assert_non_null(v);
    char why[512] = "";
    assert_int_equal(rn_param_check(rn_param_find(TABLE, key), v, "/w", &norm, why, sizeof why), LUMEN_EINVAL);
    assert_null(norm);
    assert_string_equal(why, want_why);
    cJSON_Delete(v);
}

static void test_check_messages(void **state) {
    (void)state;
    check_bad("size", "\"big\"", "parameter 'size' must be an integer, got string \"big\"");
    check_bad("size", "0", "parameter 'size' = 0 is out of range [1, 10000]");
    check_bad("ratio", "1.5", "parameter 'ratio' = 1.5 is out of range [0, 1]");
    check_bad("format", "\"png\"", "parameter 'format' must be one of auto|csv|elpv, got \"png\"");
    check_bad("flag", "1", "parameter 'flag' must be a boolean, got number 1");
    check_bad("blocks", "[1,9]", "parameter 'blocks' element 2 = 9 is out of range [1, 8]");
    check_bad("blocks", "{\"a\":1}", "parameter 'blocks' must be a list of integers, got table");
    check_bad("name", "[1]", "parameter 'name' must be a string, got list");
    check_bad("csv", "\"\"", "parameter 'csv' must be a path (string), got string \"\"");
}

static void test_check_normalises(void **state) {
    (void)state;
    cJSON *v = cJSON_Parse("\"data/../data/x.csv\""), *norm;
    char why[512];
    assert_int_equal(rn_param_check(rn_param_find(TABLE, "csv"), v, "/work/exp", &norm, why, sizeof why), 0);
    assert_string_equal(norm->valuestring, "/work/exp/data/x.csv");
    cJSON_Delete(norm);
    cJSON_Delete(v);
    v = cJSON_CreateNumber(300.0); /* an integral float is fine for INT */
    assert_int_equal(rn_param_check(rn_param_find(TABLE, "size"), v, "/", &norm, why, sizeof why), 0);
    assert_canonical(norm, "300");
    cJSON_Delete(norm);
    cJSON_Delete(v);
    v = cJSON_CreateObject(); /* `{}` from Lua where a list is declared */
    assert_int_equal(rn_param_check(rn_param_find(TABLE, "widths"), v, "/", &norm, why, sizeof why), 0);
    assert_canonical(norm, "[]");
    cJSON_Delete(norm);
    cJSON_Delete(v);
}

static void test_resolve_fills_defaults(void **state) {
    (void)state;
    cJSON *flat = flatten_text("{\"csv\":\"x.csv\",\"optimizer\":{\"kind\":\"adamw\"}}");
    lm_err e = {0};
    assert_int_equal(rn_params_resolve(TABLE, flat, "/w", "exp.lua:3: stage 'probe'", &e), 0);
    assert_canonical(flat, "{\"blocks\":[1,1,1,1],\"csv\":\"/w/x.csv\",\"flag\":false,\"format\":\"auto\","
                           "\"optimizer.kind\":\"adamw\",\"optimizer.lr\":0.1,\"pos_weight\":1,\"ratio\":0.5,"
                           "\"size\":300,\"split.val\":0.2,\"widths\":[]}");
    cJSON_Delete(flat);
}

static void resolve_bad(const char *nested, const char *want) {
    cJSON *flat = flatten_text(nested);
    lm_err e = {0};
    assert_int_equal(rn_params_resolve(TABLE, flat, "/w", "exp.lua:3: stage 'probe'", &e), LUMEN_EINVAL);
    assert_string_equal(e.msg, want);
    cJSON_Delete(flat);
}

static void test_resolve_messages(void **state) {
    (void)state;
    resolve_bad("{\"csv\":\"x\",\"szie\":3}", "exp.lua:3: stage 'probe': unknown parameter 'szie' (did you mean 'size'?)");
    resolve_bad("{\"csv\":\"x\",\"split\":{\"vla\":3}}",
                "exp.lua:3: stage 'probe': unknown parameter 'split.vla' (did you mean 'split.val'?)");
    resolve_bad("{\"csv\":\"x\",\"zzzzzz\":3}", "exp.lua:3: stage 'probe': unknown parameter 'zzzzzz'");
    resolve_bad("{\"csv\":\"x\",\"optimizer\":{\"kind\":\"adam\"}}",
                "exp.lua:3: stage 'probe': parameter 'optimizer.kind' must be one of sgd|adamw, got \"adam\"");
    resolve_bad("{\"size\":3}", "exp.lua:3: stage 'probe': missing required parameter 'csv' -- labels");
}

static void test_table_checks(void **state) {
    (void)state;
    char why[512];
    assert_int_equal(rn_params_table_check(TABLE, why, sizeof why), 0);
    assert_int_equal(rn_params_table_check(NULL, why, sizeof why), 0);
    const lumen_param no_choices[] = {{"m", LUMEN_ENUM, NULL, 0, 0, NULL, 0, NULL}, {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};
    assert_int_equal(rn_params_table_check(no_choices, why, sizeof why), LUMEN_EINVAL);
    assert_string_equal(why, "enum parameter 'm' needs choices like \"a|b|c\"");
    const lumen_param bad_default[] = {{"n", LUMEN_INT, "12", 0, 10, NULL, 0, NULL}, {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};
    assert_int_equal(rn_params_table_check(bad_default, why, sizeof why), LUMEN_EINVAL);
    assert_string_equal(why, "default \"12\" of parameter 'n' is invalid: parameter 'n' = 12 is out of range [0, 10]");
    const lumen_param overlap[] = {{"split", LUMEN_NUM, NULL, 0, 0, NULL, 0, NULL},
                                   {"split.val", LUMEN_NUM, NULL, 0, 0, NULL, 0, NULL},
                                   {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};
    assert_int_equal(rn_params_table_check(overlap, why, sizeof why), LUMEN_EINVAL);
    const lumen_param twice[] = {{"a", LUMEN_NUM, NULL, 0, 0, NULL, 0, NULL},
                                 {"a", LUMEN_INT, NULL, 0, 0, NULL, 0, NULL},
                                 {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};
    assert_int_equal(rn_params_table_check(twice, why, sizeof why), LUMEN_EINVAL);
    assert_string_equal(why, "parameter 'a' is declared twice");
    const lumen_param bad_type[] = {{"t", 42, NULL, 0, 0, NULL, 0, NULL}, {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};
    assert_int_equal(rn_params_table_check(bad_type, why, sizeof why), LUMEN_EINVAL);
    const lumen_param bad_name[] = {{"Size", LUMEN_INT, NULL, 0, 0, NULL, 0, NULL}, {NULL, 0, NULL, 0, 0, NULL, 0, NULL}};
    assert_int_equal(rn_params_table_check(bad_name, why, sizeof why), LUMEN_EINVAL);
}

static void test_suggest(void **state) {
    (void)state;
    const char *c[] = {"size", "split.val", "channels", "lr"};
    assert_string_equal(rn_suggest("szie", c, 4), "size");
    assert_string_equal(rn_suggest("chanels", c, 4), "channels");
    assert_string_equal(rn_suggest("split", c, 4), "split.val");
    assert_null(rn_suggest("x", c, 4));
    assert_null(rn_suggest("threshold", c, 4));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flatten_nested_and_constructors),
        cmocka_unit_test(test_flatten_keeps_json_subtrees),
        cmocka_unit_test(test_flatten_unknown_and_twice),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_check_messages),
        cmocka_unit_test(test_check_normalises),
        cmocka_unit_test(test_resolve_fills_defaults),
        cmocka_unit_test(test_resolve_messages),
        cmocka_unit_test(test_table_checks),
        cmocka_unit_test(test_suggest),
    };
    return cmocka_run_group_tests_name("params", tests, NULL, NULL);
}
