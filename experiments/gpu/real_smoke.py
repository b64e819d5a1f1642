"""GPU smoke test of the real-model path: a few bf16 steps of every stage on random models at real widths.

    python experiments/gpu/real_smoke.py [--steps 5] [--seq 2048] [--out OUT]      (or experiments/gpu/real_smoke.sh)

Families: Baichuan2-13B width with 2 decoder layers (pedgpt's native ALiBi model: hidden 5120, 40 heads, MLP 13696,
vocab 125696) and Qwen2.5-7B width with 2 layers (hidden 3584, 28/4 heads, MLP 18944, vocab 152064), random
weights saved as native exports with a small in-process tokenizer. Each runs ``python -m pedgpt.train`` with the
four stages under FSDP2 on one GPU (fp32 master weights, bf16 compute, activation checkpointing, packing on) and
the last line printed is one JSON object: per family and stage, tokens/s, MFU and peak memory (from the stage's
``metrics.csv``). Never a test dependency.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM

import pedgpt  # noqa: F401  (registers the native Baichuan2)
from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.models.tokenizer import train_bpe_tokenizer

FAMILIES = {
    "baichuan2_13b_2l": dict(
        model_type="baichuan2",
        hidden_size=5120,
        intermediate_size=13696,
        num_hidden_layers=2,
        num_attention_heads=40,
        position_embedding="alibi",
        max_position_embeddings=4096,
        vocab_size=125696,
        template="baichuan2_like",
    ),
    "qwen2_5_7b_2l": dict(
        model_type="qwen2",
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=2,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1e6,
        vocab_size=152064,
        tie_word_embeddings=False,
        template="chatml",
    ),
}


def write_model(family: str, out: str) -> str:
    spec = dict(FAMILIES[family])
    template = "chatml" if spec.pop("template") == "chatml" else "human_assistant"
    corpus = build_demo_corpus()
    texts = [t.text for t in corpus["cpt"]] + [m.content for r in corpus["sft"] for m in r.messages]
    tok = train_bpe_tokenizer(texts, vocab_size=4000, template=template)
    config = AutoConfig.for_model(
        spec.pop("model_type"),
        **spec,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return template


def stage_figures(run_dir: str, stage: str) -> dict[str, float | None]:
    rows = list(csv.DictReader(open(os.path.join(run_dir, stage, "metrics.csv"))))

    def last(key: str) -> float | None:
        vals = [float(r[key]) for r in rows if r.get(key)]
        return vals[-1] if vals else None

    return {
        "tokens_per_s": last("train/tokens_per_s"),
        "mfu": last("train/mfu"),
        "peak_mem_gb": last("train/peak_mem_gb"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="pedgpt-real-smoke-"))
    args = ap.parse_args()
    result: dict[str, object] = {"device": torch.cuda.get_device_name(0), "seq": args.seq, "steps": args.steps}
    for family in FAMILIES:
        t0 = time.time()
        model_dir = os.path.join(args.out, family, "model")
        template = write_model(family, model_dir)
        run = os.path.join(args.out, family, "run")
        stages = {
            s: [
                f"{s}.max_len={args.seq}",
                f"{s}.batch_size=2",
                f"{s}.activation_checkpointing=true",
                f"{s}.loss_chunk_size=2048",
                f"{s}.val_batch_size=2",
            ]
            for s in ("cpt", "sft", "dfpo", "mole")
        }
        target = (
            "[W_pack,o_proj,gate_proj,up_proj,down_proj]"
            if family.startswith("baichuan")
            else ("[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]")
        )
        cmd = [
            sys.executable,
            "-m",
            "pedgpt.train",
            f"init_from={model_dir}",
            f"model.template={template}",
            "model.dtype=bfloat16",
            f"model.target_modules={target}",
            "trainer=fsdp",
            "trainer.devices=1",
            f"trainer.max_steps={args.steps}",
            "trainer.log_every_n_steps=1",
            "trainer.limit_val_batches=2",
            "trainer.val_check_interval=1000",
            "logger=csv",
            "progress_bar=false",
            "gen.max_new_tokens=16",
            f"hydra.run.dir={run}",
            *[o for opts in stages.values() for o in opts],
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            result[family] = {"error": proc.stderr.strip().splitlines()[-1][:300]}
            continue
        result[family] = {s: stage_figures(run, s) for s in stages} | {"seconds": round(time.time() - t0, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
