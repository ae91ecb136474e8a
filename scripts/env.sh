# Sourced by the scripts (and by users in their shell): Open MPI settings for this kind of machine
# (see INSTALL.md). As root, Open MPI's mpirun needs explicit permission. Oversubscription (more
# ranks than cores) is never turned on here: only the test harness does that (tests/CMakeLists.txt,
# scripts/test), since a real run must not share cores.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
