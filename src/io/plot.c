/* curves.png: the loss and learning-rate panels of a run (include/genesis/plot.h). */
#include "genesis/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "genesis/atomic_file.h"
#include "genesis/error.h"
#include "genesis/png.h"
#include "io/canvas.h"

/* ---- Layout (pixels) --------------------------------------------------------------------------- */

enum {
    PLOT_LEFT = 90,   /* y tick labels to the left of it */
    PLOT_RIGHT = 740, /* the legend to the right of it */
    LEGEND_LEFT = 760,
    LOSS_TOP = 70, /* epochs done are labelled just above it */
    LOSS_BOTTOM = 470,
    LR_TOP = 530,
    LR_BOTTOM = 710,
    TICK = 4,
    GRID = 0xE4E4E4,
    TEXT = 0x202020,
    BACKGROUND = 0xFFFFFF,
};

struct rgb {
    uint8_t c[3];
};

static struct rgb rgb_of(uint32_t hex)
{
    struct rgb v = {{(uint8_t)(hex >> 16), (uint8_t)(hex >> 8), (uint8_t)hex}};
    return v;
}

static void text_scaled(struct canvas *cv, int x, int y, int scale, const char *text, uint32_t hex)
{
    struct rgb color = rgb_of(hex);
    font_draw_text(cv, x, y, scale, text, color.c);
}

static void text_at(struct canvas *cv, int x, int y, const char *text, uint32_t hex)
{
    text_scaled(cv, x, y, 1, text, hex);
}

static void text_right(struct canvas *cv, int right, int y, const char *text, uint32_t hex)
{
    text_at(cv, right - font_text_width(text, 1), y, text, hex);
}

/* ---- Axes: ranges, the value -> pixel mapping, ticks ------------------------------------------ */

static double axis_coordinate(const struct curves_axis *a, double v) { return a->log ? log10(v) : v; }

/* Where v lies on a from 0 (min) to 1 (max), clamped to [-1, 2] to keep pixels finite. */
static double axis_fraction(const struct curves_axis *a, double v)
{
    double lo = axis_coordinate(a, a->min), hi = axis_coordinate(a, a->max);
    double f = (axis_coordinate(a, v) - lo) / (hi - lo);
    return f < -1 ? -1 : f > 2 ? 2 : f;
}

static int pixel_x(const struct curves_panel *p, double x)
{
    return p->left + (int)lround(axis_fraction(&p->x, x) * (p->right - p->left));
}

static int pixel_y(const struct curves_panel *p, double y)
{
    return p->bottom - (int)lround(axis_fraction(&p->y, y) * (p->bottom - p->top));
}

/* Drawable on axis a: finite, and positive on a log axis. */
static int drawable(const struct curves_axis *a, double v) { return isfinite(v) && (!a->log || v > 0); }

/* The y axis for values in [lo, hi] (finite; lo > hi: none): log when all are positive and span
 * more than a factor of 10, with 0.05 decades of margin; else linear with 5% margin, from 0 when
 * from_zero and lo >= 0. */
static struct curves_axis y_axis_for(double lo, double hi, int from_zero)
{
    struct curves_axis a = {0, 1, 0};
    if (lo > hi) return a;
    if (lo > 0 && hi / lo > 10) {
        a.log = 1;
        a.min = lo / pow(10, 0.05), a.max = hi * pow(10, 0.05);
        return a;
    }
    double span = hi - lo;
    if (span <= 0) span = fabs(hi) > 0 ? 0.2 * fabs(hi) : 2;
    a.min = lo - 0.05 * span, a.max = hi + 0.05 * span;
    if (from_zero && lo >= 0) a.min = 0;
    return a;
}

/* The smallest of 1, 2, 5 x 10^k that is at least raw. */
static double nice_step(double raw)
{
    double mag = pow(10, floor(log10(raw)));
    double mult[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (mult[i] * mag >= raw * (1 - 1e-9)) return mult[i] * mag;
    return 10 * mag;
}

/* Tick label of v, for ticks step apart (a 1, 2 or 5 x 10^k): fixed point with the step's decimals,
 * or scientific ("2.5E-5") for very small or large numbers. */
static void format_tick(char *buf, size_t size, double v, double step)
{
    if (fabs(v) < step * 1e-6) {
        snprintf(buf, size, "0");
        return;
    }
    int step_mag = (int)floor(log10(step) + 1e-9), value_mag = (int)floor(log10(fabs(v)) + 1e-9);
    if (step_mag >= -4 && value_mag < 7) {
        snprintf(buf, size, "%.*f", step_mag < 0 ? -step_mag : 0, v);
        return;
    }
    int digits = value_mag - step_mag;
    char mantissa[32];
    snprintf(mantissa, sizeof mantissa, "%.*E", digits < 0 ? 0 : digits > 6 ? 6 : digits, v);
    char *e = strchr(mantissa, 'E'), *end; /* "E-05" -> "E-5", "E+06" -> "E6" */
    long exponent = e ? strtol(e + 1, &end, 10) : 0;
    if (!e || end == e + 1 || *end != '\0') { /* not printf's %E form: keep its text as it is */
        snprintf(buf, size, "%s", mantissa);
        return;
    }
    *e = '\0';
    snprintf(buf, size, "%.12sE%ld", mantissa, exponent);
}

struct ticks {
    double value[64], step[64]; /* step: the label's precision */
    int n;
};

static void add_tick(struct ticks *t, double v, double step)
{
    if (t->n < 64) t->value[t->n] = v, t->step[t->n] = step, t->n++;
}

/* About `want` ticks inside a: linear at a nice step (integers when integer); log at decades, or
 * at 1, 2, 5 x 10^k when fewer than four decades are inside. */
static void make_ticks(const struct curves_axis *a, int want, int integer, struct ticks *t)
{
    t->n = 0;
    if (!a->log) {
        double step = nice_step((a->max - a->min) / want);
        if (integer && step < 1) step = 1;
        for (double k = ceil(a->min / step - 1e-9); k * step <= a->max * (1 + 1e-12) && t->n < 64; k++)
            add_tick(t, k * step, step);
        return;
    }
    int lo = (int)ceil(log10(a->min) - 1e-9), hi = (int)floor(log10(a->max) + 1e-9);
    int every = (hi - lo) / want + 1;
    const double mult[] = {1, 2, 5};
    int per_decade = hi - lo + 1 >= 4 ? 1 : 3;
    for (int d = lo - 1; d <= hi; d++)
        for (int i = 0; i < per_decade; i++) {
            double v = mult[i] * pow(10, d);
            if (v >= a->min && v <= a->max && (per_decade > 1 || (d - lo) % every == 0))
                add_tick(t, v, pow(10, d));
        }
}

/* ---- Lines ----------------------------------------------------------------------------------- */

struct pen {
    struct rgb color;
    int width;  /* a width x width square per point */
    int dashed; /* 6 points on, 4 off */
    int phase;
};

static void stamp(struct canvas *cv, const struct pen *pen, int x, int y)
{
    int from = -(pen->width - 1) / 2;
    for (int dy = from; dy < from + pen->width; dy++)
        for (int dx = from; dx < from + pen->width; dx++) canvas_put(cv, x + dx, y + dy, pen->color.c);
}

/* Bresenham from (x0, y0) to (x1, y1), both ends included. */
static void draw_line(struct canvas *cv, struct pen *pen, int x0, int y0, int x1, int y1)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        if (!pen->dashed || pen->phase % 10 < 6) stamp(cv, pen, x0, y0);
        pen->phase++;
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

static void fill_rect(struct canvas *cv, int x0, int y0, int x1, int y1, struct rgb color)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) canvas_put(cv, x, y, color.c);
}

/* Series drawing options: markers (a 5 x 5 square per point), extend (held flat from the left edge
 * to the first point and from the last point to the right edge: a baseline). */
struct series_style {
    uint32_t color;
    int width, dashed, markers, extend;
};

/* The polyline through points (xs[i], ys[i]), i < n, ordered by x; undrawable values skipped. */
static int draw_series(struct canvas *cv, const struct curves_panel *p, const double *xs, const double *ys,
                       int64_t n, const struct series_style *style)
{
    struct pen pen = {rgb_of(style->color), style->width, style->dashed, 0};
    int drawn = 0, px = 0, py = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!drawable(&p->x, xs[i]) || !drawable(&p->y, ys[i])) continue;
        int x = pixel_x(p, xs[i]), y = pixel_y(p, ys[i]);
        if (drawn)
            draw_line(cv, &pen, px, py, x, y);
        else if (style->extend)
            draw_line(cv, &pen, p->left, y, x, y);
        if (style->markers) fill_rect(cv, x - 2, y - 2, x + 2, y + 2, pen.color);
        px = x, py = y, drawn++;
    }
    if (drawn && style->extend) draw_line(cv, &pen, px, py, p->right, py);
    return drawn;
}

/* ---- The metrics as series ------------------------------------------------------------------- */

/* Points (step, value) of column c where the value is finite; returns their count. */
static int64_t column_points(const struct run_metrics *m, enum metrics_column c, double *xs, double *ys)
{
    int64_t n = 0;
    for (int64_t r = 0; r < m->rows; r++) {
        double v = run_metrics_at(m, r, c);
        if (isfinite(v)) xs[n] = run_metrics_at(m, r, METRIC_STEP), ys[n] = v, n++;
    }
    return n;
}

/* Epochs done: for epoch e (0-based, as in the epoch column), the step where it ended (its
 * validation row, or its last row when a later epoch follows) and its mean train loss (NaN when it
 * has no train rows). An epoch still going is not listed. */
struct epochs_done {
    double *epoch, *end_step, *train_mean;
    int64_t n;
};

static void epochs_push(struct epochs_done *d, double epoch, double step, double sum, int64_t count)
{
    d->epoch[d->n] = epoch, d->end_step[d->n] = step, d->train_mean[d->n] = count ? sum / count : NAN;
    d->n++;
}

static void find_epochs(const struct run_metrics *m, struct epochs_done *d)
{
    d->n = 0;
    if (!m->has_column[METRIC_EPOCH]) return;
    double epoch = NAN, sum = 0, last_step = 0;
    int64_t count = 0;
    int listed = 1;
    for (int64_t r = 0; r < m->rows; r++) {
        double e = run_metrics_at(m, r, METRIC_EPOCH), step = run_metrics_at(m, r, METRIC_STEP);
        if (!isfinite(e)) continue;
        if (e != epoch) {
            if (!listed) epochs_push(d, epoch, last_step, sum, count);
            epoch = e, sum = 0, count = 0, listed = 0;
        }
        double loss = run_metrics_at(m, r, METRIC_TRAIN_LOSS);
        if (isfinite(loss)) sum += loss, count++;
        last_step = step;
        if (!listed && isfinite(run_metrics_at(m, r, METRIC_VALIDATION_LOSS))) {
            epochs_push(d, epoch, step, sum, count);
            listed = 1;
        }
    }
}

/* ---- Panels ---------------------------------------------------------------------------------- */

static void finite_range(const struct run_metrics *m, enum metrics_column c, double *lo, double *hi)
{
    for (int64_t r = 0; r < m->rows; r++) {
        double v = run_metrics_at(m, r, c);
        if (isfinite(v)) *lo = fmin(*lo, v), *hi = fmax(*hi, v);
    }
}

/* The axis lines, drawn over the curves. */
static void draw_axes(struct canvas *cv, const struct curves_panel *p)
{
    struct rgb axes = rgb_of(CURVES_RGB_AXES);
    fill_rect(cv, p->left, p->top, p->left, p->bottom, axes);
    fill_rect(cv, p->left, p->bottom, p->right, p->bottom, axes);
}

/* Grid, ticks with labels, x label (under the panel) and y label (above it, at the left). */
static void draw_frame(struct canvas *cv, const struct curves_panel *p, const char *x_label,
                       const char *y_name)
{
    struct ticks xt, yt;
    make_ticks(&p->x, 8, 1, &xt);
    make_ticks(&p->y, 6, 0, &yt);
    struct rgb grid = rgb_of(GRID), axes = rgb_of(CURVES_RGB_AXES);
    char label[64];
    for (int i = 0; i < yt.n; i++) {
        int y = pixel_y(p, yt.value[i]);
        fill_rect(cv, p->left + 1, y, p->right, y, grid);
        fill_rect(cv, p->left - TICK, y, p->left - 1, y, axes);
        format_tick(label, sizeof label, yt.value[i], yt.step[i]);
        text_right(cv, p->left - TICK - 3, y - 3, label, TEXT);
    }
    for (int i = 0; i < xt.n; i++) {
        int x = pixel_x(p, xt.value[i]);
        if (x > p->left) fill_rect(cv, x, p->top, x, p->bottom - 1, grid);
        fill_rect(cv, x, p->bottom + 1, x, p->bottom + TICK, axes);
        format_tick(label, sizeof label, xt.value[i], xt.step[i]);
        text_at(cv, x - font_text_width(label, 1) / 2, p->bottom + TICK + 3, label, TEXT);
    }
    text_at(cv, (p->left + p->right - font_text_width(x_label, 1)) / 2, p->bottom + TICK + 16, x_label, TEXT);
    snprintf(label, sizeof label, "%s (%s)", y_name, p->y.log ? "LOG SCALE" : "LINEAR");
    text_at(cv, 10, p->top - 24, label, TEXT);
}

/* Epochs done along the top edge of the loss panel: ticks at every k-th epoch and labels (the count
 * of epochs done) at every l-th, k and l the smallest of 1, 2, 5 x 10^n that keep ticks 4 and labels
 * 36 pixels apart on average. */
static void draw_epoch_marks(struct canvas *cv, const struct curves_panel *p, const struct epochs_done *d)
{
    if (d->n == 0) return;
    struct rgb axes = rgb_of(CURVES_RGB_AXES);
    double pixels_per_epoch = (pixel_x(p, d->end_step[d->n - 1]) - p->left) / (double)d->n;
    if (pixels_per_epoch <= 0) pixels_per_epoch = 1;
    long tick_every = (long)nice_step(4 / pixels_per_epoch < 1 ? 1 : 4 / pixels_per_epoch);
    long label_every = (long)nice_step(36 / pixels_per_epoch < 1 ? 1 : 36 / pixels_per_epoch);
    char label[32];
    for (int64_t i = 0; i < d->n; i++) {
        long done = (long)d->epoch[i] + 1;
        int x = pixel_x(p, d->end_step[i]);
        if (done % tick_every == 0) fill_rect(cv, x, p->top, x, p->top + TICK - 1, axes);
        if (done % label_every != 0) continue;
        snprintf(label, sizeof label, "%ld", done);
        text_at(cv, x - font_text_width(label, 1) / 2, p->top - 10, label, TEXT);
    }
    text_right(cv, p->right, p->top - 24, "EPOCHS DONE ALONG THE TOP", TEXT);
}

struct legend {
    int y;
};

static void legend_entry(struct canvas *cv, struct legend *g, const struct series_style *s, const char *name)
{
    struct pen pen = {rgb_of(s->color), s->width, s->dashed, 0};
    draw_line(cv, &pen, LEGEND_LEFT, g->y + 3, LEGEND_LEFT + 24, g->y + 3);
    if (s->markers) fill_rect(cv, LEGEND_LEFT + 10, g->y + 1, LEGEND_LEFT + 14, g->y + 5, pen.color);
    text_at(cv, LEGEND_LEFT + 32, g->y, name, TEXT);
    g->y += 16;
}

static void legend_note(struct canvas *cv, struct legend *g, const char *text)
{
    text_at(cv, LEGEND_LEFT, g->y, text, TEXT);
    g->y += 12;
}

static const struct series_style style_train_step = {CURVES_RGB_TRAIN_STEP, 1, 0, 0, 0},
                                 style_train_epoch = {CURVES_RGB_TRAIN_EPOCH, 2, 0, 1, 0},
                                 style_validation = {CURVES_RGB_VALIDATION, 2, 0, 1, 0},
                                 style_identity = {CURVES_RGB_IDENTITY, 2, 1, 0, 1},
                                 style_mean = {CURVES_RGB_MEAN, 2, 1, 0, 1},
                                 style_lr = {CURVES_RGB_LR, 2, 0, 0, 0};

/* The last finite value of column c and its epoch; 0 when none. */
static int last_value(const struct run_metrics *m, enum metrics_column c, double *value, double *epoch)
{
    for (int64_t r = m->rows - 1; r >= 0; r--)
        if (isfinite(run_metrics_at(m, r, c))) {
            *value = run_metrics_at(m, r, c), *epoch = run_metrics_at(m, r, METRIC_EPOCH);
            return 1;
        }
    return 0;
}

/* Text lines under the legend: last and best validation, baselines and gain. */
static void draw_summary(struct canvas *cv, struct legend *g, const struct run_metrics *m)
{
    char text[96];
    double v, e, best = INFINITY, best_epoch = NAN;
    g->y += 8;
    for (int64_t r = 0; r < m->rows; r++) {
        double loss = run_metrics_at(m, r, METRIC_VALIDATION_LOSS);
        if (isfinite(loss) && loss < best) best = loss, best_epoch = run_metrics_at(m, r, METRIC_EPOCH);
    }
    if (last_value(m, METRIC_VALIDATION_LOSS, &v, &e)) {
        snprintf(text, sizeof text, "LAST VALIDATION %.4g (EPOCH %.0f)", v, e + 1);
        legend_note(cv, g, text);
        snprintf(text, sizeof text, "BEST VALIDATION %.4g (EPOCH %.0f)", best, best_epoch + 1);
        legend_note(cv, g, text);
    }
    if (last_value(m, METRIC_IDENTITY_LOSS, &v, &e)) {
        snprintf(text, sizeof text, "IDENTITY BASELINE %.4g", v);
        legend_note(cv, g, text);
    }
    if (last_value(m, METRIC_MEAN_LOSS, &v, &e)) {
        snprintf(text, sizeof text, "MEAN BASELINE %.4g", v);
        legend_note(cv, g, text);
    }
    if (last_value(m, METRIC_GAIN, &v, &e)) {
        snprintf(text, sizeof text, "GAIN 1 - VAL/IDENTITY %.3f", v);
        legend_note(cv, g, text);
    }
}

/* The loss panel with its legend. xs, ys: room for m->rows points. */
static void draw_loss_panel(struct canvas *cv, const struct run_metrics *m, const struct curves_panel *p,
                            const struct epochs_done *d, double *xs, double *ys)
{
    draw_frame(cv, p, "GLOBAL STEP", "LOSS (MSE)");
    draw_epoch_marks(cv, p, d);
    /* drawn from the back (per-step train loss, baselines) to the front; listed in legend order */
    const struct {
        int column; /* -1: the epoch means */
        const struct series_style *style;
        const char *name, *note;
        int legend_rank;
    } lines[] = {
        {METRIC_TRAIN_LOSS, &style_train_step, "TRAIN LOSS, EACH STEP", NULL, 0},
        {METRIC_IDENTITY_LOSS, &style_identity, "IDENTITY BASELINE", "  (CORRUPTED INPUT AS OUTPUT)", 3},
        {METRIC_MEAN_LOSS, &style_mean, "MEAN BASELINE", "  (ONE CONSTANT AS OUTPUT)", 4},
        {-1, &style_train_epoch, "TRAIN LOSS, EPOCH MEAN", NULL, 1},
        {METRIC_VALIDATION_LOSS, &style_validation, "VALIDATION LOSS", NULL, 2}};
    enum { LINES = sizeof lines / sizeof lines[0] };
    int drawn[LINES];
    for (int k = 0; k < LINES; k++) {
        if (lines[k].column < 0) {
            drawn[k] = draw_series(cv, p, d->end_step, d->train_mean, d->n, lines[k].style);
            continue;
        }
        int64_t n = column_points(m, (enum metrics_column)lines[k].column, xs, ys);
        drawn[k] = draw_series(cv, p, xs, ys, n, lines[k].style);
    }
    struct legend g = {p->top};
    for (int rank = 0; rank < LINES; rank++)
        for (int k = 0; k < LINES; k++) {
            if (lines[k].legend_rank != rank || !drawn[k]) continue;
            legend_entry(cv, &g, lines[k].style, lines[k].name);
            if (lines[k].note) legend_note(cv, &g, lines[k].note);
        }
    if (!p->drawn) text_at(cv, p->left + 20, p->top + 20, "NO LOSS VALUES YET", TEXT);
    draw_summary(cv, &g, m);
    draw_axes(cv, p);
}

static void draw_lr_panel(struct canvas *cv, const struct run_metrics *m, const struct curves_panel *p,
                          double *xs, double *ys)
{
    draw_frame(cv, p, "GLOBAL STEP", "LEARNING RATE");
    int64_t n = column_points(m, METRIC_LR, xs, ys);
    draw_series(cv, p, xs, ys, n, &style_lr);
    draw_axes(cv, p);
    if (!p->drawn)
        text_at(cv, p->left + 20, p->top + 20,
                m->has_column[METRIC_LR] ? "NO LEARNING RATES YET" : "NO LR COLUMN IN METRICS.CSV", TEXT);
}

/* Ranges of both panels: x from step 0 to the last step; y from the values. */
static void make_layout(const struct run_metrics *m, struct curves_layout *L)
{
    double max_step = 0;
    for (int64_t r = 0; r < m->rows; r++) max_step = fmax(max_step, run_metrics_at(m, r, METRIC_STEP));
    struct curves_axis x = {0, max_step > 0 ? max_step : 1, 0};
    double lo = INFINITY, hi = -INFINITY;
    const enum metrics_column losses[] = {METRIC_TRAIN_LOSS, METRIC_VALIDATION_LOSS, METRIC_IDENTITY_LOSS,
                                          METRIC_MEAN_LOSS};
    for (int k = 0; k < 4; k++) finite_range(m, losses[k], &lo, &hi);
    *L = (struct curves_layout){
        CURVES_WIDTH,
        CURVES_HEIGHT,
        {PLOT_LEFT, LOSS_TOP, PLOT_RIGHT, LOSS_BOTTOM, x, y_axis_for(lo, hi, 0), lo <= hi},
        {PLOT_LEFT, LR_TOP, PLOT_RIGHT, LR_BOTTOM, x, {0, 1, 0}, 0}};
    lo = INFINITY, hi = -INFINITY;
    finite_range(m, METRIC_LR, &lo, &hi);
    L->lr.y = y_axis_for(lo, hi, 1);
    L->lr.drawn = lo <= hi;
}

int curves_draw(const struct run_metrics *m, const char *title, uint8_t **rgb, struct curves_layout *layout)
{
    CHECK(m && rgb && layout, GEN_ERR_USAGE, "curves_draw: null argument");
    int status = GEN_OK;
    struct canvas cv = {NULL, CURVES_WIDTH, CURVES_HEIGHT, 3};
    size_t points = (size_t)(m->rows > 0 ? m->rows : 1);
    double *xs = malloc(sizeof *xs * points * 5);
    size_t bytes = (size_t)CURVES_WIDTH * CURVES_HEIGHT * 3;
    cv.pixels = malloc(bytes);
    CHECK_ALLOC_GOTO(xs, sizeof *xs * points * 5);
    CHECK_ALLOC_GOTO(cv.pixels, bytes);
    struct epochs_done d = {xs + 2 * points, xs + 3 * points, xs + 4 * points, 0};
    find_epochs(m, &d);
    make_layout(m, layout);
    struct rgb background = rgb_of(BACKGROUND);
    fill_rect(&cv, 0, 0, cv.width - 1, cv.height - 1, background);
    char text[256];
    snprintf(text, sizeof text, "%.78s", title && title[0] ? title : "TRAINING CURVES");
    text_scaled(&cv, 10, 8, 2, text, TEXT);
    snprintf(text, sizeof text, "LOSS AND LEARNING RATE OF %lld METRICS.CSV ROWS%s", (long long)m->rows,
             m->partial_last_line ? " (A LAST ROW STILL BEING WRITTEN IS LEFT OUT)" : "");
    text_at(&cv, 10, 28, text, TEXT);
    draw_loss_panel(&cv, m, &layout->loss, &d, xs, xs + points);
    draw_lr_panel(&cv, m, &layout->lr, xs, xs + points);
    *rgb = cv.pixels;
    cv.pixels = NULL;
cleanup:
    free(cv.pixels);
    free(xs);
    return status;
}

/* ---- The file -------------------------------------------------------------------------------- */

const char *curves_run_name(const char *folder, char *name, size_t size)
{
    char *absolute = realpath(folder, NULL);
    const char *path = absolute ? absolute : folder;
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/') end--;
    size_t start = end, slashes = 0;
    while (start > 0 && !(path[start - 1] == '/' && ++slashes == 2)) start--;
    snprintf(name, size, "%.*s", (int)(end - start), path + start);
    free(absolute);
    return name;
}

int curves_write_png(const char *metrics_path, const char *png_path, const char *title,
                     struct curves_layout *layout)
{
    CHECK(metrics_path && png_path, GEN_ERR_USAGE, "curves_write_png: no path");
    const char *inputs[] = {metrics_path};
    CALL(output_check(png_path, 1, "--force", inputs, 1)); /* the trainer replaces curves.png */
    int status = GEN_OK;
    struct run_metrics m;
    struct curves_layout local;
    uint8_t *rgb = NULL;
    CALL_GOTO(run_metrics_read(metrics_path, &m));
    CALL_GOTO(curves_draw(&m, title, &rgb, layout ? layout : &local));
    CALL_GOTO(image_write_png(png_path, rgb, CURVES_WIDTH, CURVES_HEIGHT, 3));
cleanup:
    free(rgb);
    run_metrics_free(&m);
    return status;
}
