/* strv.c -- see strv.h. */
#include "strv.h"

#include <stdlib.h>
#include <string.h>

#include "lm_util.h"

int rn_strv_take(rn_strv *sv, char *s) {
    if (!s) return LUMEN_ENOMEM;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (!v) {
            free(s);
            return LUMEN_ENOMEM;
        }
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

int rn_strv_push(rn_strv *sv, const char *s) { return rn_strv_take(sv, lm_strdup(s)); }

long rn_strv_find(const rn_strv *sv, const char *s) {
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0) return (long)i;
    return -1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void rn_strv_sort(rn_strv *sv) {
    if (sv->n > 1) qsort(sv->v, sv->n, sizeof *sv->v, cmp_str);
}

size_t rn_list_len(const char *const *list) {
    size_t n = 0;
    while (list && list[n]) n++;
    return n;
}

void rn_strv_free(rn_strv *sv) {
    if (!sv) return;
    for (size_t i = 0; i < sv->n; i++) free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = sv->cap = 0;
}
