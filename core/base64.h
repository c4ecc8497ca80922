// Base64 (RFC 4648, standard alphabet) on OpenSSL's codec: MMC4 documents carry images as
// base64 inside their JSON; `flam shard` writes them so and the packer reads them back.
//
// Thread safety: pure functions; call from any thread.
#pragma once

#include <string>
#include <string_view>

namespace flam {

// Standard base64 with '=' padding, no line breaks.
std::string base64_encode(std::string_view bytes);

// Decodes standard base64, with or without padding; ASCII whitespace anywhere is ignored.
// Returns false (and leaves *out unspecified) on any other character, data after padding or a
// length that no encoding has.
bool base64_decode(std::string_view text, std::string* out);

}  // namespace flam
