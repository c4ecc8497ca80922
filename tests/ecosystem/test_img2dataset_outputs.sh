#!/usr/bin/env bash
# Outputs as img2dataset writes them: for the same LAION parquet part served on 127.0.0.1, flam
# shard's per-shard NNNNN.parquet (every row: status, error, kept columns, sizes, EXIF, sha256) and
# NNNNN_stats.json (count, successes, failed_to_download, ...) agree field by field with what
# img2dataset itself (the venv's) writes.
source "$FLAM_SOURCE_DIR/tests/shard/lib.sh"
ECO="$SRC/tests/ecosystem/ecosystem.py"
start_server
"$PY" "$ECO" peer-parquet "$PORT" "$TMP/part-00000.parquet" "$TMP/www"
# img2dataset's options: 256 px keep_ratio JPEG q95, no size or aspect filters, no retries.
cat >"$TMP/a.yaml" <<YAML
shard:
  inputs: ["$TMP/part-00000.parquet"]
  output_dir: "$TMP/ours"
  url_col: URL
  caption_col: TEXT
  save_cols: [SAMPLE_ID, WIDTH]
  samples_per_shard: 5
  transform_threads: 2
  download: {retries: 0, total_timeout_seconds: 3, respect_opt_out: false}
  transform: {image_size: 256, resize_mode: keep_ratio, encode_format: jpg, encode_quality: 95}
YAML
"$FLAM" shard --config "$TMP/a.yaml" 2>"$TMP/log" || { cat "$TMP/log" "$TMP/a.yaml"; exit 1; }
NO_ALBUMENTATIONS_UPDATE=1 "$PY" "$ECO" img2dataset "$TMP/part-00000.parquet" "$TMP/peer" \
  >"$TMP/peer.log" 2>&1 || { cat "$TMP/peer.log"; exit 1; }
"$PY" "$ECO" compare-peer "$TMP/ours" "$TMP/peer"
echo "img2dataset outputs ok"
