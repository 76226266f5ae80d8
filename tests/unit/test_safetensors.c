/* Unit tests for stages/common/safetensors.c: round trips, files written by
 * the Python library (tests/fixtures/st_python.safetensors, made by
 * tests/torch/make_st_fixture.py), malformed files, atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "safetensors.h"

/* ------------------------------------------------------------- helpers -- */

static char *tmpdir(void) {
    char tmpl[] = "/tmp/lumen-st-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rmdir_all(char *dir) {
    lm_err e = {0};
    assert_int_equal(lm_rmtree(dir, &e), 0);
    free(dir);
}

static char *fixture(const char *name) {
    const char *dir = getenv("LUMEN_FIXTURES");
    return lm_path_join(dir && *dir ? dir : "tests/fixtures", name);
}

/* Writes a file made of an 8-byte header length, `json` padded with spaces
 * to `hlen` bytes (hlen 0: no padding), and `ndata` data bytes 0,1,2,...;
 * returns its malloc'ed path.  `declared` overrides the header length field
 * when non-zero. */
static char *raw_file(const char *dir, const char *name, const char *json, size_t hlen,
                      size_t ndata, uint64_t declared) {
    size_t jl = strlen(json);
    if (hlen < jl) hlen = jl;
    size_t total = 8 + hlen + ndata;
    unsigned char *b = malloc(total);
    assert_non_null(b);
    uint64_t n = declared ? declared : hlen;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, json, jl);
    memset(b + 8 + jl, ' ', hlen - jl);
    for (size_t i = 0; i < ndata; i++) b[8 + hlen + i] = (unsigned char)i;
    char *path = lm_path_join(dir, name);
    lm_err e = {0};
    assert_int_equal(lm_write_file_atomic(path, b, total, &e), 0);
    free(b);
    return path;
}

/* Opens `path` expecting failure with `code`; checks the message names the
 * file and contains each of the NULL-terminated fragments. */
static void expect_open_error(const char *path, int code, ...) {
    lm_st_file *f = (lm_st_file *)0x1;
    lm_err e = {0};
    int rc = lm_st_open(path, &f, &e);
    if (rc != code) print_error("open %s: rc %d, message: %s\n", path, rc, e.msg);
    assert_int_equal(rc, code);
    assert_null(f);
    if (!strstr(e.msg, path)) print_error("message does not name the file: %s\n", e.msg);
    assert_non_null(strstr(e.msg, path));
    va_list ap;
    va_start(ap, code);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;) {
        if (!strstr(e.msg, frag)) print_error("'%s' not in: %s\n", frag, e.msg);
        assert_non_null(strstr(e.msg, frag));
    }
    va_end(ap);
}

static uint64_t header_len(const void *buf) {
    const unsigned char *b = buf;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    return n;
}

/* --------------------------------------------------------------- tests -- */

static void test_dtype_table(void **state) {
    (void)state;
    assert_string_equal(lm_st_dtype_name(LM_ST_BF16), "BF16");
    assert_int_equal(lm_st_dtype_size(LM_ST_I64), 8);
    assert_int_equal(lm_st_dtype_size(LM_ST_F16), 2);
    assert_int_equal(lm_st_dtype_size(LM_ST_BOOL), 1);
    for (int i = 0; i < LM_ST_NDTYPES; i++)
        assert_int_equal(lm_st_dtype_parse(lm_st_dtype_name((lm_st_dtype)i)), i);
    assert_int_equal(lm_st_dtype_parse("F8"), -1);
    assert_int_equal(lm_st_dtype_parse("f32"), -1);
    assert_true(lm_st_dtype_is_float(LM_ST_BF16));
    assert_false(lm_st_dtype_is_float(LM_ST_I32));
}

static void test_half_conversions(void **state) {
    (void)state;
    assert_true(lm_st_f16_to_f32(0x3c00) == 1.0f);
    assert_true(lm_st_f16_to_f32(0xc100) == -2.5f);
    assert_true(lm_st_f16_to_f32(0x0400) == 0x1p-14f);  /* smallest normal */
    assert_true(lm_st_f16_to_f32(0x0001) == 0x1p-24f);  /* smallest subnormal */
    assert_true(lm_st_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(lm_st_f16_to_f32(0x7c00)));
    assert_true(isnan(lm_st_f16_to_f32(0x7e00)));
    assert_true(signbit(lm_st_f16_to_f32(0x8000)));
    /* every non-NaN half survives half -> float -> half */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = lm_st_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(lm_st_f16_to_f32(lm_st_f32_to_f16(f))));
            continue;
        }
        assert_int_equal(lm_st_f32_to_f16(f), h);
    }
    /* rounding: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> even (1) */
    assert_int_equal(lm_st_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(lm_st_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(lm_st_f32_to_f16(65520.0f), 0x7c00); /* rounds to Inf */
    assert_int_equal(lm_st_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(lm_st_f32_to_f16(0x1p-25f), 0x0000);       /* halfway -> even 0 */
    assert_int_equal(lm_st_f32_to_f16(0x1p-25f * 1.5f), 0x0001);
    /* bfloat16 */
    assert_true(lm_st_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(lm_st_bf16_to_f32(0xc049) == -3.140625f);
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = lm_st_bf16_to_f32((uint16_t)b);
        if (!isnan(f)) assert_int_equal(lm_st_f32_to_bf16(f), b);
    }
    assert_int_equal(lm_st_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);      /* tie -> even */
    assert_int_equal(lm_st_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);  /* tie -> even */
    assert_true(isnan(lm_st_bf16_to_f32(lm_st_f32_to_bf16(NAN))));
}

/* Collects the chunks lm_st_writer_each_data hands out. */
typedef struct sink {
    char *buf;
    size_t len;
} sink;

static void sink_add(void *ctx, const void *data, size_t n) {
    sink *s = ctx;
    s->buf = realloc(s->buf, s->len + n);
    assert_non_null(s->buf);
    memcpy(s->buf + s->len, data, n);
    s->len += n;
}

static void test_roundtrip_many_dtypes(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *path = lm_path_join(dir, "rt.safetensors");
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);

    float wf[6] = {0.5f, -1.25f, 3.0f, 1e-3f, -0.0f, 1e30f};
    double wd[3] = {0.1, -1e300, 3.0};
    uint16_t wh[2] = {0x3c00, 0xc100};
    uint16_t wb[2] = {0x3f80, 0xc049};
    int64_t wi = 123456789012345LL;
    int32_t w32[4] = {-1, 0, 1, INT32_MAX};
    uint8_t wu[5] = {0, 1, 2, 254, 255};
    uint8_t wbool[3] = {1, 0, 1};
    float big[2 * 1 * 1 * 1 * 1 * 1 * 1 * 3];
    for (int i = 0; i < 6; i++) big[i] = (float)i * 0.25f;
    int64_t s23[] = {2, 3}, s3[] = {3}, s2[] = {2}, s4[] = {4}, s5[] = {5},
            s8d[] = {2, 1, 1, 1, 1, 1, 1, 3}, s0[] = {0, 4};

    assert_int_equal(lm_st_writer_add(w, "conv.weight", LM_ST_F32, 2, s23, wf, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "d", LM_ST_F64, 1, s3, wd, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "h", LM_ST_F16, 1, s2, wh, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "b", LM_ST_BF16, 1, s2, wb, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "bn.num_batches_tracked", LM_ST_I64, 0, NULL, &wi, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "i", LM_ST_I32, 1, s4, w32, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "u", LM_ST_U8, 1, s5, wu, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "mask", LM_ST_BOOL, 1, s3, wbool, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "eight", LM_ST_F32, 8, s8d, big, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "zero", LM_ST_F32, 2, s0, NULL, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "zeta", "last", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "model", "{\"blocks\": [2, 2], \"q\": \"x\\ny\"}", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "alpha", "first", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "alpha", "replaced", &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "unicode", "fissure \xc3\xa9tendue \xe2\x9c\x93", &e), 0);
    assert_int_equal(lm_st_writer_write(w, path, &e), 0);

    /* the serialized bytes equal the file */
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(w, &buf, &len, &e), 0);
    char *disk;
    size_t dlen;
    assert_int_equal(lm_read_file(path, &disk, &dlen, &e), 0);
    assert_int_equal(dlen, len);
    assert_memory_equal(disk, buf, len);
    assert_int_equal(header_len(buf) % 8, 0);
    /* lm_st_writer_each_data visits exactly the data section, in order, and
     * lm_st_data_section hands the same bytes back */
    sink sk = {0};
    assert_int_equal(lm_st_writer_each_data(w, sink_add, &sk, &e), 0);
    assert_int_equal(sk.len, len - 8 - header_len(buf));
    assert_memory_equal(sk.buf, (char *)buf + 8 + header_len(buf), sk.len);
    lm_st_file *sf;
    assert_int_equal(lm_st_open_buffer(buf, len, "buf", &sf, &e), 0);
    size_t slen;
    const void *sd = lm_st_data_section(sf, &slen);
    assert_int_equal(slen, sk.len);
    assert_memory_equal(sd, sk.buf, slen);
    lm_st_close(sf);
    free(sk.buf);
    free(disk);
    free(buf);
    lm_st_writer_free(w);

    lm_st_file *f;
    assert_int_equal(lm_st_open(path, &f, &e), 0);
    assert_string_equal(lm_st_path(f), path);
    assert_int_equal(lm_st_count(f), 10);
    /* layout: descending alignment class, then name, offsets contiguous */
    const char *order[] = {"bn.num_batches_tracked", "d", "conv.weight", "eight", "zero",
                           "i", "b", "h", "u", "mask"};
    size_t pos = 0;
    for (size_t i = 0; i < 10; i++) {
        const lm_st_tensor *t = lm_st_at(f, i);
        assert_string_equal(t->name, order[i]);
        assert_int_equal(t->offset, pos);
        assert_true(lm_st_is_aligned(t));
        pos += t->nbytes;
    }
    assert_null(lm_st_at(f, 10));

    const lm_st_tensor *t = lm_st_find(f, "conv.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, LM_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_memory_equal(t->data, wf, sizeof wf);
    float rf[6];
    assert_int_equal(lm_st_to_f32(f, t, rf, 6, &e), 0);
    assert_memory_equal(rf, wf, sizeof wf);

    t = lm_st_find(f, "bn.num_batches_tracked");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    int64_t ri;
    assert_int_equal(lm_st_read_i64(f, "bn.num_batches_tracked", &ri, 1, &e), 0);
    assert_int_equal(ri, wi);

    double rd[3];
    assert_int_equal(lm_st_to_f64(f, lm_st_find(f, "d"), rd, 3, &e), 0);
    assert_memory_equal(rd, wd, sizeof wd);
    float r3[3];
    assert_int_equal(lm_st_read_f32(f, "d", r3, 3, &e), 0);
    assert_true(r3[0] == 0.1f && isinf(r3[1]) && r3[1] < 0 && r3[2] == 3.0f);
    float r2[2];
    assert_int_equal(lm_st_read_f32(f, "h", r2, 2, &e), 0);
    assert_true(r2[0] == 1.0f && r2[1] == -2.5f);
    assert_int_equal(lm_st_read_f32(f, "b", r2, 2, &e), 0);
    assert_true(r2[0] == 1.0f && r2[1] == -3.140625f);
    int64_t r64[5];
    assert_int_equal(lm_st_read_i64(f, "i", r64, 4, &e), 0);
    assert_true(r64[0] == -1 && r64[3] == INT32_MAX);
    assert_int_equal(lm_st_read_i64(f, "u", r64, 5, &e), 0);
    assert_true(r64[3] == 254 && r64[4] == 255);
    assert_int_equal(lm_st_read_i64(f, "mask", r64, 3, &e), 0);
    assert_true(r64[0] == 1 && r64[1] == 0 && r64[2] == 1);
    t = lm_st_find(f, "eight");
    assert_int_equal(t->ndim, 8);
    assert_int_equal(t->shape[7], 3);
    assert_memory_equal(t->data, big, sizeof big);
    t = lm_st_find(f, "zero");
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(lm_st_to_f32(f, t, rf, 0, &e), 0);
    assert_null(lm_st_find(f, "nope"));
    assert_null(lm_st_find(f, ""));

    /* metadata: sorted, last value wins, strings intact */
    assert_int_equal(lm_st_meta_count(f), 4);
    assert_string_equal(lm_st_meta_key(f, 0), "alpha");
    assert_string_equal(lm_st_meta_value(f, 0), "replaced");
    assert_string_equal(lm_st_meta_key(f, 3), "zeta");
    assert_string_equal(lm_st_meta_get(f, "model"), "{\"blocks\": [2, 2], \"q\": \"x\\ny\"}");
    assert_string_equal(lm_st_meta_get(f, "unicode"), "fissure \xc3\xa9tendue \xe2\x9c\x93");
    assert_null(lm_st_meta_get(f, "missing"));
    assert_null(lm_st_meta_key(f, 4));
    assert_int_equal(e.code, 0);
    lm_st_close(f);
    lm_st_close(NULL);

    /* no temp file left behind */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.') entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    free(path);
    rmdir_all(dir);
}

static void test_empty_file_roundtrip(void **state) {
    (void)state;
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(w, &buf, &len, &e), 0);
    /* the reference implementation writes exactly this for no tensors */
    const unsigned char want[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    lm_st_file *f;
    assert_int_equal(lm_st_open_buffer(buf, len, "empty", &f, &e), 0);
    assert_int_equal(lm_st_count(f), 0);
    assert_int_equal(lm_st_meta_count(f), 0);
    assert_null(lm_st_find(f, "x"));
    lm_st_close(f);
    free(buf);
    lm_st_writer_free(w);
}

static void test_reads_python_file(void **state) {
    (void)state;
    char *path = fixture("st_python.safetensors");
    lm_err e = {0};
    lm_st_file *f;
    int rc = lm_st_open(path, &f, &e);
    if (rc) print_error("%s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(lm_st_count(f), 11);
    assert_string_equal(lm_st_meta_get(f, "format"), "pt");

    float w[6];
    assert_int_equal(lm_st_read_f32(f, "weight", w, 6, &e), 0);
    const float ww[6] = {0.5f, -1.25f, 3.0f, 1e-3f, -0.0f, 65504.0f};
    assert_memory_equal(w, ww, sizeof w);
    const lm_st_tensor *t = lm_st_find(f, "weight");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);

    float h[5];
    t = lm_st_find(f, "half");
    assert_int_equal(t->dtype, LM_ST_F16);
    assert_int_equal(lm_st_to_f32(f, t, h, 5, &e), 0);
    assert_true(h[0] == 1.0f && h[1] == -2.5f && h[2] == 0x1p-14f && h[3] == 0x1p-24f);
    assert_true(isinf(h[4]) && h[4] > 0);

    float b[3];
    assert_int_equal(lm_st_read_f32(f, "brain", b, 3, &e), 0);
    assert_true(b[0] == 1.0f && b[1] == -3.140625f && b[2] == 0x1p100f);
    assert_int_equal(lm_st_find(f, "brain")->dtype, LM_ST_BF16);

    double d[2];
    assert_int_equal(lm_st_to_f64(f, lm_st_find(f, "double"), d, 2, &e), 0);
    assert_true(d[0] == 0.1 && d[1] == -1e300);

    int64_t c;
    t = lm_st_find(f, "count");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->dtype, LM_ST_I64);
    assert_int_equal(lm_st_to_i64(f, t, &c, 1, &e), 0);
    assert_int_equal(c, 7);

    int64_t v[4];
    assert_int_equal(lm_st_read_i64(f, "idx", v, 3, &e), 0);
    assert_true(v[0] == -1 && v[1] == 0 && v[2] == 2147483647);
    assert_int_equal(lm_st_read_i64(f, "bytes", v, 4, &e), 0);
    assert_true(v[0] == 0 && v[1] == 1 && v[2] == 254 && v[3] == 255);
    assert_int_equal(lm_st_find(f, "mask")->dtype, LM_ST_BOOL);
    assert_int_equal(lm_st_read_i64(f, "mask", v, 3, &e), 0);
    assert_true(v[0] == 1 && v[1] == 0 && v[2] == 1);
    assert_int_equal(lm_st_read_i64(f, "i8", v, 2, &e), 0);
    assert_true(v[0] == -128 && v[1] == 127);
    assert_int_equal(lm_st_read_i64(f, "i16", v, 2, &e), 0);
    assert_true(v[0] == -32768 && v[1] == 32767);
    t = lm_st_find(f, "empty");
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 3);

    /* lumen's writer reproduces the Python file byte for byte */
    lm_st_writer *wr;
    assert_int_equal(lm_st_writer_new(&wr, &e), 0);
    for (size_t i = lm_st_count(f); i-- > 0;) { /* reverse order: the writer sorts */
        const lm_st_tensor *x = lm_st_at(f, i);
        assert_int_equal(lm_st_writer_add(wr, x->name, x->dtype, x->ndim, x->shape, x->data, &e), 0);
    }
    assert_int_equal(lm_st_writer_meta(wr, "format", "pt", &e), 0);
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(wr, &buf, &len, &e), 0);
    char *orig;
    size_t olen;
    assert_int_equal(lm_read_file(path, &orig, &olen, &e), 0);
    assert_int_equal(len, olen);
    assert_memory_equal(buf, orig, len);
    free(orig);
    free(buf);
    lm_st_writer_free(wr);
    lm_st_close(f);
    free(path);
}

static void test_unsorted_metadata_and_unaligned_buffer(void **state) {
    (void)state;
    /* a foreign header: metadata keys unsorted, F32 at an odd address */
    const char *json = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"__metadata__\":{\"b\":\"2\",\"a\":\"1\",\"c\":\"3\"}}";
    size_t jl = strlen(json), len = 8 + jl + 8;
    unsigned char *mem = malloc(len + 4);
    assert_non_null(mem);
    unsigned char *b = mem; /* shift so the tensor data sits at an odd address */
    while ((uintptr_t)(b + 8 + jl) % 4 != 1) b++;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(b + 8, json, jl);
    float vals[2] = {1.5f, -2.0f};
    memcpy(b + 8 + jl, vals, 8);
    lm_err e = {0};
    lm_st_file *f;
    assert_int_equal(lm_st_open_buffer(b, len, "odd", &f, &e), 0);
    assert_int_equal(lm_st_meta_count(f), 3);
    assert_string_equal(lm_st_meta_key(f, 0), "a");
    assert_string_equal(lm_st_meta_value(f, 2), "3");
    assert_string_equal(lm_st_meta_get(f, "b"), "2");
    const lm_st_tensor *t = lm_st_find(f, "t");
    assert_false(lm_st_is_aligned(t));
    float out[2];
    assert_int_equal(lm_st_to_f32(f, t, out, 2, &e), 0); /* UBSan: no misaligned load */
    assert_true(out[0] == 1.5f && out[1] == -2.0f);
    lm_st_close(f);
    free(mem);
}

static void test_malformed_files(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *p;
    const char *ok1 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    p = raw_file(dir, "tiny.safetensors", "", 0, 0, 0);
    /* raw_file always writes 8 length bytes: cut to 5 */
    assert_int_equal(truncate(p, 5), 0);
    expect_open_error(p, LUMEN_EDATA, "too short", NULL);
    free(p);

    p = raw_file(dir, "huge_header.safetensors", ok1, 0, 8, (uint64_t)1 << 40);
    expect_open_error(p, LUMEN_EDATA, "header length", "limit", NULL);
    free(p);

    p = raw_file(dir, "past_end.safetensors", ok1, 0, 8, 4096);
    expect_open_error(p, LUMEN_EDATA, "runs past the end of the file", NULL);
    free(p);

    p = raw_file(dir, "truncated_data.safetensors", ok1, 0, 5, 0);
    expect_open_error(p, LUMEN_EDATA, "'a'", "run past the end", NULL);
    free(p);

    p = raw_file(dir, "not_json.safetensors", "{\"a\": {\"dtype\": \"F32\", ", 0, 0, 0);
    expect_open_error(p, LUMEN_EDATA, "not valid JSON", NULL);
    free(p);

    p = raw_file(dir, "no_brace.safetensors", "[1, 2]", 0, 0, 0);
    expect_open_error(p, LUMEN_EDATA, "does not start with '{'", NULL);
    free(p);

    p = raw_file(dir, "trailing_json.safetensors", "{} {}", 0, 0, 0);
    expect_open_error(p, LUMEN_EDATA, "trailing data", NULL);
    free(p);

    p = raw_file(dir, "bad_utf8.safetensors", "{\"\xc3\x28\":{}}", 0, 0, 0);
    expect_open_error(p, LUMEN_EDATA, "UTF-8", NULL);
    free(p);

    p = raw_file(dir, "control_char.safetensors", "{\"a\x01\":{}}", 0, 0, 0);
    expect_open_error(p, LUMEN_EDATA, "control character 0x01", NULL);
    free(p);

    p = raw_file(dir, "bad_dtype.safetensors",
                 "{\"w\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "F33", NULL);
    free(p);

    p = raw_file(dir, "shape_mismatch.safetensors",
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 0, 20, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "[2, 3]", "24 bytes", "span 20", NULL);
    free(p);

    p = raw_file(dir, "neg_shape.safetensors",
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "shape entry 0", NULL);
    free(p);

    p = raw_file(dir, "frac_offset.safetensors",
                 "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2.5]}}", 0, 2, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "data_offsets", NULL);
    free(p);

    p = raw_file(dir, "reversed.safetensors",
                 "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0, 4, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "end before", NULL);
    free(p);

    p = raw_file(dir, "overlap.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 0, 12, 0);
    expect_open_error(p, LUMEN_EDATA, "'b'", "overlap", "'a'", NULL);
    free(p);

    p = raw_file(dir, "out_of_range.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                 0, 16, 0);
    expect_open_error(p, LUMEN_EDATA, "'b'", "[8, 24]", "run past the end", NULL);
    free(p);

    p = raw_file(dir, "gap.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 0, 12, 0);
    expect_open_error(p, LUMEN_EDATA, "'b'", "gap", NULL);
    free(p);

    p = raw_file(dir, "trailing_bytes.safetensors", ok1, 0, 12, 0);
    expect_open_error(p, LUMEN_EDATA, "4 bytes after the last tensor", NULL);
    free(p);

    p = raw_file(dir, "dup.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 0, 8, 0);
    expect_open_error(p, LUMEN_EDATA, "duplicate tensor name 'a'", NULL);
    free(p);

    p = raw_file(dir, "meta_number.safetensors",
                 "{\"__metadata__\":{\"ok\":\"yes\",\"epoch\":3},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                 0, 8, 0);
    expect_open_error(p, LUMEN_EDATA, "metadata key 'epoch'", "non-string", NULL);
    free(p);

    p = raw_file(dir, "meta_not_object.safetensors", "{\"__metadata__\":[\"x\"]}", 0, 0, 0);
    expect_open_error(p, LUMEN_EDATA, "__metadata__", NULL);
    free(p);

    p = raw_file(dir, "too_many_dims.safetensors",
                 "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                 "\"data_offsets\":[0,1]}}",
                 0, 1, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "9 dimensions", NULL);
    free(p);

    p = raw_file(dir, "overflow.safetensors",
                 "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                 "\"data_offsets\":[0,8]}}",
                 0, 8, 0);
    expect_open_error(p, LUMEN_EDATA, "'w'", "too large", NULL);
    free(p);

    p = lm_path_join(dir, "missing.safetensors");
    expect_open_error(p, LUMEN_ENOTFOUND, NULL);
    free(p);

    /* a valid file cut anywhere in its data is refused, never read past */
    p = raw_file(dir, "whole.safetensors", ok1, 0, 8, 0);
    for (off_t cut = 8 + (off_t)strlen(ok1) + 7; cut > 0; cut -= 3) {
        assert_int_equal(truncate(p, cut), 0);
        expect_open_error(p, LUMEN_EDATA, NULL);
    }
    free(p);
    rmdir_all(dir);
}

static void test_conversion_errors_name_tensor(void **state) {
    (void)state;
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    int64_t counter = 5, s2[] = {2};
    float fl[2] = {1, 2};
    uint64_t huge = UINT64_MAX;
    assert_int_equal(lm_st_writer_add(w, "steps", LM_ST_I64, 0, NULL, &counter, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "moments", LM_ST_F32, 1, s2, fl, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "huge", LM_ST_U64, 0, NULL, &huge, &e), 0);
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(w, &buf, &len, &e), 0);
    lm_st_writer_free(w);
    lm_st_file *f;
    assert_int_equal(lm_st_open_buffer(buf, len, "state.safetensors", &f, &e), 0);

    float out[2];
    int64_t iout[2];
    assert_int_equal(lm_st_read_f32(f, "steps", out, 1, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "state.safetensors"));
    assert_non_null(strstr(e.msg, "'steps'"));
    assert_non_null(strstr(e.msg, "I64"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_read_f32(f, "moments", out, 1, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'moments' has 2 elements, expected 1"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_read_i64(f, "moments", iout, 2, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'moments'"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_read_i64(f, "huge", iout, 1, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'huge'"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_read_f32(f, "absent", out, 1, &e), LUMEN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "state.safetensors"));
    assert_non_null(strstr(e.msg, "'absent'"));
    lm_st_close(f);
    free(buf);
}

/* Found by tests/fuzz/fuzz_checkpoint: a float tensor with no elements
 * (shape [0]) was read as int64 without complaint, while the header says
 * floating types are refused -- the type was only looked at per element. */
static void test_empty_float_tensor_refused_as_int(void **state) {
    (void)state;
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    int64_t zero[] = {0};
    assert_int_equal(lm_st_writer_add(w, "empty_f32", LM_ST_F32, 1, zero, NULL, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "empty_i64", LM_ST_I64, 1, zero, NULL, &e), 0);
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(w, &buf, &len, &e), 0);
    lm_st_writer_free(w);
    lm_st_file *f;
    assert_int_equal(lm_st_open_buffer(buf, len, "empty.safetensors", &f, &e), 0);
    int64_t iout[1];
    float out[1];
    assert_int_equal(lm_st_read_i64(f, "empty_f32", iout, 0, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'empty_f32' is F32"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_read_f32(f, "empty_i64", out, 0, &e), LUMEN_EDATA);
    assert_non_null(strstr(e.msg, "'empty_i64'"));
    lm_err_clear(&e);
    /* the right types still read (nothing) */
    assert_int_equal(lm_st_read_i64(f, "empty_i64", iout, 0, &e), 0);
    assert_int_equal(lm_st_read_f32(f, "empty_f32", out, 0, &e), 0);
    lm_st_close(f);
    free(buf);
}

static void test_writer_rejects_bad_input(void **state) {
    (void)state;
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    float x[4] = {0};
    int64_t s[] = {4}, neg[] = {-1}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    assert_int_equal(lm_st_writer_add(w, "x", LM_ST_F32, 1, s, x, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "x", LM_ST_F32, 1, s, x, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "duplicate tensor 'x'"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_add(w, "", LM_ST_F32, 1, s, x, &e), LUMEN_EINVAL);
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_add(w, "__metadata__", LM_ST_F32, 1, s, x, &e), LUMEN_EINVAL);
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_add(w, "n", LM_ST_F32, 1, neg, x, &e), LUMEN_EINVAL);
    assert_non_null(strstr(e.msg, "'n'"));
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_add(w, "nine", LM_ST_F32, 9, nine, x, &e), LUMEN_EINVAL);
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_add(w, "d", (lm_st_dtype)99, 1, s, x, &e), LUMEN_EINVAL);
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_add(w, "nodata", LM_ST_F32, 1, s, NULL, &e), LUMEN_EINVAL);
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_meta(w, "k", NULL, &e), LUMEN_EINVAL);
    lm_err_clear(&e);
    /* nothing bad was added: the file holds exactly x */
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(w, &buf, &len, &e), 0);
    lm_st_file *f;
    assert_int_equal(lm_st_open_buffer(buf, len, "w", &f, &e), 0);
    assert_int_equal(lm_st_count(f), 1);
    lm_st_close(f);
    free(buf);
    lm_st_writer_free(w);
    lm_st_writer_free(NULL);
}

/* A write that fails part-way leaves the previous file intact and no temp
 * file.  The failure is real: RLIMIT_FSIZE makes write(2) fail with EFBIG
 * (this works as root too, where a read-only folder would not stop us). */
static void test_failed_write_keeps_old_file(void **state) {
    (void)state;
    char *dir = tmpdir();
    char *path = lm_path_join(dir, "best.safetensors");
    lm_err e = {0};
    lm_st_writer *w;
    float small[4] = {1, 2, 3, 4};
    int64_t s4[] = {4}, sbig[] = {1 << 16};
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "w", LM_ST_F32, 1, s4, small, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "epoch", "1", &e), 0);
    assert_int_equal(lm_st_writer_write(w, path, &e), 0);
    lm_st_writer_free(w);

    float *big = calloc(1 << 16, sizeof *big);
    assert_non_null(big);
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "w", LM_ST_F32, 1, sbig, big, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "epoch", "2", &e), 0);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024; /* below the 256 KiB of the new file */
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = lm_st_writer_write(w, path, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(rc, LUMEN_EIO);
    assert_non_null(strstr(e.msg, path));
    lm_err_clear(&e);

    lm_st_file *f;
    assert_int_equal(lm_st_open(path, &f, &e), 0);
    assert_string_equal(lm_st_meta_get(f, "epoch"), "1");
    float back[4];
    assert_int_equal(lm_st_read_f32(f, "w", back, 4, &e), 0);
    assert_memory_equal(back, small, sizeof small);
    lm_st_close(f);

    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.') entries++;
    closedir(d);
    assert_int_equal(entries, 1); /* no stray temp file */

    /* a folder that does not exist: an error naming the file */
    char *nowhere = lm_path_join(dir, "no/such/folder/x.safetensors");
    assert_int_equal(lm_st_writer_write(w, nowhere, &e), LUMEN_EIO);
    assert_non_null(strstr(e.msg, nowhere));
    free(nowhere);

    /* and the same writer still works once the limit is gone */
    lm_err_clear(&e);
    assert_int_equal(lm_st_writer_write(w, path, &e), 0);
    assert_int_equal(lm_st_open(path, &f, &e), 0);
    assert_string_equal(lm_st_meta_get(f, "epoch"), "2");
    assert_int_equal(lm_st_find(f, "w")->numel, 1 << 16);
    lm_st_close(f);
    lm_st_writer_free(w);
    free(big);
    free(path);
    rmdir_all(dir);
}

/* Random damage to a valid file: every variant is either refused with
 * LUMEN_EDATA or fully readable -- never a crash or an out-of-bounds read
 * (run under ASan: each variant lives in a malloc'ed buffer of its exact
 * size). */
static void test_random_corruption(void **state) {
    (void)state;
    lm_err e = {0};
    lm_st_writer *w;
    assert_int_equal(lm_st_writer_new(&w, &e), 0);
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t c = 3, s23[] = {2, 3}, s2[] = {2};
    uint16_t h[2] = {0x3c00, 0x4000};
    assert_int_equal(lm_st_writer_add(w, "layer1.0.conv1.weight", LM_ST_F32, 2, s23, a, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "bn1.num_batches_tracked", LM_ST_I64, 0, NULL, &c, &e), 0);
    assert_int_equal(lm_st_writer_add(w, "h", LM_ST_F16, 1, s2, h, &e), 0);
    assert_int_equal(lm_st_writer_meta(w, "model", "{\"blocks\":[1,1]}", &e), 0);
    void *buf;
    size_t len;
    assert_int_equal(lm_st_writer_serialize(w, &buf, &len, &e), 0);
    lm_st_writer_free(w);
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    int accepted = 0, refused = 0;
    for (int it = 0; it < 4000; it++) {
        size_t n = len;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        if ((rng >> 60) == 0) n = (size_t)((rng >> 20) % len); /* truncate */
        unsigned char *v = malloc(n ? n : 1);
        assert_non_null(v);
        memcpy(v, buf, n);
        int flips = 1 + (int)((rng >> 33) % 3);
        for (int k = 0; k < flips && n > 0; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(rng >> 24) % n;
            /* mostly the header and length field, where structure lives */
            if ((rng & 3) != 0 && n > 8) at = (size_t)(rng >> 24) % (n < 200 ? n : 200);
            v[at] ^= (unsigned char)(1u << ((rng >> 8) & 7));
        }
        lm_st_file *f;
        lm_err_clear(&e);
        int rc = lm_st_open_buffer(v, n, "fuzz", &f, &e);
        if (rc == 0) {
            accepted++;
            for (size_t i = 0; i < lm_st_count(f); i++) {
                const lm_st_tensor *t = lm_st_at(f, i);
                size_t cnt = (size_t)t->numel;
                if (cnt > 4096) continue;
                if (lm_st_dtype_is_float(t->dtype)) {
                    float *out = malloc((cnt ? cnt : 1) * sizeof *out);
                    assert_int_equal(lm_st_to_f32(f, t, out, cnt, &e), 0);
                    free(out);
                } else {
                    int64_t *out = malloc((cnt ? cnt : 1) * sizeof *out);
                    rc = lm_st_to_i64(f, t, out, cnt, &e);
                    assert_true(rc == 0 || t->dtype == LM_ST_U64);
                    free(out);
                }
            }
            for (size_t i = 0; i < lm_st_meta_count(f); i++)
                assert_non_null(lm_st_meta_get(f, lm_st_meta_key(f, i)));
            lm_st_close(f);
        } else {
            refused++;
            assert_int_equal(rc, LUMEN_EDATA);
            assert_non_null(strstr(e.msg, "fuzz"));
        }
        free(v);
    }
    print_message("random damage: %d accepted (harmless), %d refused\n", accepted, refused);
    assert_true(refused > 1000);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_roundtrip_many_dtypes),
        cmocka_unit_test(test_empty_file_roundtrip),
        cmocka_unit_test(test_reads_python_file),
        cmocka_unit_test(test_unsorted_metadata_and_unaligned_buffer),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_conversion_errors_name_tensor),
        cmocka_unit_test(test_empty_float_tensor_refused_as_int),
        cmocka_unit_test(test_writer_rejects_bad_input),
        cmocka_unit_test(test_failed_write_keeps_old_file),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
