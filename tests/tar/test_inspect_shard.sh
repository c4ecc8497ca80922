#!/usr/bin/env bash
# flam inspect shard: text and --json listings of a shard made by Python's tarfile, over a path
# and over http; a truncated shard prints what it could and exits 5 (kExitDataError).
set -euo pipefail
FLAM=${FLAM_BIN:?}
ROOT=${FLAM_SOURCE_DIR:?}
tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

python3 - "$tmp/s.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, size in [("0000.jpg", 1234), ("0000.txt", 5), ("0001.jpg", 99),
                       ("0001.JSON", 7), ("dir/0002.seg.png", 4000)]:
        info = tarfile.TarInfo(name)
        info.size = size
        t.addfile(info, io.BytesIO(b"x" * size))
PY

"$FLAM" inspect shard "$tmp/s.tar" > "$tmp/out.txt"
cat > "$tmp/want.txt" <<'TXT'
0000 jpg:1234 txt:5
0001 jpg:99 json:7
dir/0002 seg.png:4000
summary: samples 3 members 5 bytes 5345 errors 0 duplicate_keys 0 dropped_members 0
TXT
diff "$tmp/want.txt" "$tmp/out.txt"

"$FLAM" inspect shard "$tmp/s.tar" --json > "$tmp/out.jsonl"
python3 - "$tmp/out.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0] == {"key": "0000", "members": {"jpg": 1234, "txt": 5}}, lines[0]
assert lines[2] == {"key": "dir/0002", "members": {"seg.png": 4000}}, lines[2]
s = lines[-1]["summary"]
assert (s["samples"], s["members"], s["bytes"], s["errors"]) == (3, 5, 5345, 0), s
PY

# Truncated inside the last member: the first samples, then an error; exit 5.
head -c 3000 "$tmp/s.tar" > "$tmp/cut.tar"
set +e
"$FLAM" inspect shard "$tmp/cut.tar" --json > "$tmp/cut.jsonl" 2> "$tmp/cut.err"; rc=$?
set -e
[ "$rc" -eq 5 ] || { echo "expected exit 5, got $rc"; cat "$tmp/cut.err"; exit 1; }
grep -q "cut.tar: offset" "$tmp/cut.err"
python3 - "$tmp/cut.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[-1]["summary"]
assert s["errors"] == 1 and "truncated" in s["error"], s
PY

# Over http, and a 404.
python3 "$ROOT/tests/common/http_server.py" --root "$tmp" --port-file "$tmp/port" > /dev/null &
server=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$tmp/port")"
"$FLAM" inspect shard "$url/f/s.tar" | diff "$tmp/want.txt" -
set +e
"$FLAM" inspect shard "$url/x/status=404/f/s.tar" > /dev/null 2> "$tmp/404.err"; rc=$?
set -e
[ "$rc" -eq 5 ] || { echo "expected exit 5 for 404, got $rc"; exit 1; }
grep -q "http status 404" "$tmp/404.err"

# Issue #17: a server trickling above curl's low-speed limit no longer holds the command: the
# minimum average rate of data.stream fails it, naming the URL and the key (timeout: a hang guard).
trickle="$url/x/trickle=50/f/s.tar"
set +e
timeout 120 "$FLAM" inspect shard "$trickle" --set data.stream.min_average_grace_seconds=1 \
  --set data.stream.min_average_bytes_per_second=1000 > /dev/null 2> "$tmp/trickle.err"; rc=$?
set -e
[ "$rc" -eq 5 ] || { echo "expected exit 5 for a trickle, got $rc"; cat "$tmp/trickle.err"; exit 1; }
grep -qF "$trickle" "$tmp/trickle.err"
grep -q "data.stream.min_average_bytes_per_second" "$tmp/trickle.err"
echo "inspect shard ok"
