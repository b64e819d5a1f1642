"""Triage time grows linearly with the message: one long message costs what the same text in short pieces costs.

Timed as a ratio, side by side in one process, never against an absolute duration: triage of one message of
``LONG`` characters against triage of ``LONG / SHORT`` messages of ``SHORT`` characters (the same amount of
text). Linear work gives a ratio near 1; the old quadratic scope checks gave about ``LONG / SHORT`` (10) and
number runs far more. The inputs are the repeated units that were worst for the old code: digit and numeral
runs, one long clause of negated symptoms, many fever words, many temperatures, many clauses.
"""

from __future__ import annotations

import time

import pytest

from pedgpt.inference.safety import triage

SHORT, LONG = 400, 4000
#: Linear is ~1, quadratic ~10 (LONG / SHORT); the slack covers timer noise on a shared machine.
MAX_RATIO = 3.0
UNITS = [
    "1",
    "一",
    "十",
    "零",
    "烧到",
    "发烧",
    "38.5度",
    "没有发烧和",
    "孩子没有抽搐呼吸",
    "宝宝有点咳嗽没有发烧",
    "上次",
    "发烧5天，",
    "退烧了，",
    "宝宝3天",
    "吐38.5度没尿",
]


def _repeat(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _best_of(reps: int, fn) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("unit", UNITS, ids=[f"unit{i}" for i in range(len(UNITS))])
def test_triage_time_is_linear_in_the_message_length(unit):
    long_text = _repeat(unit, LONG)
    pieces = [_repeat(unit, SHORT)] * (LONG // SHORT)
    triage(long_text)  # warm up: compiled patterns, caches of the interpreter
    t_long = _best_of(3, lambda: triage(long_text))
    t_pieces = _best_of(3, lambda: [triage(p) for p in pieces])
    ratio = t_long / t_pieces
    print(f"\n{unit!r}: {LONG} chars {t_long * 1e3:.1f} ms, {LONG // SHORT} x {SHORT} chars {t_pieces * 1e3:.1f} ms")
    assert ratio <= MAX_RATIO, f"{unit!r}: one {LONG}-char message took {ratio:.1f}x its {SHORT}-char pieces"


def test_conversation_time_is_linear_in_the_number_of_turns():
    """40 turns of 1,000 characters against 4 turns: the turns are read together, so this is the same check
    at the conversation level (what the server runs on every request)."""
    turn = _repeat("宝宝发烧咳嗽，精神还好，没有抽搐，", 1000)

    def conversation(n: int) -> list[dict[str, str]]:
        return [{"role": "user" if i % 2 == 0 else "assistant", "content": turn} for i in range(2 * n - 1)]

    big, small = conversation(20), conversation(2)
    triage(big)
    t_big = _best_of(3, lambda: triage(big))
    t_small = _best_of(3, lambda: [triage(small) for _ in range(10)])
    assert t_big / t_small <= MAX_RATIO, f"20 user turns took {t_big / t_small:.1f}x ten conversations of 2"
