/* OpenBLAS's kernel choice on CPUs it does not know (include/genesis/blas_core.h).
 *
 * Why: Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels from cpuid when it loads, and
 * on CPUs newer than its tables it falls back to generic ones. Measured on an Intel Xeon of family
 * 6 model 207 (Emerald Rapids, AVX-512), 1 thread: it chose Prescott (SSE3), sgemm 2048^3 ran at
 * 32.9 GFLOP/s against 156.1 with OPENBLAS_CORETYPE=SkylakeX and 83.2 with Haswell; `genesis bench`
 * trained 3.8x slower (0.0397 vs 0.1498 samples/s). A user never sees this unless told, so genesis
 * forces the best kernel family the CPU supports when OpenBLAS picked a generic one and nobody set
 * OPENBLAS_CORETYPE.
 */
#define _GNU_SOURCE /* setenv */
#include "genesis/blas_core.h"

#include <cblas.h> /* Debian's (OpenBLAS) declares openblas_get_corename */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS's names of its pre-AVX2 x86-64 cores: what it falls back to on a CPU it does not know
 * (Prescott for Intel, also the generic choices of older tables). */
static const char *const generic_cores[] = {"Prescott", "Core2",  "Penryn", "Dunnington", "Nehalem",
                                            "Atom",     "Sandybridge", "Barcelona", "Bobcat",
                                            "Bulldozer", "Piledriver",  "Steamroller",
                                            "Excavator"};

const char *blas_core_upgrade(const char *chosen, int has_avx512, int has_avx2_fma)
{
    if (chosen == NULL) return NULL;
    int generic = 0;
    for (size_t i = 0; i < sizeof generic_cores / sizeof generic_cores[0]; i++)
        if (strcasecmp(chosen, generic_cores[i]) == 0) generic = 1;
    if (!generic) return NULL;
    if (has_avx512) return "SkylakeX";
    if (has_avx2_fma) return "Haswell";
    return NULL;
}

void blas_core_ensure(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") != NULL) return; /* the user's (or our earlier exec's) choice */
    const char *pretend = getenv("GENESIS_TEST_BLAS_CORE");
    const char *chosen = pretend && *pretend ? pretend : openblas_get_corename();
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const int avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    const int avx512 = 0, avx2_fma = 0;
#endif
    const char *better = blas_core_upgrade(chosen, avx512, avx2_fma);
    if (better == NULL) return;
    if (setenv("OPENBLAS_CORETYPE", better, 1) == 0 &&
        setenv("GENESIS_OPENBLAS_FALLBACK", chosen, 1) == 0) {
        fflush(NULL);
        execv("/proc/self/exe", argv);
    }
    fprintf(stderr,
            "genesis: warning: OpenBLAS chose its generic '%s' kernels on this CPU and genesis "
            "could not restart itself with OPENBLAS_CORETYPE=%s (%s); training runs several times "
            "slower: set OPENBLAS_CORETYPE=%s before starting genesis\n",
            chosen, better, strerror(errno), better);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("GENESIS_OPENBLAS_FALLBACK");
}

const char *blas_core_note(void)
{
    static char note[128];
    const char *fallback = getenv("GENESIS_OPENBLAS_FALLBACK");
    if (fallback == NULL || getenv("OPENBLAS_CORETYPE") == NULL) return "";
    snprintf(note, sizeof note, " (set by genesis: OpenBLAS chose %.40s on this CPU)", fallback);
    return note;
}
