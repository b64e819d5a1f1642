"""SFT training throughput of pedgpt against TRL's ``SFTTrainer`` on the same model, data and optimizer.

Setting: the demo's tiny Llama (``conf/model/tiny.yaml``, built from config with seed 0 and saved once, so
both sides load the same initial weights), a byte-level BPE tokenizer trained on the demo SFT messages, the
demo's training conversations encoded once with ``encode_instructions`` (``human_assistant`` template, labels
on the assistant turns and their end-of-turn token only). Both sides receive these same token ids and labels:

- ours: ``CausalLMModule`` (the SFT stage module) in a Lightning ``Trainer`` on the documents packed by
  ``pack_greedy`` into rows of ``max_len`` (block-diagonal causal mask, positions restarting per document),
  ``batch_size`` rows per step; loss = token-mean NLL over the label tokens (``SequenceLogProbs``);
- TRL: ``SFTTrainer`` on a pre-tokenized dataset (``input_ids`` + ``labels``: TRL uses given labels as is),
  ``packing=True`` (BFD into ``max_length`` rows, which turns on padding-free batching: a step's
  ``per_device_train_batch_size`` rows are flattened into one sequence with restarting ``position_ids``);
  loss = token-mean NLL over the same label tokens (TRL's fused LM head).

Both: fp32, AdamW (fused) with the same lr / betas / weight decay, gradient clipping at 1.0, gradient
checkpointing off, no evaluation, logging or saving. Each round runs ``warmup + steps`` steps per side (ours,
TRL, ours, TRL, ...); the timed window goes from the end of the last warm-up step to the end of the last
step, so it includes data loading and every per-step cost of each trainer. Throughput = label tokens of the
timed steps ÷ that time. The result is the median over rounds of ours ÷ TRL, with min and max as the spread.

    python experiments/perf/sft_vs_trl.py [--rounds 5] [--steps 16] [--threads 2] [--profile]

The last line printed is JSON: {"sft_vs_trl": x, ...}. ``measure()`` returns it; ``profile()`` summarises
``torch.profiler`` traces of a few steps of each side.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from omegaconf import OmegaConf

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.datamodule import ExamplesDataModule
from pedgpt.data.encode import encode_instructions
from pedgpt.data.packing import collate_packed, pack_greedy
from pedgpt.data.templates import get_template
from pedgpt.models.build import arch_config, build_from_config
from pedgpt.models.tokenizer import train_bpe_tokenizer
from pedgpt.stages.sft import SFTModule

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf")
GOAL = 1.0
SEED = 0


@dataclass
class Settings:
    """Shared by both sides; the defaults are ``conf/stage/sft.yaml``'s batch, max_len and optimizer."""

    batch_size: int = 8
    max_len: int = 256
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    warmup: int = 2
    steps: int = 16


@dataclass
class Setup:
    export_dir: str
    tokenizer: Any
    examples: list[dict]  # {"input_ids", "labels"} of the demo training conversations


def build_setup(workdir: str, max_len: int) -> Setup:
    """Tokenizer, tiny Llama export (seed 0) and encoded demo SFT examples, written under ``workdir``."""
    corpus = build_demo_corpus()
    records = [r for r in corpus["sft"] if r.split == "train"]
    tok = train_bpe_tokenizer([m.content for r in corpus["sft"] for m in r.messages], vocab_size=3000)
    model_cfg = OmegaConf.load(os.path.join(CONF, "model", "tiny.yaml"))
    export_dir = os.path.join(workdir, "init")
    build_from_config(arch_config(model_cfg, vocab_size=len(tok), tokenizer=tok), seed=SEED).save_pretrained(
        export_dir, safe_serialization=True
    )
    tok.save_pretrained(export_dir)
    examples = encode_instructions(records, tok, get_template(model_cfg.template), max_len, Counter())
    return Setup(export_dir, tok, [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples])


def label_tokens(batch: dict) -> int:
    """Tokens that carry a loss in a collated batch (labels ≠ -100)."""
    return int((batch["labels"] != IGNORE_INDEX).sum())


class CountingCollate:
    """Wraps a collate function and records the label-token count of every batch it builds, in order."""

    def __init__(self, collate: Callable):
        self.collate, self.counts = collate, []

    def __call__(self, examples):
        batch = self.collate(examples)
        self.counts.append(label_tokens(batch))
        return batch


class Window:
    """Wall time from the end of step ``warmup`` to the end of step ``warmup + steps`` (1-based step ends)."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps = warmup, steps
        self.done, self.t0, self.t1 = 0, 0.0, 0.0

    def step_end(self) -> None:
        self.done += 1
        if self.done == self.warmup:
            self.t0 = time.perf_counter()
        elif self.done == self.warmup + self.steps:
            self.t1 = time.perf_counter()

    @property
    def seconds(self) -> float:
        if self.done < self.warmup + self.steps:
            raise RuntimeError(f"only {self.done} of {self.warmup + self.steps} steps ran")
        return self.t1 - self.t0


class Ours:
    """pedgpt's SFT stage module in a Lightning Trainer, as ``python -m pedgpt.train`` builds it."""

    def __init__(self, setup: Setup, s: Settings):
        self.s = s
        opt = functools.partial(torch.optim.AdamW, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay, fused=True)
        self.module = SFTModule(setup.export_dir, opt, gradient_clip_val=s.max_grad_norm)
        lengths = [len(e["input_ids"]) for e in setup.examples]
        rows = [[setup.examples[i] for i in r] for r in pack_greedy(lengths, s.max_len)]
        self.collate = CountingCollate(
            functools.partial(collate_packed, max_len=s.max_len, pad_id=setup.tokenizer.pad_token_id)
        )
        self.data = ExamplesDataModule(rows, [], self.collate, s.batch_size, s.batch_size, SEED)

    def round(self) -> tuple[float, int]:
        """(seconds, label tokens) of the timed steps of one ``fit``."""
        s, window = self.s, Window(self.s.warmup, self.s.steps)

        class Mark(L.Callback):
            def on_train_batch_end(self, *args, **kwargs):
                window.step_end()

        self.collate.counts.clear()
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            precision="32-true",
            max_steps=s.warmup + s.steps,
            logger=False,
            callbacks=[Mark()],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            check_val_every_n_epoch=None,
            use_distributed_sampler=False,
        )
        trainer.fit(self.module, datamodule=self.data)
        return window.seconds, sum(self.collate.counts[s.warmup : s.warmup + s.steps])


def trl_config(s: Settings, output_dir: str):
    """TRL's best documented CPU setting for this comparison (every non-default argument is listed here)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir,
        per_device_train_batch_size=s.batch_size,
        max_steps=s.warmup + s.steps,
        max_length=s.max_len,
        packing=True,
        packing_strategy="bfd",  # BFD packing ⇒ padding-free batches
        learning_rate=s.lr,
        adam_beta1=s.betas[0],
        adam_beta2=s.betas[1],
        weight_decay=s.weight_decay,
        optim="adamw_torch_fused",
        lr_scheduler_type="constant",
        max_grad_norm=s.max_grad_norm,
        gradient_checkpointing=False,
        bf16=False,
        fp16=False,
        use_cpu=True,  # fp32 like ours; TRL defaults differ
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=SEED,
    )


class Trl:
    """TRL's ``SFTTrainer`` on the same token ids and labels (pre-tokenized dataset)."""

    def __init__(self, setup: Setup, s: Settings, output_dir: str):
        import datasets
        import transformers
        from transformers import AutoModelForCausalLM, PrinterCallback, TrainerCallback
        from trl import SFTTrainer

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        self.s = s
        self.window: Window | None = None
        outer = self

        class Mark(TrainerCallback):
            def on_step_end(self, *args, **kwargs):
                outer.window.step_end()

        model = AutoModelForCausalLM.from_pretrained(setup.export_dir, dtype=torch.float32, attn_implementation="sdpa")
        self.trainer = SFTTrainer(
            model=model,
            args=trl_config(s, output_dir),
            processing_class=setup.tokenizer,
            train_dataset=datasets.Dataset.from_list(setup.examples),
            callbacks=[Mark()],
        )
        self.trainer.remove_callback(PrinterCallback)
        self.collate = CountingCollate(self.trainer.data_collator)
        self.trainer.data_collator = self.collate

    def round(self) -> tuple[float, int]:
        s = self.s
        self.window = Window(s.warmup, s.steps)
        self.collate.counts.clear()
        self.trainer.train()
        return self.window.seconds, sum(self.collate.counts[s.warmup : s.warmup + s.steps])


def trl_available() -> bool:
    try:
        import trl  # noqa: F401
    except ImportError:
        return False
    return True


def measure(
    rounds: int = 5, steps: int = 16, threads: int = 2, warmup: int = 2, batch_size: int = 8, max_len: int = 256
) -> dict[str, float]:
    """Median (and min/max over rounds) of ours ÷ TRL label-token throughput, plus each side's tokens/s."""
    torch.set_num_threads(threads)
    s = Settings(batch_size=batch_size, max_len=max_len, warmup=warmup, steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        setup = build_setup(tmp, s.max_len)
        sides = {"ours": Ours(setup, s), "trl": Trl(setup, s, os.path.join(tmp, "trl"))}
        tps: dict[str, list[float]] = {k: [] for k in sides}
        tokens: dict[str, list[int]] = {k: [] for k in sides}
        for r in range(rounds):
            for key in ("ours", "trl") if r % 2 == 0 else ("trl", "ours"):
                sec, n = sides[key].round()
                tps[key].append(n / sec)
                tokens[key].append(n)
    ratios = [o / t for o, t in zip(tps["ours"], tps["trl"])]
    return {
        "sft_vs_trl": round(statistics.median(ratios), 4),
        "sft_vs_trl_min": round(min(ratios), 4),
        "sft_vs_trl_max": round(max(ratios), 4),
        "ours_tokens_per_s": round(statistics.median(tps["ours"]), 1),
        "trl_tokens_per_s": round(statistics.median(tps["trl"]), 1),
        "ours_label_tokens_per_round": round(statistics.mean(tokens["ours"])),
        "trl_label_tokens_per_round": round(statistics.mean(tokens["trl"])),
        "rounds": rounds,
        "steps": steps,
        "warmup": warmup,
        "threads": threads,
        "batch_size": batch_size,
        "max_len": max_len,
    }


def profile(steps: int = 6, threads: int = 2, batch_size: int = 8, max_len: int = 256, row_limit: int = 15) -> str:
    """``torch.profiler`` CPU-time tables (self time, top ops) of ``steps`` timed steps of each side."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(threads)
    s = Settings(batch_size=batch_size, max_len=max_len, warmup=2, steps=steps)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        setup = build_setup(tmp, s.max_len)
        for key, side in (("ours", Ours(setup, s)), ("trl", Trl(setup, s, os.path.join(tmp, "trl")))):
            side.round()  # warm-up round, not profiled
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                sec, n = side.round()
            out.append(
                f"== {key}: {n / sec:.0f} label tokens/s under the profiler ==\n"
                + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit)
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print torch.profiler tables instead of timing")
    a = ap.parse_args()
    if a.profile:
        print(profile(threads=a.threads))
        return
    res = measure(a.rounds, a.steps, a.threads)
    print(f"{a.rounds} interleaved rounds × {a.steps} timed steps per side, {a.threads} threads")
    print(
        f"ours {res['ours_tokens_per_s']:.0f} label tokens/s, TRL SFTTrainer {res['trl_tokens_per_s']:.0f}; "
        f"ours ÷ TRL {res['sft_vs_trl']:.3f} [{res['sft_vs_trl_min']:.3f}, {res['sft_vs_trl_max']:.3f}] "
        f"(goal ≥ {GOAL})"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
