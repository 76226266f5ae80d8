/*
 * problems.h -- a collector of bad-input problems ("file:line: what").
 *
 * Stages that read user data (CSV rows, images) do not stop at the first bad
 * row: they collect every problem, count them all, keep the text of the
 * LM_PROBLEMS_KEEP with the lowest line numbers (whatever order they were
 * found in: CSV rows first, images later), and then either fail with a
 * report (lm_problems_report, in line order) or skip the bad rows and log
 * the same report as warnings.
 *
 * Threading: an lm_problems is not synchronised; one thread adds at a time.
 * Ownership: the collector owns its message strings; lm_problems_free()
 * releases them (and is a no-op on a zeroed or already freed collector).
 */
#ifndef LM_PROBLEMS_H
#define LM_PROBLEMS_H

#include <stddef.h>

#define LM_PROBLEMS_KEEP 10

typedef struct lm_problems {
    size_t count;                 /* every problem added */
    size_t kept;                  /* messages stored, <= LM_PROBLEMS_KEEP */
    char *msg[LM_PROBLEMS_KEEP];  /* kept messages, ascending line */
    long line[LM_PROBLEMS_KEEP];  /* their line numbers */
    int oom;                      /* a message could not be stored */
} lm_problems;

/* Zeroes *p (a zero-initialised struct is also ready for use). */
void lm_problems_init(lm_problems *p);
/* Counts one problem found at `line` (0 when it has none) and keeps its
 * formatted text if it is among the LM_PROBLEMS_KEEP lowest lines so far
 * (ties keep the earlier one).  Never fails: an allocation failure only
 * loses the text (and sets p->oom); the count stays right. */
void lm_problems_add(lm_problems *p, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes into buf (always NUL-terminated when cap > 0):
 *     "<head>: N problem(s):\n  msg1\n  msg2\n  ... and K more"
 * fitting as many kept messages as cap allows; the total count always
 * comes first so it survives truncation.  Returns buf. */
char *lm_problems_report(const lm_problems *p, const char *head, char *buf,
                         size_t cap);
void lm_problems_free(lm_problems *p);

#endif /* LM_PROBLEMS_H */
