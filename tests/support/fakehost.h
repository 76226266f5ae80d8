/*
 * fakehost.h -- a minimal in-process lumen_host for unit-testing stage
 * plugin wrappers without the runner: parameters come from the stage's
 * declared table (defaults parsed from their text) plus fh_set() overrides;
 * inputs/outputs are folders the test names; logs, summaries, progress and
 * the failure message are recorded for assertions; key_add feeds XXH3-64.
 */
#ifndef FAKEHOST_H
#define FAKEHOST_H

#include <stddef.h>
#include <stdint.h>

#include <lumen/plugin.h>

typedef struct lumen_ctx fh; /* the fake host's context */

fh *fh_new(const lumen_stage *st);
void fh_free(fh *f);
lumen_ctx *fh_ctx(fh *f);
const lumen_host *fh_host(void);

/* Parameter value as written in an experiment ("0.2", "true", "auto",
 * "csv", lists "{2,2,2,2}"); NULL unsets. */
void fh_set(fh *f, const char *key, const char *value);
void fh_set_input(fh *f, const char *artifact, const char *dir);
void fh_set_output(fh *f, const char *artifact, const char *dir);
void fh_set_smoke(fh *f, int on);
void fh_set_seed(fh *f, uint64_t seed);
void fh_set_threads(fh *f, int n);
/* What host->resuming() answers (default 0). */
void fh_set_resuming(fh *f, int on);

/* Calls the stage's check/key/run; 0 when the callback is NULL. */
int fh_check(fh *f);
int fh_run(fh *f);
/* Runs key() and returns the XXH3-64 of everything it added (0 on error). */
uint64_t fh_key(fh *f, int *rc);

const char *fh_fail_msg(const fh *f); /* "" when none */
int fh_fail_code(const fh *f);
/* Value of a summary key; *found 0 when absent. */
double fh_summary(const fh *f, const char *key, int *found);
/* Number of log lines containing `needle` at `level` or above. */
int fh_log_count(const fh *f, int level, const char *needle);
/* A key the stage read without declaring it (NULL when none). */
const char *fh_bad_key(const fh *f);
int64_t fh_progress_last(const fh *f, int64_t *total);

#endif /* FAKEHOST_H */
