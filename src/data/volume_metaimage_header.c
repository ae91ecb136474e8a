/* MetaImage headers (src/data/metaimage.h): "Key = Value" lines up to ElementDataFile.
 *
 * Hand-written rather than through ITK: Debian has no small, well-kept C library for MetaImage
 * (ITK's MetaIO comes only inside ITK, a large C++ toolkit), and the part of the format scans use is
 * a few keys; zlib does the decompression (src/data/volume_metaimage.c). */
#include "metaimage.h"

#include "genesis/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nifti2_io.h"

enum {
    MAX_VALUES = 16,          /* numbers in one value: TransformMatrix of NDims 4 */
    MAX_HEADER_LINES = 4096,  /* lines before ElementDataFile: more is not a header */
    MAX_LINE = 1 << 16,       /* bytes in one header line */
    MAX_LIST_FILES = 1 << 20, /* data files of ElementDataFile = LIST */
};

/* The header's values as read, validated and copied into metaimage_header at the end. */
struct raw_header {
    int ndims, n_dim, n_spacing, n_size, n_offset, n_matrix;
    int64_t dim[MAX_VALUES];
    double spacing[MAX_VALUES], size[MAX_VALUES], offset[MAX_VALUES], matrix[MAX_VALUES];
    int channels, binary;
};

static const struct element_type {
    const char *name;
    int datatype, bytes;
} ELEMENT_TYPES[] = {
    {"MET_UCHAR", DT_UINT8, 1},   {"MET_CHAR", DT_INT8, 1},       {"MET_USHORT", DT_UINT16, 2},
    {"MET_SHORT", DT_INT16, 2},   {"MET_UINT", DT_UINT32, 4},     {"MET_INT", DT_INT32, 4},
    {"MET_ULONG", DT_UINT32, 4},  {"MET_LONG", DT_INT32, 4},      {"MET_ULONG_LONG", DT_UINT64, 8},
    {"MET_LONG_LONG", DT_INT64, 8}, {"MET_FLOAT", DT_FLOAT32, 4}, {"MET_DOUBLE", DT_FLOAT64, 8},
};

void metaimage_header_free(metaimage_header *h)
{
    for (size_t i = 0; h->files && i < h->file_count; i++) free(h->files[i]);
    free(h->files);
    memset(h, 0, sizeof *h);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
    return s;
}

static int parse_bool(const char *path, const char *key, const char *value, int *out)
{
    if (!strcasecmp(value, "true") || !strcasecmp(value, "t") || !strcmp(value, "1")) *out = 1;
    else if (!strcasecmp(value, "false") || !strcasecmp(value, "f") || !strcmp(value, "0")) *out = 0;
    else FAIL(GEN_ERR_DATA, "%s: %s = '%s' is not True or False", path, key, value);
    return GEN_OK;
}

/* Whitespace-separated numbers of `value` into out (at most MAX_VALUES); *count their number. */
static int parse_numbers(const char *path, const char *key, const char *value, double *out, int *count)
{
    *count = 0;
    for (const char *p = value; *p;) {
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        CHECK(end != p && errno == 0 && isfinite(d), GEN_ERR_DATA, "%s: %s = '%s' is not a list of numbers",
              path, key, value);
        CHECK(*count < MAX_VALUES, GEN_ERR_DATA, "%s: %s has more than %d values", path, key, MAX_VALUES);
        out[(*count)++] = d;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
    }
    return GEN_OK;
}

static int parse_integer(const char *path, const char *key, const char *value, int64_t lo, int64_t hi,
                         int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    CHECK(end != value && *end == '\0' && errno == 0 && v >= lo && v <= hi, GEN_ERR_DATA,
          "%s: %s = '%s' is not an integer in [%lld, %lld]", path, key, value, (long long)lo, (long long)hi);
    *out = v;
    return GEN_OK;
}

static int parse_dims(const char *path, const char *value, struct raw_header *r)
{
    double d[MAX_VALUES];
    CALL(parse_numbers(path, "DimSize", value, d, &r->n_dim));
    for (int i = 0; i < r->n_dim; i++) {
        CHECK(d[i] >= 1 && d[i] <= 2147483647.0 && d[i] == floor(d[i]), GEN_ERR_DATA,
              "%s: DimSize = '%s': %g is not a size in [1, 2147483647]", path, value, d[i]);
        r->dim[i] = (int64_t)d[i];
    }
    return GEN_OK;
}

/* "NAME", relative to the header's folder unless absolute, into a new string *out. */
static int resolve(const char *path, const char *name, char **out)
{
    const char *slash = strrchr(path, '/');
    size_t dir = name[0] == '/' || slash == NULL ? 0 : (size_t)(slash - path) + 1;
    size_t n = dir + strlen(name) + 1;
    *out = malloc(n);
    CHECK_ALLOC(*out, n);
    snprintf(*out, n, "%.*s%s", (int)dir, path, name);
    return GEN_OK;
}

static int add_file(const char *path, metaimage_header *h, const char *name, size_t *capacity)
{
    CHECK(h->file_count < MAX_LIST_FILES, GEN_ERR_DATA, "%s: more than %d data files", path, MAX_LIST_FILES);
    if (h->file_count == *capacity) {
        size_t cap = *capacity ? 2 * *capacity : 64;
        char **files = realloc(h->files, cap * sizeof *files);
        CHECK_ALLOC(files, cap * sizeof *files);
        h->files = files;
        *capacity = cap;
    }
    CALL(resolve(path, name, &h->files[h->file_count]));
    h->file_count++;
    return GEN_OK;
}

/* ElementDataFile: LOCAL, LIST [ND] (then the file names on the following lines), or a file name. */
static int parse_data_file(const char *path, FILE *f, const char *value, metaimage_header *h,
                           const struct raw_header *r, int64_t *line_no)
{
    size_t capacity = 0;
    if (!strcasecmp(value, "LOCAL")) {
        h->kind = METAIMAGE_LOCAL;
        off_t at = ftello(f);
        CHECK(at >= 0, GEN_ERR_IO, "%s: cannot tell the data position: %s", path, strerror(errno));
        h->local_offset = (int64_t)at;
        return GEN_OK;
    }
    if (strncasecmp(value, "LIST", 4) != 0 || (value[4] != '\0' && value[4] != ' ' && value[4] != '\t')) {
        h->kind = METAIMAGE_FILE;
        CHECK(value[0] != '\0', GEN_ERR_DATA, "%s: ElementDataFile is empty", path);
        return add_file(path, h, value, &capacity);
    }
    h->kind = METAIMAGE_LIST;
    h->list_dims = r->ndims - 1;
    const char *n = value + 4;
    while (*n == ' ' || *n == '\t') n++;
    if (*n) {
        char d = 0, extra = 0;
        int got = sscanf(n, "%d%c%c", &h->list_dims, &d, &extra);
        CHECK((got == 2 && (d == 'D' || d == 'd')) || got == 1, GEN_ERR_DATA,
              "%s: ElementDataFile = '%s': expected LIST, LIST 2D or LIST 3D", path, value);
    }
    CHECK(h->list_dims == 2 || h->list_dims == 3, GEN_ERR_DATA,
          "%s: ElementDataFile = '%s': each listed file must hold 2-D slices or a 3-D volume", path, value);
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    int status = GEN_OK;
    while ((len = getline(&line, &size, f)) >= 0) {
        ++*line_no;
        CHECK_GOTO((size_t)len == strlen(line) && len < MAX_LINE, GEN_ERR_DATA,
                   "%s: line %lld of the file list is not a file name", path, (long long)*line_no);
        char *name = trim(line);
        if (*name) CALL_GOTO(add_file(path, h, name, &capacity));
    }
    CHECK_GOTO(h->file_count > 0, GEN_ERR_DATA, "%s: ElementDataFile = LIST names no files", path);
cleanup:
    free(line);
    return status;
}

static int element_type(const char *path, const char *value, metaimage_header *h)
{
    for (size_t i = 0; i < sizeof ELEMENT_TYPES / sizeof ELEMENT_TYPES[0]; i++)
        if (!strcmp(value, ELEMENT_TYPES[i].name)) {
            h->datatype = ELEMENT_TYPES[i].datatype;
            h->bytes_per_voxel = ELEMENT_TYPES[i].bytes;
            return GEN_OK;
        }
    FAIL(GEN_ERR_DATA, "%s: ElementType %s is not supported (need MET_UCHAR, MET_CHAR, MET_USHORT, MET_SHORT, "
         "MET_UINT, MET_INT, MET_FLOAT or MET_DOUBLE)", path, value);
}

/* One "Key = Value" line; *done set at ElementDataFile. */
static int parse_line(const char *path, FILE *f, char *key, char *value, metaimage_header *h,
                      struct raw_header *r, int64_t *line_no, int *done)
{
    int flag = 0;
    int64_t n = 0;
    if (!strcasecmp(key, "ObjectType")) {
        CHECK(!strcasecmp(value, "Image"), GEN_ERR_DATA, "%s: ObjectType = %s (need Image)", path, value);
    } else if (!strcasecmp(key, "NDims")) {
        CALL(parse_integer(path, key, value, 1, 64, &n));
        r->ndims = (int)n;
    } else if (!strcasecmp(key, "DimSize")) {
        CALL(parse_dims(path, value, r));
    } else if (!strcasecmp(key, "ElementType")) {
        CALL(element_type(path, value, h));
    } else if (!strcasecmp(key, "ElementNumberOfChannels")) {
        CALL(parse_integer(path, key, value, 1, 1 << 20, &n));
        r->channels = (int)n;
    } else if (!strcasecmp(key, "BinaryData")) {
        CALL(parse_bool(path, key, value, &r->binary));
    } else if (!strcasecmp(key, "BinaryDataByteOrderMSB") || !strcasecmp(key, "ElementByteOrderMSB")) {
        CALL(parse_bool(path, key, value, &flag));
        h->msb |= flag;
    } else if (!strcasecmp(key, "CompressedData")) {
        CALL(parse_bool(path, key, value, &h->compressed));
    } else if (!strcasecmp(key, "CompressedDataSize")) {
        CALL(parse_integer(path, key, value, 0, INT64_MAX, &h->compressed_size));
    } else if (!strcasecmp(key, "HeaderSize")) {
        CALL(parse_integer(path, key, value, -1, INT64_MAX, &h->header_size));
    } else if (!strcasecmp(key, "ElementSpacing")) {
        CALL(parse_numbers(path, key, value, r->spacing, &r->n_spacing));
    } else if (!strcasecmp(key, "ElementSize")) {
        CALL(parse_numbers(path, key, value, r->size, &r->n_size));
    } else if (!strcasecmp(key, "Offset") || !strcasecmp(key, "Position") || !strcasecmp(key, "Origin")) {
        CALL(parse_numbers(path, key, value, r->offset, &r->n_offset));
    } else if (!strcasecmp(key, "TransformMatrix") || !strcasecmp(key, "Orientation") ||
               !strcasecmp(key, "Rotation")) {
        CALL(parse_numbers(path, key, value, r->matrix, &r->n_matrix));
    } else if (!strcasecmp(key, "ElementDataFile")) {
        CHECK(r->ndims > 0, GEN_ERR_DATA, "%s: no NDims before ElementDataFile", path);
        CALL(parse_data_file(path, f, value, h, r, line_no));
        *done = 1;
    } /* other keys (AnatomicalOrientation, CenterOfRotation, ElementMin, ...) do not change voxels */
    return GEN_OK;
}

/* Checks what was read and fills h's geometry. */
static int finish_header(const char *path, const struct raw_header *r, metaimage_header *h)
{
    int nd = r->ndims;
    CHECK(nd >= 2, GEN_ERR_DATA, "%s: NDims = %d; a 3-D volume is required", path, nd);
    CHECK(r->n_dim == nd, GEN_ERR_DATA, "%s: DimSize has %d values, NDims is %d", path, r->n_dim, nd);
    CHECK(nd != 2, GEN_ERR_DATA, "%s: 2-D image (%lldx%lld, NDims = 2); a 3-D volume is required", path,
          (long long)r->dim[0], (long long)r->dim[1]);
    CHECK(nd == 3 || nd == 4, GEN_ERR_DATA, "%s: NDims = %d is not supported (need 3, or 4 with one volume)",
          path, nd);
    CHECK(nd == 3 || r->dim[3] == 1, GEN_ERR_DATA, "%s: 4-D image with %lld volumes (%lldx%lldx%lld each); "
          "only a single 3-D volume is supported", path, (long long)r->dim[3], (long long)r->dim[0],
          (long long)r->dim[1], (long long)r->dim[2]);
    CHECK(r->dim[2] > 1, GEN_ERR_DATA, "%s: 2-D image (%lldx%lldx1); a 3-D volume is required", path,
          (long long)r->dim[0], (long long)r->dim[1]);
    CHECK(h->datatype != 0, GEN_ERR_DATA, "%s: no ElementType", path);
    CHECK(r->channels == 1, GEN_ERR_DATA, "%s: %d channels per voxel; only scalar images are supported", path,
          r->channels);
    CHECK(r->binary, GEN_ERR_DATA, "%s: BinaryData = False (voxels as text) is not supported", path);
    const double *spacing = r->n_spacing ? r->spacing : r->size;
    int n_spacing = r->n_spacing ? r->n_spacing : r->n_size;
    CHECK(n_spacing == 0 || n_spacing == nd, GEN_ERR_DATA, "%s: ElementSpacing has %d values, NDims is %d",
          path, n_spacing, nd);
    CHECK(r->n_offset == 0 || r->n_offset == nd, GEN_ERR_DATA, "%s: Offset has %d values, NDims is %d", path,
          r->n_offset, nd);
    CHECK(r->n_matrix == 0 || r->n_matrix == nd * nd, GEN_ERR_DATA,
          "%s: TransformMatrix has %d values, NDims %d needs %d", path, r->n_matrix, nd, nd * nd);
    for (int a = 0; a < 3; a++) {
        h->dim[a] = r->dim[a];
        h->spacing[a] = n_spacing ? spacing[a] : 1.0;
        CHECK(h->spacing[a] > 0, GEN_ERR_DATA, "%s: ElementSpacing %g of axis %d is not positive", path,
              h->spacing[a], a);
        h->offset[a] = r->n_offset ? r->offset[a] : 0.0;
        for (int row = 0; row < 3; row++) /* the a-th group of nd numbers is voxel axis a's direction */
            h->direction[row][a] = r->n_matrix ? r->matrix[a * nd + row] : (double)(row == a);
    }
    CHECK(!(h->compressed && h->header_size == -1 && h->compressed_size < 0), GEN_ERR_DATA,
          "%s: HeaderSize = -1 with CompressedData needs CompressedDataSize", path);
    return GEN_OK;
}

int metaimage_read_header(const char *path, metaimage_header *h)
{
    memset(h, 0, sizeof *h);
    h->compressed_size = -1;
    struct raw_header r = {.channels = 1, .binary = 1};
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, GEN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int status = GEN_OK, done = 0;
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    int64_t line_no = 0;
    while (!done && (len = getline(&line, &size, f)) >= 0) {
        ++line_no;
        CHECK_GOTO((size_t)len == strlen(line) && len < MAX_LINE && line_no <= MAX_HEADER_LINES, GEN_ERR_DATA,
                   "%s: not a MetaImage header (line %lld is not text; no ElementDataFile before it)", path,
                   (long long)line_no);
        char *text = trim(line);
        if (*text == '\0') continue;
        char *eq = strchr(text, '=');
        CHECK_GOTO(eq != NULL, GEN_ERR_DATA, "%s: not a MetaImage header (line %lld is not 'Key = Value')", path,
                   (long long)line_no);
        *eq = '\0';
        CALL_GOTO(parse_line(path, f, trim(text), trim(eq + 1), h, &r, &line_no, &done));
    }
    CHECK_GOTO(!ferror(f), GEN_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    CHECK_GOTO(done, GEN_ERR_DATA, "%s: not a MetaImage header, or a truncated one (no ElementDataFile line)",
               path);
    CALL_GOTO(finish_header(path, &r, h));
cleanup:
    free(line);
    fclose(f);
    if (status != GEN_OK) metaimage_header_free(h);
    return status;
}
