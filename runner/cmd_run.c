/*
 * cmd_run.c -- `runner [run] EXPERIMENT.lua [options]`: evaluate, plan and
 * run an experiment (or print its plan with --dry-run).
 *
 * stdout: the run folder (one line) on success, or the plan with --dry-run.
 * stderr: progress, stage output, warnings, and the cause of a failure as
 * the last line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "experiment.h"
#include "jsonutil.h"
#include "loader.h"
#include "paths.h"
#include "plan.h"
#include "resume.h"
#include "run.h"
#include "signals.h"

const char rn_run_usage[] =
    "run options:\n"
    "  --set STAGE.KEY=VALUE  override a parameter of the stage with that id (repeatable);\n"
    "                         VALUE as in Lua for the declared type: 5, 0.2, true, cosine,\n"
    "                         {2,2,2,2} or 2,2,2,2 for lists, JSON for json parameters\n"
    "  --runs DIR             runs folder (default $LUMEN_RUNS, else ./runs)\n"
    "  --force                recompute cached stages and replace their cache entries\n"
    "  --dry-run              print the plan (parameters, inputs, cache status), run nothing\n"
    "  --smoke                tiny run: stages shrink their work (part of cache keys)\n"
    "  --threads N            threads per stage (default: the experiment's, else all cores)\n"
    "  --resume RUN           continue an interrupted run (a run id or folder) of this experiment:\n"
    "                         its finished stages are reused, the interrupted one continues\n"
    "                         (train: from its last finished epoch); parameters must match\n";

static const char *const OPTIONS[] = {"--set",   "--runs",   "--force",  "--dry-run", "--smoke",
                                      "--threads", "--resume", "--help",   NULL};

typedef struct run_args {
    const char *file;
    const char *runs;
    const char *resume;
    rn_strv sets;
    int force, dry, smoke, threads;
} run_args;

/* 0 to go on, else the exit status (help printed, or a usage error). */
static int parse_args(int argc, char **argv, run_args *a, int *done) {
    *done = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        int m;
        if ((m = rn_cli_value(argc, argv, &i, "--set", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            if (rn_strv_push(&a->sets, v)) return RN_EXIT_FAIL;
        } else if ((m = rn_cli_value(argc, argv, &i, "--runs", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            a->runs = v;
        } else if ((m = rn_cli_value(argc, argv, &i, "--resume", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            a->resume = v;
        } else if ((m = rn_cli_value(argc, argv, &i, "--threads", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 4096) {
                rn_cli_error("--threads %s: expected a number of threads in [1, 4096]", v);
                return RN_EXIT_USAGE;
            }
            a->threads = (int)t;
        } else if (strcmp(arg, "--force") == 0) {
            a->force = 1;
        } else if (strcmp(arg, "--dry-run") == 0) {
            a->dry = 1;
        } else if (strcmp(arg, "--smoke") == 0) {
            a->smoke = 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            printf("usage: runner [run] EXPERIMENT.lua [options]\n\n%s", rn_run_usage);
            *done = 1;
            return RN_EXIT_OK;
        } else if (arg[0] == '-' && arg[1]) {
            rn_cli_unknown_option(arg, OPTIONS);
            return RN_EXIT_USAGE;
        } else if (!a->file) {
            a->file = arg;
        } else {
            rn_cli_error("more than one experiment file given ('%s' and '%s')", a->file, arg);
            return RN_EXIT_USAGE;
        }
    }
    if (!a->file) {
        rn_cli_error("no experiment file given (usage: runner EXPERIMENT.lua [options])");
        return RN_EXIT_USAGE;
    }
    return 0;
}

static void print_plan(const rn_plan *p, const rn_resume *res) {
    printf("experiment %s (%s), seed %llu, threads %d%s%s\n", p->name, p->file, (unsigned long long)p->seed,
           p->threads, p->smoke ? ", smoke" : "", p->force ? ", force" : "");
    printf("runs folder: %s\n", rn_display_path(p->cwd, p->runs_dir));
    if (res) printf("resumes run %s (it had %s)\n", rn_display_path(p->cwd, res->run_dir), res->prev_status);
    for (size_t i = 0; i < p->n; i++) {
        const rn_plan_stage *s = &p->stages[i];
        printf("\n[%zu] %s: stage %s %s from %s (%s:%d)\n", i + 1, s->id, s->desc->name, s->desc->version,
               rn_display_path(p->cwd, s->plugin), s->file, s->line);
        printf("    params:%s\n", s->params->child ? "" : " (none)");
        for (const cJSON *c = s->params->child; c; c = c->next) {
            char *v = cJSON_PrintUnformatted(c);
            printf("      %s = %s\n", c->string, v ? v : "?");
            free(v);
        }
        printf("    inputs:%s\n", s->n_inputs ? "" : " (none)");
        for (size_t k = 0; k < s->n_inputs; k++) {
            const rn_plan_input *pi = &s->inputs[k];
            if (pi->producer >= 0) printf("      %s <- %s\n", pi->artifact, p->stages[pi->producer].id);
            else printf("      %s (optional, absent)\n", pi->artifact);
        }
        printf("    outputs:");
        for (size_t k = 0; s->desc->outputs && s->desc->outputs[k]; k++) printf(" %s", s->desc->outputs[k]);
        printf("%s\n", s->desc->outputs && s->desc->outputs[0] ? "" : " (none)");
        char *dir = rn_plan_cache_dir(p, i);
        if (!s->cached) printf("    cache: not cacheable (%s)\n", s->nocache ? s->nocache : "");
        else if (s->hit && !p->force) printf("    cache: cached (%s)\n", rn_display_path(p->cwd, dir));
        else if (s->hit) printf("    cache: will run (--force replaces %s)\n", rn_display_path(p->cwd, dir));
        else printf("    cache: will run (key %s)\n", s->key);
        if (res && !s->cached)
            printf("    resume: %s\n", res->action[i] == RN_RESUME_REUSE      ? "finished in the run: reused"
                                    : res->action[i] == RN_RESUME_CONTINUE ? "interrupted: continues (resuming)"
                                                                          : "runs");
        free(dir);
    }
}

int rn_cmd_run(int argc, char **argv) {
    run_args a = {0};
    int done;
    int status = parse_args(argc, argv, &a, &done);
    if (status || done) {
        rn_strv_free(&a.sets);
        return status;
    }
    rn_signals_install();
    rn_paths paths;
    rn_registry *reg = NULL;
    if (rn_cli_setup(&paths, &reg)) {
        rn_strv_free(&a.sets);
        return RN_EXIT_FAIL;
    }
    lm_err e = {0};
    rn_experiment *x = NULL;
    rn_plan *plan = NULL;
    rn_resume *res = NULL;
    char *runs = rn_runs_dir(paths.cwd, a.runs), *traceback = NULL, *run_dir = NULL;
    status = RN_EXIT_FAIL;
    if (!runs) {
        lm_fail(&e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    if (rn_experiment_load(a.file, &paths.lua_dirs, &x, &traceback, &e)) {
        const char *dbg = getenv("LUMEN_DEBUG");
        if (traceback && dbg && *dbg && strcmp(dbg, "0") != 0) fprintf(stderr, "%s\n", traceback);
        goto out;
    }
    rn_plan_opts po = {.cwd = paths.cwd, .runs_dir = runs, .sets = &a.sets, .smoke = a.smoke,
                       .force = a.force, .threads = a.threads};
    if (rn_plan_build(reg, x, &po, &plan, &e)) goto out;
    for (size_t i = 0; i < reg->n_refused; i++)
        rn_cli_warn("plugin %s refused: %s", reg->refused[i].path, reg->refused[i].reason);
    if (a.resume && rn_resume_open(plan, a.resume, stderr, &res, &e)) goto out;
    if (a.dry) {
        print_plan(plan, res);
        fflush(stdout);
        fprintf(stderr, "dry run: nothing was run\n");
        status = RN_EXIT_OK;
        goto out;
    }
    /* what status.json records as the command line */
    char **rec = calloc((size_t)argc + 1, sizeof *rec);
    if (!rec) {
        lm_fail(&e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    rec[0] = "runner";
    for (int i = 1; i < argc; i++) rec[i] = argv[i];
    rn_run_opts ro = {.argc = argc, .argv = rec, .term = stderr, .tty = isatty(STDERR_FILENO), .resume = res};
    double t0 = lm_now();
    int rc = rn_run_execute(plan, &ro, &run_dir, &e);
    free(rec);
    if (rc == 0) {
        fprintf(stderr, "finished in %.1f s\n", lm_now() - t0);
        fflush(stderr);
        printf("%s\n", rn_display_path(paths.cwd, run_dir));
        status = RN_EXIT_OK;
    } else if (run_dir) {
        fprintf(stderr, "run failed: %s\n", rn_display_path(paths.cwd, run_dir));
    }
out:
    if (status != RN_EXIT_OK) rn_cli_error("%s", e.msg[0] ? e.msg : "failed");
    free(traceback);
    free(run_dir);
    free(runs);
    rn_resume_free(res);
    rn_plan_free(plan);
    rn_experiment_free(x);
    rn_registry_free(reg);
    rn_paths_free(&paths);
    rn_strv_free(&a.sets);
    return status;
}
