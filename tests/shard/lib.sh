# Shared by the `flam shard` script tests: a scratch dir, the fixture files, a real HTTP server on
# 127.0.0.1 serving them, and a config writer. Source it; it sets FLAM, SRC, PY, TMP, PORT.
set -euo pipefail
FLAM=${FLAM_BIN:?}
SRC=${FLAM_SOURCE_DIR:?}
PY=${FLAM_PYTHON:-python3}  # the venv's (PIL)
FIXTURE="$SRC/tests/shard/fixture.py"
TMP=$(mktemp -d)
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

start_server() {
  "$PY" "$FIXTURE" files "$TMP/www"
  "$PY" "$SRC/tests/common/http_server.py" --root "$TMP/www" --port-file "$TMP/port" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 100); do [ -f "$TMP/port" ] && break; sleep 0.1; done
  PORT=$(cat "$TMP/port")
}

# write_config FILE INPUT OUTPUT_DIR [extra yaml lines for the shard: section...]
write_config() {
  local file=$1 input=$2 out=$3
  shift 3
  {
    echo "shard:"
    echo "  inputs: [\"$input\"]"
    echo "  output_dir: \"$out\""
    echo "  progress_seconds: 1"
    case " $* " in *" save_cols:"*) ;; *) echo "  save_cols: [expect, n]" ;; esac
    case " $* " in *" transform_threads:"*) ;; *) echo "  transform_threads: 2" ;; esac
    for line in "$@"; do echo "  $line"; done
    echo "  download:"
    echo "    connect_timeout_seconds: 2"
    echo "    total_timeout_seconds: 3"
    echo "    retries: 1"
    echo "    retry_backoff_seconds: 0.2"
    echo "    max_body_bytes: 2000000"
    echo "    concurrency: 16"
    echo "    per_host_connections: 8"
    echo "  transform:"
    echo "    min_image_size: 32"
    echo "    max_aspect_ratio: 4"
  } >"$file"
}

# same_shards DIR_A DIR_B: every tar and rows file identical, byte for byte, and no leftovers.
same_shards() {
  local a=$1 b=$2 f n=0
  for f in "$a"/*.tar "$a"/*.tar.zst "$a"/*_rows.jsonl; do
    [ -e "$f" ] || continue
    cmp "$f" "$b/$(basename "$f")" || { echo "differs: $(basename "$f")"; return 1; }
    n=$((n + 1))
  done
  [ "$(ls "$a" | grep -cv '_stats.json\|summary.json')" -eq "$(ls "$b" | grep -cv '_stats.json\|summary.json')" ] ||
    { echo "different file sets: $(ls "$a") vs $(ls "$b")"; return 1; }
  if ls "$b" | grep -q '\.tmp$'; then echo "leftover tmp files in $b"; return 1; fi
  echo "same: $n files"
}
