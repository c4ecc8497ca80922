// Tokenizer: a SentencePiece model (LLaMA's tokenizer.model in real runs) with OpenFlamingo's
// three added tokens appended after the model's vocabulary, in the order OpenFlamingo's factory
// adds them: "<|endofchunk|>" = base, "<image>" = base + 1, "<PAD>" = base + 2, where base is the
// model's own vocabulary size. Two ways to encode text:
//   encode_plain: SentencePiece alone; the special strings are ordinary text (their pieces). The
//     packers encode user text this way (data.special_strings: text) and insert the special ids
//     themselves, so no caption can add a media token (OpenFlamingo #215).
//   encode: as Hugging Face's tokenizer does with added tokens, the special strings
//     ("<|endofchunk|>", "<image>", "<PAD>", and the model's "<s>" / "</s>") are matched literally
//     and never split; the text between them is encoded by SentencePiece segment by segment.
//     OpenFlamingo's behaviour (data.special_strings: special).
//
// Thread safety: after construction every method is const and may be called from any number of
// threads at once (SentencePieceProcessor's encode/decode are const).
//
// libsentencepiece is linked as usual. (Until LibTorch 1.13 it had to be dlopen'ed in isolation:
// its embedded protobuf 3.14 clashed with the system protobuf that Debian's LibTorch loaded. The
// PyPI LibTorch 2.x keeps its protobuf hidden, so the two no longer meet.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flam::pipeline {

class Tokenizer {
 public:
  // Loads the model from a local file or an s3:// object (read whole through
  // pipeline/s3.h's default client). Throws flam::Error(kConfig) naming the file or URL when it
  // is invalid, kConfig for a missing file; S3Client's errors, naming the URL, for an object that
  // cannot be read.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of text with the special strings matched; a BOS is prepended only when add_bos.
  // No EOS is appended.
  std::vector<int64_t> encode(std::string_view text, bool add_bos = false) const;
  // Token ids of text with no special string matched: every id is in [0, base_vocab_size()) and
  // none is BOS or EOS. No BOS or EOS is added.
  std::vector<int64_t> encode_plain(std::string_view text) const;
  // The text of ids; the added tokens come back as their literal strings, BOS/EOS as "<s>" and
  // "</s>". Ids outside [0, vocab_size()) come back as "<unk:ID>".
  std::string decode(const std::vector<int64_t>& ids) const;
  // The text of one id ("<image>", a SentencePiece piece such as "▁the", ...).
  std::string piece(int64_t id) const;

  int64_t base_vocab_size() const { return base_; }
  int64_t vocab_size() const { return base_ + 3; }
  int64_t eos_id() const { return eos_; }
  int64_t bos_id() const { return bos_; }
  int64_t endofchunk_id() const { return base_; }
  int64_t image_id() const { return base_ + 1; }
  int64_t pad_id() const { return base_ + 2; }

  static constexpr std::string_view kEndOfChunk = "<|endofchunk|>";
  static constexpr std::string_view kImage = "<image>";
  static constexpr std::string_view kPad = "<PAD>";

 private:
  struct Processor;  // a SentencePieceProcessor inside the isolated library
  std::unique_ptr<Processor> sp_;
  int64_t base_ = 0;
  int64_t bos_ = -1;
  int64_t eos_ = -1;
};

}  // namespace flam::pipeline
