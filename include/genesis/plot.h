/* Training curves (src/io/plot_metrics.c, src/io/plot.c): a run's metrics.csv read by column name,
 * and curves.png drawn from it with libpng and a built-in font.
 *
 * metrics.csv has a header line naming its columns; the columns drawn are those of enum
 * metrics_column, found by name in any order (other columns are ignored, a missing one is simply not
 * drawn; only `step` is required). An empty field is "no value" (NaN): step rows leave
 * validation_loss empty, validation rows leave train_loss empty. A last line without its newline is
 * a row still being written and is ignored, so a run's file can be read while the run appends to it.
 * After a resume from an older checkpoint the file repeats steps: a row drops the rows before it
 * that it replays (those of a larger step and, for a step row, of the same step; a validation row
 * follows the step row of its step), so the rows kept are ordered by step.
 *
 * The picture (CURVES_WIDTH x CURVES_HEIGHT, RGB): a title; the loss panel (train loss per step in a
 * light colour and its mean per epoch, validation loss per epoch, the identity and mean baselines as
 * dashed lines, a legend to the right) and the learning-rate panel below it, both against the global
 * step (x), with the epochs done marked along the loss panel's top edge. A y axis is base-10
 * logarithmic when its values are all positive and span more than a factor of 10, else linear; the
 * axis label says which.
 */
#ifndef GENESIS_PLOT_H
#define GENESIS_PLOT_H

#include <stddef.h>
#include <stdint.h>

enum metrics_column {
    METRIC_STEP,
    METRIC_EPOCH,
    METRIC_LR,
    METRIC_TRAIN_LOSS,
    METRIC_VALIDATION_LOSS,
    METRIC_IDENTITY_LOSS,
    METRIC_MEAN_LOSS,
    METRIC_GAIN,
    METRIC_SAMPLES_PER_S,
    METRIC_COLUMNS
};

/* The header name of a column, e.g. "validation_loss". */
const char *metrics_column_name(enum metrics_column c);

struct run_metrics {
    int has_column[METRIC_COLUMNS]; /* 1 when the header names the column */
    double *values;                 /* [rows][METRIC_COLUMNS]; NaN: empty field or missing column */
    int64_t rows, capacity;
    int64_t lines;                  /* complete lines read, the header included */
    int partial_last_line;          /* 1 when a last line without newline was ignored */
};

/* Reads path into m (zeroed first; free with run_metrics_free, also after a failure). Errors name
 * the file and the line: GEN_ERR_IO "cannot read", GEN_ERR_DATA for no complete header line, a
 * duplicate or missing `step` column, a row with another number of fields than the header, or a
 * field that is not a number ("nan" and "inf" are numbers). */
int run_metrics_read(const char *path, struct run_metrics *m);
void run_metrics_free(struct run_metrics *m);
/* The value of column c in row r. */
static inline double run_metrics_at(const struct run_metrics *m, int64_t r, enum metrics_column c)
{
    return m->values[r * METRIC_COLUMNS + c];
}

/* ---- The picture ---------------------------------------------------------------------------- */

enum { CURVES_WIDTH = 1000, CURVES_HEIGHT = 760 };

/* Line colours, 0xRRGGBB. The per-step train loss is light; the baselines are dashed. */
#define CURVES_RGB_TRAIN_STEP 0xA6C8EC
#define CURVES_RGB_TRAIN_EPOCH 0x1F5FBF
#define CURVES_RGB_VALIDATION 0xE0600A
#define CURVES_RGB_IDENTITY 0x8E3CB4
#define CURVES_RGB_MEAN 0x2E9A3E
#define CURVES_RGB_LR 0x303030
#define CURVES_RGB_AXES 0x000000

/* One axis of a panel: the data range from edge to edge of the plot area; log = base 10. */
struct curves_axis {
    double min, max;
    int log;
};

/* A panel's plot area in pixels: columns left..right, rows top..bottom (inclusive; the axis lines
 * are drawn on column left and row bottom). A value (x, y) is drawn at pixel
 *   px = left + lround((X - X.min) / (X.max - X.min) * (right - left))
 *   py = bottom - lround((Y - Y.min) / (Y.max - Y.min) * (bottom - top))
 * where X, Y are x, y, or log10 of them (and of min, max) on a log axis. */
struct curves_panel {
    int left, top, right, bottom;
    struct curves_axis x, y;
    int drawn; /* 0: no values for this panel (a note says so) */
};

struct curves_layout {
    int width, height;
    struct curves_panel loss, lr;
};

/* Draws the curves of m into a new RGB image (*rgb: [height][width][3], the caller frees it) and
 * reports the layout. title: the run's name. */
int curves_draw(const struct run_metrics *m, const char *title, uint8_t **rgb, struct curves_layout *layout);

/* The title of a run folder's curves: the last two components of its absolute path, e.g.
 * "quickstart/run" (the folder as given when it cannot be resolved). */
const char *curves_run_name(const char *folder, char *name, size_t size);

/* Reads metrics_path and writes png_path (temporary file + rename, atomic_file.h). Refuses
 * (GEN_ERR_USAGE, output_check) a png_path that is not a regular file, or is metrics_path itself.
 * layout may be NULL. */
int curves_write_png(const char *metrics_path, const char *png_path, const char *title,
                     struct curves_layout *layout);

#endif
