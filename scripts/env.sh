# Sourced by the scripts: Open MPI settings for this kind of machine (see INSTALL.md).
# As root, Open MPI's mpirun needs explicit permission; more ranks than cores need oversubscription
# (tests run 4 ranks on 2 cores); shared memory transports start fastest on one node.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
