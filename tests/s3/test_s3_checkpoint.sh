#!/usr/bin/env bash
# Checkpoints in s3:// (train.checkpoint.dir), against moto behind the fault proxy (run under
# with_s3.py --proxy): a committed save is manifest + latest in the bucket; kill -9 of a rank
# while its rank file upload hangs leaves no manifest and `latest` unmoved; the resume takes the
# last committed step and cleans the partial one; saves after it, and a resharded resume from a
# fresh run directory, finish with rank files byte-identical to the same saves on local disk.
# $1: ckpt_tool (tests/checkpoint) with --dir, keep 2, one attempt per save.
set -euo pipefail
TOOL=$1
OPTS="--keep 2 --max-failed 1"
MPI="${MPIEXEC:-mpirun} --oversubscribe --bind-to none"
PY=${FLAM_PYTHON:-python3}
S3TOOL="$PY ${FLAM_SOURCE_DIR:?}/tests/s3/s3tool.py"
WORK=$(mktemp -d /tmp/flam_s3_ckpt.XXXXXX)
JOB=
cleanup() {
  if [ -n "$JOB" ]; then kill -9 "$JOB" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
DIR=s3://flam-test/run1/checkpoints

# The same saves on local disk: steps 10, 20, 30.
for s in 10 20 30; do
  $MPI -np 2 "$TOOL" save $OPTS --run "$WORK/local" --dir "$WORK/local/ckpt" --step $s \
    --scale 40 >/dev/null
done

$MPI -np 2 "$TOOL" save $OPTS --run "$WORK/run" --dir "$DIR" --step 10 --scale 40 | grep -q "committed"
$S3TOOL ls s3://flam-test/run1/checkpoints/ >"$WORK/ls1"
grep -qx "run1/checkpoints/step_00000010/manifest.json" "$WORK/ls1" || fail "no manifest"
grep -qx "run1/checkpoints/latest" "$WORK/ls1" || fail "no latest"

# kill -9 of rank 1 while its rank file upload hangs in the proxy.
echo "hold_put 1 rank_00001" >"$FLAM_S3_FAULTS"
$MPI -np 2 "$TOOL" save $OPTS --run "$WORK/run" --dir "$DIR" --step 20 --scale 40 --async \
  >"$WORK/killed.log" 2>&1 &
JOB=$!
for _ in $(seq 300); do [ -e "$FLAM_S3_FAULTS.held" ] && break; sleep 0.1; done
[ -e "$FLAM_S3_FAULTS.held" ] || fail "the upload never reached the proxy"
victim=
for p in $(pgrep -P "$JOB"); do
  if tr '\0' '\n' </proc/"$p"/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
    victim=$p
  fi
done
[ -n "$victim" ] || fail "no rank 1 process"
kill -9 "$victim"
if wait "$JOB"; then fail "the job survived a dead rank"; fi
JOB=
echo "" >"$FLAM_S3_FAULTS"
$S3TOOL ls s3://flam-test/run1/checkpoints/ >"$WORK/ls2"
if grep -q "step_00000020/manifest.json" "$WORK/ls2"; then fail "a killed save was committed"; fi
$PY - "$WORK" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
latest = s3.get_object(Bucket="flam-test", Key="run1/checkpoints/latest")["Body"].read()
assert latest == b"step_00000010\n", latest
PY

# Resume: the last committed step; the partial step 20 is removed from the bucket.
$MPI -np 2 "$TOOL" resume $OPTS --run "$WORK/run" --dir "$DIR" --expect-step 10 --scale 40 \
  --then-save 20 | tee "$WORK/resume.log"
grep -q "LOADED step 10 from 2 ranks into 2: ok (from s3://flam-test/run1/checkpoints/step_00000010)" \
  "$WORK/resume.log" || fail "resume"
$MPI -np 2 "$TOOL" save $OPTS --run "$WORK/run" --dir "$DIR" --step 30 --scale 40 | grep -q committed

# A fresh run directory (another node, no local cache) reshards from the bucket onto 3 ranks.
$MPI -np 3 "$TOOL" resume $OPTS --run "$WORK/fresh" --dir "$DIR" --expect-step 30 --scale 40 |
  tee "$WORK/fresh.log"
grep -q "LOADED step 30 from 2 ranks into 3" "$WORK/fresh.log" || fail "resharded resume"

# keep: 2 leaves steps 20 and 30; their rank files equal the local run's, byte for byte.
$S3TOOL get-prefix s3://flam-test/run1/checkpoints/ "$WORK/fetched"
[ ! -e "$WORK/fetched/step_00000010" ] || fail "step 10 was not pruned"
for s in 00000020 00000030; do
  for r in 00000 00001; do
    cmp "$WORK/fetched/step_$s/rank_$r.bin" "$WORK/local/ckpt/step_$s/rank_$r.bin" ||
      fail "step $s rank $r differs from the local run"
  done
done
echo PASS
