/* events.c -- see events.h. */
#include "events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonutil.h"
#include "lm_util.h"

void rn_evw_init(rn_evw *w, int fd) {
    w->fd = fd;
    w->broken = 0;
    pthread_mutex_init(&w->lock, NULL);
}

void rn_evw_destroy(rn_evw *w) { pthread_mutex_destroy(&w->lock); }

int rn_evw_send(rn_evw *w, cJSON *ev) {
    char *text = ev ? rn_json_print(ev, 0) : NULL;
    cJSON_Delete(ev);
    if (!text) return -1;
    size_t n = strlen(text);
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (w->broken) {
        rc = -1;
    } else {
        /* text is NUL-terminated: write text + '\n' as two pieces under the
         * lock; the reader only cares about line boundaries. */
        const char *parts[2] = {text, "\n"};
        size_t lens[2] = {n, 1};
        for (int i = 0; i < 2 && rc == 0; i++) {
            const char *p = parts[i];
            size_t left = lens[i];
            while (left > 0) {
                ssize_t k = write(w->fd, p, left);
                if (k < 0 && errno == EINTR) continue;
                if (k < 0) {
                    w->broken = 1;
                    rc = -1;
                    break;
                }
                p += k;
                left -= (size_t)k;
            }
        }
    }
    pthread_mutex_unlock(&w->lock);
    free(text);
    return rc;
}

int rn_linebuf_feed(rn_linebuf *lb, const char *data, size_t n, rn_line_fn fn, void *arg) {
    if (lb->len + n + 1 > lb->cap) {
        size_t cap = lb->cap ? lb->cap : 4096;
        while (cap < lb->len + n + 1) cap *= 2;
        char *b = realloc(lb->buf, cap);
        if (!b) return LUMEN_ENOMEM;
        lb->buf = b;
        lb->cap = cap;
    }
    memcpy(lb->buf + lb->len, data, n);
    lb->len += n;
    size_t start = 0;
    for (size_t i = lb->len - n; i < lb->len; i++) {
        if (lb->buf[i] != '\n') continue;
        lb->buf[i] = '\0';
        fn(arg, lb->buf + start, i - start);
        start = i + 1;
    }
    if (start > 0) {
        memmove(lb->buf, lb->buf + start, lb->len - start);
        lb->len -= start;
    }
    return 0;
}

void rn_linebuf_flush(rn_linebuf *lb, rn_line_fn fn, void *arg) {
    if (lb->len == 0) return;
    if (lb->len + 1 > lb->cap) {
        char *b = realloc(lb->buf, lb->len + 1);
        if (!b) return;
        lb->buf = b;
        lb->cap = lb->len + 1;
    }
    lb->buf[lb->len] = '\0';
    fn(arg, lb->buf, lb->len);
    lb->len = 0;
}

void rn_linebuf_free(rn_linebuf *lb) {
    free(lb->buf);
    lb->buf = NULL;
    lb->len = lb->cap = 0;
}
