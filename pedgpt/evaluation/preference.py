"""``preference``: reward accuracy of the policy against a reference on held-out preference pairs.

The implicit DPO reward of an answer is ``β·(log π(y|x) − log π_ref(y|x))`` (summed fp32 log-probs of the
answer tokens, ``SequenceLogProbs``); a pair counts as correct when the chosen answer's reward is strictly
higher (TRL's ``rewards/accuracies``). The reference is, in order: an export given as ``reference``; the
policy with its adapters disabled (an adapter export); otherwise none — then the reward is ``β·log π``
alone and ``reference`` in the metrics says so.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from typing import Any

import torch

from pedgpt.adapters import adapter_modules, adapters_disabled, clear_task_ids, set_task_ids
from pedgpt.data.collate import collate_preference
from pedgpt.data.encode import encode_pairs
from pedgpt.data.schema import PreferencePair
from pedgpt.evaluation.context import EvalContext, SuiteResult
from pedgpt.models.logps import SequenceLogProbs


@torch.no_grad()
def pair_logps(
    loaded: Any, examples: list[dict], batch_size: int, adapters_off: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed answer log-probs of chosen and rejected answers, each (N,) fp32, under ``loaded.model``."""
    model = loaded.model
    scorer, device = SequenceLogProbs(model), next(model.parameters()).device
    has_adapters = bool(adapter_modules(model))
    chosen, rejected = [], []
    for start in range(0, len(examples), batch_size):
        batch = collate_preference(examples[start : start + batch_size], loaded.tokenizer.pad_token_id or 0)
        off = adapters_disabled(model) if adapters_off else contextlib.nullcontext()
        try:
            if has_adapters:
                set_task_ids(model, batch["task_ids"].to(device))
            with off:
                logp, _ = scorer(
                    batch["input_ids"].to(device), batch["labels"].to(device), batch["attention_mask"].to(device)
                )
        finally:
            if has_adapters:
                clear_task_ids(model)
        k = logp.shape[0] // 2
        chosen.append(logp[:k].cpu())
        rejected.append(logp[k:].cpu())
    return torch.cat(chosen), torch.cat(rejected)


def _summary(correct: torch.Tensor, margins: torch.Tensor) -> dict[str, float | int]:
    return {
        "reward_accuracy": 100.0 * correct.float().mean().item(),
        "reward_margin": margins.mean().item(),
        "n": int(correct.numel()),
    }


def run_preference(ctx: EvalContext, suite: str, pairs: list[PreferencePair]) -> SuiteResult:
    skipped: Counter = Counter()
    examples, kept = [], []
    for p in pairs:  # one at a time, so the kept pairs line up with their examples
        ex = encode_pairs([p], ctx.loaded.tokenizer, ctx.loaded.template, ctx.preference_max_len, skipped)
        if ex:
            examples.append({**ex[0], "index": len(examples)})
            kept.append(p)
    if not examples:
        return SuiteResult(suite, {"n": 0, "skipped": dict(skipped)}, [], dict(skipped))
    pol_c, pol_r = pair_logps(ctx.loaded, examples, ctx.preference_batch_size)
    if ctx.reference is not None:
        ref_c, ref_r = pair_logps(ctx.reference, examples, ctx.preference_batch_size)
        reference = f"export {ctx.reference.model_dir}"
    elif adapter_modules(ctx.loaded.model):
        ref_c, ref_r = pair_logps(ctx.loaded, examples, ctx.preference_batch_size, adapters_off=True)
        reference = "the policy with adapters disabled (its base model)"
    else:
        ref_c, ref_r = torch.zeros_like(pol_c), torch.zeros_like(pol_r)
        reference = "none (reward = beta * policy log-prob)"
    reward_c, reward_r = ctx.beta * (pol_c - ref_c), ctx.beta * (pol_r - ref_r)
    correct, margins = reward_c > reward_r, reward_c - reward_r
    rows, by_task = [], defaultdict(list)
    for i, p in enumerate(kept):
        by_task[p.task].append(i)
        rows.append(
            {
                "suite": suite,
                "id": p.id,
                "task": p.task,
                "prompt": [{"role": m.role, "content": m.content} for m in p.prompt],
                "chosen": p.chosen,
                "rejected": p.rejected,
                "logp_chosen": pol_c[i].item(),
                "logp_rejected": pol_r[i].item(),
                "reward_chosen": reward_c[i].item(),
                "reward_rejected": reward_r[i].item(),
                "correct": bool(correct[i]),
            }
        )
    metrics: dict[str, Any] = {
        **_summary(correct, margins),
        "reward_chosen": reward_c.mean().item(),
        "reward_rejected": reward_r.mean().item(),
        "logp_chosen": pol_c.mean().item(),
        "logp_rejected": pol_r.mean().item(),
        "beta": ctx.beta,
        "reference": reference,
        "by_task": {t: _summary(correct[idx], margins[idx]) for t, idx in sorted(by_task.items())},
        "skipped": dict(skipped),
    }
    return SuiteResult(suite, metrics, rows, dict(skipped))
