/* plugin.c -- the "normalize-stats" stage plugin (core in nstats.h). */
#include <stdio.h>

#include <lumen/plugin.h>

#include "nstats.h"

static const char *const nstats_inputs[] = {"dataset", NULL};
static const char *const nstats_outputs[] = {"stats", NULL};
static const lumen_param nstats_params[] = {{NULL, 0, NULL, 0, 0, NULL, 0, NULL}};

typedef struct bridge {
    lumen_ctx *ctx;
    const lumen_host *host;
} bridge;

static void cb_log(void *user, int level, const char *msg) {
    bridge *b = user;
    b->host->log(b->ctx, level, "%s", msg);
}

static int nstats_stage_run(lumen_ctx *ctx, const lumen_host *h) {
    bridge b = {ctx, h};
    nstats_opts o = {.dataset = h->input(ctx, "dataset"), .out = h->output(ctx, "stats"),
                     .threads = h->threads(ctx), .user = &b, .log = cb_log};
    if (!o.dataset || !o.out)
        return h->fail(ctx, LUMEN_ERR, "normalize-stats: the host gave no dataset/stats folder");
    nstats_result r;
    lm_err e = {0};
    int rc = nstats_run(&o, &r, &e);
    if (rc) return h->fail(ctx, rc, "%s", e.msg);
    h->summary(ctx, "stats/mean", r.mean[0]);
    h->summary(ctx, "stats/std", r.std[0]);
    for (uint32_t c = 0; r.channels > 1 && c < r.channels; c++) {
        char k[64];
        snprintf(k, sizeof k, "stats/mean_%u", c);
        h->summary(ctx, k, r.mean[c]);
        snprintf(k, sizeof k, "stats/std_%u", c);
        h->summary(ctx, k, r.std[c]);
    }
    h->summary(ctx, "stats/images", (double)r.images);
    h->summary(ctx, "stats/seconds", r.seconds);
    return LUMEN_OK;
}

const lumen_stage nstats_stage = {
    LUMEN_STAGE_HEADER,
    .name = "normalize-stats",
    .version = "1",
    .summary = "per-channel mean/std (population, [0,1] scale) of the training split -> stats.json",
    .params = nstats_params,
    .inputs = nstats_inputs,
    .outputs = nstats_outputs,
    .flags = LUMEN_STAGE_CACHEABLE,
    /* no key(): the statistics use no seed and are exact integer sums, the
     * same for every thread count (nstats.h), so the parameters and the
     * dataset's key cover them */
    .key = NULL,
    .check = NULL,
    .run = nstats_stage_run,
};

static const lumen_stage *const nstats_stages[] = {&nstats_stage, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return nstats_stages;
}
