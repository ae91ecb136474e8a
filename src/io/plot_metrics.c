/* metrics.csv read by column name (include/genesis/plot.h). */
#include "genesis/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genesis/error.h"

static const char *const column_names[METRIC_COLUMNS] = {
    "step", "epoch", "lr", "train_loss", "validation_loss", "identity_loss", "mean_loss", "gain",
    "samples_per_s"};

const char *metrics_column_name(enum metrics_column c)
{
    return (int)c >= 0 && (int)c < METRIC_COLUMNS ? column_names[c] : "?";
}

void run_metrics_free(struct run_metrics *m)
{
    free(m->values);
    m->values = NULL;
    m->rows = m->capacity = 0;
}

/* The header's fields, in order: field_column[i] = the metrics_column of field i, or -1. */
struct header {
    int fields;
    int *field_column;
};

/* Splits line (its newline removed) at its commas in place (each comma becomes a NUL, so the
 * fields follow each other as strings); returns the number of fields. */
static int split_fields(char *line)
{
    int n = 1;
    for (char *p = strchr(line, ','); p; p = strchr(p + 1, ',')) *p = '\0', n++;
    return n;
}

static void strip_newline(char *line)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
}

static int parse_header(const char *path, char *line, struct header *h, struct run_metrics *m)
{
    int count = split_fields(line);
    h->field_column = malloc(sizeof *h->field_column * (size_t)count);
    CHECK_ALLOC(h->field_column, sizeof *h->field_column * (size_t)count);
    h->fields = count;
    char *p = line;
    for (int i = 0; i < count; i++, p += strlen(p) + 1) {
        h->field_column[i] = -1;
        for (int c = 0; c < METRIC_COLUMNS; c++) {
            if (strcmp(p, column_names[c]) != 0) continue;
            CHECK(!m->has_column[c], GEN_ERR_DATA, "%s:1: the header names column '%s' twice", path, p);
            m->has_column[c] = 1;
            h->field_column[i] = c;
        }
    }
    CHECK(m->has_column[METRIC_STEP], GEN_ERR_DATA,
          "%s:1: no 'step' column in the header (is it a metrics.csv?)", path);
    return GEN_OK;
}

static int grow(struct run_metrics *m)
{
    if (m->rows < m->capacity) return GEN_OK;
    int64_t capacity = m->capacity ? 2 * m->capacity : 1024;
    size_t bytes = sizeof *m->values * METRIC_COLUMNS * (size_t)capacity;
    double *values = realloc(m->values, bytes);
    CHECK_ALLOC(values, bytes);
    m->values = values;
    m->capacity = capacity;
    return GEN_OK;
}

/* Parses one data line (line number lineno) into row[METRIC_COLUMNS]; *validation := 1 for a
 * validation row (a validation_loss and no train_loss). */
static int parse_row(const char *path, int64_t lineno, char *line, const struct header *h, double *row,
                     int *validation)
{
    int count = split_fields(line);
    CHECK(count == h->fields, GEN_ERR_DATA, "%s:%lld: %d fields, but the header has %d", path,
          (long long)lineno, count, h->fields);
    int empty[METRIC_COLUMNS];
    for (int c = 0; c < METRIC_COLUMNS; c++) row[c] = NAN, empty[c] = 1;
    char *p = line;
    for (int i = 0; i < count; i++, p += strlen(p) + 1) {
        int c = h->field_column[i];
        if (c < 0 || p[0] == '\0') continue;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        CHECK(end != p && *end == '\0', GEN_ERR_DATA, "%s:%lld: column '%s': '%s' is not a number", path,
              (long long)lineno, column_names[c], p);
        row[c] = v, empty[c] = 0;
    }
    CHECK(!empty[METRIC_STEP] && isfinite(row[METRIC_STEP]), GEN_ERR_DATA, "%s:%lld: no step number", path,
          (long long)lineno);
    *validation = !empty[METRIC_VALIDATION_LOSS] && empty[METRIC_TRAIN_LOSS];
    return GEN_OK;
}

/* Appends row, first dropping the kept rows it replays (plot.h). */
static int append_row(struct run_metrics *m, const double *row, int validation)
{
    double step = row[METRIC_STEP];
    while (m->rows > 0) {
        double last = run_metrics_at(m, m->rows - 1, METRIC_STEP);
        if (last > step || (last == step && !validation))
            m->rows--;
        else
            break;
    }
    CALL(grow(m));
    memcpy(m->values + m->rows * METRIC_COLUMNS, row, sizeof *row * METRIC_COLUMNS);
    m->rows++;
    return GEN_OK;
}

int run_metrics_read(const char *path, struct run_metrics *m)
{
    memset(m, 0, sizeof *m);
    int status = GEN_OK;
    struct header h = {0, NULL};
    char *line = NULL;
    size_t size = 0;
    FILE *f = fopen(path, "r");
    CHECK_GOTO(f, GEN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    ssize_t len;
    while ((len = getline(&line, &size, f)) >= 0) {
        if (len == 0 || line[len - 1] != '\n') { /* still being written */
            m->partial_last_line = 1;
            break;
        }
        CHECK_GOTO((size_t)len == strlen(line), GEN_ERR_DATA, "%s:%lld: a NUL byte in the line", path,
                   (long long)m->lines + 1);
        m->lines++;
        strip_newline(line);
        if (m->lines == 1) {
            CALL_GOTO(parse_header(path, line, &h, m));
            continue;
        }
        double row[METRIC_COLUMNS];
        int validation = 0;
        CALL_GOTO(parse_row(path, m->lines, line, &h, row, &validation));
        CALL_GOTO(append_row(m, row, validation));
    }
    CHECK_GOTO(!ferror(f), GEN_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    CHECK_GOTO(m->lines >= 1, GEN_ERR_DATA, "%s:1: no complete header line%s", path,
               m->partial_last_line ? " yet (the file is being written?)" : " (empty file)");
cleanup:
    if (f) fclose(f);
    free(line);
    free(h.field_column);
    return status;
}
