/* DICOM series (include/genesis/dicom.h, src/data/dicom_*.c*): tests/data/make_dicom.py writes
 * series with pydicom from phantom volumes, and the expected HU volumes and affines as NIfTI (read
 * here through the NIfTI path, not the code under test); pydicom's own test files are compared
 * with the values pydicom decodes. A build without GDCM, or a machine without pydicom/nibabel:
 * the test says so and exits 77 (ctest: skipped). */
#include "check.h"

#include "genesis/dicom.h"
#include "genesis/error.h"
#include "genesis/volume.h"
#include "data/dicom_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "nifti1.h"

enum { TEST_SKIPPED = 77 }; /* SKIP_RETURN_CODE in tests/CMakeLists.txt */

#ifdef GENESIS_TEST_NO_GDCM /* tests/CMakeLists.txt: a build without GDCM */
int main(void)
{
    volume v;
    EXPECT(dicom_available() == 0, "dicom_available() in a build without GDCM");
    EXPECT(volume_read_dicom(&v, "/", NULL) == GEN_ERR_DATA &&
           strstr(gen_error_message(), "built without DICOM support") != NULL, "%s", gen_error_message());
    if (check_failures) TEST_MAIN_END();
    printf("SKIPPED: this genesis was built without GDCM (GENESIS_DICOM): only the refusal was checked\n");
    return TEST_SKIPPED;
}
#else

static char out[256]; /* the generated data (a temporary folder) */

static const char *at(const char *name)
{
    static char buf[8][768];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 768, "%s/%s", out, name);
    return p;
}

/* Reads expected/NAME: "NAME VALUE" lines; returns VALUE's copy for key, or NULL. */
static char *lookup(const char *file, const char *key)
{
    FILE *f = fopen(at(file), "r");
    if (f == NULL) return NULL;
    char line[512], name[128], value[384];
    char *found = NULL;
    while (found == NULL && fgets(line, sizeof line, f))
        if (sscanf(line, "%127s %383s", name, value) == 2 && strcmp(name, key) == 0) found = strdup(value);
    fclose(f);
    return found;
}

/* Expects the read of locator to fail with GEN_ERR_DATA, a message starting with the locator and
 * holding `part`, and v left empty. */
static void expect_refused(const char *locator, const char *part)
{
    volume v;
    int status = volume_read_dicom(&v, locator, NULL);
    const char *msg = gen_error_message();
    EXPECT(status == GEN_ERR_DATA, "%s: status %d (%s)", locator, status, msg);
    EXPECT(strncmp(msg, locator, strlen(locator)) == 0, "message does not start with the locator: %s", msg);
    EXPECT(strstr(msg, part) != NULL, "%s: message lacks \"%s\": %s", locator, part, msg);
    EXPECT(v.data == NULL, "%s: volume left allocated after an error", locator);
    volume_free(&v);
}

/* voxel_tol: 0 for volumes as read (exact: integer HU), small for resampled ones (rounding). */
static void expect_same_volume(const char *what, const volume *got, const volume *want, double affine_tol,
                               double voxel_tol)
{
    for (int a = 0; a < 3; a++) {
        EXPECT(got->dim[a] == want->dim[a], "%s: dim[%d] %lld vs %lld", what, a, (long long)got->dim[a],
               (long long)want->dim[a]);
        EXPECT_NEAR(got->spacing[a], want->spacing[a], 1e-5, what);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) EXPECT_NEAR(got->affine[i][j], want->affine[i][j], affine_tol, what);
    if (got->dim[0] != want->dim[0] || got->dim[1] != want->dim[1] || got->dim[2] != want->dim[2]) return;
    size_t n = (size_t)(want->dim[0] * want->dim[1] * want->dim[2]);
    double *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) ref[i] = want->data[i];
    expect_tensor_close(what, got->data, ref, n, 0, voxel_tol);
    free(ref);
}

/* Series A and B of OUT/series against expected/A.nii, B.nii: as read, reoriented to RAS, and
 * resampled to 1 mm (the same operations on the expected NIfTI through volume_read). */
static void test_series(void)
{
    char **list = NULL;
    size_t count = 0;
    EXPECT_OK(dicom_list_series(at("series"), &list, &count));
    EXPECT(count == 3, "%zu series in series/ (want A, B and the localizer C)", count);
    static const char *const names[3] = {"A", "B", "C"};
    static const int datatypes[3] = {DT_UINT16, DT_INT16, 0};
    for (size_t s = 0; s < 3 && s < count; s++) {
        char *uid = lookup("expected/uids.txt", names[s]), want[512];
        snprintf(want, sizeof want, "%s#%s", at("series"), uid ? uid : "?");
        EXPECT(strcmp(list[s], want) == 0, "locator %zu: %s, want %s", s, list[s], want);
        free(uid);
        if (s == 2) {
            expect_refused(list[s], "localizer");
            continue;
        }
        char expected[64];
        snprintf(expected, sizeof expected, "expected/%s.nii", names[s]);
        for (int mode = 0; mode < 3; mode++) { /* as stored; RAS; RAS + 1 mm */
            volume_read_options ro;
            volume_read_options_default(&ro);
            ro.reorient_ras = mode > 0;
            for (int a = 0; a < 3 && mode == 2; a++) ro.spacing[a] = 1.0;
            volume got, ref;
            EXPECT_OK(volume_read(&got, list[s], &ro)); /* through volume_read's dispatch */
            EXPECT_OK(volume_read(&ref, at(expected), &ro));
            char what[96];
            snprintf(what, sizeof what, "series %s (mode %d)", names[s], mode);
            if (got.data && ref.data) expect_same_volume(what, &got, &ref, 1e-4, mode == 2 ? 1e-2 : 0);
            EXPECT(got.source_format == VOLUME_FORMAT_DICOM, "%s: source_format %d", what, got.source_format);
            EXPECT(got.source_datatype == datatypes[s], "%s: source_datatype %d", what, got.source_datatype);
            EXPECT(got.affine_code == 1, "%s: affine_code %d", what, got.affine_code);
            volume_free(&got);
            volume_free(&ref);
        }
    }
    /* the folder alone names no series when it holds three */
    expect_refused(at("series"), "holds 3 DICOM series");
    char unknown[512];
    snprintf(unknown, sizeof unknown, "%s#1.2.3.4", at("series"));
    expect_refused(unknown, "no series with SeriesInstanceUID 1.2.3.4");
    dicom_free_list(list, count);
}

static void test_refusals(void)
{
    expect_refused(at("missing"), "missing slices: a gap of 6 mm");
    expect_refused(at("uneven"), "uneven slice spacing (mm, in order along the normal: 3, 3, 3, 3.5, 3;");
    expect_refused(at("tilt"), "gantry tilt");
    expect_refused(at("mixed"), "mixed sizes");
    expect_refused(at("orient"), "different orientations");
    expect_refused(at("dup"), "two slices at the same position");
    expect_refused(at("empty"), "no DICOM images in the folder");
    expect_refused(at("undecodable"), "1.2.840.10008.1.2.4.102");
    FILE *f = fopen(at("expected/truncated.txt"), "r");
    char name[128] = "?";
    if (f) {
        if (fscanf(f, "%127s", name) != 1) strcpy(name, "?");
        fclose(f);
    }
    expect_refused(at("truncated"), name); /* the message names the truncated file */
    char **list = NULL;
    size_t count = 9;
    EXPECT_OK(dicom_list_series(at("empty"), &list, &count));
    EXPECT(count == 0 && list == NULL, "empty/: %zu series", count);
    EXPECT(dicom_list_series(at("no-such-folder"), &list, &count) == GEN_ERR_IO, "missing folder");
    EXPECT(dicom_is_locator(at("series")) == 1, "a folder is a locator");
    EXPECT(dicom_is_locator(at("series#1.2.3")) == 1, "FOLDER#UID is a locator");
    EXPECT(dicom_is_locator(at("expected/A.nii")) == 0, "a NIfTI file is not a locator");
    EXPECT(dicom_is_locator(at("no-such-folder#1.2")) == 0, "a missing folder is not a locator");
}

/* pydicom's test files: decoded values equal pydicom's; a one-slice series is refused. */
static void test_single_files(void)
{
    FILE *f = fopen(at("expected/single.txt"), "r");
    EXPECT(f != NULL, "expected/single.txt missing");
    if (f == NULL) return;
    char name[128];
    long rows, cols;
    int files = 0;
    while (fscanf(f, "%127s %ld %ld", name, &rows, &cols) == 3) {
        files++;
        char folder[256], raw[256];
        snprintf(folder, sizeof folder, "single/%s", name);
        snprintf(raw, sizeof raw, "expected/%s.f32", name);
        char locator[768];
        snprintf(locator, sizeof locator, "%s", at(folder));
        dicom_slice *slices = NULL;
        size_t n = 0;
        EXPECT_OK(dicom_read_slices(locator, &slices, &n));
        EXPECT(n == 1, "%s: %zu slices", name, n);
        if (n == 1) {
            EXPECT(slices[0].rows == rows && slices[0].cols == cols, "%s: %lldx%lld, want %ldx%ld", name,
                   (long long)slices[0].rows, (long long)slices[0].cols, rows, cols);
            size_t count = (size_t)(rows * cols);
            float *want = malloc(count * sizeof *want);
            double *ref = malloc(count * sizeof *ref);
            FILE *r = fopen(at(raw), "rb");
            size_t got = r ? fread(want, sizeof *want, count, r) : 0;
            if (r) fclose(r);
            EXPECT(got == count, "%s: %zu of %zu expected values", raw, got, count);
            for (size_t i = 0; i < count; i++) ref[i] = got == count ? want[i] : 0;
            if (slices[0].rows == rows && slices[0].cols == cols)
                expect_tensor_close(name, slices[0].pixels, ref, count, 0, 0);
            free(want);
            free(ref);
        }
        dicom_free_slices(slices, n);
        expect_refused(locator, "a single slice");
    }
    fclose(f);
    EXPECT(files >= 5, "only %d of pydicom's test files found", files);
}

int main(void)
{
    if (!dicom_available()) {
        printf("SKIPPED: dicom_available() is 0: no DICOM check ran\n");
        return TEST_SKIPPED;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(out, sizeof out, "%s/genesis_dicom_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* the generator sits next to this file's folder: tests/unit/../data/make_dicom.py */
    char script[1024], cmd[2048];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (size_t)(slash ? slash + 1 - script : 0),
             "../data/make_dicom.py");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, out);
    int rc = system(cmd);
    int code = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == TEST_SKIPPED) return TEST_SKIPPED;
    EXPECT(code == 0, "%s: exit status %d", cmd, code);
    if (code == 0) {
        test_series();
        test_refusals();
        test_single_files();
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", out);
    TEST_MAIN_END();
}
#endif
