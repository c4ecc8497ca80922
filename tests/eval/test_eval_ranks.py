"""`flam eval` on 1 and on 3 MPI ranks writes byte-identical results JSON; `flam generate` prints
the same generation twice and refuses a prompt whose <image> markers and images disagree.

Builds a tiny evaluation setup here: configs/tiny.yaml's model (random init from run.seed) with
non-zero cross-attention gates from an exported-style .safetensors, a SentencePiece tokenizer
trained on the captions, a Karpathy-format caption file and VQAv2-format question/annotation
files over tests/data/photos. Runs COCO-style captioning and VQAv2-style VQA at 0 and 2 shots,
2 trials, 3 beams, batches of 2 (so 3 ranks run different batches), and compares the files.
Also checks the report's shape (shots, trials, one prediction per query).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "model"))
from reference import save  # noqa: E402

FLAM = os.environ["FLAM_BIN"]
SRC = os.environ["FLAM_SOURCE_DIR"]
MPIEXEC = os.environ.get("MPIEXEC", "mpirun")
PHOTOS = os.path.join(SRC, "tests", "data", "photos")
CAPTIONS = {
    "astronaut.png": ["An astronaut in a white suit.", "a person holding a flag"],
    "camera.png": ["A man with a camera on a tripod.", "an old photo of a man"],
    "chelsea.png": ["A cat looking at the camera.", "an orange cat"],
    "coffee.png": ["A cup of coffee on a saucer.", "a red cup of coffee"],
    "grass.png": ["Green grass in a field.", "a close up of grass"],
    "rocket.jpg": ["A rocket launching into the sky.", "smoke under a rocket"],
}


def setup(tmp):
    names = sorted(CAPTIONS)
    images = [{"filepath": "", "filename": n, "cocoid": i + 1,
               "split": "train" if i < 3 else "test",
               "sentences": [{"raw": c} for c in CAPTIONS[n]]} for i, n in enumerate(names)]
    images += [dict(images[i], split="test", cocoid=100 + i) for i in range(2)]
    with open(os.path.join(tmp, "karpathy.json"), "w") as f:
        json.dump({"images": images}, f)
    with open(os.path.join(tmp, "text.txt"), "w") as f:
        f.write("\n".join(c for cs in CAPTIONS.values() for c in cs * 20) + "\n")
        f.write("Question: what is it? Short answer: a cat\nOutput: yes no\n" * 20)
    subprocess.run(["spm_train", "--input=" + os.path.join(tmp, "text.txt"),
                    "--model_prefix=" + os.path.join(tmp, "tok"), "--vocab_size=120",
                    "--model_type=bpe", "--hard_vocab_limit=false", "--bos_id=1",
                    "--eos_id=2", "--unk_id=0"], check=True, capture_output=True)
    for split in ("train2014", "val2014"):
        d = os.path.join(tmp, split)
        os.makedirs(d)
        for i, n in enumerate(names):
            shutil.copy(os.path.join(PHOTOS, n), os.path.join(d, f"COCO_{split}_{i + 1:012d}.jpg"))
    qs = ["What is in the picture?", "What color is it?", "How many are there?"]
    answers = ["cat", "a cat", "two", "2", "red", "yes", "no", "grass"]
    for split, ids in (("train", range(1, 4)), ("val", range(1, 7))):
        questions, anns = [], []
        for img in ids:
            for k, q in enumerate(qs):
                qid = img * 10 + k
                questions.append({"image_id": img, "question": q, "question_id": qid})
                anns.append({"question_id": qid, "image_id": img, "answers": [
                    {"answer": answers[(img + k + j) % len(answers)], "answer_id": j + 1}
                    for j in range(10)]})
        with open(os.path.join(tmp, f"q_{split}.json"), "w") as f:
            json.dump({"questions": questions}, f)
        with open(os.path.join(tmp, f"a_{split}.json"), "w") as f:
            json.dump({"annotations": anns}, f)
    g = torch.Generator().manual_seed(3)
    weights = {f"lang_encoder.gated_cross_attn_layers.{i}.{gate}": torch.rand(1, generator=g) + 0.5
               for i in (1, 3) for gate in ("attn_gate", "ff_gate")}
    save(os.path.join(tmp, "trained.safetensors"), weights)


def run(tmp, ranks, task, out):
    with open(os.path.join(tmp, "tok.vocab")) as f:
        vocab = sum(1 for _ in f)
    sets = [f"data.tokenizer={tmp}/tok.model", f"model.lang.vocab_size={vocab}",
            "eval.batch_size=2", "eval.max_new_tokens=6",
            "eval.query_set_size=3", f"eval.karpathy_json={tmp}/karpathy.json",
            f"eval.image_dir={PHOTOS}",
            f"eval.train_questions={tmp}/q_train.json", f"eval.train_annotations={tmp}/a_train.json",
            f"eval.train_image_dir={tmp}/train2014", f"eval.test_questions={tmp}/q_val.json",
            f"eval.test_annotations={tmp}/a_val.json", f"eval.test_image_dir={tmp}/val2014"]
    cmd = [MPIEXEC, "-np", str(ranks), "--oversubscribe", "--bind-to", "none", FLAM, "eval",
           "--config", os.path.join(SRC, "configs", "tiny.yaml"),
           "--checkpoint", os.path.join(tmp, "trained.safetensors"), "--task", task,
           "--shots", "0,2", "--trials", "2", "--out", out]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"flam eval -np {ranks} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    print(proc.stdout)
    with open(out, "rb") as f:
        return f.read()


def generate(tmp, prompt, images):
    with open(os.path.join(tmp, "tok.vocab")) as f:
        vocab = sum(1 for _ in f)
    cmd = [FLAM, "generate", "--config", os.path.join(SRC, "configs", "tiny.yaml"),
           "--checkpoint", os.path.join(tmp, "trained.safetensors"), "--prompt", prompt,
           "--max-new-tokens", "5", "--set", f"data.tokenizer={tmp}/tok.model",
           "--set", f"model.lang.vocab_size={vocab}"]
    for image in images:
        cmd += ["--image", os.path.join(PHOTOS, image)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        ok = generate(tmp, "<image>Output:a cat<|endofchunk|><image>Output:",
                      ["chelsea.png", "coffee.png"])
        assert ok.returncode == 0 and ok.stdout.strip(), (ok.returncode, ok.stdout, ok.stderr)
        again = generate(tmp, "<image>Output:a cat<|endofchunk|><image>Output:",
                         ["chelsea.png", "coffee.png"])
        assert again.stdout == ok.stdout, (again.stdout, ok.stdout)
        bad = generate(tmp, "<image>Output:", ["chelsea.png", "coffee.png"])
        assert bad.returncode != 0 and "<image>" in bad.stderr, (bad.returncode, bad.stderr)
        print(f"flam generate: {ok.stdout.strip()!r}")
        for task, queries in (("coco", 5), ("vqav2", 18)):
            one = run(tmp, 1, task, os.path.join(tmp, f"{task}_1.json"))
            three = run(tmp, 3, task, os.path.join(tmp, f"{task}_3.json"))
            assert one == three, f"{task}: results differ between 1 and 3 ranks"
            report = json.loads(one)
            assert report["queries"] == queries, report["queries"]
            assert [r["shots"] for r in report["results"]] == [0, 2]
            for r in report["results"]:
                assert len(r["scores"]) == 2 and len(r["predictions"]) == 2
                assert all(len(p) == queries for p in r["predictions"])
            texts = [t for r in report["results"] for p in r["predictions"] for t in p.values()]
            assert sum(1 for t in texts if t.strip()) > len(texts) // 2, texts
            print(f"{task}: 1 and 3 ranks identical ({len(one)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
