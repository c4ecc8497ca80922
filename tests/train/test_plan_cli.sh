#!/usr/bin/env bash
# flam plan on the shipped OpenFlamingo-9B config: exit 0 and the per-GPU total when the run fits
# in 24 GiB on 8 and 4 ranks, exit 2 naming the keys to change when it does not (2 ranks).
set -euo pipefail
config="$FLAM_SOURCE_DIR/configs/of-9b.yaml"
for ranks in 8 4; do
  out=$("$FLAM_BIN" plan --config "$config" --ranks "$ranks" --gpu-memory 24GiB \
        --set train.shard_frozen=true)
  grep -q "^per-GPU total (peak): .* of 24.0 GiB: fits$" <<<"$out"
  grep -q "^mmc4: configured 16x256, .*; micro-batch 16 x grad_accum 1$" <<<"$out"
  grep -q "^laion: configured 32x32, .*; micro-batch 32 x grad_accum 1$" <<<"$out"
  grep -q "frozen weights (sharded)" <<<"$out"
  if grep -q "^with train.shard_frozen" <<<"$out"; then exit 1; fi
done
# Replicated frozen weights (the config as shipped): 8 ranks fit with MMC4 micro-batches of 8
# and two accumulation steps; the plan names what sharding them would need.
out=$("$FLAM_BIN" plan --config "$config" --ranks 8 --gpu-memory 24GiB)
grep -q "^mmc4: configured 16x256, .*; micro-batch 8 x grad_accum 2$" <<<"$out"
grep -q "^with train.shard_frozen: true: .* micro-batch laion 32 x 1 mmc4 16 x 1$" <<<"$out"
set +e
err=$("$FLAM_BIN" plan --config "$config" --ranks 2 --gpu-memory 24GiB 2>&1 >/dev/null)
rc=$?
set -e
[[ $rc -eq 2 ]] || { echo "expected exit 2, got $rc"; exit 1; }
grep -q "train.shard_frozen: true" <<<"$err"
set +e
"$FLAM_BIN" plan --config "$config" --gpu-memory 24parsecs >/dev/null 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || { echo "a bad size: expected exit 2, got $rc"; exit 1; }
echo ok
