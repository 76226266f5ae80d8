/* lm_util.c -- see lm_util.h. */
#include "lm_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int lm_vfail(lm_err *e, int code, const char *fmt, va_list ap) {
    if (e && e->code == LUMEN_OK) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return code;
}

int lm_fail(lm_err *e, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lm_vfail(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int lm_fail_errno(lm_err *e, int code, const char *fmt, ...) {
    int saved = errno;
    if (e && e->code == LUMEN_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(saved));
        e->code = code;
    }
    errno = saved;
    return code;
}

void lm_err_clear(lm_err *e) {
    if (e) {
        e->code = LUMEN_OK;
        e->msg[0] = '\0';
    }
}

const char *lm_strcode(int code) {
    switch (code) {
    case LUMEN_OK: return "OK";
    case LUMEN_ERR: return "ERR";
    case LUMEN_EINVAL: return "EINVAL";
    case LUMEN_EIO: return "EIO";
    case LUMEN_ENOMEM: return "ENOMEM";
    case LUMEN_EDATA: return "EDATA";
    case LUMEN_ENOTFOUND: return "ENOTFOUND";
    case LUMEN_ECANCELED: return "ECANCELED";
    case LUMEN_EABI: return "EABI";
    case LUMEN_ENUMERIC: return "ENUMERIC";
    default: return "E?";
    }
}

char *lm_strdup(const char *s) { return s ? strdup(s) : NULL; }

char *lm_sprintf(const char *fmt, ...) {
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

char *lm_path_join(const char *a, const char *b) {
    if (!a || !*a) return lm_strdup(b);
    if (!b || !*b) return lm_strdup(a);
    if (b[0] == '/') return lm_strdup(b);
    size_t la = strlen(a);
    return lm_sprintf("%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
}

int lm_mkdirs(const char *path, lm_err *e) {
    char *p = lm_strdup(path);
    if (!p) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int rc = lm_fail_errno(e, LUMEN_EIO, "cannot create folder %s", p);
            free(p);
            return rc;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot create folder %s", p);
    else if (!lm_is_dir(p))
        rc = lm_fail(e, LUMEN_EIO, "%s exists and is not a folder", p);
    free(p);
    return rc;
}

int lm_rmtree(const char *path, lm_err *e) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        return lm_fail_errno(e, LUMEN_EIO, "cannot stat %s", path);
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return lm_fail_errno(e, LUMEN_EIO, "cannot open folder %s", path);
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char *child = lm_path_join(path, de->d_name);
            if (!child) {
                rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
                break;
            }
            rc = lm_rmtree(child, e);
            free(child);
        }
        closedir(d);
        if (rc) return rc;
        if (rmdir(path) != 0 && errno != ENOENT)
            return lm_fail_errno(e, LUMEN_EIO, "cannot remove folder %s", path);
        return 0;
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return lm_fail_errno(e, LUMEN_EIO, "cannot remove %s", path);
    return 0;
}

int lm_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int lm_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lm_open_read(const char *path, int *fd, struct stat *st, lm_err *e) {
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return lm_fail_errno(e, errno == ENOENT ? LUMEN_ENOTFOUND : LUMEN_EIO,
                             "cannot open %s", path);
    if (fstat(*fd, st) != 0) {
        int rc = lm_fail_errno(e, LUMEN_EIO, "cannot stat %s", path);
        close(*fd);
        *fd = -1;
        return rc;
    }
    return 0;
}

int lm_read_file(const char *path, char **data, size_t *len, lm_err *e) {
    *data = NULL;
    if (len) *len = 0;
    int fd;
    struct stat st;
    int rc = lm_open_read(path, &fd, &st, e);
    if (rc) return rc;
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return lm_fail(e, LUMEN_ENOMEM, "out of memory reading %s", path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            rc = lm_fail_errno(e, LUMEN_EIO, "cannot read %s", path);
            free(buf);
            close(fd);
            return rc;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return 0;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int lm_fsync_dir(const char *dir, lm_err *e) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return lm_fail_errno(e, LUMEN_EIO, "cannot open folder %s", dir);
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot sync folder %s", dir);
    close(fd);
    return rc;
}

int lm_write_file_atomic(const char *path, const void *data, size_t len,
                         lm_err *e) {
    char *tmp = lm_sprintf("%s.tmp.%ld", path, (long)getpid());
    char *dir = lm_strdup(path);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");

    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot create %s", tmp);
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot write %s", tmp);
    } else if (fsync(fd) != 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot sync %s", tmp);
    }
    if (close(fd) != 0 && rc == 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot close %s", tmp);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot rename %s to %s", tmp, path);
    if (rc != 0) unlink(tmp);
    else rc = lm_fsync_dir(dir, e);
out:
    free(tmp);
    free(dir);
    return rc;
}

int lm_append_file(const char *path, const void *data, size_t len, int sync,
                   lm_err *e) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return lm_fail_errno(e, LUMEN_EIO, "cannot open %s", path);
    int rc = 0;
    if (write_all(fd, data, len) != 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot append to %s", path);
    else if (sync && fdatasync(fd) != 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot sync %s", path);
    if (close(fd) != 0 && rc == 0)
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot close %s", path);
    return rc;
}

double lm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double lm_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lm_ncpu(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int lm_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 128 || lb > 128) return (int)(la > lb ? la : lb);
    int row[129];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}
