#!/usr/bin/env bash
# genesis phantom / prep / info / preview end to end: the same cubes at 1 and 3 ranks, the real MRI
# volumes of mricron-data, every kind of bad scan skipped with a warning naming it (or an error
# under strict = true), bad outputs refused before any work, and a prep killed with SIGKILL leaves
# nothing at the output path.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

conf=$t/prep.ini
cat > $conf <<INI
[prep]
normalize = ct
filter = lung
border_xy = 24
border_z = 8
cubes_per_scan = 6
validation_fraction = 0.25
test_fraction = 0.25
INI
make_scans 2 $t/scans 4 256,256,96
expect "phantom writes 4 scans" test "$(ls $t/scans/*.nii.gz | wc -l)" = 4

# Rank-count invariance: the same cubes, provenance and scan table at 1 and 3 ranks.
for np in 1 3; do
  prep_cubes $np $conf "$t/scans/*.nii.gz" $t/cubes$np.h5
  expect "prep at $np ranks exits 0" test $rc -eq 0
  [ $rc -eq 0 ] || echo "$out"
done
expect "prep reports cubes per split" has "cubes (train"
for d in cubes scan_index corner crop split scans; do
  expect "/$d identical at 1 and 3 ranks" h5diff -q $t/cubes1.h5 $t/cubes3.h5 /$d /$d
done
run "$G" info $t/cubes1.h5
expect "info: counts per split" has "train 12, validation 6, test 6"
expect "info: scans used" has "4, of which 4 used and 0 skipped"
expect "info: value range within [0, 1]" $PY -c "
import h5py, sys; f = h5py.File('$t/cubes1.h5', 'r'); c = f['cubes'][...]
assert c.shape[1:] == (64, 64, 32) and c.min() >= 0 and c.max() <= 1, (c.shape, c.min(), c.max())
co = f['corner'][...]; assert (co[:, :2] >= 24).all() and (co[:, 0] <= 256 - 64 - 1 - 24).all() and (co[:, 2] >= 8).all()
assert (co[:, 2] <= 96 - 35 - 1 - 8).all()
sc = f['scans'][...]; sp = f['split'][...]; si = f['scan_index'][...]
assert all(sp[i] == sc[si[i]]['split'] for i in range(len(sp))), 'split by scan'
assert f.attrs['format_version'] == 1"
# Explicit split lists instead of fractions.
prep_cubes - $conf "$t/scans/*.nii.gz" $t/lists.h5 \
    --set "prep.validation_scans=*phantom_0001*" --set "prep.test_scans=*phantom_0002*,*phantom_0003*"
run "$G" info $t/lists.h5
expect "explicit lists: phantom_0001 in validation" grep -q "validation .*phantom_0001" <<<"$out"
expect "explicit lists: phantom_0002 and _0003 in test" test "$(grep -c "test .*phantom_000[23]" <<<"$out")" = 2
expect "explicit lists: phantom_0000 in train" grep -q "train .*phantom_0000" <<<"$out"

run "$G" preview $t/cubes1.h5 -o $t/preview.png -n 3
png_written() { [ $rc -eq 0 ] && head -c 8 "$1" | od -An -tx1 | grep -q '89 50 4e 47'; }
expect "preview writes a PNG" png_written $t/preview.png

# Real MRI volumes (mricron-data).
mri=/usr/share/mricron/templates
if [ -f $mri/ch2.nii.gz ]; then
  run "$MPIEXEC" -np 2 "$G" prep "$GENESIS_SOURCE_DIR/conf/quickstart.ini" --set prep.output=$t/mri.h5
  expect "prep of the real MRI volumes" test $rc -eq 0
  run "$G" info $t/mri.h5
  expect "all four MRI volumes used" has "4, of which 4 used"
else
  bad "mricron-data is not installed ($mri/ch2.nii.gz missing)"
fi

# Bad scans: each skipped with a warning naming it, counted in the final report.
mkdir -p $t/bad
cp $t/scans/phantom_0000.nii.gz $t/bad/good.nii.gz
echo "this is not a NIfTI file" > $t/bad/garbage.nii.gz
head -c 300000 $t/scans/phantom_0001.nii.gz > $t/bad/truncated.nii.gz
cp $t/scans/phantom_0002.nii.gz $t/bad/corrupt.nii.gz
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of=$t/bad/corrupt.nii.gz bs=1 seek=200000 conv=notrunc status=none
$PY - $t/bad <<'PY'
import sys, numpy as np, nibabel as nib
d = sys.argv[1]
nib.save(nib.Nifti1Image(np.zeros((160, 160), np.int16), np.eye(4)), d + '/flat2d.nii.gz')
v = np.full((160, 160, 64), -1000, np.float32); v[50, 50, 30] = np.nan
nib.save(nib.Nifti1Image(v, np.eye(4)), d + '/nan.nii.gz')
nib.save(nib.Nifti1Image(np.full((40, 40, 20), -800, np.int16), np.eye(4)), d + '/small.nii.gz')
nib.save(nib.Nifti1Image(np.full((160, 160, 64), 700, np.int16), np.eye(4)), d + '/dense.nii.gz')
PY
prep_cubes 2 $conf "$t/bad/*.nii.gz" $t/bad.h5
expect "prep with bad scans still succeeds" test $rc -eq 0
for f in garbage truncated corrupt flat2d nan small dense; do
  expect "bad scan $f.nii.gz: warning names it" has "warning on rank [0-9]: skipping scan: $t/bad/$f.nii.gz"
done
expect "final report counts the skipped scans" has "7 of 8 scans skipped"
run "$G" info $t/bad.h5
expect "info lists 7 skipped" has "8, of which 1 used and 7 skipped"
prep_cubes 2 $conf "$t/bad/*.nii.gz" $t/strict.h5 --set prep.strict=true
expect "strict = true: a bad scan is an error" test $rc -eq 1
expect "strict = true: the error names the scan" has "genesis: error: $t/bad/"
expect "strict = true: no output, no partial file" test -z "$(ls $t | grep strict)"

# Outputs: an existing file is refused unless overwrite = true; a missing folder before any work.
prep_cubes - $conf "$t/scans/*.nii.gz" $t/cubes1.h5
expect "existing output refused (exit 2)" test $rc -eq 2
expect "existing output refused: message" has "exists (replace it with \[prep\] overwrite = true)"
prep_cubes - $conf "$t/scans/*.nii.gz" $t/cubes1.h5 --set prep.overwrite=true
expect "overwrite = true replaces it" test $rc -eq 0
prep_cubes 2 $conf "$t/scans/*.nii.gz" $t/nowhere/cubes.h5
expect "missing output folder: exit 1" test $rc -eq 1
expect "missing output folder: one message" once "cannot write $t/nowhere/cubes.h5: folder $t/nowhere: No such file or directory"
prep_cubes - $conf "$t/none/*.nii.gz" $t/x.h5
expect "inputs matching nothing: exit 2" test $rc -eq 2
expect "inputs matching nothing: message" has "no scan matches '$t/none/\*.nii.gz'"

# A failed allocation of the scan table (GENESIS_FAULT) on either rank ends prep on every rank
# with the error, and leaves no output and no partial file.
for rank in 0 1; do
  GENESIS_FAULT=prep.records:$rank run "$MPIEXEC" -np 2 "$G" prep $conf \
    --set "prep.inputs=$t/scans/*.nii.gz" --set prep.output=$t/nomem$rank.h5
  expect "scan table not allocated on rank $rank: exit 1 (got $rc)" test $rc -eq 1
  expect "scan table not allocated on rank $rank: message" has "out of memory for the scan table"
  expect "scan table not allocated on rank $rank: no output" test -z "$(ls $t | grep nomem$rank)"
done

# kill -9 mid-way: nothing at the output path.
make_scans - $t/big 6 256,256,96
setsid "$MPIEXEC" -np 2 "$G" prep $conf --set "prep.inputs=$t/big/*.nii.gz" --set prep.output=$t/killed.h5 \
  --set prep.border_xy=16 >/dev/null 2>&1 &
pid=$!
for i in $(seq 1 100); do ls $t | grep -q 'killed.h5.partial' && break; sleep 0.05; done
kill -9 -- -$pid 2>/dev/null; wait $pid 2>/dev/null
expect "killed prep leaves no file at the output path" test ! -e $t/killed.h5

finish
