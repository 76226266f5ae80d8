/* ensemble.c -- see ensemble.h. */
#include "ensemble.h"

#include "evaluate.h"
#include "infer.h"
#include "predictions.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FORMAT "lumen-ensemble"

void lm_ensemble_mean(const float *const *p, size_t m, size_t count, float *out) {
    for (size_t i = 0; i < count; i++) {
        double s = 0;
        for (size_t j = 0; j < m; j++) s += (double)p[j][i];
        out[i] = m ? (float)(s / (double)m) : NAN;
    }
}

void lm_ensemble_free(lm_ensemble *e) {
    if (!e) return;
    for (size_t i = 0; e->models && i < e->n_models; i++) free(e->models[i]);
    for (int j = 0; e->labels && j < e->k; j++) free(e->labels[j]);
    free(e->models);
    free(e->labels);
    memset(e, 0, sizeof *e);
}

int lm_ensemble_write(const char *path, const lm_ensemble *ens, const cJSON *extra, lm_err *err) {
    cJSON *d = cJSON_CreateObject();
    int ok = d && cJSON_AddStringToObject(d, "format", FORMAT) &&
             cJSON_AddNumberToObject(d, "version", 1);
    cJSON *l = ok ? cJSON_AddArrayToObject(d, "labels") : NULL;
    cJSON *m = ok ? cJSON_AddArrayToObject(d, "models") : NULL;
    ok = l && m;
    for (int j = 0; ok && j < ens->k; j++) ok = cJSON_AddItemToArray(l, cJSON_CreateString(ens->labels[j]));
    for (size_t i = 0; ok && i < ens->n_models; i++)
        ok = cJSON_AddItemToArray(m, cJSON_CreateString(ens->models[i]));
    if (ok && ens->has_thresholds) {
        cJSON *t = cJSON_AddArrayToObject(d, "thresholds");
        ok = t != NULL;
        for (int j = 0; ok && j < ens->k; j++)
            ok = cJSON_AddItemToArray(t, cJSON_CreateNumber((double)ens->thresholds[j]));
    }
    for (const cJSON *c = extra ? extra->child : NULL; ok && c; c = c->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, c->string);
        ok = cJSON_AddItemToObject(d, c->string, cJSON_Duplicate(c, 1));
    }
    if (!ok) {
        cJSON_Delete(d);
        return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
    }
    return lm_json_write(path, d, 1, err);
}

static char *dir_of(const char *path) {
    const char *sl = strrchr(path, '/');
    if (!sl) return lm_strdup(".");
    if (sl == path) return lm_strdup("/");
    return strndup(path, (size_t)(sl - path));
}

int lm_ensemble_read(const char *path, lm_ensemble *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int rc = lm_read_file(path, &text, &len, err);
    if (rc) return rc;
    cJSON *d = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "format");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "models");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(d, "labels");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d, "thresholds");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, FORMAT) != 0) {
        cJSON_Delete(d);
        return lm_fail(err, LUMEN_EDATA, "%s: not a lumen ensemble manifest (\"format\": \"%s\")",
                       path, FORMAT);
    }
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) < 1) {
        cJSON_Delete(d);
        return lm_fail(err, LUMEN_EDATA, "%s: \"models\" must list at least one checkpoint", path);
    }
    int k = cJSON_IsArray(l) ? cJSON_GetArraySize(l) : 0;
    if (k > LM_METRICS_MAX_CLASSES || (t && (!cJSON_IsArray(t) || cJSON_GetArraySize(t) != k))) {
        cJSON_Delete(d);
        return lm_fail(err, LUMEN_EDATA, "%s: \"thresholds\" must hold one number per label (%d)",
                       path, k);
    }
    char *dir = dir_of(path);
    out->n_models = (size_t)cJSON_GetArraySize(m);
    out->models = calloc(out->n_models, sizeof *out->models);
    out->k = k;
    out->labels = calloc((size_t)k + 1, sizeof *out->labels);
    if (!dir || !out->models || !out->labels) goto oom;
    size_t i = 0;
    for (const cJSON *v = m->child; v; v = v->next, i++) {
        if (!cJSON_IsString(v) || !*v->valuestring) {
            free(dir);
            cJSON_Delete(d);
            lm_ensemble_free(out);
            return lm_fail(err, LUMEN_EDATA, "%s: models[%zu] must be a file name", path, i + 1);
        }
        out->models[i] = v->valuestring[0] == '/' ? lm_strdup(v->valuestring)
                                                  : lm_path_join(dir, v->valuestring);
        if (!out->models[i]) goto oom;
    }
    int j = 0;
    for (const cJSON *v = l ? l->child : NULL; v && j < k; v = v->next, j++)
        if (!(out->labels[j] = lm_strdup(cJSON_IsString(v) ? v->valuestring : ""))) goto oom;
    j = 0;
    for (const cJSON *v = t ? t->child : NULL; v; v = v->next, j++) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1)) {
            free(dir);
            cJSON_Delete(d);
            lm_ensemble_free(out);
            return lm_fail(err, LUMEN_EDATA, "%s: thresholds[%d] must be a number in [0, 1]", path,
                           j + 1);
        }
        out->thresholds[j] = (float)v->valuedouble;
    }
    out->has_thresholds = t != NULL;
    free(dir);
    cJSON_Delete(d);
    return 0;
oom:
    free(dir);
    cJSON_Delete(d);
    lm_ensemble_free(out);
    return lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", path);
}

static int add_model(lm_ensemble *e, const char *path) {
    char **nm = realloc(e->models, (e->n_models + 1) * sizeof *nm);
    if (!nm) return LUMEN_ENOMEM;
    e->models = nm;
    if (!(nm[e->n_models] = lm_strdup(path))) return LUMEN_ENOMEM;
    e->n_models++;
    return 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.safetensors of folder dir, by name. */
static int add_folder(lm_ensemble *e, const char *dir, lm_err *err) {
    DIR *d = opendir(dir);
    if (!d) return lm_fail_errno(err, LUMEN_ENOTFOUND, "%s: cannot list", dir);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!ends_with(de->d_name, ".safetensors")) continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = lm_path_join(dir, de->d_name))) {
            if (nn) names = nn;
            rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", dir);
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0)
        rc = lm_fail(err, LUMEN_ENOTFOUND, "%s: no %s and no *.safetensors checkpoints in it", dir,
                     LM_ENSEMBLE_FILE);
    if (rc == 0) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (add_model(e, names[i])) rc = lm_fail(err, LUMEN_ENOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int lm_ensemble_from_args(const char *const *args, size_t n, lm_ensemble *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    if (n == 0) return lm_fail(err, LUMEN_EINVAL, "ensemble: no checkpoints given");
    size_t manifests = 0;
    int rc = 0;
    for (size_t a = 0; rc == 0 && a < n; a++) {
        struct stat st;
        char *man = NULL;
        if (stat(args[a], &st) == 0 && S_ISDIR(st.st_mode)) {
            man = lm_path_join(args[a], LM_ENSEMBLE_FILE);
            if (!man) rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
            else if (stat(man, &st) != 0) {
                free(man);
                man = NULL;
                rc = add_folder(out, args[a], err);
                continue;
            }
        } else if (ends_with(args[a], ".json")) {
            man = lm_strdup(args[a]);
            if (!man) rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        }
        if (rc) break;
        if (man) {
            lm_ensemble m;
            rc = lm_ensemble_read(man, &m, err);
            free(man);
            if (rc) break;
            manifests++;
            for (size_t i = 0; rc == 0 && i < m.n_models; i++)
                if (add_model(out, m.models[i])) rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
            if (manifests == 1 && m.has_thresholds) {
                out->has_thresholds = 1;
                memcpy(out->thresholds, m.thresholds, sizeof out->thresholds);
                out->k = m.k;
                out->labels = m.labels;
                m.labels = NULL;
                m.k = 0;
            } else {
                out->has_thresholds = 0;
            }
            lm_ensemble_free(&m);
        } else if (add_model(out, args[a])) {
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        }
    }
    if (rc == 0 && (manifests != 1 || n != 1)) out->has_thresholds = 0; /* tuned for that set only */
    if (rc) lm_ensemble_free(out);
    return rc;
}

/* Models of one task: the same input size, source channels and labels.
 * Their filters (pixfilter.h) may differ: the callback gives each model
 * the images with its own filter. */
static int same_input(const lm_infer_model *a, const lm_infer_model *b, lm_err *err) {
    int same = a->height == b->height && a->width == b->width &&
               a->src_channels == b->src_channels && a->k == b->k;
    for (int j = 0; same && j < a->k; j++) same = strcmp(a->labels[j], b->labels[j]) == 0;
    return same ? 0
                : lm_fail(err, LUMEN_EDATA,
                          "ensemble: %s (%dx%d, %d source channel(s), %d labels) and %s (%dx%d, %d "
                          "source channel(s), %d labels) differ in input or labels; an ensemble "
                          "averages models of one task",
                          a->path, a->height, a->width, a->src_channels, a->k, b->path, b->height,
                          b->width, b->src_channels, b->k);
}

int lm_ensemble_eval(const lm_ensemble *ens, const lm_infer_model *m0, const char *backend,
                     int batch, int threads, lm_ensemble_eval_fn eval, void *user,
                     lm_eval_result *out, lm_err *err) {
    memset(out, 0, sizeof *out);
    if (!ens->n_models) return lm_fail(err, LUMEN_EINVAL, "ensemble: no checkpoints");
    size_t M = ens->n_models;
    float **probs = calloc(M, sizeof *probs);
    if (!probs) return lm_fail(err, LUMEN_ENOMEM, "ensemble: out of memory");
    int rc = 0;
    double t0 = lm_now();
    for (size_t i = 0; rc == 0 && i < M; i++) {
        lm_infer_model mi;
        const lm_infer_model *m = m0;
        if (i > 0) {
            if ((rc = lm_infer_model_load(ens->models[i], &mi, err))) break;
            m = &mi;
            rc = same_input(m0, m, err);
        }
        nn_engine *e = NULL;
        lm_eval_result r = {0};
        if (rc == 0) rc = lm_infer_engine(m, backend, batch, threads, &e, err);
        if (rc == 0) rc = eval(user, m, e, &r, err);
        if (rc == 0 && i > 0 &&
            (r.n != out->n || r.k != out->k ||
             memcmp(r.index, out->index, (size_t)r.n * sizeof *r.index) != 0))
            rc = lm_fail(err, LUMEN_EDATA, "ensemble: %s saw other samples than %s", m->path,
                         m0->path);
        if (rc == 0) {
            if (i == 0) {
                *out = r; /* keeps targets, index, names */
                memset(&r, 0, sizeof r);
                probs[0] = malloc(((size_t)out->n * (size_t)out->k + 1) * sizeof **probs);
                if (!probs[0]) rc = lm_fail(err, LUMEN_ENOMEM, "ensemble: out of memory");
                else memcpy(probs[0], out->probs, (size_t)out->n * (size_t)out->k * sizeof **probs);
            } else {
                probs[i] = r.probs;
                r.probs = NULL;
            }
        }
        lm_eval_result_free(&r);
        nn_engine_free(e);
        if (i > 0) lm_infer_model_free(&mi);
    }
    if (rc == 0) {
        size_t nk = (size_t)out->n * (size_t)out->k;
        lm_ensemble_mean((const float *const *)probs, M, nk, out->probs);
        double total = 0;
        for (int64_t i = 0; i < out->n; i++) {
            double s = 0;
            for (int j = 0; j < out->k; j++) {
                double p = out->probs[i * out->k + j], y = out->targets[i * out->k + j];
                const double eps = 1e-7;
                p = p < eps ? eps : p > 1 - eps ? 1 - eps : p;
                s += -(y * log(p) + (1 - y) * log(1 - p));
            }
            if (out->loss) out->loss[i] = (float)(s / out->k);
            total += s;
        }
        out->mean_loss = out->n ? total / ((double)out->n * out->k) : NAN;
        out->seconds = lm_now() - t0;
    } else {
        lm_eval_result_free(out);
    }
    for (size_t i = 0; i < M; i++) free(probs[i]);
    free(probs);
    return rc;
}
