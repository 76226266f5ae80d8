/*
 * suggest.h -- "did you mean ...?" for mistyped keys, stages and commands.
 */
#ifndef RN_SUGGEST_H
#define RN_SUGGEST_H

#include <stddef.h>

/* Returns the candidate closest to `word` when it is a plausible typo of it,
 * else NULL.  Plausible: Levenshtein distance <= 3 (and less than the
 * longer word's length, so "x" never suggests "lr"), or one is a prefix of
 * the other with at least 3 characters in common ("split" -> "split.val").
 * Ties go to the smaller distance, then to the earlier candidate.  The
 * returned pointer is one of cands[i] (not a copy).  NULL entries in cands
 * are skipped. */
const char *rn_suggest(const char *word, const char *const *cands, size_t n);

/* Writes " (did you mean 'X'?)" into buf (or "" when there is no
 * suggestion) and returns buf, for use in messages. */
const char *rn_suggest_phrase(char *buf, size_t len, const char *word,
                              const char *const *cands, size_t n);

#endif /* RN_SUGGEST_H */
