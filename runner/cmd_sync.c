/*
 * cmd_sync.c -- `runner sync [RUN...] [--runs DIR] [--uri URI]`: posts to
 * the MLflow server what tracked runs still hold in their spool (mlflow.h).
 *
 * RUN is a run folder, or EXPERIMENT/RUN-ID below the runs folder.  Without
 * RUN, every run under the runs folder that has something pending.  A sweep
 * run's trials follow it.  Exit status 0 when everything is on the server.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "mlflow.h"
#include "paths.h"
#include "strv.h"

static const char USAGE[] = "usage: runner sync [RUN...] [--runs DIR] [--uri URI]\n";

static void list_dirs(const char *dir, rn_strv *out) {
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *p = lm_path_join(dir, de->d_name);
        if (p && lm_is_dir(p)) rn_strv_take(out, p);
        else free(p);
    }
    if (d) closedir(d);
    rn_strv_sort(out);
}

int rn_cmd_sync(int argc, char **argv) {
    const char *runs_opt = NULL, *uri = NULL, *v;
    rn_strv args = {0}, dirs = {0};
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = rn_cli_value(argc, argv, &i, "--runs", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            runs_opt = v;
        } else if ((m = rn_cli_value(argc, argv, &i, "--uri", &v))) {
            if (m < 0) return RN_EXIT_USAGE;
            uri = v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s\nPosts what tracked runs (tracking = lumen.mlflow { ... }, or LUMEN_TRACKING_URI) still hold "
                   "in their spool to the MLflow server; nothing is posted twice.  RUN: a run folder or "
                   "EXPERIMENT/RUN-ID; none: every run with something pending.  --uri: another server than the one "
                   "the run was tracked to.\n",
                   USAGE);
            rn_strv_free(&args);
            return RN_EXIT_OK;
        } else if (argv[i][0] == '-') {
            rn_cli_error("sync: unknown option '%s' (%s)", argv[i], USAGE);
            rn_strv_free(&args);
            return RN_EXIT_USAGE;
        } else {
            rn_strv_push(&args, argv[i]);
        }
    }
    rn_paths paths;
    lm_err e = {0};
    if (rn_paths_init(&paths, &e)) {
        rn_cli_error("%s", e.msg);
        rn_strv_free(&args);
        return RN_EXIT_FAIL;
    }
    char *runs = rn_runs_dir(paths.cwd, runs_opt);
    int status = RN_EXIT_OK, all = args.n == 0;
    for (size_t i = 0; runs && i < args.n; i++) {
        char *d = lm_is_dir(args.v[i]) ? rn_abspath(paths.cwd, args.v[i]) : lm_path_join(runs, args.v[i]);
        if (!d || !lm_is_dir(d)) {
            rn_cli_error("sync: no run folder '%s' (nor %s)", args.v[i], d ? d : "?");
            status = RN_EXIT_FAIL;
            free(d);
            continue;
        }
        rn_strv_take(&dirs, d);
    }
    if (runs && all) {
        rn_strv exps = {0};
        list_dirs(runs, &exps);
        for (size_t i = 0; i < exps.n; i++) list_dirs(exps.v[i], &dirs);
        rn_strv_free(&exps);
    }
    size_t tracked = 0;
    for (size_t i = 0; i < dirs.n; i++) {
        char state[64];
        rn_mlflow_sync_state(dirs.v[i], state, sizeof state);
        if (all && strcmp(state, "-") == 0) continue;
        if (all && strcmp(state, "synced") == 0) { /* its trials may still hold something */
            char *tr = lm_path_join(dirs.v[i], "trials");
            int has = tr && lm_is_dir(tr);
            free(tr);
            if (!has) continue;
        }
        tracked++;
        lm_err se = {0};
        if (rn_mlflow_sync(dirs.v[i], uri, stdout, &se)) {
            if (!all || se.code != LUMEN_ENOTFOUND) status = RN_EXIT_FAIL;
            if (se.code == LUMEN_ENOTFOUND) rn_cli_error("sync: %s", se.msg);
        }
    }
    if (all && tracked == 0) printf("nothing to sync in %s\n", runs ? rn_display_path(paths.cwd, runs) : "?");
    fflush(stdout);
    free(runs);
    rn_strv_free(&args);
    rn_strv_free(&dirs);
    rn_paths_free(&paths);
    return status;
}
