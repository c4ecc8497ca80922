// flam config show | keys: the resolved config as YAML, or every key the config accepts with its
// type, default, range (all from the describe() functions that parse YAML, core/config_keys.h)
// and one line of meaning (kMeanings below; a test checks every key has one).
#include <cstdio>
#include <map>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/config_keys.h"
#include "core/error.h"
#include "core/exit_codes.h"

namespace flam::cli {
namespace {

// One line per key; units in the line where the key's name does not carry them.
const std::map<std::string, std::string>& meanings() {
  static const std::map<std::string, std::string> kMeanings = {
      {"run.name", "the run's name (Slurm job name, logs)"},
      {"run.dir", "run directory: checkpoints/, metrics.jsonl, TensorBoard events, state.json"},
      {"run.seed", "seed of data order, flips, demo choice and initialisation"},
      {"run.log_level", "least severe log line printed"},
      {"model.vision.image_size", "CLIP ViT input side in pixels"},
      {"model.vision.patch_size", "ViT patch side in pixels"},
      {"model.vision.width", "ViT hidden size"},
      {"model.vision.layers", "ViT blocks"},
      {"model.vision.heads", "ViT attention heads (divide width)"},
      {"model.vision.mlp_dim", "ViT MLP hidden size"},
      {"model.vision.tokens_after_ln_post",
       "take patch tokens after ln_post (newer open_clip); OpenFlamingo-9B used before"},
      {"model.lang.vocab_size", "LLaMA vocabulary before the three new tokens"},
      {"model.lang.dim", "LLaMA hidden size"},
      {"model.lang.layers", "LLaMA decoder layers"},
      {"model.lang.heads", "LLaMA attention heads (divide dim)"},
      {"model.lang.ffn_dim", "LLaMA SwiGLU hidden size"},
      {"model.lang.norm_eps", "RMSNorm epsilon"},
      {"model.lang.rope_theta", "rotary embedding base"},
      {"model.lang.max_seq_len", "longest sequence the rotary tables cover, in tokens"},
      {"model.perceiver.depth", "Perceiver resampler layers"},
      {"model.perceiver.heads", "Perceiver attention heads"},
      {"model.perceiver.dim_head", "Perceiver size per head"},
      {"model.perceiver.num_latents", "visual tokens per image after resampling"},
      {"model.perceiver.ff_mult", "Perceiver feed-forward expansion"},
      {"model.perceiver.max_num_media", "media-time embeddings; 0: none"},
      {"model.perceiver.max_num_frames", "frame embeddings; 0: none"},
      {"model.xattn.every_n_layers", "a gated cross-attention block before every n-th LLaMA layer"},
      {"model.xattn.heads", "cross-attention heads"},
      {"model.xattn.dim_head", "cross-attention size per head"},
      {"model.xattn.ff_mult", "cross-attention feed-forward expansion"},
      {"model.xattn.only_attend_immediate_media",
       "text attends only to the latest preceding image (OpenFlamingo's default)"},
      {"model.weights.vision", "HF CLIP safetensors (or index.json); empty: random init"},
      {"model.weights.lang", "HF LLaMA safetensors (or index.json); empty: random init"},
      {"model.weights.openflamingo_checkpoint", "OpenFlamingo checkpoint.pt of trained weights"},
      {"model.weights.hf_flamingo",
       "OpenFlamingo-9B-HF folder (config.json + .bin/.safetensors shards): every weight"},
      {"model.freeze_lm_embeddings",
       "keep the <image> and <|endofchunk|> embedding rows frozen too (OpenFlamingo's flag)"},
      {"data.tokenizer", "SentencePiece model (LLaMA's tokenizer.model)"},
      {"data.special_strings",
       "text: <image>, <|endofchunk|>, <PAD>, <s>, </s> in user text stay plain text; special: "
       "they become the special tokens (OpenFlamingo)"},
      {"data.stream.connect_timeout_seconds", "TCP/TLS connect deadline of an http(s) shard"},
      {"data.stream.low_speed_seconds", "an http(s) shard stream stalled this long fails"},
      {"data.stream.deadline_seconds", "total seconds one http(s) shard stream may take; 0: none"},
      {"data.stream.min_average_bytes_per_second",
       "an http(s) shard stream slower than this on average (after the grace) fails; 0: off"},
      {"data.stream.min_average_grace_seconds", "seconds before the minimum average rate counts"},
      {"data.image.size", "CLIP input side: shorter side resized, then center crop"},
      {"data.image.flip", "horizontal flip: none, per image, or per batch (OpenFlamingo)"},
      {"data.image.max_pixels", "decode guard against decompression bombs, in pixels"},
      {"data.image.fast_downscale",
       "decode JPEGs >= 2x size at a DCT scale-down: faster, not PIL-exact (off: PIL-exact)"},
      {"data.laion.shards", "LAION shards: paths, URLs, brace ranges or a list file"},
      {"data.laion.batch_size", "LAION sequences per rank per micro-step"},
      {"data.laion.seq_len", "LAION sequence length in tokens"},
      {"data.laion.loss_multiplier", "weight of the LAION loss in the step's loss"},
      {"data.mmc4.shards", "MMC4 shards: paths, URLs, brace ranges or a list file"},
      {"data.mmc4.batch_size", "MMC4 sequences per rank per micro-step"},
      {"data.mmc4.seq_len", "MMC4 sequence length in tokens"},
      {"data.mmc4.max_images", "images per MMC4 sequence at most"},
      {"data.mmc4.min_images", "documents with fewer matched images are skipped"},
      {"data.mmc4.sim_threshold", "image-sentence similarity below this: the image is dropped"},
      {"data.mmc4.matching", "image-to-sentence assignment: Hungarian, or argmax (first release)"},
      {"data.mmc4.min_image_bytes", "images of this many bytes or fewer are dropped"},
      {"data.mmc4.single_image_keep_prob", "chance of keeping a document with a single image"},
      {"data.mmc4.loss_multiplier", "weight of the MMC4 loss in the step's loss"},
      {"data.loader.threads", "decode threads per rank"},
      {"data.loader.prefetch_batches", "ready batches queued ahead per stream"},
      {"data.loader.shuffle_buffer", "samples in the shuffle buffer"},
      {"data.loader.read_ahead_shards", "remote shards read ahead while one is read (or slow)"},
      {"data.loader.read_ahead_bytes", "samples held per remote shard read ahead, in bytes"},
      {"train.steps", "optimizer steps to train"},
      {"train.grad_accum", "micro-steps per optimizer step"},
      {"train.device", "where the model runs"},
      {"train.precision", "compute precision; master weights stay fp32"},
      {"train.grad_clip", "clip the global gradient norm to this; 0: off"},
      {"train.shard_frozen",
       "frozen weights (CLIP, LLaMA) sharded over the ranks like trained ones, gathered per unit"},
      {"train.checkpointing",
       "what backward recomputes: none (OpenFlamingo's default), cross_attention, every_layer, "
       "auto"},
      {"train.memory_limit",
       "device memory flam train plans for (24GiB); empty: the GPU's, cpu none"},
      {"train.skip_nonfinite", "a NaN/Inf loss or gradient norm skips the step (counted)"},
      {"train.log_every", "steps between metrics.jsonl lines"},
      {"train.comm_timeout_seconds", "a collective slower than this aborts the job"},
      {"train.optimizer.lr", "AdamW peak learning rate"},
      {"train.optimizer.beta1", "AdamW first-moment decay"},
      {"train.optimizer.beta2", "AdamW second-moment decay"},
      {"train.optimizer.eps", "AdamW epsilon"},
      {"train.optimizer.weight_decay", "decoupled weight decay, cross-attention parameters only"},
      {"train.optimizer.offload",
       "fp32 master and moments in host memory, the AdamW step on the CPU (small GPUs)"},
      {"train.schedule.kind", "learning-rate shape after warmup"},
      {"train.schedule.warmup_steps", "steps of linear warmup from 0"},
      {"train.checkpoint.every_steps", "save every this many steps; 0: off"},
      {"train.checkpoint.every_minutes", "save every this many minutes; 0: off"},
      {"train.checkpoint.keep", "newest checkpoints kept"},
      {"train.checkpoint.async", "write checkpoints on a background thread"},
      {"train.checkpoint.max_failed_attempts", "consecutive failed saves before training stops"},
      {"train.checkpoint.mtbf_hours", "> 0: also save at the Young/Daly interval for this MTBF"},
      {"train.checkpoint.watchdog_seconds", "a rank silent this long aborts the job; 0: off"},
      {"train.checkpoint.dir",
       "where checkpoints go: empty for RUN/checkpoints, a folder, or s3://bucket/prefix"},
      {"shard.input_kind", "LAION URL tables or MMC4 documents"},
      {"shard.inputs", "input files or globs: tsv/csv/jsonl(.gz/.zst)/parquet; MMC4 .jsonl.zip"},
      {"shard.input_format", "table format; auto: from the file extension"},
      {"shard.url_col", "URL column (LAION's URL matches url)"},
      {"shard.caption_col", "caption column (LAION's TEXT matches caption); empty: none"},
      {"shard.save_cols", "extra columns kept, with their types, in each sample's json"},
      {"shard.max_bad_row_fraction", "more malformed rows than this: the run stops (exit 2)"},
      {"shard.output_dir", "where shards, rows and stats files go"},
      {"shard.samples_per_shard", "input rows per shard"},
      {"shard.zstd", "write .tar.zst instead of .tar"},
      {"shard.zstd_level", "zstd compression level"},
      {"shard.mmc4_layout", "MMC4 images inline as base64 (OpenFlamingo) or as tar members"},
      {"shard.transform_threads", "decode/resize/encode threads per rank; 0: cores / ranks"},
      {"shard.progress_seconds", "seconds between rank 0's progress lines"},
      {"shard.download.concurrency", "transfers in flight per rank"},
      {"shard.download.min_average_bytes_per_second",
       "a download slower than this on average (after the grace) fails as too_slow; 0: off"},
      {"shard.download.min_average_grace_seconds",
       "seconds before a download's minimum average rate counts"},
      {"shard.download.per_host_connections", "concurrent connections to one host at most"},
      {"shard.download.connect_timeout_seconds", "TCP/TLS connect deadline"},
      {"shard.download.total_timeout_seconds", "whole-transfer deadline"},
      {"shard.download.retries", "retries for timeouts, 5xx and 429"},
      {"shard.download.retry_backoff_seconds", "wait before retry k: backoff * 2^(k-1)"},
      {"shard.download.max_retry_after_seconds", "cap on a server's Retry-After"},
      {"shard.download.low_speed_bytes_per_second", "abort a transfer slower than this ..."},
      {"shard.download.low_speed_seconds", "... for this long"},
      {"shard.download.max_redirects", "redirects followed at most"},
      {"shard.download.max_body_bytes", "larger responses are dropped (too_large)"},
      {"shard.download.respect_opt_out", "skip images whose X-Robots-Tag says noai/noindex"},
      {"shard.download.user_agent", "HTTP User-Agent header"},
      {"shard.transform.image_size", "target image side in pixels"},
      {"shard.transform.resize_mode", "resize as img2dataset does"},
      {"shard.transform.resize_only_if_bigger", "never upscale"},
      {"shard.transform.min_image_size", "images with a smaller side are dropped (too_small)"},
      {"shard.transform.max_aspect_ratio", "longer/shorter side above this: dropped; 0: no limit"},
      {"shard.transform.encode_format", "encoding of the stored images"},
      {"shard.transform.encode_quality", "JPEG/WebP quality"},
      {"shard.transform.max_pixels", "decode guard against decompression bombs, in pixels"},
      {"shard.transform.fast_decode", "JPEG DCT scaling before the resize: faster, not PIL-exact"},
      {"slurm.nodes", "nodes per job"},
      {"slurm.min_nodes", "fewest nodes a (resubmitted) job may start on; 0: exactly slurm.nodes"},
      {"slurm.ntasks_per_node", "ranks per node"},
      {"slurm.gpus_per_node", "GPUs per node"},
      {"slurm.cpus_per_task", "CPU cores per rank"},
      {"slurm.time", "job time limit (HH:MM:SS or D-HH:MM:SS)"},
      {"slurm.partition", "Slurm partition; empty: the cluster's default"},
      {"slurm.account", "Slurm account; empty: the user's default"},
      {"slurm.qos", "Slurm QOS; empty: the default"},
      {"slurm.env", "KEY=VALUE exported in the job"},
      {"slurm.max_restarts", "resubmissions `flam watch` makes at most"},
      {"slurm.poll_seconds", "seconds between `flam watch`'s squeue/sacct polls"},
      {"slurm.backoff_seconds", "wait before a resubmission"},
      {"train.eval.every",
       "steps between in-training evaluations (also one at step 0); 0: off; datasets from eval.*"},
      {"train.eval.tasks", "tasks evaluated during training (coco | flickr30k | vqav2 | ...)"},
      {"train.eval.shots", "shot counts evaluated during training, one metrics field each"},
      {"train.eval.num_samples", "held-out queries per in-training evaluation"},
      {"eval.task", "coco | flickr30k | vqav2 | ok_vqa | vizwiz | textvqa"},
      {"eval.shots", "demonstrations per query, one evaluation each (0: two text-only demos)"},
      {"eval.trials", "evaluations per shot count with different demos; mean and std reported"},
      {"eval.seed", "seed of demo choice (the same on any number of ranks)"},
      {"eval.num_samples", "queries evaluated; 0: the whole test split"},
      {"eval.query_set_size", "training items the demos are chosen from (random or RICES)"},
      {"eval.demo_selection",
       "random (seeded per query) | rices (most similar query-set images, most similar last)"},
      {"eval.rices_cache_dir", "folder caching RICES image features (keyed by weights and images)"},
      {"eval.batch_size", "queries generated together (left-padded)"},
      {"eval.num_beams", "beam search width; 1: greedy"},
      {"eval.length_penalty", "beam score = log-prob / length^this (Hugging Face semantics)"},
      {"eval.max_new_tokens", "tokens generated at most; 0: 20 for captions, 5 for VQA"},
      {"eval.vqa_gt_normalization",
       "openflamingo: normalise every ground-truth answer; official: only when answers differ"},
      {"eval.karpathy_json", "COCO/Flickr30k Karpathy split file (dataset_coco.json)"},
      {"eval.image_dir", "folder of the captioning images (filepath/filename under it)"},
      {"eval.train_questions", "VQA questions JSON of the demo (train) split"},
      {"eval.train_annotations", "VQA annotations JSON of the demo (train) split"},
      {"eval.train_image_dir", "folder of the demo split's images"},
      {"eval.test_questions", "VQA questions JSON of the query (test) split"},
      {"eval.test_annotations", "VQA annotations JSON of the query (test) split"},
      {"eval.test_image_dir", "folder of the query split's images"},
      {"slurm.launcher", "how ranks start inside the allocation"},
      {"slurm.mpi", "srun --mpi plugin"},
      {"slurm.signal_seconds", "SIGUSR1 this long before the time limit (checkpoint, exit 3)"},
      {"slurm.flam_bin", "the flam the job runs; empty: the one running `flam submit`"},
      {"slurm.template_dir", "folder with train.sbatch / shard.sbatch replacing the built-in ones"},
      {"slurm.train.nodes", "training job: nodes per job; -1: slurm.nodes"},
      {"slurm.train.min_nodes", "training job: fewest nodes; -1: slurm.min_nodes"},
      {"slurm.train.ntasks_per_node", "training job: ranks per node; -1: slurm.ntasks_per_node"},
      {"slurm.train.gpus_per_node", "training job: GPUs per node; -1: slurm.gpus_per_node"},
      {"slurm.train.cpus_per_task", "training job: CPU cores per rank; -1: slurm.cpus_per_task"},
      {"slurm.train.time", "training job: time limit; empty: slurm.time"},
      {"slurm.train.partition", "training job: partition; empty: slurm.partition"},
      {"slurm.train.account", "training job: account; empty: slurm.account"},
      {"slurm.train.qos", "training job: QOS; empty: slurm.qos"},
      {"slurm.shard.nodes", "preprocessing job: nodes per job; -1: slurm.nodes"},
      {"slurm.shard.min_nodes", "preprocessing job: fewest nodes; -1: slurm.min_nodes"},
      {"slurm.shard.ntasks_per_node",
       "preprocessing job: ranks per node; -1: slurm.ntasks_per_node"},
      {"slurm.shard.gpus_per_node", "preprocessing job: GPUs per node; -1: slurm.gpus_per_node"},
      {"slurm.shard.cpus_per_task",
       "preprocessing job: CPU cores per rank; -1: slurm.cpus_per_task"},
      {"slurm.shard.time", "preprocessing job: time limit; empty: slurm.time"},
      {"slurm.shard.partition", "preprocessing job: partition; empty: slurm.partition"},
      {"slurm.shard.account", "preprocessing job: account; empty: slurm.account"},
      {"slurm.shard.qos", "preprocessing job: QOS; empty: slurm.qos"},
      {"slurm.max_failures_without_progress",
       "`flam watch` stops after this many failed jobs in a row without progress"},
  };
  return kMeanings;
}

bool under(const std::string& path, const std::string& prefix) {
  return prefix.empty() || path == prefix ||
         (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
          path[prefix.size()] == '.');
}

int print_keys(const std::string& prefix) {
  int shown = 0;
  for (const ConfigKey& k : list_config_keys(Config{})) {
    if (!under(k.path, prefix)) continue;
    auto meaning = meanings().find(k.path);
    std::printf("%s (%s, default %s%s%s)\n    %s\n", k.path.c_str(), k.type.c_str(),
                k.default_value.empty() ? "\"\"" : k.default_value.c_str(),
                k.range.empty() ? "" : "; ", k.range.c_str(),
                meaning == meanings().end() ? "(undocumented)" : meaning->second.c_str());
    ++shown;
  }
  if (shown == 0) {
    throw Error(ErrorKind::kUsage, "no config key under '" + prefix +
                                       "' (sections: run, model, data, train, shard, slurm, eval)");
  }
  return kExitOk;
}

}  // namespace

int cmd_config(const Argv& argv) {
  Args args(argv, {"config", "set"}, {"hash"});
  const auto& pos = args.positionals();
  if (!pos.empty() && pos[0] == "keys" && pos.size() <= 2) {
    return print_keys(pos.size() == 2 ? pos[1] : "");
  }
  if (pos.size() != 1 || pos[0] != "show") {
    throw Error(ErrorKind::kUsage,
                "usage: flam config show --config F [--set key=value ...] [--hash]\n"
                "       flam config keys [PREFIX]   every key: type, default, range, meaning");
  }
  Config config = load_config(args.get_or("config", ""), args.all("set"));
  if (args.flag("hash")) {
    std::printf("%s\n", config_hash(config).c_str());
  } else {
    std::fputs(dump_config(config).c_str(), stdout);
  }
  return kExitOk;
}

}  // namespace flam::cli
