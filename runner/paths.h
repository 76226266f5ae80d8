/*
 * paths.h -- where the runner looks for things: its own folder, plugin and
 * Lua module folders, the runs folder, and path helpers.
 *
 * Plugin search order (first wins; a later file declaring the same stage is
 * refused as a duplicate):
 *   1. <exe dir>/plugins                 (build tree: build/runner + build/plugins)
 *   2. <exe dir>/../lib/lumen/plugins    (installed: PREFIX/bin/runner)
 *   3. each folder of $LUMEN_PLUGIN_PATH (colon-separated; relative entries
 *      are taken against the starting folder)
 * Lua module folders: <exe dir>/../lua (build tree) and
 * <exe dir>/../share/lumen/lua (installed); the experiment's own folder is
 * added by the Lua bridge.
 */
#ifndef RN_PATHS_H
#define RN_PATHS_H

#include "lm_util.h"
#include "strv.h"

typedef struct rn_paths {
    char *exe_dir;       /* folder of the running executable (absolute) */
    char *cwd;           /* the folder the runner was started in */
    rn_strv plugin_dirs; /* search order above, normalised, no duplicates */
    rn_strv lua_dirs;    /* Lua module folders (may not exist) */
} rn_paths;

/* Fills p from /proc/self/exe, getcwd() and the environment.  Free with
 * rn_paths_free.  Errors: LUMEN_EIO (no cwd / exe), LUMEN_ENOMEM. */
int rn_paths_init(rn_paths *p, lm_err *e);
void rn_paths_free(rn_paths *p);

/* Absolute, lexically normalised form of path ("." and ".." folded, no
 * double or trailing slashes), relative paths taken against base.
 * Malloc'ed; NULL on OOM.  Does not touch the file system (no symlinks are
 * resolved). */
char *rn_abspath(const char *base, const char *path);

/* A path for messages: `abs` relative to cwd when it lies below it, else
 * `abs` itself.  Returns a pointer into abs (no allocation). */
const char *rn_display_path(const char *cwd, const char *abs);

/* The runs folder: opt (--runs) if given, else $LUMEN_RUNS, else "runs";
 * made absolute against cwd.  Malloc'ed; NULL on OOM. */
char *rn_runs_dir(const char *cwd, const char *opt);

#endif /* RN_PATHS_H */
