/*
 * csvparse.h -- label files for the ingest stage (and for validate on an
 * external CSV).
 *
 * Two formats:
 *
 *  CSV   `;`-separated, header `filename;<label1>;<label2>;...`, then one row
 *        per image: `images/cell0001.png;1;0`.  Labels are 0 or 1.  Fields may
 *        be quoted RFC-4180 style ("a;b" holds a `;`, "" is one `"`, a quoted
 *        field may span lines); unquoted fields are trimmed of blanks.  A UTF-8
 *        BOM, CRLF line ends and blank lines (anywhere, e.g. trailing) are
 *        accepted.
 *  ELPV  the ELPV labels.csv: no header, whitespace-separated
 *        `path probability type` per line, probability in [0,1].  It becomes
 *        one label `defective` = (probability >= threshold); the record
 *        metadata keeps `type=<type>;prob=<probability as written>`.
 *
 * Every image path must be relative and stay inside the image root: an
 * absolute path or a `..` component is a bad row.
 *
 * Text.  Label files are UTF-8 (or ASCII).  A UTF-16 or UTF-32 file (by its
 * byte order mark, or without one by the pattern of NUL bytes in its first
 * bytes) fails with "<file>: looks like UTF-16 text; save it as UTF-8", any
 * other NUL byte with "<file>: not a text file (NUL byte at line N)".
 * Other invalid UTF-8 (a Latin-1 file name) is passed through as bytes.
 *
 * Errors.  Whole-file problems (unreadable, not text, empty, header only,
 * bad header, format not recognised) make lm_labels_parse() fail with
 * LUMEN_EDATA (or LUMEN_ENOTFOUND / LUMEN_EIO from lm_labels_load) and a
 * message naming the file.  Row problems (wrong field count, a label other than 0/1, empty or
 * escaping path, duplicate path, bad probability, unterminated quote) do not
 * fail the parse: each is added to the caller's lm_problems as
 * "file:line: what" and the row is left out of the table (counted in
 * bad_rows).  The caller applies its bad-input policy.
 *
 * Threading: no shared state; separate tables may be parsed concurrently.
 */
#ifndef LM_CSVPARSE_H
#define LM_CSVPARSE_H

#include <stddef.h>

#include "lm_util.h"
#include "problems.h"

enum lm_labels_format {
    LM_LABELS_AUTO = 0, /* detect from the first non-blank line */
    LM_LABELS_CSV = 1,
    LM_LABELS_ELPV = 2,
};

typedef struct lm_label_row {
    char *name; /* image path relative to the root, as written */
    char *meta; /* ELPV: "type=mono;prob=0.333..."; CSV: NULL */
    int line;   /* 1-based line where the row starts */
} lm_label_row;

typedef struct lm_label_table {
    int format;          /* LM_LABELS_CSV or LM_LABELS_ELPV */
    size_t nlabels;      /* >= 1 */
    char **label_names;  /* [nlabels] */
    size_t nrows;        /* rows that parsed cleanly, in file order */
    lm_label_row *rows;  /* [nrows] */
    float *values;       /* [nrows * nlabels], row-major, each 0 or 1 */
    size_t bad_rows;     /* rows left out (each reported to the problems) */
    char *text_column;   /* opts text_column: the column read (CSV); else NULL */
} lm_label_table;

typedef struct lm_labels_opts {
    int format;       /* enum lm_labels_format */
    double threshold; /* ELPV: defective = probability >= threshold */
    /* Read only the image paths (`runner predict --csv`): in CSV format the
     * header line (first field `filename`) is optional, other columns are
     * ignored (neither counted nor checked), nlabels is 0, label_names and
     * values are NULL.  With format auto, a first line that is neither CSV
     * nor ELPV is read as a one-column CSV list of paths.  ELPV files are
     * read as usual.  Path checks (relative, no `..`, no duplicates) still
     * apply. */
    int names_only;
    /* Read the image paths and one text column (crossval `groups`): in CSV
     * format the header is required and must name this column ("": the
     * second column, whatever its name); each row's value of it (any text,
     * not empty) is kept as the row's meta, the other columns are ignored;
     * nlabels is 0 and the table's text_column names the column read.  A
     * header without the column fails naming the columns there are.  ELPV
     * files are read as usual (their meta holds the type and the
     * probability). */
    const char *text_column;
} lm_labels_opts;

/* Parses `len` bytes of `text` (need not be NUL-terminated); `file` is the
 * name used in messages.  On success fills *out (free with lm_labels_free);
 * on failure *out is left empty.  Row problems go to *probs (required).
 * Returns 0, LUMEN_EDATA (whole-file problem), LUMEN_EINVAL (bad opts) or
 * LUMEN_ENOMEM. */
int lm_labels_parse(const char *file, const char *text, size_t len,
                    const lm_labels_opts *o, lm_label_table *out,
                    lm_problems *probs, lm_err *err);
/* Reads the file at `path` and parses it (messages name `path`). */
int lm_labels_load(const char *path, const lm_labels_opts *o,
                   lm_label_table *out, lm_problems *probs, lm_err *err);
/* Frees everything the table owns and zeroes it; NULL-safe. */
void lm_labels_free(lm_label_table *t);

/* Checks that `rel` is a usable relative image path: not empty, not
 * absolute, no `..` component.  Returns NULL when fine, else a static
 * description of the problem ("absolute path", ...). */
const char *lm_labels_path_problem(const char *rel);

/* "csv" / "elpv" / "auto". */
const char *lm_labels_format_name(int format);

#endif /* LM_CSVPARSE_H */
