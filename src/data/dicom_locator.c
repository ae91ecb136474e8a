/* DICOM locators (include/genesis/dicom.h), the same in builds with and without GDCM: recognising a
 * locator needs no DICOM library, so that a DICOM input without GDCM is named as such. */
#include "genesis/dicom.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_folder(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dicom_is_locator(const char *path)
{
    if (path == NULL || path[0] == '\0') return 0;
    if (is_folder(path)) return 1;
    const char *hash = strrchr(path, '#');
    if (hash == NULL || hash == path || hash[1] == '\0') return 0; /* "DIR#UID": both non-empty */
    char *folder = strndup(path, (size_t)(hash - path));
    int yes = folder != NULL && is_folder(folder);
    free(folder);
    return yes;
}

void dicom_free_list(char **locators, size_t count)
{
    for (size_t i = 0; locators != NULL && i < count; i++) free(locators[i]);
    free(locators);
}
