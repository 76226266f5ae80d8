/*
 * fuzz_experiment.c -- experiment evaluation: Lua text -> experiment ->
 * plan, as `runner EXP.lua --dry-run` does it (cmd_run.c), in the sandbox of
 * lua_bridge.h.
 *
 * Input: the experiment file's text.  It is written to exp.lua in a private
 * folder (rn_lua_eval reads a file) and loaded with rn_experiment_load,
 * lua_dirs = the repository's lua/ (the real lumen.lua).  An experiment that
 * loads is planned against the built-in stages (fuzz_common.h): with a
 * sweep, rn_sweep_spec_parse, rn_sweep_validate (grids up to 64
 * configurations) and the plan of the stages before it; otherwise
 * rn_plan_build.  The plan is turned into JSON (config.json's body).
 *
 * The time budget is LUMEN_EVAL_TIMEOUT=0.05 s and the memory budget
 * LUMEN_EVAL_MEMORY=64 MiB (unless set), so `while true do end` ends in
 * 50 ms and `s = s .. s` in a loop at 64 MiB, each as its budget error.  Checked beyond
 * the sanitizers: every failure has a message.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment.h"
#include "fuzz_common.h"
#include "plan.h"
#include "strv.h"
#include "sweep.h"
#include "fuzz_check.h"

#ifndef FUZZ_SRC_DIR
#define FUZZ_SRC_DIR "."
#endif


static char exp_path[700], runs_dir[700];
static rn_strv lua_dirs;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("LUMEN_EVAL_TIMEOUT", "0.05", 0);
    setenv("LUMEN_EVAL_MEMORY", "64", 0);
    const char *src = getenv("LUMEN_SRC");
    char lua[600];
    snprintf(lua, sizeof lua, "%s/lua", src && *src ? src : FUZZ_SRC_DIR);
    if (rn_strv_push(&lua_dirs, lua)) abort();
    fuzz_registry(); /* also makes the data folder and sets LUMEN_DATA */
    snprintf(exp_path, sizeof exp_path, "%s/exp.lua", fuzz_tmpdir());
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", fuzz_tmpdir());
    return 0;
}

static void plan(rn_experiment *x) {
    const rn_registry *reg = fuzz_registry();
    rn_plan_opts po = {.cwd = fuzz_tmpdir(), .runs_dir = runs_dir, .sets = NULL, .threads = 1};
    rn_plan *p = NULL;
    lm_err e = {0};
    int rc;
    if (x->sweep) {
        rn_sweep_spec *spec = NULL;
        rc = rn_sweep_spec_parse(x, NULL, 0, &spec, &e);
        if (rc == 0 && spec->n_configs <= 64) {
            rn_plan *trial = NULL;
            rc = rn_sweep_validate(spec, reg, x, &po, &trial, &e);
            rn_plan_free(trial);
        }
        if (rc == 0 && x->sweep->first > 0) {
            rn_experiment *up = rn_experiment_head(x, x->sweep->first);
            CHECK(up);
            rc = rn_plan_build(reg, up, &po, &p, &e);
            rn_experiment_free(up);
        }
        rn_sweep_spec_free(spec);
    } else {
        rc = rn_plan_build(reg, x, &po, &p, &e);
    }
    if (rc) CHECK(e.msg[0] != 0);
    if (p) {
        cJSON *j = rn_plan_json(p);
        CHECK(j);
        char *s = cJSON_PrintUnformatted(j);
        CHECK(s);
        free(s);
        cJSON_Delete(j);
        rn_plan_free(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(exp_path, data, size);
    rn_experiment *x = NULL;
    char *tb = NULL;
    lm_err e = {0};
    int rc = rn_experiment_load(exp_path, &lua_dirs, &x, &tb, &e);
    free(tb);
    if (rc) {
        CHECK(e.msg[0] != 0);
        return 0;
    }
    rn_experiment *copy = rn_experiment_copy(x);
    CHECK(copy);
    rn_experiment_free(copy);
    plan(x);
    rn_experiment_free(x);
    return 0;
}
