/*
 * bench_ingest.c -- times the ingest core on a label file (default: the
 * shared ELPV labels.csv, 2,324 images) and normalize-stats on the result.
 *
 *   bench_ingest [--csv FILE] [--root DIR] [--out DIR] [--size N]
 *                [--channels N] [--threads N] [--repeat N]
 *
 * Prints one line per run: "ingest <n> images <s> s <img/s>" and
 * "normalize-stats <s> s", then the best of each.  The output dataset goes
 * to --out (default a temp folder, removed afterwards).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "lm_util.h"
#include "normalize-stats/nstats.h"

int main(int argc, char **argv) {
    const char *data = getenv("LUMEN_DATA");
    if (!data || !*data) data = "../shared/data/elpv";
    char *csv = lm_path_join(data, "labels.csv");
    const char *root = NULL, *out = NULL;
    int size = 300, channels = 1, threads = 0, repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--csv")) free(csv), csv = strdup(argv[i + 1]);
        else if (!strcmp(argv[i], "--root")) root = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--channels")) channels = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_ingest: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char tmpl[] = "/tmp/lumen-bench-XXXXXX";
    char *tmp = NULL;
    if (!out) {
        if (!mkdtemp(tmpl)) return perror("mkdtemp"), 1;
        tmp = tmpl;
    }
    char *ds = lm_path_join(out ? out : tmp, "dataset"), *st = lm_path_join(out ? out : tmp, "stats");
    double best_i = 1e30, best_s = 1e30;
    size_t images = 0;
    int rc = 0;
    printf("bench_ingest: %s, %dx%d x%d, threads %d (0 = %d cores)\n", csv, size, size, channels,
           threads, lm_ncpu());
    for (int r = 0; r < repeat && !rc; r++) {
        ingest_opts o;
        ingest_opts_default(&o);
        o.csv = csv, o.root = root, o.out = ds, o.size = size, o.channels = channels;
        o.threads = threads, o.seed = 42;
        ingest_result res;
        lm_err e = {0};
        double t0 = lm_now();
        if ((rc = ingest_run(&o, &res, &e))) {
            fprintf(stderr, "ingest failed: %s\n", e.msg);
            break;
        }
        double ti = lm_now() - t0;
        images = res.images;
        nstats_opts no = {.dataset = ds, .out = st, .threads = threads};
        nstats_result sr;
        t0 = lm_now();
        if ((rc = nstats_run(&no, &sr, &e))) {
            fprintf(stderr, "normalize-stats failed: %s\n", e.msg);
            break;
        }
        double ts = lm_now() - t0;
        printf("run %d: ingest %zu images %.3f s (%.0f img/s); normalize-stats %.3f s "
               "(mean %.6f std %.6f)\n",
               r + 1, res.images, ti, res.images / ti, ts, sr.mean[0], sr.std[0]);
        fflush(stdout);
        if (ti < best_i) best_i = ti;
        if (ts < best_s) best_s = ts;
    }
    if (!rc)
        printf("best: ingest %.3f s (%.0f img/s), normalize-stats %.3f s\n", best_i,
               images / best_i, best_s);
    if (tmp) {
        lm_err e = {0};
        lm_rmtree(tmp, &e);
    }
    free(ds);
    free(st);
    free(csv);
    return rc ? 1 : 0;
}
