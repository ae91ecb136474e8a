/* genesis prep: the scans of a study into one cubes file (include/genesis/prep.h). */
#include "genesis/prep.h"

#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/extract.h"
#include "genesis/log.h"
#include "genesis/normalize.h"
#include "genesis/rng.h"
#include "genesis/volume.h"
#include "genesis/world.h"
#include "genesis_version.h"

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_CROP_SIZES = 8 };

/* The list of scans: `count` paths of CUBES' fixed width, in sorted order. */
struct scan_list {
    int64_t count;
    char (*paths)[sizeof((cubes_scan_record *)0)->path];
};

/* ---- rank 0: inputs, outputs, split ------------------------------------------------------- */

static int compare_paths(const void *a, const void *b) { return strcmp(a, b); }

static int list_scans(const char *patterns, struct scan_list *list)
{
    size_t width = sizeof list->paths[0];
    char copy[CONFIG_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", patterns);
    CHECK(copy[0] != '\0', GEN_ERR_USAGE, "[prep] inputs is empty: give the scans' glob patterns");
    glob_t g;
    memset(&g, 0, sizeof g);
    int flags = 0;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ') p++;
        if (!*p) continue;
        int rc = glob(p, flags | GLOB_NOCHECK, NULL, &g);
        CHECK(rc == 0, GEN_ERR_IO, "[prep] inputs: cannot expand '%s'", p);
        flags = GLOB_APPEND;
    }
    list->paths = calloc(g.gl_pathc ? g.gl_pathc : 1, width);
    if (!list->paths) {
        globfree(&g);
        FAIL(GEN_ERR_NOMEM, "out of memory listing scans");
    }
    list->count = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        int status = GEN_OK;
        if (stat(g.gl_pathv[i], &st) != 0) /* GLOB_NOCHECK: a pattern that matched nothing */
            status = gen_error_set(GEN_ERR_USAGE, __FILE__, __LINE__, "[prep] inputs: no scan matches '%s'",
                                   g.gl_pathv[i]);
        else if (strlen(g.gl_pathv[i]) >= width)
            status = gen_error_set(GEN_ERR_USAGE, __FILE__, __LINE__, "scan path too long: %s", g.gl_pathv[i]);
        if (status != GEN_OK) {
            globfree(&g);
            return status;
        }
        if (S_ISDIR(st.st_mode)) continue;
        const char *name = g.gl_pathv[i];
        size_t len = strlen(name);
        if (len > 4 && !strcmp(name + len - 4, ".img")) continue; /* the .hdr names the pair */
        snprintf(list->paths[list->count++], width, "%s", name);
    }
    globfree(&g);
    qsort(list->paths, (size_t)list->count, width, compare_paths);
    int64_t unique = 0; /* the same file matched by two patterns counts once */
    for (int64_t i = 0; i < list->count; i++)
        if (unique == 0 || strcmp(list->paths[i], list->paths[unique - 1]))
            memmove(list->paths[unique++], list->paths[i], width);
    list->count = unique;
    CHECK(list->count > 0, GEN_ERR_USAGE, "[prep] inputs: no scans found in '%s'", patterns);
    return GEN_OK;
}

static int matches_any(const char *patterns, const char *path)
{
    char copy[CONFIG_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", patterns);
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ') p++;
        if (*p && fnmatch(p, path, 0) == 0) return 1;
    }
    return 0;
}

/* Split by scan: explicit patterns first; otherwise the fractions, over a permutation of the
 * sorted scans keyed by the seed. */
static void split_scans(const struct config_prep *p, const struct scan_list *list, int32_t *split)
{
    int64_t n = list->count;
    int64_t *order = malloc(sizeof *order * (size_t)n);
    for (int64_t i = 0; i < n; i++) order[i] = i, split[i] = SPLIT_TRAIN;
    rng_stream rng;
    rng_stream_init(&rng, (uint64_t)p->seed, RNG_EPOCH_NONE, 0, RNG_PURPOSE_SPLIT);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = rng_randint(&rng, 0, i), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    int explicit_val = p->validation_scans[0] != '\0', explicit_test = p->test_scans[0] != '\0';
    for (int64_t i = 0; i < n; i++) {
        if (explicit_val && matches_any(p->validation_scans, list->paths[i])) split[i] = SPLIT_VALIDATION;
        if (explicit_test && matches_any(p->test_scans, list->paths[i])) split[i] = SPLIT_TEST;
    }
    int64_t want_val = explicit_val ? 0 : (int64_t)(p->validation_fraction * (double)n + 0.5);
    int64_t want_test = explicit_test ? 0 : (int64_t)(p->test_fraction * (double)n + 0.5);
    for (int64_t k = 0; k < n && (want_val || want_test); k++) {
        int64_t i = order[k];
        if (split[i] != SPLIT_TRAIN) continue;
        if (want_val) split[i] = SPLIT_VALIDATION, want_val--;
        else split[i] = SPLIT_TEST, want_test--;
    }
    free(order);
}

/* The output's folder must exist and be writable; an existing output needs overwrite = true. */
static int check_output(const struct config_prep *p)
{
    char copy[CONFIG_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", p->output);
    const char *dir = dirname(copy);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), GEN_ERR_IO,
          "[prep] output '%s': folder '%s' does not exist", p->output, dir);
    CHECK(access(dir, W_OK) == 0, GEN_ERR_IO, "[prep] output '%s': folder '%s' is not writable",
          p->output, dir);
    CHECK(access(p->output, F_OK) != 0 || p->overwrite, GEN_ERR_USAGE,
          "[prep] output '%s' exists (set overwrite = true to replace it)", p->output);
    return GEN_OK;
}

static int parse_crop_sizes(const char *text, int *sizes, int *count)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    *count = 0;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(p, &end, 10);
        while (*end == ' ') end++;
        CHECK(end != p && *end == '\0' && v >= 8 && v <= 4096, GEN_ERR_USAGE,
              "[prep] crop_sizes: '%s' is not a size in [8, 4096]", p);
        CHECK(*count < MAX_CROP_SIZES, GEN_ERR_USAGE, "[prep] crop_sizes: more than %d sizes",
              MAX_CROP_SIZES);
        sizes[(*count)++] = (int)v;
    }
    CHECK(*count > 0, GEN_ERR_USAGE, "[prep] crop_sizes is empty");
    return GEN_OK;
}

/* ---- every rank: one scan ------------------------------------------------------------------- */

/* Growing per-round buffers of this rank's cubes. */
struct cube_batch {
    float *cubes;
    int32_t *scan_index, *corner, *crop;
    uint8_t *split;
    int64_t count, capacity;
    size_t cube_floats;
};

static int batch_reserve(struct cube_batch *b, int64_t more)
{
    if (b->count + more <= b->capacity) return GEN_OK;
    int64_t cap = b->capacity ? b->capacity : 64;
    while (cap < b->count + more) cap *= 2;
    float *cubes = realloc(b->cubes, sizeof *cubes * b->cube_floats * (size_t)cap);
    CHECK_ALLOC(cubes, sizeof *cubes * b->cube_floats * (size_t)cap);
    b->cubes = cubes;
    int32_t *si = realloc(b->scan_index, sizeof *si * (size_t)cap);
    CHECK_ALLOC(si, sizeof *si * (size_t)cap);
    b->scan_index = si;
    int32_t *co = realloc(b->corner, sizeof *co * 3 * (size_t)cap);
    CHECK_ALLOC(co, sizeof *co * 3 * (size_t)cap);
    b->corner = co;
    int32_t *cr = realloc(b->crop, sizeof *cr * 3 * (size_t)cap);
    CHECK_ALLOC(cr, sizeof *cr * 3 * (size_t)cap);
    b->crop = cr;
    uint8_t *sp = realloc(b->split, (size_t)cap);
    CHECK_ALLOC(sp, (size_t)cap);
    b->split = sp;
    b->capacity = cap;
    return GEN_OK;
}

static void batch_free(struct cube_batch *b)
{
    free(b->cubes), free(b->scan_index), free(b->corner), free(b->crop), free(b->split);
    memset(b, 0, sizeof *b);
}

struct prep_plan {
    const struct config_prep *p;
    volume_read_options read;
    norm_options norm;
    extract_options extract;
    int crop_sizes[MAX_CROP_SIZES], crop_count;
};

int prep_norm_options(const struct config_prep *p, norm_options *norm)
{
    enum norm_mode mode = p->normalize == NORMALIZE_CT ? NORM_CT
                        : p->normalize == NORMALIZE_MRI_WINDOW ? NORM_MRI_WINDOW : NORM_MRI_MINMAX;
    norm_options_default(norm, mode);
    /* an unset window keeps the mode's default (ct [-1000, 1000], mri_window [0, 4000]) */
    int window_is_default = p->window_lo == -1000 && p->window_hi == 1000;
    if (!(mode == NORM_MRI_WINDOW && window_is_default)) norm->lo = p->window_lo, norm->hi = p->window_hi;
    CHECK(norm->lo < norm->hi, GEN_ERR_USAGE, "[prep] window_lo (%g) must be below window_hi (%g)",
          norm->lo, norm->hi);
    norm->pct_lo = p->percentile_lo, norm->pct_hi = p->percentile_hi;
    CHECK(p->percentile_lo < p->percentile_hi, GEN_ERR_USAGE,
          "[prep] percentile_lo (%g) must be below percentile_hi (%g)", p->percentile_lo, p->percentile_hi);
    return GEN_OK;
}

static int make_plan(const struct config_prep *p, struct prep_plan *plan)
{
    plan->p = p;
    volume_read_options_default(&plan->read);
    plan->read.reorient_ras = p->reorient_ras;
    plan->read.spacing[0] = p->spacing_x, plan->read.spacing[1] = p->spacing_y,
    plan->read.spacing[2] = p->spacing_z;
    plan->read.verify_gzip = p->verify_gzip;
    CALL(prep_norm_options(p, &plan->norm));
    extract_options_default(&plan->extract);
    extract_options *e = &plan->extract;
    CHECK(p->cube_rows % 8 == 0 && p->cube_cols % 8 == 0 && p->cube_deps % 8 == 0, GEN_ERR_USAGE,
          "[prep] cube_rows, cube_cols, cube_deps must be multiples of 8 (the U-Net pools 3 times)");
    e->rows = (int)p->cube_rows, e->cols = (int)p->cube_cols, e->deps = (int)p->cube_deps;
    e->cubes_per_scan = (int)p->cubes_per_scan;
    e->attempts_per_cube = (int)p->attempts_per_cube;
    e->border_xy = (int)p->border_xy, e->border_z = (int)p->border_z;
    e->filter = p->filter == FILTER_LUNG ? EXTRACT_FILTER_LUNG
              : p->filter == FILTER_FOREGROUND ? EXTRACT_FILTER_FOREGROUND : EXTRACT_FILTER_NONE;
    e->lung_threshold = p->lung_threshold, e->lung_max = p->lung_max;
    e->fg_threshold = p->foreground_threshold, e->fg_min_fraction = p->foreground_fraction;
    e->seed = (uint64_t)p->seed;
    CALL(parse_crop_sizes(p->crop_sizes, plan->crop_sizes, &plan->crop_count));
    CALL(extract_options_check(e));
    return GEN_OK;
}

/* Prepares scan `index`; its cubes go into `batch`, its row of /scans into `record`. A scan that
 * cannot be used is recorded as skipped (GEN_OK), or is an error under strict = true. */
static int prepare_scan(const struct prep_plan *plan, int64_t index, int32_t split,
                        cubes_scan_record *record, struct cube_batch *batch, double *bytes_read)
{
    struct stat st;
    if (stat(record->path, &st) == 0) *bytes_read += (double)st.st_size;
    volume v = {0};
    int status = volume_read(&v, record->path, &plan->read);
    double window[2];
    if (status == GEN_OK)
        status = normalize_volume(v.data, (size_t)(v.dim[0] * v.dim[1] * v.dim[2]), &plan->norm,
                                  window, record->path);
    if (status == GEN_OK) {
        memcpy(record->dim, v.dim, sizeof record->dim);
        memcpy(record->spacing, v.spacing, sizeof record->spacing);
    }
    char why[1536] = ""; /* the first reason the scan gave no cubes */
    for (int s = 0; status == GEN_OK && s < plan->crop_count; s++) {
        extract_options e = plan->extract;
        e.crop_rows = e.crop_cols = plan->crop_sizes[s];
        e.scale_index = (uint64_t)s;
        extract_result r = {0};
        status = extract_cubes(&r, &v, (uint64_t)index, &e);
        if (status == GEN_OK && r.count == 0 && !why[0])
            snprintf(why, sizeof why, "%s: %.255s", record->path, r.why);
        if (status == GEN_OK) status = batch_reserve(batch, r.count);
        for (int i = 0; status == GEN_OK && i < r.count; i++) {
            int64_t k = batch->count++;
            memcpy(batch->cubes + (size_t)k * batch->cube_floats,
                   r.cubes + (size_t)i * batch->cube_floats, sizeof(float) * batch->cube_floats);
            batch->scan_index[k] = (int32_t)index;
            memcpy(batch->corner + 3 * k, r.corners + 3 * i, 3 * sizeof(int32_t));
            memcpy(batch->crop + 3 * k, r.crop, 3 * sizeof(int32_t));
            batch->split[k] = (uint8_t)split;
            record->cubes++;
        }
        extract_result_free(&r);
    }
    volume_free(&v);
    if (status == GEN_OK && record->cubes > 0) return GEN_OK;
    if (status != GEN_OK) {
        if (status == GEN_ERR_NOMEM || status == GEN_ERR_INTERNAL || status == GEN_ERR_USAGE) return status;
        snprintf(why, sizeof why, "%.1500s", gen_error_message()); /* names the file already */
    }
    snprintf(record->skipped, sizeof record->skipped, "%.255s", why);
    if (plan->p->strict) FAIL(GEN_ERR_DATA, "%s (strict = true)", why);
    log_warn("skipping scan: %s", why);
    return GEN_OK;
}

/* ---- the whole run -------------------------------------------------------------------------- */

static int broadcast_scans(struct scan_list *list, int32_t *split_out[])
{
    MPI_CALL(MPI_Bcast(&list->count, 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
    size_t width = sizeof list->paths[0];
    if (world_rank() != 0) {
        list->paths = calloc((size_t)list->count, width);
        *split_out = calloc((size_t)list->count, sizeof **split_out);
    }
    CALL(world_agree(list->paths && *split_out ? GEN_OK
                     : gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "out of memory for the scan list")));
    MPI_CALL(MPI_Bcast(list->paths, (int)(width * (size_t)list->count), MPI_CHAR, 0, MPI_COMM_WORLD));
    MPI_CALL(MPI_Bcast(*split_out, (int)list->count, MPI_INT32_T, 0, MPI_COMM_WORLD));
    return GEN_OK;
}

static int write_attributes(cubes_writer *w, const genesis_config *cfg, const struct prep_plan *plan,
                            const double range[2])
{
    const struct config_prep *p = &cfg->prep;
    static const char *const norms[] = {"ct", "mri_window", "mri_minmax"};
    static const char *const filters[] = {"lung", "foreground", "none"};
    CALL(cubes_writer_attr_text(w, "genesis_version", GENESIS_VERSION " (" GENESIS_GIT_COMMIT ")"));
    CALL(cubes_writer_attr_text(w, "normalize", norms[p->normalize]));
    double window[2] = {plan->norm.lo, plan->norm.hi}, pct[2] = {p->percentile_lo, p->percentile_hi};
    CALL(cubes_writer_attr_doubles(w, "window", window, 2));
    CALL(cubes_writer_attr_doubles(w, "percentiles", pct, 2));
    CALL(cubes_writer_attr_text(w, "filter", filters[p->filter]));
    int64_t seed = p->seed, per_scan = p->cubes_per_scan, attempts = p->attempts_per_cube;
    int64_t borders[2] = {p->border_xy, p->border_z}, crops[MAX_CROP_SIZES];
    for (int i = 0; i < plan->crop_count; i++) crops[i] = plan->crop_sizes[i];
    CALL(cubes_writer_attr_ints(w, "seed", &seed, 1));
    CALL(cubes_writer_attr_ints(w, "cubes_per_scan", &per_scan, 1));
    CALL(cubes_writer_attr_ints(w, "attempts_per_cube", &attempts, 1));
    CALL(cubes_writer_attr_ints(w, "borders", borders, 2));
    CALL(cubes_writer_attr_ints(w, "crop_sizes", crops, plan->crop_count));
    CALL(cubes_writer_attr_doubles(w, "value_range", range, 2));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK(mem != NULL, GEN_ERR_NOMEM, "out of memory for the config text");
    config_print(cfg, mem);
    fclose(mem);
    int status = cubes_writer_attr_text(w, "config", text);
    free(text);
    return status;
}

int prep_run(const genesis_config *cfg, struct prep_report *report)
{
    const struct config_prep *p = &cfg->prep;
    memset(report, 0, sizeof *report);
    double start = MPI_Wtime();
    int rank = world_rank(), size = world_size();
    struct prep_plan plan;
    CALL(gen_error_collective(make_plan(p, &plan))); /* same config on every rank */

    /* Rank 0 checks the output and lists and splits the scans; everybody learns the outcome. */
    struct scan_list list = {0};
    int32_t *split = NULL;
    int status = GEN_OK;
    if (rank == 0) {
        status = check_output(p);
        if (status == GEN_OK) status = list_scans(p->inputs, &list);
        if (status == GEN_OK) {
            split = calloc((size_t)list.count, sizeof *split);
            status = split ? GEN_OK : gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "out of memory");
        }
        if (status == GEN_OK) split_scans(p, &list, split);
    }
    status = world_agree_shared(status);
    if (status == GEN_OK) status = broadcast_scans(&list, &split);
    if (status != GEN_OK) {
        free(list.paths), free(split);
        return status;
    }

    /* The partial file's name is the same on every rank: rank 0's pid makes it unique. */
    char partial[CONFIG_PATH_MAX + 64];
    long id = (long)getpid();
    MPI_CALL(MPI_Bcast(&id, 1, MPI_LONG, 0, MPI_COMM_WORLD));
    snprintf(partial, sizeof partial, "%s.partial-%ld", p->output, id);

    cubes_scan_record *records = calloc((size_t)list.count, sizeof *records);
    struct cube_batch batch = {.cube_floats = (size_t)(p->cube_rows * p->cube_cols * p->cube_deps)};
    cubes_writer *w = NULL;
    status = world_agree_shared(records ? cubes_writer_create(&w, partial, (int)p->cube_rows, (int)p->cube_cols,
                                                              (int)p->cube_deps)
                                        : gen_error_set(GEN_ERR_NOMEM, __FILE__, __LINE__, "out of memory"));
    log_info("prep: %lld scans on %d rank(s) -> %s", (long long)list.count, size, p->output);
    double range[2] = {1e30, -1e30}, last_report = start;
    int64_t rounds = (list.count + size - 1) / size;
    for (int64_t round = 0; status == GEN_OK && round < rounds; round++) {
        int64_t index = round * size + rank;
        batch.count = 0;
        int local = GEN_OK;
        if (index < list.count) {
            cubes_scan_record *r = &records[index];
            snprintf(r->path, sizeof r->path, "%s", list.paths[index]);
            r->split = split[index];
            local = prepare_scan(&plan, index, split[index], r, &batch, &report->bytes_read);
        }
        for (int64_t i = 0; local == GEN_OK && i < (int64_t)batch.cube_floats * batch.count; i++) {
            float x = batch.cubes[i];
            if (x < range[0]) range[0] = x;
            if (x > range[1]) range[1] = x;
        }
        status = world_agree_shared(local);
        if (status == GEN_OK)
            status = cubes_writer_append(w, batch.cubes, batch.scan_index, batch.corner, batch.crop,
                                         batch.split, batch.count);
        double now = MPI_Wtime();
        int64_t done = (round + 1) * size < list.count ? (round + 1) * size : list.count;
        if (status == GEN_OK && (now - last_report > 2.0 || done == list.count)) {
            log_info("prep: %lld/%lld scans, %lld cubes, %.2f scans/s", (long long)done,
                     (long long)list.count, (long long)cubes_writer_count(w), (double)done / (now - start));
            last_report = now;
        }
    }
    batch_free(&batch);

    if (status == GEN_OK) { /* each rank filled its own rows; zero bytes elsewhere: OR them */
        void *buffer = rank == 0 ? MPI_IN_PLACE : (void *)records;
        status = MPI_Reduce(buffer, records, (int)(sizeof *records * (size_t)list.count), MPI_BYTE,
                            MPI_BOR, 0, MPI_COMM_WORLD) == MPI_SUCCESS ? GEN_OK
                 : gen_error_set(GEN_ERR_MPI, __FILE__, __LINE__, "reducing the scan table failed");
    }
    double global[2] = {0, 0};
    if (status == GEN_OK) {
        double lo = range[0], hi = range[1];
        MPI_Allreduce(&lo, &global[0], 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(&hi, &global[1], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &report->bytes_read, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    if (status == GEN_OK) status = cubes_writer_scans(w, records, list.count);
    if (status == GEN_OK) status = write_attributes(w, cfg, &plan, global);
    if (status == GEN_OK && cubes_writer_count(w) == 0)
        status = gen_error_collective(gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__,
                                                    "no cubes from any of the %lld scans", (long long)list.count));
    int64_t total = w ? cubes_writer_count(w) : 0;
    int close_status = cubes_writer_close(w);
    if (status == GEN_OK) status = world_agree_shared(close_status);

    if (rank == 0) {
        report->scans = list.count;
        for (int64_t i = 0; i < list.count; i++) {
            if (records[i].skipped[0]) report->scans_skipped++;
            else report->scans_used++;
        }
    }
    if (rank == 0 && status == GEN_OK) {
        for (int64_t i = 0; i < list.count; i++) report->cubes_per_split[records[i].split] += records[i].cubes;
        report->cubes = total;
        if (rename(partial, p->output) != 0)
            status = gen_error_set(GEN_ERR_IO, __FILE__, __LINE__, "cannot rename %s to %s: %s", partial,
                                   p->output, strerror(errno));
        if (report->scans_skipped) {
            log_info("prep: %lld of %lld scans skipped:", (long long)report->scans_skipped, (long long)list.count);
            for (int64_t i = 0; i < list.count; i++)
                if (records[i].skipped[0]) log_info("  %s", records[i].skipped);
        }
    }
    if (rank == 0 && status != GEN_OK) unlink(partial);
    status = world_agree_shared(status);
    report->seconds = MPI_Wtime() - start;
    free(records), free(list.paths), free(split);
    return status;
}
