/* Synthetic CT phantoms (src/data/phantom.c): HU ranges, anatomy present, determinism, the series
 * writer, and that the lung filter accepts cubes from them (with borders adapted to the size). */
#include "check.h"

#include "genesis/error.h"
#include "genesis/extract.h"
#include "genesis/normalize.h"
#include "genesis/phantom.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int progress_calls, progress_last_done;

static void on_progress(int done, int total, const char *path, void *user)
{
    (void)path;
    progress_calls++;
    progress_last_done = done;
    *(int *)user = total;
}

int main(void)
{
    phantom_options po;
    phantom_options_default(&po);
    po.seed = 5;
    volume a, b, c;
    EXPECT_OK(phantom_make(&a, 0, &po));
    EXPECT(a.dim[0] == 256 && a.dim[1] == 256 && a.dim[2] == 96, "default size");
    EXPECT_NEAR(a.spacing[0], 1.5, 1e-12, "default in-plane spacing");
    EXPECT_NEAR(a.spacing[2], 1.5, 1e-12, "default z spacing");
    size_t n = (size_t)(a.dim[0] * a.dim[1] * a.dim[2]);

    /* Tissue classes by HU band (noise sd 20). */
    size_t air = 0, lung = 0, soft = 0, bone = 0, vessel = 0;
    float mn = 1e9f, mx = -1e9f;
    for (size_t i = 0; i < n; i++) {
        float h = a.data[i];
        if (h < mn) mn = h;
        if (h > mx) mx = h;
        air += h < -950;
        lung += h > -880 && h < -720;
        soft += h > -20 && h < 100;
        bone += h > 550;
    }
    /* Vessels: voxels of 0..280 HU with lung 2 voxels away on both sides along x. */
    int64_t ny = a.dim[1], nz = a.dim[2];
    for (int64_t x = 2; x < a.dim[0] - 2; x++)
        for (int64_t y = 2; y < ny - 2; y++)
            for (int64_t z = 0; z < nz; z++) {
                float h = a.data[(x * ny + y) * nz + z];
                if (h < 0 || h > 280) continue;
                float l = a.data[((x - 2) * ny + y) * nz + z], r = a.data[((x + 2) * ny + y) * nz + z];
                vessel += l < -700 && r < -700; /* thin and inside lung */
            }
    printf("phantom 256x256x96: HU [%.0f, %.0f]; air %.1f%%, lung %.1f%%, soft %.1f%%, bone %.2f%%, "
           "vessel-edge voxels %zu\n", mn, mx, 100.0 * air / n, 100.0 * lung / n, 100.0 * soft / n,
           100.0 * bone / n, vessel);
    EXPECT(mn > -1000 - 8 * 20 && mx < 700 + 8 * 20, "HU within [-1160, 860]: [%g, %g]", mn, mx);
    EXPECT(air > n / 10, "air outside the body");
    EXPECT(lung > n / 10, "lungs present: %zu voxels", lung);
    EXPECT(soft > n / 20, "soft tissue present");
    EXPECT(bone > n / 1000, "bone present: %zu voxels", bone);
    EXPECT(vessel > 50, "vessels inside the lungs: %zu", vessel);

    /* Both lungs: lung voxels on both sides of the mid-sagittal plane, at mid height. */
    size_t left = 0, right = 0;
    for (int64_t x = 0; x < a.dim[0]; x++)
        for (int64_t y = 0; y < ny; y++) {
            float h = a.data[(x * ny + y) * nz + nz / 2];
            if (h > -880 && h < -720) *(x < a.dim[0] / 2 ? &left : &right) += 1;
        }
    EXPECT(left > 3000 && right > 3000, "two lungs: %zu left, %zu right", left, right);

    /* Determinism: same (seed, index) same volume; another index or seed differs. */
    EXPECT_OK(phantom_make(&b, 0, &po));
    EXPECT(memcmp(a.data, b.data, n * sizeof(float)) == 0, "phantom is a function of (seed, index)");
    volume_free(&b);
    EXPECT_OK(phantom_make(&b, 1, &po));
    EXPECT(memcmp(a.data, b.data, n * sizeof(float)) != 0, "another index differs");
    volume_free(&b);

    /* The lung filter accepts cubes (borders adapted to 256x256x96; z fits the default 30). */
    extract_options eo;
    extract_options_default(&eo);
    eo.border_xy = 24;
    norm_options no;
    norm_options_default(&no, NORM_CT);
    EXPECT_OK(normalize_volume(a.data, n, &no, NULL, "phantom"));
    extract_result res;
    EXPECT_OK(extract_cubes(&res, &a, 0, &eo));
    printf("lung filter on phantom 0: %d cubes in %d attempts %s\n", res.count, res.attempts, res.why);
    EXPECT(res.count == 32, "phantom yields the full 32 cubes: %d", res.count);
    extract_result_free(&res);
    volume_free(&a);

    /* Series writer: int16 .nii.gz files, progress, values = rounded HU. */
    char dir[] = "/tmp/genesis_test_phantom_XXXXXX";
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    phantom_options small;
    phantom_options_default(&small);
    small.dim[0] = 96;
    small.dim[1] = 80;
    small.dim[2] = 40;
    small.seed = 9;
    int total = 0;
    EXPECT_OK(phantom_write_series(dir, 2, 7, &small, on_progress, &total));
    EXPECT(progress_calls == 2 && progress_last_done == 2 && total == 2, "progress callback");
    char path[256];
    snprintf(path, sizeof path, "%s/phantom_0008.nii.gz", dir);
    EXPECT_OK(volume_read(&b, path, NULL));
    EXPECT_OK(phantom_make(&c, 8, &small));
    if (b.data && c.data) {
        size_t m = (size_t)(c.dim[0] * c.dim[1] * c.dim[2]), bad = 0;
        for (size_t i = 0; i < m; i++) bad += b.data[i] != nearbyintf(c.data[i]);
        EXPECT(bad == 0, "written phantom = rounded HU (%zu differ)", bad);
        EXPECT(b.source_datatype == 4 /* DT_INT16 */, "int16 on disk");
        EXPECT_NEAR(b.spacing[0], 4.0, 1e-6, "spacing 384/96 mm");
        EXPECT(b.affine_code > 0 && b.affine[0][0] > 0 && b.affine[1][1] > 0, "RAS qform/sform");
    }
    volume_free(&b);
    volume_free(&c);
    int st = phantom_write_series("/nonexistent_genesis_dir", 1, 0, &small, NULL, NULL);
    EXPECT(st == GEN_ERR_IO && strstr(gen_error_message(), "/nonexistent_genesis_dir"),
           "missing output dir: %s", gen_error_message());
    small.dim[2] = 1;
    st = phantom_write_series(dir, 1, 0, &small, NULL, NULL);
    EXPECT(st == GEN_ERR_USAGE, "bad size refused");
    if (check_failures == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    TEST_MAIN_END();
}
