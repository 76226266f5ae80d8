/*
 * fuzz_set.c -- `--set STAGE.KEY=VALUE` values: rn_param_parse and
 * rn_param_check (stage_params.h) for every parameter the built-in stages
 * declare, and whole command lines of --set arguments applied as
 * `runner EXP.lua --set ... --dry-run` applies them (cmd_run.c): the
 * sweep's own keys (rn_sweep_spec_parse), the stages before the sweep
 * (rn_plan_build) and the sweep's stages (rn_sweep_validate).
 *
 * Input: a mode byte, then text.
 *   even: the byte (>> 1) and the next pick one declared parameter of one
 *         stage; the text after them is its --set value: parsed, checked, and a value that passes
 *         must parse again from its own JSON text (lists, numbers) to the
 *         same check result.
 *   odd:  the text is up to 8 --set arguments, one per line, applied to
 *         FIXED_EXP below (ingest, normalize-stats, a sweep over augment,
 *         train, validate).
 * Checked beyond the sanitizers: every failure has a message naming the
 * --set argument or the parameter.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "fuzz_common.h"
#include "stage_params.h"
#include "plan.h"
#include "strv.h"
#include "sweep.h"
#include "fuzz_check.h"

#ifndef FUZZ_SRC_DIR
#define FUZZ_SRC_DIR "."
#endif


static const char FIXED_EXP[] =
    "local lumen = require \"lumen\"\n"
    "return lumen.experiment {\n"
    "  name = \"fuzz_set\", seed = 7,\n"
    "  stages = {\n"
    "    lumen.ingest { csv = lumen.data \"data.csv\", size = 32, split = { val = 0.5 } },\n"
    "    lumen.normalize_stats {},\n"
    "    lumen.sweep {\n"
    "      strategy = \"grid\", metric = \"val/f1_mean\", goal = \"max\", seeds = { 1, 2 },\n"
    "      space = { [\"augment.flip\"] = { false, true }, [\"train.optimizer.lr\"] = { 0.01, 0.001 } },\n"
    "      stages = {\n"
    "        lumen.augment { flip = true, rotate = 3 },\n"
    "        lumen.train { model = lumen.resnet { blocks = {1, 1}, widths = {8, 16} }, epochs = 1,\n"
    "                      batch = 4, optimizer = lumen.adamw { lr = 1e-3 } },\n"
    "        lumen.validate { thresholds = \"tune\" },\n"
    "      },\n"
    "    },\n"
    "  },\n"
    "}\n";

static rn_experiment *fixed;
static char runs_dir[700];
static const lumen_param *params[512];
static const char *param_stage[512];
static size_t nparams;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const rn_registry *reg = fuzz_registry();
    for (size_t s = 0; s < reg->n_stages; s++)
        for (const lumen_param *p = reg->stages[s].desc->params; p && p->name && nparams < 512; p++) {
            params[nparams] = p;
            param_stage[nparams++] = reg->stages[s].desc->name;
        }
    const char *src = getenv("LUMEN_SRC");
    char lua[600], exp[700];
    snprintf(lua, sizeof lua, "%s/lua", src && *src ? src : FUZZ_SRC_DIR);
    rn_strv dirs = {0};
    if (rn_strv_push(&dirs, lua)) abort();
    snprintf(exp, sizeof exp, "%s/fixed.lua", fuzz_tmpdir());
    fuzz_write(exp, FIXED_EXP, sizeof FIXED_EXP - 1);
    lm_err e = {0};
    if (rn_experiment_load(exp, &dirs, &fixed, NULL, &e)) {
        FUZZ_FAIL("fuzz_set: the fixed experiment does not load: %s", e.msg);
    }
    rn_strv_free(&dirs);
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", fuzz_tmpdir());
    /* and it must plan without --set */
    rn_sweep_spec *spec = NULL;
    rn_strv none = {0};
    rn_plan_opts po = {.cwd = fuzz_tmpdir(), .runs_dir = runs_dir, .sets = &none, .threads = 1};
    if (rn_sweep_spec_parse(fixed, &none, 0, &spec, &e) || rn_sweep_validate(spec, reg, fixed, &po, NULL, &e)) {
        FUZZ_FAIL("fuzz_set: the fixed experiment does not plan: %s", e.msg);
    }
    rn_sweep_spec_free(spec);
    return 0;
}

static void one_value(const char *stage, const lumen_param *p, const char *text) {
    char why[768] = "";
    cJSON *v = NULL, *norm = NULL;
    int rc = rn_param_parse(p, text, &v, why, sizeof why);
    if (rc) {
        CHECK(why[0] != 0 && v == NULL);
        return;
    }
    CHECK(v != NULL);
    rc = rn_param_check(p, v, fuzz_tmpdir(), &norm, why, sizeof why);
    if (rc) {
        CHECK(why[0] != 0);
    } else {
        CHECK(norm != NULL);
        /* a checked number or list, printed as JSON, reads back alike */
        if ((cJSON_IsNumber(norm) || cJSON_IsArray(norm)) && p->type != LUMEN_JSON) {
            char *s = cJSON_PrintUnformatted(norm);
            CHECK(s);
            cJSON *v2 = NULL, *n2 = NULL;
            if (rn_param_parse(p, s, &v2, why, sizeof why) == 0 &&
                rn_param_check(p, v2, fuzz_tmpdir(), &n2, why, sizeof why) == 0) {
                cJSON_Delete(n2);
            } else if (strstr(s, "e+") == NULL && strstr(s, "e-") == NULL) {
                FUZZ_FAIL("fuzz_set: %s.%s: '%s' accepted as %s, which is refused: %s", stage, p->name, text, s,
                          why);
            }
            cJSON_Delete(v2);
            free(s);
        }
    }
    cJSON_Delete(v);
    cJSON_Delete(norm);
}

static void command_line(const rn_strv *sets) {
    const rn_registry *reg = fuzz_registry();
    rn_plan_opts po = {.cwd = fuzz_tmpdir(), .runs_dir = runs_dir, .sets = sets, .threads = 1};
    rn_sweep_spec *spec = NULL;
    rn_strv up = {0};
    rn_plan *plan = NULL, *trial = NULL;
    lm_err e = {0};
    const rn_experiment *x = fixed;
    int rc = rn_sweep_spec_parse(x, sets, 0, &spec, &e);
    for (size_t i = 0; rc == 0 && i < sets->n; i++) {
        const char *s = sets->v[i], *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : 0;
        long k = -1;
        for (size_t j = 0; dot && j < x->n && k < 0; j++)
            if (strlen(x->stages[j].id) == l && strncmp(s, x->stages[j].id, l) == 0) k = (long)j;
        if (k < 0 && !rn_sweep_is_own_set(x, s)) rc = lm_fail(&e, LUMEN_EINVAL, "--set %s: no stage", s);
        else if (k >= 0 && (size_t)k < x->sweep->first) CHECK(rn_strv_push(&up, s) == 0);
    }
    if (rc == 0 && spec->n_configs <= 64) rc = rn_sweep_validate(spec, reg, x, &po, &trial, &e);
    if (rc == 0) {
        rn_experiment *head = rn_experiment_head(x, x->sweep->first);
        CHECK(head);
        po.sets = &up;
        rc = rn_plan_build(reg, head, &po, &plan, &e);
        rn_experiment_free(head);
    }
    if (rc) CHECK(e.msg[0] != 0);
    rn_plan_free(plan);
    rn_plan_free(trial);
    rn_sweep_spec_free(spec);
    rn_strv_free(&up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0; /* a C string, as argv is */
    if ((data[0] & 1) == 0) {
        size_t i = ((size_t)(data[0] >> 1) | (size > 1 ? (size_t)data[1] << 7 : 0)) % nparams;
        one_value(param_stage[i], params[i], size > 1 ? text + 1 : text);
    } else {
        rn_strv sets = {0};
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l && sets.n < 8; l = strtok_r(NULL, "\n", &save))
            CHECK(rn_strv_push(&sets, l) == 0);
        command_line(&sets);
        rn_strv_free(&sets);
    }
    free(text);
    return 0;
}
