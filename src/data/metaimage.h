/* The MetaImage header (ITK's .mhd/.mha format), parsed by src/data/volume_metaimage_header.c and
 * read by src/data/volume_metaimage.c (not part of the public API).
 *
 * A header is lines "Key = Value" ending with ElementDataFile, which names where the voxels are:
 *   LOCAL          right after the ElementDataFile line of the header file itself (.mha)
 *   NAME           one data file, relative to the header's folder (.mhd + .raw / .zraw)
 *   LIST [ND]      one file per line after the ElementDataFile line, each holding an N-D chunk
 *                  (default N = NDims - 1: one slice per file), in order of the last axis
 * Voxels are stored x fastest (as NIfTI). World coordinates are ITK's LPS:
 *   world = Offset + TransformMatrix^T-as-columns * diag(ElementSpacing) * index,
 * i.e. the i-th group of NDims numbers in TransformMatrix is the direction of voxel axis i. */
#ifndef GENESIS_METAIMAGE_H
#define GENESIS_METAIMAGE_H

#include <stddef.h>
#include <stdint.h>

enum metaimage_data_kind { METAIMAGE_LOCAL, METAIMAGE_FILE, METAIMAGE_LIST };

typedef struct metaimage_header {
    int ndims;                    /* 3, or 4 with dim[3] == 1 */
    int64_t dim[3];               /* DimSize of x, y, z, each >= 1; nz >= 2 */
    double spacing[3];            /* ElementSpacing (else ElementSize, else 1) in mm, > 0 */
    double offset[3];             /* Offset / Position / Origin, LPS mm */
    double direction[3][3];       /* [r][c]: LPS component r of voxel axis c's unit direction */
    int datatype;                 /* NIfTI DT_* code of ElementType */
    int bytes_per_voxel;
    int msb;                      /* 1: voxels stored big-endian (BinaryDataByteOrderMSB) */
    int compressed;               /* 1: CompressedData = True (zlib or gzip stream) */
    int64_t compressed_size;      /* CompressedDataSize, -1 when not given */
    int64_t header_size;          /* HeaderSize: bytes skipped in each data file; -1: data at its end */
    enum metaimage_data_kind kind;
    int64_t local_offset;         /* LOCAL: first data byte in the header file */
    char **files;                 /* FILE/LIST: data file paths (resolved against the header's folder) */
    size_t file_count;
    int list_dims;                /* LIST: dimensions per file (2: slices, 3: whole volumes) */
} metaimage_header;

/* Parses path's header into h (h->files allocated). GEN_ERR_IO when path cannot be read,
 * GEN_ERR_DATA "PATH: reason" when it is not a usable 3-D MetaImage header. On failure h is empty. */
int metaimage_read_header(const char *path, metaimage_header *h);
void metaimage_header_free(metaimage_header *h);

#endif
