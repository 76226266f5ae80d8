/* lua_bridge.c -- see lua_bridge.h. */
#include "lua_bridge.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"

#define MAX_DEPTH 64
#define INT_LIMIT 9007199254740992LL /* 2^53 */

/* State of one conversion.  The location fields follow the nearest
 * enclosing table made by lumen.experiment / lumen.<stage>. */
typedef struct conv {
    lua_State *L;
    const char *file;  /* the experiment file, as given */
    char where_file[512];
    long where_line;
    char label[200];   /* "stage 'train'" / "experiment" / "" */
    int in_stage;
    lm_err *e;
    int rc;
} conv;

static int conv_fail(conv *c, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int conv_fail(conv *c, const char *path, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->in_stage && strncmp(path, "params.", 7) == 0) path += 7;
    if (c->label[0])
        lm_fail(c->e, LUMEN_EINVAL, "%s:%ld: %s: %s '%s': %s", c->where_file, c->where_line, c->label,
                c->in_stage ? "parameter" : "key", path, what);
    else
        lm_fail(c->e, LUMEN_EINVAL, "%s: returned value at '%s': %s", c->file, path[0] ? path : "(top)",
                what);
    c->rc = LUMEN_EINVAL;
    return -1;
}

static int conv_oom(conv *c) {
    lm_fail(c->e, LUMEN_ENOMEM, "out of memory converting %s", c->file);
    c->rc = LUMEN_ENOMEM;
    return -1;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Attaches item to parent (array when key is NULL). */
static int attach(conv *c, cJSON *parent, const char *key, cJSON *item) {
    if (!item) return conv_oom(c);
    int ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
    if (!ok) {
        cJSON_Delete(item);
        return conv_oom(c);
    }
    return 0;
}

static int put_value(conv *c, int idx, cJSON *parent, const char *key, const char *path, int depth);

/* Reads the location markers of a lumen-made table at idx into c; returns
 * 1 when the table is one (stage entry or experiment). */
static int enter_marked(conv *c, int idx) {
    lua_State *L = c->L;
    lua_getfield(L, idx, "__stage");
    int is_stage = lua_type(L, -1) == LUA_TSTRING;
    char stage[128];
    snprintf(stage, sizeof stage, "%s", is_stage ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    lua_getfield(L, idx, "__experiment");
    int is_exp = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!is_stage && !is_exp) return 0;
    lua_getfield(L, idx, "__file");
    snprintf(c->where_file, sizeof c->where_file, "%s",
             lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : c->file);
    lua_pop(L, 1);
    lua_getfield(L, idx, "__line");
    c->where_line = lua_isinteger(L, -1) ? (long)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    c->in_stage = is_stage;
    if (is_stage) {
        lua_getfield(L, idx, "id");
        snprintf(c->label, sizeof c->label, "stage '%s'",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : stage);
        lua_pop(L, 1);
    } else {
        snprintf(c->label, sizeof c->label, "experiment");
    }
    return 1;
}

static int put_table(conv *c, int idx, cJSON *parent, const char *key, const char *path, int depth) {
    lua_State *L = c->L;
    if (depth > MAX_DEPTH) return conv_fail(c, path, "tables nested too deeply (does a table contain itself?)");
    if (!lua_checkstack(L, 8)) return conv_oom(c);
    idx = lua_absindex(L, idx);

    conv saved = *c;
    const char *here = enter_marked(c, idx) ? "" : path;

    size_t nstr = 0, nint = 0;
    lua_Integer max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            nstr++;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            nint++;
            if (lua_tointeger(L, -2) > max) max = lua_tointeger(L, -2);
        } else {
            const char *ks = luaL_tolstring(L, -2, NULL);
            char kbuf[64];
            snprintf(kbuf, sizeof kbuf, "%s", ks);
            lua_pop(L, 3);
            return conv_fail(c, path[0] ? path : "(table)", "key %s is neither a name nor a list position",
                             kbuf);
        }
        lua_pop(L, 1);
    }
    int rc = 0;
    if (nstr && nint) {
        rc = conv_fail(c, path[0] ? path : "(table)", "table mixes list items and named keys");
    } else if (nint) {
        if ((lua_Integer)nint != max) {
            lua_Integer hole = 1;
            for (; hole <= max; hole++) {
                int t = lua_rawgeti(L, idx, hole);
                lua_pop(L, 1);
                if (t == LUA_TNIL) break;
            }
            rc = conv_fail(c, path[0] ? path : "(list)", "list has a hole at position %lld (nil?)",
                           (long long)hole);
        } else {
            cJSON *arr = cJSON_CreateArray();
            rc = attach(c, parent, key, arr);
            for (lua_Integer i = 1; rc == 0 && i <= max; i++) {
                char *sub = lm_sprintf("%s[%lld]", here, (long long)i);
                if (!sub) {
                    rc = conv_oom(c);
                    break;
                }
                lua_rawgeti(L, idx, i);
                rc = put_value(c, -1, arr, NULL, sub, depth + 1);
                lua_pop(L, 1);
                free(sub);
            }
        }
    } else {
        char **keys = calloc(nstr ? nstr : 1, sizeof *keys);
        cJSON *obj = cJSON_CreateObject();
        if (!keys) {
            cJSON_Delete(obj);
            rc = conv_oom(c);
        } else {
            rc = attach(c, parent, key, obj);
        }
        size_t n = 0;
        if (rc == 0) {
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                lua_pop(L, 1);
                if (n < nstr) keys[n++] = (char *)lua_tostring(L, -1); /* string keys: no conversion */
            }
            qsort(keys, n, sizeof *keys, cmp_cstr);
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char *sub = here[0] ? lm_sprintf("%s.%s", here, keys[i]) : lm_strdup(keys[i]);
            if (!sub) {
                rc = conv_oom(c);
                break;
            }
            lua_getfield(L, idx, keys[i]);
            rc = put_value(c, -1, obj, keys[i], sub, depth + 1);
            lua_pop(L, 1);
            free(sub);
        }
        free(keys);
    }
    /* leave the marked table's context (an error message is already out) */
    saved.rc = c->rc;
    *c = saved;
    return rc;
}

static int put_value(conv *c, int idx, cJSON *parent, const char *key, const char *path, int depth) {
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return attach(c, parent, key, cJSON_CreateBool(lua_toboolean(L, idx)));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer i = lua_tointeger(L, idx);
            if (i > INT_LIMIT || i < -INT_LIMIT)
                return conv_fail(c, path, "integer %lld is too large (limit 2^53)", (long long)i);
            return attach(c, parent, key, cJSON_CreateNumber((double)i));
        } else {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) return conv_fail(c, path, "%g is not a finite number", d);
            return attach(c, parent, key, cJSON_CreateNumber(d));
        }
    case LUA_TSTRING:
        return attach(c, parent, key, cJSON_CreateString(lua_tostring(L, idx)));
    case LUA_TTABLE:
        return put_table(c, idx, parent, key, path, depth);
    default:
        return conv_fail(c, path, "a %s cannot be a value here", luaL_typename(L, idx));
    }
}

/* lua_CFunction run under lua_pcall: converts the value at index 1 into the
 * array given as light userdata at index 2 (via the conv at index 3). */
static int convert_protected(lua_State *L) {
    cJSON *root = lua_touserdata(L, 2);
    conv *c = lua_touserdata(L, 3);
    put_value(c, 1, root, NULL, "", 0);
    return 0;
}

/* ---- evaluation limits ----------------------------------------------------
 * A count hook checks, every HOOK_EVERY instructions, the runner's signal
 * flag and the time budget.  Once either fires the stop is sticky: the hook
 * then runs on every instruction and raises again, so a pcall in the
 * experiment cannot swallow it. */

#define HOOK_EVERY 1000
#define STOP_TIMEOUT (-1)
#define STOP_MEMORY (-2)
#define DEFAULT_BUDGET_S 60.0
#define DEFAULT_MEMORY_MIB 256.0

/* One evaluation, reached from the hook through lua_getextraspace and from
 * the allocator through its user data. */
typedef struct eval_ctx {
    double budget;   /* seconds; 0: no limit */
    double deadline; /* lm_now() limit when budget > 0 */
    double mem_mib;  /* LUMEN_EVAL_MEMORY; 0: no limit */
    size_t mem_limit; /* bytes; 0: no limit */
    size_t mem_used;  /* bytes Lua holds (as its allocator calls say) */
    lua_Alloc base;   /* the allocator luaL_newstate installed */
    void *base_ud;
    int stop;        /* 0, the signal number, STOP_TIMEOUT or STOP_MEMORY */
    int sticky;      /* the hook runs on every instruction */
    char at[600];    /* "file:line" of the Lua code running at the stop */
} eval_ctx;

static const char *signal_word(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal"; }

static void eval_hook(lua_State *L, lua_Debug *ar) {
    eval_ctx *x = *(eval_ctx **)lua_getextraspace(L);
    if (!x->stop) {
        int sig = rn_signals_pending();
        if (sig) x->stop = sig;
        else if (x->budget > 0 && lm_now() > x->deadline) x->stop = STOP_TIMEOUT;
        else return;
    }
    if (!x->sticky) { /* the first hook call after the stop (the allocator sets STOP_MEMORY) */
        x->sticky = 1;
        if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            snprintf(x->at, sizeof x->at, "%s:%d", ar->short_src, ar->currentline);
        lua_sethook(L, eval_hook, LUA_MASKCOUNT, 1);
    }
    if (x->stop == STOP_TIMEOUT) lua_pushfstring(L, "experiment evaluation took longer than %f s", x->budget);
    else if (x->stop == STOP_MEMORY) lua_pushliteral(L, "experiment evaluation needed too much memory");
    else lua_pushfstring(L, "interrupted (%s)", signal_word(x->stop));
    lua_error(L);
}

/* The memory budget: Lua's allocator, refusing to grow past mem_limit.  A
 * refusal is Lua's "not enough memory" where it happens and marks the
 * stop, which the hook then raises again (a pcall cannot swallow it). */
static void *eval_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    eval_ctx *x = ud;
    size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
    if (nsize > old && x->mem_limit && (x->mem_used >= x->mem_limit || nsize - old > x->mem_limit - x->mem_used)) {
        if (!x->stop) x->stop = STOP_MEMORY;
        return NULL;
    }
    void *p = x->base(x->base_ud, ptr, osize, nsize);
    if (p || nsize == 0) x->mem_used = x->mem_used - (old < x->mem_used ? old : x->mem_used) + nsize;
    return p;
}

/* The memory budget from LUMEN_EVAL_MEMORY (MiB, 0 = none), default 256. */
static int eval_memory(double *out, lm_err *e) {
    const char *s = getenv("LUMEN_EVAL_MEMORY");
    *out = DEFAULT_MEMORY_MIB;
    if (!s || !*s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0 || v > 1e9)
        return lm_fail(e, LUMEN_EINVAL, "LUMEN_EVAL_MEMORY=%s: expected a number of MiB (0: no limit)", s);
    *out = v;
    return 0;
}

/* The budget from LUMEN_EVAL_TIMEOUT (seconds, 0 = none), default 60 s. */
static int eval_budget(double *out, lm_err *e) {
    const char *s = getenv("LUMEN_EVAL_TIMEOUT");
    *out = DEFAULT_BUDGET_S;
    if (!s || !*s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0)
        return lm_fail(e, LUMEN_EINVAL, "LUMEN_EVAL_TIMEOUT=%s: expected a number of seconds (0: no limit)", s);
    *out = v;
    return 0;
}

/* The error for a stop (the message the Lua error carried is not used). */
static int stop_error(const eval_ctx *x, const char *file, lm_err *e) {
    const char *at = x->at[0] ? x->at : file;
    if (x->stop == STOP_MEMORY)
        return lm_fail(e, LUMEN_EINVAL,
                       "experiment evaluation needed more than %g MiB of memory (stopped at %s); an experiment file "
                       "only describes the run (LUMEN_EVAL_MEMORY=MIB changes the limit)",
                       x->mem_mib, at);
    if (x->stop == STOP_TIMEOUT)
        return lm_fail(e, LUMEN_EINVAL,
                       "experiment evaluation took longer than %g s (stopped at %s); an experiment file only describes the "
                       "run (LUMEN_EVAL_TIMEOUT=SECONDS changes the budget)",
                       x->budget, at);
    return lm_fail(e, LUMEN_ECANCELED, "interrupted (%s) while evaluating %s (at %s)", signal_word(x->stop), file, at);
}

/* ---- errors ---------------------------------------------------------------- */

/* Message handler: the message plus a traceback.  A non-string error value
 * (error({})) gets the file:line of the first Lua frame that raised it. */
static int msgh(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        const char *what;
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            what = lua_tostring(L, -1);
        else
            what = lua_pushfstring(L, "error object is a %s value, not a message", luaL_typename(L, 1));
        lua_Debug ar;
        msg = what;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
                msg = lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, what);
                break;
            }
        }
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* ---- the sandbox ----------------------------------------------------------
 * Experiment files and the modules they require run in one environment
 * table (SANDBOX below); modules found in lumen's own folders get a table
 * that adds `lumen_host` and falls back to it.  The real globals, io, debug
 * and package are never reachable from Lua. */

#define NOT_AVAILABLE "is not available in experiment files (they must have no side effects)"

/* __index of the sandbox, its os and its package: the names in upvalue 1
 * (name -> shown name) are refused with file:line, other names are nil. */
static int sb_refuse(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TSTRING)
            return luaL_error(L, "'%s' " NOT_AVAILABLE, lua_tostring(L, -1));
    }
    lua_pushnil(L);
    return 1;
}

/* Sets a protected metatable on the table at the top whose __index refuses
 * names[] (shown with prefix). */
static void refuse_names(lua_State *L, const char *prefix, const char *const *names) {
    lua_createtable(L, 0, 2);
    lua_newtable(L);
    for (const char *const *n = names; *n; n++) {
        lua_pushfstring(L, "%s%s", prefix, *n);
        lua_setfield(L, -2, *n);
    }
    lua_pushcclosure(L, sb_refuse, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

static const char *const REFUSED_GLOBALS[] = {"io", "debug", "dofile", "loadfile", NULL};
static const char *const REFUSED_OS[] = {"execute", "exit", "remove", "rename", "tmpname", "setlocale", NULL};
static const char *const REFUSED_PACKAGE[] = {"loadlib", "cpath", "path", "searchers", "searchpath", "preload",
                                              NULL};

/* print: like Lua's, to stderr (stdout carries the run folder). */
static int sb_print(lua_State *L) {
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1) fputc('\t', stderr);
        fwrite(s, 1, len, stderr);
        lua_pop(L, 1);
    }
    fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

/* load: text chunks only, in the sandbox unless an env is given.
 * Upvalues: Lua's load, the sandbox. */
static int sb_load(lua_State *L) {
    int env = lua_isnoneornil(L, 4) ? lua_upvalueindex(2) : 4;
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    lua_pushvalue(L, env);
    lua_call(L, 4, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* setmetatable without __gc: finalizers run with hooks off, where neither
 * the signal nor the time budget could stop them.  Upvalue: Lua's one. */
static int sb_setmetatable(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "'__gc' metamethods are not available in experiment files (finalizers cannot be "
                                 "interrupted)");
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* lumen_host.exists(path): whether path is a readable file or folder. */
static int host_exists(lua_State *L) {
    lua_pushboolean(L, access(luaL_checkstring(L, 1), R_OK) == 0);
    return 1;
}

/* lumen_host.warn(msg): msg on stderr, ending with a newline. */
static int host_warn(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    fwrite(s, 1, len, stderr);
    if (!len || s[len - 1] != '\n') fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

/* lumen_host.frame(level) -> what, source, currentline of the function
 * `level` frames up (1: the caller of frame, as debug.getinfo), or nil. */
static int host_frame(lua_State *L) {
    lua_Debug ar;
    if (!lua_getstack(L, (int)luaL_checkinteger(L, 1), &ar) || !lua_getinfo(L, "Sl", &ar)) return 0;
    lua_pushstring(L, ar.what);
    lua_pushstring(L, ar.source);
    lua_pushinteger(L, ar.currentline);
    return 3;
}

/* Upvalue 1 of sb_require: the table {loaded, dirs, ntrusted, env, trusted}. */
#define REQ_STATE lua_upvalueindex(1)

/* 1 when name is a module name: [A-Za-z0-9_-] parts separated by dots. */
static int module_name_ok(const char *name) {
    int part = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (!part) return 0;
            part = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                   *p == '-') {
            part++;
        } else {
            return 0;
        }
    }
    return part > 0;
}

/* require(name): Lua source modules from lumen's folders, then the
 * experiment's folder; loaded as text into the sandbox (lumen's folders: the
 * trusted environment), cached in package.loaded. */
static int sb_require(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_getfield(L, REQ_STATE, "loaded"); /* 2 */
    if (lua_getfield(L, 2, name) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    for (const char *const *n = REFUSED_GLOBALS; *n; n++)
        if (strcmp(name, *n) == 0) return luaL_error(L, "'%s' " NOT_AVAILABLE, name);
    if (strcmp(name, "package") == 0) return luaL_error(L, "'package' " NOT_AVAILABLE);
    if (!module_name_ok(name)) return luaL_error(L, "require: '%s' is not a module name", name);
    luaL_gsub(L, name, ".", "/"); /* 3: relative path without extension */
    const char *rel = lua_tostring(L, 3);
    lua_getfield(L, REQ_STATE, "dirs"); /* 4 */
    lua_getfield(L, REQ_STATE, "ntrusted");
    lua_Integer ntrusted = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_Integer ndirs = (lua_Integer)lua_rawlen(L, 4);
    for (lua_Integer i = 1; i <= ndirs; i++) {
        lua_rawgeti(L, 4, i);
        const char *path = lua_pushfstring(L, "%s/%s.lua", lua_tostring(L, -1), rel); /* 6 */
        if (access(path, R_OK) != 0) {
            lua_pop(L, 2);
            continue;
        }
        int st = luaL_loadfilex(L, path, "t"); /* 7 */
        if (st != LUA_OK) return lua_error(L);
        lua_getfield(L, REQ_STATE, i <= ntrusted ? "trusted" : "env");
        if (!lua_setupvalue(L, 7, 1)) lua_pop(L, 1);
        lua_pushstring(L, name);
        lua_pushvalue(L, 6);
        lua_call(L, 2, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, 2, name);
        lua_pushvalue(L, 6);
        return 2;
    }
    /* a C module beside where a Lua one would be: say so */
    for (lua_Integer i = 1; i <= ndirs; i++) {
        lua_rawgeti(L, 4, i);
        const char *so = lua_pushfstring(L, "%s/%s.so", lua_tostring(L, -1), rel);
        if (access(so, F_OK) == 0)
            return luaL_error(L, "module '%s' is a C module (%s); experiment files can require only Lua modules",
                              name, so);
        lua_pop(L, 2);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= ndirs; i++) {
        lua_rawgeti(L, 4, i);
        if (i > 1) luaL_addstring(&b, ", ");
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return luaL_error(L, "module '%s' not found (no %s.lua in %s; experiment files can require Lua modules from "
                         "lumen's folders and their own folder)",
                      name, rel, lua_tostring(L, -1));
}

/* Copies field k of the table at src into the table at dst. */
static void copy_field(lua_State *L, int src, int dst, const char *k) {
    lua_getfield(L, src, k);
    lua_setfield(L, dst, k);
}

/* What build_sandbox needs: the require folders. */
typedef struct sandbox_args {
    const char *file;
    const rn_strv *dirs;
} sandbox_args;

/* lua_CFunction run under lua_pcall (light userdata sandbox_args at 1):
 * opens the libraries experiments may use and returns the sandbox. */
static int build_sandbox(lua_State *L) {
    const sandbox_args *a = lua_touserdata(L, 1);
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},         {LUA_COLIBNAME, luaopen_coroutine},
                                    {LUA_TABLIBNAME, luaopen_table},   {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_MATHLIBNAME, luaopen_math},   {LUA_UTF8LIBNAME, luaopen_utf8},
                                    {LUA_OSLIBNAME, luaopen_os},       {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 0);
        lua_pop(L, 1);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* 2: the real libraries */
    lua_getfield(L, 2, LUA_GNAME);                        /* 3: the real globals */

    lua_newtable(L); /* 4: the sandbox */
    int sb = 4;
    static const char *const base[] = {"assert",   "error",  "getmetatable", "ipairs",   "next",     "pairs",
                                       "pcall",    "rawequal", "rawget",     "rawlen",   "rawset",   "select",
                                       "tonumber", "tostring", "type",       "xpcall",   "collectgarbage",
                                       "_VERSION", NULL};
    for (const char *const *n = base; *n; n++) copy_field(L, 3, sb, *n);
    static const char *const libnames[] = {LUA_COLIBNAME, LUA_TABLIBNAME, LUA_STRLIBNAME, LUA_MATHLIBNAME,
                                           LUA_UTF8LIBNAME, NULL};
    for (const char *const *n = libnames; *n; n++) copy_field(L, 2, sb, *n);
    lua_pushvalue(L, sb);
    lua_setfield(L, sb, LUA_GNAME);
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, sb, "print");
    lua_getfield(L, 3, "load");
    lua_pushvalue(L, sb);
    lua_pushcclosure(L, sb_load, 2);
    lua_setfield(L, sb, "load");
    lua_getfield(L, 3, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, sb, "setmetatable");

    /* os: the clock, the date and the environment */
    lua_getfield(L, 2, LUA_OSLIBNAME);
    lua_newtable(L);
    static const char *const os_ok[] = {"getenv", "time", "clock", "date", "difftime", NULL};
    for (const char *const *n = os_ok; *n; n++) copy_field(L, -2, lua_absindex(L, -1), *n);
    refuse_names(L, "os.", REFUSED_OS);
    lua_remove(L, -2);
    lua_setfield(L, sb, LUA_OSLIBNAME);

    /* package.loaded: the libraries above, then the required modules */
    lua_newtable(L); /* 5 */
    int loaded = 5;
    for (const char *const *n = libnames; *n; n++) copy_field(L, sb, loaded, *n);
    copy_field(L, sb, loaded, LUA_OSLIBNAME);
    lua_pushvalue(L, sb);
    lua_setfield(L, loaded, LUA_GNAME);
    lua_newtable(L);
    lua_pushvalue(L, loaded);
    lua_setfield(L, -2, "loaded");
    refuse_names(L, "package.", REFUSED_PACKAGE);
    lua_setfield(L, sb, LUA_LOADLIBNAME);

    /* lumen's own modules: the sandbox plus lumen_host */
    lua_newtable(L); /* 6 */
    int trusted = 6;
    static const luaL_Reg host[] = {{"exists", host_exists}, {"warn", host_warn}, {"frame", host_frame}, {NULL, NULL}};
    luaL_newlib(L, host);
    lua_setfield(L, trusted, "lumen_host");
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, sb);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, trusted);

    /* require */
    lua_createtable(L, 0, 5); /* 7 */
    lua_pushvalue(L, loaded);
    lua_setfield(L, 7, "loaded");
    lua_pushvalue(L, sb);
    lua_setfield(L, 7, "env");
    lua_pushvalue(L, trusted);
    lua_setfield(L, 7, "trusted");
    size_t ndirs = a->dirs ? a->dirs->n : 0;
    lua_pushinteger(L, (lua_Integer)ndirs);
    lua_setfield(L, 7, "ntrusted");
    lua_createtable(L, (int)ndirs + 1, 0);
    for (size_t i = 0; i < ndirs; i++) {
        lua_pushstring(L, a->dirs->v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    const char *slash = strrchr(a->file, '/');
    if (slash) lua_pushlstring(L, a->file, slash == a->file ? 1 : (size_t)(slash - a->file));
    else lua_pushliteral(L, ".");
    lua_rawseti(L, -2, (lua_Integer)ndirs + 1);
    lua_setfield(L, 7, "dirs");
    lua_pushcclosure(L, sb_require, 1);
    lua_setfield(L, sb, "require");

    lua_pushvalue(L, sb);
    refuse_names(L, "", REFUSED_GLOBALS);
    return 1;
}

/* Line of the first "<name>.experiment" call in the file's text, or 0: the
 * location of an experiment returned by a tail call (`return
 * lumen.experiment {...}`), which Lua's debug info cannot see. */
static int guess_experiment_line(const char *file) {
    char *text = NULL;
    if (lm_read_file(file, &text, NULL, NULL) != 0) return 0;
    int line = 0;
    for (const char *p = strstr(text, ".experiment"); p; p = strstr(p + 1, ".experiment")) {
        const char *q = p + strlen(".experiment");
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '{' || *q == '(') {
            line = 1;
            for (const char *c = text; c < p; c++) line += *c == '\n';
            break;
        }
    }
    free(text);
    return line;
}

/* Fills in __file/__line of the returned experiment when Lua could not. */
static void locate_experiment(lua_State *L, int idx, const char *file) {
    lua_getfield(L, idx, "__file");
    int have = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    if (have) return;
    lua_pushstring(L, file);
    lua_setfield(L, idx, "__file");
    lua_pushinteger(L, guess_experiment_line(file));
    lua_setfield(L, idx, "__line");
}

/* Splits "msg\nstack traceback:\n..." into e (msg) and *tb. */
static int lua_error_out(const char *full, char **tb, lm_err *e) {
    const char *cut = full ? strstr(full, "\nstack traceback:") : NULL;
    int n = cut ? (int)(cut - full) : (int)strlen(full ? full : "");
    if (tb && cut) *tb = lm_strdup(cut + 1);
    return lm_fail(e, LUMEN_EINVAL, "%.*s", n, full ? full : "unknown Lua error");
}

int rn_lua_eval(const char *file, const rn_strv *lua_dirs, cJSON **out, char **traceback, lm_err *e) {
    *out = NULL;
    if (traceback) *traceback = NULL;
    eval_ctx x = {0};
    if (eval_budget(&x.budget, e) || eval_memory(&x.mem_mib, e)) return LUMEN_EINVAL;
    FILE *probe = fopen(file, "r");
    if (!probe)
        return lm_fail_errno(e, errno == ENOENT ? LUMEN_ENOTFOUND : LUMEN_EIO, "cannot open experiment file %s",
                             file);
    fclose(probe);

    lua_State *L = luaL_newstate();
    if (!L) return lm_fail(e, LUMEN_ENOMEM, "out of memory starting Lua");
    *(eval_ctx **)lua_getextraspace(L) = &x;
    if (x.mem_mib > 0) {
        x.mem_limit = (size_t)(x.mem_mib * 1048576.0);
        x.mem_used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
        x.base = lua_getallocf(L, &x.base_ud);
        lua_setallocf(L, eval_alloc, &x);
    }
    x.deadline = lm_now() + x.budget;
    lua_sethook(L, eval_hook, LUA_MASKCOUNT, HOOK_EVERY);

    int rc = 0;
    lua_pushcfunction(L, msgh);
    int h = lua_gettop(L);
    sandbox_args sa = {.file = file, .dirs = lua_dirs};
    lua_pushcfunction(L, build_sandbox);
    lua_pushlightuserdata(L, &sa);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        rc = lm_fail(e, LUMEN_ENOMEM, "starting Lua: %s", lua_tostring(L, -1));
        goto done;
    }
    int env = lua_gettop(L);
    int st = luaL_loadfilex(L, file, "t");
    if (st != LUA_OK && x.stop) {
        rc = stop_error(&x, file, e);
        goto done;
    }
    if (st != LUA_OK) {
        rc = st == LUA_ERRMEM ? lm_fail(e, LUMEN_ENOMEM, "out of memory loading %s", file)
                              : lm_fail(e, LUMEN_EINVAL, "%s", lua_tostring(L, -1));
        goto done;
    }
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    st = lua_pcall(L, 0, 1, h);
    if (x.stop) {
        if (st != LUA_OK) lua_error_out(lua_tostring(L, -1), traceback, NULL);
        rc = stop_error(&x, file, e);
        goto done;
    }
    if (st != LUA_OK) {
        rc = st == LUA_ERRMEM ? lm_fail(e, LUMEN_ENOMEM, "out of memory running %s", file)
                              : lua_error_out(lua_tostring(L, -1), traceback, e);
        goto done;
    }
    int vt = lua_type(L, -1);
    int is_exp = 0;
    if (vt == LUA_TTABLE) {
        lua_getfield(L, -1, "__experiment");
        is_exp = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (!is_exp) {
        rc = lm_fail(e, LUMEN_EINVAL,
                     "%s: the experiment file must end with `return lumen.experiment { ... }` (it returned %s)",
                     file, vt == LUA_TTABLE ? "a plain table" : lua_typename(L, vt));
        goto done;
    }

    locate_experiment(L, lua_gettop(L), file);
    conv c = {.L = L, .file = file, .e = e};
    snprintf(c.where_file, sizeof c.where_file, "%s", file);
    cJSON *root = cJSON_CreateArray();
    if (!root) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto done;
    }
    lua_pushcfunction(L, convert_protected);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, root);
    lua_pushlightuserdata(L, &c);
    st = lua_pcall(L, 3, 0, h);
    if (x.stop) {
        rc = stop_error(&x, file, e);
    } else if (st != LUA_OK) {
        rc = lm_fail(e, st == LUA_ERRMEM ? LUMEN_ENOMEM : LUMEN_EINVAL, "%s: converting the experiment: %s", file,
                     lua_tostring(L, -1));
    } else if (c.rc) {
        rc = c.rc;
    } else {
        *out = cJSON_DetachItemFromArray(root, 0);
        if (!*out) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    cJSON_Delete(root);
done:
    lua_close(L);
    return rc;
}
