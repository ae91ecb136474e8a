#!/usr/bin/env bash
# genesis train end to end: the same run at 1, 2 and 3 ranks; replicas bitwise identical; resume
# (3 + 3 steps) bitwise equal to 6 straight steps; the loss falls on real MRI cubes (and curves.png
# is drawn; a failure to draw it is a warning only); bad inputs give one clear error and no hang.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"
same_params() { h5diff -q "$1" "$2" /params /params && h5diff -q "$1" "$2" /optim /optim; }

phantom_ct_ini $t/train.ini
cat >> $t/train.ini <<INI
[train]
batch = 6
learning_rate = 0.1
log_every = 1
checkpoint_minutes = 0
INI
make_cubes $t/train.ini $t 3
expect "phantoms and prep for training" test $rc -eq 0

# The same run at 1, 2 and 3 ranks (global batch 6, synchronised BN).
for np in 1 2 3; do
  run "$MPIEXEC" -np $np "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/np$np \
      --set train.max_steps=5 --set train.check_replicas=1
  expect "train at $np ranks exits 0" test $rc -eq 0
  [ $rc -eq 0 ] || echo "$out" | tail -5
  expect "train at $np ranks: replicas bitwise identical every step" test "$(grep -c 'replicas identical' <<<"$out")" = 5
done
expect "losses and weights agree at 1, 2 and 3 ranks" $PY - $t <<'PY'
import csv, sys, h5py, numpy as np
t = sys.argv[1]
def losses(np_):
    return [float(r['train_loss']) for r in csv.DictReader(open(f'{t}/np{np_}/metrics.csv')) if r['train_loss']]
def params(np_):
    with h5py.File(f'{t}/np{np_}/ckpt/step-00000005.h5', 'r') as f:
        return {k: f['params'][k][...] for k in f['params']}
a = losses(1)
assert len(a) == 5, a
w1 = params(1)
for np_ in (2, 3):
    b = losses(np_)
    rel = max(abs(x - y) / abs(x) for x, y in zip(a, b))
    w = params(np_)
    dw = max(float(np.max(np.abs(w1[k] - w[k]))) for k in w1)
    scale = max(float(np.max(np.abs(w1[k]))) for k in w1)
    print(f'{np_} ranks: loss relative difference {rel:.2e}, weights max abs difference {dw:.2e} (max |w| {scale:.2f})')
    assert len(b) == 5 and rel <= 1e-5, (a, b)
    assert dw <= 1e-4 * scale, dw   # tolerance: 1e-4 of the largest weight after 5 steps
PY

# Threads inside a rank: 1 rank x 2 and x 3 threads train bitwise the run of 1 x 1, and so does
# 2 ranks x 2 threads the run of 2 x 1 (every layer splits by output ownership, fixed chunks).
for layout in "1 2" "1 3" "2 2"; do
  set -- $layout
  run "$MPIEXEC" -np $1 --bind-to none "$G" train $t/train.ini --set train.data=$t/cubes.h5 \
      --set train.output=$t/np$1t$2 --set train.max_steps=5 --set train.threads=$2
  expect "train at $1 rank(s) x $2 threads exits 0 and says so" succeeded_with "$2 thread(s) per rank"
  expect "$1 rank(s) x $2 threads: checkpoint bitwise that of $1 x 1" same_params \
      $t/np$1/ckpt/step-00000005.h5 $t/np$1t$2/ckpt/step-00000005.h5
done
# A rank bound to fewer cores than its threads is warned about (the silent 10x slowdown).
run "$MPIEXEC" -np 1 --bind-to core "$G" train $t/train.ini --set train.data=$t/cubes.h5 \
    --set train.output=$t/bound --set train.max_steps=1 --set train.threads=2
expect "threads beyond the bound cores: a warning naming the fix" has_all \
    "train.threads = 2, but this rank may run on only 1 core(s)" "--map-by slot:PE=2 --bind-to core"

# Resume: 3 steps, stop, resume to 6 == 6 straight steps, bitwise (weights, BN stats, momentum).
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/straight --set train.max_steps=6
expect "6 straight steps" test $rc -eq 0
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/resumed --set train.max_steps=3
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/resumed --set train.max_steps=6
expect "resume says where it continues" has "resuming from $t/resumed/ckpt/step-00000003.h5"
for group in params buffers optim; do
  expect "resumed run's /$group bitwise equal to the straight run's" \
    h5diff -q $t/straight/ckpt/step-00000006.h5 $t/resumed/ckpt/step-00000006.h5 /$group /$group
done
expect "metrics.csv continues after the resume: steps 1..6" \
  test "$(awk -F, 'NR > 1 && $4 != "" {printf "%s ", $1}' $t/resumed/metrics.csv)" = "1 2 3 4 5 6 "

# Elastic resume: a checkpoint written at 2 ranks continues at 1 and at 3 ranks (same global batch)
# as the same run: the losses of steps 4..6 agree with the straight run's within 1e-5 (relative).
for np in 1 3; do
  run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/elastic$np --set train.max_steps=3
  run "$MPIEXEC" -np $np "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/elastic$np --set train.max_steps=6
  expect "a 2-rank checkpoint resumes at $np rank(s)" has "resuming from $t/elastic$np/ckpt/step-00000003.h5"
  expect "the $np-rank continuation's losses agree with the straight 2-rank run (1e-5)" $PY - $t/straight/metrics.csv $t/elastic$np/metrics.csv <<'PY'
import csv, sys
a, b = ([float(r['train_loss']) for r in csv.DictReader(open(p)) if r['train_loss']] for p in sys.argv[1:])
assert len(a) == len(b) == 6, (a, b)
rel = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print(f'relative loss difference over steps 1..6: {rel:.2e}')
assert rel <= 1e-5
PY
done
run "$G" info $t/elastic1/ckpt/step-00000006.h5
expect "genesis info describes a checkpoint" has "6 steps in all"

# SIGINT: checkpoint at the next step boundary, then stop with status 0.
"$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/interrupted \
   --set train.max_steps=1000 --set train.checkpoint_steps=0 > $t/interrupted.log 2>&1 &
pid=$!
for i in $(seq 1 600); do grep -q "step 2/" $t/interrupted.log && break; sleep 0.1; done
for r in $(rank_pids "train.output=$t/interrupted"); do kill -INT $r; done
wait $pid; rc=$?
expect "SIGINT: exit status 0 ($rc)" test $rc -eq 0
expect "SIGINT: a checkpoint, then stopped" grep -q "stopped by SIGINT after step" $t/interrupted.log
expect "SIGINT: latest names it" test -s "$t/interrupted/ckpt/$(cat $t/interrupted/ckpt/latest 2>/dev/null)"

# Learning: the loss falls on the real MRI volumes of mricron-data.
run "$MPIEXEC" -np 2 "$G" prep "$GENESIS_SOURCE_DIR/conf/quickstart.ini" --set prep.output=$t/mri.h5
run "$MPIEXEC" -np 2 "$G" train "$GENESIS_SOURCE_DIR/conf/quickstart.ini" --set train.data=$t/mri.h5 \
    --set train.output=$t/mri --set train.max_epochs=8 --set train.log_every=100
expect "training on real MRI exits 0" test $rc -eq 0
expect "train and validation loss fall on real MRI" $PY - $t/mri/metrics.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
train, val = {}, []
for r in rows:
    if r['train_loss']: train.setdefault(int(r['epoch']), []).append(float(r['train_loss']))
    if r['validation_loss']: val.append(float(r['validation_loss']))
means = [sum(v) / len(v) for k, v in sorted(train.items())]
print('train loss per epoch', ' '.join(f'{m:.4f}' for m in means))
print('validation loss per epoch', ' '.join(f'{v:.4f}' for v in val))
assert means[-1] < 0.9 * means[0], 'train loss did not fall by 10%'
assert min(val[-3:]) < val[0], 'validation loss did not fall'
PY
expect "preview.png and best.h5 written" test -s $t/mri/preview.png -a -s $t/mri/ckpt/best.h5
expect "preview.png shows the global batch of 2 (1 sample per rank, gathered): two rows, 1599x332 (one: 1599x181)" \
  $PY - $t/mri/preview.png <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(24)
assert d[:8] == b'\x89PNG\r\n\x1a\n', d
print('preview size', struct.unpack('>II', d[16:24]))
assert struct.unpack('>II', d[16:24]) == (1599, 332)
PY
expect "curves.png refreshed with preview.png (a 1000x760 PNG), no warning" $PY - $t/mri/curves.png <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read(24)
assert d[:8] == b'\x89PNG\r\n\x1a\n' and struct.unpack('>II', d[16:24]) == (1000, 760), d
PY
expect "no warning about curves.png" lacks "curves.png not refreshed"
# A curves.png that cannot be written (here a folder) is a warning; training goes on and ends well.
mkdir -p $t/nocurves/curves.png
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/nocurves \
    --set train.max_epochs=1
expect "an unwritable curves.png: a warning naming it, and training exits 0" \
    succeeded_with "warning.*curves.png not refreshed (training goes on): output $t/nocurves/curves.png exists and is a folder"
expect "an unwritable curves.png: the epoch's validation and best.h5 still written" \
    test -s $t/nocurves/ckpt/best.h5 -a -d $t/nocurves/curves.png

# Bad input: one clear error, non-zero exit, no hang (each bounded by the 600 s guard).
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/missing.h5 --set train.output=$t/bad1
expect "missing cubes file: one error naming it" test $rc -ne 0 -a "$(grep -c "genesis: error: $t/missing.h5: No such file or directory" <<<"$out")" = 1
$PY - $t <<'PY'
import h5py, numpy as np, shutil, sys
t = sys.argv[1]
shutil.copy(f'{t}/cubes.h5', f'{t}/v2.h5')
with h5py.File(f'{t}/v2.h5', 'r+') as f: f.attrs['format_version'] = np.array([2], np.int64)
with h5py.File(f'{t}/shape.h5', 'w') as f:
    f.attrs['format_version'] = np.array([1], np.int64)
    f.attrs['cube_shape'] = np.array([60, 60, 30], np.int64)
    f['cubes'] = np.zeros((12, 60, 60, 30), np.float32)
    f['split'] = np.array([0] * 8 + [1] * 4, np.uint8)
    f['scan_index'] = np.zeros(12, np.int32)
PY
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/v2.h5 --set train.output=$t/bad2
expect "wrong format version: one error" test $rc -ne 0 -a "$(grep -c "genesis: error: $t/v2.h5: cubes file format version 2" <<<"$out")" = 1
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/shape.h5 --set train.output=$t/bad3
expect "wrong cube shape: one error" test $rc -ne 0 -a "$(grep -c "genesis: error: .*multiple" <<<"$out")" = 1
prep_cubes 2 $t/train.ini "$t/scans/*.nii.gz" $t/noval.h5 --set prep.validation_fraction=0
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/noval.h5 --set train.output=$t/bad4
expect "empty validation split: one error" test $rc -ne 0 -a "$(grep -c "genesis: error: the cubes file has no validation cubes" <<<"$out")" = 1
run "$MPIEXEC" -np 3 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/bad5 --set train.batch=2
expect "more ranks than samples per batch: one error" test $rc -eq 2 -a "$(grep -c "genesis: error: more ranks (3) than samples per batch" <<<"$out")" = 1
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/bad6 --set train.batch=5
expect "uneven batch: one error" test $rc -eq 2 -a "$(grep -c "does not split evenly over 2 ranks" <<<"$out")" = 1
touch $t/afile
run "$MPIEXEC" -np 2 "$G" train $t/train.ini --set train.data=$t/cubes.h5 --set train.output=$t/afile/run
expect "unwritable output folder: one error" test $rc -ne 0 -a "$(grep -c "genesis: error: cannot create folder $t/afile/run" <<<"$out")" = 1

finish
