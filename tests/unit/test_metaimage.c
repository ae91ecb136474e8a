/* Reading MetaImage scans (src/data/volume_metaimage*.c) through volume_read: every element type in
 * both byte orders, .mhd + data file, .mha, zlib/gzip-compressed data, LIST of slice files, HeaderSize
 * (also -1), NDims 4, the geometry against a hand-computed affine, and bad inputs (each a named
 * error, no crash, no allocation of a size the file cannot hold). The files are written here byte
 * by byte, not with the code under test. Also the build without GDCM (src/data/dicom_none.c). */
#include "check.h"

#include "genesis/dicom.h"
#include "genesis/error.h"
#include "genesis/volume.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { NX = 4, NY = 3, NZ = 5, NVOX = NX * NY * NZ };
static char tmpdir[256];

static const char *tmp_path(const char *name) { return test_path_in(tmpdir, name); }

/* The test pattern at voxel (x, y, z): distinct, negative for signed types, fits every type. */
static double pattern(int x, int y, int z, int is_signed) { return x + 4 * y + 12 * z - (is_signed ? 30 : 0); }

static const struct type {
    const char *name;
    int bytes, is_signed, is_float;
} TYPES[] = {
    {"MET_UCHAR", 1, 0, 0}, {"MET_CHAR", 1, 1, 0}, {"MET_USHORT", 2, 0, 0}, {"MET_SHORT", 2, 1, 0},
    {"MET_UINT", 4, 0, 0},  {"MET_INT", 4, 1, 0},  {"MET_FLOAT", 4, 1, 1},  {"MET_DOUBLE", 8, 1, 1},
};

/* The voxels of the pattern as `t` in file order (x fastest), big-endian when msb; returns bytes. */
static size_t encode(unsigned char *out, const struct type *t, int msb, double bad)
{
    size_t o = 0;
    for (int z = 0; z < NZ; z++)
        for (int y = 0; y < NY; y++)
            for (int x = 0; x < NX; x++) {
                double v = pattern(x, y, z, t->is_signed);
                if (x == 1 && y == 2 && z == 3 && bad != 0) v = bad;
                uint64_t bits = 0;
                if (t->is_float && t->bytes == 4) {
                    float f = (float)v;
                    uint32_t u;
                    memcpy(&u, &f, 4);
                    bits = u;
                } else if (t->is_float) {
                    memcpy(&bits, &v, 8);
                } else {
                    bits = (uint64_t)(int64_t)v; /* two's complement, truncated to t->bytes below */
                }
                for (int b = 0; b < t->bytes; b++) {
                    int shift = 8 * (msb ? t->bytes - 1 - b : b);
                    out[o++] = (unsigned char)(bits >> shift);
                }
            }
    return o;
}

static void write_file(const char *path, const char *text, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (text) fputs(text, f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* A header of NDims 3 (NX NY NZ) with `type`, `extra` lines, then ElementDataFile = `data`. */
static void header(char *out, size_t size, const char *type, const char *extra, const char *data)
{
    snprintf(out, size, "ObjectType = Image\nNDims = 3\nBinaryData = True\n%sDimSize = %d %d %d\n"
             "ElementType = %s\nElementDataFile = %s\n", extra, NX, NY, NZ, type, data);
}

static void expect_pattern(const volume *v, int is_signed, const char *what)
{
    int bad = 0;
    for (int x = 0; x < NX; x++)
        for (int y = 0; y < NY; y++)
            for (int z = 0; z < NZ; z++)
                bad += v->data[(x * NY + y) * NZ + z] != (float)pattern(x, y, z, is_signed);
    EXPECT(v->data && v->dim[0] == NX && v->dim[1] == NY && v->dim[2] == NZ && bad == 0,
           "%s: dims %lldx%lldx%lld, %d voxels differ from the pattern", what, (long long)v->dim[0],
           (long long)v->dim[1], (long long)v->dim[2], bad);
}

/* Every element type, both byte orders, separate file (.mhd) and LOCAL (.mha). */
static void test_types(void)
{
    unsigned char data[NVOX * 8];
    char text[1024], name[64], raw[64];
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        for (int msb = 0; msb < 2; msb++) {
            const struct type *t = &TYPES[i];
            size_t n = encode(data, t, msb, 0);
            const char *order = msb ? "BinaryDataByteOrderMSB = True\n" : "ElementByteOrderMSB = False\n";
            snprintf(raw, sizeof raw, "%s_%d.raw", t->name, msb);
            header(text, sizeof text, t->name, order, raw);
            snprintf(name, sizeof name, "%s_%d.mhd", t->name, msb);
            write_file(tmp_path(name), text, NULL, 0);
            write_file(tmp_path(raw), NULL, data, n);
            volume v;
            EXPECT_OK(volume_read(&v, tmp_path(name), NULL));
            expect_pattern(&v, t->is_signed, name);
            EXPECT(v.source_format == VOLUME_FORMAT_METAIMAGE, "%s: source_format %d", name, v.source_format);
            volume_free(&v);
            header(text, sizeof text, t->name, order, "LOCAL");
            snprintf(name, sizeof name, "%s_%d.mha", t->name, msb);
            write_file(tmp_path(name), text, data, n);
            EXPECT_OK(volume_read(&v, tmp_path(name), NULL));
            expect_pattern(&v, t->is_signed, name);
            volume_free(&v);
        }
}

/* The affine against a hand computation: TransformMatrix groups are the voxel axes' LPS directions
 * (x -> +P... ), spacing 2 3 4, Offset 10 20 30; RAS negates rows x and y. */
static void test_geometry(void)
{
    unsigned char data[NVOX * 2];
    size_t n = encode(data, &TYPES[3], 0, 0);
    char text[1024];
    header(text, sizeof text, "MET_SHORT", "TransformMatrix = 0 1 0 -1 0 0 0 0 1\nElementSpacing = 2 3 4\n"
           "Offset = 10 20 30\nAnatomicalOrientation = RAI\n", "LOCAL");
    write_file(tmp_path("geom.mha"), text, data, n);
    /* LPS: voxel x -> (0, 1, 0) * 2, voxel y -> (-1, 0, 0) * 3, voxel z -> (0, 0, 1) * 4 */
    const double want[4][4] = {{0, 3, 0, -10}, {-2, 0, 0, -20}, {0, 0, 4, 30}, {0, 0, 0, 1}};
    volume v;
    EXPECT_OK(volume_read(&v, tmp_path("geom.mha"), NULL));
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) EXPECT_NEAR(v.affine[r][c], want[r][c], 1e-12, "geometry affine entry");
    EXPECT(v.spacing[0] == 2 && v.spacing[1] == 3 && v.spacing[2] == 4, "spacing %g %g %g", v.spacing[0],
           v.spacing[1], v.spacing[2]);
    volume_free(&v);
    /* reorient_ras through volume_read: voxel y runs toward Right, voxel x toward Posterior */
    volume_read_options o;
    volume_read_options_default(&o);
    o.reorient_ras = 1;
    EXPECT_OK(volume_read(&v, tmp_path("geom.mha"), &o));
    EXPECT(v.dim[0] == NY && v.dim[1] == NX && v.dim[2] == NZ, "reoriented dims %lldx%lldx%lld",
           (long long)v.dim[0], (long long)v.dim[1], (long long)v.dim[2]);
    int bad = 0;
    for (int i = 0; v.data && i < NY; i++)
        for (int j = 0; j < NX; j++)
            for (int k = 0; k < NZ; k++)
                bad += v.data[(i * NX + j) * NZ + k] != (float)pattern(NX - 1 - j, i, k, 1);
    EXPECT(bad == 0, "reoriented voxels: %d differ", bad);
    volume_free(&v);
    /* synonyms, NDims 4 with one volume, and spacing/position from Position/Orientation */
    snprintf(text, sizeof text, "NDims = 4\nDimSize = %d %d %d 1\nElementType = MET_SHORT\nPosition = 1 2 3 0\n"
             "Orientation = 1 0 0 0  0 1 0 0  0 0 1 0  0 0 0 1\nElementSpacing = 1.5 1.5 2 1\n"
             "ElementDataFile = LOCAL\n", NX, NY, NZ);
    write_file(tmp_path("four.mha"), text, data, n);
    EXPECT_OK(volume_read(&v, tmp_path("four.mha"), NULL));
    expect_pattern(&v, 1, "NDims 4");
    EXPECT(v.affine[0][0] == -1.5 && v.affine[1][1] == -1.5 && v.affine[2][2] == 2 && v.affine[0][3] == -1 &&
           v.affine[1][3] == -2 && v.affine[2][3] == 3, "NDims 4 affine diag %g %g %g offset %g %g %g",
           v.affine[0][0], v.affine[1][1], v.affine[2][2], v.affine[0][3], v.affine[1][3], v.affine[2][3]);
    volume_free(&v);
}

/* zlib and gzip streams, LIST of slices and of one volume, HeaderSize N and -1. */
static void test_layouts(void)
{
    unsigned char data[NVOX * 2], packed[NVOX * 4 + 64];
    size_t n = encode(data, &TYPES[3], 0, 0);
    char text[2048], extra[256];
    uLongf zn = sizeof packed;
    EXPECT(compress2(packed, &zn, data, n, 9) == Z_OK, "compress2");
    snprintf(extra, sizeof extra, "CompressedData = True\nCompressedDataSize = %lu\n", (unsigned long)zn);
    header(text, sizeof text, "MET_SHORT", extra, "LOCAL");
    write_file(tmp_path("zlib.mha"), text, packed, zn);
    header(text, sizeof text, "MET_SHORT", "CompressedData = True\n", "zlib.zraw");
    write_file(tmp_path("zlib.mhd"), text, NULL, 0);
    write_file(tmp_path("zlib.zraw"), NULL, packed, zn);
    gzFile g = gzopen(tmp_path("gz.zraw"), "wb");
    gzwrite(g, data, (unsigned)n);
    gzclose(g);
    header(text, sizeof text, "MET_SHORT", "CompressedData = True\n", "gz.zraw");
    write_file(tmp_path("gz.mhd"), text, NULL, 0);
    /* LIST of 2-D slices in a subfolder, named relative to the header */
    mkdir(tmp_path("slices"), 0755);
    char list[1024] = "";
    for (int z = 0; z < NZ; z++) {
        char name[64];
        snprintf(name, sizeof name, "slices/s%d.raw", z);
        write_file(tmp_path(name), NULL, data + (size_t)z * NX * NY * 2, (size_t)NX * NY * 2);
        strcat(list, name), strcat(list, "\n");
    }
    header(text, sizeof text, "MET_SHORT", "", "LIST");
    strcat(text, list);
    write_file(tmp_path("list.mhd"), text, NULL, 0);
    header(text, sizeof text, "MET_SHORT", "", "LIST 3D\nvolume.raw");
    write_file(tmp_path("list3.mhd"), text, NULL, 0);
    write_file(tmp_path("volume.raw"), NULL, data, n);
    unsigned char skipped[NVOX * 2 + 100];
    memset(skipped, 0x5a, 100);
    memcpy(skipped + 100, data, n);
    header(text, sizeof text, "MET_SHORT", "HeaderSize = 100\n", "skip.raw");
    write_file(tmp_path("skip.mhd"), text, NULL, 0);
    write_file(tmp_path("skip.raw"), NULL, skipped, n + 100);
    header(text, sizeof text, "MET_SHORT", "HeaderSize = -1\n", "skip.raw");
    write_file(tmp_path("tail.mhd"), text, NULL, 0);
    const char *names[] = {"zlib.mha", "zlib.mhd", "gz.mhd", "list.mhd", "list3.mhd", "skip.mhd", "tail.mhd"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        volume v;
        EXPECT_OK(volume_read(&v, tmp_path(names[i]), NULL));
        expect_pattern(&v, 1, names[i]);
        volume_free(&v);
    }
}

/* One bad input: volume_read fails with `code`, a message starting with the header's path and
 * containing `reason`, and leaves v empty. */
static void expect_refused(const char *name, int code, const char *reason)
{
    volume v;
    const char *path = tmp_path(name);
    int status = volume_read(&v, path, NULL);
    const char *msg = gen_error_message();
    EXPECT(status == code && v.data == NULL && strncmp(msg, path, strlen(path)) == 0 && strstr(msg, reason),
           "%s: status %d (want %d), message '%s' (want '%s')", name, status, code, msg, reason);
    gen_error_clear();
}

static void test_bad_inputs(void)
{
    unsigned char data[NVOX * 8], packed[NVOX * 4 + 64];
    size_t n = encode(data, &TYPES[3], 0, 0);
    char text[2048];
    header(text, sizeof text, "MET_SHORT", "", "nowhere.raw");
    write_file(tmp_path("missing.mhd"), text, NULL, 0);
    expect_refused("missing.mhd", GEN_ERR_IO, "cannot open data file");
    header(text, sizeof text, "MET_SHORT", "", "short.raw");
    write_file(tmp_path("short.mhd"), text, NULL, 0);
    write_file(tmp_path("short.raw"), NULL, data, n - 1);
    expect_refused("short.mhd", GEN_ERR_DATA, "truncated or short data");
    /* headers that are wrong in themselves: NDims and DimSize lines, then MET_SHORT in short.raw */
    static const struct { const char *name, *dims, *reason; } headers[] = {
        {"ndims.mhd", "NDims = 2\nDimSize = 4 3\n", "a 3-D volume is required"},
        {"ndims9.mhd", "NDims = 9\nDimSize = 4 3\n", "DimSize has 2 values, NDims is 9"},
        {"dims.mhd", "NDims = 3\nDimSize = 4 0 5\n", "is not a size"},
        {"dimtext.mhd", "NDims = 3\nDimSize = 4 three 5\n", "not a list of numbers"},
        {"four.mhd", "NDims = 4\nDimSize = 4 3 5 2\n", "4-D image with 2 volumes"},
        {"flat.mhd", "NDims = 3\nDimSize = 4 3 1\n", "2-D image"},
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        snprintf(text, sizeof text, "%sElementType = MET_SHORT\nElementDataFile = short.raw\n", headers[i].dims);
        write_file(tmp_path(headers[i].name), text, NULL, 0);
        expect_refused(headers[i].name, GEN_ERR_DATA, headers[i].reason);
    }
    header(text, sizeof text, "MET_SHORT", "", "LOCAL");
    write_file(tmp_path("truncated.mha"), text, data, n / 2);
    expect_refused("truncated.mha", GEN_ERR_DATA, "truncated or short data");
    write_file(tmp_path("cut.mha"), "NDims = 3\nDimSize = 4 3 5\nElementType = MET_SHORT\n", NULL, 0);
    expect_refused("cut.mha", GEN_ERR_DATA, "no ElementDataFile");
    /* a huge DimSize on a tiny file: refused from the file's size, never allocated */
    write_file(tmp_path("huge.mhd"), "NDims = 3\nDimSize = 100000 100000 500\nElementType = MET_DOUBLE\n"
               "ElementDataFile = short.raw\n", NULL, 0);
    expect_refused("huge.mhd", GEN_ERR_DATA, "truncated or short data");
    uLongf zn = sizeof packed;
    compress2(packed, &zn, data, n, 9);
    write_file(tmp_path("hugez.mha"), "NDims = 3\nDimSize = 100000 100000 500\nElementType = MET_DOUBLE\n"
               "CompressedData = True\nElementDataFile = LOCAL\n", packed, zn);
    expect_refused("hugez.mha", GEN_ERR_DATA, "compressed data");
    header(text, sizeof text, "MET_SHORT", "CompressedData = True\n", "LOCAL");
    write_file(tmp_path("zcut.mha"), text, packed, zn / 2);
    expect_refused("zcut.mha", GEN_ERR_DATA, "truncated compressed data");
    for (size_t i = 2; i < zn; i += 3) packed[i] ^= 0xa5;
    write_file(tmp_path("zbad.mha"), text, packed, zn);
    expect_refused("zbad.mha", GEN_ERR_DATA, "compressed data");
    unsigned char binary[64];
    for (int i = 0; i < 64; i++) binary[i] = (unsigned char)(i * 37);
    write_file(tmp_path("binary.mha"), NULL, binary, sizeof binary);
    expect_refused("binary.mha", GEN_ERR_DATA, "not a MetaImage header");
    header(text, sizeof text, "MET_FLOAT16", "", "short.raw");
    write_file(tmp_path("type.mhd"), text, NULL, 0);
    expect_refused("type.mhd", GEN_ERR_DATA, "ElementType MET_FLOAT16 is not supported");
    header(text, sizeof text, "MET_SHORT", "ElementNumberOfChannels = 3\n", "short.raw");
    write_file(tmp_path("rgb.mhd"), text, NULL, 0);
    expect_refused("rgb.mhd", GEN_ERR_DATA, "3 channels per voxel");
    header(text, sizeof text, "MET_SHORT", "", "LIST\nslices/s0.raw\nslices/s1.raw");
    write_file(tmp_path("fewlist.mhd"), text, NULL, 0);
    expect_refused("fewlist.mhd", GEN_ERR_DATA, "LIST names 2 files");
    n = encode(data, &TYPES[6], 0, NAN);
    header(text, sizeof text, "MET_FLOAT", "", "LOCAL");
    write_file(tmp_path("nan.mha"), text, data, n);
    expect_refused("nan.mha", GEN_ERR_DATA, "non-finite voxel");
}

/* The reader by name, and the build without GDCM. */
static void test_dispatch(void)
{
    EXPECT(volume_format_of_path("a/b.MHD") == VOLUME_FORMAT_METAIMAGE, "upper-case .MHD");
    EXPECT(volume_format_of_path("a/b.mha") == VOLUME_FORMAT_METAIMAGE, ".mha");
    EXPECT(volume_format_of_path(tmp_path("geom.mha")) == VOLUME_FORMAT_METAIMAGE, "an existing .mha");
    EXPECT(volume_format_of_path("scan.nii.gz") == VOLUME_FORMAT_NIFTI, ".nii.gz");
    EXPECT(volume_format_of_path(tmpdir) == VOLUME_FORMAT_DICOM, "a folder is a DICOM locator");
    char locator[600];
    snprintf(locator, sizeof locator, "%s#1.2.3", tmpdir);
    EXPECT(dicom_is_locator(locator) && !dicom_is_locator("/nonexistent#1.2") &&
           !dicom_is_locator(tmp_path("geom.mha")), "dicom_is_locator");
    EXPECT(!strcmp(volume_format_name(VOLUME_FORMAT_METAIMAGE), "metaimage") &&
           !strcmp(volume_format_name(VOLUME_FORMAT_NIFTI), "nifti") &&
           !strcmp(volume_format_name(VOLUME_FORMAT_DICOM), "dicom"), "volume_format_name");
    if (!dicom_available()) {
        volume v;
        int status = volume_read(&v, locator, NULL);
        EXPECT(status == GEN_ERR_DATA && v.data == NULL &&
               strstr(gen_error_message(), "built without DICOM support") &&
               !strncmp(gen_error_message(), locator, strlen(locator)),
               "no GDCM: %d '%s'", status, gen_error_message());
        gen_error_clear();
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s", test_tmpdir_make("metaimage"));
    test_types();
    test_geometry();
    test_layouts();
    test_bad_inputs();
    test_dispatch();
    test_tmpdir_done(tmpdir);
    TEST_MAIN_END();
}
