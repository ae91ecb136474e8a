/* Reading and writing NIfTI volumes (src/data/volume.c): every voxel type, NIfTI-1 and -2, .nii,
 * .nii.gz, .hdr/.img; scaling; dimensionality; truncated/corrupt gzip; NaN; reorientation;
 * resampling. Test files are written here with libnifti directly, not with the code under test. */
#include "check.h"

#include "genesis/error.h"
#include "genesis/volume.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "nifti2_io.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) { return test_path_in(tmpdir, name); }

/* The value stored at voxel (x, y, z) of the test pattern: small, distinct, fits every type. */
static double pattern(int x, int y, int z, int is_signed)
{
    return (double)(x + 5 * y + 20 * z) - (is_signed ? 30.0 : 0.0);
}

static void store(void *data, int datatype, size_t i, double val)
{
    switch (datatype) {
    case DT_UINT8: ((uint8_t *)data)[i] = (uint8_t)val; break;
    case DT_INT8: ((int8_t *)data)[i] = (int8_t)val; break;
    case DT_INT16: ((int16_t *)data)[i] = (int16_t)val; break;
    case DT_UINT16: ((uint16_t *)data)[i] = (uint16_t)val; break;
    case DT_INT32: ((int32_t *)data)[i] = (int32_t)val; break;
    case DT_UINT32: ((uint32_t *)data)[i] = (uint32_t)val; break;
    case DT_INT64: ((int64_t *)data)[i] = (int64_t)val; break;
    case DT_UINT64: ((uint64_t *)data)[i] = (uint64_t)val; break;
    case DT_FLOAT32: ((float *)data)[i] = (float)val; break;
    case DT_FLOAT64: ((double *)data)[i] = val; break;
    case DT_FLOAT128: ((long double *)data)[i] = (long double)val; break;
    default: break;
    }
}

/* Writes nim to path. NIfTI-1 through libnifti's writer; NIfTI-2 from libnifti's header conversion
 * with the file laid out here (libnifti 3.0.1's writer loses single-file NIfTI-2 headers). */
static void write_any_nifti(nifti_image *nim, const char *path)
{
    if (nim->nifti_type != NIFTI_FTYPE_NIFTI2_1 && nim->nifti_type != NIFTI_FTYPE_NIFTI2_2) {
        nifti_image_write(nim);
        return;
    }
    int pair = nim->nifti_type == NIFTI_FTYPE_NIFTI2_2;
    nifti_2_header hdr;
    nifti_convert_nim2n2hdr(nim, &hdr);
    hdr.vox_offset = pair ? 0 : 544;
    memcpy(hdr.magic, pair ? "ni2\0\r\n\032\n" : "n+2\0\r\n\032\n", 8);
    char ext[4] = {0, 0, 0, 0};
    znzFile f = znzopen(path, "wb", nifti_is_gzfile(path));
    znzwrite(&hdr, 1, sizeof hdr, f);
    znzwrite(ext, 1, 4, f);
    if (pair) {
        znzclose(f);
        f = znzopen(nim->iname, "wb", nifti_is_gzfile(nim->iname));
    }
    znzwrite(nim->data, 1, (size_t)(nim->nvox * nim->nbyper), f);
    znzclose(f);
}

/* Writes an nx x ny x nz (x nt) image of `datatype` with the pattern (NIfTI order: x fastest). */
static void write_test_nifti(const char *path, int nifti_type, int datatype, int64_t ndim,
                             const int64_t n[4], double slope, double inter, int is_signed)
{
    int64_t dims[8] = {ndim, n[0], n[1], n[2], n[3], 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, datatype, 1);
    nim->scl_slope = slope;
    nim->scl_inter = inter;
    nim->pixdim[1] = nim->dx = 0.5;
    nim->pixdim[2] = nim->dy = 0.75;
    nim->pixdim[3] = nim->dz = 2.0;
    size_t vol = (size_t)(n[0] * n[1] * n[2]);
    for (int64_t t = 0; t < (ndim >= 4 ? n[3] : 1); t++)
        for (int z = 0; z < n[2]; z++)
            for (int y = 0; y < n[1]; y++)
                for (int x = 0; x < n[0]; x++)
                    store(nim->data, datatype,
                          (size_t)t * vol + (size_t)(x + n[0] * (y + n[1] * z)),
                          pattern(x, y, z, is_signed));
    nim->nifti_type = nifti_type;
    nifti_set_filenames(nim, path, 0, 1);
    nim->nifti_type = nifti_type;
    write_any_nifti(nim, path);
    nifti_image_free(nim);
}

static int message_has(const char *needle)
{
    return strstr(gen_error_message(), needle) != NULL;
}

static void test_voxel_types(void)
{
    static const struct { int dt; int is_signed; } types[] = {
        {DT_UINT8, 0}, {DT_INT8, 1}, {DT_INT16, 1}, {DT_UINT16, 0}, {DT_INT32, 1}, {DT_UINT32, 0},
        {DT_INT64, 1}, {DT_UINT64, 0}, {DT_FLOAT32, 1}, {DT_FLOAT64, 1}, {DT_FLOAT128, 1}};
    static const struct { const char *ext; int type; } formats[] = {
        {"nii", NIFTI_FTYPE_NIFTI1_1}, {"nii.gz", NIFTI_FTYPE_NIFTI1_1},
        {"hdr", NIFTI_FTYPE_NIFTI1_2}, {"nii", NIFTI_FTYPE_NIFTI2_1},
        {"nii.gz", NIFTI_FTYPE_NIFTI2_1}, {"hdr", NIFTI_FTYPE_NIFTI2_2}};
    const int64_t n[4] = {5, 4, 3, 1};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++)
            for (int scaled = 0; scaled < 3; scaled++) {
                /* scaled 0: slope 0 (none, even with an intercept); 1: 2.5 / -3; 2: 1 / 0 */
                double slope = scaled == 0 ? 0.0 : (scaled == 1 ? 2.5 : 1.0);
                double inter = scaled == 0 ? 7.0 : (scaled == 1 ? -3.0 : 0.0);
                char name[64];
                snprintf(name, sizeof name, "t%d_f%zu_s%d.%s", types[t].dt, f, scaled,
                         formats[f].ext);
                const char *path = tmp_path(name);
                write_test_nifti(path, formats[f].type, types[t].dt, 3, n, slope, inter,
                                 types[t].is_signed);
                volume v;
                int st = volume_read(&v, path, NULL);
                EXPECT(st == GEN_OK, "%s: %s", path, gen_error_message());
                if (st != GEN_OK) continue;
                EXPECT(v.dim[0] == 5 && v.dim[1] == 4 && v.dim[2] == 3, "%s dims", path);
                EXPECT(v.source_datatype == types[t].dt, "%s datatype %d", path, v.source_datatype);
                EXPECT(v.source_nifti_type == formats[f].type, "%s nifti_type %d (want %d)", path,
                       v.source_nifti_type, formats[f].type);
                EXPECT_NEAR(v.spacing[0], 0.5, 1e-12, "dx");
                EXPECT_NEAR(v.spacing[2], 2.0, 1e-12, "dz");
                int bad = 0;
                for (int x = 0; x < 5; x++)
                    for (int y = 0; y < 4; y++)
                        for (int z = 0; z < 3; z++) {
                            double raw = pattern(x, y, z, types[t].is_signed);
                            double want = slope == 0.0 ? raw : slope * raw + inter;
                            bad += v.data[(x * 4 + y) * 3 + z] != (float)want;
                        }
                EXPECT(bad == 0, "%s: %d voxels differ (type %s, slope %g)", path, bad,
                       nifti_datatype_string(types[t].dt), slope);
                volume_free(&v);
            }
}

static void test_dimensionality(void)
{
    const char *p4 = tmp_path("single4d.nii.gz");
    const int64_t n1[4] = {6, 5, 4, 1};
    write_test_nifti(p4, NIFTI_FTYPE_NIFTI1_1, DT_INT16, 4, n1, 0, 0, 1);
    volume v;
    EXPECT_OK(volume_read(&v, p4, NULL));
    EXPECT(v.dim[0] == 6 && v.dim[1] == 5 && v.dim[2] == 4, "4-D single volume dims");
    EXPECT(v.data != NULL && v.data[(2 * 5 + 3) * 4 + 1] == (float)pattern(2, 3, 1, 1),
           "4-D single volume values");
    volume_free(&v);

    const char *pm = tmp_path("multi4d.nii");
    const int64_t n2[4] = {6, 5, 4, 3};
    write_test_nifti(pm, NIFTI_FTYPE_NIFTI1_1, DT_INT16, 4, n2, 0, 0, 1);
    int st = volume_read(&v, pm, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(pm) && message_has("3 volumes"), "4-D x3: %d %s", st,
           gen_error_message());
    EXPECT(v.data == NULL, "failed read leaves the volume empty");

    const char *p2 = tmp_path("flat2d.nii");
    const int64_t n3[4] = {6, 5, 1, 1};
    write_test_nifti(p2, NIFTI_FTYPE_NIFTI1_1, DT_FLOAT32, 2, n3, 0, 0, 1);
    st = volume_read(&v, p2, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(p2) && message_has("2-D"), "2-D: %d %s", st,
           gen_error_message());
    const char *p1 = tmp_path("voxel.nii");
    const int64_t one_voxel[4] = {1, 1, 1, 1};
    write_test_nifti(p1, NIFTI_FTYPE_NIFTI1_1, DT_FLOAT32, 3, one_voxel, 0, 0, 1);
    st = volume_read(&v, p1, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has("a single voxel (1x1x1") && !message_has("2-D"),
           "1x1x1: %d %s", st, gen_error_message());

    const char *pc = tmp_path("complex.nii");
    int64_t dims[8] = {3, 4, 4, 4, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_COMPLEX64, 1);
    nifti_set_filenames(nim, pc, 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);
    st = volume_read(&v, pc, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(pc) && message_has("not supported"), "complex: %s",
           gen_error_message());
}

static int read_file(const char *path, unsigned char **buf, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 1;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)*len);
    size_t got = fread(*buf, 1, (size_t)*len, f);
    fclose(f);
    return got != (size_t)*len;
}

static void write_file(const char *path, const unsigned char *buf, long len)
{
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)len, f);
    fclose(f);
}

/* A 40^3 float volume of pseudo-random values (compresses poorly, so damage hits deflate data). */
static void make_noise_volume(volume *v)
{
    const int64_t dim[3] = {40, 40, 40};
    const double sp[3] = {1, 1, 1};
    volume_alloc(v, dim, sp);
    uint32_t s = 12345;
    for (size_t i = 0; i < 40 * 40 * 40; i++) {
        s = s * 1664525u + 1013904223u;
        v->data[i] = (float)(s >> 8) / 16777216.0f * 2000.0f - 1000.0f;
    }
}

static void test_damaged_files(void)
{
    volume v, r;
    make_noise_volume(&v);
    const char *good = tmp_path("good.nii.gz");
    EXPECT_OK(volume_write(&v, good, NULL));
    EXPECT_OK(volume_read(&r, good, NULL));
    EXPECT(r.data && memcmp(r.data, v.data, sizeof(float) * 40 * 40 * 40) == 0, "float round trip");
    volume_free(&r);
    unsigned char *buf = NULL;
    long len = 0;
    EXPECT(read_file(good, &buf, &len) == 0 && len > 1000, "read back %ld bytes", len);

    /* Truncated in the data, in the header, and only the gzip trailer (CRC + length). */
    const long cuts[3] = {len / 2, 100, len - 4};
    for (int c = 0; c < 3; c++) {
        char name[64];
        snprintf(name, sizeof name, "truncated%d.nii.gz", c);
        const char *p = tmp_path(name);
        write_file(p, buf, cuts[c]);
        int st = volume_read(&r, p, NULL);
        EXPECT(st == GEN_ERR_DATA && message_has(p), "truncated at %ld: status %d, '%s'", cuts[c],
               st, gen_error_message());
        EXPECT(strncmp(gen_error_message(), p, strlen(p)) == 0, "message starts with the file: %s",
               gen_error_message());
    }
    /* Corrupt: bytes flipped in the middle of the compressed data, and in the stored CRC. */
    const long flips[2] = {len / 2, len - 6};
    for (int c = 0; c < 2; c++) {
        char name[64];
        snprintf(name, sizeof name, "corrupt%d.nii.gz", c);
        const char *p = tmp_path(name);
        unsigned char *copy = malloc((size_t)len);
        memcpy(copy, buf, (size_t)len);
        for (int k = 0; k < 4; k++) copy[flips[c] + k] ^= 0xA5;
        write_file(p, copy, len);
        free(copy);
        int st = volume_read(&r, p, NULL);
        EXPECT(st == GEN_ERR_DATA && message_has(p), "corrupt at %ld: status %d, '%s'", flips[c],
               st, gen_error_message());
        EXPECT(!message_has("18446744073709551615"), "corrupt at %ld: zlib's -1 is not a byte count: '%s'",
               flips[c], gen_error_message());
    }
    free(buf);

    /* NaN and Inf voxels (Inf via scaling a finite float64 beyond float range). */
    v.data[(1 * 40 + 2) * 40 + 3] = NAN;
    const char *pn = tmp_path("nan.nii");
    EXPECT_OK(volume_write(&v, pn, NULL));
    int st = volume_read(&r, pn, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(pn) && message_has("non-finite") &&
               message_has("(1, 2, 3)"),
           "NaN: %s", gen_error_message());
    volume_free(&v);
    const char *pi = tmp_path("inf.nii");
    const int64_t n[4] = {4, 4, 4, 1};
    write_test_nifti(pi, NIFTI_FTYPE_NIFTI1_1, DT_FLOAT64, 3, n, 1e37, 0, 1); /* 1e37 * 100 */
    st = volume_read(&r, pi, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has("non-finite"), "Inf after scaling: %s",
           gen_error_message());

    /* A header declaring 30000^3 voxels on a tiny file (.nii, then its .gz): a data error naming the
     * scan and the declared size, before any allocation (not "out of memory"). */
    const char *ph = tmp_path("huge.nii");
    write_test_nifti(ph, NIFTI_FTYPE_NIFTI1_1, DT_INT16, 3, n, 1, 0, 0);
    unsigned char *hdr = NULL;
    long hlen = 0;
    EXPECT(read_file(ph, &hdr, &hlen) == 0 && hlen > 48, "read back %s", ph);
    for (int d = 1; d <= 3 && hlen > 48; d++) { /* NIfTI-1: short dim[8] at byte 40 */
        short big = 30000;
        memcpy(hdr + 40 + 2 * d, &big, sizeof big);
    }
    write_file(ph, hdr, hlen);
    st = volume_read(&r, ph, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(ph) && message_has("30000x30000x30000") &&
               message_has("more than the file"),
           "30000^3 header: %d %s", st, gen_error_message());
    gzFile gz = gzopen(tmp_path("huge.nii.gz"), "wb");
    EXPECT(gz != NULL && gzwrite(gz, hdr, (unsigned)hlen) == (int)hlen && gzclose(gz) == Z_OK, "gzip");
    st = volume_read(&r, tmp_path("huge.nii.gz"), NULL);
    EXPECT(st == GEN_ERR_DATA && message_has("more than the file") && message_has("gzip"),
           "30000^3 header, gzip: %d %s", st, gen_error_message());
    free(hdr);

    /* dim[0] out of 1..7 (libnifti2 would walk its dims past a stack array, NIfTI-1 and NIfTI-2):
     * refused before libnifti converts the header. NIfTI-1 int16 dim[8] at
     * byte 40, NIfTI-2 int64 dim[8] at byte 16. Then the same files with dim[0] = 3 byte-swapped (a
     * big-endian header: libnifti swaps the whole header) still read. */
    const int types[2] = {NIFTI_FTYPE_NIFTI1_1, NIFTI_FTYPE_NIFTI2_1};
    for (int k = 0; k < 2; k++) {
        const char *pd = tmp_path(k ? "dim0_n2.nii" : "dim0_n1.nii");
        write_test_nifti(pd, types[k], DT_INT16, 3, n, 1, 0, 0);
        EXPECT(read_file(pd, &hdr, &hlen) == 0 && hlen > (k ? 540 : 348), "read back %s", pd);
        const char *ps = tmp_path(k ? "swapped_n2.nii" : "swapped_n1.nii");
        swap_nifti_header(hdr, k + 1); /* the whole header big-endian: dim[0] = 3 swapped */
        write_file(ps, hdr, hlen);
        EXPECT_OK(volume_read(&r, ps, NULL));
        EXPECT(r.dim[0] == 4 && r.dim[1] == 4 && r.dim[2] == 4, "byte-swapped NIfTI-%d header read", k + 1);
        volume_free(&r);
        swap_nifti_header(hdr, k + 1);
        if (k == 0) {
            int16_t bad = 0x0909; /* 2313 either way */
            memcpy(hdr + 40, &bad, sizeof bad);
        } else {
            int64_t bad = 0x0909090909090909; /* huge either way */
            memcpy(hdr + 16, &bad, sizeof bad);
        }
        write_file(pd, hdr, hlen);
        st = volume_read(&r, pd, NULL);
        EXPECT(st == GEN_ERR_DATA && message_has(pd) && message_has("corrupt header (dim[0]"),
               "NIfTI-%d dim[0] out of range: %d %s", k + 1, st, gen_error_message());
        /* dim[0] = 3 in the other byte order than sizeof_hdr's (libnifti swaps by sizeof_hdr) */
        if (k == 0) {
            int16_t d = (int16_t)__builtin_bswap16(3);
            memcpy(hdr + 40, &d, sizeof d);
        } else {
            int64_t d = (int64_t)__builtin_bswap64(3);
            memcpy(hdr + 16, &d, sizeof d);
        }
        write_file(pd, hdr, hlen);
        st = volume_read(&r, pd, NULL);
        EXPECT(st == GEN_ERR_DATA && message_has("corrupt header (dim[0]"),
               "NIfTI-%d dim[0] in the other byte order: %d %s", k + 1, st, gen_error_message());
        swap_nifti_header(hdr, k + 1); /* now sizeof_hdr swapped, dim[0] = 3 native */
        write_file(pd, hdr, hlen);
        st = volume_read(&r, pd, NULL);
        EXPECT(st == GEN_ERR_DATA && message_has("corrupt header (dim[0]"),
               "NIfTI-%d swapped sizeof_hdr, native dim[0]: %d %s", k + 1, st, gen_error_message());
        free(hdr);
    }

    /* Missing file; a file that is not an image; a directory. */
    const char *missing = tmp_path("missing.nii.gz");
    st = volume_read(&r, missing, NULL);
    EXPECT(st == GEN_ERR_IO && message_has(missing), "missing: %d %s", st, gen_error_message());
    const char *text = tmp_path("text.nii");
    write_file(text, (const unsigned char *)"hello, not an image\n", 20);
    st = volume_read(&r, text, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(text), "text: %d %s", st, gen_error_message());
    /* a folder is a DICOM series locator (include/genesis/dicom.h): this one holds no DICOM images,
     * or the build has no DICOM support; either way a data error naming the folder */
    st = volume_read(&r, tmpdir, NULL);
    EXPECT(st == GEN_ERR_DATA && message_has(tmpdir) && (message_has("no DICOM images") ||
           message_has("without DICOM support")), "directory: %d %s", st, gen_error_message());
}

static void test_write_options(void)
{
    const int64_t dim[3] = {7, 6, 5};
    const double sp[3] = {0.8, 0.9, 2.5};
    volume v, r;
    EXPECT_OK(volume_alloc(&v, dim, sp));
    for (size_t i = 0; i < 7 * 6 * 5; i++) v.data[i] = (float)i * 1.3f - 100.0f;
    const char *names[4] = {"w16.nii.gz", "w16_2.nii", "w16pair.hdr", "w16_2pair.hdr.gz"};
    for (int k = 0; k < 4; k++) {
        volume_write_options wo = {VOLUME_INT16, k % 2, NULL, "test", k == 3 ? 1 : 0};
        const char *p = tmp_path(names[k]);
        EXPECT_OK(volume_write(&v, p, &wo));
        EXPECT_OK(volume_read(&r, p, NULL));
        int bad = 0;
        for (size_t i = 0; r.data && i < 7 * 6 * 5; i++) bad += r.data[i] != nearbyintf(v.data[i]);
        EXPECT(r.data && bad == 0, "%s: int16 round trip, %d differ", p, bad);
        EXPECT(r.source_datatype == DT_INT16, "%s: int16", p);
        EXPECT(r.source_nifti_type == (k % 2 ? (k < 2 ? 4 : 5) : (k < 2 ? 1 : 2)),
               "%s: nifti_type %d", p, r.source_nifti_type);
        EXPECT_NEAR(r.spacing[2], 2.5, 1e-6, "written spacing");
        EXPECT_NEAR(r.affine[0][3], v.affine[0][3], 1e-4, "written origin");
        volume_free(&r);
    }
    /* Header copied from an input, with a different affine in that input. */
    volume_write_options wf = {VOLUME_FLOAT32, 0, NULL, NULL, 9};
    volume src;
    EXPECT_OK(volume_alloc(&src, dim, sp));
    src.affine[0][3] = 11.0;
    src.affine[1][3] = -22.0;
    const char *ps = tmp_path("source.nii");
    EXPECT_OK(volume_write(&src, ps, &wf));
    wf.header_from = ps;
    const char *pc = tmp_path("copied.nii.gz");
    EXPECT_OK(volume_write(&v, pc, &wf));
    EXPECT_OK(volume_read(&r, pc, NULL));
    EXPECT_NEAR(r.affine[0][3], 11.0, 1e-5, "copied qoffset x");
    EXPECT_NEAR(r.affine[1][3], -22.0, 1e-5, "copied qoffset y");
    EXPECT(r.data && r.data[17] == v.data[17], "copied-header data");
    volume_free(&r);
    volume_free(&src);
    const int64_t other[3] = {7, 6, 4};
    EXPECT_OK(volume_alloc(&src, other, sp));
    const char *po = tmp_path("other.nii");
    wf.header_from = NULL;
    EXPECT_OK(volume_write(&src, po, &wf));
    wf.header_from = po;
    int st = volume_write(&v, tmp_path("mismatch.nii"), &wf);
    EXPECT(st == GEN_ERR_DATA && message_has(po), "header dims mismatch: %s", gen_error_message());
    volume_free(&src);
    st = volume_write(&v, tmp_path("bad.ext"), NULL);
    EXPECT(st == GEN_ERR_USAGE, "bad extension refused");
    st = volume_write(&v, "/nonexistent_dir_genesis/x.nii", NULL);
    EXPECT(st == GEN_ERR_IO, "unwritable directory: %s", gen_error_message());
    volume_free(&v);
}

/* Reorientation: a file whose voxel axes run (i -> posterior, j -> superior, k -> left) becomes
 * RAS with every voxel at the same world position. */
static void test_reorient(void)
{
    const int64_t n[3] = {5, 4, 3};
    int64_t dims[8] = {3, n[0], n[1], n[2], 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
    for (int z = 0; z < 3; z++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) ((float *)nim->data)[x + 5 * (y + 4 * z)] = (float)(x + 10 * y + 100 * z);
    nifti_dmat44 m;
    memset(&m, 0, sizeof m);
    /* world = M * (i, j, k, 1): i -> -y * 2mm, j -> +z * 3mm, k -> -x * 4mm */
    m.m[1][0] = -2.0;
    m.m[2][1] = 3.0;
    m.m[0][2] = -4.0;
    m.m[0][3] = 10;
    m.m[1][3] = 20;
    m.m[2][3] = 30;
    m.m[3][3] = 1;
    nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->sto_xyz = m;
    nim->sto_ijk = nifti_dmat44_inverse(m);
    nim->pixdim[1] = nim->dx = 2;
    nim->pixdim[2] = nim->dy = 3;
    nim->pixdim[3] = nim->dz = 4;
    const char *p = tmp_path("oblique.nii");
    nifti_set_filenames(nim, p, 0, 1);
    nifti_image_write(nim);
    nifti_image_free(nim);

    volume v;
    volume_read_options ro;
    volume_read_options_default(&ro);
    ro.reorient_ras = 1;
    EXPECT_OK(volume_read(&v, p, &ro));
    if (v.data == NULL) return;
    /* RAS axes: x <- k (flipped), y <- i (flipped), z <- j. */
    EXPECT(v.dim[0] == 3 && v.dim[1] == 5 && v.dim[2] == 4, "reoriented dims %lld %lld %lld",
           (long long)v.dim[0], (long long)v.dim[1], (long long)v.dim[2]);
    EXPECT_NEAR(v.spacing[0], 4, 0, "spacing x");
    EXPECT_NEAR(v.spacing[1], 2, 0, "spacing y");
    EXPECT_NEAR(v.spacing[2], 3, 0, "spacing z");
    int bad_value = 0, bad_world = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 4; c++) {
                int i = 4 - b, j = c, k = 2 - a; /* the file's voxel */
                float want = (float)(i + 10 * j + 100 * k);
                bad_value += v.data[(a * 5 + b) * 4 + c] != want;
                for (int r = 0; r < 3; r++) {
                    double wn = v.affine[r][0] * a + v.affine[r][1] * b + v.affine[r][2] * c + v.affine[r][3];
                    double wo = m.m[r][0] * i + m.m[r][1] * j + m.m[r][2] * k + m.m[r][3];
                    bad_world += fabs(wn - wo) > 1e-9;
                }
            }
    EXPECT(bad_value == 0, "reoriented values: %d differ", bad_value);
    EXPECT(bad_world == 0, "reoriented world positions: %d differ", bad_world);
    EXPECT(v.affine[0][0] > 0 && v.affine[1][1] > 0 && v.affine[2][2] > 0, "affine is RAS diagonal");
    volume_free(&v);
}

/* Trilinear resampling reproduces a linear function exactly and keeps world positions. */
static void test_resample(void)
{
    const int64_t dim[3] = {9, 7, 5};
    const double sp[3] = {2.0, 1.0, 3.0};
    volume v;
    EXPECT_OK(volume_alloc(&v, dim, sp));
    for (int x = 0; x < 9; x++)
        for (int y = 0; y < 7; y++)
            for (int z = 0; z < 5; z++) v.data[(x * 7 + y) * 5 + z] = (float)(3.0 * x * 2.0 - 2.0 * y + 0.5 * z * 3.0);
    double origin[3] = {v.affine[0][3], v.affine[1][3], v.affine[2][3]};
    const double target[3] = {1.0, 0.0, 1.5};
    EXPECT_OK(volume_resample(&v, target));
    EXPECT(v.dim[0] == 17 && v.dim[1] == 7 && v.dim[2] == 9, "resampled dims %lld %lld %lld",
           (long long)v.dim[0], (long long)v.dim[1], (long long)v.dim[2]);
    double worst = 0;
    for (int x = 0; x < v.dim[0]; x++)
        for (int y = 0; y < v.dim[1]; y++)
            for (int z = 0; z < v.dim[2]; z++) {
                double want = 3.0 * x * 1.0 - 2.0 * y + 0.5 * z * 1.5; /* same function in mm */
                double e = fabs(v.data[(x * v.dim[1] + y) * v.dim[2] + z] - want);
                if (e > worst) worst = e;
            }
    EXPECT(worst < 1e-4, "linear function after resampling: worst error %g", worst);
    EXPECT_NEAR(v.affine[0][0], 1.0, 1e-12, "affine x scale");
    EXPECT_NEAR(v.affine[2][2], 1.5, 1e-12, "affine z scale");
    EXPECT_NEAR(v.affine[0][3], origin[0], 1e-12, "origin kept");
    EXPECT_NEAR(v.spacing[0], 1.0, 0, "spacing updated");
    volume_free(&v);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s", test_tmpdir_make("volume"));
    test_voxel_types();
    test_dimensionality();
    test_damaged_files();
    test_write_options();
    test_reorient();
    test_resample();
    test_tmpdir_done(tmpdir);
    TEST_MAIN_END();
}
