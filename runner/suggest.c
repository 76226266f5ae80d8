/* suggest.c -- see suggest.h. */
#include "suggest.h"

#include <stdio.h>
#include <string.h>

#include "lm_util.h"

static size_t common_prefix(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    return i;
}

const char *rn_suggest(const char *word, const char *const *cands, size_t n) {
    const char *best = NULL;
    int best_d = 1 << 30;
    size_t lw = strlen(word);
    for (size_t i = 0; i < n; i++) {
        const char *c = cands[i];
        if (!c || strcmp(c, word) == 0) continue;
        size_t lc = strlen(c), longer = lw > lc ? lw : lc;
        int d = lm_edit_distance(word, c);
        int close = d <= 3 && (size_t)d < longer && (size_t)d * 2 <= longer;
        size_t cp = common_prefix(word, c);
        int prefix = cp >= 3 && (cp == lw || cp == lc);
        if (!close && !prefix) continue;
        if (d < best_d) {
            best = c;
            best_d = d;
        }
    }
    return best;
}

const char *rn_suggest_phrase(char *buf, size_t len, const char *word,
                              const char *const *cands, size_t n) {
    const char *s = rn_suggest(word, cands, n);
    if (s) snprintf(buf, len, " (did you mean '%s'?)", s);
    else if (len) buf[0] = '\0';
    return buf;
}
