// Evaluation datasets in the formats users have, read into EvalItems (train/eval/prompts.h):
//   COCO / Flickr30k: Karpathy's dataset_coco.json / dataset_flickr30k.json
//     {"images": [{"filepath", "filename", "split", "cocoid", "sentences": [{"raw"}]}]};
//     split "train" (demos) or "test" (queries), as OpenFlamingo's CaptionDataset; images from
//     image_dir/filename, or image_dir/filepath/filename when that exists.
//   VQAv2 / OK-VQA / VizWiz / TextVQA: the distributed questions and annotations files
//     {"questions": [{"image_id", "question", "question_id"}]},
//     {"annotations": [{"question_id", "answers": [{"answer"}]}]}; images as OpenFlamingo names
//     them: COCO_{dir name}_{image_id:012d}.jpg for COCO-based sets, else {image_id}.jpg.
// Every malformed or missing field throws flam::Error(kData) naming the file and the entry.
#pragma once

#include <string>
#include <vector>

#include "train/eval/prompts.h"

namespace flam::eval {

std::vector<EvalItem> load_karpathy_captions(const std::string& json_path,
                                             const std::string& image_dir,
                                             const std::string& split);

// coco_images: image names follow COCO's COCO_{split}_{id:012d}.jpg pattern.
std::vector<EvalItem> load_vqa(const std::string& questions_path,
                               const std::string& annotations_path, const std::string& image_dir,
                               bool coco_images);

}  // namespace flam::eval
