/*
 * cache.h -- the content-addressed store of cacheable stages' outputs.
 *
 * Layout under the runs folder:
 *   .cache/<stage>/<key>/                    a complete entry: one folder per
 *                                            output artifact + ".complete"
 *   .cache/<stage>/<key>.tmp-<pid>-<n>/      being written by process <pid>
 *   .cache/<stage>/<key>.old-<pid>-<n>/      being replaced (--force)
 *
 * Protocol: a stage writes into a fresh tmp folder; on success the runner
 * syncs the file system, writes ".complete" (JSON: stage, version, key,
 * params, smoke, created, run, and the summaries the stage reported, which
 * a later hit replays) atomically inside it, renames the tmp folder to
 * <key>/ and fsyncs the parent.  A hit is a final folder holding
 * ".complete".  A final folder without the marker (damaged by hand) and tmp
 * or old folders whose process is dead are removed before a stage is
 * redone.  When two runners compute the same key at once, the first rename
 * wins and the loser discards its copy and uses the winner's.
 *
 * Stages must not store absolute paths to their own output folder inside
 * their outputs: the folder is renamed after run() returns.
 */
#ifndef RN_CACHE_H
#define RN_CACHE_H

#include <cjson/cJSON.h>

#include "lm_util.h"

#define RN_CACHE_MARKER ".complete"

typedef struct rn_cache {
    char *root;        /* <runs>/.cache */
    unsigned counter;  /* uniquifies tmp folder names within this process */
} rn_cache;

/* Sets c up for <runs_dir>/.cache (created lazily).  0 or LUMEN_ENOMEM. */
int rn_cache_init(rn_cache *c, const char *runs_dir, lm_err *e);
void rn_cache_free(rn_cache *c);

/* <root>/<stage>/<key>; malloc'ed, NULL on OOM. */
char *rn_cache_entry_dir(const rn_cache *c, const char *stage, const char *key);

/* Non-zero when a complete entry exists (read-only; for planning). */
int rn_cache_has(const rn_cache *c, const char *stage, const char *key);

/* Before computing an entry: removes a final folder without marker and
 * dead processes' tmp/old folders of this stage, then creates a fresh tmp
 * folder *tmp (malloc'ed).  0, LUMEN_EIO or LUMEN_ENOMEM. */
int rn_cache_begin(rn_cache *c, const char *stage, const char *key, char **tmp, lm_err *e);

/* Publishes tmp as the entry (see the protocol above).  marker is the JSON
 * of ".complete".  With replace (--force) an existing entry is replaced;
 * otherwise an entry that appeared meanwhile wins, tmp is discarded and
 * *lost is set.  0, LUMEN_EIO or LUMEN_ENOMEM. */
int rn_cache_commit(rn_cache *c, const char *stage, const char *key, const char *tmp, const cJSON *marker,
                    int replace, int *lost, lm_err *e);

/* Discards a tmp folder after a failed stage (errors ignored). */
void rn_cache_abort(const char *tmp);

#endif /* RN_CACHE_H */
