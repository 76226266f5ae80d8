/* problems.c -- see problems.h. */
#include "problems.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_problems_init(lm_problems *p) { memset(p, 0, sizeof *p); }

void lm_problems_add(lm_problems *p, long line, const char *fmt, ...) {
    p->count++;
    /* position among the kept ones: after every kept line <= line */
    size_t at = p->kept;
    while (at > 0 && p->line[at - 1] > line) at--;
    if (at >= LM_PROBLEMS_KEEP) return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        p->oom = 1;
        return;
    }
    if (p->kept == LM_PROBLEMS_KEEP) free(p->msg[--p->kept]); /* evict the highest line */
    memmove(p->msg + at + 1, p->msg + at, (p->kept - at) * sizeof *p->msg);
    memmove(p->line + at + 1, p->line + at, (p->kept - at) * sizeof *p->line);
    p->msg[at] = s;
    p->line[at] = line;
    p->kept++;
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
