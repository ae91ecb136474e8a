/* The corruption preview picture (include/genesis/png.h), drawn with the font of io/canvas.h. */
#include "genesis/png.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genesis/corrupt.h"
#include "genesis/error.h"
#include "io/canvas.h"

/* ---- Layout ---------------------------------------------------------------------------------- */

enum { MARGIN = 6, TILE_GAP = 3, GROUP_GAP = 12, DEPTHS = 4, BACKGROUND = 40 };
static const uint8_t text_gray = 255;

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
    L->header_h = 2 * FONT_LINE_H + 2;
    L->band_h = FONT_LINE_H + L->tile_h + GROUP_GAP;
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
    struct canvas cv = {.width = L.width, .height = L.height, .channels = 1};
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
        font_draw_text(&cv, gx, MARGIN, 1, titles[g], &text_gray);
        for (int k = 0; k < DEPTHS; k++) {
            snprintf(text, sizeof text, "D=%d", depth[k]);
            font_draw_text(&cv, gx + k * (L.tile_w + TILE_GAP), MARGIN + FONT_LINE_H, 1, text, &text_gray);
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
        font_draw_text(&cv, MARGIN, by, 1, text, &text_gray);
        for (int g = 0; g < L.groups; g++) {
            int gx = MARGIN + g * (L.group_w + GROUP_GAP);
            for (int k = 0; k < DEPTHS; k++)
                draw_slice(&cv, &L, gx + k * (L.tile_w + TILE_GAP), by + FONT_LINE_H,
                           sources[g] + (size_t)s * voxels, rows, cols, deps, depth[k]);
        }
    }
    int status = GEN_OK;
    CALL_GOTO(image_write_png(path, cv.pixels, cv.width, cv.height, 1));
cleanup:
    free(cv.pixels);
    return status;
}
