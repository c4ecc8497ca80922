#!/usr/bin/env bash
# flam --help, subcommand help, config show, and one-line config errors with exit code 2.
set -euo pipefail
FLAM=${FLAM_BIN:?}
ROOT=${FLAM_SOURCE_DIR:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$FLAM" --help | grep -q "subcommands:"
for sub in shard inspect train submit status watch export parity config cancel; do
  "$FLAM" $sub --help | grep -q "usage:" || { echo "no help for $sub"; exit 1; }
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
echo "cli basics ok"
