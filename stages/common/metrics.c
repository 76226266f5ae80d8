/* metrics.c -- see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

static double f1_of(int64_t tp, int64_t fp, int64_t fn) {
    return ratio(2 * tp, 2 * tp + fp + fn);
}

void lm_sigmoid(const float *logits, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float z = logits[i];
        /* stable in both tails */
        out[i] = z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
    }
}

typedef struct scored {
    float p;
    int pos;
} scored;

static int by_score_desc(const void *a, const void *b) {
    float pa = ((const scored *)a)->p, pb = ((const scored *)b)->p;
    return (pa < pb) - (pa > pb);
}

/* Sorts class j's scores descending into s[n]; returns the positives. */
static int64_t sort_class(const float *p, const float *y, int64_t n, int k, int j,
                          scored *s) {
    int64_t npos = 0;
    for (int64_t i = 0; i < n; i++) {
        s[i].p = p[i * k + j];
        s[i].pos = y[i * k + j] >= 0.5f;
        npos += s[i].pos;
    }
    qsort(s, (size_t)n, sizeof *s, by_score_desc);
    return npos;
}

/* sklearn's average_precision_score over one class's sorted scores. */
static double average_precision(const scored *s, int64_t n, int64_t npos) {
    if (npos == 0) return NAN;
    double ap = 0, prev_recall = 0;
    int64_t tp = 0, seen = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && s[j].p == s[i].p) tp += s[j++].pos; /* a tie is one cut */
        seen = j;
        double recall = (double)tp / (double)npos;
        double precision = (double)tp / (double)seen;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    return ap;
}

int lm_metrics_compute(const float *p, const float *y, int64_t n, int k,
                       const float *thresholds, lm_metrics *out, lm_err *err) {
    if (k < 1 || k > LM_METRICS_MAX_CLASSES || n < 0)
        return lm_fail(err, LUMEN_EINVAL, "metrics: %d classes, %lld samples", k,
                       (long long)n);
    memset(out, 0, sizeof *out);
    out->k = k;
    out->n = n;
    scored *s = n ? malloc((size_t)n * sizeof *s) : NULL;
    if (n && !s) return lm_fail(err, LUMEN_ENOMEM, "metrics: out of memory");

    int64_t tp = 0, fp = 0, fn = 0, exact = 0;
    for (int64_t i = 0; i < n; i++) {
        int all_right = 1;
        for (int j = 0; j < k; j++) {
            float t = thresholds ? thresholds[j] : 0.5f;
            int pred = p[i * k + j] >= t, pos = y[i * k + j] >= 0.5f;
            lm_class_metrics *c = &out->cls[j];
            c->tp += pred && pos;
            c->fp += pred && !pos;
            c->fn += !pred && pos;
            c->tn += !pred && !pos;
            all_right &= pred == pos;
        }
        exact += all_right;
    }
    double f1_sum = 0, ap_sum = 0;
    int ap_classes = 0;
    for (int j = 0; j < k; j++) {
        lm_class_metrics *c = &out->cls[j];
        c->threshold = thresholds ? thresholds[j] : 0.5f;
        c->support = c->tp + c->fn;
        c->precision = ratio(c->tp, c->tp + c->fp);
        c->recall = ratio(c->tp, c->tp + c->fn);
        c->f1 = f1_of(c->tp, c->fp, c->fn);
        int64_t npos = n ? sort_class(p, y, n, k, j, s) : 0;
        c->ap = average_precision(s, n, npos);
        if (!isnan(c->ap)) {
            ap_sum += c->ap;
            ap_classes++;
        }
        f1_sum += c->f1;
        tp += c->tp;
        fp += c->fp;
        fn += c->fn;
    }
    free(s);
    out->f1_mean = f1_sum / k;
    out->f1_micro = f1_of(tp, fp, fn);
    out->precision_micro = ratio(tp, tp + fp);
    out->recall_micro = ratio(tp, tp + fn);
    out->ap_mean = ap_classes ? ap_sum / ap_classes : NAN;
    out->exact_match = ratio(exact, n);
    return LUMEN_OK;
}

int lm_metrics_tune_thresholds(const float *p, const float *y, int64_t n, int k,
                               float *thresholds_out, lm_err *err) {
    if (k < 1 || k > LM_METRICS_MAX_CLASSES || n < 0)
        return lm_fail(err, LUMEN_EINVAL, "metrics: %d classes, %lld samples", k,
                       (long long)n);
    scored *s = n ? malloc((size_t)n * sizeof *s) : NULL;
    int64_t *best_cuts = n ? malloc((size_t)(n + 1) * sizeof *best_cuts) : NULL;
    if (n && (!s || !best_cuts)) {
        free(s);
        free(best_cuts);
        return lm_fail(err, LUMEN_ENOMEM, "metrics: out of memory");
    }
    for (int j = 0; j < k; j++) {
        thresholds_out[j] = 0.5f;
        if (n == 0) continue;
        int64_t npos = sort_class(p, y, n, k, j, s);
        if (npos == 0) continue;
        /* cut m: the top m samples are predicted positive; only between
         * distinct scores.  m = 0 predicts nothing (F1 0), never best. */
        double best = -1;
        int64_t nbest = 0, tp = 0;
        for (int64_t m = 0; m < n;) {
            int64_t e = m;
            while (e < n && s[e].p == s[m].p) tp += s[e++].pos;
            double f = f1_of(tp, e - tp, npos - tp);
            if (f > best + 1e-12) {
                best = f;
                nbest = 0;
            }
            if (f > best - 1e-12) best_cuts[nbest++] = e;
            m = e;
        }
        int64_t cut = best_cuts[(nbest - 1) / 2];
        float hi = s[cut - 1].p; /* lowest score still predicted positive */
        float t = cut < n ? 0.5f * (hi + s[cut].p) : hi;
        if (!(t <= hi)) t = hi; /* rounding of the midpoint */
        if (cut < n && !(t > s[cut].p)) t = nextafterf(s[cut].p, INFINITY);
        thresholds_out[j] = t;
    }
    free(s);
    free(best_cuts);
    return LUMEN_OK;
}
