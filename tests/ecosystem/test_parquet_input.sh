#!/usr/bin/env bash
# LAION metadata as it ships: two parquet parts written by pyarrow (LAION's columns `URL`, `TEXT`,
# ... and types, snappy, row groups of 3) become shards that webdataset reads back, with the
# columns found by their LAION names and save_cols keeping their types. A lost shard is redone
# from its row position, byte for byte; a missing column names the file and the columns it has.
source "$FLAM_SOURCE_DIR/tests/shard/lib.sh"
ECO="$SRC/tests/ecosystem/ecosystem.py"
start_server
"$PY" "$ECO" laion-parquet "$PORT" "$TMP/laion"

write_config "$TMP/a.yaml" "$TMP/laion/part-*.parquet" "$TMP/out" "samples_per_shard: 5" \
  "save_cols: [SAMPLE_ID, WIDTH, LICENSE, similarity, punsafe]"
"$FLAM" shard --config "$TMP/a.yaml" 2>"$TMP/log1" || { cat "$TMP/log1"; exit 1; }
grep -q "13 input rows, 3 shards" "$TMP/log1" || { cat "$TMP/log1"; exit 1; }
"$PY" "$ECO" check-parquet "$TMP/out" "$TMP/laion"

# Resume: shard 1 (rows 5..9, across the part boundary) lost, redone identically.
cp "$TMP/out/00001.tar" "$TMP/00001.before"
rm "$TMP/out/00001_stats.json"
"$FLAM" shard --config "$TMP/a.yaml" 2>"$TMP/log2" || { cat "$TMP/log2"; exit 1; }
grep -q "2 done before" "$TMP/log2" || { cat "$TMP/log2"; exit 1; }
cmp "$TMP/out/00001.tar" "$TMP/00001.before"

# A column the parts do not have: a config error (exit 2) naming the file and what it has.
write_config "$TMP/b.yaml" "$TMP/laion/part-00000.parquet" "$TMP/out_b" "save_cols: [AESTHETIC]"
rc=0
"$FLAM" shard --config "$TMP/b.yaml" 2>"$TMP/log3" || rc=$?
[ "$rc" -ne 0 ] || { echo "a missing column was accepted"; exit 1; }
grep -q "part-00000.parquet" "$TMP/log3" && grep -q "no column 'AESTHETIC'" "$TMP/log3" &&
  grep -q "SAMPLE_ID, URL, TEXT" "$TMP/log3" || { cat "$TMP/log3"; exit 1; }
echo "parquet input ok"
