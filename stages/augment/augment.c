/*
 * augment.c -- the "augment" stage: turns its parameters into an augmentation
 * policy (artifact "policy", file policy.json, see stages/common/policy.h)
 * that the trainer's loader applies online, per sample, per epoch.
 *
 * The stage itself touches no images; it is cacheable and its output depends
 * only on its parameters (the loader draws from the seed, not this stage, so
 * it needs no key()).  Offline materialisation lives in the separate
 * stage "augment-materialize" (materialize.c): the ABI declares outputs
 * statically, and an "augment" stage that declared a "dataset" output would
 * shadow the ingested dataset for every later stage even when nothing was
 * materialised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lumen/plugin.h>

#include "augment_stage.h"
#include "lm_util.h"
#include "policy.h"

static const lumen_param PARAMS[] = {
    LM_POLICY_PARAMS,
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};

static const char *const INPUTS[] = {NULL};
static const char *const OUTPUTS[] = {"policy", NULL};

int augment_policy_from_params(lumen_ctx *ctx, const lumen_host *host,
                               lm_policy *p) {
    lm_policy_default(p);
    int flip = host->get_bool(ctx, "flip");
    p->hflip = flip || host->get_bool(ctx, "hflip");
    p->vflip = flip || host->get_bool(ctx, "vflip");
    p->rotate90 = host->get_bool(ctx, "rotate90");
    p->rotate = host->get_num(ctx, "rotate");
    p->translate = host->get_num(ctx, "translate");
    p->contrast = host->get_num(ctx, "contrast");
    p->brightness = host->get_num(ctx, "brightness");
    p->gamma = host->get_num(ctx, "gamma");
    p->p = host->get_num(ctx, "p");
    p->fill = lm_policy_fill_from_name(host->get_str(ctx, "fill"));
    p->fill_value = host->get_num(ctx, "fill_value");
    lm_err e = {0};
    if (lm_policy_check(p, &e))
        return host->fail(ctx, LUMEN_EINVAL, "augment: %s", e.msg);
    return LUMEN_OK;
}

static int augment_check(lumen_ctx *ctx, const lumen_host *host) {
    lm_policy p;
    return augment_policy_from_params(ctx, host, &p);
}

static int augment_run(lumen_ctx *ctx, const lumen_host *host) {
    lm_policy p;
    int rc = augment_policy_from_params(ctx, host, &p);
    if (rc)
        return rc;
    const char *dir = host->output(ctx, "policy");
    if (!dir)
        return host->fail(ctx, LUMEN_EIO, "augment: no folder for output \"policy\"");
    char *json = lm_policy_to_json(&p);
    char *path = lm_path_join(dir, LM_POLICY_FILE);
    if (!json || !path) {
        free(json);
        free(path);
        return host->fail(ctx, LUMEN_ENOMEM, "augment: out of memory");
    }
    lm_err e = {0};
    rc = lm_write_file_atomic(path, json, strlen(json), &e);
    free(json);
    free(path);
    if (rc)
        return host->fail(ctx, rc, "augment: %s", e.msg);
    if (lm_policy_is_identity(&p))
        host->log(ctx, LUMEN_LOG_INFO, "augment: identity policy (no augmentation)");
    else
        host->log(ctx, LUMEN_LOG_INFO,
                  "augment: hflip=%d vflip=%d rot90=%d rotate=%g translate=%g "
                  "contrast=%g brightness=%g gamma=%g p=%g fill=%s",
                  p.hflip, p.vflip, p.rotate90, p.rotate, p.translate, p.contrast,
                  p.brightness, p.gamma, p.p, lm_policy_fill_name(p.fill));
    return LUMEN_OK;
}

const lumen_stage augment_stage = {
    LUMEN_STAGE_HEADER,
    .name = "augment",
    .version = "1",
    .summary = "augmentation policy (flips, rot90, rotation, shift, contrast/brightness/gamma) "
               "applied online by the trainer's loader",
    .params = PARAMS,
    .inputs = INPUTS,
    .outputs = OUTPUTS,
    .flags = LUMEN_STAGE_CACHEABLE,
    .key = NULL,
    .check = augment_check,
    .run = augment_run,
};

static const lumen_stage *const STAGES[] = {&augment_stage, &augment_materialize_stage,
                                            NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
