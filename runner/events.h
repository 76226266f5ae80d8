/*
 * events.h -- the event channel between a stage process and the runner.
 *
 * Every reporting call of the host API (log, metric, summary, progress,
 * fail) becomes one JSON object on one line of a pipe; the stage process
 * ends with {"t":"end","rc":N}.  Event objects:
 *
 *   {"t":"log","level":1,"msg":"..."}
 *   {"t":"metric","key":"train/loss","value":0.41,"step":3,"time":1764444612.1}
 *   {"t":"summary","key":"val/f1","value":0.8}        (number or string)
 *   {"t":"progress","done":10,"total":100,"unit":"img","detail":"..."}
 *   {"t":"fail","code":5,"msg":"labels.csv:3: bad label"}
 *   {"t":"end","rc":0}
 *
 * Writer: lines are written whole under a mutex, so threads of a stage may
 * report concurrently and lines longer than PIPE_BUF never interleave.
 * Lines are valid UTF-8 (rn_json_print): a message echoing raw bytes of a
 * file gets the text \xNN for each invalid byte.
 * Reader: rn_linebuf reassembles lines from arbitrary chunks.
 */
#ifndef RN_EVENTS_H
#define RN_EVENTS_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>

typedef struct rn_evw {
    int fd;
    int broken; /* the reader went away (EPIPE): further events are dropped */
    pthread_mutex_t lock;
} rn_evw;

/* Prepares a writer on fd (not owned: the caller closes it). */
void rn_evw_init(rn_evw *w, int fd);
/* Serialises ev as one line and writes it; takes ownership of ev (deleted).
 * Thread-safe.  Returns 0, or -1 when the line could not be written (the
 * runner is gone; the stage cannot do anything about it). */
int rn_evw_send(rn_evw *w, cJSON *ev);
void rn_evw_destroy(rn_evw *w);

/* Line reassembly for the reading side. */
typedef struct rn_linebuf {
    char *buf;
    size_t len, cap;
} rn_linebuf;

typedef void (*rn_line_fn)(void *arg, char *line, size_t len);

/* Appends a chunk and calls fn for every complete line (without the '\n';
 * NUL-terminated, writable, valid only during the call).  0 or
 * LUMEN_ENOMEM. */
int rn_linebuf_feed(rn_linebuf *lb, const char *data, size_t n, rn_line_fn fn, void *arg);
/* Calls fn for a trailing unterminated line, if any (at end of stream). */
void rn_linebuf_flush(rn_linebuf *lb, rn_line_fn fn, void *arg);
void rn_linebuf_free(rn_linebuf *lb);

#endif /* RN_EVENTS_H */
