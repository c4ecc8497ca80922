// Packers: one sample (what a tar holds under one key) -> one training sequence, as OpenFlamingo's
// data.py makes them, with the labels of its train_utils.py. Per-item failures are values: a
// PackResult with a reason (counted by the loader), never an exception.
//
// User text (captions, sentences) is tokenized per data.special_strings: "text" (default) encodes
// it as plain text, so only the packer's own <image> / <|endofchunk|> / BOS / EOS are special
// tokens; "special" tokenizes the assembled string with the special strings matched, exactly as
// OpenFlamingo does (a literal "<image>" in a caption is then a media token).
//
// LAION (preprocess_laion_text): the image member (jpg|jpeg|png|webp, any decodable format) is
// decoded and CLIP preprocessed; the text is [BOS] + "<image>" + caption.strip() +
// "<|endofchunk|>" + EOS, truncated to seq_len, padded with <PAD> (to seq_len, not to the longest
// in the batch: the loss is the same and shapes stay static). Labels: -100 on padding, position 0
// and <image>.
//
// MMC4 (preprocess_interleaved): see pack_mmc4 below. Labels additionally -100 on every token
// before the first <image> and on the tokens after each <|endofchunk|> up to the next <image>.
// Differences from OpenFlamingo, on purpose (ARCHITECTURE.md, Fidelity notes): the images are
// ordered by the position of their <image> token (OpenFlamingo keeps image order, so a
// non-monotonic matching makes a sentence attend to another sentence's image); only the chosen
// images are decoded (a corrupt image that no sentence would use does not drop the document);
// slots of images whose <image> token was truncated away are zero and not marked present.
//
// Thread safety: pure functions of their arguments (the tokenizer is used const); call them from
// any number of decode threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/image.h"
#include "pipeline/loader_rng.h"
#include "pipeline/options.h"
#include "pipeline/sample_grouper.h"
#include "pipeline/tokenizer.h"

namespace flam::pipeline {

struct Sequence {
  std::vector<int64_t> input_ids;       // [T]
  std::vector<int64_t> attention_mask;  // [T]
  std::vector<int64_t> labels;          // [T]
  // CLIP-preprocessed size x size images, slot j for the j-th <image> token (at most
  // max_images; fewer when tokens were truncated away).
  std::vector<Image> images;
  // [images.size()] where each slot's image came from in the sample: its index in the MMC4
  // document's image_info; 0 for LAION's one image.
  std::vector<int> image_sources;
};

struct PackResult {
  Sequence sequence;
  std::string reason;   // "" when packed; else the drop reason (pipeline/drop_reason.h)
  std::string message;  // detail for the log
  bool ok() const { return reason.empty(); }
};

// LAION: `rng` draws the flip coin when options.image.flip == "image".
PackResult pack_laion(const Sample& sample, const Tokenizer& tokenizer, const DataOptions& options,
                      Rng& rng);

// MMC4: KEY.json = {text_list, image_info: [{image_name, matched_text_index, matched_sim,
// image_base64?, image_member?}], similarity_matrix: [images][sentences]}. An image's bytes are
// its image_base64, else the member of this sample with extension image_member (our shard
// writer's "members" layout: KEY.0.jpg has image_member "0.jpg"), else the member named by
// image_name (extension "image_name", or the part of image_name after "KEY."); an image without
// bytes is skipped; images of min_image_bytes bytes or less are dropped.
// Matching (mmc4.matching): "hungarian" assigns images to sentences one-to-one maximising total
// similarity; "argmax" takes each image's matched_text_index/matched_sim (or its best sentence in
// the matrix when absent). Matches below sim_threshold are dropped; the first max_images in image
// order are kept; each matched sentence is prefixed with "<|endofchunk|><image>", the sentences
// joined with spaces, the first "<|endofchunk|>" removed, OpenFlamingo's whitespace clean-up
// applied, and "<|endofchunk|>" + EOS appended; [BOS] + tokens truncated to seq_len and padded.
// Rejected: fewer than min_images <image> tokens left, one image with probability
// 1 - single_image_keep_prob (one draw of `rng`, before the flip coins), or a single <image>
// as the very last token (counting every <image> token, literal ones under "special" too, as
// OpenFlamingo counts them). Image slot t holds the image of the packer's t-th surviving <image>
// token; never more slots than chosen images (Sequence::image_sources says which).
PackResult pack_mmc4(const Sample& sample, const Tokenizer& tokenizer, const DataOptions& options,
                     Rng& rng);

// The MMC4 text for sentences with images placed before sentence_ixs[i] (in that loop order, as
// OpenFlamingo does it), before tokenization. Also returns, in `image_order`, the indices i into
// sentence_ixs in the order their <image> tokens appear in the text.
std::string mmc4_text(std::vector<std::string> sentences, const std::vector<int>& sentence_ixs,
                      std::vector<int>* image_order);

// The tokens of the same MMC4 text plus "<|endofchunk|>" + EOS (no BOS), with every sentence
// encoded as plain text (Tokenizer::encode_plain) and only the packer's own <|endofchunk|> and
// <image> as special tokens (data.special_strings: text). image_of_token[t] is, for the <image>
// tokens, the index i into sentence_ixs of its image, and -1 for every other token.
std::vector<int64_t> mmc4_tokens(const std::vector<std::string>& sentences,
                                 const std::vector<int>& sentence_ixs, const Tokenizer& tokenizer,
                                 std::vector<int>* image_of_token);

// Labels of train_utils.py for a packed row.
std::vector<int64_t> laion_labels(const std::vector<int64_t>& ids, const Tokenizer& tokenizer);
std::vector<int64_t> mmc4_labels(const std::vector<int64_t>& ids, const Tokenizer& tokenizer);

}  // namespace flam::pipeline
