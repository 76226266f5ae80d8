/* groups.c -- see groups.h. */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

#include "csvparse.h"
#include "problems.h"

void lm_groups_free(lm_groups *g) {
    if (!g) return;
    free(g->file);
    free(g->column);
    for (size_t i = 0; g->group && i < g->ngroups; i++) free(g->group[i]);
    free(g->group);
    for (size_t i = 0; g->name && i < g->n; i++) free(g->name[i]);
    free(g->name);
    free(g->gid);
    memset(g, 0, sizeof *g);
}

typedef struct pair {
    char *name;
    int gid;
} pair;

static int pair_cmp(const void *a, const void *b) {
    return strcmp(((const pair *)a)->name, ((const pair *)b)->name);
}

/* ELPV meta "type=<t>;prob=<p>": the value of key (a pointer into a copy). */
static char *meta_value(const char *meta, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = meta; p && *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') return lm_sprintf("%.*s", (int)(len - kl - 1), p + kl + 1);
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static int printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

int lm_groups_load(const char *path, const char *column, lm_groups *g, lm_err *err) {
    memset(g, 0, sizeof *g);
    /* the format decides the default column: peek with a names-only read */
    lm_label_table t = {0};
    lm_problems probs;
    lm_problems_init(&probs);
    lm_labels_opts o = {.format = LM_LABELS_AUTO, .threshold = 0.5, .names_only = 1};
    int rc = lm_labels_load(path, &o, &t, &probs, err);
    if (rc) goto out;
    if (t.format == LM_LABELS_CSV) {
        /* names-only kept no header; read it again with the text column */
        char *first = NULL;
        if (!column) {
            char *text;
            size_t len;
            if ((rc = lm_read_file(path, &text, &len, err))) goto out;
            const char *s = text, *e = memchr(text, '\n', len);
            if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3;
            if (!e) e = text + len;
            const char *a = memchr(s, ';', (size_t)(e - s));
            if (a) {
                const char *b = memchr(a + 1, ';', (size_t)(e - a - 1));
                if (!b) b = e;
                while (b > a + 1 && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t')) b--;
                first = lm_sprintf("%.*s", (int)(b - a - 1), a + 1);
            }
            free(text);
            if (!first || !*first) {
                free(first);
                rc = lm_fail(err, LUMEN_EDATA, "%s: groups need a header 'filename;<group column>;...'", path);
                goto out;
            }
        }
        lm_labels_free(&t);
        lm_problems_free(&probs);
        lm_problems_init(&probs);
        o.names_only = 0;
        o.text_column = column ? column : first;
        rc = lm_labels_load(path, &o, &t, &probs, err);
        g->column = lm_strdup(o.text_column);
        free(first);
        if (rc) goto out;
    } else {
        if (!column) column = "type";
        if (strcmp(column, "type") != 0 && strcmp(column, "probability") != 0) {
            rc = lm_fail(err, LUMEN_EINVAL,
                         "%s: an ELPV labels file groups by \"type\" or \"probability\", not '%s'", path, column);
            goto out;
        }
        g->column = lm_strdup(column);
    }
    if (t.bad_rows) {
        rc = lm_fail(err, LUMEN_EDATA, "%s: %zu bad row(s) for groups; the first: %s", path, t.bad_rows,
                     probs.kept ? probs.msg[0] : "(message lost: out of memory)");
        goto out;
    }
    g->file = lm_strdup(path);
    pair *pr = calloc(t.nrows + 1, sizeof *pr);
    g->group = calloc(LM_GROUPS_MAX, sizeof *g->group);
    if (!g->file || !g->column || !pr || !g->group) {
        free(pr);
        rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < t.nrows; i++) {
        const lm_label_row *r = &t.rows[i];
        char *v = t.format == LM_LABELS_CSV ? lm_strdup(r->meta)
                                            : meta_value(r->meta, strcmp(g->column, "type") == 0 ? "type" : "prob");
        if (!v) {
            rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
            break;
        }
        if (!printable(v)) {
            rc = lm_fail(err, LUMEN_EDATA, "%s:%d: group name holds a control character", path, r->line);
            free(v);
            break;
        }
        size_t j = 0;
        while (j < g->ngroups && strcmp(g->group[j], v) != 0) j++;
        if (j == g->ngroups) {
            if (g->ngroups == LM_GROUPS_MAX) {
                rc = lm_fail(err, LUMEN_EDATA, "%s:%d: more than %d groups in column '%s' (a group per image?)",
                             path, r->line, LM_GROUPS_MAX, g->column);
                free(v);
                break;
            }
            g->group[g->ngroups++] = v;
        } else {
            free(v);
        }
        pr[i].name = t.rows[i].name;
        t.rows[i].name = NULL; /* moved */
        pr[i].gid = (int)j;
        g->n++;
    }
    if (rc == 0) {
        qsort(pr, g->n, sizeof *pr, pair_cmp);
        g->name = calloc(g->n + 1, sizeof *g->name);
        g->gid = calloc(g->n + 1, sizeof *g->gid);
        if (!g->name || !g->gid) rc = lm_fail(err, LUMEN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < g->n; i++) {
        if (rc == 0) {
            g->name[i] = pr[i].name;
            g->gid[i] = pr[i].gid;
        } else {
            free(pr[i].name);
        }
    }
    if (rc) g->n = 0;
    free(pr);
out:
    lm_labels_free(&t);
    lm_problems_free(&probs);
    if (rc) lm_groups_free(g);
    return rc;
}

int lm_groups_find(const lm_groups *g, const char *name) {
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->name[mid], name);
        if (c == 0) return g->gid[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}
