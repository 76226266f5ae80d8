/* cachekey.c -- see cachekey.h. */
#include "cachekey.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "jsonutil.h"

struct rn_keyhash {
    XXH3_state_t *st;
};

void rn_keyhash_add(rn_keyhash *k, const void *data, size_t len) {
    uint8_t pre[8];
    uint64_t n = len;
    for (int i = 0; i < 8; i++) pre[i] = (uint8_t)(n >> (8 * i)); /* little-endian, fixed */
    XXH3_128bits_update(k->st, pre, sizeof pre);
    if (len) XXH3_128bits_update(k->st, data, len);
}

static void add_str(rn_keyhash *k, const char *s) { rn_keyhash_add(k, s, strlen(s)); }

rn_keyhash *rn_keyhash_begin(const rn_key_desc *d) {
    rn_keyhash *k = calloc(1, sizeof *k);
    char *params = rn_json_canonical(d->params);
    if (!k || !params || !(k->st = XXH3_createState())) goto oom;
    XXH3_128bits_reset(k->st);
    add_str(k, "lumen-cache/1");
    add_str(k, d->stage);
    add_str(k, d->version);
    add_str(k, params);
    add_str(k, d->smoke ? "smoke" : "full");
    char num[32];
    snprintf(num, sizeof num, "%zu", d->n_inputs);
    add_str(k, num);
    for (size_t i = 0; i < d->n_inputs; i++) {
        add_str(k, d->inputs[i].artifact);
        add_str(k, d->inputs[i].producer_key ? d->inputs[i].producer_key : "-");
    }
    add_str(k, "key()");
    free(params);
    return k;
oom:
    free(params);
    rn_keyhash_free(k);
    return NULL;
}

void rn_keyhash_hex(rn_keyhash *k, char hex[RN_KEY_HEX]) {
    XXH128_hash_t h = XXH3_128bits_digest(k->st);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
}

void rn_keyhash_free(rn_keyhash *k) {
    if (!k) return;
    if (k->st) XXH3_freeState(k->st);
    free(k);
}
