#!/usr/bin/env bash
# The output policy of every command that writes a file (README: Outputs; atomic_file.h): an
# existing output is refused unless --force (prep: [prep] overwrite = true), the command's own input
# (also through a symbolic or hard link) and non-regular files (a fifo, a device node made here, a
# folder) are refused even when forced, --force replaces, no temporary file is left; prep's lock
# refuses a second prep to the same output naming its PID and cleans a killed prep's leftovers.
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
MPIEXEC=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"
RUN_TIMEOUT=60 # a writer that opened a fifo would block: the limit turns that into a failure
refused() { [ "$rc" -ne 0 ] && has "$1"; }
no_temporaries() { [ -z "$(find "$t" -name '*.tmp-*' -o -name '*.partial-*' -o -name '*.lock')" ]; }

mkfifo "$t/fifo"
device=""
if [ "$(id -u)" = 0 ] && mknod "$t/null-device" c 1 3 2>/dev/null; then device="$t/null-device"; fi
# non_regular: the fifo and (as root) a device node made in $t
non_regular() { echo "$t/fifo"; [ -z "$device" ] || echo "$device"; }
ln -s "$t/fifo" "$t/fifo-link"

# phantom
make_scans - "$t/scans" 3 96,96,48
expect "phantom writes 3 scans" test $rc -eq 0
sum=$(sha256sum "$t/scans/phantom_0001.nii.gz")
run "$G" phantom --count 3 --output-dir "$t/scans" --size 96,96,48 --seed 5
expect "phantom: existing scans refused, named" refused "phantom_0000.nii.gz exists (replace it with --force)"
expect "phantom: the existing scans intact" test "$(sha256sum "$t/scans/phantom_0001.nii.gz")" = "$sum"
run "$G" phantom --count 2 --output-dir "$t/scans" --size 96,96,48 --first 1 --force
expect "phantom --force replaces" test $rc -eq 0

# prep
tiny_run_ini "$t/p.ini"
prep_cubes - "$t/p.ini" "$t/scans/*.nii.gz" "$t/cubes.h5"
expect "prep writes cubes" test $rc -eq 0
prep_cubes - "$t/p.ini" "$t/scans/*.nii.gz" "$t/cubes.h5"
expect "prep: existing output refused, names overwrite" refused "cubes.h5 exists (replace it with \[prep\] overwrite = true)"
prep_cubes - "$t/p.ini" "$t/scans/*.nii.gz" "$t/scans/phantom_0002.nii.gz" --set prep.overwrite=true
expect "prep: its own scan refused even with overwrite" refused "is the input .*phantom_0002.nii.gz of this command"
for target in $(non_regular) "$t/scans"; do
  prep_cubes - "$t/p.ini" "$t/scans/*.nii.gz" "$target" --set prep.overwrite=true
  expect "prep: $(basename "$target") refused even with overwrite" refused "never replaced"
  expect "prep: refusing $(basename "$target") does not advise overwrite" lacks "replace it with"
done
expect "prep: the fifo is still a fifo" test -p "$t/fifo"
[ -z "$device" ] || expect "prep: the device node is still a device" test -c "$device"
prep_cubes 2 "$t/p.ini" "$t/scans/*.nii.gz" "$t/cubes.h5" --set prep.overwrite=true
expect "prep: overwrite = true replaces (2 ranks)" test $rc -eq 0

# prep's lock: held by a live process -> refused naming it; by a dead one -> stale, cleaned
sleep 60 & holder=$!
echo "$holder $(hostname)" > "$t/locked.h5.lock"
prep_cubes - "$t/p.ini" "$t/scans/*.nii.gz" "$t/locked.h5"
expect "prep: a second prep to the same output refused, naming the other's PID" \
  refused "locked.h5 is being written by another process (PID $holder on"
expect "prep: the other prep's lock kept" test -f "$t/locked.h5.lock"
kill $holder; wait $holder 2>/dev/null
: > "$t/locked.h5.partial-$holder"
prep_cubes 2 "$t/p.ini" "$t/scans/*.nii.gz" "$t/locked.h5"
expect "prep: a dead prep's lock is stale: prep runs" test $rc -eq 0
expect "prep: the stale lock is named" has "PID $holder on .* is gone: removing the stale lock"
expect "prep: the dead prep's partial file removed" test ! -e "$t/locked.h5.partial-$holder"
expect "prep: its own lock removed at the end" test ! -e "$t/locked.h5.lock"

# a checkpoint to export, forward and restore from
run "$G" train "$t/p.ini" --set train.data="$t/cubes.h5" --set train.output="$t/run" --set train.max_steps=2
expect "train writes a checkpoint" test $rc -eq 0 -a -f "$t/run/ckpt/step-00000002.h5"
ck=$t/run/ckpt/step-00000002.h5
ln -s "$ck" "$t/ckpt-symlink.h5"; ln "$ck" "$t/ckpt-hardlink.h5"
ck_sum=$(sha256sum < "$ck")

# export
run "$G" export "$ck" -o "$t/w.h5"
expect "export writes" test $rc -eq 0
run "$G" export "$ck" -o "$t/w.h5"
expect "export: existing output refused" refused "w.h5 exists (replace it with --force)"
run "$G" export "$ck" -o "$t/w.h5" --force
expect "export --force replaces" test $rc -eq 0
for self in "$ck" "$t/ckpt-symlink.h5" "$t/ckpt-hardlink.h5"; do
  run "$G" export "$ck" -o "$self" --force
  expect "export: its own checkpoint as $(basename "$self") refused even with --force" \
    refused "is the input .* of this command (the same file)"
done
expect "export: the checkpoint intact" test "$(sha256sum < "$ck")" = "$ck_sum"
run "$G" export "$ck" -o "$t/fifo-link" --force
expect "export: a symbolic link to a fifo refused even with --force" refused "never replaced"
run "$G" export "$ck" -o "$t/missing/w.h5"
expect "export into a missing folder: one line naming the folder" refused "cannot write $t/missing/w.h5: folder $t/missing"
expect "export into a missing folder: no HDF5 internals" lacks "o_flags"

# forward
$PY -c 'import h5py, numpy as np, sys; h5py.File(sys.argv[1], "w")["input"] = np.random.rand(2, 1, 8, 8, 8).astype("f4")' \
  "$t/in.h5"
run "$G" forward "$ck" "$t/in.h5" -o "$t/out.h5"
expect "forward writes" test $rc -eq 0
run "$G" forward "$ck" "$t/in.h5" -o "$t/out.h5"
expect "forward: existing output refused" refused "out.h5 exists (replace it with --force)"
run "$G" forward "$ck" "$t/in.h5" -o "$t/in.h5" --force
expect "forward: its own input refused even with --force" refused "is the input .*in.h5 of this command"
run "$G" forward "$ck" "$t/in.h5" -o "$t/out.h5" --force
expect "forward --force replaces" test $rc -eq 0

# restore
scan=$t/scans/phantom_0000.nii.gz
scan_sum=$(sha256sum < "$scan")
run "$G" restore "$ck" "$scan" -o "$scan" --force
expect "restore: its own scan refused even with --force" refused "is the input .*phantom_0000.nii.gz of this command"
expect "restore: the scan intact" test "$(sha256sum < "$scan")" = "$scan_sum"
run "$MPIEXEC" -np 2 "$G" restore "$ck" "$scan" -o "$t/r.nii.gz" --png "$t/r.png"
expect "restore writes (2 ranks)" test $rc -eq 0 -a -s "$t/r.nii.gz" -a -s "$t/r.png"
expect "restore prints its plan and its progress" has_all "restore: 8 windows (2 x 2 x 2) of 64x64x32 voxels" \
  "restore: windows 8/8 (100%), [0-9.]* windows/s"
RUN_TIMEOUT=12 run "$G" restore "$ck" "$scan" -o "$t/huge.nii.gz" --stride 1
expect "restore --stride 1: a warning about the huge plan at once" \
  has "a huge plan: 18513 windows, 2314 times the 8 of the default stride"
run "$MPIEXEC" -np 2 "$G" restore "$ck" "$scan" -o "$t/r.nii.gz"
expect "restore: existing output refused, one message" once "r.nii.gz exists (replace it with --force)"
run "$G" restore "$ck" "$scan" -o "$t/r2.nii.gz" --png "$t/r.png"
expect "restore: existing --png refused" refused "r.png exists (replace it with --force)"
run "$G" restore "$ck" "$scan" -o "$t/fifo" --force
expect "restore: a fifo refused even with --force" refused "never replaced"
run "$G" restore "$ck" "$scan" -o "$t/r.nii.gz" --png "$t/r.png" --force
expect "restore --force replaces" test $rc -eq 0
run "$G" restore "$ck" "$scan" -o "$t/pair.hdr"
expect "restore writes an ANALYZE-style pair under temporary names" test $rc -eq 0 -a -s "$t/pair.img"

# preview
run "$G" preview "$t/cubes.h5" -o "$t/p.png"
expect "preview writes" test $rc -eq 0
run "$G" preview "$t/cubes.h5" -o "$t/p.png"
expect "preview: existing output refused" refused "p.png exists (replace it with --force)"
run "$G" preview "$t/cubes.h5" -o "$t/cubes.h5" --force
expect "preview: its own cubes file refused even with --force" refused "is the input .*cubes.h5 of this command"
run "$G" preview "$t/cubes.h5" -o "$t/p.png" --force
expect "preview --force replaces" test $rc -eq 0

expect "no temporary, partial or lock file left anywhere" no_temporaries
finish
