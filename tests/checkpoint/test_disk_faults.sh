# Disk faults on a real file system: a 4 MiB tmpfs (disk full, ENOSPC) and then the same tmpfs
# remounted read-only (EROFS). A failed save leaves the previous checkpoint loadable; with
# max_failed_attempts 1 the save ends the job with exit code 6 (I/O error).
# Needs a private mount namespace (unshare -m, root): exits 77 (skipped) where there is none.
source "$(dirname "$0")/common.sh"
if [ "${FLAM_IN_NAMESPACE:-}" != 1 ]; then
  unshare -m true 2>/dev/null || { echo "SKIP: no mount namespace"; exit 77; }
  mkdir -p "$WORK/fs"
  FLAM_IN_NAMESPACE=1 exec unshare -m bash "$0" "$TOOL" "$WORK/fs"
fi
RUN=$2
mount -t tmpfs -o size=4m tmpfs "$RUN" || { echo "SKIP: cannot mount tmpfs"; exit 77; }
$MPI -np 2 "$TOOL" save --run "$RUN" --step 1
set +e
$MPI -np 2 "$TOOL" save --run "$RUN" --step 2 --scale 2000 --max-failed 1 > "$WORK/full.log" 2>&1
rc=$?
set -e
cat "$WORK/full.log"
[ $rc -eq 6 ] || fail "disk full: exit $rc, want 6"
grep -q "No space left on device" "$WORK/full.log" || fail "ENOSPC not logged"
[ ! -e "$RUN/checkpoints/step_00000002.tmp" ] || fail "failed save not cleaned"
$MPI -np 2 "$TOOL" resume --run "$RUN" --expect-step 1 | grep -q "LOADED step 1 " || fail "full"
mount -o remount,ro "$RUN"
set +e
$MPI -np 2 "$TOOL" save --run "$RUN" --step 3 --max-failed 1 > "$WORK/ro.log" 2>&1
rc=$?
set -e
cat "$WORK/ro.log"
[ $rc -eq 6 ] || fail "read-only: exit $rc, want 6"
grep -q "Read-only file system" "$WORK/ro.log" || fail "EROFS not logged"
$MPI -np 2 "$TOOL" resume --run "$RUN" --expect-step 1 | grep -q "LOADED step 1 " || fail "ro"
umount "$RUN"
echo PASS
