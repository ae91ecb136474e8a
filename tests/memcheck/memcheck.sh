#!/usr/bin/env bash
# No leaks and no invalid accesses on the short paths: help and version, configuration (good and
# bad), phantom, prep, info, a 1-step training run and its resume to step 2, export, plot, and
# error exits. Release build: each command under valgrind memcheck, but for the training runs
# themselves (a width-2 step takes minutes under valgrind): they run plainly there, and their
# checkpoint is then read under valgrind. Sanitizer build (GENESIS_SANITIZE=ON): every command, training
# included, under AddressSanitizer, UBSan and LeakSanitizer. Open MPI's own allocations in
# MPI_Init are suppressed (tests/memcheck/*.supp).
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
SRC=${GENESIS_SOURCE_DIR:?}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$SRC/tests/lib/harness.sh"

if [ "${GENESIS_SANITIZED:-OFF}" = ON ]; then
  tool="AddressSanitizer/LeakSanitizer"
  export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:exitcode=9
  export LSAN_OPTIONS=suppressions=$SRC/tests/memcheck/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  checker=()
  training() { clean "$@"; }
else
  tool=valgrind
  command -v valgrind >/dev/null || { echo "FAILED: valgrind is not installed (scripts/setup --test)"; exit 1; }
  checker=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
           --errors-for-leak-kinds=definite,indirect --error-exitcode=9
           --suppressions="$SRC/tests/memcheck/mpi.supp")
  ompi_supp=/usr/share/openmpi/openmpi-valgrind.supp   # Open MPI's own (package openmpi-common)
  [ -f $ompi_supp ] && checker+=(--suppressions=$ompi_supp)
  training() { local want=$1 what=$2; shift 2; run "$G" "$@"; expect "$what (not under valgrind)" test $rc -eq $want; }
fi
# clean EXPECTED_STATUS WHAT ARGS...: runs genesis ARGS under the tool; passes when genesis exits
# with EXPECTED_STATUS and the tool reported nothing (its reports and exit status 9 fail it)
clean() {
  local want=$1 what=$2; shift 2
  run "${checker[@]}" "$G" "$@"
  local reports; reports=$(grep -c -E '==[0-9]+==|ERROR: (Address|Leak)Sanitizer|runtime error' <<<"$out")
  if [ "$rc" -eq "$want" ] && [ "$reports" -eq 0 ]; then ok "$tool: $what (exit $rc, ${secs%.*} s)"
  else bad "$tool: $what: exit $rc (want $want), $reports report lines"; echo "$out" | tail -40; fi
}

cat > $t/run.ini <<INI
[model]
width = 2
[prep]
inputs = $t/scans/*.nii.gz
output = $t/cubes.h5
normalize = ct
filter = none
border_xy = 8
border_z = 4
cubes_per_scan = 2
validation_fraction = 0.5
test_fraction = 0
[train]
data = $t/cubes.h5
output = $t/run
batch = 2
max_steps = 1
log_every = 1
checkpoint_minutes = 0
INI
printf '[train]\nbatch = two\n' > $t/bad.ini

clean 0 "--version" --version
clean 0 "help" help
clean 0 "config --check" config --check $t/run.ini
clean 2 "config --check of a bad file" config --check $t/bad.ini
clean 0 "phantom" phantom --count 2 --output-dir $t/scans --size 96,96,48
clean 0 "prep" prep $t/run.ini
clean 0 "info (cubes)" info $t/cubes.h5
training 0 "train (1 step)" train $t/run.ini
training 0 "train resumed (to step 2)" train $t/run.ini --set train.max_steps=2
expect "the resumed run reached step 2" test -s $t/run/ckpt/step-00000002.h5
clean 0 "info (checkpoint)" info $t/run/ckpt/step-00000002.h5
clean 0 "export" export $t/run/ckpt/step-00000002.h5 -o $t/weights.h5
clean 0 "plot (curves.png of the run)" plot $t/run
printf 'step,train_loss\n1,0.5\n2\n' > $t/bad.csv
clean 1 "plot of a malformed metrics.csv" plot $t/bad.csv
clean 1 "train on a missing cubes file" train $t/run.ini --set train.data=$t/missing.h5 --set train.output=$t/run2
finish
