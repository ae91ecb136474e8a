/* curves.png (include/genesis/plot.h): metrics.csv read by column name, and the picture read back
 * with libpng: the curves at the heights the axis mapping of plot.h gives for the ranges the plotter
 * reports (the ranges themselves checked against the data), dark axis lines, tick labels, a legend,
 * dashed baselines; old runs without the baseline or lr columns; a last line still being written;
 * steps replayed after a resume; malformed files and refused outputs. */
#include "check.h"
#include "genesis/error.h"
#include "genesis/plot.h"
#include "png_read.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/genesis_plot_XXXXXX";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- The picture ----------------------------------------------------------------------------- */

struct picture {
    uint8_t *rgb;
    int width, height;
};

static int color_at(const struct picture *p, int x, int y, uint32_t hex)
{
    if (x < 0 || y < 0 || x >= p->width || y >= p->height) return 0;
    const uint8_t *c = p->rgb + ((size_t)y * p->width + x) * 3;
    return c[0] == (uint8_t)(hex >> 16) && c[1] == (uint8_t)(hex >> 8) && c[2] == (uint8_t)hex;
}

/* Does column x have colour hex within tol rows of y? */
static int color_near(const struct picture *p, int x, int y, int tol, uint32_t hex)
{
    for (int d = -tol; d <= tol; d++)
        if (color_at(p, x, y + d, hex)) return 1;
    return 0;
}

static int count_color(const struct picture *p, int x0, int y0, int x1, int y1, uint32_t hex)
{
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) n += color_at(p, x, y, hex);
    return n;
}

/* The mapping of plot.h, computed here from the reported ranges. */
static double coordinate(const struct curves_axis *a, double v) { return a->log ? log10(v) : v; }

static int expect_x(const struct curves_panel *p, double x)
{
    double f = (coordinate(&p->x, x) - coordinate(&p->x, p->x.min)) /
               (coordinate(&p->x, p->x.max) - coordinate(&p->x, p->x.min));
    return p->left + (int)lround(f * (p->right - p->left));
}

static int expect_y(const struct curves_panel *p, double y)
{
    double f = (coordinate(&p->y, y) - coordinate(&p->y, p->y.min)) /
               (coordinate(&p->y, p->y.max) - coordinate(&p->y, p->y.min));
    return p->bottom - (int)lround(f * (p->bottom - p->top));
}

/* The pixel row of the polyline through (xs[i], ys[i]) pixels at column x (linear in between). */
static double polyline_row(const int *xs, const int *ys, int n, int x)
{
    for (int i = 0; i + 1 < n; i++)
        if (x >= xs[i] && x <= xs[i + 1])
            return xs[i + 1] == xs[i]
                       ? ys[i]
                       : ys[i] + (double)(ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i]);
    return -1000;
}

static struct picture plot(const char *name, const char *csv, struct curves_layout *L, int *status)
{
    char metrics[600], png[600];
    snprintf(metrics, sizeof metrics, "%s/%s.csv", dir, name);
    snprintf(png, sizeof png, "%s/%s.png", dir, name);
    write_text(metrics, csv);
    struct picture p = {NULL, 0, 0};
    *status = curves_write_png(metrics, png, name, L);
    EXPECT(*status == GEN_OK, "%s: %s", name, gen_error_message());
    if (*status == GEN_OK) p.rgb = read_png(png, 3, &p.width, &p.height);
    EXPECT(p.rgb && p.width == CURVES_WIDTH && p.height == CURVES_HEIGHT, "%s: PNG not read back (%d x %d)",
           name, p.width, p.height);
    if (!p.rgb) *status = GEN_ERR_IO;
    return p;
}

/* Axis lines: column left from top to bottom and row bottom from left to right are black. */
static void expect_axes(const struct picture *p, const struct curves_panel *P, const char *what)
{
    int h = P->bottom - P->top + 1, w = P->right - P->left + 1;
    EXPECT(count_color(p, P->left, P->top, P->left, P->bottom, CURVES_RGB_AXES) == h, "%s: y axis line",
           what);
    EXPECT(count_color(p, P->left, P->bottom, P->right, P->bottom, CURVES_RGB_AXES) == w, "%s: x axis line",
           what);
    /* tick labels: text pixels left of the y axis and under the x axis */
    EXPECT(count_color(p, 0, P->top - 4, P->left - 5, P->bottom + 4, 0x202020) > 40, "%s: no y tick labels",
           what);
    EXPECT(count_color(p, P->left, P->bottom + 5, P->right, P->bottom + 30, 0x202020) > 60, "%s: no x labels",
           what);
}

/* ---- A run with every column: train loss 1/(1+step) (log axis), validation a line ------------ */

enum { STEPS_PER_EPOCH = 20, EPOCHS = 10, STEPS = STEPS_PER_EPOCH * EPOCHS };
static double train_loss(int s) { return 1.0 / (1 + s); }
static double validation_loss(int e) { return 0.3 - 0.015 * e; }
static double lr_at(int e) { return e < 5 ? 0.1 : 0.05; }
#define IDENTITY 0.4
#define MEAN 0.25

static char *full_run_csv(void)
{
    size_t size = 200000, used = 0;
    char *csv = malloc(size);
    used += (size_t)snprintf(csv + used, size - used,
                             "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,"
                             "comm_s,identity_loss,mean_loss,gain\n");
    for (int s = 1; s <= STEPS; s++) {
        int e = (s - 1) / STEPS_PER_EPOCH;
        used += (size_t)snprintf(csv + used, size - used, "%d,%d,%.9g,%.9g,,12.5,0.01,0.5,0.02,,,\n", s, e,
                                 lr_at(e), train_loss(s));
        if (s % STEPS_PER_EPOCH == 0)
            used += (size_t)snprintf(csv + used, size - used, "%d,%d,%.9g,,%.9g,,,,,%.9g,%.9g,%.9g\n", s, e,
                                     lr_at(e), validation_loss(e), IDENTITY, MEAN,
                                     1 - validation_loss(e) / IDENTITY);
    }
    return csv;
}

static void test_full_run(void)
{
    char *csv = full_run_csv();
    struct curves_layout L;
    int status;
    struct picture p = plot("full", csv, &L, &status);
    free(csv);
    if (status != GEN_OK) return;
    const struct curves_panel *P = &L.loss;
    EXPECT(P->drawn && L.lr.drawn, "both panels have values");
    EXPECT(P->x.min == 0 && P->x.max == STEPS && !P->x.log, "x: steps 0..%d, got %g..%g", STEPS, P->x.min,
           P->x.max);
    EXPECT(P->y.log, "losses from 0.5 to 0.005 span two decades: log axis");
    EXPECT(P->y.min <= train_loss(STEPS) && P->y.min > train_loss(STEPS) / 1.5 && P->y.max >= IDENTITY &&
               P->y.max >= train_loss(1) && P->y.max < train_loss(1) * 1.5,
           "loss range %g..%g fits the data", P->y.min, P->y.max);
    EXPECT(!L.lr.y.log && L.lr.y.min == 0 && L.lr.y.max >= 0.1 && L.lr.y.max < 0.12, "lr axis 0..%g linear",
           L.lr.y.max);
    EXPECT(L.lr.x.max == STEPS && L.lr.left == P->left && L.lr.right == P->right, "panels share the x axis");

    /* pixels of the per-epoch series, as the test computes them */
    int vx[EPOCHS], vy[EPOCHS], mx[EPOCHS], my[EPOCHS];
    for (int e = 0; e < EPOCHS; e++) {
        int end = (e + 1) * STEPS_PER_EPOCH;
        double sum = 0;
        for (int s = end - STEPS_PER_EPOCH + 1; s <= end; s++) sum += train_loss(s);
        vx[e] = mx[e] = expect_x(P, end);
        vy[e] = expect_y(P, validation_loss(e));
        my[e] = expect_y(P, sum / STEPS_PER_EPOCH);
        EXPECT(color_near(&p, vx[e], vy[e], 1, CURVES_RGB_VALIDATION), "validation of epoch %d at (%d, %d)",
               e, vx[e], vy[e]);
        EXPECT(color_near(&p, mx[e], my[e], 1, CURVES_RGB_TRAIN_EPOCH), "train epoch mean %d at (%d, %d)", e,
               mx[e], my[e]);
        if (e > 0) {
            int x = (vx[e - 1] + vx[e]) / 2;
            EXPECT(color_near(&p, x, (int)lround(polyline_row(vx, vy, e + 1, x)), 2, CURVES_RGB_VALIDATION),
                   "validation line between epochs %d and %d (column %d)", e - 1, e, x);
        }
    }
    int id_row = expect_y(P, IDENTITY), mean_row = expect_y(P, MEAN);
    /* the train loss of each step, at columns where no other curve comes within 6 rows */
    int checked = 0, stray = 0;
    for (int s = STEPS_PER_EPOCH; s <= STEPS; s++) {
        int x = expect_x(P, s), y = expect_y(P, train_loss(s));
        double others[] = {polyline_row(vx, vy, EPOCHS, x), polyline_row(mx, my, EPOCHS, x), id_row,
                           mean_row};
        int clear = 1;
        for (int k = 0; k < 4; k++) clear &= fabs(others[k] - y) >= 6;
        if (!clear) continue;
        checked++;
        EXPECT(color_near(&p, x, y, 1, CURVES_RGB_TRAIN_STEP), "train loss of step %d at (%d, %d)", s, x, y);
        for (int row = P->top; row < P->bottom; row++)
            stray += abs(row - y) > 6 && color_at(&p, x, row, CURVES_RGB_TRAIN_STEP);
    }
    EXPECT(checked > 60, "only %d step columns checked", checked);
    EXPECT(stray == 0, "%d train-loss pixels far from 1/(1+step) in the checked columns", stray);

    /* dashed baselines across the panel: on in about 6 of every 10 columns */
    int id_on = 0, mean_on = 0, columns = 0, id_off_row = 0;
    for (int x = P->left + 3; x <= P->right - 3; x++, columns++) {
        id_on += color_near(&p, x, id_row, 1, CURVES_RGB_IDENTITY);
        mean_on += color_near(&p, x, mean_row, 1, CURVES_RGB_MEAN);
        id_off_row += color_at(&p, x, id_row + 8, CURVES_RGB_IDENTITY) +
                      color_at(&p, x, id_row - 8, CURVES_RGB_IDENTITY);
    }
    EXPECT(id_on > 0.45 * columns && id_on < 0.75 * columns, "identity baseline dashed: %d of %d columns",
           id_on, columns);
    EXPECT(mean_on > 0.4 * columns && mean_on < 0.75 * columns, "mean baseline dashed: %d of %d columns",
           mean_on, columns);
    EXPECT(id_off_row == 0, "identity colour 8 rows off its baseline");
    EXPECT(count_color(&p, P->left + 1, id_row - 1, vx[0] - 10, id_row + 1, CURVES_RGB_IDENTITY) > 10,
           "the identity baseline is held flat from the left edge to the first validation");

    /* the learning rate of each step (away from the drop between steps 100 and 101) */
    int lr_bad = 0;
    for (int s = 1; s <= STEPS; s++)
        if (s < 98 || s > 103)
            lr_bad += !color_near(&p, expect_x(&L.lr, s), expect_y(&L.lr, lr_at((s - 1) / STEPS_PER_EPOCH)),
                                  1, CURVES_RGB_LR);
    EXPECT(lr_bad == 0, "%d steps without the lr line at their learning rate", lr_bad);

    expect_axes(&p, P, "loss panel");
    expect_axes(&p, &L.lr, "lr panel");
    const uint32_t legend[] = {CURVES_RGB_TRAIN_STEP, CURVES_RGB_TRAIN_EPOCH, CURVES_RGB_VALIDATION,
                               CURVES_RGB_IDENTITY, CURVES_RGB_MEAN};
    for (int k = 0; k < 5; k++)
        EXPECT(count_color(&p, P->right + 10, P->top, p.width - 1, P->bottom, legend[k]) >= 10,
               "legend: no sample of colour %06x", legend[k]);
    EXPECT(count_color(&p, P->right + 10, P->top, p.width - 1, P->bottom, 0x202020) > 300, "legend: no text");
    EXPECT(count_color(&p, 0, 0, p.width - 1, 24, 0x202020) > 50, "no title");
    free(p.rgb);
}

/* ---- An old run: no baseline columns, other column order, flat losses, a partial last line ---- */

static void test_old_run(void)
{
    size_t size = 100000, used = 0;
    char *csv = malloc(size);
    used +=
        (size_t)snprintf(csv + used, size - used, "epoch,step,train_loss,validation_loss,lr,samples_per_s\n");
    for (int s = 1; s <= 100; s++) {
        int e = (s - 1) / 10;
        used +=
            (size_t)snprintf(csv + used, size - used, "%d,%d,%.9g,,0.01,3.5\n", e, s, 0.3 + 0.1 / (1 + s));
        if (s % 10 == 0)
            used += (size_t)snprintf(csv + used, size - used, "%d,%d,,%.9g,0.01,\n", e, s, 0.34 - 0.003 * e);
    }
    snprintf(csv + used, size - used, "10,101,0.2"); /* being written */
    struct run_metrics m;
    char path[600];
    snprintf(path, sizeof path, "%s/old.csv", dir);
    write_text(path, csv);
    EXPECT_OK(run_metrics_read(path, &m));
    EXPECT(m.rows == 110 && m.partial_last_line && m.lines == 111, "rows %lld, partial %d, lines %lld",
           (long long)m.rows, m.partial_last_line, (long long)m.lines);
    EXPECT(m.has_column[METRIC_STEP] && m.has_column[METRIC_LR] && !m.has_column[METRIC_IDENTITY_LOSS] &&
               !m.has_column[METRIC_GAIN],
           "columns found by name");
    if (m.rows == 110)
        EXPECT(run_metrics_at(&m, 10, METRIC_STEP) == 10 &&
                   isnan(run_metrics_at(&m, 10, METRIC_TRAIN_LOSS)) &&
                   fabs(run_metrics_at(&m, 10, METRIC_VALIDATION_LOSS) - 0.34) < 1e-12 &&
                   isnan(run_metrics_at(&m, 10, METRIC_MEAN_LOSS)),
               "the validation row of epoch 0 by column name");
    run_metrics_free(&m);

    struct curves_layout L;
    int status;
    struct picture p = plot("old", csv, &L, &status);
    free(csv);
    if (status != GEN_OK) return;
    const struct curves_panel *P = &L.loss;
    EXPECT(!P->y.log && P->y.min < 0.301 && P->y.min > 0.29 && P->y.max > 0.35 && P->y.max < 0.36,
           "losses 0.30..0.35: linear axis, got %g..%g (log %d)", P->y.min, P->y.max, P->y.log);
    EXPECT(P->x.max == 100, "the partial row (step 101) is left out: x up to %g", P->x.max);
    for (int e = 0; e < 10; e++) {
        int x = expect_x(P, 10 * (e + 1)), y = expect_y(P, 0.34 - 0.003 * e);
        EXPECT(color_near(&p, x, y, 1, CURVES_RGB_VALIDATION), "old run: validation of epoch %d at (%d, %d)",
               e, x, y);
    }
    EXPECT(count_color(&p, 0, 0, p.width - 1, p.height - 1, CURVES_RGB_IDENTITY) == 0 &&
               count_color(&p, 0, 0, p.width - 1, p.height - 1, CURVES_RGB_MEAN) == 0,
           "no baselines drawn without their columns");
    expect_axes(&p, P, "old run");
    free(p.rgb);

    /* no lr column, no epoch column, no validation: only the train loss */
    p = plot("bare", "step,train_loss\n1,0.5\n2,0.4\n3,0.45\n4,0.3\n", &L, &status);
    if (status != GEN_OK) return;
    EXPECT(L.loss.drawn && !L.lr.drawn, "bare run: loss drawn, lr not");
    EXPECT(count_color(&p, 0, L.lr.top, p.width - 1, L.lr.bottom, CURVES_RGB_LR) == 0,
           "bare run: an lr line");
    EXPECT(count_color(&p, 0, 0, p.width - 1, p.height - 1, CURVES_RGB_VALIDATION) == 0 &&
               count_color(&p, 0, 0, p.width - 1, p.height - 1, CURVES_RGB_TRAIN_EPOCH) == 0,
           "bare run: validation or epoch means drawn");
    EXPECT(color_near(&p, expect_x(&L.loss, 2), expect_y(&L.loss, 0.4), 1, CURVES_RGB_TRAIN_STEP),
           "bare run: step 2");
    free(p.rgb);

    /* a header and no rows yet */
    p = plot("empty", "step,epoch,lr,train_loss,validation_loss\n", &L, &status);
    EXPECT(status == GEN_OK && !L.loss.drawn && !L.lr.drawn, "header only: a picture without curves");
    free(p.rgb);
}

/* ---- Steps replayed after a resume from an older checkpoint ---------------------------------- */

static void test_replayed_steps(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/resumed.csv", dir);
    write_text(path, "step,epoch,train_loss,validation_loss\n"
                     "1,0,0.9,\n2,0,0.8,\n3,0,0.7,\n4,0,0.6,\n5,0,0.5,\n5,0,,0.55\n6,1,0.4,\n7,1,0.3,\n"
                     "4,0,0.61,\n5,0,0.51,\n5,0,,0.56\n6,1,0.41,\n");
    struct run_metrics m;
    EXPECT_OK(run_metrics_read(path, &m));
    const double steps[] = {1, 2, 3, 4, 5, 5, 6};
    const double train[] = {0.9, 0.8, 0.7, 0.61, 0.51, NAN, 0.41};
    EXPECT(m.rows == 7, "replayed rows dropped: %lld rows kept", (long long)m.rows);
    for (int64_t r = 0; r < m.rows && r < 7; r++) {
        double got = run_metrics_at(&m, r, METRIC_TRAIN_LOSS);
        EXPECT(run_metrics_at(&m, r, METRIC_STEP) == steps[r] &&
                   (isnan(train[r]) ? isnan(got) : got == train[r]),
               "row %lld: step %g train %g", (long long)r, run_metrics_at(&m, r, METRIC_STEP), got);
    }
    if (m.rows == 7)
        EXPECT(run_metrics_at(&m, 5, METRIC_VALIDATION_LOSS) == 0.56, "the replayed validation kept");
    run_metrics_free(&m);
}

/* ---- Malformed files and refused outputs ----------------------------------------------------- */

static void expect_error(const char *name, const char *csv, int code, const char *message)
{
    char path[600], png[600], want[700];
    snprintf(path, sizeof path, "%s/%s.csv", dir, name);
    snprintf(png, sizeof png, "%s/%s.png", dir, name);
    write_text(path, csv);
    int status = curves_write_png(path, png, name, NULL);
    snprintf(want, sizeof want, "%s%s", path, message);
    EXPECT(status == code && strstr(gen_error_message(), want), "%s: status %d, message '%s' (want '%s')",
           name, status, gen_error_message(), want);
    EXPECT(access(png, F_OK) != 0, "%s: a picture written from a bad file", name);
    gen_error_clear();
}

static void test_bad_files(void)
{
    expect_error("short_row", "step,epoch,train_loss\n1,0,0.5\n2,0\n3,0,0.4\n", GEN_ERR_DATA,
                 ":3: 2 fields, but the header has 3");
    expect_error("not_number", "step,epoch,train_loss\n1,0,0.5\n2,0,abc\n", GEN_ERR_DATA,
                 ":3: column 'train_loss': 'abc' is not a number");
    expect_error("no_step", "epoch,train_loss\n0,0.5\n", GEN_ERR_DATA, ":1: no 'step' column");
    expect_error("twice", "step,lr,lr\n1,0.1,0.1\n", GEN_ERR_DATA, ":1: the header names column 'lr' twice");
    expect_error("no_step_value", "step,train_loss\n1,0.5\n,0.4\n", GEN_ERR_DATA, ":3: no step number");
    expect_error("empty_file", "", GEN_ERR_DATA, ":1: no complete header line (empty file)");
    expect_error("header_partial", "step,epo", GEN_ERR_DATA, ":1: no complete header line yet");

    struct curves_layout L;
    int status;
    struct picture p = plot("nan", "step,train_loss\n1,0.5\n2,nan\n3,inf\n4,0.25\n", &L, &status);
    EXPECT(status == GEN_OK && L.loss.y.max < 1, "non-finite losses are skipped (y up to %g)", L.loss.y.max);
    free(p.rgb);

    /* outputs that are the input, a folder or a link are refused and left alone */
    char metrics[600], folder[600], link[600];
    snprintf(metrics, sizeof metrics, "%s/full.csv", dir);
    snprintf(folder, sizeof folder, "%s/folder.png", dir);
    snprintf(link, sizeof link, "%s/link.png", dir);
    struct stat before, after;
    stat(metrics, &before);
    EXPECT(curves_write_png(metrics, metrics, "t", NULL) == GEN_ERR_USAGE &&
               strstr(gen_error_message(), "is the input"),
           "output = input refused: %s", gen_error_message());
    EXPECT(stat(metrics, &after) == 0 && after.st_size == before.st_size && after.st_ino == before.st_ino,
           "the metrics file is untouched");
    mkdir(folder, 0777);
    EXPECT(curves_write_png(metrics, folder, "t", NULL) == GEN_ERR_USAGE &&
               strstr(gen_error_message(), "is a folder"),
           "a folder as output refused: %s", gen_error_message());
    EXPECT(stat(folder, &after) == 0 && S_ISDIR(after.st_mode), "the folder is still there");
    EXPECT(symlink(metrics, link) == 0, "symlink");
    EXPECT(curves_write_png(metrics, link, "t", NULL) == GEN_ERR_USAGE, "a link as output refused");
    gen_error_clear();
}

static void test_run_name(void)
{
    char name[256];
    EXPECT(!strcmp(curves_run_name("/no/such/quickstart/run/", name, sizeof name), "quickstart/run"),
           "got '%s'", name);
    EXPECT(!strcmp(curves_run_name("run", name, sizeof name), "run"), "got '%s'", name);
    EXPECT(!strcmp(curves_run_name(dir, name, sizeof name), dir + 1), "got '%s' for %s", name, dir);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_full_run();
    test_old_run();
    test_replayed_steps();
    test_bad_files();
    test_run_name();
    remove_picture_dir(dir, "GENESIS_KEEP_PLOT");
    TEST_MAIN_END();
}
