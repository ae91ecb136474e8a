#!/usr/bin/env bash
# The genesis command line and how MPI jobs end: help, --version, config checks, the smoke run at
# 1, 2 and 4 ranks, and errors: one rank failing mid-collective ends the whole job within seconds
# with that rank's message; an error that every rank sees ends the job cleanly with one message.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

RUN_TIMEOUT=60
# fast N: the last run took less than N seconds more than a clean 4-rank smoke run ($base4), so
# that a slow mpirun start-up (e.g. a slow host name lookup) is not taken for a hang
base4=0
fast() { awk -v s="$secs" -v b="$base4" -v m="$1" 'BEGIN{exit !(s < b + m)}'; }

run "$G" help
expect "help lists the commands" has "smoke"
expect "help exits 0" test $rc -eq 0
run "$G" help config
expect "help config shows usage" has "--defaults"
run "$G" frobnicate
expect "unknown command exits 2" test $rc -eq 2
expect "unknown command is named" has "unknown command 'frobnicate'"
run "$G" --version
expect "--version names the libraries" has_all 'HDF5:.*parallel' 'OpenBLAS:.*core type' 'libnifti:' 'commit'
run "$MPIEXEC" -np 2 "$G" --version
expect "--version under mpirun -np 2 prints once" once '^genesis '

run "$G" config --defaults
expect "config --defaults lists [train] batch" has "^train *batch *integer *6"
for f in "$GENESIS_SOURCE_DIR"/conf/*.ini; do
  run "$G" config --check "$f"
  expect "shipped config $(basename "$f") is valid" test $rc -eq 0
done
printf '[train]\nbatch = 12\n' > "$t/good.ini"
run "$G" config --check "$t/good.ini" --set model.width=8
expect "config --check of a good file exits 0" test $rc -eq 0
expect "resolved config shows the file's value and origin" has "batch = 12 .*good.ini:2"
expect "resolved config shows the --set value" has "width = 8 .*--set"
printf '[train]\nlearning_rat = 1.0\n' > "$t/bad.ini"
for np in 1 4; do
  run "$MPIEXEC" -np $np "$G" config --check "$t/bad.ini"
  expect "bad config at $np ranks exits 2" test $rc -eq 2
  expect "bad config at $np ranks: one message with file:line and suggestion" \
    once "genesis: error: $t/bad.ini:2: unknown key 'learning_rat' in section \[train\] (did you mean 'learning_rate'?)"
  expect "bad config at $np ranks: no MPI_Abort" lacks MPI_ABORT
done

for np in 1 2 4; do
  run "$MPIEXEC" -np $np "$G" smoke --dir $t
  expect "smoke at $np ranks" succeeded_with "ok on $np rank"
  base4=$secs
done
expect "smoke leaves no file behind" test -z "$(ls $t | grep smoke)"

# A folder that does not exist: every rank sees it, one clean message naming the file.
run "$MPIEXEC" -np 2 "$G" smoke --dir $t/missing
expect "missing folder: exit 1 ($rc)" test $rc -eq 1
expect "missing folder: one message naming the file" \
  once "genesis: error: cannot create HDF5 file '$t/missing/genesis-smoke"

# One rank fails in the middle of a collective phase: the job ends, fast, with that rank's message.
for site in smoke.mpi smoke.hdf5 smoke.blas; do
  run env GENESIS_FAULT=$site:2 "$MPIEXEC" -np 4 "$G" smoke --dir $t
  expect "fault at $site on rank 2 of 4: non-zero exit ($rc)" test $rc -ne 0
  expect "fault at $site on rank 2 of 4: ends within 15 s of a clean run (took $secs s, clean $base4 s)" fast 15
  expect "fault at $site on rank 2 of 4: rank 2's message" \
    has "genesis: error on rank 2: injected fault at '$site'"
done
# The same error on every rank: a clean end, one message, no abort.
run env GENESIS_FAULT=smoke.blas:all "$MPIEXEC" -np 4 "$G" smoke --dir $t
expect "fault on all ranks: exit 1 ($rc)" test $rc -eq 1
expect "fault on all ranks: one message" once "genesis: error: injected fault at 'smoke.blas'"
expect "fault on all ranks: no MPI_Abort" lacks MPI_ABORT
expect "fault on all ranks: ends within 15 s of a clean run (took $secs s, clean $base4 s)" fast 15

finish
