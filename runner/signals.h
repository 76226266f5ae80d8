/*
 * signals.h -- SIGINT/SIGTERM handling for the runner and its stage
 * processes.
 *
 * The handler only records the signal number in one sig_atomic_t flag (the
 * runner's only global mutable state).  In the runner it means "stop: forward
 * the signal to the running stage, then record the run as interrupted"; in a
 * stage process (which inherits the handler across fork) it is what
 * host->cancelled() reports.  Handlers are installed without SA_RESTART so
 * that a blocking poll() returns EINTR promptly.  SIGPIPE is ignored (a
 * closed pipe shows up as EPIPE).
 */
#ifndef RN_SIGNALS_H
#define RN_SIGNALS_H

/* Installs the handlers for SIGINT and SIGTERM and ignores SIGPIPE. */
void rn_signals_install(void);
/* The last SIGINT/SIGTERM received since the last clear, or 0. */
int rn_signals_pending(void);
/* Forgets a received signal (a fresh stage process starts clear). */
void rn_signals_clear(void);

#endif /* RN_SIGNALS_H */
