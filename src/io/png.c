/* PNG writing with libpng (include/genesis/png.h). */
#include "genesis/png.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genesis/atomic_file.h"
#include "genesis/error.h"

struct png_error_context {
    char message[256];
};

static void on_png_error(png_structp png, png_const_charp message)
{
    struct png_error_context *ctx = png_get_error_ptr(png);
    snprintf(ctx->message, sizeof ctx->message, "%s", message);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message; /* warnings do not fail a picture */
}

/* Writes the PNG stream into f; returns 0, or -1 with ctx->message set. */
static int write_stream(FILE *f, const uint8_t *pixels, int width, int height, int channels,
                        struct png_error_context *ctx)
{
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, on_png_error, on_png_warning);
    if (!png) {
        snprintf(ctx->message, sizeof ctx->message, "png_create_write_struct failed");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(ctx->message, sizeof ctx->message, "png_create_info_struct failed");
        return -1;
    }
    /* png and info are not modified after setjmp, so they survive the longjmp */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * width * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int image_write_png(const char *path, const uint8_t *pixels, int width, int height, int channels)
{
    CHECK(path && path[0] && pixels, GEN_ERR_USAGE, "image_write_png: no path or pixels");
    CHECK(width > 0 && height > 0 && width <= 1000000 && height <= 1000000, GEN_ERR_USAGE,
          "image_write_png: bad size %d x %d", width, height);
    CHECK(channels == 1 || channels == 3, GEN_ERR_USAGE,
          "image_write_png: %d channels (1 or 3 expected)", channels);
    int status = GEN_OK;
    FILE *f = NULL;
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    CHECK_ALLOC_GOTO(tmp, len);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "wb");
    CHECK_GOTO(f, GEN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    struct png_error_context ctx = {{0}};
    CHECK_GOTO(write_stream(f, pixels, width, height, channels, &ctx) == 0, GEN_ERR_IO, "writing PNG %s: %s",
               path, ctx.message);
    CHECK_GOTO(fflush(f) == 0 && fsync(fileno(f)) == 0, GEN_ERR_IO, "writing PNG %s: write failed: %s", path,
               strerror(errno));
    int closed = fclose(f);
    f = NULL;
    CHECK_GOTO(closed == 0, GEN_ERR_IO, "writing PNG %s: close failed: %s", path, strerror(errno));
    CALL_GOTO(atomic_file_commit(tmp, path));
cleanup:
    if (f) fclose(f);
    if (status != GEN_OK && tmp) remove(tmp); /* gone already when the rename succeeded */
    free(tmp);
    return status;
}
