#!/usr/bin/env bash
# genesis prep's inputs beyond NIfTI globs (src/prep/inputs.c, src/data/volume_metaimage*.c):
#   - MetaImage copies of a NIfTI scan (tests/data/make_metaimage.py: .mhd/.raw and .mha, compressed
#     and not, both byte orders, short/float/double, an oblique axis-swapping direction matrix, LIST,
#     HeaderSize) each give bitwise the cubes of the NIfTI file, with reorientation and resampling on;
#     a transposed TransformMatrix does not (the comparison can fail);
#   - the same cubes file from MetaImage inputs at 1 and 3 ranks;
#   - genesis info names each scan's format; a cubes file without formats reads as nifti;
#   - bad MetaImage inputs: a named warning each (an error under strict = true, nothing written);
#   - @list.txt (comments, relative paths, a bad line named) and folder inputs;
#   - genesis restore of a .mhd writes NIfTI with the scan's geometry and the NIfTI scan's values.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

conf=$t/prep.ini
cat > $conf <<INI
[model]
width = 4
[prep]
normalize = ct
filter = none
border_xy = 4
border_z = 2
cubes_per_scan = 4
reorient_ras = true
spacing_x = 1
spacing_y = 1
spacing_z = 2
validation_fraction = 0.25
test_fraction = 0.25
[train]
batch = 2
max_steps = 2
checkpoint_minutes = 0
preview_epochs = 0
INI
make_scans - $t/src 1 128,128,48
expect "phantom writes the source scan" test $rc -eq 0
run $PY "$GENESIS_SOURCE_DIR/tests/data/make_metaimage.py" $t/src/phantom_0000.nii.gz $t/mi
expect "make_metaimage.py writes the MetaImage copies" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out"

# Each MetaImage copy alone gives the NIfTI file's cubes, bit for bit.
datasets="cubes scan_index corner crop split"
prep_cubes - $conf $t/mi/ref.nii.gz $t/ref.h5
expect "prep of the NIfTI reference" test $rc -eq 0
variants="short_le.mhd short_msb.mhd float_local.mha short_zlib.mha float_msb_zlib.mhd double_synonyms.mhd
          list.mhd header_skip.mhd header_tail.mhd"
for f in $variants; do
  prep_cubes - $conf $t/mi/$f $t/$f.h5
  same=0
  for d in $datasets; do h5diff -q $t/ref.h5 $t/$f.h5 /$d /$d >/dev/null || same=1; done
  expect "$f: prep exits 0 with the NIfTI file's cubes, bit for bit" test $rc -eq 0 -a $same -eq 0
done
# The check can fail: the same header with TransformMatrix transposed gives other cubes.
$PY - $t/mi/short_le.mhd $t/mi/transposed.mhd <<'PY'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r'TransformMatrix = (.*)\n', s); v = m.group(1).split()
open(sys.argv[2], 'w').write(s.replace(m.group(1), ' '.join(v[c * 3 + r] for r in range(3) for c in range(3))))
PY
prep_cubes - $conf $t/mi/transposed.mhd $t/transposed.h5
expect "a transposed TransformMatrix gives other cubes" test $rc -eq 0 -a -n "$(h5diff -q $t/ref.h5 $t/transposed.h5 /cubes /cubes 2>&1 || echo differ)"
rm $t/mi/transposed.mhd

# Rank-count invariance with MetaImage inputs; info names the formats.
for np in 1 3; do
  prep_cubes $np $conf "$t/mi/*.mh[da],$t/mi/ref.nii.gz" $t/all$np.h5
  expect "prep of every copy at $np rank(s)" test $rc -eq 0
done
for d in $datasets scans; do
  expect "/$d identical at 1 and 3 ranks (MetaImage inputs)" h5diff -q $t/all1.h5 $t/all3.h5 /$d /$d
done
run "$G" info $t/all1.h5
expect "info: 10 scans used" has "10, of which 10 used"
expect "info: the .mhd scans are metaimage" test "$(grep -c ' metaimage .*\.mh[da]$' <<<"$out")" = 9
expect "info: the NIfTI scan is nifti" grep -q " nifti .*ref.nii.gz$" <<<"$out"
# A cubes file written before the format column: its scans read as nifti.
cp $t/all1.h5 $t/old.h5
$PY - $t/old.h5 <<'PY'
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'r+') as f:
    s = f['scans'][...]
    names = [n for n in s.dtype.names if n != 'format']
    old = np.zeros(s.shape, np.dtype([(n, s.dtype[n]) for n in names]))
    for n in names: old[n] = s[n]
    del f['scans']; f['scans'] = old
PY
run "$G" info $t/old.h5
expect "a cubes file without formats: info shows nifti for every scan" test $rc -eq 0 -a "$(grep -c ' nifti ' <<<"$out")" = 10

# Bad MetaImage inputs beside a good scan: each skipped with a warning naming it.
mkdir -p $t/bad
cp $t/mi/short_zlib.mha $t/bad/good.mha
hdr() { sed "$1" $t/mi/short_le.mhd > $t/bad/$2; }
hdr 's|short_le.raw|nowhere.raw|' missing_data.mhd
head -c 5000 $t/mi/short_le.raw > $t/bad/short.raw
hdr 's|short_le.raw|short.raw|' short_data.mhd
hdr 's|NDims = 3|NDims = 2|' bad_ndims.mhd
hdr 's|DimSize = .*|DimSize = 128 0 48|' bad_dimsize.mhd
hdr 's|DimSize = .*|DimSize = 100000 100000 5000|;s|short_le.raw|short.raw|' huge_dimsize.mhd
head -c 40000 $t/mi/float_local.mha > $t/bad/truncated.mha
head -c 20000 $t/mi/short_zlib.mha > $t/bad/truncated_zlib.mha
prep_cubes 2 $conf "$t/bad/*.mh[da]" $t/bad.h5
expect "prep with bad MetaImage scans still succeeds" test $rc -eq 0
for f in missing_data.mhd short_data.mhd bad_ndims.mhd bad_dimsize.mhd huge_dimsize.mhd truncated.mha \
         truncated_zlib.mha; do
  expect "bad scan $f: a warning names it" has "warning on rank [0-9]: skipping scan: $t/bad/$f: "
done
expect "the reasons: missing, short, NDims, DimSize, truncated" has_all "cannot open data file" \
  "truncated or short data" "DimSize has 3 values, NDims is 2" "is not a size" "truncated compressed data"
expect "7 of 8 scans skipped" has "7 of 8 scans skipped"
prep_cubes 2 $conf "$t/bad/*.mh[da]" $t/strict.h5 --set prep.strict=true
expect "strict = true: a bad MetaImage scan is an error" test $rc -eq 1
expect "strict = true: the error names the scan" has "genesis: error: $t/bad/"
expect "strict = true: no output, no partial file" test -z "$(ls $t | grep strict)"

# @list.txt: comments, blank lines, paths relative to the list's folder; a bad line named.
mkdir -p $t/lists
printf '# two copies and the reference\n\n../mi/short_le.mhd\n  ../mi/list.mhd  \n%s\n' "$t/mi/ref.nii.gz" \
  > $t/lists/scans.txt
prep_cubes - $conf "@$t/lists/scans.txt" $t/list.h5
expect "prep of @scans.txt exits 0" test $rc -eq 0
run "$G" info $t/list.h5
expect "@scans.txt: exactly its three scans" test "$(grep -c 'cubes  ' <<<"$out")" = 3 -a \
  "$(grep -c "$t/lists/../mi/short_le.mhd\|$t/lists/../mi/list.mhd\|$t/mi/ref.nii.gz" <<<"$out")" = 3
printf '../mi/short_le.mhd\n\n# missing below\n../mi/absent.mhd\n' > $t/lists/bad.txt
prep_cubes - $conf "@$t/lists/bad.txt" $t/badlist.h5
expect "a bad line of a list: exit 2, naming the list and the line" test $rc -eq 2 -a \
  -n "$(grep "$t/lists/bad.txt:4: no scan matches '$t/lists/../mi/absent.mhd'" <<<"$out")"
expect "a bad list: nothing written" test ! -e $t/badlist.h5

# A folder: the scans directly in it (not the .raw files, not the list/ subfolder's slices).
prep_cubes - $conf "$t/mi" $t/folder.h5
expect "prep of a folder exits 0" test $rc -eq 0
run "$G" info $t/folder.h5
expect "the folder's 10 scans" has "10, of which 10 used"
expect "folder: no data file taken for a scan" lacks "\.raw$"

# restore of a .mhd: NIfTI with the scan's geometry and the values restored from the NIfTI scan.
run "$MPIEXEC" -np 2 "$G" train $conf --set train.data=$t/all1.h5 --set train.output=$t/run
expect "a 2-step training run for restore" test $rc -eq 0
ck=$t/run/ckpt/step-00000002.h5
run "$G" restore $ck $t/mi/short_le.mhd -o $t/restored_mhd.nii.gz
expect "restore of a .mhd exits 0" test $rc -eq 0
run "$G" restore $ck $t/mi/ref.nii.gz -o $t/restored_ref.nii.gz
expect "restore of the NIfTI scan exits 0" test $rc -eq 0
expect "restored .mhd: the NIfTI scan's affine and the same restored values" $PY - $t <<'PY'
import nibabel as nib, numpy as np, sys
d = sys.argv[1]
a, b = nib.load(d + '/restored_mhd.nii.gz'), nib.load(d + '/restored_ref.nii.gz')
ref = nib.load(d + '/mi/ref.nii.gz')
assert a.shape == ref.shape, (a.shape, ref.shape)
assert np.allclose(a.affine, ref.affine, atol=1e-4), (a.affine, ref.affine)
assert np.array_equal(a.get_fdata(), b.get_fdata()), 'restored values differ'
PY

finish
