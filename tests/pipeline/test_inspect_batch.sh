#!/bin/bash
# `flam inspect batch` end to end: LAION and MMC4 shards written by Python (tarfile + PIL from
# the real photos), a tokenizer trained by spm_train, then the text output, the --json output
# (checked by Python) and the --png grid (read back by PIL).
set -euo pipefail
py=${1:-python3}  # a python3 with python3-pil
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" - "$tmp" "$FLAM_SOURCE_DIR/tests/data/photos" <<'EOF'
import base64, io, json, sys, tarfile
from PIL import Image

out, photos = sys.argv[1], sys.argv[2]
words = "the a photo of red cat dog on green grass blue sky with coffee cup rocket".split()
with open(out + "/corpus.txt", "w") as f:
    for i in range(400):
        f.write(" ".join(words[(i * 7 + k * 3) % len(words)] for k in range(5 + i % 7)) + " %d\n" % i)

def jpeg(i):
    im = Image.open(photos + ["/astronaut.png", "/coffee.png", "/chelsea.png"][i % 3]).convert("RGB")
    im = im.crop((i * 11, i * 7, i * 11 + 96, i * 7 + 80)).resize((48, 40), Image.BICUBIC)
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90)
    return b.getvalue()

def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))

with tarfile.open(out + "/laion-00000.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
    for i in range(6):
        key = "%05d%04d" % (0, i)
        add(tar, key + ".jpg", jpeg(i))
        caption = b"bad \xff caption" if i == 2 else ("a photo of the red cat %d" % i).encode()
        add(tar, key + ".txt", caption)
with tarfile.open(out + "/mmc4-00000.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
    for i in range(4):
        key = "%05d%04d" % (0, i)
        doc = {"text_list": ["the sky is blue", "a cup of coffee", "the cat on the grass"],
               "image_info": [{"image_name": "a.jpg", "matched_text_index": 2, "matched_sim": 0.3,
                               "image_base64": base64.b64encode(jpeg(10 + i)).decode()},
                              {"image_name": "b.jpg", "matched_text_index": 0, "matched_sim": 0.3,
                               "image_base64": base64.b64encode(jpeg(20 + i)).decode()}],
               "similarity_matrix": [[0.1, 0.1, 0.3], [0.3, 0.1, 0.1]]}
        add(tar, key + ".json", json.dumps(doc).encode())
EOF
spm_train --input="$tmp/corpus.txt" --model_prefix="$tmp/tok" --vocab_size=120 \
  --model_type=bpe --character_coverage=1.0 --minloglevel=2 > /dev/null 2>&1

cat > "$tmp/config.yaml" <<EOF
data:
  tokenizer: $tmp/tok.model
  image: {size: 32, flip: none}
  laion: {shards: ["$tmp/laion-00000.tar"], batch_size: 4, seq_len: 16}
  mmc4: {shards: ["$tmp/mmc4-00000.tar"], batch_size: 2, seq_len: 64, max_images: 3,
         min_image_bytes: 0, single_image_keep_prob: 1.0}
  loader: {threads: 2, prefetch_batches: 2, shuffle_buffer: 1}
EOF

"$FLAM_BIN" inspect batch --config "$tmp/config.yaml" --steps 2 > "$tmp/out.txt"
cat "$tmp/out.txt"
grep -q "step 0 laion: 4 sequences x 16 tokens" "$tmp/out.txt"
grep -q "step 1 mmc4: 2 sequences x 64 tokens, up to 3 images each" "$tmp/out.txt"
grep -q "invalid_utf8=1" "$tmp/out.txt"
grep -q "<s><image>a photo of the red cat 0<|endofchunk|></s>" "$tmp/out.txt"
# MMC4: image 1 -> sentence 0, image 0 -> sentence 2.
grep -q "<s><image>the sky is blue a cup of coffee<|endofchunk|><image>the cat on the grass<|endofchunk|></s>" "$tmp/out.txt"

"$FLAM_BIN" inspect batch --config "$tmp/config.yaml" --steps 2 --json --png "$tmp/grid.png" \
  > "$tmp/out.jsonl"
"$py" - "$tmp" <<'EOF'
import json, sys
from PIL import Image
tmp = sys.argv[1]
lines = [json.loads(l) for l in open(tmp + "/out.jsonl")]
assert [(l["step"], l["dataset"]) for l in lines] == [(0, "laion"), (0, "mmc4"), (1, "laion"), (1, "mmc4")], lines
for l in lines:
    for row in l["rows"]:
        assert len(row["mask"]) == row["tokens"], row
        assert row["loss_tokens"] == row["mask"].count("+"), row
        assert row["text"].count("<image>") == row["images"], row
        T, ids, labels = l["seq_len"], row["input_ids"], row["labels"]
        assert len(ids) == len(labels) == len(row["attention_mask"]) == T, row
        assert sum(row["attention_mask"]) == row["tokens"], row
        assert "".join("+" if x != -100 else "." for x in labels[:row["tokens"]]) == row["mask"], row
        assert all(x == -100 for x in labels[row["tokens"]:]), row
        assert len(row["slots"]) == l["max_images"], row
        filled = [s for s in row["slots"] if s is not None]
        assert len(filled) == row["images"] and all(s["key"] == row["key"] for s in filled), row
        if l["dataset"] == "laion":
            assert row["text"].startswith("<s><image>") and row["mask"].startswith(".."), row
            assert row["slots"] == [{"key": row["key"], "image": 0}], row
        else:
            assert row["images"] == 2 and row["mask"].startswith("."), row
            # Slot 0 is the first <image> token's: image 1 (matched to sentence 0), then image 0.
            assert [s["image"] for s in row["slots"][:2]] == [1, 0] and row["slots"][2] is None, row
assert sum(l["dropped"].get("invalid_utf8", 0) for l in lines) == 2, lines  # epochs 0 and 1
grid = Image.open(tmp + "/grid.png")
assert grid.size == (3 * 34, (4 + 2) * 34), grid.size
EOF
echo "inspect batch: ok"
