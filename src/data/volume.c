/* Scan volumes in memory, and the helpers the reader, the writer and the geometry share
 * (include/genesis/volume.h; reading in volume_read.c, writing in volume_write.c, reorientation
 * and resampling in volume_geometry.c). */
#include "genesis/volume.h"

#include "genesis/error.h"
#include "volume_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nifti2_io.h"

/* ---- small helpers ---------------------------------------------------------------------- */

int volume_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

void volume_affine_identity(double a[4][4])
{
    memset(a, 0, 16 * sizeof(double));
    for (int i = 0; i < 4; i++) a[i][i] = 1.0;
}

int gzip_verify(const char *path)
{
    gzFile f = gzopen(path, "rb");
    CHECK(f != NULL, GEN_ERR_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    int status = GEN_OK;
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    CHECK_ALLOC_GOTO(buf, (size_t)CHUNK);
    int got, err = Z_OK;
    while ((got = gzread(f, buf, CHUNK)) > 0) {
    }
    const char *msg = gzerror(f, &err);
    char reason[160];
    snprintf(reason, sizeof reason, "%s", msg ? msg : "");
    int close_status = gzclose(f);
    f = NULL;
    int stream_ok = got >= 0 && (err == Z_OK || err == Z_STREAM_END);
    CHECK_GOTO(stream_ok || err != Z_BUF_ERROR, GEN_ERR_DATA, "%s: truncated gzip stream (%s)", path,
               reason);
    CHECK_GOTO(stream_ok, GEN_ERR_DATA, "%s: corrupt gzip stream (%s)", path, reason);
    /* gzclose reports a CRC/length mismatch of the last member as Z_DATA_ERROR / Z_BUF_ERROR. */
    CHECK_GOTO(close_status == Z_OK, GEN_ERR_DATA, "%s: corrupt gzip stream (check on close: %d)",
               path, close_status);
cleanup:
    if (f != NULL) gzclose(f);
    free(buf);
    return status;
}

int volume_alloc(volume *v, const int64_t dim[3], const double spacing[3])
{
    memset(v, 0, sizeof *v);
    for (int a = 0; a < 3; a++) {
        CHECK(dim[a] >= 1, GEN_ERR_USAGE, "volume_alloc: dimension %d is %lld", a,
              (long long)dim[a]);
        CHECK(spacing[a] > 0 && isfinite(spacing[a]), GEN_ERR_USAGE,
              "volume_alloc: spacing %d is %g", a, spacing[a]);
    }
    size_t n = (size_t)(dim[0] * dim[1] * dim[2]);
    v->data = calloc(n, sizeof(float));
    CHECK_ALLOC(v->data, n * sizeof(float));
    volume_affine_identity(v->affine);
    for (int a = 0; a < 3; a++) {
        v->dim[a] = dim[a];
        v->spacing[a] = spacing[a];
        v->affine[a][a] = spacing[a];
        v->affine[a][3] = -0.5 * (double)(dim[a] - 1) * spacing[a];
    }
    v->affine_code = NIFTI_XFORM_SCANNER_ANAT;
    return GEN_OK;
}

void volume_free(volume *v)
{
    if (v == NULL) return;
    free(v->data);
    memset(v, 0, sizeof *v);
}
