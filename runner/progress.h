/*
 * progress.h -- drawing a stage's progress reports on the terminal.
 *
 * On a terminal: one line, redrawn in place, with a bar, done/total, rate,
 * ETA and the stage's detail text.  Elsewhere (logs, CI): a plain line at
 * most every RN_PROGRESS_QUIET_S seconds, and one when a phase completes.
 * A "phase" restarts (rate and ETA from zero) when the unit or the total
 * changes or `done` goes backwards.  Not thread-safe (the runner's event
 * loop owns it).
 */
#ifndef RN_PROGRESS_H
#define RN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define RN_PROGRESS_QUIET_S 10.0

typedef struct rn_progress {
    FILE *out;
    int tty;
    char label[64];      /* stage id */
    char unit[32];
    int64_t done, total;
    double phase_start;  /* lm_now() at the phase's first report */
    double last_print;   /* non-TTY: last plain line */
    double last_draw;    /* TTY: last redraw (throttled) */
    int shown;           /* TTY: a bar is on screen */
    int completed;       /* non-TTY: completion line printed for this phase */
    char detail[160];
} rn_progress;

void rn_progress_init(rn_progress *p, FILE *out, int tty, const char *label);
/* One progress report (see plugin.h host->progress). */
void rn_progress_update(rn_progress *p, int64_t done, int64_t total, const char *unit, const char *detail);
/* Before writing other text: removes the bar from the screen (TTY). */
void rn_progress_hide(rn_progress *p);
/* Redraws a hidden bar (TTY) after other text ended with a newline. */
void rn_progress_show(rn_progress *p);
/* At the end of the stage: removes the bar for good. */
void rn_progress_done(rn_progress *p);

#endif /* RN_PROGRESS_H */
