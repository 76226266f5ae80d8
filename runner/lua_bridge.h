/*
 * lua_bridge.h -- the only place the runner touches Lua.
 *
 * rn_lua_eval() evaluates an experiment file in a fresh lua_State, converts
 * the value the file returns into JSON and closes the state.  Everything
 * after that works on the JSON.
 *
 * Sandbox.  Experiment files are evaluated while planning, for --dry-run,
 * --resume and every sweep trial, so they must have no side effects.  The
 * file and the modules it requires run in an environment holding only:
 * string, table, math, utf8, coroutine; os.getenv/time/clock/date/difftime;
 * assert, error, pcall, xpcall, select, type, tostring, tonumber, pairs,
 * ipairs, next, rawget, rawset, rawequal, rawlen, getmetatable,
 * setmetatable (no __gc: finalizers run where no hook can stop them),
 * collectgarbage, _VERSION, _G (the sandbox itself); print (to stderr:
 * stdout carries the run folder); load (text chunks only, into the sandbox
 * unless an env is given); require (below); package.loaded.
 * io, debug, dofile, loadfile, os.execute/exit/remove/rename/tmpname/
 * setlocale and package.loadlib/cpath/path/searchers/searchpath/preload
 * raise "FILE:LINE: 'NAME' is not available in experiment files (they must
 * have no side effects)"; other unknown globals are nil as usual.
 * require(name) loads NAME.lua (dots are folders) as text from lua_dirs,
 * then the experiment's folder; no C modules (a NAME.so there is named in
 * the error), no Lua default path.  Modules from lua_dirs (lumen.lua) also
 * see `lumen_host`: exists(path), warn(msg) (a line on stderr) and
 * frame(level) -> what, source, currentline (debug.getinfo's levels).
 *
 * Limits.  A count hook (every 1000 VM instructions) stops the evaluation
 * when rn_signals_pending() reports SIGINT/SIGTERM (LUMEN_ECANCELED,
 * "interrupted (SIGINT) while evaluating FILE (at FILE:LINE)") or when it
 * has run longer than $LUMEN_EVAL_TIMEOUT seconds (default 60, 0: no
 * limit; LUMEN_EINVAL "experiment evaluation took longer than N s (stopped
 * at FILE:LINE)...").  Lua's allocator refuses to hold more than
 * $LUMEN_EVAL_MEMORY MiB (default 256, 0: no limit; LUMEN_EINVAL
 * "experiment evaluation needed more than N MiB of memory (stopped at
 * FILE:LINE)..."), which also bounds the time one C call (a huge
 * string.rep) can take.  The stops are sticky: a pcall in the file cannot
 * swallow them.
 *
 * Errors raised with a non-string value (error({})) are reported as
 * "FILE:LINE: error object is a table value, not a message", FILE:LINE
 * being the Lua code that raised it.
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
 * Errors: LUMEN_ENOTFOUND (no such file), LUMEN_EINVAL (Lua error, a
 * value that cannot be converted, the time or memory budget, a bad
 * LUMEN_EVAL_TIMEOUT or LUMEN_EVAL_MEMORY), LUMEN_ECANCELED (a signal), LUMEN_ENOMEM.
 * Thread-safe (one state per call; the signal flag is process-wide). */
int rn_lua_eval(const char *file, const rn_strv *lua_dirs, cJSON **out,
                char **traceback, lm_err *e);

#endif /* RN_LUA_BRIDGE_H */
