/* track.c -- see track.h. */
#include "track.h"

#include <stdlib.h>

int rn_trackers_add(rn_trackers *t, const rn_tracker_ops *ops, void *self) {
    rn_tracker *v = realloc(t->v, (t->n + 1) * sizeof *v);
    if (!v) return LUMEN_ENOMEM;
    t->v = v;
    t->v[t->n].ops = ops;
    t->v[t->n].self = self;
    t->n++;
    return 0;
}

void rn_trackers_free(rn_trackers *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].ops->destroy) t->v[i].ops->destroy(t->v[i].self);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* Calls one op on every tracker, keeping the first failure. */
#define BROADCAST(t, e, op, ...)                                                                             \
    do {                                                                                                     \
        int first = 0;                                                                                       \
        for (size_t i = 0; i < (t)->n; i++) {                                                                \
            if (!(t)->v[i].ops->op) continue;                                                                \
            lm_err mine = {0};                                                                               \
            int rc = (t)->v[i].ops->op((t)->v[i].self, __VA_ARGS__, &mine);                                  \
            if (rc && !first) first = lm_fail(e, rc, "tracker %s: %s", (t)->v[i].ops->name, mine.msg);       \
        }                                                                                                    \
        return first;                                                                                        \
    } while (0)

int rn_track_run_started(rn_trackers *t, const rn_run_info *run, const cJSON *params, lm_err *e) {
    BROADCAST(t, e, run_started, run, params);
}

int rn_track_metric(rn_trackers *t, const char *stage_id, const char *key, double value, int64_t step,
                    double time, lm_err *e) {
    BROADCAST(t, e, metric, stage_id, key, value, step, time);
}

int rn_track_summary(rn_trackers *t, const char *key, const cJSON *value, lm_err *e) {
    BROADCAST(t, e, summary, key, value);
}

int rn_track_stage_status(rn_trackers *t, const char *stage_id, const char *status, const char *detail,
                          lm_err *e) {
    BROADCAST(t, e, stage_status, stage_id, status, detail);
}

int rn_track_run_ended(rn_trackers *t, const char *status, const char *reason, double ended, lm_err *e) {
    BROADCAST(t, e, run_ended, status, reason, ended);
}
