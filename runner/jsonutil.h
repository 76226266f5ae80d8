/*
 * jsonutil.h -- small cJSON helpers the runner shares: canonical JSON (for
 * cache keys), atomic JSON files, value descriptions for messages, and
 * timestamps.
 */
#ifndef RN_JSONUTIL_H
#define RN_JSONUTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "lm_util.h"

/* Deep copy of v with every object's keys sorted (strcmp); arrays keep their
 * order.  Caller owns the result (cJSON_Delete); NULL on OOM. */
cJSON *rn_json_sorted(const cJSON *v);

/* Canonical text of v: compact, object keys sorted at every depth.  Two
 * values that differ only in key order give the same text.  Caller frees;
 * NULL on OOM. */
char *rn_json_canonical(const cJSON *v);

/* Everything the runner writes as JSON (run store files, metrics lines,
 * cache markers, sweep journals and results, stage events, `runner eval`)
 * goes through rn_json_print, so it is valid UTF-8 whatever bytes a stage
 * message, file name or label held (Python's json.load refuses invalid
 * UTF-8). */

/* Makes NUL-terminated JSON text valid UTF-8: each byte of an invalid
 * sequence (a stray continuation byte, a truncated or overlong sequence, a
 * surrogate, a code point above U+10FFFF) becomes the five characters
 * \\xNN (NN its hex value), i.e. a JSON string then holds the text \xNN.
 * Sound because such bytes can appear only inside JSON strings (cJSON
 * escapes control characters, the syntax is ASCII).  Returns text itself
 * when it is valid, otherwise a malloc'ed copy (text is freed); NULL when
 * out of memory (text freed) or when text is NULL. */
char *rn_json_utf8_fix(char *text);

/* cJSON_Print (pretty) or cJSON_PrintUnformatted, then rn_json_utf8_fix.
 * Caller frees; NULL on OOM. */
char *rn_json_print(const cJSON *v, int pretty);

/* Writes v, pretty-printed and newline-terminated, atomically to path
 * (lm_write_file_atomic; valid UTF-8, see rn_json_print).  0 or
 * LUMEN_EIO/LUMEN_ENOMEM. */
int rn_json_write_atomic(const char *path, const cJSON *v, lm_err *e);

/* Reads and parses a JSON file.  *out is owned by the caller.  Errors:
 * LUMEN_ENOTFOUND (missing), LUMEN_EIO, LUMEN_EDATA (not JSON, message names
 * the file). */
int rn_json_read_file(const char *path, cJSON **out, lm_err *e);

/* o[k] (case-sensitive), NULL when o is not an object or has no k. */
static inline const cJSON *rn_json_item(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* Describes a value for an error message: `string "big"`, `number 1.5`,
 * `boolean true`, `list`, `table`, `null`.  Writes into buf, returns buf. */
const char *rn_json_describe(const cJSON *v, char *buf, size_t len);

/* Formats a number the way a user wrote it: integers without a fraction,
 * others with %.17g trimmed to the shortest form that round-trips. */
const char *rn_num_str(double d, char *buf, size_t len);

/* UTC ISO-8601 time with milliseconds: "2026-11-29T19:30:12.345Z". */
const char *rn_time_iso(double epoch_s, char *buf, size_t len);

#endif /* RN_JSONUTIL_H */
