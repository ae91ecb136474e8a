#!/usr/bin/env bash
# Parallel and network file systems. On Lustre mounted without flock and on NFS, flock() fails, and
# HDF5's default file locking then refuses to open a file ("unable to lock file"): a resume would
# find "no readable checkpoint". Here flock() is made to fail with ENOLCK for every genesis process
# (an LD_PRELOAD shim built by this test), and prep, train, resume, export and info must still work;
# with HDF5_USE_FILE_LOCKING=TRUE (HDF5 locks again) the same resume must fail, which shows the shim
# bites. [io] mpiio_hints pass through prep and train (tests/mpi/test_h5par.c checks that they reach
# HDF5's MPI_Info); a malformed list is a usage error.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

cat > $t/noflock.c <<'C'
/* flock() as on a file system without it: every call fails with ENOLCK. */
#include <errno.h>
int flock(int fd, int operation) { (void)fd; (void)operation; errno = ENOLCK; return -1; }
C
cc -shared -fPIC -o $t/noflock.so $t/noflock.c
expect "the no-flock shim builds" test -f $t/noflock.so
run env LD_PRELOAD=$t/noflock.so flock $t/lockfile true
expect "the shim makes flock(1) fail" test $rc -ne 0
NOFLOCK="env LD_PRELOAD=$t/noflock.so"
# the launcher passes LD_PRELOAD on to the ranks: Open MPI with -x, MPICH's Hydra with -genvlist
forward=(-x LD_PRELOAD)
"$MPIEXEC" --version 2>&1 | grep -qi hydra && forward=(-genvlist LD_PRELOAD)

phantom_ct_ini $t/fs.ini
cat >> $t/fs.ini <<INI
[io]
mpiio_hints = romio_cb_read=enable,romio_cb_write=enable,cb_nodes=1,striping_factor=2,striping_unit=1048576
INI
make_scans - $t/scans 2 128,128,64
run $NOFLOCK "$MPIEXEC" "${forward[@]}" -np 2 "$G" prep $t/fs.ini --set "prep.inputs=$t/scans/*.nii.gz" \
  --set prep.output=$t/cubes.h5 --set prep.filter=none
expect "prep without flock, with MPI-IO hints" test $rc -eq 0 || echo "$out" | grep -v "^ *$" | head -5
run $NOFLOCK "$G" info $t/cubes.h5
expect "info without flock" test $rc -eq 0

train() { run $NOFLOCK "$MPIEXEC" "${forward[@]}" -np 2 "$G" train $t/fs.ini --set train.data=$t/cubes.h5 \
            --set train.output=$t/run --set train.batch=2 --set train.learning_rate=0.1 \
            --set train.checkpoint_minutes=0 --set train.checkpoint_steps=2 "$@"; }
train --set train.max_steps=2
expect "train without flock writes its checkpoint" test $rc -eq 0 -a -s $t/run/ckpt/step-00000002.h5 ||
  echo "$out" | tail -3
train --set train.max_steps=4
expect "resume without flock reads the checkpoint" has "resuming from $t/run/ckpt/step-00000002.h5"
expect "resume without flock finishes" test $rc -eq 0 -a -s $t/run/ckpt/step-00000004.h5
run $NOFLOCK "$G" export $t/run/ckpt/step-00000004.h5 -o $t/weights.h5
expect "export without flock (reads a checkpoint, creates a weights file)" test $rc -eq 0 -a -s $t/weights.h5

# the control: HDF5's own locking switched back on must fail under the same shim
run env HDF5_USE_FILE_LOCKING=TRUE LD_PRELOAD=$t/noflock.so "$G" export $t/run/ckpt/step-00000004.h5 -o $t/w2.h5
expect "control: with HDF5_USE_FILE_LOCKING=TRUE the shim makes the open fail" test $rc -ne 0
expect "control: the reason is HDF5's lock" has "lock"

run "$G" config --check $t/fs.ini --set io.mpiio_hints=romio_cb_write
expect "a malformed mpiio_hints item is a usage error (status 2) naming it" \
  test $rc -eq 2 && has "'romio_cb_write' is not key=value"
finish
