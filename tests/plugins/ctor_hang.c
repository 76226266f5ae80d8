/* ctor_hang.c -- test plugin whose constructor never returns: the runner
 * must give up on the file after LUMEN_PROBE_TIMEOUT seconds ("did not
 * finish loading within N s") and go on. */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include <lumen/plugin.h>

__attribute__((constructor)) static void hang_on_load(void) {
    for (;;) pause();
}

static int run(lumen_ctx *ctx, const lumen_host *host) {
    (void)ctx;
    (void)host;
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "ctor-hang",
    .version = "1",
    .summary = "test: never seen, the constructor hangs",
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
