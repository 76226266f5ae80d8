/* policy.c -- see policy.h. */
#include "policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rng.h"

static const char *const FILL_NAMES[] = {"mean", "border", "constant"};

void lm_policy_default(lm_policy *p) {
    memset(p, 0, sizeof *p);
    p->p = 1.0;
    p->fill = NN_AUG_FILL_MEAN;
}

int lm_policy_is_identity(const lm_policy *p) {
    return p->p == 0 || (!p->hflip && !p->vflip && !p->rotate90 && p->rotate == 0 &&
                         p->translate == 0 && p->contrast == 0 && p->brightness == 0 &&
                         p->gamma == 0);
}

int lm_policy_is_photometric(const lm_policy *p) {
    return p->contrast > 0 || p->brightness > 0 || p->gamma > 0;
}

int lm_policy_fill_from_name(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, FILL_NAMES[i]))
            return i;
    return -1;
}

const char *lm_policy_fill_name(int fill) {
    return fill >= 0 && fill < 3 ? FILL_NAMES[fill] : "?";
}

/* The stages' parameter table: the ranges of the numeric keys. */
static const lumen_param PARAMS[] = {LM_POLICY_PARAMS};

/* Numeric keys, in file order; their ranges are those of PARAMS. */
typedef struct numkey {
    const char *name;
    size_t off;
} numkey;

static const numkey NUMKEYS[] = {
    {"rotate", offsetof(lm_policy, rotate)},
    {"translate", offsetof(lm_policy, translate)},
    {"contrast", offsetof(lm_policy, contrast)},
    {"brightness", offsetof(lm_policy, brightness)},
    {"gamma", offsetof(lm_policy, gamma)},
    {"p", offsetof(lm_policy, p)},
    {"fill_value", offsetof(lm_policy, fill_value)},
};
#define NNUM (sizeof NUMKEYS / sizeof *NUMKEYS)

/* The declaration of a key (every NUMKEYS name is in PARAMS). */
static const lumen_param *param_of(const char *name) {
    for (size_t i = 0; i < sizeof PARAMS / sizeof *PARAMS; i++)
        if (!strcmp(PARAMS[i].name, name))
            return &PARAMS[i];
    return NULL;
}

typedef struct boolkey {
    const char *name;
    size_t off;
} boolkey;

static const boolkey BOOLKEYS[] = {
    {"hflip", offsetof(lm_policy, hflip)},
    {"vflip", offsetof(lm_policy, vflip)},
    {"rotate90", offsetof(lm_policy, rotate90)},
};
#define NBOOL (sizeof BOOLKEYS / sizeof *BOOLKEYS)

static double *num_at(lm_policy *p, const numkey *k) {
    return (double *)((char *)p + k->off);
}
static double num_get(const lm_policy *p, const numkey *k) {
    return *(const double *)((const char *)p + k->off);
}
static int *bool_at(lm_policy *p, const boolkey *k) { return (int *)((char *)p + k->off); }
static int bool_get(const lm_policy *p, const boolkey *k) {
    return *(const int *)((const char *)p + k->off);
}

int lm_policy_check(const lm_policy *p, lm_err *err) {
    for (size_t i = 0; i < NNUM; i++) {
        double v = num_get(p, &NUMKEYS[i]);
        const lumen_param *d = param_of(NUMKEYS[i].name);
        if (!(v >= d->min && v <= d->max))
            return lm_fail(err, LUMEN_EINVAL, "policy.%s: must be in [%g, %g], got %g",
                           NUMKEYS[i].name, d->min, d->max, v);
    }
    if (lm_policy_fill_name(p->fill)[0] == '?')
        return lm_fail(err, LUMEN_EINVAL, "policy.fill: unknown fill mode %d", p->fill);
    return LUMEN_OK;
}

char *lm_policy_to_json(const lm_policy *p) {
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddNumberToObject(o, "version", LM_POLICY_VERSION);
    for (size_t i = 0; ok && i < NBOOL; i++)
        ok = cJSON_AddBoolToObject(o, BOOLKEYS[i].name, bool_get(p, &BOOLKEYS[i])) != NULL;
    for (size_t i = 0; ok && i < NNUM; i++) {
        if (!strcmp(NUMKEYS[i].name, "fill_value"))
            ok = cJSON_AddStringToObject(o, "fill", lm_policy_fill_name(p->fill)) != NULL;
        ok = ok && cJSON_AddNumberToObject(o, NUMKEYS[i].name, num_get(p, &NUMKEYS[i]));
    }
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *out = realloc(text, n + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}

int lm_policy_from_json(const char *text, const char *source, lm_policy *out,
                        lm_err *err) {
    if (!source)
        source = "policy";
    cJSON *o = cJSON_Parse(text ? text : "");
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return lm_fail(err, LUMEN_EDATA, "%s: not a JSON object", source);
    }
    int rc = LUMEN_OK;
    lm_policy p;
    lm_policy_default(&p);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "version");
    if (!cJSON_IsNumber(v)) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: key \"version\" %s", source,
                     v ? "must be a number" : "is missing");
        goto out;
    }
    if (v->valuedouble != LM_POLICY_VERSION) {
        rc = lm_fail(err, LUMEN_EABI, "%s: policy version %g, this build reads %d", source,
                     v->valuedouble, LM_POLICY_VERSION);
        goto out;
    }
    /* unknown keys are errors: a misspelt key must not silently do nothing */
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        int known = !strcmp(it->string, "version") || !strcmp(it->string, "fill");
        for (size_t i = 0; !known && i < NBOOL; i++)
            known = !strcmp(it->string, BOOLKEYS[i].name);
        for (size_t i = 0; !known && i < NNUM; i++)
            known = !strcmp(it->string, NUMKEYS[i].name);
        if (!known) {
            rc = lm_fail(err, LUMEN_EDATA, "%s: unknown key \"%s\"", source, it->string);
            goto out;
        }
    }
    for (size_t i = 0; i < NBOOL; i++) {
        it = cJSON_GetObjectItemCaseSensitive(o, BOOLKEYS[i].name);
        if (!cJSON_IsBool(it)) {
            rc = lm_fail(err, LUMEN_EDATA, "%s: key \"%s\" %s", source, BOOLKEYS[i].name,
                         it ? "must be true or false" : "is missing");
            goto out;
        }
        *bool_at(&p, &BOOLKEYS[i]) = cJSON_IsTrue(it);
    }
    for (size_t i = 0; i < NNUM; i++) {
        it = cJSON_GetObjectItemCaseSensitive(o, NUMKEYS[i].name);
        if (!cJSON_IsNumber(it)) {
            rc = lm_fail(err, LUMEN_EDATA, "%s: key \"%s\" %s", source, NUMKEYS[i].name,
                         it ? "must be a number" : "is missing");
            goto out;
        }
        double x = it->valuedouble;
        const lumen_param *d = param_of(NUMKEYS[i].name);
        if (!(x >= d->min && x <= d->max)) {
            rc = lm_fail(err, LUMEN_EDATA, "%s: key \"%s\" must be in [%g, %g], got %g",
                         source, NUMKEYS[i].name, d->min, d->max, x);
            goto out;
        }
        *num_at(&p, &NUMKEYS[i]) = x;
    }
    it = cJSON_GetObjectItemCaseSensitive(o, "fill");
    p.fill = cJSON_IsString(it) ? lm_policy_fill_from_name(it->valuestring) : -1;
    if (p.fill < 0) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: key \"fill\" %s", source,
                     it ? "must be \"mean\", \"border\" or \"constant\"" : "is missing");
        goto out;
    }
    *out = p;
out:
    cJSON_Delete(o);
    return rc;
}

int lm_policy_load(const char *path, lm_policy *out, lm_err *err) {
    char *text = NULL;
    int rc = lm_read_file(path, &text, NULL, err);
    if (rc)
        return rc;
    rc = lm_policy_from_json(text, path, out, err);
    free(text);
    return rc;
}

void lm_policy_draw(const lm_policy *p, uint64_t seed, uint64_t epoch,
                    uint64_t index, int h, int w, nn_aug_params *out) {
    lm_rng r;
    lm_rng_init(&r, seed, LM_RNG_AUGMENT, epoch, index);
    double u[10];
    for (int i = 0; i < 10; i++)
        u[i] = lm_rng_uniform(&r);
    nn_aug_params_identity(out);
    out->fill = p->fill;
    out->fill_value = p->fill_value;
    if (!(u[0] < p->p))
        return;
    int hf = p->hflip && u[1] < 0.5, vf = p->vflip && u[2] < 0.5;
    int k = p->rotate90 ? (int)(u[3] * 4.0) : 0;
    out->dihedral = nn_aug_dihedral_of(hf, vf, k);
    out->angle_deg = p->rotate * (2 * u[4] - 1);
    out->dx = round(p->translate * w * (2 * u[5] - 1));
    out->dy = round(p->translate * h * (2 * u[6] - 1));
    out->contrast = 1 + p->contrast * (2 * u[7] - 1);
    out->brightness = p->brightness * (2 * u[8] - 1);
    out->gamma = exp(p->gamma * (2 * u[9] - 1));
    /* -0.0 from round() must not differ from 0 in "is there a shift" tests */
    if (out->dx == 0)
        out->dx = 0;
    if (out->dy == 0)
        out->dy = 0;
}
