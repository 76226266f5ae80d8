/* cache.c -- see cache.h. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "jsonutil.h"
#include "proc.h"

int rn_cache_init(rn_cache *c, const char *runs_dir, lm_err *e) {
    c->counter = 0;
    c->root = lm_path_join(runs_dir, ".cache");
    return c->root ? 0 : lm_fail(e, LUMEN_ENOMEM, "out of memory");
}

void rn_cache_free(rn_cache *c) {
    if (!c) return;
    free(c->root);
    c->root = NULL;
}

char *rn_cache_entry_dir(const rn_cache *c, const char *stage, const char *key) {
    return lm_sprintf("%s/%s/%s", c->root, stage, key);
}

static int has_marker(const char *dir) {
    char *m = lm_path_join(dir, RN_CACHE_MARKER);
    int ok = m && lm_exists(m);
    free(m);
    return ok;
}

int rn_cache_has(const rn_cache *c, const char *stage, const char *key) {
    char *d = rn_cache_entry_dir(c, stage, key);
    int ok = d && has_marker(d);
    free(d);
    return ok;
}

/* "<anything>.tmp-<pid>-<n>" or ".old-": the pid, or 0 when not such a name. */
static long scratch_pid(const char *name) {
    const char *t = strstr(name, ".tmp-");
    if (!t) t = strstr(name, ".old-");
    if (!t) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    return (pid > 0 && *end == '-') ? pid : 0;
}

/* Removes scratch folders of dead processes in one stage folder. */
static void sweep_stale(const char *stage_dir) {
    DIR *d = opendir(stage_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid = scratch_pid(de->d_name);
        if (pid == 0 || rn_pid_alive(pid)) continue;
        char *p = lm_path_join(stage_dir, de->d_name);
        if (p) lm_rmtree(p, NULL);
        free(p);
    }
    closedir(d);
}

static char *scratch_name(rn_cache *c, const char *stage, const char *key, const char *kind) {
    return lm_sprintf("%s/%s/%s.%s-%ld-%u", c->root, stage, key, kind, (long)getpid(), c->counter++);
}

int rn_cache_begin(rn_cache *c, const char *stage, const char *key, char **tmp, lm_err *e) {
    *tmp = NULL;
    char *stage_dir = lm_path_join(c->root, stage);
    char *final = rn_cache_entry_dir(c, stage, key);
    int rc = 0;
    if (!stage_dir || !final) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = lm_mkdirs(stage_dir, e))) goto out;
    if (lm_is_dir(final) && !has_marker(final) && (rc = lm_rmtree(final, e))) goto out;
    sweep_stale(stage_dir);
    *tmp = scratch_name(c, stage, key, "tmp");
    if (!*tmp) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    lm_rmtree(*tmp, NULL); /* a leftover of a previous process with our pid */
    if (mkdir(*tmp, 0777) != 0) {
        rc = lm_fail_errno(e, LUMEN_EIO, "cannot create cache folder %s", *tmp);
        free(*tmp);
        *tmp = NULL;
    }
out:
    free(stage_dir);
    free(final);
    return rc;
}

/* Flushes everything the stage wrote before the marker makes it visible. */
static int sync_tree(const char *dir, lm_err *e) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return lm_fail_errno(e, LUMEN_EIO, "cannot open %s", dir);
    int rc = syncfs(fd) == 0 ? 0 : lm_fail_errno(e, LUMEN_EIO, "cannot sync %s", dir);
    close(fd);
    return rc;
}

int rn_cache_commit(rn_cache *c, const char *stage, const char *key, const char *tmp, const cJSON *marker,
                    int replace, int *lost, lm_err *e) {
    *lost = 0;
    char *final = rn_cache_entry_dir(c, stage, key);
    char *mpath = lm_path_join(tmp, RN_CACHE_MARKER);
    char *stage_dir = lm_path_join(c->root, stage);
    char *old = NULL;
    int rc = 0;
    if (!final || !mpath || !stage_dir) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = sync_tree(tmp, e)) || (rc = rn_json_write_atomic(mpath, marker, e))) goto out;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (rename(tmp, final) == 0) {
            rc = lm_fsync_dir(stage_dir, e);
            goto out;
        }
        if (errno != EEXIST && errno != ENOTEMPTY) {
            rc = lm_fail_errno(e, LUMEN_EIO, "cannot rename %s to %s", tmp, final);
            goto out;
        }
        if (!replace && has_marker(final)) {
            /* another runner finished the same key first: use theirs */
            *lost = 1;
            lm_rmtree(tmp, NULL);
            goto out;
        }
        /* replace (--force), or a damaged entry without marker: move it
         * aside, then retry the rename */
        free(old);
        old = scratch_name(c, stage, key, "old");
        if (!old) {
            rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        if (rename(final, old) == 0) lm_rmtree(old, NULL);
        else if (errno != ENOENT) {
            rc = lm_fail_errno(e, LUMEN_EIO, "cannot move %s aside", final);
            goto out;
        }
    }
    rc = lm_fail(e, LUMEN_EIO, "cannot publish cache entry %s (keeps changing under us)", final);
out:
    free(final);
    free(mpath);
    free(stage_dir);
    free(old);
    return rc;
}

void rn_cache_abort(const char *tmp) {
    if (tmp) lm_rmtree(tmp, NULL);
}
