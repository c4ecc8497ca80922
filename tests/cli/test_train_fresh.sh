# flam train --fresh: refused (exit 2, naming the step it would resume from) on a run directory
# that holds a committed checkpoint; let through where there is none; and without --fresh the
# same directory is not refused (it would resume). The data list points at a missing shard, so
# a run let through stops at the data check (exit 2, an error naming a data.* key) instead of
# training.
set -euo pipefail
FLAM=${FLAM_BIN:?}
SRC=${FLAM_SOURCE_DIR:?}
W=$(mktemp -d /tmp/flam_cli_fresh.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
train() {
  set +e
  "$FLAM" train --config "$SRC/configs/tiny.yaml" --set run.dir="$W/run" \
    --set "data.laion.shards=[$W/missing/{000..001}.tar]" "$@" >"$W/out" 2>"$W/err"
  rc=$?
  set -e
}

mkdir -p "$W/run/checkpoints/step_00000010" "$W/run/checkpoints/step_00000020.tmp"
echo '{}' >"$W/run/checkpoints/step_00000010/manifest.json"
train --fresh
[ "$rc" -eq 2 ] || { cat "$W/err"; fail "--fresh over a checkpoint: exit $rc, not 2"; }
grep -q "would resume from step 10" "$W/err" || { cat "$W/err"; fail "no 'would resume from step 10'"; }

train
grep -q "\-\-fresh" "$W/err" && { cat "$W/err"; fail "refused without --fresh"; }

rm -rf "$W/run/checkpoints/step_00000010"
train --fresh
grep -q "would resume" "$W/err" && { cat "$W/err"; fail "--fresh refused with no checkpoint"; }
grep -q "error: data\." "$W/err" || { cat "$W/err"; fail "did not reach the data check"; }
echo PASS
