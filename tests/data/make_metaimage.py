#!/usr/bin/env python3
"""MetaImage copies of a NIfTI scan, for the tests of genesis's MetaImage reader (tests/integration/inputs.sh).

usage: make_metaimage.py SRC.nii[.gz] OUTDIR

Writes OUTDIR/ref.nii.gz, SRC's voxels with an oblique, axis-swapping RAS affine (so that reorientation
matters), and the same voxels and geometry as MetaImage in every form the reader handles:
  short_le.mhd/.raw      MET_SHORT, little-endian, separate data file
  short_msb.mhd/.raw     MET_SHORT, BinaryDataByteOrderMSB = True
  float_local.mha        MET_FLOAT, ElementDataFile = LOCAL
  short_zlib.mha         MET_SHORT, LOCAL, CompressedData = True (zlib)
  float_msb_zlib.mhd     MET_FLOAT, ElementByteOrderMSB = True, compressed .zraw
  double_synonyms.mhd    MET_DOUBLE, Position / Orientation instead of Offset / TransformMatrix
  list.mhd               ElementDataFile = LIST, one .raw file per slice in list/
  header_skip.mhd        HeaderSize = 37 (bytes of junk before the voxels)
  header_tail.mhd        HeaderSize = -1 (the voxels are the last bytes of the file)
Geometry, written independently of genesis: NIfTI's RAS affine A -> ITK's LPS by negating rows x and y;
spacing = column norms; TransformMatrix lists the direction of voxel axis 0, then 1, then 2 (ITK's
MetaImageIO: the i-th group of NDims numbers is SetDirection(i, ...)); voxels x fastest.
"""
import os
import sys
import zlib

import nibabel as nib
import numpy as np


def header(fields):
    return "".join(f"{k} = {v}\n" for k, v in fields)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    vox = np.asanyarray(nib.load(src).dataobj).astype(np.int16)
    spacing = np.array([0.75, 1.25, 2.5])
    t = np.radians(10.0)
    # voxel x runs toward posterior and voxel y toward right (rotated 10 degrees about z), voxel z up:
    # a direction matrix that is not symmetric, so that a transposed TransformMatrix changes the result
    cols = np.array([[np.sin(t), -np.cos(t), 0.0], [np.cos(t), np.sin(t), 0.0], [0.0, 0.0, 1.0]]).T
    affine = np.eye(4)
    affine[:3, :3] = cols * spacing
    affine[:3, 3] = [101.5, 87.25, -42.0]
    img = nib.Nifti1Image(vox, affine)
    img.header.set_xyzt_units("mm")
    img.set_sform(affine, 1)
    img.set_qform(affine, 1)
    nib.save(img, os.path.join(out, "ref.nii.gz"))

    lps = affine.copy()
    lps[:2, :] *= -1  # RAS -> LPS
    direction = lps[:3, :3] / spacing  # columns: unit directions of the voxel axes
    matrix = " ".join(f"{x:.17g}" for x in direction.T.ravel())  # axis 0's direction first
    offset = " ".join(f"{x:.17g}" for x in lps[:3, 3])
    dims = " ".join(str(d) for d in vox.shape)
    space = " ".join(f"{s:g}" for s in spacing)

    def common(etype, msb=False, compressed=False, keys=("Offset", "TransformMatrix")):
        return [("ObjectType", "Image"), ("NDims", 3), ("BinaryData", "True"),
                ("BinaryDataByteOrderMSB", "True" if msb else "False"),
                ("CompressedData", "True" if compressed else "False"),
                (keys[1], matrix), (keys[0], offset), ("CenterOfRotation", "0 0 0"),
                ("AnatomicalOrientation", "RAI"), ("ElementSpacing", space), ("DimSize", dims),
                ("ElementType", etype)]

    def data(dtype, msb=False):
        a = vox.astype(np.dtype(dtype).newbyteorder(">" if msb else "<"))
        return a.ravel(order="F").tobytes()  # x fastest

    def write(name, text, blob=None, blob_name=None):
        with open(os.path.join(out, name), "wb") as f:
            f.write(text.encode())
            if blob_name is None and blob is not None:
                f.write(blob)
        if blob_name is not None:
            with open(os.path.join(out, blob_name), "wb") as f:
                f.write(blob)

    raw = data("i2")
    write("short_le.mhd", header(common("MET_SHORT") + [("ElementDataFile", "short_le.raw")]), raw, "short_le.raw")
    write("short_msb.mhd", header(common("MET_SHORT", msb=True) + [("ElementDataFile", "short_msb.raw")]),
          data("i2", True), "short_msb.raw")
    write("float_local.mha", header(common("MET_FLOAT") + [("ElementDataFile", "LOCAL")]), data("f4"))
    z = zlib.compress(raw, 6)
    write("short_zlib.mha", header(common("MET_SHORT", compressed=True) + [("CompressedDataSize", len(z)),
                                                                           ("ElementDataFile", "LOCAL")]), z)
    z = zlib.compress(data("f4", True), 1)
    fields = common("MET_FLOAT", compressed=True)
    fields = [(k, v) for k, v in fields if k != "BinaryDataByteOrderMSB"] + [("ElementByteOrderMSB", "True")]
    write("float_msb_zlib.mhd", header(fields + [("ElementDataFile", "float_msb_zlib.zraw")]), z,
          "float_msb_zlib.zraw")
    write("double_synonyms.mhd", header(common("MET_DOUBLE", keys=("Position", "Orientation")) +
                                        [("ElementDataFile", "double_synonyms.raw")]), data("f8"),
          "double_synonyms.raw")
    os.makedirs(os.path.join(out, "list"), exist_ok=True)
    names = []
    plane = vox.shape[0] * vox.shape[1] * 2
    for k in range(vox.shape[2]):
        names.append(f"list/slice_{k:03d}.raw")
        with open(os.path.join(out, names[-1]), "wb") as f:
            f.write(raw[k * plane:(k + 1) * plane])
    write("list.mhd", header(common("MET_SHORT") + [("ElementDataFile", "LIST 2D")]) + "\n".join(names) + "\n")
    junk = bytes(range(37))
    write("header_skip.mhd", header(common("MET_SHORT") + [("HeaderSize", 37),
                                                           ("ElementDataFile", "header_skip.raw")]),
          junk + raw, "header_skip.raw")
    write("header_tail.mhd", header(common("MET_SHORT") + [("HeaderSize", -1),
                                                           ("ElementDataFile", "header_tail.raw")]),
          junk * 3 + raw, "header_tail.raw")


if __name__ == "__main__":
    main()
