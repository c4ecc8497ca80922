#!/usr/bin/env python3
"""OpenFlamingo's own text and label code (data.py preprocess_interleaved's string steps,
train_utils.py's label masking, run on torch tensors), as an oracle for test_packer.

    python3 of_oracle.py CASES.json  ->  prints {"texts": [...], "labels": [[...], ...]}

CASES.json: {"texts": [{"sentences": [...], "ixs": [...]}, ...],
             "labels": {"ids": [[...], ...], "pad": P, "media": I, "eoc": E}}
"""
import json
import sys

import torch


def interleaved_text(sentences, ixs):
    sentences = list(sentences)
    for ix in ixs:
        sentences[ix] = f"<|endofchunk|><image>{sentences[ix]}"
    text = " ".join(sentences)
    text = text.replace("<|endofchunk|>", "", 1)
    text = (
        text.replace(" <|endofchunk|>", "<|endofchunk|>")
        .replace("<image> ", "<image>")
        .replace(" <image>", "<image>")
    )
    return text


def mmc4_labels(input_ids, pad, media_token_id, endofchunk_token_id):
    labels = input_ids.clone()
    labels[labels == pad] = -100
    labels[:, 0] = -100
    for i in range(labels.shape[0]):
        label_idx = 0
        while label_idx < labels.shape[1] and labels[i][label_idx] != media_token_id:
            labels[i][label_idx] = -100
            label_idx += 1
        endofchunk_idxs = torch.where(labels[i] == endofchunk_token_id)[0]
        for endofchunk_idx in endofchunk_idxs:
            token_idx = endofchunk_idx + 1
            while token_idx < labels.shape[1] and labels[i][token_idx] != media_token_id:
                labels[i][token_idx] = -100
                token_idx += 1
    labels[labels == media_token_id] = -100
    return labels


def main():
    cases = json.load(open(sys.argv[1]))
    texts = [interleaved_text(c["sentences"], c["ixs"]) for c in cases["texts"]]
    lab = cases["labels"]
    ids = torch.tensor(lab["ids"], dtype=torch.int64)
    labels = mmc4_labels(ids, lab["pad"], lab["media"], lab["eoc"]).tolist()
    print(json.dumps({"texts": texts, "labels": labels}))


if __name__ == "__main__":
    sys.exit(main())
