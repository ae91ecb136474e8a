/* The configuration schema (src/util/config_schema.c): one row per key, shared by the INI
 * reader and printer (src/util/config.c). Not part of the public API (include/genesis/config.h). */
#ifndef GENESIS_CONFIG_SCHEMA_H
#define GENESIS_CONFIG_SCHEMA_H

#include <stddef.h>

/* TYPE_INT fields are long, TYPE_INT32 fields int, TYPE_FLOAT double, TYPE_BOOL and TYPE_CHOICE
 * int, TYPE_STRING char arrays. */
enum config_type { TYPE_INT, TYPE_INT32, TYPE_FLOAT, TYPE_BOOL, TYPE_STRING, TYPE_CHOICE };

/* One row per key. `min`/`max` bound integers and numbers (inclusive); `choices` lists the texts
 * of a choice, separated by '|', in the order of its enum. `offset` is offsetof(genesis_config,
 * section.key). */
struct config_key {
    const char *section, *key;
    enum config_type type;
    size_t offset;
    const char *default_text;
    double min, max;
    const char *choices;
    const char *help;
};

extern const struct config_key config_schema[];
extern const int config_schema_rows; /* <= CONFIG_KEYS_MAX */

#endif
