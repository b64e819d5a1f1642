"""CPU efficiency of an SFT training step, measured against this machine's own fp32 GEMM rate (issue 16, item 4).

The denominator is measured in the same run: the fp32 rate of a square ``torch.mm`` (2048³, 2·n³ FLOPs) on the
same threads, the best of three products taken next to each round's steps (the rate the machine can deliver at
that moment). The numerator is the model FLOP rate of full SFT training steps through pedgpt's own step path:
``SFTModule`` (``SequenceLogProbs``, token-mean NLL over the label tokens, ``accumulate`` with its backward) then
the stage's gradient norm and its optimizer (``conf/stage/sft.yaml``: AdamW lr 1e-3, betas (0.9, 0.95), no weight
decay), on one packed row of 1024 tokens of the demo SFT data (``pack_greedy`` + ``collate_packed``, block-diagonal
causal mask). Model FLOPs are :func:`pedgpt.models.flops.flops_per_token` (6·N + 12·L·h·s, N the non-embedding
parameters, the formula behind the stages' MFU) × the row's 1024 positions.

Models: Llama-architecture, 2 layers, fp32, SDPA, the demo tokenizer's vocabulary (3000, tied embeddings),
hidden 512 (intermediate 1376, 8 heads) and hidden 1024 (intermediate 2816, 16 heads). Each round: GEMM
products, then ``steps`` steps of each model in alternating order; per round, fraction = model FLOP/s (median
step) ÷ GEMM FLOP/s (best product of the round); the result is the median over rounds.

    python experiments/perf/cpu_efficiency.py [--rounds 3] [--steps 2] [--threads 2]

The last line printed is JSON: {"cpu_gemm_fraction_sft_1024": x, "cpu_gemm_fraction_sft_512": y, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch
from omegaconf import OmegaConf
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.data.packing import collate_packed, pack_greedy
from pedgpt.models.build import count_parameters
from pedgpt.models.flops import flops_per_token
from pedgpt.stages.module import optimizer_factory
from pedgpt.stages.sft import SFTModule

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packing  # noqa: E402  (the demo SFT examples, encoded as the SFT stage does)

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf")
SEQ = 1024
LAYERS = 2
GEMM_N = 2048
SIZES = {512: 1376, 1024: 2816}  # hidden → intermediate (Llama's 8/3 ratio, rounded up to a multiple of 32)
GOAL = 0.5


def gemm_rate(n: int = GEMM_N, reps: int = 3) -> float:
    """Best fp32 FLOP/s of ``reps`` products of two n × n matrices (2·n³ FLOPs each) on torch's current threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def sft_row(vocab_size: int) -> dict[str, torch.Tensor]:
    """The fullest packed row of SEQ tokens of the demo SFT training set, collated as the SFT stage does."""
    examples, pad_id = packing.sft_examples(None, SEQ)
    rows = pack_greedy([len(e["input_ids"]) for e in examples], SEQ)
    batch = collate_packed([[examples[i] for i in rows[0]]], max_len=SEQ, pad_id=pad_id)
    if batch["input_ids"].shape[1] < SEQ:  # pad to the full row so every size sees SEQ positions
        raise ValueError(f"the fullest packed row has {batch['input_ids'].shape[1]} < {SEQ} positions")
    assert int(batch["input_ids"].max()) < vocab_size
    return {k: batch[k] for k in ("input_ids", "labels", "attention_mask", "position_ids")}


def build(workdir: str, hidden: int, vocab_size: int) -> tuple[SFTModule, torch.optim.Optimizer, float]:
    """(SFT module, the stage's optimizer over its parameters, model FLOPs per step of one SEQ-token row)."""
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=SIZES[hidden],
        num_hidden_layers=LAYERS,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=SEQ,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    out = os.path.join(workdir, f"h{hidden}")
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    opt_factory = optimizer_factory(OmegaConf.load(os.path.join(CONF, "stage", "sft.yaml")).optimizer)
    module = SFTModule(out, opt_factory)
    module.configure_model()
    module.manual_backward = lambda loss: loss.backward()  # type: ignore[method-assign]  # no Trainer here
    total, _ = count_parameters(module.net)
    n_embed = module.lm.get_input_embeddings().weight.numel()
    flops = flops_per_token(total - n_embed, LAYERS, hidden, SEQ) * SEQ
    return module, opt_factory([p for p in module.parameters() if p.requires_grad]), flops


def train_step(module: SFTModule, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> float:
    """One SFT training step as the stage runs it (accumulate, gradient norm, finite check, AdamW); seconds."""
    t = time.perf_counter()
    loss, _, _ = module.accumulate([batch])
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    norm = module._total_norm(params)
    if bool(torch.isfinite(norm) & torch.isfinite(loss)):
        opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def measure(rounds: int = 3, steps: int = 2, threads: int = 2) -> dict[str, float]:
    """Per hidden size: model FLOP/s of SFT steps ÷ GEMM FLOP/s, median (and min/max) over rounds."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        vocab = 3000  # conf/model/tiny.yaml's vocabulary, the tokenizer packing.sft_examples trains
        batch = sft_row(vocab)
        models = {h: build(tmp, h, vocab) for h in SIZES}
        for module, opt, _ in models.values():
            train_step(module, opt, batch)  # warm-up
        fractions: dict[int, list[float]] = {h: [] for h in SIZES}
        times: dict[int, list[float]] = {h: [] for h in SIZES}
        rates: list[float] = []
        order = list(SIZES)
        for r in range(rounds):
            rate = gemm_rate()
            t: dict[int, list[float]] = {h: [] for h in SIZES}
            for i in range(steps):
                for h in order if (r + i) % 2 else order[::-1]:
                    module, opt, _ = models[h]
                    t[h].append(train_step(module, opt, batch))
            rate = max(rate, gemm_rate())  # products on both sides of the round's steps
            rates.append(rate)
            for h in SIZES:
                fractions[h].append(models[h][2] / statistics.median(t[h]) / rate)
                times[h] += t[h]
    out: dict[str, float] = {}
    for h in SIZES:
        f = fractions[h]
        key = f"cpu_gemm_fraction_sft_{h}"
        out[key] = round(statistics.median(f), 4)
        out[f"{key}_min"], out[f"{key}_max"] = round(min(f), 4), round(max(f), 4)
        out[f"{key}_rounds"] = [round(v, 4) for v in f]  # type: ignore[assignment]
        out[f"ms_sft_{h}"] = round(1000 * statistics.median(times[h]), 1)
        out[f"gflop_per_step_{h}"] = round(models[h][2] / 1e9, 2)
        out[f"model_gflops_{h}"] = round(models[h][2] / statistics.median(times[h]) / 1e9, 2)
    out["gemm_gflops"] = round(statistics.median(rates) / 1e9, 2)
    out["gemm_gflops_rounds"] = [round(v / 1e9, 2) for v in rates]  # type: ignore[assignment]
    out.update(rounds=rounds, steps=steps, threads=threads, seq=SEQ, layers=LAYERS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    res = measure(a.rounds, a.steps, a.threads)
    print(
        f"fp32 GEMM ({GEMM_N}³, {a.threads} threads): {res['gemm_gflops']} GFLOP/s (per round {res['gemm_gflops_rounds']})"
    )
    for h in SIZES:
        k = f"cpu_gemm_fraction_sft_{h}"
        print(
            f"SFT hidden {h}, seq {SEQ}: {res[f'ms_sft_{h}']} ms/step, {res[f'gflop_per_step_{h}']} GFLOP/step, "
            f"{res[f'model_gflops_{h}']} GFLOP/s → {res[k]:.3f} of GEMM (rounds {res[k + '_rounds']})"
            + (f"  goal ≥ {GOAL}" if h == 1024 else "")
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
