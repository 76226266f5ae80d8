/*
 * counter.c -- test plugin: a cacheable stage that records every execution.
 *
 * Each run appends one line to the file `record` ("ran smoke=.. threads=..
 * seed=.. x=.. size=.. mode=..") so tests can count executions (cache hits
 * do not append), writes count/value.txt, logs a metric and a summary.
 * key() folds the content of `key_file` (when set) into the cache key;
 * check() refuses x > 5 in slow mode.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lumen/plugin.h>

static const lumen_param PARAMS[] = {
    {"record", LUMEN_PATH, NULL, 0, 0, NULL, LUMEN_PF_REQUIRED, "file that gets one line per execution"},
    {"x", LUMEN_NUM, "1", 0, 10, NULL, 0, "a number written to the output"},
    {"size", LUMEN_INT, "300", 1, 10000, NULL, 0, "an integer"},
    {"mode", LUMEN_ENUM, "fast", 0, 0, "fast|slow", 0, "an enum; slow allows x <= 5 only"},
    {"key_file", LUMEN_PATH, NULL, 0, 0, NULL, 0, "external file whose content joins the cache key"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
static const char *const OUTPUTS[] = {"count", NULL};

static int key(lumen_ctx *ctx, const lumen_host *host) {
    if (!host->is_set(ctx, "key_file")) return LUMEN_OK;
    const char *path = host->get_str(ctx, "key_file");
    FILE *f = fopen(path, "rb");
    if (!f) return host->fail(ctx, LUMEN_ENOTFOUND, "key_file: cannot open %s", path);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) host->key_add(ctx, buf, n);
    fclose(f);
    return LUMEN_OK;
}

static int check(lumen_ctx *ctx, const lumen_host *host) {
    if (strcmp(host->get_str(ctx, "mode"), "slow") == 0 && host->get_num(ctx, "x") > 5)
        return host->fail(ctx, LUMEN_EINVAL, "x: must be <= 5 in slow mode");
    return LUMEN_OK;
}

static int run(lumen_ctx *ctx, const lumen_host *host) {
    double x = host->get_num(ctx, "x");
    FILE *f = fopen(host->get_str(ctx, "record"), "a");
    if (!f) return host->fail(ctx, LUMEN_EIO, "cannot open %s", host->get_str(ctx, "record"));
    fprintf(f, "ran smoke=%d threads=%d seed=%llu x=%g size=%lld mode=%s\n", host->smoke(ctx), host->threads(ctx),
            (unsigned long long)host->seed(ctx), x, (long long)host->get_int(ctx, "size"),
            host->get_str(ctx, "mode"));
    fclose(f);
    char path[4096];
    snprintf(path, sizeof path, "%s/value.txt", host->output(ctx, "count"));
    f = fopen(path, "w");
    if (!f) return host->fail(ctx, LUMEN_EIO, "cannot write %s", path);
    fprintf(f, "x=%g\n", x);
    fclose(f);
    printf("counter: plain stdout line\n");
    host->log(ctx, LUMEN_LOG_INFO, "counted x=%g", x);
    host->metric(ctx, "counter/x", x, 0);
    host->summary(ctx, "val/score", x / 10);
    host->progress(ctx, 1, 1, "item", "done");
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "counter",
    .version = "1",
    .summary = "test: cacheable, records each execution",
    .params = PARAMS,
    .outputs = OUTPUTS,
    .flags = LUMEN_STAGE_CACHEABLE,
    .key = key,
    .check = check,
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
