"""Training-step cost of MoE-LoRA (1 universal + 3 specific, r=8, noisy_token) against peft LoRA.

Setting of issue 5 item 8: a 4-layer Llama of hidden size 512, all seven linear layers of each decoder
layer adapted, batch 4 × 128 tokens, a full step (forward, backward, AdamW, the default MoE router
``noisy_token`` in training mode). Issue 16 adds hidden 2048 (``--hidden 2048``: intermediate 5504, 1 layer by
default so that a step stays near a second on 2 cores; the ratio is per layer anyway). The models are built and
warmed up once; then each of ``rounds`` rounds steps the three models ``steps`` times in interleaved order
(alternating direction) and takes the median of the ratios of neighbouring steps; the result is the median over
rounds, each round's ratio reported too.

    python experiments/perf/moe_vs_lora.py [--hidden 512] [--layers 4] [--rounds 5] [--steps 20] [--threads 2]

The last line printed is JSON: {"moe_vs_lora_r8": x, "moe_vs_lora_same_rank": y, ...}. ``measure()`` returns the
same two ratios, their per-round values (``<key>_rounds``) and the median step times (``ms_<model>``).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from pedgpt.adapters import inject_moe_lora

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
WARMUP = 2


INTERMEDIATE = {512: 1376, 1024: 2752, 2048: 5504}  # hidden → Llama's ≈ 8/3 ratio
LAYERS = {512: 4, 1024: 2, 2048: 1}


def _models(device: str, hidden: int = 512, layers: int | None = None) -> dict[str, torch.nn.Module]:
    cfg = LlamaConfig(
        vocab_size=1024,
        hidden_size=hidden,
        intermediate_size=INTERMEDIATE[hidden],
        num_hidden_layers=layers or LAYERS[hidden],
        num_attention_heads=hidden // 128,
        num_key_value_heads=hidden // 128,
        max_position_embeddings=512,
    )
    base = LlamaForCausalLM(cfg).to(device)
    return {
        "lora_r8": get_peft_model(copy.deepcopy(base), LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS)),
        "lora_r32": get_peft_model(copy.deepcopy(base), LoraConfig(r=32, lora_alpha=64, target_modules=TARGETS)),
        "moe_1u3s_r8": inject_moe_lora(
            copy.deepcopy(base), TARGETS, rank=8, alpha=16, num_universal=1, num_specific=3, router="noisy_token"
        ),
    }


def measure(
    rounds: int = 5,
    steps: int = 20,
    threads: int = 2,
    device: str = "cpu",
    hidden: int = 512,
    layers: int | None = None,
    warmup: int = WARMUP,
) -> dict[str, Any]:
    """Median step-time ratios MoE ÷ LoRA r=8 and MoE ÷ LoRA r=32 over rounds, each round's ratio, median ms."""
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    models = {k: m.train() for k, m in _models(device, hidden, layers).items()}
    opts = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4) for k, m in models.items()}
    ids = torch.randint(0, 1024, (4, 128), device=device)

    def step(key: str) -> float:
        if device != "cpu":
            torch.cuda.synchronize()
        t = time.perf_counter()
        models[key](input_ids=ids, labels=ids).loss.backward()
        opts[key].step()
        opts[key].zero_grad()
        if device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    order = list(models)
    for i in range(warmup):
        for key in order if i % 2 else order[::-1]:
            step(key)
    r8, r32, times = [], [], {k: [] for k in models}
    for r in range(rounds):
        t: dict[str, list[float]] = {k: [] for k in models}
        for i in range(steps):
            for key in order if (r * steps + i) % 2 else order[::-1]:
                t[key].append(step(key))
        r8.append(statistics.median(m / p for m, p in zip(t["moe_1u3s_r8"], t["lora_r8"])))
        r32.append(statistics.median(m / p for m, p in zip(t["moe_1u3s_r8"], t["lora_r32"])))
        for k in models:
            times[k] += t[k]
    return {
        "moe_vs_lora_r8": round(statistics.median(r8), 4),
        "moe_vs_lora_same_rank": round(statistics.median(r32), 4),
        "moe_vs_lora_r8_rounds": [round(v, 4) for v in r8],
        "moe_vs_lora_same_rank_rounds": [round(v, 4) for v in r32],
        **{f"ms_{k}": round(1000 * statistics.median(v), 2) for k, v in times.items()},
        "hidden": hidden,
        "layers": layers or LAYERS[hidden],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hidden", type=int, default=512, choices=sorted(INTERMEDIATE))
    ap.add_argument("--layers", type=int, default=None, help="decoder layers (default: 4 at 512, 1 at 2048)")
    args = ap.parse_args()
    res = measure(args.rounds, args.steps, args.threads, args.device, args.hidden, args.layers)
    print(
        f"device {args.device}, hidden {res['hidden']}, {res['layers']} layers, {args.rounds} rounds × "
        f"{args.steps} interleaved steps, {args.threads} threads"
    )
    print(f"{'model':<14}{'median step (ms)':>18}")
    for k in ("lora_r8", "lora_r32", "moe_1u3s_r8"):
        print(f"{k:<14}{res['ms_' + k]:>18.2f}")
    print(
        f"MoE ÷ LoRA r=8: {res['moe_vs_lora_r8']:.3f} (≤ 1.10; rounds {res['moe_vs_lora_r8_rounds']})   "
        f"MoE ÷ LoRA r=32: {res['moe_vs_lora_same_rank']:.3f} (≤ 1.00; rounds {res['moe_vs_lora_same_rank_rounds']})"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
