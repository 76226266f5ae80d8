/* abi_wrong.c -- test plugin built "for ABI 2": the runner must refuse it
 * with "built for lumen ABI 2, this runner speaks 1". */
#include <lumen/plugin.h>

static int run(lumen_ctx *ctx, const lumen_host *host) {
    (void)ctx;
    (void)host;
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    .abi_version = LUMEN_ABI_VERSION + 1,
    .size = sizeof(lumen_stage),
    .signature = "lumen-abi:2",
    .name = "abi-wrong",
    .version = "1",
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
