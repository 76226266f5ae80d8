/* bad_params.c -- test plugin with an invalid parameter table (an enum
 * without choices): the runner must refuse it. */
#include <lumen/plugin.h>

static const lumen_param PARAMS[] = {
    {"mode", LUMEN_ENUM, "fast", 0, 0, NULL, 0, "choices are missing"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static int run(lumen_ctx *ctx, const lumen_host *host) {
    (void)ctx;
    (void)host;
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "bad-params",
    .version = "1",
    .params = PARAMS,
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
