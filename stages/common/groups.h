/*
 * groups.h -- a grouping of images (crossval `groups`): image path -> group
 * name, read from a label file, to break a study's scores down by group
 * (ELPV's mono- and polycrystalline cells, a production line, a camera).
 *
 * The file is either
 *   ELPV  labels.csv (`path probability type`): column "type" (the default)
 *         groups by the cell type, "probability" by the rating as written;
 *   CSV   `;`-separated with a header `filename;...;<column>;...`: the named
 *         column's text (default: the second column).
 * Paths are compared as written (as ingest stores them).  Rows that do not
 * parse are errors (the first one named), not left out: a study broken
 * down by a half-read file would silently mislead.
 *
 * Groups are numbered in order of first appearance in the file.
 */
#ifndef LM_GROUPS_H
#define LM_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lm_util.h"
#include "metrics.h"

#define LM_GROUPS_MAX 16

typedef struct lm_group_entry {
    char *name;    /* image path */
    int gid;       /* its group */
} lm_group_entry;

typedef struct lm_groups {
    char *file;    /* as given */
    char *column;  /* the column used */
    size_t ngroups;
    char **group;  /* [ngroups] names */
    size_t n;      /* rows */
    lm_group_entry *entry; /* [n], sorted by name (strcmp) */
} lm_groups;

/* Loads `path`; `column` NULL picks the default.  LUMEN_ENOTFOUND /
 * LUMEN_EIO (unreadable), LUMEN_EDATA (format, a bad row, no column, more
 * than LM_GROUPS_MAX groups, a group name that is not printable text),
 * LUMEN_ENOMEM; the message names the file (and line). */
int lm_groups_load(const char *path, const char *column, lm_groups *g, lm_err *err);

/* The group of image path `name`, or -1 when the file does not list it. */
int lm_groups_find(const lm_groups *g, const char *name);

/* The groups of n images (names[n]; NULL counts as unlisted) into gid[n].
 * One that the file does not list fails (LUMEN_EDATA): "<file> does not
 * list M of the n <what> (the first: <name>)". */
int lm_groups_assign(const lm_groups *g, const char *const *names, int64_t n, const char *what, int *gid,
                     lm_err *err);

void lm_groups_free(lm_groups *g);

/* A group's metrics x (lm_metrics_compute on its samples): F1 and AP of a
 * label without positives there become NAN, and so do the mean F1 and mean
 * AP (undefined, and a mean over fewer labels would not compare). */
void lm_groups_undefined(lm_metrics *x);

/* The breakdown of n samples (probabilities and 0/1 targets [n*k], names
 * [n]) by g at the thresholds thr[k]: *doc {"file", "column", "by": {group:
 * {"n", "labels": {label: {support, precision, recall, f1, ap}}, "f1_mean",
 * "ap_mean", "f1_micro"}}} and *text, a table (the caller frees both).  A
 * label without positives in a group has F1 and AP null, and so do the
 * group's means; a group with no sample here is left out.  A sample the
 * file does not list fails (LUMEN_EDATA) naming the first; LUMEN_ENOMEM. */
int lm_groups_report(const lm_groups *g, const float *probs, const float *targets, int64_t n, int k,
                     const char *const *names, const char *const *labels, const float *thr, cJSON **doc,
                     char **text, lm_err *err);

#endif /* LM_GROUPS_H */
