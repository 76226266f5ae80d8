/*
 * stage_params.h -- stage parameters: parsing, flattening, validation, defaults.
 *
 * A stage declares its parameters as a lumen_param table (plugin.h).  The
 * runner holds a stage's resolved parameters as one cJSON object with flat
 * dotted keys and typed values:
 *
 *   BOOL -> true/false      INT/NUM -> number      STR/ENUM/PATH -> string
 *   INTS/NUMS -> array of numbers                  JSON -> any JSON value
 *   and, for LUMEN_PF_AUTO parameters, the string "auto" for any type.
 *
 * Flow: the Lua bridge gives nested JSON -> rn_params_flatten() -> --set
 * overrides (rn_param_parse + rn_param_check) -> rn_params_resolve()
 * (unknown keys, types, ranges, required, defaults, absolute paths).
 *
 * Messages written to `why` are phrased to follow a location prefix:
 *   "parameter 'size' must be an integer, got string \"big\"".
 * Nothing here is stateful; all functions are thread-safe.
 */
#ifndef RN_STAGE_PARAMS_H
#define RN_STAGE_PARAMS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include <lumen/plugin.h>

#include "lm_util.h"

/* Short type name for `runner describe`: "bool", "int", "num", "str",
 * "enum", "path", "ints", "nums", "json" ("?" for an unknown type). */
const char *rn_ptype_name(int type);

/* The declaration of `key` in table (ended by a NULL name), or NULL.
 * table may be NULL (no parameters). */
const lumen_param *rn_param_find(const lumen_param *table, const char *key);

/* Parses text as a value of parameter p, with the syntax of --set and of
 * lumen_param.def: bools true/false/1/0; integers and numbers in C syntax;
 * lists "{2,2,2}", "[2,2,2]" or "2,2,2" ("{}" is empty); JSON parameters as
 * JSON text; strings as is; "auto" for LUMEN_PF_AUTO parameters.  The value
 * is not range-checked (rn_param_check does that).  *out is owned by the
 * caller.  Returns 0, LUMEN_EINVAL (message in why) or LUMEN_ENOMEM. */
int rn_param_parse(const lumen_param *p, const char *text, cJSON **out,
                   char *why, size_t whylen);

/* Validates v against p (type, range, choices) and returns a normalised
 * copy in *norm (PATH values made absolute against cwd; an empty table
 * given for a list becomes an empty list).  *norm is owned by the caller.
 * Returns 0, LUMEN_EINVAL (message in why) or LUMEN_ENOMEM. */
int rn_param_check(const lumen_param *p, const cJSON *v, const char *cwd,
                   cJSON **norm, char *why, size_t whylen);

/* Checks a stage's declared table itself (the loader refuses a plugin whose
 * table fails): names [a-z0-9_.-] and unique, no name a dotted prefix of
 * another, known types, ENUM choices present, min <= max, and every default
 * parses and validates against its own declaration.  0 or LUMEN_EINVAL. */
int rn_params_table_check(const lumen_param *table, char *why, size_t whylen);

/* Flattens the nested parameter object of a stage: string-keyed tables
 * become dotted keys, except below a key declared LUMEN_JSON, whose whole
 * subtree is kept.  Keys that match no declaration are kept too (flat) so
 * that rn_params_resolve can report them with a suggestion.  *flat is owned
 * by the caller.  Returns 0, LUMEN_EINVAL (a key given twice, e.g. both
 * `split = {val=...}` and `["split.val"] = ...`) or LUMEN_ENOMEM. */
int rn_params_flatten(const lumen_param *table, const cJSON *nested,
                      cJSON **flat, char *why, size_t whylen);

/* Validates a flat object in place against table and fills in defaults:
 * the first problem found is reported as "<where>: <why>" in e, in this
 * order: unknown keys (with the nearest declared key as suggestion), type /
 * range / choice errors, missing required parameters.  PATH values are
 * made absolute against cwd.  Returns 0, LUMEN_EINVAL or LUMEN_ENOMEM. */
int rn_params_resolve(const lumen_param *table, cJSON *flat, const char *cwd,
                      const char *where, lm_err *e);

#endif /* RN_STAGE_PARAMS_H */
