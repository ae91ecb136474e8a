#!/usr/bin/env bash
# PyTorch interop and whole-scan restoration (issue 8):
#   - a trained width-32 genesis model, exported and converted to .pt (plain and DataParallel
#     checkpoint form), loads into our own PyTorch UNet3D (tests/golden/make_golden.py) with
#     strict=True, and gives the same outputs on the same 64x64x32 inputs (max abs diff <= 1e-4);
#   - torch -> genesis -> torch is exact, and [train] init_from starts from PyTorch's weights exactly;
#   - missing, extra and mis-shaped tensors are refused, naming them, by both scripts and init_from;
#   - genesis restore on a real MRI volume keeps the input's geometry, and restores corrupted
#     windows better than the corrupted input (errors printed).
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
SRC=${GENESIS_SOURCE_DIR:?set GENESIS_SOURCE_DIR}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"
# refused NAME: the last command failed and its output names NAME
refused() { [ $rc -ne 0 ] && has "$1"; }
# one_error: exactly one "genesis: error" line (the collective error printed once)
one_error() { [ "$(grep -c 'genesis: error' <<<"$out")" -eq 1 ]; }
show() { echo "$out" | tail -${1:-5}; }
export PYTHONPATH=$SRC/tests/golden:$SRC/scripts
export OMP_NUM_THREADS=1

# ---- (a) a trained width-32 model: export, convert, compare with PyTorch ----------------------
cat > $t/w32.ini <<INI
[model]
width = 32
[prep]
normalize = ct
filter = none
border_xy = 8
border_z = 4
cubes_per_scan = 8
validation_fraction = 0.5
test_fraction = 0
[train]
batch = 2
max_steps = 2
checkpoint_minutes = 0
preview_epochs = 0
INI
make_cubes $t/w32.ini $t 2 128,128,64
expect "phantoms and prep" test $rc -eq 0
start=$SECONDS
run "$MPIEXEC" -np 2 "$G" train $t/w32.ini --set train.data=$t/cubes.h5 --set train.output=$t/w32
expect "train width 32 for 2 steps" test $rc -eq 0
[ $rc -eq 0 ] || show
echo "(training took $((SECONDS - start)) s)"
ckpt=$t/w32/ckpt/step-00000002.h5

run "$G" export $ckpt -o $t/w32.h5
expect "export exits 0" test $rc -eq 0
[ $rc -eq 0 ] || show
expect "export: weights file holds exactly the checkpoint's tensors, by state_dict name" $PY - $ckpt $t/w32.h5 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as c, h5py.File(sys.argv[2]) as w:
    assert w.attrs['format'] == b'genesis-unet3d-weights', w.attrs['format']
    assert int(w.attrs['width']) == 32 and int(w.attrs['format_version']) == 1
    print('genesis_version:', w.attrs['genesis_version'])
    names = set(c['params']) | set(c['buffers'])
    assert set(w) == names, set(w) ^ names
    for k in c['params']:
        assert w[k].dtype == np.float32 and np.array_equal(w[k][...], c['params'][k][...]), k
    for k in c['buffers']:
        assert np.array_equal(w[k][...], c['buffers'][k][...]), k
    assert w['down_tr64.ops.0.bn1.num_batches_tracked'].dtype == np.int64
    assert w['down_tr64.ops.0.bn1.num_batches_tracked'].shape == ()
    assert w['up_tr256.up_conv.weight'].shape == (512, 512, 2, 2, 2)
    print(len(names), 'tensors')
PY
for form in plain checkpoint; do
  run $PY $SRC/scripts/genesis_to_torch.py $t/w32.h5 $t/w32_$form.pt --form $form
  expect "genesis_to_torch --form $form" test $rc -eq 0
  [ $rc -eq 0 ] || show
done

# The same two 64x64x32 inputs (validation cubes of the file) through PyTorch, from both .pt forms.
expect "PyTorch UNet3D(32) loads both forms with strict=True and runs the inputs" $PY - $t <<'PY'
import sys, h5py, numpy as np, torch
from make_golden import UNet3D
t = sys.argv[1]
torch.set_num_threads(2)
with h5py.File(f'{t}/cubes.h5') as f:
    x = np.stack([f['cubes'][0], f['cubes'][len(f['cubes']) - 1]])[:, None].astype(np.float32)
with h5py.File(f'{t}/input.h5', 'w') as f:
    f['input'] = x
outs = []
for form in ('plain', 'checkpoint'):
    obj = torch.load(f'{t}/w32_{form}.pt')
    if form == 'checkpoint':
        assert list(obj) == ['state_dict'] and all(k.startswith('module.') for k in obj['state_dict'])
        sd = {k[len('module.'):]: v for k, v in obj['state_dict'].items()}  # the reference's un-DataParallel step
    else:
        sd = obj
    m = UNet3D(32)
    assert list(sd) == list(m.state_dict()), 'state_dict order'
    m.load_state_dict(sd, strict=True)
    with torch.no_grad():
        outs.append(m(torch.from_numpy(x)).numpy())
assert np.array_equal(outs[0], outs[1])
np.save(f'{t}/torch_out.npy', outs[0])
print('output range', outs[0].min(), outs[0].max())
PY
run "$G" forward $ckpt $t/input.h5 -o $t/genesis_out.h5
expect "genesis forward of the checkpoint" test $rc -eq 0
[ $rc -eq 0 ] || show
expect "genesis and PyTorch outputs agree: max abs difference <= 1e-4" $PY - $t <<'PY'
import sys, h5py, numpy as np
t = sys.argv[1]
a = np.load(f'{t}/torch_out.npy')
with h5py.File(f'{t}/genesis_out.h5') as f:
    b = f['output'][...]
assert a.shape == b.shape == (2, 1, 64, 64, 32), (a.shape, b.shape)
d = float(np.max(np.abs(a - b)))
print(f'width 32, 2 x 64x64x32: max abs difference genesis vs PyTorch {d:.3g} (mean {float(np.mean(np.abs(a - b))):.3g})')
assert d <= 1e-4, d
PY

# Evaluation mode: batch norm with the running estimates (genesis forward/restore --bn running) is
# PyTorch's F.batch_norm with training=False on the same buffers.
run "$G" forward $ckpt $t/input.h5 -o $t/genesis_eval.h5 --bn running
expect "genesis forward --bn running" test $rc -eq 0
expect "--bn running agrees with PyTorch's evaluation-mode batch norm: max abs difference <= 1e-4" \
  $PY - $t <<'PY'
import sys, h5py, numpy as np, torch, torch.nn.functional as F
from make_golden import UNet3D, ContBatchNorm3d
t = sys.argv[1]
torch.set_num_threads(2)
m = UNet3D(32)
m.load_state_dict(torch.load(f'{t}/w32_plain.pt'), strict=True)
for bn in m.modules():
    if isinstance(bn, ContBatchNorm3d):
        bn.forward = lambda x, bn=bn: F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                                   False, 0.0, bn.eps)
with h5py.File(f'{t}/input.h5') as f:
    x = f['input'][...]
with torch.no_grad():
    a = m(torch.from_numpy(x)).numpy()
with h5py.File(f'{t}/genesis_eval.h5') as f:
    b = f['output'][...]
with h5py.File(f'{t}/genesis_out.h5') as f:
    batch_stats = f['output'][...]
d = float(np.max(np.abs(a - b)))
print(f'running statistics: max abs difference genesis vs PyTorch {d:.3g}; '
      f'differs from batch statistics by {float(np.max(np.abs(b - batch_stats))):.3g}')
assert d <= 1e-4, d
assert np.max(np.abs(b - batch_stats)) > 1e-3, 'the running estimates made no difference: not exercised'
PY
run "$G" forward $ckpt $t/input.h5 -o $t/x.h5 --bn mean
expect "forward refuses an unknown --bn" refused "--bn"

# ---- torch -> genesis -> torch, exact ---------------------------------------------------------
run $PY $SRC/scripts/torch_to_genesis.py $t/w32_checkpoint.pt $t/w32_back.h5
expect "torch_to_genesis reads the checkpoint form" test $rc -eq 0
[ $rc -eq 0 ] || show
same_tensors() { $PY - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as a, h5py.File(sys.argv[2]) as b:
    assert list(a) == list(b), set(a) ^ set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k][()], b[k][()]), k
    assert int(a.attrs['width']) == int(b.attrs['width']) and a.attrs['format'] == b.attrs['format']
PY
}
expect "genesis -> torch -> genesis: the weights file is unchanged, tensor by tensor" \
  same_tensors $t/w32.h5 $t/w32_back.h5
# A PyTorch-made width-4 model with non-trivial BN buffers and counters.
expect "a PyTorch UNet3D(4) saved plain and DataParallel-style" $PY - $t <<'PY'
import sys, torch
from make_golden import UNet3D
t = sys.argv[1]
torch.manual_seed(7)
m = UNet3D(4)
with torch.no_grad():
    for k, v in m.state_dict().items():
        if k.endswith('num_batches_tracked'):
            v.fill_(int(torch.randint(0, 1000, ())))
        elif 'running' in k or 'bn1' in k:
            v.copy_(torch.rand_like(v) + 0.5)
torch.save(m.state_dict(), f'{t}/w4_plain.pt')
torch.save({'epoch': 3, 'state_dict': torch.nn.DataParallel(m).state_dict()}, f'{t}/w4_dp.pt')
PY
run $PY $SRC/scripts/torch_to_genesis.py $t/w4_dp.pt $t/w4.h5
expect "torch_to_genesis: DataParallel checkpoint form" test $rc -eq 0
run $PY $SRC/scripts/torch_to_genesis.py $t/w4_plain.pt $t/w4_from_plain.h5
expect "torch_to_genesis: plain form" test $rc -eq 0
expect "both forms give the same weights file" same_tensors $t/w4.h5 $t/w4_from_plain.h5
run $PY $SRC/scripts/genesis_to_torch.py $t/w4.h5 $t/w4_back.pt --form checkpoint
expect "genesis_to_torch of the converted file" test $rc -eq 0
expect "torch -> genesis -> torch is exact (every tensor bitwise, dtypes, order)" $PY - $t <<'PY'
import sys, torch
t = sys.argv[1]
a = torch.load(f'{t}/w4_plain.pt')
b = {k[len('module.'):]: v for k, v in torch.load(f'{t}/w4_back.pt')['state_dict'].items()}
assert list(a) == list(b)
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert torch.equal(a[k], b[k]), k
print(len(a), 'tensors identical')
PY

# ---- [train] init_from: starts from exactly the PyTorch weights -------------------------------
cat > $t/w4.ini <<INI
[model]
width = 4
[train]
batch = 2
max_steps = 1
learning_rate = 0
checkpoint_minutes = 0
preview_epochs = 0
INI
run "$MPIEXEC" -np 2 "$G" train $t/w4.ini --set train.data=$t/cubes.h5 --set train.output=$t/init \
    --set train.init_from=$t/w4.h5
expect "train with init_from exits 0" test $rc -eq 0
[ $rc -eq 0 ] || show
expect "train says it starts from the weights file" has "starting from the weights of $t/w4.h5"
expect "after a step at learning rate 0, the parameters are exactly PyTorch's" $PY - $t <<'PY'
import sys, h5py, numpy as np, torch
t = sys.argv[1]
a = torch.load(f'{t}/w4_plain.pt')
with h5py.File(f'{t}/init/ckpt/step-00000001.h5') as f:
    for k in f['params']:
        assert np.array_equal(f['params'][k][...], a[k].numpy()), k
    print(len(f['params']), 'parameters identical')
PY
run "$MPIEXEC" -np 2 "$G" train $t/w4.ini --set train.data=$t/cubes.h5 --set train.output=$t/init \
    --set train.init_from=$t/w4.h5 --set train.max_steps=2
expect "a resumed run resumes" has "resuming from"
expect "init_from applies only to a fresh start" bash -c '! grep -q "starting from the weights" <<<"$1"' _ "$out"

# ---- bad input: missing, extra and mis-shaped tensors, refused with their names ---------------
expect "bad .pt and .h5 files made" $PY - $t <<'PY'
import sys, h5py, shutil, torch
t = sys.argv[1]
sd = torch.load(f'{t}/w4_plain.pt')
bad = {
    'missing': lambda d: d.pop('up_tr128.ops.1.bn1.running_var'),
    'extra': lambda d: d.__setitem__('extra_head.weight', torch.zeros(3)),
    'shape': lambda d: d.__setitem__('down_tr128.ops.0.conv1.weight', torch.zeros(8, 7, 3, 3, 3)),
}
for name, change in bad.items():
    d = dict(sd)
    change(d)
    torch.save({'state_dict': {'module.' + k: v for k, v in d.items()}}, f'{t}/bad_{name}.pt')
    shutil.copy(f'{t}/w4.h5', f'{t}/bad_{name}.h5')
    with h5py.File(f'{t}/bad_{name}.h5', 'a') as f:
        if name == 'missing':
            del f['up_tr128.ops.1.bn1.running_var']
        elif name == 'extra':
            f['extra_head.weight'] = d['extra_head.weight'].numpy()
        else:
            del f['down_tr128.ops.0.conv1.weight']
            f['down_tr128.ops.0.conv1.weight'] = d['down_tr128.ops.0.conv1.weight'].numpy()
PY
declare -A bad_name=([missing]=up_tr128.ops.1.bn1.running_var [extra]=extra_head.weight \
                     [shape]=down_tr128.ops.0.conv1.weight)
for kind in missing extra shape; do
  n=${bad_name[$kind]}
  run $PY $SRC/scripts/torch_to_genesis.py $t/bad_$kind.pt $t/bad_out.h5
  expect "torch_to_genesis refuses a .pt with a $kind tensor, naming $n" refused "$n"
  show 1
  run $PY $SRC/scripts/genesis_to_torch.py $t/bad_$kind.h5 $t/bad_out.pt
  expect "genesis_to_torch refuses an .h5 with a $kind tensor, naming $n" refused "$n"
  run "$MPIEXEC" -np 2 "$G" train $t/w4.ini --set train.data=$t/cubes.h5 --set train.output=$t/bad_$kind \
      --set train.init_from=$t/bad_$kind.h5
  expect "init_from refuses an .h5 with a $kind tensor, naming $n" refused "$n"
  expect "... exit status 1" test $rc -eq 1
  expect "... printed once" one_error
  grep 'genesis: error' <<<"$out"
done
expect "no partial output of the refused conversions" test ! -e $t/bad_out.h5 -a ! -e $t/bad_out.pt
run "$G" export $t/cubes.h5 -o $t/x.h5
expect "export of a cubes file is refused" refused "cannot tell the model width"
show 1

# ---- (b) genesis restore on a real MRI volume ----------------------------------------------------
# A width-4 model trained briefly (Adam, 120 steps) on cubes of two other MRI templates, every
# kind of cube (filter none) so that it has seen background; restored on ch2, unseen in training.
T=/usr/share/mricron/templates
cat > $t/mri.ini <<INI
[model]
width = 4
[prep]
inputs = $T/ch2better.nii.gz,$T/inia19-t1-brain.nii.gz
normalize = mri_minmax
percentile_lo = 0.5
percentile_hi = 99.5
filter = none
border_xy = 16
border_z = 8
cubes_per_scan = 48
validation_fraction = 0.5
test_fraction = 0
[train]
batch = 2
optimizer = adam
learning_rate = 0.001
max_steps = 120
checkpoint_minutes = 0
preview_epochs = 0
INI
run "$MPIEXEC" -np 2 "$G" prep $t/mri.ini --set prep.output=$t/mri.h5
expect "prep of the MRI cubes" test $rc -eq 0
start=$SECONDS
run "$MPIEXEC" -np 2 "$G" train $t/mri.ini --set train.data=$t/mri.h5 --set train.output=$t/mri
expect "width-4 training on MRI cubes" test $rc -eq 0
[ $rc -eq 0 ] || show
echo "(training took $((SECONDS - start)) s)"
mck=$t/mri/ckpt/step-00000120.h5
run "$MPIEXEC" -np 2 "$G" restore $mck $T/ch2.nii.gz -o $t/restored.nii.gz --corrupt --png $t/restored.png
expect "restore --corrupt --png at 2 ranks exits 0" test $rc -eq 0
echo "$out" | grep 'restore:'
corrupted=$(sed -n 's/.*mse_window_corrupted: *\([0-9.]*\).*/\1/p' <<<"$out")
restored=$(sed -n 's/.*mse_window_restored: *\([0-9.]*\).*/\1/p' <<<"$out")
expect "the restored windows are closer to the scan than the corrupted ones ($restored < $corrupted)" \
  $PY -c "import sys; sys.exit(not (0 <= float('$restored') < float('$corrupted')))"
expect "restored NIfTI: the input's dims, affine, qform/sform; values within the normalisation window" \
  $PY - $T/ch2.nii.gz $t/restored.nii.gz <<'PY'
import sys, nibabel as nib, numpy as np
a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
assert np.allclose(a.affine, b.affine, atol=1e-5), (a.affine, b.affine)
for f in ('get_qform', 'get_sform'):
    qa, ca = getattr(a.header, f)(coded=True)
    qb, cb = getattr(b.header, f)(coded=True)
    assert ca == cb and (qa is None or np.allclose(qa, qb, atol=1e-5)), (f, ca, cb)
assert np.allclose(a.header.get_zooms(), b.header.get_zooms())
x = np.asarray(a.get_fdata(), dtype=np.float64)
lo, hi = np.percentile(x, 0.5), np.percentile(x, 99.5)
y = np.asarray(b.get_fdata())
assert b.get_data_dtype() == np.float32 and np.isfinite(y).all()
assert y.min() >= lo - 1e-3 * (hi - lo) and y.max() <= hi + 1e-3 * (hi - lo), (y.min(), y.max(), lo, hi)
print(f'shape {b.shape}, restored values {y.min():.4g}..{y.max():.4g} within the window [{lo:.4g}, {hi:.4g}]')
PY
expect "restore wrote the slices picture" test -s $t/restored.png

# The windows spread over ranks: with one window per batch (statistics of each window alone),
# 1 and 2 ranks give the same volume up to float summation order.
for np in 1 2; do
  run "$MPIEXEC" -np $np "$G" restore $mck $T/ch2.nii.gz -o $t/r_np$np.nii.gz --batch 1 --stride 48,48,24
  expect "restore --batch 1 at $np rank(s)" test $rc -eq 0
done
expect "restore at 1 and 2 ranks agree (max abs difference <= 1e-5 of the window)" $PY - $t <<'PY'
import sys, nibabel as nib, numpy as np
t = sys.argv[1]
a = nib.load(f'{t}/r_np1.nii.gz').get_fdata()
b = nib.load(f'{t}/r_np2.nii.gz').get_fdata()
d = float(np.max(np.abs(a - b)))
span = float(a.max() - a.min())
print(f'max abs difference 1 vs 2 ranks: {d:.3g} (value span {span:.4g})')
assert d <= 1e-5 * span, d
PY
# A scan smaller than a window along two axes (padded) keeps its geometry.
expect "a small crop of ch2 (40x50x20 voxels)" $PY - $T/ch2.nii.gz $t/small.nii.gz <<'PY'
import sys, nibabel as nib, numpy as np
a = nib.load(sys.argv[1])
x = np.asarray(a.dataobj)[60:100, 80:130, 80:100]
nib.save(nib.Nifti1Image(x, a.affine, a.header), sys.argv[2])
PY
run "$G" restore $mck $t/small.nii.gz -o $t/small_restored.nii.gz
expect "restore of a scan smaller than a window" test $rc -eq 0
[ $rc -eq 0 ] || show
echo "$out" | grep 'mse_volume_restored'
expect "... has the scan's dims and affine" $PY - $t/small.nii.gz $t/small_restored.nii.gz <<'PY'
import sys, nibabel as nib, numpy as np
a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
assert a.shape == b.shape == (40, 50, 20) and np.allclose(a.affine, b.affine, atol=1e-5)
PY
run "$G" restore $t/w4.h5 $T/ch2.nii.gz -o $t/x.nii.gz
expect "restore needs a checkpoint (its [prep] settings), not a weights file" refused "config"
grep 'genesis: error' <<<"$out"
run "$G" restore $mck $T/ch2.nii.gz -o $t/x.nii.gz --stride 0
expect "restore refuses a bad stride" refused "stride"

finish
