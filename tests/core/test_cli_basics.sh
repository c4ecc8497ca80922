#!/usr/bin/env bash
# flam --help, subcommand help, config show, and one-line config errors with exit code 2.
set -euo pipefail
FLAM=${FLAM_BIN:?}
ROOT=${FLAM_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$FLAM" --help | grep "subcommands:" >/dev/null
for sub in shard inspect train submit status watch export parity config cancel; do
  "$FLAM" $sub --help | grep "usage:" >/dev/null || { echo "no help for $sub"; exit 1; }
done

"$FLAM" config show --config "$ROOT/configs/of-9b.yaml" > "$tmp/resolved.yaml"
grep -q "ffn_dim: 11008" "$tmp/resolved.yaml"
grep -q "lr: 0.0001" "$tmp/resolved.yaml"
# The resolved config is itself a valid config that resolves to the same text.
"$FLAM" config show --config "$tmp/resolved.yaml" | cmp - "$tmp/resolved.yaml"

printf 'train:\n  optimizer:\n    lr: -1\n' > "$tmp/bad.yaml"
set +e
out=$("$FLAM" config show --config "$tmp/bad.yaml" 2>&1); rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc"; exit 1; }
[ "$(echo "$out" | wc -l)" -eq 1 ] || { echo "expected one line: $out"; exit 1; }
echo "$out" | grep -q "bad.yaml:3: train.optimizer.lr: must be > 0 (got -1)"

# Issue #17: each of these is exit 2 with one line naming the file, line, key or --set argument.
expect_usage() {  # expect_usage WANT_TEXT COMMAND...
  local want=$1 out rc
  shift
  set +e
  out=$("$@" 2>&1); rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc from $*: $out"; exit 1; }
  echo "$out" | grep -qF -- "$want" || { echo "expected '$want' from $*, got: $out"; exit 1; }
}
printf 'train:\n  steps: 1\n  steps: 2\n' > "$tmp/dup.yaml"
expect_usage "dup.yaml:3: train.steps: duplicate key (first at line 2)" \
  "$FLAM" config show --config "$tmp/dup.yaml"
mkdir -p "$tmp/confdir"
expect_usage "$tmp/confdir: is a directory" "$FLAM" config show --config "$tmp/confdir"
expect_usage "--set data.image.size=100000: data.image.size: must be in [1, 4096]" \
  "$FLAM" config show --set data.image.size=100000
expect_usage "--set data.laion.shards=[a, {b: data.laion.shards: cannot parse value" \
  "$FLAM" config show --set 'data.laion.shards=[a, {b'
"$FLAM" config show --set 'data.laion.shards=[/data/laion2b/{00000..23134}.tar]' \
  | grep -F -- "- /data/laion2b/{00000..23134}.tar" >/dev/null
python3 -c "print('train:' + ' [' * 3000)" > "$tmp/deep.yaml"
expect_usage "nesting deeper than the YAML parser's limit" "$FLAM" config show --config "$tmp/deep.yaml"
mkdir -p "$tmp/tokdir"
printf 'data:\n  tokenizer: %s\n  laion:\n    shards: [%s/none.tar]\n' "$tmp/tokdir" "$tmp" > "$tmp/tok.yaml"
expect_usage "data.tokenizer: is a directory" "$FLAM" inspect batch --config "$tmp/tok.yaml"
# flam submit checks what the job would check on start, before sbatch and before the run dir.
printf 'run:\n  dir: %s/run1\ndata:\n  tokenizer: %s/nope.model\n' "$tmp" "$tmp" > "$tmp/sub.yaml"
expect_usage "data.tokenizer: tokenizer model does not exist" "$FLAM" submit --config "$tmp/sub.yaml"
[ ! -e "$tmp/run1" ] || { echo "flam submit created the run dir of a config it refused"; exit 1; }
echo "cli basics ok"
