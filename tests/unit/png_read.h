/* Test helpers for pictures: a PNG read back with libpng's simplified API; the temporary folder of
 * the pictures removed at the end, or kept for a look. */
#ifndef GENESIS_TEST_PNG_READ_H
#define GENESIS_TEST_PNG_READ_H

#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a PNG as 8-bit gray (or RGB when channels == 3); returns a malloc'd buffer or NULL. */
static inline uint8_t *read_png(const char *path, int channels, int *width, int *height)
{
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path)) return NULL;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!pixels || !png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        free(pixels);
        png_image_free(&image);
        return NULL;
    }
    *width = (int)image.width;
    *height = (int)image.height;
    return pixels;
}

/* Removes dir (rm -rf), or keeps it and says so when the environment variable keep is set. */
static inline void remove_picture_dir(const char *dir, const char *keep)
{
    if (getenv(keep)) {
        printf("pictures kept in %s\n", dir);
        return;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

#endif
