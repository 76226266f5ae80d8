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
#include "mlflow.h"
#include "plugin_loader.h"
#include "paths.h"
#include "plan.h"
#include "resume.h"
#include "run.h"
#include "signals.h"
#include "sweep.h"

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
    "                         (train: from its last finished epoch); parameters must match;\n"
    "                         a sweep keeps its ended trials and continues the others\n"
    "  --trial DIR            (used by sweeps) run the sweep trial described by DIR/trial.json\n";

static const char *const OPTIONS[] = {"--set",   "--runs",   "--force",  "--dry-run", "--smoke",
                                      "--threads", "--resume", "--trial",  "--help", NULL};

typedef struct run_args {
    const char *file;
    const char *runs;
    const char *resume;
    const char *trial;
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
        } else if ((m = rn_cli_value(argc, argv, &i, "--trial", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            a->trial = v;
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

static void print_sweep(const rn_sweep_spec *sp, const rn_experiment *x) {
    printf("\n%s: sweep (%s:%d) over the stages after [%zu]: %s, %zu configuration(s) x %zu seed(s)%s = %zu "
           "trial(s), metric %s (%s)\n",
           sp->id, sp->file, sp->line, x->sweep->first,
           sp->strategy == RN_SWEEP_GRID ? "grid" : sp->strategy == RN_SWEEP_RANDOM ? "random" : "tpe",
           sp->n_configs, sp->n_seeds, sp->folds >= 2 ? " x folds" : "", sp->n_configs * rn_sweep_reps(sp),
           sp->metric, sp->maximize ? "max" : "min");
    printf("    space:\n");
    for (size_t i = 0; i < sp->nd; i++) {
        const rn_sweep_dim *d = &sp->dims[i];
        printf("      %s: ", d->key);
        if (d->dim.kind == RN_DIM_CHOICE)
            for (size_t k = 0; k < d->dim.n_choices; k++) printf("%s%s", k ? " | " : "", d->names[k]);
        else
            printf("%s [%g, %g]", d->dim.kind == RN_DIM_INT ? "int" : d->dim.kind == RN_DIM_UNIFORM ? "uniform"
                                                                                                    : "loguniform",
                   d->dim.lo, d->dim.hi);
        printf("\n");
    }
    printf("    seeds:");
    for (size_t s = 0; s < sp->n_seeds; s++) printf(" %llu", (unsigned long long)sp->seeds[s]);
    if (sp->folds >= 2)
        printf("\n    cross-validation: %d folds (%s.split.folds / split.fold set per trial)", sp->folds,
               sp->fold_stage);
    if (sp->groups)
        printf("\n    scores also per group: column '%s' of %s", sp->groups->column, sp->groups->file);
    printf("\n    stages per trial:");
    for (size_t i = x->sweep->first; i < x->n; i++) printf(" %s", x->stages[i].id);
    printf(" (the plan above shows the first configuration's)\n");
}

/* `--trial DIR`: one trial of a sweep, described by DIR/trial.json. */
static int prepare_trial(const char *dir_arg, const char *cwd, rn_experiment *x, rn_strv *sets, cJSON **desc,
                         char **dir, lm_err *e) {
    *dir = dir_arg[0] == '/' ? lm_strdup(dir_arg) : lm_path_join(cwd, dir_arg);
    char *path = *dir ? lm_path_join(*dir, "trial.json") : NULL;
    int rc = path ? rn_json_read_file(path, desc, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0 && !x->sweep) rc = lm_fail(e, LUMEN_EINVAL, "--trial: %s has no sweep", x->file);
    if (rc == 0 && (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(*desc, "sweep_run")) ||
                    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(*desc, "first"))))
        rc = lm_fail(e, LUMEN_EDATA, "%s: expected \"sweep_run\" and \"first\"", path);
    if (rc == 0) rc = rn_sweep_trial_apply(*desc, x, sets, e);
    free(path);
    return rc;
}

int rn_cmd_run(int argc, char **argv) {
    run_args a = {0};
    int done;
    int status = parse_args(argc, argv, &a, &done);
    if (status || done) {
        rn_strv_free(&a.sets);
        return status;
    }
    /* before the experiment file is evaluated: the Lua hook checks the flag,
     * so Ctrl-C stops a runaway experiment file too (lua_bridge.h) */
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
    rn_sweep_spec *spec = NULL;
    rn_experiment *upstream = NULL;
    rn_plan *trial_plan = NULL;
    rn_strv up_sets = {0}, trial_sets = {0};
    cJSON *trial_desc = NULL;
    char *trial_dir = NULL;
    rn_mlflow_conf mlconf = {0};
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
    {
        char where[512];
        snprintf(where, sizeof where, "%s:%d", x->file, x->line);
        if (rn_mlflow_conf_resolve(x->tracking, x->name, where, &mlconf, &e)) goto out;
    }
    rn_plan_opts po = {.cwd = paths.cwd, .runs_dir = runs, .sets = &a.sets, .smoke = a.smoke,
                       .force = a.force, .threads = a.threads};
    if (a.trial) {
        if (prepare_trial(a.trial, paths.cwd, x, &trial_sets, &trial_desc, &trial_dir, &e)) goto out;
        po.sets = &trial_sets;
        if (rn_plan_build(reg, x, &po, &plan, &e)) goto out;
        char *st = lm_path_join(trial_dir, "status.json");
        cJSON *sj = NULL;
        lm_err ig = {0};
        if (st && rn_json_read_file(st, &sj, &ig) == 0) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(sj, "status");
            if (cJSON_IsString(s) && strcmp(s->valuestring, "finished") == 0) {
                fprintf(stderr, "trial %s finished before; nothing to do\n", trial_dir);
                printf("%s\n", rn_display_path(paths.cwd, trial_dir));
                status = RN_EXIT_OK;
            } else if (!a.resume) {
                a.resume = trial_dir; /* an interrupted trial continues */
            }
        }
        cJSON_Delete(sj);
        free(st);
        if (status == RN_EXIT_OK) goto out;
    } else if (x->sweep) {
        if (rn_sweep_spec_parse(x, &a.sets, a.smoke, &spec, &e)) goto out;
        /* --set goes to the stages before the sweep (their plan), to the
         * sweep itself (the spec) or to its stages (every trial) */
        for (size_t i = 0; i < a.sets.n; i++) {
            const char *s = a.sets.v[i], *dot = strchr(s, '.');
            size_t l = dot ? (size_t)(dot - s) : 0;
            long k = -1;
            for (size_t j = 0; dot && j < x->n && k < 0; j++)
                if (strlen(x->stages[j].id) == l && strncmp(s, x->stages[j].id, l) == 0) k = (long)j;
            if (k < 0 && !rn_sweep_is_own_set(x, s)) {
                lm_fail(&e, LUMEN_EINVAL, "--set %s: no stage or sweep with that id in this experiment", s);
                goto out;
            }
            if (k >= 0 && (size_t)k < x->sweep->first && rn_strv_push(&up_sets, s)) {
                lm_fail(&e, LUMEN_ENOMEM, "out of memory");
                goto out;
            }
        }
        if (!(upstream = rn_experiment_head(x, x->sweep->first))) {
            lm_fail(&e, LUMEN_ENOMEM, "out of memory");
            goto out;
        }
        if (rn_sweep_validate(spec, reg, x, &po, &trial_plan, &e)) goto out;
        po.sets = &up_sets;
        if (upstream->n == 0 && spec->folds < 2) { /* crossval: each fold ingests its own split */
            lm_fail(&e, LUMEN_EINVAL, "%s:%d: a sweep needs at least one stage before it (the data it trains on)",
                    x->sweep->file, x->sweep->line);
            goto out;
        }
        if (rn_plan_build(reg, upstream, &po, &plan, &e)) goto out;
    } else if (rn_plan_build(reg, x, &po, &plan, &e)) {
        goto out;
    }
    for (size_t i = 0; i < reg->n_refused; i++)
        rn_cli_warn("plugin %s refused: %s", reg->refused[i].path, reg->refused[i].reason);
    if (a.resume && rn_resume_open(plan, a.resume, spec != NULL, stderr, &res, &e)) goto out;
    if (a.dry) {
        if (trial_plan) trial_plan->seed = plan->seed; /* the header shows the experiment's seed, not a trial's */
        print_plan(trial_plan ? trial_plan : plan, res);
        if (spec) print_sweep(spec, x);
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
    rn_run_opts ro = {.argc = argc, .argv = rec, .term = stderr, .tty = isatty(STDERR_FILENO), .resume = res,
                      .mlflow = &mlconf};
    rn_sweep_run sw = {.spec = spec, .x = x, .plan = plan, .trial_plan = trial_plan, .user_sets = &a.sets,
                       .exp_file = a.file, .resumed = res != NULL, .term = stderr};
    char *trial_id = NULL;
    if (spec) {
        ro.tail = rn_sweep_tail;
        ro.tail_arg = &sw;
        ro.tail_id = spec->id;
    }
    if (trial_desc) {
        const cJSON *sr = cJSON_GetObjectItemCaseSensitive(trial_desc, "sweep_run");
        const char *slash = strrchr(sr->valuestring, '/');
        trial_id = lm_sprintf("%s/trials/%s", slash ? slash + 1 : sr->valuestring, strrchr(trial_dir, '/') + 1);
        ro.run_at = trial_dir;
        ro.run_at_id = trial_id ? trial_id : "trial";
        ro.upstream_dir = sr->valuestring;
        ro.n_upstream = (size_t)cJSON_GetObjectItemCaseSensitive(trial_desc, "first")->valuedouble;
    }
    double t0 = lm_now();
    int rc = rn_run_execute(plan, &ro, &run_dir, &e);
    free(rec);
    free(trial_id);
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
    rn_plan_free(trial_plan);
    rn_sweep_spec_free(spec);
    rn_experiment_free(upstream);
    rn_strv_free(&up_sets);
    rn_strv_free(&trial_sets);
    cJSON_Delete(trial_desc);
    free(trial_dir);
    rn_mlflow_conf_free(&mlconf);
    rn_experiment_free(x);
    rn_registry_free(reg);
    rn_paths_free(&paths);
    rn_strv_free(&a.sets);
    return status;
}
