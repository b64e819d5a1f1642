"""GPU check (issue: scale, item 8): full SFT steps of a Qwen2.5-7B-width model with FSDP2 in bf16.

    torchrun --standalone --nproc_per_node 1 experiments/gpu/fsdp_mfu.py --layers 8 --seq 4096 --steps 6

Builds a Qwen2 model with hidden 3584, 28 heads / 4 KV heads, MLP 18944, vocab 152064 and ``--layers``
decoder layers (as many as fit one GPU for full training), shards it with the project's FSDP2 code
(one unit per layer + root, fp32 master weights, bf16 compute, fp32 reduce), and runs full AdamW steps
through the training loss path (``SequenceLogProbs``: only label positions hit the LM head). Prints one
JSON line: tokens/s, MFU (6N + 12·L·h·s FLOPs per token over the GPU's dense bf16 peak) and peak memory.
Never a test dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--checkpointing", action="store_true")
    args = ap.parse_args()
    from torch.distributed.device_mesh import init_device_mesh
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from pedgpt.distributed.fsdp import shard
    from pedgpt.models.flops import flops_per_token
    from pedgpt.models.logps import SequenceLogProbs
    from pedgpt.training.callbacks import peak_flops

    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    cfg = Qwen2Config(
        hidden_size=3584,
        intermediate_size=18944,
        num_attention_heads=28,
        num_key_value_heads=4,
        num_hidden_layers=args.layers,
        vocab_size=152064,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
    )
    cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        lm = Qwen2ForCausalLM(cfg)
    if args.checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net = SequenceLogProbs(lm)
    shard(
        net,
        lm,
        init_device_mesh("cuda", (dist.get_world_size(),)),
        {"param_dtype": "bfloat16", "reduce_dtype": "float32"},
    )
    net.to_empty(device="cuda")
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.02)
    lm.model.rotary_emb.__init__(cfg, device="cuda")  # recompute the non-persistent RoPE buffers
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), device="cuda")
    n_params = sum(p.numel() for p in lm.parameters()) - cfg.vocab_size * cfg.hidden_size
    fpt = flops_per_token(n_params, cfg.num_hidden_layers, cfg.hidden_size, args.seq)
    times = []
    for _ in range(args.steps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        logp, n = net(ids, ids)
        (-logp.sum() / n.sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    dt = sorted(times[2:])[len(times[2:]) // 2]  # median after two warm-up steps
    tok_s = args.batch * args.seq / dt
    peak = peak_flops(torch.cuda.get_device_name())
    if rank == 0:
        print(
            json.dumps(
                {
                    "device": torch.cuda.get_device_name(),
                    "layers": args.layers,
                    "seq": args.seq,
                    "batch": args.batch,
                    "checkpointing": args.checkpointing,
                    "step_s": round(dt, 4),
                    "tokens_per_s_per_gpu": round(tok_s, 1),
                    "mfu": round(fpt * tok_s / peak, 4) if peak else None,
                    "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                }
            )
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
