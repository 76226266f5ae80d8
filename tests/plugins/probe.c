/*
 * probe.c -- test plugin with two stages.
 *
 * "probe" (not cacheable) declares one parameter of every type and writes
 * what the getters return to probe/values.txt, one "key=value" per line,
 * plus the optional input "count" (from counter) and the run context.
 * misuse = true reads an undeclared key; fail_with = "..." fails with that
 * message.
 * "needy" has a required parameter and a required input (for the planner's
 * error messages).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lumen/plugin.h>

static const lumen_param PARAMS[] = {
    {"size", LUMEN_INT, "300", 1, 10000, NULL, 0, "image size"},
    {"channels", LUMEN_INT, "1", 1, 3, NULL, 0, "channels"},
    {"ratio", LUMEN_NUM, "0.5", 0, 1, NULL, 0, "a fraction"},
    {"name", LUMEN_STR, "probe", 0, 0, NULL, 0, "free text"},
    {"format", LUMEN_ENUM, "auto", 0, 0, "auto|csv|elpv", 0, "an enum"},
    {"csv", LUMEN_PATH, NULL, 0, 0, NULL, 0, "a path"},
    {"flag", LUMEN_BOOL, "false", 0, 0, NULL, 0, "a bool"},
    {"blocks", LUMEN_INTS, "{1,1,1,1}", 1, 8, NULL, 0, "a list of integers"},
    {"widths", LUMEN_NUMS, "{}", 0, 0, NULL, 0, "a list of numbers"},
    {"split.val", LUMEN_NUM, "0.2", 0, 1, NULL, 0, "nested number"},
    {"split.seed", LUMEN_INT, "7", 0, 0, NULL, 0, "nested integer"},
    {"optimizer.kind", LUMEN_ENUM, "sgd", 0, 0, "sgd|adam|adamw", 0, "constructor kind"},
    {"optimizer.lr", LUMEN_NUM, "0.1", 0, 10, NULL, 0, "learning rate"},
    {"space", LUMEN_JSON, NULL, 0, 0, NULL, 0, "kept as JSON"},
    {"pos_weight", LUMEN_NUM, "1", 0, 100, NULL, LUMEN_PF_AUTO, "a number or auto"},
    {"misuse", LUMEN_BOOL, "false", 0, 0, NULL, 0, "read an undeclared key"},
    {"fail_with", LUMEN_STR, NULL, 0, 0, NULL, 0, "fail with this message"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
static const char *const INPUTS[] = {"count?", NULL};
static const char *const OUTPUTS[] = {"probe", NULL};

static void list_ints(FILE *f, const lumen_host *host, lumen_ctx *ctx, const char *key) {
    int64_t v[16];
    size_t n = host->get_ints(ctx, key, v, 16);
    fprintf(f, "%s=", key);
    for (size_t i = 0; i < n && i < 16; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)v[i]);
    fputc('\n', f);
}

static int run(lumen_ctx *ctx, const lumen_host *host) {
    if (host->is_set(ctx, "fail_with"))
        return host->fail(ctx, LUMEN_EDATA, "%s", host->get_str(ctx, "fail_with"));
    if (host->get_bool(ctx, "misuse")) (void)host->get_int(ctx, "nope");
    char path[4096];
    snprintf(path, sizeof path, "%s/values.txt", host->output(ctx, "probe"));
    FILE *f = fopen(path, "w");
    if (!f) return host->fail(ctx, LUMEN_EIO, "cannot write %s", path);
    fprintf(f, "size=%lld\n", (long long)host->get_int(ctx, "size"));
    fprintf(f, "channels=%lld\n", (long long)host->get_int(ctx, "channels"));
    fprintf(f, "ratio=%g\n", host->get_num(ctx, "ratio"));
    fprintf(f, "name=%s\n", host->get_str(ctx, "name"));
    fprintf(f, "format=%s\n", host->get_str(ctx, "format"));
    fprintf(f, "csv=%s\n", host->is_set(ctx, "csv") ? host->get_str(ctx, "csv") : "(unset)");
    fprintf(f, "flag=%d\n", host->get_bool(ctx, "flag"));
    list_ints(f, host, ctx, "blocks");
    double w[16];
    size_t n = host->get_nums(ctx, "widths", w, 16);
    fprintf(f, "widths=");
    for (size_t i = 0; i < n && i < 16; i++) fprintf(f, "%s%g", i ? "," : "", w[i]);
    fputc('\n', f);
    fprintf(f, "split.val=%g\n", host->get_num(ctx, "split.val"));
    fprintf(f, "split.seed=%lld\n", (long long)host->get_int(ctx, "split.seed"));
    fprintf(f, "optimizer.kind=%s\n", host->get_str(ctx, "optimizer.kind"));
    fprintf(f, "optimizer.lr=%g\n", host->get_num(ctx, "optimizer.lr"));
    fprintf(f, "space=%s\n", host->is_set(ctx, "space") ? host->get_json(ctx, "space") : "(unset)");
    if (host->is_auto(ctx, "pos_weight")) fprintf(f, "pos_weight=auto\n");
    else fprintf(f, "pos_weight=%g\n", host->get_num(ctx, "pos_weight"));
    fprintf(f, "smoke=%d\nthreads=%d\nseed=%llu\nstage_id=%s\n", host->smoke(ctx), host->threads(ctx),
            (unsigned long long)host->seed(ctx), host->stage_id(ctx));
    const char *in = host->input(ctx, "count");
    fprintf(f, "input=%s\n", in ? in : "(none)");
    if (in) {
        char vp[4096], line[256] = "";
        snprintf(vp, sizeof vp, "%s/value.txt", in);
        FILE *g = fopen(vp, "r");
        if (g) {
            if (!fgets(line, sizeof line, g)) line[0] = '\0';
            fclose(g);
        }
        line[strcspn(line, "\n")] = '\0';
        fprintf(f, "input_value=%s\n", line);
    }
    fprintf(f, "run_dir=%s\n", host->run_dir(ctx));
    fclose(f);
    host->log(ctx, LUMEN_LOG_WARN, "probe wrote %s", path);
    return LUMEN_OK;
}

static const lumen_stage PROBE = {
    LUMEN_STAGE_HEADER,
    .name = "probe",
    .version = "1",
    .summary = "test: dumps every parameter it reads",
    .params = PARAMS,
    .inputs = INPUTS,
    .outputs = OUTPUTS,
    .run = run,
};

static const lumen_param NEEDY_PARAMS[] = {
    {"need", LUMEN_STR, NULL, 0, 0, NULL, LUMEN_PF_REQUIRED, "must be given"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
static const char *const NEEDY_INPUTS[] = {"count", NULL};

static int needy_run(lumen_ctx *ctx, const lumen_host *host) {
    host->log(ctx, LUMEN_LOG_INFO, "need=%s input=%s", host->get_str(ctx, "need"), host->input(ctx, "count"));
    return LUMEN_OK;
}

static const lumen_stage NEEDY = {
    LUMEN_STAGE_HEADER,
    .name = "needy",
    .version = "1",
    .summary = "test: a required parameter and a required input",
    .params = NEEDY_PARAMS,
    .inputs = NEEDY_INPUTS,
    .run = needy_run,
};

static const lumen_stage *const STAGES[] = {&PROBE, &NEEDY, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi;
    return STAGES;
}
