# Resharding 16 -> 12 -> 5 ranks (tests/checkpoint/test_reshard.sh at scale): every world size
# rebuilds its slices of the parameters and of both AdamW moments from the flat layout and finds
# exactly the values the previous world size saved, plus every old rank's loader state.
source "$FLAM_SOURCE_DIR/tests/checkpoint/common.sh"
$MPI -np 16 "$TOOL" save --run "$WORK" --step 10 --scale 3
$MPI -np 12 "$TOOL" resume --run "$WORK" --expect-step 10 --scale 3 --then-save 20 | tee "$WORK/out12"
grep -q "LOADED step 10 from 16 ranks into 12: ok" "$WORK/out12" || fail "16 -> 12"
$MPI -np 5 "$TOOL" resume --run "$WORK" --expect-step 20 --scale 3 | tee "$WORK/out5"
grep -q "LOADED step 20 from 12 ranks into 5: ok" "$WORK/out5" || fail "12 -> 5"
"$PY" - "$WORK/checkpoints/step_00000020/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["world_size"] == 12 and len(m["files"]) == 12, m["files"]
assert all(b["padded_numel"] % 12 == 0 for b in m["layout"]["blocks"])
PY
echo PASS
