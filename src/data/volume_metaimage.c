/* Reading MetaImage scans (.mhd + data file(s), .mha): the voxels and the geometry, from a header
 * parsed by src/data/volume_metaimage_header.c (src/data/metaimage.h).
 *
 * Why not ITK: Debian has no small, well-kept C library for MetaImage (MetaIO ships inside ITK, a
 * large C++ toolkit that would be genesis's biggest dependency for a format of a few keys). The
 * header is parsed here; zlib (already linked for gzip checks) inflates CompressedData.
 *
 * Every size the header declares is checked against the data file before anything is allocated:
 * an uncompressed file must hold all declared bytes; compressed data cannot inflate to more than
 * ~1032 times its size (deflate's limit), so a larger declaration is refused as corrupt. */
#include "genesis/volume.h"

#include "genesis/error.h"
#include "metaimage.h"
#include "volume_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "nifti2_io.h"

enum { CHUNK = 1 << 20 };
/* deflate turns at most 1032 bytes into 1 (zlib's documented worst-case ratio); + stream overhead */
#define MAX_INFLATE_RATIO 1032

/* Bytes of voxels in each data file and the files that must be there, from the header. */
static int plan_files(const char *path, const metaimage_header *h, size_t *per_file, size_t *files)
{
    size_t voxels = (size_t)h->dim[0] * (size_t)h->dim[1], total = voxels * (size_t)h->dim[2];
    CHECK((double)h->dim[0] * (double)h->dim[1] * (double)h->dim[2] * h->bytes_per_voxel < 1e15, GEN_ERR_DATA,
          "%s: DimSize %lldx%lldx%lld is too large", path, (long long)h->dim[0], (long long)h->dim[1],
          (long long)h->dim[2]);
    *per_file = total * (size_t)h->bytes_per_voxel;
    *files = 1;
    if (h->kind == METAIMAGE_LIST && h->list_dims == 2) {
        *per_file = voxels * (size_t)h->bytes_per_voxel;
        *files = (size_t)h->dim[2];
    }
    if (h->kind == METAIMAGE_LIST)
        CHECK(h->file_count == *files, GEN_ERR_DATA,
              "%s: ElementDataFile = LIST names %zu files; DimSize %lldx%lldx%lld needs %zu of %dD", path,
              h->file_count, (long long)h->dim[0], (long long)h->dim[1], (long long)h->dim[2], *files,
              h->list_dims);
    return GEN_OK;
}

/* Inflates from f (at its position, `available` bytes) the first `want` bytes of voxels into out. */
static int inflate_exact(const char *path, const char *data, FILE *f, int64_t available, unsigned char *out,
                         size_t want)
{
    int status = GEN_OK;
    z_stream z;
    memset(&z, 0, sizeof z);
    unsigned char *in = malloc(CHUNK);
    CHECK_ALLOC(in, (size_t)CHUNK);
    int zret = inflateInit2(&z, 15 + 32); /* zlib or gzip wrapper, detected */
    CHECK_GOTO(zret == Z_OK, GEN_ERR_NOMEM, "%s: cannot start zlib: %d", path, zret);
    int64_t left = available;
    z.next_out = out;
    while ((size_t)(z.next_out - out) < want) {
        if (z.avail_in == 0 && left > 0) {
            size_t got = fread(in, 1, left < CHUNK ? (size_t)left : (size_t)CHUNK, f);
            CHECK_GOTO(got > 0, GEN_ERR_IO, "%s: cannot read %s: %s", path, data,
                       ferror(f) ? strerror(errno) : "end of file");
            left -= (int64_t)got;
            z.next_in = in;
            z.avail_in = (uInt)got;
        }
        size_t room = want - (size_t)(z.next_out - out);
        z.avail_out = room < (size_t)CHUNK ? (uInt)room : (uInt)CHUNK;
        zret = inflate(&z, Z_NO_FLUSH);
        if (zret == Z_STREAM_END) break;
        CHECK_GOTO(zret == Z_OK || zret == Z_BUF_ERROR, GEN_ERR_DATA,
                   "%s: corrupt compressed data in %s (zlib: %s)", path, data, z.msg ? z.msg : "error");
        CHECK_GOTO(z.avail_in > 0 || left > 0 || z.avail_out == 0, GEN_ERR_DATA,
                   "%s: truncated compressed data in %s: it ends after %zu of %zu bytes of voxels", path, data,
                   (size_t)(z.next_out - out), want);
    }
    size_t done = (size_t)(z.next_out - out);
    CHECK_GOTO(done == want, GEN_ERR_DATA, "%s: compressed data in %s holds %zu of the %zu bytes of voxels the "
               "header declares", path, data, done, want);
cleanup:
    inflateEnd(&z);
    free(in);
    return status;
}

/* Where the `want` bytes of voxels of data file `data` are: *start, the first byte (from HeaderSize,
 * -1: the last bytes of the file; or `local` >= 0, the LOCAL data's position), and *available, the
 * bytes there. Checked against the file's size before anything is allocated: raw voxels must all be
 * there; compressed ones cannot inflate beyond deflate's ratio. */
static int data_extent(const char *path, const metaimage_header *h, const char *data, int64_t local, size_t want,
                       int64_t *start, int64_t *available)
{
    struct stat st;
    CHECK(stat(data, &st) == 0, GEN_ERR_IO, "%s: cannot open data file %s: %s", path, data, strerror(errno));
    CHECK(S_ISREG(st.st_mode), GEN_ERR_IO, "%s: data file %s is not a regular file", path, data);
    int64_t size = (int64_t)st.st_size;
    *start = local >= 0 ? local : h->header_size >= 0 ? h->header_size
           : size - (h->compressed ? h->compressed_size : (int64_t)want); /* HeaderSize = -1 */
    CHECK(*start >= 0 && *start <= size, GEN_ERR_DATA,
          "%s: truncated or short data: %s has %lld bytes, the header declares %zu bytes of voxels%s", path, data,
          (long long)size, want,
          h->header_size > 0 ? " after HeaderSize" : "");
    *available = size - *start;
    if (h->compressed && h->compressed_size >= 0 && h->compressed_size < *available)
        *available = h->compressed_size;
    if (h->compressed)
        CHECK((double)want <= (double)*available * MAX_INFLATE_RATIO + 4096.0, GEN_ERR_DATA,
              "%s: corrupt header: %zu bytes of voxels declared, but %s holds only %lld bytes of compressed data",
              path, want, data, (long long)*available);
    else
        CHECK((uint64_t)*available >= (uint64_t)want, GEN_ERR_DATA,
              "%s: truncated or short data: %s has %lld bytes from byte %lld, the header declares "
              "%lldx%lldx%lld voxels of %d bytes = %zu bytes", path, data, (long long)*available,
              (long long)*start, (long long)h->dim[0], (long long)h->dim[1], (long long)h->dim[2],
              h->bytes_per_voxel, want);
    return GEN_OK;
}

/* Reads the `want` bytes of voxels of data file `data` (data_extent) into out. */
static int read_data_file(const char *path, const metaimage_header *h, const char *data, int64_t local,
                          unsigned char *out, size_t want)
{
    int64_t start = 0, available = 0;
    CALL(data_extent(path, h, data, local, want, &start, &available));
    FILE *f = fopen(data, "rb");
    CHECK(f != NULL, GEN_ERR_IO, "%s: cannot open data file %s: %s", path, data, strerror(errno));
    int status = GEN_OK;
    CHECK_GOTO(fseeko(f, (off_t)start, SEEK_SET) == 0, GEN_ERR_IO, "%s: cannot seek in %s: %s", path, data,
               strerror(errno));
    if (h->compressed) {
        CALL_GOTO(inflate_exact(path, data, f, available, out, want));
    } else {
        size_t got = fread(out, 1, want, f);
        CHECK_GOTO(got == want, GEN_ERR_IO, "%s: cannot read %s: read %zu of %zu bytes", path, data, got, want);
    }
cleanup:
    fclose(f);
    return status;
}

/* The raw voxel bytes of every data file, in file order, into *out (allocated; native byte order). */
static int load_voxels(const char *path, const metaimage_header *h, unsigned char **out)
{
    size_t per_file = 0, files = 0;
    CALL(plan_files(path, h, &per_file, &files));
    size_t total = per_file * files;
    int64_t start = 0, available = 0;
    for (size_t i = 0; i < files; i++) /* every size checked before the allocation */
        CALL(data_extent(path, h, h->kind == METAIMAGE_LOCAL ? path : h->files[i],
                         h->kind == METAIMAGE_LOCAL ? h->local_offset : -1, per_file, &start, &available));
    *out = malloc(total ? total : 1);
    CHECK(*out != NULL, GEN_ERR_NOMEM, "%s: out of memory allocating %zu bytes of voxels", path, total);
    int status = GEN_OK;
    if (h->kind == METAIMAGE_LOCAL) {
        CALL_GOTO(read_data_file(path, h, path, h->local_offset, *out, total));
    } else {
        for (size_t i = 0; i < files; i++)
            CALL_GOTO(read_data_file(path, h, h->files[i], -1, *out + i * per_file, per_file));
    }
    const uint16_t probe = 1;
    int host_msb = *(const unsigned char *)&probe == 0;
    if (h->bytes_per_voxel > 1 && h->msb != host_msb)
        nifti_swap_Nbytes((int64_t)(total / (size_t)h->bytes_per_voxel), h->bytes_per_voxel, *out);
cleanup:
    if (status != GEN_OK) free(*out), *out = NULL;
    return status;
}

/* affine (NIfTI RAS+) from the LPS geometry: x and y rows negated, as ITK -> NIfTI conversions do. */
static void set_geometry(volume *v, const metaimage_header *h)
{
    static const double lps_to_ras[3] = {-1.0, -1.0, 1.0};
    volume_affine_identity(v->affine);
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++) v->affine[r][c] = lps_to_ras[r] * h->direction[r][c] * h->spacing[c];
        v->affine[r][3] = lps_to_ras[r] * h->offset[r];
        v->spacing[r] = h->spacing[r];
        v->dim[r] = h->dim[r];
    }
    v->affine_code = NIFTI_XFORM_SCANNER_ANAT;
}

int volume_read_metaimage(volume *v, const char *path)
{
    memset(v, 0, sizeof *v);
    metaimage_header h;
    CALL(metaimage_read_header(path, &h));
    int status = GEN_OK;
    unsigned char *raw = NULL;
    CALL_GOTO(load_voxels(path, &h, &raw));
    size_t n = (size_t)(h.dim[0] * h.dim[1] * h.dim[2]);
    v->data = malloc(n * sizeof(float));
    CHECK_GOTO(v->data != NULL, GEN_ERR_NOMEM, "%s: out of memory allocating %zu bytes", path, n * sizeof(float));
    volume_converter_for(h.datatype)(v->data, raw, h.dim[0], h.dim[1], h.dim[2], 1.0, 0.0);
    set_geometry(v, &h);
    v->source_datatype = h.datatype;
    v->source_format = VOLUME_FORMAT_METAIMAGE;
    CALL_GOTO(volume_check_finite(path, v));
cleanup:
    free(raw);
    metaimage_header_free(&h);
    if (status != GEN_OK) volume_free(v);
    return status;
}
