#!/usr/bin/env bash
# One flam watch per run (RUN/watch.lock, orchestrator/watch_lock.h), without Slurm:
#   - a lock held by a live process with a fresh heartbeat: a second watch exits 2 saying
#     "watched by pid N ... since T", and status says who watches;
#   - a lock whose pid is dead, or whose heartbeat is old: stale, the watch takes it over (the run
#     here is completed, so the watch ends at once, exit 0) and removes it when it ends;
#   - a submitted run with no fresh heartbeat: status says "unsupervised".
set -euo pipefail
FLAM=${FLAM_BIN:?}
W=$(mktemp -d /tmp/flam_watch_lock.XXXXXX)
holder=""
trap '[[ -n $holder ]] && kill "$holder" 2>/dev/null; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
RUN=$W/run
mkdir -p "$RUN"
"$FLAM" config show --set run.dir="$RUN" --set slurm.poll_seconds=1 >"$RUN/config.yaml"
state() {
  printf '{"version": 1, "status": "%s", "kind": "train", "jobs": [{"id": "99999999"}]}\n' "$1" \
    >"$RUN/state.json"
}
lock() {  # lock PID HEARTBEAT_UNIX
  printf '{"pid": %s, "host": "%s", "since": "2026-01-01T00:00:00Z", "heartbeat": "x", "heartbeat_unix": %s}\n' \
    "$1" "$(hostname)" "$2" >"$RUN/watch.lock"
}
now=$(date +%s)

state completed
sleep 300 &
holder=$!
lock "$holder" "$now"
set +e
"$FLAM" watch "$RUN" >"$W/out" 2>"$W/err"
rc=$?
set -e
[[ $rc == 2 ]] || { cat "$W/out" "$W/err"; fail "second watch: exit $rc, not 2"; }
grep -q "is watched by pid $holder on $(hostname) since 2026-01-01T00:00:00Z" "$W/err" ||
  { cat "$W/err"; fail "no 'watched by pid'"; }
[[ -f $RUN/watch.lock ]] || fail "the refused watch removed the live lock"
state running
"$FLAM" status "$RUN" >"$W/status"
grep -q "watched by pid $holder" "$W/status" || { cat "$W/status"; fail "status: not watched"; }
"$FLAM" status "$RUN" --json | grep -q '"supervised": true' || fail "status --json supervised"

# A live pid with an old heartbeat (a hung watch) is stale too.
lock "$holder" $((now - 3600))
"$FLAM" status "$RUN" >"$W/status"
grep -q "unsupervised: no flam watch heartbeat" "$W/status" || { cat "$W/status"; fail "status: hung"; }

kill "$holder"
wait "$holder" 2>/dev/null || true
dead=$holder
holder=""
lock "$dead" "$now"
"$FLAM" status "$RUN" >"$W/status"
grep -q "unsupervised" "$W/status" || { cat "$W/status"; fail "status with a dead watch"; }
state completed
"$FLAM" watch "$RUN" >"$W/out" 2>"$W/err" || { cat "$W/err"; fail "watch over a stale lock failed"; }
[[ ! -e $RUN/watch.lock ]] || fail "the watch left its lock behind"
grep -q "watch started" "$RUN/orchestrator.log" || fail "the watch did not start"
echo PASS
