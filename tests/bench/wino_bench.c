/* Times the Winograd inference convolution (kernels/cpu/cpu_winograd.c) on
 * the default ResNet's 3x3/1 shapes, for tuning the tile block:
 *   build/bench/wino_bench [--batch 32] [--threads 2] [--reps 5] [--m 2|4|0]
 *                          [--tb N] [--shape C,H]
 * --m 0 (default) runs both transforms; --tb 0 (default) the block
 * nn_wino_block picks.  Prints per shape and transform the median
 * milliseconds and the direct-convolution-equivalent GFLOP/s
 * (2 * 9 * C * C * H * W per image).  Compare with oneDNN's direct conv in
 * `runner bench`'s predict table (--infer-conv direct). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_winograd.h"
#include "lm_util.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *alloc_f(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "wino_bench: out of memory\n");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    int batch = 32, threads = 2, reps = 5, only_m = 0, tb_opt = 0, nshapes = 4;
    int shapes[8][2] = {{64, 75}, {128, 38}, {256, 19}, {512, 10}};
    int custom = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--m")) only_m = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tb")) tb_opt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shape") && custom < 8 &&
                 sscanf(argv[i + 1], "%d,%d", &shapes[custom][0], &shapes[custom][1]) == 2)
            nshapes = ++custom;
        else {
            fprintf(stderr, "usage: wino_bench [--batch N] [--threads N] [--reps N] [--m 2|4|0] "
                            "[--tb N] [--shape C,H]...\n");
            return 2;
        }
    }
    if (batch < 1 || threads < 1 || reps < 1 || (tb_opt && tb_opt % 6)) {
        fprintf(stderr, "wino_bench: bad arguments (tb must be a multiple of 6)\n");
        return 2;
    }
    FILE *f = fopen("/proc/loadavg", "r");
    double load = -1;
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    printf("batch %d threads %d load %.2f\n", batch, threads, load);
    for (int s = 0; s < nshapes; s++) {
        int C = shapes[s][0], H = shapes[s][1], Cb = (C + 7) / 8;
        size_t n = (size_t)batch * Cb * 8 * H * H;
        float *x = alloc_f(n), *y = alloc_f(n), *w = alloc_f((size_t)C * C * 9);
        float *bias = alloc_f((size_t)Cb * 8 + 16);
        unsigned r = 1;
        for (size_t i = 0; i < n; i++) {
            r = r * 1103515245u + 12345u;
            x[i] = (float)((r >> 8) & 0xffff) / 65536.0f - 0.25f;
            y[i] = 0.0f;
        }
        for (size_t i = 0; i < (size_t)C * C * 9; i++) {
            r = r * 1103515245u + 12345u;
            w[i] = ((float)((r >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.05f;
        }
        memset(bias, 0, sizeof(float) * ((size_t)Cb * 8 + 16));
        double flops = 2.0 * 9 * C * C * H * H * batch;
        for (int m = 2; m <= 4; m += 2) {
            if (only_m && m != only_m) continue;
            int tb = tb_opt ? tb_opt : nn_wino_block(m, C, C, batch, H, H, threads);
            float *U = alloc_f(nn_wino_weights_floats(m, C, C));
            float *sc = alloc_f(nn_wino_scratch_floats(m, C, C, tb) * threads);
            memset(sc, 0, sizeof(float) * nn_wino_scratch_floats(m, C, C, tb) * threads);
            nn_wino_weights(U, w, m, C, C, 0);
            double t[64];
            int nr = reps > 64 ? 64 : reps;
            nn_wino_conv(y, x, U, bias, batch, C, H, H, C, m, tb, NN_WINO_RELU, sc, threads);
            for (int k = 0; k < nr; k++) {
                double t0 = lm_now();
                nn_wino_conv(y, x, U, bias, batch, C, H, H, C, m, tb, NN_WINO_RELU, sc, threads);
                t[k] = lm_now() - t0;
            }
            qsort(t, (size_t)nr, sizeof *t, cmp);
            double med = t[nr / 2];
            printf("C %4d H %3d  F(%dx%d) tb %3d: %8.2f ms  %6.1f GFLOP/s (direct-equivalent)\n",
                   C, H, m, m, tb, med * 1e3, flops / med / 1e9);
            free(U);
            free(sc);
        }
        free(x);
        free(y);
        free(w);
        free(bias);
    }
    return 0;
}
