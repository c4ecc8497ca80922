#include "train/checkpoint/checkpoint_reader.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/check.h"
#include "core/error.h"
#include "core/run_layout.h"
#include "pipeline/s3.h"

namespace flam::train {

std::string unit_section_name(const std::string& kind, size_t unit) {
  return kind + "/" + std::to_string(unit);
}

CheckpointReader::CheckpointReader(std::string step_dir)
    : dir_(std::move(step_dir)), manifest_(read_manifest(dir_)) {
  headers_.resize(manifest_.world_size);
}

std::string CheckpointReader::file_path(int rank) const {
  return dir_ + "/" + manifest_.files.at(rank).name;
}

const RankFileHeader& CheckpointReader::header(int rank) {
  FLAM_CHECK(rank >= 0 && rank < manifest_.world_size) << "rank " << rank;
  if (!headers_[rank]) headers_[rank] = read_rank_file_header(file_path(rank));
  return *headers_[rank];
}

void CheckpointReader::verify_file(int rank) {
  const ManifestFile& f = manifest_.files.at(rank);
  verify_rank_file(file_path(rank), f.bytes, f.header_crc);
}

void CheckpointReader::read_flat(const std::string& kind, size_t unit, int64_t begin, int64_t end,
                                 float* out) {
  FLAM_CHECK(unit < manifest_.layout.units.size() && 0 <= begin && begin <= end)
      << "unit " << unit << " range [" << begin << ", " << end << ")";
  const UnitLayout& b = manifest_.layout.units[unit];
  const int64_t old_slice = b.padded_numel / manifest_.world_size;
  const std::string section = unit_section_name(kind, unit);
  const int64_t real_end = std::min(end, b.numel);
  if (begin < end)
    std::fill(out + std::max<int64_t>(0, real_end - begin), out + (end - begin), 0.f);
  for (int64_t lo = begin; lo < real_end;) {
    const int r = static_cast<int>(lo / old_slice);
    const int64_t hi = std::min(real_end, (r + 1) * old_slice);
    const RankFileHeader& h = header(r);
    const SectionEntry* e = h.find(section);
    if (!e || e->size != static_cast<uint64_t>(old_slice) * sizeof(float)) {
      ErrorContext ctx;
      ctx.file = file_path(r);
      throw Error(ErrorKind::kData,
                  "section '" + section + "' is missing or not " + std::to_string(old_slice) +
                      " floats as the manifest's layout says",
                  ctx);
    }
    read_section_range(file_path(r), h, section, (lo - r * old_slice) * sizeof(float),
                       (hi - lo) * sizeof(float), out + (lo - begin));
    lo = hi;
  }
}

std::string CheckpointReader::read_section(int rank, const std::string& name) {
  return ::flam::train::read_section(file_path(rank), header(rank), name);
}

RemoteCheckpoint download_checkpoint(const std::string& url, const std::string& local_dir) {
  const pipeline::S3Client& s3 = pipeline::default_s3_client();
  std::string root = url;
  while (!root.empty() && root.back() == '/') root.pop_back();
  pipeline::parse_s3_url(root);
  ErrorContext context;
  context.url = root;
  // A step named directly: its checkpoints prefix is the parent.
  std::optional<int64_t> named = run_layout::parse_step_dir_name(root.substr(root.rfind('/') + 1));
  if (named) root = root.substr(0, root.rfind('/'));

  std::map<int64_t, std::vector<pipeline::S3Object>> steps;
  std::set<int64_t> committed;
  for (pipeline::S3Object& object : s3.list(root + "/")) {
    const std::string rel = object.url.substr(root.size() + 1);
    const size_t slash = rel.find('/');
    if (slash == std::string::npos) continue;
    const std::optional<int64_t> step = run_layout::parse_step_dir_name(rel.substr(0, slash));
    if (!step) continue;
    if (rel.substr(slash + 1) == "manifest.json") committed.insert(*step);
    steps[*step].push_back(std::move(object));
  }
  RemoteCheckpoint out;
  out.committed.assign(committed.begin(), committed.end());
  if (named && !committed.count(*named)) {
    throw Error(ErrorKind::kData,
                "no manifest.json: this step's save did not commit (not a checkpoint)", context);
  }
  if (!named && committed.empty()) {
    throw Error(ErrorKind::kIo, "no committed checkpoint (step_N/manifest.json) under the prefix",
                context);
  }
  const int64_t step = named ? *named : *committed.rbegin();
  out.url = root + "/" + run_layout::step_dir_name(step);
  for (const pipeline::S3Object& object : steps[step]) {
    s3.download(object.url, local_dir + "/" + object.url.substr(out.url.size() + 1));
  }
  return out;
}

}  // namespace flam::train
