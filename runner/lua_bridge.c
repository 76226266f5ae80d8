/* lua_bridge.c -- see lua_bridge.h. */
#include "lua_bridge.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Message handler: the message plus a traceback. */
static int msgh(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int set_package_path(lua_State *L, const char *file, const rn_strv *dirs) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    char *path = lm_strdup("");
    for (size_t i = 0; path && dirs && i < dirs->n; i++) {
        char *next = lm_sprintf("%s%s/?.lua;", path, dirs->v[i]);
        free(path);
        path = next;
    }
    const char *slash = strrchr(file, '/');
    if (path) {
        char *next = slash ? lm_sprintf("%s%.*s/?.lua;", path, (int)(slash - file), file)
                           : lm_sprintf("%s./?.lua;", path);
        free(path);
        path = next;
    }
    if (path) {
        char *next = lm_sprintf("%s%s", path, lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
        free(path);
        path = next;
    }
    lua_pop(L, 1);
    if (!path) {
        lua_pop(L, 1);
        return LUMEN_ENOMEM;
    }
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    free(path);
    return 0;
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
    FILE *probe = fopen(file, "r");
    if (!probe)
        return lm_fail_errno(e, errno == ENOENT ? LUMEN_ENOTFOUND : LUMEN_EIO, "cannot open experiment file %s",
                             file);
    fclose(probe);

    lua_State *L = luaL_newstate();
    if (!L) return lm_fail(e, LUMEN_ENOMEM, "out of memory starting Lua");
    luaL_openlibs(L);
    if (set_package_path(L, file, lua_dirs)) {
        lua_close(L);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }

    int rc = 0;
    lua_pushcfunction(L, msgh);
    int h = lua_gettop(L);
    int st = luaL_loadfilex(L, file, "t");
    if (st != LUA_OK) {
        rc = st == LUA_ERRMEM ? lm_fail(e, LUMEN_ENOMEM, "out of memory loading %s", file)
                              : lm_fail(e, LUMEN_EINVAL, "%s", lua_tostring(L, -1));
        goto done;
    }
    st = lua_pcall(L, 0, 1, h);
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
    if (st != LUA_OK) {
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
