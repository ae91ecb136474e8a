/* OpenBLAS's kernel choice on CPUs it does not know (src/nn/blas_core.c). */
#ifndef GENESIS_BLAS_CORE_H
#define GENESIS_BLAS_CORE_H

/* The core type worth forcing instead of `chosen` (OpenBLAS's own pick) on a CPU with the given
 * instruction sets, or NULL to keep it: "SkylakeX" for a generic pre-AVX2 pick on an AVX-512 CPU
 * (avx512f, bw, dq, vl), "Haswell" for one on an AVX2+FMA CPU. */
const char *blas_core_upgrade(const char *chosen, int has_avx512, int has_avx2_fma);

/* Called first thing in main, before MPI starts: when OPENBLAS_CORETYPE is unset and OpenBLAS
 * picked a generic kernel that blas_core_upgrade would replace on this CPU, sets
 * OPENBLAS_CORETYPE to the upgrade and GENESIS_OPENBLAS_FALLBACK to OpenBLAS's pick, and executes
 * the program again (OpenBLAS chooses its kernels when it loads, so only a new image takes the
 * setting). Returns only when nothing needs doing, or when the exec failed (then warns on stderr
 * and carries on with the slow kernel). A set OPENBLAS_CORETYPE is always left alone.
 * GENESIS_TEST_BLAS_CORE=NAME pretends OpenBLAS chose NAME (for tests only). */
void blas_core_ensure(char **argv);

/* A note for reports, "" when genesis did not set the core type: " (set by genesis; OpenBLAS
 * chose NAME on this CPU)". */
const char *blas_core_note(void);

#endif
