"""Batched greedy generation against one-by-one greedy generation on the same prompts (issue 6 item 4).

Setting: the demo's tiny Llama (``conf/model/tiny.yaml``, freshly initialised, fp32) with a byte-level BPE
tokenizer trained on the demo corpus; the prompts are the first user turns of the demo dev conversations.
Each round generates all prompts both ways (``generate_batch`` with ``batch_size`` and with 1), in
alternating order, and takes the ratio of the two wall times; the result is the median over rounds. The
outputs of the two ways are asserted identical in every round.

    python experiments/perf/generation_speed.py [--rounds 5] [--prompts 32] [--batch-size 8]
                                                [--max-new-tokens 64] [--threads 2] [--device cpu|cuda]

The last line printed is JSON: {"batched_generation_speedup": x}. ``measure()`` returns that ratio plus the
median wall times (``s_batched``, ``s_one_by_one``) and the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from omegaconf import OmegaConf

from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.templates import get_template
from pedgpt.inference.generation import GenerationSettings, generate_batch
from pedgpt.models.build import arch_config, build_from_config
from pedgpt.models.exports import LoadedModel
from pedgpt.models.tokenizer import train_bpe_tokenizer

TINY = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "model", "tiny.yaml")


def _setup(n_prompts: int, device: str) -> tuple[LoadedModel, list]:
    corpus = build_demo_corpus()
    tokenizer = train_bpe_tokenizer([m.content for r in corpus["sft"] for m in r.messages], vocab_size=3000)
    model = (
        build_from_config(arch_config(OmegaConf.load(TINY), tokenizer=tokenizer, vocab_size=len(tokenizer)), seed=0)
        .to(device)
        .eval()
    )
    prompts = [r.messages[:1] for r in corpus["sft"] if r.split == "dev"][:n_prompts]
    return LoadedModel(model, tokenizer, get_template("human_assistant"), "<tiny from config>"), prompts


def measure(
    rounds: int = 5,
    n_prompts: int = 32,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    threads: int = 2,
    device: str = "cpu",
) -> dict[str, float]:
    torch.set_num_threads(threads)
    lm, prompts = _setup(n_prompts, device)
    settings = GenerationSettings(max_new_tokens=max_new_tokens)

    def run(bs: int) -> tuple[float, list[str]]:
        t0 = time.perf_counter()
        out = generate_batch(lm, prompts, settings, batch_size=bs)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    run(batch_size)  # warm-up
    ratios, t_batched, t_single = [], [], []
    for r in range(rounds):
        order = (batch_size, 1) if r % 2 == 0 else (1, batch_size)
        results = {bs: run(bs) for bs in order}
        if results[batch_size][1] != results[1][1]:
            diff = next(i for i, (a, b) in enumerate(zip(results[batch_size][1], results[1][1])) if a != b)
            raise AssertionError(f"batched and one-by-one outputs differ at prompt {diff}")
        t_batched.append(results[batch_size][0])
        t_single.append(results[1][0])
        ratios.append(results[1][0] / results[batch_size][0])
    return {
        "batched_generation_speedup": statistics.median(ratios),
        "s_batched": statistics.median(t_batched),
        "s_one_by_one": statistics.median(t_single),
        "prompts": len(prompts),
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    res = measure(args.rounds, args.prompts, args.batch_size, args.max_new_tokens, args.threads, args.device)
    print(
        f"device {args.device}, {res['prompts']} prompts, batch {args.batch_size}, {args.max_new_tokens} new tokens, "
        f"{args.rounds} interleaved rounds, {args.threads} threads"
    )
    print(
        f"one-by-one {res['s_one_by_one']:.2f} s   batched {res['s_batched']:.2f} s   "
        f"speedup {res['batched_generation_speedup']:.2f}× (goal ≥ 2.5×; outputs identical)"
    )
    print(json.dumps({"batched_generation_speedup": res["batched_generation_speedup"]}))


if __name__ == "__main__":
    main()
