/*
 * strv.h -- a growable vector of owned strings (rn_strv).
 *
 * Used for search paths, --set overrides and similar short lists.  All
 * strings are malloc'ed copies owned by the vector; rn_strv_free() frees
 * them and leaves an empty vector.  Not thread-safe (no shared use).
 */
#ifndef RN_STRV_H
#define RN_STRV_H

#include <stddef.h>

typedef struct rn_strv {
    char **v;  /* v[0..n-1], each owned; v itself is owned */
    size_t n;
    size_t cap;
} rn_strv;

/* Appends a copy of s.  0 or LUMEN_ENOMEM. */
int rn_strv_push(rn_strv *sv, const char *s);
/* Appends s itself, taking ownership (frees it on failure).  0 or
 * LUMEN_ENOMEM (also when s is NULL, so `rn_strv_take(sv, lm_sprintf(..))`
 * needs no separate check). */
int rn_strv_take(rn_strv *sv, char *s);
/* Index of the first element equal to s, or -1. */
long rn_strv_find(const rn_strv *sv, const char *s);
/* Sorts the elements with strcmp. */
void rn_strv_sort(rn_strv *sv);
/* Length of a NULL-terminated list of strings (0 for a NULL list), such as
 * a stage's inputs or outputs. */
size_t rn_list_len(const char *const *list);
/* Frees every element and the array; sv may be NULL. */
void rn_strv_free(rn_strv *sv);

#endif /* RN_STRV_H */
