"""Packing efficiency of pedgpt's SFT packer, with a check that packed documents never attend to each other.

``packing_efficiency`` = real tokens ÷ (rows × max_len) when ``pack_greedy`` (first-fit decreasing) packs the
SFT training examples — encoded exactly as the SFT stage encodes them (``encode_instructions``, the model's
template, a tokenizer trained on the pipeline's own tokenizer texts with the tiny model's vocabulary size) —
into rows of ``max_len`` (1024 by default). Data: the bundled demo corpus, or a built PedCorpus directory
(``sft/train.jsonl``, as written by ``python -m pedgpt.data.build``).

Every packed row is then collated with ``collate_packed`` and its attention mask compared with one built
independently from the row's document lengths (block-diagonal lower-triangular blocks, padding attending to
itself only); positions must restart at 0 for each document. Any difference raises ``AssertionError``.

    python experiments/perf/packing.py [--root BUILT_PEDCORPUS_DIR] [--max-len 1024]

The last line printed is JSON: {"packing_efficiency": x, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter

import torch
from omegaconf import OmegaConf

from pedgpt.data import stage_data as sd
from pedgpt.data.encode import encode_instructions
from pedgpt.data.packing import collate_packed, pack_greedy, packing_efficiency
from pedgpt.data.templates import get_template
from pedgpt.models.tokenizer import cached_tokenizer
from pedgpt.training.init_export import tokenizer_texts

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf")
GOAL = 0.97


def sft_examples(root: str | None, max_len: int, cache_dir: str | None = None) -> tuple[list[dict], int]:
    """(encoded SFT training examples, pad id) for the demo corpus (``root=None``) or a built PedCorpus."""
    model = OmegaConf.load(os.path.join(CONF, "model", "tiny.yaml"))
    cfg = OmegaConf.create({"model": {"template": model.template}, "data": {"root": root, "demo_seed": 0}})
    tok, _ = cached_tokenizer(tokenizer_texts(cfg), cache_dir, int(model.vocab_size), model.template)
    records = sd.corpus_part(cfg.data, "sft", "train")
    return encode_instructions(records, tok, get_template(model.template), max_len, Counter()), tok.pad_token_id


def expected_mask(doc_lengths: list[int], length: int) -> torch.Tensor:
    """(length, length) bool: True where query i may attend key j — causal within each document, padding
    positions attend to themselves only."""
    blocks = [torch.ones(n, n, dtype=torch.bool).tril() for n in doc_lengths]
    pad = length - sum(doc_lengths)
    return torch.block_diag(*blocks, torch.eye(pad, dtype=torch.bool))


def verify_rows(rows: list[list[dict]], max_len: int, pad_id: int, batch: int = 16) -> int:
    """Collate ``rows`` in batches and check every row's mask and positions; returns the rows checked."""
    checked = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        out = collate_packed(chunk, max_len=max_len, pad_id=pad_id)
        L = out["input_ids"].shape[1]
        for b, row in enumerate(chunk):
            lengths = [len(e["input_ids"]) for e in row]
            allowed = out["attention_mask"][b, 0] == 0
            if not torch.equal(allowed, expected_mask(lengths, L)):
                raise AssertionError(f"packed row {start + b}: the attention mask lets documents attend to each other")
            pos = torch.cat([torch.arange(n) for n in lengths])
            if not torch.equal(out["position_ids"][b, : len(pos)], pos):
                raise AssertionError(f"packed row {start + b}: positions do not restart at each document")
            checked += 1
    return checked


def measure(root: str | None = None, max_len: int = 1024, cache_dir: str | None = None) -> dict[str, float]:
    """Packing efficiency of the SFT training set at ``max_len``, every packed row verified."""
    examples, pad_id = sft_examples(root, max_len, cache_dir)
    lengths = [len(e["input_ids"]) for e in examples]
    rows = pack_greedy(lengths, max_len)
    checked = verify_rows([[examples[i] for i in r] for r in rows], max_len, pad_id)
    return {
        "packing_efficiency": round(packing_efficiency(lengths, rows, max_len), 4),
        "documents": len(lengths),
        "tokens": sum(lengths),
        "rows": len(rows),
        "max_len": max_len,
        "rows_verified": checked,
        "data": root or "demo",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="a built PedCorpus directory (default: the bundled demo corpus)")
    ap.add_argument("--max-len", type=int, default=1024)
    a = ap.parse_args()
    res = measure(a.root, a.max_len)
    print(
        f"{res['data']}: {res['documents']} documents, {res['tokens']} tokens → {res['rows']} rows of {a.max_len}; "
        f"efficiency {res['packing_efficiency']:.4f} (goal ≥ {GOAL}); {res['rows_verified']} rows' masks verified"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
