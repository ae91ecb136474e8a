/* PNG writing and the corruption preview (include/genesis/png.h), read back with libpng. */
#include "check.h"
#include "genesis/batch.h"
#include "genesis/config.h"
#include "genesis/error.h"
#include "genesis/png.h"
#include "png_read.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void test_image_write(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gray.png", dir);
    enum { W = 37, H = 11 };
    uint8_t gray[W * H], rgb[W * H * 3];
    for (int i = 0; i < W * H; i++) gray[i] = (uint8_t)(i * 7);
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 13 + 1);
    EXPECT_OK(image_write_png(path, gray, W, H, 1));
    int w = 0, h = 0;
    uint8_t *back = read_png(path, 1, &w, &h);
    EXPECT(back && w == W && h == H, "gray PNG read back as %d x %d", w, h);
    EXPECT(back && memcmp(back, gray, sizeof gray) == 0, "gray pixels differ");
    free(back);
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    EXPECT_OK(image_write_png(path, rgb, W, H, 3));
    back = read_png(path, 3, &w, &h);
    EXPECT(back && w == W && h == H && memcmp(back, rgb, sizeof rgb) == 0, "RGB PNG differs");
    free(back);

    EXPECT(image_write_png(path, rgb, W, H, 2) == GEN_ERR_USAGE, "2 channels accepted");
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
    EXPECT(image_write_png(path, gray, W, H, 1) == GEN_ERR_IO, "missing directory accepted");
    EXPECT(strstr(gen_error_message(), "no/such/dir") != NULL, "message: %s",
           gen_error_message());
}

static void test_preview(const char *dir)
{
    enum { R = 64, C = 64, D = 32, NV = R * C * D, N = 3 };
    float *cubes = malloc((size_t)N * NV * sizeof(float));
    float *inputs = malloc((size_t)N * NV * sizeof(float));
    float *targets = malloc((size_t)N * NV * sizeof(float));
    if (!cubes || !inputs || !targets) {
        EXPECT(0, "allocation");
        return;
    }
    /* a bright ball in a dark cube, different radius per sample */
    for (int s = 0; s < N; s++)
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++)
                for (int k = 0; k < D; k++) {
                    double r2 = (i - 32.0) * (i - 32.0) + (j - 32.0) * (j - 32.0) +
                                4 * (k - 16.0) * (k - 16.0);
                    cubes[(size_t)s * NV + ((size_t)i * C + j) * D + k] =
                        r2 < (10.0 + 5 * s) * (10.0 + 5 * s) ? 0.8f : 0.1f;
                }
    const float *ptrs[N];
    for (int s = 0; s < N; s++) ptrs[s] = cubes + (size_t)s * NV;
    int64_t index[N] = {7, 123456, 42};
    struct corrupt_record rec[N];
    unsigned masks[N];
    genesis_config defaults;
    EXPECT_OK(config_defaults(&defaults));
    struct config_corrupt cfg = defaults.corrupt; /* the paper\'s */
    struct corrupt_workspace *ws;
    EXPECT_OK(corrupt_workspace_create(&ws, &cfg, R, C, D));
    struct batch_job job = {.seed = 1, .epoch = 0, .n = N, .sample_index = index, .cubes = ptrs,
                            .inputs = inputs, .targets = targets, .records = rec};
    EXPECT_OK(batch_make(ws, &job));
    for (int s = 0; s < N; s++) masks[s] = rec[s].mask;

    char path[512];
    for (int with_output = 0; with_output < 2; with_output++) {
        snprintf(path, sizeof path, "%s/preview%d.png", dir, with_output);
        EXPECT_OK(preview_write_png(path, inputs, targets, with_output ? targets : NULL, N, R, C,
                                    D, index, masks));
        int want_w = 0, want_h = 0, w = 0, h = 0;
        EXPECT_OK(preview_image_size(N, R, C, with_output, &want_w, &want_h));
        uint8_t *px = read_png(path, 1, &w, &h);
        EXPECT(px != NULL, "preview %s does not decode", path);
        EXPECT(w == want_w && h == want_h, "preview is %d x %d, expected %d x %d", w, h, want_w,
               want_h);
        /* 2 or 3 groups of 4 slices of 128 px, stacked N bands of 128 px plus labels */
        EXPECT(w >= (with_output ? 3 : 2) * 4 * 128 && h >= N * 128, "%d x %d is too small", w,
               h);
        if (px) {
            long text = 0, bright = 0, dark = 0;
            for (long i = 0; i < (long)w * h; i++) {
                text += px[i] == 255;
                bright += px[i] == (uint8_t)(0.8f * 255 + 0.5f);
                dark += px[i] == (uint8_t)(0.1f * 255 + 0.5f);
            }
            EXPECT(text > 500, "only %ld label pixels", text);
            EXPECT(bright > 10000 && dark > 10000, "target slices missing: %ld bright, %ld dark",
                   bright, dark);
        }
        free(px);
    }
    EXPECT(access(path, F_OK) == 0, "preview file missing");
    char leftover[600];
    snprintf(leftover, sizeof leftover, "%s.tmp.%ld", path, (long)getpid());
    EXPECT(access(leftover, F_OK) != 0, "temporary file left behind");
    EXPECT(preview_write_png(path, inputs, targets, NULL, 0, R, C, D, NULL, NULL) == GEN_ERR_USAGE,
           "0 samples accepted");
    char text[96];
    EXPECT(strcmp(preview_mask_text(CORRUPT_FLIP | CORRUPT_NONLINEAR | CORRUPT_INVERT |
                                        CORRUPT_OUTPAINT, text, sizeof text),
                  "FLIP NONLINEAR-INV OUTPAINT") == 0, "mask text: %s", text);
    EXPECT(strcmp(preview_mask_text(0, text, sizeof text), "NONE") == 0, "mask text: %s", text);
    corrupt_workspace_destroy(ws);
    free(cubes);
    free(inputs);
    free(targets);
}

int main(void)
{
    char dir[] = "/tmp/genesis_preview_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_image_write(dir);
    test_preview(dir);
    remove_picture_dir(dir, "GENESIS_KEEP_PREVIEW");
    TEST_MAIN_END();
}
