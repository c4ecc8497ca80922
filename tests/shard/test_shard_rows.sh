#!/usr/bin/env bash
# Issue #17 in `flam shard`: an invalid UTF-8 caption is counted invalid_utf8 and dropped, an
# unterminated TSV quote spoils only its own line (named in the rows file), a gzip
# Content-Encoding is decoded, a non-HTTP reply is a bad_response, a Content-Length lie is a
# truncation and a trickling server fails on the minimum average rate.
source "$(dirname "$0")/lib.sh"
start_server
base="http://127.0.0.1:$PORT"
{
  printf 'url\tcaption\texpect\tn\n'
  printf '%s\tgood\tsuccess\t0\n' "$base/f/a.jpg"
  printf '%s\tbad \xff\xfe caption\tinvalid_utf8\t1\n' "$base/f/a.jpg"
  printf '%s\t"open quote\tbad_row\t2\n' "$base/f/a.jpg"
  printf '%s\tafter the quote\tsuccess\t3\n' "$base/f/a.jpg"
  printf '%s\tgzip\tsuccess\t4\n' "$base/x/gzip/f/a.jpg"
  printf '%s\tgarbage\tbad_response\t5\n' "$base/x/garbage/f/a.jpg"
  printf '%s\tlie\ttruncated\t6\n' "$base/x/lie=1000/f/a.jpg"
  printf '%s\ttrickle\ttoo_slow\t7\n' "$base/x/trickle=50/f/a.jpg"
} >"$TMP/rows.tsv"
# One row of eight is malformed on purpose: above the default bad-row guard (10%).
write_config "$TMP/c.yaml" "$TMP/rows.tsv" "$TMP/out" "samples_per_shard: 100" "max_bad_row_fraction: 0.5"
sed -i 's/^    total_timeout_seconds: 3$/    total_timeout_seconds: 30\n    min_average_bytes_per_second: 1000\n    min_average_grace_seconds: 1/' "$TMP/c.yaml"
timeout 120 "$FLAM" shard --config "$TMP/c.yaml" 2>"$TMP/log" || { cat "$TMP/log"; exit 1; }
"$PY" - "$TMP/out" <<'PY'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(out + "/00000_rows.jsonl")]
want = ["success", "invalid_utf8", "bad_row", "success", "success", "bad_response", "truncated",
        "too_slow"]
got = [r["status"] if r["status"] == "success" else r["reason"] for r in rows]
assert got == want, (got, rows)
assert rows[2]["message"] == "line 4: unterminated quote", rows[2]
assert rows[1]["message"] == "line 3: the caption is not UTF-8", rows[1]
stats = json.load(open(out + "/00000_stats.json"))
for reason in ("invalid_utf8", "bad_row", "bad_response", "truncated", "too_slow"):
    assert stats["reasons"].get(reason) == 1, (reason, stats["reasons"])
assert stats["successes"] == 3, stats
PY
echo "shard rows ok"
