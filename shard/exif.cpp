#include "shard/exif.h"

#include <libexif/exif-data.h>

#include <nlohmann/json.hpp>

namespace flam::shard {

std::string exif_json(std::string_view image_bytes) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  ExifData* data = exif_data_new();
  if (!data) return out.dump();
  // As written: without this option libexif adds the tags the specification requires
  // (XResolution, ExifVersion, ...) that the file does not have.
  exif_data_unset_option(data, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(data, reinterpret_cast<const unsigned char*>(image_bytes.data()),
                      static_cast<unsigned int>(image_bytes.size()));
  static const char* const kIfdWords[EXIF_IFD_COUNT] = {"Image", "Thumbnail", "EXIF", "GPS",
                                                        "Interoperability"};
  for (int ifd = 0; ifd < EXIF_IFD_COUNT; ++ifd) {
    ExifContent* content = data->ifd[ifd];
    if (!content) continue;
    for (unsigned int i = 0; i < content->count; ++i) {
      ExifEntry* entry = content->entries[i];
      if (entry->tag == EXIF_TAG_MAKER_NOTE) continue;
      const char* name = exif_tag_get_name_in_ifd(entry->tag, static_cast<ExifIfd>(ifd));
      if (!name) continue;
      char value[1024] = "";
      exif_entry_get_value(entry, value, sizeof(value));
      std::string text(value);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
      out[std::string(kIfdWords[ifd]) + " " + name] = text;
    }
  }
  exif_data_unref(data);
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace flam::shard
