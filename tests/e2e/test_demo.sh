#!/usr/bin/env bash
# Runs scripts/demo.sh with fewer steps into the build tree and checks its products: shards with
# stats, a run that got past the kill to the last step, evaluations at 0 and 4 shots every 30
# steps, a committed checkpoint, a well-formed SVG with curves.
set -euo pipefail
ROOT=${FLAM_SOURCE_DIR:?}
OUT=${FLAM_BUILD_DIR:?}/e2e-demo
rm -rf "$OUT/run" "$OUT/run.svg"
BUILD=$(realpath --relative-to="$ROOT" "$FLAM_BUILD_DIR")
DEMO_OUT="$OUT" DEMO_STEPS=60 DEMO_KILL_AT=25 DEMO_EVAL_EVERY=30 BUILD="$BUILD" \
  bash "$ROOT/scripts/demo.sh" \
  > "$OUT.log" 2>&1 || { tail -n 80 "$OUT.log"; exit 1; }
tail -n 25 "$OUT.log"
for kind in laion mmc4; do
  ls "$OUT/shards/$kind/"*.tar >/dev/null
  ls "$OUT/shards/$kind/"*_stats.json >/dev/null
done
"${FLAM_PYTHON:-python3}" - "$OUT" <<'PY'
import json, os, sys
import xml.etree.ElementTree as ET
out = sys.argv[1]
laion = json.load(open(os.path.join(out, "shards", "laion", "summary.json")))
assert laion["successes"] > 200, laion
assert laion["reasons"].get("http_404") == 4, laion["reasons"]
rows = [json.loads(l) for l in open(os.path.join(out, "run", "metrics.jsonl")) if l.strip()]
assert rows[-1]["step"] == 60, rows[-1]
steps = [r["step"] for r in rows]
assert any(b <= a for a, b in zip(steps, steps[1:])), "no restart visible in metrics: %s" % steps
evaluated = sorted({r["step"] for r in rows if "eval_coco_0shot" in r and "eval_coco_4shot" in r})
assert evaluated == [0, 30, 60], "evaluation at 0 and 4 shots at steps %s" % evaluated
ckpts = [c for c in os.listdir(os.path.join(out, "run", "checkpoints")) if c.startswith("step_")
         and not c.endswith(".tmp")]
assert ckpts, "no committed checkpoint"
svg = ET.parse(os.path.join(out, "run.svg")).getroot()
lines = [e for e in svg.iter() if e.tag.endswith("polyline") or e.tag.endswith("path")]
assert len(lines) >= 3, "expected loss and throughput curves, found %d" % len(lines)
print("demo e2e ok: %d metric lines, checkpoints %s" % (len(rows), sorted(ckpts)))
PY
