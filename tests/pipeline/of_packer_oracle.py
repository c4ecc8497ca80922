#!/usr/bin/env python3
"""OpenFlamingo's own data code as the oracle for test_packer_oracle: preprocess_laion_text and
preprocess_interleaved from open_flamingo/train/data.py, and the label code of train_one_epoch
(open_flamingo/train/train_utils.py, run as is with a model that only records the labels it is
given), with a Hugging Face LlamaTokenizer over our SentencePiece model and the special tokens
added as OpenFlamingo's factory adds them.

    python3 of_packer_oracle.py CASES.json  ->  a line per mismatch, then a JSON report

Compares our packed rows (CASES.json, written by the C++ test) with OpenFlamingo's and classifies
every mismatch: declared differences (docs/fidelity.md) are counted by kind; anything else is
"undeclared" (the test fails on any).
"""
import base64
import collections
import hashlib
import io
import json
import os
import random
import sys
import types

import numpy as np
import torch
from PIL import Image
from transformers import LlamaTokenizer
from transformers.utils import logging as hf_logging

import open_flamingo

sys.path.insert(0, os.path.join(os.path.dirname(open_flamingo.__file__), "train"))
import data as of_data  # noqa: E402  (data.py imports its sibling data_utils by name)
import train_utils as of_train_utils  # noqa: E402

MAX_IMAGES, SIM_THRESHOLD, MIN_IMAGES = 6, 0.24, 1
LITERALS = ["<image>", "<|endofchunk|>", "<PAD>", "<s>", "</s>"]


def tokenizer_for(path):
    hf_logging.set_verbosity_error()
    tok = LlamaTokenizer(vocab_file=path, legacy=True)
    tok.add_special_tokens({"additional_special_tokens": ["<|endofchunk|>", "<image>"]})
    if tok.pad_token is None:
        tok.add_special_tokens({"pad_token": "<PAD>"})
    return tok


def of_labels(tok, laion_ids, laion_mask, mmc4_ids, mmc4_mask):
    """Runs train_one_epoch for one step; returns the (laion, mmc4) labels it computed."""
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, vision_x, lang_x, attention_mask, labels):
            seen.append(labels.clone())
            return (self.p.sum() * 0 + 1.0,)

    class Loader(list):
        num_batches = 1

    nl, nm = laion_ids.shape[0], mmc4_ids.shape[0]
    laion = Loader([(torch.zeros(nl, 3, 1, 1), (laion_ids, laion_mask))])
    mmc4 = Loader([(torch.zeros(nm, MAX_IMAGES, 3, 1, 1),
                    [(mmc4_ids[i:i + 1], mmc4_mask[i:i + 1]) for i in range(nm)])])
    args = types.SimpleNamespace(precision="fp32", fsdp=False, num_epochs=1, rank=0,
                                 gradient_accumulation_steps=1, loss_multiplier_laion=1.0,
                                 loss_multiplier_mmc4=1.0, freeze_lm_embeddings=True,
                                 report_to_wandb=False, logging_steps=10 ** 9, world_size=1,
                                 batch_size_laion=nl, batch_size_mmc4=nm)
    optimizer = types.SimpleNamespace(step=lambda: None, zero_grad=lambda set_to_none=True: None,
                                      param_groups=[{"lr": 0.0}])
    scheduler = types.SimpleNamespace(step=lambda: None)
    of_train_utils.train_one_epoch(args, Recorder(), 0, laion, mmc4, tok, optimizer, scheduler,
                                   "cpu", None)
    assert len(seen) == 2, len(seen)
    return seen[0], seen[1]


def digest(b):
    return hashlib.sha1(b).hexdigest()


def of_mmc4(doc, tok):
    """OpenFlamingo's row for doc: (reason, ids, mask, image digests in slot order, sentence_ixs)."""
    pixels_to_digest = {}
    for info in doc["image_info"]:
        raw = base64.b64decode(info["image_base64"])
        pixels_to_digest[Image.open(io.BytesIO(raw)).convert("RGB").tobytes()] = digest(raw)
    order = []

    def processor(image):  # records which image OpenFlamingo keeps, in its slot order
        order.append(pixels_to_digest[image.tobytes()])
        return torch.zeros(3, 1, 1)

    try:
        _, (ids, mask) = of_data.preprocess_interleaved(
            (json.dumps(doc),), tok, processor, SIM_THRESHOLD, MIN_IMAGES, MAX_IMAGES, 256)
    except ValueError as e:
        msg = str(e)
        reason = ("no_images" if msg.startswith("No images") else
                  "too_few_images" if msg.startswith("Fewer than") else
                  "image_at_end" if msg.startswith("Only one image at the end") else
                  "single_image" if msg.startswith("Only one image") else msg)
        return reason, None, None, None
    return "", ids[0], mask[0], order[:MAX_IMAGES]


def sentence_ixs(doc):
    ixs = []
    for info, sims in zip(doc["image_info"], doc["similarity_matrix"]):
        if len(base64.b64decode(info["image_base64"])) // 1000 <= 10:
            continue
        if sims[int(np.argmax(sims))] < SIM_THRESHOLD:
            continue
        ixs.append(int(np.argmax(sims)))
    return ixs[:MAX_IMAGES]


def by_token_position(order, ixs, n_tokens):
    """OpenFlamingo's kept images re-ordered as their <image> tokens stand in the text: by
    sentence, and within one sentence the image prefixed last first."""
    token_order = sorted(range(len(ixs)), key=lambda i: (ixs[i], -i))
    slots = [order[i] for i in token_order]
    return [slots[t] if t < len(slots) else None for t in range(n_tokens)]


def main():
    cases = json.load(open(sys.argv[1]))
    tok = tokenizer_for(cases["tokenizer"])
    V = len(tok) - 3
    assert tok.convert_tokens_to_ids(["<|endofchunk|>", "<image>", "<PAD>"]) == [V, V + 1, V + 2]
    image_id = V + 1
    random.random = lambda: 1.0  # preprocess_interleaved's 50% single-image coin: always keep

    declared = collections.Counter()
    exact = collections.Counter()
    undeclared = []
    cover = collections.Counter()

    # ---- MMC4 ----
    docs = cases["mmc4"]
    of_rows = [of_mmc4(c["doc"], tok) for c in docs]
    accepted = [i for i, r in enumerate(of_rows) if r[0] == ""]
    if accepted:
        ids = torch.stack([of_rows[i][1] for i in accepted])
        mask = torch.stack([of_rows[i][2] for i in accepted])
        _, mmc4_labels = of_labels(tok, ids[:1], mask[:1], ids, mask)
    for k, (c, (reason, ids, mask, order)) in enumerate(zip(docs, of_rows)):
        doc = c["doc"]
        ixs = sentence_ixs(doc)
        non_monotonic = any(a >= b for a, b in zip(ixs, ixs[1:]))
        cover["non_monotonic"] += non_monotonic and reason == ""
        cover["over_6_images"] += len(doc["image_info"]) > 6
        cover["under_10kb"] += any(len(base64.b64decode(i["image_base64"])) // 1000 <= 10
                                   for i in doc["image_info"])
        cover["ties"] += any(list(r).count(max(r)) > 1 for r in doc["similarity_matrix"])
        cover["literal_special"] += c["literal"]
        if reason == "":
            cover["truncated"] += int(mask.sum()) == 256
        for mode in ("special", "text"):
            if mode == "text" and c["literal"]:
                declared["mmc4 special_strings=text (literal special strings stay text)"] += 1
                continue
            ours = c["ours_" + mode]
            where = f"mmc4 doc {k} ({mode})"
            if reason or ours["reason"]:
                if reason == ours["reason"]:
                    exact[f"mmc4 {mode} rejected alike"] += 1
                else:
                    undeclared.append(f"{where}: OpenFlamingo '{reason}', ours '{ours['reason']}'")
                continue
            labels = mmc4_labels[accepted.index(k)]
            if (ours["input_ids"] != ids.tolist() or ours["attention_mask"] != mask.tolist()
                    or ours["labels"] != labels.tolist()):
                undeclared.append(f"{where}: tokens or labels differ: ours "
                                  f"{tok.decode(ours['input_ids'])!r} OpenFlamingo "
                                  f"{tok.decode(ids.tolist())!r}")
                continue
            n_tokens = int((ids == image_id).sum())
            sources = [digest(base64.b64decode(doc["image_info"][s]["image_base64"]))
                       for s in ours["image_sources"]]
            ours_slots = [sources[t] if t < len(sources) else None for t in range(n_tokens)]
            of_slots = [order[t] if t < len(order) else None for t in range(n_tokens)]
            if ours_slots == of_slots:
                exact[f"mmc4 {mode}"] += 1
            elif mode == "special" and c["literal"] and "<image>" in "".join(doc["text_list"]):
                declared["mmc4 literal <image> under special: no slot of its own"] += 1
            elif non_monotonic and ours_slots == by_token_position(order, ixs, n_tokens):
                declared["mmc4 image order: by <image> token position"] += 1
            else:
                undeclared.append(f"{where}: image slots differ: ours {ours_slots} "
                                  f"OpenFlamingo {of_slots}")

    # ---- LAION ----
    caps = cases["laion"]
    texts = [c["caption"] for c in caps]
    lids, lmask = of_data.preprocess_laion_text(texts, tok, max_tokens=32)
    laion_labels, _ = of_labels(tok, lids, lmask, lids[:1], lmask[:1])
    L = lids.shape[1]
    for k, c in enumerate(caps):
        for mode in ("special", "text"):
            if mode == "text" and c["literal"]:
                declared["laion special_strings=text (literal special strings stay text)"] += 1
                continue
            ours = c["ours_" + mode]
            where = f"laion caption {k} ({mode})"
            if ours["reason"]:
                undeclared.append(f"{where}: ours rejected it: {ours['reason']}")
                continue
            ids, mask, labels = ours["input_ids"], ours["attention_mask"], ours["labels"]
            tail_padded = all(x == V + 2 for x in ids[L:]) and not any(mask[L:]) and \
                all(x == -100 for x in labels[L:])
            if ids[:L] != lids[k].tolist() or mask[:L] != lmask[k].tolist() or not tail_padded:
                undeclared.append(f"{where}: tokens differ: ours {tok.decode(ids)!r} "
                                  f"OpenFlamingo {tok.decode(lids[k].tolist())!r}")
            elif labels[1:L] != laion_labels[k, 1:].tolist():
                undeclared.append(f"{where}: labels differ")
            elif labels[0] != laion_labels[k, 0].item():
                # OpenFlamingo's LAION labels keep BOS at position 0 (never a target after the
                # shift); ours are -100 there. Tokens and every other label are identical.
                exact[f"laion {mode} (label 0 -100: declared, no effect on the loss)"] += 1
            else:
                exact[f"laion {mode}"] += 1
    if L < 32:
        declared["laion pads to 32, OpenFlamingo to the longest in the batch"] += 1

    for line in undeclared[:20]:
        print("UNDECLARED", line)
    report = {
        "mmc4": {"documents": len(docs), "accepted_by_openflamingo": len(accepted)},
        "laion": {"documents": len(caps)},
        "exact": dict(exact), "declared": dict(declared), "undeclared": len(undeclared),
        "cover": dict(cover),
    }
    print("REPORT")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
