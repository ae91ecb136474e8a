/* The scans of [prep] inputs (src/prep/inputs.c), expanded on rank 0 by genesis prep. */
#ifndef GENESIS_PREP_INPUTS_H
#define GENESIS_PREP_INPUTS_H

#include "genesis/cubes.h"

#include <stdint.h>

/* `count` scans (file paths, or DICOM locators "DIR#UID"), each of the width of the cubes file's
 * scan table, sorted by strcmp and without repeats. paths owned (free). */
struct scan_list {
    int64_t count;
    char (*paths)[sizeof((cubes_scan_record *)0)->path];
};

/* Expands `inputs`, comma-separated items each of which is
 *   a file or a glob pattern     (matched files; a .img/.raw/.zraw is left to its .hdr/.mhd)
 *   a folder (or a glob of them) the scans directly in it: .nii, .nii.gz, .hdr, .hdr.gz, .mhd, .mha
 *                                files, and the DICOM series of its files as "FOLDER#UID" locators
 *                                when this genesis reads DICOM (dicom_available())
 *   a DICOM locator "DIR#UID"
 *   @LIST                        a text file of such items, one a line (not split at commas; blank
 *                                lines and lines starting with # skipped; a relative path is relative
 *                                to LIST's folder; no @ inside a list)
 * GEN_ERR_USAGE naming the item (and LIST:LINE for a list's line) when an item matches nothing,
 * or when nothing is found at all; GEN_ERR_IO when a list or folder cannot be read. */
int prep_list_inputs(const char *inputs, struct scan_list *list);

#endif
