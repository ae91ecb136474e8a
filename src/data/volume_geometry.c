/* Reorientation to RAS and trilinear resampling of scan volumes (include/genesis/volume.h). */
#include "genesis/volume.h"

#include "genesis/error.h"
#include "volume_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nifti2_io.h"

/* c = a * b for 4x4 matrices (c may not alias a or b). */
static void affine_mul(double c[4][4], const double a[4][4], const double b[4][4])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0.0;
            for (int k = 0; k < 4; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
}
/* ---- reorientation and resampling ------------------------------------------------------- */

int volume_reorient_ras(volume *v)
{
    nifti_dmat44 m;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) m.m[i][j] = v->affine[i][j];
    int code[3];
    nifti_dmat44_to_orientation(m, &code[0], &code[1], &code[2]);
    /* code[a]: NIFTI_L2R 1, R2L 2, P2A 3, A2P 4, I2S 5, S2I 6. Output axis b takes the input axis
     * whose code is 2b+1 (as is) or 2b+2 (flipped). */
    int perm[3] = {-1, -1, -1}, flip[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        CHECK(code[a] >= 1 && code[a] <= 6, GEN_ERR_DATA,
              "cannot reorient: degenerate voxel-to-world matrix (axis %d)", a);
        int b = (code[a] - 1) / 2;
        CHECK(perm[b] < 0, GEN_ERR_DATA, "cannot reorient: two voxel axes map to world axis %d", b);
        perm[b] = a;
        flip[b] = (code[a] % 2) == 0;
    }
    if (perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && !flip[0] && !flip[1] && !flip[2])
        return GEN_OK;

    const int64_t *od = v->dim;
    int64_t ostride[3] = {od[1] * od[2], od[2], 1};
    int64_t nd[3], step[3], base = 0;
    for (int b = 0; b < 3; b++) {
        nd[b] = od[perm[b]];
        step[b] = flip[b] ? -ostride[perm[b]] : ostride[perm[b]];
        if (flip[b]) base += (od[perm[b]] - 1) * ostride[perm[b]];
    }
    size_t n = (size_t)(nd[0] * nd[1] * nd[2]);
    float *out = malloc(n * sizeof(float));
    CHECK_ALLOC(out, n * sizeof(float));
    size_t o = 0;
    for (int64_t i = 0; i < nd[0]; i++)
        for (int64_t j = 0; j < nd[1]; j++) {
            int64_t src = base + i * step[0] + j * step[1];
            for (int64_t k = 0; k < nd[2]; k++, src += step[2]) out[o++] = v->data[src];
        }
    /* New index -> old index: old[perm[b]] = flip[b] ? n - 1 - new[b] : new[b]. */
    double map[4][4], affine[4][4];
    memset(map, 0, sizeof map);
    map[3][3] = 1.0;
    double spacing[3];
    for (int b = 0; b < 3; b++) {
        map[perm[b]][b] = flip[b] ? -1.0 : 1.0;
        if (flip[b]) map[perm[b]][3] = (double)(od[perm[b]] - 1);
        spacing[b] = v->spacing[perm[b]];
    }
    affine_mul(affine, (const double(*)[4])v->affine, (const double(*)[4])map);
    free(v->data);
    v->data = out;
    memcpy(v->dim, nd, sizeof nd);
    memcpy(v->spacing, spacing, sizeof spacing);
    memcpy(v->affine, affine, sizeof affine);
    return GEN_OK;
}

/* One 1-D linear-interpolation pass along `axis`: in has dims idim, out has idim with
 * idim[axis] replaced by n_out; output i samples c = clamp(i * scale + offset, 0, n_in - 1). */
static void lerp_axis(float *out, const float *in, const int64_t idim[3], int axis, int64_t n_out,
                      double scale, double offset)
{
    int64_t n_in = idim[axis];
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++) outer *= idim[a];
    for (int a = axis + 1; a < 3; a++) inner *= idim[a];
    for (int64_t i = 0; i < n_out; i++) {
        double c = (double)i * scale + offset;
        if (c < 0) c = 0;
        if (c > (double)(n_in - 1)) c = (double)(n_in - 1);
        int64_t i0 = (int64_t)c;
        if (i0 > n_in - 2) i0 = n_in >= 2 ? n_in - 2 : 0;
        float w = (float)(c - (double)i0);
        int64_t i1 = n_in >= 2 ? i0 + 1 : 0;
        for (int64_t o = 0; o < outer; o++) {
            const float *a = in + (size_t)((o * n_in + i0) * inner);
            const float *b = in + (size_t)((o * n_in + i1) * inner);
            float *dst = out + (size_t)((o * n_out + i) * inner);
            for (int64_t k = 0; k < inner; k++) dst[k] = a[k] + w * (b[k] - a[k]);
        }
    }
}

int trilinear_resize(float *out, const int64_t odim[3], const float *in, const int64_t idim[3],
                     const double scale[3], const double offset[3])
{
    for (int a = 0; a < 3; a++)
        CHECK(odim[a] >= 1 && idim[a] >= 1, GEN_ERR_INTERNAL, "trilinear_resize: empty axis %d", a);
    /* Passes z, then y, then x; two temporaries hold the partial results. */
    int64_t d1[3] = {idim[0], idim[1], odim[2]};
    int64_t d2[3] = {idim[0], odim[1], odim[2]};
    size_t n1 = (size_t)(d1[0] * d1[1] * d1[2]), n2 = (size_t)(d2[0] * d2[1] * d2[2]);
    float *t1 = malloc(n1 * sizeof(float));
    float *t2 = malloc(n2 * sizeof(float));
    if (t1 == NULL || t2 == NULL) {
        free(t1);
        free(t2);
        FAIL(GEN_ERR_NOMEM, "out of memory allocating %zu bytes", (n1 + n2) * sizeof(float));
    }
    lerp_axis(t1, in, idim, 2, odim[2], scale[2], offset[2]);
    lerp_axis(t2, t1, d1, 1, odim[1], scale[1], offset[1]);
    lerp_axis(out, t2, d2, 0, odim[0], scale[0], offset[0]);
    free(t1);
    free(t2);
    return GEN_OK;
}

int volume_resample(volume *v, const double spacing[3])
{
    int64_t nd[3];
    double scale[3], offset[3] = {0, 0, 0}, target[3];
    for (int a = 0; a < 3; a++) {
        CHECK(isfinite(spacing[a]), GEN_ERR_USAGE, "resample: spacing %d is %g", a, spacing[a]);
        target[a] = spacing[a] > 0 ? spacing[a] : v->spacing[a];
        scale[a] = target[a] / v->spacing[a];
        nd[a] = (int64_t)floor((double)(v->dim[a] - 1) / scale[a] + 1e-9) + 1;
    }
    if (nd[0] == v->dim[0] && nd[1] == v->dim[1] && nd[2] == v->dim[2] && scale[0] == 1.0 &&
        scale[1] == 1.0 && scale[2] == 1.0)
        return GEN_OK;
    size_t n = (size_t)(nd[0] * nd[1] * nd[2]);
    int status = GEN_OK;
    float *out = malloc(n * sizeof(float));
    CHECK_ALLOC_GOTO(out, n * sizeof(float));
    CALL_GOTO(trilinear_resize(out, nd, v->data, v->dim, scale, offset));
    free(v->data);
    v->data = out;
    out = NULL;
    for (int a = 0; a < 3; a++) {
        for (int r = 0; r < 3; r++) v->affine[r][a] *= scale[a];
        v->dim[a] = nd[a];
        v->spacing[a] = target[a];
    }
cleanup:
    free(out);
    return status;
}
