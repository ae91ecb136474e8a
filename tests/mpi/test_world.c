/* The MPI world at 1, 2 and 4 ranks: one configuration on every rank, collective config errors,
 * agreement after a phase, the MPI library version, and fault injection hitting exactly the named
 * rank. */
#include "check.h"

#include "genesis/error.h"
#include "genesis/world.h"

#include <stdlib.h>
#include <string.h>

/* Same value on every rank? */
static int agreed(unsigned long value)
{
    unsigned long lo = 0, hi = 0;
    MPI_Allreduce(&value, &lo, 1, MPI_UNSIGNED_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&value, &hi, 1, MPI_UNSIGNED_LONG, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

static unsigned long text_hash(const char *s)
{
    unsigned long h = 5381;
    while (*s) h = h * 33 + (unsigned char)*s++;
    return h;
}

int main(int argc, char **argv)
{
    if (world_init(&argc, &argv, 0) != GEN_OK) return 1;
    int rank = world_rank(), size = world_size();

    /* Rank 0 reads, everyone gets the same configuration, with the overrides applied. */
    char *sets[] = {"train.batch=12", "model.width=4", "train.data=/x/cubes.h5"};
    genesis_config cfg;
    memset(&cfg, rank + 1, sizeof cfg); /* different garbage on every rank */
    EXPECT_OK(world_load_config(&cfg, NULL, sets, 3));
    EXPECT(cfg.train.batch == 12 && cfg.model.width == 4 && !strcmp(cfg.train.data, "/x/cubes.h5"),
           "rank %d: overrides not applied", rank);
    EXPECT(agreed(config_hash(&cfg)), "configurations differ across ranks");

    /* A bad configuration is a collective error with the same message on every rank. */
    char *bad[] = {"train.batch=zero"};
    int status = world_load_config(&cfg, NULL, bad, 1);
    EXPECT(status == GEN_ERR_USAGE, "rank %d: status %d", rank, status);
    EXPECT(gen_error_is_collective(), "rank %d: config error not collective", rank);
    EXPECT(strstr(gen_error_message(), "expected an integer, got 'zero'") != NULL, "rank %d: '%s'",
           rank, gen_error_message());
    EXPECT(agreed(text_hash(gen_error_message())), "error messages differ across ranks");
    gen_error_clear();

    status = world_load_config(&cfg, "/nonexistent/genesis.ini", NULL, 0);
    EXPECT(status == GEN_ERR_USAGE && gen_error_is_collective(), "missing file: %d", status);
    gen_error_clear();

    /* Agreement: nobody failed; everybody failed (collective); one rank failed. */
    EXPECT(world_agree(GEN_OK) == GEN_OK, "agree on success");
    status = world_agree(gen_error_set(GEN_ERR_DATA, __FILE__, __LINE__, "all fail"));
    EXPECT(status == GEN_ERR_DATA && gen_error_is_collective(), "rank %d: all-fail agreement", rank);
    gen_error_clear();

    /* The MPI library's version, one line, for genesis --version. */
    char version[1024];
    world_library_version(version, sizeof version);
    EXPECT(version[0] != '\0' && strchr(version, '\n') == NULL, "library version '%s'", version);

    EXPECT(fault_point("test.site") == GEN_OK, "no fault without GENESIS_FAULT");
    setenv("GENESIS_FAULT", "test.site:1", 1);
    EXPECT(fault_point("test.other") == GEN_OK, "fault at another site");
    status = world_agree(fault_point("test.site"));
    if (size == 1) {
        EXPECT(status == GEN_OK, "rank 1 does not exist at 1 rank: %d", status);
    } else if (rank == 1) {
        EXPECT(status == GEN_ERR_INJECTED && !gen_error_is_collective(), "rank 1: %d", status);
        EXPECT(strstr(gen_error_message(), "injected fault at 'test.site'") != NULL, "'%s'",
               gen_error_message());
    } else {
        EXPECT(status == GEN_ERR_PEER, "rank %d: expected GEN_ERR_PEER, got %d", rank, status);
    }
    gen_error_clear();
    setenv("GENESIS_FAULT", "test.site:all", 1);
    status = world_agree(fault_point("test.site"));
    EXPECT(status == GEN_ERR_INJECTED && gen_error_is_collective(), "all: %d", status);
    unsetenv("GENESIS_FAULT");

    MPI_TEST_MAIN_END(rank);
}
