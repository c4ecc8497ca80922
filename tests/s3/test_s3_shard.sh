#!/usr/bin/env bash
# `flam shard` from an s3:// table (a prefix listing) to an s3:// output_dir, against moto (run
# under with_s3.py): the objects equal, byte for byte, the shards of the same run on local disk;
# a rerun finds every shard done; MMC4 documents from the bucket make the same shards as from
# disk; `flam inspect shard` and the loader (`flam inspect batch`) read s3:// as they read the
# disk; a wrong secret and a missing bucket are exit 2 with a clear message that never prints the
# secret.
source "$FLAM_SOURCE_DIR/tests/shard/lib.sh"
S3TOOL="$PY $SRC/tests/s3/s3tool.py"
start_server
"$PY" "$FIXTURE" many "$PORT" "$TMP/many.tsv" 20
$S3TOOL put "$TMP/many.tsv" s3://flam-test/tables/many.tsv

write_config "$TMP/local.yaml" "$TMP/many.tsv" "$TMP/local" "samples_per_shard: 5"
"$FLAM" shard --config "$TMP/local.yaml" 2>"$TMP/local.log" || { cat "$TMP/local.log"; exit 1; }

write_config "$TMP/s3.yaml" "s3://flam-test/tables/" "s3://flam-test/shards" "samples_per_shard: 5"
"$FLAM" shard --config "$TMP/s3.yaml" 2>"$TMP/s3.log" || { cat "$TMP/s3.log"; exit 1; }
$S3TOOL get-prefix s3://flam-test/shards/ "$TMP/fetched"
same_shards "$TMP/local" "$TMP/fetched"
[ "$(ls "$TMP"/fetched/*_stats.json | wc -l)" -eq 4 ]
[ -f "$TMP/fetched/sizes.json" ] && [ -f "$TMP/fetched/summary.json" ]
cmp <("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$TMP/local/sizes.json") \
  <("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])))' "$TMP/fetched/sizes.json")

# Resume: one listing finds the four shards done; a shard without its stats object is redone.
$S3TOOL rm s3://flam-test/shards/00002_stats.json
"$FLAM" shard --config "$TMP/s3.yaml" 2>"$TMP/s3_again.log" || { cat "$TMP/s3_again.log"; exit 1; }
grep -q "4 shards (3 done before)" "$TMP/s3_again.log" || { cat "$TMP/s3_again.log"; exit 1; }
rm -rf "$TMP/fetched" && $S3TOOL get-prefix s3://flam-test/shards/ "$TMP/fetched"
same_shards "$TMP/local" "$TMP/fetched"

# MMC4 documents from the bucket (read from a local copy) make the same shards as from disk.
"$PY" "$FIXTURE" mmc4 "$PORT" "$TMP/docs.jsonl"
$S3TOOL put "$TMP/docs.jsonl" s3://flam-test/mmc4/docs.jsonl
for where in "$TMP/docs.jsonl:$TMP/mmc4_local" "s3://flam-test/mmc4/docs.jsonl:$TMP/mmc4_s3"; do
  write_config "$TMP/mmc4.yaml" "${where%%:$TMP*}" "$TMP/${where##*:$TMP/}" "input_kind: mmc4" \
    "save_cols: []" "max_bad_row_fraction: 0.5"
  "$FLAM" shard --config "$TMP/mmc4.yaml" 2>"$TMP/mmc4.log" || { cat "$TMP/mmc4.log"; exit 1; }
done
same_shards "$TMP/mmc4_local" "$TMP/mmc4_s3"

# The read side: a shard and a brace pattern straight from the bucket.
"$FLAM" inspect shard "s3://flam-test/shards/00001.tar" >"$TMP/inspect.txt" 2>&1 ||
  { cat "$TMP/inspect.txt"; exit 1; }
"$FLAM" inspect shard "$TMP/local/00001.tar" >"$TMP/inspect_local.txt" 2>&1
diff <(sed 's#s3://flam-test/shards/##' "$TMP/inspect.txt") \
  <(sed "s#$TMP/local/##" "$TMP/inspect_local.txt")

# The loader reads the bucket's shards (a prefix listing) as it reads the local ones: the same
# batches, the shard names aside.
cut -f2 "$TMP/many.tsv" >"$TMP/corpus.txt"
spm_train --input="$TMP/corpus.txt" --model_prefix="$TMP/tok" --vocab_size=60 \
  --model_type=bpe --character_coverage=1.0 --minloglevel=2 >/dev/null 2>&1
batch_config() {  # batch_config FILE SHARDS
  cat >"$1" <<YAML
data:
  tokenizer: $TMP/tok.model
  image: {size: 32, flip: none}
  laion: {shards: ["$2"], batch_size: 4, seq_len: 16}
  loader: {threads: 1, prefetch_batches: 1, shuffle_buffer: 1}
YAML
}
batch_config "$TMP/batch_local.yaml" "$TMP/local/{00000..00003}.tar"
batch_config "$TMP/batch_s3.yaml" "s3://flam-test/shards/"
"$FLAM" inspect batch --config "$TMP/batch_local.yaml" --steps 3 --json >"$TMP/batch_local.jsonl" \
  2>"$TMP/batch_local.log" || { cat "$TMP/batch_local.log"; exit 1; }
"$FLAM" inspect batch --config "$TMP/batch_s3.yaml" --steps 3 --json >"$TMP/batch_s3.jsonl" \
  2>"$TMP/batch_s3.log" || { cat "$TMP/batch_s3.log"; exit 1; }
[ "$(wc -l <"$TMP/batch_s3.jsonl")" -ge 3 ] || { cat "$TMP/batch_s3.jsonl"; exit 1; }
diff <(sed "s#$TMP/local/##g" "$TMP/batch_local.jsonl") \
  <(sed 's#s3://flam-test/shards/##g' "$TMP/batch_s3.jsonl")

# A wrong secret: exit 2 (never retried), the S3 code named, the secret never printed.
WRONG=Wr0ngSecretThatMustNotAppearAnywhere
write_config "$TMP/denied.yaml" "s3://flam-test/tables/many.tsv" "s3://flam-test/denied" \
  "samples_per_shard: 5"
rc=0
AWS_SECRET_ACCESS_KEY=$WRONG "$FLAM" shard --config "$TMP/denied.yaml" >"$TMP/denied.out" \
  2>"$TMP/denied.err" || rc=$?
[ "$rc" -eq 2 ] || { echo "wrong secret: exit $rc"; cat "$TMP/denied.err"; exit 1; }
grep -q "SignatureDoesNotMatch" "$TMP/denied.err" || { cat "$TMP/denied.err"; exit 1; }
grep -q "s3://flam-test/tables/many.tsv" "$TMP/denied.err" || { cat "$TMP/denied.err"; exit 1; }
if grep -q -e "$WRONG" -e "$AWS_SECRET_ACCESS_KEY" "$TMP/denied.out" "$TMP/denied.err"; then
  echo "a secret was printed"; exit 1
fi

# A bucket that does not exist: exit 2, NoSuchBucket and the name.
write_config "$TMP/nobucket.yaml" "$TMP/many.tsv" "s3://no-such-bucket-here/shards" \
  "samples_per_shard: 5"
rc=0
"$FLAM" shard --config "$TMP/nobucket.yaml" >"$TMP/nobucket.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { echo "missing bucket: exit $rc"; cat "$TMP/nobucket.out"; exit 1; }
grep -q "NoSuchBucket" "$TMP/nobucket.out" || { cat "$TMP/nobucket.out"; exit 1; }
grep -q "s3://no-such-bucket-here/shards" "$TMP/nobucket.out" || { cat "$TMP/nobucket.out"; exit 1; }
echo "ok"
