# Resharding 2 -> 3 -> 1 ranks: every world size rebuilds its slices from the flat layout and
# finds the exact values the previous world size saved, plus every old rank's loader state.
source "$(dirname "$0")/common.sh"
$MPI -np 2 "$TOOL" save --run "$WORK" --step 10 --scale 3
$MPI -np 3 "$TOOL" resume --run "$WORK" --expect-step 10 --scale 3 --then-save 20 | tee "$WORK/out3"
grep -q "LOADED step 10 from 2 ranks into 3: ok" "$WORK/out3" || fail "2 -> 3"
$MPI -np 1 "$TOOL" resume --run "$WORK" --expect-step 20 --scale 3 | tee "$WORK/out1"
grep -q "LOADED step 20 from 3 ranks into 1: ok" "$WORK/out1" || fail "3 -> 1"
"$PY" - "$WORK/checkpoints/step_00000020/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["world_size"] == 3 and len(m["files"]) == 3, m["files"]
assert all(b["padded_numel"] % 3 == 0 for b in m["layout"]["blocks"])
PY
echo PASS
