/* Pictures drawn in memory before image_write_png (src/io/canvas.c): a canvas of gray or RGB bytes,
 * a built-in 5x7 bitmap font (capitals, digits, a few symbols; lower case is drawn as capitals), and
 * clipped pixel writes. Used by the corruption preview (preview.c) and the training curves (plot.c).
 */
#ifndef GENESIS_IO_CANVAS_H
#define GENESIS_IO_CANVAS_H

#include <stdint.h>

/* pixels: [height][width][channels] bytes, channels 1 (gray) or 3 (RGB). */
struct canvas {
    uint8_t *pixels;
    int width, height, channels;
};

/* A glyph is FONT_GLYPH_W x FONT_GLYPH_H pixels at scale 1; text advances FONT_ADVANCE per
 * character; FONT_LINE_H is a comfortable line pitch. All are multiplied by the scale. */
enum { FONT_GLYPH_W = 5, FONT_GLYPH_H = 7, FONT_ADVANCE = 6, FONT_LINE_H = 11 };

/* Sets pixel (x, y) to color (channels bytes); nothing outside the canvas. */
void canvas_put(struct canvas *cv, int x, int y, const uint8_t *color);
/* Draws text with its top-left corner at (x, y), each font pixel a scale x scale square; clipped.
 * Characters without a glyph are drawn as '?'. */
void font_draw_text(struct canvas *cv, int x, int y, int scale, const char *text, const uint8_t *color);
/* The width in pixels of text drawn at scale (0 for ""). */
int font_text_width(const char *text, int scale);

#endif
