/* PNG pictures (libpng): an image writer and the corruption preview.
 *
 * Files are written to "<path>.tmp.<pid>", flushed and synced, then renamed to path and the folder
 * synced (atomic_file.h), so a reader never sees a partial picture; on failure the temporary file is
 * removed.
 */
#ifndef GENESIS_PNG_H
#define GENESIS_PNG_H

#include <stdint.h>

/* Writes an 8-bit PNG. pixels: [height][width][channels] bytes, channels 1 (gray) or 3 (RGB). */
int image_write_png(const char *path, const uint8_t *pixels, int width, int height, int channels);

/* The corruption preview: one band per sample, labelled "SAMPLE <index>: <corruptions>", holding
 * the corrupted input, the target and (when outputs is not NULL) the model output, each at four
 * depths d = k * deps / 6 for k = 2, 3, 4, 5 (integer division). A slice is drawn with the cube's
 * row axis across and its col axis down (pixel (x, y) = cube[x][y][d]), values clamped to [0, 1]
 * as gray 0..255, scaled up by an integer factor so that a slice is about 128 pixels wide.
 * inputs, targets, outputs: [n][rows][cols][deps]; sample_index, corruption_mask: [n] (the mask is
 * corrupt_record.mask; either may be NULL for no label part). */
int preview_write_png(const char *path, const float *inputs, const float *targets,
                      const float *outputs, int n, int rows, int cols, int deps,
                      const int64_t *sample_index, const unsigned *corruption_mask);

/* The preview's size in pixels, for callers and tests. */
int preview_image_size(int n, int rows, int cols, int with_outputs, int *width, int *height);

/* Text for a corruption mask, e.g. "FLIP LOCAL NONLINEAR-INV OUTPAINT", or "NONE". */
const char *preview_mask_text(unsigned mask, char *buf, int size);

#endif
