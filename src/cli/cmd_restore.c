/* genesis restore: placeholder until the restoration lands. */
#include "cli/cli.h"

#include "genesis/error.h"

int cmd_restore(int argc, char **argv)
{
    (void)argc, (void)argv;
    FAIL_ALL(GEN_ERR_USAGE, "restore: not implemented yet");
}
