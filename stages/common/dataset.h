/*
 * dataset.h -- the lumen dataset: decoded, resized images with their labels
 * and split, in an LMDB environment folder (the "dataset" artifact written
 * by the ingest stage and read by normalize-stats, train and validate).
 *
 * On disk
 * -------
 * The folder holds data.mdb (no lock file: it is written and read with
 * MDB_NOLOCK; a finished dataset is immutable).  Two named databases:
 *
 *   meta     key "schema" -> JSON text (written last; a dataset without it is
 *            incomplete and refused):
 *              {"format":"lumen-dataset","version":1,
 *               "labels":["crack","inactive"],
 *               "height":300,"width":300,"channels":1,"pixel":"u8",
 *               "layout":"CHW","record":"LMR1",
 *               "count":N,"train":n_train,"val":n_val,
 *               "label_counts":{"train":[..],"val":[..]},   (values >= 0.5)
 *               ... plus the writer's extra keys (ingest adds "source",
 *               "root", "csv_format", "split":{"val","seed","stratify"},
 *               "skipped", "threshold", with `exclude` set "exclude"
 *               and "excluded" ...)}
 *   records  key = index as 4-byte big-endian 0..N-1 (dense, in order) ->
 *            value = one record, little-endian:
 *
 *              off  size            field
 *                0  4               magic "LMR1"
 *                4  u16             record version (1)
 *                6  u8              split: 0 = train, 1 = val
 *                7  u8              reserved, 0
 *                8  u32             height H
 *               12  u32             width W
 *               16  u32             channels C
 *               20  u32             nlabels L
 *               24  u32             name length (bytes, without its NUL)
 *               28  u32             meta length (bytes, without its NUL)
 *               32  f32[L]          labels
 *                   name bytes, 0   source image path as in the label file
 *                   meta bytes, 0   free text, e.g. "type=mono;prob=0.333"
 *                   u8[C][H][W]     pixels, planar (CHW), row-major
 *
 *            The record ends exactly after the pixels.  Every record has the
 *            schema's H, W, C and L.
 *
 * Errors follow lm_util.h: 0 or a LUMEN_E* code with a message naming the
 * dataset folder (and the record index for bad records).
 */
#ifndef LM_DATASET_H
#define LM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lm_util.h"

#define LM_DATASET_FORMAT "lumen-dataset"
#define LM_DATASET_VERSION 1
#define LM_RECORD_MAGIC "LMR1"
#define LM_RECORD_VERSION 1
#define LM_RECORD_HEADER 32 /* bytes before the labels */

/* LM_SPLIT_HELD: a record in neither split -- kept so that record numbers
 * (predictions' "index") stay the same across datasets made from the same
 * rows, read by no stage (lm_dataset_split has no list for it).  Counted as
 * "held" in the schema only when there are some. */
enum lm_split { LM_SPLIT_TRAIN = 0, LM_SPLIT_VAL = 1, LM_SPLIT_HELD = 2 };

/* One record.  From lm_dataset_get: every pointer points into the dataset's
 * memory map (labels into a copy owned by the dataset, as the map gives no
 * float alignment) and stays valid until lm_dataset_close.  For
 * lm_dataset_put: the caller's memory, copied before put returns. */
typedef struct lm_record {
    uint32_t h, w, c;      /* height, width, channels */
    int split;             /* LM_SPLIT_TRAIN, LM_SPLIT_VAL or LM_SPLIT_HELD */
    uint32_t nlabels;
    const float *labels;   /* [nlabels] */
    const char *name;      /* NUL-terminated source path */
    const char *meta;      /* NUL-terminated; "" when none (NULL ok in put) */
    const uint8_t *pixels; /* [c][h][w] */
} lm_record;

/* ------------------------------------------------------------------ read -- */

typedef struct lm_dataset lm_dataset;

/* Summary of an open dataset (from its schema, checked against the records). */
typedef struct lm_dataset_info {
    uint32_t height, width, channels;
    size_t nlabels;
    const char *const *labels; /* [nlabels] label names */
    size_t count;              /* records */
    size_t ntrain, nval;       /* records per split */
    size_t nheld;              /* records in neither (LM_SPLIT_HELD) */
} lm_dataset_info;

/* Threading: open and close from one thread; between them every reader
 * function may be called from any number of threads at once (the index and
 * the map are immutable). */

/* Opens the dataset folder `dir` read-only, parses and checks the schema and
 * indexes every record (one pass over the keys; headers validated) inside one
 * long-lived read transaction.  Returns 0; LUMEN_ENOTFOUND (no folder or no
 * data.mdb); LUMEN_EDATA (not a dataset, incomplete, bad schema, a bad record
 * "dataset DIR: record I: ..."); LUMEN_EABI (another format version);
 * LUMEN_EIO; LUMEN_ENOMEM.  *ds is NULL on failure. */
int lm_dataset_open(const char *dir, lm_dataset **ds, lm_err *err);

/* The parsed schema (owned by ds; valid until close; do not modify). */
const cJSON *lm_dataset_schema(const lm_dataset *ds);
/* Shape, labels and counts (owned by ds; valid until close). */
const lm_dataset_info *lm_dataset_get_info(const lm_dataset *ds);
size_t lm_dataset_count(const lm_dataset *ds);
/* The folder the dataset was opened from. */
const char *lm_dataset_dir(const lm_dataset *ds);

/* Fills *rec with record i (zero-copy, see lm_record).  Returns 0 or
 * LUMEN_EINVAL when i >= count.  [any thread]: reads only immutable state. */
int lm_dataset_get(const lm_dataset *ds, size_t i, lm_record *rec);

/* Indices of the records in `split` (LM_SPLIT_TRAIN / LM_SPLIT_VAL) in
 * ascending order; *n receives their number.  Owned by ds.  NULL (and *n 0)
 * for an unknown split. */
const uint32_t *lm_dataset_split(const lm_dataset *ds, int split, size_t *n);

/* Ends the read transaction and unmaps; NULL-safe.  Every pointer obtained
 * from ds becomes invalid. */
void lm_dataset_close(lm_dataset *ds);

/* ----------------------------------------------------------------- write -- */

/* A writer is used by one thread at a time (it owns an LMDB write
 * environment opened with MDB_NOLOCK: nothing else may open the folder
 * until lm_dataset_finish or lm_dataset_abort returns). */
typedef struct lm_dataset_writer lm_dataset_writer;

typedef struct lm_dataset_spec {
    uint32_t height, width, channels;
    size_t nlabels;
    const char *const *labels; /* [nlabels] names, copied */
    size_t map_size;    /* initial LMDB map size in bytes; 0 = 64 MiB */
    size_t batch_bytes; /* commit a transaction after this many record
                         * bytes; 0 = 32 MiB */
} lm_dataset_spec;

/* Creates the dataset folder `dir` (mkdir -p; any data.mdb/lock.mdb already
 * in it are removed) and opens it for writing.  The map grows as needed:
 * when a batch does not fit, its transaction is aborted, the map size
 * doubled and the batch redone, so writing never fails with MDB_MAP_FULL.
 * Returns 0, LUMEN_EINVAL (bad spec), LUMEN_EIO, LUMEN_ENOMEM.  LMDB errors
 * of the writer read as lm_dataset_write_fail says (a full disk: "no space
 * left on device while writing <dir>"). */
int lm_dataset_create(const char *dir, const lm_dataset_spec *spec,
                      lm_dataset_writer **w, lm_err *err);

/* Appends rec as record number lm_dataset_written(w) (records are written
 * in index order).  Copies everything; may commit a batch.  Returns 0,
 * LUMEN_EINVAL (shape, label count or split differ from the spec), LUMEN_EIO
 * (LMDB error), LUMEN_ENOMEM.  After a failure only lm_dataset_abort is
 * valid. */
int lm_dataset_put(lm_dataset_writer *w, const lm_record *rec, lm_err *err);

/* Records appended so far. */
size_t lm_dataset_written(const lm_dataset_writer *w);
/* Current LMDB map size in bytes and how many times it was doubled. */
size_t lm_dataset_map_size(const lm_dataset_writer *w, int *grown);

/* Commits the remaining records, writes the schema (the keys listed above
 * plus a deep copy of every item of `extra`, a JSON object or NULL; an
 * extra key replaces a computed one), syncs data.mdb to disk and closes.
 * Always frees w: on failure the folder is cleaned as by lm_dataset_abort.
 * Returns 0, LUMEN_EIO, LUMEN_ENOMEM, LUMEN_EDATA (no records). */
int lm_dataset_finish(lm_dataset_writer *w, const cJSON *extra, lm_err *err);

/* Bytes available below which an EIO from LMDB is taken for a full disk
 * (LMDB reports a short write, what a nearly full disk gives, as EIO). */
#define LM_DATASET_LOW_SPACE ((long long)1 << 20)

/* How the writer reports LMDB or errno code rc from `what` ("cannot write
 * records", "cannot sync", ...) on dataset folder dir; exposed for tests.
 * ENOSPC: "no space left on device while writing <dir> (<what>)"; EDQUOT:
 * "disk quota exceeded while writing <dir> (<what>)"; EIO while `avail`
 * (bytes available on dir's file system, -1 when unknown) is below
 * LM_DATASET_LOW_SPACE: "no space left on device while writing <dir>
 * (<what>: Input/output error with N bytes left ...)"; anything else
 * "dataset <dir>: <what>: <mdb_strerror>".  MDB_MAP_FULL never gets here
 * (the map grows).  Sets *err and returns LUMEN_ENOMEM for ENOMEM, else
 * LUMEN_EIO. */
int lm_dataset_write_fail(lm_err *err, const char *dir, const char *what, int rc,
                          long long avail);

/* Abandons the dataset: closes and deletes data.mdb (and lock.mdb), so no
 * partial dataset is left behind.  NULL-safe; frees w. */
void lm_dataset_abort(lm_dataset_writer *w);

#endif /* LM_DATASET_H */
