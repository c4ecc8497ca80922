#!/usr/bin/env bash
# Tar read from the page cache: a 1 GiB shard of jpg/txt/json samples read through TarReader
# (and, for the record, libarchive over the same ByteSource) against `cat FILE > /dev/null` in
# the same run, best of 5 each, interleaved. cat is timed as a whole process (it starts in about
# 1 ms); the readers time themselves from open to last byte, so the ~7 ms it takes the bench
# binary to load its 40-odd shared libraries (curl, libarchive, ...) is not counted as reading.
# Wall time is the figure; CPU time (user + sys) is printed too, as it is steadier on a busy
# machine. Goal: tar_read/cat >= 0.8.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
BIN="$BUILD/bench/tar/bench_tar_read"
[ -x "$BIN" ] || ninja -C "$BUILD" bench_tar_read > /dev/null
BYTES=${FLAM_BENCH_TAR_BYTES:-1073741824}
dir=$(mktemp -d "$BUILD/bench_tar.XXXXXX")
trap 'rm -rf "$dir"' EXIT
shard="$dir/shard.tar"
"$BIN" make "$shard" "$BYTES"
cat "$shard" > /dev/null  # warm the page cache

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }
TIMEFORMAT='%R %U %S'
cat_wall= cat_cpu= ours_wall= ours_cpu= la_wall= la_cpu=
for _ in 1 2 3 4 5; do
  read -r real user sys < <({ time cat "$shard" > /dev/null; } 2>&1)
  cat_wall=$(min "$real" "$cat_wall")
  cat_cpu=$(min "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$cat_cpu")
  read -r _ wall _ _ _ members _ cpu < <("$BIN" read "$shard")
  ours_wall=$(min "$wall" "$ours_wall")
  ours_cpu=$(min "$cpu" "$ours_cpu")
  read -r _ wall _ _ _ _ _ cpu < <("$BIN" libarchive "$shard")
  la_wall=$(min "$wall" "$la_wall")
  la_cpu=$(min "$cpu" "$la_cpu")
done
size=$(stat -c %s "$shard")
rate() { awk -v s="$size" -v t="$1" 'BEGIN { printf "%.0f", s / t / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "shard: $size bytes, $members members; best of 5"
echo "cat: $(rate "$cat_wall") MiB/s; TarReader: $(rate "$ours_wall") MiB/s;" \
     "libarchive: $(rate "$la_wall") MiB/s"
echo "cpu time: cat ${cat_cpu}s, TarReader ${ours_cpu}s, libarchive ${la_cpu}s;" \
     "tar_read/cat cpu ratio: $(ratio "$cat_cpu" "$ours_cpu")"
echo "libarchive/cat ratio: $(ratio "$cat_wall" "$la_wall")"
echo "tar_read/cat ratio: $(ratio "$cat_wall" "$ours_wall") (goal >= 0.8)"
