#!/usr/bin/env bash
# Limits checked before the work (README "Sizing a run", "Errors and exit status"): the memory
# estimate (config --check prints it; the trainer logs it, and stops before allocating, exit 2, when
# the node's share is smaller: GENESIS_MEMORY_LIMIT_MB), its band at a tiny width; one rule for cube
# sizes (prep, train, preview) and one for the width (config, bench, the model); cubes files that are
# not genesis's (int16 cubes, split values beyond 0-2) refused with their reason.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

tiny_ct_ini $t/tiny.ini
make_scans - $t/scans 3 48,48,32 && prep_cubes - $t/tiny.ini "$t/scans/*.nii.gz" $t/cubes.h5
expect "phantoms and prep of 16^3 cubes" test $rc -eq 0

# Memory: config --check prints the estimate per rank count; the trainer logs it, and the measured
# peak RSS of a tiny run is within 25% of it.
genesis_on - config --check $t/tiny.ini --set train.data=$t/cubes.h5
expect "config --check prints the memory estimate at 1 and 2 ranks" \
    has_all "; memory: estimated peak of one rank of genesis train, with the cubes" "; *1 rank(s): [0-9]* MB per rank" \
            "; *2 rank(s): [0-9]* MB per rank (model"
genesis_on - train $t/tiny.ini --set train.data=$t/cubes.h5 --set train.output=$t/run --set train.max_steps=4
est=$(grep -o 'estimated peak [0-9]* MB' <<<"$out" | grep -o '[0-9]*')
rss=$(grep -o 'peak RSS per rank [0-9]* MB' <<<"$out" | grep -o '[0-9]*')
expect "tiny run: estimate ${est:-?} MB within 25% of the measured peak RSS ${rss:-?} MB" \
    $PY -c "import sys; e, r = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(e - r) > 0.25 * r)" \
    "${est:-0}" "${rss:-1}"
# The refusal: 2 ranks on a "node" of 60 MB (30 MB each) cannot hold ~55 MB each.
GENESIS_MEMORY_LIMIT_MB=60 genesis_on 2 train $t/tiny.ini --set train.data=$t/cubes.h5 --set train.output=$t/small
expect "memory: refused before allocating, exit 2, one message with the estimate, the limit and what to change" \
    eval '[ $rc -eq 2 ] && once "error: not enough memory: genesis train needs about [0-9]* MB per rank (model" &&
          has_all "offers 30 MB per rank (GENESIS_MEMORY_LIMIT_MB=60, shared by the 2 rank(s) on the node)" \
                  "smaller per-rank batch" "window_steps (now 16)"'
expect "memory: the refused run wrote no checkpoint" test -z "$(ls $t/small/ckpt 2>/dev/null)"
GENESIS_MEMORY_LIMIT_MB=100000 genesis_on 2 train $t/tiny.ini --set train.data=$t/cubes.h5 --set train.output=$t/big \
    --set train.max_steps=1
expect "memory: a sufficient limit trains, and says what it checked" \
    succeeded_with "train: memory: estimated peak [0-9]* MB per rank .*; 50000 MB per rank offered"

# One rule for cube sizes: prep refuses 8-voxel axes; train and preview refuse such a file.
prep_cubes - $t/tiny.ini "$t/scans/*.nii.gz" $t/c8.h5 --set prep.cube_deps=8
expect "prep: cube_deps = 8 refused (exit 2)" eval '[ $rc -eq 2 ] && has "cube_deps: 8 is out of range \[16, 1024\]"'
$PY - $t <<'PY'
import sys, h5py, numpy as np, shutil
t = sys.argv[1]
for name in ('c8', 'int16', 'split7'):
    shutil.copy(f'{t}/cubes.h5', f'{t}/{name}.h5')
with h5py.File(f'{t}/c8.h5', 'r+') as f:   # an 8^3 cubes file, as an older prep wrote it
    c = f['cubes'][:, :8, :8, :8]
    del f['cubes']
    f.create_dataset('cubes', data=c, maxshape=(None, 8, 8, 8), chunks=(1, 8, 8, 8))
    f.attrs['cube_shape'] = np.array([8, 8, 8], np.int64)
with h5py.File(f'{t}/int16.h5', 'r+') as f:
    c = f['cubes'][...]
    del f['cubes']
    f.create_dataset('cubes', data=(c * 1000).astype(np.int16), maxshape=(None,) + c.shape[1:],
                     chunks=(1,) + c.shape[1:])
with h5py.File(f'{t}/split7.h5', 'r+') as f:
    s = f['split'][...]
    s[2] = 7
    f['split'][...] = s
PY
genesis_on 2 train $t/tiny.ini --set train.data=$t/c8.h5 --set train.output=$t/r8
expect "train: 8^3 cubes refused (exit 1, once, naming the rule)" \
    eval '[ $rc -eq 1 ] && once "c8.h5: cubes of 8 x 8 x 8: genesis trains on cubes whose every size is a multiple of 8 and >= 16"'
genesis_on - preview $t/c8.h5 -o $t/p8.png
expect "preview: 8^3 cubes refused with the same rule" eval '[ $rc -eq 1 ] && has "cubes of 8 x 8 x 8: genesis trains on"'
genesis_on 2 train $t/tiny.ini --set train.data=$t/int16.h5 --set train.output=$t/r16
expect "train: int16 cubes refused" eval '[ $rc -eq 1 ] && once "int16.h5: dataset .cubes. holds integers of 2 bytes, not float32"'
genesis_on - train $t/tiny.ini --set train.data=$t/split7.h5 --set train.output=$t/rs
expect "train: a split value of 7 refused" eval '[ $rc -eq 1 ] && once "split7.h5: dataset .split. holds 7 at cube 2"'

# One width limit: config, bench and the model say the same range.
genesis_on - config --check $t/tiny.ini --set model.width=513
expect "config: width 513 refused, range [1, 512]" eval '[ $rc -eq 2 ] && has "width: 513 is out of range \[1, 512\]"'
genesis_on - bench --width 513 --steps 1
expect "bench: width 513 refused with the same range" eval '[ $rc -eq 2 ] && has "width 513 must be in \[1, 512\]"'

finish
