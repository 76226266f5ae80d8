/* harness.c -- see harness.h. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lm_util.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void apply_env(const char *const *env) {
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq) {
            unsetenv(env[i]);
            continue;
        }
        char *name = strndup(env[i], (size_t)(eq - env[i]));
        if (name) setenv(name, eq + 1, 1);
        free(name);
    }
}

/* In the child: cwd, env, exec.  Never returns. */
static void exec_child(const char *const *argv, const char *cwd, const char *const *env) {
    if (cwd && chdir(cwd) != 0) _exit(126);
    apply_env(env);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void buf_add(buf *b, const char *d, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void hx_run(const char *const *argv, const char *cwd, const char *const *env, double timeout_s, hx_result *r) {
    memset(r, 0, sizeof *r);
    int op[2], ep[2];
    assert_int_equal(pipe2(op, O_CLOEXEC), 0);
    assert_int_equal(pipe2(ep, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(op[1], 1);
        dup2(ep[1], 2);
        exec_child(argv, cwd, env);
    }
    close(op[1]);
    close(ep[1]);
    buf out = {0}, err = {0};
    buf_add(&out, "", 0);
    buf_add(&err, "", 0);
    struct pollfd fds[2] = {{.fd = op[0], .events = POLLIN}, {.fd = ep[0], .events = POLLIN}};
    double deadline = now() + timeout_s;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        double left = deadline - now();
        if (left <= 0) {
            kill(pid, SIGKILL);
            r->timed_out = 1;
            break;
        }
        int n = poll(fds, 2, (int)(left * 1000) + 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char chunk[8192];
            ssize_t k = read(fds[i].fd, chunk, sizeof chunk);
            if (k > 0) buf_add(i == 0 ? &out : &err, chunk, (size_t)k);
            else if (k == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r->out = out.p;
    r->err = err.p;
    if (WIFSIGNALED(status)) {
        r->exit_code = -1;
        r->signal = WTERMSIG(status);
    } else {
        r->exit_code = WEXITSTATUS(status);
    }
}

void hx_result_free(hx_result *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

pid_t hx_spawn(const char *const *argv, const char *cwd, const char *const *env, const char *out_file,
               const char *err_file) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_file ? out_file : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_file ? err_file : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(125);
        dup2(o, 1);
        dup2(e, 2);
        exec_child(argv, cwd, env);
    }
    return pid;
}

int hx_wait(pid_t pid, double timeout_s, int *status) {
    double deadline = now() + timeout_s;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) return 1;
        if (now() > deadline) return 0;
        usleep(20000);
    }
}

int hx_wait_for(int (*cond)(void *arg), void *arg, double timeout_s) {
    double deadline = now() + timeout_s;
    int v;
    while (!(v = cond(arg)) && now() < deadline) usleep(20000);
    return v;
}

char *hx_tmpdir(void) {
    char tmpl[] = "/tmp/lumen-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

void hx_rmtree(const char *path) {
    if (path) lm_rmtree(path, NULL);
}

char *hx_join(const char *a, const char *b) {
    char *p = lm_path_join(a, b);
    assert_non_null(p);
    return p;
}

char *hx_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

void hx_write(const char *path, const char *text) {
    char *dir = strdup(path);
    assert_non_null(dir);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        assert_int_equal(lm_mkdirs(dir, NULL), 0);
    }
    free(dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

char *hx_read(const char *path) {
    char *data = NULL;
    if (lm_read_file(path, &data, NULL, NULL) != 0) return NULL;
    return data;
}

int hx_exists(const char *path) { return lm_exists(path); }

int hx_count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle)) n++;
    return n;
}

char *hx_last_line(const char *text) {
    size_t n = text ? strlen(text) : 0;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n') start--;
    char *s = strndup(text ? text + start : "", n - start);
    assert_non_null(s);
    return s;
}

char *hx_failure_text(const hx_result *r, char *what) {
    fprintf(stderr, "---- %s: stdout ----\n%s\n---- %s: stderr ----\n%s\n---- end of %s ----\n", what,
            r->out ? r->out : "", what, r->err ? r->err : "", what);
    char *how = r->timed_out    ? hx_fmt("killed at the harness's deadline (signal %d)", r->signal)
                : r->signal > 0 ? hx_fmt("killed by signal %d", r->signal)
                                : hx_fmt("exit status %d", r->exit_code);
    char *last = hx_last_line(r->err);
    char *text = hx_fmt("%s failed: %s; its whole output is printed above; last line of stderr: %s", what, how, last);
    free(last);
    free(how);
    free(what);
    return text;
}

char *hx_value(const char *text, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') return strndup(p + kl + 1, len - kl - 1);
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

const char *hx_build_dir(void) {
    const char *b = getenv("LUMEN_BUILD");
    if (!b || !*b) fail_msg("LUMEN_BUILD is not set (run the tests with `make test`)");
    return b;
}

char *hx_src_dir(void) {
    const char *s = getenv("LUMEN_SRC");
    if (s && *s) return strdup(s);
    return hx_join(hx_build_dir(), "..");
}

char *hx_plugin_dir(const char *parent, const char *const *names) {
    char *dir = hx_join(parent, "plugins");
    assert_int_equal(lm_mkdirs(dir, NULL), 0);
    for (size_t i = 0; names && names[i]; i++) {
        char *src = hx_fmt("%s/tests/plugins/%s.so", hx_build_dir(), names[i]);
        char *dst = hx_fmt("%s/%s.so", dir, names[i]);
        if (!lm_exists(src)) fail_msg("test plugin %s is not built", src);
        assert_int_equal(symlink(src, dst), 0);
        free(src);
        free(dst);
    }
    return dir;
}

void hx_runner(hx_result *r, const char *cwd, const char *plugin_path, const char *const *env, ...) {
    const char *argv[64];
    size_t n = 0;
    char *runner = hx_join(hx_build_dir(), "runner");
    argv[n++] = runner;
    va_list ap;
    va_start(ap, env);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 62) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *pp = plugin_path ? hx_fmt("LUMEN_PLUGIN_PATH=%s", plugin_path) : strdup("LUMEN_PLUGIN_PATH");
    const char *envs[32];
    size_t m = 0;
    envs[m++] = pp;
    envs[m++] = "LUMEN_RUNS";
    envs[m++] = "LUMEN_DEBUG";
    for (size_t i = 0; env && env[i] && m < 31; i++) envs[m++] = env[i];
    envs[m] = NULL;
    hx_run(argv, cwd, envs, 120, r);
    free(pp);
    free(runner);
}

char *hx_asan_env(const char *extra) {
    const char *cur = getenv("ASAN_OPTIONS");
    if (cur && *cur) return hx_fmt("ASAN_OPTIONS=%s:%s", cur, extra);
    return hx_fmt("ASAN_OPTIONS=%s", extra);
}

void hx_write_experiment(const char *dir, const char *file, const char *name, const char *stage_lines) {
    char *path = hx_join(dir, file);
    char *text = hx_fmt("local lumen = require \"lumen\"\n"
                        "return lumen.experiment {\n"
                        "  name = \"%s\", seed = 42,\n"
                        "  stages = {\n"
                        "%s"
                        "  },\n"
                        "}\n",
                        name, stage_lines);
    hx_write(path, text);
    free(text);
    free(path);
}

hx_fixture *hx_fixture_new(const char *const *plugin_names) {
    hx_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->tmp = hx_tmpdir();
    f->plugins = hx_plugin_dir(f->tmp, plugin_names);
    return f;
}

void hx_fixture_free(hx_fixture *f) {
    if (!f) return;
    hx_rmtree(f->tmp);
    free(f->tmp);
    free(f->plugins);
    free(f);
}

void hx_write_sweep(const char *dir, const char *fields, const char *curve) {
    char *text = hx_fmt("local lumen = require \"lumen\"\n"
                        "return lumen.experiment {\n"
                        "  name = \"sw\", seed = 42,\n"
                        "  stages = {\n"
                        "    lumen.counter { record = \"up.txt\" },\n"
                        "    lumen.sweep {\n"
                        "      metric = \"val/score\",\n"
                        "%s\n"
                        "      stages = { lumen.curve { record = \"rec.txt\", %s } },\n"
                        "    },\n"
                        "  },\n"
                        "}\n",
                        fields, curve);
    char *path = hx_join(dir, "exp.lua");
    hx_write(path, text);
    free(path);
    free(text);
}
