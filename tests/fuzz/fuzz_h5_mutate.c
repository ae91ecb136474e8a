/* The structured mode of fuzz_h5 (fuzz_h5_mutate.h).
 *
 * An input is a base selector byte, then changes of 8 bytes each:
 *   [0] kind % 4: 0 remove an object (dataset or group), 1 remove an attribute,
 *                 2 replace a dataset, 3 replace an attribute (same name, new type, shape, value)
 *   [1..2] which object or attribute (index modulo the base's list, big-endian)
 *   [3] rank (% 6; attributes % 3), [4..5] the extents (small; when [6] bit 7 is set, extent d is
 *   shifted left by 24 or 28 bits if bit d of [7] is set: huge, never written), [6] % 10 the dtype
 *   (make_type), [7] the value bytes' pattern.
 * Datasets are replaced without data (HDF5 reads them as fill values: 0 or the pattern). */
#include "fuzz_h5_mutate.h"

#include "genesis/checkpoint.h"
#include "genesis/cubes.h"
#include "genesis/error.h"
#include "genesis/weights.h"

#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_NAMES = 512 };

struct base {
    char path[PATH_MAX];
    unsigned char *bytes;
    size_t size;
    int objects, attributes;
    char object[MAX_NAMES][160];                 /* datasets and groups ("/state", "/params/x") */
    char attr_owner[MAX_NAMES][160], attr[MAX_NAMES][64];
};
static struct base bases[FUZZ_H5_BASES];

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_h5: %s: %s\n", what, gen_error_message());
        abort();
    }
}

static herr_t list_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)loc, (void)info;
    struct base *b = data;
    if (b->attributes < MAX_NAMES) {
        snprintf(b->attr[b->attributes], sizeof b->attr[0], "%s", name);
        snprintf(b->attr_owner[b->attributes], sizeof b->attr_owner[0], "%s", b->object[b->objects - 1]);
        b->attributes++;
    }
    return 0;
}

static herr_t list_object(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    (void)info;
    struct base *b = data;
    if (b->objects >= MAX_NAMES) return 0;
    snprintf(b->object[b->objects++], sizeof b->object[0], "/%s", strcmp(name, ".") ? name : "");
    hid_t obj = H5Oopen(root, name, H5P_DEFAULT);
    if (obj >= 0) {
        H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, list_attr, b);
        H5Oclose(obj);
    }
    return 0;
}

static void finish_base(struct base *b)
{
    hid_t file = H5Fopen(b->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    must(file >= 0, "cannot reopen a base file");
    H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, list_object, b, H5O_INFO_BASIC);
    H5Fclose(file);
    FILE *f = fopen(b->path, "rb");
    must(f != NULL, "cannot read a base file");
    fseek(f, 0, SEEK_END);
    b->size = (size_t)ftell(f);
    rewind(f);
    b->bytes = malloc(b->size);
    must(b->bytes && fread(b->bytes, 1, b->size, f) == b->size, "cannot read a base file");
    fclose(f);
}

static void make_cubes(struct base *b)
{
    enum { N = 3, SIDE = 8 };
    static float cubes[N * SIDE * SIDE * SIDE];
    int32_t scan_index[N] = {0, 0, 1}, corner[N * 3] = {0}, crop[N * 3] = {8, 8, 8, 8, 8, 8, 8, 8, 8};
    uint8_t split[N] = {0, 0, 1};
    for (size_t i = 0; i < sizeof cubes / sizeof cubes[0]; i++) cubes[i] = (float)(i % 7) / 7.0f;
    cubes_scan_record scans[2] = {{.path = "a.nii.gz", .dim = {32, 32, 16}, .spacing = {1, 1, 1.5}, .cubes = 2},
                                  {.path = "b.nii.gz", .dim = {32, 32, 16}, .spacing = {1, 1, 1.5}, .split = 1,
                                   .cubes = 1}};
    double pair[2] = {0, 1};
    cubes_writer *w = NULL;
    must(cubes_writer_create(&w, b->path, SIDE, SIDE, SIDE) == GEN_OK, "cubes_writer_create");
    must(cubes_writer_append(w, cubes, scan_index, corner, crop, split, N) == GEN_OK, "cubes_writer_append");
    must(cubes_writer_scans(w, scans, 2) == GEN_OK, "cubes_writer_scans");
    must(cubes_writer_attr_text(w, "genesis_version", "0.1.0 (fuzz)") == GEN_OK, "attr");
    must(cubes_writer_attr_text(w, "normalize", "ct") == GEN_OK, "attr");
    must(cubes_writer_attr_text(w, "filter", "none") == GEN_OK, "attr");
    must(cubes_writer_attr_doubles(w, "value_range", pair, 2) == GEN_OK, "attr");
    must(cubes_writer_attr_doubles(w, "window", pair, 2) == GEN_OK, "attr");
    must(cubes_writer_attr_doubles(w, "percentiles", pair, 2) == GEN_OK, "attr");
    must(cubes_writer_close(w) == GEN_OK, "cubes_writer_close");
}

static void make_forward(struct base *b)
{
    hsize_t dims[5] = {1, 1, 8, 8, 8};
    static float x[512];
    hid_t file = H5Fcreate(b->path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(5, dims, NULL);
    hid_t dset = H5Dcreate2(file, "input", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    must(dset >= 0 && H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0, "forward file");
    H5Dclose(dset), H5Sclose(space), H5Fclose(file);
}

void fuzz_h5_make_bases(const char *dir, model *m, const optimizer *o)
{
    static const char *const names[FUZZ_H5_BASES] = {"cubes", "checkpoint", "weights", "forward"};
    for (int i = 0; i < FUZZ_H5_BASES; i++)
        snprintf(bases[i].path, sizeof bases[i].path, "%s/genesis-fuzz-base-%ld-%s.h5", dir, (long)getpid(),
                 names[i]);
    make_cubes(&bases[0]);
    train_state st = {.epoch = 1, .global_step = 2, .lr = 0.1, .best_loss = 0.5, .best_identity = 0.6,
                      .optimizer_kind = OPTIM_SGD};
    must(checkpoint_write(bases[1].path, m, o, &st, "[train]\nbatch = 2\n") == GEN_OK, "checkpoint_write");
    must(weights_write(bases[2].path, m) == GEN_OK, "weights_write");
    make_forward(&bases[3]);
    for (int i = 0; i < FUZZ_H5_BASES; i++) {
        finish_base(&bases[i]);
        remove(bases[i].path);
    }
}

/* The dtypes a replaced dataset or attribute gets (closed by the caller when not predefined). */
static hid_t make_type(int which, int text_size, int *owned)
{
    *owned = 0;
    static const hid_t *const fixed[] = {&H5T_NATIVE_INT64_g, &H5T_NATIVE_INT32_g, &H5T_NATIVE_UINT8_g,
                                         &H5T_NATIVE_FLOAT_g, &H5T_NATIVE_DOUBLE_g, &H5T_STD_I16BE_g,
                                         &H5T_NATIVE_UINT64_g};
    if (which < 7) return *fixed[which];
    *owned = 1;
    if (which == 7) { /* fixed-length text */
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, (size_t)(text_size % 40 + 1));
        return t;
    }
    if (which == 8) { /* variable-length text */
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        return t;
    }
    hid_t t = H5Tcreate(H5T_COMPOUND, 16); /* a record where a number was expected */
    H5Tinsert(t, "a", 0, H5T_NATIVE_INT64);
    H5Tinsert(t, "b", 8, H5T_NATIVE_DOUBLE);
    return t;
}

static void apply(hid_t file, const struct base *b, const uint8_t *op)
{
    int kind = op[0] % 4, index = (op[1] << 8) | op[2], huge = op[6] & 0x80, dtype = (op[6] & 0x7f) % 10;
    hsize_t dims[5];
    for (int d = 0; d < 5; d++) dims[d] = (hsize_t)(d < 2 ? op[4 + d] : op[4 + d % 2] % 9 + 1);
    for (int d = 0; huge && d < 5; d++)
        if ((op[7] >> d) & 1) dims[d] <<= 24 + 4 * (d % 2);
    int owned;
    if ((kind == 0 || kind == 2) && b->objects > 1) {
        const char *name = b->object[1 + index % (b->objects - 1)]; /* never the root */
        H5O_info_t info;
        int dataset = H5Oget_info_by_name2(file, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
                      info.type == H5O_TYPE_DATASET;
        if (kind == 2 && !dataset) return;
        H5Ldelete(file, name, H5P_DEFAULT);
        if (kind == 0) return;
        hid_t type = make_type(dtype, op[7], &owned);
        hid_t space = op[3] % 6 ? H5Screate_simple(op[3] % 6, dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (dtype < 7) {
            unsigned char fill[8];
            memset(fill, op[7], sizeof fill);
            H5Pset_fill_value(dcpl, type, fill);
        }
        hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (dset >= 0) H5Dclose(dset);
        H5Pclose(dcpl), H5Sclose(space);
        if (owned) H5Tclose(type);
        return;
    }
    if (kind == 1 || kind == 3) {
        if (b->attributes == 0) return;
        int a = index % b->attributes;
        hid_t owner = H5Oopen(file, b->attr_owner[a], H5P_DEFAULT);
        if (owner < 0) return;
        H5Adelete(owner, b->attr[a]);
        if (kind == 3) {
            hid_t type = make_type(dtype, op[5], &owned);
            hsize_t n = op[4] % 5;
            hid_t space = op[3] % 3 == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
            unsigned char value[4 * 64];
            for (size_t i = 0; i < sizeof value; i++) value[i] = (unsigned char)(op[7] + i * (op[5] | 1));
            const char *texts[4] = {"ct", "", "mri_minmax", "none"};
            const void *data = value;
            if (dtype == 8) data = texts; /* variable-length text: pointers */
            hid_t attr = H5Acreate2(owner, b->attr[a], type, space, H5P_DEFAULT, H5P_DEFAULT);
            if (attr >= 0) {
                H5Awrite(attr, type, data);
                H5Aclose(attr);
            }
            H5Sclose(space);
            if (owned) H5Tclose(type);
        }
        H5Oclose(owner);
    }
}

void fuzz_h5_mutate(const uint8_t *data, size_t size, const char *path)
{
    const struct base *b = &bases[data[0] % FUZZ_H5_BASES];
    FILE *f = fopen(path, "wb");
    must(f && fwrite(b->bytes, 1, b->size, f) == b->size && fclose(f) == 0, "cannot write the mutated file");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    must(file >= 0, "cannot open the mutated file");
    for (size_t at = 1; at + 8 <= size; at += 8) apply(file, b, data + at);
    H5Fclose(file);
}
