/* genesis prep: the scans of a study into one cubes file (include/genesis/prep.h). */
#include "genesis/prep.h"

#include "genesis/atomic_file.h"
#include "genesis/collective.h"
#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/extract.h"
#include "genesis/log.h"
#include "genesis/normalize.h"
#include "genesis/profile.h"
#include "genesis/rng.h"
#include "genesis/volume.h"
#include "genesis/world.h"
#include "genesis_version.h"
#include "prep/inputs.h"

#include <errno.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_CROP_SIZES = 8 };

/* ---- rank 0: inputs, outputs, split ------------------------------------------------------- */

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
static int split_scans(const struct config_prep *p, const struct scan_list *list, int32_t *split)
{
    int64_t n = list->count;
    int64_t *order = malloc(sizeof *order * (size_t)n);
    CHECK_ALLOC(order, sizeof *order * (size_t)n);
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
    return GEN_OK;
}

/* Rank 0: the output policy of every command (atomic_file.h) for [prep] output, whose inputs are
 * the scans: an existing output is replaced only with overwrite = true, never a scan or a
 * non-regular file. */
static int check_output(const struct config_prep *p, const struct scan_list *list)
{
    const char **inputs = malloc(sizeof *inputs * (size_t)(list->count ? list->count : 1));
    CHECK_ALLOC(inputs, sizeof *inputs * (size_t)(list->count ? list->count : 1));
    for (int64_t i = 0; i < list->count; i++) inputs[i] = list->paths[i];
    int status = output_check(p->output, p->overwrite, "[prep] overwrite = true", inputs, (int)list->count);
    free(inputs);
    return status;
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

static int cube_batch_reserve(struct cube_batch *b, int64_t more)
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

static void cube_batch_free(struct cube_batch *b)
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

static int make_plan(const struct config_prep *p, struct prep_plan *plan)
{
    plan->p = p;
    volume_read_options_default(&plan->read);
    plan->read.reorient_ras = p->reorient_ras;
    plan->read.spacing[0] = p->spacing_x, plan->read.spacing[1] = p->spacing_y,
    plan->read.spacing[2] = p->spacing_z;
    plan->read.verify_gzip = p->verify_gzip;
    CALL(normalize_options_from_config(p, &plan->norm));
    extract_options_default(&plan->extract);
    extract_options *e = &plan->extract;
    CHECK(config_cube_size_ok(p->cube_rows, p->cube_cols, p->cube_deps), GEN_ERR_USAGE,
          "[prep] cube_rows, cube_cols, cube_deps must be multiples of 8 (the U-Net pools 3 times) and >= %d "
          "(local pixel shuffling needs 10 voxels): train and preview refuse other cubes", CONFIG_CUBE_MIN);
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

/* Reads, normalises and cuts scan `index` (record->path) into `batch`, at every crop size; fills
 * record's dim, spacing and cubes. `why` receives the first reason a crop size gave no cubes. */
static int extract_scan(const struct prep_plan *plan, int64_t index, int32_t split,
                        cubes_scan_record *record, struct cube_batch *batch, char *why, size_t why_size)
{
    int status = GEN_OK;
    volume v = {0};
    extract_result r = {0};
    CALL_GOTO(volume_read(&v, record->path, &plan->read));
    double window[2];
    CALL_GOTO(normalize_volume(v.data, (size_t)(v.dim[0] * v.dim[1] * v.dim[2]), &plan->norm, window,
                               record->path));
    memcpy(record->dim, v.dim, sizeof record->dim);
    memcpy(record->spacing, v.spacing, sizeof record->spacing);
    for (int s = 0; s < plan->crop_count; s++) {
        extract_options e = plan->extract;
        e.crop_rows = e.crop_cols = plan->crop_sizes[s];
        e.scale_index = (uint64_t)s;
        CALL_GOTO(extract_cubes(&r, &v, (uint64_t)index, &e));
        if (r.count == 0 && !why[0]) snprintf(why, why_size, "%s: %.255s", record->path, r.why);
        CALL_GOTO(cube_batch_reserve(batch, r.count));
        for (int i = 0; i < r.count; i++) {
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
cleanup:
    extract_result_free(&r);
    volume_free(&v);
    return status;
}

/* Prepares scan `index`; its cubes go into `batch`, its row of /scans into `record`. A scan that
 * cannot be used is recorded as skipped (GEN_OK), or is an error under strict = true. */
static int prepare_scan(const struct prep_plan *plan, int64_t index, int32_t split,
                        cubes_scan_record *record, struct cube_batch *batch, double *bytes_read)
{
    struct stat st;
    if (stat(record->path, &st) == 0) *bytes_read += (double)st.st_size;
    char why[1536] = ""; /* the first reason the scan gave no cubes */
    int status = extract_scan(plan, index, split, record, batch, why, sizeof why);
    if (status == GEN_OK && record->cubes > 0) return GEN_OK;
    if (status == GEN_ERR_NOMEM || status == GEN_ERR_INTERNAL || status == GEN_ERR_USAGE) return status;
    if (status != GEN_OK) snprintf(why, sizeof why, "%.1500s", gen_error_message()); /* names the file */
    snprintf(record->skipped, sizeof record->skipped, "%.255s", why);
    if (plan->p->strict) FAIL(GEN_ERR_DATA, "%s (strict = true)", why);
    log_warn("skipping scan: %s", why);
    return GEN_OK;
}

/* ---- the whole run -------------------------------------------------------------------------- */

/* GEN_ERR_NOMEM "out of memory for WHAT" unless allocated (for allocations the ranks agree on). */
static int check_allocated(int allocated, const char *what)
{
    CHECK(allocated, GEN_ERR_NOMEM, "out of memory for %s", what);
    return GEN_OK;
}

/* Rank 0: lists the scans, checks the output and takes its lock (lock: its name, for output_unlock;
 * a concurrent prep to the same output is refused), and splits the scans; *split: [list->count]
 * enum split. */
static int list_and_split(const struct config_prep *p, struct scan_list *list, int32_t **split, char *lock,
                          size_t lock_size)
{
    CALL(prep_list_inputs(p->inputs, list));
    CALL(check_output(p, list));
    CALL(output_lock(p->output, lock, lock_size));
    *split = calloc((size_t)list->count, sizeof **split);
    CALL(check_allocated(*split != NULL, "the split"));
    CALL(split_scans(p, list, *split));
    return GEN_OK;
}

/* Rank 0's scan list and split to every rank (the other ranks allocate theirs). */
static int broadcast_scans(struct scan_list *list, int32_t **split)
{
    CALL(world_broadcast(&list->count, sizeof list->count, 0));
    size_t width = sizeof list->paths[0];
    if (world_rank() != 0) {
        list->paths = calloc((size_t)list->count, width);
        *split = calloc((size_t)list->count, sizeof **split);
    }
    CALL(world_agree(check_allocated(list->paths != NULL && *split != NULL, "the scan list")));
    CALL(world_broadcast(list->paths, width * (size_t)list->count, 0));
    CALL(world_broadcast(*split, sizeof **split * (size_t)list->count, 0));
    return GEN_OK;
}

/* Round k: rank r prepares scan k * size + r (filling records[k * size + r]); one collective append
 * per round puts the round's cubes into the file in scan order. range: this rank's [min, max] cube
 * value, updated; bytes_read: this rank's bytes of scan files, updated. */
static int prepare_rounds(const struct prep_plan *plan, const struct scan_list *list, const int32_t *split,
                          cubes_scan_record *records, cubes_writer *w, double range[2], double *bytes_read,
                          double start)
{
    int rank = world_rank(), size = world_size();
    int status = GEN_OK;
    struct cube_batch batch = {.cube_floats = (size_t)(plan->p->cube_rows * plan->p->cube_cols *
                                                       plan->p->cube_deps)};
    double last_report = start;
    int64_t rounds = (list->count + size - 1) / size;
    for (int64_t round = 0; round < rounds; round++) {
        int64_t index = round * size + rank;
        batch.count = 0;
        int local = GEN_OK;
        if (index < list->count) {
            cubes_scan_record *r = &records[index];
            snprintf(r->path, sizeof r->path, "%s", list->paths[index]);
            snprintf(r->format, sizeof r->format, "%s", volume_format_name(volume_format_of_path(r->path)));
            r->split = split[index];
            local = prepare_scan(plan, index, split[index], r, &batch, bytes_read);
        }
        for (int64_t i = 0; local == GEN_OK && i < (int64_t)batch.cube_floats * batch.count; i++) {
            float x = batch.cubes[i];
            if (x < range[0]) range[0] = x;
            if (x > range[1]) range[1] = x;
        }
        CALL_GOTO(world_agree_shared(local));
        CALL_GOTO(cubes_writer_append(w, batch.cubes, batch.scan_index, batch.corner, batch.crop,
                                      batch.split, batch.count));
        double now = profile_now();
        int64_t done = (round + 1) * size < list->count ? (round + 1) * size : list->count;
        if (now - last_report > 2.0 || done == list->count) {
            log_info("prep: %lld/%lld scans, %lld cubes, %.2f scans/s", (long long)done,
                     (long long)list->count, (long long)cubes_writer_count(w), (double)done / (now - start));
            last_report = now;
        }
    }
cleanup:
    cube_batch_free(&batch);
    return status;
}

static int write_attributes(cubes_writer *w, const genesis_config *cfg, const struct prep_plan *plan,
                            const double range[2])
{
    const struct config_prep *p = &cfg->prep;
    CALL(cubes_writer_attr_text(w, "genesis_version", GENESIS_VERSION " (" GENESIS_GIT_COMMIT ")"));
    CALL(cubes_writer_attr_text(w, "normalize", norm_mode_name(plan->norm.mode)));
    double window[2] = {plan->norm.lo, plan->norm.hi}, pct[2] = {p->percentile_lo, p->percentile_hi};
    CALL(cubes_writer_attr_doubles(w, "window", window, 2));
    CALL(cubes_writer_attr_doubles(w, "percentiles", pct, 2));
    CALL(cubes_writer_attr_text(w, "filter", extract_filter_name(plan->extract.filter)));
    int64_t seed = p->seed, per_scan = p->cubes_per_scan, attempts = p->attempts_per_cube;
    int64_t borders[2] = {p->border_xy, p->border_z}, crops[MAX_CROP_SIZES];
    for (int i = 0; i < plan->crop_count; i++) crops[i] = plan->crop_sizes[i];
    CALL(cubes_writer_attr_ints(w, "seed", &seed, 1));
    CALL(cubes_writer_attr_ints(w, "cubes_per_scan", &per_scan, 1));
    CALL(cubes_writer_attr_ints(w, "attempts_per_cube", &attempts, 1));
    CALL(cubes_writer_attr_ints(w, "borders", borders, 2));
    CALL(cubes_writer_attr_ints(w, "crop_sizes", crops, plan->crop_count));
    CALL(cubes_writer_attr_doubles(w, "value_range", range, 2));
    int status = GEN_OK;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK_GOTO(mem != NULL, GEN_ERR_NOMEM, "out of memory for the config text");
    config_print(cfg, mem);
    CHECK_GOTO(fclose(mem) == 0, GEN_ERR_NOMEM, "out of memory for the config text");
    CALL_GOTO(cubes_writer_attr_text(w, "config", text));
cleanup:
    free(text);
    return status;
}

/* A collective error when no scan gave a cube. */
static int check_some_cubes(int64_t cubes, int64_t scans)
{
    if (cubes == 0) FAIL_ALL(GEN_ERR_DATA, "no cubes from any of the %lld scans", (long long)scans);
    return GEN_OK;
}

/* Rank 0, once the file is complete: the report's counts, the skipped scans listed, and the partial
 * file renamed to the output. */
static int finish_on_root(const struct config_prep *p, const cubes_scan_record *records, int64_t count,
                          int64_t cubes, const char *partial, struct prep_report *report)
{
    report->scans = count;
    report->cubes = cubes;
    for (int64_t i = 0; i < count; i++) {
        if (records[i].skipped[0]) report->scans_skipped++;
        else report->scans_used++;
        report->cubes_per_split[records[i].split] += records[i].cubes;
    }
    if (report->scans_skipped) {
        log_info("prep: %lld of %lld scans skipped:", (long long)report->scans_skipped, (long long)count);
        for (int64_t i = 0; i < count; i++)
            if (records[i].skipped[0]) log_info("  %s", records[i].skipped);
    }
    return atomic_file_commit(partial, p->output);
}

int prep_run(const genesis_config *cfg, struct prep_report *report)
{
    const struct config_prep *p = &cfg->prep;
    memset(report, 0, sizeof *report);
    double start = profile_now();
    int rank = world_rank(), size = world_size();
    struct prep_plan plan;
    CALL(gen_error_collective(make_plan(p, &plan))); /* same config on every rank */

    int status = GEN_OK;
    struct scan_list list = {0};
    int32_t *split = NULL;             /* [list.count] enum split of each scan */
    cubes_scan_record *records = NULL; /* [list.count] the /scans table; a rank fills its scans' rows */
    cubes_writer *w = NULL;
    char partial[CONFIG_PATH_MAX + 64] = "", lock[CONFIG_PATH_MAX + 8] = "";
    double range[2] = {1e30, -1e30};   /* [min, max] cube value: this rank's, then every rank's */

    /* Rank 0 checks the output and lists and splits the scans; everybody learns the outcome. */
    CALL_GOTO(world_agree_shared(rank == 0 ? list_and_split(p, &list, &split, lock, sizeof lock) : GEN_OK));
    CALL_GOTO(broadcast_scans(&list, &split));

    /* The partial file's name is the same on every rank: rank 0's pid makes it unique. */
    long id = (long)getpid();
    CALL_GOTO(world_broadcast(&id, sizeof id, 0));
    snprintf(partial, sizeof partial, "%s.partial-%ld", p->output, id);

    log_info("prep: %lld scans on %d rank(s) -> %s", (long long)list.count, size, p->output);
    /* GENESIS_FAULT=prep.records:RANK makes this allocation fail on that rank (a test). */
    records = fault_point("prep.records") == GEN_OK ? calloc((size_t)list.count, sizeof *records) : NULL;
    CALL_GOTO(world_agree_shared(check_allocated(records != NULL, "the scan table")));
    CALL_GOTO(world_agree_shared(cubes_writer_create(&w, partial, (int)p->cube_rows, (int)p->cube_cols,
                                                     (int)p->cube_deps)));
    CALL_GOTO(prepare_rounds(&plan, &list, split, records, w, range, &report->bytes_read, start));

    /* each rank filled its own rows of the scan table, zero bytes elsewhere: OR them onto rank 0 */
    CALL_GOTO(world_or_bytes_to_root((unsigned char *)records, (int)(sizeof *records * (size_t)list.count)));
    CALL_GOTO(world_min_doubles(&range[0], 1));
    CALL_GOTO(world_max_doubles(&range[1], 1));
    CALL_GOTO(world_sum_doubles(&report->bytes_read, 1));
    CALL_GOTO(cubes_writer_scans(w, records, list.count));
    CALL_GOTO(write_attributes(w, cfg, &plan, range));
    int64_t cubes = cubes_writer_count(w);
    CALL_GOTO(check_some_cubes(cubes, list.count));
    int close_status = cubes_writer_close(w);
    w = NULL;
    CALL_GOTO(world_agree_shared(close_status));
    if (rank == 0) CALL_GOTO(finish_on_root(p, records, list.count, cubes, partial, report));
cleanup:
    (void)cubes_writer_close(w); /* only after a failure; its partial file is removed below */
    if (rank == 0 && status != GEN_OK && partial[0]) unlink(partial);
    if (rank == 0) output_unlock(lock);
    status = world_agree_shared(status);
    report->seconds = profile_now() - start;
    free(records), free(list.paths), free(split);
    return status;
}
