/* libFuzzer harness of the configuration reader (src/util/config.c) through the schema.
 *
 * Input: the first byte chooses the mode, the rest is
 *   even first byte: a configuration file, bytes as they are (NUL bytes included), read with
 *                    config_load_file from a file;
 *   odd first byte:  `--set` assignments separated by NUL bytes, applied with config_set.
 * The property checked beyond "no crash, no leak, no UB": every configuration that is accepted prints
 * (config_print, as train and prep store it in config.ini and in checkpoints) as text that reads
 * back (config_load_text) to the same values (config_hash). A stored configuration that cannot be
 * read back makes export and restore of that run fail (issue 17). */
#include "fuzz_common.h"

#include "genesis/config.h"
#include "genesis/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints cfg, reads the text back over the defaults and aborts unless the values are the same. */
static void check_round_trip(const genesis_config *cfg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (!mem) abort();
    config_print(cfg, mem);
    fclose(mem);
    static genesis_config again;
    if (config_defaults(&again) != GEN_OK) abort();
    if (config_load_text(&again, text, "printed") != GEN_OK) {
        fprintf(stderr, "accepted configuration does not read back: %s\n--- printed:\n%s\n",
                gen_error_message(), text);
        abort();
    }
    if (config_hash(&again) != config_hash(cfg)) {
        fprintf(stderr, "configuration reads back with other values\n--- printed:\n%s\n", text);
        abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static genesis_config cfg;
    if (size < 1) return 0;
    if (config_defaults(&cfg) != GEN_OK) abort();
    int ok = 1;
    if (data[0] % 2 == 0) {
        char path[PATH_MAX];
        fuzz_write_file(data + 1, size - 1, ".ini", path, sizeof path);
        ok = config_load_file(&cfg, path) == GEN_OK;
    } else {
        char *sets = malloc(size); /* NUL-separated assignments, NUL-terminated */
        if (!sets) abort();
        memcpy(sets, data + 1, size - 1);
        sets[size - 1] = '\0';
        for (const char *a = sets; ok && a < sets + size; a += strlen(a) + 1)
            if (a[0]) ok = config_set(&cfg, a) == GEN_OK;
        free(sets);
    }
    if (ok) {
        check_round_trip(&cfg);
        if (config_train_check(&cfg) != GEN_OK) gen_error_clear();
        if (config_corrupt_check(&cfg.corrupt) != GEN_OK) gen_error_clear();
    }
    gen_error_clear();
    return 0;
}
