/* problems.c -- see problems.h. */
#include "problems.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_problems_init(lm_problems *p) { memset(p, 0, sizeof *p); }

void lm_problems_add(lm_problems *p, const char *fmt, ...) {
    p->count++;
    if (p->kept >= LM_PROBLEMS_KEEP) return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        p->oom = 1;
        return;
    }
    p->msg[p->kept++] = s;
}

char *lm_problems_report(const lm_problems *p, const char *head, char *buf,
                         size_t cap) {
    if (cap == 0) return buf;
    size_t off = 0;
    int n = snprintf(buf, cap, "%s%s%zu problem%s", head ? head : "",
                     head && *head ? ": " : "", p->count,
                     p->count == 1 ? "" : "s");
    if (n < 0 || (size_t)n >= cap) return buf;
    off = (size_t)n;
    size_t shown = 0;
    for (size_t i = 0; i < p->kept; i++) {
        /* keep room for the "... and K more" tail */
        const size_t tail = 40;
        size_t need = strlen(p->msg[i]) + 4;
        if (off + need + tail >= cap) break;
        off += (size_t)snprintf(buf + off, cap - off, "%s  %s",
                                shown ? "\n" : ":\n", p->msg[i]);
        shown++;
    }
    if (shown < p->count && off < cap)
        snprintf(buf + off, cap - off, "%s  ... and %zu more",
                 shown ? "\n" : ":\n", p->count - shown);
    return buf;
}

void lm_problems_free(lm_problems *p) {
    if (!p) return;
    for (size_t i = 0; i < p->kept; i++) free(p->msg[i]);
    memset(p, 0, sizeof *p);
}
