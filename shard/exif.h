// EXIF of a downloaded image as img2dataset records it in KEY.json and its parquet: a JSON object
// text {"Image Make": "Canon", "EXIF DateTimeOriginal": "...", ...}, one entry per tag, named
// "<IFD> <tag>" with exifread's IFD words (Image, Thumbnail, EXIF, GPS, Interoperability) and
// libexif's tag names. Values are libexif's text, which matches exifread's for ASCII and numeric
// tags; enumerated tags read differently ("Top-left" where exifread says "Horizontal (normal)"),
// and the IFD pointer tags exifread lists (Image ExifOffset) are absent. MakerNote is skipped, as
// exifread's details=False does.
//
// Thread safety: pure function; any thread.
#pragma once

#include <string>
#include <string_view>

namespace flam::shard {

// "{}" when the image has no EXIF (PNG, WebP, a JPEG without APP1).
std::string exif_json(std::string_view image_bytes);

}  // namespace flam::shard
