#include "pipeline/tokenizer.h"

#include <sentencepiece_processor.h>

#include <array>
#include <filesystem>

#include "core/error.h"
#include "pipeline/s3.h"

namespace flam::pipeline {
namespace {

constexpr std::array<std::string_view, 5> kSpecials = {Tokenizer::kEndOfChunk, Tokenizer::kImage,
                                                       Tokenizer::kPad, "<s>", "</s>"};

ErrorContext tokenizer_context(const std::string& path) {
  ErrorContext context;
  (is_s3_url(path) ? context.url : context.file) = path;
  context.key = "data.tokenizer";
  return context;
}

}  // namespace

struct Tokenizer::Processor {
  sentencepiece::SentencePieceProcessor sp;
};

Tokenizer::Tokenizer(const std::string& model_path) : sp_(std::make_unique<Processor>()) {
  std::error_code ec;
  if (!is_s3_url(model_path) && std::filesystem::is_directory(model_path, ec)) {
    throw Error(ErrorKind::kConfig, "is a directory, not a SentencePiece model (data.tokenizer)",
                tokenizer_context(model_path));
  }
  // A model in a bucket is read whole (a few MB) and parsed from memory.
  const sentencepiece::util::Status status =
      is_s3_url(model_path) ? sp_->sp.LoadFromSerializedProto(default_s3_client().get(model_path))
                            : sp_->sp.Load(model_path);
  if (!status.ok()) {
    throw Error(ErrorKind::kConfig,
                std::string("cannot load the SentencePiece model (data.tokenizer): ") +
                    status.error_message(),
                tokenizer_context(model_path));
  }
  base_ = sp_->sp.GetPieceSize();
  bos_ = sp_->sp.bos_id();
  eos_ = sp_->sp.eos_id();
  if (bos_ < 0 || eos_ < 0) {
    throw Error(ErrorKind::kConfig, "the SentencePiece model has no BOS or EOS piece",
                tokenizer_context(model_path));
  }
}

Tokenizer::~Tokenizer() = default;

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int64_t> out;
  if (add_bos) out.push_back(bos_);
  const int64_t special_ids[kSpecials.size()] = {endofchunk_id(), image_id(), pad_id(), bos_, eos_};
  std::vector<int> piece_ids;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string_view::npos;
    size_t which = 0;
    for (size_t s = 0; s < kSpecials.size(); ++s) {
      const size_t at = text.find(kSpecials[s], pos);
      if (at < best) {
        best = at;
        which = s;
      }
    }
    const size_t end = best == std::string_view::npos ? text.size() : best;
    if (end > pos) {
      piece_ids.clear();
      sp_->sp.Encode(text.substr(pos, end - pos), &piece_ids).IgnoreError();
      out.insert(out.end(), piece_ids.begin(), piece_ids.end());
    }
    if (best == std::string_view::npos) break;
    out.push_back(special_ids[which]);
    pos = best + kSpecials[which].size();
  }
  return out;
}

std::vector<int64_t> Tokenizer::encode_plain(std::string_view text) const {
  if (text.empty()) return {};
  std::vector<int> piece_ids;
  sp_->sp.Encode(text, &piece_ids).IgnoreError();
  return std::vector<int64_t>(piece_ids.begin(), piece_ids.end());
}

std::string Tokenizer::piece(int64_t id) const {
  if (id == endofchunk_id()) return std::string(kEndOfChunk);
  if (id == image_id()) return std::string(kImage);
  if (id == pad_id()) return std::string(kPad);
  if (id < 0 || id >= base_) return "<unk:" + std::to_string(id) + ">";
  return sp_->sp.IdToPiece(static_cast<int>(id));
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    sp_->sp.Decode(run, &text).IgnoreError();
    out += text;
    run.clear();
  };
  for (const int64_t id : ids) {
    if (id >= 0 && id < base_ && id != bos_ && id != eos_) {
      run.push_back(static_cast<int>(id));
      continue;
    }
    flush();
    if (id == bos_) {
      out += "<s>";
    } else if (id == eos_) {
      out += "</s>";
    } else {
      out += piece(id);
    }
  }
  flush();
  return out;
}

}  // namespace flam::pipeline
