/* sweep_results.c -- the sweep's results table: results.json, results.csv,
 * the `best` link, the summaries, the table on a terminal (see sweep.h). */
#include "sweep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonutil.h"
#include "track.h"

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = rn_json_item(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Sort order of rows: by mean, best first; rows without a value last. */
static int g_maximize;
static int by_mean(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    double u = num(x, "mean"), v = num(y, "mean");
    if (isnan(u) || isnan(v)) return isnan(u) - isnan(v);
    if (u == v) return (int)num(x, "config") - (int)num(y, "config");
    return (g_maximize ? u < v : u > v) ? 1 : -1;
}

static cJSON **sorted_rows(const cJSON *rows, int maximize, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(rows);
    cJSON **v = calloc(*n + 1, sizeof *v);
    if (!v) return NULL;
    size_t i = 0;
    for (cJSON *r = rows ? rows->child : NULL; r; r = r->next) v[i++] = r;
    g_maximize = maximize;
    qsort(v, *n, sizeof *v, by_mean);
    return v;
}

static char *params_text(const cJSON *params) {
    size_t cap = 256, off = 0;
    char *s = calloc(cap, 1);
    for (const cJSON *p = params ? params->child : NULL; s && p; p = p->next) {
        char nb[64];
        snprintf(nb, sizeof nb, "%.4g", p->valuedouble);
        const char *v = cJSON_IsString(p) ? p->valuestring : nb;
        size_t need = strlen(p->string) + strlen(v) + 3;
        if (off + need >= cap) {
            cap = 2 * (off + need);
            char *g = realloc(s, cap);
            if (!g) {
                free(s);
                return NULL;
            }
            s = g;
        }
        off += (size_t)snprintf(s + off, cap - off, "%s%s=%s", off ? " " : "", p->string, v);
    }
    if (s && !off) snprintf(s, cap, "(no search space)"); /* e.g. a crossval of one recipe */
    return s;
}

static int print_table(const cJSON *res, FILE *out) {
    const cJSON *rows = rn_json_item(res, "rows"), *seeds = rn_json_item(res, "seeds");
    const cJSON *goal = rn_json_item(res, "goal"), *metric = rn_json_item(res, "metric");
    int maximize = !(cJSON_IsString(goal) && strcmp(goal->valuestring, "min") == 0);
    size_t n;
    cJSON **v = sorted_rows(rows, maximize, &n);
    if (!v) return LUMEN_ENOMEM;
    const cJSON *folds = rn_json_item(res, "folds");
    if (cJSON_IsNumber(folds))
        fprintf(out, "%s (%s), %d fold(s) x %d seed(s); differences are to configuration 0 (the control), paired "
                     "by fold and seed, with a 95%% t interval\n",
                cJSON_IsString(metric) ? metric->valuestring : "?", maximize ? "higher is better" : "lower is better",
                (int)folds->valuedouble, cJSON_GetArraySize(seeds));
    else
        fprintf(out, "%s (%s), %d seed(s); differences are to configuration 0 (the control), paired by seed, with "
                     "a 95%% t interval\n",
                cJSON_IsString(metric) ? metric->valuestring : "?", maximize ? "higher is better" : "lower is better",
                cJSON_GetArraySize(seeds));
    fprintf(out, "%-4s %-6s %-8s %-7s %-3s %-20s %-18s %-6s %-8s %s\n", "rank", "config", "mean", "sd", "n",
            cJSON_IsNumber(folds) ? "per fold x seed" : "per seed", "diff vs control", "epochs", "time", "configuration / status");
    for (size_t i = 0; i < n; i++) {
        const cJSON *r = v[i];
        char mean[32] = "-", sd[32] = "-", diff[48] = "-", per[256] = "", dur[32];
        if (isfinite(num(r, "mean"))) snprintf(mean, sizeof mean, "%.4f", num(r, "mean"));
        if (isfinite(num(r, "sd"))) snprintf(sd, sizeof sd, "%.4f", num(r, "sd"));
        if ((int)num(r, "config") == 0) snprintf(diff, sizeof diff, "(control)");
        else if (isfinite(num(r, "diff")) && isfinite(num(r, "diff_ci95")))
            snprintf(diff, sizeof diff, "%+.4f +- %.4f", num(r, "diff"), num(r, "diff_ci95"));
        else if (isfinite(num(r, "diff")))
            snprintf(diff, sizeof diff, "%+.4f (1 pair)", num(r, "diff"));
        size_t off = 0;
        for (const cJSON *s = rn_json_item(r, "values") ? rn_json_item(r, "values")->child : NULL; s && off < sizeof per; s = s->next) {
            char b[16] = "-";
            if (cJSON_IsNumber(s)) snprintf(b, sizeof b, "%.3f", s->valuedouble);
            off += (size_t)snprintf(per + off, sizeof per - off, "%s%s", off ? " " : "", b);
        }
        snprintf(dur, sizeof dur, "%.0f s", num(r, "duration_s"));
        char *pt = params_text(rn_json_item(r, "params"));
        const cJSON *st = rn_json_item(r, "status");
        char rank[24] = "-";
        if (isfinite(num(r, "mean"))) snprintf(rank, sizeof rank, "%zu", i + 1);
        int other = cJSON_IsString(st) && strcmp(st->valuestring, "finished") != 0;
        fprintf(out, "%-4s %-6d %-8s %-7s %-3d %-20s %-18s %-6.1f %-8s %s%s%s%s\n", rank, (int)num(r, "config"), mean,
                sd, (int)num(r, "n"), per, diff, num(r, "epochs"), dur, pt ? pt : "", other ? "  [" : "",
                other ? st->valuestring : "", other ? "]" : "");
        free(pt);
    }
    const cJSON *best = rn_json_item(res, "best");
    if (best) {
        char *pt = params_text(rn_json_item(best, "params"));
        fprintf(out, "best: configuration %d (%s), trial %d; model: %s\n", (int)num(best, "config"), pt ? pt : "",
                (int)num(best, "trial"), cJSON_IsString(rn_json_item(best, "model")) ? rn_json_item(best, "model")->valuestring : "-");
        free(pt);
    }
    fflush(out);
    free(v);
    return 0;
}

int rn_sweep_print_results(const char *run_dir, FILE *out, lm_err *e) {
    char *path = lm_path_join(run_dir, "results.json");
    cJSON *res = NULL;
    int rc = path ? rn_json_read_file(path, &res, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0 && print_table(res, out)) rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
    cJSON_Delete(res);
    free(path);
    return rc;
}

static void csv_field(FILE *f, const char *s, int last) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (const char *c = s; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void csv_num(FILE *f, double v, int last) {
    char b[64] = "";
    if (isfinite(v)) snprintf(b, sizeof b, "%.17g", v);
    csv_field(f, b, last);
}

/* results.csv: composed in memory, written atomically. */
static int write_csv(const rn_sweep_spec *sp, const cJSON *res, const char *path, lm_err *e) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    csv_field(f, "config", 0);
    csv_field(f, "rank", 0);
    for (size_t i = 0; i < sp->nd; i++) csv_field(f, sp->dims[i].key, 0);
    csv_field(f, "mean", 0);
    csv_field(f, "sd", 0);
    csv_field(f, "n", 0);
    for (size_t s = 0; s < rn_sweep_reps(sp); s++) {
        char h[64];
        if (sp->folds >= 2)
            snprintf(h, sizeof h, "fold_%zu_seed_%llu", s / sp->n_seeds,
                     (unsigned long long)sp->seeds[s % sp->n_seeds]);
        else
            snprintf(h, sizeof h, "seed_%llu", (unsigned long long)sp->seeds[s]);
        csv_field(f, h, 0);
    }
    csv_field(f, "diff_vs_control", 0);
    csv_field(f, "diff_ci95", 0);
    csv_field(f, "pairs", 0);
    csv_field(f, "epochs", 0);
    csv_field(f, "duration_s", 0);
    csv_field(f, "status", 1);
    for (const cJSON *r = rn_json_item(res, "rows")->child; r; r = r->next) {
        csv_num(f, num(r, "config"), 0);
        csv_num(f, num(r, "rank"), 0);
        for (size_t i = 0; i < sp->nd; i++) {
            const cJSON *p = rn_json_item(rn_json_item(r, "params"), sp->dims[i].key);
            char b[64];
            csv_field(f, cJSON_IsString(p) ? p->valuestring : rn_num_str(p ? p->valuedouble : NAN, b, sizeof b), 0);
        }
        csv_num(f, num(r, "mean"), 0);
        csv_num(f, num(r, "sd"), 0);
        csv_num(f, num(r, "n"), 0);
        for (const cJSON *s = rn_json_item(r, "values")->child; s; s = s->next) csv_num(f, cJSON_IsNumber(s) ? s->valuedouble : NAN, 0);
        csv_num(f, num(r, "diff"), 0);
        csv_num(f, num(r, "diff_ci95"), 0);
        csv_num(f, num(r, "pairs"), 0);
        csv_num(f, num(r, "epochs"), 0);
        csv_num(f, num(r, "duration_s"), 0);
        csv_field(f, cJSON_IsString(rn_json_item(r, "status")) ? rn_json_item(r, "status")->valuestring : "", 1);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    int rc = bad || !text ? lm_fail(e, LUMEN_ENOMEM, "out of memory") : lm_write_file_atomic(path, text, len, e);
    free(text);
    return rc;
}

int rn_sweep_results(const rn_sweep_spec *sp, const rn_plan *trial_plan, const cJSON *labels,
                     const rn_trial_result *t, size_t nt, const rn_run_env *env, FILE *term, lm_err *e) {
    size_t nc = sp->n_configs, ns = rn_sweep_reps(sp); /* per configuration: seeds x folds */
    double *vals = calloc(nc * ns + 1, sizeof *vals);
    cJSON *res = cJSON_CreateObject();
    if (!vals || !res) {
        free(vals);
        cJSON_Delete(res);
        return lm_fail(e, LUMEN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nc * ns; i++) vals[i] = NAN;
    for (size_t i = 0; i < nt; i++)
        if (t[i].status && strcmp(t[i].status, "finished") == 0) vals[t[i].c * ns + t[i].s] = t[i].value;
    cJSON_AddStringToObject(res, "metric", sp->metric);
    cJSON_AddStringToObject(res, "goal", sp->maximize ? "max" : "min");
    cJSON *seeds = cJSON_AddArrayToObject(res, "seeds");
    for (size_t s = 0; s < sp->n_seeds; s++) cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)sp->seeds[s]));
    if (sp->folds >= 2) cJSON_AddNumberToObject(res, "folds", sp->folds);
    cJSON_AddNumberToObject(res, "control", 0);
    cJSON *rows = cJSON_AddArrayToObject(res, "rows");
    size_t n_fin = 0, n_fail = 0, n_pruned = 0;
    for (size_t i = 0; i < nt; i++) {
        const char *s = t[i].status ? t[i].status : "";
        n_fin += strcmp(s, "finished") == 0;
        n_pruned += strcmp(s, "pruned") == 0;
        n_fail += strcmp(s, "failed") == 0;
    }
    for (size_t c = 0; c < nc; c++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToArray(rows, r);
        cJSON_AddNumberToObject(r, "config", (double)c);
        const cJSON *lab = cJSON_GetArrayItem(labels, (int)c);
        cJSON_AddItemToObject(r, "params", cJSON_IsObject(lab) ? cJSON_Duplicate(lab, 1) : cJSON_CreateObject());
        double ok[1024];
        size_t n = 0;
        cJSON *values = cJSON_AddArrayToObject(r, "values");
        cJSON *trials = cJSON_AddArrayToObject(r, "trials");
        double epochs = 0, dur = 0;
        size_t n_tr = 0, fin = 0, pr = 0, fa = 0;
        for (size_t s = 0; s < ns; s++) {
            double v = vals[c * ns + s];
            cJSON_AddItemToArray(values, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
            if (isfinite(v) && n < 1024) ok[n++] = v;
        }
        for (size_t i = 0; i < nt; i++) {
            if (t[i].c != c) continue;
            cJSON_AddItemToArray(trials, cJSON_CreateNumber((double)t[i].n));
            epochs += t[i].epochs;
            dur += t[i].duration;
            n_tr++;
            const char *s = t[i].status ? t[i].status : "";
            fin += strcmp(s, "finished") == 0;
            pr += strcmp(s, "pruned") == 0;
            fa += strcmp(s, "failed") == 0;
        }
        double mean = NAN, sd = NAN;
        if (n) rn_mean_sd(ok, n, &mean, &sd);
        if (n < 2) sd = NAN;
        add_num(r, "mean", mean);
        add_num(r, "sd", sd);
        cJSON_AddNumberToObject(r, "n", (double)n);
        /* paired with the control by seed */
        double a[1024], b[1024], dm = NAN, half = NAN;
        size_t np = 0;
        for (size_t s = 0; s < ns && np < 1024; s++) {
            double u = vals[s], v = vals[c * ns + s];
            if (isfinite(u) && isfinite(v)) {
                a[np] = u;
                b[np++] = v;
            }
        }
        if (c > 0 && np > 0) rn_paired_diff(a, b, np, &dm, &half);
        add_num(r, "diff", dm);
        add_num(r, "diff_ci95", half);
        cJSON_AddNumberToObject(r, "pairs", c > 0 ? (double)np : 0);
        add_num(r, "epochs", n_tr ? epochs / (double)n_tr : NAN);
        cJSON_AddNumberToObject(r, "duration_s", dur);
        char st[96];
        if (fin == ns) snprintf(st, sizeof st, "finished");
        else if (fin + pr + fa < ns) snprintf(st, sizeof st, "incomplete");
        else if (pr == ns) snprintf(st, sizeof st, "pruned");
        else if (fa == ns) snprintf(st, sizeof st, "failed");
        else snprintf(st, sizeof st, "%zu finished, %zu pruned, %zu failed", fin, pr, fa);
        cJSON_AddStringToObject(r, "status", st);
    }
    /* ranks and the best configuration */
    size_t nr;
    cJSON **sorted = sorted_rows(rows, sp->maximize, &nr);
    int rc = 0;
    if (!sorted) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nr; i++) {
        if (isfinite(num(sorted[i], "mean"))) cJSON_AddNumberToObject(sorted[i], "rank", (double)(i + 1));
        else cJSON_AddNullToObject(sorted[i], "rank");
    }
    const cJSON *bestrow = nr && isfinite(num(sorted[0], "mean")) ? sorted[0] : NULL;
    free(sorted);
    char *best_link = lm_path_join(env->run_dir, "best");
    if (!best_link) {
        rc = lm_fail(e, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    unlink(best_link);
    if (bestrow) {
        size_t bc = (size_t)num(bestrow, "config"), bt = 0;
        double bv = NAN;
        for (size_t i = 0; i < nt; i++)
            if (t[i].c == bc && isfinite(vals[bc * ns + t[i].s]) &&
                (isnan(bv) || (sp->maximize ? t[i].value > bv : t[i].value < bv))) {
                bv = t[i].value;
                bt = t[i].n;
            }
        /* the model folder of the last stage that writes one */
        const char *mid = NULL;
        for (size_t i = 0; trial_plan && i < trial_plan->n; i++)
            for (size_t k = 0; trial_plan->stages[i].desc->outputs && trial_plan->stages[i].desc->outputs[k]; k++)
                if (strcmp(trial_plan->stages[i].desc->outputs[k], "model") == 0) mid = trial_plan->stages[i].id;
        char *target = mid ? lm_sprintf("trials/%zu/%s/model", bt, mid) : lm_sprintf("trials/%zu", bt);
        cJSON *best = cJSON_AddObjectToObject(res, "best");
        cJSON_AddNumberToObject(best, "config", (double)bc);
        cJSON_AddNumberToObject(best, "trial", (double)bt);
        cJSON_AddNumberToObject(best, "value", bv);
        cJSON_AddNumberToObject(best, "mean", num(bestrow, "mean"));
        cJSON_AddItemToObject(best, "params", cJSON_Duplicate(rn_json_item(bestrow, "params"), 1));
        char *shown = target ? lm_sprintf("%s/best -> %s", env->run_dir, target) : NULL;
        cJSON_AddStringToObject(best, "model", shown ? shown : "");
        free(shown);
        if (!target || symlink(target, best_link) != 0)
            rc = target ? lm_fail_errno(e, LUMEN_EIO, "cannot link %s", best_link)
                        : lm_fail(e, LUMEN_ENOMEM, "out of memory");
        free(target);
        /* summaries: the best configuration's mean under the metric's name */
        cJSON *v = cJSON_CreateNumber(num(bestrow, "mean"));
        char *pt = params_text(rn_json_item(bestrow, "params"));
        cJSON *ps = cJSON_CreateString(pt ? pt : "");
        free(pt);
        if (rc == 0) rc = rn_track_summary(env->trackers, sp->metric, v, e);
        if (rc == 0) rc = rn_track_summary(env->trackers, "sweep/best_config", ps, e);
        cJSON_Delete(v);
        cJSON_Delete(ps);
    }
    free(best_link);
    cJSON_AddNumberToObject(res, "trials", (double)nt);
    cJSON_AddNumberToObject(res, "finished", (double)n_fin);
    cJSON_AddNumberToObject(res, "pruned", (double)n_pruned);
    cJSON_AddNumberToObject(res, "failed", (double)n_fail);
    const char *keys[] = {"sweep/trials", "sweep/finished", "sweep/pruned", "sweep/failed"};
    double nums[] = {(double)nt, (double)n_fin, (double)n_pruned, (double)n_fail};
    for (size_t k = 0; rc == 0 && k < 4; k++) {
        cJSON *v = cJSON_CreateNumber(nums[k]);
        rc = v ? rn_track_summary(env->trackers, keys[k], v, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
        cJSON_Delete(v);
    }
    char *jpath = lm_path_join(env->run_dir, "results.json"), *cpath = lm_path_join(env->run_dir, "results.csv");
    if (rc == 0) rc = jpath ? rn_json_write_atomic(jpath, res, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    if (rc == 0) rc = cpath ? write_csv(sp, res, cpath, e) : lm_fail(e, LUMEN_ENOMEM, "out of memory");
    free(jpath);
    free(cpath);
    if (rc == 0) {
        fputc('\n', term);
        print_table(res, term);
    }
    if (rc == 0 && n_fin == 0) {
        const char *why = "";
        for (size_t i = 0; i < nt && !*why; i++)
            if (t[i].reason) why = t[i].reason;
        rc = lm_fail(e, LUMEN_ERR, "no trial of the sweep finished (first reason: %s)", why);
    }
out:
    cJSON_Delete(res);
    free(vals);
    return rc;
}
