/*
 * lumen/plugin.h -- the lumen stage-plugin SDK.
 *
 * This is the only header a plugin needs.  A plugin is a shared object that
 * exports one function, lumen_plugin_stages(), returning a NULL-terminated
 * array of stage descriptors.  The runner first loads each plugin file in a
 * throwaway child process (a file whose constructor or entry crashes or hangs
 * is refused, naming the file and the signal), then in itself with
 * dlopen(RTLD_NOW | RTLD_LOCAL); it checks every descriptor's ABI version
 * and compatibility signature, and refuses (naming the file) anything that
 * does not match.
 *
 * Build an out-of-tree stage with one command:
 *
 *     cc -std=c11 -shared -fPIC -I/path/to/lumen/plugins \
 *        -o my_stage.so my_stage.c
 *
 * and point LUMEN_PLUGIN_PATH at the folder holding my_stage.so.
 *
 * Conventions
 * -----------
 * - Errors: every function that can fail returns int, 0 (LUMEN_OK) on success
 *   or one of the LUMEN_E* codes below.  A stage reports a failure by
 *   returning host->fail(ctx, code, fmt, ...), which records the message the
 *   runner shows as the last line on stderr and stores in the run status.
 * - A plugin never calls exit(), never installs signal handlers and never
 *   touches the runner's Lua state or globals.  Everything it needs comes
 *   through the lumen_host table.
 * - Strings the host returns are owned by the host and stay valid until the
 *   stage's run() returns, unless stated otherwise.  Nothing the host returns
 *   may be freed by the plugin.
 * - A stage runs in a child process of the runner: a crash is recorded as a
 *   failure of that stage and cannot take the runner down.  Threads started
 *   by a stage must be joined before run() returns.
 * - The host table (lumen_host) is append-only: new functions are only ever
 *   added at its end, and host->size tells how many bytes of it exist.  Use
 *   LUMEN_HOST_HAS(host, member) before calling anything newer than
 *   LUMEN_ABI_VERSION 1.
 */
#ifndef LUMEN_PLUGIN_H
#define LUMEN_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versioning                                                               */
/* ------------------------------------------------------------------------ */

/* Bumped whenever lumen_stage or lumen_param change incompatibly, or when a
 * host function's meaning changes.  Adding functions at the end of
 * lumen_host does not bump it. */
#define LUMEN_ABI_VERSION 1

#define LUMEN_STR_(x) #x
#define LUMEN_STR(x) LUMEN_STR_(x)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LUMEN_ENDIAN_ "be"
#else
#define LUMEN_ENDIAN_ "le"
#endif

/* The compatibility signature: ABI version, data model and byte order.  A
 * plugin compiled for another ABI, another pointer or long size or another
 * byte order carries a different string and is refused at load time. */
#define LUMEN_SIGNATURE                                                        \
    "lumen-abi:" LUMEN_STR(LUMEN_ABI_VERSION) ":ptr" LUMEN_STR(              \
        __SIZEOF_POINTER__) ":long" LUMEN_STR(__SIZEOF_LONG__) ":" LUMEN_ENDIAN_

#if defined(_WIN32)
#define LUMEN_EXPORT __declspec(dllexport)
#else
#define LUMEN_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

enum lumen_status {
    LUMEN_OK = 0,
    LUMEN_ERR = 1,       /* unspecified failure */
    LUMEN_EINVAL = 2,    /* bad parameter or argument */
    LUMEN_EIO = 3,       /* file-system or device I/O failed (errno in msg) */
    LUMEN_ENOMEM = 4,    /* out of memory */
    LUMEN_EDATA = 5,     /* bad input data: CSV, image, checkpoint, ... */
    LUMEN_ENOTFOUND = 6, /* a file, artifact, stage or key does not exist */
    LUMEN_ECANCELED = 7, /* the user interrupted the run */
    LUMEN_EABI = 8,      /* a plugin or file built for another ABI/format */
    LUMEN_ENUMERIC = 9,  /* training diverged: non-finite loss or gradient */
};

/* ------------------------------------------------------------------------ */
/* Declared parameters                                                      */
/* ------------------------------------------------------------------------ */

/* Parameter types.  A nested table in the experiment file is flattened into
 * dotted keys: `split = { val = 0.2 }` is the parameter "split.val", and a
 * constructor such as lumen.adamw{ lr = 1e-3 } given to `optimizer` sets
 * "optimizer.kind" = "adamw" and "optimizer.lr" = 0.001. */
enum lumen_ptype {
    LUMEN_BOOL = 1, /* true / false */
    LUMEN_INT,      /* 64-bit integer */
    LUMEN_NUM,      /* double */
    LUMEN_STR,      /* free text */
    LUMEN_ENUM,     /* one of lumen_param.choices ("a|b|c") */
    LUMEN_PATH,     /* a file or folder; made absolute against the folder the
                     * runner was started in, so child processes agree */
    LUMEN_INTS,     /* list of integers, e.g. blocks = {2,2,2,2} */
    LUMEN_NUMS,     /* list of numbers */
    LUMEN_JSON,     /* any Lua value, handed to the stage as JSON text */
};

/* lumen_param.flags */
#define LUMEN_PF_REQUIRED 0x1u /* must be given; `def` is ignored */
#define LUMEN_PF_AUTO 0x2u     /* the string "auto" is accepted besides the
                                * declared type; test with host->is_auto() */

/* One declared parameter.  An array of these, ended by an entry whose name is
 * NULL, is a stage's whole parameter table: the runner validates every key of
 * the experiment against it (an unknown key, a wrong type or a value out of
 * range is an error naming the experiment file, the stage and the key),
 * fills in defaults, and prints it for `runner describe STAGE`. */
typedef struct lumen_param {
    const char *name;    /* dotted key, e.g. "size", "split.val" */
    int type;            /* enum lumen_ptype */
    const char *def;     /* default, written as in an experiment file: "0.2",
                          * "true", "{1,1,1,1}", "cosine"; NULL = unset */
    double min, max;     /* inclusive range for INT/NUM and for every element
                          * of INTS/NUMS; min == max == 0 means unbounded */
    const char *choices; /* ENUM only: "constant|step|cosine" */
    unsigned flags;      /* LUMEN_PF_* */
    const char *doc;     /* one line for `runner describe` */
} lumen_param;

/* ------------------------------------------------------------------------ */
/* The host API                                                             */
/* ------------------------------------------------------------------------ */

typedef struct lumen_ctx lumen_ctx; /* opaque: one stage execution */

enum lumen_log_level {
    LUMEN_LOG_DEBUG = 0,
    LUMEN_LOG_INFO = 1,
    LUMEN_LOG_WARN = 2,
    LUMEN_LOG_ERROR = 3,
};

/* Functions the runner offers a stage.  Append-only: version 1 ends at
 * `key_add`; newer members are added after it and announced through `size`
 * (so far: `resuming`).
 * All functions are safe to call from the thread that entered run(); the
 * ones marked [any thread] may also be called from threads the stage started. */
typedef struct lumen_host {
    uint32_t abi_version; /* LUMEN_ABI_VERSION of the runner */
    uint32_t size;        /* sizeof(lumen_host) as the runner was built */

    /* -- the run ------------------------------------------------------- */
    /* Non-zero when the runner was started with --smoke: work on a tiny
     * slice (about 64 images at 32x32, one epoch; a sweep runs its first two
     * configurations x two seeds). */
    int (*smoke)(lumen_ctx *ctx);
    /* Worker threads the stage may use (default: the number of cores). */
    int (*threads)(lumen_ctx *ctx);
    /* The experiment's seed (`seed = ...`, default 0). */
    uint64_t (*seed)(lumen_ctx *ctx);
    /* The stage's id in this experiment ("train", or its `id = ...`). */
    const char *(*stage_id)(lumen_ctx *ctx);

    /* -- parameters (keys are the declared dotted names) ----------------- */
    /* Asking for a key the stage did not declare, or with the getter of
     * another type, is a programming error: the getter returns 0/NULL and
     * the stage fails after run() returns, naming the key. */
    int (*is_set)(lumen_ctx *ctx, const char *key);  /* given or defaulted */
    int (*is_auto)(lumen_ctx *ctx, const char *key); /* value is "auto" */
    int (*get_bool)(lumen_ctx *ctx, const char *key);
    int64_t (*get_int)(lumen_ctx *ctx, const char *key);
    double (*get_num)(lumen_ctx *ctx, const char *key); /* INT too */
    /* STR, ENUM and PATH; NULL when unset. */
    const char *(*get_str)(lumen_ctx *ctx, const char *key);
    /* INTS / NUMS: copies at most `cap` elements to `out` and returns the
     * list's full length (call with cap 0 to size a buffer). */
    size_t (*get_ints)(lumen_ctx *ctx, const char *key, int64_t *out,
                       size_t cap);
    size_t (*get_nums)(lumen_ctx *ctx, const char *key, double *out,
                       size_t cap);
    /* JSON: compact JSON text of the value; any declared key may be read
     * this way. */
    const char *(*get_json)(lumen_ctx *ctx, const char *key);

    /* -- artifacts ----------------------------------------------------- */
    /* Folder holding a declared input artifact, produced by the nearest
     * earlier stage that declares it as output; NULL when an optional input
     * ("name?") has no producer. */
    const char *(*input)(lumen_ctx *ctx, const char *artifact);
    /* Folder (created, empty on first call) where the stage writes a
     * declared output artifact.  For a cacheable stage it lives in the
     * cache and only becomes visible to later runs once run() returned
     * LUMEN_OK and the runner wrote the completion marker. */
    const char *(*output)(lumen_ctx *ctx, const char *artifact);
    /* The run's own folder: runs/<experiment>/<run>/. */
    const char *(*run_dir)(lumen_ctx *ctx);

    /* -- reporting ----------------------------------------------------- */
    /* [any thread] A log line to the stage log (and the terminal at INFO
     * and above).  No trailing newline needed. */
    void (*log)(lumen_ctx *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void (*vlog)(lumen_ctx *ctx, int level, const char *fmt, va_list ap);
    /* [any thread] A metric: appended to metrics.jsonl as
     * {"key","value","step","time"} and sent to every tracker.  Keys use
     * '/' to group: "train/loss", "val/f1_mean". */
    int (*metric)(lumen_ctx *ctx, const char *key, double value,
                  int64_t step);
    /* A summary value of the run (summary.json, `runner runs`). */
    int (*summary)(lumen_ctx *ctx, const char *key, double value);
    int (*summary_str)(lumen_ctx *ctx, const char *key, const char *value);
    /* [any thread] Progress of the current phase: `done` of `total` units
     * (e.g. "img"), plus a short free-form detail ("epoch 3/25 loss 0.41").
     * The runner draws a bar with rate and ETA on a terminal and prints
     * plain lines, sparsely, otherwise.  total <= 0: unknown. */
    void (*progress)(lumen_ctx *ctx, int64_t done, int64_t total,
                     const char *unit, const char *detail);
    /* [any thread] Non-zero once the user asked the run to stop (SIGINT /
     * SIGTERM).  Long loops should poll it and return
     * host->fail(ctx, LUMEN_ECANCELED, ...). */
    int (*cancelled)(lumen_ctx *ctx);
    /* [any thread] Records why the stage failed and returns `code`, so
     * `return host->fail(ctx, LUMEN_EDATA, "%s:%d: bad label", f, n);`
     * is the idiom.  The first message recorded wins. */
    int (*fail)(lumen_ctx *ctx, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* -- cache keys (only inside lumen_stage.key) ----------------------- */
    /* Folds bytes the outputs depend on into the stage's cache key: an
     * external input (a file's content, an image folder's sizes and
     * mtimes), the effective seed, ... (see LUMEN_STAGE_CACHEABLE). */
    void (*key_add)(lumen_ctx *ctx, const void *data, size_t len);

    /* ==== added after version 1's key_add: check LUMEN_HOST_HAS first === */

    /* -- resuming (`runner EXPERIMENT.lua --resume RUN`) ----------------- */
    /* Non-zero when the runner continues an interrupted run and this stage
     * is the one that was interrupted: its output folders were left as the
     * interrupted attempt left them (say, a resumable state file written at
     * the last epoch end) instead of being empty.  The stage continues from
     * what it finds there, or starts over (saying so in its log) when
     * nothing usable is left.  Only stages that are not cacheable are
     * resumed; a cacheable stage is redone into a fresh cache folder and
     * gets 0.  Also 0 while planning (check/key).
     *   int resuming = LUMEN_HOST_HAS(host, resuming) && host->resuming &&
     *                  host->resuming(ctx); */
    int (*resuming)(lumen_ctx *ctx);
} lumen_host;

#define LUMEN_HOST_HAS(host, member)                                           \
    ((host)->size >= offsetof(lumen_host, member) + sizeof((host)->member))

/* ------------------------------------------------------------------------ */
/* The stage descriptor                                                     */
/* ------------------------------------------------------------------------ */

/* lumen_stage.flags
 *
 * LUMEN_STAGE_CACHEABLE: the runner stores the outputs under a cache key and
 * reuses them in any later run with the same key, without calling run().
 * The runner's part of the key covers the stage name and version, the
 * resolved parameters (as written: "auto" stays "auto"), the smoke flag
 * and each input's producer key.  Everything else the outputs depend on
 * must be added by key() with host->key_add, or a run silently reuses
 * outputs made for another one:
 *   - files and folders outside the pipeline (their content, or sizes and
 *     mtimes);
 *   - host->seed() whenever it changes the outputs, including through a
 *     parameter whose "auto" stands for it (add the effective value);
 *   - host->threads() whenever the outputs differ between thread counts
 *     (better: make them the same, and say so).
 * A stage that cannot describe its dependencies this way is not cacheable. */
#define LUMEN_STAGE_CACHEABLE 0x1u

typedef struct lumen_stage {
    uint32_t abi_version;  /* LUMEN_ABI_VERSION */
    uint32_t size;         /* sizeof(lumen_stage) */
    const char *signature; /* LUMEN_SIGNATURE */
    const char *name;      /* unique stage name, e.g. "ingest" */
    const char *version;   /* stage version; part of its cache key */
    const char *summary;   /* one line for `runner plugins` */
    const lumen_param *params; /* ended by {NULL}; may be NULL */
    /* Artifact names, NULL-terminated; an input written "name?" is
     * optional. */
    const char *const *inputs;
    const char *const *outputs;
    unsigned flags; /* LUMEN_STAGE_* */
    /* Optional, cacheable stages only: adds to the cache key, with
     * host->key_add, what the outputs depend on beyond the parameters, the
     * smoke flag and the inputs (see LUMEN_STAGE_CACHEABLE: external files,
     * the effective seed, the thread count when it matters).  The
     * parameters, smoke(), seed() and threads() read as in run(); input()
     * and output() return NULL (no folder exists yet).
     * key() and check() run in the runner process itself while it plans,
     * before any stage runs and also for --dry-run -- not in the stage's
     * child process: a crash there takes the runner down.  Keep them cheap,
     * single-threaded (no OpenMP: stages are forked from the runner later)
     * and free of side effects (write nothing). */
    int (*key)(lumen_ctx *ctx, const lumen_host *host);
    /* Optional: checks across parameters, called while planning (in the
     * runner process, see key()); report problems with
     * host->fail(ctx, LUMEN_EINVAL, "key: why"). */
    int (*check)(lumen_ctx *ctx, const lumen_host *host);
    /* Does the work.  Returns LUMEN_OK or host->fail(...). */
    int (*run)(lumen_ctx *ctx, const lumen_host *host);
} lumen_stage;

/* The one symbol a plugin exports.  `host_abi` is the runner's
 * LUMEN_ABI_VERSION; return the NULL-terminated stage list. */
#define LUMEN_ENTRY_SYMBOL "lumen_plugin_stages"
typedef const lumen_stage *const *(*lumen_entry_fn)(uint32_t host_abi);

/* Fills the fixed header of a descriptor:
 *   static const lumen_stage st = { LUMEN_STAGE_HEADER, .name = "x", ... }; */
#define LUMEN_STAGE_HEADER                                                     \
    .abi_version = LUMEN_ABI_VERSION, .size = sizeof(lumen_stage),             \
    .signature = LUMEN_SIGNATURE

#ifdef __cplusplus
}
#endif
#endif /* LUMEN_PLUGIN_H */
