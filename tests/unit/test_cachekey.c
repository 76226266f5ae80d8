/*
 * Unit tests for runner/cachekey.c and the canonical JSON it hashes: the
 * same parameters in another order give the same key; a change in any
 * ingredient gives another key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cachekey.h"
#include "jsonutil.h"

typedef struct spec {
    const char *stage, *version, *params;
    int smoke;
    const char *in_key;   /* producer key of input "db" (NULL: absent) */
    const char *extra[3]; /* key_add chunks */
} spec;

static void key_of(const spec *s, char hex[RN_KEY_HEX]) {
    cJSON *params = cJSON_Parse(s->params);
    assert_non_null(params);
    rn_key_input in = {.artifact = "db", .producer_key = s->in_key};
    rn_key_desc d = {.stage = s->stage, .version = s->version, .params = params, .smoke = s->smoke,
                     .inputs = &in, .n_inputs = 1};
    rn_keyhash *k = rn_keyhash_begin(&d);
    assert_non_null(k);
    for (int i = 0; i < 3 && s->extra[i]; i++) rn_keyhash_add(k, s->extra[i], strlen(s->extra[i]));
    rn_keyhash_hex(k, hex);
    rn_keyhash_free(k);
    cJSON_Delete(params);
    assert_int_equal(strlen(hex), 32);
}

static const spec BASE = {"ingest", "1", "{\"size\":300,\"split.val\":0.2,\"blocks\":[1,2],\"opt\":{\"b\":1,\"a\":2}}",
                          0, "00112233445566778899aabbccddeeff", {"abc", NULL, NULL}};

static void test_order_does_not_matter(void **state) {
    (void)state;
    char a[RN_KEY_HEX], b[RN_KEY_HEX];
    key_of(&BASE, a);
    spec s = BASE;
    s.params = "{\"opt\":{\"a\":2,\"b\":1},\"blocks\":[1,2],\"split.val\":0.2,\"size\":300.0}";
    key_of(&s, b);
    assert_string_equal(a, b);
    key_of(&BASE, b); /* deterministic */
    assert_string_equal(a, b);
}

static void test_every_ingredient_counts(void **state) {
    (void)state;
    char base[RN_KEY_HEX], other[RN_KEY_HEX];
    key_of(&BASE, base);
    spec v[9];
    for (int i = 0; i < 9; i++) v[i] = BASE;
    v[0].stage = "ingest2";
    v[1].version = "2";
    v[2].params = "{\"size\":301,\"split.val\":0.2,\"blocks\":[1,2],\"opt\":{\"b\":1,\"a\":2}}";
    v[3].params = "{\"size\":300,\"split.val\":0.2,\"blocks\":[2,1],\"opt\":{\"b\":1,\"a\":2}}"; /* list order */
    v[4].smoke = 1;
    v[5].in_key = "ffeeddccbbaa99887766554433221100";
    v[6].in_key = NULL;
    v[7].extra[0] = "abd";
    v[8].extra[0] = "ab";
    v[8].extra[1] = "c"; /* same bytes, other chunking */
    for (int i = 0; i < 9; i++) {
        key_of(&v[i], other);
        if (strcmp(base, other) == 0) fail_msg("variant %d gives the same key", i);
    }
}

static void test_canonical_json(void **state) {
    (void)state;
    cJSON *a = cJSON_Parse("{\"b\":{\"y\":1,\"x\":[3,{\"q\":1,\"p\":2}]},\"a\":\"s\"}");
    char *t = rn_json_canonical(a);
    assert_string_equal(t, "{\"a\":\"s\",\"b\":{\"x\":[3,{\"p\":2,\"q\":1}],\"y\":1}}");
    free(t);
    cJSON_Delete(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_does_not_matter),
        cmocka_unit_test(test_every_ingredient_counts),
        cmocka_unit_test(test_canonical_json),
    };
    return cmocka_run_group_tests_name("cachekey", tests, NULL, NULL);
}
