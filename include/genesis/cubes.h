/* The cubes file (src/io/cubes.c): what `genesis prep` writes and `genesis train` reads.
 *
 *   /cubes       float32 [N, rows, cols, deps], values in [0, 1], chunked one cube per chunk
 *   /scan_index  int32 [N]     index of the source scan in /scans
 *   /corner      int32 [N, 3]  x, y, z of the crop's first voxel in the (prepared) scan
 *   /crop        int32 [N, 3]  crop size in scan voxels (rows, cols, deps + extra) before resizing
 *   /split       uint8 [N]     enum cube_split of the cube (the split of its scan)
 *   /scans       compound [S]  per scan: path, dims, spacing, split, cubes, skipped reason, format
 *   attributes of /: format_version, genesis_version, cube_shape, normalize, window, filter,
 *                    seed, cubes_per_scan, crop_sizes, borders, value_range, config (text)
 *
 * Cubes are in scan order (then extraction order), whatever the number of ranks that wrote them.
 * Writing is collective over all ranks; the file is written under a temporary name
 * and only renamed to its final name, by the caller, once closed complete.
 */
#ifndef GENESIS_CUBES_H
#define GENESIS_CUBES_H

#include <stddef.h>
#include <stdint.h>

#define CUBES_FORMAT_VERSION 1

enum cube_split { SPLIT_TRAIN = 0, SPLIT_VALIDATION = 1, SPLIT_TEST = 2 };
const char *cube_split_name(int split);

/* One row of /scans. Fixed-size text so that the table is plain data (MPI reductions, HDF5). */
typedef struct cubes_scan_record {
    char path[1024];
    int64_t dim[3];       /* voxels after any reorientation/resampling */
    double spacing[3];    /* mm */
    int32_t split;        /* enum cube_split */
    int32_t cubes;        /* cubes extracted */
    char skipped[256];    /* "" if used; otherwise why the scan gave no cubes */
    char format[16];      /* the scan's format: "nifti", "metaimage" or "dicom" (volume_format_name);
                           * files written before genesis read other formats have none: "nifti" */
} cubes_scan_record;

/* A cubes file being written (opaque: its HDF5 handles stay in src/io/cubes.c). Every writer
 * function is collective over all ranks of the job. */
typedef struct cubes_writer cubes_writer;

/* Creates the file (truncating) with empty, extendible datasets. */
int cubes_writer_create(cubes_writer **w, const char *path, int rows, int cols, int deps);
/* Every rank appends its n cubes (n may be 0); they land after the cubes already in the file,
 * rank 0's first. cubes [n, rows, cols, deps]; corner, crop [n, 3]. */
int cubes_writer_append(cubes_writer *w, const float *cubes, const int32_t *scan_index,
                        const int32_t *corner, const int32_t *crop, const uint8_t *split, int64_t n);
/* Writes /scans from rank 0's table (the other ranks' tables are ignored). */
int cubes_writer_scans(cubes_writer *w, const cubes_scan_record *scans, int64_t count);
/* Attributes of / (same values on every rank). */
int cubes_writer_attr_text(cubes_writer *w, const char *name, const char *text);
int cubes_writer_attr_ints(cubes_writer *w, const char *name, const int64_t *values, int n);
int cubes_writer_attr_doubles(cubes_writer *w, const char *name, const double *values, int n);
/* Cubes written so far, all ranks. */
int64_t cubes_writer_count(const cubes_writer *w);
/* Closes every handle and frees w (NULL is fine); reports a failed close. */
int cubes_writer_close(cubes_writer *w);

/* Reading. */
/* Who opens a cubes file: every rank of the job together (collective reads, as the trainer
 * does), or this rank alone (genesis info, preview). */
enum cubes_scope { CUBES_ALL_RANKS, CUBES_THIS_RANK };

struct cubes_handles; /* HDF5 file and dataset, private to src/io/cubes.c */

typedef struct cubes_file {
    struct cubes_handles *h5; /* NULL when not open */
    int64_t count;
    int rows, cols, deps;
    int format_version;
    uint8_t *split;       /* [count], owned */
    int32_t *scan_index;  /* [count], owned */
} cubes_file;

/* Opens and checks the format (version, float32 cubes, shapes, split values 0-2), reads /split and
 * /scan_index. Errors name the file. Collective over all ranks for CUBES_ALL_RANKS. */
int cubes_open(cubes_file *f, const char *path, enum cubes_scope scope);
/* The shared rule of cube sizes (config.h config_cube_size_ok): GEN_ERR_DATA naming `path` when the
 * file's cubes are not ones train and preview can use. */
int cubes_check_trainable(const cubes_file *f, const char *path);
/* Collective for CUBES_ALL_RANKS: reads the cubes with the given indices (n may differ per rank, also 0) into
 * out [n, rows, cols, deps]. */
int cubes_read(cubes_file *f, float *out, const int64_t *indices, int64_t n);
/* Reads text/ints/doubles attributes of / (for genesis info). */
int cubes_read_attr_text(const cubes_file *f, const char *name, char *out, size_t size);
int cubes_read_attr_doubles(const cubes_file *f, const char *name, double *out, int n);
/* Reads /scans (allocates *scans; caller frees). */
int cubes_read_scans(const cubes_file *f, cubes_scan_record **scans, int64_t *count);
/* Closes and frees what cubes_open made; safe on a zeroed or failed cubes_file. */
void cubes_close(cubes_file *f);

#endif
