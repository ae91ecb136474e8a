#!/usr/bin/env bash
# `cmake --install` gives a genesis that runs from its prefix: the installed binary keeps the
# library directories it was linked against (RUNPATH; INSTALL_RPATH_USE_LINK_PATH in CMakeLists.txt)
# and starts in a bare environment (no LD_LIBRARY_PATH, no modules).
set -u
G=${GENESIS:?set GENESIS to the genesis executable}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
. "$(dirname "$0")/../lib/harness.sh"

build_dir=$(dirname "$G")
run cmake --install "$build_dir" --prefix "$t/prefix"
expect "cmake --install succeeds" test $rc -eq 0
expect "it installs bin/genesis" test -x "$t/prefix/bin/genesis"
runpath() { readelf -d "$1" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p'; }
built=$(runpath "$G") installed=$(runpath "$t/prefix/bin/genesis")
# Every library directory outside the loader's defaults that the build linked against must be kept.
for dir in ${built//:/ }; do
  expect "installed RUNPATH keeps $dir" grep -q -- "$dir" <<<"$installed"
done
# a bare environment: PATH for Open MPI's singleton start-up, the root permission the tests need
run env -i PATH=/usr/bin:/bin HOME="$t" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  "$t/prefix/bin/genesis" --version
expect "the installed genesis runs without LD_LIBRARY_PATH or modules" succeeded_with 'HDF5:'
finish
