/* cmd_bench.c -- `runner bench`: see cmd_bench.h. */
#include "cmd_bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_util.h"
#include "nn_engine.h"
#include "rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

#define BENCH_USAGE                                                                        \
    "usage: runner bench [--set model.KEY=VALUE]... [--size 300] [--channels 1]\n"           \
    "                    [--batch 32] [--steps 10] [--warmup 2] [--threads N]\n"             \
    "                    [--backend cpu|cuda|auto|ref] [--layout auto|blocked|nhwc]\n"       \
    "                    [--precision tf32|fp32|bf16] [--gpu 0]   (cuda backend)\n"         \
    "                    [--infer-conv auto|direct|wino2|wino4]\n"                           \
    "                    [--train-conv direct|auto|wino2|wino4] [--no-layers]\n"             \
    "                    [--no-train]\n"

static int usage(const char *msg, const char *arg) {
    fprintf(stderr, "runner bench: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, BENCH_USAGE);
    return 2;
}

static int int_arg(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int rn_cmd_bench(int argc, char **argv) {
    nn_resnet_cfg cfg;
    nn_resnet_cfg_default(&cfg);
    int size = 300, channels = 1, batch = 32, steps = 10, warmup = 2, threads = 0, layers = 1;
    int train = 1;
    int channels_set = 0;
    const char *backend = "cpu", *layout = NULL, *infer_conv = NULL, *train_conv = NULL;
    const char *precision = NULL; /* cuda: fp32 | tf32 | bf16 */
    int gpu = 0;
    lm_err err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *dst = NULL, lo = 1, hi = 1 << 20;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs("runner bench: times training steps and inference of a model on synthetic data\n" BENCH_USAGE, stdout);
            return 0;
        }
        if (strcmp(a, "--no-layers") == 0) { layers = 0; continue; }
        if (strcmp(a, "--no-train") == 0) { train = 0; continue; }
        if (!v) return usage("missing value for", a);
        if (strcmp(a, "--set") == 0) {
            char key[128];
            const char *eq = strchr(v, '=');
            if (!eq || (size_t)(eq - v) >= sizeof key) return usage("--set needs KEY=VALUE", v);
            memcpy(key, v, (size_t)(eq - v));
            key[eq - v] = '\0';
            if (nn_resnet_cfg_set(&cfg, key, eq + 1, &err)) return usage(err.msg, NULL);
            if (strstr(key, "in_channels")) channels_set = 1;
        } else if (strcmp(a, "--backend") == 0) {
            backend = v;
        } else if (strcmp(a, "--layout") == 0) {
            layout = v;
        } else if (strcmp(a, "--infer-conv") == 0) {
            infer_conv = v;
        } else if (strcmp(a, "--train-conv") == 0) {
            train_conv = v;
        } else if (strcmp(a, "--precision") == 0) {
            precision = v;
        } else if (strcmp(a, "--gpu") == 0) { dst = &gpu; lo = 0; hi = 1024;
        } else if (strcmp(a, "--size") == 0) { dst = &size; lo = 8; hi = 4096;
        } else if (strcmp(a, "--channels") == 0) { dst = &channels; hi = 16;
        } else if (strcmp(a, "--batch") == 0) { dst = &batch; hi = 4096;
        } else if (strcmp(a, "--steps") == 0) { dst = &steps; hi = 100000;
        } else if (strcmp(a, "--warmup") == 0) { dst = &warmup; lo = 0; hi = 1000;
        } else if (strcmp(a, "--threads") == 0) { dst = &threads; lo = 0; hi = 1024;
        } else {
            return usage("unknown option", a);
        }
        if (dst && int_arg(v, lo, hi, dst)) return usage("bad value for", a);
        i++;
    }
    if (!channels_set) cfg.in_channels = channels;
    channels = cfg.in_channels;

    nn_model *model = NULL;
    nn_engine *eng = NULL;
    float *x = NULL, *y = NULL, *logits = NULL;
    double *tt = NULL, *ti = NULL, *to = NULL, *lf = NULL, *lb = NULL, *li = NULL;
    int rc = nn_model_create(&cfg, &model, &err);
    nn_engine_opts o = {.batch = batch, .channels = channels, .height = size, .width = size,
                        .threads = threads, .seed = 1, .layout = layout, .infer_conv = infer_conv,
                        .train_conv = train_conv, .gpu = gpu, .precision = precision};
    if (!rc) rc = nn_engine_create(backend, model, &o, &eng, &err);
    if (!rc && *nn_engine_note(eng)) fprintf(stderr, "runner bench: %s\n", nn_engine_note(eng));
    if (rc) {
        fprintf(stderr, "runner bench: %s\n", err.msg);
        nn_model_free(model);
        return rc == LUMEN_EINVAL ? 2 : 1;
    }
    const nn_graph *g = nn_engine_graph(eng);
    int K = cfg.num_classes, G = g->n;
    size_t xn = (size_t)batch * channels * size * size;
    x = malloc(sizeof(float) * xn);
    y = malloc(sizeof(float) * (size_t)batch * K);
    logits = malloc(sizeof(float) * (size_t)batch * K);
    tt = calloc((size_t)steps, sizeof(double));
    ti = calloc((size_t)steps, sizeof(double));
    to = calloc((size_t)steps, sizeof(double));
    lf = calloc((size_t)G * steps, sizeof(double));
    lb = calloc((size_t)G * steps, sizeof(double));
    li = calloc((size_t)G * steps, sizeof(double));
    if (!x || !y || !logits || !tt || !ti || !to || !lf || !lb || !li) {
        fprintf(stderr, "runner bench: out of memory\n");
        rc = 1;
        goto done;
    }
    lm_xoshiro r;
    lm_xoshiro_seed(&r, 42);
    for (size_t i = 0; i < xn; i++) x[i] = (float)lm_xoshiro_normal(&r);
    for (int i = 0; i < batch * K; i++) y[i] = lm_xoshiro_uniform(&r) < 0.3 ? 1.0f : 0.0f;
    nn_optim_cfg opt = {.kind = NN_OPT_ADAM, .lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f,
                        .eps = 1e-8f};
    nn_loss_cfg lc = {0};
    double load0 = loadavg();
    float loss = 0;
    /* training: warmup, then timed steps; one more profiled pass per step
     * would perturb timing, so layers are profiled in separate steps */
    for (int s = 0; train && s < warmup + steps; s++) {
        double t0 = lm_now();
        if ((rc = nn_engine_train_step(eng, x, y, batch, &lc, &loss, NULL, &err))) goto fail;
        double t1 = lm_now();
        if ((rc = nn_engine_optim_step(eng, &opt, 1.0f, &err))) goto fail;
        if (s >= warmup) {
            tt[s - warmup] = lm_now() - t0;
            to[s - warmup] = lm_now() - t1;
        }
    }
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = lm_now();
        if ((rc = nn_engine_predict(eng, x, batch, logits, &err))) goto fail;
        if (s >= warmup) ti[s - warmup] = lm_now() - t0;
    }
    if (layers) {
        nn_engine_set_profiling(eng, 1);
        for (int s = 0; train && s < steps; s++) {
            if ((rc = nn_engine_train_step(eng, x, y, batch, &lc, &loss, NULL, &err))) goto fail;
            int cnt;
            const nn_layer_time *lt = nn_engine_layer_times(eng, &cnt);
            for (int i = 0; i < cnt; i++) {
                lf[(size_t)i * steps + s] = lt[i].fwd_ms;
                lb[(size_t)i * steps + s] = lt[i].bwd_ms;
            }
        }
        nn_engine_set_profiling(eng, 0);
        int cnt;
        const nn_layer_time *lt = nn_engine_layer_times(eng, &cnt);
        double sf = 0, sb = 0;
        if (train) printf("%-24s %-8s %-16s %10s %10s %9s\n", "layer", "op", "impl", "fwd ms", "bwd ms",
               "GFLOP/s");
        for (int i = 0; train && i < cnt; i++) {
            double f = median(lf + (size_t)i * steps, steps);
            double b = median(lb + (size_t)i * steps, steps);
            sf += f;
            sb += b;
            const nn_node *n = &g->nodes[i];
            double gf = n->op == NN_OP_CONV ? 3.0 * n->flops * batch / ((f + b) * 1e6) : 0;
            printf("%-24s %-8s %-16s %10.2f %10.2f %9.1f\n", lt[i].name, lt[i].op,
                   lt[i].impl[0] ? lt[i].impl : "own", f, b, gf);
        }
        if (train) printf("%-24s %-8s %-16s %10.2f %10.2f\n", "total (medians)", "", "", sf, sb);

        /* inference (predict: folded BN, fused post-ops, Winograd) */
        nn_engine_set_profiling(eng, 1);
        for (int s = 0; s < steps; s++) {
            if ((rc = nn_engine_predict(eng, x, batch, logits, &err))) goto fail;
            lt = nn_engine_layer_times(eng, &cnt);
            for (int i = 0; i < cnt; i++) li[(size_t)i * steps + s] = lt[i].inf_ms;
        }
        nn_engine_set_profiling(eng, 0);
        lt = nn_engine_layer_times(eng, &cnt);
        double si = 0;
        printf("\n%-24s %-8s %-16s %10s %9s\n", "layer (predict)", "op", "impl", "infer ms",
               "GFLOP/s");
        for (int i = 0; i < cnt; i++) {
            const nn_node *n = &g->nodes[i];
            double t = median(li + (size_t)i * steps, steps);
            si += t;
            if (n->op == NN_OP_BN || n->op == NN_OP_DROPOUT || n->op == NN_OP_ADD) continue;
            double gf = n->op == NN_OP_CONV && t > 0 ? n->flops * batch / (t * 1e6) : 0;
            printf("%-24s %-8s %-16s %10.2f %9.1f\n", lt[i].name, lt[i].op,
                   lt[i].inf_impl[0] ? lt[i].inf_impl : "own", t, gf);
        }
        printf("%-24s %-8s %-16s %10.2f\n", "total (medians)", "", "", si);
    }
    double load1 = loadavg();
    double fl = nn_graph_flops(g);
    /* --no-train: the training fields are 0 */
    double mt = train ? median(tt, steps) : INFINITY, mi = median(ti, steps),
           mo = train ? median(to, steps) : 0;
    printf("{\"backend\":\"%s\",\"batch\":%d,\"size\":%d,\"channels\":%d,\"threads\":%d,"
           "\"steps\":%d,\"train_img_s\":%.3f,\"infer_img_s\":%.3f,\"train_gflops\":%.2f,"
           "\"infer_gflops\":%.2f,\"train_ms_step\":%.2f,\"optim_ms\":%.2f,\"infer_ms_batch\":%.2f,"
           "\"gflop_per_train_img\":%.3f,\"gflop_per_infer_img\":%.3f,\"loss\":%.5f,"
           "\"load_before\":%.2f,\"load_after\":%.2f}\n",
           nn_engine_backend(eng), batch, size, channels, threads ? threads : lm_ncpu(), steps,
           batch / mt, batch / mi, 3 * fl * batch / mt / 1e9, fl * batch / mi / 1e9,
           train ? mt * 1e3 : 0.0, mo * 1e3, mi * 1e3, 3 * fl / 1e9, fl / 1e9, (double)loss, load0, load1);
    fflush(stdout);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "runner bench: %s\n", err.msg);
    rc = 1;
done:
    free(x);
    free(y);
    free(logits);
    free(tt);
    free(ti);
    free(to);
    free(lf);
    free(lb);
    free(li);
    nn_engine_free(eng);
    nn_model_free(model);
    return rc;
}
