/*
 * lm_util.h -- error convention and file utilities shared by the runner, the
 * built-in stages and the engine: the bottom layer (kernels/base/,
 * build/lib/libbase.a), which depends on nothing but the plugin SDK header
 * for the LUMEN_E* codes.
 *
 * Error convention (everywhere in lumen): a function that can fail returns
 * int, 0 on success or a LUMEN_E* code from <lumen/plugin.h>, and writes a
 * human-readable message into an lm_err the caller passed (may be NULL).
 * Messages name the file, line or key at fault.  Nothing here exits.
 */
#ifndef LM_UTIL_H
#define LM_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <lumen/plugin.h>

#define LM_ERR_MSG 1024

typedef struct lm_err {
    int code;              /* LUMEN_OK or LUMEN_E* */
    char msg[LM_ERR_MSG];  /* empty when code == LUMEN_OK */
} lm_err;

/* Records code and message in *e (when e is non-NULL and holds no error yet;
 * the first error wins) and returns code. */
int lm_fail(lm_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int lm_vfail(lm_err *e, int code, const char *fmt, va_list ap);
/* Like lm_fail, appending ": strerror(errno)" for the current errno. */
int lm_fail_errno(lm_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lm_err_clear(lm_err *e);
/* Name of a LUMEN_E* code ("EDATA"). */
const char *lm_strcode(int code);

/* ---- memory: NULL on failure, never exits ---- */
char *lm_strdup(const char *s);
/* asprintf that returns NULL on failure. */
char *lm_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- paths and files ---- */
/* Joins a and b with one '/'; malloc'ed, NULL on OOM. */
char *lm_path_join(const char *a, const char *b);
/* mkdir -p; 0 or LUMEN_EIO. */
int lm_mkdirs(const char *path, lm_err *e);
/* rm -rf (no error when missing). */
int lm_rmtree(const char *path, lm_err *e);
int lm_exists(const char *path);
int lm_is_dir(const char *path);
/* Opens path read-only (close-on-exec) into *fd and fstat's it into *st.
 * 0, LUMEN_ENOTFOUND when missing ("cannot open PATH: why") or LUMEN_EIO;
 * on failure nothing is left open. */
int lm_open_read(const char *path, int *fd, struct stat *st, lm_err *e);
/* Reads a whole file; *data is malloc'ed and NUL-terminated (len excludes the
 * NUL).  LUMEN_ENOTFOUND when missing, LUMEN_EIO otherwise. */
int lm_read_file(const char *path, char **data, size_t *len, lm_err *e);
/* Writes a whole file atomically: temp file in the same folder, write, fsync,
 * rename over `path`, fsync the folder.  Readers see the old or the new
 * content, never a mix; a crash leaves at most a stray "*.tmp.*" file. */
int lm_write_file_atomic(const char *path, const void *data, size_t len,
                         lm_err *e);
/* fsync a folder (after a rename into it). */
int lm_fsync_dir(const char *dir, lm_err *e);
/* Appends len bytes with one write(2) on an O_APPEND descriptor (atomic for
 * lines up to PIPE_BUF), then fdatasync when sync is non-zero. */
int lm_append_file(const char *path, const void *data, size_t len, int sync,
                   lm_err *e);

/* ---- time and machine ---- */
double lm_now(void);       /* seconds, monotonic */
double lm_wall_time(void); /* seconds since the epoch */
int lm_ncpu(void);         /* online processors, at least 1 */

/* ---- strings ---- */
/* Levenshtein distance (for "did you mean" suggestions). */
int lm_edit_distance(const char *a, const char *b);

#endif /* LM_UTIL_H */
