#!/usr/bin/env bash
# flam status RUN --plot OUT.svg on a run dir with a job chain and metrics that restart: the SVG
# is well-formed XML with one curve per loss, learning rate, gradient norm, tokens/s, images/s,
# data wait and checkpoint stall, throughput axes from 0, checkpoint markers, a restart marker
# with the steps it lost, a wall-clock axis, tick labels and legends; --json carries the newest
# step and checkpoint. No Slurm needed.
set -euo pipefail
FLAM="${FLAM_BIN:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
run="$tmp/run"
mkdir -p "$run/checkpoints/step_00000030" "$run/jobs"
echo '{}' >"$run/checkpoints/step_00000030/manifest.json"
cat >"$run/state.json" <<'JSON'
{"version": 1, "status": "completed", "kind": "train", "explanation": "job 12 completed",
 "restarts": 1,
 "jobs": [{"id": "11", "state": "FAILED", "exit_code": 137, "step_at_submit": -1,
           "step_at_end": 47, "decision": "job 11 ended FAILED with exit code 137: failed after progress; resubmitting"},
          {"id": "12", "state": "COMPLETED", "exit_code": 0, "step_at_submit": 47,
           "step_at_end": 80, "decision": "job 12 completed"}]}
JSON
python3 - "$run/metrics.jsonl" <<'PY'
import json, math, sys
with open(sys.argv[1], "w") as f:
    for step in list(range(1, 48)) + list(range(31, 81)):
        f.write(json.dumps({"step": step, "loss_laion": 4 * math.exp(-step / 30) + 1.2,
                            "loss_mmc4": 5 * math.exp(-step / 40) + 1.6,
                            "tokens_per_s": 5200 + 300 * math.sin(step / 5),
                            "images_per_s": 900 + 50 * math.cos(step / 7),
                            "samples_per_s": 160.0, "lr": 1e-4 * min(1, step / 10),
                            "grad_norm": 2 / (1 + step / 20), "data_wait": 0.01,
                            "checkpoint_stall": 0.4 if step % 15 == 1 and step > 1 else 0.0,
                            "wall_time": 1.7e9 + 60 * step}) + "\n")
    f.write('{"step": 81, "loss_la')  # a torn last line, as after a crash
PY
"$FLAM" status "$run" --plot "$tmp/run.svg" | tee "$tmp/status.txt"
grep -q "completed, 2 job(s), 1 restart(s)" "$tmp/status.txt"
grep -q "newest checkpoint: step 30" "$tmp/status.txt"
grep -q "137" "$tmp/status.txt"
"$FLAM" status "$run" --json >"$tmp/status.json"
python3 - "$tmp/status.json" "$tmp/run.svg" <<'PY'
import json, sys, xml.etree.ElementTree as ET
s = json.load(open(sys.argv[1]))
assert s["step"] == 80 and s["newest_checkpoint_step"] == 30 and s["restarts"] == 1, s
assert abs(s["metrics"]["samples_per_s"] - 160.0) < 1e-9, s
SVG = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[2]).getroot()  # raises on malformed XML
assert root.tag == SVG + "svg", root.tag
curves = {p.get("data-name"): p.get("points").split() for p in root.iter(SVG + "polyline")}
assert set(curves) == {"laion loss", "mmc4 loss", "lr", "grad norm", "tokens/s", "images/s",
                       "data wait", "checkpoint stall"}, curves.keys()
for name, pts in curves.items():
    assert len(pts) == 80, (name, len(pts))  # steps 1..80, the resumed rows replace 31..47
    xs = [float(p.split(",")[0]) for p in pts]
    assert xs == sorted(xs), name
texts = [t.text or "" for t in root.iter(SVG + "text")]
for label in ["step", "loss", "learning rate", "gradient norm", "throughput (tokens/s)",
              "images/s", "seconds per logged step", "wall clock (h:mm since the first step)"]:
    assert label in texts, (label, texts)
# The resumed job redid steps 31..47: 17 steps lost, on the one restart label.
assert [t for t in texts if t.startswith("restart @")] == ["restart @31, 17 steps lost"], texts
panels = [g for g in root.iter(SVG + "g") if g.get("class") == "panel"]
assert len(panels) == 6
assert sum(1 for l in root.iter(SVG + "line") if l.get("class") == "restart") == 6
# Saves after steps 15, 30, ..., 75 of the final trajectory (their stall is on the next row).
marks = [l for l in root.iter(SVG + "line") if l.get("class") == "checkpoint"]
assert len(marks) == 5, len(marks)
lr = curves["lr"]
x_of = {step: float(lr[step - 1].split(",")[0]) for step in (15, 75)}
assert abs(float(marks[0].get("x1")) - x_of[15]) < 0.05, (marks[0].get("x1"), x_of)
assert abs(float(marks[-1].get("x1")) - x_of[75]) < 0.05, (marks[-1].get("x1"), x_of)
for g in panels:
    labels = [t.text for t in g.iter(SVG + "text")]
    if "throughput (tokens/s)" in labels or "images/s" in labels:
        assert "0" in labels, labels  # throughput axes start at 0
wall = [t.text for t in root.iter(SVG + "text") if t.get("class") == "wall"]
assert wall[0] == "0:09" and wall[-1] == "1:19", wall  # 60 s per step; ticks at 10, ..., 80
assert len([t for t in texts if t.replace(".", "").replace("k", "").isdigit()]) >= 10, texts
print("svg ok:", {k: len(v) for k, v in curves.items()})
PY
# --smooth 5: every curve faint under its trailing mean; a short run's wall axis in m:ss.
"$FLAM" status "$run" --plot "$tmp/smooth.svg" --smooth 5 >/dev/null
python3 - "$tmp/smooth.svg" <<'PY'
import sys, xml.etree.ElementTree as ET
SVG = "{http://www.w3.org/2000/svg}"
lines = list(ET.parse(sys.argv[1]).getroot().iter(SVG + "polyline"))
raw = [p for p in lines if p.get("class") == "series"]
smoothed = [p for p in lines if p.get("class") == "smoothed"]
assert len(raw) == 8 and len(smoothed) == 7, (len(raw), len(smoothed))  # lr is not smoothed
assert "lr" not in {p.get("data-name") for p in smoothed}
assert all(p.get("stroke-opacity") == "0.3" for p in raw if p.get("data-name") != "lr")
ys = [float(p.split(",")[1]) for p in smoothed[0].get("points").split()]
assert len(ys) == 80
PY
python3 - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.endswith("\n")]
with open(sys.argv[1], "w") as f:
    for r in rows:
        r["wall_time"] = 1.7e9 + 2 * r["step"]
        f.write(json.dumps(r) + "\n")
PY
"$FLAM" status "$run" --plot "$tmp/short.svg" >/dev/null
grep -q "wall clock (m:ss since the first step)" "$tmp/short.svg"
grep -q '>2:38<' "$tmp/short.svg"  # step 80: 158 s after step 1
# A run of seconds: its wall axis in seconds (tenths), every label distinct; small values (a
# learning rate of 1e-4) as short tick labels.
python3 - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.endswith("\n")]
with open(sys.argv[1], "w") as f:
    for r in rows:
        r["wall_time"] = 1.7e9 + 0.05 * r["step"]
        r["lr"] = 1e-4 * min(1.0, r["step"] / 40)
        f.write(json.dumps(r) + "\n")
PY
"$FLAM" status "$run" --plot "$tmp/seconds.svg" >/dev/null
python3 - "$tmp/seconds.svg" <<'PY'
import sys, xml.etree.ElementTree as ET
SVG = "{http://www.w3.org/2000/svg}"
texts = [t.text for t in ET.parse(sys.argv[1]).getroot().iter(SVG + "text")]
wall = [t.text for t in ET.parse(sys.argv[1]).getroot().iter(SVG + "text")
        if t.get("class") == "wall"]
assert "wall clock (s since the first step)" in texts, texts
values = [float(w) for w in wall]  # ticks at steps 10, ..., 80: 0.45 ... 3.95 s
assert len(values) > 3 and values == sorted(set(values)) and 3.8 <= values[-1] <= 4.0, wall
assert "1e-4" in texts and not [t for t in texts if t.startswith("0.000")], texts
PY
echo "OK"
