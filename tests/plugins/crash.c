/* crash.c -- test plugin whose stage crashes (SIGSEGV) after one log line
 * and one line on stderr: the runner must record the signal. */
#include <signal.h>
#include <stdio.h>

#include <lumen/plugin.h>

static int run(lumen_ctx *ctx, const lumen_host *host) {
    host->log(ctx, LUMEN_LOG_INFO, "about to crash");
    fprintf(stderr, "crash: last words on stderr\n");
    raise(SIGSEGV);
    return LUMEN_OK;
}

static const lumen_stage STAGE = {
    LUMEN_STAGE_HEADER,
    .name = "crash",
    .version = "1",
    .summary = "test: dies by SIGSEGV",
    .run = run,
};
static const lumen_stage *const STAGES[] = {&STAGE, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
