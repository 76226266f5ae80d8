/*
 * Unit tests for runner/events.c: lines cut into arbitrary chunks are
 * reassembled; lines far longer than PIPE_BUF written by several threads at
 * once arrive whole; events (and all runner JSON, rn_json_utf8_fix) are
 * valid UTF-8 whatever bytes a stage's message held.
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
#include "jsonutil.h"

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

static void test_utf8_fix(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"a\":\"plain \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"}",
         "{\"a\":\"plain \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"}"}, /* valid: unchanged */
        {"\"caf\xe9\"", "\"caf\\\\xe9\""},                         /* Latin-1 */
        {"\"\xff\xfe" "f\"", "\"\\\\xff\\\\xfef\""},                  /* UTF-16 BOM */
        {"\"\x80\"", "\"\\\\x80\""},                                /* lone continuation */
        {"\"\xc3\"", "\"\\\\xc3\""},                           /* truncated */
        {"\"\xc0\xaf\"", "\"\\\\xc0\\\\xaf\""},                     /* overlong '/' */
        {"\"\xed\xa0\x80\"", "\"\\\\xed\\\\xa0\\\\x80\""},          /* surrogate */
        {"\"\xf4\x90\x80\x80\"", "\"\\\\xf4\\\\x90\\\\x80\\\\x80\""}, /* above U+10FFFF */
        {"\"\xe2\x9c\"", "\"\\\\xe2\\\\x9c\""},                     /* cut-off sequence */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *in = strdup(cases[i].in);
        char *out = rn_json_utf8_fix(in);
        assert_non_null(out);
        if (strcmp(out, cases[i].out) != 0) print_error("case %zu: %s\n", i, out);
        assert_string_equal(out, cases[i].out);
        free(out);
    }
    /* through cJSON: the text parses back to the \xNN spelling */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "msg", "labels.csv: \xff\xfe" "f");
    char *text = rn_json_print(o, 0);
    cJSON_Delete(o);
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    assert_string_equal(cJSON_GetObjectItem(back, "msg")->valuestring, "labels.csv: \\xff\\xfef");
    cJSON_Delete(back);
    free(text);
}

/* An event with raw bytes arrives as a valid UTF-8 line. */
static void test_events_are_utf8(void **state) {
    (void)state;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    rn_evw w;
    rn_evw_init(&w, fd[1]);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "t", "fail");
    cJSON_AddStringToObject(ev, "msg", "u.csv:1: bad header '\xff\xfe" "f'");
    assert_int_equal(rn_evw_send(&w, ev), 0);
    rn_evw_destroy(&w);
    close(fd[1]);
    char buf[256];
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    close(fd[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"t\":\"fail\",\"msg\":\"u.csv:1: bad header '\\\\xff\\\\xfef'\"}\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks_make_lines),
        cmocka_unit_test(test_threads_never_interleave),
        cmocka_unit_test(test_utf8_fix),
        cmocka_unit_test(test_events_are_utf8),
    };
    return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
