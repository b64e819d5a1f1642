"""Packed SFT training step with block-sparse (per-document) attention against the dense (B, 1, L, L) mask.

Data: the demo's SFT training conversations, encoded as the SFT stage encodes them (``packing.sft_examples``: the
tiny model's template and tokenizer), packed by ``pack_greedy`` into rows of ``max_len`` (2048 and 4096) and
collated by ``collate_packed``. Model: a 4-layer Llama, hidden 256, 4 heads (head dim 64), 2 KV heads, fp32, the
tokenizer's vocabulary. Two copies with the same initial weights train side by side through ``SequenceLogProbs``
(one forward, label positions only through the LM head, backward, AdamW): ``model.attention=sdpa`` (the
DocumentMask's dense mask, materialised per batch, SDPA over the whole row) and ``model.attention=auto`` (on CPU:
the ``sdpa_varlen`` path — the row's documents gathered into a few length buckets, one causal SDPA call per bucket,
no L × L tensor). Both see the same rows in the same order; the first step's losses must agree
(< 1e-4), so both do the same work.

Each round steps both once on the same row in alternating order (ABBA across rounds) after one warm-up step each;
the speedup is dense ÷ block step time, median (and min / max) over rounds. Memory: the peak resident set of one
step above the resident set before it (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``; ``None`` where
that is not available), and the bytes of the mask each path builds per batch.

    python experiments/perf/block_attention.py [--rounds 5] [--max-len 2048 4096] [--threads 2]

The last line printed is JSON: {"block_attention_speedup_4096": x, "block_attention_speedup_2048": y, ...}.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from typing import Any

import torch
from packing import sft_examples
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.data.packing import collate_packed, pack_greedy
from pedgpt.models.logps import SequenceLogProbs

PATHS = ("dense", "block")
IMPLEMENTATION = {"dense": "sdpa", "block": "auto"}


def rss_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def build(vocab: int, max_len: int, seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_len,
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = "sdpa"
    base = LlamaForCausalLM(cfg)
    out = {}
    for path in PATHS:
        lm = copy.deepcopy(base).train()
        lm.config._attn_implementation = IMPLEMENTATION[path]
        net = SequenceLogProbs(lm)
        out[path] = (net, torch.optim.AdamW(net.parameters(), lr=1e-4))
    return out


def step(stepper: tuple, batch: dict) -> tuple[float, float]:
    net, opt = stepper
    t = time.perf_counter()
    logp, n = net(batch["input_ids"], batch["labels"], batch["attention_mask"], batch["position_ids"])
    loss = -logp.sum() / n.sum()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t, loss.item()


def peak_step_mib(stepper: tuple, batch: dict) -> float | None:
    """Peak resident set of one step above the resident set before it, MiB."""
    before = rss_mib("VmRSS")
    if before is None or not reset_peak():
        return None
    step(stepper, batch)
    peak = rss_mib("VmHWM")
    return None if peak is None else round(peak - before, 1)


def lengths_of(row: list[dict]) -> list[int]:
    return [len(e["input_ids"]) for e in row]


def measure_one(examples: list[dict], pad_id: int, vocab: int, max_len: int, rounds: int) -> dict[str, Any]:
    lengths = [len(e["input_ids"]) for e in examples]
    rows = [[examples[i] for i in r] for r in pack_greedy(lengths, max_len)]
    batches = [collate_packed([row], max_len, pad_id) for row in rows if sum(lengths_of(row)) > 0.9 * max_len]
    steppers = build(vocab, max_len)
    first = {p: step(steppers[p], batches[0])[1] for p in PATHS}  # warm-up, and the same loss on both paths
    if abs(first["dense"] - first["block"]) > 1e-4:
        raise AssertionError(f"dense and block-sparse losses differ: {first}")
    times: dict[str, list[float]] = {p: [] for p in PATHS}
    ratios = []
    for r in range(rounds):
        batch = batches[(r + 1) % len(batches)]
        dt = {}
        for p in PATHS if r % 2 == 0 else PATHS[::-1]:
            dt[p] = step(steppers[p], batch)[0]
            times[p].append(dt[p])
        ratios.append(dt["dense"] / dt["block"])
    peak = {p: peak_step_mib(steppers[p], batches[0]) for p in PATHS}
    L = batches[0]["input_ids"].shape[1]
    docs = [len(b["attention_mask"].lengths[0]) for b in batches]
    return {
        "speedup": round(statistics.median(ratios), 4),
        "speedup_min": round(min(ratios), 4),
        "speedup_max": round(max(ratios), 4),
        "rounds": rounds,
        "ms_dense": round(1000 * statistics.median(times["dense"]), 1),
        "ms_block": round(1000 * statistics.median(times["block"]), 1),
        "peak_step_mib_dense": peak["dense"],
        "peak_step_mib_block": peak["block"],
        "mask_mib_dense": round(L * L * 4 / 2**20, 1),  # (1, 1, L, L) fp32 per row, built every batch
        "mask_mib_block": round(L * 4 / 2**20, 4),  # (1, L) int32 document ids
        "tokens_per_row": L,
        "docs_per_row_median": statistics.median(docs),
        "first_loss": first,
    }


def measure(
    max_lens: tuple[int, ...] = (2048, 4096), rounds: int = 5, threads: int = 2, cache_dir: str | None = None
) -> dict[str, Any]:
    """``block_attention_speedup_<max_len>`` (dense ÷ block-sparse step time, median over rounds) per length,
    with spreads, step times and memory under ``details``."""
    torch.set_num_threads(threads)
    examples, pad_id = sft_examples(None, max(max_lens), cache_dir)
    vocab = max(max(e["input_ids"]) for e in examples) + 1
    out: dict[str, Any] = {"details": {}}
    for max_len in max_lens:
        r = measure_one(examples, pad_id, max(vocab, 3000), max_len, rounds)
        out[f"block_attention_speedup_{max_len}"] = r["speedup"]
        out["details"][str(max_len)] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-len", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    res = measure(tuple(a.max_len), a.rounds, a.threads)
    for max_len, r in res["details"].items():
        print(
            f"max_len {max_len}: dense {r['ms_dense']:.0f} ms vs block {r['ms_block']:.0f} ms per step → "
            f"{r['speedup']:.2f}× [{r['speedup_min']:.2f}, {r['speedup_max']:.2f}]; peak step memory "
            f"{r['peak_step_mib_dense']} vs {r['peak_step_mib_block']} MiB; mask {r['mask_mib_dense']} MiB vs "
            f"{r['mask_mib_block']} MiB per row; {r['docs_per_row_median']} documents per row"
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
