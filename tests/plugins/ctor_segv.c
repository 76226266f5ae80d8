/* ctor_segv.c -- test plugin whose constructor raises SIGSEGV as soon as
 * the file is loaded: the runner must refuse the file ("crashed while
 * loading: signal 11") and go on, not die. */
#include <signal.h>

#include <lumen/plugin.h>

__attribute__((constructor)) static void crash_on_load(void) { raise(SIGSEGV); }

static int run(lumen_ctx *ctx, const lumen_host *host) {
    (void)ctx;
    (void)host;
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "ctor-segv",
    .version = "1",
    .summary = "test: never seen, the constructor crashes",
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
