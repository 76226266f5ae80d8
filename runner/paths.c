/* paths.c -- see paths.h. */
#include "paths.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *rn_abspath(const char *base, const char *path) {
    char *joined = path[0] == '/' ? lm_strdup(path) : lm_path_join(base ? base : "/", path);
    if (!joined) return NULL;
    /* Fold components in place: out never runs ahead of in. */
    size_t len = strlen(joined);
    char *out = malloc(len + 2);
    if (!out) {
        free(joined);
        return NULL;
    }
    size_t o = 0;
    const char *p = joined;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - s);
        if (n == 1 && s[0] == '.') continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--; /* drop the slash too */
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, s, n);
        o += n;
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
    free(joined);
    return out;
}

const char *rn_display_path(const char *cwd, const char *abs) {
    if (!cwd || !abs) return abs;
    size_t n = strlen(cwd);
    if (n > 1 && strncmp(abs, cwd, n) == 0 && abs[n] == '/' && abs[n + 1]) return abs + n + 1;
    return abs;
}

char *rn_runs_dir(const char *cwd, const char *opt) {
    const char *d = opt;
    if (!d || !*d) d = getenv("LUMEN_RUNS");
    if (!d || !*d) d = "runs";
    return rn_abspath(cwd, d);
}

/* Adds dir (made absolute) unless an equal folder is already listed. */
static int add_dir(rn_strv *sv, const char *cwd, const char *dir) {
    char *abs = rn_abspath(cwd, dir);
    if (!abs) return LUMEN_ENOMEM;
    if (rn_strv_find(sv, abs) >= 0) {
        free(abs);
        return 0;
    }
    return rn_strv_take(sv, abs);
}

int rn_paths_init(rn_paths *p, lm_err *e) {
    memset(p, 0, sizeof *p);
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) return lm_fail_errno(e, LUMEN_EIO, "cannot locate the runner executable (/proc/self/exe)");
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf) *slash = '\0';
    else if (slash) slash[1] = '\0';
    p->exe_dir = lm_strdup(buf);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        rn_paths_free(p);
        return lm_fail_errno(e, LUMEN_EIO, "cannot determine the current folder");
    }
    p->cwd = lm_strdup(cwd);
    if (!p->exe_dir || !p->cwd) goto oom;

    if (add_dir(&p->plugin_dirs, p->exe_dir, "plugins") ||
        add_dir(&p->plugin_dirs, p->exe_dir, "../lib/lumen/plugins"))
        goto oom;
    const char *env = getenv("LUMEN_PLUGIN_PATH");
    if (env && *env) {
        char *copy = lm_strdup(env), *save = NULL;
        if (!copy) goto oom;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
            if (add_dir(&p->plugin_dirs, p->cwd, tok)) {
                free(copy);
                goto oom;
            }
        }
        free(copy);
    }
    if (add_dir(&p->lua_dirs, p->exe_dir, "../lua") ||
        add_dir(&p->lua_dirs, p->exe_dir, "../share/lumen/lua"))
        goto oom;
    return 0;
oom:
    rn_paths_free(p);
    return lm_fail(e, LUMEN_ENOMEM, "out of memory");
}

void rn_paths_free(rn_paths *p) {
    if (!p) return;
    free(p->exe_dir);
    free(p->cwd);
    rn_strv_free(&p->plugin_dirs);
    rn_strv_free(&p->lua_dirs);
    memset(p, 0, sizeof *p);
}
