/* blas_core_upgrade: which OpenBLAS picks genesis replaces, and with what (src/nn/blas_core.c).
 * The restart itself (blas_core_ensure) is driven end to end by tests/integration/cli.sh. */
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "genesis/blas_core.h"

static int same(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

int main(void)
{
    /* generic fallbacks are replaced by the best family the CPU supports */
    EXPECT(same(blas_core_upgrade("Prescott", 1, 1), "SkylakeX"), "Prescott on AVX-512");
    EXPECT(same(blas_core_upgrade("Prescott", 0, 1), "Haswell"), "Prescott on AVX2+FMA");
    EXPECT(same(blas_core_upgrade("Prescott", 0, 0), NULL), "Prescott on an SSE-only CPU stays");
    EXPECT(same(blas_core_upgrade("Nehalem", 1, 1), "SkylakeX"), "Nehalem on AVX-512");
    EXPECT(same(blas_core_upgrade("sandybridge", 0, 1), "Haswell"), "names compare caseless");
    /* OpenBLAS's own modern picks are kept, whatever the CPU flags say */
    const char *kept[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", ""};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        EXPECT(same(blas_core_upgrade(kept[i], 1, 1), NULL), "'%s' is kept", kept[i]);
    EXPECT(same(blas_core_upgrade(NULL, 1, 1), NULL), "no name: nothing to do");
    /* with no override the note is empty */
    EXPECT(same(blas_core_note(), "") || getenv("GENESIS_OPENBLAS_FALLBACK") != NULL,
           "note without a fallback: '%s'", blas_core_note());
    TEST_MAIN_END();
}
