/* The command line: one table of subcommands (main.c), one thin file per subcommand.
 * A subcommand parses its arguments, calls the modules, reports, and returns a status; main owns
 * MPI start-up and the ending of the job (world_finish). */
#ifndef GENESIS_CLI_H
#define GENESIS_CLI_H

#include "genesis/config.h"

#define CLI_MAX_SETS 64

/* Arguments every config-driven subcommand takes: CONFIG [--set section.key=value]... */
struct cli_config_args {
    const char *config_path; /* NULL: defaults only */
    char *sets[CLI_MAX_SETS];
    int set_count;
    char *rest[CLI_MAX_SETS]; /* the other options, left to the subcommand */
    int rest_count;
};

/* Splits argv into the config path, --set assignments and the remaining options (`rest`). Errors
 * (collective: every rank has the same argv): GEN_ERR_USAGE. */
int cli_parse_config_args(int argc, char **argv, struct cli_config_args *out);
/* Parses a non-negative integer option value, naming the option in the error. */
int cli_parse_long(const char *option, const char *text, long min, long max, long *out);
/* Parses the value of --bn: "running" (*running = 1) or "batch" (0), naming the option in the error. */
int cli_parse_bn(const char *option, const char *text, int *running);

int cmd_bench(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_phantom(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_prep(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_preview(int argc, char **argv);
int cmd_smoke(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
