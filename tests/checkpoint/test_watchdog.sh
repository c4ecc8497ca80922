# The watchdog ends a job whose rank stopped (SIGSTOP) or died (kill -9) within its timeout plus a
# few seconds, naming the silent rank (stop) and exiting with the peer-failure code 4. After
# kill -9, mpirun itself may notice first; either way the job must end, not hang. Then the Slurm
# case: a stopped rank plus SIGTERM to the others ends the job within seconds, not the timeout.
source "$(dirname "$0")/common.sh"
for mode in stop kill; do
  start=$(date +%s)
  set +e
  timeout 60 $MPI -np 3 "$TOOL" watchdog --timeout 3 --victim 1 --mode $mode > "$WORK/$mode.log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - start ))
  cat "$WORK/$mode.log"
  echo "mode $mode: exit $rc after $took s"
  [ $rc -ne 124 ] || fail "$mode: the job hung"
  [ $rc -ne 0 ] || fail "$mode: the job exited 0"
  if [ $mode = stop ]; then
    [ $rc -eq 4 ] || fail "stop: exit $rc, want 4"
    grep -q "watchdog: rank 1 (host .*) silent" "$WORK/$mode.log" || fail "silent rank not named"
  fi
done
# A rank stops and Slurm then ends the step with SIGTERM (srun --kill-on-bad-exit): the others
# cannot reach a step boundary to checkpoint, so a few seconds of silence after the stop signal
# end the job, long before the 120 s timeout (the 60 s `timeout` is only the hang guard).
set +e
timeout 60 $MPI -np 3 "$TOOL" watchdog --timeout 120 --victim 1 --mode stop-term \
  > "$WORK/stopterm.log" 2>&1
rc=$?
set -e
cat "$WORK/stopterm.log"
[ $rc -ne 124 ] || fail "stop-term: the job waited for the full timeout"
[ $rc -eq 4 ] || fail "stop-term: exit $rc, want 4"
grep -q "watchdog: rank 1 .* after a stop signal" "$WORK/stopterm.log" || fail "stop-term: not named"
echo PASS
