/*
 * errsheet.h -- error analysis people can look at: a contact sheet (PNG)
 * of the worst false positives and false negatives per label.
 *
 * Picking (lm_errsheet_pick): for label j at threshold thr[j],
 *   false positives: samples with target < 0.5 and p >= thr[j], highest p
 *                    first (the most confident mistakes);
 *   false negatives: samples with target >= 0.5 and p < thr[j], lowest p
 *                    first;
 * ties by sample order; at most `per` of each.  Row 2j holds label j's false
 * positives, row 2j + 1 its false negatives.
 *
 * Layout (lm_errsheet_size): 2k rows of `per` cells.  Each row starts with
 * a title strip (LM_ERRSHEET_TITLE_H px: "CRACK: FALSE POSITIVES AT P >=
 * 0.62 (5 OF 17)"); each cell is the image scaled to LM_ERRSHEET_THUMB px
 * square (nearest neighbour; the first channel), then three text lines:
 * the file name (its last LM_ERRSHEET_THUMB / 6 characters), "Y:" and the
 * true labels ("-" for none), "P:" and the probability of each label.  An
 * empty slot stays background.  Text is a built-in 5x7 bitmap font,
 * upper case (lower case letters are shown as capitals; characters it has
 * no glyph for as '?').  The PNG is 8-bit gray:
 *   width  = LM_ERRSHEET_PAD + per * (LM_ERRSHEET_THUMB + LM_ERRSHEET_PAD)
 *   height = LM_ERRSHEET_PAD + 2k * (LM_ERRSHEET_TITLE_H + LM_ERRSHEET_THUMB
 *            + 3 * LM_ERRSHEET_LINE_H + LM_ERRSHEET_PAD)
 *
 * Errors: 0 or LUMEN_E* (lm_util.h): LUMEN_EINVAL (k, per, n), LUMEN_ENOMEM,
 * LUMEN_EIO (encoding or writing, naming the file).  No shared state.
 */
#ifndef LM_ERRSHEET_H
#define LM_ERRSHEET_H

#include <stdint.h>

#include "lm_util.h"

#define LM_ERRSHEET_THUMB 128
#define LM_ERRSHEET_PAD 8
#define LM_ERRSHEET_TITLE_H 14
#define LM_ERRSHEET_LINE_H 10
#define LM_ERRSHEET_MAX_PER 64

/* pick[(2j + e) * per + q]: the q-th worst sample of kind e (0: false
 * positive, 1: false negative) for label j, or -1; count[2j + e]: how many
 * such errors there are in all (may exceed per). */
int lm_errsheet_pick(const float *p, const float *y, int64_t n, int k, const float *thr, int per,
                     int64_t *pick, int64_t *count, lm_err *err);

void lm_errsheet_size(int k, int per, int *width, int *height);

/* The pixels of sample i (u8 [c][h][w]); 0 or an error. */
typedef int (*lm_errsheet_pixels_fn)(void *user, int64_t i, const uint8_t **pixels, uint32_t *c,
                                     uint32_t *h, uint32_t *w, lm_err *err);

/* Picks (as above) and writes the sheet to png_path (atomically).
 * names[n] (NULL entries: "?"), labels[k]. */
int lm_errsheet_write(const char *png_path, const float *p, const float *y,
                      const char *const *names, int64_t n, int k, const char *const *labels,
                      const float *thr, int per, lm_errsheet_pixels_fn pixels, void *user,
                      lm_err *err);

/* Renders text into a gray image (for tests and titles): 5x7 glyphs on a
 * 6-pixel advance at (x, y) = top left, value `ink`, clipped to the image
 * and to max_chars characters.  Returns the characters drawn. */
int lm_errsheet_text(uint8_t *img, int iw, int ih, int x, int y, const char *s, int max_chars,
                     uint8_t ink);

#endif /* LM_ERRSHEET_H */
