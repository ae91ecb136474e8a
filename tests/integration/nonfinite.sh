#!/usr/bin/env bash
# Non-finite numbers in training (README "Non-finite numbers"), on a width-2 model of 16^3 cubes:
# a diverging learning rate stops every rank at the same step with exit status 65 and one message,
# `latest` still the last good checkpoint; NaN cubes stop the run, or are skipped (nonfinite = skip:
# counted, the state left as it was, identical on every rank; 10 in a row stop); NaN validation
# cubes stop it before best.h5; NaN init_from weights stop it before the first step; the job
# scripts do not requeue status 65.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

tiny_ct_ini $t/tiny.ini
make_scans - $t/scans 3 48,48,32 && prep_cubes - $t/tiny.ini "$t/scans/*.nii.gz" $t/cubes.h5
expect "phantoms and prep of 16^3 cubes" test $rc -eq 0
train() { local np=$1; shift; genesis_on $np train $t/tiny.ini --set train.data=$t/cubes.h5 "$@"; }
# nan_cubes OUT SPLIT ALL: a copy of cubes.h5 with NaN voxels in the first cube of SPLIT (0 train,
# 1 validation), or in every cube of it when ALL is 1
nan_cubes() {
  cp $t/cubes.h5 "$1"
  $PY - "$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'r+') as f:
    picked = np.where(f['split'][...] == int(sys.argv[2]))[0]
    for i in (picked if sys.argv[3] == '1' else picked[:1]):
        cube = f['cubes'][i]
        cube[3, 3, 3] = np.nan
        f['cubes'][i] = cube
PY
}
finite_params() {  # CKPT: every parameter and buffer finite
  $PY -c "import sys,h5py,numpy as np
f=h5py.File(sys.argv[1],'r')
assert all(np.isfinite(f[g][k][...]).all() for g in ('params','buffers') for k in f[g])" "$1"
}

# 1. A diverging learning rate (weight decay x lr = 1e6 flips and grows every weight): at 1 and 2
# ranks the same step S, status 65, one message naming the step and the learning rate; latest stays
# the checkpoint of step S - 1 (a checkpoint every step), nothing of the bad step written. (Here the
# output saturates before the numbers overflow: the stop is the all-zero-gradient one of 1b.)
for np in 1 2; do
  train $np --set train.output=$t/lr$np --set train.learning_rate=1e6 --set train.weight_decay=1 \
      --set train.max_steps=16 --set train.checkpoint_steps=1
  expect "lr 1e6 at $np rank(s): exit status 65" test $rc -eq 65
  [ $rc -eq 65 ] || echo "$out" | tail -5
  expect "lr 1e6 at $np rank(s): one message naming the step and the learning rate" \
      once "error: training stopped at step [0-9]* (epoch 0): .*likely cause: the learning rate is too high"
  step[$np]=$(grep -o 'training stopped at step [0-9]*' <<<"$out" | head -1)
  s=${step[$np]##* }; good=$(printf 'step-%08d.h5' $(( ${s:-1} - 1 )))
  expect "lr 1e6 at $np rank(s): latest is still the last good checkpoint ($good)" \
      test "$(cat $t/lr$np/ckpt/latest)" = "$good"
  expect "lr 1e6 at $np rank(s): that checkpoint is finite, no later one, no best.h5" \
      eval 'finite_params $t/lr$np/ckpt/$good && [ "$(ls $t/lr$np/ckpt | grep -v latest | tail -1)" = "$good" ] &&
            [ ! -e $t/lr$np/ckpt/best.h5 ]'
  expect "lr 1e6 at $np rank(s): train.log says why" grep -q "train: error: training stopped at step" \
      $t/lr$np/train.log
done
expect "lr 1e6: 1 and 2 ranks stop at the same step (${step[1]:-})" \
    test -n "${step[1]:-}" -a "${step[1]:-}" = "${step[2]:-}"

# 1b. A far too high learning rate that stays finite (no weight decay: batch norm and the sigmoid keep
# the numbers finite) saturates the output: every gradient exactly 0. It stops the same way, saying
# the run diverged, at 1 and 2 ranks, also with nonfinite = skip.
for np in 1 2; do
  train $np --set train.output=$t/sat$np --set train.learning_rate=10000 --set train.max_steps=16 \
      --set train.nonfinite=skip
  expect "lr 1e4 at $np rank(s): a saturated model stops with status 65" test $rc -eq 65
  expect "lr 1e4 at $np rank(s): one message, the run diverged, the learning rate named" \
      once "error: training stopped at step [0-9]* (epoch 0): the run diverged: .*every gradient is exactly 0.*learning rate is too high"
done

# 2. NaN voxels in the training cubes: stop (default) at 2 ranks, naming the input.
nan_cubes $t/nan_train.h5 0 0
train 2 --set train.data=$t/nan_train.h5 --set train.output=$t/nanstop --set train.max_steps=8
expect "NaN cubes: exit status 65, the input named once" \
    eval '[ $rc -eq 65 ] && once "error: training stopped at step .*non-finite voxels.*nan_train.h5"'

# 3. The same with nonfinite = skip at 2 ranks: the run goes on, replicas identical every step, the
# skips counted alike in the warnings, the epoch lines, the end line and metrics.csv (empty loss).
train 2 --set train.data=$t/nan_train.h5 --set train.output=$t/skip --set train.max_steps=8 \
    --set train.nonfinite=skip --set train.check_replicas=1
expect "skip: exit 0, replicas identical every step" \
    eval '[ $rc -eq 0 ] && [ "$(grep -c "replicas identical" <<<"$out")" = 8 ]'
warned=$(grep -c 'warning.*skipped step' <<<"$out")
total=$(grep -o 'done: 8 steps, [0-9]* step(s) skipped' <<<"$out" | grep -o ', [0-9]*' | tr -d ', ')
in_epochs=$(grep -o '[0-9]* step(s) skipped (non-finite)$' <<<"$out" | awk '{s += $1} END {print s + 0}')
rows=$($PY -c "import csv,sys
print(sum(1 for r in csv.DictReader(open(sys.argv[1])) if not r['train_loss'] and not r['validation_loss']))" \
    $t/skip/metrics.csv)
expect "skip: $warned skipped step(s) (>= 1) counted alike: end line $total, epoch lines $in_epochs, metrics $rows" \
    test "$warned" -ge 1 -a "$warned" = "${total:-x}" -a "$warned" = "$in_epochs" -a "$warned" = "$rows"

# 4. A skipped step changes nothing: every training cube NaN, one step, skipped -> the weights are the
# initial ones (those of a learning-rate-0 step) and the running statistics untouched (mean 0, var 1).
nan_cubes $t/nan_all.h5 0 1
train 1 --set train.data=$t/nan_all.h5 --set train.output=$t/skip1 --set train.max_steps=1 --set train.nonfinite=skip
a=$rc
train 1 --set train.output=$t/lr0 --set train.max_steps=1 --set train.learning_rate=0
expect "skip: a skipped step leaves the weights and running statistics as they were" \
    eval '[ $a -eq 0 ] && [ $rc -eq 0 ] && $PY - $t <<"PY"
import sys, h5py, numpy as np
t = sys.argv[1]
a, b = h5py.File(f"{t}/skip1/ckpt/step-00000001.h5", "r"), h5py.File(f"{t}/lr0/ckpt/step-00000001.h5", "r")
assert all(np.array_equal(a["params"][k][...], b["params"][k][...]) for k in b["params"]), "params differ"
for k in a["buffers"]:
    v = a["buffers"][k][...]
    assert (v == (1 if k.endswith("running_var") else 0)).all(), k
PY'
# ... and 10 skipped steps in a row stop the run.
train 1 --set train.data=$t/nan_all.h5 --set train.output=$t/skip10 --set train.max_steps=30 --set train.nonfinite=skip
expect "skip: 10 skipped steps in a row stop with status 65" \
    eval '[ $rc -eq 65 ] && once "error: training stopped: 10 steps in a row skipped"'

# 5. NaN voxels in a validation cube: the validation loss is NaN -> status 65 before best.h5.
nan_cubes $t/nan_val.h5 1 0
train 2 --set train.data=$t/nan_val.h5 --set train.output=$t/val --set train.max_steps=8
expect "NaN validation loss: status 65, said once, no best.h5" \
    eval '[ $rc -eq 65 ] && once "error: training stopped: the validation loss of epoch 0" && [ ! -e $t/val/ckpt/best.h5 ]'

# 6. NaN init_from weights: refused before the first step, at 1 and 2 ranks.
genesis_on - export "$t/lr1/ckpt/$(cat $t/lr1/ckpt/latest)" -o $t/w.h5
$PY -c "import sys,h5py,numpy as np
f=h5py.File(sys.argv[1],'r+'); k=[k for k in f if k.endswith('conv1.weight')][0]; x=f[k][...]; x.flat[0]=np.nan; f[k][...]=x" \
    $t/w.h5
for np in 1 2; do
  train $np --set train.output=$t/init$np --set train.max_steps=2 --set train.init_from=$t/w.h5
  expect "NaN init_from at $np rank(s): status 65, the weights named once, no checkpoint" \
      eval '[ $rc -eq 65 ] && once "error: the starting weights (.*w.h5) hold non-finite values" &&
            [ -z "$(ls $t/init$np/ckpt 2>/dev/null)" ]'
done

# 7. The job scripts end with status 65 and say it is not requeued.
out=$(bash -c '. "$1/jobs/lib.sh"; genesis_job_end 65 pretraining' _ "$(dirname "$0")/../.." 2>&1); rc=$?
expect "jobs: status 65 ends the job, not requeued" eval '[ $rc -eq 65 ] && has "not requeued"'

finish
