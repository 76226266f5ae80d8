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
/* The real ELPV data folder, for the few tests that want the real, larger
 * set: $LUMEN_DATA or ../shared/data/elpv (absolute, malloc'ed), NULL when
 * it has no labels.csv.  Tests that only need some labelled cells use
 * fx_elpv_fixture() instead. */
char *fx_data_dir(void);
/* An ELPV-shaped labelled set generated at test time, so that the tests
 * that need labelled cells run without ../shared/data/elpv.  In dir:
 * n_cells 300x300 8-bit grayscale PNGs images/cell0001.png ... (a mono or
 * poly background with busbars and a dark border; a crack is a dark line,
 * an inactive area a darkened block, so a network has something to learn),
 * labels.csv in ELPV's format ("images/cellNNNN.png  <prob>  mono|poly",
 * every cell, probabilities 0, 1/3, 2/3 or 1) and data.csv
 * ("filename;crack;inactive") for the first n_data cells, so labels.csv
 * minus data.csv leaves n_cells - n_data cells.  Deterministic.  As in ELPV,
 * cell0001 is crack 1, inactive 0.  Among the data.csv cells a third have a
 * crack and a quarter an inactive area (both, either and neither occur in
 * every 12); a third of the others are defective. */
void fx_elpv_make(const char *dir, int n_cells, int n_data);
/* A new fx_tmpdir(tag) holding fx_elpv_make(n_cells, n_data). */
char *fx_elpv_fixture(const char *tag, int n_cells, int n_data);
/* Reads a PNG with libpng without transforms: returns malloc'ed samples
 * (16-bit as big-endian bytes, as stored) and fills w, h, depth,
 * color type; NULL on error. */
uint8_t *fx_libpng_read(const char *path, uint32_t *w, uint32_t *h, int *depth, int *ctype);
/* First n lines of a file (malloc'ed text). */
char *fx_head_lines(const char *path, int n);
/* rm -rf and free the path. */
void fx_rmtree(char *dir);

#endif /* INGEST_FX_H */
