/* csvparse.c -- see csvparse.h. */
#include "csvparse.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xxhash.h>

const char *lm_labels_format_name(int format) {
    switch (format) {
    case LM_LABELS_CSV: return "csv";
    case LM_LABELS_ELPV: return "elpv";
    default: return "auto";
    }
}

const char *lm_labels_path_problem(const char *rel) {
    if (!rel || !*rel) return "empty filename";
    if (rel[0] == '/') return "absolute path (paths must be relative to the image root)";
    for (const char *s = rel; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return "path escapes the image root ('..' component)";
        if (!e) break;
        s = e + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------- table -- */

typedef struct builder {
    lm_label_table *t;
    size_t cap;
    /* duplicate detection: open addressing over row indices + 1 */
    uint32_t *slots;
    size_t nslots;
} builder;

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static int dup_grow(builder *b) {
    size_t n = b->nslots ? b->nslots * 2 : 1024;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < b->nslots; i++) {
        uint32_t v = b->slots[i];
        if (!v) continue;
        const char *name = b->t->rows[v - 1].name;
        size_t h = (size_t)XXH3_64bits(name, strlen(name)) & (n - 1);
        while (s[h]) h = (h + 1) & (n - 1);
        s[h] = v;
    }
    free(b->slots);
    b->slots = s;
    b->nslots = n;
    return 0;
}

/* Returns the line of an earlier row with this name, 0 if none, -1 on OOM.
 * When new, remembers row index `idx` (not yet appended) under the name. */
static int dup_check(builder *b, const char *name, size_t idx) {
    if ((idx + 1) * 2 > b->nslots && dup_grow(b) != 0) return -1;
    size_t mask = b->nslots - 1;
    size_t h = (size_t)XXH3_64bits(name, strlen(name)) & mask;
    while (b->slots[h]) {
        const lm_label_row *r = &b->t->rows[b->slots[h] - 1];
        if (!strcmp(r->name, name)) return r->line;
        h = (h + 1) & mask;
    }
    b->slots[h] = (uint32_t)(idx + 1);
    return 0;
}

/* Appends a row; takes ownership of name and meta (freed on failure). */
static int add_row(builder *b, char *name, char *meta, int line,
                   const float *vals) {
    lm_label_table *t = b->t;
    if (t->nrows == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        lm_label_row *r = realloc(t->rows, nc * sizeof *r);
        if (!r) goto oom;
        t->rows = r;
        if (t->nlabels) {
            float *v = realloc(t->values, nc * t->nlabels * sizeof *v);
            if (!v) goto oom;
            t->values = v;
        }
        b->cap = nc;
    }
    t->rows[t->nrows] = (lm_label_row){.name = name, .meta = meta, .line = line};
    if (t->nlabels) memcpy(t->values + t->nrows * t->nlabels, vals, t->nlabels * sizeof *vals);
    t->nrows++;
    return 0;
oom:
    free(name);
    free(meta);
    return -1;
}

void lm_labels_free(lm_label_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i].name);
        free(t->rows[i].meta);
    }
    for (size_t i = 0; i < t->nlabels && t->label_names; i++) free(t->label_names[i]);
    free(t->label_names);
    free(t->text_column);
    free(t->rows);
    free(t->values);
    memset(t, 0, sizeof *t);
}

/* Common checks on a row's path; reports and returns non-zero when bad,
 * -1 on OOM. */
static int check_name(builder *b, const char *file, int line, const char *name,
                      lm_problems *probs) {
    const char *why = lm_labels_path_problem(name);
    if (why) {
        if (*name) lm_problems_add(probs, line, "%s:%d: %s: '%s'", file, line, why, name);
        else lm_problems_add(probs, line, "%s:%d: %s", file, line, why);
        return 1;
    }
    int prev = dup_check(b, name, b->t->nrows);
    if (prev < 0) return -1;
    if (prev > 0) {
        lm_problems_add(probs, line, "%s:%d: duplicate image path '%s' (first at line %d)", file, line, name, prev);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ CSV reader -- */

typedef struct cursor {
    const char *p, *end;
    int line; /* line of *p */
} cursor;

typedef struct record {
    char *buf; /* field bytes, each field NUL-terminated */
    size_t len, cap;
    size_t *off; /* field start offsets into buf */
    size_t n, ncap;
    int quoted; /* some field was quoted */
} record;

static int rec_putc(record *r, char c) {
    if (r->len == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 256;
        char *b = realloc(r->buf, nc);
        if (!b) return -1;
        r->buf = b;
        r->cap = nc;
    }
    r->buf[r->len++] = c;
    return 0;
}

static int rec_begin_field(record *r) {
    if (r->n == r->ncap) {
        size_t nc = r->ncap ? r->ncap * 2 : 16;
        size_t *o = realloc(r->off, nc * sizeof *o);
        if (!o) return -1;
        r->off = o;
        r->ncap = nc;
    }
    r->off[r->n++] = r->len;
    return 0;
}

static const char *rec_field(const record *r, size_t i) { return r->buf + r->off[i]; }

static void skip_to_eol(cursor *c) {
    while (c->p < c->end && *c->p != '\n') c->p++;
    if (c->p < c->end) {
        c->p++;
        c->line++;
    }
}

/* Reads one record.  Returns 1 (record in *r, *start = its first line),
 * 0 at end of input, -1 on OOM.  A malformed record sets *problem (static
 * text) and is consumed to the end of its line. */
static int read_record(cursor *c, record *r, int *start, const char **problem) {
    r->len = r->n = 0;
    r->quoted = 0;
    *problem = NULL;
    if (c->p >= c->end) return 0;
    *start = c->line;
    for (;;) {
        if (rec_begin_field(r)) return -1;
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
        if (c->p < c->end && *c->p == '"') {
            r->quoted = 1;
            c->p++;
            for (;;) {
                if (c->p >= c->end) {
                    *problem = "unterminated quoted field";
                    return rec_putc(r, '\0') ? -1 : 1;
                }
                char ch = *c->p++;
                if (ch == '"') {
                    if (c->p < c->end && *c->p == '"') {
                        c->p++;
                    } else {
                        break;
                    }
                } else if (ch == '\n') {
                    c->line++;
                }
                if (rec_putc(r, ch)) return -1;
            }
            while (c->p < c->end && is_blank(*c->p)) c->p++;
            if (c->p < c->end && *c->p != ';' && *c->p != '\n') {
                *problem = "unexpected text after a closing quote";
                skip_to_eol(c);
                return rec_putc(r, '\0') ? -1 : 1;
            }
        } else {
            size_t first = r->len;
            while (c->p < c->end && *c->p != ';' && *c->p != '\n')
                if (rec_putc(r, *c->p++)) return -1;
            while (r->len > first && is_blank(r->buf[r->len - 1])) r->len--;
        }
        if (rec_putc(r, '\0')) return -1;
        if (c->p >= c->end) return 1;
        if (*c->p == ';') {
            c->p++;
            continue;
        }
        /* '\n' */
        c->p++;
        c->line++;
        return 1;
    }
}

static int rec_is_blank(const record *r) {
    return r->n == 1 && !r->quoted && r->buf[r->off[0]] == '\0';
}

/* Checks a data row's field count and 0/1 labels into vals[t->nlabels];
 * reports and returns 0 when bad. */
static int row_labels_ok(const char *file, int start, const record *r, size_t ncols,
                         const lm_label_table *t, float *vals, lm_problems *probs) {
    if (r->n != ncols) {
        lm_problems_add(probs, start, "%s:%d: expected %zu fields (filename;%s), got %zu", file,
                        start, ncols, ncols == 2 ? "label" : "labels...", r->n);
        return 0;
    }
    for (size_t i = 0; i < t->nlabels; i++) {
        const char *v = rec_field(r, i + 1);
        if (!strcmp(v, "0")) vals[i] = 0.0f;
        else if (!strcmp(v, "1")) vals[i] = 1.0f;
        else {
            lm_problems_add(probs, start, "%s:%d: label '%s' must be 0 or 1, got '%s'", file,
                            start, t->label_names[i], v);
            return 0;
        }
    }
    return 1;
}

/* Parses the header record r (first line `start`) into t's label names and
 * allocates *vals[nlabels].  Returns 0 or LUMEN_EDATA / LUMEN_ENOMEM. */
static int csv_header(const char *file, int start, const record *r, const char *problem,
                      lm_label_table *t, float **vals, lm_err *err) {
    if (problem) return lm_fail(err, LUMEN_EDATA, "%s:%d: header: %s", file, start, problem);
    if (r->n < 2 || strcasecmp(rec_field(r, 0), "filename") != 0)
        return lm_fail(err, LUMEN_EDATA,
                       "%s:%d: header must be 'filename;<label>;...' (at least one "
                       "label column), got '%s'%s",
                       file, start, rec_field(r, 0), r->n < 2 ? " with no label column" : "");
    t->nlabels = r->n - 1;
    t->label_names = calloc(t->nlabels, sizeof *t->label_names);
    *vals = calloc(t->nlabels, sizeof **vals);
    if (!t->label_names || !*vals) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < t->nlabels; i++) {
        const char *nm = rec_field(r, i + 1);
        if (!*nm)
            return lm_fail(err, LUMEN_EDATA, "%s:%d: header: label column %zu has no name",
                           file, start, i + 1);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t->label_names[j], nm))
                return lm_fail(err, LUMEN_EDATA, "%s:%d: header: duplicate label '%s'", file,
                               start, nm);
        if (!(t->label_names[i] = strdup(nm)))
            return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", file);
    }
    return 0;
}

static int parse_csv(const char *file, cursor *c, const lm_labels_opts *o, lm_label_table *t,
                     lm_problems *probs, lm_err *err) {
    int names_only = o->names_only || o->text_column;
    size_t tcol = 0; /* text_column's field index */
    record r = {0};
    builder b = {.t = t};
    float *vals = NULL;
    int rc = 0, start = 0, got, pending = 0;
    const char *problem;

    /* header: the first non-blank record */
    while ((got = read_record(c, &r, &start, &problem)) == 1 && !problem &&
           rec_is_blank(&r))
        ;
    if (got < 0) goto oom;
    if (got == 0) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: empty label file", file);
        goto out;
    }
    if (o->text_column) { /* header required; find the column */
        if (problem || r.n < 2 || strcasecmp(rec_field(&r, 0), "filename") != 0) {
            rc = lm_fail(err, LUMEN_EDATA, "%s:%d: header must be 'filename;%s;...', got '%s'", file, start,
                         *o->text_column ? o->text_column : "<column>", problem ? problem : rec_field(&r, 0));
            goto out;
        }
        tcol = *o->text_column ? 0 : 1; /* "": the second column */
        for (size_t i = 1; i < r.n && !tcol; i++)
            if (strcmp(rec_field(&r, i), o->text_column) == 0) tcol = i;
        if (!tcol) {
            char have[256] = "";
            for (size_t i = 1; i < r.n; i++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i > 1 ? ", " : "",
                         rec_field(&r, i));
            rc = lm_fail(err, LUMEN_EDATA, "%s:%d: no column '%s' in the header (columns: %s)", file, start,
                         o->text_column, have);
            goto out;
        }
        if (!(t->text_column = strdup(rec_field(&r, tcol)))) goto oom;
    } else if (names_only) /* no label columns; the header is optional: a
                            * first record not starting with "filename" is
                            * a data row */
        pending = problem || strcasecmp(rec_field(&r, 0), "filename") != 0;
    else if ((rc = csv_header(file, start, &r, problem, t, &vals, err)))
        goto out;
    size_t ncols = r.n, seen = 0;
    while (pending || (got = read_record(c, &r, &start, &problem)) == 1) {
        pending = 0;
        if (!problem && rec_is_blank(&r)) continue;
        seen++;
        if (problem) {
            lm_problems_add(probs, start, "%s:%d: %s", file, start, problem);
            t->bad_rows++;
            continue;
        }
        if (!names_only && !row_labels_ok(file, start, &r, ncols, t, vals, probs)) {
            t->bad_rows++;
            continue;
        }
        if (tcol && (r.n != ncols || !*rec_field(&r, tcol))) {
            if (r.n != ncols)
                lm_problems_add(probs, start, "%s:%d: expected %zu fields, got %zu", file, start, ncols, r.n);
            else
                lm_problems_add(probs, start, "%s:%d: empty '%s'", file, start, o->text_column);
            t->bad_rows++;
            continue;
        }
        const char *name = rec_field(&r, 0);
        int chk = check_name(&b, file, start, name, probs);
        if (chk < 0) goto oom;
        if (chk) {
            t->bad_rows++;
            continue;
        }
        char *nm = strdup(name), *meta = tcol ? strdup(rec_field(&r, tcol)) : NULL;
        if (!nm || (tcol && !meta) || add_row(&b, nm, meta, start, vals)) {
            if (!nm || (tcol && !meta)) {
                free(nm);
                free(meta);
            }
            goto oom;
        }
    }
    if (got < 0) goto oom;
    if (seen == 0) rc = lm_fail(err, LUMEN_EDATA, "%s: no data rows after the header", file);
    goto out;
oom:
    rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", file);
out:
    free(r.buf);
    free(r.off);
    free(b.slots);
    free(vals);
    return rc;
}

/* ----------------------------------------------------------- ELPV reader -- */

/* Splits [s, e) on blanks into at most `max` tokens (NUL-terminated copies
 * in `buf`, which must hold e - s + max bytes).  Returns the token count
 * (which may exceed max: extra tokens are counted, not stored). */
static size_t split_ws(const char *s, const char *e, char *buf, char **tok, size_t max) {
    size_t n = 0;
    while (s < e) {
        while (s < e && is_blank(*s)) s++;
        if (s >= e) break;
        const char *b = s;
        while (s < e && !is_blank(*s)) s++;
        if (n < max) {
            memcpy(buf, b, (size_t)(s - b));
            buf[s - b] = '\0';
            tok[n] = buf;
            buf += (s - b) + 1;
        }
        n++;
    }
    return n;
}

static int parse_elpv(const char *file, cursor *c, double threshold,
                      lm_label_table *t, lm_problems *probs, lm_err *err) {
    builder b = {.t = t};
    char *buf = NULL;
    size_t bufcap = 0, seen = 0;
    int rc = 0;
    t->nlabels = 1;
    t->label_names = calloc(1, sizeof *t->label_names);
    if (!t->label_names || !(t->label_names[0] = strdup("defective"))) goto oom;
    while (c->p < c->end) {
        const char *s = c->p, *e = memchr(s, '\n', (size_t)(c->end - s));
        if (!e) e = c->end;
        int line = c->line;
        c->p = e < c->end ? e + 1 : e;
        c->line++;
        size_t need = (size_t)(e - s) + 4;
        if (need > bufcap) {
            char *nb = realloc(buf, need);
            if (!nb) goto oom;
            buf = nb;
            bufcap = need;
        }
        char *tok[3];
        size_t n = split_ws(s, e, buf, tok, 3);
        if (n == 0) continue;
        seen++;
        if (n != 3) {
            lm_problems_add(probs, line, "%s:%d: expected 3 fields (path probability type), got %zu", file, line, n);
            t->bad_rows++;
            continue;
        }
        char *endp;
        errno = 0;
        double prob = strtod(tok[1], &endp);
        if (*endp || endp == tok[1] || errno || !isfinite(prob) || prob < 0 || prob > 1) {
            lm_problems_add(probs, line, "%s:%d: probability must be a number in [0,1], got '%s'", file, line, tok[1]);
            t->bad_rows++;
            continue;
        }
        int chk = check_name(&b, file, line, tok[0], probs);
        if (chk < 0) goto oom;
        if (chk) {
            t->bad_rows++;
            continue;
        }
        float v = prob >= threshold ? 1.0f : 0.0f;
        char *nm = strdup(tok[0]);
        char *meta = lm_sprintf("type=%s;prob=%s", tok[2], tok[1]);
        if (!nm || !meta) {
            free(nm);
            free(meta);
            goto oom;
        }
        if (add_row(&b, nm, meta, line, &v)) goto oom;
    }
    if (seen == 0) rc = lm_fail(err, LUMEN_EDATA, "%s: empty label file", file);
    goto out;
oom:
    rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", file);
out:
    free(buf);
    free(b.slots);
    return rc;
}

/* ------------------------------------------------------------- detection -- */

static int detect(const char *file, const cursor *c, int names_only, int *format,
                  lm_err *err) {
    const char *p = c->p;
    int line = c->line;
    while (p < c->end) {
        const char *e = memchr(p, '\n', (size_t)(c->end - p));
        if (!e) e = c->end;
        const char *q = p;
        while (q < e && is_blank(*q)) q++;
        if (q < e) {
            if (memchr(q, ';', (size_t)(e - q))) {
                *format = LM_LABELS_CSV;
                return 0;
            }
            size_t len = (size_t)(e - q);
            char *buf = malloc(len + 4), *tok[3];
            if (!buf) return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", file);
            size_t n = split_ws(q, e, buf, tok, 3);
            int ok = 0;
            if (n == 3) {
                char *endp;
                (void)strtod(tok[1], &endp);
                ok = endp != tok[1] && *endp == '\0';
            }
            free(buf);
            if (ok || names_only) { /* names only: a one-column list of paths */
                *format = ok ? LM_LABELS_ELPV : LM_LABELS_CSV;
                return 0;
            }
            return lm_fail(err, LUMEN_EDATA,
                           "%s:%d: cannot tell the label file format: the first line is "
                           "neither a 'filename;<label>;...' header nor an ELPV "
                           "'path probability type' row (set format = \"csv\" or \"elpv\")",
                           file, line);
        }
        p = e + 1;
        line++;
    }
    return lm_fail(err, LUMEN_EDATA, "%s: empty label file", file);
}

/* Text that is not UTF-8/ASCII: a UTF-16 or UTF-32 byte order mark, or
 * NUL bytes (UTF-16/32 without a mark has them in a regular pattern; any
 * other NUL means binary data).  Returns 0 or LUMEN_EDATA. */
static int check_text(const char *file, const unsigned char *s, size_t len, lm_err *err) {
    const char *enc = NULL;
    if (len >= 4 && ((s[0] == 0xFF && s[1] == 0xFE && !s[2] && !s[3]) ||
                     (!s[0] && !s[1] && s[2] == 0xFE && s[3] == 0xFF)))
        enc = "UTF-32";
    else if (len >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF)))
        enc = "UTF-16";
    const unsigned char *nul = enc ? NULL : memchr(s, 0, len);
    if (nul) {
        /* no mark: ASCII text in UTF-16 has a NUL in every second byte, in
         * UTF-32 in three of every four; look at the first 64 bytes */
        size_t n = len < 64 ? len : 64, z[4] = {0, 0, 0, 0};
        for (size_t i = 0; i < n; i++) z[i % 4] += !s[i];
        size_t q = n / 4; /* full groups of four */
        if (q >= 2 && ((z[1] >= q && z[2] >= q && z[3] >= q && !z[0]) ||
                       (z[0] >= q && z[1] >= q && z[2] >= q && !z[3])))
            enc = "UTF-32";
        else if (q >= 2 && ((z[1] + z[3] >= 2 * q && !z[0] && !z[2]) ||
                            (z[0] + z[2] >= 2 * q && !z[1] && !z[3])))
            enc = "UTF-16";
    }
    if (enc)
        return lm_fail(err, LUMEN_EDATA, "%s: looks like %s text; save it as UTF-8", file, enc);
    if (nul) {
        int line = 1;
        for (const unsigned char *p = s; p < nul; p++) line += *p == '\n';
        return lm_fail(err, LUMEN_EDATA, "%s: not a text file (NUL byte at line %d)", file, line);
    }
    return 0;
}

int lm_labels_parse(const char *file, const char *text, size_t len,
                    const lm_labels_opts *o, lm_label_table *out,
                    lm_problems *probs, lm_err *err) {
    memset(out, 0, sizeof *out);
    if (!o || !probs || (!text && len))
        return lm_fail(err, LUMEN_EINVAL, "%s: lm_labels_parse: bad arguments", file);
    if (len) {
        int rc = check_text(file, (const unsigned char *)text, len, err);
        if (rc) return rc;
    }
    cursor c = {.p = text ? text : "", .end = (text ? text : "") + len, .line = 1};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) c.p += 3;
    int format = o->format;
    if (format == LM_LABELS_AUTO) {
        int rc = detect(file, &c, o->names_only || o->text_column, &format, err);
        if (rc) return rc;
    } else if (format != LM_LABELS_CSV && format != LM_LABELS_ELPV) {
        return lm_fail(err, LUMEN_EINVAL, "%s: unknown label file format %d", file, format);
    }
    out->format = format;
    int rc = format == LM_LABELS_CSV ? parse_csv(file, &c, o, out, probs, err)
                                     : parse_elpv(file, &c, o->threshold, out, probs, err);
    if (rc) lm_labels_free(out);
    return rc;
}

int lm_labels_load(const char *path, const lm_labels_opts *o, lm_label_table *out,
                   lm_problems *probs, lm_err *err) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int rc = lm_read_file(path, &text, &len, err);
    if (rc) return rc;
    rc = lm_labels_parse(path, text, len, o, out, probs, err);
    free(text);
    return rc;
}
