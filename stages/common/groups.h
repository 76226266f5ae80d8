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

#include "lm_util.h"

#define LM_GROUPS_MAX 16

typedef struct lm_groups {
    char *file;    /* as given */
    char *column;  /* the column used */
    size_t ngroups;
    char **group;  /* [ngroups] names */
    size_t n;      /* rows */
    char **name;   /* [n] image paths, sorted (strcmp) */
    int *gid;      /* [n] group of name[i] */
} lm_groups;

/* Loads `path`; `column` NULL picks the default.  LUMEN_ENOTFOUND /
 * LUMEN_EIO (unreadable), LUMEN_EDATA (format, a bad row, no column, more
 * than LM_GROUPS_MAX groups, a group name that is not printable text),
 * LUMEN_ENOMEM; the message names the file (and line). */
int lm_groups_load(const char *path, const char *column, lm_groups *g, lm_err *err);

/* The group of image path `name`, or -1 when the file does not list it. */
int lm_groups_find(const lm_groups *g, const char *name);

void lm_groups_free(lm_groups *g);

#endif /* LM_GROUPS_H */
