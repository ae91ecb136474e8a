#!/usr/bin/env bash
# Large batches (issue 13) end to end at width 4: LARS + linear lr scaling + warm-up at 2 ranks trains
# with finite losses, replicas bitwise identical every step; 4 + 4 steps resumed (in the middle of the
# warm-up) bitwise equal to 8 straight steps; the warm-up's learning rates in metrics.csv, continued
# after a resume at another rank count (elastic); config --check prints the schedule; bad
# combinations give one clear error naming the key and where it was set.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

run "$G" config --defaults
expect "config --defaults lists the large-batch keys" \
  has_all '^train *lr_scaling *choice *none *none|linear|sqrt' '^train *reference_batch *integer *6 ' \
  '^train *warmup_steps *integer *0 ' '^train *trust_coefficient *number *0.001 ' 'sgd|adam|lars'

phantom_ct_ini $t/train.ini
cat >> $t/train.ini <<INI
[train]
batch = 4
learning_rate = 0.1
optimizer = lars
trust_coefficient = 0.02
lr_scaling = linear
reference_batch = 2
warmup_steps = 6
log_every = 1
checkpoint_minutes = 0
INI

run "$G" config --check $t/train.ini
expect "config --check prints the resolved schedule" \
  has "^; schedule: learning rate 0.2 = 0.1 x (4 / 2) (lr_scaling = linear); linear warm-up over 6 steps: 0.0333333 at step 1, 0.2 at step 6; then StepLR: x 0.5 every 40 epochs"
run "$G" config --check $t/train.ini --set train.lr_scaling=none --set train.reference_batch=64
expect "reference_batch > batch with lr_scaling = none is harmless (unused)" \
  succeeded_with "learning rate 0.1 (lr_scaling = none: reference_batch unused)"

# Bad combinations: exit 2, one message naming the key and where it was set.
printf '[train]\noptimizer = lars\ntrust_coefficient = 0\n' > $t/eta0.ini
run "$MPIEXEC" -np 2 "$G" config --check $t/eta0.ini
expect "trust_coefficient 0: exit 2 ($rc)" test $rc -eq 2
expect "trust_coefficient 0: one message with file:line" \
  once "genesis: error: $t/eta0.ini:3: \[train\] trust_coefficient: 0 must be > 0"
run "$G" config --check $t/eta0.ini --set train.trust_coefficient=-1
expect "negative trust_coefficient: out of range, exit 2" \
  test $rc -eq 2 -a -n "$(grep -- '--set train.trust_coefficient=-1: \[train\] trust_coefficient: -1 is out of range' <<<"$out")"
printf '[train]\noptimizer = adam\ntrust_coefficient = 0.001\n' > $t/adam.ini
run "$G" config --check $t/adam.ini
expect "LARS's trust_coefficient with Adam: exit 2 naming both keys" \
  test $rc -eq 2 -a -n "$(grep "$t/adam.ini:3: \[train\] trust_coefficient is LARS's and optimizer = adam ($t/adam.ini:2)" <<<"$out")"

make_cubes $t/train.ini $t 3
expect "phantoms and prep" test $rc -eq 0
S=(--set train.data=$t/cubes.h5)

# 8 straight steps, and 4 + 4 resumed in the middle of the warm-up; replicas identical every step.
run "$MPIEXEC" -np 2 "$G" train $t/train.ini "${S[@]}" --set train.output=$t/straight --set train.max_steps=8 \
  --set train.check_replicas=1
expect "LARS + linear scaling + warm-up trains at 2 ranks" test $rc -eq 0
[ $rc -eq 0 ] || echo "$out" | tail -5
expect "the schedule and optimizer are printed at start" \
  has "train: learning rate 0.2 = 0.1 x (4 / 2) (lr_scaling = linear); linear warm-up over 6 steps.*optimizer lars"
expect "LARS replicas bitwise identical every step" test "$(grep -c 'replicas identical' <<<"$out")" = 8
run "$MPIEXEC" -np 2 "$G" train $t/train.ini "${S[@]}" --set train.output=$t/resumed --set train.max_steps=4
expect "a run shorter than its warm-up is warned about" \
  has "warmup_steps = 6 is longer than this run (max_steps = 4)"
run "$MPIEXEC" -np 2 "$G" train $t/train.ini "${S[@]}" --set train.output=$t/resumed --set train.max_steps=8
expect "resume in the warm-up" has "resuming from $t/resumed/ckpt/step-00000004.h5"
for group in params buffers optim; do
  expect "LARS 4 + 4 steps: /$group bitwise equal to 8 straight steps" \
    h5diff -q $t/straight/ckpt/step-00000008.h5 $t/resumed/ckpt/step-00000008.h5 /$group /$group
done

# Elastic: the 2-rank checkpoint at step 4 continues at 1 rank, the warm-up where it was.
mkdir -p $t/elastic/ckpt && cp $t/resumed/ckpt/step-00000004.h5 $t/elastic/ckpt/ && echo step-00000004.h5 > $t/elastic/ckpt/latest
run "$G" train $t/train.ini "${S[@]}" --set train.output=$t/elastic --set train.max_steps=7
expect "a 2-rank LARS checkpoint resumes at 1 rank" succeeded_with "resuming from $t/elastic/ckpt/step-00000004.h5"

expect "finite losses; warm-up learning rates 0.2 s / 6, then 0.2, also after the (elastic) resumes" $PY - $t <<'PY'
import csv, math, sys
t = sys.argv[1]
def rows(run):
    return [r for r in csv.DictReader(open(f'{t}/{run}/metrics.csv')) if r['train_loss']]
for run, steps in (('straight', 8), ('resumed', 8), ('elastic', 3)):
    r = rows(run)
    assert len(r) == steps, (run, len(r))
    for row in r:
        s, lr, loss = int(row['step']), float(row['lr']), float(row['train_loss'])
        want = 0.2 * min(s, 6) / 6
        assert math.isfinite(loss), (run, s, loss)
        assert abs(lr - want) <= 1e-8 * want, (run, s, lr, want)
print('ok')
PY

# A warm-up longer than the whole run (max_epochs): one error naming the key.
run "$MPIEXEC" -np 2 "$G" train $t/train.ini "${S[@]}" --set train.output=$t/long --set train.max_epochs=1 \
  --set train.warmup_steps=100000
expect "warm-up longer than the whole run: exit 2 ($rc)" test $rc -eq 2
expect "warm-up longer than the whole run: one message naming the key" \
  once "genesis: error: --set train.warmup_steps: \[train\] warmup_steps = 100000 is longer than the whole run (max_epochs 1 x"
finish
