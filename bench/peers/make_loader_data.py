"""LAION and MMC4 shards for bench/peers/loader.sh (and step.sh), plus the tokenizer both sides
use: a SentencePiece BPE model trained on the captions (spm_train), and the same model as a
Hugging Face tokenizer with OpenFlamingo's added tokens (as open_flamingo.src.factory adds them).
    python make_loader_data.py PHOTOS_DIR OUT_DIR LAION_SHARDS LAION_PER_SHARD MMC4_SHARDS MMC4_PER_SHARD
Writes OUT/laion-%05d.tar (KEY.jpg 256 px q95, KEY.txt, KEY.json), OUT/mmc4-%05d.tar (KEY.json:
text_list, image_info with image_base64 (256 px q95, 3-5 per document, each matched to its own
sentence with similarity 0.30), similarity_matrix: OpenFlamingo's converted MMC4 form),
OUT/tok.model and OUT/hf_tokenizer/."""
import base64
import io
import json
import os
import random
import subprocess
import sys
import tarfile

from PIL import Image

photos_dir, out = sys.argv[1], sys.argv[2]
n_laion, per_laion, n_mmc4, per_mmc4 = map(int, sys.argv[3:7])
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
photos = [Image.open(os.path.join(photos_dir, f)).convert("RGB")
          for f in sorted(os.listdir(photos_dir)) if f.endswith((".png", ".jpg"))]
WORDS = ("the a photo of red cat dog on green grass blue sky with coffee cup rocket launch "
         "astronaut in white suit camera man standing near old building tree field under bright "
         "sun evening light close view small large two three people street city river").split()


def sentence(n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def jpeg():
    img = photos[rng.randrange(len(photos))]
    w, h = img.size
    cw, ch = rng.randint(w // 3, w), rng.randint(h // 3, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    crop = img.crop((x, y, x + cw, y + ch))
    s = 256 / min(cw, ch)
    crop = crop.resize((max(256, round(cw * s)), max(256, round(ch * s))), Image.BICUBIC)
    b = io.BytesIO()
    crop.save(b, "JPEG", quality=95)
    return b.getvalue()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


corpus = []
for s in range(n_laion):
    with tarfile.open(os.path.join(out, "laion-%05d.tar" % s), "w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(per_laion):
            key = "%05d%04d" % (s, i)
            cap = sentence(rng.randint(6, 20))
            corpus.append(cap)
            add(t, key + ".jpg", jpeg())
            add(t, key + ".txt", cap.encode())
            add(t, key + ".json", json.dumps({"key": key, "caption": cap}).encode())
for s in range(n_mmc4):
    with tarfile.open(os.path.join(out, "mmc4-%05d.tar" % s), "w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(per_mmc4):
            key = "%05d%04d" % (s, i)
            sents = [sentence(rng.randint(8, 18)) for _ in range(rng.randint(7, 10))]
            corpus.extend(sents)
            n_img = rng.randint(3, 5)
            where = sorted(rng.sample(range(len(sents)), n_img))
            info, sim = [], []
            for j, ix in enumerate(where):
                info.append({"image_name": "%s_%d.jpg" % (key, j), "matched_text_index": ix,
                             "matched_sim": 0.30,
                             "image_base64": base64.b64encode(jpeg()).decode()})
                sim.append([0.30 if k == ix else 0.10 for k in range(len(sents))])
            doc = {"text_list": sents, "image_info": info, "similarity_matrix": sim}
            add(t, key + ".json", json.dumps(doc).encode())

with open(os.path.join(out, "corpus.txt"), "w") as f:
    f.write("\n".join(corpus) + "\n")
subprocess.run(["spm_train", "--input=" + os.path.join(out, "corpus.txt"),
                "--model_prefix=" + os.path.join(out, "tok"), "--vocab_size=500",
                "--model_type=bpe", "--character_coverage=1.0", "--minloglevel=2"],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
from transformers import LlamaTokenizerFast  # noqa: E402  (slow import; only here)

hf = LlamaTokenizerFast(vocab_file=os.path.join(out, "tok.model"), legacy=False)
hf.add_special_tokens({"additional_special_tokens": ["<|endofchunk|>", "<image>"]})
if hf.pad_token is None:
    hf.add_special_tokens({"pad_token": "<PAD>"})
hf.save_pretrained(os.path.join(out, "hf_tokenizer"))
