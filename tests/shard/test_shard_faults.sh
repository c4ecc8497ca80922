#!/usr/bin/env bash
# flam shard over good images and every fault the issue lists: each row ends with the expected
# reason, the stats count each exactly, successful samples decode (PIL) and match their JSON.
# Then: a rerun skips done shards; .tsv.gz input and zstd output give the same tar bytes.
source "$(dirname "$0")/lib.sh"
start_server
"$PY" "$FIXTURE" faults "$PORT" "$TMP/faults.tsv"

write_config "$TMP/a.yaml" "$TMP/faults.tsv" "$TMP/out" "samples_per_shard: 8"
"$FLAM" shard --config "$TMP/a.yaml" 2>"$TMP/log1" || { cat "$TMP/log1"; exit 1; }
"$PY" "$FIXTURE" check "$TMP/out" "$TMP/faults.tsv"
ls "$TMP/out" | grep -q '^00003.tar$'

# Resume: every shard has its stats file, so nothing is redone.
stamp=$(stat -c %Y.%s "$TMP"/out/*_stats.json | md5sum)
"$FLAM" shard --config "$TMP/a.yaml" 2>"$TMP/log2"
grep -q "4 done before" "$TMP/log2" || { cat "$TMP/log2"; exit 1; }
[ "$stamp" = "$(stat -c %Y.%s "$TMP"/out/*_stats.json | md5sum)" ]

# A lost shard (no stats file) is redone, identically.
cp "$TMP/out/00001.tar" "$TMP/00001.tar.before"
rm "$TMP/out/00001_stats.json"
"$FLAM" shard --config "$TMP/a.yaml" 2>"$TMP/log3"
grep -q "3 done before" "$TMP/log3" || { cat "$TMP/log3"; exit 1; }
cmp "$TMP/out/00001.tar" "$TMP/00001.tar.before"

# gzip input, zstd output: the same samples, byte for byte, once decompressed.
gzip -c "$TMP/faults.tsv" >"$TMP/faults.tsv.gz"
write_config "$TMP/z.yaml" "$TMP/faults.tsv.gz" "$TMP/outz" "samples_per_shard: 8" "zstd: true"
"$FLAM" shard --config "$TMP/z.yaml" 2>"$TMP/logz" || { cat "$TMP/logz"; exit 1; }
for f in "$TMP"/out/*.tar; do
  zstd -qdc "$TMP/outz/$(basename "$f").zst" | cmp - "$f"
done
echo "shard faults ok"
