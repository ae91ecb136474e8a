/* What the libFuzzer harnesses of tests/fuzz share (fuzz_common.c). */
#ifndef GENESIS_FUZZ_COMMON_H
#define GENESIS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Writes data[size] to a file of this process under $TMPDIR (or /tmp) whose name ends in suffix
 * (e.g. ".nii.gz": the readers choose by the name); its path into path[path_size]. The same name is
 * reused by every input of a run (overwritten). Aborts when the file cannot be written: that is no
 * finding. */
void fuzz_write_file(const uint8_t *data, size_t size, const char *suffix, char *path, size_t path_size);

/* Reads path with volume_read (reorient_ras as given) and, when it succeeds, touches every voxel (so
 * that ASan sees a short array) and aborts unless each is finite (volume_read's promise); frees it
 * and clears the error. */
void fuzz_read_volume(const char *path, int reorient_ras);

#endif
