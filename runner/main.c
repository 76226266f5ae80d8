/*
 * main.c -- the runner's entry point: the command table and dispatch.
 *
 *   runner EXPERIMENT.lua [options]    (same as `runner run EXPERIMENT.lua`)
 *   runner COMMAND [args]
 *
 * To add a command, implement `int rn_cmd_<name>(int argc, char **argv)` in
 * runner/cmd_<name>.c, declare it in commands.h and add one line below.
 */
#include <stdio.h>
#include <string.h>

#include <lumen/plugin.h>

#include "cli.h"
#include "cmd_bench.h"
#include "commands.h"
#include "suggest.h"
#include "version.h"

typedef struct rn_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *args; /* argument synopsis for --help */
    const char *help; /* one line */
} rn_command;

static const rn_command COMMANDS[] = {
    {"run", rn_cmd_run, "EXPERIMENT.lua [options]", "run an experiment (also: runner EXPERIMENT.lua)"},
    {"plugins", rn_cmd_plugins, "", "list stage plugins found, and refused ones with the reason"},
    {"describe", rn_cmd_describe, "STAGE", "show a stage's inputs, outputs and parameter table"},
    {"runs", rn_cmd_runs, "[EXPERIMENT] [--runs DIR]", "list recorded runs: status, duration, metrics"},
    {"predict", rn_cmd_predict, "CKPT (IMAGE...|--csv FILE)", "predict PNG images with a checkpoint (CSV out)"},
    {"eval", rn_cmd_eval, "CKPT --csv FILE", "validation metrics of a checkpoint on a labelled CSV (JSON)"},
    {"combine", rn_cmd_combine, "RUN[:CONFIG[:SEED]]...",
     "cross-validated score of an ensemble of crossval runs' models (no training)"},
    {"sync", rn_cmd_sync, "[RUN...] [--runs DIR] [--uri URI]", "post what tracked runs still hold to MLflow"},
    {"bench", rn_cmd_bench, "[--size N] [--batch N] ...", "time training steps and inference on synthetic data"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *out) {
    fprintf(out, "usage: runner EXPERIMENT.lua [options]\n       runner COMMAND [args]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char syn[96];
        snprintf(syn, sizeof syn, "%s %s", COMMANDS[i].name, COMMANDS[i].args);
        fprintf(out, "  %-36s %s\n", syn, COMMANDS[i].help);
    }
    fprintf(out, "  %-36s %s\n", "--version", "print the runner and plugin ABI versions");
    fprintf(out, "  %-36s %s\n\n", "--help", "this text");
    fputs(rn_run_usage, out);
    fputs("\nenvironment:\n"
          "  LUMEN_PLUGIN_PATH  extra plugin folders (colon separated), searched after\n"
          "                     <runner dir>/plugins and <runner dir>/../lib/lumen/plugins\n"
          "  LUMEN_RUNS         runs folder when --runs is not given (default ./runs)\n"
          "  LUMEN_DATA         data folder for lumen.data \"...\" (default data/elpv)\n"
          "  LUMEN_DEBUG=1      show the Lua traceback of an experiment error\n"
          "  LUMEN_EVAL_TIMEOUT seconds an experiment file may take to evaluate\n"
          "                     (default 60, 0: no limit)\n"
          "  LUMEN_EVAL_MEMORY  MiB an experiment file may use while evaluating\n"
          "                     (default 256, 0: no limit)\n"
          "  LUMEN_TRACKING_URI MLflow server to post runs to (else MLFLOW_TRACKING_URI or\n"
          "                     the experiment's tracking = lumen.mlflow{...}; off: none);\n"
          "                     MLFLOW_EXPERIMENT_NAME, MLFLOW_TRACKING_TOKEN/USERNAME/PASSWORD,\n"
          "                     LUMEN_TRACKING_TIMEOUT/DRAIN/RETRIES (see README)\n",
          out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        rn_cli_error("no experiment or command given");
        return RN_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
        usage(stdout);
        return RN_EXIT_OK;
    }
    if (strcmp(a, "--version") == 0) {
        printf("runner (lumen) %s, plugin ABI %d (%s)\n", RN_VERSION, LUMEN_ABI_VERSION, LUMEN_SIGNATURE);
        return RN_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(a, COMMANDS[i].name) == 0) return COMMANDS[i].fn(argc - 1, argv + 1);
    size_t n = strlen(a);
    int looks_like_file = a[0] == '-' || (n > 4 && strcmp(a + n - 4, ".lua") == 0) || strchr(a, '/') ||
                          lm_exists(a);
    if (!looks_like_file) {
        const char *names[N_COMMANDS];
        for (size_t i = 0; i < N_COMMANDS; i++) names[i] = COMMANDS[i].name;
        char hint[128];
        rn_suggest_phrase(hint, sizeof hint, a, names, N_COMMANDS);
        rn_cli_error("unknown command '%s'%s; an experiment file ends in .lua (see runner --help)", a, hint);
        return RN_EXIT_USAGE;
    }
    /* an experiment file (or a run option before it) */
    return rn_cmd_run(argc, argv);
}
