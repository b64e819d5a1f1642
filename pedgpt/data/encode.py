"""Records → token-id examples for each stage, with counted skips (never silent drops)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.schema import Instruction, Message, PreferencePair, PretrainText, task_id
from pedgpt.data.templates import ChatTemplate


def flatten_instruction(rec: Instruction, template: ChatTemplate, eos_token: str) -> str:
    """An instruction rendered as plain text, for hybrid-instruction continuous pre-training."""
    return template.render(rec.messages, rec.system, eos_token=eos_token)


def encode_texts(texts: Iterable[str], tokenizer: Any, max_len: int) -> list[dict]:
    """Plain text → ``<s> text </s>`` examples (no ``<s>`` for tokenizers without one, e.g. Qwen's), long
    documents split into ``max_len`` windows."""
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    out = []
    for text in texts:
        ids = bos + tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for i in range(0, len(ids), max_len):
            chunk = ids[i : i + max_len]
            if len(chunk) > 1:
                out.append({"input_ids": chunk, "labels": list(chunk)})
    return out


def encode_instructions(
    records: Sequence[Instruction], tokenizer: Any, template: ChatTemplate, max_len: int, skipped: Counter
) -> list[dict]:
    """Instructions → examples whose labels cover assistant turns only (``task_id`` kept)."""
    out = []
    for rec in records:
        enc = template.encode(tokenizer, rec.messages, rec.system, max_len=max_len)
        if enc is None:
            skipped["answer_longer_than_max_len"] += 1
            continue
        if all(lab == IGNORE_INDEX for lab in enc["labels"]):
            skipped["no_trainable_tokens"] += 1
            continue
        enc["task_id"] = task_id(rec.task)
        out.append(enc)
    return out


def encode_pairs(
    pairs: Sequence[PreferencePair], tokenizer: Any, template: ChatTemplate, max_len: int, skipped: Counter
) -> list[dict]:
    """Preference pairs → chosen/rejected examples sharing the prompt (left-truncated to fit).

    Both answers are kept whole and condition on the same prompt: the prompt loses the same number of
    leading tokens in both rows, enough for the longer answer to fit in ``max_len``. Labels cover the
    final answer only (earlier assistant turns of a multi-turn prompt are context). Pairs whose chosen
    and rejected answers are identical or empty, or whose answers cannot fit in ``max_len`` with at
    least one prompt token, are skipped and counted by reason.
    """
    out = []
    for p in pairs:
        if not p.chosen.strip() or not p.rejected.strip():
            skipped["empty_answer"] += 1
            continue
        if p.chosen.strip() == p.rejected.strip():
            skipped["identical_chosen_rejected"] += 1
            continue
        c = template.encode(tokenizer, [*p.prompt, _assistant(p.chosen)], p.system)
        r = template.encode(tokenizer, [*p.prompt, _assistant(p.rejected)], p.system)
        prompt_len = _prompt_length(c["labels"])
        cut = max(0, len(c["input_ids"]) - max_len, len(r["input_ids"]) - max_len)
        if cut >= prompt_len:
            skipped["pair_longer_than_max_len"] += 1
            continue
        masked = [IGNORE_INDEX] * (prompt_len - cut)  # earlier assistant turns are context, not answer
        out.append(
            {
                "chosen_ids": c["input_ids"][cut:],
                "chosen_labels": masked + c["labels"][prompt_len:],
                "rejected_ids": r["input_ids"][cut:],
                "rejected_labels": masked + r["labels"][prompt_len:],
                "task_id": task_id(p.task),
                "index": len(out),
            }
        )
    return out


def _prompt_length(labels: list[int]) -> int:
    """Tokens before the final answer (the prompt of a single-answer conversation)."""
    n = len(labels)
    while n and labels[n - 1] != IGNORE_INDEX:
        n -= 1
    return n


def _assistant(text: str) -> Message:
    return Message(role="assistant", content=text)


def pretrain_texts(records: Iterable[PretrainText]) -> list[str]:
    return [r.text for r in records if r.text.strip()]
