/*
 * cmd_runs.c -- `runner runs [EXPERIMENT] [--runs DIR]`: every recorded run
 * (oldest first per experiment) with status ("killed" for a run whose
 * process died without ending it), duration, up to three summary metrics
 * (keys starting with "val/" first) and the failure reason.  With
 * EXPERIMENT, the newest sweep run's results table follows, sorted by its
 * metric.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "jsonutil.h"
#include "paths.h"
#include "store.h"
#include "strv.h"
#include "executor.h"
#include "sweep.h"

#define N_METRICS 3
#define COLS 6

static int list_dirs(const char *dir, rn_strv *out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue; /* ".", "..", ".cache" */
        char *p = lm_path_join(dir, de->d_name);
        if (p && lm_is_dir(p)) rn_strv_push(out, de->d_name);
        free(p);
    }
    closedir(d);
    rn_strv_sort(out);
    return 0;
}

static void fmt_duration(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "-");
    else if (s < 60) snprintf(buf, n, "%.1fs", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

static int metric_rank(const char *k) { return strncmp(k, "val/", 4) == 0 ? 0 : 1; }

static int cmp_metric(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    int r = metric_rank(x->string) - metric_rank(y->string);
    return r ? r : strcmp(x->string, y->string);
}

/* "val/f1=0.8123 val/loss=0.31" */
static char *metrics_cell(const cJSON *summary) {
    const cJSON *items[64];
    size_t n = 0;
    for (const cJSON *c = summary ? summary->child : NULL; c && n < 64; c = c->next)
        if (cJSON_IsNumber(c) || cJSON_IsString(c)) items[n++] = c;
    qsort(items, n, sizeof *items, cmp_metric);
    char buf[512] = "";
    size_t w = 0;
    for (size_t i = 0; i < n && i < N_METRICS && w < sizeof buf; i++) {
        if (cJSON_IsNumber(items[i]))
            w += (size_t)snprintf(buf + w, sizeof buf - w, "%s%s=%.4g", w ? " " : "", items[i]->string,
                                  items[i]->valuedouble);
        else
            w += (size_t)snprintf(buf + w, sizeof buf - w, "%s%s=%.20s", w ? " " : "", items[i]->string,
                                  items[i]->valuestring);
    }
    return lm_strdup(w ? buf : "-");
}

typedef struct row {
    double started;
    rn_strv cells; /* COLS strings */
} row;

static int cmp_row(const void *a, const void *b) {
    const row *x = a, *y = b;
    int c = strcmp(x->cells.v[0], y->cells.v[0]);
    if (c) return c;
    if (x->started != y->started) return x->started < y->started ? -1 : 1;
    return strcmp(x->cells.v[1], y->cells.v[1]);
}

/* Fills one row for a run folder; 0 when it has no readable status. */
static int read_run(row *out, const char *exp, const char *run, const char *dir) {
    rn_strv *cells = &out->cells;
    int ok = 0;
    char *sp = lm_path_join(dir, RN_STATUS_FILE), *mp = lm_path_join(dir, RN_SUMMARY_FILE);
    cJSON *st = NULL, *sum = NULL;
    lm_err e = {0};
    if (!sp || !mp || rn_json_read_file(sp, &st, &e)) goto out;
    rn_json_read_file(mp, &sum, NULL);
    const char *status = rn_store_effective_status(st);
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(st, "duration_s");
    const cJSON *t0 = cJSON_GetObjectItemCaseSensitive(st, "started_unix");
    double d = cJSON_IsNumber(dur) ? dur->valuedouble
               : (strcmp(status, "running") == 0 && cJSON_IsNumber(t0)) ? lm_wall_time() - t0->valuedouble
                                                                        : NAN;
    char dbuf[32];
    fmt_duration(d, dbuf, sizeof dbuf);
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(st, "reason");
    const char *why = cJSON_IsString(reason) ? reason->valuestring
                      : strcmp(status, "killed") == 0 ? "process died while running"
                                                      : "-";
    rn_strv_push(cells, exp);
    rn_strv_push(cells, run);
    rn_strv_push(cells, status);
    rn_strv_push(cells, dbuf);
    rn_strv_take(cells, metrics_cell(sum));
    rn_strv_push(cells, why);
    out->started = cJSON_IsNumber(t0) ? t0->valuedouble : 0;
    ok = cells->n == COLS;
out:
    cJSON_Delete(st);
    cJSON_Delete(sum);
    free(sp);
    free(mp);
    return ok;
}

int rn_cmd_runs(int argc, char **argv) {
    const char *exp = NULL, *runs_opt = NULL, *v;
    for (int i = 1; i < argc; i++) {
        int m = rn_cli_value(argc, argv, &i, "--runs", &v);
        if (m < 0) return RN_EXIT_USAGE;
        if (m) {
            runs_opt = v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: runner runs [EXPERIMENT] [--runs DIR]\n\nLists recorded runs with status, duration, "
                   "main summary metrics and failure reason; with EXPERIMENT, also the results table of its "
                   "newest sweep run.\n");
            return RN_EXIT_OK;
        } else if (argv[i][0] == '-' || exp) {
            rn_cli_error("runs: unexpected argument '%s' (usage: runner runs [EXPERIMENT] [--runs DIR])",
                         argv[i]);
            return RN_EXIT_USAGE;
        } else {
            exp = argv[i];
        }
    }
    rn_paths paths;
    lm_err e = {0};
    if (rn_paths_init(&paths, &e)) {
        rn_cli_error("%s", e.msg);
        return RN_EXIT_FAIL;
    }
    char *runs = rn_runs_dir(paths.cwd, runs_opt);
    rn_strv exps = {0}, cells = {0};
    row *rows = NULL;
    size_t nrows = 0;
    int status = RN_EXIT_OK;
    const char *head[COLS] = {"EXPERIMENT", "RUN", "STATUS", "DURATION", "METRICS", "REASON"};
    for (int c = 0; c < COLS; c++) rn_strv_push(&cells, head[c]);
    if (!runs) {
        rn_cli_error("out of memory");
        status = RN_EXIT_FAIL;
        goto out;
    }
    if (exp) {
        char *d = lm_path_join(runs, exp);
        if (!d || !lm_is_dir(d)) {
            rn_cli_error("no runs of experiment '%s' in %s", exp, rn_display_path(paths.cwd, runs));
            status = RN_EXIT_FAIL;
            free(d);
            goto out;
        }
        free(d);
        rn_strv_push(&exps, exp);
    } else {
        list_dirs(runs, &exps);
    }
    for (size_t i = 0; i < exps.n; i++) {
        char *ed = lm_path_join(runs, exps.v[i]);
        rn_strv rl = {0};
        if (ed) list_dirs(ed, &rl);
        row *more = realloc(rows, (nrows + rl.n + 1) * sizeof *rows);
        if (more) rows = more;
        for (size_t k = 0; more && k < rl.n; k++) {
            char *rd = lm_path_join(ed, rl.v[k]);
            memset(&rows[nrows], 0, sizeof rows[nrows]);
            if (rd && read_run(&rows[nrows], exps.v[i], rl.v[k], rd)) nrows++;
            else rn_strv_free(&rows[nrows].cells);
            free(rd);
        }
        rn_strv_free(&rl);
        free(ed);
    }
    qsort(rows, nrows, sizeof *rows, cmp_row);
    for (size_t i = 0; i < nrows; i++)
        for (size_t c = 0; c < COLS; c++) rn_strv_push(&cells, rows[i].cells.v[c]);
    if (cells.n <= COLS) printf("no runs in %s\n", rn_display_path(paths.cwd, runs));
    else rn_cli_table((const char *const *)cells.v, cells.n / COLS, COLS);
    for (size_t i = nrows; exp && i-- > 0;) {
        char *rd = lm_sprintf("%s/%s/%s", runs, exp, rows[i].cells.v[1]);
        char *rj = rd ? lm_path_join(rd, "results.json") : NULL;
        int has = rj && lm_exists(rj);
        if (has) {
            printf("\nsweep %s (%s):\n", rows[i].cells.v[1], rows[i].cells.v[2]);
            fflush(stdout);
            rn_sweep_print_results(rd, stdout, &e);
        }
        if (rd && i + 1 == nrows) rn_slurm_print_jobs(rd, stdout); /* the newest run's Slurm jobs, if any */
        free(rj);
        free(rd);
        if (has) break;
    }
out:
    for (size_t i = 0; i < nrows; i++) rn_strv_free(&rows[i].cells);
    free(rows);
    rn_strv_free(&exps);
    rn_strv_free(&cells);
    free(runs);
    rn_paths_free(&paths);
    return status;
}
