/*
 * ingest.h -- the ingest stage's core: label file + PNG folder -> lumen
 * dataset (see dataset.h), independent of the plugin host so tests and
 * benchmarks call it directly.  plugin.c maps the stage parameters onto
 * ingest_opts.
 *
 * Pipeline: parse the label file (csvparse.h); drop the rows listed in the
 * `exclude` file, if any; apply `limit` (a seeded subset of the remaining
 * rows, kept in file order); assign the split (split.h) over them; decode + resize the images on `threads` worker threads into a ring
 * of per-index slots while the calling thread commits records to LMDB in
 * index order.  The output is identical for every thread count.
 *
 * Bad input (bad CSV rows, missing/undecodable/oversized images, paths
 * escaping the root) is collected as "file:line: problem".  skip_bad = 0:
 * ingest_run fails with LUMEN_EDATA, the message holds the total count and
 * the first problems, and no dataset is left in `out` (data.mdb removed).
 * When the label file itself has bad rows, images are only checked for
 * existence (not decoded) before failing.  skip_bad = 1: bad rows are
 * dropped and reported through the log callback as warnings; the split is
 * assigned before decoding, so an image that fails to decode is dropped
 * from the split it was given.
 */
#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "csvparse.h"
#include "image.h"
#include "pixfilter.h"
#include "lm_util.h"

typedef struct ingest_opts {
    const char *csv;    /* label file (required) */
    const char *root;   /* image root; NULL = the label file's folder */
    const char *out;    /* dataset folder to write (created) */
    /* Optional (NULL or "": none): a label file whose image paths are left
     * out of `csv`.  It is read with the same reader in names-only mode
     * (csvparse.h: only the first column counts, its labels are not
     * checked), its format auto-detected on its own (`format` applies to
     * `csv` only), so an ELPV labels.csv can exclude a data.csv.  A row of
     * `csv` is dropped when its path, as written after the reader's
     * unquoting and trimming, is byte-for-byte equal to a path of the
     * exclude file: no normalisation ("./a.png" is not "a.png").  A missing
     * or unreadable exclude file, or one with any bad row, fails (whatever
     * skip_bad says: a dropped exclude row would let its image in);
     * excluding every usable row fails too. */
    const char *exclude;
    /* Optional (NULL or "": none): a label file of extra TRAINING
     * negatives, format auto-detected.  Its rows that are negatives -- an
     * ELPV row with defect probability <= negatives_max_prob, a CSV row
     * whose every label is 0 -- and whose path `csv` does not list (as
     * written, excluded or not) join the training split with every label
     * of `csv` set to 0: an ELPV cell the experts rated defect-free has
     * neither a crack nor an inactive region.  They never enter the
     * validation split, and the split or folds of csv's own rows are the
     * same with or without them (assigned before they are added), so runs
     * with and without them pair fold by fold.  Image paths are relative to
     * the same root as csv's; `limit` caps them too (a seeded subset);
     * `exclude` applies to csv only.  A missing file or any bad row fails,
     * naming file:line (whatever skip_bad says); an image that does not
     * decode is bad input like one of csv's. */
    const char *negatives;
    double negatives_max_prob; /* ELPV negatives file: probability bound, [0, 1) */
    /* Optional (NULL or "": none): a label file (ELPV or CSV, auto-detected;
     * ELPV's "defective" at `threshold`) whose labels are appended to csv's
     * as AUXILIARY labels -- extra targets for multi-task training -- joined
     * by image path (as written, byte for byte).  Every row to ingest
     * (csv's and the negatives') must be in it, and its label names must
     * not clash with csv's.  The split or folds are assigned on csv's own
     * labels before the join, so runs with and without it pair fold by
     * fold.  A missing file, a bad row, or a row it does not list fails,
     * naming the file (whatever skip_bad says). */
    const char *aux;
    /* Optional (NULL or "": none): a second opinion on csv's negatives, a
     * label file (ELPV or CSV, auto-detected) joined by image path.  A row
     * of csv in the TRAINING split whose every label is 0 but that this
     * file calls defective -- an ELPV row with defect probability >=
     * doubtful_min_prob, a CSV row with any label 1 -- is left out of
     * training: written with split LM_SPLIT_HELD (read by no stage), so
     * every record keeps its number.  The validation split (or fold) keeps
     * every row, so validation scores stay comparable and runs with and
     * without it pair fold by fold; the split is assigned before.
     * Rows the file does not list stay.  A missing file or a bad row fails,
     * naming file:line (whatever skip_bad says). */
    const char *doubtful;
    double doubtful_min_prob; /* ELPV doubtful file: defective at this probability, (0, 1] */
    int format;         /* enum lm_labels_format */
    double threshold;   /* ELPV: defective = probability >= threshold */
    int size;           /* images become size x size */
    int channels;       /* 1 or 3: decoded channels */
    lm_pixfilter filter; /* pixfilter.h: zero = none; a high-pass filter doubles
                          * the stored channels (schema "channels", "filter") */
    double val;         /* validation share, [0, 1] */
    uint64_t seed;      /* split (and limit subset) seed */
    int stratify;       /* stratify the split by label combination */
    int folds;          /* >= 2: k-fold mode (lm_crossfit_folds: stratified by
                         * label combination, seeded by seed); fold `fold` is
                         * the validation split, val and stratify are unused */
    int fold;           /* k-fold mode: 0 .. folds - 1 */
    int skip_bad;       /* 1: skip bad rows; 0: fail */
    int64_t limit;      /* > 0: ingest only this many rows (seeded subset) */
    int threads;        /* decode workers; <= 0: one per core */
    lm_image_limits limits; /* max_width == 0: LM_IMAGE_LIMITS_DEFAULT */
    size_t map_size;    /* initial LMDB map size; 0: the writer's default */

    /* Optional callbacks, `user` passed back; ingest_run calls them only
     * from the thread that called it (workers never do). */
    void *user;
    void (*log)(void *user, int level, const char *msg); /* LUMEN_LOG_* */
    void (*progress)(void *user, int64_t done, int64_t total);
    int (*cancelled)(void *user); /* non-zero: stop with LUMEN_ECANCELED */
} ingest_opts;

/* Defaults matching the stage parameters (format auto, threshold 0.5, size
 * 300, channels 1, val 0.2, seed 0, stratify, fail on bad input). */
void ingest_opts_default(ingest_opts *o);

typedef struct ingest_result {
    size_t rows;      /* usable rows in the label file (before exclude, limit) */
    size_t excluded;  /* usable rows dropped because `exclude` lists them */
    size_t negatives; /* rows of the negatives file added to the training split */
    size_t doubtful;  /* training negatives held out (ingest_opts.doubtful); not in train */
    size_t aux;       /* auxiliary labels appended (ingest_opts.aux) */
    size_t selected;  /* rows chosen for ingest (after exclude and limit) */
    size_t images;    /* records written */
    size_t skipped;   /* problems skipped (bad rows + bad images) */
    size_t train, val;
    size_t nlabels;
    double seconds;   /* wall time of ingest_run */
} ingest_result;

/* Runs the ingest on `threads` worker threads plus the calling thread (the
 * LMDB writer); all threads are joined before it returns.  Returns 0 (the dataset in o->out is complete, schema
 * written and synced), LUMEN_EDATA (bad input, see above; message names
 * file:line and the total; also a bad exclude file or every row excluded),
 * LUMEN_EINVAL (bad options), LUMEN_ENOTFOUND (no label or exclude file;
 * the message names it), LUMEN_EIO, LUMEN_ENOMEM, LUMEN_ECANCELED.  On any
 * failure no data.mdb is left in o->out.  res may be NULL. */
int ingest_run(const ingest_opts *o, ingest_result *res, lm_err *err);

/* Folds the external inputs into a cache key: the label file's bytes, the
 * resolved root, the exclude file's bytes (when o->exclude is set; nothing
 * is added when it is not, so such keys are unchanged), and for every
 * usable row of the label file (excluded or not) its relative path, file
 * size and mtime (stat only, nothing decoded); with o->negatives set, the
 * same for the negatives file (bytes, every row's image) and its
 * probability bound; with o->aux set, the aux file's bytes.  `add` receives the bytes.
 * Returns 0, LUMEN_ENOTFOUND / LUMEN_EIO (label or exclude file
 * unreadable; the message names it) or LUMEN_ENOMEM; a label file that
 * does not parse is folded by content only. */
int ingest_key(const ingest_opts *o, void (*add)(void *user, const void *data, size_t len),
               void *user, lm_err *err);

/* The stage descriptor (plugin.c), for tests that drive the plugin wrapper
 * with a fake host. */
extern const lumen_stage ingest_stage;

#endif /* INGEST_H */
