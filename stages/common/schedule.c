/* schedule.c -- see schedule.h. */
#include "schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define STATE_VERSION 1
#define PLATEAU_EPS 1e-8 /* ReduceLROnPlateau's eps */

static const char *const KIND_NAMES[] = {"constant", "step", "multistep",
                                         "cosine", "plateau"};

void lm_sched_cfg_default(lm_sched_cfg *c) {
    memset(c, 0, sizeof *c);
    c->kind = LM_SCHED_CONSTANT;
    c->lr = 1e-3;
    c->epochs = 1;
    c->steps_per_epoch = 1;
    c->step_size = 1;
    c->gamma = 0.1;
    c->warmup_start_factor = 1.0 / 3.0;
    c->factor = 0.1;
    c->patience = 10;
    c->threshold = 1e-4;
}

int lm_sched_kind_from_name(const char *name) {
    for (int i = 0; name && i < (int)(sizeof KIND_NAMES / sizeof *KIND_NAMES); i++)
        if (strcmp(name, KIND_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *lm_sched_kind_name(int kind) {
    if (kind < 0 || kind >= (int)(sizeof KIND_NAMES / sizeof *KIND_NAMES))
        return "?";
    return KIND_NAMES[kind];
}

int lm_sched_cfg_check(const lm_sched_cfg *c, lm_err *err) {
    if (lm_sched_kind_name(c->kind)[0] == '?')
        return lm_fail(err, LUMEN_EINVAL, "schedule.kind: unknown kind %d", c->kind);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return lm_fail(err, LUMEN_EINVAL, "schedule.lr: must be > 0, got %g", c->lr);
    switch (c->kind) {
    case LM_SCHED_STEP:
        if (c->step_size < 1)
            return lm_fail(err, LUMEN_EINVAL, "schedule.step_size: must be >= 1, got %lld",
                           (long long)c->step_size);
        /* fallthrough */
    case LM_SCHED_MULTISTEP:
        if (!(c->gamma > 0 && c->gamma <= 1))
            return lm_fail(err, LUMEN_EINVAL, "schedule.gamma: must be in (0, 1], got %g",
                           c->gamma);
        if (c->kind == LM_SCHED_MULTISTEP) {
            if (c->n_milestones < 0 || c->n_milestones > LM_SCHED_MAX_MILESTONES)
                return lm_fail(err, LUMEN_EINVAL,
                               "schedule.milestones: at most %d milestones, got %d",
                               LM_SCHED_MAX_MILESTONES, c->n_milestones);
            for (int i = 0; i < c->n_milestones; i++)
                if (c->milestones[i] < 0 || (i && c->milestones[i] < c->milestones[i - 1]))
                    return lm_fail(err, LUMEN_EINVAL,
                                   "schedule.milestones: must be ascending epochs >= 0 "
                                   "(element %d is %lld)",
                                   i + 1, (long long)c->milestones[i]);
        }
        break;
    case LM_SCHED_COSINE:
        if (c->epochs < 1)
            return lm_fail(err, LUMEN_EINVAL, "schedule.epochs: must be >= 1, got %lld",
                           (long long)c->epochs);
        if (c->steps_per_epoch < 1)
            return lm_fail(err, LUMEN_EINVAL,
                           "schedule.steps_per_epoch: must be >= 1, got %lld",
                           (long long)c->steps_per_epoch);
        if (!(c->warmup >= 0) || c->warmup >= (double)c->epochs)
            return lm_fail(err, LUMEN_EINVAL,
                           "schedule.warmup: must be in [0, epochs=%lld), got %g",
                           (long long)c->epochs, c->warmup);
        if (!(c->warmup_start_factor > 0 && c->warmup_start_factor <= 1))
            return lm_fail(err, LUMEN_EINVAL,
                           "schedule.warmup_start_factor: must be in (0, 1], got %g",
                           c->warmup_start_factor);
        /* fallthrough */
    case LM_SCHED_PLATEAU:
        if (!(c->min_lr >= 0 && c->min_lr <= c->lr))
            return lm_fail(err, LUMEN_EINVAL, "schedule.min_lr: must be in [0, lr=%g], got %g",
                           c->lr, c->min_lr);
        if (c->kind == LM_SCHED_PLATEAU) {
            if (!(c->factor > 0 && c->factor < 1))
                return lm_fail(err, LUMEN_EINVAL, "schedule.factor: must be in (0, 1), got %g",
                               c->factor);
            if (c->patience < 0)
                return lm_fail(err, LUMEN_EINVAL, "schedule.patience: must be >= 0, got %lld",
                               (long long)c->patience);
            if (!(c->threshold >= 0) || !isfinite(c->threshold))
                return lm_fail(err, LUMEN_EINVAL, "schedule.threshold: must be >= 0, got %g",
                               c->threshold);
            if (c->cooldown < 0)
                return lm_fail(err, LUMEN_EINVAL, "schedule.cooldown: must be >= 0, got %lld",
                               (long long)c->cooldown);
        }
        break;
    default:
        break;
    }
    return LUMEN_OK;
}

void lm_sched_init(const lm_sched_cfg *cfg, lm_sched_state *st) {
    memset(st, 0, sizeof *st);
    st->lr = cfg->lr;
}

static int64_t warmup_steps(const lm_sched_cfg *c) {
    return (int64_t)llround(c->warmup * (double)c->steps_per_epoch);
}

double lm_sched_lr(const lm_sched_cfg *c, const lm_sched_state *st,
                   int64_t epoch, int64_t step) {
    if (epoch < 0)
        epoch = 0;
    switch (c->kind) {
    case LM_SCHED_STEP:
        return c->lr * pow(c->gamma, (double)(epoch / c->step_size));
    case LM_SCHED_MULTISTEP: {
        int n = 0;
        while (n < c->n_milestones && c->milestones[n] <= epoch)
            n++;
        return c->lr * pow(c->gamma, n);
    }
    case LM_SCHED_COSINE: {
        int64_t t = epoch * c->steps_per_epoch + (step < 0 ? 0 : step);
        int64_t total = c->epochs * c->steps_per_epoch, w = warmup_steps(c);
        if (t < w) {
            double f = c->warmup_start_factor;
            return c->lr * (f + (1.0 - f) * (double)t / (double)w);
        }
        if (t >= total)
            return c->min_lr;
        double frac = (double)(t - w) / (double)(total - w);
        return c->min_lr + (c->lr - c->min_lr) * (1.0 + cos(M_PI * frac)) / 2.0;
    }
    case LM_SCHED_PLATEAU:
        return st->lr;
    default:
        return c->lr;
    }
}

static int plateau_better(const lm_sched_cfg *c, const lm_sched_state *st, double m) {
    if (isnan(m))
        return 0;
    if (!st->has_best) /* best is the worst infinity */
        return c->mode_max ? m > -INFINITY : m < INFINITY;
    if (c->mode_max)
        return m > st->best * (c->threshold + 1.0);
    return m < st->best * (1.0 - c->threshold);
}

int lm_sched_epoch_end(const lm_sched_cfg *c, lm_sched_state *st, double metric) {
    st->epochs_seen++;
    if (c->kind != LM_SCHED_PLATEAU)
        return 0;
    if (plateau_better(c, st, metric)) {
        st->best = metric;
        st->has_best = 1;
        st->num_bad_epochs = 0;
    } else {
        st->num_bad_epochs++;
    }
    if (st->cooldown_counter > 0) {
        st->cooldown_counter--;
        st->num_bad_epochs = 0;
    }
    if (st->num_bad_epochs > c->patience) {
        double old = st->lr, nl = fmax(old * c->factor, c->min_lr);
        st->cooldown_counter = c->cooldown;
        st->num_bad_epochs = 0;
        if (old - nl > PLATEAU_EPS) {
            st->lr = nl;
            return 1;
        }
    }
    return 0;
}

/* ---- JSON helpers: non-finite doubles travel as "inf", "-inf", "nan" ---- */

/* Finite values are written with 17 significant digits (as raw JSON
 * numbers): cJSON's own printing settles for 15 digits when they come back
 * within an epsilon, which loses the last bits -- and a resumed run must
 * continue with exactly the rate and best value it stopped with. */
static int put_num(cJSON *o, const char *key, double v) {
    char text[40];
    if (isfinite(v)) snprintf(text, sizeof text, "%.17g", v);
    cJSON *item = isfinite(v) ? cJSON_CreateRaw(text)
                              : cJSON_CreateString(isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
    return item && cJSON_AddItemToObject(o, key, item);
}

static int get_num(const cJSON *o, const char *what, const char *key, double *out,
                   lm_err *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(it)) {
        *out = it->valuedouble;
        return LUMEN_OK;
    }
    if (cJSON_IsRaw(it) && it->valuestring) { /* put_num's, not yet printed */
        char *end;
        *out = strtod(it->valuestring, &end);
        if (end != it->valuestring && *end == '\0')
            return LUMEN_OK;
    }
    if (cJSON_IsString(it)) {
        if (!strcmp(it->valuestring, "inf"))
            return *out = INFINITY, LUMEN_OK;
        if (!strcmp(it->valuestring, "-inf"))
            return *out = -INFINITY, LUMEN_OK;
        if (!strcmp(it->valuestring, "nan"))
            return *out = NAN, LUMEN_OK;
    }
    return lm_fail(err, LUMEN_EDATA, "%s: key \"%s\" %s", what, key,
                   it ? "must be a number" : "is missing");
}

static int get_int(const cJSON *o, const char *what, const char *key, int64_t *out,
                   lm_err *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
        return lm_fail(err, LUMEN_EDATA, "%s: key \"%s\" %s", what, key,
                       it ? "must be an integer" : "is missing");
    *out = (int64_t)it->valuedouble;
    return LUMEN_OK;
}

static int get_bool(const cJSON *o, const char *what, const char *key, int *out,
                    lm_err *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(it))
        return lm_fail(err, LUMEN_EDATA, "%s: key \"%s\" %s", what, key,
                       it ? "must be true or false" : "is missing");
    *out = cJSON_IsTrue(it);
    return LUMEN_OK;
}

static int check_version(const cJSON *o, const char *what, lm_err *err) {
    if (!cJSON_IsObject(o))
        return lm_fail(err, LUMEN_EDATA, "%s: not a JSON object", what);
    int64_t v;
    int rc = get_int(o, what, "version", &v, err);
    if (rc)
        return rc;
    if (v != STATE_VERSION)
        return lm_fail(err, LUMEN_EABI, "%s: version %lld, this build reads %d", what,
                       (long long)v, STATE_VERSION);
    return LUMEN_OK;
}

cJSON *lm_sched_state_to_json(const lm_sched_state *st) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "version", STATE_VERSION) ||
        !put_num(o, "lr", st->lr) || !cJSON_AddBoolToObject(o, "has_best", st->has_best) ||
        !put_num(o, "best", st->best) ||
        !cJSON_AddNumberToObject(o, "num_bad_epochs", (double)st->num_bad_epochs) ||
        !cJSON_AddNumberToObject(o, "cooldown_counter", (double)st->cooldown_counter) ||
        !cJSON_AddNumberToObject(o, "epochs_seen", (double)st->epochs_seen)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int lm_sched_state_from_json(const cJSON *o, lm_sched_state *out, lm_err *err) {
    const char *what = "schedule state";
    lm_sched_state st;
    int rc;
    if ((rc = check_version(o, what, err)) || (rc = get_num(o, what, "lr", &st.lr, err)) ||
        (rc = get_bool(o, what, "has_best", &st.has_best, err)) ||
        (rc = get_num(o, what, "best", &st.best, err)) ||
        (rc = get_int(o, what, "num_bad_epochs", &st.num_bad_epochs, err)) ||
        (rc = get_int(o, what, "cooldown_counter", &st.cooldown_counter, err)) ||
        (rc = get_int(o, what, "epochs_seen", &st.epochs_seen, err)))
        return rc;
    if (!(st.lr >= 0) || !isfinite(st.lr))
        return lm_fail(err, LUMEN_EDATA, "%s: key \"lr\" must be a finite rate >= 0, got %g",
                       what, st.lr);
    *out = st;
    return LUMEN_OK;
}

/* ---- early stopping ------------------------------------------------------ */

int lm_early_cfg_check(const lm_early_cfg *c, lm_err *err) {
    if (c->patience < 0)
        return lm_fail(err, LUMEN_EINVAL, "early_stop.patience: must be >= 0, got %lld",
                       (long long)c->patience);
    if (!(c->min_delta >= 0) || !isfinite(c->min_delta))
        return lm_fail(err, LUMEN_EINVAL, "early_stop.min_delta: must be >= 0, got %g",
                       c->min_delta);
    return LUMEN_OK;
}

void lm_early_init(lm_early_state *st) {
    memset(st, 0, sizeof *st);
    st->best_epoch = -1;
}

int lm_early_update(const lm_early_cfg *c, lm_early_state *st, int64_t epoch,
                    double v) {
    int flags = 0, better;
    if (isnan(v))
        better = 0;
    else if (!st->has_best)
        better = 1;
    else
        better = c->goal_max ? v > st->best + c->min_delta : v < st->best - c->min_delta;
    if (better) {
        st->has_best = 1;
        st->best = v;
        st->best_epoch = epoch;
        st->wait = 0;
        flags |= LM_EARLY_IMPROVED;
    } else {
        st->wait++;
    }
    if (c->patience > 0 && st->wait >= c->patience)
        st->stopped = 1;
    if (st->stopped)
        flags |= LM_EARLY_STOP;
    return flags;
}

cJSON *lm_early_state_to_json(const lm_early_state *st) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "version", STATE_VERSION) ||
        !cJSON_AddBoolToObject(o, "has_best", st->has_best) || !put_num(o, "best", st->best) ||
        !cJSON_AddNumberToObject(o, "best_epoch", (double)st->best_epoch) ||
        !cJSON_AddNumberToObject(o, "wait", (double)st->wait) ||
        !cJSON_AddBoolToObject(o, "stopped", st->stopped)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int lm_early_state_from_json(const cJSON *o, lm_early_state *out, lm_err *err) {
    const char *what = "early-stopping state";
    lm_early_state st;
    int rc;
    if ((rc = check_version(o, what, err)) ||
        (rc = get_bool(o, what, "has_best", &st.has_best, err)) ||
        (rc = get_num(o, what, "best", &st.best, err)) ||
        (rc = get_int(o, what, "best_epoch", &st.best_epoch, err)) ||
        (rc = get_int(o, what, "wait", &st.wait, err)) ||
        (rc = get_bool(o, what, "stopped", &st.stopped, err)))
        return rc;
    *out = st;
    return LUMEN_OK;
}
