/*
 * lua_bridge.h -- the only place the runner touches Lua.
 *
 * rn_lua_eval() evaluates an experiment file in a fresh lua_State (standard
 * libraries open, package.path = the lumen module folders + the experiment's
 * own folder + Lua's default), converts the value the file returns into JSON
 * and closes the state.  Everything after that works on the JSON.
 *
 * Conversion rules: nil -> absent; booleans, strings as is; numbers as
 * numbers (integers beyond 2^53 and non-finite numbers are errors); tables
 * with only string keys -> objects (keys sorted); tables with keys 1..n ->
 * arrays; the empty table -> {} (an empty list where a list is declared);
 * a table mixing both kinds, or a list with holes, is an error naming the
 * stage and key; functions, userdata and threads are errors.
 *
 * Tables made by lumen.lua keep their markers as plain keys, so the JSON of
 * a stage entry is {"__stage","__file","__line","id"?,"params"} and the
 * experiment is {"__experiment":true,"__file","__line", name, ...}; error
 * messages below such a table name its file:line.
 */
#ifndef RN_LUA_BRIDGE_H
#define RN_LUA_BRIDGE_H

#include <cjson/cJSON.h>

#include "lm_util.h"
#include "strv.h"

/* Evaluates `file` (text chunks only) and returns its value as JSON in
 * *out (owned by the caller).  lua_dirs: folders searched by require()
 * before the experiment's own folder.  On a Lua error the message is
 * "file:line: message" (LUMEN_EINVAL) and, when traceback is non-NULL,
 * *traceback receives the Lua stack traceback (malloc'ed, may be NULL).
 * Errors: LUMEN_ENOTFOUND (no such file), LUMEN_EINVAL (Lua error or a
 * value that cannot be converted), LUMEN_ENOMEM.  Thread-safe (one state
 * per call). */
int rn_lua_eval(const char *file, const rn_strv *lua_dirs, cJSON **out,
                char **traceback, lm_err *e);

#endif /* RN_LUA_BRIDGE_H */
