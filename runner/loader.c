/* loader.c -- see loader.h. */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"

#define MAX_STAGES_PER_FILE 256

static int valid_name(const char *s, int allow_optional) {
    if (!s || !*s) return 0;
    size_t n = strlen(s);
    if (allow_optional && s[n - 1] == '?') n--;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return 0;
    }
    return 1;
}

static int check_artifacts(const lumen_stage *st, const char *const *list, int inputs, char *why, size_t n) {
    for (size_t i = 0; list && list[i]; i++) {
        if (!valid_name(list[i], inputs)) {
            snprintf(why, n, "stage '%s': %s artifact name '%s' is not [a-z0-9_-]+%s", st->name,
                     inputs ? "input" : "output", list[i], inputs ? " (optional: name?)" : "");
            return LUMEN_EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(list[k], list[i]) == 0) {
                snprintf(why, n, "stage '%s': %s artifact '%s' is declared twice", st->name,
                         inputs ? "input" : "output", list[i]);
                return LUMEN_EINVAL;
            }
        }
    }
    return 0;
}

int rn_stage_check(const lumen_stage *st, char *why, size_t whylen) {
    if (st->abi_version != LUMEN_ABI_VERSION) {
        snprintf(why, whylen, "built for lumen ABI %u, this runner speaks %d", (unsigned)st->abi_version,
                 LUMEN_ABI_VERSION);
        return LUMEN_EABI;
    }
    if (st->size != sizeof(lumen_stage)) {
        snprintf(why, whylen, "stage descriptor is %u bytes, this runner expects %zu (built with another "
                 "plugin.h?)", (unsigned)st->size, sizeof(lumen_stage));
        return LUMEN_EABI;
    }
    if (!st->signature || strcmp(st->signature, LUMEN_SIGNATURE) != 0) {
        snprintf(why, whylen, "compatibility signature \"%s\" does not match this runner's \"%s\"",
                 st->signature ? st->signature : "(none)", LUMEN_SIGNATURE);
        return LUMEN_EABI;
    }
    if (!valid_name(st->name, 0)) {
        snprintf(why, whylen, "stage name '%s' is not [a-z0-9_-]+", st->name ? st->name : "(null)");
        return LUMEN_EINVAL;
    }
    if (!st->version || !*st->version) {
        snprintf(why, whylen, "stage '%s' has no version", st->name);
        return LUMEN_EINVAL;
    }
    if (!st->run) {
        snprintf(why, whylen, "stage '%s' has no run function", st->name);
        return LUMEN_EINVAL;
    }
    char inner[768];
    if (rn_params_table_check(st->params, inner, sizeof inner) != 0) {
        snprintf(why, whylen, "stage '%s': invalid parameter table: %s", st->name, inner);
        return LUMEN_EINVAL;
    }
    int rc = check_artifacts(st, st->inputs, 1, why, whylen);
    if (rc == 0) rc = check_artifacts(st, st->outputs, 0, why, whylen);
    return rc;
}

const rn_stage_ref *rn_registry_find(const rn_registry *r, const char *name) {
    for (size_t i = 0; r && i < r->n_stages; i++)
        if (strcmp(r->stages[i].desc->name, name) == 0) return &r->stages[i];
    return NULL;
}

/* "normalize_stats" from "/x/normalize_stats.so", dashes for underscores. */
static int file_matches(const char *path, const char *stage) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base), ls = strlen(stage);
    if (n > 3 && strcmp(base + n - 3, ".so") == 0) n -= 3;
    if (n != ls) return 0;
    for (size_t i = 0; i < n; i++) {
        char a = base[i] == '_' ? '-' : base[i], b = stage[i] == '_' ? '-' : stage[i];
        if (a != b) return 0;
    }
    return 1;
}

const rn_refusal *rn_registry_refusal_for(const rn_registry *r, const char *name) {
    for (size_t i = 0; r && i < r->n_refused; i++)
        if (rn_strv_find(&r->refused[i].stages, name) >= 0) return &r->refused[i];
    for (size_t i = 0; r && i < r->n_refused; i++)
        if (r->refused[i].stages.n == 0 && file_matches(r->refused[i].path, name)) return &r->refused[i];
    return NULL;
}

static int refuse(rn_registry *r, const char *path, const char *reason, rn_strv *names) {
    rn_refusal *nr = realloc(r->refused, (r->n_refused + 1) * sizeof *nr);
    if (!nr) return LUMEN_ENOMEM;
    r->refused = nr;
    rn_refusal *f = &r->refused[r->n_refused];
    memset(f, 0, sizeof *f);
    f->path = lm_strdup(path);
    f->reason = lm_strdup(reason);
    if (!f->path || !f->reason) {
        free(f->path);
        free(f->reason);
        return LUMEN_ENOMEM;
    }
    if (names) {
        f->stages = *names;
        memset(names, 0, sizeof *names);
    }
    r->n_refused++;
    return 0;
}

/* Loads one file; refusals are recorded, only OOM is returned. */
static int load_file(rn_registry *r, const char *path) {
    char real[PATH_MAX];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    if (rn_strv_find(&r->seen, real) >= 0) return 0;
    if (rn_strv_push(&r->seen, real)) return LUMEN_ENOMEM;

    char why[1024];
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *de = dlerror();
        snprintf(why, sizeof why, "cannot load: %s", de ? de : "unknown dlopen error");
        return refuse(r, path, why, NULL);
    }
    dlerror();
    void *sym = dlsym(h, LUMEN_ENTRY_SYMBOL);
    if (!sym) {
        const char *de = dlerror();
        snprintf(why, sizeof why, "missing entry symbol %s (%s)", LUMEN_ENTRY_SYMBOL,
                 de ? de : "symbol is NULL");
        dlclose(h);
        return refuse(r, path, why, NULL);
    }
    lumen_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer, as POSIX allows */
    const lumen_stage *const *list = entry(LUMEN_ABI_VERSION);

    rn_strv names = {0};
    int rc = 0, bad = 0;
    size_t n = 0;
    if (!list || !list[0]) {
        snprintf(why, sizeof why, "%s returned no stages", LUMEN_ENTRY_SYMBOL);
        bad = 1;
    }
    for (; !bad && list[n]; n++) {
        if (n >= MAX_STAGES_PER_FILE) {
            snprintf(why, sizeof why, "more than %d stages (missing NULL terminator?)", MAX_STAGES_PER_FILE);
            bad = 1;
            break;
        }
        const lumen_stage *st = list[n];
        int readable = st->abi_version == LUMEN_ABI_VERSION && st->size == sizeof(lumen_stage);
        if (readable && st->name && rn_strv_push(&names, st->name)) {
            rc = LUMEN_ENOMEM;
            break;
        }
        if (rn_stage_check(st, why, sizeof why) != 0) {
            bad = 1;
            break;
        }
        const rn_stage_ref *dup = rn_registry_find(r, st->name);
        if (dup) {
            snprintf(why, sizeof why, "stage '%s' is already provided by %s", st->name, dup->path);
            bad = 1;
            break;
        }
        for (size_t k = 0; k < n; k++) {
            if (strcmp(list[k]->name, st->name) == 0) {
                snprintf(why, sizeof why, "stage '%s' is declared twice in this file", st->name);
                bad = 1;
            }
        }
    }
    if (rc || bad) {
        dlclose(h);
        if (rc == 0) rc = refuse(r, path, why, &names);
        rn_strv_free(&names);
        return rc;
    }
    rn_strv_free(&names);

    void **hs = realloc(r->handles, (r->files.n + 1) * sizeof *hs);
    if (hs) r->handles = hs;
    rn_stage_ref *ns = realloc(r->stages, (r->n_stages + n) * sizeof *ns);
    if (ns) r->stages = ns;
    if (!hs || !ns || rn_strv_push(&r->files, path)) {
        dlclose(h);
        return LUMEN_ENOMEM;
    }
    r->handles[r->files.n - 1] = h;
    for (size_t i = 0; i < n; i++) {
        r->stages[r->n_stages].desc = list[i];
        r->stages[r->n_stages].path = r->files.v[r->files.n - 1];
        r->n_stages++;
    }
    return 0;
}

static int load_dir(rn_registry *r, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0; /* a missing folder is fine */
    rn_strv names = {0};
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 3 && strcmp(de->d_name + n - 3, ".so") == 0) rc = rn_strv_push(&names, de->d_name);
    }
    closedir(d);
    rn_strv_sort(&names);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        char *path = lm_path_join(dir, names.v[i]);
        rc = path ? load_file(r, path) : LUMEN_ENOMEM;
        free(path);
    }
    rn_strv_free(&names);
    return rc;
}

int rn_registry_load(const rn_strv *dirs, rn_registry **out, lm_err *e) {
    *out = NULL;
    rn_registry *r = calloc(1, sizeof *r);
    if (!r) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < dirs->n; i++) {
        rc = rn_strv_push(&r->dirs, dirs->v[i]);
        if (rc == 0) rc = load_dir(r, dirs->v[i]);
    }
    if (rc) {
        rn_registry_free(r);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory loading plugins");
    }
    *out = r;
    return 0;
}

void rn_registry_free(rn_registry *r) {
    if (!r) return;
    for (size_t i = 0; i < r->files.n; i++) dlclose(r->handles[i]);
    for (size_t i = 0; i < r->n_refused; i++) {
        free(r->refused[i].path);
        free(r->refused[i].reason);
        rn_strv_free(&r->refused[i].stages);
    }
    free(r->refused);
    free(r->stages);
    free(r->handles);
    rn_strv_free(&r->dirs);
    rn_strv_free(&r->files);
    rn_strv_free(&r->seen);
    free(r);
}
