"""Records → token-id examples for each stage, with counted skips (never silent drops)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pedgpt.common.constants import IGNORE_INDEX
from pedgpt.data.schema import Instruction, Message, PreferencePair, PretrainText, task_id
from pedgpt.data.templates import ChatTemplate


def flatten_instruction(rec: Instruction, template: ChatTemplate, eos_token: str) -> str:
    """An instruction rendered as plain text, for hybrid-instruction continuous pre-training."""
    return template.render(rec.messages, rec.system, eos_token=eos_token)


def text_windows(ids: list[int], max_len: int) -> list[dict]:
    """One document's ids → ``max_len`` windows (a window of one token teaches nothing and is dropped)."""
    return [{"input_ids": ids[i : i + max_len]} for i in range(0, len(ids), max_len) if len(ids[i : i + max_len]) > 1]


def encode_text_batch(texts: Sequence[str], tokenizer: Any, max_len: int) -> list[list[dict]]:
    """Plain texts → per text its ``<s> text </s>`` windows (``input_ids`` only: the labels are the inputs), no
    ``<s>`` for tokenizers without one (e.g. Qwen's). One tokenizer call for the whole batch: a fast tokenizer's
    Rust backend encodes it in parallel, without character offsets (``encode_batch_fast``: the same ids in half the
    time of the ``tokenizer(...)`` call, which also builds offsets and Python dicts)."""
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    eos = [tokenizer.eos_token_id]
    return [text_windows(bos + ids + eos, max_len) for ids in token_ids(list(texts), tokenizer)]


def token_ids(texts: list[str], tokenizer: Any) -> list[list[int]]:
    """The ids of each text, no special tokens added: what ``tokenizer(texts, add_special_tokens=False)`` gives.

    The backend is called directly only when that call would leave it as it is (no truncation or padding set on
    it — ``tokenizer(...)`` resets both for the call, a direct call would apply them — and special tokens split or
    kept as the wrapper says); otherwise, and for slow tokenizers, the wrapper is called."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (
        backend is not None
        and hasattr(backend, "encode_batch_fast")
        and backend.truncation is None
        and backend.padding is None
        and getattr(backend, "encode_special_tokens", False) == bool(getattr(tokenizer, "split_special_tokens", False))
    ):
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def encode_texts(texts: Iterable[str], tokenizer: Any, max_len: int) -> list[dict]:
    """Plain text → ``<s> text </s>`` examples with ``labels`` = ``input_ids``, long documents split into
    ``max_len`` windows."""
    return [
        {"input_ids": w["input_ids"], "labels": list(w["input_ids"])}
        for windows in encode_text_batch(list(texts), tokenizer, max_len)
        for w in windows
    ]


def encode_instruction(rec: Instruction, tokenizer: Any, template: ChatTemplate, max_len: int) -> dict | str:
    """One instruction → an example whose labels cover assistant turns only (``task_id`` kept), or the reason
    it is skipped."""
    enc = template.encode(tokenizer, rec.messages, rec.system, max_len=max_len)
    if enc is None:
        return "answer_longer_than_max_len"
    if all(lab == IGNORE_INDEX for lab in enc["labels"]):
        return "no_trainable_tokens"
    enc["task_id"] = task_id(rec.task)
    return enc


def encode_each(items: Sequence[Any], encode_one: Callable[..., Any], **settings: Any) -> list[Any]:
    """``encode_one(item, **settings)`` of each item: a per-record encoder as the token store's batch function."""
    return [encode_one(item, **settings) for item in items]


def encode_instructions(
    records: Sequence[Instruction], tokenizer: Any, template: ChatTemplate, max_len: int, skipped: Counter
) -> list[dict]:
    """Instructions → examples (:func:`encode_instruction`); skips counted by reason in ``skipped``."""
    return kept([encode_instruction(rec, tokenizer, template, max_len) for rec in records], skipped)


def encode_pair(p: PreferencePair, tokenizer: Any, template: ChatTemplate, max_len: int) -> dict | str:
    """One preference pair → chosen/rejected example sharing the prompt (left-truncated to fit), or the reason
    it is skipped.

    Both answers are kept whole and condition on the same prompt: the prompt loses the same number of
    leading tokens in both rows, enough for the longer answer to fit in ``max_len``. Labels cover the
    final answer only (earlier assistant turns of a multi-turn prompt are context). Pairs whose chosen
    and rejected answers are identical or empty, or whose answers cannot fit in ``max_len`` with at
    least one prompt token, are skipped.
    """
    if not p.chosen.strip() or not p.rejected.strip():
        return "empty_answer"
    if p.chosen.strip() == p.rejected.strip():
        return "identical_chosen_rejected"
    c = template.encode(tokenizer, [*p.prompt, _assistant(p.chosen)], p.system)
    r = template.encode(tokenizer, [*p.prompt, _assistant(p.rejected)], p.system)
    prompt_len = _prompt_length(c["labels"])
    cut = max(0, len(c["input_ids"]) - max_len, len(r["input_ids"]) - max_len)
    if cut >= prompt_len:
        return "pair_longer_than_max_len"
    masked = [IGNORE_INDEX] * (prompt_len - cut)  # earlier assistant turns are context, not answer
    return {
        "chosen_ids": c["input_ids"][cut:],
        "chosen_labels": masked + c["labels"][prompt_len:],
        "rejected_ids": r["input_ids"][cut:],
        "rejected_labels": masked + r["labels"][prompt_len:],
        "task_id": task_id(p.task),
    }


def encode_pairs(
    pairs: Sequence[PreferencePair], tokenizer: Any, template: ChatTemplate, max_len: int, skipped: Counter
) -> list[dict]:
    """Preference pairs → examples (:func:`encode_pair`) with ``index``, their position in the kept list (the key
    of cached reference log-probs); skips counted by reason in ``skipped``."""
    out = kept([encode_pair(p, tokenizer, template, max_len) for p in pairs], skipped)
    for i, e in enumerate(out):
        e["index"] = i
    return out


def kept(results: Iterable[dict | str], skipped: Counter) -> list[dict]:
    """The examples among per-item results; each skip reason (a string) counted in ``skipped``."""
    out = []
    for r in results:
        if isinstance(r, str):
            skipped[r] += 1
        else:
            out.append(r)
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
