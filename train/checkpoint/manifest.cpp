#include "train/checkpoint/manifest.h"

#include <cinttypes>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <type_traits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/run_layout.h"

namespace flam::train {
namespace {

using nlohmann::json;

// j as a T, or std::out_of_range (a logic_error, reported as an invalid manifest) when it is not
// an integer or does not fit: a float such as 1.5e22 must not reach an integer conversion.
template <typename T>
T integer(const json& j) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u <= kMax) return static_cast<T>(u);
  } else if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v >= 0 ? static_cast<uint64_t>(v) <= kMax
               : std::is_signed_v<T> && v >= static_cast<int64_t>(std::numeric_limits<T>::min()))
      return static_cast<T>(v);
  }
  throw std::out_of_range("expected an integer in range, found " + j.dump());
}

json layout_to_json(const FlatLayout& layout) {
  json units = json::array();
  for (const UnitLayout& b : layout.units) {
    json params = json::array();
    for (const ParamSlot& p : b.params) {
      params.push_back(
          {{"name", p.name}, {"shape", p.shape}, {"offset", p.offset}, {"numel", p.numel}});
    }
    units.push_back({{"name", b.name},
                     {"numel", b.numel},
                     {"padded_numel", b.padded_numel},
                     {"params", params}});
  }
  // "blocks" is the units' field name since format_version 1, kept so that old manifests parse.
  return {{"world_size", layout.world_size}, {"blocks", units}};
}

FlatLayout layout_from_json(const json& j) {
  FlatLayout layout;
  layout.world_size = integer<int>(j.at("world_size"));
  for (const json& jb : j.at("blocks")) {
    UnitLayout b;
    b.name = jb.at("name").get<std::string>();
    b.numel = integer<int64_t>(jb.at("numel"));
    b.padded_numel = integer<int64_t>(jb.at("padded_numel"));
    for (const json& jp : jb.at("params")) {
      ParamSlot p;
      p.name = jp.at("name").get<std::string>();
      for (const json& d : jp.at("shape")) p.shape.push_back(integer<int64_t>(d));
      p.offset = integer<int64_t>(jp.at("offset"));
      p.numel = integer<int64_t>(jp.at("numel"));
      b.params.push_back(std::move(p));
    }
    layout.units.push_back(std::move(b));
  }
  return layout;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08" PRIx32, v);
  return buf;
}

[[noreturn]] void invalid(const std::string& why, const std::string& path) {
  ErrorContext ctx;
  ctx.file = path;
  throw Error(ErrorKind::kData, "invalid checkpoint manifest: " + why, ctx);
}

}  // namespace

std::string manifest_to_json(const Manifest& m) {
  json files = json::array();
  for (const ManifestFile& f : m.files) {
    files.push_back({{"name", f.name}, {"bytes", f.bytes}, {"header_crc32c", hex32(f.header_crc)}});
  }
  json scalars = json::object();
  for (const auto& [k, v] : m.scalars) scalars[k] = v;
  json j = {{"format", "flamboyance-checkpoint"},
            {"format_version", m.format_version},
            {"step", m.step},
            {"world_size", m.world_size},
            {"config_hash", m.config_hash},
            {"created", m.created},
            {"scalars", scalars},
            {"files", files},
            {"layout", layout_to_json(m.layout)}};
  return j.dump(1) + "\n";
}

Manifest parse_manifest(const std::string& text, const std::string& path) {
  Manifest m;
  try {
    json j = json::parse(text);
    if (j.at("format").get<std::string>() != "flamboyance-checkpoint") invalid("not ours", path);
    m.format_version = integer<int>(j.at("format_version"));
    if (m.format_version != kManifestVersion) {
      invalid("unsupported format_version " + std::to_string(m.format_version), path);
    }
    m.step = integer<int64_t>(j.at("step"));
    m.world_size = integer<int>(j.at("world_size"));
    m.config_hash = j.at("config_hash").get<std::string>();
    m.created = j.at("created").get<std::string>();
    for (const auto& [k, v] : j.at("scalars").items()) {
      m.scalars[k] = v.is_number() ? v.get<double>() : 0.0;
    }
    for (const json& jf : j.at("files")) {
      ManifestFile f;
      f.name = jf.at("name").get<std::string>();
      f.bytes = integer<uint64_t>(jf.at("bytes"));
      f.header_crc =
          static_cast<uint32_t>(std::stoul(jf.at("header_crc32c").get<std::string>(), nullptr, 16));
      m.files.push_back(std::move(f));
    }
    m.layout = layout_from_json(j.at("layout"));
  } catch (const json::exception& e) {
    invalid(e.what(), path);
  } catch (const std::logic_error& e) {  // stoul, integer()
    invalid(e.what(), path);
  }
  if (m.world_size < 1 || static_cast<int>(m.files.size()) != m.world_size ||
      m.layout.world_size != m.world_size) {
    invalid("world_size does not match its files and layout", path);
  }
  for (int r = 0; r < m.world_size; ++r) {
    if (m.files[r].name != run_layout::rank_file_name(r))
      invalid("unexpected file " + m.files[r].name, path);
  }
  for (const UnitLayout& b : m.layout.units) {
    if (b.numel < 0 || b.padded_numel < b.numel || b.padded_numel % m.world_size != 0) {
      invalid("unit '" + b.name + "' has inconsistent sizes", path);
    }
  }
  return m;
}

Manifest read_manifest(const std::string& step_dir) {
  const std::string path = run_layout::manifest_file(step_dir);
  return parse_manifest(read_file(path), path);
}

}  // namespace flam::train
