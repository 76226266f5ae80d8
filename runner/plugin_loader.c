/* plugin_loader.c -- see plugin_loader.h. */
#include "plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stage_params.h"

#define MAX_STAGES_PER_FILE 256
#define PROBE_TIMEOUT_S 10.0   /* default of LUMEN_PROBE_TIMEOUT */
#define PROBE_TIMEOUT_MAX_S 3600.0

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

/* Checks the descriptor list an entry returned, stopping at the first bad
 * one: *n gets the number of stages, names the readable stage names, *bad
 * and why the refusal.  With report_fd >= 0 (a probe child) each readable
 * name is also written there as "s NAME\n" as soon as it is read, so the
 * parent learns it even when a later descriptor crashes.  Returns 0 or
 * LUMEN_ENOMEM. */
static int check_list(const rn_registry *r, const lumen_stage *const *list, int report_fd, rn_strv *names,
                      size_t *n, int *bad, char *why, size_t whylen) {
    *n = 0;
    *bad = 0;
    if (!list || !list[0]) {
        snprintf(why, whylen, "%s returned no stages", LUMEN_ENTRY_SYMBOL);
        *bad = 1;
        return 0;
    }
    for (; list[*n]; ++*n) {
        if (*n >= MAX_STAGES_PER_FILE) {
            snprintf(why, whylen, "more than %d stages (missing NULL terminator?)", MAX_STAGES_PER_FILE);
            *bad = 1;
            return 0;
        }
        const lumen_stage *st = list[*n];
        int readable = st->abi_version == LUMEN_ABI_VERSION && st->size == sizeof(lumen_stage);
        if (readable && st->name) {
            if (rn_strv_push(names, st->name)) return LUMEN_ENOMEM;
            if (report_fd >= 0 && !strchr(st->name, '\n')) dprintf(report_fd, "s %s\n", st->name);
        }
        if (rn_stage_check(st, why, whylen) != 0) {
            *bad = 1;
            return 0;
        }
        const rn_stage_ref *dup = rn_registry_find(r, st->name);
        if (dup) {
            snprintf(why, whylen, "stage '%s' is already provided by %s", st->name, dup->path);
            *bad = 1;
            return 0;
        }
        for (size_t k = 0; k < *n; k++) {
            if (strcmp(list[k]->name, st->name) == 0) {
                snprintf(why, whylen, "stage '%s' is declared twice in this file", st->name);
                *bad = 1;
            }
        }
        if (*bad) return 0;
    }
    return 0;
}

/* The probe child: default handlers for the fatal signals (also under
 * ASan, whose handler would turn a crash into an exit status), stdout to
 * /dev/null, then everything load_file does with the file; "ok\n" on fd
 * when it got through, whatever the verdict.  Never returns. */
static void probe_child(const rn_registry *r, const char *path, int fd) {
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS, SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    void *sym = h ? dlsym(h, LUMEN_ENTRY_SYMBOL) : NULL;
    if (sym) {
        lumen_entry_fn entry;
        memcpy(&entry, &sym, sizeof entry);
        rn_strv names = {0};
        char why[1024];
        size_t n;
        int bad;
        check_list(r, entry(LUMEN_ABI_VERSION), fd, &names, &n, &bad, why, sizeof why);
    }
    dprintf(fd, "ok\n");
    _exit(0); /* no atexit handlers, destructors or stdio flushes of the runner's copy */
}

/* Appends what can be read from fd now (non-blocking) to *buf; 1 at end of
 * file, 0 otherwise.  Past 64 KiB the rest is dropped. */
static int drain(int fd, char **buf, size_t *len) {
    char chunk[4096];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, 0);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return 0;
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 1;
        if (*len + (size_t)got > 65536) continue;
        char *nb = realloc(*buf, *len + (size_t)got + 1);
        if (!nb) continue; /* only names are lost; the verdict needs "ok" at the end */
        *buf = nb;
        memcpy(*buf + *len, chunk, (size_t)got);
        *len += (size_t)got;
        (*buf)[*len] = '\0';
    }
}

/* Tries path in a child process (probe_child) and waits for it up to
 * r->probe_timeout_s.  Returns 1 when it got through (the real load may
 * follow), 0 when the file is refused (why; names gets the stage names the
 * child read before it died), LUMEN_ENOMEM. */
static int probe_file(const rn_registry *r, const char *path, rn_strv *names, char *why, size_t whylen) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "cannot check it in a separate process: pipe: %s", strerror(errno));
        return 0;
    }
    fflush(NULL); /* a plugin that calls exit() must not write the runner's buffers twice */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "cannot check it in a separate process: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        probe_child(r, path, fds[1]);
    }
    close(fds[1]);

    char *buf = NULL;
    size_t len = 0;
    int status = 0, timed_out = 0, eof = 0;
    long nap_ns = 20000;
    double deadline = lm_now() + r->probe_timeout_s;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) break;
        double left = deadline - lm_now();
        if (left <= 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            timed_out = 1;
            break;
        }
        int ms = left > 0.05 ? 50 : (int)(left * 1000) + 1;
        if (eof) { /* the pipe closed: the child is ending (short naps, growing to 10 ms) */
            struct timespec ts = {0, nap_ns};
            nanosleep(&ts, NULL);
            if (nap_ns < 10000000L) nap_ns *= 2;
        } else {
            struct pollfd p = {fds[0], POLLIN, 0};
            if (poll(&p, 1, ms) > 0) eof = drain(fds[0], &buf, &len);
        }
    }
    drain(fds[0], &buf, &len);
    close(fds[0]);

    int ok = 0, rc = 0;
    for (char *line = buf, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (!next) break; /* a line cut short by the child's death */
        *next++ = '\0';
        if (strcmp(line, "ok") == 0) ok = 1;
        else if (strncmp(line, "s ", 2) == 0 && rn_strv_find(names, line + 2) < 0)
            rc = rn_strv_push(names, line + 2);
    }
    free(buf);
    if (rc) return rc;
    if (timed_out) {
        snprintf(why, whylen, "did not finish loading within %g s", r->probe_timeout_s);
        return 0;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *what = sig == SIGINT || sig == SIGTERM || sig == SIGKILL ? "stopped" : "crashed";
        snprintf(why, whylen, "%s while loading: signal %d (%s)", what, sig, strsignal(sig));
        return 0;
    }
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, whylen, "exited with status %d while loading", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    }
    return 1;
}

/* Loads one file; refusals are recorded, only OOM is returned. */
static int load_file(rn_registry *r, const char *path) {
    char real[PATH_MAX];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    if (rn_strv_find(&r->seen, real) >= 0) return 0;
    if (rn_strv_push(&r->seen, real)) return LUMEN_ENOMEM;

    char why[1024];
    rn_strv names = {0};
    int rc = probe_file(r, path, &names, why, sizeof why);
    if (rc != 1) {
        if (rc == 0) rc = refuse(r, path, why, &names);
        rn_strv_free(&names);
        return rc;
    }
    rn_strv_free(&names);

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

    size_t n = 0;
    int bad = 0;
    rc = check_list(r, list, -1, &names, &n, &bad, why, sizeof why);
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
    double timeout = PROBE_TIMEOUT_S;
    const char *env = getenv("LUMEN_PROBE_TIMEOUT");
    if (env && *env) {
        char *end;
        errno = 0;
        timeout = strtod(env, &end);
        if (errno || *end || !(timeout > 0 && timeout <= PROBE_TIMEOUT_MAX_S))
            return lm_fail(e, LUMEN_EINVAL, "LUMEN_PROBE_TIMEOUT '%s' is not a number of seconds in (0, %g]", env,
                           PROBE_TIMEOUT_MAX_S);
    }
    rn_registry *r = calloc(1, sizeof *r);
    if (!r) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    r->probe_timeout_s = timeout;
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
