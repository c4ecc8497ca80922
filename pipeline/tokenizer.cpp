#include "pipeline/tokenizer.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>

#include <array>
#include <filesystem>
#include <mutex>

#include "core/error.h"

namespace flam::pipeline {
namespace {

constexpr std::array<std::string_view, 5> kSpecials = {Tokenizer::kEndOfChunk, Tokenizer::kImage,
                                                       Tokenizer::kPad, "<s>", "</s>"};

ErrorContext tokenizer_context(const std::string& path) {
  ErrorContext context;
  context.file = path;
  context.key = "data.tokenizer";
  return context;
}

// Layout of sentencepiece::util::Status (one pointer, null when ok). It is not trivially
// copyable, so the library returns it through a hidden pointer passed before `this`, which is
// how the function pointer types below call it (Itanium C++ ABI).
struct StatusBuf {
  void* rep = nullptr;
};
static_assert(sizeof(StatusBuf) == sizeof(sentencepiece::util::Status));

// The entry points of libsentencepiece.so.0, resolved once from an isolated dlopen.
struct SentencePieceApi {
  void (*construct)(void* self) = nullptr;
  void (*destruct)(void* self) = nullptr;
  void (*load)(StatusBuf* ret, void* self, std::string_view path) = nullptr;
  void (*encode)(StatusBuf* ret, const void* self, std::string_view text,
                 std::vector<int>* ids) = nullptr;
  void (*decode)(StatusBuf* ret, const void* self, const std::vector<int>& ids,
                 std::string* text) = nullptr;
  int (*piece_size)(const void* self) = nullptr;
  const std::string* (*id_to_piece)(const void* self, int id) = nullptr;
  int (*bos_id)(const void* self) = nullptr;
  int (*eos_id)(const void* self) = nullptr;
  void (*status_destruct)(StatusBuf* self) = nullptr;
  const char* (*status_message)(const StatusBuf* self) = nullptr;
  std::string error;  // non-empty when the library could not be loaded
};

template <typename F>
void resolve(void* handle, const char* name, F* out, std::string* error) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  if (*out == nullptr && error->empty()) *error = std::string("missing symbol ") + name;
}

const SentencePieceApi& api() {
  static SentencePieceApi a;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = dlopen("libsentencepiece.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (h == nullptr) {
      a.error = std::string("cannot load libsentencepiece.so.0: ") + dlerror();
      return;
    }
    resolve(h, "_ZN13sentencepiece22SentencePieceProcessorC1Ev", &a.construct, &a.error);
    resolve(h, "_ZN13sentencepiece22SentencePieceProcessorD1Ev", &a.destruct, &a.error);
    resolve(h,
            "_ZN13sentencepiece22SentencePieceProcessor4LoadESt17basic_string_viewIcSt11char_"
            "traitsIcEE",
            &a.load, &a.error);
    resolve(h,
            "_ZNK13sentencepiece22SentencePieceProcessor6EncodeESt17basic_string_viewIcSt11char_"
            "traitsIcEEPSt6vectorIiSaIiEE",
            &a.encode, &a.error);
    resolve(h,
            "_ZNK13sentencepiece22SentencePieceProcessor6DecodeERKSt6vectorIiSaIiEEPNSt7__"
            "cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
            &a.decode, &a.error);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor12GetPieceSizeEv", &a.piece_size,
            &a.error);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor9IdToPieceB5cxx11Ei", &a.id_to_piece,
            &a.error);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor6bos_idEv", &a.bos_id, &a.error);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor6eos_idEv", &a.eos_id, &a.error);
    resolve(h, "_ZN13sentencepiece4util6StatusD1Ev", &a.status_destruct, &a.error);
    resolve(h, "_ZNK13sentencepiece4util6Status13error_messageEv", &a.status_message, &a.error);
  });
  return a;
}

// Consumes a returned status: "" when ok, else its message.
std::string take_status(StatusBuf& status) {
  std::string message;
  if (status.rep != nullptr) {
    const char* m = api().status_message(&status);
    message = m != nullptr ? m : "error";
  }
  api().status_destruct(&status);
  return message;
}

}  // namespace

// Raw storage for one SentencePieceProcessor, constructed and destroyed through the library.
struct Tokenizer::Processor {
  alignas(sentencepiece::SentencePieceProcessor) unsigned char storage[sizeof(
      sentencepiece::SentencePieceProcessor)];
  bool constructed = false;

  void* self() { return storage; }
  const void* self() const { return storage; }
  ~Processor() {
    if (constructed) api().destruct(storage);
  }
};

Tokenizer::Tokenizer(const std::string& model_path) : sp_(std::make_unique<Processor>()) {
  std::error_code ec;
  if (std::filesystem::is_directory(model_path, ec)) {
    throw Error(ErrorKind::kConfig, "is a directory, not a SentencePiece model (data.tokenizer)",
                tokenizer_context(model_path));
  }
  const SentencePieceApi& a = api();
  if (!a.error.empty()) {
    throw Error(ErrorKind::kConfig, "SentencePiece is unavailable: " + a.error,
                tokenizer_context(model_path));
  }
  a.construct(sp_->self());
  sp_->constructed = true;
  StatusBuf status;
  a.load(&status, sp_->self(), model_path);
  const std::string message = take_status(status);
  if (!message.empty()) {
    throw Error(ErrorKind::kConfig,
                "cannot load the SentencePiece model (data.tokenizer): " + message,
                tokenizer_context(model_path));
  }
  base_ = a.piece_size(sp_->self());
  bos_ = a.bos_id(sp_->self());
  eos_ = a.eos_id(sp_->self());
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
      StatusBuf status;
      api().encode(&status, sp_->self(), text.substr(pos, end - pos), &piece_ids);
      take_status(status);
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
  StatusBuf status;
  api().encode(&status, sp_->self(), text, &piece_ids);
  take_status(status);
  return std::vector<int64_t>(piece_ids.begin(), piece_ids.end());
}

std::string Tokenizer::piece(int64_t id) const {
  if (id == endofchunk_id()) return std::string(kEndOfChunk);
  if (id == image_id()) return std::string(kImage);
  if (id == pad_id()) return std::string(kPad);
  if (id < 0 || id >= base_) return "<unk:" + std::to_string(id) + ">";
  return *api().id_to_piece(sp_->self(), static_cast<int>(id));
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    StatusBuf status;
    api().decode(&status, sp_->self(), run, &text);
    take_status(status);
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
