"""The judge prompt (the paper's four criteria) and a verdict parser robust to free text.

The judge sees the question and two answers labelled A and B and is asked to end with ``[[A]]``, ``[[B]]``
or ``[[C]]`` (tie). :func:`parse_verdict` reads that tag (the last one wins when a judge changes its mind)
and, failing that, common free-text forms in Chinese and English; anything else is unparseable (``None``).
Each pair is judged twice with the answers swapped; :func:`combine` turns the two verdicts into the first
model's win / tie / lose, counting disagreement as a tie.
"""

from __future__ import annotations

import re

CRITERIA = ("usefulness", "correctness", "consistency", "smoothness")

PROMPT = """你是一名严谨的儿科医学评审专家。请比较两个AI助手对同一问题的回答，从以下四个方面综合评判：
1. 有用性（usefulness）：是否切实帮助提问者解决问题；
2. 正确性（correctness）：医学内容是否准确、安全；
3. 一致性（consistency）：是否紧扣问题、前后不矛盾；
4. 流畅性（smoothness）：语言是否通顺自然。
不要因为回答的先后顺序或长度而产生偏好。先简要说明理由，最后单独一行给出结论：[[A]] 表示回答A更好，[[B]] 表示回答B更好，[[C]] 表示两者相当。

[问题]
{question}
{reference}
[回答A]
{answer_a}

[回答B]
{answer_b}
"""

_TAG = re.compile(r"\[\[\s*(A|B|C|TIE)\s*\]\]", re.IGNORECASE)
_FREE = (
    (re.compile(r"(?:verdict|结论|判断|答案)\s*[:：]?\s*\(?(A|B|C)\)?(?![A-Za-z])", re.IGNORECASE), None),
    (
        re.compile(r"(?:回答|助手|answer|assistant)\s*([AB])\s*(?:更好|更优|胜出|较好|is better|wins)", re.IGNORECASE),
        None,
    ),
    (re.compile(r"(平局|两者相当|不相上下|同样好|一样好|\btie\b|equally good)", re.IGNORECASE), "C"),
)


def judge_prompt(question: str, answer_a: str, answer_b: str, reference: str | None = None) -> str:
    ref = f"\n[参考答案]\n{reference}\n" if reference else ""
    return PROMPT.format(question=question, reference=ref, answer_a=answer_a, answer_b=answer_b)


def parse_verdict(text: str | None) -> str | None:
    """``"A"``, ``"B"``, ``"C"`` (tie) or None when no verdict can be read."""
    if not text:
        return None
    tags = _TAG.findall(text)
    if tags:
        tag = tags[-1].upper()
        return "C" if tag == "TIE" else tag
    found: list[tuple[int, str]] = []
    for pattern, fixed in _FREE:
        found += [(m.start(), fixed or m.group(1).upper()) for m in pattern.finditer(text)]
    return max(found)[1] if found else None


def combine(first: str | None, swapped: str | None) -> str | None:
    """Outcome for the model shown as A in ``first`` (and as B in ``swapped``): win / tie / lose, or None
    when either verdict is unparseable. Disagreement between the two orders is a tie."""
    if first is None or swapped is None:
        return None
    a = {"A": "win", "B": "lose", "C": "tie"}[first]
    b = {"B": "win", "A": "lose", "C": "tie"}[swapped]
    return a if a == b else "tie"
