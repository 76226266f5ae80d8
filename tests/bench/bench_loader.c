/*
 * bench_loader.c -- augmentation kernel and batch loader throughput on the
 * real ELPV dataset.
 *
 *   build/bench/bench_loader [dataset-dir]
 *
 * The dataset (300x300, 1 channel, as the experiments ingest it) is read
 * from the argument, else $LUMEN_BENCH_DATASET, else
 * /tmp/lumen-bench-elpv-300, and ingested there from $LUMEN_DATA/labels.csv
 * when missing (a few seconds; reused by later runs).  Prints single-core
 * kernel rates per transform mix and the loader's delivered img/s for each
 * policy and worker count, with a consumer that does no work (so the number
 * is the loader's ceiling).  Training consumes ~20 img/s; the target is
 * >= 200 img/s on one worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_augment.h"
#include "dataset.h"
#include "ingest/ingest.h"
#include "lm_util.h"
#include "batch_loader.h"
#include "normalize-stats/nstats.h"
#include "policy.h"

static int open_or_ingest(const char *dir, lm_dataset **ds) {
    lm_err e = {0};
    if (lm_dataset_open(dir, ds, &e) == 0)
        return 0;
    const char *data = getenv("LUMEN_DATA");
    if (!data) {
        fprintf(stderr, "bench_loader: no dataset at %s and LUMEN_DATA unset\n", dir);
        return 1;
    }
    char *csv = lm_path_join(data, "labels.csv");
    ingest_opts o;
    ingest_opts_default(&o);
    o.csv = csv;
    o.out = dir;
    o.size = 300;
    o.channels = 1;
    o.threads = 2;
    ingest_result r;
    lm_err_clear(&e);
    printf("ingesting %s -> %s ...\n", csv, dir);
    fflush(stdout);
    int rc = ingest_run(&o, &r, &e);
    free(csv);
    if (rc) {
        fprintf(stderr, "bench_loader: ingest: %s\n", e.msg);
        return 1;
    }
    printf("ingested %zu images (train %zu, val %zu) in %.1f s\n", r.images, r.train, r.val,
           r.seconds);
    lm_err_clear(&e);
    if (lm_dataset_open(dir, ds, &e)) {
        fprintf(stderr, "bench_loader: %s\n", e.msg);
        return 1;
    }
    return 0;
}

typedef struct named_policy {
    const char *name;
    lm_policy p;
} named_policy;

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("LUMEN_BENCH_DATASET");
    if (!dir)
        dir = "/tmp/lumen-bench-elpv-300";
    lm_dataset *ds = NULL;
    if (open_or_ingest(dir, &ds))
        return 1;
    const lm_dataset_info *info = lm_dataset_get_info(ds);
    int h = (int)info->height, w = (int)info->width, c = (int)info->channels;
    nstats_result st;
    lm_err e = {0};
    if (nstats_compute(ds, 2, &st, &e)) {
        fprintf(stderr, "bench_loader: stats: %s\n", e.msg);
        return 1;
    }
    float mean[4], sd[4];
    for (int i = 0; i < c && i < 4; i++) {
        mean[i] = (float)st.mean[i];
        sd[i] = (float)st.std[i];
    }
    printf("dataset %s: %zu train / %zu val, %dx%dx%d, mean %.4f std %.4f\n", dir,
           info->ntrain, info->nval, c, h, w, mean[0], sd[0]);

    /* ---- kernel, one core ---- */
    size_t ntrain;
    const uint32_t *train = lm_dataset_split(ds, LM_SPLIT_TRAIN, &ntrain);
    float *out = malloc((size_t)c * h * w * sizeof *out);
    struct {
        const char *name;
        nn_aug_params p;
    } kp[5];
    for (int i = 0; i < 5; i++)
        nn_aug_params_identity(&kp[i].p);
    kp[0].name = "normalise only";
    kp[1].name = "dihedral k=5";
    kp[1].p.dihedral = 5;
    kp[2].name = "dihedral+shift+photometric";
    kp[2].p.dihedral = 3, kp[2].p.dx = 12, kp[2].p.dy = -7, kp[2].p.contrast = 1.1,
    kp[2].p.gamma = 0.9, kp[2].p.brightness = 0.05;
    kp[3].name = "rotate 7deg (bilinear)";
    kp[3].p.angle_deg = 7;
    kp[4].name = "everything (bilinear)";
    kp[4].p = kp[2].p;
    kp[4].p.angle_deg = -4.5;
    for (int k = 0; k < 5; k++) {
        int n = 600;
        double t0 = lm_now();
        for (int i = 0; i < n; i++) {
            lm_record r;
            lm_dataset_get(ds, train[(size_t)i % ntrain], &r);
            nn_aug_apply(r.pixels, c, h, w, &kp[k].p, mean, sd, out);
        }
        double dt = lm_now() - t0;
        printf("kernel  %-28s %8.0f img/s  (%.3f ms/img, 1 core)\n", kp[k].name, n / dt,
               dt / n * 1e3);
    }
    free(out);

    /* ---- loader ---- */
    named_policy pols[3];
    lm_policy_default(&pols[0].p);
    pols[0].name = "none (eval)";
    lm_policy_default(&pols[1].p);
    pols[1].name = "flip+rot90+contrast";
    pols[1].p.hflip = pols[1].p.vflip = pols[1].p.rotate90 = 1;
    pols[1].p.contrast = 0.2;
    pols[2].p = pols[1].p;
    pols[2].name = "full (+rotate10,translate)";
    pols[2].p.rotate = 10;
    pols[2].p.translate = 0.1;
    pols[2].p.brightness = 0.1;
    pols[2].p.gamma = 0.2;
    for (int pi = 0; pi < 3; pi++)
        for (int threads = 1; threads <= 2; threads++) {
            lm_loader_cfg cfg = {.split = LM_SPLIT_TRAIN, .batch = 32, .shuffle = 1,
                                 .drop_last = 1, .seed = 1, .policy = &pols[pi].p,
                                 .mean = mean, .std = sd, .threads = threads};
            lm_loader *ld = NULL;
            lm_err_clear(&e);
            if (lm_loader_open(ds, &cfg, &ld, &e)) {
                fprintf(stderr, "bench_loader: %s\n", e.msg);
                return 1;
            }
            size_t imgs = 0;
            double t0 = lm_now();
            for (int epoch = 0; epoch < 2; epoch++) {
                lm_loader_start_epoch(ld, epoch);
                lm_batch b;
                while (lm_loader_next(ld, &b, &e) == 0 && b.n > 0)
                    imgs += (size_t)b.n;
            }
            double dt = lm_now() - t0;
            lm_loader_stats ls;
            lm_loader_get_stats(ld, &ls);
            printf("loader  %-28s threads=%d batch=32: %zu img in %.2f s = %7.0f img/s "
                   "(worker time %.2f s)\n",
                   pols[pi].name, threads, imgs, dt, imgs / dt, ls.work_s);
            lm_loader_close(ld);
        }
    lm_dataset_close(ds);
    return 0;
}
