/* include/genesis/dicom.h in a build without GDCM (CMake's GENESIS_DICOM found no GDCM, or was OFF):
 * every DICOM input is refused with a message saying why. */
#include "genesis/dicom.h"

#include "genesis/error.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int dicom_available(void) { return 0; }

/* A folder, or "DIR#UID" with DIR a folder (so that such inputs get the message below). */
int dicom_is_locator(const char *path)
{
    struct stat st;
    if (path == NULL || path[0] == '\0') return 0;
    if (stat(path, &st) == 0) return S_ISDIR(st.st_mode);
    const char *hash = strrchr(path, '#');
    if (hash == NULL || hash == path) return 0;
    char *folder = strndup(path, (size_t)(hash - path));
    int yes = folder != NULL && stat(folder, &st) == 0 && S_ISDIR(st.st_mode);
    free(folder);
    return yes;
}

#define NO_DICOM(where)                                                                          \
    FAIL(GEN_ERR_DATA, "%s: this genesis was built without DICOM support (GDCM was not found when " \
         "it was built; see INSTALL.md)", (where))

int dicom_list_series(const char *folder, char ***locators, size_t *count)
{
    *locators = NULL;
    *count = 0;
    NO_DICOM(folder);
}

void dicom_free_list(char **locators, size_t count)
{
    for (size_t i = 0; i < count; i++) free(locators[i]);
    free(locators);
}

int volume_read_dicom(volume *v, const char *locator, const volume_read_options *opt)
{
    (void)opt;
    memset(v, 0, sizeof *v);
    NO_DICOM(locator);
}
