#!/usr/bin/env bash
# MMC4 documents: failed images are dropped with their similarity rows, a document without any
# image is not written, a malformed line is a bad_row; images inline (base64) or as members.
source "$(dirname "$0")/lib.sh"
start_server
"$PY" "$FIXTURE" mmc4 "$PORT" "$TMP/docs.jsonl"
for layout in base64 members; do
  write_config "$TMP/$layout.yaml" "$TMP/docs.jsonl" "$TMP/$layout" "input_kind: mmc4" \
    "mmc4_layout: $layout" "save_cols: []" "max_bad_row_fraction: 0.5"
  "$FLAM" shard --config "$TMP/$layout.yaml" 2>"$TMP/log" || { cat "$TMP/log"; exit 1; }
  "$PY" "$FIXTURE" check-mmc4 "$TMP/$layout" "$layout"
done
echo "shard mmc4 ok"
