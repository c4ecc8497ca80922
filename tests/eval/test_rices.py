"""RICES demo selection in `flam eval --rices`: the demos chosen for every query equal a numpy
computation from the cached features (cosine similarity of the query's feature with each
query-set item's, the top k, the most similar last); a second run reads the cache (unchanged
bytes, same results) and 3 ranks give the same results JSON as 1.

Uses test_eval_ranks.py's setup: 3 train images (the query set), 5 test queries, two of them
the same photos as train items, whose own item must then come last (similarity 1).
"""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_eval_ranks as base  # noqa: E402  (setup, FLAM, SRC, PHOTOS, MPIEXEC)


def read_features(path):
    raw = open(path, "rb").read()
    assert raw[:8] == b"FLAMRICE", raw[:8]
    version, _, _, n, d = struct.unpack_from("<IIQqq", raw, 8)
    assert version == 1
    offset, paths = 40, []
    for _ in range(n):
        (length,) = struct.unpack_from("<I", raw, offset)
        paths.append(raw[offset + 4:offset + 4 + length].decode())
        offset += 4 + length
    features = np.frombuffer(raw, dtype="<f4", offset=offset).reshape(n, d)
    assert offset + n * d * 4 == len(raw)
    return paths, features


def run(tmp, ranks, out):
    with open(os.path.join(tmp, "tok.vocab")) as f:
        vocab = sum(1 for _ in f)
    cmd = [base.MPIEXEC, "-np", str(ranks), "--oversubscribe", "--bind-to", "none", base.FLAM,
           "eval", "--config", os.path.join(base.SRC, "configs", "tiny.yaml"),
           "--checkpoint", os.path.join(tmp, "trained.safetensors"), "--task", "coco",
           "--shots", "0,2", "--trials", "1", "--rices", "--out", out]
    for s in [f"data.tokenizer={tmp}/tok.model", f"model.lang.vocab_size={vocab}",
              "eval.batch_size=2", "eval.max_new_tokens=4", "eval.num_beams=1",
              "eval.query_set_size=3", f"eval.karpathy_json={tmp}/karpathy.json",
              f"eval.image_dir={base.PHOTOS}", f"eval.rices_cache_dir={tmp}/cache"]:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        sys.exit(f"flam eval --rices -np {ranks} failed ({proc.returncode}):\n{proc.stdout}\n"
                 f"{proc.stderr}")
    with open(out, "rb") as f:
        return f.read()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        base.setup(tmp)
        first = run(tmp, 1, os.path.join(tmp, "r1.json"))
        files = sorted(glob.glob(os.path.join(tmp, "cache", "rices_*.feat")))
        assert len(files) == 2, files
        cached = {f: open(f, "rb").read() for f in files}
        feats = [read_features(f) for f in files]
        (pool_paths, pool), (query_paths, queries) = sorted(feats, key=lambda pf: len(pf[0]))
        assert len(pool_paths) == 3 and len(query_paths) == 5, (pool_paths, query_paths)
        for f in (pool, queries):
            assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)

        karpathy = json.load(open(os.path.join(tmp, "karpathy.json")))["images"]
        train_id = {os.path.join(base.PHOTOS, im["filename"]): str(im["cocoid"])
                    for im in karpathy if im["split"] == "train"}
        test_ids = [str(im["cocoid"]) for im in karpathy if im["split"] == "test"]
        test_paths = [os.path.join(base.PHOTOS, im["filename"]) for im in karpathy
                      if im["split"] == "test"]
        assert query_paths == test_paths, (query_paths, test_paths)
        report = json.loads(first)
        sim = queries.astype(np.float64) @ pool.astype(np.float64).T
        for r in report["results"]:
            k = max(r["shots"], 2)  # 0 shots: two text-only demos
            demos = r["demos"][0]
            for q, qid in enumerate(test_ids):
                order = np.argsort(-sim[q], kind="stable")[:k][::-1]
                want = [train_id[pool_paths[i]] for i in order]
                assert demos[qid] == want, (r["shots"], qid, demos[qid], want, sim[q])
                if test_paths[q] in train_id:  # the same photo is the most similar: last
                    assert demos[qid][-1] == train_id[test_paths[q]], (qid, demos[qid])
        print("RICES demos equal numpy's top-k of the cached features: %s"
              % report["results"][-1]["demos"][0])

        again = run(tmp, 1, os.path.join(tmp, "r1b.json"))
        assert again == first, "a run from the feature cache gave other results"
        for f, raw in cached.items():
            assert open(f, "rb").read() == raw, "the cache was rewritten: " + f
        three = run(tmp, 3, os.path.join(tmp, "r3.json"))
        assert three == first, "3 ranks gave other results than 1"
        for f in files:
            os.remove(f)
        fresh = run(tmp, 3, os.path.join(tmp, "r3b.json"))
        assert fresh == first, "features computed on 3 ranks gave other results"
        for f, raw in cached.items():
            assert open(f, "rb").read() == raw, "3 ranks computed other features: " + f
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
