/* include/genesis/dicom.h in a build without GDCM (CMake did not find it): locators are recognised,
 * so that a DICOM input is named as such, but every read fails with a message saying why. */
#include "genesis/dicom.h"

#include "genesis/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NO_DICOM "this genesis was built without DICOM support (GDCM was not found when it was built; " \
                 "see INSTALL.md)"

int dicom_available(void) { return 0; }

int dicom_is_locator(const char *path)
{
    struct stat st;
    if (path == NULL || path[0] == '\0') return 0;
    if (stat(path, &st) == 0) return S_ISDIR(st.st_mode);
    const char *hash = strrchr(path, '#');
    if (hash == NULL || hash == path || hash[1] == '\0') return 0;
    char dir[4096];
    if ((size_t)(hash - path) >= sizeof dir) return 0;
    memcpy(dir, path, (size_t)(hash - path));
    dir[hash - path] = '\0';
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int dicom_list_series(const char *folder, char ***locators, size_t *count)
{
    *locators = NULL;
    *count = 0;
    FAIL(GEN_ERR_DATA, "%s: " NO_DICOM, folder);
}

void dicom_free_list(char **locators, size_t count)
{
    for (size_t i = 0; locators && i < count; i++) free(locators[i]);
    free(locators);
}

int volume_read_dicom(volume *v, const char *locator, const volume_read_options *opt)
{
    (void)opt;
    memset(v, 0, sizeof *v);
    FAIL(GEN_ERR_DATA, "%s: " NO_DICOM, locator);
}
