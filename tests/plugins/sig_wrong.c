/* sig_wrong.c -- test plugin whose compatibility signature claims another
 * data model (32-bit, big-endian): the runner must refuse it. */
#include <lumen/plugin.h>

static int run(lumen_ctx *ctx, const lumen_host *host) {
    (void)ctx;
    (void)host;
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    .abi_version = LUMEN_ABI_VERSION,
    .size = sizeof(lumen_stage),
    .signature = "lumen-abi:1:ptr4:long4:be",
    .name = "sig-wrong",
    .version = "1",
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
