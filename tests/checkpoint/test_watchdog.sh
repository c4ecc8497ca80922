# The watchdog ends a job whose rank stopped (SIGSTOP) or died (kill -9) within its timeout plus a
# few seconds, naming the silent rank (stop) and exiting with the peer-failure code 4. After
# kill -9, mpirun itself may notice first; either way the job must end, not hang.
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
echo PASS
