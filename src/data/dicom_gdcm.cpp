/* Reading DICOM files with GDCM: the only C++ in genesis, a thin layer behind extern "C" functions
 * (src/data/dicom_internal.h) that lets no exception out and no C++ type into a header.
 *
 * Why GDCM: DICOM is too large to parse ourselves (three transfer-syntax encodings of the header,
 * big and little endian, RLE/JPEG/JPEG-LS/JPEG 2000 pixel data, private tags and sequences), and GDCM
 * is the well-kept library for it: packaged by Debian/Ubuntu (libgdcm-dev) and Spack (gdcm), used by
 * ITK and VTK, with only the C++ runtime as an extra dependency. DCMTK is larger and needs more of
 * its own modules for the codecs; ITK/SimpleITK would pull in a whole imaging framework.
 *
 * What is taken from GDCM: gdcm::Scanner reads the SeriesInstanceUID of every file of a folder;
 * gdcm::ImageReader decodes the pixels (gdcm::Image::GetBuffer: stored values, native byte order,
 * decompressed). The geometry attributes are read here from the data set as stored, and the series
 * is assembled in C (src/data/dicom_series.c).
 *
 * Known limit: Debian's GDCM is built with assertions, and its JPEG header parser asserts (aborting
 * the process) on some corrupt JPEG streams, e.g. a JPEG Baseline fragment of random bytes; no error
 * can be returned for those. A transfer syntax GDCM has no codec for (e.g. MPEG-4) and truncated
 * or corrupt uncompressed data are reported as errors. */
#include "dicom_internal.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include <gdcmDataSet.h>
#include <gdcmDirectory.h>
#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmScanner.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>

#include "nifti1.h" /* DT_* codes */

namespace {

const gdcm::Tag TAG_SERIES_UID(0x0020, 0x000e);
const gdcm::Tag TAG_ROWS(0x0028, 0x0010);
const gdcm::Tag TAG_IMAGE_TYPE(0x0008, 0x0008);
const gdcm::Tag TAG_POSITION(0x0020, 0x0032);
const gdcm::Tag TAG_ORIENTATION(0x0020, 0x0037);
const gdcm::Tag TAG_PIXEL_SPACING(0x0028, 0x0030);
const gdcm::Tag TAG_INTERCEPT(0x0028, 0x1052);
const gdcm::Tag TAG_SLOPE(0x0028, 0x1053);

/* GDCM reports problems on stderr by default; our messages say what went wrong instead. Its
 * warnings go to gdcm_warnings, which read_slice inspects: GDCM reads a file whose pixel data is cut
 * short without failing, and says so only in a warning. (Trace's streams are process-wide; the
 * files are read one at a time.) */
std::ostringstream &gdcm_warnings()
{
    static std::ostringstream stream;
    return stream;
}

void quiet_gdcm()
{
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetError(false);
    gdcm::Trace::SetWarningStream(gdcm_warnings());
    gdcm::Trace::SetWarning(true);
    gdcm_warnings().str(std::string());
}

int fail(int code, char *err, size_t errlen, const char *path, const std::string &reason)
{
    std::snprintf(err, errlen, "%s: %s", path, reason.c_str());
    return code;
}

/* The value of a string-valued element (DS, IS, CS, UI) of the top-level data set, "" if absent. */
std::string element_string(const gdcm::DataSet &ds, const gdcm::Tag &tag)
{
    if (!ds.FindDataElement(tag)) return std::string();
    const gdcm::ByteValue *bv = ds.GetDataElement(tag).GetByteValue();
    if (bv == NULL || bv->GetPointer() == NULL) return std::string();
    std::string s(bv->GetPointer(), bv->GetLength());
    size_t end = s.find('\0');
    if (end != std::string::npos) s.resize(end);
    return s;
}

/* Parses a multi-valued decimal string "a\b\c" into up to max numbers; returns how many parsed
 * (a value that is not a number stops the parse). */
int parse_numbers(const std::string &s, double *out, int max)
{
    int count = 0;
    size_t start = 0;
    while (count < max && start <= s.size()) {
        size_t end = s.find('\\', start);
        if (end == std::string::npos) end = s.size();
        std::string item = s.substr(start, end - start);
        const char *p = item.c_str();
        char *stop = NULL;
        double v = std::strtod(p, &stop);
        if (stop == p) break;
        while (*stop == ' ') stop++;
        if (*stop != '\0') break;
        out[count++] = v;
        start = end + 1;
    }
    return count;
}

/* Stored pixel type -> NIfTI DT_* code (0: not supported). */
int datatype_of(const gdcm::PixelFormat &pf)
{
    switch (pf.GetScalarType()) {
    case gdcm::PixelFormat::UINT8: return DT_UINT8;
    case gdcm::PixelFormat::INT8: return DT_INT8;
    case gdcm::PixelFormat::UINT16: return DT_UINT16;
    case gdcm::PixelFormat::INT16: return DT_INT16;
    case gdcm::PixelFormat::UINT32: return DT_UINT32;
    case gdcm::PixelFormat::INT32: return DT_INT32;
    case gdcm::PixelFormat::FLOAT32: return DT_FLOAT32;
    case gdcm::PixelFormat::FLOAT64: return DT_FLOAT64;
    default: return 0;
    }
}

/* The stored integer value with only BitsStored bits kept (sign-extended when signed), as
 * DICOM's PS3.5 8.1.1 defines it; high bits may carry overlays or garbage. */
template <typename T> double stored_value(T raw, unsigned bits_stored, bool is_signed)
{
    if (bits_stored == 0 || bits_stored >= 8 * sizeof(T)) return (double)raw;
    unsigned long long mask = (1ULL << bits_stored) - 1ULL;
    unsigned long long u = (unsigned long long)raw & mask;
    if (is_signed && (u >> (bits_stored - 1)) != 0) return (double)(long long)(u | ~mask);
    return (double)u;
}

template <typename T>
void rescale_integers(float *out, const char *buffer, size_t n, const gdcm::PixelFormat &pf,
                      double slope, double intercept)
{
    const unsigned bits = pf.GetBitsStored();
    const bool is_signed = pf.GetPixelRepresentation() == 1;
    for (size_t i = 0; i < n; i++) {
        T raw;
        std::memcpy(&raw, buffer + i * sizeof(T), sizeof(T));
        out[i] = (float)(slope * stored_value(raw, bits, is_signed) + intercept);
    }
}

template <typename T>
void rescale_floats(float *out, const char *buffer, size_t n, double slope, double intercept)
{
    for (size_t i = 0; i < n; i++) {
        T raw;
        std::memcpy(&raw, buffer + i * sizeof(T), sizeof(T));
        out[i] = (float)(slope * (double)raw + intercept);
    }
}

void rescale(float *out, const char *buffer, size_t n, const gdcm::PixelFormat &pf, double slope,
             double intercept)
{
    switch (pf.GetScalarType()) {
    case gdcm::PixelFormat::UINT8: rescale_integers<uint8_t>(out, buffer, n, pf, slope, intercept); break;
    case gdcm::PixelFormat::INT8: rescale_integers<int8_t>(out, buffer, n, pf, slope, intercept); break;
    case gdcm::PixelFormat::UINT16: rescale_integers<uint16_t>(out, buffer, n, pf, slope, intercept); break;
    case gdcm::PixelFormat::INT16: rescale_integers<int16_t>(out, buffer, n, pf, slope, intercept); break;
    case gdcm::PixelFormat::UINT32: rescale_integers<uint32_t>(out, buffer, n, pf, slope, intercept); break;
    case gdcm::PixelFormat::INT32: rescale_integers<int32_t>(out, buffer, n, pf, slope, intercept); break;
    case gdcm::PixelFormat::FLOAT32: rescale_floats<float>(out, buffer, n, slope, intercept); break;
    case gdcm::PixelFormat::FLOAT64: rescale_floats<double>(out, buffer, n, slope, intercept); break;
    default: break; /* refused earlier (datatype_of) */
    }
}

/* The attributes of dicom_slice that come from the data set (everything but the pixels). */
void read_attributes(dicom_slice *s, const gdcm::DataSet &ds)
{
    double v[6];
    s->has_position = parse_numbers(element_string(ds, TAG_POSITION), v, 3) == 3;
    if (s->has_position) std::memcpy(s->position, v, sizeof s->position);
    s->has_orientation = parse_numbers(element_string(ds, TAG_ORIENTATION), v, 6) == 6;
    if (s->has_orientation) {
        std::memcpy(s->row_dir, v, sizeof s->row_dir);
        std::memcpy(s->col_dir, v + 3, sizeof s->col_dir);
    }
    s->has_pixel_spacing = parse_numbers(element_string(ds, TAG_PIXEL_SPACING), v, 2) == 2;
    if (s->has_pixel_spacing) std::memcpy(s->pixel_spacing, v, sizeof s->pixel_spacing);
    s->slope = 1.0;
    s->intercept = 0.0;
    if (parse_numbers(element_string(ds, TAG_SLOPE), v, 1) == 1 && v[0] != 0.0) s->slope = v[0];
    if (parse_numbers(element_string(ds, TAG_INTERCEPT), v, 1) == 1) s->intercept = v[0];
    std::string type = element_string(ds, TAG_IMAGE_TYPE);
    for (char &c : type) c = (char)std::toupper((unsigned char)c);
    s->is_localizer = type.find("LOCALIZER") != std::string::npos;
}

int read_slice(dicom_slice *s, const char *path, char *err, size_t errlen)
{
    gdcm::ImageReader reader;
    reader.SetFileName(path);
    if (!reader.Read())
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path,
                    "not a readable DICOM image (corrupt, truncated, or not an image)");
    if (gdcm_warnings().str().find("Incomplete Pixel Data") != std::string::npos)
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path,
                    "truncated: the pixel data ends before its stated length");
    const gdcm::Image &image = reader.GetImage();
    const gdcm::DataSet &ds = reader.GetFile().GetDataSet();
    const gdcm::TransferSyntax &ts = image.GetTransferSyntax();
    const char *ts_uid = gdcm::TransferSyntax::GetTSString(ts);
    std::snprintf(s->transfer_syntax, sizeof s->transfer_syntax, "%s", ts_uid ? ts_uid : "unknown");
    read_attributes(s, ds);
    s->cols = image.GetDimension(0);
    s->rows = image.GetDimension(1);
    s->frames = image.GetNumberOfDimensions() >= 3 ? image.GetDimension(2) : 1;
    const gdcm::PixelFormat &pf = image.GetPixelFormat();
    char what[320];
    if (pf.GetSamplesPerPixel() != 1) {
        std::snprintf(what, sizeof what, "%u samples per pixel (colour); only grayscale images are read",
                      (unsigned)pf.GetSamplesPerPixel());
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path, what);
    }
    s->datatype = datatype_of(pf);
    if (s->datatype == 0) {
        std::snprintf(what, sizeof what, "pixel type %s (BitsAllocated %u) is not supported",
                      pf.GetScalarTypeAsString(), (unsigned)pf.GetBitsAllocated());
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path, what);
    }
    if (s->frames != 1) {
        std::snprintf(what, sizeof what, "a multi-frame image (%lld frames); only series of one image "
                      "per file are read", (long long)s->frames);
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path, what);
    }
    const size_t n = (size_t)(s->rows * s->cols);
    const size_t bytes = image.GetBufferLength();
    if (n == 0 || bytes != n * (size_t)pf.GetPixelSize()) {
        std::snprintf(what, sizeof what, "pixel data of %zu bytes for %lld x %lld pixels of %u bytes",
                      bytes, (long long)s->rows, (long long)s->cols, (unsigned)pf.GetPixelSize());
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path, what);
    }
    std::vector<char> buffer(bytes);
    if (!image.GetBuffer(buffer.data())) {
        std::snprintf(what, sizeof what, "cannot decode the pixel data (transfer syntax %s, %s): "
                      "corrupt, or a compression this GDCM cannot decode", s->transfer_syntax,
                      ts.IsEncapsulated() ? "compressed" : "uncompressed");
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, path, what);
    }
    s->pixels = (float *)std::malloc(n * sizeof(float));
    if (s->pixels == NULL)
        return fail(DICOM_GDCM_ERR_NOMEM, err, errlen, path, "out of memory for the pixels");
    rescale(s->pixels, buffer.data(), n, pf, s->slope, s->intercept);
    return 0;
}

} // namespace

extern "C" int dicom_gdcm_series_uids(const char *const *paths, size_t n, char **uids, char *err,
                                      size_t errlen)
{
    for (size_t i = 0; i < n; i++) uids[i] = NULL;
    try {
        quiet_gdcm();
        gdcm::Directory::FilenamesType files(paths, paths + n);
        gdcm::Scanner scanner;
        scanner.AddTag(TAG_SERIES_UID);
        scanner.AddTag(TAG_ROWS);
        if (!scanner.Scan(files))
            return fail(DICOM_GDCM_ERR_IO, err, errlen, n ? paths[0] : "", "cannot scan the files");
        for (size_t i = 0; i < n; i++) {
            if (!scanner.IsKey(paths[i])) continue; /* not DICOM */
            const char *uid = scanner.GetValue(paths[i], TAG_SERIES_UID);
            const char *rows = scanner.GetValue(paths[i], TAG_ROWS);
            if (uid == NULL || rows == NULL) continue; /* not an image (DICOMDIR, report, ...) */
            std::string u(uid);
            while (!u.empty() && (u.back() == ' ' || u.back() == '\0')) u.pop_back();
            if (u.empty()) continue;
            uids[i] = strdup(u.c_str());
            if (uids[i] == NULL) return fail(DICOM_GDCM_ERR_NOMEM, err, errlen, paths[i], "out of memory");
        }
        return 0;
    } catch (const std::bad_alloc &) {
        return fail(DICOM_GDCM_ERR_NOMEM, err, errlen, n ? paths[0] : "", "out of memory while scanning");
    } catch (const std::exception &e) {
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, n ? paths[0] : "",
                    std::string("GDCM failed: ") + e.what());
    } catch (...) {
        return fail(DICOM_GDCM_ERR_DATA, err, errlen, n ? paths[0] : "", "GDCM failed (unknown exception)");
    }
}

extern "C" int dicom_gdcm_read_slice(dicom_slice *s, const char *path, char *err, size_t errlen)
{
    s->pixels = NULL;
    int status;
    try {
        quiet_gdcm();
        status = read_slice(s, path, err, errlen);
    } catch (const std::bad_alloc &) {
        status = fail(DICOM_GDCM_ERR_NOMEM, err, errlen, path, "out of memory");
    } catch (const std::exception &e) {
        status = fail(DICOM_GDCM_ERR_DATA, err, errlen, path,
                      std::string("not a readable DICOM image: ") + e.what());
    } catch (...) {
        status = fail(DICOM_GDCM_ERR_DATA, err, errlen, path, "not a readable DICOM image (GDCM failed)");
    }
    if (status != 0) {
        std::free(s->pixels);
        s->pixels = NULL;
    }
    return status;
}
