/*
 * curve.c -- test plugin for sweeps: a "training" stage whose per-epoch
 * metric is a known function of its parameters and seed, fast and
 * deterministic.
 *
 *   val/score at epoch e = a * (1 - exp(-b * e)) + 0.001 * (seed % 7)
 *
 * logged with host->metric(step = e) after each epoch (sleep seconds
 * each); the final value and train/epochs become summaries, and
 * model/score.txt is written.  mode = "crash" raises SIGSEGV in epoch 1,
 * "hang" sleeps until cancelled.  Each epoch end writes model/state.txt,
 * so an interrupted run continues (host->resuming) where it stopped.  Each
 * run() appends "run seed=.. a=.. from=<epoch>" to `record`.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lumen/plugin.h>

static const lumen_param PARAMS[] = {
    {"a", LUMEN_NUM, "0.5", 0, 10, NULL, 0, "asymptote of the curve"},
    {"b", LUMEN_NUM, "1", 0, 100, NULL, 0, "rate of the curve"},
    {"epochs", LUMEN_INT, "4", 1, 1000, NULL, 0, "epochs"},
    {"sleep", LUMEN_NUM, "0", 0, 100, NULL, 0, "seconds per epoch"},
    {"mode", LUMEN_ENUM, "ok", 0, 0, "ok|crash|hang", 0, "crash: SIGSEGV; hang: sleep until cancelled"},
    {"record", LUMEN_PATH, NULL, 0, 0, NULL, 0, "file that gets one line per run()"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
static const char *const INPUTS[] = {"count?", NULL};
static const char *const OUTPUTS[] = {"model", NULL};

static void nap(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int run(lumen_ctx *ctx, const lumen_host *host) {
    double a = host->get_num(ctx, "a"), b = host->get_num(ctx, "b"), sleep = host->get_num(ctx, "sleep");
    int epochs = (int)host->get_int(ctx, "epochs");
    const char *mode = host->get_str(ctx, "mode");
    uint64_t seed = host->seed(ctx);
    char state[4096];
    snprintf(state, sizeof state, "%s/state.txt", host->output(ctx, "model"));
    int from = 0;
    int resuming = LUMEN_HOST_HAS(host, resuming) && host->resuming && host->resuming(ctx);
    FILE *f = resuming ? fopen(state, "r") : NULL;
    if (f) {
        if (fscanf(f, "%d", &from) != 1) from = 0;
        fclose(f);
    }
    if (host->is_set(ctx, "record")) {
        f = fopen(host->get_str(ctx, "record"), "a");
        if (!f) return host->fail(ctx, LUMEN_EIO, "cannot open %s", host->get_str(ctx, "record"));
        fprintf(f, "run seed=%llu a=%g from=%d\n", (unsigned long long)seed, a, from);
        fclose(f);
    }
    if (strcmp(mode, "crash") == 0) raise(SIGSEGV);
    while (strcmp(mode, "hang") == 0 && !host->cancelled(ctx)) nap(0.05);
    double v = 0;
    for (int e = 1; e <= epochs; e++) {
        v = a * (1 - exp(-b * e)) + 0.001 * (double)(seed % 7);
        if (e <= from) continue;
        for (double t = 0; t < sleep; t += 0.02) {
            if (host->cancelled(ctx)) return host->fail(ctx, LUMEN_ECANCELED, "interrupted in epoch %d", e);
            nap(0.02);
        }
        host->metric(ctx, "val/score", v, e);
        f = fopen(state, "w");
        if (f) {
            fprintf(f, "%d\n", e);
            fclose(f);
        }
    }
    if (host->cancelled(ctx)) return host->fail(ctx, LUMEN_ECANCELED, "interrupted");
    host->summary(ctx, "val/score", v);
    host->summary(ctx, "train/epochs", epochs);
    char path[4096];
    snprintf(path, sizeof path, "%s/score.txt", host->output(ctx, "model"));
    f = fopen(path, "w");
    if (!f) return host->fail(ctx, LUMEN_EIO, "cannot write %s", path);
    fprintf(f, "%.17g\n", v);
    fclose(f);
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "curve",
    .version = "1",
    .summary = "test: a training-like stage with a known metric curve",
    .params = PARAMS,
    .inputs = INPUTS,
    .outputs = OUTPUTS,
    .flags = 0,
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
