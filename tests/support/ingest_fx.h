/*
 * ingest_fx.h -- test fixtures for the ingest / image / dataset tests:
 * temp folders, text files, PNGs written with libspng's encoder, and an
 * independent PNG reader built on libpng (a different decoder than the one
 * under test).  Functions fail the current cmocka test on errors.
 */
#ifndef INGEST_FX_H
#define INGEST_FX_H

#include <stddef.h>
#include <stdint.h>

/* A new empty folder under /tmp (malloc'ed path). */
char *fx_tmpdir(const char *tag);
/* Writes text to dir/name (creating parent folders); returns the malloc'ed
 * path. */
char *fx_write_text(const char *dir, const char *name, const char *text);
/* Encodes a PNG with libspng into `path`.  data is in the PNG's own sample
 * layout (host-endian for 16-bit); palette (color type 3) takes `plte` with
 * n_plte RGB triples.  Creates parent folders. */
void fx_write_png(const char *path, uint32_t w, uint32_t h, int color_type, int bit_depth,
                  const void *data, const uint8_t *plte, int n_plte);
/* The ELPV data folder: $LUMEN_DATA or ../shared/data/elpv (absolute,
 * malloc'ed), NULL when it has no labels.csv. */
char *fx_data_dir(void);
/* Reads a PNG with libpng without transforms: returns malloc'ed samples
 * (16-bit as big-endian bytes, as stored) and fills w, h, depth,
 * color type; NULL on error. */
uint8_t *fx_libpng_read(const char *path, uint32_t *w, uint32_t *h, int *depth, int *ctype);
/* First n lines of a file (malloc'ed text). */
char *fx_head_lines(const char *path, int n);
/* rm -rf and free the path. */
void fx_rmtree(char *dir);

#endif /* INGEST_FX_H */
