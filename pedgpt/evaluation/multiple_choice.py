"""``cmmlu_med``: multiple-choice accuracy from option log-likelihoods (no generation).

Each option is scored by the summed log-probability of its text's tokens as the assistant answer after the
question prompt (chat template, generation prompt included; the option tokenised on its own, as answers are
in training). Two predictions per item:

* ``accuracy`` (raw) — argmax of the summed log-likelihood; the default primary score;
* ``accuracy_norm`` — argmax of the log-likelihood per character of the option text (lm-eval-harness's
  ``acc_norm`` normalisation), which does not favour short options.

``primary`` in the metrics says which of the two the run's configuration treats as the headline number.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from pedgpt.adapters import adapter_modules, clear_task_ids, set_task_ids
from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.collate import collate_padded
from pedgpt.data.schema import EvalItem, task_id
from pedgpt.evaluation.context import EvalContext, SuiteResult
from pedgpt.inference.generation import encode_prompt
from pedgpt.models.logps import SequenceLogProbs

PRIMARY = {"raw": "accuracy", "norm": "accuracy_norm"}


@torch.no_grad()
def option_logliks(loaded: Any, examples: list[dict], batch_size: int) -> list[float]:
    """Summed log-probs of the labelled tokens of each example (``input_ids``/``labels``/``task_id``)."""
    scorer = SequenceLogProbs(loaded.model)
    device = next(loaded.model.parameters()).device
    has_adapters = bool(adapter_modules(loaded.model))
    out: list[float] = []
    for start in range(0, len(examples), batch_size):
        batch = collate_padded(examples[start : start + batch_size], loaded.tokenizer.pad_token_id or 0)
        try:
            if has_adapters:
                set_task_ids(loaded.model, batch["task_ids"].to(device))
            logp, _ = scorer(
                batch["input_ids"].to(device), batch["labels"].to(device), batch["attention_mask"].to(device)
            )
        finally:
            if has_adapters:
                clear_task_ids(loaded.model)
        out += logp.tolist()
    return out


def option_examples(loaded: Any, item: EvalItem, max_prompt_len: int | None) -> list[dict]:
    """One scoring example per option: prompt ids (labels −100) followed by the option's tokens."""
    prompt = encode_prompt(loaded, item.prompt, item.system, max_prompt_len)
    out = []
    for choice in item.choices:
        ids = loaded.tokenizer(choice, add_special_tokens=False)["input_ids"]
        out.append(
            {"input_ids": prompt + ids, "labels": [IGNORE_INDEX] * len(prompt) + ids, "task_id": task_id(item.task)}
        )
    return out


def _accuracy(hits: list[bool]) -> float:
    return 100.0 * sum(hits) / len(hits) if hits else float("nan")


def run_multiple_choice(ctx: EvalContext, suite: str, items: list[EvalItem]) -> SuiteResult:
    skipped: dict[str, int] = defaultdict(int)
    usable, examples = [], []
    for it in items:
        if not it.choices or it.answer is None:
            skipped["not_multiple_choice"] += 1
            continue
        try:
            ex = option_examples(ctx.loaded, it, ctx.max_prompt_len)
        except ValueError:
            skipped["prompt_too_long"] += 1
            continue
        if any(all(label == IGNORE_INDEX for label in e["labels"]) for e in ex):
            skipped["empty_option"] += 1
            continue
        usable.append(it)
        examples += ex
    logliks = option_logliks(ctx.loaded, examples, ctx.cmmlu_batch_size)
    rows, by_subject = [], defaultdict(lambda: ([], []))
    pos = 0
    for it in usable:
        raw = logliks[pos : pos + len(it.choices)]
        pos += len(it.choices)
        norm = [v / max(1, len(c)) for v, c in zip(raw, it.choices)]
        pred_raw, pred_norm = max(range(len(raw)), key=raw.__getitem__), max(range(len(norm)), key=norm.__getitem__)
        rows.append(
            {
                "suite": suite,
                "id": it.id,
                "task": it.task,
                "subject": it.subject,
                "prompt": [{"role": m.role, "content": m.content} for m in it.prompt],
                "choices": it.choices,
                "answer": it.answer,
                "loglik": raw,
                "loglik_per_char": norm,
                "pred_raw": pred_raw,
                "pred_norm": pred_norm,
                "reference": it.choices[it.answer],
                "prediction": it.choices[pred_raw if ctx.cmmlu_primary == "raw" else pred_norm],
            }
        )
        hits = by_subject[it.subject or "all"]
        hits[0].append(pred_raw == it.answer)
        hits[1].append(pred_norm == it.answer)
    all_raw = [h for raw_hits, _ in by_subject.values() for h in raw_hits]
    all_norm = [h for _, norm_hits in by_subject.values() for h in norm_hits]
    metrics: dict[str, Any] = {
        "accuracy": _accuracy(all_raw),
        "accuracy_norm": _accuracy(all_norm),
        "n": len(rows),
        "primary": PRIMARY[ctx.cmmlu_primary],
        "by_subject": {
            s: {"accuracy": _accuracy(r), "accuracy_norm": _accuracy(nm), "n": len(r)}
            for s, (r, nm) in sorted(by_subject.items())
        },
        "convention": "option text log-likelihood after the question; accuracy = summed log-prob, "
        "accuracy_norm = log-prob per character of the option; ×100",
        "skipped": dict(skipped),
    }
    return SuiteResult(suite, metrics, rows, dict(skipped))
