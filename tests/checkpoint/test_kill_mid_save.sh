# kill -9 during a checkpoint write: the ranks die while their background threads write
# step_20.tmp/. The previous checkpoint (step 10) must load, and the partial directory must be
# ignored and then cleaned.
source "$(dirname "$0")/common.sh"
$MPI -np 2 "$TOOL" save --run "$WORK" --step 10 --scale 5
set +e
$MPI -np 2 "$TOOL" save --run "$WORK" --step 20 --scale 2000 --kill-after-start
rc=$?
set -e
[ $rc -ne 0 ] || fail "the killed save exited 0"
[ -d "$WORK/checkpoints/step_00000020.tmp" ] || fail "no partial directory was left to test with"
[ ! -e "$WORK/checkpoints/step_00000020" ] || fail "a killed save was committed"
grep -qx step_00000010 "$WORK/checkpoints/latest" || fail "latest moved"
$MPI -np 2 "$TOOL" resume --run "$WORK" --expect-step 10 --scale 5 | tee "$WORK/out"
grep -q "LOADED step 10 from 2 ranks into 2: ok" "$WORK/out" || fail "previous checkpoint"
[ ! -e "$WORK/checkpoints/step_00000020.tmp" ] || fail "the partial directory was not cleaned"
echo PASS
