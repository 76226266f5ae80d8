/*
 * cachekey.h -- the content address of a cacheable stage's outputs.
 *
 * A key is XXH3-128 (32 hex digits) over length-prefixed fields, in order:
 *   "lumen-cache/1", stage name, stage version, the canonical JSON of the
 *   resolved parameters (keys sorted, so declaration or Lua order does not
 *   matter), the smoke flag, the number of inputs, then for each declared
 *   input its artifact name and its producer's key ("-" for an absent
 *   optional input), and finally every chunk the stage's key() callback
 *   passes to host->key_add.  Length prefixes keep fields from running into
 *   each other ("ab"+"c" differs from "a"+"bc").
 *
 * The experiment seed and thread count are not fields of their own: most
 * cacheable stages do not depend on them, and a key over them would split
 * the cache for nothing.  A stage whose outputs do depend on them (ingest
 * with split.seed = "auto", augment-materialize) adds the effective value
 * in key(); plugin.h (LUMEN_STAGE_CACHEABLE) states that duty.
 */
#ifndef RN_CACHEKEY_H
#define RN_CACHEKEY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define RN_KEY_HEX 33 /* 32 hex digits + NUL */

typedef struct rn_keyhash rn_keyhash;

typedef struct rn_key_input {
    const char *artifact;     /* declared name without '?' */
    const char *producer_key; /* producer's key hex, or NULL when absent */
} rn_key_input;

typedef struct rn_key_desc {
    const char *stage;     /* stage name */
    const char *version;   /* stage version */
    const cJSON *params;   /* resolved flat parameters */
    int smoke;
    const rn_key_input *inputs;
    size_t n_inputs;
} rn_key_desc;

/* Starts a key over the fixed fields of d.  NULL on OOM.  The result is
 * owned by the caller (rn_keyhash_free).  Not thread-safe per object. */
rn_keyhash *rn_keyhash_begin(const rn_key_desc *d);
/* Adds one length-prefixed field (what host->key_add does). */
void rn_keyhash_add(rn_keyhash *k, const void *data, size_t len);
/* Writes the 32-digit lowercase hex key and NUL into hex. */
void rn_keyhash_hex(rn_keyhash *k, char hex[RN_KEY_HEX]);
void rn_keyhash_free(rn_keyhash *k);

#endif /* RN_CACHEKEY_H */
