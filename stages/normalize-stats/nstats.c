/* nstats.c -- see nstats.h. */
#include "nstats.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

typedef unsigned __int128 u128;

typedef struct part {
    const lm_dataset *ds;
    const uint32_t *idx;
    size_t begin, end;
    uint32_t c;
    size_t plane;
    uint64_t sum[NSTATS_MAX_CHANNELS];
    u128 sq[NSTATS_MAX_CHANNELS];
} part;

static void *sum_part(void *arg) {
    part *p = arg;
    for (size_t i = p->begin; i < p->end; i++) {
        lm_record r;
        lm_dataset_get(p->ds, p->idx[i], &r);
        for (uint32_t c = 0; c < p->c; c++) {
            const uint8_t *px = r.pixels + c * p->plane;
            /* one image plane: at most 2^32 pixels * 255^2 fits in 64 bits */
            uint64_t s = 0, q = 0;
            for (size_t j = 0; j < p->plane; j++) {
                uint32_t v = px[j];
                s += v;
                q += v * v;
            }
            p->sum[c] += s;
            p->sq[c] += q;
        }
    }
    return NULL;
}

int nstats_compute(const lm_dataset *ds, int threads, nstats_result *res, lm_err *err) {
    double t0 = lm_now();
    memset(res, 0, sizeof *res);
    const lm_dataset_info *in = lm_dataset_get_info(ds);
    size_t n;
    const uint32_t *idx = lm_dataset_split(ds, LM_SPLIT_TRAIN, &n);
    if (n == 0)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: the training split is empty",
                       lm_dataset_dir(ds));
    if (in->channels > NSTATS_MAX_CHANNELS)
        return lm_fail(err, LUMEN_EDATA, "dataset %s: %u channels, at most %d supported",
                       lm_dataset_dir(ds), in->channels, NSTATS_MAX_CHANNELS);
    if (threads <= 0) threads = lm_ncpu();
    if ((size_t)threads > n) threads = (int)n;
    part *parts = calloc((size_t)threads, sizeof *parts);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    if (!parts || !th) {
        free(parts);
        free(th);
        return lm_fail(err, LUMEN_ENOMEM, "out of memory");
    }
    int started = 0, rc = 0;
    for (int t = 0; t < threads; t++) {
        parts[t] = (part){.ds = ds, .idx = idx, .begin = n * (size_t)t / (size_t)threads,
                          .end = n * (size_t)(t + 1) / (size_t)threads, .c = in->channels,
                          .plane = (size_t)in->height * in->width};
        if (t == 0) continue; /* part 0 runs on this thread */
        if (pthread_create(&th[t], NULL, sum_part, &parts[t]) != 0) {
            rc = lm_fail(err, LUMEN_ERR, "cannot start threads");
            break;
        }
        started = t;
    }
    if (!rc) sum_part(&parts[0]);
    for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
    if (!rc) {
        uint64_t npx = (uint64_t)n * in->height * in->width;
        res->channels = in->channels;
        res->images = n;
        res->pixels = npx;
        for (uint32_t c = 0; c < in->channels; c++) {
            u128 s = 0, q = 0;
            for (int t = 0; t < threads; t++) {
                s += parts[t].sum[c];
                q += parts[t].sq[c];
            }
            /* var * N^2 * 255^2 = N Q - S^2, exact in 128 bits for any
             * realistic dataset (N Q < 2^128 needs N < ~2^60 pixels) */
            u128 num = (u128)npx * q - s * s;
            double mean = (double)s / (double)npx / 255.0;
            double var = (double)num / ((double)npx * (double)npx) / (255.0 * 255.0);
            res->mean[c] = mean;
            res->std[c] = sqrt(var > 0 ? var : 0);
        }
        res->seconds = lm_now() - t0;
    }
    free(parts);
    free(th);
    return rc;
}

static cJSON *array_of(const double *v, uint32_t n) {
    return cJSON_CreateDoubleArray(v, (int)n);
}

int nstats_run(const nstats_opts *o, nstats_result *out, lm_err *err) {
    double t0 = lm_now();
    nstats_result r;
    memset(&r, 0, sizeof r);
    lm_dataset *ds = NULL;
    cJSON *j = NULL;
    char *text = NULL, *path = NULL;
    int rc = lm_dataset_open(o->dataset, &ds, err);
    if (rc) goto out;
    if ((rc = nstats_compute(ds, o->threads, &r, err))) goto out;
    if ((rc = lm_mkdirs(o->out, err))) goto out;
    j = cJSON_CreateObject();
    cJSON *m = array_of(r.mean, r.channels), *s = array_of(r.std, r.channels);
    int ok = j && m && s && cJSON_AddNumberToObject(j, "channels", r.channels) &&
             cJSON_AddItemToObject(j, "mean", m) && (m = NULL, cJSON_AddItemToObject(j, "std", s)) &&
             (s = NULL, cJSON_AddNumberToObject(j, "images", (double)r.images)) &&
             cJSON_AddNumberToObject(j, "pixels", (double)r.pixels) &&
             cJSON_AddStringToObject(j, "split", "train") &&
             cJSON_AddStringToObject(j, "scale", "u8/255") &&
             cJSON_AddNumberToObject(j, "ddof", 0);
    cJSON_Delete(m);
    cJSON_Delete(s);
    if (!ok || !(text = cJSON_Print(j)) || !(path = lm_path_join(o->out, "stats.json"))) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    size_t tl = strlen(text);
    char *nl = realloc(text, tl + 2);
    if (!nl) {
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    text = nl;
    text[tl] = '\n';
    text[tl + 1] = '\0';
    if ((rc = lm_write_file_atomic(path, text, tl + 1, err))) goto out;
    r.seconds = lm_now() - t0;
    if (o->log) {
        char line[1024];
        size_t off = (size_t)snprintf(line, sizeof line,
                                      "normalize-stats: %zu training images, %llu pixels/channel;",
                                      r.images, (unsigned long long)r.pixels);
        for (uint32_t c = 0; c < r.channels && off < sizeof line; c++)
            off += (size_t)snprintf(line + off, sizeof line - off, " ch%u mean %.6f std %.6f", c,
                                    r.mean[c], r.std[c]);
        if (off < sizeof line) snprintf(line + off, sizeof line - off, "; %.3f s", r.seconds);
        o->log(o->user, LUMEN_LOG_INFO, line);
    }
out:
    cJSON_Delete(j);
    free(text);
    free(path);
    lm_dataset_close(ds);
    if (out) *out = r;
    return rc;
}
