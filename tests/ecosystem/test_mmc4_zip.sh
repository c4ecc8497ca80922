#!/usr/bin/env bash
# MMC4 as it ships: a `docs_shard_0_v2.jsonl.zip` written by Python's zipfile (deflate) becomes
# shards that webdataset reads back, identical to those from the same lines as .jsonl, .jsonl.gz
# and .jsonl.zst. A zip that is not MMC4 fails loudly: exit 2, the member and line named, and
# no shard written.
source "$FLAM_SOURCE_DIR/tests/shard/lib.sh"
ECO="$SRC/tests/ecosystem/ecosystem.py"
start_server
"$PY" "$ECO" mmc4-zip "$PORT" "$TMP/docs_shard_0_v2.jsonl.zip"
gzip -k "$TMP/docs_shard_0_v2.jsonl"
zstd -q "$TMP/docs_shard_0_v2.jsonl"

write_config "$TMP/zip.yaml" "$TMP/docs_shard_0_v2.jsonl.zip" "$TMP/zip" "input_kind: mmc4" \
  "save_cols: []"
"$FLAM" shard --config "$TMP/zip.yaml" 2>"$TMP/log" || { cat "$TMP/log"; exit 1; }
"$PY" "$ECO" check-mmc4 "$TMP/zip"
for ext in jsonl jsonl.gz jsonl.zst; do
  write_config "$TMP/$ext.yaml" "$TMP/docs_shard_0_v2.$ext" "$TMP/$ext" "input_kind: mmc4" \
    "save_cols: []"
  "$FLAM" shard --config "$TMP/$ext.yaml" 2>"$TMP/log" || { cat "$TMP/log"; exit 1; }
  cmp "$TMP/zip/00000.tar" "$TMP/$ext/00000.tar"
done

"$PY" "$ECO" not-mmc4-zip "$TMP/laion.zip"
write_config "$TMP/bad.yaml" "$TMP/laion.zip" "$TMP/bad" "input_kind: mmc4" "save_cols: []"
rc=0
"$FLAM" shard --config "$TMP/bad.yaml" 2>"$TMP/log" || rc=$?
[ "$rc" -eq 2 ] || { echo "exit $rc for a zip that is not MMC4"; cat "$TMP/log"; exit 1; }
grep -q "are not MMC4 documents" "$TMP/log" && grep -q "laion.zip:part-00000.tsv:1" "$TMP/log" ||
  { cat "$TMP/log"; exit 1; }
if ls "$TMP/bad" 2>/dev/null | grep -q .; then echo "files written: $(ls "$TMP/bad")"; exit 1; fi
echo "mmc4 zip ok"
