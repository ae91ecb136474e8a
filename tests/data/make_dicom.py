#!/usr/bin/python3
"""Writes the DICOM test data of tests/unit/test_dicom.c into OUT (python3 make_dicom.py OUT).

Series are built with pydicom from phantom volumes defined here (voxels V[x, y, z], affine A:
voxel index -> RAS mm, as include/genesis/volume.h), independently of the reader under test:
slice k holds V[:, :, k] as Rows = ny, Columns = nx (pixel (row y, column x) = V[x, y, k]),
ImagePositionPatient = LPS of A (0, 0, k), ImageOrientationPatient = LPS directions of A's first two
columns, PixelSpacing = (|A[:, 1]|, |A[:, 0]|). The expected HU volumes are written as NIfTI
(nibabel, sform = A) to OUT/expected/, with OUT/expected/uids.txt ("NAME UID" lines).

OUT/series/    three series in one folder, files and InstanceNumbers shuffled, plus a text file:
               A  oblique (rotated about three axes), uint16 stored, RescaleSlope 2, Intercept -1024
               B  axial, int16, implicit VR little endian, no rescale
               C  a localizer: two scout images (coronal, sagittal), ImageType ...\\LOCALIZER
OUT/missing/   a series with its 4th slice removed          OUT/uneven/  one gap 3.5 mm, others 3 mm
OUT/tilt/      positions sliding sideways (gantry tilt)     OUT/mixed/   one slice of another size
OUT/orient/    one slice of another orientation (no LOCALIZER flag)
OUT/dup/       two slices at the same position              OUT/empty/   a text file only
OUT/truncated/ a series with one file cut inside its pixel data
OUT/undecodable/ a series in a transfer syntax GDCM 3.0 does not know (MPEG-4 AVC)
OUT/single/NAME/NAME.dcm  pydicom's own test files, one per folder; OUT/expected/NAME.f32 holds the
               values pydicom decodes (pixel_array * RescaleSlope + RescaleIntercept, float32,
               row-major) and OUT/expected/single.txt "NAME ROWS COLS" lines.
Exit status 77 when pydicom or nibabel is missing (the test is then skipped).
"""
import os
import shutil
import sys
import warnings

try:
    import numpy as np
    import nibabel as nib
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
except ImportError as e:
    print(f'SKIPPED: {e} (apt-get install python3-pydicom python3-nibabel)')
    sys.exit(77)

CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2'
UID_ROOT = '1.2.826.0.1.3680043.8.498.16.'  # test UIDs: ROOT + series number (+ . + slice)
LPS = np.diag([-1.0, -1.0, 1.0])            # RAS <-> LPS (its own inverse)
# MPEG-4 AVC/H.264 High Profile: a video syntax GDCM has no decoder for. (A garbage JPEG Baseline
# stream would not do: Debian's GDCM asserts on it and aborts the process.)
UNDECODABLE_SYNTAX = '1.2.840.10008.1.2.4.102'
PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files')


def rotation(ax, ay, az):
    """Rotation about x, then y, then z (angles in degrees)."""
    a, b, c = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def affine_of(rot, spacing, origin):
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def ds_str(values):
    """A DS multi-value with at most 16 characters per value."""
    return [f'{float(v):.8g}' for v in values]


def make_slice(series, k, pixels, position_lps, row_dir, col_dir, pixel_spacing, *, instance,
               slope=None, intercept=None, image_type=('ORIGINAL', 'PRIMARY', 'AXIAL'),
               syntax=ExplicitVRLittleEndian):
    """One CT slice; pixels: (rows, cols) array of uint16 or int16 (stored values)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = f'{UID_ROOT}{series}.{k + 1}'
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(None, {}, file_meta=meta, preamble=b'\0' * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.ImageType = list(image_type)
    ds.Modality = 'CT'
    ds.PatientName = 'Phantom^Genesis'
    ds.PatientID = 'GENESIS16'
    ds.StudyInstanceUID = f'{UID_ROOT}0'
    ds.SeriesInstanceUID = f'{UID_ROOT}{series}'
    ds.SeriesNumber = series
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = ds_str(position_lps)
    ds.ImageOrientationPatient = ds_str(list(row_dir) + list(col_dir))
    ds.PixelSpacing = ds_str(pixel_spacing)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    if slope is not None:
        ds.RescaleSlope = ds_str([slope])[0]
        ds.RescaleIntercept = ds_str([intercept])[0]
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder('<')).tobytes()
    return ds


def write_series(folder, series, stored, affine, *, slope=None, intercept=None, rng, names,
                 syntax=ExplicitVRLittleEndian, skip=(), positions=None, edit=None):
    """Writes stored[x, y, z] as slices under random names (names: a set of used names) with
    shuffled InstanceNumbers. positions: per-slice z offsets (voxels) instead of 0, 1, 2, ...;
    edit(k, ds): a hook to spoil one slice."""
    nz = stored.shape[2]
    rot = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    row_dir, col_dir = LPS @ rot[:, 0], LPS @ rot[:, 1]
    instances = rng.permutation(nz) + 1
    for k in range(nz):
        if k in skip:
            continue
        zk = k if positions is None else positions[k]
        position = LPS @ (affine @ np.array([0.0, 0.0, zk, 1.0]))[:3]
        ds = make_slice(series, k, stored[:, :, k].T, position, row_dir, col_dir,
                        (spacing[1], spacing[0]), instance=int(instances[k]), slope=slope,
                        intercept=intercept, syntax=syntax)
        if edit is not None:
            edit(k, ds)
        while True:
            name = f'IM{rng.integers(0, 10**6):06d}'
            if name not in names:
                break
        names.add(name)
        ds.save_as(os.path.join(folder, name), write_like_original=False)


def save_expected(path, hu, affine):
    img = nib.Nifti1Image(hu.astype(np.float32), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, path)


def fresh(out, name):
    path = os.path.join(out, name)
    os.makedirs(path, exist_ok=True)
    return path


def small_series(folder, rng, **kw):
    """A 10 x 8 x 6 axial int16 series (series number 7), spacing 0.5 x 0.5 x 3 mm."""
    stored = rng.integers(-1000, 1000, size=(10, 8, 6)).astype(np.int16)
    affine = affine_of(np.eye(3), (0.5, 0.5, 3.0), (10.0, -20.0, 30.0))
    write_series(folder, 7, stored, affine, rng=rng, names=set(), **kw)
    return stored, affine


def main(out):
    warnings.simplefilter('ignore')  # pydicom on MR_small_padded's excess padding
    rng = np.random.default_rng(16)
    expected = fresh(out, 'expected')
    series = fresh(out, 'series')
    names = set()
    # A: oblique, uint16 stored, HU = 2 * stored - 1024
    stored_a = rng.integers(0, 1600, size=(20, 16, 12)).astype(np.uint16)
    affine_a = affine_of(rotation(20, -15, 10), (0.7, 0.8, 2.5), (-50.0, 30.0, -100.0))
    write_series(series, 1, stored_a, affine_a, slope=2, intercept=-1024, rng=rng, names=names)
    save_expected(os.path.join(expected, 'A.nii'), 2.0 * stored_a - 1024.0, affine_a)
    # B: axial, int16, implicit VR, no rescale
    stored_b = rng.integers(-1024, 3000, size=(10, 8, 5)).astype(np.int16)
    affine_b = affine_of(np.eye(3), (0.5, 0.6, 3.0), (5.0, -7.0, 11.0))
    write_series(series, 2, stored_b, affine_b, rng=rng, names=names, syntax=ImplicitVRLittleEndian)
    save_expected(os.path.join(expected, 'B.nii'), stored_b.astype(np.float64), affine_b)
    # C: two scouts, coronal and sagittal
    for k, (row_dir, col_dir) in enumerate((((1, 0, 0), (0, 0, -1)), ((0, 1, 0), (0, 0, -1)))):
        ds = make_slice(3, k, rng.integers(0, 100, size=(8, 8)).astype(np.uint16), (0, 0, 0), row_dir,
                        col_dir, (1, 1), instance=k + 1, image_type=('ORIGINAL', 'PRIMARY', 'LOCALIZER'))
        ds.save_as(os.path.join(series, f'SCOUT{k}'), write_like_original=False)
    with open(os.path.join(series, 'notes.txt'), 'w') as f:
        f.write('not a DICOM file: the reader ignores it\n')
    with open(os.path.join(expected, 'uids.txt'), 'w') as f:
        for n, name in enumerate('ABC', 1):
            f.write(f'{name} {UID_ROOT}{n}\n')

    small_series(fresh(out, 'missing'), rng, skip=(3,))
    small_series(fresh(out, 'uneven'), rng, positions=[0, 1, 2, 3, 4 + 1 / 6, 5 + 1 / 6])
    def tilt(k, ds):
        p = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = ds_str([p[0], p[1] + 0.5 * k, p[2]])
    small_series(fresh(out, 'tilt'), rng, edit=tilt)
    def resize(k, ds):
        if k == 2:
            ds.Rows, ds.Columns = 4, 5
            ds.PixelData = np.zeros((4, 5), '<i2').tobytes()
    small_series(fresh(out, 'mixed'), rng, edit=resize)
    def turn(k, ds):
        if k == 4:
            ds.ImageOrientationPatient = ds_str([1, 0, 0, 0, 0, -1])
    small_series(fresh(out, 'orient'), rng, edit=turn)
    small_series(fresh(out, 'dup'), rng, positions=[0, 1, 2, 2, 3, 4])
    with open(os.path.join(fresh(out, 'empty'), 'readme.txt'), 'w') as f:
        f.write('no images here\n')
    truncated = fresh(out, 'truncated')
    small_series(truncated, rng)
    victim = sorted(os.listdir(truncated))[2]
    with open(os.path.join(truncated, victim), 'r+b') as f:
        f.truncate(os.path.getsize(os.path.join(truncated, victim)) - 60)
    with open(os.path.join(expected, 'truncated.txt'), 'w') as f:
        f.write(victim + '\n')
    def garbage_jpeg(k, ds):
        ds.file_meta.TransferSyntaxUID = UNDECODABLE_SYNTAX
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = encapsulate([bytes(rng.integers(0, 256, 200, dtype=np.uint8))])
        ds['PixelData'].VR = 'OB'
        ds['PixelData'].is_undefined_length = True
    small_series(fresh(out, 'undecodable'), rng, edit=garbage_jpeg)

    # pydicom's own files, one per folder, and the values pydicom decodes
    lines = []
    for name in ('CT_small', 'MR_small', 'MR_small_bigendian', 'MR_small_implicit', 'MR_small_RLE',
                 'MR_small_expb', 'MR_small_padded'):
        src = os.path.join(PYDICOM_FILES, name + '.dcm')
        if not os.path.exists(src):
            print(f'make_dicom: {src} missing, not tested')
            continue
        shutil.copy(src, os.path.join(fresh(out, os.path.join('single', name)), name + '.dcm'))
        ds = pydicom.dcmread(src)
        hu = ds.pixel_array.astype(np.float64) * float(ds.get('RescaleSlope', 1)) + \
            float(ds.get('RescaleIntercept', 0))
        hu.astype('<f4').tofile(os.path.join(expected, name + '.f32'))
        lines.append(f'{name} {hu.shape[0]} {hu.shape[1]}\n')
    with open(os.path.join(expected, 'single.txt'), 'w') as f:
        f.writelines(lines)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: make_dicom.py OUT')
    main(sys.argv[1])
