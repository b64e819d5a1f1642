"""Training-step cost of DFPO against SFT over the same tokens (issue 4, item 6).

Setting: the demo's tiny Llama (``conf/model/tiny.yaml``: hidden 128, 4 layers, tied embeddings, vocabulary
3000 from a byte-level BPE trained on the demo corpus), the demo's training preference pairs encoded with
``encode_pairs`` (max_len 256), batches of 8 pairs = 16 rows. Every step is a full training step through
the stage modules' own ``compute_loss`` (``SequenceLogProbs`` forward, loss, backward, AdamW step):

- ``sft``: ``CausalLMModule`` on the same 16 rows as SFT examples (token-mean NLL over the answer tokens);
- ``dfpo_cached``: ``DFPOModule(ref="cached")``, reference log-probs attached to the batch;
- ``dfpo_online``: ``DFPOModule(ref="online")``, a frozen copy evaluated each step.

The three step in interleaved order (alternating direction); each round takes the median of the ratios of
neighbouring steps, the result is the median over rounds, with the min and max over rounds as the spread.

    python experiments/perf/dfpo_vs_sft.py [--rounds 5] [--steps 10] [--threads 2] [--trl]

The last line printed is JSON: {"dfpo_cached_vs_sft": x, "dfpo_online_vs_sft": y, ...}. With ``--trl`` (needs
the ``bench`` extra) it also times TRL's ``DPOTrainer`` with the RPO term (``loss_type=["sigmoid", "sft"]``,
TRL ≥ 1.0's form of ``rpo_alpha``) on the same pairs, sequentially, and reports ours ÷ TRL separately.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections import Counter

import torch

from pedgpt.data.collate import collate_preference
from pedgpt.data.corpus.demo import build_demo_corpus
from pedgpt.data.encode import encode_pairs
from pedgpt.data.templates import get_template
from pedgpt.models.tokenizer import train_bpe_tokenizer
from pedgpt.stages import reference_cache as ref_cache
from pedgpt.stages.dfpo import DFPOModule
from pedgpt.stages.module import CausalLMModule

WARMUP = 2
BATCH_PAIRS = 8
MAX_LEN = 256
GOALS = {"dfpo_cached_vs_sft": 1.10, "dfpo_online_vs_sft": 1.45}


def build_inputs(workdir: str, n_batches: int = 8) -> tuple[str, list[dict], int]:
    """(export dir of the tiny model, ``n_batches`` preference batches with cached reference log-probs, pad id)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    corpus = build_demo_corpus()
    tmpl = get_template("human_assistant")
    pairs = [p for p in corpus["preference"] if p.split == "train"]
    texts = [t.text for t in corpus["cpt"]] + [s for p in pairs for s in (p.chosen, p.rejected)]
    tok = train_bpe_tokenizer(texts, vocab_size=3000)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(workdir, safe_serialization=True)
    tok.save_pretrained(workdir)
    examples = encode_pairs(pairs, tok, tmpl, MAX_LEN, Counter())[: n_batches * BATCH_PAIRS]
    from pedgpt.models.build import load_pretrained
    from pedgpt.models.logps import SequenceLogProbs

    ref_cache.attach(
        examples,
        *ref_cache.compute_reference_logps(SequenceLogProbs(load_pretrained(workdir)), examples, tok.pad_token_id),
    )
    batches = [
        collate_preference(examples[i : i + BATCH_PAIRS], tok.pad_token_id)
        for i in range(0, len(examples), BATCH_PAIRS)
    ]
    return workdir, batches, tok.pad_token_id


def build_steppers(export_dir: str) -> dict[str, tuple[torch.nn.Module, torch.optim.Optimizer]]:
    opt = functools.partial(torch.optim.AdamW, lr=2e-4, betas=(0.9, 0.95), weight_decay=0.0)
    modules = {
        "sft": CausalLMModule(export_dir, opt),
        "dfpo_cached": DFPOModule(export_dir, opt, ref="cached"),
        "dfpo_online": DFPOModule(export_dir, opt, ref="online"),
    }
    out = {}
    for key, m in modules.items():
        m.configure_model()
        out[key] = (m, opt([p for p in m.parameters() if p.requires_grad]))
    return out


def sft_batch(batch: dict) -> dict:
    """The preference batch's 2B rows as SFT examples (same ids, labels on the answer tokens, mask)."""
    return {k: batch[k] for k in ("input_ids", "labels", "attention_mask")}


def measure(rounds: int = 5, steps: int = 10, threads: int = 2) -> dict[str, float]:
    """Median (and min/max over rounds) of DFPO-cached ÷ SFT and DFPO-online ÷ SFT step-time ratios."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        export_dir, batches, _ = build_inputs(tmp)
        steppers = build_steppers(export_dir)

        def step(key: str, batch: dict) -> float:
            module, opt = steppers[key]
            b = sft_batch(batch) if key == "sft" else batch
            t = time.perf_counter()
            loss = module.compute_loss(b, "train", module.loss_units(b).float()).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return time.perf_counter() - t

        order = list(steppers)
        ratios: dict[str, list[float]] = {"dfpo_cached_vs_sft": [], "dfpo_online_vs_sft": []}
        times: dict[str, list[float]] = {k: [] for k in steppers}
        i_batch = 0
        for _ in range(rounds):
            t: dict[str, list[float]] = {k: [] for k in steppers}
            for i in range(WARMUP + steps):
                batch = batches[i_batch % len(batches)]
                i_batch += 1
                for key in order if i % 2 else order[::-1]:
                    dt = step(key, batch)
                    if i >= WARMUP:
                        t[key].append(dt)
            for name, key in (("dfpo_cached_vs_sft", "dfpo_cached"), ("dfpo_online_vs_sft", "dfpo_online")):
                ratios[name].append(statistics.median(d / s for d, s in zip(t[key], t["sft"])))
            for k in steppers:
                times[k] += t[k]
        tokens = statistics.mean(int(b["attention_mask"].sum()) for b in batches)
    out: dict[str, float] = {}
    for name, r in ratios.items():
        out[name] = round(statistics.median(r), 4)
        out[f"{name}_min"], out[f"{name}_max"] = round(min(r), 4), round(max(r), 4)
    out.update({f"ms_{k}": round(1000 * statistics.median(v), 2) for k, v in times.items()})
    out.update(
        rounds=rounds, steps=steps, threads=threads, rows_per_step=2 * BATCH_PAIRS, tokens_per_step=round(tokens)
    )
    return out


def measure_trl(steps: int = 20, threads: int = 2, mu: float = 1.0) -> dict[str, float]:
    """Median step time (ms) of TRL's DPOTrainer + RPO term on the same pairs and model, precomputed and online
    reference; ``{}`` when TRL is missing or cannot be driven offline."""
    try:
        from datasets import Dataset
        from transformers import AutoTokenizer, TrainerCallback
        from trl import DPOConfig, DPOTrainer
    except ImportError:
        return {}
    import datasets
    import transformers

    from pedgpt.models.build import load_pretrained

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    tmpl = get_template("human_assistant")
    pairs = [p for p in build_demo_corpus()["preference"] if p.split == "train"][: (WARMUP + steps) * BATCH_PAIRS]
    rows = [
        {
            "prompt": tmpl.render(p.prompt, p.system, add_generation_prompt=True),
            "chosen": p.chosen,
            "rejected": p.rejected,
        }
        for p in pairs
    ]

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.t0, self.times = 0.0, []

        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.t0)

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_dir, _, _ = build_inputs(tmp, n_batches=1)
        tok = AutoTokenizer.from_pretrained(export_dir)
        for name, precompute in (("precomputed_ref", True), ("online_ref", False)):
            timer = StepTimer()
            args = DPOConfig(
                output_dir=f"{tmp}/trl_{name}",
                per_device_train_batch_size=BATCH_PAIRS,
                max_steps=WARMUP + steps,
                learning_rate=2e-4,
                lr_scheduler_type="constant",
                beta=0.1,
                loss_type=["sigmoid", "sft"],
                loss_weights=[1.0, mu],
                max_length=MAX_LEN,
                precompute_ref_log_probs=precompute,
                report_to=[],
                save_strategy="no",
                logging_steps=1000,
                use_cpu=True,
                dataloader_num_workers=0,
                disable_tqdm=True,
                seed=0,
                gradient_checkpointing=False,
            )  # TRL turns it on by default; ours is off
            try:
                trainer = DPOTrainer(
                    model=load_pretrained(export_dir),
                    args=args,
                    processing_class=tok,
                    train_dataset=Dataset.from_list(rows),
                    callbacks=[timer],
                )
                trainer.train()
            except Exception as e:  # an API this script cannot drive offline: report, do not fail the benchmark
                print(f"TRL {name}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
                continue
            out[f"trl_ms_{name}"] = round(1000 * statistics.median(timer.times[WARMUP:]), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trl", action="store_true", help="also time TRL's DPOTrainer (bench extra)")
    a = ap.parse_args()
    res = measure(a.rounds, a.steps, a.threads)
    print(f"{'ratio (step time)':<22}{'median':>9}{'min':>9}{'max':>9}{'goal':>8}")
    for name, goal in GOALS.items():
        ok = "ok" if res[name] <= goal else "MISSED"
        print(
            f"{name:<22}{res[name]:>9.3f}{res[name + '_min']:>9.3f}{res[name + '_max']:>9.3f}{'≤' + str(goal):>8} {ok}"
        )
    print(
        f"median step ms: sft {res['ms_sft']}, dfpo cached {res['ms_dfpo_cached']}, dfpo online {res['ms_dfpo_online']}"
        f" ({res['rows_per_step']} rows, ~{res['tokens_per_step']} tokens per step, {a.threads} threads)"
    )
    if a.trl:
        trl = measure_trl(steps=a.steps * 2, threads=a.threads)
        res.update(trl)
        if "trl_ms_precomputed_ref" in trl:
            res["ours_cached_vs_trl_precomputed"] = round(res["ms_dfpo_cached"] / trl["trl_ms_precomputed_ref"], 4)
            print(
                f"ours (cached ref) ÷ TRL DPOTrainer+RPO (precomputed ref): {res['ours_cached_vs_trl_precomputed']:.3f}"
                f"  ({res['ms_dfpo_cached']} ms vs {trl['trl_ms_precomputed_ref']} ms; sequential, not interleaved)"
            )
        if "trl_ms_online_ref" in trl:
            res["ours_online_vs_trl_online"] = round(res["ms_dfpo_online"] / trl["trl_ms_online_ref"], 4)
            print(
                f"ours (online ref) ÷ TRL DPOTrainer+RPO (online ref): {res['ours_online_vs_trl_online']:.3f}"
                f"  ({res['ms_dfpo_online']} ms vs {trl['trl_ms_online_ref']} ms; sequential, not interleaved)"
            )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
