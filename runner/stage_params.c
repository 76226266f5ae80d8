/* stage_params.c -- see stage_params.h. */
#include "stage_params.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "paths.h"
#include "suggest.h"

/* Largest integer a double (and so a cJSON number) holds exactly. */
#define RN_INT_LIMIT 9007199254740992.0

const char *rn_ptype_name(int type) {
    switch (type) {
    case LUMEN_BOOL: return "bool";
    case LUMEN_INT: return "int";
    case LUMEN_NUM: return "num";
    case LUMEN_STR: return "str";
    case LUMEN_ENUM: return "enum";
    case LUMEN_PATH: return "path";
    case LUMEN_INTS: return "ints";
    case LUMEN_NUMS: return "nums";
    case LUMEN_JSON: return "json";
    default: return "?";
    }
}

const lumen_param *rn_param_find(const lumen_param *table, const char *key) {
    for (const lumen_param *p = table; p && p->name; p++)
        if (strcmp(p->name, key) == 0) return p;
    return NULL;
}

/* "an integer", "one of a|b|c", ... for "must be %s" messages. */
static const char *expected(const lumen_param *p, char *buf, size_t len) {
    const char *base;
    switch (p->type) {
    case LUMEN_BOOL: base = "a boolean"; break;
    case LUMEN_INT: base = "an integer"; break;
    case LUMEN_NUM: base = "a number"; break;
    case LUMEN_STR: base = "a string"; break;
    case LUMEN_ENUM: snprintf(buf, len, "one of %s", p->choices ? p->choices : "?"); base = NULL; break;
    case LUMEN_PATH: base = "a path (string)"; break;
    case LUMEN_INTS: base = "a list of integers"; break;
    case LUMEN_NUMS: base = "a list of numbers"; break;
    default: base = "JSON"; break;
    }
    if (base) snprintf(buf, len, "%s", base);
    if (p->flags & LUMEN_PF_AUTO) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, " or \"auto\"");
    }
    return buf;
}

static int type_error(const lumen_param *p, const cJSON *v, char *why, size_t n) {
    char exp[256], got[128];
    snprintf(why, n, "parameter '%s' must be %s, got %s", p->name, expected(p, exp, sizeof exp),
             rn_json_describe(v, got, sizeof got));
    return LUMEN_EINVAL;
}

static int bounded(const lumen_param *p) { return !(p->min == 0 && p->max == 0); }

static int range_error(const lumen_param *p, double d, long index, char *why, size_t n) {
    char a[64], b[64], c[64];
    if (index >= 0)
        snprintf(why, n, "parameter '%s' element %ld = %s is out of range [%s, %s]", p->name, index + 1,
                 rn_num_str(d, a, sizeof a), rn_num_str(p->min, b, sizeof b), rn_num_str(p->max, c, sizeof c));
    else
        snprintf(why, n, "parameter '%s' = %s is out of range [%s, %s]", p->name, rn_num_str(d, a, sizeof a),
                 rn_num_str(p->min, b, sizeof b), rn_num_str(p->max, c, sizeof c));
    return LUMEN_EINVAL;
}

static int is_integral(double d) { return isfinite(d) && d == floor(d) && fabs(d) <= RN_INT_LIMIT; }

/* Is `s` one of the '|'-separated alternatives in choices? */
static int enum_has(const char *choices, const char *s) {
    size_t ls = strlen(s);
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == ls && strncmp(c, s, n) == 0) return 1;
        if (!bar) break;
        c = bar + 1;
    }
    return 0;
}

static int is_auto(const cJSON *v) { return cJSON_IsString(v) && strcmp(v->valuestring, "auto") == 0; }

/* Checks one number of an INT/NUM/INTS/NUMS value; index -1 for a scalar. */
static int check_number(const lumen_param *p, const cJSON *v, int integer, long index, char *why, size_t n) {
    if (!cJSON_IsNumber(v) || (integer && !is_integral(v->valuedouble)) || !isfinite(v->valuedouble)) {
        if (index < 0) return type_error(p, v, why, n);
        char got[128], exp[256];
        snprintf(why, n, "parameter '%s' must be %s, got %s at position %ld", p->name,
                 expected(p, exp, sizeof exp), rn_json_describe(v, got, sizeof got), index + 1);
        return LUMEN_EINVAL;
    }
    double d = v->valuedouble;
    if (bounded(p) && (d < p->min || d > p->max)) return range_error(p, d, index, why, n);
    return 0;
}

int rn_param_check(const lumen_param *p, const cJSON *v, const char *cwd, cJSON **norm, char *why,
                   size_t whylen) {
    *norm = NULL;
    if ((p->flags & LUMEN_PF_AUTO) && is_auto(v)) {
        *norm = cJSON_CreateString("auto");
        goto done;
    }
    switch (p->type) {
    case LUMEN_BOOL:
        if (!cJSON_IsBool(v)) return type_error(p, v, why, whylen);
        break;
    case LUMEN_INT:
    case LUMEN_NUM: {
        int rc = check_number(p, v, p->type == LUMEN_INT, -1, why, whylen);
        if (rc) return rc;
        *norm = cJSON_CreateNumber(v->valuedouble);
        goto done;
    }
    case LUMEN_STR:
        if (!cJSON_IsString(v)) return type_error(p, v, why, whylen);
        break;
    case LUMEN_ENUM:
        if (!cJSON_IsString(v)) return type_error(p, v, why, whylen);
        if (!enum_has(p->choices, v->valuestring)) {
            snprintf(why, whylen, "parameter '%s' must be one of %s, got \"%.60s\"", p->name, p->choices,
                     v->valuestring);
            return LUMEN_EINVAL;
        }
        break;
    case LUMEN_PATH:
        if (!cJSON_IsString(v) || !v->valuestring[0]) return type_error(p, v, why, whylen);
        {
            char *abs = rn_abspath(cwd, v->valuestring);
            if (!abs) return LUMEN_ENOMEM;
            *norm = cJSON_CreateString(abs);
            free(abs);
        }
        goto done;
    case LUMEN_INTS:
    case LUMEN_NUMS:
        if (cJSON_IsObject(v) && !v->child) {
            *norm = cJSON_CreateArray(); /* `{}` from Lua: an empty list */
            goto done;
        }
        if (!cJSON_IsArray(v)) return type_error(p, v, why, whylen);
        {
            long i = 0;
            for (const cJSON *c = v->child; c; c = c->next, i++) {
                int rc = check_number(p, c, p->type == LUMEN_INTS, i, why, whylen);
                if (rc) return rc;
            }
        }
        break;
    case LUMEN_JSON:
        break;
    default:
        snprintf(why, whylen, "parameter '%s' has an unknown type %d", p->name, p->type);
        return LUMEN_EINVAL;
    }
    *norm = cJSON_Duplicate(v, 1);
done:
    return *norm ? 0 : LUMEN_ENOMEM;
}

/* ------------------------------------------------------------ parsing -- */

static const char *skip_ws(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    return s;
}

/* Parses a whole string (surrounding blanks allowed) as a number. */
static int parse_number(const char *s, int integer, double *out) {
    s = skip_ws(s);
    if (!*s) return -1;
    char *end;
    errno = 0;
    if (integer) {
        long long ll = strtoll(s, &end, 10);
        if (errno || end == s) return -1;
        *out = (double)ll;
    } else {
        *out = strtod(s, &end);
        if (end == s || !isfinite(*out)) return -1;
    }
    end = (char *)skip_ws(end);
    return *end ? -1 : 0;
}

static int parse_list(const lumen_param *p, const char *text, cJSON **out, char *why, size_t whylen) {
    const char *s = skip_ws(text);
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 2 && ((s[0] == '{' && s[n - 1] == '}') || (s[0] == '[' && s[n - 1] == ']'))) {
        s++;
        n -= 2;
    }
    char *body = strndup(s, n);
    cJSON *arr = cJSON_CreateArray();
    if (!body || !arr) {
        free(body);
        cJSON_Delete(arr);
        return LUMEN_ENOMEM;
    }
    int rc = 0;
    if (*skip_ws(body)) {
        char *save = NULL;
        long i = 0;
        for (char *tok = strtok_r(body, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
            double d;
            if (parse_number(tok, p->type == LUMEN_INTS, &d) != 0) {
                char exp[256];
                snprintf(why, whylen, "parameter '%s' must be %s, got \"%.60s\" at position %ld", p->name,
                         expected(p, exp, sizeof exp), skip_ws(tok), i + 1);
                rc = LUMEN_EINVAL;
                break;
            }
            cJSON *num = cJSON_CreateNumber(d);
            if (!num || !cJSON_AddItemToArray(arr, num)) {
                cJSON_Delete(num);
                rc = LUMEN_ENOMEM;
                break;
            }
        }
    }
    free(body);
    if (rc) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int rn_param_parse(const lumen_param *p, const char *text, cJSON **out, char *why, size_t whylen) {
    *out = NULL;
    char exp[256];
    if ((p->flags & LUMEN_PF_AUTO) && strcmp(text, "auto") == 0) {
        *out = cJSON_CreateString("auto");
        return *out ? 0 : LUMEN_ENOMEM;
    }
    switch (p->type) {
    case LUMEN_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1")) *out = cJSON_CreateTrue();
        else if (!strcmp(text, "false") || !strcmp(text, "0")) *out = cJSON_CreateFalse();
        else goto bad;
        break;
    case LUMEN_INT:
    case LUMEN_NUM: {
        double d;
        if (parse_number(text, p->type == LUMEN_INT, &d) != 0) goto bad;
        *out = cJSON_CreateNumber(d);
        break;
    }
    case LUMEN_STR:
    case LUMEN_ENUM:
    case LUMEN_PATH:
        *out = cJSON_CreateString(text);
        break;
    case LUMEN_INTS:
    case LUMEN_NUMS:
        return parse_list(p, text, out, why, whylen);
    case LUMEN_JSON:
        *out = cJSON_Parse(text);
        if (!*out) {
            snprintf(why, whylen, "parameter '%s' must be JSON text, got \"%.60s\"", p->name, text);
            return LUMEN_EINVAL;
        }
        break;
    default:
        snprintf(why, whylen, "parameter '%s' has an unknown type %d", p->name, p->type);
        return LUMEN_EINVAL;
    }
    return *out ? 0 : LUMEN_ENOMEM;
bad:
    snprintf(why, whylen, "parameter '%s' must be %s, got \"%.60s\"", p->name, expected(p, exp, sizeof exp), text);
    return LUMEN_EINVAL;
}

/* --------------------------------------------------------- the table -- */

static int valid_param_name(const char *s) {
    if (!s || !*s || s[0] == '.') return 0;
    for (const char *c = s; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.';
        if (!ok || (*c == '.' && (c[1] == '.' || c[1] == '\0'))) return 0;
    }
    return 1;
}

/* Is a a dotted prefix of b ("split" of "split.val")? */
static int dotted_prefix(const char *a, const char *b) {
    size_t n = strlen(a);
    return strncmp(a, b, n) == 0 && b[n] == '.';
}

int rn_params_table_check(const lumen_param *table, char *why, size_t whylen) {
    for (const lumen_param *p = table; p && p->name; p++) {
        if (!valid_param_name(p->name)) {
            snprintf(why, whylen, "parameter name '%s' is not of the form [a-z0-9_-] with dots", p->name);
            return LUMEN_EINVAL;
        }
        for (const lumen_param *q = table; q != p; q++) {
            if (strcmp(q->name, p->name) == 0) {
                snprintf(why, whylen, "parameter '%s' is declared twice", p->name);
                return LUMEN_EINVAL;
            }
            if (dotted_prefix(q->name, p->name) || dotted_prefix(p->name, q->name)) {
                snprintf(why, whylen, "parameters '%s' and '%s' overlap (one is a group of the other)",
                         q->name, p->name);
                return LUMEN_EINVAL;
            }
        }
        if (p->type < LUMEN_BOOL || p->type > LUMEN_JSON) {
            snprintf(why, whylen, "parameter '%s' has an unknown type %d", p->name, p->type);
            return LUMEN_EINVAL;
        }
        if (p->type == LUMEN_ENUM) {
            const char *c = p->choices;
            if (!c || !*c || c[0] == '|' || c[strlen(c) - 1] == '|' || strstr(c, "||")) {
                snprintf(why, whylen, "enum parameter '%s' needs choices like \"a|b|c\"", p->name);
                return LUMEN_EINVAL;
            }
        }
        if (!(p->min <= p->max) || isnan(p->min) || isnan(p->max)) {
            snprintf(why, whylen, "parameter '%s' has min > max", p->name);
            return LUMEN_EINVAL;
        }
        if (p->def && !(p->flags & LUMEN_PF_REQUIRED)) {
            char inner[512];
            cJSON *v = NULL, *norm = NULL;
            int rc = rn_param_parse(p, p->def, &v, inner, sizeof inner);
            if (rc == 0) rc = rn_param_check(p, v, "/", &norm, inner, sizeof inner);
            cJSON_Delete(v);
            cJSON_Delete(norm);
            if (rc == LUMEN_ENOMEM) return rc;
            if (rc) {
                snprintf(why, whylen, "default \"%s\" of parameter '%s' is invalid: %s", p->def, p->name, inner);
                return LUMEN_EINVAL;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------- flattening -- */

/* Does any declared key live below `group` ("split" for "split.val")? */
static int declares_group(const lumen_param *table, const char *group) {
    for (const lumen_param *p = table; p && p->name; p++)
        if (dotted_prefix(group, p->name)) return 1;
    return 0;
}

static int put_flat(cJSON *flat, const char *key, const cJSON *v, char *why, size_t whylen) {
    if (cJSON_GetObjectItemCaseSensitive(flat, key)) {
        snprintf(why, whylen, "parameter '%s' is given twice", key);
        return LUMEN_EINVAL;
    }
    cJSON *c = cJSON_Duplicate(v, 1);
    if (!c || !cJSON_AddItemToObject(flat, key, c)) {
        cJSON_Delete(c);
        return LUMEN_ENOMEM;
    }
    return 0;
}

static int flatten_into(const lumen_param *table, const cJSON *obj, const char *prefix, cJSON *flat, char *why,
                        size_t whylen) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        char *key = prefix ? lm_sprintf("%s.%s", prefix, c->string) : lm_strdup(c->string);
        if (!key) return LUMEN_ENOMEM;
        int rc = 0;
        const lumen_param *decl = rn_param_find(table, key);
        const cJSON *stage = cJSON_GetObjectItemCaseSensitive(c, "__stage");
        if (cJSON_IsObject(c) && cJSON_IsString(stage) && !(decl && decl->type == LUMEN_JSON)) {
            /* lumen.<unknown name>{} makes a stage entry: say so, not "__file" */
            snprintf(why, whylen, "parameter '%s' is given a stage entry (lumen.%s); is the constructor's name right?",
                     key, stage->valuestring);
            free(key);
            return LUMEN_EINVAL;
        }
        if (!decl && cJSON_IsObject(c) &&
            (c->child || declares_group(table, key)))
            rc = flatten_into(table, c, key, flat, why, whylen);
        else
            rc = put_flat(flat, key, c, why, whylen);
        free(key);
        if (rc) return rc;
    }
    return 0;
}

int rn_params_flatten(const lumen_param *table, const cJSON *nested, cJSON **flat, char *why, size_t whylen) {
    *flat = cJSON_CreateObject();
    if (!*flat) return LUMEN_ENOMEM;
    if (!nested) return 0;
    if (!cJSON_IsObject(nested)) {
        snprintf(why, whylen, "parameters must be a table with named keys");
        cJSON_Delete(*flat);
        *flat = NULL;
        return LUMEN_EINVAL;
    }
    int rc = flatten_into(table, nested, NULL, *flat, why, whylen);
    if (rc) {
        cJSON_Delete(*flat);
        *flat = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------- resolve -- */

int rn_params_resolve(const lumen_param *table, cJSON *flat, const char *cwd, const char *where, lm_err *e) {
    char why[768];
    /* 1. unknown keys, with a suggestion among the declared names */
    for (const cJSON *c = flat->child; c; c = c->next) {
        if (rn_param_find(table, c->string)) continue;
        size_t n = 0;
        for (const lumen_param *p = table; p && p->name; p++) n++;
        const char **names = calloc(n ? n : 1, sizeof *names);
        if (!names) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) names[i] = table[i].name;
        char hint[256];
        rn_suggest_phrase(hint, sizeof hint, c->string, names, n);
        free(names);
        if (n == 0) snprintf(hint, sizeof hint, " (this stage takes no parameters)");
        return lm_fail(e, LUMEN_EINVAL, "%s: unknown parameter '%s'%s", where, c->string, hint);
    }
    /* 2. types and ranges of the given values; 3. required and defaults */
    for (const lumen_param *p = table; p && p->name; p++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(flat, p->name), *norm = NULL;
        int rc;
        if (v) {
            rc = rn_param_check(p, v, cwd, &norm, why, sizeof why);
            if (rc == 0 && !cJSON_ReplaceItemInObjectCaseSensitive(flat, p->name, norm)) {
                cJSON_Delete(norm);
                rc = LUMEN_ENOMEM;
            }
            if (rc == LUMEN_ENOMEM) return lm_fail(e, rc, "out of memory");
            if (rc) return lm_fail(e, rc, "%s: %s", where, why);
        }
    }
    for (const lumen_param *p = table; p && p->name; p++) {
        if (cJSON_GetObjectItemCaseSensitive(flat, p->name)) continue;
        if (p->flags & LUMEN_PF_REQUIRED)
            return lm_fail(e, LUMEN_EINVAL, "%s: missing required parameter '%s'%s%s", where, p->name,
                           p->doc ? " -- " : "", p->doc ? p->doc : "");
        if (!p->def) continue;
        cJSON *v = NULL, *norm = NULL;
        int rc = rn_param_parse(p, p->def, &v, why, sizeof why);
        if (rc == 0) rc = rn_param_check(p, v, cwd, &norm, why, sizeof why);
        cJSON_Delete(v);
        if (rc == 0 && !cJSON_AddItemToObject(flat, p->name, norm)) {
            cJSON_Delete(norm);
            rc = LUMEN_ENOMEM;
        }
        if (rc == LUMEN_ENOMEM) return lm_fail(e, rc, "out of memory");
        if (rc) return lm_fail(e, rc, "%s: default of %s", where, why);
    }
    return 0;
}
