#!/usr/bin/env bash
# The genesis command line and how MPI jobs end: help, --version, config checks, the smoke run at
# 1, 2 and 4 ranks, and errors: one rank failing mid-collective ends the whole job within seconds
# with that rank's message; an error that every rank sees ends the job cleanly with one message;
# genesis plot's outputs and errors.
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
for h in --help -h help; do
  run "$G" help $h
  expect "help $h shows the overview, exit 0" succeeded_with "commands:"
done
run "$G" frobnicate
expect "unknown command exits 2" test $rc -eq 2
expect "unknown command is named" has "unknown command 'frobnicate'"
run "$G" --version
expect "--version names the libraries" has_all 'HDF5:.*parallel' 'OpenBLAS:.*core type' 'libnifti:' 'commit'
run "$MPIEXEC" -np 2 "$G" --version
expect "--version under mpirun -np 2 prints once" once '^genesis '
# OpenBLAS's generic fallback kernels on a CPU it does not know (src/nn/blas_core.c): genesis
# restarts itself with OPENBLAS_CORETYPE set (GENESIS_TEST_BLAS_CORE pretends OpenBLAS chose
# Prescott); a set OPENBLAS_CORETYPE is left alone. Needs an AVX2+FMA CPU (every x86-64 here).
if grep -q ' avx2 ' /proc/cpuinfo && grep -q ' fma ' /proc/cpuinfo; then
  for np in 1 2; do
    run "$MPIEXEC" -np $np env -u OPENBLAS_CORETYPE GENESIS_TEST_BLAS_CORE=Prescott "$G" --version
    expect "generic OpenBLAS pick at $np rank(s): genesis sets a better core and says so" \
      has_all 'core type \(SkylakeX\|Haswell\) (set by genesis: OpenBLAS chose Prescott' '^libnifti:'
  done
  run env OPENBLAS_CORETYPE=Prescott GENESIS_TEST_BLAS_CORE=Prescott "$G" --version
  expect "a set OPENBLAS_CORETYPE is kept" has 'core type Prescott; '
  run env -u OPENBLAS_CORETYPE "$G" --version
  expect "OpenBLAS's own pick carries no note" lacks 'set by genesis'
fi

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

# genesis plot: curves.png of a run folder from metrics.csv (tests/unit/test_plot.c checks the
# picture's pixels; here the command: default output, -o and --force, refused outputs, a run still
# writing its last line, a malformed file).
png_size() { /usr/bin/python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24)
assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"; print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"; }
exits_with() { [ "$rc" -eq "$1" ] && has "$2"; }
mkdir -p "$t/run"
awk 'BEGIN { print "step,epoch,lr,train_loss,validation_loss,samples_per_s,data_s,compute_s,comm_s"
  for (s = 1; s <= 40; s++) { e = int((s - 1) / 10); printf "%d,%d,0.1,%.6f,,1,0,1,0\n", s, e, 1 / (1 + s)
    if (s % 10 == 0) printf "%d,%d,0.1,,%.6f,,,,\n", s, e, 0.3 - 0.01 * e } }' > "$t/run/metrics.csv"
run "$G" help plot
expect "help plot shows usage" has "genesis plot RUN_DIR"
run "$MPIEXEC" -np 2 "$G" plot "$t/run"
expect "plot: writes RUN_DIR/curves.png, says so once" once "plot: $t/run/curves.png: loss (log y)"
expect "plot: curves.png is a 1000x760 PNG" test "$(png_size "$t/run/curves.png")" = 1000x760
run "$G" plot "$t/run"
expect "plot: replaces its own curves.png" test $rc -eq 0
run "$G" plot "$t/run" -o "$t/other.png"
expect "plot -o FILE writes FILE" test $rc -eq 0 -a -s "$t/other.png"
run "$G" plot "$t/run" -o "$t/other.png"
expect "plot -o onto an existing file: exit 2, names --force" exits_with 2 "other.png exists (replace it with --force)"
run "$G" plot "$t/run/metrics.csv" -o "$t/other.png" --force
expect "plot -o FILE --force replaces FILE (RUN_DIR given as its metrics.csv)" test $rc -eq 0
sum=$(sha256sum < "$t/run/metrics.csv")
run "$G" plot "$t/run" -o "$t/run/metrics.csv" --force
expect "plot -o onto its own metrics.csv: refused" exits_with 2 "is the input .*metrics.csv of this command"
expect "plot -o onto its own metrics.csv: the file intact" test "$(sha256sum < "$t/run/metrics.csv")" = "$sum"
mkdir "$t/folder.png"
run "$G" plot "$t/run" -o "$t/folder.png" --force
expect "plot -o onto a folder: refused" exits_with 2 "folder.png exists and is a folder: never replaced"
expect "plot -o onto a folder: the folder intact" test -d "$t/folder.png"
printf '41,4,0.1,0.02' >> "$t/run/metrics.csv"
run "$G" plot "$t/run"
expect "plot of a run writing its last line: exit 0, the partial row left out" \
  succeeded_with "against steps 0..40"
sed '5s/.*/5,0,0.1/' "$t/run/metrics.csv" > "$t/bad.csv"
run "$G" plot "$t/bad.csv" -o "$t/bad.png"
expect "plot of a malformed file: exit 1, names file and line" \
  exits_with 1 "genesis: error: $t/bad.csv:5: 3 fields, but the header has 9"

# Configuration inputs that were accepted or hung (issue 17): a folder, an endless device, a NUL
# byte, --set values that made a stored configuration that could not be read back.
run "$G" config --check "$t"
expect "config --check FOLDER: exit 2, says it is a folder" exits_with 2 "config file '$t' is a directory"
RUN_TIMEOUT=20 run "$G" config --check /dev/zero
expect "config --check /dev/zero: exit 2 at once (took $secs s), names the NUL byte" \
  exits_with 2 "/dev/zero:1: a NUL byte: not a text file"
printf '[train]\nbatch = 4\0\n' > "$t/nul.ini"
run "$G" config --check "$t/nul.ini"
expect "config with a NUL byte: exit 2" exits_with 2 "nul.ini:2: a NUL byte"
run "$G" config --check "$t/good.ini" --set "train.data=a
b"
expect "--set value with a newline: exit 2" exits_with 2 "a newline at character 2"
run "$G" config --check "$t/good.ini" --set "train.data=a ;b"
expect "--set value with ';': exit 2" exits_with 2 "';' at character 3"

# Long paths (issue 17): Open MPI's MPI-IO aborted on a path of ~240+ characters ("buffer overflow
# detected" under H5Fopen) in info, train's data and prep's output; a path the OS refuses is an error.
long=$t/$(printf 'p%.0s' $(seq 120))/$(printf 'q%.0s' $(seq 120))
mkdir -p "$long"
cat > "$t/tiny.ini" <<INI
[model]
width = 2
[prep]
filter = none
cube_rows = 16
cube_cols = 16
cube_deps = 16
crop_sizes = 16
border_xy = 0
border_z = 0
cubes_per_scan = 2
validation_fraction = 0.5
test_fraction = 0
[train]
batch = 2
max_steps = 1
preview_epochs = 0
INI
make_scans - "$t/lscans" 2 48,48,32
prep_cubes 2 "$t/tiny.ini" "$t/lscans/*.nii.gz" "$long/cubes.h5"
expect "prep at 2 ranks into a ${#long}-character folder" succeeded_with "wrote $long/cubes.h5"
run "$G" info "$long/cubes.h5"
expect "info on a $((${#long} + 9))-character path" succeeded_with "genesis cubes file"
run "$MPIEXEC" -np 2 "$G" train "$t/tiny.ini" --set "train.data=$long/cubes.h5" --set "train.output=$long/run"
expect "train at 2 ranks from and into the long folder" succeeded_with "done: 1 steps"
run "$G" info "$t/$(printf 'x%.0s' $(seq 5000)).h5"
expect "info on a 5000-character path: exit 1, no crash" exits_with 1 "characters, longer than this system allows (4095)"
expect "info on a 5000-character path: no abort" lacks "Signal"
run "$G" info "$t/$(printf 'n%.0s' $(seq 300)).h5"
expect "info on a 300-character file name: exit 1" exits_with 1 "a name of 303 characters in path"

finish
