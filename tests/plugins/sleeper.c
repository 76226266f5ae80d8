/*
 * sleeper.c -- test plugin: a cacheable stage that works in small sleeps.
 *
 * Appends "start pid=<pid>" to `record`, then for each of `steps` steps
 * writes sleep/step-<i> and sleeps `step_ms`, reporting progress and
 * polling host->cancelled(); appends "done" at the end.  Used to kill a run
 * mid-stage and to test interruption.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <lumen/plugin.h>

static const lumen_param PARAMS[] = {
    {"record", LUMEN_PATH, NULL, 0, 0, NULL, LUMEN_PF_REQUIRED, "file that gets start/done lines"},
    {"steps", LUMEN_INT, "20", 1, 100000, NULL, 0, "number of steps"},
    {"step_ms", LUMEN_INT, "50", 0, 60000, NULL, 0, "milliseconds per step"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
static const char *const OUTPUTS[] = {"sleep", NULL};

static void note(lumen_ctx *ctx, const lumen_host *host, const char *what) {
    FILE *f = fopen(host->get_str(ctx, "record"), "a");
    if (!f) return;
    fprintf(f, "%s pid=%ld\n", what, (long)getpid());
    fclose(f);
}

static int run(lumen_ctx *ctx, const lumen_host *host) {
    note(ctx, host, "start");
    int64_t steps = host->get_int(ctx, "steps"), ms = host->get_int(ctx, "step_ms");
    for (int64_t i = 0; i < steps; i++) {
        if (host->cancelled(ctx)) {
            note(ctx, host, "cancelled");
            return host->fail(ctx, LUMEN_ECANCELED, "cancelled at step %lld", (long long)i);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/step-%lld", host->output(ctx, "sleep"), (long long)i);
        FILE *f = fopen(path, "w");
        if (!f) return host->fail(ctx, LUMEN_EIO, "cannot write %s", path);
        fclose(f);
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        host->progress(ctx, i + 1, steps, "step", "sleeping");
    }
    note(ctx, host, "done");
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "sleeper",
    .version = "1",
    .summary = "test: sleeps in steps, writing a file per step",
    .params = PARAMS,
    .outputs = OUTPUTS,
    .flags = LUMEN_STAGE_CACHEABLE,
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
