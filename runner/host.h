/*
 * host.h -- the runner's side of the plugin ABI: the lumen_host table and
 * the lumen_ctx a stage receives.
 *
 * A context lives in one of two modes:
 *   plan mode  (in the runner, while planning): parameters are readable,
 *              key() may call key_add (rn_ctx_use_keyhash), log() goes to
 *              stderr, metric/summary/progress are ignored, input(),
 *              output() and run_dir() return NULL, fail() is recorded.
 *   run mode   (in the stage process, rn_ctx_use_events): every report
 *              becomes an event on the event pipe (events.h).
 * Misuse of a getter (an undeclared key, another type's getter, an
 * undeclared artifact, key_add outside key()) returns 0/NULL and is
 * remembered: the caller fails the stage afterwards, naming the key.
 *
 * The context owns copies of every string it was given.  The parameter
 * object is borrowed and must outlive the context.  All host functions are
 * thread-safe where plugin.h marks them [any thread].
 */
#ifndef RN_HOST_H
#define RN_HOST_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include <lumen/plugin.h>

#include "cachekey.h"
#include "events.h"
#include "lm_util.h"

typedef struct rn_ctx_init {
    const lumen_stage *stage;
    const char *stage_id;
    const cJSON *params;  /* resolved flat parameters (borrowed) */
    int smoke;
    int threads;
    uint64_t seed;
    /* run mode only (NULL while planning): */
    const char *run_dir;
    const char *const *inputs;  /* one per stage->inputs entry; NULL = absent */
    const char *const *outputs; /* one per stage->outputs entry */
    int resuming;               /* host->resuming(): continuing an interrupted
                                 * attempt in the same output folders */
} rn_ctx_init;

/* The host table (static, immutable). */
const lumen_host *rn_host(void);

/* Creates a context.  *out is owned by the caller (rn_ctx_free).
 * Errors: LUMEN_ENOMEM. */
int rn_ctx_new(const rn_ctx_init *in, lumen_ctx **out, lm_err *e);
/* Plan mode: key_add feeds kh (borrowed) until called again with NULL. */
void rn_ctx_use_keyhash(lumen_ctx *ctx, rn_keyhash *kh);
/* Run mode: reports go to ev (borrowed). */
void rn_ctx_use_events(lumen_ctx *ctx, rn_evw *ev);
/* The code of the first fail() (0 when none) and its message in *msg
 * (owned by ctx; may be NULL). */
int rn_ctx_failure(lumen_ctx *ctx, const char **msg);
/* The first misuse recorded (owned by ctx), or NULL:
 * "get_int(\"nope\"): no parameter 'nope' is declared". */
const char *rn_ctx_misuse(lumen_ctx *ctx);
void rn_ctx_free(lumen_ctx *ctx);

#endif /* RN_HOST_H */
