#!/usr/bin/env bash
# What a run says about itself: the validation baselines (identity, mean), the gain and the split by
# corruption, recomputed with NumPy from the validation batches the trainer dumps
# (GENESIS_VALIDATION_DUMP) at 1 and 2 ranks; a metrics.csv of the older header upgraded on resume
# (rows kept); genesis info's gain (also of a checkpoint without the identity baseline); genesis
# restore's gain and mean baseline; genesis status of a finished, a running, a killed, a stale and a
# failed run.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d)
bg=
trap '[ -n "$bg" ] && kill -9 $bg 2>/dev/null; rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

# Width 2 on 16^3 cubes of small CT phantoms: a whole epoch takes well under a second.
cat > $t/tiny.ini <<INI
[model]
width = 2
[prep]
normalize = ct
filter = none
cube_rows = 16
cube_cols = 16
cube_deps = 16
crop_sizes = 16
border_xy = 4
border_z = 4
cubes_per_scan = 8
validation_fraction = 0.34
test_fraction = 0
[train]
batch = 4
learning_rate = 0.1
max_epochs = 1
log_every = 1
checkpoint_minutes = 0
INI
make_cubes $t/tiny.ini $t 3 48,48,32
expect "phantoms and prep of 16^3 cubes" test $rc -eq 0

# The baselines at 1 and 2 ranks against NumPy on the dumped batches (x, y, output, masks).
for np in 1 2; do
  GENESIS_VALIDATION_DUMP=$t/dump$np run "$MPIEXEC" -np $np "$G" train $t/tiny.ini --set train.data=$t/cubes.h5 \
      --set train.output=$t/run$np
  expect "one epoch at $np rank(s), the epoch line has the baselines" \
      succeeded_with "validation loss [0-9.]* (identity [0-9.]*, mean [0-9.]*, gain [-0-9.]*)"
  expect "$np rank(s): the per-corruption line" has "validation by corruption: in-painting [0-9]* cubes loss"
  expect "$np rank(s): identity, mean, model loss, gain and the split agree with NumPy (1e-6)" \
      $PY - $t/dump$np $t/run$np $np <<'PY'
import csv, glob, sys, numpy as np
dump, run, ranks = sys.argv[1], sys.argv[2], int(sys.argv[3])
V, b = 16 ** 3, 4 // ranks
x, y, o, masks, batch_mse = [], [], [], [], []
for r in range(ranks):
    raw = open(f'{dump}.{r}', 'rb').read()
    record = 3 * b * V * 4 + 4 * b
    assert len(raw) % record == 0, (len(raw), record)
    for k in range(len(raw) // record):
        rec = raw[k * record:(k + 1) * record]
        f = np.frombuffer(rec[:3 * b * V * 4], np.float32).reshape(3, b, V).astype(np.float64)
        x.append(f[0]); y.append(f[1]); o.append(f[2])
        masks.append(np.frombuffer(rec[3 * b * V * 4:], np.uint32))
        batch_mse.append(((f[2] - f[1]) ** 2).mean())
x, y, o, masks = (np.concatenate(a) for a in (x, y, o, masks))
model = ((o - y) ** 2).mean(axis=1)      # per cube
identity = ((x - y) ** 2).mean(axis=1)
want = {'validation_loss': model.mean(), 'identity_loss': identity.mean(),
        'mean_loss': ((y - y.mean()) ** 2).mean()}
want['gain'] = 1 - np.mean(batch_mse) / want['identity_loss']
rows = [r for r in csv.DictReader(open(f'{run}/metrics.csv')) if r['validation_loss']]
assert len(rows) == 1, rows
def close(name, got, ref):
    print(f'{name}: genesis {got:.9g} numpy {ref:.9g}')
    assert abs(got - ref) <= 1e-6 * abs(ref), name
for k, v in want.items(): close(k, float(rows[0][k]), v)
assert len(model) == 8, len(model)
bits = {'inpaint': 1 << 4, 'outpaint': 1 << 5, 'nonlinear': 1 << 2, 'local': 1 << 1}
split = list(csv.DictReader(open(f'{run}/validation.csv')))
assert len(split) == 1 and split[0]['step'] == rows[0]['step'], split
for key, bit in bits.items():
    drew = (masks & bit) != 0
    assert int(split[0][f'{key}_count']) == drew.sum(), key
    if drew.any():
        close(f'{key} loss', float(split[0][f'{key}_loss']), model[drew].mean())
        close(f'{key} identity', float(split[0][f'{key}_identity']), identity[drew].mean())
    else:
        assert split[0][f'{key}_loss'] == '', key
print('cubes per corruption', {k: int(split[0][f'{k}_count']) for k in bits})
PY
done
expect "1 and 2 ranks: the same validation figures (1e-5 relative)" $PY - $t/run1 $t/run2 <<'PY'
import csv, sys
rows = [[r for r in csv.DictReader(open(f'{d}/metrics.csv')) if r['validation_loss']][0] for d in sys.argv[1:]]
for k in ('validation_loss', 'identity_loss', 'mean_loss', 'gain'):
    a, b = (float(r[k]) for r in rows)
    assert abs(a - b) <= 1e-5 * abs(a), (k, a, b)
PY
expect "metrics.csv: the old columns in their order, then identity_loss,mean_loss,gain" test \
    "$(head -1 $t/run1/metrics.csv)" = "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,comm_s,identity_loss,mean_loss,gain"
expect "step rows leave the new columns empty" test "$(awk -F, 'NR == 2 {print NF, $10 $11 $12}' $t/run1/metrics.csv)" = "12 "

# genesis info: the best checkpoint's loss and gain; a checkpoint without the baseline still reads.
run "$G" info $t/run1/ckpt/best.h5
expect "info: best validation loss with identity and gain" has "best loss [0-9.]* (identity [0-9.]*, gain [-0-9.]*)"
$PY -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); del f['state'].attrs['best_identity_loss']" \
    $t/run1/ckpt/best.h5
run "$G" info $t/run1/ckpt/best.h5
expect "info of an older checkpoint (no identity baseline): gain unknown" succeeded_with "gain unknown"

# Resume onto a metrics.csv with the older header: rewritten with the new columns, no row lost.
cut -d, -f1-9 $t/run1/metrics.csv > $t/old.csv && cp $t/old.csv $t/run1/metrics.csv
run "$G" train $t/tiny.ini --set train.data=$t/cubes.h5 --set train.output=$t/run1 --set train.max_epochs=2
expect "resume onto the older header: says it rewrote metrics.csv" succeeded_with "had the older header"
expect "the old rows are kept with three empty columns, then the new rows" $PY - $t/old.csv $t/run1/metrics.csv <<'PY'
import csv, sys
old, new = (list(csv.reader(open(p))) for p in sys.argv[1:])
assert new[0] == old[0] + ['identity_loss', 'mean_loss', 'gain'], new[0]
assert all(n == o + ['', '', ''] for o, n in zip(old[1:], new[1:len(old)])), 'old rows changed'
val = [r for r in csv.DictReader(open(sys.argv[2])) if r['validation_loss']]
assert len(val) == 2 and val[0]['gain'] == '' and val[1]['gain'] != '', val
PY
expect "validation.csv got the second validation" test "$(wc -l < $t/run1/validation.csv)" -eq 3

# genesis restore: the mean baseline and the gain, in training's words.
run "$G" restore $t/run1/ckpt/best.h5 $t/scans/phantom_0000.nii.gz -o $t/restored.nii.gz --corrupt --cube 16
expect "restore --corrupt: restored, identity, mean, gain" \
    succeeded_with "volume: restored [0-9.]* (identity [0-9.]*, mean [0-9.]*, gain [-0-9.]*)"
expect "restore: the gain is 1 - restored / corrupted of the printed errors" env OUT="$out" $PY - <<'PY'
import os, re
out = os.environ['OUT']
line = re.search(r'restored ([0-9.]+) \(identity ([0-9.]+), mean ([0-9.]+), gain ([-0-9.]+)\)', out)
restored, identity, mean, gain = map(float, line.groups())
corrupted = float(re.search(r'mse_volume_corrupted: *([0-9.]+)', out).group(1))
assert identity == corrupted and abs(gain - (1 - restored / identity)) < 1e-3, line.groups()
PY

# genesis status: finished (run1), running, killed (kill -9), stale, failed.
run "$G" status $t/run1
expect "status of a finished run" succeeded_with "run1: finished"
expect "status: best validation and gain, speed, ETA, checkpoint, resubmissions" has_all \
    "best loss [0-9.]* at epoch [0-9]* (identity" "samples/s (last step)" "ETA: .* to max_epochs = 2" \
    "checkpoint: *$t/run1/ckpt/step-" "resubmissions: 1 "
"$G" train $t/tiny.ini --set train.data=$t/cubes.h5 --set train.output=$t/live --set train.max_epochs=1000000 \
    --set train.patience=1000000 --set train.log_every=1000 > $t/live.log 2>&1 &
bg=$!
running=no
for i in $(seq 1 300); do
  run "$G" status $t/live
  if has_all "live: running (heartbeat" "position: *step [0-9]"; then running=yes; break; fi
  sleep 0.1
done
expect "status of a running run says running, at a step" test $running = yes
expect "status of a running run: its pid" has "pid $bg on"
kill -9 $bg; wait $bg 2>/dev/null; bg=
run "$G" status $t/live
expect "status after kill -9 (fresh heartbeat, process gone): not running" has "live: not running: its trainer (pid"
sed -i "s/^host .*/host elsewhere/" $t/live/heartbeat
touch -d '20 minutes ago' $t/live/heartbeat
run "$G" status $t/live --stale-minutes 15
expect "status with a heartbeat older than --stale-minutes: not running" has "live: not running: no heartbeat for 20"
run "$G" status $t/live --stale-minutes 30
expect "the same heartbeat within --stale-minutes 30 (another host): running" has "live: running"
run "$G" train $t/tiny.ini --set train.data=$t/cubes.h5 --set train.output=$t/warned --set train.max_steps=2 \
    --set train.warmup_steps=3
run "$G" status $t/warned
expect "status: a trainer warning (before train.log was open) is the last problem" \
    has "last problem: *train: warning: .*warmup_steps = 3 is longer than this run"
GENESIS_VALIDATION_DUMP=$t/no/such/folder/dump run "$G" train $t/tiny.ini --set train.data=$t/cubes.h5 \
    --set train.output=$t/failed
expect "a run that fails at validation exits non-zero" test $rc -ne 0
run "$G" status $t/failed
expect "status of a failed run: failed, with the error" has "failed: failed: train: error: cannot write $t/no/such"
expect "status: the error is the last problem" has "last problem: *train: error:"

finish
