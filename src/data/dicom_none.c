/* include/genesis/dicom.h in a build without GDCM (CMake's GENESIS_DICOM found no GDCM, or was OFF):
 * every DICOM input is refused with a message saying why (locators: dicom_locator.c). */
#include "genesis/dicom.h"

#include "genesis/error.h"

#include <string.h>

int dicom_available(void) { return 0; }

#define NO_DICOM(where)                                                                          \
    FAIL(GEN_ERR_DATA, "%s: this genesis was built without DICOM support (GDCM was not found when " \
         "it was built; see INSTALL.md)", (where))

int dicom_list_series(const char *folder, char ***locators, size_t *count)
{
    *locators = NULL;
    *count = 0;
    NO_DICOM(folder);
}

int volume_read_dicom(volume *v, const char *locator, const volume_read_options *opt)
{
    (void)opt;
    memset(v, 0, sizeof *v);
    NO_DICOM(locator);
}
