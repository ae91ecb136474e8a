/* The corruption preview picture (include/genesis/png.h) with a small built-in 5x7 font. */
#include "genesis/png.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genesis/corrupt.h"
#include "genesis/error.h"

/* ---- 5x7 font: each glyph is 7 rows, bit 4 = leftmost of 5 columns (drawn for this project) --- */

struct glyph {
    char c;
    uint8_t rows[7];
};

static const struct glyph font[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},
    {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},
    {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},
    {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
    {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}},
    {'/', {0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04}},
};

enum { GLYPH_W = 5, GLYPH_H = 7, ADVANCE = 6, LINE_H = 11 };

static const uint8_t *glyph_rows(char c)
{
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    for (size_t g = 0; g < sizeof font / sizeof font[0]; g++)
        if (font[g].c == c) return font[g].rows;
    return glyph_rows('?');
}

struct canvas {
    uint8_t *pixels; /* [height][width] gray */
    int width, height;
};

/* Draws text with its top-left corner at (x, y); clipped to the canvas. */
static void draw_text(struct canvas *cv, int x, int y, const char *text, uint8_t gray)
{
    for (; *text; text++, x += ADVANCE) {
        const uint8_t *rows = glyph_rows(*text);
        for (int r = 0; r < GLYPH_H; r++)
            for (int c = 0; c < GLYPH_W; c++) {
                int px = x + c, py = y + r;
                if ((rows[r] >> (GLYPH_W - 1 - c) & 1) && px >= 0 && py >= 0 && px < cv->width &&
                    py < cv->height)
                    cv->pixels[(size_t)py * cv->width + px] = gray;
            }
    }
}

/* ---- Layout ---------------------------------------------------------------------------------- */

enum { MARGIN = 6, TILE_GAP = 3, GROUP_GAP = 12, DEPTHS = 4, BACKGROUND = 40, TEXT = 255 };

struct layout {
    int scale;           /* pixels per voxel */
    int tile_w, tile_h;  /* rows * scale, cols * scale */
    int groups;          /* 2 (input, target) or 3 (with output) */
    int group_w;         /* DEPTHS tiles and their gaps */
    int header_h;        /* column titles */
    int band_h;          /* one sample: label line + tiles + gap */
    int width, height;
};

static int make_layout(struct layout *L, int n, int rows, int cols, int with_outputs)
{
    CHECK(n >= 1 && n <= 10000 && rows >= 1 && cols >= 1 && rows <= 4096 && cols <= 4096,
          GEN_ERR_USAGE, "preview: bad size (%d samples of %d x %d)", n, rows, cols);
    int larger = rows > cols ? rows : cols;
    L->scale = larger >= 128 ? 1 : 128 / larger;
    L->tile_w = rows * L->scale;
    L->tile_h = cols * L->scale;
    L->groups = with_outputs ? 3 : 2;
    L->group_w = DEPTHS * L->tile_w + (DEPTHS - 1) * TILE_GAP;
    L->header_h = 2 * LINE_H + 2;
    L->band_h = LINE_H + L->tile_h + GROUP_GAP;
    L->width = 2 * MARGIN + L->groups * L->group_w + (L->groups - 1) * GROUP_GAP;
    L->height = MARGIN + L->header_h + n * L->band_h;
    CHECK((int64_t)L->width * L->height <= (INT64_C(1) << 30), GEN_ERR_USAGE,
          "preview: a %d x %d picture is too large", L->width, L->height);
    return GEN_OK;
}

int preview_image_size(int n, int rows, int cols, int with_outputs, int *width, int *height)
{
    struct layout L = {0};
    CHECK(width && height, GEN_ERR_USAGE, "preview_image_size: null output");
    CALL(make_layout(&L, n, rows, cols, with_outputs));
    *width = L.width;
    *height = L.height;
    return GEN_OK;
}

const char *preview_mask_text(unsigned mask, char *buf, int size)
{
    if (size <= 0) return buf;
    buf[0] = '\0';
    const struct {
        unsigned bit;
        const char *name;
    } names[] = {{CORRUPT_FLIP, "FLIP"},         {CORRUPT_LOCAL, "LOCAL"},
                 {CORRUPT_NONLINEAR, "NONLINEAR"}, {CORRUPT_INPAINT, "INPAINT"},
                 {CORRUPT_OUTPAINT, "OUTPAINT"}};
    int used = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (!(mask & names[k].bit)) continue;
        const char *suffix = names[k].bit == CORRUPT_NONLINEAR && (mask & CORRUPT_INVERT) ? "-INV" : "";
        int w = snprintf(buf + used, (size_t)(size - used), "%s%s%s", used ? " " : "",
                         names[k].name, suffix);
        if (w < 0 || w >= size - used) break;
        used += w;
    }
    if (used == 0) snprintf(buf, (size_t)size, "NONE");
    return buf;
}

/* Draws slice d of cube [rows][cols][deps] at (x0, y0): pixel (x, y) = cube[x/s][y/s][d]. */
static void draw_slice(struct canvas *cv, const struct layout *L, int x0, int y0, const float *cube,
                       int rows, int cols, int deps, int d)
{
    for (int y = 0; y < L->tile_h; y++) {
        uint8_t *line = cv->pixels + (size_t)(y0 + y) * cv->width + x0;
        int j = y / L->scale;
        for (int x = 0; x < L->tile_w; x++) {
            int i = x / L->scale;
            float v = cube[((size_t)i * cols + j) * deps + d];
            if (!(v > 0.0f)) v = 0.0f; /* NaN too */
            if (v > 1.0f) v = 1.0f;
            line[x] = (uint8_t)(v * 255.0f + 0.5f);
        }
    }
    (void)rows;
}

int preview_write_png(const char *path, const float *inputs, const float *targets,
                      const float *outputs, int n, int rows, int cols, int deps,
                      const int64_t *sample_index, const unsigned *corruption_mask)
{
    CHECK(path && inputs && targets, GEN_ERR_USAGE, "preview_write_png: no path, inputs or targets");
    CHECK(deps >= 1, GEN_ERR_USAGE, "preview: bad deps %d", deps);
    struct layout L = {0};
    CALL(make_layout(&L, n, rows, cols, outputs != NULL));
    struct canvas cv = {.width = L.width, .height = L.height};
    size_t bytes = (size_t)L.width * L.height;
    cv.pixels = malloc(bytes);
    CHECK_ALLOC(cv.pixels, bytes);
    memset(cv.pixels, BACKGROUND, bytes);

    const float *sources[3] = {inputs, targets, outputs};
    const char *titles[3] = {"INPUT (CORRUPTED)", "TARGET", "OUTPUT"};
    int depth[DEPTHS];
    for (int k = 0; k < DEPTHS; k++) {
        depth[k] = (k + 2) * deps / 6;
        if (depth[k] > deps - 1) depth[k] = deps - 1;
    }
    const size_t voxels = (size_t)rows * cols * deps;
    char text[160], mask_text[96];
    for (int g = 0; g < L.groups; g++) {
        int gx = MARGIN + g * (L.group_w + GROUP_GAP);
        draw_text(&cv, gx, MARGIN, titles[g], TEXT);
        for (int k = 0; k < DEPTHS; k++) {
            snprintf(text, sizeof text, "D=%d", depth[k]);
            draw_text(&cv, gx + k * (L.tile_w + TILE_GAP), MARGIN + LINE_H, text, TEXT);
        }
    }
    for (int s = 0; s < n; s++) {
        int by = MARGIN + L.header_h + s * L.band_h;
        int len = snprintf(text, sizeof text, "SAMPLE ");
        if (sample_index)
            len += snprintf(text + len, sizeof text - (size_t)len, "%" PRId64, sample_index[s]);
        else
            len += snprintf(text + len, sizeof text - (size_t)len, "%d", s);
        if (corruption_mask)
            snprintf(text + len, sizeof text - (size_t)len, ": %s",
                     preview_mask_text(corruption_mask[s], mask_text, (int)sizeof mask_text));
        draw_text(&cv, MARGIN, by, text, TEXT);
        for (int g = 0; g < L.groups; g++) {
            int gx = MARGIN + g * (L.group_w + GROUP_GAP);
            for (int k = 0; k < DEPTHS; k++)
                draw_slice(&cv, &L, gx + k * (L.tile_w + TILE_GAP), by + LINE_H,
                           sources[g] + (size_t)s * voxels, rows, cols, deps, depth[k]);
        }
    }
    int status = GEN_OK;
    CALL_GOTO(image_write_png(path, cv.pixels, cv.width, cv.height, 1));
cleanup:
    free(cv.pixels);
    return status;
}
