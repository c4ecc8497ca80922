# flam inspect checkpoint and flam export on a checkpoint written by 3 ranks: the consolidated
# weights in .safetensors (parsed here from the spec) and .pt (read by PyTorch's torch.load)
# equal the synthetic values; a flipped byte makes inspect say "not resumable" and export refuse.
source "$(dirname "$0")/common.sh"
FLAM=${FLAM_BIN:?}
$MPI -np 3 "$TOOL" save --run "$WORK" --step 4 --scale 2
"$FLAM" inspect checkpoint "$WORK" | tee "$WORK/inspect.txt"
grep -q "^resumable   yes" "$WORK/inspect.txt" || fail "inspect"
"$FLAM" inspect checkpoint "$WORK/checkpoints/step_00000004" --json > "$WORK/inspect.json"
"$FLAM" export --checkpoint "$WORK" --out "$WORK/w.safetensors"
"$FLAM" export --checkpoint "$WORK/checkpoints/step_00000004" --out "$WORK/w.pt"
"$PY" - "$WORK" <<'PY'
import json, struct, sys
import numpy as np
import torch
work = sys.argv[1]
assert json.load(open(work + "/inspect.json"))["resumable"] is True
m = json.load(open(work + "/checkpoints/step_00000004/manifest.json"))
def expected(b, block, param, step=4):
    i = np.arange(param["offset"], param["offset"] + param["numel"], dtype=np.int64)
    v = ((i * 7 + b * 13 + 0 * 5 + step * 3) % 1009).astype(np.float32) * np.float32(0.25)
    return v.reshape(param["shape"])
raw = open(work + "/w.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
pt = torch.load(work + "/w.pt")
count = 0
for b, block in enumerate(m["layout"]["blocks"]):
    for p in block["params"]:
        want = expected(b, block, p)
        h = header[p["name"]]
        assert h["dtype"] == "F32" and h["shape"] == p["shape"], (p["name"], h)
        s, e = h["data_offsets"]
        got = np.frombuffer(raw[8 + n + s:8 + n + e], dtype="<f4").reshape(p["shape"])
        assert np.array_equal(got, want), p["name"]
        assert np.array_equal(pt[p["name"]].numpy(), want), p["name"]
        count += 1
assert count == len(pt) == len([k for k in header if k != "__metadata__"])
print("export ok:", count, "tensors")
PY
"$PY" - "$WORK/checkpoints/step_00000004/rank_00002.bin" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); f.seek(-5, 2); c = f.read(1); f.seek(-5, 2)
f.write(bytes([c[0] ^ 0x40])); f.close()
PY
set +e
"$FLAM" inspect checkpoint "$WORK" > "$WORK/inspect2.txt"
rc=$?
"$FLAM" export --checkpoint "$WORK" --out "$WORK/bad.pt" 2> "$WORK/export2.txt"
rc2=$?
set -e
cat "$WORK/inspect2.txt" "$WORK/export2.txt"
[ $rc -eq 5 ] || fail "inspect of a corrupt checkpoint exited $rc, want 5"
grep -q "^resumable   no: .*rank_00002.bin" "$WORK/inspect2.txt" || fail "corruption not named"
[ $rc2 -eq 5 ] || fail "export of a corrupt checkpoint exited $rc2, want 5"
[ ! -e "$WORK/bad.pt" ] || fail "export wrote a file from a corrupt checkpoint"
echo PASS
