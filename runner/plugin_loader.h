/*
 * plugin_loader.h -- finding, loading and checking stage plugins (the registry).
 *
 * rn_registry_load() scans the search folders (paths.h) in order, loads
 * every "*.so" (sorted by file name within a folder) with
 * dlopen(RTLD_NOW | RTLD_LOCAL), calls its lumen_plugin_stages entry with
 * LUMEN_ABI_VERSION and checks every descriptor: ABI version, descriptor
 * size, compatibility signature, name ([a-z0-9_-]+), version, run function,
 * artifact names and the parameter table (rn_params_table_check).  A file
 * with any bad descriptor, no entry symbol, or a stage name an earlier file
 * already provides is refused as a whole (dlclose'd) and remembered with its
 * reason; loading never fails because of a bad plugin.  The same real file
 * reached twice (symlinks, repeated folders) is loaded once.
 *
 * Each file is first probed in a forked child that does all of the above
 * (with the default handlers for SIGSEGV and the other fatal signals, also
 * under ASan) and reports back through a pipe; only a file whose probe got
 * through is dlopen'ed in the runner.  A probe that dies by a signal
 * refuses the file with "crashed while loading: signal 11 (Segmentation
 * fault)" (a constructor that faults, an entry that returns a wild
 * pointer); one that exits on its own with "exited with status N while
 * loading"; one still running after LUMEN_PROBE_TIMEOUT seconds (default
 * 10; a number in (0, 3600]) is killed and the file refused with "did not
 * finish loading within 10 s".  The stage names a probe read before it
 * died are kept in the refusal.  One fork per file per load; the plugin's
 * constructors run twice (probe and runner), its destructors once.
 *
 * Descriptors and the strings in them belong to the loaded objects and stay
 * valid until rn_registry_free().  Not thread-safe; the runner loads once at
 * startup (before forking stage processes).
 */
#ifndef RN_PLUGIN_LOADER_H
#define RN_PLUGIN_LOADER_H

#include <stddef.h>

#include <lumen/plugin.h>

#include "lm_util.h"
#include "strv.h"

typedef struct rn_stage_ref {
    const lumen_stage *desc; /* checked descriptor */
    const char *path;        /* the plugin file (owned by the registry) */
} rn_stage_ref;

typedef struct rn_refusal {
    char *path;     /* the refused file */
    char *reason;   /* why, e.g. "built for lumen ABI 2, this runner speaks 1" */
    rn_strv stages; /* stage names it declares, where they could be read */
} rn_refusal;

typedef struct rn_registry {
    rn_strv dirs;          /* folders searched, in order */
    rn_strv files;         /* loaded plugin files */
    rn_strv seen;          /* real paths of every file tried (loaded once) */
    void **handles;        /* dlopen handles, parallel to files */
    rn_stage_ref *stages;  /* every accepted stage, in load order */
    size_t n_stages;
    rn_refusal *refused;
    size_t n_refused;
    double probe_timeout_s; /* LUMEN_PROBE_TIMEOUT, else 10 */
} rn_registry;

/* Loads the plugins of every folder in dirs (missing folders are skipped).
 * *out is owned by the caller (rn_registry_free).  Errors: LUMEN_ENOMEM,
 * LUMEN_EINVAL for a LUMEN_PROBE_TIMEOUT that is not a number of seconds
 * in (0, 3600].  Forks (and reaps) one child per file: call it before
 * starting threads. */
int rn_registry_load(const rn_strv *dirs, rn_registry **out, lm_err *e);

/* The accepted stage called name, or NULL. */
const rn_stage_ref *rn_registry_find(const rn_registry *r, const char *name);

/* The refusal that explains why stage `name` is missing: a refused file
 * that declares it, or (when the descriptors could not be read, e.g. no
 * entry symbol or another ABI) whose file name is the stage name
 * ("normalize_stats.so" for "normalize-stats").  NULL when none. */
const rn_refusal *rn_registry_refusal_for(const rn_registry *r, const char *name);

/* Checks one descriptor as the loader does; 0 or LUMEN_EABI / LUMEN_EINVAL
 * with the reason in why.  Exposed for tests. */
int rn_stage_check(const lumen_stage *st, char *why, size_t whylen);

/* dlcloses every plugin and frees r (NULL is a no-op). */
void rn_registry_free(rn_registry *r);

#endif /* RN_PLUGIN_LOADER_H */
