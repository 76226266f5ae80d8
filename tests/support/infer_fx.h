/*
 * infer_fx.h -- fixtures for the validate / predict / eval tests: a tiny
 * random ResNet saved as a lumen checkpoint (no training), synthetic PNGs,
 * and the reference eval-mode forward of a checkpoint through the engine.
 * Functions fail the current cmocka test on errors.
 */
#ifndef INFER_FX_H
#define INFER_FX_H

#include <stddef.h>
#include <stdint.h>

/* Saves a checkpoint of a tiny ResNet (3x3 stem of 4 filters, stages
 * blocks {1,1} widths {4,8}, k classes) for c x h x w input with random
 * weights from `seed` and perturbed BN running statistics, metadata
 * labels[k], stats (mean, std the same for every channel), thresholds[k]
 * (NULL: none stored), input, epoch 3. */
void ifx_tiny_checkpoint(const char *path, int c, int h, int w, int k,
                         const char *const *labels, float mean, float std,
                         const float *thresholds, uint64_t seed);

/* The same with "filter": filter (JSON text, pixfilter.h) in its "input"
 * metadata; NULL: none.  The checkpoint is not checked (the loader's job). */
void ifx_tiny_checkpoint_filtered(const char *path, int c, int h, int w, int k,
                                  const char *const *labels, float mean, float std,
                                  const float *thresholds, uint64_t seed, const char *filter);

/* Writes an 8-bit gray (channels 1) or RGB (3) PNG of w x h with a seeded
 * pattern (gradients, a bright stripe and noise). */
void ifx_png(const char *path, int channels, uint32_t w, uint32_t h, uint64_t seed);

/* Eval-mode probabilities of u8 pixels [n][c][h][w] through the
 * checkpoint at `path`: normalized (x/255 - mean)/std, the engine's
 * unfolded forward_eval (cpu backend), sigmoid; dihedral element `view`
 * (0 = none) applied to each image first.  probs[n][k]. */
void ifx_reference_probs(const char *path, const uint8_t *pixels, int n, int view,
                         float *probs);

#endif /* INFER_FX_H */
