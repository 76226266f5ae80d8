/* cli.c -- see cli.h. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"
#include "suggest.h"

void rn_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("runner: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
}

void rn_cli_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("runner: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int rn_cli_value(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        rn_cli_error("option %s needs a value", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

void rn_cli_unknown_option(const char *arg, const char *const *known) {
    size_t n = rn_list_len(known);
    char opt[128];
    snprintf(opt, sizeof opt, "%s", arg);
    char *eq = strchr(opt, '=');
    if (eq) *eq = '\0';
    char hint[160];
    rn_suggest_phrase(hint, sizeof hint, opt, known, n);
    rn_cli_error("unknown option '%s'%s (see runner --help)", opt, hint);
}

int rn_cli_setup(rn_paths *paths, rn_registry **reg) {
    lm_err e = {0};
    *reg = NULL;
    if (rn_paths_init(paths, &e) || rn_registry_load(&paths->plugin_dirs, reg, &e)) {
        rn_cli_error("%s", e.msg);
        rn_paths_free(paths);
        return RN_EXIT_FAIL;
    }
    return 0;
}

void rn_cli_table(const char *const *cells, size_t rows, size_t cols) {
    size_t *w = calloc(cols ? cols : 1, sizeof *w);
    if (!w) return;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            const char *s = cells[r * cols + c] ? cells[r * cols + c] : "-";
            if (strlen(s) > w[c]) w[c] = strlen(s);
        }
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            const char *s = cells[r * cols + c] ? cells[r * cols + c] : "-";
            if (c + 1 < cols) printf("%-*s  ", (int)w[c], s);
            else printf("%s", s);
        }
        putchar('\n');
    }
    free(w);
}
