/*
 * Unit tests for runner/events.c: lines cut into arbitrary chunks are
 * reassembled; lines far longer than PIPE_BUF written by several threads at
 * once arrive whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

typedef struct lines {
    char *got[64];
    size_t n;
} lines;

static void collect(void *arg, char *line, size_t len) {
    lines *l = arg;
    assert_true(l->n < 64);
    assert_int_equal(strlen(line), len);
    l->got[l->n++] = strdup(line);
}

static void free_lines(lines *l) {
    for (size_t i = 0; i < l->n; i++) free(l->got[i]);
    l->n = 0;
}

static void test_chunks_make_lines(void **state) {
    (void)state;
    const char *text = "first\nsecond line\n\nthird";
    rn_linebuf lb = {0};
    lines l = {0};
    for (size_t i = 0; text[i]; i++) assert_int_equal(rn_linebuf_feed(&lb, text + i, 1, collect, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.got[0], "first");
    assert_string_equal(l.got[1], "second line");
    assert_string_equal(l.got[2], "");
    rn_linebuf_flush(&lb, collect, &l);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.got[3], "third");
    free_lines(&l);
    rn_linebuf_free(&lb);
}

#define THREADS 4
#define PER_THREAD 8
#define BIG (PIPE_BUF * 20)

typedef struct writer {
    rn_evw *w;
    int id;
} writer;

static void *write_events(void *arg) {
    writer *wr = arg;
    char *payload = malloc(BIG + 1);
    for (int k = 0; k < PER_THREAD; k++) {
        memset(payload, 'a' + wr->id, BIG);
        payload[BIG] = '\0';
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddStringToObject(ev, "t", "log");
        cJSON_AddNumberToObject(ev, "id", wr->id);
        cJSON_AddStringToObject(ev, "msg", payload);
        rn_evw_send(wr->w, ev);
    }
    free(payload);
    return NULL;
}

typedef struct reader {
    int fd;
    int ok, count;
} reader;

static void check_line(void *arg, char *line, size_t len) {
    reader *r = arg;
    (void)len;
    cJSON *ev = cJSON_Parse(line);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "id");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ev, "msg");
    int good = cJSON_IsNumber(id) && cJSON_IsString(msg) && strlen(msg->valuestring) == BIG;
    for (size_t i = 0; good && i < BIG; i++) good = msg->valuestring[i] == 'a' + (int)id->valuedouble;
    r->ok &= good;
    r->count++;
    cJSON_Delete(ev);
}

static void *read_events(void *arg) {
    reader *r = arg;
    rn_linebuf lb = {0};
    char buf[3000]; /* odd size: lines straddle reads */
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof buf)) > 0) rn_linebuf_feed(&lb, buf, (size_t)n, check_line, r);
    rn_linebuf_free(&lb);
    return NULL;
}

static void test_threads_never_interleave(void **state) {
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    rn_evw w;
    rn_evw_init(&w, p[1]);
    reader r = {.fd = p[0], .ok = 1};
    pthread_t rt, wt[THREADS];
    writer wr[THREADS];
    pthread_create(&rt, NULL, read_events, &r);
    for (int i = 0; i < THREADS; i++) {
        wr[i] = (writer){&w, i};
        pthread_create(&wt[i], NULL, write_events, &wr[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(wt[i], NULL);
    close(p[1]);
    pthread_join(rt, NULL);
    close(p[0]);
    rn_evw_destroy(&w);
    assert_int_equal(r.count, THREADS * PER_THREAD);
    assert_true(r.ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks_make_lines),
        cmocka_unit_test(test_threads_never_interleave),
    };
    return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
