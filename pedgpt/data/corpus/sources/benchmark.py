"""Multiple-choice benchmark items (CMMLU style) → EvalItem of suite ``cmmlu_med``.

Accepted: ``question`` + ``options: {"A": ..., ...}`` + ``answer: "B"`` (the shared JSONL), or CMMLU's CSV
columns ``Question, A, B, C, D, Answer``. Benchmark items are evaluation data only: their upstream split
(CMMLU's few-shot ``dev`` vs ``test``) is kept in ``meta.upstream_split``.

Types: question, answer (a letter), subject, ``src`` and every option are text; ``options`` an object
``{letter: text}`` or a list of texts. Anything else is a :class:`~pedgpt.data.corpus.sources.base.BadValue`
(``bad_type:<field>``).
"""

from __future__ import annotations

import string
from typing import Any

from pedgpt.data.corpus.sources.base import (
    Context,
    Unusable,
    bad_type,
    checked_text,
    id_of,
    source_name,
    split_of,
    text_of,
)
from pedgpt.data.schema import EvalItem, Message, stable_id

SUITE = "cmmlu_med"
PROMPT = "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n{question}\n{options}\n答案："


def detect(keys: set[str]) -> bool:
    lower = {k.lower() for k in keys}
    return "question" in lower and "answer" in lower and ("options" in lower or {"a", "b"} <= lower)


def _options(row: dict[str, Any]) -> dict[str, str]:
    options = row.get("options")
    if isinstance(options, dict):
        return {checked_text(k, "options").upper(): text_of(v, f"options.{k}") for k, v in options.items()}
    if isinstance(options, list):
        return {string.ascii_uppercase[i]: text_of(v, "options[]") for i, v in enumerate(options[:26])}
    if options is not None:
        raise bad_type("options", "an object {letter: text} or a list of texts", options)
    return {k: text_of(row[k], k) for k in string.ascii_uppercase[:8] if k in row}


def convert(row: dict[str, Any], ctx: Context) -> list[EvalItem]:
    lower = {k.lower(): v for k, v in row.items()}
    question = text_of(lower.get("question"), "question")
    options = _options(row)
    letters = sorted(options)
    answer = text_of(lower.get("answer"), "answer").upper()
    if not question or len(letters) < 2:
        raise Unusable("mcq_without_options")
    if answer not in letters:
        raise Unusable("mcq_answer_not_an_option")
    subject = text_of(row.get("subject"), "subject") or ctx.stem
    source = source_name(text_of(row.get("src"), "src"), ctx.path)
    body = "\n".join(f"{k}. {options[k]}" for k in letters)
    prompt = PROMPT.format(subject=subject, question=question, options=body)
    rid = id_of(row.get("id")) or stable_id(source, subject, question, options)
    upstream_split = split_of(row.get("split"))
    meta = {"upstream_split": upstream_split} if upstream_split else {}
    return [
        EvalItem(
            prompt=[Message("user", prompt)],
            suite=SUITE,
            reference=answer,
            task="general",
            source=source,
            id=rid,
            split="test",
            subject=subject,
            choices=[options[k] for k in letters],
            answer=letters.index(answer),
            meta=meta,
        )
    ]
