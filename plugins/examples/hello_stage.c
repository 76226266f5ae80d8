/*
 * hello_stage.c -- a complete out-of-tree lumen stage: "hello", a byte
 * histogram of a file.
 *
 * Build it with one command, from the lumen source folder:
 *
 *     cc -std=c11 -shared -fPIC -Iplugins -o hello_stage.so plugins/examples/hello_stage.c
 *
 * put hello_stage.so in a folder listed in LUMEN_PLUGIN_PATH, and use it:
 *
 *     lumen.hello { file = "notes.txt", bins = 8 }
 *
 * What it shows:
 *   - declared parameters (a required path, a bounded integer, a string with
 *     a default): the runner validates them, fills defaults and documents them
 *     in `runner describe hello`;
 *   - a cacheable stage whose key() folds the input file's size and mtime
 *     into the cache key, so editing the file reruns it;
 *   - writing an output artifact (histogram/histogram.csv), reporting
 *     progress, polling cancellation, logging, a metric and a summary;
 *   - reporting errors with host->fail().
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <lumen/plugin.h>

static const lumen_param PARAMS[] = {
    /* name      type        default  min max choices flags              doc */
    {"file", LUMEN_PATH, NULL, 0, 0, NULL, LUMEN_PF_REQUIRED, "the file whose bytes are counted"},
    {"bins", LUMEN_INT, "16", 1, 256, NULL, 0, "histogram bins over the byte values 0..255"},
    {"greeting", LUMEN_STR, "hello", 0, 0, NULL, 0, "first line of the output"},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL},
};
static const char *const OUTPUTS[] = {"histogram", NULL};

/* Cache key: the file's size and modification time (cheap, no reading). */
static int key(lumen_ctx *ctx, const lumen_host *host) {
    const char *path = host->get_str(ctx, "file");
    struct stat st;
    if (stat(path, &st) != 0) return host->fail(ctx, LUMEN_ENOTFOUND, "file: cannot read %s", path);
    long long facts[3] = {(long long)st.st_size, (long long)st.st_mtim.tv_sec, (long long)st.st_mtim.tv_nsec};
    host->key_add(ctx, facts, sizeof facts);
    return LUMEN_OK;
}

static int run(lumen_ctx *ctx, const lumen_host *host) {
    const char *path = host->get_str(ctx, "file");
    int bins = (int)host->get_int(ctx, "bins");
    long long per_byte[256] = {0}, total = 0;
    struct stat st;
    FILE *in = fopen(path, "rb");
    if (!in || fstat(fileno(in), &st) != 0) {
        if (in) fclose(in);
        return host->fail(ctx, LUMEN_EIO, "cannot read %s", path);
    }
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (host->cancelled(ctx)) {
            fclose(in);
            return host->fail(ctx, LUMEN_ECANCELED, "cancelled after %lld bytes", total);
        }
        for (size_t i = 0; i < n; i++) per_byte[buf[i]]++;
        total += (long long)n;
        host->progress(ctx, total, (long long)st.st_size, "B", path);
    }
    fclose(in);

    /* byte value v falls in bin v * bins / 256 */
    long long count[256] = {0};
    double sum = 0;
    for (int v = 0; v < 256; v++) {
        count[v * bins / 256] += per_byte[v];
        sum += (double)v * (double)per_byte[v];
    }
    char out[4096];
    snprintf(out, sizeof out, "%s/histogram.csv", host->output(ctx, "histogram"));
    FILE *f = fopen(out, "w");
    if (!f) return host->fail(ctx, LUMEN_EIO, "cannot write %s", out);
    fprintf(f, "# %s\nbin,lo,hi,count\n", host->get_str(ctx, "greeting"));
    for (int b = 0; b < bins; b++)
        fprintf(f, "%d,%d,%d,%lld\n", b, (b * 256 + bins - 1) / bins, ((b + 1) * 256 + bins - 1) / bins - 1,
                count[b]);
    if (fclose(f) != 0) return host->fail(ctx, LUMEN_EIO, "cannot write %s", out);

    host->log(ctx, LUMEN_LOG_INFO, "%s: %lld bytes in %d bins", path, total, bins);
    host->metric(ctx, "hello/bytes", (double)total, 0);
    host->summary(ctx, "hello/mean_byte", total ? sum / (double)total : 0);
    return LUMEN_OK;
}

static const lumen_stage HELLO = {
    LUMEN_STAGE_HEADER,
    .name = "hello",
    .version = "1.0",
    .summary = "example: byte histogram of a file",
    .params = PARAMS,
    .outputs = OUTPUTS,
    .flags = LUMEN_STAGE_CACHEABLE,
    .key = key,
    .run = run,
};

static const lumen_stage *const STAGES[] = {&HELLO, NULL};

LUMEN_EXPORT const lumen_stage *const *lumen_plugin_stages(uint32_t host_abi) {
    (void)host_abi; /* ABI 1 descriptors; the runner checks compatibility */
    return STAGES;
}
