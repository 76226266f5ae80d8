/* dup_counter.c -- test plugin declaring a stage name ("counter") that
 * counter.so already provides: loaded after it (file names sort), it must be
 * refused naming both files. */
#include <lumen/plugin.h>

static int run(lumen_ctx *ctx, const lumen_host *host) {
    return host->fail(ctx, LUMEN_ERR, "the duplicate counter must never run");
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "counter",
    .version = "9",
    .summary = "test: duplicate stage name",
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
