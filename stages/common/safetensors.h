/*
 * safetensors.h -- read and write safetensors files (the Hugging Face format
 * PyTorch users load with `safetensors.torch.load_file`).
 *
 * The format: an 8-byte little-endian unsigned header length N, N bytes of
 * UTF-8 JSON
 *
 *     {"__metadata__": {"key": "string value", ...},
 *      "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 *
 * and then the data section.  Offsets are relative to the start of the data
 * section; each tensor is contiguous, row-major, little-endian.  The reader
 * is as strict as the reference implementation (the Rust crate behind the
 * Python library): tensors must tile the data section exactly, with no gap,
 * overlap or trailing byte.  The writer produces what the Python library
 * produces: tensors ordered by descending dtype alignment then by name,
 * "__metadata__" first (its keys sorted), the header padded with spaces to a
 * multiple of 8 bytes so every tensor is aligned for its type.
 *
 * Memory and threading: an lm_st_file is read-only once opened and may be
 * read from several threads at once; everything it hands out (names, shapes,
 * data pointers, metadata strings) lives until lm_st_close().  An
 * lm_st_writer belongs to one thread at a time.  Only little-endian hosts
 * are supported (checked at compile time).
 *
 * Errors follow lm_util.h: 0 or a LUMEN_E* code, with a message naming the
 * file and, where one is at fault, the tensor or metadata key.
 */
#ifndef LM_SAFETENSORS_H
#define LM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lm_util.h"

/* Element types, in the reference implementation's order (which the writer
 * uses, descending, to lay tensors out by alignment). */
typedef enum lm_st_dtype {
    LM_ST_BOOL = 0, /* 1 byte, 0 or 1 */
    LM_ST_U8,
    LM_ST_I8,
    LM_ST_I16,
    LM_ST_U16,
    LM_ST_F16,  /* IEEE half */
    LM_ST_BF16, /* bfloat16: the top half of an IEEE float */
    LM_ST_I32,
    LM_ST_U32,
    LM_ST_F32,
    LM_ST_F64,
    LM_ST_I64,
    LM_ST_U64,
    LM_ST_NDTYPES
} lm_st_dtype;

/* Most dimensions a tensor may have here (a file with more is refused). */
#define LM_ST_MAX_DIMS 8
/* Largest header accepted, as in the reference implementation. */
#define LM_ST_MAX_HEADER 100000000u

/* "F32", "BF16", ...; "?" for an out-of-range value. */
const char *lm_st_dtype_name(lm_st_dtype dt);
/* Bytes per element (0 for an out-of-range value). */
size_t lm_st_dtype_size(lm_st_dtype dt);
/* Parses a dtype name ("F32"); -1 when unknown. */
int lm_st_dtype_parse(const char *name);
/* Non-zero for F16, BF16, F32, F64. */
int lm_st_dtype_is_float(lm_st_dtype dt);

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/* One tensor of an open file.  All pointers stay valid until lm_st_close. */
typedef struct lm_st_tensor {
    const char *name;
    lm_st_dtype dtype;
    int ndim;                       /* 0 for a scalar (shape []) */
    int64_t shape[LM_ST_MAX_DIMS];  /* shape[0..ndim-1] */
    int64_t numel;                  /* product of shape (1 for a scalar) */
    size_t offset;                  /* begin, relative to the data section */
    size_t nbytes;                  /* numel * lm_st_dtype_size(dtype) */
    /* Raw little-endian bytes.  Aligned for the dtype when the file came
     * from this writer or the Python library, but a foreign file may place a
     * tensor anywhere: read through lm_st_to_f32/lm_st_to_i64 (which copy)
     * unless lm_st_is_aligned() says a cast is safe. */
    const void *data;
} lm_st_tensor;

typedef struct lm_st_file lm_st_file;

/* Opens and validates `path` (memory-mapped read-only).  On success *out
 * owns the mapping; free it with lm_st_close().  Errors: LUMEN_ENOTFOUND
 * (missing), LUMEN_EIO (unreadable), LUMEN_EDATA (malformed: the message
 * names the file and the tensor or key at fault), LUMEN_ENOMEM. */
int lm_st_open(const char *path, lm_st_file **out, lm_err *e);

/* Like lm_st_open on a buffer the caller owns and keeps alive and unchanged
 * until lm_st_close (used for fuzzing and in-memory files).  `label` names
 * the buffer in error messages (copied). */
int lm_st_open_buffer(const void *buf, size_t len, const char *label,
                      lm_st_file **out, lm_err *e);

/* Unmaps and frees; NULL is a no-op. */
void lm_st_close(lm_st_file *f);

/* The path (or label) the file was opened with. */
const char *lm_st_path(const lm_st_file *f);

/* The data section: the *len bytes after the header (every tensor's bytes,
 * in file order, tiling it exactly); valid until lm_st_close.  What a
 * checksum of the tensor data covers (checkpoint.h). */
const void *lm_st_data_section(const lm_st_file *f, size_t *len);

/* Number of tensors, and the i-th in file (data offset) order. */
size_t lm_st_count(const lm_st_file *f);
const lm_st_tensor *lm_st_at(const lm_st_file *f, size_t i);

/* The tensor called `name`, or NULL (O(log n)). */
const lm_st_tensor *lm_st_find(const lm_st_file *f, const char *name);

/* Metadata: number of "__metadata__" entries, the i-th key and value (keys in
 * sorted order), and the value for a key or NULL when absent. */
size_t lm_st_meta_count(const lm_st_file *f);
const char *lm_st_meta_key(const lm_st_file *f, size_t i);
const char *lm_st_meta_value(const lm_st_file *f, size_t i);
const char *lm_st_meta_get(const lm_st_file *f, const char *key);

/* Non-zero when t->data may be cast to a pointer of its element type. */
int lm_st_is_aligned(const lm_st_tensor *t);

/* Copies tensor t (of file f, for messages) into out[0..n-1] as float,
 * converting F64, F16 and BF16 (F64 rounds to nearest).  n must equal
 * t->numel.  LUMEN_EDATA naming the file and tensor when t is not a floating
 * type or n differs.  Never fails for any bit pattern (NaN/Inf are kept). */
int lm_st_to_f32(const lm_st_file *f, const lm_st_tensor *t, float *out,
                 size_t n, lm_err *e);
/* Same into double (exact for every supported floating type). */
int lm_st_to_f64(const lm_st_file *f, const lm_st_tensor *t, double *out,
                 size_t n, lm_err *e);
/* Copies an integer or BOOL tensor into int64 (U64 values above INT64_MAX
 * are an LUMEN_EDATA error naming the tensor).  Floating types are refused. */
int lm_st_to_i64(const lm_st_file *f, const lm_st_tensor *t, int64_t *out,
                 size_t n, lm_err *e);

/* Convenience for named state: finds `name`, checks it holds exactly n
 * elements and converts as above.  LUMEN_ENOTFOUND naming the file and the
 * tensor when absent, LUMEN_EDATA on a size or type mismatch. */
int lm_st_read_f32(const lm_st_file *f, const char *name, float *out, size_t n,
                   lm_err *e);
int lm_st_read_i64(const lm_st_file *f, const char *name, int64_t *out,
                   size_t n, lm_err *e);

/* Scalar conversions (exposed for tests and for the checkpoint loader). */
float lm_st_f16_to_f32(uint16_t h);
float lm_st_bf16_to_f32(uint16_t b);
/* Round-to-nearest-even; overflow gives +-Inf, NaN stays NaN. */
uint16_t lm_st_f32_to_f16(float f);
uint16_t lm_st_f32_to_bf16(float f);

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct lm_st_writer lm_st_writer;

/* A new empty writer (*out; free with lm_st_writer_free).  LUMEN_ENOMEM. */
int lm_st_writer_new(lm_st_writer **out, lm_err *e);
/* Frees the writer (not the tensor data it points to); NULL is a no-op. */
void lm_st_writer_free(lm_st_writer *w);

/* Adds a tensor.  `name` and `shape` are copied; `data` (numel elements of
 * `dtype`, little-endian, row-major; may be NULL when numel is 0) is
 * borrowed and must stay valid and unchanged until lm_st_writer_write
 * returns.  ndim 0 is a scalar.  LUMEN_EINVAL for a duplicate or empty name,
 * the name "__metadata__", a bad dtype, ndim outside [0, LM_ST_MAX_DIMS] or
 * a negative dimension; LUMEN_ENOMEM. */
int lm_st_writer_add(lm_st_writer *w, const char *name, lm_st_dtype dtype,
                     int ndim, const int64_t *shape, const void *data,
                     lm_err *e);

/* Sets metadata key -> value (both copied; a key set twice keeps the last
 * value).  LUMEN_EINVAL for a NULL key or value; LUMEN_ENOMEM. */
int lm_st_writer_meta(lm_st_writer *w, const char *key, const char *value,
                      lm_err *e);

/* Writes every tensor added so far to `path` atomically: a temp file in the
 * same folder, fsync, rename over `path`, fsync of the folder.  On any
 * failure `path` is left as it was and the temp file is removed.  The
 * writer stays usable (it can be written again).  LUMEN_EIO (message names
 * the file and errno), LUMEN_ENOMEM. */
int lm_st_writer_write(const lm_st_writer *w, const char *path, lm_err *e);

/* Calls fn(ctx, bytes, n) once per non-empty tensor added so far, in the
 * order lm_st_writer_write lays them out: together the calls see exactly the
 * data section the file would hold (lm_st_data_section of it), whatever
 * metadata is set before or after (metadata lives in the header).  For a
 * checksum of the data written into the metadata.  0 or LUMEN_ENOMEM. */
int lm_st_writer_each_data(const lm_st_writer *w,
                           void (*fn)(void *ctx, const void *data, size_t n),
                           void *ctx, lm_err *e);

/* Serializes into one malloc'ed buffer (*buf, *len; caller frees) instead of
 * a file: the exact bytes lm_st_writer_write would write. */
int lm_st_writer_serialize(const lm_st_writer *w, void **buf, size_t *len,
                           lm_err *e);

#endif /* LM_SAFETENSORS_H */
